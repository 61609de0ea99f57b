"""The device owner's policy: what an artifact may ask the container engine to do.

Standard library only (it ships in the single-file device module). Checked in
Download, before anything is pulled or stopped, on the planned containers'
parsed arguments (`spec.PlannedContainer.run`, see runargs.py): the argv the
module later hands the engine is rendered from that same parse, so what is
checked is exactly what runs. An option the engine's CLI does not know was
already refused by the parse.

Three settings, all optional; unset means the original module's behaviour
(anything the engine accepts, any registry), apart from what no device runs
(spec.ALWAYS_REFUSED: --rm, labels in the module's namespace, ...):

    deny_run_args       comma-separated rules; `dangerous` (alias `default`)
                        expands to DANGEROUS below and may be combined with
                        more rules, e.g. `dangerous, --cap-add`; `none` = no rule
    allow_run_args      `safe`: only SAFE options pass (ordinary application
                        settings), plus the rules listed after it, e.g.
                        `safe, --sysctl, bind=/srv/app`; deny rules still apply
    allowed_registries  comma-separated registry hosts ("docker.io",
                        "registry.example.com:5000"); every image's registry
                        must be listed, as docker names it (imageref.py): names
                        without a host, and index.docker.io, are docker.io;
                        registry-1.docker.io is a registry of its own. Case-blind.

Rule forms (deny and allow):

    --OPTION            any use of the option (a boolean option only when true)
    --OPTION=VALUE      the option with that value: --cap-add=SYS_ADMIN (case and
                        CAP_ prefix ignored; also inside a comma list),
                        --pid=host (also podman's ns:/path, container:NAME and the
                        CSV form name=host of --network), --security-opt=unconfined
                        (anything but no-new-privileges), --log-opt=path (a key)
    bind=/PATH          a bind mount whose host source is PATH, inside it, or
                        above it (binding /var exposes /var/run/docker.sock), read-
                        only or not; `bind=/` is the host root only
    bind-rw=/PATH       the same, writable only
    bind-relative       a bind mount with a relative host source
    volume-opt          a --mount volume with driver options (the local driver
                        mounts any host path given as `device`)

Host paths, of binds and of rules, are judged both as written (normalised,
/var/run as /run) and as the kernel resolves them on this device (symlinks, `..`,
/proc/self/root). Under any rule, a --mount or --network value with quotes or
line breaks is refused (engines disagree on how to read it), and so is non-ASCII
where the engines fold case (Go's folding is not Python's). Where a rule depends
on where a bind leads, no bind may be swappable (swappable_binds): its source not
inside what a container can write, no link on a writable one's path; the module
judges the binds again just before each container starts.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Set, Tuple

from mender_docker.imageref import ImageReferenceError, normalise_host, parse_image_reference
from mender_docker.module.errors import ConfigError, DeploymentError
from mender_docker.runargs import GRAMMARS, RunArgs, Use
from mender_docker.spec import PlannedContainer

DENY_KEY = "deny_run_args"
ALLOW_KEY = "allow_run_args"
REGISTRIES_KEY = "allowed_registries"

# Everything a container could use to take over, or read the secrets of, the
# device it runs on.
DANGEROUS: Tuple[str, ...] = (
    "--privileged",
    "--pid=host",
    "--network=host",
    "--ipc=host",
    "--uts=host",
    "--userns=host",
    "--cgroupns=host",
    "--pod",  # podman: joins the namespaces of a pod
    "--pod-id-file",
    *(
        f"--cap-add={cap}"
        for cap in (
            "ALL",
            "SYS_ADMIN",
            "SYS_MODULE",
            "SYS_RAWIO",
            "SYS_PTRACE",
            "SYS_BOOT",
            "DAC_READ_SEARCH",
            "BPF",
            "PERFMON",
            "SYS_TIME",
            "MAC_ADMIN",
            "MAC_OVERRIDE",
            "SYSLOG",
            "AUDIT_CONTROL",
            "LINUX_IMMUTABLE",
        )
    ),  # fmt: skip
    "--device",
    "--device-cgroup-rule",
    "--gpus",
    "--security-opt=unconfined",
    "--seccomp-policy",  # podman: a seccomp profile the image chooses
    "--use-api-socket",
    "--volumes-from",
    "--link",  # copies another container's environment (its secrets)
    "--secret",  # podman: any secret of the engine's store, other applications' too
    "--hosts-file",  # podman 5: reads a device file
    "--health-log-destination",  # podman 5: writes a device directory
    "--oom-score-adj",  # negative values only: the OOM killer takes the device instead
    "--env-file",  # reads a device file into the container (e.g. /etc/shadow)
    "--env-host",  # podman: the module's whole environment
    "--authfile",  # podman: reads a device file (registry credentials)
    "--decryption-key",
    "--cert-dir",
    "--preserve-fds",  # podman: hands the container the module's open files
    "--preserve-fd",
    "--sdnotify",
    "--pidfile",  # podman: writes a device file as root
    "--conmon-pidfile",
    "--rootfs",  # podman: a host directory as the container's root
    "--init-path",  # a host binary run in the container
    "--cgroup-parent",
    "--runtime",
    "--log-opt=path",  # podman k8s-file: writes a device file
    "--log-opt=syslog-address",  # any socket of the device (unix://, unixgram://)
    "--log-opt=fluentd-address",
    "--log-opt=splunk-url",
    "volume-opt",
    "bind-relative",
    # read or written, these give away the device: its kernel and processes,
    # the engines' and the update client's sockets and state, its secrets
    *(
        f"bind={path}"
        for path in (
            "/",
            "/proc",
            "/sys",
            "/dev",
            "/run",
            "/root",
            "/home",
            "/etc/shadow",
            "/etc/gshadow",
            "/etc/sudoers",
            "/etc/sudoers.d",
            "/etc/ssh",
            "/etc/mender",
            "/etc/docker",
            "/etc/containers",
            "/var/lib/mender",
            "/data/mender",
            "/var/lib/docker",
            "/var/lib/containerd",
            "/var/lib/containers",
            "/usr/share/mender",
        )
    ),  # fmt: skip
    # written, these change what the device runs
    *(
        f"bind-rw={path}"
        for path in (
            "/etc",
            "/usr",
            "/bin",
            "/sbin",
            "/lib",
            "/lib32",
            "/lib64",
            "/libx32",
            "/boot",
            # what runs as root on its own: named too, as /etc/systemd and the like are
            # often links into a writable partition (rule paths are also resolved)
            "/var/spool/cron",
            "/etc/crontab",
            "/etc/cron.d",
            "/etc/cron.hourly",
            "/etc/cron.daily",
            "/etc/cron.weekly",
            "/etc/cron.monthly",
            "/etc/systemd",
            "/lib/systemd",
            "/usr/lib/systemd",
            "/etc/init.d",
            "/etc/profile.d",
            "/etc/ld.so.preload",
            "/etc/ld.so.conf",
            "/etc/ld.so.conf.d",
            "/etc/ld.so.cache",
            "/etc/modprobe.d",
        )
    ),  # fmt: skip
)
PRESETS: Dict[str, Tuple[str, ...]] = {"dangerous": DANGEROUS, "default": DANGEROUS}

# Ordinary application settings: what `allow_run_args = safe` lets through.
# Options with a value condition are checked in _safe_problem.
SAFE: FrozenSet[str] = frozenset(
    (
        "add-host", "blkio-weight", "cap-drop", "cpu-period", "cpu-quota", "cpu-shares",
        "cpus", "cpuset-cpus", "cpuset-mems", "dns", "dns-option", "dns-search", "domainname",
        "entrypoint", "env", "env-merge", "expose", "group-add", "health-cmd",
        "health-interval", "health-on-failure", "health-retries", "health-start-interval",
        "health-start-period", "health-startup-cmd", "health-startup-interval",
        "health-startup-retries", "health-startup-success", "health-startup-timeout",
        "health-timeout", "hostname", "http-proxy", "init", "interactive", "ip", "ip6",
        "label", "log-driver", "log-opt", "mac-address", "memory", "memory-reservation",
        "memory-swap", "memory-swappiness", "mount", "network", "network-alias", "no-healthcheck",
        "no-hosts", "pids-limit", "platform", "publish", "publish-all", "pull", "quiet",
        "read-only", "read-only-tmpfs", "restart", "shm-size", "sig-proxy", "stop-signal",
        "stop-timeout", "tmpfs", "tty", "tz", "ulimit", "umask", "unsetenv", "user", "volume",
        "workdir",
    )
)  # fmt: skip
SAFE_LOG_DRIVERS = frozenset(("json-file", "local", "journald", "k8s-file", "none"))
SAFE_LOG_OPTS = frozenset(("max-size", "max-file", "compress", "mode", "max-buffer-size", "tag"))
NAMESPACE_OPTIONS = frozenset(("pid", "network", "ipc", "uts", "userns", "cgroupns"))
_FALSE = "false"
_OPTION_RE = re.compile(r"^[a-z][a-z0-9-]*$")
_HOST_RE = re.compile(r"^(?:[a-z0-9.-]+|\[[0-9a-f:]+\])(?::[0-9]+)?$")
_NETWORK_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_DOCKER_NETWORK_CSV_RE = re.compile(r"\w+=\w+(,\w+=\w+)*")  # docker/cli opts/network.go
# `positional` was a rule before positional arguments were refused on every device
_SPECIAL = ("bind-relative", "volume-opt", "positional")
MAX_RULES_TEXT = 64 * 1024

_REASONS = {
    "privileged": "full access to the host's devices and kernel",
    "namespace": "joins the host's or another container's namespace",
    "pod": "joins the namespaces of a pod",
    "pod-id-file": "joins the namespaces of a pod",
    "cap-add": "grants a kernel capability",
    "device": "exposes a host device",
    "gpus": "exposes a host device",
    "device-cgroup-rule": "allows creating host devices",
    "security-opt": "loosens the container's confinement",
    "seccomp-policy": "loosens the container's confinement",
    "use-api-socket": "hands the container the engine's API socket",
    "volumes-from": "inherits another container's mounts",
    "link": "copies another container's environment",
    "secret": "reads a secret of the engine's store",
    "hosts-file": "reads a device file",
    "health-log-destination": "writes a device directory",
    "oom-score-adj": "makes the kernel's OOM killer spare the container at the device's expense",
    "non-ascii": "non-ASCII in a value the engine case-folds or splits: Go and Python fold "
    "it differently (İ is i to the engine)",
    "bind-symlink": "a symbolic link in a bind source: the engine follows it when the "
    "container starts, so what is bound is not what was checked",
    "bind-swap": "a bind source inside a directory a container can write: that container "
    "could swap a directory on its path for a symbolic link before this one starts",
    "env-file": "reads a device file",
    "authfile": "reads a device file",
    "decryption-key": "reads a device file",
    "cert-dir": "reads a device file",
    "env-host": "copies the module's environment into the container",
    "preserve-fds": "hands the container the module's open files",
    "preserve-fd": "hands the container the module's open files",
    "sdnotify": "hands the container the service manager's socket",
    "pidfile": "writes a device file",
    "conmon-pidfile": "writes a device file",
    "log-opt": "writes a device file",
    "rootfs": "runs a host directory as the container",
    "init-path": "runs a host binary in the container",
    "cgroup-parent": "places the container in a host cgroup",
    "runtime": "chooses another container runtime",
    "bind": "bind-mounts a sensitive host path",
    "bind-rw": "bind-mounts a host path the device runs from, writable",
    "bind-relative": "bind-mounts a path relative to the engine's working directory",
    "volume-opt": "a volume whose driver options can mount any host path",
    "unclear": "quotes or line breaks: engines disagree on how to read it",
    "safe": "not an ordinary application setting (allow_run_args = safe)",
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
            f"container {self.container!r} ({self.image}): {self.argument[:200]!r} "
            f"is denied by rule {self.rule!r} ({self.reason})"
        )


@dataclass(frozen=True)
class Rule:
    text: str  # normalised, as shown in messages
    option: str  # long option name, "bind", "bind-rw", or a _SPECIAL name
    value: Optional[str] = None  # normalised; for binds, the host path


@dataclass(frozen=True)
class Mount:
    """A host path (or volume) a container would get, and the argument asking for it."""

    kind: str  # bind, volume, tmpfs, volumes-from (source: the other container), ...
    source: str  # host path for binds (as written); volume name; "" for none
    readonly: bool
    raw: str
    driver_opts: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Access:
    """What the run arguments give the container on the host (see describe())."""

    privileged: bool
    namespaces: Mapping[str, Tuple[str, ...]]  # option -> modes as the engine keeps them
    cap_add: Tuple[str, ...]  # upper case, no CAP_ prefix
    devices: Tuple[str, ...]  # host device paths (a directory: every device under it)
    security_opts: Tuple[str, ...]
    mounts: Tuple[Mount, ...]
    unclear: Tuple[str, ...]  # arguments nobody can be sure how an engine reads
    links: Tuple[str, ...] = ()  # --link peers (container names): their environment is copied
    log_driver: Optional[str] = None  # the last --log-driver, as written
    non_ascii: Tuple[str, ...] = ()  # arguments with non-ASCII where the engine folds case


@dataclass(frozen=True)
class Policy:
    deny: Tuple[str, ...] = ()
    allow: Optional[Tuple[str, ...]] = None  # None: no allow-list
    allowed_registries: Optional[Tuple[str, ...]] = None
    guards_device: bool = False  # the preset or `safe`: also no bind of `protected` paths
    rules: Tuple[Rule, ...] = field(init=False, repr=False, compare=False)
    allow_rules: Tuple[Rule, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(parse_rule(text) for text in self.deny))
        extra = () if self.allow is None else tuple(parse_rule(t, ALLOW_KEY) for t in self.allow)
        object.__setattr__(self, "allow_rules", extra)
        if self.allowed_registries is not None:
            object.__setattr__(
                self,
                "allowed_registries",
                tuple(_normalise_registry(host) for host in self.allowed_registries),
            )

    @property
    def active(self) -> bool:
        return bool(self.rules) or self.allow is not None or self.allowed_registries is not None

    @property
    def judges_binds(self) -> bool:
        """Does any rule depend on where a bind leads (so that a swapped bind source
        would defeat it)?"""
        return self.guards_device or any(
            rule.option in ("bind", "bind-rw") for rule in (*self.rules, *self.allow_rules)
        )


def policy_from_settings(settings: Mapping[str, str]) -> Policy:
    """Build the policy from configuration values; other keys in `settings` are ignored."""
    deny: List[str] = []
    guards = False
    for item in _split_list(settings.get(DENY_KEY, ""), DENY_KEY):
        if item.lower() == "none":
            continue
        preset = PRESETS.get(item.lower())
        guards = guards or preset is not None
        deny.extend(preset if preset is not None else (item,))
    allow: Optional[Tuple[str, ...]] = None
    if ALLOW_KEY in settings:
        items = _split_list(settings[ALLOW_KEY], ALLOW_KEY)
        if not items or items[0].lower() != "safe":
            raise ConfigError(
                f"{ALLOW_KEY} must start with `safe` (then optional extra rules), "
                f"got {settings[ALLOW_KEY]!r}"
            )
        allow = tuple(items[1:])
        guards = True
    registries: Optional[Tuple[str, ...]] = None
    if REGISTRIES_KEY in settings:
        hosts = _split_list(settings[REGISTRIES_KEY], REGISTRIES_KEY)
        if not hosts:
            raise ConfigError(
                f"{REGISTRIES_KEY} is empty: list registry hosts, or remove the key to allow any"
            )
        registries = tuple(hosts)
    return Policy(
        deny=tuple(dict.fromkeys(deny)),
        allow=allow,
        allowed_registries=registries,
        guards_device=guards,
    )


def parse_rule(text: str, key: str = DENY_KEY) -> Rule:
    """One rule; ConfigError names what is wrong with it."""
    rule = text.strip()
    if rule in _SPECIAL:
        return Rule(rule, rule)
    for kind in ("bind", "bind-rw"):
        if rule.startswith(kind + "="):
            path = rule[len(kind) + 1 :]
            if not path.startswith("/"):
                raise ConfigError(f"{key}: rule {text!r}: {kind}= needs an absolute path")
            path = normalise_path(path)
            return Rule(f"{kind}={path}", kind, path)
    if not rule.startswith("-"):
        raise ConfigError(
            f"{key}: unknown rule {text!r} (expected --option[=value], bind=/path, "
            f"bind-rw=/path, {', '.join(_SPECIAL)} or a preset: {', '.join(PRESETS)})"
        )
    name, value = _split_rule_option(rule)
    if name is None:
        raise ConfigError(f"{key}: rule {text!r} does not name a docker or podman run option")
    if name in ("volume", "mount") and value is not None and value.startswith("/"):
        return parse_rule(f"bind={value}", key)
    option = GRAMMARS[None].long[name]
    if option.kind == "bool" and value is not None:
        if value.lower() != "true":
            raise ConfigError(f"{key}: rule {text!r}: write just --{name} to match it")
        value = None
    if value is not None:
        value = _normalise_value(name, value)
        if not value:
            raise ConfigError(f"{key}: rule {text!r} has an empty value")
        return Rule(f"--{name}={value}", name, value)
    return Rule(f"--{name}", name)


def check(
    planned: Sequence[PlannedContainer],
    policy: Policy,
    protected: Sequence[str] = (),
    resolve: Callable[[str], str] = os.path.realpath,
    writable_elsewhere: Sequence[str] = (),
    lstat: Callable[[str], os.stat_result] = os.lstat,
) -> None:
    """Raise PolicyError listing every violation; return quietly when all is allowed.

    `protected`: more host paths no bind may reach (the module's journal, the
    engine's state, the Mender client's) under the dangerous preset or `safe`;
    `writable_elsewhere`: what existing containers can write through binds."""
    violations = find_violations(planned, policy, protected, resolve, writable_elsewhere, lstat)
    if violations:
        raise PolicyError(violations)


def find_violations(
    planned: Sequence[PlannedContainer],
    policy: Policy,
    protected: Sequence[str] = (),
    resolve: Callable[[str], str] = os.path.realpath,
    writable_elsewhere: Sequence[str] = (),
    lstat: Callable[[str], os.stat_result] = os.lstat,
) -> List[Violation]:
    """Every violation of `planned`. `writable_elsewhere`: host paths containers that
    already exist can write through their binds (see swappable_binds)."""
    found: List[Violation] = []
    rules = policy.rules
    if policy.guards_device:
        rules += tuple(Rule(f"bind={p}", "bind", normalise_path(p)) for p in protected)
    rule_paths: Dict[str, Tuple[str, ...]] = {
        rule.value: _path_forms(rule.value, resolve)
        for rule in (*rules, *policy.allow_rules)
        if rule.option in ("bind", "bind-rw") and rule.value is not None
    }
    # (raw, rule, why) per parsed part: every rule judges one option at a time, so the
    # run_args 1000 containers share are judged once
    judged: Dict[int, Tuple[RunArgs, List[Tuple[str, str, str]]]] = {}
    for item in planned:
        if policy.allowed_registries is not None:
            try:
                host = registry_host(item.image)
                why = f"registry {host!r} is not one of {', '.join(policy.allowed_registries)}"
            except ImageReferenceError as exc:  # spec refuses these first: fail closed
                host, why = "", f"malformed image reference: {exc}"
            if host not in policy.allowed_registries:
                found.append(Violation(item.name, item.image, item.image, REGISTRIES_KEY, why))
        reported: Set[str] = set()
        for part in item.run.leaves():
            if id(part) not in judged:
                judged[id(part)] = (part, _judge(part, policy, rules, resolve, rule_paths))
            for raw, rule, reason in judged[id(part)][1]:
                if raw not in reported:  # one violation per argument
                    reported.add(raw)
                    found.append(Violation(item.name, item.image, raw, rule, reason))
    if policy.judges_binds:
        seen = {(v.container, v.argument) for v in found}  # one violation per argument
        found += [
            v
            for v in swappable_binds(planned, writable_elsewhere, resolve, lstat)
            if (v.container, v.argument) not in seen
        ]
    return found


def swappable_binds(
    planned: Sequence[PlannedContainer],
    writable_elsewhere: Sequence[str] = (),
    resolve: Callable[[str], str] = os.path.realpath,
    lstat: Callable[[str], os.stat_result] = os.lstat,
) -> List[Violation]:
    """Binds whose source could be swapped for a symbolic link between the check
    and the container's start (the engine resolves a bind source only then):

    - a writable bind with a symbolic link on its path (a read-only one is judged
      where the link leads: /etc/localtime is a link on most systems);
    - a source strictly inside a directory some container can write through a bind
      (any container of the release, itself included, or one already on the device):
      that container could replace a directory on the path with a link to `/`.
      Binding the very same directory is fine: nothing on its path is writable.
    """
    writable: Dict[str, str] = {}  # a path form -> who can write it
    for path in writable_elsewhere:
        if path.startswith("/"):
            for form in _path_forms(normalise_path(path), resolve):
                writable.setdefault(form, "a container on the device")
    binds: Dict[Tuple[str, str, str], Tuple[str, bool]] = {}  # (name, image, raw) -> mount
    writers: Dict[str, str] = {}  # a writable source -> the first container writing it
    described: Dict[int, List[Mount]] = {}  # per shared part (run_args of 1000 containers)
    for item in planned:
        for part in item.run.leaves():
            if id(part) not in described:
                described[id(part)] = _absolute_binds(part)
            for mount in described[id(part)]:
                binds[(item.name, item.image, mount.raw)] = (mount.source, mount.readonly)
                if not mount.readonly:
                    writers.setdefault(mount.source, item.name)
    for source, name in writers.items():
        for form in _path_forms(normalise_path(source), resolve, source):
            writable.setdefault(form, f"container {name!r}")
    found: List[Violation] = []
    judged: Dict[Tuple[str, bool], Optional[Tuple[str, str]]] = {}  # -> (rule, detail)
    for (name, image, raw), bind in binds.items():
        if bind not in judged:  # 1000 copies of one bind are judged once
            judged[bind] = _swap_problem(*bind, writable, resolve, lstat)
        problem = judged[bind]
        if problem is not None:
            rule, detail = problem
            found.append(Violation(name, image, raw, rule, f"{detail}: {_REASONS[rule]}"))
    return found


def symlink_on_path(path: str, lstat: Callable[[str], os.stat_result] = os.lstat) -> Optional[str]:
    """The first symbolic link on `path` as the kernel walks it, or None. Walked
    component by component with lstat, so `..` goes up from a real directory, as
    the kernel's walk does once no component is a link; a missing component ends
    the walk (the engine creates the rest as directories)."""
    current = "/"
    for component in path.split("/"):
        if component in ("", "."):
            continue
        if component == "..":
            current = posixpath.dirname(current)
            continue
        current = posixpath.join(current, component)
        try:
            mode = lstat(current).st_mode
        except FileNotFoundError:
            return None
        except OSError:
            return current  # cannot tell: unsafe
        if stat.S_ISLNK(mode):
            return current
    return None


def _absolute_binds(run: RunArgs) -> List[Mount]:
    return [m for m in describe(run).mounts if m.kind == "bind" and m.source.startswith("/")]


def _swap_problem(
    source: str,
    readonly: bool,
    writable: Mapping[str, str],
    resolve: Callable[[str], str],
    lstat: Callable[[str], os.stat_result],
) -> Optional[Tuple[str, str]]:
    forms = _path_forms(normalise_path(source), resolve, source)
    if "/" in writable:
        return "bind-swap", f"it lies inside /, which {writable['/']} can write"
    for form in forms:
        parent = posixpath.dirname(form)
        while parent != "/":  # each directory above it, by lookup: no scan of `writable`
            if parent in writable and parent not in forms:
                return "bind-swap", f"it lies inside {parent}, which {writable[parent]} can write"
            parent = posixpath.dirname(parent)
    if not readonly:
        link = symlink_on_path(source, lstat)
        if link is not None:
            return "bind-symlink", f"{link} is a symbolic link (bind the path it leads to)"
    return None


def _path_forms(
    path: str, resolve: Callable[[str], str], written: Optional[str] = None
) -> Tuple[str, ...]:
    """A host path normalised, and as this device resolves it (`written`: the path
    as the artifact wrote it, if it differs: /a/link/.. is not /a to the kernel)."""
    try:
        resolved = normalise_path(resolve(written or path))
    except (OSError, ValueError):
        resolved = path
    return tuple(dict.fromkeys((path, resolved)))


def _judge(
    run: RunArgs,
    policy: Policy,
    rules: Sequence[Rule],
    resolve: Callable[[str], str],
    rule_paths: Mapping[str, Tuple[str, ...]],
) -> List[Tuple[str, str, str]]:
    access = describe(run)
    paths = _bind_paths(access, resolve)
    out: List[Tuple[str, str, str]] = []
    reported: Set[str] = set()  # one violation per argument: the first rule that hits it

    def report(raw: str, rule: str, reason: str) -> None:
        if raw not in reported:
            reported.add(raw)
            out.append((raw, rule, reason))

    if rules or policy.allow is not None:
        for raw in access.non_ascii:
            report(raw, "non-ascii", _REASONS["non-ascii"])
        for raw in access.unclear:
            report(raw, "unclear", _REASONS["unclear"])
    for rule in rules:
        for raw in _matches(rule, run.uses, access, paths, rule_paths):
            reason = _REASONS.get(
                "namespace" if rule.option in NAMESPACE_OPTIONS else rule.option,
                "denied by the device's policy",
            )
            report(raw, rule.text, reason)
    if policy.allow is not None:
        allowed: Set[str] = set()
        for rule in policy.allow_rules:
            allowed.update(_matches(rule, run.uses, access, paths, rule_paths, within=True))
        by_raw: Dict[str, List[Mount]] = {}
        for mount in access.mounts:
            by_raw.setdefault(mount.raw, []).append(mount)
        for use in run.uses:
            if use.raw not in allowed and _safe_problem(use, by_raw.get(use.raw, [])):
                report(use.raw, "safe", _REASONS["safe"])
    return out


def describe(run: RunArgs) -> Access:
    """What the parsed arguments give the container on the host, read the way the
    engine's CLI reads each value (docker/cli opts/*.go, podman's specgenutil)."""
    namespaces: Dict[str, Tuple[str, ...]] = {}
    caps: List[str] = []
    devices: List[str] = []
    security: List[str] = []
    mounts: List[Mount] = []
    unclear: List[str] = []
    links: List[str] = []
    log_driver: Optional[str] = None
    non_ascii: List[str] = []
    for use in run.uses:
        option, value = use.option, use.value
        if _folds_non_ascii(option, value):
            non_ascii.append(use.raw)
        if option in NAMESPACE_OPTIONS:
            if option == "network" and _has_quotes_or_breaks(value):
                unclear.append(use.raw)
            modes = _namespace_modes(option, value)
            # docker keeps the last --pid/--ipc...; podman's --network may join several
            namespaces[option] = (
                namespaces.get(option, ()) + modes if option == "network" else modes
            )
        elif option == "cap-add":
            caps.extend(_normalise_value("cap-add", cap) for cap in value.split(",") if cap.strip())
        elif option == "device":
            devices.append(value.split(":", 1)[0])
        elif option == "security-opt":
            security.append(_normalise_value("security-opt", value))
        elif option == "volume":
            mounts.append(_volume_mount(use))
        elif option == "mount":
            if _has_quotes_or_breaks(value):
                unclear.append(use.raw)
            mounts.append(_mount_mount(use))
        elif option == "volumes-from":  # every mount of another container
            mounts.append(
                Mount("volumes-from", value.split(":", 1)[0], value.endswith(":ro"), use.raw)
            )
        elif option == "use-api-socket" and value == "true":  # docker >= 28.1: binds it
            mounts.append(Mount("bind", "/var/run/docker.sock", False, use.raw))
        elif option == "link":  # NAME[:ALIAS]
            links.append(value.split(":", 1)[0].strip())
        elif option == "log-driver":
            log_driver = value
    return Access(
        privileged=run.is_set("privileged"),
        namespaces=namespaces,
        cap_add=tuple(caps),
        devices=tuple(devices),
        security_opts=tuple(security),
        mounts=tuple(mounts),
        unclear=tuple(unclear),
        links=tuple(links),
        log_driver=log_driver,
        non_ascii=tuple(non_ascii),
    )


# Options whose whole value the engines fold, split or match against fixed words
# (docker/cli opts/*.go and podman's specgenutil use Go's strings.ToLower/ToUpper,
# which map a few non-ASCII letters to ASCII ones: U+0130 İ to i, U+017F ſ to S).
_FOLDED_OPTIONS = frozenset(
    (*NAMESPACE_OPTIONS, "cap-add", "cap-drop", "security-opt", "device", "device-cgroup-rule",
     "gpus", "restart", "log-driver", "volume-driver", "pod")
)  # fmt: skip
# ... and those whose keys (before `=`) they fold or look up
_FOLDED_KEYS = frozenset(("log-opt", "ulimit", "sysctl", "storage-opt"))
# --mount keys whose values are paths: the engines take them as written
_MOUNT_PATH_KEYS = frozenset(("source", "src", "target", "dst", "destination", "volume-subpath"))


def _folds_non_ascii(option: str, value: str) -> bool:
    """Does a value have non-ASCII where the engine folds case or matches words?
    Refused under any rule: Python's folding is not Go's, so no check could be sure."""
    if value.isascii():
        return False
    if option in _FOLDED_OPTIONS:
        return True
    if option in _FOLDED_KEYS:
        return not value.split("=", 1)[0].isascii()
    if option == "mount":
        for item in value.split(","):
            key, _, text = item.partition("=")
            if not key.isascii() or (key.strip().lower() not in _MOUNT_PATH_KEYS
                                     and not text.isascii()):
                return True
        return False
    if option == "volume":  # SRC:DST:MODES, the modes matched as words
        return not ":".join(value.split(":")[2:]).isascii()
    return False


def registry_host(image: str) -> str:
    """The registry an image reference pulls from, as docker names it (the shared
    grammar, imageref.py), lower-cased: "busybox" and "index.docker.io/busybox" are
    "docker.io"; "registry-1.docker.io/x" is its own registry to docker (no mirrors,
    no library/), so here too. Raises ImageReferenceError for a malformed reference
    (find_violations reports it as a violation)."""
    return parse_image_reference(image).host


def _has_quotes_or_breaks(value: str) -> bool:
    return any(c in value for c in '"\n\r')


def _namespace_modes(option: str, value: str) -> Tuple[str, ...]:
    """The namespace modes a value asks for, lower case: docker's CSV form of
    --network (`name=host,alias=x`, matched anywhere in the value as docker does),
    podman's `mode:options`, and several networks in one value."""
    text = value.strip()  # as the engine keeps it: `--ipc HOST` is no host mode to docker
    if option == "network" and _DOCKER_NETWORK_CSV_RE.search(text):
        text = text.lower()  # docker lower-cases its CSV form
        names = [
            field.partition("=")[2].strip()
            for field in text.split(",")
            if field.partition("=")[0].strip() == "name"
        ]
        return tuple(names) or (text,)
    if option == "network":
        return tuple(part.strip() for part in text.split(",")) or (text,)
    return (text,)


def _is_shared_namespace(mode: str) -> bool:
    """Judged case-blind: stricter than either engine."""
    mode = mode.strip().strip('"').lower()
    return mode == "host" or mode.startswith(("host:", "ns:", "container:"))


def _volume_mount(use: Use) -> Mount:
    """-v SRC:DST[:OPTS], -v DST (an anonymous volume)."""
    parts = use.value.split(":")
    if len(parts) < 2:
        return Mount("volume", "", False, use.raw)
    source = parts[0]
    options = set(parts[2].split(",")) if len(parts) > 2 else set()
    # z/Z relabel and podman's U chown change the host files, shared propagation
    # lets the container's mounts appear on the host: all count as writes
    writes = options & {"rw", "z", "Z", "U", "shared", "rshared"}
    readonly = bool(options & {"ro", "O"}) and not writes
    if source.startswith("/") or source.startswith(".") or "/" in source:
        return Mount("bind", source, readonly, use.raw)
    return Mount("volume", source, readonly, use.raw)


def _mount_mount(use: Use) -> Mount:
    """--mount type=bind,src=/x,dst=/y,ro (docker/cli opts/mount.go; podman alike)."""
    kind = "volume"  # both engines' default type
    source = ""
    readonly = False
    writes = False
    driver_opts: List[str] = []
    for item in use.value.strip().split(","):
        key, eq, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        truth = not eq or value.lower() in ("1", "true", "t")
        if key == "type":
            kind = value.lower()
        elif key in ("source", "src"):
            source = value
        elif key in ("readonly", "ro"):
            readonly = truth
        elif key == "rw":
            writes = writes or truth
        elif key in ("relabel", "z", "u", "chown", "idmap") or (
            key == "bind-propagation" and "shared" in value.lower()
        ):
            writes = True
        elif key == "volume-opt":
            driver_opts.append(value)
    if kind == "glob":  # podman: every host path the pattern matches
        source = re.split(r"[*?\[]", source, maxsplit=1)[0]
        kind = "bind"
    return Mount(kind, source, readonly and not writes, use.raw, tuple(driver_opts))


def _bind_paths(access: Access, resolve: Callable[[str], str]) -> Dict[str, Tuple[str, ...]]:
    """For each bind's raw argument, its host source as written (normalised) and as
    the kernel resolves it here; N copies of one argument count once (else quadratic)."""
    out: Dict[str, Tuple[str, ...]] = {}
    for mount in access.mounts:
        if mount.kind != "bind" or not mount.source.startswith("/") or mount.raw in out:
            continue
        out[mount.raw] = _path_forms(normalise_path(mount.source), resolve, mount.source)
    return out


def _matches(
    rule: Rule,
    uses: Sequence[Use],
    access: Access,
    paths: Mapping[str, Tuple[str, ...]],
    rule_paths: Mapping[str, Tuple[str, ...]],
    within: bool = False,
) -> List[str]:
    """The raw arguments `rule` hits; `within`: binds only at or inside the rule's
    path (an allow rule must not let a bind of `/` through), and every item of a
    list value allowed (podman splits `--cap-add=A,B`). A rule's path counts as
    written and as resolved here, like a bind's source."""
    if rule.option in ("bind", "bind-rw"):
        forms = rule_paths.get(rule.value or "") or (rule.value or "/",)
        hits: Dict[str, None] = {}
        for m in access.mounts:
            if m.raw not in paths or m.raw in hits or (rule.option == "bind-rw" and m.readonly):
                continue
            sources = paths[m.raw]
            if within:
                hit = all(any(_path_within(f, s) for f in forms) for s in sources)
            else:
                hit = any(_path_hits(f, s) for f in forms for s in sources)
            if hit:
                hits[m.raw] = None
        return list(hits)
    if rule.option == "bind-relative":
        return [m.raw for m in access.mounts if m.kind == "bind" and not m.source.startswith("/")]
    if rule.option == "volume-opt":
        return [m.raw for m in access.mounts if m.driver_opts]
    found: List[str] = []
    for use in uses:
        if use.option != rule.option or use.value == _FALSE:
            continue
        if rule.option == "oom-score-adj" and rule.value is None and not _negative(use.value):
            continue  # a positive one only makes the container the OOM killer's first choice
        if rule.value is None or _value_hits(rule, use.value, within):
            found.append(use.raw)
    return found


def _negative(value: str) -> bool:
    try:
        return int(value.strip()) < 0
    except ValueError:
        return True  # the engine refuses it; judged as the worst case


def _value_hits(rule: Rule, value: str, within: bool = False) -> bool:
    if rule.option == "cap-add":
        caps = [_normalise_value("cap-add", cap) for cap in value.split(",") if cap.strip()]
        match = all if within else any
        return bool(caps) and match(cap == rule.value for cap in caps)
    if rule.option == "security-opt" and rule.value == "unconfined":
        key = _normalise_value("security-opt", value).split("=", 1)[0]
        return key != "no-new-privileges"
    if rule.option in NAMESPACE_OPTIONS and rule.value == "host":
        return any(_is_shared_namespace(mode) for mode in _namespace_modes(rule.option, value))
    if rule.option == "log-opt":
        return value.split("=", 1)[0].strip().lower() == rule.value
    return _normalise_value(rule.option, value) == rule.value


def _path_hits(path: str, source: str) -> bool:
    """Does a bind of `source` reach `path`: the same, inside it, or above it?"""
    if path == "/":
        return source == "/"
    if source == path or source == "/" or source.startswith(path + "/"):
        return True
    # a directory above the path exposes it; /var/run may be a real directory
    aliases = (path, "/var" + path) if path == "/run" or path.startswith("/run/") else (path,)
    return any(alias.startswith(source + "/") for alias in aliases)


def _path_within(path: str, source: str) -> bool:
    return source == path or source.startswith(path.rstrip("/") + "/")


def _safe_problem(use: Use, mine: Sequence[Mount]) -> bool:
    """Is this use outside the `safe` allow-list? `mine`: the mounts it asks for."""
    option, value = use.option, use.value
    if option not in SAFE:
        return use.value != _FALSE or GRAMMARS[None].long[option].kind != "bool"
    if option == "env":
        return "=" not in value  # `-e NAME` copies the module's own environment
    if option == "network":
        return (
            any(
                not _NETWORK_NAME_RE.match(mode) or _is_shared_namespace(mode)
                for mode in _namespace_modes("network", value)
            )
            or _DOCKER_NETWORK_CSV_RE.search(value) is not None
        )
    if option in ("volume", "mount"):
        return any(
            m.kind not in ("volume", "tmpfs") or m.driver_opts or "volume-driver" in value
            for m in mine
        )
    if option == "log-driver":
        return value.strip() not in SAFE_LOG_DRIVERS
    if option == "log-opt":
        return value.split("=", 1)[0].strip() not in SAFE_LOG_OPTS
    return False


def normalise_path(path: str) -> str:
    norm = re.sub(r"^/+", "/", posixpath.normpath(path))
    if norm == "/var/run" or norm.startswith("/var/run/"):
        norm = "/run" + norm[len("/var/run") :]
    return norm


def _normalise_value(option: str, value: str) -> str:
    value = value.strip()
    if option in NAMESPACE_OPTIONS:
        return value.lower()
    if option == "cap-add":
        upper = value.strip().upper()
        return upper[4:] if upper.startswith("CAP_") else upper
    if option == "security-opt":
        key, sep, rest = value.partition("=")
        if not sep:  # the old spelling: seccomp:unconfined, label:disable
            key, sep, rest = value.partition(":")
        return f"{key.lower()}={rest.lower()}" if sep else value.lower()
    if option == "log-opt":
        return value.lower()
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
    grammar = GRAMMARS[None]
    option = None
    if head.startswith("--") and _OPTION_RE.match(head[2:]):
        option = grammar.lookup(head[2:])
    elif len(head) == 2:
        option = grammar.short.get(head[1])
    if option is None:
        return None, None
    return option.name, None if value is None else value.strip()


def _normalise_registry(host: str) -> str:
    """A configured host as registry_host names it: lower case, docker.io for its
    alias index.docker.io (registry-1.docker.io is another registry to docker)."""
    host = normalise_host(host.strip())
    if not _HOST_RE.match(host):
        raise ConfigError(f"{REGISTRIES_KEY}: {host!r} is not a registry host[:port]")
    return host


def _split_list(text: str, key: str) -> List[str]:
    if len(text) > MAX_RULES_TEXT:
        raise ConfigError(f"{key}: more than {MAX_RULES_TEXT} characters")
    return [item.strip() for item in text.split(",") if item.strip()]
