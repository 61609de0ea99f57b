"""The protocol entry point: answers, unknown states, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mender_docker.module.main import main


def test_queries(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["SupportsRollback", str(tmp_path)]) == 0
    assert main(["NeedsArtifactReboot", str(tmp_path)]) == 0
    assert main(["ProvidePayloadFileSizes", str(tmp_path)]) == 0
    assert main(["ArtifactVerifyReboot", str(tmp_path)]) == 0
    assert capfd.readouterr().out == "Yes\nNo\nNo\n"


def test_no_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ("scope = everything\n", "scope must be one of"),
        ("engine = /nonexistent/docker\n", "not found"),
    ],
)
def test_errors_are_one_line(
    conf: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "header").mkdir()
    (tmp_path / "header" / "meta-data").write_text(
        '{"containers": ["web@sha256:' + "1" * 64 + '"], "run_args": ""}'
    )
    (tmp_path / "conf").write_text(f"data_dir = {tmp_path / 'data'}\n" + conf)
    monkeypatch.setenv("MENDER_DOCKER_CONF", str(tmp_path / "conf"))
    assert main(["Download", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("mender-docker: error:")


def test_unexpected_exceptions_become_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mender_docker.module import main as main_module

    def boom(ctx: object) -> None:
        raise ZeroDivisionError("oops")

    monkeypatch.setitem(main_module.STATES, "Cleanup", boom)
    (tmp_path / "conf").write_text(f"data_dir = {tmp_path / 'data'}\n")
    monkeypatch.setenv("MENDER_DOCKER_CONF", str(tmp_path / "conf"))
    assert main(["Cleanup", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == "mender-docker: error: Cleanup: unexpected ZeroDivisionError: oops\n"
