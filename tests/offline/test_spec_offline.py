"""The meta-data contract's offline keys (spec.py): images_file and loaded tags."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from mender_docker.spec import MetadataError, loaded_tag, parse_metadata

REF = "registry.example:5000/team/app@sha256:" + "ab" * 32
ID = "sha256:" + "cd" * 32


def meta(**extra: Any) -> Dict[str, Any]:
    return {"containers": [REF], "run_args": "", **extra}


def test_images_file_round_trips() -> None:
    parsed = parse_metadata(meta(images_file="images.tar", image_ids=[ID], image_sizes=[10]))
    assert parsed.images_file == "images.tar"
    assert parsed.to_dict()["images_file"] == "images.tar"
    assert parse_metadata(parsed.to_dict()) == parsed
    assert parsed.warnings == ()


def test_images_file_needs_image_ids() -> None:
    with pytest.raises(MetadataError, match="needs 'image_ids'"):
        parse_metadata(meta(images_file="images.tar"))


@pytest.mark.parametrize("bad", ["", "../images.tar", "a/b", "images tar", 5, ["x"], "-x"])
def test_images_file_must_be_a_plain_name(bad: Any) -> None:
    with pytest.raises(MetadataError, match="plain payload file name"):
        parse_metadata(meta(images_file=bad, image_ids=[ID]))


def test_loaded_tag_is_the_repository_plus_the_digest_hex() -> None:
    assert loaded_tag(REF) == "registry.example:5000/team/app:sha256-" + "ab" * 32
    tagged = "registry.example:5000/team/app:1.2@sha256:" + "ab" * 32
    assert loaded_tag(tagged) == loaded_tag(REF)  # the digest decides, not the tag
    with pytest.raises(MetadataError):
        loaded_tag("registry.example/app:latest")
