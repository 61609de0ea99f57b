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
from typing import List, Mapping, Tuple

from mender_docker.compose.model import ComposeError, Mount, Network, Project, Service, Volume


@dataclass(frozen=True)
class Application:
    """What build_metadata needs of a Compose project, one entry per service."""

    project: str
    images: Tuple[str, ...]
    services: Tuple[str, ...]
    container_args: Tuple[str, ...]
    commands: Tuple[str, ...]
    depends_on: Tuple[str, ...]
    networks: Tuple[str, ...]
    volumes: Tuple[str, ...]
    snapshots: Tuple[int, ...] = ()  # per service: 1 with `x-mender-snapshot: true`


def application(project: Project) -> Application:
    networks = {net.key: net for net in project.networks}
    volumes = {vol.key: vol for vol in project.volumes}
    for net in project.networks:
        if net.external:
            continue
        if (
            net.driver not in (None, "bridge")
            or net.driver_opts
            or net.internal
            or net.attachable
            or net.enable_ipv6
            or net.ipam is not None
            or net.labels
        ):
            raise ComposeError(
                f"network {net.key!r}: the device creates plain bridge networks only "
                "(no driver, driver_opts, internal, attachable, enable_ipv6, ipam or labels)"
            )
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
    for service in project.services:
        args.append(shlex.join(service_args(project.name, service, networks, volumes)))
        command = list(service.entrypoint[1:]) if service.entrypoint else []
        command += list(service.command or ())
        commands.append(shlex.join(command))
        depends.append(
            ",".join(
                f"{d.service}:{d.condition}" + (":restart" if d.restart else "")
                for d in service.depends_on
            )
        )
    used_networks = [
        networks[a.name].name
        for s in project.services
        for a in s.networks
        if not s.network_mode and not networks[a.name].external
    ]
    used_volumes = [
        volumes[m.source].name
        for s in project.services
        for m in s.volumes
        if m.type == "volume" and m.source and not volumes[m.source].external
    ]
    return Application(
        project=project.name,
        images=tuple(s.image for s in project.services),
        services=tuple(s.name for s in project.services),
        container_args=tuple(args),
        commands=tuple(commands),
        depends_on=tuple(depends),
        networks=tuple(dict.fromkeys(used_networks)),
        volumes=tuple(dict.fromkeys(used_volumes)),
        snapshots=tuple(int(s.snapshot) for s in project.services),
    )


def service_args(
    project: str,
    service: Service,
    networks: Mapping[str, Network],
    volumes: Mapping[str, Volume],
) -> List[str]:
    """The service's settings as `docker run` options."""
    out: List[str] = [f"--restart={service.restart or 'no'}"]  # Compose's default: no
    where = f"service {service.name!r}"
    if service.platform:
        raise ComposeError(f"{where}: platform: use docker-artifact-gen --platform")
    for key, value in service.environment:
        if value is None:
            raise ComposeError(f"{where}: environment {key!r} has no value on this workstation")
        out.append(f"--env={key}={value}")
    for port in service.ports:
        host = f"{port.host_ip}:" if port.host_ip else ""
        published = f"{port.published}:" if port.published else ("" if not host else ":")
        out.append(f"--publish={host}{published}{port.target}/{port.protocol}")
    out += [f"--expose={port}" for port in service.expose]
    for mount in service.volumes:
        out.append(_mount(service, mount, volumes))
    out += [f"--tmpfs={path}" for path in service.tmpfs]
    if service.network_mode:
        out.append(f"--network={_peer(project, service.network_mode)}")
    else:
        aliases = [service.name]
        for attachment in service.networks:
            out.append(f"--network={networks[attachment.name].name}")
            aliases += list(attachment.aliases)
            if attachment.ipv4_address:
                out.append(f"--ip={attachment.ipv4_address}")
            if attachment.ipv6_address:
                out.append(f"--ip6={attachment.ipv6_address}")
        out += [f"--network-alias={alias}" for alias in dict.fromkeys(aliases)]
    out += _healthcheck(service)
    for flag, value in (
        ("user", service.user),
        ("workdir", service.working_dir),
        ("hostname", service.hostname),
        ("domainname", service.domainname),
        ("stop-signal", service.stop_signal),
        ("pid", service.pid and _peer(project, service.pid)),
        ("ipc", service.ipc and _peer(project, service.ipc)),
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
    out += [f"--security-opt={opt}" for opt in service.security_opt]
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
    if service.shm_size is not None:
        out.append(f"--shm-size={service.shm_size}")
    if service.stop_grace_period is not None:
        out.append(f"--stop-timeout={int(round(service.stop_grace_period))}")
    return out


def _peer(project: str, mode: str) -> str:
    """`service:NAME` (network_mode, pid, ipc) is that service's container."""
    if mode.startswith("service:"):
        return f"container:{project}-{mode.split(':', 1)[1]}-1"
    return mode


def _mount(service: Service, mount: Mount, volumes: Mapping[str, Volume]) -> str:
    ro = ",readonly" if mount.read_only else ""
    if mount.type == "bind" and mount.bind_create_host_path:  # -v creates a missing source
        return f"--volume={mount.source}:{mount.target}{':ro' if mount.read_only else ''}"
    if mount.type == "bind":
        return f"--mount=type=bind,src={mount.source},dst={mount.target}{ro}"
    if mount.type == "tmpfs":
        size = f",tmpfs-size={mount.tmpfs_size}" if mount.tmpfs_size else ""
        return f"--mount=type=tmpfs,dst={mount.target}{size}"
    if mount.type != "volume":
        raise ComposeError(f"service {service.name!r}: volumes of type {mount.type!r}")
    nocopy = ",volume-nocopy" if mount.volume_nocopy else ""
    if not mount.source:
        return f"--mount=type=volume,dst={mount.target}{ro}{nocopy}"
    name = volumes[mount.source].name
    return f"--mount=type=volume,src={name},dst={mount.target}{ro}{nocopy}"


def _healthcheck(service: Service) -> List[str]:
    check = service.healthcheck
    if check is None:
        return []
    if check.disable or (check.test is not None and check.test[:1] == ("NONE",)):
        return ["--no-healthcheck=true"]
    out: List[str] = []
    if check.test:
        kind, rest = check.test[0], list(check.test[1:])
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
