"""The payload pipes (module/streams.py) against a client on real FIFOs: every payload
file announced on stream-next is read to its end, then the end marker, so the
client never blocks; what the module consumed is measured on the client's side."""

from __future__ import annotations

import array
import fcntl
import os
import select
import termios
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Tuple

import pytest

from mender_docker.module.errors import DeploymentError
from mender_docker.module.offline import PayloadError
from mender_docker.module.streams import announced, drain_streams, payload_piped, take_payload

LIMIT = 10.0  # seconds the module and the client get before the test fails


class Client(threading.Thread):
    """What the Mender client does: for each payload file, its path on stream-next and
    its content on streams/<name>, then an empty write on stream-next. Each open of a
    FIFO blocks until the module opens the other end. `consumed` counts, per file,
    the bytes the module read (sent minus what was left in the pipe when it closed)."""

    def __init__(self, tree: Path, files: List[Tuple[str, bytes]]) -> None:
        super().__init__(daemon=True)
        self.tree, self.files = tree, files
        self.consumed: Dict[str, int] = {}
        self.broken: List[str] = []  # files whose reader went away mid-write (EPIPE)
        self.finished = False
        (tree / "streams").mkdir()
        os.mkfifo(tree / "stream-next")
        for name, _ in files:
            os.mkfifo(tree / "streams" / name)
        self.start()

    def run(self) -> None:
        for name, content in self.files:
            with open(self.tree / "stream-next", "wb") as pipe:
                pipe.write(f"streams/{name}\n".encode())
            fd = os.open(self.tree / "streams" / name, os.O_WRONLY)
            try:
                sent = 0
                while sent < len(content):
                    sent += os.write(fd, content[sent : sent + 65536])
                self.consumed[name] = sent - self._left_unread(fd)
            except BrokenPipeError:
                self.broken.append(name)
                return  # a 5.x client gives up here (and kills the module)
            finally:
                os.close(fd)
        with open(self.tree / "stream-next", "wb"):
            pass
        self.finished = True

    @staticmethod
    def _left_unread(fd: int) -> int:
        """Wait until the reader took everything or closed; what it left in the pipe."""
        poller = select.poll()
        poller.register(fd, 0)  # POLLERR: every reader closed
        deadline = time.monotonic() + LIMIT
        while True:
            count = array.array("i", [0])
            fcntl.ioctl(fd, termios.FIONREAD, count)
            if count[0] == 0 or poller.poll(0) or time.monotonic() > deadline:
                return count[0]
            time.sleep(0.002)

    def done(self) -> bool:
        self.join(LIMIT)
        return self.finished


def within(call: Callable[..., Any], *args: Any) -> None:
    """Run the module's side; fail (not hang) if it blocks, re-raise what it raised."""
    outcome: Dict[str, BaseException] = {}

    def target() -> None:
        try:
            call(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(LIMIT)
    assert not worker.is_alive(), f"{call.__name__} still blocked after {LIMIT} s"
    if "error" in outcome:
        raise outcome["error"]


def warnings(err: str) -> List[str]:
    return [line for line in err.splitlines() if "warning" in line]


def test_drain_reads_every_payload_file_to_the_end_and_the_end_marker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = Client(tmp_path, [("file0", b"x" * 300_000), ("file1", b"y")])
    within(drain_streams, str(tmp_path))
    assert client.done(), "the client still waits: stream-next was not read to its end"
    assert client.consumed == {"file0": 300_000, "file1": 1} and client.broken == []
    assert warnings(capsys.readouterr().err) == [
        "mender-docker: warning: ignoring unexpected payload file streams/file0",
        "mender-docker: warning: ignoring unexpected payload file streams/file1",
    ]


def test_drain_reads_the_end_marker_of_an_empty_payload(tmp_path: Path) -> None:
    client = Client(tmp_path, [])
    within(drain_streams, str(tmp_path))
    assert client.done()


def test_a_tree_without_pipes_has_nothing_to_read(tmp_path: Path) -> None:
    """Hand-made trees, later states, a client that stored the payload in files/."""
    assert not payload_piped(str(tmp_path))
    assert list(announced(str(tmp_path))) == []
    within(drain_streams, str(tmp_path))
    assert os.listdir(tmp_path) == []
    Client(tmp_path, [])
    assert payload_piped(str(tmp_path))


def test_take_payload_hands_over_the_file_and_reads_what_is_left(tmp_path: Path) -> None:
    content = os.urandom(1_000_000)
    client = Client(tmp_path, [("images.tar", content)])
    taken: List[bytes] = []
    within(take_payload, str(tmp_path), "images.tar", lambda s: taken.append(s.read(10)))
    assert taken == [content[:10]]
    assert client.done() and client.consumed == {"images.tar": len(content)}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "expected payload file images.tar, the artifact has none"),
        (
            [("other.tar", b"o" * 200_000), ("more", b"m" * 5)],
            "expected payload file images.tar, the artifact has other.tar",
        ),
    ],
)
def test_take_payload_refuses_a_wrong_payload_and_still_reads_it_all(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    files: List[Tuple[str, bytes]],
    message: str,
) -> None:
    client = Client(tmp_path, files)
    handed: List[IO[bytes]] = []
    with pytest.raises(PayloadError, match=message):
        within(take_payload, str(tmp_path), "images.tar", handed.append)
    assert handed == []
    assert client.done(), "the client still waits on a refused payload"
    assert client.consumed == {name: len(content) for name, content in files}
    assert warnings(capsys.readouterr().err) == [
        f"mender-docker: warning: ignoring unexpected payload file streams/{name}"
        for name, _ in files[1:]
    ]


def test_a_failing_consumer_still_leaves_nothing_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = Client(tmp_path, [("images.tar", b"i" * 500_000), ("later", b"l" * 70_000)])

    def refuse(source: IO[bytes]) -> None:
        source.read(100)
        raise DeploymentError("layer 1 does not match the header")

    with pytest.raises(DeploymentError, match="does not match"):
        within(take_payload, str(tmp_path), "images.tar", refuse)
    assert client.done(), "the client still waits after the module refused the payload"
    assert client.consumed == {"images.tar": 500_000, "later": 70_000}
    assert warnings(capsys.readouterr().err) == [
        "mender-docker: warning: ignoring unexpected payload file streams/later"
    ]


def test_take_payload_refuses_a_second_payload_file(tmp_path: Path) -> None:
    client = Client(tmp_path, [("images.tar", b"i" * 100), ("extra.tar", b"e" * 100)])
    with pytest.raises(PayloadError, match="unexpected extra payload file extra.tar"):
        within(take_payload, str(tmp_path), "images.tar", lambda s: None)
    assert client.consumed == {"images.tar": 100}
    # the module stops there without opening the extra file; let the client finish
    with open(tmp_path / "streams" / "extra.tar", "rb") as extra:
        assert extra.read() == b"e" * 100
    with open(tmp_path / "stream-next", "rb") as marker:
        assert marker.read() == b""
    assert client.done()
