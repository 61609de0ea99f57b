"""The Compose file reader of the workstation side (issue 11).

`load_project(path, project_name=None, profiles=(), environ=None)` reads a Compose
file the way `docker compose config` does and returns a frozen `model.Project`;
anything Compose or a mender-docker device cannot do is one `ComposeError` line.
"""

from mender_docker.compose.loader import load_project, normalize_project_name
from mender_docker.compose.model import (
    ComposeError,
    Dependency,
    Healthcheck,
    Ipam,
    IpamPool,
    Logging,
    Mount,
    Network,
    NetworkAttachment,
    Port,
    Project,
    Service,
    Volume,
)

__all__ = [
    "ComposeError",
    "Dependency",
    "Healthcheck",
    "Ipam",
    "IpamPool",
    "Logging",
    "Mount",
    "Network",
    "NetworkAttachment",
    "Port",
    "Project",
    "Service",
    "Volume",
    "load_project",
    "normalize_project_name",
]
