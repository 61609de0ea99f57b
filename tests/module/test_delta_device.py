"""Delta offline artifacts on the device, with the fake engine (issue 14).

A delta's payload leaves out the first layers of some images (zero-byte
placeholders stand under their usual names); its meta-data lists them per
container (`delta_layers`) and names the base release (`delta_base`). The
module checks in Download, before anything changes, that the engine holds
each such chain; then everything goes as for a full offline artifact.
Payloads here are `docker save` tars made by the test; the fake engine
records each loaded image's layers (the config's rootfs.diff_ids) and, like
dockerd, refuses a placeholder whose chain it lacks.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from mender_docker.module.deployment import Phase
from mender_docker.module.engine import Engine
from mender_docker.module.errors import (
    DeploymentError,
    EngineError,
    HealthCheckError,
    NoSuchObjectError,
)
from mender_docker.module.images import first_missing_layer, load_payload
from mender_docker.spec import loaded_tag
from tests.fakes.device import Device
from tests.fakes.engine import FakeImage, diff_id
from tests.module.test_streams import Client, within

pytestmark = pytest.mark.usefixtures("phases_follow_the_table")

REPO = "registry.example:5000/shop"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(text: str) -> bytes:
    """A layer file: a small uncompressed tar (its diff ID is its digest)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        body = text.encode()
        info = tarfile.TarInfo(text)
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


@dataclass(frozen=True)
class Img:
    """One image of a payload: its layer files (their diff IDs give the chain)."""

    name: str
    version: str
    layers: Tuple[bytes, ...]
    omitted: int = 0  # first layers the payload leaves out (a delta)

    @property
    def diff_ids(self) -> Tuple[str, ...]:
        return tuple(diff_id(data) for data in self.layers)

    @property
    def config(self) -> bytes:
        return json.dumps({"rootfs": {"type": "layers", "diff_ids": list(self.diff_ids)},
                           "v": self.version}).encode()  # fmt: skip

    @property
    def image_id(self) -> str:
        return sha(self.config)

    @property
    def pinned(self) -> str:
        return f"{REPO}/{self.name}@{sha((self.name + self.version).encode())}"

    @property
    def tag(self) -> str:
        return loaded_tag(self.pinned)


def payload(images: Sequence[Img]) -> bytes:
    """The `docker save` tar the generator writes: manifest.json, configs, layers
    (each once, by digest), an omitted layer as an empty member unless another
    image needs it whole."""
    files = {data: sha(data)[7:] + ".tar" for i in images for data in i.layers}
    whole = {data for i in images for data in i.layers[i.omitted :]}
    manifest = [
        {"Config": i.image_id[7:] + ".json", "RepoTags": [i.tag],
         "Layers": [files[data] for data in i.layers]}
        for i in images
    ]  # fmt: skip
    members: List[Tuple[str, bytes]] = [("manifest.json", json.dumps(manifest).encode())]
    members += [(i.image_id[7:] + ".json", i.config) for i in images]
    for data, name in files.items():
        members.append((name, data if data in whole else b""))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, body in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(body), 0o644
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def metadata(images: Sequence[Img], base: Optional[str] = None, **extra: Any) -> Dict[str, Any]:
    meta: Dict[str, Any] = {
        "containers": [i.pinned for i in images],
        "run_args": "",
        "names": [i.name for i in images],
        "images_file": "images.tar",
        "image_ids": [i.image_id for i in images],
        **extra,
    }
    if base is not None:
        meta["delta_base"] = base
        meta["delta_layers"] = [",".join(i.diff_ids[: i.omitted]) for i in images]
    return meta


def stored(device: Device, artifact: str, images: Sequence[Img], base: Optional[str] = None
           ) -> Path:  # fmt: skip
    """A deployment whose payload the client stored in files/ (no pipes)."""
    tree = device.new_deployment(artifact, metadata(images, base))
    (tree / "files").mkdir()
    (tree / "files" / "images.tar").write_bytes(payload(images))
    return tree


def streamed(device: Device, artifact: str, images: Sequence[Img], base: Optional[str] = None
             ) -> Tuple[Client, int]:  # fmt: skip
    """A deployment whose payload the client streams through real FIFOs."""
    tree = device.new_deployment(artifact, metadata(images, base))
    data = payload(images)
    return Client(tree, [("images.tar", data)]), len(data)


BASE = layer("base os")
LIBS = layer("libraries")
APP1, APP2 = layer("app 1"), layer("app 2")
DB = layer("database")
WEB1 = Img("web", "1", (BASE, LIBS, APP1))
DB1 = Img("db", "1", (BASE, DB))
WEB2 = Img("web", "2", (BASE, LIBS, APP2), omitted=2)
DB2 = Img("db", "2", (BASE, DB, layer("db 2")), omitted=2)


@pytest.fixture
def device(tmp_path: Path) -> Device:
    """A device running release shop-1 (web 1 and db 1), installed from a full
    offline artifact: the fake recorded the layers of what it loaded."""
    device = Device(tmp_path, scope="managed")
    stored(device, "shop-1", [WEB1, DB1])
    device.run("Download", "ArtifactInstall", "ArtifactCommit", "Cleanup")
    assert device.engine.images[WEB1.image_id].layers == WEB1.diff_ids
    device.engine.calls.clear()
    return device


def image_of(device: Device, name: str) -> str:
    return device.engine.by_name(name).image_id


@pytest.mark.parametrize("split_base", [False, True], ids=["load-only", "import-base"])
def test_a_delta_whose_base_is_there_loads_installs_and_keeps_the_running_release(
    device: Device, split_base: bool
) -> None:
    engine = device.engine
    engine.split_base = split_base
    fresh = Img("cache", "1", (layer("cache base"), layer("cache app")))  # sent whole
    client, size = streamed(device, "shop-2", [WEB2, DB2, fresh], base="shop-1")
    within(device.run, "Download")
    assert client.done() and client.consumed == {"images.tar": size}
    assert ("layer_chains",) in engine.calls
    assert [c[0] for c in engine.mutations()] == [
        *(["start_load", "start_import", "finish_import"] if split_base else ["start_load"]),
        "finish_load",
        *(["remove_image"] if split_base else []),  # the transient import tag
    ]
    if split_base:  # only the whole image's base goes to `import`, never a placeholder
        [imported] = [c for c in engine.calls if c[0] == "start_import"]
        assert imported[1].endswith(sha(fresh.layers[0])[7:])
    for image in (WEB2, DB2, fresh):
        assert engine.images[image.image_id].layers == image.diff_ids
    assert image_of(device, "web") == WEB1.image_id, "Download changes nothing running"

    device.run("ArtifactInstall", "ArtifactCommit", "Cleanup")
    assert {c.name: (c.image_id, c.running) for c in engine.containers.values()} == {
        "web": (WEB2.image_id, True), "db": (DB2.image_id, True), "cache": (fresh.image_id, True)
    }  # fmt: skip
    # kept: the running release's images, which the next delta is built against;
    # the base release's are removed (their shared layers stay with the new images)
    assert set(engine.images) == {WEB2.image_id, DB2.image_id, fresh.image_id}
    assert device.journal().previous_images == [WEB2.tag, DB2.tag, fresh.tag]

    web3 = Img("web", "3", (BASE, LIBS, APP2, layer("app 3")), omitted=3)
    stored(device, "shop-3", [web3, DB2, fresh], base="shop-2")
    device.run("Download", "ArtifactInstall", "ArtifactCommit", "Cleanup")
    assert image_of(device, "web") == web3.image_id


@pytest.mark.parametrize(
    ("base_installed", "missing"),
    [(True, diff_id(LIBS)), (False, diff_id(BASE))],
    ids=["second-layer-missing", "fresh-device"],
)
def test_a_delta_whose_base_is_missing_is_refused_in_download_and_changes_nothing(
    tmp_path: Path, base_installed: bool, missing: str
) -> None:
    """shop-1 here runs another web (same first layer, other libraries): db's
    chain is there, web's is not; on a fresh device nothing is."""
    device = Device(tmp_path, scope="managed")
    if base_installed:
        stored(device, "shop-1", [Img("web", "0", (BASE, layer("other libraries"))), DB1])
        device.run("Download", "ArtifactInstall", "ArtifactCommit", "Cleanup")
    journal, images = device.journal_text(), dict(device.engine.images)
    device.engine.calls.clear()
    client, size = streamed(device, "shop-2", [DB2, WEB2], base="shop-1")
    with pytest.raises(DeploymentError) as refused:
        within(device.run, "Download")
    assert str(refused.value) == (
        f"this delta needs layer {missing[:19]} of release shop-1 "
        f"(for image {DB2.pinned if not base_installed else WEB2.pinned}): "
        "install the full artifact"
    )
    assert client.done(), "the client still waits: the refused payload was not drained"
    assert client.consumed == {"images.tar": size}
    assert device.engine.mutations() == []
    assert device.journal_text() == journal
    assert device.engine.images == images
    device.run("ArtifactFailure", "Cleanup")  # what the client does next: still nothing
    assert device.engine.mutations() == [] and device.engine.images == images


def test_a_failed_delta_is_rolled_back_and_its_images_removed_but_the_base_stays(
    device: Device,
) -> None:
    engine = device.engine
    crashy = Img("web", "2", (BASE, LIBS, layer("crashing app")), omitted=2)
    engine.registry["crashy"] = FakeImage(crashy.image_id, set(), behaviour="exits")
    client, _ = streamed(device, "shop-2", [crashy, DB2], base="shop-1")
    within(device.run, "Download")
    assert client.done()
    with pytest.raises(HealthCheckError, match="web .* exited"):
        device.run("ArtifactInstall")
    device.run("ArtifactRollback", "ArtifactFailure", "Cleanup")
    assert device.journal().deployment.phase == Phase.FAILED  # type: ignore[union-attr]
    assert {c.name: (c.image_id, c.running) for c in engine.containers.values()} == {
        "web": (WEB1.image_id, True), "db": (DB1.image_id, True)
    }  # fmt: skip
    assert set(engine.images) == {WEB1.image_id, DB1.image_id}
    assert device.journal().previous_images == [WEB1.tag, DB1.tag]
    # the base is intact: the same delta, fixed, still applies
    stored(device, "shop-2b", [WEB2, DB2], base="shop-1")
    device.run("Download", "ArtifactInstall", "ArtifactCommit", "Cleanup")
    assert image_of(device, "web") == WEB2.image_id


def test_an_image_already_loaded_needs_no_chain(tmp_path: Path) -> None:
    """Loaded with the right ID (an earlier attempt, another release): nothing to
    load, so nothing to check; the payload is read and dropped."""
    device = Device(tmp_path, scope="managed")
    for image in (WEB2, DB2):  # no layers recorded: a chain check would fail
        device.engine.images[image.image_id] = FakeImage(image.image_id, {image.tag})
    client, size = streamed(device, "shop-2", [WEB2, DB2], base="shop-1")
    within(device.run, "Download")
    assert client.done() and client.consumed == {"images.tar": size}
    assert ("layer_chains",) not in device.engine.calls
    assert device.engine.mutations() == []
    device.run("ArtifactInstall", "ArtifactCommit", "Cleanup")
    assert image_of(device, "web") == WEB2.image_id


def test_install_from_a_stored_payload_checks_the_chain_too(tmp_path: Path) -> None:
    """ArtifactInstall loads from files/ what Download did not: same check, same refusal."""
    device = Device(tmp_path, scope="managed")
    stored(device, "shop-2", [WEB2], base="shop-1")
    with pytest.raises(DeploymentError, match=r"this delta needs layer sha256:[0-9a-f]{12} "):
        device.run("ArtifactInstall")
    assert device.engine.mutations() == [] and device.journal_text() is None


def test_a_placeholder_never_goes_to_import(tmp_path: Path) -> None:
    """With dockerd's classic store each image's first layer goes to `docker import`;
    a placeholder would make an empty layer there: it goes to `docker load`, which
    finds its chain. Without the chain the engine itself refuses the placeholder."""
    device = Device(tmp_path)
    engine = device.engine
    engine.split_base = True
    engine.images["base"] = FakeImage("base", {"base:1"}, layers=WEB1.diff_ids[:2])
    web = Img("web", "2", (BASE, LIBS, APP2), omitted=1)  # only the very first omitted
    expected = {web.tag: web.image_id}
    load_payload(device.context(), io.BytesIO(payload([web])), expected, str)
    assert [c[0] for c in engine.mutations()] == ["start_load", "finish_load"]
    assert engine.images[web.image_id].layers == web.diff_ids

    lone = Img("lone", "1", (layer("nowhere"), APP1), omitted=1)
    with pytest.raises(EngineError, match="invalid diffID for layer 0"):
        load_payload(device.context(), io.BytesIO(payload([lone])), {lone.tag: lone.image_id},
                     str)  # fmt: skip
    assert engine.inspect_image(lone.tag) is None
    assert "start_import" not in {c[0] for c in engine.calls}


@pytest.mark.parametrize(
    ("chains", "base", "missing"),
    [
        ([], ("a",), "a"),
        ([("a", "b", "c")], ("a", "b"), None),
        ([("a", "b")], ("a", "b"), None),
        ([("a",), ("a", "x")], ("a", "b"), "b"),
        ([("x", "a", "b")], ("a", "b"), "a"),  # the same layers on another parent: no
        ([("a", "x"), ("a", "b", "y")], ("a", "b", "c"), "c"),
        ([(), ("a", "b")], ("a", "b"), None),
    ],
)
def test_first_missing_layer(
    chains: List[Tuple[str, ...]], base: Tuple[str, ...], missing: Optional[str]
) -> None:
    assert first_missing_layer(chains, base) == missing


# -- Engine.layer_chains: what both engines' `image ls` and `image inspect` print ----

L1, L2, L3 = ("sha256:" + c * 64 for c in "123")
DOCKER_INSPECT: List[Dict[str, Any]] = [
    {"Id": "sha256:" + "a" * 64, "RepoTags": ["web:1"], "Parent": "",
     "RootFS": {"Type": "layers", "Layers": [L1, L2]}, "Size": 10},
    {"Id": "sha256:" + "b" * 64, "RepoTags": [], "RootFS": {"Type": "layers", "Layers": [L1]}},
    {"Id": "sha256:" + "c" * 64, "RepoTags": ["scratchy:1"], "RootFS": {"Type": "layers"}},
]  # fmt: skip
PODMAN_INSPECT: List[Dict[str, Any]] = [  # podman 4.3: no prefix on Id, digests in RootFS as docker
    {"Id": "a" * 64, "Digest": "sha256:" + "d" * 64, "RepoTags": ["localhost/web:1"],
     "RootFS": {"Type": "layers", "Layers": [L1, L2, L3]}, "Labels": None},
    {"Id": "b" * 64, "RootFS": {"Type": "layers", "Layers": ["1" * 64]}},
]  # fmt: skip


class CannedEngine(Engine):
    """The real adapter over canned engine output: every command is recorded."""

    def __init__(self, binary: str, listing: str, inspect: Dict[str, Any]) -> None:
        super().__init__(binary)
        self.listing, self.inspect = listing, inspect
        self.commands: List[List[str]] = []

    def run(self, args: Any, timeout: Optional[float] = None, merge_stderr: bool = False) -> str:
        self.commands.append(list(args))
        if args[:2] == ["image", "ls"]:
            return self.listing
        found = [self.inspect[i] for i in args[2:] if i in self.inspect]
        if len(found) < len(args[2:]):
            raise NoSuchObjectError([self.binary, *args], 1, "Error: No such image: x")
        return json.dumps(found)


@pytest.mark.parametrize(
    ("binary", "items", "chains"),
    [
        ("docker", DOCKER_INSPECT, [(L1, L2), (L1,), ()]),
        ("podman", PODMAN_INSPECT, [(L1, L2, L3), (L1,)]),
    ],
)
def test_layer_chains_of_both_engines_in_two_calls(
    binary: str, items: List[Dict[str, Any]], chains: List[Tuple[str, ...]]
) -> None:
    ids = [str(item["Id"]) for item in items]
    text = "\n".join([ids[0], *ids]) + "\n"  # a tagged-twice image is listed twice
    engine = CannedEngine(binary, text, {str(item["Id"]): item for item in items})
    assert engine.layer_chains() == chains
    assert engine.commands == [
        ["image", "ls", "--all", "--quiet", "--no-trunc"],
        ["image", "inspect", *ids],
    ]


def test_layer_chains_skips_an_image_removed_meanwhile_and_an_empty_store() -> None:
    items = {str(i["Id"]): i for i in DOCKER_INSPECT}
    gone = "sha256:" + "f" * 64
    engine = CannedEngine("docker", "\n".join([*items, gone]), items)
    assert engine.layer_chains() == [(L1, L2), (L1,), ()]
    assert len(engine.commands) == 2 + len(items) + 1
    empty = CannedEngine("podman", "\n", {})
    assert empty.layer_chains() == [] and len(empty.commands) == 1


def test_every_refusal_before_the_load_reads_the_payload_to_its_end(tmp_path: Path) -> None:
    """Not only the delta check: a full artifact too big for the disk is refused
    before the journal, its streamed payload still drained."""
    device = Device(tmp_path)
    tree = device.new_deployment("shop-1", metadata([WEB1], image_sizes=[10**15]))
    data = payload([WEB1])
    client = Client(tree, [("images.tar", data)])
    with pytest.raises(DeploymentError, match="not enough space"):
        within(device.run, "Download")
    assert client.done() and client.consumed == {"images.tar": len(data)}
    assert device.engine.mutations() == [] and device.journal_text() is None
