"""Download drains the client's stream-next pipe so the client never blocks."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import List

from mender_docker.module.download import drain_streams


def client(tree: Path, files: List[bytes], done: List[str]) -> None:
    """What the Mender client does: one line per payload file, then an empty write."""
    for index, content in enumerate(files):
        with open(tree / "stream-next", "wb") as pipe:
            pipe.write(f"streams/file{index}\n".encode())
        with open(tree / "streams" / f"file{index}", "wb") as stream:
            stream.write(content)
    with open(tree / "stream-next", "wb"):
        pass
    done.append("finished")


def test_drains_payload_files_and_the_end_marker(tmp_path: Path) -> None:
    (tmp_path / "streams").mkdir()
    os.mkfifo(tmp_path / "stream-next")
    for index in range(2):
        os.mkfifo(tmp_path / "streams" / f"file{index}")
    done: List[str] = []
    writer = threading.Thread(target=client, args=(tmp_path, [b"x" * 300_000, b"y"], done))
    writer.start()
    drain_streams(str(tmp_path))
    writer.join(timeout=10)
    assert done == ["finished"]


def test_no_stream_next_is_fine(tmp_path: Path) -> None:
    drain_streams(str(tmp_path))  # hand-made trees and later states have none
