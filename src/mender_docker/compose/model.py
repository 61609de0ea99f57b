"""A Compose project as `docker compose config` normalizes it: frozen, typed, tuples.

Everything here is already interpolated, defaulted and validated by the loader:
short and long syntaxes are one form, sizes are bytes, durations are seconds,
relative bind paths are absolute; `deploy.resources` and `deploy.restart_policy`
are applied as Compose applies them to the container (mem_limit, cpus, pids_limit,
mem_reservation, restart). Mappings (environment, labels, sysctls, options)
are tuples of pairs sorted by key; lists keep the file's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

Pairs = Tuple[Tuple[str, str], ...]


class ComposeError(ValueError):
    """A Compose file we cannot read or will not deploy: one line naming the file,
    the key and the service (or the top-level key)."""


@dataclass(frozen=True)
class Port:
    target: int
    published: Optional[str]  # "8080", a range "8000-8001", or None for an engine-chosen port
    host_ip: Optional[str]
    protocol: str  # "tcp" | "udp" | "sctp"


@dataclass(frozen=True)
class Mount:
    type: str  # "volume" | "bind" | "tmpfs"
    # volume: the volume's key in the file (not project-prefixed), None for an anonymous one;
    # bind: an absolute host path (relative ones resolved against the file's directory);
    # tmpfs: None
    source: Optional[str]
    target: str
    read_only: bool
    bind_create_host_path: bool  # short syntax binds: True (compose creates a missing path)
    volume_nocopy: bool
    tmpfs_size: Optional[int]  # bytes
    bind_propagation: Optional[str] = None  # rprivate, private, rshared, shared, rslave, slave
    bind_selinux: Optional[str] = None  # "z" (shared) or "Z" (private)
    written: Optional[str] = None  # a bind's source as the file wrote it (after interpolation)


@dataclass(frozen=True)
class ServiceFile:
    """A secret or config a service mounts (its `secrets:`/`configs:` entry)."""

    source: str  # the top-level secret's or config's key
    target: Optional[str]  # as Compose prints it: a short secret's is /run/secrets/<source>
    uid: Optional[str]
    gid: Optional[str]
    mode: Optional[int]


@dataclass(frozen=True)
class FileSource:
    """A top-level secret or config: a file, an environment variable, inline content."""

    key: str
    name: str
    external: bool
    file: Optional[str]  # absolute (a relative one resolved against the project directory)
    written: Optional[str]  # `file` as the Compose file wrote it
    environment: Optional[str]
    content: Optional[str]


@dataclass(frozen=True)
class NetworkAttachment:
    name: str  # the network's key in the file ("default" when the service names none)
    aliases: Tuple[str, ...]
    ipv4_address: Optional[str]
    ipv6_address: Optional[str]


@dataclass(frozen=True)
class Dependency:
    service: str
    condition: str  # service_started | service_healthy | service_completed_successfully
    restart: bool
    required: bool


@dataclass(frozen=True)
class Healthcheck:
    # ("CMD", arg...), ("CMD-SHELL", "command line"), ("NONE",); None: the image's test
    test: Optional[Tuple[str, ...]]
    interval: Optional[float]  # seconds, None: the engine's default
    timeout: Optional[float]
    start_period: Optional[float]
    start_interval: Optional[float]
    retries: Optional[int]
    disable: bool


@dataclass(frozen=True)
class Logging:
    driver: Optional[str]
    options: Pairs


@dataclass(frozen=True)
class Service:
    name: str
    image: str
    command: Optional[Tuple[str, ...]]  # None: the image's; () : explicitly empty
    entrypoint: Optional[Tuple[str, ...]]
    # env_file entries inlined (compose's precedence: environment wins); sorted by name;
    # None: `KEY` without value and not set on the workstation (compose passes nothing)
    environment: Tuple[Tuple[str, Optional[str]], ...]
    ports: Tuple[Port, ...]
    volumes: Tuple[Mount, ...]
    tmpfs: Tuple[str, ...]  # "path[:options]"
    networks: Tuple[NetworkAttachment, ...]  # empty when network_mode is set
    network_mode: Optional[str]  # "host", "none", "bridge", "service:NAME", "container:NAME"
    depends_on: Tuple[Dependency, ...]
    healthcheck: Optional[Healthcheck]
    restart: Optional[str]
    user: Optional[str]
    working_dir: Optional[str]
    hostname: Optional[str]
    domainname: Optional[str]
    labels: Pairs
    logging: Optional[Logging]
    read_only: bool
    privileged: bool
    cap_add: Tuple[str, ...]
    cap_drop: Tuple[str, ...]
    devices: Tuple[str, ...]  # "host:container:permissions"
    mem_limit: Optional[int]  # bytes
    mem_reservation: Optional[int]  # bytes
    cpus: Optional[float]
    stop_grace_period: Optional[float]  # seconds
    stop_signal: Optional[str]
    init: Optional[bool]
    pid: Optional[str]
    ipc: Optional[str]
    security_opt: Tuple[str, ...]
    sysctls: Pairs
    ulimits: Tuple[Tuple[str, int, int], ...]  # (name, soft, hard), sorted by name
    extra_hosts: Tuple[str, ...]  # "host:ip", one per address
    dns: Tuple[str, ...]
    expose: Tuple[str, ...]  # "port[-port][/protocol]"
    shm_size: Optional[int]  # bytes
    profiles: Tuple[str, ...]
    tty: bool
    stdin_open: bool
    platform: Optional[str]  # "os/arch[/variant]", None: the generator's default
    container_name: Optional[str] = None  # None: Compose's "<project>-<service>-1"
    build: bool = False  # has `build:`; image "" when it names none
    pids_limit: Optional[int] = None
    links: Tuple[str, ...] = ()  # "service[:alias]": a dependency, reached by name anyway
    secrets: Tuple[ServiceFile, ...] = ()
    configs: Tuple[ServiceFile, ...] = ()
    runtime: Optional[str] = None
    snapshot: bool = False  # `x-mender-snapshot: true`: snapshot its volumes at an update


@dataclass(frozen=True)
class IpamPool:
    subnet: Optional[str]
    ip_range: Optional[str]
    gateway: Optional[str]
    aux_addresses: Pairs


@dataclass(frozen=True)
class Ipam:
    driver: Optional[str]
    config: Tuple[IpamPool, ...]
    options: Pairs


@dataclass(frozen=True)
class Network:
    key: str
    name: str  # the engine's name: "<project>_<key>" unless `name:` is set or it is external
    external: bool
    driver: Optional[str]
    driver_opts: Pairs
    labels: Pairs
    internal: bool
    attachable: bool
    enable_ipv6: Optional[bool]
    ipam: Optional[Ipam]


@dataclass(frozen=True)
class Volume:
    key: str
    name: str  # the engine's name: "<project>_<key>" unless `name:` is set or it is external
    external: bool
    driver: Optional[str]
    driver_opts: Pairs
    labels: Pairs


@dataclass(frozen=True)
class Project:
    name: str
    services: Tuple[Service, ...]  # the ones the profiles enable, in file order
    # the ones an enabled service uses: declared ones in file order, then an implicit default
    networks: Tuple[Network, ...]
    volumes: Tuple[Volume, ...]  # the ones an enabled service mounts
    secrets: Tuple[FileSource, ...] = ()  # the ones an enabled service mounts
    configs: Tuple[FileSource, ...] = ()
