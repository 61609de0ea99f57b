"""The progress bar of --embed-images: the command line's, fed by the library's callback.

No docker-registry here: the images come from the in-memory registry served on a
loopback socket (tests/registry/servers.py).
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from mender_docker.artifact import read_artifact
from mender_docker.cli import gen as cli_gen
from mender_docker.cli.gen import main as gen_main
from mender_docker.cli.progress import ProgressBar
from mender_docker.errors import GeneratorError
from tests.registry.fake_registry import FakeRegistry
from tests.registry.servers import LoopbackServer, registry_app


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_draws_bytes_on_a_terminal_and_ends_its_line() -> None:
    screen = Terminal()
    with ProgressBar("fetching images", stream=screen) as bar:
        bar(3 * 2**20)
    assert "fetching images: 3.00MiB" in screen.getvalue()
    assert screen.getvalue().endswith("\n")
    bar.close()  # closing again writes nothing more
    assert screen.getvalue().count("\n") == 1


def test_bar_draws_nothing_before_the_first_byte() -> None:
    screen = Terminal()
    with ProgressBar("fetching images", stream=screen):
        pass  # e.g. the registry refused: the error line is the only output
    assert screen.getvalue() == ""


def test_bar_is_silent_on_a_pipe_but_counts() -> None:
    pipe = io.StringIO()
    with ProgressBar("fetching images", stream=pipe) as bar:
        bar(100)
        bar(23)
    assert pipe.getvalue() == ""
    assert bar.done == 123


def _failing_generate(seen: List[Dict[str, Any]]) -> Any:
    def generate(options: Any, resolver: Any = None, progress: Any = None) -> Any:
        seen.append({"embed": options.embed_images, "progress": progress})
        raise GeneratorError("stop here")

    return generate


def test_the_command_line_hands_a_bar_to_embedding_only(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: List[Dict[str, Any]] = []
    monkeypatch.setattr(cli_gen, "generate", _failing_generate(seen))
    assert gen_main(["--embed-images", "-n", "a", "-t", "d", "reg.example/x:1"]) == 1
    assert gen_main(["-n", "a", "-t", "d", "reg.example/x:1"]) == 1
    assert isinstance(seen[0]["progress"], ProgressBar)
    assert seen[1]["progress"] is None


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An image with a 2 MiB layer on a loopback registry; its reference."""
    fake = FakeRegistry(realm_scheme="http")
    fake.add_layered_image("team/app", "1", [{"big": os.urandom(2 * 2**20)}, {"s": b"s"}])
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    with LoopbackServer(registry_app(fake)) as registry:
        fake.host = registry.host
        yield f"{registry.host}/team/app:1"


def test_embedding_on_a_terminal_draws_the_bar(
    served: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    out = tmp_path / "a.mender"
    assert gen_main(["--embed-images", "-n", "a", "-t", "d", "-o", str(out), served]) == 0
    assert "fetching images: " in screen.getvalue() and "MiB" in screen.getvalue()
    assert screen.getvalue().endswith("\n")
    assert "Embedded images (images.tar)" in capsys.readouterr().out


def test_embedding_in_a_ci_log_writes_no_bar(
    served: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a.mender"
    assert gen_main(["--embed-images", "-n", "a", "-t", "d", "-o", str(out), served]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "Embedded images (images.tar)" in captured.out
    meta = read_artifact(str(out)).meta_data
    assert meta is not None and json.dumps(meta["containers"]).count("@sha256:") == 1
