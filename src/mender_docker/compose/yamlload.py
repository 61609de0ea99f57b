"""Compose files as Compose reads them: YAML 1.2 scalars through PyYAML.

PyYAML implements YAML 1.1, where `no`, `on`, `yes` are booleans and `80:80` is
a base-60 integer; Compose (go-yaml) reads those as strings. This loader
resolves plain scalars the way go-yaml does: booleans are only
`true`/`false` (three spellings each), null is `~`, `null` or empty, integers
may be `0x..`, `0o..`, `0b..`, `0..` (octal) with `_` separators, floats are
YAML 1.2's plus `.inf`/`.nan`, and timestamps (`2024-01-31`) are read as
`Timestamp`, which Compose refuses everywhere but in `x-` extensions. Anchors,
aliases and merge keys (`<<`) work as in PyYAML. A key defined twice in one
mapping and a key that is not a string are errors, as in Compose.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List

import yaml  # type: ignore[import-untyped,unused-ignore]
from yaml.nodes import MappingNode, Node  # type: ignore[import-untyped,unused-ignore]


class Timestamp(str):
    """An unquoted scalar go-yaml reads as a time: Compose's schema refuses it."""


class Reset:
    """A value tagged `!reset`: a later file removes the key (see merge.py)."""


class Override:
    """A value tagged `!override`: a later file replaces the key's value whole."""

    def __init__(self, value: Any) -> None:
        self.value = value


class YamlError(ValueError):
    """The text is not YAML Compose would read (syntax, duplicate key, non-string key)."""


class _Loader(yaml.SafeLoader):  # type: ignore[misc,unused-ignore]
    pass


_Loader.yaml_implicit_resolvers = {}

_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(
        r"^[-+]?(?:0[xX][0-9a-fA-F_]*[0-9a-fA-F][0-9a-fA-F_]*|0[oO][0-7_]*[0-7][0-7_]*"
        r"|0[bB][01_]*[01][01_]*|0[0-7_]*|[1-9][0-9_]*)$"
    ),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9_]*[0-9][0-9_]*|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9_]*[0-9][0-9_]*)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:timestamp",
    re.compile(
        r"^(?:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
        r"(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]*)?"
        r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?)$"
    ),
    list("0123456789"),
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


def _int(loader: _Loader, node: Node) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type,unused-ignore]
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits[:2].lower() in ("0x", "0o", "0b"):
        value = int(digits[2:], {"x": 16, "o": 8, "b": 2}[digits[1].lower()])
    elif digits.startswith("0") and len(digits) > 1:
        value = int(digits[1:], 8)
    else:
        value = int(digits)
    value *= sign
    if not -(2**63) <= value < 2**64:
        return float(value)
    return value


def _float(loader: _Loader, node: Node) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type,unused-ignore]
    lower = text.lower()
    if lower.endswith(".inf"):
        return float("-inf") if lower.startswith("-") else float("inf")
    if lower == ".nan":
        return float("nan")
    return float(text)


def _timestamp(loader: _Loader, node: Node) -> Any:
    return Timestamp(loader.construct_scalar(node))  # type: ignore[arg-type,unused-ignore]


def _mapping(loader: _Loader, node: Node) -> Any:
    assert isinstance(node, MappingNode)
    seen = set()
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise YamlError(f"non-string key {key!r}{_where(key_node)}")
        if key in seen:
            raise YamlError(f"mapping key {key!r} already defined{_where(key_node)}")
        seen.add(key)
    loader.flatten_mapping(node)
    result = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise YamlError(f"non-string key {key!r}{_where(key_node)}")
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _where(node: Node) -> str:
    mark = node.start_mark
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def _reset(loader: _Loader, node: Node) -> Any:
    return Reset()


def _override(loader: _Loader, node: Node) -> Any:
    if isinstance(node, MappingNode):
        return Override(_mapping(loader, node))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    plain = getattr(node, "style", None) is None
    tag = loader.resolve(yaml.ScalarNode, node.value, (plain, False))  # type: ignore[no-untyped-call,unused-ignore]
    return Override(loader.yaml_constructors[tag](loader, node))


_Loader.add_constructor("!reset", _reset)
_Loader.add_constructor("!override", _override)
_Loader.add_constructor("tag:yaml.org,2002:int", _int)
_Loader.add_constructor("tag:yaml.org,2002:float", _float)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)
_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)


# Bounds far beyond any real Compose file, so a hostile one fails fast and small.
MAX_TEXT = 1 << 20  # characters
MAX_NODES = 100_000  # values once every alias is expanded


def _expanded_size(node: Node, sizes: Dict[int, int]) -> int:
    """How many values `node` stands for with its aliases expanded (memoized by node)."""
    known = sizes.get(id(node))
    if known is not None:
        if known < 0:
            raise YamlError("an alias refers to itself")
        return known
    sizes[id(node)] = -1
    total = 1
    if isinstance(node, MappingNode):
        for key, value in node.value:
            total += _expanded_size(key, sizes) + _expanded_size(value, sizes)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            total += _expanded_size(item, sizes)
    if total > MAX_NODES:
        raise YamlError(f"more than {MAX_NODES} values once its aliases are expanded")
    sizes[id(node)] = total
    return total


def load_documents(text: str) -> List[Any]:
    """Every YAML document in `text`; YamlError when it is not YAML Compose reads."""
    if len(text) > MAX_TEXT:
        raise YamlError(f"larger than {MAX_TEXT // 1024} KiB: not a Compose file")
    loader = _Loader(text)
    try:
        documents = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                _expanded_size(node, {})
            documents.append(None if node is None else loader.construct_document(node))
        return documents
    except YamlError:
        raise
    except yaml.YAMLError as exc:
        raise YamlError(" ".join(str(exc).split())) from None
    except RecursionError:
        raise YamlError("nesting too deep") from None
    finally:
        loader.dispose()
