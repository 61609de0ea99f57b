"""The device owner's policy: what an artifact may ask the container engine to do.

Standard library only (it ships in the single-file device module). Checked in
Download, before anything is pulled or stopped, against the planned containers
(`spec.PlannedContainer.args` is the already shlex-split `docker run` argv).

Two settings, both optional; unset means the original module's behaviour
(nothing denied, any registry):

    deny_run_args       comma-separated rules; `dangerous` (alias `default`)
                        expands to DANGEROUS below and may be combined with
                        more rules, e.g. `dangerous, --cap-add`; `none` = no rule
    allowed_registries  comma-separated registry hosts ("docker.io",
                        "registry.example.com:5000"); every image's registry
                        must be listed. Names without a host are docker.io,
                        as docker resolves them.

Rule forms:

    --OPTION            any use of the option (a boolean option only when true):
                        --privileged, --device, --cap-add, --volumes-from, ...
    --OPTION=VALUE      the option with that value: --pid=host, --network=host
                        (also podman's ns:/path), --cap-add=SYS_ADMIN (case and
                        CAP_ prefix ignored), --security-opt=unconfined (any
                        seccomp/apparmor/systempaths=unconfined, label=disable,
                        podman's unmask=...)
    bind=/PATH          a bind mount whose host source is PATH or an ancestor
                        of it (binding /var exposes /var/run/docker.sock), or a
                        writable bind of anything inside it; `bind=/` is the
                        host root only. `--volume=/PATH` means the same.
    bind-relative       a bind mount with a relative source (newer docker CLIs
                        resolve it against the module's working directory)
    positional          an argument that is not an option: docker would run it
                        as the image instead of the pinned one (always refused
                        when allowed_registries is set)

Every spelling docker's flag parser accepts is normalised first: `--opt=value`,
`--opt value`, short flags and their clusters (`-v/:/host`, `-dv=/:/h`,
`-itv /:/h`), aliases (`--net`), `-v SRC:DST[:opts]` and the CSV `--mount`
form, including `type=volume` with `volume-opt=device=/PATH` (a local-driver
bind mount in disguise). Host symlinks are not resolved, except that /var/run
is treated as /run.
"""

from __future__ import annotations

import csv
import posixpath
import re
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Mapping, Optional, Sequence, Set, Tuple

from mender_docker.module.errors import ConfigError, DeploymentError
from mender_docker.spec import PlannedContainer

DENY_KEY = "deny_run_args"
REGISTRIES_KEY = "allowed_registries"

# Everything a container could use to take over the device it runs on.
DANGEROUS: Tuple[str, ...] = (
    "--privileged",
    "--pid=host",
    "--network=host",
    "--ipc=host",
    "--uts=host",
    "--userns=host",
    "--cgroupns=host",
    "--cap-add=ALL",
    "--cap-add=SYS_ADMIN",
    "--cap-add=SYS_MODULE",
    "--cap-add=SYS_RAWIO",
    "--cap-add=SYS_PTRACE",
    "--cap-add=SYS_BOOT",
    "--cap-add=DAC_READ_SEARCH",
    "--cap-add=BPF",
    "--device",
    "--device-cgroup-rule",
    "--security-opt=unconfined",
    "--use-api-socket",
    "--volumes-from",
    "--env-file",  # reads a device file into the container (e.g. /etc/shadow)
    "--label-file",
    "--cidfile",  # writes a device file as root
    "bind=/",
    "bind=/etc",
    "bind=/run/docker.sock",
    "bind=/run/containerd",
    "bind=/run/podman",
    "bind=/var/lib/docker",
    "bind=/var/lib/containerd",
    "bind=/proc",
    "bind=/sys",
    "bind=/dev",
    "bind=/boot",
    "bind=/root",
    "bind=/var/lib/mender",
    "bind=/data/mender",
    "bind=/usr/share/mender",
    "bind=/lib/modules",
    "bind-relative",
    "positional",
)
PRESETS: Dict[str, Tuple[str, ...]] = {"dangerous": DANGEROUS, "default": DANGEROUS}

# docker run's flags (docker CLI 20.10 to 28), as its flag parser (pflag) sees them.
SHORT: Dict[str, str] = {
    "a": "attach", "c": "cpu-shares", "d": "detach", "e": "env", "h": "hostname",
    "i": "interactive", "l": "label", "m": "memory", "p": "publish", "P": "publish-all",
    "q": "quiet", "t": "tty", "u": "user", "v": "volume", "w": "workdir",
}  # fmt: skip
ALIASES: Dict[str, str] = {"net": "network", "net-alias": "network-alias", "dns-opt": "dns-option"}
BOOLEAN: FrozenSet[str] = frozenset(
    (
        "detach", "disable-content-trust", "help", "init", "interactive", "no-healthcheck",
        "oom-kill-disable", "privileged", "publish-all", "quiet", "read-only", "rm",
        "sig-proxy", "tty", "use-api-socket",
    )
)  # fmt: skip
# Options that take a value: their next argument is a value even if it starts with "-".
VALUED: FrozenSet[str] = frozenset(
    (
        "add-host", "annotation", "attach", "blkio-weight", "blkio-weight-device", "cap-add",
        "cap-drop", "cgroup-parent", "cgroupns", "cidfile", "cpu-count", "cpu-percent",
        "cpu-period", "cpu-quota", "cpu-rt-period", "cpu-rt-runtime", "cpu-shares", "cpus",
        "cpuset-cpus", "cpuset-mems", "credential-spec", "detach-keys", "device",
        "device-cgroup-rule", "device-read-bps", "device-read-iops", "device-write-bps",
        "device-write-iops", "dns", "dns-option", "dns-search", "domainname", "entrypoint",
        "env", "env-file", "expose", "gpus", "group-add", "health-cmd", "health-interval",
        "health-retries", "health-start-interval", "health-start-period", "health-timeout",
        "hostname", "io-maxbandwidth", "io-maxiops", "ip", "ip6", "ipc", "isolation",
        "kernel-memory", "label", "label-file", "link", "link-local-ip", "log-driver",
        "log-opt", "mac-address", "memory", "memory-reservation", "memory-swap",
        "memory-swappiness", "mount", "name", "network", "network-alias", "oom-score-adj",
        "pid", "pids-limit", "platform", "publish", "pull", "restart", "runtime",
        "security-opt", "shm-size", "stop-signal", "stop-timeout", "storage-opt", "sysctl",
        "tmpfs", "ulimit", "user", "userns", "uts", "volume", "volume-driver",
        "volumes-from", "workdir",
    )
)  # fmt: skip
NAMESPACE_OPTIONS = frozenset(("pid", "network", "ipc", "uts", "userns", "cgroupns"))
_FALSE = frozenset(("0", "f", "F", "false", "FALSE", "False"))  # strconv.ParseBool
_TRUE = frozenset(("1", "t", "T", "true", "TRUE", "True"))
_UNCONFINED = frozenset(
    ("seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined", "label=disable")
)
_OPTION_RE = re.compile(r"^[a-z][a-z0-9-]*$")
_HOST_RE = re.compile(r"^(?:[a-z0-9.-]+|\[[0-9a-f:]+\])(?::[0-9]+)?$")
_SPECIAL = ("bind-relative", "positional")

_REASONS = {
    "privileged": "full access to the host's devices and kernel",
    "pid": "shares a host namespace",
    "network": "shares a host namespace",
    "ipc": "shares a host namespace",
    "uts": "shares a host namespace",
    "userns": "shares a host namespace",
    "cgroupns": "shares a host namespace",
    "cap-add": "grants a kernel capability",
    "device": "exposes a host device",
    "device-cgroup-rule": "allows creating host devices",
    "security-opt": "disables a confinement",
    "use-api-socket": "hands the container the engine's API socket",
    "volumes-from": "inherits another container's mounts",
    "env-file": "reads a device file",
    "label-file": "reads a device file",
    "cidfile": "writes a device file",
    "bind": "bind-mounts a sensitive host path",
    "bind-relative": "bind-mounts a path relative to the module's working directory",
    "positional": "docker would run it as the image instead of the pinned one",
}


class PolicyError(DeploymentError, ValueError):
    """The artifact asks for something the device owner's policy forbids."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = list(violations)
        super().__init__("policy refuses the artifact: " + "; ".join(map(str, self.violations)))


@dataclass(frozen=True)
class Violation:
    container: str
    image: str
    argument: str  # the argument(s) as written in the meta-data
    rule: str
    reason: str

    def __str__(self) -> str:
        return (
            f"container {self.container!r} ({self.image}): {self.argument!r} "
            f"is denied by rule {self.rule!r} ({self.reason})"
        )


@dataclass(frozen=True)
class Rule:
    text: str  # normalised, as shown in messages
    option: str  # long option name, "bind", or a _SPECIAL name
    value: Optional[str] = None  # normalised; for "bind", the host path


@dataclass(frozen=True)
class Policy:
    deny: Tuple[str, ...] = ()
    allowed_registries: Optional[Tuple[str, ...]] = None
    rules: Tuple[Rule, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(parse_rule(text) for text in self.deny))
        if self.allowed_registries is not None:
            object.__setattr__(
                self,
                "allowed_registries",
                tuple(_normalise_registry(host) for host in self.allowed_registries),
            )

    @property
    def active(self) -> bool:
        return bool(self.rules) or self.allowed_registries is not None


@dataclass(frozen=True)
class _Use:
    """One option as docker's flag parser would see it."""

    option: str  # long name, aliases resolved
    value: Optional[str]  # None: a boolean given without value (true) or a missing value
    raw: str


@dataclass(frozen=True)
class _Bind:
    source: str  # normalised absolute path, or the relative path as written
    readonly: bool
    raw: str


def policy_from_settings(settings: Mapping[str, str]) -> Policy:
    """Build the policy from configuration values; other keys in `settings` are ignored."""
    deny: List[str] = []
    for item in _split_list(settings.get(DENY_KEY, "")):
        if item.lower() == "none":
            continue
        preset = PRESETS.get(item.lower())
        deny.extend(preset if preset is not None else (item,))
    registries: Optional[Tuple[str, ...]] = None
    if REGISTRIES_KEY in settings:
        hosts = _split_list(settings[REGISTRIES_KEY])
        if not hosts:
            raise ConfigError(
                f"{REGISTRIES_KEY} is empty: list registry hosts, or remove the key to allow any"
            )
        registries = tuple(hosts)
    return Policy(deny=tuple(dict.fromkeys(deny)), allowed_registries=registries)


def parse_rule(text: str) -> Rule:
    """One `deny_run_args` rule; ConfigError names what is wrong with it."""
    rule = text.strip()
    if rule in _SPECIAL:
        return Rule(rule, rule)
    if rule.startswith("bind="):
        path = rule[len("bind=") :]
        if not path.startswith("/"):
            raise ConfigError(f"{DENY_KEY}: rule {text!r}: bind= needs an absolute path")
        path = _normalise_path(path)
        return Rule(f"bind={path}", "bind", path)
    if not rule.startswith("-"):
        raise ConfigError(
            f"{DENY_KEY}: unknown rule {text!r} (expected --option[=value], bind=/path, "
            f"{', '.join(_SPECIAL)} or a preset: {', '.join(PRESETS)})"
        )
    name, value = _split_rule_option(rule)
    if name is None:
        raise ConfigError(f"{DENY_KEY}: rule {text!r} does not name a docker run option")
    if name in ("volume", "mount") and value is not None and value.startswith("/"):
        return parse_rule(f"bind={value}")
    if name in BOOLEAN and value is not None:
        if value not in _TRUE:
            raise ConfigError(f"{DENY_KEY}: rule {text!r}: write just --{name} to deny it")
        value = None
    if value is not None:
        value = _normalise_value(name, value)
        if not value:
            raise ConfigError(f"{DENY_KEY}: rule {text!r} has an empty value")
        return Rule(f"--{name}={value}", name, value)
    return Rule(f"--{name}", name)


def check(planned: Sequence[PlannedContainer], policy: Policy) -> None:
    """Raise PolicyError listing every violation; return quietly when all is allowed."""
    violations = find_violations(planned, policy)
    if violations:
        raise PolicyError(violations)


def find_violations(planned: Sequence[PlannedContainer], policy: Policy) -> List[Violation]:
    found: List[Violation] = []
    for item in planned:
        if policy.allowed_registries is not None:
            host = registry_host(item.image)
            if host not in policy.allowed_registries:
                found.append(
                    Violation(
                        item.name, item.image, item.image, f"{REGISTRIES_KEY}",
                        f"registry {host!r} is not one of {', '.join(policy.allowed_registries)}",
                    )
                )  # fmt: skip
        uses, positionals = scan_args(item.args)
        binds = _binds(uses)
        positional_rule = any(rule.option == "positional" for rule in policy.rules)
        if positionals and (positional_rule or policy.allowed_registries is not None):
            rule_text = "positional" if positional_rule else REGISTRIES_KEY
            found.append(
                Violation(item.name, item.image, positionals[0], rule_text, _REASONS["positional"])
            )
        reported: Set[str] = set()  # one violation per argument: the first rule that hits it
        for rule in policy.rules:
            for raw in _matches(rule, uses, binds):
                if raw not in reported:
                    reported.add(raw)
                    reason = _REASONS.get(rule.option, "denied by the device's policy")
                    found.append(Violation(item.name, item.image, raw, rule.text, reason))
    return found


def registry_host(image: str) -> str:
    """The registry an image reference pulls from, resolved as docker does."""
    name = image.split("@", 1)[0]
    first, slash, _ = name.partition("/")
    if not slash or (
        "." not in first and ":" not in first and first != "localhost" and first == first.lower()
    ):
        return "docker.io"
    host = first.lower()
    return "docker.io" if host in ("index.docker.io", "registry-1.docker.io") else host


def scan_args(args: Sequence[str]) -> Tuple[List[_Use], List[str]]:
    """Options and positional arguments of a `docker run` argv, as pflag parses them.

    Unlike docker, scanning goes on after a positional argument: whatever
    follows it is refused rather than trusted.
    """
    uses: List[_Use] = []
    positionals: List[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            positionals.extend(args[index + 1 :])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            option = ALIASES.get(name, name)
            nxt = args[index + 1] if index + 1 < len(args) else None
            if eq:
                uses.append(_Use(option, value, arg))
            elif option in BOOLEAN or nxt is None:
                uses.append(_Use(option, None, arg))
            elif option in VALUED or not nxt.startswith("-"):
                uses.append(_Use(option, nxt, f"{arg} {nxt}"))
                index += 1
            else:  # unknown option followed by an option: docker refuses it anyway
                uses.append(_Use(option, None, arg))
        elif arg.startswith("-") and len(arg) > 1:
            index += _scan_short_cluster(args, index, uses)
        else:
            positionals.append(arg)
        index += 1
    return uses, positionals


def _scan_short_cluster(args: Sequence[str], index: int, uses: List[_Use]) -> int:
    """Parse `-abc`, `-vVALUE`, `-v=VALUE`, `-v VALUE`; return how many extra args it took."""
    arg = args[index]
    pos = 1
    while pos < len(arg):
        option = SHORT.get(arg[pos])
        if option is None:  # docker refuses an unknown shorthand
            return 0
        rest = arg[pos + 1 :]
        if rest.startswith("=") and len(rest) > 1:
            uses.append(_Use(option, rest[1:], arg))
            return 0
        if option in BOOLEAN:
            uses.append(_Use(option, None, arg))
            pos += 1
            continue
        if rest:
            uses.append(_Use(option, rest, arg))
            return 0
        if index + 1 < len(args):
            uses.append(_Use(option, args[index + 1], f"{arg} {args[index + 1]}"))
            return 1
        uses.append(_Use(option, None, arg))
        return 0
    return 0


def _matches(rule: Rule, uses: Sequence[_Use], binds: Sequence[_Bind]) -> List[str]:
    if rule.option == "bind":
        assert rule.value is not None
        return [b.raw for b in binds if b.source.startswith("/") and _bind_hits(rule.value, b)]
    if rule.option == "bind-relative":
        return [b.raw for b in binds if not b.source.startswith("/")]
    if rule.option == "positional":
        return []  # handled with the registries, where the image is known
    hits: List[str] = []
    for use in uses:
        if use.option != rule.option:
            continue
        if use.option in BOOLEAN and use.value in _FALSE:
            continue
        if rule.value is None or _value_hits(rule, use.value):
            hits.append(use.raw)
    return hits


def _value_hits(rule: Rule, value: Optional[str]) -> bool:
    if value is None:
        return False
    if rule.option == "cap-add":
        return any(_normalise_value("cap-add", cap) == rule.value for cap in value.split(","))
    if rule.option == "security-opt" and rule.value == "unconfined":
        normal = _normalise_value("security-opt", value)
        return normal in _UNCONFINED or normal.startswith("unmask=")  # podman: unmask=ALL
    if rule.option in NAMESPACE_OPTIONS and rule.value == "host":
        # podman also joins any namespace by path: --pid=ns:/proc/1/ns/pid
        normal = _normalise_value(rule.option, value)
        return normal == "host" or normal.startswith("ns:")
    return _normalise_value(rule.option, value) == rule.value


def _bind_hits(path: str, bind: _Bind) -> bool:
    source = bind.source
    if path == "/":
        return source == "/"
    if source == path or source == "/":
        return True
    # A directory holding the path exposes it even read-only; /var/run may be a
    # real directory rather than the usual symlink to /run.
    aliases = (path, "/var" + path) if path.startswith("/run/") else (path,)
    if any(alias.startswith(source + "/") for alias in aliases):
        return True
    return source.startswith(path + "/") and not bind.readonly


def _binds(uses: Sequence[_Use]) -> List[_Bind]:
    """Host paths mounted into the container by -v/--volume and --mount."""
    binds: List[_Bind] = []
    for use in uses:
        if use.value is None:
            continue
        if use.option == "volume":
            parts = use.value.split(":")
            if len(parts) >= 2 and parts[0].startswith(("/", ".")):
                mode = parts[2].split(",") if len(parts) > 2 else []
                binds.append(_Bind(_normalise_source(parts[0]), "ro" in mode, use.raw))
        elif use.option == "mount":
            binds.extend(_mount_binds(use))
    return binds


def _mount_binds(use: _Use) -> List[_Bind]:
    assert use.value is not None
    try:
        fields = next(csv.reader([use.value]), [])
    except csv.Error:
        fields = use.value.split(",")
    kind = "volume"
    source = ""
    readonly = False
    devices: List[str] = []
    for item in fields:
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if key == "type":
            kind = value.strip().lower()
        elif key in ("source", "src"):
            source = value
        elif key in ("readonly", "ro"):
            readonly = not eq or value.strip() in _TRUE
        elif key == "volume-opt":
            opt, _, opt_value = value.partition("=")
            if opt.strip().lower() == "device":
                devices.append(opt_value)
    candidates = [source] if kind == "bind" else []
    candidates += devices  # local driver: volume-opt=o=bind,volume-opt=device=/PATH
    return [
        _Bind(_normalise_source(path), readonly, use.raw)
        for path in candidates
        if path.startswith(("/", "."))
    ]


def _normalise_source(path: str) -> str:
    return _normalise_path(path) if path.startswith("/") else path


def _normalise_path(path: str) -> str:
    norm = re.sub(r"^/+", "/", posixpath.normpath(path))
    if norm == "/var/run" or norm.startswith("/var/run/"):
        norm = "/run" + norm[len("/var/run") :]
    return norm


def _normalise_value(option: str, value: str) -> str:
    value = value.strip()
    if option in NAMESPACE_OPTIONS:
        return value.lower()
    if option == "cap-add":
        upper = value.upper()
        return upper[4:] if upper.startswith("CAP_") else upper
    if option == "security-opt":
        key, sep, rest = value.partition("=")
        if not sep:  # the old spelling: seccomp:unconfined, label:disable
            key, sep, rest = value.partition(":")
        return f"{key.lower()}={rest.lower()}" if sep else value.lower()
    return value


def _split_rule_option(rule: str) -> Tuple[Optional[str], Optional[str]]:
    """'--pid=host', '--pid host', '-v=/x', '--net' -> (long name, value or None)."""
    value: Optional[str] = None
    if "=" in rule:
        head, value = rule.split("=", 1)
    elif " " in rule:
        head, value = rule.split(None, 1)
    else:
        head = rule
    name: Optional[str] = None
    if head.startswith("--"):
        name = ALIASES.get(head[2:], head[2:])
    elif len(head) == 2:
        name = SHORT.get(head[1])
    if name is None or not _OPTION_RE.match(name):
        return None, None
    return name, None if value is None else value.strip()


def _normalise_registry(host: str) -> str:
    host = host.strip().lower()
    if host in ("index.docker.io", "registry-1.docker.io"):
        return "docker.io"
    if not _HOST_RE.match(host):
        raise ConfigError(f"{REGISTRIES_KEY}: {host!r} is not a registry host[:port]")
    return host


def _split_list(text: str) -> List[str]:
    return [item.strip() for item in text.split(",") if item.strip()]
