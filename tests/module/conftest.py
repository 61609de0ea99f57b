"""Fixtures of the module tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from mender_docker.cli.main import main as cli_main


@pytest.fixture(scope="package")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single-file module, built in-process by this interpreter (so the device-side
    run on Python 3.9 packs 3.9 bytecode)."""
    out = tmp_path_factory.mktemp("build") / "docker"
    assert cli_main(["build-module", "-o", str(out)]) == 0
    return out
