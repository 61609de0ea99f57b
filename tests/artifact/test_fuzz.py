"""Property: a mutated artifact is either read fine or refused with ArtifactError only."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mender_docker.artifact import (
    ArtifactError,
    ArtifactSpec,
    PayloadFile,
    read_artifact,
    write_artifact,
)

SPEC = ArtifactSpec(artifact_name="fuzz", device_types=["d"], payload_type="docker",
                    provides={"rootfs-image.docker.version": "fuzz"},
                    meta_data={"containers": [], "run_args": ""},
                    scripts=[("ArtifactInstall_Enter_00", b"#!/bin/sh\n")])


def _valid(compression: str) -> bytes:
    out = io.BytesIO()
    write_artifact(out, SPEC, files=[PayloadFile.from_bytes("p.bin", bytes(range(256)) * 8)],
                   compression=compression)
    return out.getvalue()


VALID = {c: _valid(c) for c in ("none", "gzip", "lzma", "zstd")}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(VALID[draw(st.sampled_from(sorted(VALID)))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "zero"]))
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del raw[at:]
        elif kind == "zero":
            raw[at:at + 512] = bytes(len(raw[at:at + 512]))
        else:
            other = VALID[draw(st.sampled_from(sorted(VALID)))]
            start = draw(st.integers(0, len(other) - 1))
            raw[at:at + draw(st.integers(0, 2048))] = other[start:start + draw(
                st.integers(1, 2048))]
    return bytes(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_raise_only_artifact_error(data: bytes) -> None:
    try:
        info = read_artifact(io.BytesIO(data))
    except ArtifactError as exc:
        assert "\n" not in str(exc)
    else:  # a mutation that left it valid (e.g. in padding) must still read the same payload
        assert [f.name for f in info.files] == ["p.bin"]


def test_valid_inputs_read(tmp_path: Path) -> None:
    for raw in VALID.values():
        assert read_artifact(io.BytesIO(raw)).artifact_name == "fuzz"
