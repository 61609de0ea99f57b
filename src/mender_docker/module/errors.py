"""The device module's exception hierarchy (stdlib only, separate from the workstation's).

ModuleError                  anything reported as one line, exit 1
├── ConfigError              the configuration file is unreadable or wrong
├── JournalError             the journal cannot be read or written
├── DeploymentError          the artifact cannot be installed (disk, digest, name clash)
├── HealthCheckError         a new container did not stay up: the client rolls back
└── EngineError              a docker/podman command failed (carries command, code, stderr)
    ├── NoSuchObjectError    no such container or image
    ├── DaemonDownError      the engine's daemon does not answer
    ├── UnsupportedError     this engine (version) lacks the command or option
    └── EngineMissingError   the engine's binary is not installed
"""

from __future__ import annotations

from typing import Sequence


class ModuleError(Exception):
    """Base of every error the module reports as one line on stderr."""


class ConfigError(ModuleError):
    """The configuration file cannot be parsed or holds a bad value."""


class JournalError(ModuleError):
    """The journal cannot be read or written."""


class DeploymentError(ModuleError):
    """The artifact cannot be deployed on this device as it is."""


class HealthCheckError(ModuleError):
    """A new container did not stay running (and healthy) for the health window."""


class EngineError(ModuleError):
    """A container-engine command failed."""

    def __init__(self, command: Sequence[str], returncode: int, stderr: str) -> None:
        self.command = list(command)
        self.returncode = returncode
        self.stderr = stderr.strip()
        detail = "; ".join(
            line.strip()
            for line in self.stderr.splitlines()
            if line.strip() and not line.strip().startswith(("See '", "Run '", "Usage:"))
        )
        detail = detail or f"exit code {returncode}"
        super().__init__(f"'{' '.join(self.command[:3])}' failed: {detail}")


class NoSuchObjectError(EngineError):
    """The container or image named in the command does not exist."""


class DaemonDownError(EngineError):
    """The engine binary runs but its daemon does not answer."""


class UnsupportedError(EngineError):
    """The engine lacks the command or option (podman 4 has no `update --restart`)."""


class EngineMissingError(EngineError):
    """The engine binary cannot be found or executed."""

    def __init__(self, command: Sequence[str], detail: str) -> None:
        super().__init__(command, 127, detail)
        self.args = (f"container engine {command[0]!r} not found: {detail}",)

    def __str__(self) -> str:
        return str(self.args[0])
