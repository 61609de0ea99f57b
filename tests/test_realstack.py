"""The fixtures themselves work: an image goes through the real registry."""

from __future__ import annotations

from tests.realstack import ImageFactory, Registry, run


def test_image_round_trips_through_registry(
    image_factory: ImageFactory, registry: Registry
) -> None:
    pinned = image_factory.build("fixture/check")
    assert pinned.startswith(f"{registry.host}/fixture/check@sha256:")
    out = run(["docker", "run", "--rm", pinned, "cat", "/www/index.html"]).stdout
    assert out == "fixture/check:latest\n"
