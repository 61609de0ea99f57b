"""A Compose project as the meta-data's containers: the generator's side of issue 11.

Each service becomes one container: its image (resolved to a digest like any
other), its settings as `docker run` options (one `--option=value` each, so
the device parses exactly what is written here and judges it with its
policy), its command, and its `depends_on`. The project adds the engine names
of the networks to create and of the named volumes to create when missing.
What the device cannot do the way Compose does is refused here with one line
naming the service and the key (see ComposeError in the compose package).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import List, Mapping, Optional, Tuple

from mender_docker.compose.model import (
    ComposeError,
    FileSource,
    Mount,
    Network,
    Project,
    Service,
    Volume,
)
from mender_docker.spec import NETWORK_OPTION_RE


@dataclass(frozen=True)
class Application:
    """What build_metadata needs of a Compose project, one entry per service."""

    project: str
    images: Tuple[str, ...]
    services: Tuple[str, ...]
    names: Tuple[str, ...]  # container_name, "" for Compose's "<project>-<service>-1"
    health_exec: Tuple[str, ...]  # an exec-form check's argv, shlex-joined; "" for none
    notes: Tuple[str, ...]  # for the user, on stderr: what runs differently on some device
    container_args: Tuple[str, ...]
    commands: Tuple[str, ...]
    depends_on: Tuple[str, ...]
    networks: Tuple[str, ...]
    volumes: Tuple[str, ...]
    network_options: Tuple[str, ...]  # per entry of `networks`: `network create` options
    snapshots: Tuple[int, ...] = ()  # per service: 1 with `x-mender-snapshot: true`


def application(project: Project, local_builds: bool = False) -> Application:
    """The project's containers. `local_builds` (--resolver docker): a service with
    `build:` and no `image:` runs the image `docker compose build` tagged for it."""
    networks = {net.key: net for net in project.networks}
    volumes = {vol.key: vol for vol in project.volumes}
    options = {net.key: network_options(net) for net in project.networks if not net.external}
    for vol in project.volumes:
        if not vol.external and (
            vol.driver not in (None, "local") or vol.driver_opts or vol.labels
        ):
            raise ComposeError(
                f"volume {vol.key!r}: the device creates local volumes only "
                "(no driver, driver_opts or labels)"
            )
    args: List[str] = []
    commands: List[str] = []
    depends: List[str] = []
    containers = {s.name: container_name(project.name, s) for s in project.services}
    files = {
        "secrets": {f.key: f for f in project.secrets},
        "configs": {f.key: f for f in project.configs},
    }
    notes: List[str] = [
        f"service {s.name!r}: healthcheck: on docker an exec-form check runs through"
        " /bin/sh -c (docker's CLI takes no exec form): the image needs /bin/sh"
        for s in project.services
        if exec_health_check(s)
    ]
    notes += [
        f"service {s.name!r}: {kind}: {f.source!r}: uid, gid and mode are ignored for a"
        " bind-mounted file, as Compose ignores them"
        for s in project.services
        for kind, entries in (("secrets", s.secrets), ("configs", s.configs))
        for f in entries
        if f.uid is not None or f.gid is not None or f.mode is not None
    ]
    notes += [
        f"service {s.name!r}: environment: {key} is not set on this workstation: left unset"
        for s in project.services
        for key, value in s.environment
        if value is None
    ]
    for service in project.services:
        args.append(
            shlex.join(service_args(project.name, service, networks, volumes, containers, files))
        )
        command = list(service.entrypoint[1:]) if service.entrypoint else []
        command += list(service.command or ())
        commands.append(shlex.join(command))
        depends.append(
            ",".join(
                f"{d.service}:{d.condition}" + (":restart" if d.restart else "")
                for d in service.depends_on
            )
        )
    used_keys = [
        a.name
        for s in project.services
        for a in s.networks
        if not s.network_mode and not networks[a.name].external
    ]
    used_keys = list(dict.fromkeys(used_keys))
    used_volumes = [
        volumes[m.source].name
        for s in project.services
        for m in s.volumes
        if m.type == "volume" and m.source and not volumes[m.source].external
    ]
    return Application(
        project=project.name,
        images=tuple(_image(project.name, s, local_builds) for s in project.services),
        services=tuple(s.name for s in project.services),
        names=tuple(s.container_name or "" for s in project.services),
        health_exec=tuple(exec_health_check(s) for s in project.services),
        notes=tuple(notes),
        container_args=tuple(args),
        commands=tuple(commands),
        depends_on=tuple(depends),
        networks=tuple(networks[key].name for key in used_keys),
        network_options=tuple(options[key] for key in used_keys),
        volumes=tuple(dict.fromkeys(used_volumes)),
        snapshots=tuple(int(s.snapshot) for s in project.services),
    )


def network_options(net: Network) -> str:
    """The `network create` options of a Compose network the device creates (a bridge);
    what a bridge cannot have, or the device does not pass, is refused."""
    where = f"network {net.key!r}"
    if net.driver not in (None, "bridge"):
        raise ComposeError(f"{where}: driver {net.driver!r}: the device creates bridge networks")
    if net.attachable or net.labels:
        raise ComposeError(f"{where}: attachable (Swarm) and labels are not supported")
    out: List[str] = ["--internal"] if net.internal else []
    if net.enable_ipv6:
        out.append("--ipv6")
    out += [f"--opt={key}={value}" for key, value in net.driver_opts]
    if net.ipam is not None:
        if net.ipam.driver not in (None, "default") or net.ipam.options:
            raise ComposeError(f"{where}: ipam: only the default driver, without options")
        for pool in net.ipam.config:
            pairs = (("subnet", pool.subnet), ("gateway", pool.gateway),
                     ("ip-range", pool.ip_range))  # fmt: skip
            out += [f"--{name}={value}" for name, value in pairs if value]
            out += [f"--aux-address={name}={ip}" for name, ip in pool.aux_addresses]
    for arg in out:
        if not NETWORK_OPTION_RE.fullmatch(arg):
            raise ComposeError(f"{where}: {arg!r}: not an option the device passes")
    return shlex.join(out)


def service_args(
    project: str,
    service: Service,
    networks: Mapping[str, Network],
    volumes: Mapping[str, Volume],
    containers: Optional[Mapping[str, str]] = None,
    files: Optional[Mapping[str, Mapping[str, FileSource]]] = None,
) -> List[str]:
    """The service's settings as `docker run` options; `containers`: each service's
    container name (for `service:NAME` references)."""
    peers = dict(containers or {})
    out: List[str] = [f"--restart={service.restart or 'no'}"]  # Compose's default: no
    where = f"service {service.name!r}"
    if service.platform:
        raise ComposeError(f"{where}: platform: use docker-artifact-gen --platform")
    # as Compose: a name without a value, unset on the workstation, is not passed
    out += [f"--env={key}={value}" for key, value in service.environment if value is not None]
    for port in service.ports:
        host = f"{port.host_ip}:" if port.host_ip else ""
        published = f"{port.published}:" if port.published else ("" if not host else ":")
        out.append(f"--publish={host}{published}{port.target}/{port.protocol}")
    out += [f"--expose={port}" for port in service.expose]
    for index, mount in enumerate(service.volumes):
        out.append(_mount(f"{where}: volumes[{index}]", mount, volumes))
    for at, file_mount in _file_mounts(service, files or {}):
        out.append(_mount(f"{where}: {at}", file_mount, volumes))
    out += [f"--tmpfs={path}" for path in service.tmpfs]
    if service.network_mode:
        out.append(f"--network={_peer(project, service.network_mode, peers)}")
    else:
        # Compose: the container's and the service's names on every network, each
        # network's own aliases on it
        own = peers.get(service.name) or container_name(project, service)
        per_network = [
            list(dict.fromkeys([own, service.name, *attachment.aliases]))
            for attachment in service.networks
        ]
        shared = len(service.networks) == 1 or all(not a.aliases for a in service.networks)
        for attachment, aliases in zip(service.networks, per_network):
            name = networks[attachment.name].name
            if shared:
                out.append(f"--network={name}")
            else:  # docker's CSV form: the device gives each network its own aliases
                for text in (name, *aliases):
                    if "," in text or "=" in text:
                        raise ComposeError(f"{where}: networks: {text!r} has a comma or '='")
                out.append(f"--network=name={name}" + "".join(f",alias={a}" for a in aliases))
            if attachment.ipv4_address:
                out.append(f"--ip={attachment.ipv4_address}")
            if attachment.ipv6_address:
                out.append(f"--ip6={attachment.ipv6_address}")
        if shared and per_network:
            out += [f"--network-alias={alias}" for alias in per_network[0]]
    out += _healthcheck(service)
    for flag, value in (
        ("user", service.user),
        ("workdir", service.working_dir),
        ("hostname", service.hostname),
        ("domainname", service.domainname),
        ("stop-signal", service.stop_signal),
        ("runtime", service.runtime),
        ("pid", service.pid and _peer(project, service.pid, peers)),
        ("ipc", service.ipc and _peer(project, service.ipc, peers)),
    ):
        if value:
            out.append(f"--{flag}={value}")
    if service.entrypoint is not None:
        out.append(f"--entrypoint={service.entrypoint[0] if service.entrypoint else ''}")
    out += [f"--label={key}={value}" for key, value in service.labels]
    if service.logging is not None:
        if service.logging.driver:
            out.append(f"--log-driver={service.logging.driver}")
        out += [f"--log-opt={key}={value}" for key, value in service.logging.options]
    if service.read_only:
        out.append("--read-only=true")
    if service.stdin_open:
        out.append("--interactive=true")
    # Compose gives no terminal unless asked: say so, or the module's `tty = true` would
    out.append(f"--tty={'true' if service.tty else 'false'}")
    if service.privileged:
        out.append("--privileged=true")
    if service.init is not None:
        out.append(f"--init={'true' if service.init else 'false'}")
    out += [f"--cap-add={cap}" for cap in service.cap_add]
    out += [f"--cap-drop={cap}" for cap in service.cap_drop]
    out += [f"--device={device}" for device in service.devices]
    for opt in service.security_opt:
        key, _, value = opt.replace(":", "=", 1).partition("=")
        is_file = value not in ("unconfined", "builtin")
        if key == "seccomp" and is_file and not value.startswith("/"):
            raise ComposeError(
                f"{where}: security_opt: {opt!r}: the engine reads the profile on the device:"
                " give the absolute path it has there (workstation files do not travel)"
            )
        out.append(f"--security-opt={opt}")
    out += [f"--sysctl={key}={value}" for key, value in service.sysctls]
    out += [f"--ulimit={name}={soft}:{hard}" for name, soft, hard in service.ulimits]
    out += [f"--add-host={host}" for host in service.extra_hosts]
    out += [f"--dns={server}" for server in service.dns]
    if service.mem_limit is not None:
        out.append(f"--memory={service.mem_limit}")
    if service.mem_reservation is not None:
        out.append(f"--memory-reservation={service.mem_reservation}")
    if service.cpus is not None:
        out.append(f"--cpus={service.cpus:g}")
    if service.pids_limit is not None:
        out.append(f"--pids-limit={service.pids_limit}")
    if service.shm_size is not None:
        out.append(f"--shm-size={service.shm_size}")
    if service.stop_grace_period is not None:
        out.append(f"--stop-timeout={int(round(service.stop_grace_period))}")
    return out


def container_name(project: str, service: Service) -> str:
    """The container's name on the device: `container_name`, else Compose's own."""
    return service.container_name or f"{project}-{service.name}-1"


def _peer(project: str, mode: str, peers: Mapping[str, str]) -> str:
    """`service:NAME` (network_mode, pid, ipc) is that service's container."""
    if mode.startswith("service:"):
        other = mode.split(":", 1)[1]
        return f"container:{peers.get(other) or f'{project}-{other}-1'}"
    return mode


def _file_mounts(
    service: Service, files: Mapping[str, Mapping[str, FileSource]]
) -> List[Tuple[str, Mount]]:
    """The service's secrets and configs as Compose mounts them outside Swarm: the file,
    read-only, at /run/secrets/<name> (a secret) or /<name> (a config)."""
    out: List[Tuple[str, Mount]] = []
    for kind, entries in (("secrets", service.secrets), ("configs", service.configs)):
        for index, entry in enumerate(entries):
            at = f"{kind}[{index}]"
            source = files[kind][entry.source]
            if source.file is None:
                how = "external" if source.external else (
                    "from an environment variable" if source.environment else "inline content"
                )
                raise ComposeError(
                    f"service {service.name!r}: {at}: {entry.source!r} is {how}: only a"
                    " `file:` the device has can be mounted (the device needs the file)"
                )
            target = entry.target or entry.source
            if not target.startswith("/"):
                target = ("/run/secrets/" if kind == "secrets" else "/") + target
            mount = Mount("bind", source.file, target, True, False, False, None,
                          written=source.written)  # fmt: skip
            out.append((at, mount))
    return out


def _image(project: str, service: Service, local_builds: bool) -> str:
    if service.image:
        return service.image  # with `build:` too: the image it names is the one to run
    if local_builds:
        return f"{project}-{service.name}"  # what `docker compose build` tags
    raise ComposeError(
        f"service {service.name!r}: build: the device does not build images: build and push"
        " it and name it in `image:`, or generate with --resolver docker to take the image"
        f" `docker compose build` made ({project}-{service.name})"
    )


def _mount(where: str, mount: Mount, volumes: Mapping[str, Volume]) -> str:
    if mount.type == "bind":
        _check_bind_source(where, mount)
    for path in (mount.source or "", mount.target):
        if "," in path and (mount.type != "bind" or not _as_volume_flag(mount)):
            raise ComposeError(
                f"{where}: {path!r}: a path with a comma cannot be passed in the engine's"
                " --mount (comma-separated): rename it"
            )
        if ":" in path and mount.type == "bind" and _as_volume_flag(mount):
            raise ComposeError(
                f"{where}: {path!r}: a path with a colon cannot be passed in the engine's"
                " --volume (colon-separated): rename it"
            )
    ro = ",readonly" if mount.read_only else ""
    if mount.type == "bind" and _as_volume_flag(mount):
        options = ["ro"] if mount.read_only else []
        options += [o for o in (mount.bind_selinux, mount.bind_propagation) if o]
        suffix = f":{','.join(options)}" if options else ""
        return f"--volume={mount.source}:{mount.target}{suffix}"
    if mount.type == "bind":
        propagation = mount.bind_propagation and f",bind-propagation={mount.bind_propagation}"
        return f"--mount=type=bind,src={mount.source},dst={mount.target}{ro}{propagation or ''}"
    if mount.type == "tmpfs":
        size = f",tmpfs-size={mount.tmpfs_size}" if mount.tmpfs_size else ""
        return f"--mount=type=tmpfs,dst={mount.target}{size}"
    if mount.type != "volume":
        raise ComposeError(f"{where}: volumes of type {mount.type!r}")
    nocopy = ",volume-nocopy" if mount.volume_nocopy else ""
    if not mount.source:
        return f"--mount=type=volume,dst={mount.target}{ro}{nocopy}"
    name = volumes[mount.source].name
    return f"--mount=type=volume,src={name},dst={mount.target}{ro}{nocopy}"


def _as_volume_flag(mount: Mount) -> bool:
    """`--volume` creates a missing source (short syntax) and takes an SELinux label;
    `--mount` does neither."""
    return mount.bind_create_host_path or mount.bind_selinux is not None


def _check_bind_source(where: str, mount: Mount) -> None:
    """A bind source must be a path the device has: written absolute."""
    written = mount.written if mount.written is not None else mount.source or ""
    if written.startswith("~"):
        raise ComposeError(
            f"{where}: bind source {written!r}: `~` is the home directory on this workstation,"
            " not on the device: write the absolute path the device has"
        )
    if not written.startswith("/"):
        raise ComposeError(
            f"{where}: bind source {written!r} is relative to the project on this workstation:"
            " project files do not travel with the release yet, and the device has no"
            f" {mount.source}: write the absolute path the device has"
        )


def exec_health_check(service: Service) -> str:
    """The argv of the service's exec-form (`CMD`) health check, shlex-joined; "" if none."""
    check = service.healthcheck
    if check is None or check.disable or not check.test or check.test[0] != "CMD":
        return ""
    return shlex.join(check.test[1:])


def _healthcheck(service: Service) -> List[str]:
    check = service.healthcheck
    if check is None:
        return []
    if check.disable or (check.test is not None and check.test[:1] == ("NONE",)):
        return ["--no-healthcheck=true"]
    out: List[str] = []
    if check.test:
        kind, rest = check.test[0], list(check.test[1:])
        if not rest:
            raise ComposeError(f"service {service.name!r}: healthcheck.test: no command")
        out.append(f"--health-cmd={rest[0] if kind == 'CMD-SHELL' else shlex.join(rest)}")
    for flag, seconds in (
        ("interval", check.interval),
        ("timeout", check.timeout),
        ("start-period", check.start_period),
        ("start-interval", check.start_interval),
    ):
        if seconds is not None:
            out.append(f"--health-{flag}={_duration(seconds)}")
    if check.retries is not None:
        out.append(f"--health-retries={check.retries}")
    return out


def _duration(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms" if seconds * 1000 % 1000 else f"{int(seconds)}s"
