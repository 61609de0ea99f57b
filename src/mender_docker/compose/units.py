"""Compose's units: durations ("1m30s"), byte sizes ("512m") and Go's number printing."""

from __future__ import annotations

import math
import re
from decimal import Decimal

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]+)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration ("1m30s", "500ms", "1.5h", "2d"); ValueError when not one."""
    rest = text
    sign = 1.0
    if rest[:1] in "+-" and rest:
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    pos = 0
    while pos < len(rest):
        match = _DURATION_PART.match(rest, pos)
        if match is None or match.group(1) in ("", "."):
            raise ValueError(f"invalid duration {text!r}")
        unit = match.group(2)
        if unit not in _DURATION_UNITS:
            raise ValueError(f"unknown unit {unit!r} in duration {text!r}")
        total += float(match.group(1)) * _DURATION_UNITS[unit]
        pos = match.end()
    return sign * total


_SIZE_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_ram(text: str) -> int:
    """Bytes in a size as Docker reads memory sizes ("512m", "1.5g", "1GiB", "100"):
    binary multiples; ValueError when not a size."""
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    sep = max(text.rfind(c) for c in "01234567890. ")
    if sep == -1:
        raise ValueError(f"invalid size: {text!r}")
    if text[sep] != " ":
        num, suffix = text[: sep + 1], text[sep + 1 :]
    else:
        num, suffix = text[:sep], text[sep + 1 :]
    if not re.fullmatch(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", num):
        raise ValueError(f"invalid size: {text!r}")
    size = float(num)
    if size < 0:
        raise ValueError(f"invalid size: {text!r}")
    if not suffix:
        return int(size)
    lower = suffix.lower()
    if len(lower) > 3:
        raise ValueError(f"invalid suffix: {suffix!r}")
    if lower[0] == "b":
        if len(lower) > 1:
            raise ValueError(f"invalid suffix: {suffix!r}")
        return int(size)
    if lower[0] not in _SIZE_UNITS:
        raise ValueError(f"invalid suffix: {suffix!r}")
    if (len(lower) == 2 and lower[1] != "b") or (len(lower) == 3 and lower[1:] != "ib"):
        raise ValueError(f"invalid suffix: {suffix!r}")
    return int(size * _SIZE_UNITS[lower[0]])


def go_number(value: object) -> str:
    """`value` (int, float or bool) as Go's fmt.Sprint prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        if value == 0:
            return "-0" if math.copysign(1.0, value) < 0 else "0"
        sign, digits, exponent = Decimal(repr(value)).as_tuple()
        assert isinstance(exponent, int)
        text = "".join(str(d) for d in digits)
        dp = len(text) + exponent  # value = 0.<text> * 10**dp
        stripped = text.lstrip("0")
        dp -= len(text) - len(stripped)
        text = stripped.rstrip("0")
        prefix = "-" if sign else ""
        exp = dp - 1
        if exp < -4 or exp >= 6:  # Go's %v: %e when the exponent is < -4 or >= 6
            mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
            return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
        if dp <= 0:
            return prefix + "0." + "0" * (-dp) + text
        if dp >= len(text):
            return prefix + text + "0" * (dp - len(text))
        return prefix + text[:dp] + "." + text[dp:]
    return str(value)
