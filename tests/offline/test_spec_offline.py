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


L1, L2 = "sha256:" + "11" * 32, "sha256:" + "22" * 32


def test_delta_keys_round_trip_and_plan() -> None:
    parsed = parse_metadata(meta(images_file="images.tar", image_ids=[ID], delta_base="v1",
                                 delta_layers=[f"{L1},{L2}"]))
    assert parsed.delta_base == "v1"
    assert parsed.plan()[0].base_layers == (L1, L2)
    assert parse_metadata(parsed.to_dict()) == parsed
    whole = parse_metadata(meta(images_file="images.tar", image_ids=[ID], delta_base="v1",
                                delta_layers=[""]))
    assert whole.plan()[0].base_layers == ()
    assert parse_metadata(meta()).plan()[0].base_layers == ()


@pytest.mark.parametrize("extra, words", [
    (dict(delta_base="v1"), "come together"),
    (dict(delta_layers=[L1]), "come together"),
    (dict(delta_base="", delta_layers=[L1]), "non-empty string"),
    (dict(delta_base="v1", delta_layers=["sha256:12"]), "diff IDs"),
    (dict(delta_base="v1", delta_layers=[f"{L1},"]), "diff IDs"),
    (dict(delta_base="v1", delta_layers=[f"{L1} {L2}"]), "diff IDs"),
    (dict(delta_base="v1", delta_layers=[",".join([L1] * 129)]), "diff IDs"),
    (dict(delta_base="v1", delta_layers=[L1, L2]), "entries"),
])
def test_bad_delta_keys(extra: Dict[str, Any], words: str) -> None:
    with pytest.raises(MetadataError, match=words):
        parse_metadata(meta(images_file="images.tar", image_ids=[ID], **extra))


def test_delta_needs_an_offline_artifact() -> None:
    with pytest.raises(MetadataError, match="only offline artifacts are deltas"):
        parse_metadata(meta(delta_base="v1", delta_layers=[L1]))


def test_one_image_one_layer_list() -> None:
    doc = {"containers": [REF, REF], "run_args": "", "names": ["a", "b"],
           "images_file": "images.tar", "image_ids": [ID, ID], "delta_base": "v1",
           "delta_layers": [L1, L2]}
    with pytest.raises(MetadataError, match="two layer lists"):
        parse_metadata(doc)
