"""The payload side of the Update Module protocol: `stream-next` and `streams/`.

A client that streams the payload writes the path of each payload file
(`streams/<name>`) to the pipe `stream-next`, one per open, then the file's
content to that pipe; an empty write ends the payload. The client blocks until
the module reads, so every file announced is read to its end, also when the
module refuses it. Without `stream-next` the client stored the payload files in
`files/` instead.

`announced` is the one loop that reads `stream-next`; `drain_streams` (Docker
artifacts, which have no payload), `take_payload` (offline artifacts, exactly
one payload file) and `refuse_payload` (an offline artifact refused before its
payload is read) all go through it.
"""

from __future__ import annotations

import os
from typing import IO, Callable, Iterator

from mender_docker.module.errors import ModuleError
from mender_docker.module.log import log
from mender_docker.module.offline import PayloadError

STREAM_NEXT = "stream-next"


def payload_piped(tree: str) -> bool:
    """Whether the client hands the payload through pipes (else: files/ or nothing)."""
    return os.path.exists(os.path.join(tree, STREAM_NEXT))


def announced(tree: str) -> Iterator[str]:
    """The payload files the client announces (`streams/<name>`), one per read of
    `stream-next`, until the empty read that ends the payload; none without pipes."""
    next_path = os.path.join(tree, STREAM_NEXT)
    if not os.path.exists(next_path):
        return
    while True:
        with open(next_path, "rb") as handle:
            line = handle.read().decode("utf-8", "replace").strip()
        if not line:
            return
        yield line


def drain_streams(tree: str) -> None:
    """Read `stream-next` until an empty read, so the client never blocks on us.

    Docker artifacts have no payload files; should one come, it is read and discarded."""
    drain(tree, announced(tree))


def refuse_payload(tree: str) -> None:
    """Read every payload file to its end and drop it: the artifact is refused
    before its payload was read (a 5.x client whose write fails on a closed pipe
    kills the module before it can say why, see take_payload)."""
    for line in announced(tree):
        log(f"artifact refused: reading {line} to its end and dropping it")
        with open(os.path.join(tree, line), "rb") as stream:
            discard(stream)


def drain(tree: str, lines: Iterator[str]) -> None:
    """Read and discard every payload file still to come in `lines`."""
    for line in lines:
        log(f"warning: ignoring unexpected payload file {line}")
        with open(os.path.join(tree, line), "rb") as stream:
            discard(stream)


def take_payload(tree: str, name: str, consume: Callable[[IO[bytes]], None]) -> None:
    """Hand the one payload file `name` to `consume`, read what it left, and refuse
    an artifact with no payload file, another one, or a second one."""
    lines = announced(tree)
    line = next(lines, "")
    if not line:
        raise PayloadError(f"expected payload file {name}, the artifact has none")
    with open(os.path.join(tree, line), "rb") as source:
        try:
            if line != f"streams/{name}":
                raise PayloadError(
                    f"expected payload file {name}, the artifact has {line.split('/', 1)[-1]}"
                )
            consume(source)
            discard(source)
        except ModuleError:
            # Take what the client still sends: a 5.x client whose write fails on a
            # closed pipe kills the module (SIGTERM) before it can say what was wrong.
            discard(source)
            drain(tree, lines)
            raise
    extra = next(lines, "")
    if extra:
        raise PayloadError(f"unexpected extra payload file {extra.split('/', 1)[-1]}")


def discard(stream: IO[bytes]) -> None:
    """Read a stream to its end."""
    while stream.read(1 << 20):
        pass
