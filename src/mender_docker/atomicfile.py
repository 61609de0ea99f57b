"""Replace a file so that a crash or power cut leaves the old or the new one, whole.

The one way this project writes a file that must survive a crash: the journal and the
deployment ID on the device, the packed module, the artifacts the generator writes.
A temp file beside the target, fsync, os.replace, then fsync of the directory (the
rename itself must be durable). Standard library only: it ships with the device module.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator, Optional


@contextlib.contextmanager
def atomic_file(path: str, mode: Optional[int] = None) -> Iterator[IO[bytes]]:
    """A new file (open for reading and writing) that replaces `path` when the block
    ends without an error; on an error it is removed and `path` is untouched."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                dir=directory)
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_atomic(path: str, data: bytes, mode: Optional[int] = None) -> None:
    """`atomic_file` for bytes at hand."""
    with atomic_file(path, mode) as handle:
        handle.write(data)
