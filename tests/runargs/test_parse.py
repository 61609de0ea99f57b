"""runargs.parse follows pflag, the flag parser of the docker and podman CLIs."""

from __future__ import annotations

import shlex
from typing import List, Optional, Tuple

import pytest

from mender_docker.runargs import GRAMMARS, RunArgsError, parse, parse_text
from mender_docker.runopts import ALIASES, OPTIONS

Pairs = List[Tuple[str, str]]


def pairs(text: str, engine: Optional[str] = "docker") -> Pairs:
    return [(use.option, use.value) for use in parse_text(text, engine).uses]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("--privileged", [("privileged", "true")]),
        ("--privileged=false", [("privileged", "false")]),
        ("--privileged=T", [("privileged", "true")]),
        ("--pid host", [("pid", "host")]),
        ("--pid=host", [("pid", "host")]),
        ("--net=host", [("network", "host")]),
        ("-p 80:80", [("publish", "80:80")]),
        ("-p80:80", [("publish", "80:80")]),
        ("-p=80:80", [("publish", "80:80")]),
        # a value option takes the next argument whatever it looks like
        ("-l -d -l --volume=/:/host", [("label", "-d"), ("label", "--volume=/:/host")]),
        ("--label --detach --label --pid=host", [("label", "--detach"), ("label", "--pid=host")]),
        ("-e --privileged", [("env", "--privileged")]),
        # clusters: bools, then one value option taking the rest
        ("-dit", [("detach", "true"), ("interactive", "true"), ("tty", "true")]),
        ("-dv/:/h", [("detach", "true"), ("volume", "/:/h")]),
        ("-dv=/:/h", [("detach", "true"), ("volume", "/:/h")]),
        ("-itv /:/h", [("interactive", "true"), ("tty", "true"), ("volume", "/:/h")]),
        ("-vd", [("volume", "d")]),
        ("-d=false", [("detach", "false")]),
        ("-v=", [("volume", "=")]),  # pflag: `-v=` is the value "="
        ("--env=A=B=C", [("env", "A=B=C")]),
    ],
)
def test_parses_like_pflag(text: str, expected: Pairs) -> None:
    assert pairs(text) == expected


@pytest.mark.parametrize(
    ("text", "positionals"),
    [
        ("--privileged image", ["image"]),
        ("-e A=1 -- -v /:/h", ["-v", "/:/h"]),
        ("- -v /:/h", ["-", "-v", "/:/h"]),
        ("--tty false", ["false"]),  # a bool never takes the next argument
        ("'' --privileged", ["", "--privileged"]),
    ],
)
def test_the_first_positional_ends_the_options(text: str, positionals: List[str]) -> None:
    assert list(parse_text(text, "docker").positionals) == positionals


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("--no-such-option", "unknown option '--no-such-option'"),
        ("-Z", "unknown option '-Z'"),
        ("-dZ", "unknown option '-Z'"),
        ("-t=", "unknown option '-='"),  # pflag reads `=` as the next short flag
        ("--privileged=yes", "takes true or false"),
        ("--volume", "needs a value"),
        ("-v", "needs a value"),
        ("---x", "bad option syntax"),
        ("--=x", "bad option syntax"),
        ("--rootfs /", "unknown option '--rootfs'"),  # podman only
    ],
)
def test_refuses_what_the_cli_refuses(text: str, message: str) -> None:
    with pytest.raises(RunArgsError, match=message):
        parse_text(text, "docker")


def test_podman_only_options_parse_for_podman() -> None:
    # podman's --rootfs is a bool: the host directory is the "image" argument
    assert pairs("--rootfs", "podman") == [("rootfs", "true")]
    assert parse_text("--rootfs /", "podman").positionals == ("/",)
    assert pairs("--env-host", "podman") == [("env-host", "true")]


def test_render_reads_back_the_same() -> None:
    text = "-dit -l -d -p80:80 --net host -e A='x y' --mount type=bind,src=/a,dst=/b -v=/:/h"
    first = parse_text(text, "docker")
    again = parse(first.render(), "docker")
    assert [(u.option, u.value) for u in again.uses] == [(u.option, u.value) for u in first.uses]
    assert all(arg.startswith("--") and "=" in arg for arg in first.render())


def test_concatenation_equals_parsing_the_whole() -> None:
    common, own = "-e A=1 -dv /a:/b", "--pid host -l x"
    whole = parse(shlex.split(common) + shlex.split(own), "docker")
    joined = parse_text(common, "docker") + parse_text(own, "docker")
    assert joined.uses == whole.uses


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_table_is_consistent(engine: str) -> None:
    grammar = GRAMMARS[engine]
    for name, option in grammar.long.items():
        assert option.kind in ("bool", "value", "optional"), name
        assert (option.kind == "optional") == bool(option.default), name
    for alias, target in grammar.aliases.items():
        assert target in grammar.long, alias
    assert {o[0] for o in OPTIONS} >= {t for t, _ in ALIASES.values()}
    for letter, option in grammar.short.items():
        assert option.short == letter
