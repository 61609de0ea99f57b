"""`docker run` / `podman run` arguments, parsed the way the engine's CLI parses them.

Standard library only: it ships in the single-file device module. The grammar
is spf13/pflag's, which both CLIs use (read from pflag's flag.go):

    --name=value    --name value     a value option takes the next argument,
                                     whatever it looks like (even "-d")
    --flag          --flag=false     a bool; `--flag false` leaves "false" as
                                     a positional argument
    -abc            clustered short flags: bools, then at most one value
                    option that takes the rest (`-dv/:/h`), `-v=x`, or the
                    next argument (`-v x`)
    --              ends the options; so does the first positional argument
                    (both CLIs stop at the image name)

Which options exist, their short letters and whether they take a value come
from the table in `runopts.py`, per engine: an option the engine's CLI does not
know is an error here too. `RunArgs.render()` writes every option back as one
unambiguous `--name=value` argument, so the argv the module hands the engine
means exactly what the policy checked (see module/policy.py).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from mender_docker.runopts import ALIASES, OPTIONS

ENGINES = ("docker", "podman")
TRUE_WORDS = frozenset(("1", "t", "T", "true", "TRUE", "True"))  # Go's strconv.ParseBool
FALSE_WORDS = frozenset(("0", "f", "F", "false", "FALSE", "False"))


class RunArgsError(ValueError):
    """The arguments would not parse, or name an option the engine does not have."""


@dataclass(frozen=True)
class Option:
    name: str  # the long name
    short: str  # one letter, or ""
    kind: str  # "bool", "value", or "optional" (a bare flag takes `default`)
    default: str = ""


@dataclass(frozen=True)
class Grammar:
    """The options of one engine's `run`/`create` (or of either, engine None)."""

    engine: Optional[str]
    long: Dict[str, Option]
    short: Dict[str, Option]
    aliases: Dict[str, str]

    def lookup(self, name: str) -> Optional[Option]:
        return self.long.get(self.aliases.get(name, name))


def _grammar(engine: Optional[str]) -> Grammar:
    letter = "" if engine is None else engine[0]
    long: Dict[str, Option] = {}
    short: Dict[str, Option] = {}
    for name, shorthand, kind, engines, default in OPTIONS:
        if letter and letter not in engines:
            continue
        option = Option(name, shorthand, kind, default)
        # One engine's table has each name once; for "either engine" a value
        # option wins over a bool (it swallows the next argument: the stricter reading).
        if name not in long or (kind != "bool" and long[name].kind == "bool"):
            long[name] = option
        if shorthand:
            short[shorthand] = long[name]
    aliases = {
        alias: target
        for alias, (target, engines) in ALIASES.items()
        if not letter or letter in engines
    }
    return Grammar(engine, long, short, aliases)


GRAMMARS: Dict[Optional[str], Grammar] = {engine: _grammar(engine) for engine in (*ENGINES, None)}


@dataclass(frozen=True)
class Use:
    """One option as the engine's CLI sees it."""

    option: str  # long name, aliases resolved
    value: str  # for bools "true" or "false"
    written: Tuple[str, ...]  # the argument(s) it came from

    @property
    def raw(self) -> str:
        return " ".join(self.written)

    def render(self) -> str:
        return f"--{self.option}={self.value}"


@dataclass(frozen=True)
class RunArgs:
    """A parsed argument list: the options in order, then any positional arguments."""

    uses: Tuple[Use, ...]
    positionals: Tuple[str, ...] = ()
    engine: Optional[str] = None
    # what `+` joined, for work done once per shared part (the common run_args of
    # 1000 containers); empty for a list parsed as one
    parts: Tuple[RunArgs, ...] = field(default=(), compare=False, repr=False)

    def leaves(self) -> Tuple[RunArgs, ...]:
        return self.parts or (self,)

    def values(self, option: str) -> List[str]:
        return [use.value for use in self.uses if use.option == option]

    def last(self, option: str) -> Optional[str]:
        """The value the engine keeps for a single-valued option: the last one."""
        for use in reversed(self.uses):
            if use.option == option:
                return use.value
        return None

    def is_set(self, option: str) -> bool:
        """A bool option that ends up true."""
        return self.last(option) == "true"

    def without(self, *options: str) -> RunArgs:
        kept = tuple(use for use in self.uses if use.option not in options)
        return RunArgs(kept, self.positionals, self.engine)

    def __add__(self, other: RunArgs) -> RunArgs:
        if self.positionals:  # the CLI stops at the first positional argument
            return RunArgs(self.uses, self.positionals + other.written(), self.engine)
        parts = self.leaves() + other.leaves()
        return RunArgs(self.uses + other.uses, other.positionals, self.engine, parts)

    def written(self) -> Tuple[str, ...]:
        args = tuple(arg for use in self.uses for arg in use.written)
        return args + (("--", *self.positionals) if self.positionals else ())

    def render(self) -> List[str]:
        """Every option as one `--name=value` argument: nothing can be read two ways."""
        return [use.render() for use in self.uses]

    def __str__(self) -> str:
        return shlex.join(self.render() + list(self.positionals))


def parse(args: Sequence[str], engine: Optional[str] = None) -> RunArgs:
    """Parse `run` arguments (without the image) for `engine` ("docker", "podman",
    or None for options known to either)."""
    grammar = GRAMMARS[engine]
    uses: List[Use] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if len(arg) < 2 or arg[0] != "-":
            return RunArgs(tuple(uses), tuple(args[index - 1 :]), engine)
        if arg == "--":
            return RunArgs(tuple(uses), tuple(args[index:]), engine)
        # the next argument, not a slice of the rest: slicing made the parse quadratic
        following = args[index] if index < len(args) else None
        if arg[1] == "-":
            index += _parse_long(grammar, arg, following, uses)
        else:
            index += _parse_short(grammar, arg, following, uses)
    return RunArgs(tuple(uses), (), engine)


def parse_text(text: str, engine: Optional[str] = None) -> RunArgs:
    return parse(shlex.split(text), engine)


def _unknown(grammar: Grammar, what: str) -> RunArgsError:
    engine = grammar.engine or "docker or podman"
    return RunArgsError(f"unknown option {what}: `{engine} run` has no such option")


def _parse_long(grammar: Grammar, arg: str, following: Optional[str], uses: List[Use]) -> int:
    """One `--name[=value]` argument; returns how many following arguments it took."""
    body = arg[2:]
    if body[:1] in ("-", "="):
        raise RunArgsError(f"bad option syntax: {arg!r}")
    name, eq, value = body.partition("=")
    option = grammar.lookup(name)
    if option is None:
        raise _unknown(grammar, repr(f"--{name}"))
    if eq:
        uses.append(_use(option, value, (arg,)))
        return 0
    if option.kind != "value":
        uses.append(_use(option, option.default or "true", (arg,)))
        return 0
    if following is None:
        raise RunArgsError(f"option {arg!r} needs a value")
    uses.append(_use(option, following, (arg, following)))
    return 1


def _parse_short(grammar: Grammar, arg: str, following: Optional[str], uses: List[Use]) -> int:
    """A cluster of short flags (`-dit`, `-v/x:/y`, `-v=x`, `-v x`), as pflag reads it."""
    letters = arg[1:]
    while letters:
        option = grammar.short.get(letters[0])
        if option is None:
            raise _unknown(grammar, f"{'-' + letters[0]!r} (in {arg!r})")
        if len(letters) > 2 and letters[1] == "=":
            uses.append(_use(option, letters[2:], (arg,)))
            return 0
        if option.kind != "value":
            uses.append(_use(option, option.default or "true", (arg,)))
            letters = letters[1:]
            continue
        if len(letters) > 1:
            uses.append(_use(option, letters[1:], (arg,)))
            return 0
        if following is None:
            raise RunArgsError(f"option {'-' + letters!r} needs a value")
        uses.append(_use(option, following, (arg, following)))
        return 1
    return 0


def _use(option: Option, value: str, written: Tuple[str, ...]) -> Use:
    if option.kind == "bool":
        if value in TRUE_WORDS:
            value = "true"
        elif value in FALSE_WORDS:
            value = "false"
        else:
            raise RunArgsError(f"--{option.name} takes true or false, not {value!r}")
    return Use(option.name, value, written)
