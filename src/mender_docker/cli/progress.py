"""Progress of a download on the command line: a tqdm bar on stderr, on a terminal only.

The library reports bytes through a callback (`registry.export.Progress`,
called with the number of bytes just fetched); `ProgressBar` is such a
callback. On a pipe or in a CI log it writes nothing: a bar redrawn with
carriage returns is noise there, and the summary on stdout already says what
was fetched.
"""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from tqdm import tqdm


class ProgressBar:
    """Bytes fetched and the rate, redrawn at most 10 times a second from the first
    byte on; silent unless `stream` (default stderr) is a terminal."""

    def __init__(self, label: str, stream: Optional[IO[str]] = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = _is_terminal(self.stream)
        self.done = 0
        self._bar: Optional[tqdm[Any]] = None

    def __call__(self, count: int) -> None:
        self.done += count
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm as bar  # only when it draws: no import cost in CI logs

            self._bar = bar(
                desc=self.label,
                unit="iB",  # with unit_divisor 1024: KiB, MiB, GiB
                unit_scale=True,
                unit_divisor=1024,
                file=self.stream,
                mininterval=0.1,
                dynamic_ncols=True,
                leave=True,
            )
        self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()  # the last state stays on its own line
            self._bar = None
        self.enabled = False  # nothing after close

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
