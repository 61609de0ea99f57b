"""The module's configuration: `key = value` lines, `#` comments, parsed with the stdlib.

The file is optional (defaults apply); its path is /etc/mender/mender-docker.conf
unless the environment variable MENDER_DOCKER_CONF names another one. Unknown
keys are errors: a misspelt key silently ignored would be worse.

    engine               docker (default), podman, or a path to either binary
    scope                all (default: every running container is replaced, as the
                         original module did) or managed (only containers we started)
    data_dir             journal directory; default /data/mender-docker if /data
                         exists, else /var/lib/mender-docker
    stop_timeout         seconds an old container gets to stop (10)
    health_timeout       seconds the health gate may take in all (60)
    health_window        seconds each new container must stay up (5)
    keep_previous_images keep images of earlier deployments after a commit (false)
    tty                  give containers a terminal, as the original's `docker run -dt`
                         did (true): images whose command is a shell need it to stay up
    pull_retries         extra attempts for a failed pull (2)
    command_timeout      seconds any engine command but a pull may take (300)
    label_namespace      prefix of the labels we set (io.mender.docker); lets
                         several independent installations share one engine
    deny_run_args        run arguments artifacts may not use (module/policy.py)
    allow_run_args       `safe`: only ordinary application options (module/policy.py)
    allowed_registries   registries images may come from (module/policy.py)
    snapshot_volumes     allow (default): a release may ask for volume snapshots
                         (module/snapshots.py); never: such a release is refused

Meta-data values (health_timeout, health_window, stop_timeout) override these
per artifact.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields, replace
from typing import Dict, Mapping, Optional

from mender_docker.module.errors import ConfigError
from mender_docker.module.policy import policy_from_settings

DEFAULT_PATH = "/etc/mender/mender-docker.conf"
ENV_VAR = "MENDER_DOCKER_CONF"
SCOPES = ("all", "managed")
SNAPSHOT_SETTINGS = ("allow", "never")
ENGINES = ("docker", "podman")


def default_data_dir() -> str:
    """/data survives rootfs updates on Mender devices; fall back to /var/lib."""
    return "/data/mender-docker" if os.path.isdir("/data") else "/var/lib/mender-docker"


@dataclass(frozen=True)
class Config:
    engine: str = "docker"  # docker | podman | a path to either binary
    scope: str = "all"  # all: every running container; managed: only ours
    data_dir: str = ""  # "" means default_data_dir()
    stop_timeout: float = 10.0
    health_timeout: float = 60.0
    health_window: float = 5.0
    keep_previous_images: bool = False
    tty: bool = True
    pull_retries: int = 2
    command_timeout: float = 300.0  # seconds for any engine command but a pull
    label_namespace: str = "io.mender.docker"  # prefix of every label we set
    deny_run_args: str = ""  # the owner's policy, see module/policy.py
    allow_run_args: Optional[str] = None  # None: no allow-list
    allowed_registries: Optional[str] = None  # None: any registry
    snapshot_volumes: str = "allow"  # allow | never

    def policy_settings(self) -> Dict[str, str]:
        settings = {"deny_run_args": self.deny_run_args}
        if self.allow_run_args is not None:
            settings["allow_run_args"] = self.allow_run_args
        if self.allowed_registries is not None:
            settings["allowed_registries"] = self.allowed_registries
        return settings

    @property
    def engine_kind(self) -> str:
        """docker or podman: whose run options the artifact's arguments are parsed with."""
        return "podman" if "podman" in os.path.basename(self.engine) else "docker"

    @property
    def journal_dir(self) -> str:
        return self.data_dir or default_data_dir()

    def label(self, key: str) -> str:
        return f"{self.label_namespace}.{key}"


# Every number has bounds: an `inf` timeout or a 400-digit one would be accepted
# here and break every engine call later.
_NUMBERS = {
    "stop_timeout": (0.0, 3600.0),
    "health_timeout": (0.0, 86400.0),
    "health_window": (0.0, 86400.0),
    "command_timeout": (1.0, 86400.0),
}
MAX_PULL_RETRIES = 100
MAX_VALUE = 64 * 1024  # characters of one value (the policy's rule lists are the long ones)
MAX_FILE = 1024 * 1024
_NAMESPACE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,99}$")


def parse_config(text: str, where: str = "config") -> Config:
    values: Dict[str, object] = {}
    known = {f.name for f in fields(Config)}
    for number, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ConfigError(f"{where}:{number}: expected 'key = value', got {line!r}")
        if key not in known:
            raise ConfigError(f"{where}:{number}: unknown key {key!r}")
        values[key] = _convert(key, value, f"{where}:{number}")
    config = replace(Config(), **values)  # type: ignore[arg-type]
    try:
        policy_from_settings(config.policy_settings())  # refuse a bad policy now
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return config


def _convert(key: str, value: str, where: str) -> object:
    if len(value) > MAX_VALUE:
        raise ConfigError(f"{where}: {key} is longer than {MAX_VALUE} characters")
    if key in _NUMBERS:
        low, high = _NUMBERS[key]
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{where}: {key} must be a number of seconds: {value!r}") from None
        if not low <= number <= high:  # also refuses nan and inf
            raise ConfigError(f"{where}: {key} must be from {low:g} to {high:g} seconds")
        return number
    if key == "pull_retries":
        if not value.isdigit() or not value.isascii() or int(value) > MAX_PULL_RETRIES:
            raise ConfigError(
                f"{where}: pull_retries must be a whole number from 0 to {MAX_PULL_RETRIES}, "
                f"got {value!r}"
            )
        return int(value)
    if key in ("keep_previous_images", "tty"):
        lowered = value.lower()
        if lowered in ("1", "yes", "true", "on"):
            return True
        if lowered in ("0", "no", "false", "off"):
            return False
        raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
    if key == "scope" and value not in SCOPES:
        raise ConfigError(f"{where}: scope must be one of {', '.join(SCOPES)}, got {value!r}")
    if key == "snapshot_volumes" and value not in SNAPSHOT_SETTINGS:
        raise ConfigError(f"{where}: snapshot_volumes must be allow or never, got {value!r}")
    if key == "engine" and (not value or "\x00" in value):
        raise ConfigError(f"{where}: engine must name docker, podman or a path")
    if key == "data_dir" and not value.startswith("/"):
        raise ConfigError(f"{where}: data_dir must be an absolute path, got {value!r}")
    if key == "label_namespace" and not _NAMESPACE_RE.match(value):
        raise ConfigError(
            f"{where}: label_namespace must be letters, digits, '.', '_' or '-' "
            f"(at most 100), got {value!r}"
        )
    return value


def config_path(environ: Optional[Mapping[str, str]] = None) -> str:
    env = os.environ if environ is None else environ
    return env.get(ENV_VAR) or DEFAULT_PATH


def load_config(path: Optional[str] = None) -> Config:
    """Read the configuration; a missing file at the default path means defaults."""
    chosen = path or config_path()
    try:
        with open(chosen, encoding="utf-8") as handle:
            text = handle.read(MAX_FILE + 1)
        if len(text) > MAX_FILE:
            raise ConfigError(f"configuration file {chosen} is larger than {MAX_FILE} characters")
    except FileNotFoundError:
        if chosen == DEFAULT_PATH:
            return Config()
        raise ConfigError(f"configuration file {chosen} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {chosen}: {exc}") from None
    return parse_config(text, chosen)
