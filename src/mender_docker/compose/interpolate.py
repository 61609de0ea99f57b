"""Variable substitution and `.env` files, the way Compose (compose-go) does them.

`substitute` is compose-go's template engine: `$VAR`, `${VAR}`, `${VAR:-default}`,
`${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}` and
`$$` for a literal `$`. Defaults, alternatives and error messages are themselves
substituted, so `${A:-${B:-c}}` works. A `$` not followed by a name, `{` or `$`
stays as it is; `${` that does not form a valid template is an error.

`parse_dotenv` is compose-go's `.env` parser: `KEY=value`, `KEY: value`,
`export KEY=value`, `#` comments (inline only after a space on unquoted values),
single quotes (literal), double quotes (escapes `\\n \\t \\" \\\\ \\$`... then
substitution), unquoted values (substituted), and a bare `KEY` line that takes
KEY from the lookup when it has one.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Dict, Optional, Tuple

Lookup = Callable[[str], Optional[str]]


class InterpolationError(ValueError):
    """A template is malformed or a required variable (`:?`, `?`) is missing."""


_PATTERN = re.compile(
    r"\$(?i:(?P<escaped>\$)|(?P<named>[_a-z][_a-z0-9]*)"
    r"|\{(?:(?P<braced>[_a-z][_a-z0-9]*(?::?[-+?](.*))?)\}|(?P<invalid>)))"
)

# The operators, in compose-go's order of preference when two start at the same place.
_OPERATORS = (":?", "?", ":-", "-", ":+", "+")


def substitute(template: str, lookup: Lookup) -> str:
    """`template` with its variables replaced; InterpolationError on a bad template."""
    out = []
    pos = 0
    for match in _PATTERN.finditer(template):
        out.append(template[pos : match.start()])
        out.append(_replace(match.group(0), lookup, template))
        pos = match.end()
    out.append(template[pos:])
    return "".join(out)


def _first_closing_brace(text: str) -> int:
    depth = 0
    i = 0
    while i < len(text):
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        if text[i] == "{":
            depth += 1
            i += 1
        i += 1
    return -1


def _operator(text: str) -> str:
    best = ""
    best_at = -1
    for op in _OPERATORS:
        at = text.find(op)
        if at >= 0 and (best_at < 0 or at < best_at):
            best, best_at = op, at
    return best


def _replace(substring: str, lookup: Lookup, template: str) -> str:
    op = _operator(substring)
    closing = _first_closing_brace(substring)
    rest = ""
    if closing > -1:
        rest = substring[closing + 1 :]
        substring = substring[: closing + 1]
    match = _PATTERN.match(substring)
    if match is None or match.group("invalid") is not None and match.group("braced") is None:
        raise InterpolationError(f"invalid interpolation format in {template!r}")
    if match.group("escaped"):
        return "$"
    name = match.group("named")
    if name:
        return lookup(name) or ""
    braced = match.group("braced")
    if not braced:
        raise InterpolationError(f"invalid interpolation format in {template!r}")
    if op and op in braced:
        var, arg = braced.split(op, 1)
        value = lookup(var)
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                reason = substitute(arg, lookup)
                message = f"required variable {var} is missing a value"
                raise InterpolationError(f"{message}: {reason}" if reason else message)
            result = value
        elif op in (":-", "-"):
            if value is None or (op == ":-" and value == ""):
                result = substitute(arg, lookup)
            else:
                result = value
        else:  # ":+", "+"
            if value is not None and (op == "+" or value != ""):
                result = substitute(arg, lookup)
            else:
                result = value or ""
        return result + substitute(rest, lookup)
    return lookup(braced) or ""


# --- .env files ------------------------------------------------------------------

_ESCAPE = re.compile(r'\\(?:[abcfnrtv$"\\]|0\d{0,3})')
_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    '"': '"', "\\": "\\",
}
_EXPORT = re.compile(r"^export\s+")
_HSPACE = "\t\v\f\r \x85\xa0"


def _expand_escapes(value: str) -> str:
    def one(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "\\$":
            return "$$"
        if text.startswith("\\0"):
            digits = text[2:]
            if len(digits) == 3 and all(c in "01234567" for c in digits) and digits <= "377":
                return chr(int(digits, 8))
            return "\\" + digits  # compose drops the 0 even when the escape is invalid
        return _SIMPLE_ESCAPES.get(text[1], text)

    return _ESCAPE.sub(one, value)


class DotenvError(ValueError):
    """A `.env`/env_file line compose would refuse."""


def parse_dotenv(
    text: str, lookup: Optional[Lookup] = None, into: Optional[Dict[str, str]] = None
) -> Dict[str, str]:
    """The variables of an env file. `lookup` resolves `${VAR}` before the file's own
    earlier variables (and `into`, which the result is written into, if given)."""
    out: Dict[str, str] = {} if into is None else into
    look: Lookup = lookup or (lambda _k: None)

    def expand(value: str) -> str:
        def resolve(key: str) -> Optional[str]:
            found = look(key)
            return found if found is not None else out.get(key)

        try:
            return substitute(value, resolve)
        except InterpolationError as exc:
            raise DotenvError(str(exc)) from None

    if text.startswith("\ufeff"):
        text = text[1:]
    line = 1
    src = text
    while True:
        # skip blank space and comment lines
        while True:
            stripped = src.lstrip()
            line += src[: len(src) - len(stripped)].count("\n")
            src = stripped
            if src.startswith("#"):
                nl = src.find("\n")
                src = "" if nl < 0 else src[nl:]
                continue
            break
        if not src:
            break
        key, src, inherited = _key(src, line)
        if inherited:
            if " " not in key:
                line += 1
            found = look(key)
            if found is not None:
                out[key] = found
            continue
        value, src, line = _value(src, line, expand)
        out[key] = value
    return out


def _key(src: str, line: int) -> Tuple[str, str, bool]:
    if _EXPORT.match(src):
        src = src[len("export") :].lstrip(_HSPACE)
    key = ""
    offset = 0
    inherited = False
    for i, char in enumerate(src):
        if char in _HSPACE:
            continue
        if char in "=:\n":
            key = src[:i]
            offset = i + 1
            inherited = char == "\n"
            break
        if char in "_.-[]":
            continue
        category = unicodedata.category(char)
        if category.startswith("L") or category.startswith("N"):
            continue
        first = src.split("\n", 1)[0]
        raise DotenvError(f"line {line}: unexpected character {char!r} in variable name {first!r}")
    else:
        # no separator up to the end of the file: compose reads the line as a value of ""
        key, offset = "", 0
    key = key.rstrip()
    if " " in key:
        raise DotenvError(f"line {line}: key cannot contain a space")
    return key, src[offset:].lstrip(_HSPACE), inherited


def _value(src: str, line: int, expand: Callable[[str], str]) -> Tuple[str, str, int]:
    if not src or src[0] not in "'\"":
        value, _, rest = src.partition("\n")
        line += 1
        value = value.split(" #", 1)[0].rstrip()
        return expand(value), rest, line
    quote = src[0]
    chars = []
    escaped = False
    for i in range(1, len(src)):
        char = src[i]
        if char == "\n":
            line += 1
        if char != quote:
            if not escaped and char == "\\":
                escaped = True
                continue
            if escaped:
                escaped = False
                chars.append("\\")
            chars.append(char)
            continue
        if escaped:
            escaped = False
            chars.append(char)
            continue
        value = "".join(chars)
        if quote == '"':
            value = expand(_expand_escapes(value))
        return value, src[i + 1 :], line
    end = src.find("\n")
    raise DotenvError(f"line {line}: unterminated quoted value {src[: end if end >= 0 else None]}")
