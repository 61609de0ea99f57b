"""Read a Compose file the way `docker compose config` does, into `model.Project`.

The steps follow compose-go's loader: the project's environment (the workstation's,
then a `.env` file beside the Compose file for what it lacks), the project name,
variable substitution in every value, then each section read in its short or long
syntax, defaulted and checked; profiles select the services; references
(depends_on, networks, volumes, network_mode) are checked among those.

What Compose accepts but a mender-docker device cannot do is refused with one
line naming the file, the service and the key; for a service the profiles leave
out, only what Compose itself refuses is an error.
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from mender_docker.compose import shellwords
from mender_docker.compose.interpolate import (
    DotenvError,
    InterpolationError,
    parse_dotenv,
    substitute,
)
from mender_docker.compose.merge import merge_files
from mender_docker.compose.model import (
    ComposeError,
    Dependency,
    FileSource,
    Healthcheck,
    Ipam,
    IpamPool,
    Logging,
    Mount,
    Network,
    NetworkAttachment,
    Pairs,
    Port,
    Project,
    Service,
    ServiceFile,
    Volume,
)
from mender_docker.compose.units import go_number, parse_duration, parse_ram
from mender_docker.compose.yamlload import MAX_TEXT, Timestamp, YamlError, load_documents

_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
_KEY_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")

# Service keys Compose knows that a mender-docker device does not do, and why.
_REFUSED: Dict[str, str] = {
    "extends": "not supported: write the service out in full",
    "develop": "compose watch is not supported",
    "external_links": "legacy links are not supported",
    "volumes_from": "not supported: mount the same named volume",
    "pull_policy": "not supported: the device pulls each image by digest before the update",
    "label_file": "not supported: use labels",
    "provider": "provider services are not supported",
    "models": "models are not supported",
    "gpus": "not supported",
    "use_api_socket": "not supported",
    "post_start": "lifecycle hooks are not supported",
    "pre_start": "lifecycle hooks are not supported",
    "pre_stop": "lifecycle hooks are not supported",
}
# The rest of Compose's service keys: accepted by Compose, not (yet) by the device.
_UNSUPPORTED = (
    "annotations attach blkio_config cgroup cgroup_parent cpu_count cpu_percent cpu_period"
    " cpu_quota cpu_rt_period cpu_rt_runtime cpu_shares cpuset credential_spec"
    " device_cgroup_rules dns_opt dns_search group_add isolation mac_address mem_swappiness"
    " memswap_limit oom_kill_disable oom_score_adj pull_refresh_after"
    " storage_opt userns_mode uts"
).split()
_TOP_KEYS = ("version", "name", "services", "networks", "volumes", "secrets", "configs")
_TOP_REFUSED = {
    "include": "not supported: put everything in one file",
    "models": "not supported",
}


def load_project(
    path: Union[str, Sequence[str]],
    project_name: Optional[str] = None,
    profiles: Sequence[str] = (),
    environ: Optional[Mapping[str, str]] = None,
    project_directory: Optional[str] = None,
) -> Project:
    """The project in the Compose file at `path` (or the files, merged in order), as
    `docker compose -f path... config` reads it with `--project-name`/`--profile`/
    `--project-directory` given here and `environ` (default: os.environ) as its
    environment. ComposeError (one line) for anything Compose or we refuse."""
    paths = [path] if isinstance(path, str) else list(path)
    if not paths:
        raise ComposeError("no Compose file given")
    return _Loader(paths, project_name, tuple(profiles), environ, project_directory).load()


def normalize_project_name(name: str) -> str:
    """Compose's normalization: lower case, only [a-z0-9_-], no leading `_` or `-`."""
    return "".join(re.findall(r"[a-z0-9_-]", name.lower())).lstrip("_-")


def _go_clean(path: str) -> str:
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Loader:
    def __init__(
        self,
        paths: List[str],
        project_name: Optional[str],
        profiles: Tuple[str, ...],
        environ: Optional[Mapping[str, str]],
        project_directory: Optional[str],
    ) -> None:
        self.paths = paths
        self.label = " + ".join(paths)
        # relative paths of every file are from the project directory: the first file's
        first_dir = os.path.dirname(os.path.abspath(paths[0]))
        self.workdir = os.path.abspath(project_directory or first_dir)
        self.project_name = project_name
        self.profiles = profiles
        self.environ: Dict[str, str] = dict(os.environ if environ is None else environ)
        self.env: Dict[str, str] = {}

    # --- errors ---------------------------------------------------------------

    def error(self, where: str, message: str) -> ComposeError:
        return ComposeError(_one_line(f"{self.label}: {where}: {message}"))

    # --- the whole file -----------------------------------------------------------

    def load(self) -> Project:
        self.env = self._project_environment()
        raw = merge_files([self._read(path) for path in self.paths])
        name = self._project_name(raw)
        self.env["COMPOSE_PROJECT_NAME"] = name
        data = self._interpolate(raw, "")
        assert isinstance(data, dict)
        if data.get("version") is not None and not isinstance(data["version"], str):
            raise self.error("version", "must be a string")

        networks = self._section(data, "networks", self._network, name)
        volumes = self._section(data, "volumes", self._volume, name)
        self.files: Dict[str, Dict[str, FileSource]] = {
            "secrets": self._section(data, "secrets", self._secret, name),
            "configs": self._section(data, "configs", self._config, name),
        }
        services_raw = data.get("services")
        if services_raw is None:
            services_raw = {}
        if not isinstance(services_raw, dict):
            raise self.error("services", "must be a mapping of service names")
        readers: List[_ServiceReader] = []
        for svc_name, body in services_raw.items():
            if not _KEY_NAME.match(svc_name):
                raise self.error(f"services.{svc_name}", "invalid service name")
            reader = _ServiceReader(self, svc_name)
            reader.read(body)
            readers.append(reader)
        if not readers:
            raise self.error("services", "no service defined")
        return self._project(name, readers, networks, volumes)

    def _read(self, path: str) -> Dict[str, Any]:
        """One file's top-level mapping, as YAML gives it (tags kept for the merge)."""
        try:
            with open(path, encoding="utf-8") as stream:
                text = stream.read(MAX_TEXT + 1)
        except (OSError, UnicodeDecodeError) as exc:
            raise ComposeError(_one_line(f"{path}: cannot read: {exc}")) from None
        try:
            documents = load_documents(text)
        except YamlError as exc:
            raise ComposeError(_one_line(f"{path}: {exc}")) from None
        documents = [d for d in documents if d is not None] or [None]
        if len(documents) > 1:
            raise ComposeError(f"{path}: several YAML documents in one file are not supported")
        raw = documents[0]
        if raw is None or raw == {}:
            raise ComposeError(f"{path}: empty compose file")
        if not isinstance(raw, dict):
            raise ComposeError(f"{path}: top-level object must be a mapping")
        for key in raw:
            if key.startswith("x-") or key in _TOP_KEYS:
                continue
            if key in _TOP_REFUSED:
                raise ComposeError(_one_line(f"{path}: {key}: {_TOP_REFUSED[key]}"))
            raise ComposeError(f"{path}: {key}: unknown top-level key (Compose refuses it too)")
        return raw

    def _project_environment(self) -> Dict[str, str]:
        env = dict(self.environ)
        disable = self.environ.get("COMPOSE_DISABLE_ENV_FILE", "").strip().lower()
        dotenv = os.path.join(self.workdir, ".env")
        if disable not in ("1", "t", "true") and os.path.isfile(dotenv):
            try:
                with open(dotenv, encoding="utf-8") as stream:
                    values = parse_dotenv(stream.read(), self.environ.get)
            except (OSError, UnicodeDecodeError, DotenvError) as exc:
                raise ComposeError(_one_line(f"{dotenv}: {exc}")) from None
            for key, value in values.items():
                env.setdefault(key, value)
        return env

    def _project_name(self, raw: Dict[str, Any]) -> str:
        def imperative(name: str, origin: str) -> str:
            if normalize_project_name(name) != name:
                raise ComposeError(
                    f"{self.label}: invalid project name {name!r} ({origin}): must consist only of"
                    " lowercase alphanumeric characters, hyphens, and underscores as well as"
                    " start with a letter or number"
                )
            return name

        if self.project_name:
            return imperative(self.project_name, "--project-name")
        from_env = self.env.get("COMPOSE_PROJECT_NAME")
        if from_env:
            return imperative(from_env, "COMPOSE_PROJECT_NAME")
        declared = raw.get("name")
        if isinstance(declared, str) and declared:
            name = normalize_project_name(self._substitute(declared, "name"))
            if not name:
                raise self.error("name", "project name must not be empty")
            return name
        name = normalize_project_name(os.path.basename(self.workdir))
        if not name:
            raise ComposeError(
                f"{self.label}: project name must not be empty: the directory"
                f" {os.path.basename(self.workdir)!r} gives none; set `name:` or --project-name"
            )
        return name

    # --- interpolation ------------------------------------------------------------

    def _substitute(self, text: str, where: str) -> str:
        try:
            return substitute(text, self.env.get)
        except InterpolationError as exc:
            raise self.error(where, f"error while interpolating: {exc}") from None

    def _interpolate(self, value: Any, where: str) -> Any:
        if isinstance(value, Timestamp):
            return value
        if isinstance(value, str):
            return self._substitute(value, where or "(top)")
        if isinstance(value, dict):
            return {
                k: self._interpolate(v, f"{where}.{k}" if where else k) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._interpolate(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    # --- top-level networks and volumes --------------------------------------------

    def _section(
        self,
        data: Dict[str, Any],
        key: str,
        reader: Callable[[str, Any, str], Any],
        project: str,
    ) -> Dict[str, Any]:
        section = data.get(key)
        if section is None:
            return {}
        if not isinstance(section, dict):
            raise self.error(key, "must be a mapping")
        out: Dict[str, Any] = {}
        for name, body in section.items():
            if not _KEY_NAME.match(name):
                raise self.error(f"{key}.{name}", "invalid name")
            out[name] = reader(name, body, project)
        return out

    def _external(self, where: str, body: Dict[str, Any], key: str) -> Tuple[bool, Optional[str]]:
        ext = body.get("external")
        if ext is None:
            return False, _opt_str(self, body, "name", where)
        name = _opt_str(self, body, "name", where)
        if isinstance(ext, dict):
            _check_keys(self, ext, ("name",), f"{where}.external")
            ext_name = _opt_str(self, ext, "name", f"{where}.external")
            if ext_name is not None:
                if name is not None and name != ext_name:
                    raise self.error(where, "name and external.name conflict; only use name")
                name = ext_name
            return True, name
        return _bool(self, ext, f"{where}.external"), name

    def _network(self, key: str, body: Any, project: str) -> Network:
        where = f"networks.{key}"
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise self.error(where, "must be a mapping")
        _check_keys(
            self,
            body,
            ("name", "driver", "driver_opts", "ipam", "external", "internal", "attachable",
             "labels", "enable_ipv6"),
            where,
            refused={"enable_ipv4": "not supported"},
        )
        external, name = self._external(where, body, key)
        ipam = None
        if body.get("ipam") is not None:
            ipam = self._ipam(body["ipam"], f"{where}.ipam")
        enable_ipv6 = None
        if "enable_ipv6" in body:
            enable_ipv6 = _bool(self, body["enable_ipv6"], f"{where}.enable_ipv6")
        return Network(
            key=key,
            name=name if name is not None else (key if external else f"{project}_{key}"),
            external=external,
            driver=_opt_str(self, body, "driver", where),
            driver_opts=_options(self, body.get("driver_opts"), f"{where}.driver_opts"),
            labels=_labels(self, body.get("labels"), f"{where}.labels"),
            internal=_bool(self, body.get("internal", False), f"{where}.internal"),
            attachable=_bool(self, body.get("attachable", False), f"{where}.attachable"),
            enable_ipv6=enable_ipv6,
            ipam=ipam,
        )

    def _ipam(self, body: Any, where: str) -> Ipam:
        if not isinstance(body, dict):
            raise self.error(where, "must be a mapping")
        _check_keys(self, body, ("driver", "config", "options"), where)
        pools = []
        config = body.get("config") or []
        if not isinstance(config, list):
            raise self.error(f"{where}.config", "must be a list")
        for i, pool in enumerate(config):
            at = f"{where}.config[{i}]"
            if not isinstance(pool, dict):
                raise self.error(at, "must be a mapping")
            _check_keys(self, pool, ("subnet", "ip_range", "gateway", "aux_addresses"), at)
            aux = pool.get("aux_addresses") or {}
            if not isinstance(aux, dict) or not all(isinstance(v, str) for v in aux.values()):
                raise self.error(f"{at}.aux_addresses", "must be a mapping of names to addresses")
            pools.append(
                IpamPool(
                    subnet=_opt_str(self, pool, "subnet", at),
                    ip_range=_opt_str(self, pool, "ip_range", at),
                    gateway=_opt_str(self, pool, "gateway", at),
                    aux_addresses=tuple(sorted(aux.items())),
                )
            )
        options = body.get("options") or {}
        if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
            raise self.error(f"{where}.options", "must be a mapping of strings")
        return Ipam(
            driver=_opt_str(self, body, "driver", where),
            config=tuple(pools),
            options=tuple(sorted(options.items())),
        )

    def _secret(self, key: str, body: Any, project: str) -> FileSource:
        return self._file_source("secrets", key, body, project)

    def _config(self, key: str, body: Any, project: str) -> FileSource:
        return self._file_source("configs", key, body, project)

    def _file_source(self, kind: str, key: str, body: Any, project: str) -> FileSource:
        """A top-level secret or config: where its content comes from."""
        where = f"{kind}.{key}"
        if not isinstance(body, dict):
            raise self.error(where, "must be a mapping")
        _check_keys(
            self, body,
            ("name", "file", "environment", "content", "external", "labels", "driver",
             "driver_opts", "template_driver"),
            where,
        )  # fmt: skip
        external, name = self._external(where, body, key)
        file = _opt_str(self, body, "file", where)
        return FileSource(
            key=key,
            name=name if name is not None else (key if external else f"{project}_{key}"),
            external=external,
            file=None if file is None else self.host_path(file),
            written=file,
            environment=_opt_str(self, body, "environment", where),
            content=_opt_str(self, body, "content", where),
        )

    def _volume(self, key: str, body: Any, project: str) -> Volume:
        where = f"volumes.{key}"
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise self.error(where, "must be a mapping")
        _check_keys(self, body, ("name", "driver", "driver_opts", "external", "labels"), where)
        external, name = self._external(where, body, key)
        driver = _opt_str(self, body, "driver", where)
        opts = dict(_options(self, body.get("driver_opts"), f"{where}.driver_opts"))
        if driver == "local" and opts.get("o") == "bind" and "device" in opts:
            opts["device"] = self.host_path(opts["device"])
        return Volume(
            key=key,
            name=name if name is not None else (key if external else f"{project}_{key}"),
            external=external,
            driver=driver,
            driver_opts=tuple(sorted(opts.items())),
            labels=_labels(self, body.get("labels"), f"{where}.labels"),
        )

    # --- paths ------------------------------------------------------------------

    def expand_user(self, path: str) -> str:
        if path.startswith("~"):
            home = self.environ.get("HOME")
            if home:
                return _go_clean(posixpath.join(home, path[1:].lstrip("/"))) if path[1:] else home
        return path

    def host_path(self, path: str) -> str:
        """A bind source as compose resolves it: `~` is HOME, relative is from the file's dir."""
        path = self.expand_user(path)
        if path.startswith("/"):
            return path
        return _go_clean(posixpath.join(self.workdir, path))

    # --- the project ------------------------------------------------------------

    def _project(
        self,
        name: str,
        readers: List[_ServiceReader],
        networks: Dict[str, Network],
        volumes: Dict[str, Volume],
    ) -> Project:
        profiles = list(self.profiles)
        if not profiles and self.env.get("COMPOSE_PROFILES"):
            profiles = [p.strip() for p in self.env["COMPOSE_PROFILES"].split(",") if p.strip()]
        enabled = [
            r for r in readers
            if not r.profiles or "*" in profiles or any(p in profiles for p in r.profiles)
        ]
        if not enabled:
            raise self.error("services", "no service is enabled by the profiles given")
        names = {r.name for r in enabled}
        all_names = {r.name for r in readers}
        for reader in enabled:
            if reader.refusal is not None:
                raise reader.refusal
            reader.resolve_environment()  # as compose: env files of enabled services only
        services: List[Service] = []
        used_networks: List[str] = []
        used_volumes: List[str] = []
        used_files: List[Tuple[str, str]] = []
        for reader in enabled:
            where = f"service {reader.name!r}"
            deps: List[Dependency] = []
            for dep in reader.depends_on:
                if dep.service not in names:
                    if dep.service in all_names and not dep.required:
                        continue  # compose ignores an optional dependency on a disabled service
                    raise self.error(where, f"depends on undefined service {dep.service!r}")
                deps.append(dep)
            mode = reader.network_mode
            if mode is not None and mode.startswith("service:"):
                if mode[len("service:") :] not in names:
                    raise self.error(where, f"network_mode {mode!r}: no such service")
            for attachment in reader.networks:
                if attachment.name not in networks and attachment.name != "default":
                    raise self.error(where, f"refers to undefined network {attachment.name!r}")
                used_networks.append(attachment.name)
            for kind in ("secrets", "configs"):
                for entry in reader.fields.get(kind, ()):
                    if entry.source not in self.files[kind]:
                        raise self.error(
                            where, f"refers to undefined {kind[:-1]} {entry.source!r}"
                        )
                    used_files.append((kind, entry.source))
            for mount in reader.volumes:
                if mount.type == "volume" and mount.source:
                    if mount.source not in volumes:
                        raise self.error(where, f"refers to undefined volume {mount.source!r}")
                    used_volumes.append(mount.source)
            mounted: Dict[str, str] = {}
            for i, tmpfs in enumerate(reader.tmpfs):
                target = tmpfs.split(":", 1)[0]
                if target in mounted:
                    raise self.error(where, f"tmpfs[{i}]: target {target} already mounted")
                mounted[target] = f"tmpfs[{i}]"
            for i, mount in enumerate(reader.volumes):
                if mount.target in mounted:
                    raise self.error(
                        where,
                        f"volumes[{i}]: target {mount.target} already mounted as"
                        f" {mounted[mount.target]}",
                    )
                mounted[mount.target] = f"volumes[{i}]"
            services.append(reader.service(tuple(deps)))
        self._check_cycles(services)
        if "default" in used_networks and "default" not in networks:
            networks = dict(networks)
            networks["default"] = Network(
                key="default", name=f"{name}_default", external=False, driver=None,
                driver_opts=(), labels=(), internal=False, attachable=False,
                enable_ipv6=None, ipam=None,
            )
        return Project(
            name=name,
            services=tuple(services),
            networks=tuple(n for k, n in networks.items() if k in used_networks),
            volumes=tuple(v for k, v in volumes.items() if k in used_volumes),
            secrets=tuple(v for k, v in self.files["secrets"].items()
                          if ("secrets", k) in used_files),
            configs=tuple(v for k, v in self.files["configs"].items()
                          if ("configs", k) in used_files),
        )

    def _check_cycles(self, services: List[Service]) -> None:
        graph = {s.name: sorted(d.service for d in s.depends_on) for s in services}
        state: Dict[str, int] = {}

        def visit(node: str, path: List[str]) -> None:
            state[node] = 1
            for child in graph.get(node, ()):
                if state.get(child) == 1:
                    cycle = path[path.index(child) :] + [child]
                    raise self.error("services", "dependency cycle detected: " + " -> ".join(cycle))
                if state.get(child) is None:
                    visit(child, path + [child])
            state[node] = 2

        for node in sorted(graph):
            if state.get(node) is None:
                visit(node, [node])


# --- value readers shared by sections ----------------------------------------------------


def _check_keys(
    ld: _Loader,
    body: Dict[str, Any],
    allowed: Sequence[str],
    where: str,
    refused: Optional[Dict[str, str]] = None,
) -> None:
    for key in body:
        if key in allowed or key.startswith("x-"):
            continue
        if refused and key in refused:
            raise ld.error(f"{where}.{key}", refused[key])
        raise ld.error(f"{where}.{key}", "unknown key")


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and not isinstance(value, Timestamp)


def _show(value: Any) -> str:
    if isinstance(value, Timestamp):
        return f"{str(value)!r}, which YAML reads as a date/time (quote it)"
    return repr(value)


def _opt_str(ld: _Loader, body: Dict[str, Any], key: str, where: str) -> Optional[str]:
    value = body.get(key)
    if value is None:
        return None
    if not _is_str(value):
        raise ld.error(f"{where}.{key}", f"must be a string, not {_show(value)}")
    return str(value)


_TRUE = ("true", "y", "yes", "on")
_FALSE = ("false", "n", "no", "off")


def _bool(ld: _Loader, value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if _is_str(value):
        lower = value.lower()
        if lower in _TRUE:
            return True
        if lower in _FALSE:
            return False
    raise ld.error(where, f"invalid boolean: {value!r}")


def _int(ld: _Loader, value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ld.error(where, f"must be an integer, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if _is_str(value) and re.fullmatch(r"[-+]?[0-9]+", value):
        return int(value)
    raise ld.error(where, f"must be an integer, not {value!r}")


def _scalar_text(ld: _Loader, value: Any, where: str, null: Optional[str] = "") -> Optional[str]:
    """A mapping value as compose prints it: strings as they are, numbers and booleans
    as Go prints them, null as `null` says."""
    if value is None:
        return null
    if _is_str(value):
        return str(value)
    if isinstance(value, (bool, int, float)):
        return go_number(value)
    raise ld.error(where, f"must be a string, number, boolean or null, not {_show(value)}")


def _options(ld: _Loader, value: Any, where: str) -> Pairs:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ld.error(where, "must be a mapping")
    out = []
    for key, item in value.items():
        if item is None or isinstance(item, bool):
            raise ld.error(f"{where}.{key}", "must be a string or a number")
        text = _scalar_text(ld, item, f"{where}.{key}")
        assert text is not None
        out.append((key, text))
    return tuple(sorted(out))


def _list_or_dict(
    ld: _Loader, value: Any, where: str, list_default: Optional[str]
) -> List[Tuple[str, Optional[str]]]:
    """Compose's list_or_dict, deduplicated by key (the last wins, at the first's place)."""
    if value is None:
        return []
    out: Dict[str, Optional[str]] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            out[key] = _scalar_text(ld, item, f"{where}.{key}", null=None)
        return list(out.items())
    if not isinstance(value, list):
        raise ld.error(where, "must be a list or a mapping")
    for i, item in enumerate(value):
        if not _is_str(item):
            raise ld.error(f"{where}[{i}]", f"must be a string, not {_show(item)}")
        key, sep, text = item.partition("=")
        out[key] = text if sep else list_default
    return list(out.items())


def _labels(ld: _Loader, value: Any, where: str) -> Pairs:
    return tuple(sorted((k, v or "") for k, v in _list_or_dict(ld, value, where, "")))


def _str_list(
    ld: _Loader, value: Any, where: str, *, single: bool = False, unique: str = "dedupe"
) -> Tuple[str, ...]:
    """A list of strings (or one string when `single`). unique: "dedupe" drops repeats as
    compose does, "error" refuses them as compose's schema does."""
    if value is None:
        return ()
    if single and _is_str(value):
        return (str(value),)
    if not isinstance(value, list):
        raise ld.error(where, "must be a list of strings" + (" or a string" if single else ""))
    out: List[str] = []
    for i, item in enumerate(value):
        if not _is_str(item):
            raise ld.error(f"{where}[{i}]", f"must be a string, not {_show(item)}")
        if item in out:
            if unique == "error":
                raise ld.error(where, f"{item!r} is listed twice")
            continue
        out.append(str(item))
    return tuple(out)


def _bytes(ld: _Loader, value: Any, where: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ld.error(where, f"must be a size, not {value!r}")
    if isinstance(value, int):
        return value
    if _is_str(value):
        try:
            return parse_ram(value)
        except ValueError as exc:
            raise ld.error(where, str(exc)) from None
    raise ld.error(where, f"must be a size in bytes or a string like '512m', not {value!r}")


def _duration(ld: _Loader, value: Any, where: str) -> Optional[float]:
    if value is None:
        return None
    if not _is_str(value):
        raise ld.error(where, f"must be a duration string like '1m30s', not {value!r}")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ld.error(where, str(exc)) from None


def _unique(items: List[Any], key: Callable[[Any], str]) -> List[Any]:
    """Compose's unicity rule: a later item with the same key replaces the earlier one."""
    out: List[Any] = []
    index: Dict[str, int] = {}
    for item in items:
        k = key(item)
        if k in index:
            out[index[k]] = item
        else:
            index[k] = len(out)
            out.append(item)
    return out


# --- ports -------------------------------------------------------------------------------


def _port_range(text: str) -> Tuple[int, int]:
    if not text:
        raise ValueError("empty string specified for ports")
    if "-" not in text:
        if not re.fullmatch(r"[0-9]+", text) or int(text) > 65535:
            raise ValueError(f"invalid port {text!r}")
        return int(text), int(text)
    parts = text.split("-")
    if not all(re.fullmatch(r"[0-9]+", p) and int(p) <= 65535 for p in parts[:2]):
        raise ValueError(f"invalid port range {text!r}")
    start, end = int(parts[0]), int(parts[1])
    if end < start:
        raise ValueError(f"invalid range specified for ports: {text}")
    return start, end


def parse_port_spec(raw: str) -> List[Port]:
    """A short-syntax port ("[ip:][host[-host]:]container[-container][/proto]"), as Docker."""
    parts = raw.split(":")
    if len(parts) == 1:
        ip, host, container = "", "", parts[0]
    elif len(parts) == 2:
        ip, host, container = "", parts[0], parts[1]
    elif len(parts) == 3:
        ip, host, container = parts
    else:
        ip, host, container = ":".join(parts[:-2]), parts[-2], parts[-1]
    pieces = container.split("/")
    if not container or not pieces[0]:
        proto, container = "", ""
    elif len(pieces) == 1:
        proto = "tcp"
    elif not pieces[1]:
        proto, container = "tcp", pieces[0]
    else:
        proto, container = pieces[1], pieces[0]
    if ip.startswith("["):
        if not ip.endswith("]"):
            raise ValueError(f"invalid ip address {ip!r}")
        ip = ip[1:-1]
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"invalid ip address: {ip}") from None
    if not container:
        raise ValueError(f"no port specified: {raw}<empty>")
    start, end = _port_range(container)
    host_start = host_end = 0
    if host:
        host_start, host_end = _port_range(host)
        if (end - start) != (host_end - host_start) and end != start:
            raise ValueError(
                f"invalid ranges specified for container and host ports: {container} and {host}"
            )
    proto = proto.lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise ValueError(f"invalid proto: {proto}")
    out = []
    for i in range(end - start + 1):
        published: Optional[str] = None
        if host:
            published = str(host_start + i)
            if start == end and host_start != host_end:
                published = f"{published}-{host_end}"
        out.append(Port(start + i, published, ip or None, proto))
    return sorted(out, key=lambda p: f"{p.target}/{p.protocol}")


# --- volumes -------------------------------------------------------------------------------

_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")


def parse_volume_spec(spec: str) -> Dict[str, Any]:
    """A short-syntax volume as compose-go's ParseVolume: source, target, options."""
    if not spec:
        raise ValueError("invalid empty volume spec")
    if len(spec) <= 2:
        return {"source": "", "target": spec, "options": []}
    fields: List[str] = []
    buffer = ""
    depth = 0
    end = "\0"
    text = spec + end
    for i, char in enumerate(text):
        if char == "$" and i + 1 < len(spec) and spec[i + 1] == "{":
            depth += 1
            buffer += char
            continue
        if char == "}" and depth > 0:
            depth -= 1
            buffer += char
            continue
        if char == ":" and len(buffer) == 1 and buffer.isalpha():
            buffer += char  # a Windows drive letter
        elif (char == ":" or (char == end and i == len(spec))) and depth == 0:
            if not buffer:
                raise ValueError(f"invalid spec: {spec}: empty section between colons")
            if len(fields) == 2 and char == ":":
                raise ValueError(f"invalid spec: {spec}: too many colons")
            fields.append(buffer)
            buffer = ""
        else:
            buffer += char
    if len(fields) == 1:
        return {"source": "", "target": fields[0], "options": []}
    options = fields[2].split(",") if len(fields) > 2 else []
    return {"source": fields[0], "target": fields[1], "options": options}


def _is_file_path(source: str) -> bool:
    if not source:
        return False
    if source[0] in "./~" or source.startswith("\\\\"):
        return True
    return len(source) > 1 and source[0].isalpha() and source[1] == ":"


# --- services ------------------------------------------------------------------------------


# Our one service extension: snapshot the service's volumes at an update (README
# "Stateful services"; meta-data `snapshot_volumes`).
SNAPSHOT_KEY = "x-mender-snapshot"


class _ServiceReader:
    """One service's keys, read and checked; `service()` builds the model."""

    def __init__(self, loader: _Loader, name: str) -> None:
        self.ld = loader
        self.name = name
        self.where = f"service {name!r}"
        self.refusal: Optional[ComposeError] = None
        self.profiles: Tuple[str, ...] = ()
        self.depends_on: List[Dependency] = []
        self.network_mode: Optional[str] = None
        self.networks: List[NetworkAttachment] = []
        self.volumes: List[Mount] = []
        self.tmpfs: Tuple[str, ...] = ()
        self.fields: Dict[str, Any] = {}

    def error(self, key: str, message: str) -> ComposeError:
        return self.ld.error(f"{self.where}: {key}" if key else self.where, message)

    def refuse(self, key: str, message: str) -> None:
        """Something Compose accepts but we will not deploy: an error if the service is enabled."""
        if self.refusal is None:
            self.refusal = self.error(key, message)

    def read(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise self.error("", "must be a mapping")
        for key in body:
            if key == SNAPSHOT_KEY:
                if not isinstance(body[key], bool):
                    raise self.error(key, "must be true or false")
                self.fields[key] = body[key]
            elif key.startswith("x-"):
                continue
            elif key in _REFUSED:
                self.refuse(key, _REFUSED[key])
            elif key in _UNSUPPORTED:
                self.refuse(key, "not supported by mender-docker")
            elif key not in _READERS:
                raise self.error(key, "unknown key (Compose refuses it too)")
        for key, reader in _READERS.items():
            if key in body and reader is not None:
                reader(self, body[key], key)
        self.apply_deploy()
        if body.get("image") is None and body.get("build") is None:
            self.refuse(
                "image",
                "missing: every service needs an image (or a build the generator takes"
                " from `docker compose build`)",
            )
        for link in self.fields.get("links", ()):  # as compose: a link is a dependency
            other = link.split(":", 1)[0]
            if all(d.service != other for d in self.depends_on):
                self.depends_on.append(Dependency(other, "service_started", True, True))
        # implicit dependencies, as compose: network_mode/ipc/pid "service:NAME"
        for key in ("network_mode", "ipc", "pid"):
            ref = self.fields.get(key) if key != "network_mode" else self.network_mode
            if isinstance(ref, str) and ref.startswith("service:"):
                other = ref[len("service:") :]
                if all(d.service != other for d in self.depends_on):
                    self.depends_on.append(Dependency(other, "service_started", True, True))
        if self.network_mode is None and not self.networks:
            self.networks = [NetworkAttachment("default", (), None, None)]
        if self.network_mode is not None and self.networks:
            raise self.error("network_mode", "and networks are mutually exclusive")

    def service(self, depends_on: Tuple[Dependency, ...]) -> Service:
        f = self.fields
        return Service(
            name=self.name,
            image=f.get("image", ""),
            command=f.get("command"),
            entrypoint=f.get("entrypoint"),
            environment=f.get("environment", ()),
            ports=f.get("ports", ()),
            volumes=tuple(self.volumes),
            tmpfs=self.tmpfs,
            networks=tuple(self.networks) if self.network_mode is None else (),
            network_mode=self.network_mode,
            depends_on=depends_on,
            healthcheck=f.get("healthcheck"),
            restart=f.get("restart"),
            user=f.get("user"),
            working_dir=f.get("working_dir"),
            hostname=f.get("hostname"),
            domainname=f.get("domainname"),
            labels=f.get("labels", ()),
            logging=f.get("logging"),
            read_only=f.get("read_only", False),
            privileged=f.get("privileged", False),
            cap_add=f.get("cap_add", ()),
            cap_drop=f.get("cap_drop", ()),
            devices=f.get("devices", ()),
            mem_limit=f.get("mem_limit"),
            mem_reservation=f.get("mem_reservation"),
            cpus=f.get("cpus"),
            stop_grace_period=f.get("stop_grace_period"),
            stop_signal=f.get("stop_signal"),
            init=f.get("init"),
            pid=f.get("pid"),
            ipc=f.get("ipc"),
            security_opt=f.get("security_opt", ()),
            sysctls=f.get("sysctls", ()),
            ulimits=f.get("ulimits", ()),
            extra_hosts=f.get("extra_hosts", ()),
            dns=f.get("dns", ()),
            expose=f.get("expose", ()),
            shm_size=f.get("shm_size"),
            profiles=self.profiles,
            tty=f.get("tty", False),
            stdin_open=f.get("stdin_open", False),
            platform=f.get("platform"),
            container_name=f.get("container_name"),
            build=f.get("build", False),
            pids_limit=f.get("pids_limit"),
            links=f.get("links", ()),
            secrets=f.get("secrets", ()),
            configs=f.get("configs", ()),
            runtime=f.get("runtime"),
            snapshot=f.get(SNAPSHOT_KEY, False),
        )

    def apply_deploy(self) -> None:
        """deploy.resources and deploy.restart_policy as Compose applies them to the
        container (they win over mem_limit, cpus, pids_limit, mem_reservation, restart)."""
        deploy = self.fields.pop("_deploy", None)
        if not deploy:
            return
        origin = {"mem_limit": "limits.memory", "cpus": "limits.cpus",
                  "pids_limit": "limits.pids", "mem_reservation": "reservations.memory"}
        for key, value in deploy.items():
            if value is None:
                continue
            if key in origin and self.fields.get(key) not in (None, value):
                raise self.error(
                    key, f"can't set distinct values on {key!r} and"
                    f" 'deploy.resources.{origin[key]}'",
                )
            self.fields[key] = value

    # --- simple keys ---

    def string(self, value: Any, key: str) -> None:
        if value is None and key == "pid":
            return
        if not _is_str(value):
            raise self.error(key, f"must be a string, not {_show(value)}")
        self.fields[key] = str(value)

    def files(self, value: Any, key: str) -> None:
        """`secrets:`/`configs:`: names or {source, target, uid, gid, mode}."""
        if not isinstance(value, list):
            raise self.error(key, "must be a list")
        out: List[ServiceFile] = []
        for i, item in enumerate(value):
            at = f"{key}[{i}]"
            if _is_str(item):
                target = f"/run/secrets/{item}" if key == "secrets" else None
                out.append(ServiceFile(str(item), target, None, None, None))
                continue
            if not isinstance(item, dict):
                raise self.error(at, "must be a name or a mapping")
            where = f"{self.where}: {at}"
            _check_keys(self.ld, item, ("source", "target", "uid", "gid", "mode"), where)
            source = _opt_str(self.ld, item, "source", where)
            if not source:
                raise self.error(at, "needs a source")
            mode = item.get("mode")
            if _is_str(mode):
                try:
                    mode = int(str(mode), 8)
                except ValueError:
                    raise self.error(f"{at}.mode", f"invalid mode {mode!r}") from None
            elif mode is not None:
                mode = _int(self.ld, mode, f"{where}.mode")
            out.append(ServiceFile(
                source, _opt_str(self.ld, item, "target", where),
                _scalar_text(self.ld, item.get("uid"), f"{where}.uid", null=None),
                _scalar_text(self.ld, item.get("gid"), f"{where}.gid", null=None),
                mode,
            ))  # fmt: skip
        self.fields[key] = tuple(out)

    def links(self, value: Any, key: str) -> None:
        links = _str_list(self.ld, value, f"{self.where}: {key}")
        for link in links:
            service, _, alias = link.partition(":")
            if alias and alias != service:  # on a user network a link adds only an alias
                self.refuse(key, f"{link!r}: a link alias other than the service's name:"
                            " give that service a network alias instead")
        self.fields[key] = links

    def build_(self, value: Any, key: str) -> None:
        if value is None:
            return
        if not (_is_str(value) or isinstance(value, dict)):
            raise self.error(key, "must be a path or a mapping")
        self.fields[key] = True

    def integer(self, value: Any, key: str) -> None:
        self.fields[key] = _int(self.ld, value, f"{self.where}: {key}")

    def deploy(self, value: Any, key: str) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise self.error(key, "must be a mapping")
        where = f"{self.where}: {key}"
        _check_keys(
            self.ld, value,
            ("mode", "replicas", "labels", "resources", "restart_policy", "placement",
             "update_config", "rollback_config", "endpoint_mode"),
            where,
        )  # fmt: skip
        # placement, update_config, rollback_config, endpoint_mode, labels: Swarm's only
        if value.get("mode") not in (None, "replicated"):
            self.refuse(f"{key}.mode", "only one container per service (mode: replicated)")
        if value.get("replicas") is not None:
            if _int(self.ld, value["replicas"], f"{where}.replicas") != 1:
                self.refuse(f"{key}.replicas", "only one container per service is supported")
        out: Dict[str, Any] = {}
        resources = value.get("resources") or {}
        if not isinstance(resources, dict):
            raise self.error(f"{key}.resources", "must be a mapping")
        _check_keys(self.ld, resources, ("limits", "reservations"), f"{where}.resources")
        for kind in ("limits", "reservations"):
            body = resources.get(kind) or {}
            at = f"{key}.resources.{kind}"
            if not isinstance(body, dict):
                raise self.error(at, "must be a mapping")
            _check_keys(
                self.ld, body, ("cpus", "memory", "pids", "devices", "generic_resources"),
                f"{self.where}: {at}",
            )
            for option in ("devices", "generic_resources"):
                if body.get(option):
                    self.refuse(f"{at}.{option}", "not supported")
            memory = _bytes(self.ld, body.get("memory"), f"{self.where}: {at}.memory")
            if kind == "reservations":  # cpus and pids reserve nothing outside Swarm
                out["mem_reservation"] = memory or None
                continue
            out["mem_limit"] = memory or None
            if body.get("cpus") is not None:
                self.cpus(body["cpus"], "_cpus")
                out["cpus"] = self.fields.pop("_cpus") or None
            if body.get("pids") is not None:
                out["pids_limit"] = _int(self.ld, body["pids"], f"{self.where}: {at}.pids") or None
        policy = value.get("restart_policy")
        if policy is not None:
            at = f"{key}.restart_policy"
            if not isinstance(policy, dict):
                raise self.error(at, "must be a mapping")
            _check_keys(
                self.ld, policy, ("condition", "delay", "max_attempts", "window"),
                f"{self.where}: {at}",
            )
            condition = _opt_str(self.ld, policy, "condition", f"{self.where}: {at}")
            mapped = {None: "no", "none": "no", "no": "no", "any": "always", "always": "always",
                      "on-failure": "on-failure", "unless-stopped": "unless-stopped"}
            if condition not in mapped:
                raise self.error(f"{at}.condition", f"{condition!r}: not none, on-failure or any")
            restart = mapped[condition]
            attempts = policy.get("max_attempts")
            if restart == "on-failure" and attempts:
                restart += f":{_int(self.ld, attempts, f'{self.where}: {at}.max_attempts')}"
            out["restart"] = restart
        self.fields["_deploy"] = out

    def container_name(self, value: Any, key: str) -> None:
        self.string(value, key)
        if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", self.fields[key]):
            raise self.error(key, f"{self.fields[key]!r} does not match [a-zA-Z0-9][a-zA-Z0-9_.-]+")

    def image(self, value: Any, key: str) -> None:
        if value is None:
            return
        self.string(value, key)
        if not self.fields[key]:
            self.refuse(key, "is empty")

    def boolean(self, value: Any, key: str) -> None:
        self.fields[key] = _bool(self.ld, value, f"{self.where}: {key}")

    def byte_size(self, value: Any, key: str) -> None:
        if isinstance(value, float):
            raise self.error(key, f"must be an integer number of bytes or a string, not {value}")
        self.fields[key] = _bytes(self.ld, value, f"{self.where}: {key}")

    def duration(self, value: Any, key: str) -> None:
        self.fields[key] = _duration(self.ld, value, f"{self.where}: {key}")

    def string_list(self, value: Any, key: str) -> None:
        unique = "error" if key == "security_opt" else "dedupe"
        self.fields[key] = _str_list(self.ld, value, f"{self.where}: {key}", unique=unique)

    def string_or_list(self, value: Any, key: str) -> None:
        self.fields[key] = _str_list(self.ld, value, f"{self.where}: {key}", single=True)

    def profiles_(self, value: Any, key: str) -> None:
        self.profiles = _str_list(self.ld, value, f"{self.where}: {key}")

    def tmpfs_(self, value: Any, key: str) -> None:
        items = _str_list(self.ld, value, f"{self.where}: {key}", single=True)
        self.tmpfs = tuple(_unique(list(items), lambda s: s.split("=", 1)[0]))

    def cpus(self, value: Any, key: str) -> None:
        if isinstance(value, bool) or value is None:
            raise self.error(key, f"must be a number, not {value!r}")
        if isinstance(value, (int, float)):
            self.fields[key] = float(value)
            return
        if _is_str(value):
            try:
                self.fields[key] = float(value)
                return
            except ValueError:
                pass
        raise self.error(key, f"must be a number, not {value!r}")

    def command(self, value: Any, key: str) -> None:
        if value is None:
            self.fields[key] = None
        elif _is_str(value):
            try:
                self.fields[key] = tuple(shellwords.split(value))
            except shellwords.ShellwordsError as exc:
                raise self.error(key, str(exc)) from None
        elif isinstance(value, list) and all(_is_str(v) for v in value):
            self.fields[key] = tuple(str(v) for v in value)
        else:
            raise self.error(key, "must be a string or a list of strings")

    def scale(self, value: Any, key: str) -> None:
        if _int(self.ld, value, f"{self.where}: {key}") != 1:
            self.refuse(key, "only one container per service is supported (scale: 1)")

    def restart(self, value: Any, key: str) -> None:
        self.string(value, key)
        policy = self.fields[key]
        if not re.fullmatch(r"no|always|unless-stopped|on-failure(:[0-9]+)?", policy):
            raise self.error(
                key, f"{policy!r}: not one of no, always, on-failure[:N], unless-stopped"
            )

    def network_mode_(self, value: Any, key: str) -> None:
        if not _is_str(value):
            raise self.error(key, f"must be a string, not {value!r}")
        self.network_mode = str(value)

    def init(self, value: Any, key: str) -> None:
        self.fields[key] = _bool(self.ld, value, f"{self.where}: {key}")

    # --- environment and env_file ---

    def environment(self, value: Any, key: str) -> None:
        entries = _list_or_dict(self.ld, value, f"{self.where}: {key}", None)
        for name, _ in entries:
            if name and name[-1].isspace():
                raise self.error(
                    key, f"environment variable {name!r} is declared with a trailing space"
                )
        self.fields["_environment"] = {
            name: (self.ld.env.get(name) if text is None else text) for name, text in entries
        }

    def env_file(self, value: Any, key: str) -> None:
        files: List[Tuple[str, bool]] = []
        items = [value] if _is_str(value) else value
        if not isinstance(items, list):
            raise self.error(key, "must be a path or a list")
        for i, item in enumerate(items):
            at = f"{key}[{i}]"
            if _is_str(item):
                files.append((item, True))
                continue
            if not isinstance(item, dict) or "path" not in item:
                raise self.error(at, "must be a path or a mapping with `path`")
            _check_keys(self.ld, item, ("path", "required", "format"), f"{self.where}: {at}")
            path = item["path"]
            if not _is_str(path):
                raise self.error(f"{at}.path", "must be a string")
            if item.get("format") is not None:
                raise self.error(f"{at}.format", "only the default .env format is supported")
            required = _bool(self.ld, item.get("required", True), f"{self.where}: {at}.required")
            files.append((path, required))
        files = _unique(files, lambda f: f[0])
        self.fields["_env_files"] = [(self.ld.host_path(p), r) for p, r in files]

    def resolve_environment(self) -> None:
        service_env: Dict[str, Optional[str]] = self.fields.pop("_environment", {})
        environment: Dict[str, str] = {k: v for k, v in service_env.items() if v is not None}
        project_env = self.ld.env

        def lookup(key: str) -> Optional[str]:
            if key in project_env:
                return project_env[key]
            return service_env.get(key)

        for path, required in self.fields.pop("_env_files", []):
            if not os.path.exists(path):
                if required:
                    raise self.error("env_file", f"env file {path} not found")
                continue
            try:
                with open(path, encoding="utf-8") as stream:
                    parse_dotenv(stream.read(), lookup, into=environment)
            except (OSError, UnicodeDecodeError, DotenvError) as exc:
                raise self.error("env_file", f"failed to read {path}: {exc}") from None
        final: Dict[str, Optional[str]] = dict(environment)
        final.update(service_env)
        self.fields["environment"] = tuple(sorted(final.items()))

    # --- labels, sysctls, logging, ulimits, extra_hosts ---

    def labels(self, value: Any, key: str) -> None:
        self.fields[key] = _labels(self.ld, value, f"{self.where}: {key}")

    def logging(self, value: Any, key: str) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise self.error(key, "must be a mapping")
        _check_keys(self.ld, value, ("driver", "options"), f"{self.where}: {key}")
        options = value.get("options") or {}
        if not isinstance(options, dict):
            raise self.error(f"{key}.options", "must be a mapping")
        pairs = []
        for name, item in options.items():
            if isinstance(item, bool):
                raise self.error(f"{key}.options.{name}", "must be a string or a number")
            text = _scalar_text(self.ld, item, f"{self.where}: {key}.options.{name}")
            pairs.append((name, text or ""))
        self.fields[key] = Logging(
            driver=_opt_str(self.ld, value, "driver", f"{self.where}: {key}"),
            options=tuple(sorted(pairs)),
        )

    def ulimits(self, value: Any, key: str) -> None:
        if not isinstance(value, dict):
            raise self.error(key, "must be a mapping")
        out = []
        for name, item in value.items():
            at = f"{self.where}: {key}.{name}"
            if not re.fullmatch(r"[a-z]+", name):
                raise self.ld.error(at, "invalid ulimit name")
            if isinstance(item, dict):
                _check_keys(self.ld, item, ("soft", "hard"), at)
                if "soft" not in item or "hard" not in item:
                    raise self.ld.error(at, "needs both soft and hard")
                soft = _int(self.ld, item["soft"], f"{at}.soft")
                hard = _int(self.ld, item["hard"], f"{at}.hard")
            else:
                soft = hard = _int(self.ld, item, at)
            out.append((name, soft, hard))
        self.fields[key] = tuple(sorted(out))

    def extra_hosts(self, value: Any, key: str) -> None:
        pairs: List[Tuple[str, str]] = []
        if isinstance(value, dict):
            for host, ips in value.items():
                if ips is None:
                    ips = ""
                if _is_str(ips):
                    pairs.append((host, str(ips)))
                elif isinstance(ips, list) and all(_is_str(i) for i in ips):
                    pairs += [(host, str(ip)) for ip in ips]
                else:
                    raise self.error(f"{key}.{host}", "must be an address or a list of them")
        else:
            for entry in _str_list(self.ld, value, f"{self.where}: {key}", unique="error"):
                for sep in ("=", ":"):
                    host, found, ips = entry.partition(sep)
                    if found:
                        pairs += [(host, ip) for ip in ips.split(",")]
                        break
                else:
                    raise self.error(key, f"invalid additional host, missing IP: {entry}")
        out = []
        for host, ip in pairs:
            if not host or ":" in host or "=" in host:
                raise self.error(key, f"bad host name {host!r}")
            if len(ip) > 2 and ip[0] == "[" and ip[-1] == "]":
                ip = ip[1:-1]
            out.append(f"{host}:{ip}")
        self.fields[key] = tuple(out)

    def sysctls(self, value: Any, key: str) -> None:
        self.fields[key] = _labels(self.ld, value, f"{self.where}: {key}")

    def expose(self, value: Any, key: str) -> None:
        if not isinstance(value, list):
            raise self.error(key, "must be a list")
        out = []
        for i, item in enumerate(value):
            if _is_str(item):
                out.append(str(item))
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                out.append(go_number(item))
            else:
                raise self.error(f"{key}[{i}]", f"must be a port, not {item!r}")
        self.fields[key] = tuple(dict.fromkeys(out))

    def devices(self, value: Any, key: str) -> None:
        if not isinstance(value, list):
            raise self.error(key, "must be a list")
        out: List[Tuple[str, str, str]] = []
        for i, item in enumerate(value):
            at = f"{key}[{i}]"
            if _is_str(item):
                parts = item.split(":")
                if len(parts) > 3:
                    raise self.error(
                        at, f"confusing device mapping, please use long syntax: {item}"
                    )
                src = parts[0]
                dst = parts[1] if len(parts) > 1 and parts[1] else src
                perms = parts[2] if len(parts) > 2 else "rwm"
            elif isinstance(item, dict):
                _check_keys(
                    self.ld, item, ("source", "target", "permissions"), f"{self.where}: {at}"
                )
                src_ = _opt_str(self.ld, item, "source", f"{self.where}: {at}")
                if src_ is None:
                    raise self.error(at, "needs a source")
                src = src_
                dst = _opt_str(self.ld, item, "target", f"{self.where}: {at}") or src
                perms = _opt_str(self.ld, item, "permissions", f"{self.where}: {at}") or "rwm"
            else:
                raise self.error(at, "must be a string or a mapping")
            if not src:
                raise self.error(at, "empty device path")
            out.append((src, dst, perms))
        out = _unique(out, lambda d: d[1])
        self.fields[key] = tuple(f"{s}:{d}:{p}" for s, d, p in out)

    def dns(self, value: Any, key: str) -> None:
        self.fields[key] = _str_list(self.ld, value, f"{self.where}: {key}", single=True)

    # --- ports ---

    def ports(self, value: Any, key: str) -> None:
        if not isinstance(value, list):
            raise self.error(key, "must be a list")

        def raw_key(item: Any) -> str:
            if isinstance(item, dict):
                return _port_key(item.get("host_ip"), item.get("published"), item.get("target"),
                                 item.get("protocol"))
            return str(item)

        maps: List[Tuple[Any, Any, Any, Any]] = []  # (host_ip, published, target, protocol)
        for i, item in enumerate(_unique(list(value), raw_key)):
            at = f"{key}[{i}]"
            if isinstance(item, bool) or not isinstance(item, (int, str, dict)) or isinstance(
                item, Timestamp
            ):
                raise self.error(at, f"invalid port {item!r}")
            if isinstance(item, dict):
                maps.append(self.long_port(item, at))
                continue
            try:
                parsed = parse_port_spec(str(item))
            except ValueError as exc:
                raise self.error(at, str(exc)) from None
            maps += [(p.host_ip, p.published, p.target, p.protocol) for p in parsed]
        maps = _unique(maps, lambda m: _port_key(*m))
        self.fields[key] = tuple(
            Port(target, None if published is None else str(published), host_ip, proto)
            for host_ip, published, target, proto in maps
        )

    def long_port(self, item: Dict[str, Any], at: str) -> Tuple[Any, Any, Any, Any]:
        where = f"{self.where}: {at}"
        _check_keys(
            self.ld, item, ("name", "mode", "host_ip", "target", "published", "protocol",
                            "app_protocol"), where
        )
        if "target" not in item:
            raise self.error(at, "missing the target port")
        target = _int(self.ld, item["target"], f"{where}.target")
        if not 0 < target <= 65535:
            raise self.error(f"{at}.target", f"invalid port {target}")
        published = item.get("published")
        if published is not None and (
            isinstance(published, bool) or not isinstance(published, (int, str))
        ):
            raise self.error(f"{at}.published", f"must be a port or a range, not {published!r}")
        if isinstance(published, str) and not re.fullmatch(r"[0-9]+(-[0-9]+)?", published):
            raise self.error(f"{at}.published", f"invalid port {published!r}")
        mode = _opt_str(self.ld, item, "mode", where)
        if mode not in (None, "ingress", "host"):
            raise self.error(f"{at}.mode", f"{mode!r}: not ingress or host")
        protocol = (_opt_str(self.ld, item, "protocol", where) or "tcp").lower()
        if protocol not in ("tcp", "udp", "sctp"):
            raise self.error(f"{at}.protocol", f"invalid proto: {protocol}")
        host_ip = _opt_str(self.ld, item, "host_ip", where)
        return (host_ip or None, published if published != "" else None, target, protocol)

    # --- volumes ---

    def volumes_(self, value: Any, key: str) -> None:
        if not isinstance(value, list):
            raise self.error(key, "must be a list")
        mounts: List[Mount] = []
        for i, item in enumerate(value):
            at = f"{key}[{i}]"
            if _is_str(item):
                mounts.append(self.short_volume(str(item), at))
            elif isinstance(item, dict):
                mounts.append(self.long_volume(item, at))
            else:
                raise self.error(at, f"invalid volume {item!r}")
        self.volumes = _unique(mounts, lambda m: m.target)

    def short_volume(self, spec: str, at: str) -> Mount:
        try:
            parsed = parse_volume_spec(spec)
        except ValueError as exc:
            raise self.error(at, str(exc)) from None
        source, target = parsed["source"], parsed["target"]
        read_only = False
        nocopy = False
        propagation: Optional[str] = None
        selinux: Optional[str] = None
        for option in parsed["options"]:
            if option == "ro":
                read_only = True
            elif option == "rw":
                read_only = False
            elif option == "nocopy":
                nocopy = True
            elif option in ("cached", "delegated", "consistent"):
                pass  # macOS consistency hints, no effect on Linux
            elif option in _PROPAGATIONS:
                propagation = option
            elif option in ("z", "Z"):
                selinux = option
            else:
                raise self.error(at, f"unknown volume option {option!r} (compose ignores it)")
        target = self.check_target(target, at)
        if _is_file_path(source):
            return Mount(
                "bind", self.ld.host_path(source), target, read_only, True, nocopy, None,
                propagation, selinux, source,
            )
        if propagation or selinux:
            self.refuse(at, f"volume option {propagation or selinux!r} applies to binds only")
        return Mount("volume", source or None, target, read_only, False, nocopy, None)

    def check_target(self, target: Any, at: str) -> str:
        if not _is_str(target) or not target:
            raise self.error(at, "needs a target path")
        cleaned = _go_clean(target)
        if not cleaned.startswith("/"):
            raise self.error(at, f"target {target!r} is not an absolute path")
        return cleaned

    def long_volume(self, item: Dict[str, Any], at: str) -> Mount:
        where = f"{self.where}: {at}"
        _check_keys(
            self.ld, item, ("type", "source", "target", "read_only", "consistency", "bind",
                            "volume", "tmpfs", "image"), where
        )
        kind = item.get("type")
        if kind not in ("bind", "volume", "tmpfs", "cluster", "npipe", "image"):
            raise self.error(f"{at}.type", f"must be bind, volume or tmpfs, not {kind!r}")
        if kind not in ("bind", "volume", "tmpfs"):
            self.refuse(f"{at}.type", f"{kind} mounts are not supported")
        source = _opt_str(self.ld, item, "source", where)
        target = self.check_target(item.get("target"), at)
        read_only = _bool(self.ld, item.get("read_only", False), f"{where}.read_only")
        create = False
        nocopy = False
        size: Optional[int] = None
        propagation: Optional[str] = None
        selinux: Optional[str] = None
        for sub, allowed, supported in (
            ("bind", ("propagation", "create_host_path", "recursive", "selinux"),
             ("create_host_path", "propagation", "selinux")),
            ("volume", ("labels", "nocopy", "subpath"), ("nocopy",)),
            ("tmpfs", ("size", "mode"), ("size",)),
            ("image", ("subpath",), ()),
        ):
            options = item.get(sub)
            if options is None:
                continue
            if not isinstance(options, dict):
                raise self.error(f"{at}.{sub}", "must be a mapping")
            _check_keys(self.ld, options, allowed, f"{where}.{sub}")
            for option in options:
                if option not in supported and not option.startswith("x-"):
                    self.refuse(f"{at}.{sub}.{option}", "not supported")
            if sub != kind and options:
                self.refuse(f"{at}.{sub}", f"does not apply to a {kind} mount")
            if sub == "bind" and kind == "bind":
                create = _bool(self.ld, options.get("create_host_path", False),
                               f"{where}.bind.create_host_path")
                propagation = _opt_str(self.ld, options, "propagation", f"{where}.bind")
                if propagation is not None and propagation not in _PROPAGATIONS:
                    raise self.error(f"{at}.bind.propagation", f"invalid {propagation!r}")
                selinux = _opt_str(self.ld, options, "selinux", f"{where}.bind")
                if selinux not in (None, "z", "Z"):
                    raise self.error(f"{at}.bind.selinux", f"{selinux!r}: not z or Z")
            elif sub == "volume":
                nocopy = _bool(self.ld, options.get("nocopy", False), f"{where}.volume.nocopy")
            elif sub == "tmpfs" and "size" in options:
                raw = options["size"]
                if isinstance(raw, int) and not isinstance(raw, bool) and raw < 0:
                    raise self.error(f"{at}.tmpfs.size", "must be >= 0")
                size = _bytes(self.ld, raw, f"{where}.tmpfs.size")
        if kind == "bind":
            if not source:
                raise self.error(
                    at, 'invalid mount config for type "bind": field Source must not be empty'
                )
            return Mount(
                kind, self.ld.host_path(source), target, read_only, create, nocopy, size,
                propagation, selinux, source,
            )
        elif kind == "tmpfs" and source:
            raise self.error(f"{at}.source", "a tmpfs mount has no source")
        elif kind == "volume" and source == "":
            source = None
        return Mount(kind, source, target, read_only, create, nocopy, size)

    # --- networks ---

    def networks_(self, value: Any, key: str) -> None:
        out: List[NetworkAttachment] = []
        if isinstance(value, list):
            for name in _str_list(self.ld, value, f"{self.where}: {key}", unique="error"):
                out.append(NetworkAttachment(name, (), None, None))
        elif isinstance(value, dict):
            for name, body in value.items():
                at = f"{key}.{name}"
                if not _KEY_NAME.match(name):
                    raise self.error(at, "invalid network name")
                if body is None:
                    out.append(NetworkAttachment(name, (), None, None))
                    continue
                if not isinstance(body, dict):
                    raise self.error(at, "must be a mapping or null")
                _check_keys(
                    self.ld, body,
                    ("aliases", "ipv4_address", "ipv6_address", "interface_name",
                     "link_local_ips", "mac_address", "driver_opts", "priority", "gw_priority"),
                    f"{self.where}: {at}",
                )
                for option in ("interface_name", "link_local_ips", "mac_address", "driver_opts",
                               "priority", "gw_priority"):
                    if option in body:
                        self.refuse(f"{at}.{option}", "not supported")
                out.append(
                    NetworkAttachment(
                        name,
                        _str_list(self.ld, body.get("aliases"), f"{self.where}: {at}.aliases"),
                        _opt_str(self.ld, body, "ipv4_address", f"{self.where}: {at}"),
                        _opt_str(self.ld, body, "ipv6_address", f"{self.where}: {at}"),
                    )
                )
        elif value is not None:
            raise self.error(key, "must be a list or a mapping")
        self.networks = out

    # --- depends_on and healthcheck ---

    def depends_on_(self, value: Any, key: str) -> None:
        out: List[Dependency] = []
        if isinstance(value, list):
            for name in _str_list(self.ld, value, f"{self.where}: {key}", unique="error"):
                out.append(Dependency(name, "service_started", False, True))
        elif isinstance(value, dict):
            for name, body in value.items():
                at = f"{key}.{name}"
                where = f"{self.where}: {at}"
                if not isinstance(body, dict):
                    raise self.error(at, "must be a mapping with a condition")
                _check_keys(self.ld, body, ("condition", "restart", "required"), where)
                condition = body.get("condition")
                if condition is None:
                    raise self.error(at, "missing property 'condition'")
                if condition not in _CONDITIONS:
                    raise self.error(f"{at}.condition", f"must be one of {', '.join(_CONDITIONS)}")
                out.append(
                    Dependency(
                        name,
                        condition,
                        _bool(self.ld, body.get("restart", False), f"{where}.restart"),
                        _bool(self.ld, body.get("required", True), f"{where}.required"),
                    )
                )
        else:
            raise self.error(key, "must be a list or a mapping")
        for dep in out:
            if dep.service == self.name:
                raise self.error(key, "a service cannot depend on itself")
        self.depends_on = out

    def healthcheck(self, value: Any, key: str) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise self.error(key, "must be a mapping")
        where = f"{self.where}: {key}"
        _check_keys(
            self.ld, value,
            ("test", "interval", "timeout", "start_period", "start_interval", "retries", "disable"),
            where,
        )
        test: Optional[Tuple[str, ...]] = None
        raw = value.get("test")
        if _is_str(raw):
            test = ("CMD-SHELL", str(raw))
        elif isinstance(raw, list) and all(_is_str(t) for t in raw):
            test = tuple(str(t) for t in raw)
            if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
                raise self.error(
                    f"{key}.test", 'must start either by "CMD", "CMD-SHELL" or "NONE"'
                )
        elif raw is not None:
            raise self.error(f"{key}.test", "must be a string or a list of strings")
        retries = value.get("retries")
        self.fields[key] = Healthcheck(
            test=test,
            interval=_duration(self.ld, value.get("interval"), f"{where}.interval"),
            timeout=_duration(self.ld, value.get("timeout"), f"{where}.timeout"),
            start_period=_duration(self.ld, value.get("start_period"), f"{where}.start_period"),
            start_interval=_duration(
                self.ld, value.get("start_interval"), f"{where}.start_interval"
            ),
            retries=None if retries is None else _int(self.ld, retries, f"{where}.retries"),
            disable=_bool(self.ld, value.get("disable", False), f"{where}.disable"),
        )


def _port_key(host_ip: Any, published: Any, target: Any, protocol: Any) -> str:
    def go(value: Any) -> str:
        if value is None:
            return "%!s(<nil>)"
        if isinstance(value, str):
            return value
        return f"%!s({type(value).__name__}={value})"

    return f"{host_ip or '0.0.0.0'}:{go(published)}:{target}/{protocol or 'tcp'}"


_Reader = Callable[[_ServiceReader, Any, str], None]

# Every service key we read, in the order they are read (profiles first: they decide
# whether a refusal matters; environment before env_file).
_READERS: Dict[str, Optional[_Reader]] = {
    "profiles": _ServiceReader.profiles_,
    "image": _ServiceReader.image,
    "command": _ServiceReader.command,
    "entrypoint": _ServiceReader.command,
    "environment": _ServiceReader.environment,
    "env_file": _ServiceReader.env_file,
    "ports": _ServiceReader.ports,
    "expose": _ServiceReader.expose,
    "volumes": _ServiceReader.volumes_,
    "tmpfs": _ServiceReader.tmpfs_,
    "networks": _ServiceReader.networks_,
    "network_mode": _ServiceReader.network_mode_,
    "depends_on": _ServiceReader.depends_on_,
    "healthcheck": _ServiceReader.healthcheck,
    "restart": _ServiceReader.restart,
    "container_name": _ServiceReader.container_name,
    "build": _ServiceReader.build_,
    "links": _ServiceReader.links,
    "secrets": _ServiceReader.files,
    "configs": _ServiceReader.files,
    "runtime": _ServiceReader.string,
    "deploy": _ServiceReader.deploy,
    "pids_limit": _ServiceReader.integer,
    "user": _ServiceReader.string,
    "working_dir": _ServiceReader.string,
    "hostname": _ServiceReader.string,
    "domainname": _ServiceReader.string,
    "stop_signal": _ServiceReader.string,
    "pid": _ServiceReader.string,
    "ipc": _ServiceReader.string,
    "platform": _ServiceReader.string,
    "labels": _ServiceReader.labels,
    "logging": _ServiceReader.logging,
    "read_only": _ServiceReader.boolean,
    "privileged": _ServiceReader.boolean,
    "tty": _ServiceReader.boolean,
    "stdin_open": _ServiceReader.boolean,
    "init": _ServiceReader.init,
    "cap_add": _ServiceReader.string_list,
    "cap_drop": _ServiceReader.string_list,
    "security_opt": _ServiceReader.string_list,
    "devices": _ServiceReader.devices,
    "mem_limit": _ServiceReader.byte_size,
    "mem_reservation": _ServiceReader.byte_size,
    "shm_size": _ServiceReader.byte_size,
    "cpus": _ServiceReader.cpus,
    "stop_grace_period": _ServiceReader.duration,
    "sysctls": _ServiceReader.sysctls,
    "ulimits": _ServiceReader.ulimits,
    "extra_hosts": _ServiceReader.extra_hosts,
    "dns": _ServiceReader.dns,
    "scale": _ServiceReader.scale,
}
for _key in list(_REFUSED) + _UNSUPPORTED:
    _READERS.setdefault(_key, None)
