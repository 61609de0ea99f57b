"""`--snapshot-volumes` and a Compose service's `x-mender-snapshot` as meta-data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mender_docker.cli.gen import parse_options
from mender_docker.compose.model import ComposeError
from mender_docker.gen import build_metadata
from mender_docker.registry.client import ResolvedImage
from tests.gen.test_compose_gen import app_of

DIGEST = "sha256:" + "ab" * 32


def _image(name: str) -> ResolvedImage:
    return ResolvedImage(f"{name}:1", f"{name}@{DIGEST}", DIGEST, 10, "m")


def test_the_option_asks_for_every_container() -> None:
    options = parse_options(["-n", "r", "-t", "d", "--snapshot-volumes", "a", "b"])
    meta = build_metadata(options, [_image("reg/a"), _image("reg/b")])
    assert meta.to_dict()["snapshot_volumes"] == [1, 1]
    plain = build_metadata(parse_options(["-n", "r", "-t", "d", "a"]), [_image("reg/a")])
    assert "snapshot_volumes" not in plain.to_dict()


def test_a_compose_service_asks_for_itself(tmp_path: Path) -> None:
    app = app_of(
        tmp_path,
        "services:\n  db:\n    image: reg/db\n    x-mender-snapshot: true\n"
        "  web:\n    image: reg/web\n    x-mender-snapshot: false\n",
    )
    assert app.snapshots == (1, 0)
    options = replace(parse_options(["-n", "r", "-t", "d", "x"]), application=app)
    meta = build_metadata(options, [_image("reg/db"), _image("reg/web")])
    assert meta.to_dict()["snapshot_volumes"] == [1, 0]
    assert [item.snapshot for item in meta.plan()] == [True, False]


def test_the_compose_key_takes_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ComposeError, match="x-mender-snapshot: must be true or false"):
        app_of(tmp_path, "services:\n  db:\n    image: reg/db\n    x-mender-snapshot: yes-please\n")
