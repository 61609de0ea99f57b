"""The device's own strict tar header parser (module/offline.py, issue 10 items 9 and 10).

Python's tarfile and Go's archive/tar (what `docker load` and `podman load` read
with) disagree on non-canonical headers; PayloadChecker must only pass headers
both read the same way, and keep its memory bounded whatever a header says.
Tars are built byte by byte here; the last test feeds the item 9 tar to the
real `docker load`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import pytest

from mender_docker.module import offline
from mender_docker.module.offline import PayloadChecker, PayloadError
from mender_docker.offline import payload_file
from mender_docker.registry.export import Blob, ExportedImage
from mender_docker.spec import loaded_tag
from tests.offline.checking import run_check
from tests.realstack import unique

BLOCK = 512
ZEROS = bytes(BLOCK)
TAG = "registry.example:5000/app:sha256-" + "a" * 64
FIELDS: Dict[str, Tuple[int, int]] = {
    "name": (0, 100),
    "mode": (100, 108),
    "uid": (108, 116),
    "gid": (116, 124),
    "size": (124, 136),
    "mtime": (136, 148),
    "chksum": (148, 156),
    "type": (156, 157),
    "linkname": (157, 257),
    "magic": (257, 265),
    "uname": (265, 297),
    "gname": (297, 329),
    "devmajor": (329, 337),
    "devminor": (337, 345),
    "prefix": (345, 500),
    "pad": (500, 512),
}
# item 9: 0 to Python's tarfile (stops at the first NUL), 512 to Go (trims NULs)
NUL_WRAPPED_512 = b"\x00" + b"0000001000" + b"\x00"
# item 10: -2 to Python's tarfile
NEGATIVE_BASE256 = b"\xff" * 11 + b"\xfe"


def header(name: str, length: int = 0, /, **fields: bytes) -> bytes:
    """A ustar header for `length` bytes as Python's and Go's writers make it, with
    `fields` (raw bytes, NUL-padded to the field's width) put over it; the checksum
    is computed afterwards unless `fields` sets it."""
    block = bytearray(BLOCK)
    base = {
        "name": name.encode(),
        "mode": b"0000644\x00",
        "uid": b"0000000\x00",
        "gid": b"0000000\x00",
        "size": b"%011o\x00" % length,
        "mtime": b"00000000000\x00",
        "chksum": b" " * 8,
        "type": b"0",
        "magic": b"ustar\x0000",
    }
    for field, value in {**base, **fields}.items():
        start, end = FIELDS[field]
        assert len(value) <= end - start, field
        block[start:end] = value.ljust(end - start, b"\x00")
    if "chksum" not in fields:
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def member(name: str, data: bytes, **fields: bytes) -> bytes:
    return header(name, len(data), **fields) + padded(data)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Image(NamedTuple):
    """A one-image payload's parts: manifest.json, a config, two layer names."""

    manifest: bytes
    config_name: str
    config: bytes
    layers: List[str]
    expected: Dict[str, str]


def small_image(tag: str = TAG, layers: Tuple[bytes, ...] = (b"one", b"two")) -> Image:
    names = [sha(content) + ".tar" for content in layers]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": []}, "os": "linux"}).encode()
    config_name = sha(config) + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": names}]).encode()
    return Image(manifest, config_name, config, names, {tag: "sha256:" + sha(config)})


def prologue(image: Image) -> bytes:
    """manifest.json and the config: the canonical members before the layers."""
    return member("manifest.json", image.manifest) + member(image.config_name, image.config)


def good_payload(image: Image) -> bytes:
    first, second = image.layers
    return (
        prologue(image)
        + member(first, b"layer one" * 100)
        + member(second, b"layer two")
        + ZEROS * 2
    )


# ---------------------------------------------------------------------------
# item 9: a size field Python and Go read differently hides a second manifest.json


class HiddenManifest(NamedTuple):
    data: bytes
    expected: Dict[str, str]  # what the signed header names
    hidden_tag: str  # what only the engine sees


def hidden_manifest_tar(honest_tag: str, hidden_tag: str, arch: str = "amd64") -> HiddenManifest:
    """Python's view: manifest.json (honest), its config, layer one (size 0), layer
    two (whose data is the hidden tar), end. Go's view: manifest.json, config,
    layer one of 512 bytes (layer two's header), then a second manifest.json
    tagging `hidden_tag`, that image's config and layer, end."""
    image = small_image(honest_tag)
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo("hidden.txt")
        info.size = 7
        archive.addfile(info, io.BytesIO(b"hidden\n"))
    layer_tar = layer.getvalue()
    layer_name = sha(layer_tar) + ".tar"
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(layer_tar)]},
        }
    ).encode()
    config_name = sha(config) + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [hidden_tag], "Layers": [layer_name]}]
    ).encode()
    inner = (
        member("manifest.json", manifest)
        + member(config_name, config)
        + member(layer_name, layer_tar)
    )
    first, second = image.layers
    data = (
        prologue(image)
        + header(first, size=NUL_WRAPPED_512)
        + header(second, len(inner))
        + inner
        + ZEROS * 2
    )
    return HiddenManifest(data, image.expected, hidden_tag)


def test_item9_python_tarfile_sees_one_manifest_where_go_sees_two() -> None:
    """The disagreement itself, Python's side: tarfile lists one manifest.json and
    reads the NUL-wrapped size as 0 (the real test shows docker's side)."""
    crafted = hidden_manifest_tar(TAG, "hidden/image:tag")
    with tarfile.open(fileobj=io.BytesIO(crafted.data)) as archive:
        members = archive.getmembers()
    assert [m.name for m in members].count("manifest.json") == 1
    assert members[2].size == 0  # Go reads 512 here
    assert members[3].size > 0


def test_item9_nul_wrapped_size_hiding_a_manifest_is_refused() -> None:
    crafted = hidden_manifest_tar(TAG, "hidden/image:tag")
    forwarded, error = run_check(crafted.data, crafted.expected)
    hider = small_image(TAG).layers[0]
    assert error == (
        f"payload member {hider!r} has a size field {NUL_WRAPPED_512!r} starting with "
        f"NUL or space (tar header at offset {len(prologue(small_image(TAG)))})"
    )
    assert forwarded == prologue(small_image(TAG))  # the crafted header never went on


def test_item9_on_manifest_json_itself_is_refused() -> None:
    image = small_image()
    data = header("manifest.json", size=NUL_WRAPPED_512) + good_payload(image)
    forwarded, error = run_check(data, image.expected)
    assert "'manifest.json' has a size field" in error
    assert "offset 0" in error
    assert forwarded == b""


# ---------------------------------------------------------------------------
# one non-canonical header after a valid manifest.json and config


def layer_header_payload(**fields: bytes) -> Tuple[bytes, Image, int]:
    """A payload whose first layer header carries `fields`; the header's offset."""
    image = small_image()
    first, second = image.layers
    start = prologue(image)
    data = start + header(first, 9, **fields) + padded(b"layer one") + member(second, b"x")
    return data + ZEROS * 2, image, len(start)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        pytest.param({"size": NUL_WRAPPED_512}, "size field .* starting with NUL", id="item9"),
        pytest.param({"size": NEGATIVE_BASE256}, "base-256 size field", id="item10"),
        pytest.param(
            {"size": b"\x80" + (9).to_bytes(11, "big")}, "base-256 size field", id="base256"
        ),
        pytest.param({"size": b" 0000000011\x00"}, "starting with NUL or space", id="space"),
        pytest.param({"size": b"\x0000000000011"}, "starting with NUL or space", id="nul"),
        pytest.param({"size": b"-0000000011\x00"}, "not octal digits", id="minus"),
        pytest.param({"size": b"0000000011\x007"}, "not octal digits", id="digit-after-nul"),
        pytest.param({"size": b"00000000011x"}, "not octal digits", id="garbage"),
        pytest.param({"size": b"0000000011 x"}, "not octal digits", id="garbage-after-space"),
        pytest.param({"size": b"00000000019\x00"}, "not octal digits", id="digit-9"),
        pytest.param({"size": b"\x00" * 12}, "size field .* starting with NUL", id="empty"),
        pytest.param({"mode": b"00006440"}, "mode field .* without a NUL", id="mode-full"),
        pytest.param({"uid": b"\x00" * 8}, "uid field .* starting with NUL", id="uid-empty"),
        pytest.param({"gid": b"\xff" * 8}, "base-256 gid field", id="gid-base256"),
        pytest.param({"mtime": b"0000000000\x00x"}, "mtime field", id="mtime-garbage"),
        pytest.param({"devmajor": b" 000000\x00"}, "devmajor field", id="devmajor"),
        pytest.param({"chksum": b" 12345\x00 "}, "chksum field .* starting with", id="chksum"),
        pytest.param({"magic": b"ustar\x00  "}, "magic/version", id="ustar-gnu-version"),
        pytest.param({"magic": b"ustar 00"}, "magic/version", id="gnu-ustar-version"),
        pytest.param({"magic": b""}, "magic/version", id="v7"),
        pytest.param({"prefix": b"evil"}, "non-empty prefix field", id="prefix"),
        pytest.param({"pad": bytes(8) + b"tar\x00"}, "non-empty padding", id="star-trailer"),
        pytest.param({"linkname": b"/etc/passwd"}, "non-empty linkname", id="linkname"),
        pytest.param({"type": b"x"}, r"not a regular file \(type b'x'\)", id="pax"),
        pytest.param({"type": b"L"}, "not a regular file", id="gnu-longname"),
        pytest.param({"type": b"1"}, "not a regular file", id="hardlink"),
        pytest.param({"uname": b"root\x00x"}, "after the NUL .* uname", id="uname"),
    ],
)
def test_non_canonical_header_is_refused(fields: Dict[str, bytes], problem: str) -> None:
    data, image, offset = layer_header_payload(**fields)
    forwarded, error = run_check(data, image.expected)
    assert error.startswith(f"payload member {image.layers[0]!r} "), error
    assert error.endswith(f"(tar header at offset {offset})"), error
    assert "\n" not in error
    assert re.search(problem, error), error
    assert forwarded == data[:offset]


def test_bytes_after_the_name_terminator_are_refused() -> None:
    image = small_image()
    first, second = image.layers
    start = prologue(image)
    name = first.encode() + b"\x00evil"  # Python and Go both stop at the NUL; still refused
    data = start + header("", 1, name=name) + padded(b"x") + ZEROS * 2
    forwarded, error = run_check(data, image.expected)
    assert error == (
        f"payload member {first!r} has bytes after the NUL that ends its name field "
        f"(tar header at offset {len(start)})"
    )
    assert forwarded == start


@pytest.mark.parametrize("how", ["wrong", "off-by-one"])
def test_bad_checksum_is_refused(how: str) -> None:
    image = small_image()
    good = header(image.layers[0], 9)
    total = int(good[148:154], 8)
    value = 0o1234 if how == "wrong" else total + 1
    data, _, offset = layer_header_payload(chksum=b"%06o\x00 " % value)
    assert data[offset + 148 : offset + 156] == b"%06o\x00 " % value
    forwarded, error = run_check(data, image.expected)
    assert f"has a bad checksum (field {value:o}, the header sums to {total:o})" in error
    assert forwarded == data[:offset]


# ---------------------------------------------------------------------------
# canonical variants both readers agree on pass


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="ustar"),
        pytest.param({"magic": b"ustar  \x00"}, id="gnu"),
        pytest.param({"size": b"000000000011"}, id="size-12-digits"),
        pytest.param({"size": b"11 \x00 \x00"}, id="size-short-mixed-terminators"),
        pytest.param({"mode": b"000644 \x00", "uid": b"1750 \x00"}, id="space-terminated"),
        pytest.param({"devmajor": b"0000000\x00", "devminor": b"0000000\x00"}, id="dev"),
        pytest.param({"uname": b"root", "gname": b"r" * 32}, id="uname-gname"),
        pytest.param({"type": b"\x00"}, id="old-regular-type"),
    ],
)
def test_canonical_header_variants_pass(fields: Dict[str, bytes]) -> None:
    data, image, offset = layer_header_payload(**fields)
    forwarded, error = run_check(data, image.expected)
    assert error == ""
    assert forwarded == data
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:  # Python reads it the same way
        assert archive.getmember(image.layers[0]).size == 9


def test_signed_checksum_is_accepted() -> None:
    """Go and Python accept the checksum some old tars compute over signed bytes."""
    block = bytearray(header(small_image().layers[0], 9, uname=b"\xe9ric"))
    unsigned = 8 * 32 + sum(block[:148]) + sum(block[156:])
    signed = unsigned - 256  # one byte with the high bit set
    block[148:156] = b"%06o\x00 " % signed
    parsed = offline.parse_header(bytes(block), 0)
    assert (parsed.name, parsed.size, parsed.mode) == (small_image().layers[0], 9, 0o644)


def test_parse_header_reads_every_field() -> None:
    info = tarfile.TarInfo("manifest.json")
    info.size, info.mode, info.uid, info.gid, info.mtime = 0o1234567, 0o600, 1000, 100, 1700000000
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        parsed = offline.parse_header(info.tobuf(format=fmt), 0)
        assert parsed == ("manifest.json", 0o1234567, 0o600, 1000, 100, 1700000000)


def python_tar(image: Image, fmt: int) -> bytes:
    """The same payload written by Python's tarfile (record padding and all)."""
    out = io.BytesIO()
    first, second = image.layers
    contents = [
        ("manifest.json", image.manifest),
        (image.config_name, image.config),
        (first, b"layer one" * 1000),
        (second, b""),
    ]
    with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
        for name, data in contents:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.uname, info.gname = len(data), 1700000000, "root", "root"
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(
    "fmt",
    [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT],
    ids=["ustar", "gnu", "pax"],
)
def test_python_tarfile_payload_passes(fmt: int) -> None:
    image = small_image()
    data = python_tar(image, fmt)
    assert len(data) % tarfile.RECORDSIZE == 0  # zeros after the end-of-archive blocks
    forwarded, error = run_check(data, image.expected)
    assert error == ""
    assert forwarded == data


def test_generator_payload_passes(tmp_path: Path) -> None:
    def blob(data: bytes, suffix: str) -> Blob:
        path = tmp_path / sha(data)
        path.write_bytes(data)
        return Blob("sha256:" + sha(data), str(path), len(data), len(data), suffix)

    layers = (blob(gzip.compress(b"base" * 5000, mtime=0), ".tar.gz"), blob(b"", ".tar"))
    config = json.dumps({"rootfs": {"diff_ids": [b.digest for b in layers]}}).encode()
    pinned = "registry.example:5000/app@sha256:" + "b" * 64
    image = ExportedImage(pinned, pinned, blob(config, ".json"), layers)
    spec = payload_file([image])
    with spec.open() as stream:
        data = stream.read()
    forwarded, error = run_check(data, {loaded_tag(pinned): image.image_id}, chunk=4096)
    assert error == ""
    assert forwarded == data


# ---------------------------------------------------------------------------
# end of archive


def test_garbage_after_end_of_archive_is_refused() -> None:
    image = small_image()
    good = good_payload(image)
    data = good + bytes(3000) + b"x" + bytes(100)
    forwarded, error = run_check(data, image.expected)
    where = len(good) + 3000
    assert (
        error == f"payload has data after the end-of-archive (byte at offset {where} is not zero)"
    )
    assert b"x" not in forwarded[len(good) - 2 * BLOCK :]


def test_second_end_block_not_zero_is_refused() -> None:
    image = small_image()
    good = good_payload(image)
    data = good[: -2 * BLOCK] + ZEROS + member("manifest.json", image.manifest) + ZEROS * 2
    forwarded, error = run_check(data, image.expected)
    end = len(good) - 2 * BLOCK
    assert error == (
        f"payload tar has a single zero block at offset {end}, then data "
        f"(tar header at offset {end + BLOCK}); the end-of-archive is two"
    )
    assert forwarded == good[:end]  # not even the first zero block went on


def test_single_zero_block_at_the_end_is_refused() -> None:
    image = small_image()
    _, error = run_check(good_payload(image)[:-BLOCK], image.expected)
    assert error == "payload is truncated (end-of-archive)"


def test_zeros_after_the_end_pass_in_bounded_pieces() -> None:
    image = small_image()
    data = good_payload(image) + bytes(5 * offline.CHUNK + 3)
    source = BoundedReads(data)
    chunks = [data for _, _, data in PayloadChecker(source, image.expected).events()]
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= offline.CHUNK
    assert source.largest <= READ_BOUND


# ---------------------------------------------------------------------------
# item 10: memory stays bounded whatever a size field says

READ_BOUND = (1 << 20) + BLOCK


class BoundedReads(io.BytesIO):
    """A payload stream that fails the test on any read of more than READ_BOUND
    bytes (or of "everything": a negative or missing size)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest = 0

    def read(self, size: Optional[int] = -1, /) -> bytes:
        assert size is not None and 0 <= size <= READ_BOUND, f"read({size})"
        self.largest = max(self.largest, size)
        return super().read(size)


def test_item10_negative_base256_size_never_reads_the_whole_stream() -> None:
    """The old code called read(-2) here: the whole remaining stream, into memory."""
    image = small_image()
    start = prologue(image)
    data = start + header(image.layers[0], size=NEGATIVE_BASE256) + bytes(4 * READ_BOUND)
    source = BoundedReads(data)
    forwarded: List[bytes] = []
    with pytest.raises(PayloadError, match="has a base-256 size field") as caught:
        for _, _, part in PayloadChecker(source, image.expected).events():
            forwarded.append(part)
    assert f"(tar header at offset {len(start)})" in str(caught.value)
    assert b"".join(forwarded) == start
    assert source.largest <= READ_BOUND


@pytest.mark.parametrize(
    ("where", "size", "message"),
    [
        ("layer", 0o77777777777, "truncated"),  # 8 GiB, the stream ends long before
        ("layer", 0o777777777777, "truncated"),  # 64 GiB, 12 digits
        ("manifest", 0o77777777777, "does not start with manifest.json"),
        ("config", 0o77777777777, "is too large"),
    ],
)
def test_huge_sizes_are_read_in_bounded_pieces(where: str, size: int, message: str) -> None:
    image = small_image()
    size_field = (b"%011o\x00" % size) if size < 8**11 else b"%012o" % size
    if where == "manifest":
        data = header("manifest.json", size=size_field)
    elif where == "config":
        data = member("manifest.json", image.manifest)
        data += header(image.config_name, size=size_field)
    else:
        data = prologue(image) + header(image.layers[0], size=size_field)
    source = BoundedReads(data + bytes(3 * READ_BOUND))
    with pytest.raises(PayloadError, match=message):
        for _ in PayloadChecker(source, image.expected).events():
            pass
    assert source.largest <= READ_BOUND


# ---------------------------------------------------------------------------
# item 9 on the real engine


def docker(*args: str, data: Optional[bytes] = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["docker", *args], input=data, capture_output=True, timeout=120)


def test_item9_docker_load_reads_the_hidden_manifest(docker_engine: None) -> None:
    """What tarfile (and the old PayloadChecker) took for one honest image, `docker
    load` reads as a second manifest.json tagging an image the header never named;
    the new checker refuses those exact bytes."""
    arch = docker("version", "--format", "{{.Server.Arch}}").stdout.decode().strip()
    honest_tag = f"mender-docker-test/honest:{unique('item9')}"
    hidden_tag = f"mender-docker-test/hidden:{unique('item9')}"
    crafted = hidden_manifest_tar(honest_tag, hidden_tag, arch or "amd64")
    assert hidden_tag not in json.dumps(crafted.expected)
    try:
        loaded = docker("load", data=crafted.data)
        output = (loaded.stdout + loaded.stderr).decode()
        assert loaded.returncode == 0, output
        assert f"Loaded image: {hidden_tag}" in output
        assert docker("image", "inspect", hidden_tag).returncode == 0
        assert docker("image", "inspect", honest_tag).returncode != 0  # never seen by docker
    finally:
        docker("image", "rm", "-f", hidden_tag, honest_tag)
    assert docker("image", "inspect", hidden_tag).returncode != 0

    forwarded, error = run_check(crafted.data, crafted.expected)
    assert "has a size field b'\\x000000001000\\x00' starting with NUL or space" in error
    assert forwarded == crafted.data[: len(prologue(small_image(honest_tag)))]
