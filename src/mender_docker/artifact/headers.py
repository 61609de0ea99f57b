"""header-info, type-info and meta-data: build, serialise, parse and validate. No I/O."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Dict, List, Optional, Tuple

from mender_docker.errors import ArtifactError

from .model import ArtifactSpec

# State script names, as mender-artifact and the Mender client take them:
# <State>_<Enter|Leave|Error>_<two digits>[<any text without white space>].
# Idle, Sync and Download scripts belong to the root filesystem, not to an artifact.
SCRIPT_STATES = ("ArtifactInstall", "ArtifactReboot", "ArtifactCommit", "ArtifactRollback",
                 "ArtifactRollbackReboot", "ArtifactFailure")
SCRIPT_NAME = re.compile(
    "^(" + "|".join(SCRIPT_STATES) + r")_(Enter|Leave|Error)_[0-9]{2}[^\t\n\f\r ]*$")
_ANY_SCRIPT = re.compile(r"^([A-Za-z]+)_(Enter|Leave|Error)_[0-9]{2}[^\t\n\f\r ]*$")
_TYPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_script_name(name: str) -> None:
    """ArtifactError naming what is wrong with a state script's name."""
    if SCRIPT_NAME.match(name):
        return
    other = _ANY_SCRIPT.match(name)
    if other:
        raise ArtifactError(f"state script {name!r}: {other.group(1)!r} scripts cannot be in "
                            f"an artifact (states: {', '.join(SCRIPT_STATES)})")
    raise ArtifactError(f"bad state script name {name!r} (want <State>_<Enter|Leave|Error>_NN"
                        "[_text], e.g. ArtifactInstall_Enter_05_wifi)")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_flat_meta_data(meta: Any, where: str = "meta-data") -> Dict[str, Any]:
    """Top-level values must be strings, numbers or lists of them (Mender's rule)."""
    if not isinstance(meta, dict):
        raise ArtifactError(f"{where} must be a JSON object, not {type(meta).__name__}")
    for key, value in meta.items():
        if not isinstance(key, str):
            raise ArtifactError(f"{where}: key {key!r} is not a string")
        if _scalar(value):
            continue
        if isinstance(value, list) and all(_scalar(item) for item in value):
            continue
        raise ArtifactError(f"{where}: key {key!r} is not flat (strings, numbers or "
                            "lists of them only)")
    return meta


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _check_string_list(values: Any, where: str) -> List[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise ArtifactError(f"{where} must be a list of non-empty strings")
    return values


def _check_provides(values: Any, where: str) -> Dict[str, Any]:
    if not isinstance(values, dict):
        raise ArtifactError(f"{where} must be a JSON object")
    for key, value in values.items():
        if isinstance(value, str):
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            continue
        raise ArtifactError(f"{where}: {key!r} must be a string or a list of strings")
    return values


def build_header_files(spec: ArtifactSpec) -> List[Tuple[str, bytes]]:
    """The header tar's members, in mender-artifact's order, validated."""
    if not spec.artifact_name:
        raise ArtifactError("artifact name must not be empty")
    _check_string_list(spec.device_types, "device types")
    if not spec.device_types:
        raise ArtifactError("at least one device type is needed")
    if spec.payload_type is None:  # bootstrap: type null, no meta-data (as mender-artifact)
        if spec.meta_data is not None:
            raise ArtifactError("a bootstrap artifact (no payload type) has no meta-data")
    elif not _TYPE_NAME.match(spec.payload_type):
        raise ArtifactError(f"bad payload type {spec.payload_type!r}")
    provides: Dict[str, Any] = {"artifact_name": spec.artifact_name}
    if spec.artifact_group:
        provides["artifact_group"] = spec.artifact_group
    depends: Dict[str, Any] = {"device_type": list(spec.device_types)}
    for key, values in spec.artifact_depends.items():
        if key == "device_type":
            raise ArtifactError("give device types in device_types, not artifact_depends")
        depends[key] = _check_string_list(values, f"artifact_depends[{key!r}]")
    header_info = {"payloads": [{"type": spec.payload_type}],
                   "artifact_provides": provides, "artifact_depends": depends}
    type_info: Dict[str, Any] = {"type": spec.payload_type}
    if spec.provides:
        for key, value in spec.provides.items():
            if not isinstance(value, str):  # mender-artifact 3.9 refuses lists here
                raise ArtifactError(f"provides: {key!r} must be a string")
        type_info["artifact_provides"] = dict(spec.provides)
    if spec.depends:
        type_info["artifact_depends"] = _check_provides(spec.depends, "depends")
    if spec.clears_provides:
        type_info["clears_artifact_provides"] = _check_string_list(
            spec.clears_provides, "clears_provides")
    files: List[Tuple[str, bytes]] = [("header-info", _dumps(header_info))]
    seen = set()
    for name, content in spec.scripts:
        check_script_name(name)
        if name in seen:
            raise ArtifactError(f"state script {name!r} given twice")
        seen.add(name)
        files.append((f"scripts/{name}", bytes(content)))
    files.append(("headers/0000/type-info", _dumps(type_info)))
    if spec.meta_data is not None:
        files.append(("headers/0000/meta-data", _dumps(check_flat_meta_data(spec.meta_data))))
    return files


def parse_json(raw: bytes, where: str) -> Any:
    """One JSON value, held to what Go's encoding/json (mender-artifact) takes: numbers are
    finite doubles (no NaN, Infinity or 1e400), text is Unicode (no lone surrogates).
    `read --json` can then print every value it was given as JSON."""
    def constant(name: str) -> Any:
        raise ArtifactError(f"{where}: {name} is not JSON")

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ArtifactError(f"{where}: the number {text[:24]}{'...' if len(text) > 24 else ''}"
                                " is out of range (more than a 64-bit float holds)")
        return value

    def integer(text: str) -> int:
        number(text)
        return int(text)

    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=constant, parse_float=number,
                           parse_int=integer)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(f"{where} is not valid JSON: {exc}") from None
    if _has_surrogate(value):
        raise ArtifactError(f"{where}: a string holds a lone UTF-16 surrogate (\\udXXX), "
                            "which is not Unicode text")
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_SURROGATE.search(value))
    if isinstance(value, list):
        return any(_has_surrogate(item) for item in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    return False


def check_keys(value: Dict[str, Any], known: Tuple[str, ...], where: str) -> None:
    """mender-artifact decodes these objects refusing unknown keys; so do we (keys match
    exactly: Go's decoder ignores case, the C++ client does not)."""
    for key in value:
        if key not in known:
            raise ArtifactError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")


def _kind(value: Any) -> str:
    return "null" if value is None else {str: "a string", list: "a list", dict: "an object",
                                         bool: "a boolean"}.get(type(value), "a number")


def _string_list(value: Any, where: str) -> List[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArtifactError(f"{where} must be a list of strings, not {_kind(value)}")
    return value


def parse_header_info(raw: bytes) -> Dict[str, Any]:
    """header-info as read. The payload type is a string, or null for a bootstrap artifact
    (`mender-artifact write bootstrap-artifact`: no payload)."""
    info = parse_json(raw, "header-info")
    if not isinstance(info, dict):
        raise ArtifactError("header-info is not a JSON object")
    check_keys(info, ("payloads", "artifact_provides", "artifact_depends"), "header-info")
    payloads = info.get("payloads")
    if not isinstance(payloads, list) or not payloads:
        raise ArtifactError("header-info: 'payloads' is missing or empty")
    if len(payloads) != 1:
        raise ArtifactError(f"header-info: {len(payloads)} payloads; only artifacts with one "
                            "payload are supported")
    if not isinstance(payloads[0], dict) or "type" not in payloads[0]:
        raise ArtifactError("header-info: the payload has no 'type'")
    check_keys(payloads[0], ("type",), "header-info payloads[0]")
    payload_type = payloads[0]["type"]
    if payload_type is not None and not isinstance(payload_type, str):
        raise ArtifactError("header-info: the payload type is not a string or null")
    if payload_type == "":
        raise ArtifactError("header-info: the payload type is empty (null means no payload)")
    provides = info.get("artifact_provides")
    if not isinstance(provides, dict):
        raise ArtifactError("header-info: artifact_provides is missing")
    check_keys(provides, ("artifact_name", "artifact_group"), "header-info artifact_provides")
    if "artifact_name" not in provides:
        raise ArtifactError("header-info: artifact_provides.artifact_name is missing")
    for key in ("artifact_name", "artifact_group"):
        value = provides.get(key)
        if not isinstance(value, str) and not (key == "artifact_group" and value is None):
            raise ArtifactError(f"header-info: artifact_provides.{key} must be a string, "
                                f"not {_kind(value)}")
    depends = info.get("artifact_depends")
    if not isinstance(depends, dict):
        raise ArtifactError("header-info: artifact_depends is missing")
    devices = depends.get("device_type")
    if devices is None or devices == []:
        raise ArtifactError("header-info: artifact_depends.device_type is missing or empty "
                            "(an artifact names the device types it is for)")
    _string_list(devices, "header-info: artifact_depends.device_type")
    # Other keys are not checked by the reference: it drops them.
    for key in ("artifact_name", "artifact_group"):
        if depends.get(key) is not None:
            _string_list(depends[key], f"header-info: artifact_depends.{key}")
    return info


def parse_type_info(raw: bytes, payload_type: Optional[str]) -> Dict[str, Any]:
    """type-info as read. Its type must be header-info's, or empty: mender-artifact before
    4.3.1 writes `"type": ""` into every rootfs-image artifact, and the Mender client then
    goes by header-info (so do we). Unknown keys pass: the reference's payload handlers
    take them."""
    info = parse_json(raw, "type-info")
    if not isinstance(info, dict):
        raise ArtifactError("type-info is not a JSON object")
    if info.get("type") not in (payload_type, "", None):
        raise ArtifactError(f"type-info type {info.get('type')!r} differs from header-info's "
                            f"{payload_type!r} (corrupt artifact)")
    provides = info.get("artifact_provides") or {}
    if not isinstance(provides, dict):
        raise ArtifactError("type-info artifact_provides must be a JSON object")
    for key, value in provides.items():
        if not isinstance(value, str):  # both reference versions: strings only
            raise ArtifactError(f"type-info artifact_provides: {key!r} must be a string, "
                                f"not {_kind(value)}")
    _check_provides(info.get("artifact_depends") or {}, "type-info artifact_depends")
    clears = info.get("clears_artifact_provides")
    if clears is not None and not (isinstance(clears, list)
                                   and all(isinstance(c, str) for c in clears)):
        raise ArtifactError("type-info clears_artifact_provides is not a list of strings")
    return info


def parse_meta_data(raw: bytes) -> Optional[Dict[str, Any]]:
    """The payload's meta-data as read; an empty file means none. Flatness is not
    enforced on read (other tools write nested data); it is on write."""
    if not raw.strip():
        return None
    meta = parse_json(raw, "meta-data")
    if not isinstance(meta, dict):
        raise ArtifactError("meta-data is not a JSON object")
    return meta
