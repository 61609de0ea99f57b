"""Compose's split of a string `command:`/`entrypoint:` into words (go-shellwords).

Like a POSIX shell without expansion: blanks separate words, `'...'` is literal,
`"..."` keeps blanks, a backslash escapes the next character (inside double
quotes too, unlike sh). Compose stops reading at an unquoted `;`, `&`, `|`, `<`
or `>` and silently drops the rest; we refuse such a command instead (use the
list form, or `["sh", "-c", "..."]`).
"""

from __future__ import annotations

from typing import List


class ShellwordsError(ValueError):
    """The string is not a command line compose can split, or compose would cut it."""


def split(line: str) -> List[str]:
    args: List[str] = []
    buf = ""
    escaped = double = single = backquote = dollar = False
    got = False
    for char in line:
        if escaped:
            buf += char
            escaped = False
            got = True
            continue
        if char == "\\":
            if single:
                buf += char
            else:
                escaped = True
            continue
        if char in " \t\r\n":
            if single or double or backquote or dollar:
                buf += char
            elif got:
                args.append(buf)
                buf = ""
                got = False
            continue
        if char == "`":
            if not single and not double and not dollar:
                backquote = not backquote
        elif char == ")":
            if not single and not double and not backquote:
                dollar = not dollar
        elif char == "(":
            if not single and not double and not backquote:
                if not dollar and buf.endswith("$"):
                    dollar = True
                    buf += "("
                    continue
                raise ShellwordsError(f"invalid command line string {line!r}")
        elif char == '"':
            if not single and not dollar:
                if double:
                    got = True
                double = not double
                continue
        elif char == "'":
            if not double and not dollar:
                if single:
                    got = True
                single = not single
                continue
        elif char in ";&|<>":
            if not (single or double or backquote or dollar):
                raise ShellwordsError(
                    f"{char!r} in {line!r}: compose would silently drop everything from it on;"
                    ' use the list form, e.g. ["sh", "-c", "..."]'
                )
        got = True
        buf += char
    if got:
        args.append(buf)
    if escaped or single or double or backquote or dollar:
        raise ShellwordsError(f"invalid command line string {line!r}")
    return args
