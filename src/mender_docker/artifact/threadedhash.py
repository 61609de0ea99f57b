"""sha256 computed in a worker thread while the caller produces the next data.

hashlib releases the GIL while it hashes, so on two cores hashing a payload overlaps
with reading and decompressing it. Data is copied into two reusable 4 MiB buffers,
each hashed in one call: few hand-offs (each costs a GIL round-trip) and no fresh
large allocations (glibc serves those with a new mmap, and the page faults cost more
than the copy). Why 4 MiB, measured on a 1 GiB payload: with 1-2 MiB buffers the
hashing thread needed 0.9 s of CPU, with 4 MiB 0.6 s (as much as hashing one hot
buffer), presumably because a buffer larger than the producing core's L2 cache has
left it by the time it is hashed, and lines come from the shared L3 instead of the
other core. Memory: BUFFERS x BUFFER.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, List, Optional

BUFFER = 4 << 20
BUFFERS = 2  # one being filled while the other is hashed


class ThreadedSha256:
    """update() from one thread, hexdigest() once at the end; `executor` must have a
    single worker (it runs the updates in order) and may be shared by successive objects.
    `size_hint` (the data's length, if known) keeps buffers for small files small."""

    def __init__(self, executor: ThreadPoolExecutor, size_hint: Optional[int] = None) -> None:
        self._executor = executor
        self._size = BUFFER if size_hint is None else max(1, min(BUFFER, size_hint))
        self._digest = hashlib.sha256()
        self._buffers: List[bytearray] = []
        self._pending: List[Optional[Future[None]]] = [None] * BUFFERS
        self._index = 0  # buffer being filled
        self._fill = 0  # bytes in it

    def update(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while view:
            if self._fill == 0:
                self._claim()
            buffer = self._buffers[self._index]
            n = min(len(view), self._size - self._fill)
            buffer[self._fill:self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == self._size:
                self._submit()

    def hexdigest(self) -> str:
        if self._fill:
            self._submit()
        self.wait()
        return self._digest.hexdigest()

    def wait(self) -> None:
        """Until every submitted update ran (re-raising its error, if any)."""
        for index, future in enumerate(self._pending):
            if future is not None:
                self._pending[index] = None
                future.result()

    def _claim(self) -> None:
        """Make the current buffer free to fill: allocated, and its last hash done."""
        if len(self._buffers) <= self._index:
            self._buffers.append(bytearray(self._size))
        future = self._pending[self._index]
        if future is not None:
            self._pending[self._index] = None
            future.result()

    def _submit(self) -> None:
        buffer = self._buffers[self._index]
        chunk = buffer if self._fill == self._size else memoryview(buffer)[:self._fill]
        self._pending[self._index] = self._executor.submit(self._digest.update, chunk)
        self._index = (self._index + 1) % BUFFERS
        self._fill = 0
