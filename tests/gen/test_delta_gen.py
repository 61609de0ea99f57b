"""Delta offline artifacts (`--embed-images --delta-from BASE`), generator side.

The unit tests serve the in-memory registry on a loopback socket
(tests/registry/servers.py) and run the command line; the real ones push to the
session's docker-registry (tests/registry/ocipush.py).
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Sequence, Tuple

import pytest

from mender_docker.artifact import iter_payloads, read_artifact, write_artifact
from mender_docker.artifact.model import ArtifactSpec, PayloadFile
from mender_docker.cli.gen import main as gen_main
from mender_docker.delta import Base, DeltaReport, docker_chain, omitted_count
from mender_docker.errors import GeneratorError
from mender_docker.registry.client import RegistryClient
from mender_docker.registry.export import BlobStore, RegistryExporter
from mender_docker.spec import parse_metadata
from tests.realstack import Registry
from tests.registry.fake_registry import FakeRegistry, digest_of
from tests.registry.ocipush import layer, push_image
from tests.registry.servers import LoopbackServer, registry_app

A = {"a": b"layer A " * 3000}
B = {"b": b"layer B " * 2000}
C = {"c": b"layer C " * 1000}
D = {"d": b"layer D"}
E = {"e": b"layer E"}
F = {"f": b"layer F"}


def diff(files: Mapping[str, bytes]) -> str:
    return layer(files)[1]


def blob_name(files: Mapping[str, bytes]) -> str:
    return digest_of(layer(files)[0]).split(":", 1)[1] + ".tar.gz"


@dataclass
class Served:
    fake: FakeRegistry
    server: LoopbackServer
    tmp: Path

    def ref(self, name: str) -> str:
        return f"{self.server.host}/team/{name}"

    def gen(self, name: str, *args: str, code: int = 0) -> Path:
        """docker-artifact-gen --embed-images -n NAME ... into tmp/NAME.mender."""
        out = self.tmp / f"{name}.mender"
        argv = ["--embed-images", "-n", name, "-t", "dev", "-o", str(out)]
        argv += [self.ref(a) if ":" in a and "/" not in a else a for a in args]
        assert gen_main(argv) == code
        return out

    def layer_gets(self) -> List[str]:
        """Digests of the layer blobs fetched so far (configs left out)."""
        configs = {d for d, data in self.fake.blobs.items() if data.startswith(b"{")}
        gets = [s.path.rsplit("/", 1)[1] for s in self.server.requests("/blobs/", "GET")]
        return [d for d in gets if d not in configs]


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    fake = FakeRegistry(realm_scheme="http")
    images: Dict[str, Sequence[Mapping[str, bytes]]] = {
        "app:0": [A],
        "app:1": [A, B],
        "app:2": [A, B, C],
        "db:1": [D],
        "other:1": [E, A],  # A, but not as a first layer
        "fork:1": [A, E, C],  # A's chain, then another
        "q:1": [B, F],  # B first: no chain the bases have
    }
    for ref, layers in images.items():
        repo, tag = ref.split(":")
        fake.add_layered_image(f"team/{repo}", tag, list(layers))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    work = tmp_path / "work"
    work.mkdir()
    with LoopbackServer(registry_app(fake)) as server:
        fake.host = server.host
        yield Served(fake, server, work)


def payload(artifact: Path) -> Tuple[List[Tuple[str, int]], Dict[str, bytes]]:
    """The images.tar members in order (name, size) and their contents."""
    for name, _, stream in iter_payloads(str(artifact)):
        assert name == "images.tar"
        with tarfile.open(fileobj=io.BytesIO(stream.read())) as archive:
            found = [(m, archive.extractfile(m).read()) for m in archive]  # type: ignore[union-attr]
        return [(m.name, m.size) for m, _ in found], {m.name: data for m, data in found}
    raise AssertionError("no payload")


def meta(artifact: Path) -> Dict[str, object]:
    info = read_artifact(str(artifact))
    assert info.meta_data is not None
    return info.meta_data


# -- the prefix rule ----------------------------------------------------------------------------


def test_a_layer_is_reused_only_with_its_whole_chain() -> None:
    a, b, c, e = diff(A), diff(B), diff(C), diff(E)
    base = Base("r1", ((a, b), (e,)), artifact=True)
    assert omitted_count((a, b, c), [base]) == 2
    assert omitted_count((a, c), [base]) == 1
    assert omitted_count((e, a), [base]) == 1
    assert omitted_count((b, a), [base]) == 0  # b is there, but on top of a
    assert omitted_count((a,), [base]) == 1
    assert omitted_count((), [base]) == 0


def test_several_base_artifacts_each_must_hold_the_layers() -> None:
    """The delta installs on any of them (artifact_name depends): the device has one."""
    a, b, c = diff(A), diff(B), diff(C)
    older = Base("r0", ((a,),), artifact=True)
    newer = Base("r1", ((a, b),), artifact=True)
    assert omitted_count((a, b, c), [newer, older]) == 1
    assert omitted_count((a, b, c), [newer, Base("x", ((c,),), artifact=True)]) == 0


def test_the_exporter_skips_omitted_layers_and_reads_chains_from_configs(tmp_path: Path) -> None:
    fake = FakeRegistry()
    _, config_digest, blobs = fake.add_layered_image("team/app", "2", [A, B, C])
    exporter = RegistryExporter(RegistryClient(fake, environ={"DOCKER_CONFIG": "/none"}))
    assert exporter.layer_chain("reg.example/team/app:2", None) == (diff(A), diff(B), diff(C))
    assert [c.url.rsplit("/", 1)[1] for c in fake.calls_to("/blobs/")] == [config_digest]
    fake.calls.clear()
    store = BlobStore(str(tmp_path))
    image = exporter.export("reg.example/team/app:2", None, store, omit=lambda ids: 2)
    assert [c.url.rsplit("/", 1)[1] for c in fake.calls_to("/blobs/")] == [
        config_digest, digest_of(blobs[2])
    ]  # fmt: skip
    assert image.omitted == 2 and image.base_layers == (diff(A), diff(B))
    assert [layer.path for layer in image.layers[:2]] == ["", ""]
    assert [layer.size for layer in image.layers] == [len(data) for data in blobs]
    assert set(store.blobs) == {config_digest, digest_of(blobs[2])}
    assert image.uncompressed_size == image.config.size + len(_plain(C))


# -- delta against an artifact file -------------------------------------------------------------


def test_delta_leaves_out_the_base_layers_and_never_fetches_them(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    base = served.gen("rel-1", "app:1")
    served.server.seen.clear()
    capsys.readouterr()
    delta = served.gen("rel-2", "--delta-from", str(base), "app:2")
    out = capsys.readouterr().out
    # only C is downloaded; A and B are on the device already
    assert served.layer_gets() == [digest_of(layer(C)[0])]
    members, contents = payload(delta)
    manifest = json.loads(contents["manifest.json"])
    assert manifest[0]["Layers"] == [blob_name(A), blob_name(B), blob_name(C)]
    sizes = dict(members)
    assert sizes[blob_name(A)] == sizes[blob_name(B)] == 0  # empty placeholders
    assert contents[blob_name(C)] == layer(C)[0]
    assert sizes[manifest[0]["Config"]] > 0  # the config is whole
    assert [name for name, _ in members][0] == "manifest.json"
    data = meta(delta)
    assert data["delta_base"] == "rel-1"
    assert data["delta_layers"] == [f"{diff(A)},{diff(B)}"]
    parsed = parse_metadata(data)
    assert parsed.plan()[0].base_layers == (diff(A), diff(B))
    # the disk check counts what is loaded: the config and C, unpacked
    config_size = sizes[manifest[0]["Config"]]
    assert data["image_sizes"] == [config_size + len(_plain(C))]
    info = read_artifact(str(delta))
    assert info.artifact_depends["artifact_name"] == ["rel-1"]
    assert "Depends on artifact_name: rel-1" in out
    assert "2 of 3 layers on the device already" in out
    line = next(x for x in out.splitlines() if "Delta against rel-1: " in x)
    assert "the full artifact would be" in line and line.endswith(" %)")


def _plain(files: Mapping[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()


def test_the_full_size_is_what_the_full_artifact_takes(served: Served) -> None:
    """Reported from the manifests' sizes; within a header's difference of the real one
    (the delta's header holds the delta keys and the depends)."""
    base = served.gen("rel-1", "app:1")
    full = served.gen("rel-2-full", "app:2")
    seen: List[DeltaReport] = []
    from mender_docker import gen as gen_module

    real_report = gen_module.delta_report

    def spy(*args: object) -> DeltaReport:
        report = real_report(*args)  # type: ignore[arg-type]
        seen.append(report)
        return report

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gen_module, "delta_report", spy)
        delta = served.gen("rel-2", "--delta-from", str(base), "app:2")
    report = seen[0]
    assert report.size == delta.stat().st_size
    assert abs(report.full_size - full.stat().st_size) < 2048
    assert report.omitted == 2
    assert report.size < report.full_size - len(layer(A)[0])


def test_images_sent_whole_get_empty_entries(served: Served) -> None:
    base = served.gen("rel-1", "app:1")
    delta = served.gen("rel-2", "--delta-from", str(base), "app:2", "db:1", "app:2")
    data = meta(delta)
    assert data["delta_layers"] == [f"{diff(A)},{diff(B)}", "", f"{diff(A)},{diff(B)}"]
    sizes = dict(payload(delta)[0])
    assert sizes[blob_name(D)] > 0


def test_a_partly_shared_chain_omits_its_shared_start(served: Served) -> None:
    base = served.gen("rel-1", "app:1")
    delta = served.gen("rel-2", "--delta-from", str(base), "fork:1", "other:1")
    assert meta(delta)["delta_layers"] == [diff(A), ""]
    sizes = dict(payload(delta)[0])
    # A is omitted for fork:1 but needed whole by other:1 (on top of E): sent whole
    assert sizes[blob_name(A)] == len(layer(A)[0])
    assert sizes[blob_name(E)] > 0 and sizes[blob_name(C)] > 0


def test_a_layer_one_image_omits_and_another_needs_is_sent_whole(served: Served) -> None:
    base = served.gen("rel-1", "app:1")
    delta = served.gen("rel-2", "--delta-from", str(base), "app:2", "q:1")
    assert meta(delta)["delta_layers"] == [f"{diff(A)},{diff(B)}", ""]
    members, contents = payload(delta)
    sizes = dict(members)
    assert sizes[blob_name(A)] == 0
    assert contents[blob_name(B)] == layer(B)[0]
    assert [name for name, _ in members].count(blob_name(B)) == 1


def test_depends_merge_with_the_users_and_several_bases(served: Served) -> None:
    older = served.gen("rel-0", "app:0")
    base = served.gen("rel-1", "app:1")
    delta = served.gen(
        "rel-2", "-N", "rel-1", "-N", "lab", "--delta-from", str(base),
        "--delta-from", str(older), "app:2",
    )  # fmt: skip
    info = read_artifact(str(delta))
    assert info.artifact_depends["artifact_name"] == ["rel-1", "lab", "rel-0"]
    data = meta(delta)
    assert data["delta_base"] == "rel-1, rel-0"
    assert data["delta_layers"] == [diff(A)]  # the layers both releases have


def test_a_delta_can_be_the_base(served: Served) -> None:
    first = served.gen("rel-1", "app:1")
    second = served.gen("rel-2", "--delta-from", str(first), "app:2")
    third = served.gen("rel-3", "--delta-from", str(second), "app:2", "db:1")
    data = meta(third)
    assert data["delta_base"] == "rel-2"
    assert data["delta_layers"] == [f"{diff(A)},{diff(B)},{diff(C)}", ""]
    assert read_artifact(str(third)).artifact_depends["artifact_name"] == ["rel-2"]


def test_a_base_sharing_no_layer_gives_a_complete_artifact(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    base = served.gen("rel-db", "db:1")
    capsys.readouterr()
    artifact = served.gen("rel-2", "--delta-from", str(base), "app:2")
    out = capsys.readouterr().out
    assert "Delta against rel-db: shares no layers: the artifact is complete" in out
    data = meta(artifact)
    assert "delta_base" not in data and "delta_layers" not in data
    assert "artifact_name" not in read_artifact(str(artifact)).artifact_depends
    assert all(size > 0 for name, size in payload(artifact)[0])


def test_compose_applications_are_deltas_too(served: Served) -> None:
    base = served.gen("rel-1", "app:1")
    compose = served.tmp / "compose.yaml"
    compose.write_text(
        "services:\n"
        f"  web:\n    image: {served.ref('app:2')}\n"
        f"  db:\n    image: {served.ref('db:1')}\n"
    )
    delta = served.gen("rel-2", "--compose", str(compose), "--delta-from", str(base))
    data = meta(delta)
    assert data["services"] == ["web", "db"]
    assert data["delta_layers"] == [f"{diff(A)},{diff(B)}", ""]


# -- delta against image references -------------------------------------------------------------


def test_image_references_as_the_base(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    delta = served.gen(
        "rel-2", "--delta-from", served.ref("app:1"), "--delta-from", served.ref("db:1"),
        "app:2", "db:1",
    )  # fmt: skip
    data = meta(delta)
    assert data["delta_base"] == f"{served.ref('app:1')}, {served.ref('db:1')}"
    assert data["delta_layers"] == [f"{diff(A)},{diff(B)}", diff(D)]
    assert "artifact_name" not in read_artifact(str(delta)).artifact_depends
    # the bases' configs were read, none of their layers
    assert served.layer_gets() == [digest_of(layer(C)[0])]
    assert f"Delta against {served.ref('app:1')}, " in capsys.readouterr().out


def test_docker_resolver_reads_rootfs_layers_and_pulls_when_absent() -> None:
    calls: List[List[str]] = []
    layers = [diff(A), diff(B)]

    def runner(command: List[str]) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        if command[1] == "image" and len(calls) == 1:
            return subprocess.CompletedProcess(command, 1, "", "Error: No such image: x")
        return subprocess.CompletedProcess(command, 0, json.dumps(layers) + "\n", "")

    assert docker_chain("reg.example/app:1", "linux/amd64", runner) == tuple(layers)
    assert calls[1] == ["docker", "pull", "--platform", "linux/amd64", "--", "reg.example/app:1"]
    assert calls[0] == calls[2]


# -- --resolver docker: a fake docker CLI on PATH ------------------------------------------------

FAKE_DOCKER = """#!/usr/bin/env python3
import base64, io, json, os, sys, tarfile
images = json.load(open(os.environ["FAKE_DOCKER_IMAGES"]))
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_IMAGES"] + ".log", "a") as log:
    log.write(" ".join(args) + "\\n")
ref = args[-1]
image = next((i for r, i in images.items() if ref in (r, i["pinned"])), None)
if image is None:
    sys.exit("Error: No such image: " + ref)
if args[0] == "pull":
    sys.exit(0)
if args[:2] == ["image", "inspect"]:
    if "RootFS" in args[3]:
        print(json.dumps(json.loads(image["config"])["rootfs"]["diff_ids"]))
    else:
        print(json.dumps([image["pinned"]]) + "|1000")
    sys.exit(0)
assert args[0] == "save"
out = io.BytesIO()
with tarfile.open(fileobj=out, mode="w") as tar:
    def add(name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layers = [base64.b64decode(x) for x in image["layers"]]
    names = ["l%d/layer.tar" % i for i in range(len(layers))]
    add("manifest.json", json.dumps([{"Config": "config.json", "Layers": names}]).encode())
    add("config.json", image["config"].encode())
    for name, data in zip(names, layers):
        add(name, data)
sys.stdout.buffer.write(out.getvalue())
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`docker` on PATH serving images `reg.example/team/<name>:<tag>` from a JSON file."""
    images = {}
    for ref, layers in {"app:1": [A, B], "app:2": [A, B, C]}.items():
        plain = [_plain(files) for files in layers]
        config = json.dumps({"os": "linux", "architecture": "amd64", "rootfs": {
            "type": "layers", "diff_ids": [digest_of(data) for data in plain]}})  # fmt: skip
        name = f"reg.example/team/{ref}"
        # the registry's manifest: the daemon reports only its digest
        layer_descs = [{"digest": digest_of(data)} for data in plain]
        manifest = json.dumps({"schemaVersion": 2, "layers": layer_descs,
                               "config": {"digest": digest_of(config.encode())}})  # fmt: skip
        pinned = name.split(":")[0] + "@" + digest_of(manifest.encode())
        images[name] = {"pinned": pinned, "config": config, "manifest": manifest,
                        "layers": [base64.b64encode(data).decode() for data in plain]}  # fmt: skip
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(FAKE_DOCKER)
    script.chmod(0o755)
    state = tmp_path / "docker-images.json"
    state.write_text(json.dumps(images))
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", str(state))
    served = {i["pinned"]: i["manifest"].encode() for i in images.values()}

    def registry_manifests(pinned: str, image_id: str, client: object = None) -> Tuple[
        bytes, bytes
    ]:
        assert json.loads(served[pinned])["config"]["digest"] == image_id
        return served[pinned], b""

    monkeypatch.setattr("mender_docker.gen.registry_manifests", registry_manifests)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return state


def test_docker_resolver_deltas(fake_docker: Path, tmp_path: Path) -> None:
    base, delta, by_ref = (tmp_path / f"{n}.mender" for n in ("base", "delta", "ref"))
    common = ["--embed-images", "--resolver", "docker", "-t", "dev"]
    assert gen_main([*common, "-n", "r1", "-o", str(base), "reg.example/team/app:1"]) == 0
    assert gen_main([*common, "-n", "r2", "-o", str(delta), "--delta-from", str(base),
                     "reg.example/team/app:2"]) == 0  # fmt: skip
    layers = [digest_of(_plain(files)) for files in (A, B, C)]
    assert meta(delta)["delta_layers"] == [",".join(layers[:2])]
    members, contents = payload(delta)
    manifest = json.loads(contents["manifest.json"])
    sizes = dict(members)
    # docker save's layers are plain tars: named by their digest, the diff ID
    assert manifest[0]["Layers"] == [d.split(":")[1] + ".tar" for d in layers]
    # and the registry manifest the daemon's digest names travels with them
    pinned = meta(delta)["containers"][0]
    assert digest_of(manifest[0]["RegistryManifest"].encode()) == pinned.split("@")[1]
    assert [sizes[name] for name in manifest[0]["Layers"]][:2] == [0, 0]
    assert contents[manifest[0]["Layers"][2]] == _plain(C)
    # an image reference as the base: RootFS.Layers of the local image
    assert gen_main([*common, "-n", "r2", "-o", str(by_ref), "--delta-from",
                     "reg.example/team/app:1", "reg.example/team/app:2"]) == 0  # fmt: skip
    assert meta(by_ref)["delta_layers"] == meta(delta)["delta_layers"]
    log = Path(str(fake_docker) + ".log").read_text()
    assert "image inspect --format {{json .RootFS.Layers}} -- reg.example/team/app:1" in log


# -- errors: one line, nothing written ----------------------------------------------------------


def _fails(served: Served, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    before = sorted(os.listdir(served.tmp))
    capsys.readouterr()
    out = served.gen("rel-9", *args, code=1)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    assert sorted(os.listdir(served.tmp)) == before  # no temp blobs either
    return err


def test_delta_from_needs_embed_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.mender"
    code = gen_main(["-n", "a", "-t", "d", "-o", str(out), "--delta-from", "b.mender", "x/y:1"])
    err = capsys.readouterr().err
    assert code == 1 and "--delta-from needs --embed-images" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_base_files_that_are_not_offline_docker_artifacts(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = served.tmp / "junk.mender"
    junk.write_bytes(os.urandom(3000))
    err = _fails(served, capsys, "--delta-from", str(junk), "app:2")
    assert f"--delta-from {junk}: not an offline docker artifact" in err

    online = served.tmp / "online.mender"
    assert gen_main(["-n", "on", "-t", "dev", "-o", str(online), served.ref("app:1")]) == 0
    err = _fails(served, capsys, "--delta-from", str(online), "app:2")
    assert "not an offline docker artifact (its images are pulled, not embedded)" in err

    other = served.tmp / "rootfs.mender"
    spec = ArtifactSpec(artifact_name="fs", device_types=["dev"], payload_type="rootfs-image")
    write_artifact(str(other), spec, files=[PayloadFile.from_bytes("fs.ext4", b"x")])
    err = _fails(served, capsys, "--delta-from", str(other), "app:2")
    assert "not an offline docker artifact (payload type 'rootfs-image')" in err

    err = _fails(served, capsys, "--delta-from", str(served.tmp / "missing.mender"), "app:2")
    assert "no such artifact file" in err


def test_a_base_with_the_new_name_is_refused(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    base = served.gen("rel-9", "app:1")
    renamed = served.tmp / "base.mender"
    base.rename(renamed)
    err = _fails(served, capsys, "--delta-from", str(renamed), "app:2")
    assert "the base artifact is named 'rel-9' too" in err


def test_an_unknown_base_image_is_one_error(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _fails(served, capsys, "--delta-from", served.ref("nothing:1"), "app:2")
    assert f"--delta-from {served.ref('nothing:1')}: no such artifact file; as an image:" in err
    assert "not found" in err


def test_a_base_payload_without_a_config_is_refused(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.dumps([{"Config": "ab" * 32 + ".json", "Layers": []}]).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    meta_data = {"containers": [served.ref("app@" + digest_of(b"m"))], "run_args": "",
                 "image_ids": [digest_of(b"c")], "images_file": "images.tar"}  # fmt: skip
    spec = ArtifactSpec(artifact_name="odd", device_types=["dev"], payload_type="docker",
                        meta_data=meta_data)  # fmt: skip
    odd = served.tmp / "odd.mender"
    write_artifact(str(odd), spec, files=[PayloadFile.from_bytes("images.tar", raw.getvalue())])
    err = _fails(served, capsys, "--delta-from", str(odd), "app:2")
    assert f"lacks the config {'ab' * 32}.json" in err


def test_check_options_refuses_before_any_network(tmp_path: Path) -> None:
    from mender_docker.gen import GenOptions, check_options

    options = GenOptions("a", ["d"], ["x/y:1"], str(tmp_path / "o.mender"), delta_from=["b"])
    with pytest.raises(GeneratorError, match="needs --embed-images"):
        check_options(options)


# -- a real docker-registry ---------------------------------------------------------------------


@pytest.mark.real
def test_delta_on_a_real_registry(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = f"deltagen/app{os.getpid()}"
    big = {"bin/tool": os.urandom(300_000)}
    push_image(registry.host, repo, "v1", [big, {"etc/v": b"1"}])
    push_image(registry.host, repo, "v2", [big, {"etc/v": b"1"}, {"etc/w": b"2"}])
    base, delta = tmp_path / "v1.mender", tmp_path / "v2.mender"
    common = ["--embed-images", "-t", "dev"]
    assert gen_main([*common, "-n", "v1", "-o", str(base), f"{registry.host}/{repo}:v1"]) == 0
    capsys.readouterr()
    assert gen_main([*common, "-n", "v2", "-o", str(delta), "--delta-from", str(base),
                     f"{registry.host}/{repo}:v2"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "Delta against v1: " in out and "the full artifact would be" in out
    assert delta.stat().st_size < 100_000 < base.stat().st_size
    members, contents = payload(delta)
    manifest = json.loads(contents["manifest.json"])
    sizes = dict(members)
    assert [sizes[name] == 0 for name in manifest[0]["Layers"]] == [True, True, False]
    data = meta(delta)
    assert data["delta_base"] == "v1" and len(str(data["delta_layers"]).split(",")) == 2
    # the same base named by its image reference: same layers, no depends
    by_ref = tmp_path / "v2-ref.mender"
    assert gen_main([*common, "-n", "v2", "-o", str(by_ref), "--delta-from",
                     f"{registry.host}/{repo}:v1", f"{registry.host}/{repo}:v2"]) == 0  # fmt: skip
    assert meta(by_ref)["delta_layers"] == data["delta_layers"]
    assert meta(by_ref)["delta_base"] == f"{registry.host}/{repo}:v1"
    assert "artifact_name" not in read_artifact(str(by_ref)).artifact_depends
