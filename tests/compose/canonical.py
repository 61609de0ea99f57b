"""One comparable form for our `Project` and for `docker compose config --format json`.

Both sides become plain dicts: mappings as dicts, unordered lists (ports, extra_hosts)
sorted, durations in seconds, sizes in bytes, defaults left out. The tool's output
escapes every `$` as `$$` (so it can be read again); that is undone here. A key of
the tool's output this file does not know is an error, so nothing is compared away.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Set

from mender_docker.compose.model import FileSource, Mount, Project, Service, ServiceFile
from mender_docker.compose.units import parse_duration, parse_ram


def _drop_defaults(d: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, False, (), [], {}, "")}


# --- ours --------------------------------------------------------------------------------


def from_project(project: Project) -> Dict[str, Any]:
    return {
        "name": project.name,
        "services": {s.name: _service(s) for s in project.services},
        "networks": {
            n.key: _drop_defaults({
                "name": n.name,
                "external": n.external,
                "driver": n.driver,
                "driver_opts": dict(n.driver_opts),
                "labels": dict(n.labels),
                "internal": n.internal,
                "attachable": n.attachable,
                "enable_ipv6": n.enable_ipv6,
                "ipam": None if n.ipam is None else _drop_defaults({
                    "driver": n.ipam.driver,
                    "config": [
                        _drop_defaults({
                            "subnet": p.subnet, "ip_range": p.ip_range, "gateway": p.gateway,
                            "aux_addresses": dict(p.aux_addresses),
                        })
                        for p in n.ipam.config
                    ],
                    "options": dict(n.ipam.options),
                }),
            })
            for n in project.networks
        },
        "volumes": {
            v.key: _drop_defaults({
                "name": v.name,
                "external": v.external,
                "driver": v.driver,
                "driver_opts": dict(v.driver_opts),
                "labels": dict(v.labels),
            })
            for v in project.volumes
        },
        "secrets": {f.key: _file_source(f) for f in project.secrets},
        "configs": {f.key: _file_source(f) for f in project.configs},
    }


def _file_source(f: FileSource) -> Dict[str, Any]:
    return _drop_defaults({"name": f.name, "external": f.external, "file": f.file,
                           "environment": f.environment, "content": f.content})


def _service_file(f: ServiceFile) -> Dict[str, Any]:
    return _drop_defaults({"source": f.source, "target": f.target, "uid": f.uid,
                           "gid": f.gid, "mode": f.mode})


def _mount(m: Mount) -> Dict[str, Any]:
    return _drop_defaults({
        "type": m.type,
        "source": m.source,
        "target": m.target,
        "read_only": m.read_only,
        "create_host_path": m.bind_create_host_path,
        "nocopy": m.volume_nocopy,
        "tmpfs_size": m.tmpfs_size,
        "propagation": m.bind_propagation,
        "selinux": m.bind_selinux,
    })


def _service(s: Service) -> Dict[str, Any]:
    hc = s.healthcheck
    return _drop_defaults({
        "image": s.image,
        "command": None if s.command is None else list(s.command) or "[]",
        "entrypoint": None if s.entrypoint is None else list(s.entrypoint) or "[]",
        "environment": dict(s.environment),
        "ports": sorted(
            (p.host_ip or "", p.published or "", p.target, p.protocol) for p in s.ports
        ),
        "volumes": [_mount(m) for m in s.volumes],
        "tmpfs": list(s.tmpfs),
        "networks": {
            a.name: _drop_defaults({
                "aliases": sorted(a.aliases),
                "ipv4_address": a.ipv4_address,
                "ipv6_address": a.ipv6_address,
            })
            for a in s.networks
        },
        "network_mode": s.network_mode,
        "depends_on": {
            d.service: (d.condition, d.restart, d.required) for d in s.depends_on
        },
        "healthcheck": None if hc is None else _drop_defaults({
            "test": None if hc.test is None else list(hc.test),
            "interval": hc.interval,
            "timeout": hc.timeout,
            "start_period": hc.start_period,
            "start_interval": hc.start_interval,
            "retries": hc.retries,
            "disable": hc.disable,
        }) or "{}",
        "restart": s.restart,
        "user": s.user,
        "working_dir": s.working_dir,
        "hostname": s.hostname,
        "domainname": s.domainname,
        "labels": dict(s.labels),
        "logging": None if s.logging is None else _drop_defaults({
            "driver": s.logging.driver, "options": dict(s.logging.options),
        }),
        "read_only": s.read_only,
        "privileged": s.privileged,
        "cap_add": list(s.cap_add),
        "cap_drop": list(s.cap_drop),
        "devices": list(s.devices),
        "mem_limit": s.mem_limit,
        "mem_reservation": s.mem_reservation,
        "cpus": s.cpus,
        "stop_grace_period": s.stop_grace_period,
        "stop_signal": s.stop_signal,
        "init": None if s.init is None else str(s.init),
        "pid": s.pid,
        "ipc": s.ipc,
        "security_opt": list(s.security_opt),
        "sysctls": dict(s.sysctls),
        "ulimits": {name: (soft, hard) for name, soft, hard in s.ulimits},
        "extra_hosts": sorted(s.extra_hosts),
        "dns": list(s.dns),
        "expose": list(s.expose),
        "shm_size": s.shm_size,
        "profiles": list(s.profiles),
        "tty": s.tty,
        "stdin_open": s.stdin_open,
        "platform": s.platform,
        "container_name": s.container_name,
        "build": s.build,
        "pids_limit": s.pids_limit,
        "links": list(s.links),
        "runtime": s.runtime,
        "secrets": [_service_file(f) for f in s.secrets],
        "configs": [_service_file(f) for f in s.configs],
    })


# --- the tool's --------------------------------------------------------------------------


def _unescape(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [_unescape(v) for v in value]
    if isinstance(value, dict):
        return {k: _unescape(v) for k, v in value.items()}
    return value


class UnknownKey(AssertionError):
    pass


def _only(d: Dict[str, Any], keys: Set[str], where: str) -> None:
    extra = {k for k in d if not k.startswith("x-")} - keys
    if extra:
        raise UnknownKey(f"{where}: keys the comparison does not know: {sorted(extra)}")


def _seconds(value: Optional[str]) -> Optional[float]:
    return None if value is None else parse_duration(value)


def _size(value: Any) -> Optional[int]:
    if value is None:
        return None
    return int(value) if isinstance(value, int) else parse_ram(str(value))


def from_tool(config: Dict[str, Any]) -> Dict[str, Any]:
    config = _unescape(config)
    _only(config, {"name", "services", "networks", "volumes", "secrets", "configs"}, "project")
    services_raw: Dict[str, Any] = config.get("services") or {}
    enabled = set(services_raw)
    services = {name: _tool_service(name, s, enabled) for name, s in services_raw.items()}
    used_networks = {n for s in services.values() for n in s.get("networks", {})}
    used_volumes = {
        m["source"] for s in services.values() for m in s.get("volumes", [])
        if m["type"] == "volume" and m.get("source")
    }
    networks = {}
    for key, net in (config.get("networks") or {}).items():
        if key not in used_networks:
            continue
        _only(net, {"name", "external", "driver", "driver_opts", "labels", "internal",
                    "attachable", "enable_ipv6", "ipam"}, f"networks.{key}")
        ipam = net.get("ipam") or None
        if ipam is not None:
            _only(ipam, {"driver", "config", "options"}, f"networks.{key}.ipam")
            ipam = _drop_defaults({
                "driver": ipam.get("driver"),
                "config": [_drop_defaults(dict(c)) for c in ipam.get("config") or []],
                "options": ipam.get("options") or {},
            }) or None
        networks[key] = _drop_defaults({
            "name": net.get("name"),
            "external": net.get("external", False),
            "driver": net.get("driver"),
            "driver_opts": {k: str(v) for k, v in (net.get("driver_opts") or {}).items()},
            "labels": net.get("labels") or {},
            "internal": net.get("internal", False),
            "attachable": net.get("attachable", False),
            "enable_ipv6": net.get("enable_ipv6"),
            "ipam": ipam,
        })
    volumes = {}
    for key, vol in (config.get("volumes") or {}).items():
        if key not in used_volumes:
            continue
        _only(vol, {"name", "external", "driver", "driver_opts", "labels"}, f"volumes.{key}")
        volumes[key] = _drop_defaults({
            "name": vol.get("name"),
            "external": vol.get("external", False),
            "driver": vol.get("driver"),
            "driver_opts": {k: str(v) for k, v in (vol.get("driver_opts") or {}).items()},
            "labels": vol.get("labels") or {},
        })
    files: Dict[str, Dict[str, Any]] = {}
    for kind in ("secrets", "configs"):
        files[kind] = {}
        for key, body in (config.get(kind) or {}).items():
            _only(body, {"name", "external", "file", "environment", "content"}, f"{kind}.{key}")
            files[kind][key] = _drop_defaults({
                "name": body.get("name"), "external": body.get("external", False),
                "file": body.get("file"), "environment": body.get("environment"),
                "content": body.get("content"),
            })
    return {"name": config["name"], "services": services, "networks": networks,
            "volumes": volumes, **files}


def _tool_files(items: Any, where: str) -> List[Dict[str, Any]]:
    out = []
    for item in items or []:
        _only(item, {"source", "target", "uid", "gid", "mode"}, where)
        mode = item.get("mode")
        out.append(_drop_defaults({
            "source": item["source"], "target": item.get("target"), "uid": item.get("uid"),
            "gid": item.get("gid"), "mode": int(mode, 8) if isinstance(mode, str) else mode,
        }))
    return out


_SERVICE_KEYS = {
    "image", "command", "entrypoint", "environment", "ports", "volumes", "tmpfs", "networks",
    "network_mode", "depends_on", "healthcheck", "restart", "user", "working_dir", "hostname",
    "domainname", "labels", "logging", "read_only", "privileged", "cap_add", "cap_drop",
    "devices", "mem_limit", "mem_reservation", "cpus", "stop_grace_period", "stop_signal",
    "init", "pid", "ipc", "security_opt", "sysctls", "ulimits", "extra_hosts", "dns", "expose",
    "shm_size", "profiles", "tty", "stdin_open", "platform", "scale",
    "container_name", "build", "deploy", "pids_limit", "links", "runtime",
    "secrets", "configs",
}


def _apply_deploy(s: Dict[str, Any], where: str) -> Dict[str, Any]:
    """deploy.resources and deploy.restart_policy as Compose's container creation applies
    them (compose's getDeployResources, getRestartPolicy)."""
    deploy = s.get("deploy")
    if not deploy:
        return s
    s = dict(s)
    _only(deploy, {"mode", "replicas", "labels", "resources", "restart_policy", "placement",
                   "update_config", "rollback_config", "endpoint_mode"}, f"{where}.deploy")
    resources = deploy.get("resources") or {}
    limits = resources.get("limits") or {}
    reservations = resources.get("reservations") or {}
    if limits.get("memory"):
        s["mem_limit"] = limits["memory"]
    if limits.get("cpus"):
        s["cpus"] = float(limits["cpus"])
    if limits.get("pids"):
        s["pids_limit"] = limits["pids"]
    if reservations.get("memory"):
        s["mem_reservation"] = reservations["memory"]
    policy = deploy.get("restart_policy")
    if policy is not None:
        condition = policy.get("condition")
        restart = {"none": "no", "any": "always", None: "no"}.get(condition, condition)
        if restart == "on-failure" and policy.get("max_attempts"):
            restart += f":{policy['max_attempts']}"
        s["restart"] = restart
    return s


def _tool_mount(v: Dict[str, Any], where: str) -> Dict[str, Any]:
    _only(v, {"type", "source", "target", "read_only", "bind", "volume", "tmpfs"}, where)
    bind = v.get("bind") or {}
    volume = v.get("volume") or {}
    tmpfs = v.get("tmpfs") or {}
    _only(bind, {"create_host_path", "propagation", "selinux"}, f"{where}.bind")
    _only(volume, {"nocopy"}, f"{where}.volume")
    _only(tmpfs, {"size"}, f"{where}.tmpfs")
    return _drop_defaults({
        "type": v["type"],
        "source": v.get("source"),
        "target": v["target"],
        "read_only": v.get("read_only", False),
        "create_host_path": bind.get("create_host_path", False),
        "nocopy": volume.get("nocopy", False),
        "tmpfs_size": _size(tmpfs.get("size")),
        "propagation": bind.get("propagation"),
        "selinux": bind.get("selinux"),
    })


def _tool_service(name: str, s: Dict[str, Any], enabled: Set[str]) -> Dict[str, Any]:
    where = f"services.{name}"
    _only(s, _SERVICE_KEYS, where)
    s = _apply_deploy(s, where)
    if s.get("scale", 1) != 1:
        raise UnknownKey(f"{where}: scale {s['scale']}")
    hc = s.get("healthcheck")
    if hc is not None:
        _only(hc, {"test", "interval", "timeout", "start_period", "start_interval", "retries",
                   "disable"}, f"{where}.healthcheck")
    logging = s.get("logging")
    depends: Dict[str, Any] = {}
    for dep, d in (s.get("depends_on") or {}).items():
        _only(d, {"condition", "restart", "required"}, f"{where}.depends_on.{dep}")
        if dep not in enabled and not d.get("required", True):
            continue  # we drop an optional dependency on a disabled service (compose ignores it)
        depends[dep] = (d["condition"], d.get("restart", False), d.get("required", True))
    networks: Dict[str, Any] = {}
    for net, body in (s.get("networks") or {}).items():
        body = body or {}
        _only(body, {"aliases", "ipv4_address", "ipv6_address"}, f"{where}.networks.{net}")
        networks[net] = _drop_defaults({
            "aliases": sorted(body.get("aliases") or []),
            "ipv4_address": body.get("ipv4_address"),
            "ipv6_address": body.get("ipv6_address"),
        })
    ports = []
    for p in s.get("ports") or []:
        _only(p, {"mode", "host_ip", "target", "published", "protocol"}, f"{where}.ports")
        ports.append((p.get("host_ip", ""), p.get("published", ""), p["target"],
                      p.get("protocol", "tcp")))
    ulimits: Dict[str, Any] = {}
    for key, u in (s.get("ulimits") or {}).items():
        ulimits[key] = (u, u) if isinstance(u, int) else (u["soft"], u["hard"])
    devices: List[str] = []
    for d in s.get("devices") or []:
        _only(d, {"source", "target", "permissions"}, f"{where}.devices")
        devices.append(f"{d['source']}:{d.get('target') or d['source']}:"
                       f"{d.get('permissions') or 'rwm'}")
    init = s.get("init")
    command = s.get("command")
    entrypoint = s.get("entrypoint")
    return _drop_defaults({
        "image": s.get("image"),
        "command": None if command is None else command or "[]",
        "entrypoint": None if entrypoint is None else entrypoint or "[]",
        "environment": s.get("environment") or {},
        "ports": sorted(ports),
        "volumes": [_tool_mount(v, f"{where}.volumes") for v in s.get("volumes") or []],
        "tmpfs": s.get("tmpfs") or [],
        "networks": networks,
        "network_mode": s.get("network_mode"),
        "depends_on": depends,
        "healthcheck": None if hc is None else _drop_defaults({
            "test": hc.get("test"),
            "interval": _seconds(hc.get("interval")),
            "timeout": _seconds(hc.get("timeout")),
            "start_period": _seconds(hc.get("start_period")),
            "start_interval": _seconds(hc.get("start_interval")),
            "retries": hc.get("retries"),
            "disable": hc.get("disable", False),
        }) or "{}",
        "restart": s.get("restart"),
        "user": s.get("user"),
        "working_dir": s.get("working_dir"),
        "hostname": s.get("hostname"),
        "domainname": s.get("domainname"),
        "labels": s.get("labels") or {},
        "logging": None if logging is None else _drop_defaults({
            "driver": logging.get("driver"),
            "options": {k: "" if v is None else str(v)
                        for k, v in (logging.get("options") or {}).items()},
        }),
        "read_only": s.get("read_only", False),
        "privileged": s.get("privileged", False),
        "cap_add": s.get("cap_add") or [],
        "cap_drop": s.get("cap_drop") or [],
        "devices": devices,
        "mem_limit": _size(s.get("mem_limit")),
        "mem_reservation": _size(s.get("mem_reservation")),
        "cpus": s.get("cpus"),
        "stop_grace_period": _seconds(s.get("stop_grace_period")),
        "stop_signal": s.get("stop_signal"),
        "init": None if init is None else str(init),
        "pid": s.get("pid"),
        "ipc": s.get("ipc"),
        "security_opt": s.get("security_opt") or [],
        "sysctls": s.get("sysctls") or {},
        "ulimits": ulimits,
        "extra_hosts": sorted(h.replace("=", ":", 1) for h in s.get("extra_hosts") or []),
        "dns": s.get("dns") or [],
        "expose": s.get("expose") or [],
        "shm_size": _size(s.get("shm_size")),
        "profiles": s.get("profiles") or [],
        "tty": s.get("tty", False),
        "stdin_open": s.get("stdin_open", False),
        "platform": s.get("platform"),
        "container_name": s.get("container_name"),
        "build": "build" in s,
        "pids_limit": s.get("pids_limit"),
        "links": s.get("links") or [],
        "runtime": s.get("runtime"),
        "secrets": _tool_files(s.get("secrets"), f"{where}.secrets"),
        "configs": _tool_files(s.get("configs"), f"{where}.configs"),
    })
