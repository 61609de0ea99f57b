"""Several Compose files as one, with the merge rules of `docker compose -f a -f b`.

compose-go merges the files' raw mappings in order: mappings key by key, a null
keeps what was there, sequences appended (the loader's unicity rules then keep
one port, mount, device... per key, the later one), scalars replaced. Some keys
have their own rule (compose-go's override/merge.go): `command`, `entrypoint`
and `healthcheck.test` are replaced; `environment`, `labels`, `sysctls` and the
like merge as mappings whatever syntax each file uses; a service's `networks`
and `depends_on` merge as mappings; `logging` is replaced when the driver
changes. A value tagged `!reset` removes the key, `!override` replaces it whole.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from mender_docker.compose.yamlload import Override, Reset

Path = Tuple[str, ...]


def _as_mapping(value: Any) -> Dict[str, Any]:
    """A list_or_dict (`KEY=VALUE` items or a mapping) as a mapping; `KEY` alone is null."""
    if isinstance(value, dict):
        return dict(value)
    out: Dict[str, Any] = {}
    for item in value or []:
        key, sep, text = str(item).partition("=")
        out[key] = text if sep else None
    return out


def _as_list(value: Any) -> List[Any]:
    return list(value) if isinstance(value, list) else [value]


def _to_sequence(base: Any, new: Any, path: Path) -> Any:
    if isinstance(base, (dict, list)) and isinstance(new, (dict, list)) and (
        isinstance(base, dict) or isinstance(new, dict) or _pairs(base) or _pairs(new)
    ):
        merged = _as_mapping(base)
        merged.update(_as_mapping(new))
        return merged
    return _as_list(base) + _as_list(new)


def _pairs(value: List[Any]) -> bool:
    return any(isinstance(item, str) and "=" in item for item in value)


def _replace(base: Any, new: Any, path: Path) -> Any:
    return new


def _keyed(default: Callable[[str], Any]) -> Callable[[Any, Any, Path], Any]:
    """Lists of names and mappings by name both become mappings, merged."""

    def mapping(value: Any) -> Dict[str, Any]:
        if isinstance(value, dict):
            return dict(value)
        return {str(name): default(str(name)) for name in value or []}

    def merge_keyed(base: Any, new: Any, path: Path) -> Any:
        return _mappings(mapping(base), mapping(new), path)

    return merge_keyed


def _logging(base: Any, new: Any, path: Path) -> Any:
    if isinstance(base, dict) and isinstance(new, dict):
        if base.get("driver") and new.get("driver") and base["driver"] != new["driver"]:
            return new
        return _mappings(base, new, path)
    return new


def _extra_hosts(base: Any, new: Any, path: Path) -> Any:
    def items(value: Any) -> List[str]:
        if isinstance(value, dict):
            out = []
            for host, ips in value.items():
                out += [f"{host}={ip}" for ip in _as_list(ips)]
            return out
        return [str(v) for v in value or []]

    merged = items(base)
    return merged + [item for item in items(new) if item not in merged]


def _build(base: Any, new: Any, path: Path) -> Any:
    def mapping(value: Any) -> Any:
        return {"context": value} if isinstance(value, str) else value

    return merge_value(mapping(base), mapping(new), path)


def _or_replace(base: Any, new: Any, path: Path) -> Any:
    if isinstance(base, dict) and isinstance(new, dict):
        return _mappings(base, new, path)
    return new


_SPECIALS: Dict[Path, Callable[[Any, Any, Path], Any]] = {
    ("services", "*", "command"): _replace,
    ("services", "*", "entrypoint"): _replace,
    ("services", "*", "healthcheck", "test"): _replace,
    ("services", "*", "environment"): _to_sequence,
    ("services", "*", "labels"): _to_sequence,
    ("services", "*", "annotations"): _to_sequence,
    ("services", "*", "sysctls"): _to_sequence,
    ("services", "*", "tmpfs"): _to_sequence,
    ("services", "*", "dns"): _to_sequence,
    ("services", "*", "dns_opt"): _to_sequence,
    ("services", "*", "dns_search"): _to_sequence,
    ("services", "*", "env_file"): _to_sequence,
    ("services", "*", "build"): _build,
    ("services", "*", "build", "args"): _to_sequence,
    ("services", "*", "build", "labels"): _to_sequence,
    ("services", "*", "deploy", "labels"): _to_sequence,
    ("services", "*", "depends_on"): _keyed(
        lambda name: {"condition": "service_started", "required": True}
    ),
    ("services", "*", "networks"): _keyed(lambda name: None),
    ("services", "*", "logging"): _logging,
    ("services", "*", "extra_hosts"): _extra_hosts,
    ("services", "*", "ulimits", "*"): _or_replace,
    ("networks", "*", "labels"): _to_sequence,
    ("volumes", "*", "labels"): _to_sequence,
}


def _special(path: Path) -> Optional[Callable[[Any, Any, Path], Any]]:
    for pattern, merger in _SPECIALS.items():
        if len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path)):
            return merger
    return None


def merge_value(base: Any, new: Any, path: Path) -> Any:
    """`new` (a later file's value at `path`) merged over `base`."""
    if new is None:
        return base
    merger = _special(path)
    if merger is not None and base is not None:
        return merger(base, strip_tags(new), path)
    if isinstance(base, dict) and isinstance(new, dict):
        return _mappings(base, new, path)
    new = strip_tags(new)
    if isinstance(base, list) and isinstance(new, list):
        return base + new
    return new


def _mappings(base: Dict[str, Any], new: Dict[str, Any], path: Path) -> Dict[str, Any]:
    out = dict(base)
    for key, value in new.items():
        if isinstance(value, Reset):
            out.pop(key, None)
        elif isinstance(value, Override):
            out[key] = strip_tags(value.value)
        elif key in out:
            out[key] = merge_value(out[key], value, path + (key,))
        else:
            out[key] = strip_tags(value)
    return out


def strip_tags(value: Any) -> Any:
    """A value without its `!reset`/`!override` tags: as a first file reads."""
    if isinstance(value, Override):
        return strip_tags(value.value)
    if isinstance(value, dict):
        if not any(isinstance(v, (Reset, Override, dict, list)) for v in value.values()):
            return value
        return {k: strip_tags(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [strip_tags(v) for v in value if not isinstance(v, Reset)]
    return value


def merge_files(documents: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The files' top-level mappings, in order, merged into one."""
    merged: Dict[str, Any] = strip_tags(documents[0])
    for document in documents[1:]:
        merged = _mappings(merged, document, ())
    return merged
