"""The module's offline path driven directly (no Mender client), on the real dockerd:
a payload stored as files/<name> (the client's other way of handing it over),
a `--resolver docker` payload (uncompressed layers from `docker save`), and the
free-space check from the header's unpacked sizes."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import pytest

from mender_docker.cli.gen import parse_options
from mender_docker.gen import as_resolved, build_metadata, export_all
from mender_docker.module.config import Config
from mender_docker.module.engine import Engine
from mender_docker.module.errors import DeploymentError
from mender_docker.module.images import IMPORT_REPOSITORY
from mender_docker.module.main import run_state
from mender_docker.offline import payload_file
from mender_docker.registry.export import BlobStore
from mender_docker.spec import loaded_tag
from tests.offline.conftest import remove_images, transient_left
from tests.realstack import BUSYBOX, DEVICE_TYPE, ImageFactory, Registry, run, unique
from tests.registry.ocipush import push_image


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Config]:
    conf = Config(
        scope="managed",
        label_namespace=unique("offline.files"),
        data_dir=str(tmp_path / "journal"),
        health_window=1,
        health_timeout=20,
        stop_timeout=2,
    )
    yield conf
    ids = run(["docker", "ps", "-aq", "--filter", f"label={conf.label('managed')}=1"]).stdout
    if ids.split():
        run(["docker", "rm", "-f", *ids.split()], check=False)


def make_tree(tmp_path: Path, meta: Dict[str, Any], payload: bool, images: Any) -> Path:
    tree = tmp_path / "tree"
    (tree / "header").mkdir(parents=True)
    (tree / "tmp").mkdir()
    (tree / "header" / "meta-data").write_text(json.dumps(meta))
    (tree / "header" / "artifact_name").write_text("files-v1\n")
    if payload:
        (tree / "files").mkdir()
        with payload_file(images).open() as src, open(tree / "files" / "images.tar", "wb") as out:
            shutil.copyfileobj(src, out)
    return tree


def exported(tmp_path: Path, pinned: str, *extra: str) -> Tuple[Dict[str, Any], Any]:
    options = parse_options(["--embed-images", *extra, "-n", "f1", "-t", DEVICE_TYPE, pinned])
    store = tmp_path / "blobs"
    store.mkdir()
    images = export_all(options, BlobStore(str(store)))
    meta = build_metadata(options, [as_resolved(i) for i in images], images)
    return meta.to_dict(), images


def image_id(ref: str) -> str:
    proc = run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def test_docker_saved_payload_loads_from_the_files_tree_and_runs(
    image_factory: ImageFactory, config: Config, tmp_path: Path
) -> None:
    pinned = image_factory.http_service(unique("offfiles"))
    meta, images = exported(tmp_path, pinned, "--resolver", "docker")
    assert parse_options(["--offline", "--resolver", "docker", "-n", "a", "-t", "d", "x"]
                         ).compression == "gzip"  # fmt: skip
    assert all(layer.suffix == ".tar" for layer in images[0].layers)  # docker save: unpacked
    tree = make_tree(tmp_path, meta, True, images)
    remove_images(image_factory.tags[-1], pinned)
    tag = loaded_tag(pinned)
    try:
        run_state("Download", str(tree), config)
        assert image_id(tag) == meta["image_ids"][0]
        run_state("ArtifactInstall", str(tree), config)
        ps = run(["docker", "ps", "--filter", f"label={config.label('managed')}=1",
                  "--format", "{{.Image}}"]).stdout.split()  # fmt: skip
        # created from the image ID the signed header names, not from a tag (issue 10)
        assert len(ps) == 1 and meta["image_ids"][0].startswith("sha256:" + ps[0])
        run_state("ArtifactCommit", str(tree), config)
        run_state("Cleanup", str(tree), config)
        assert image_id(tag) == meta["image_ids"][0]  # in use: kept
        assert transient_left(Path(config.journal_dir)) == []
    finally:
        ids = run(["docker", "ps", "-aq", "--filter", f"label={config.label('managed')}=1"])
        if ids.stdout.split():
            run(["docker", "rm", "-f", *ids.stdout.split()], check=False)
        remove_images(tag)


def test_install_without_loaded_images_or_payload_fails_clearly(
    image_factory: ImageFactory, config: Config, tmp_path: Path
) -> None:
    pinned = image_factory.http_service(unique("offnone"))
    meta, images = exported(tmp_path, pinned)
    tree = make_tree(tmp_path, meta, False, images)
    remove_images(image_factory.tags[-1], pinned)
    with pytest.raises(DeploymentError, match="not loaded and the payload file images.tar"):
        run_state("ArtifactInstall", str(tree), config)
    assert image_id(loaded_tag(pinned)) == ""


def test_not_enough_space_refuses_before_loading(
    image_factory: ImageFactory, config: Config, tmp_path: Path
) -> None:
    pinned = image_factory.http_service(unique("offspace"))
    meta, images = exported(tmp_path, pinned)
    meta["image_sizes"] = [10**15]  # a petabyte: no device has that free
    tree = make_tree(tmp_path, meta, True, images)
    remove_images(image_factory.tags[-1], pinned)
    with pytest.raises(DeploymentError, match="not enough space"):
        run_state("Download", str(tree), config)
    assert image_id(loaded_tag(pinned)) == ""


class PlainLoadEngine(Engine):
    """The real docker, driven as for an engine without the import shortcut
    (podman, dockerd's containerd store): everything goes through `load`."""

    def imports_base_layers(self) -> bool:
        return False


@pytest.mark.parametrize("split", [True, False], ids=["import-base", "load-only"])
def test_multi_layer_images_sharing_a_base_load_and_a_failed_deployment_removes_them(
    registry: Registry, config: Config, tmp_path: Path, split: bool
) -> None:
    """OCI images of two layers with a common first layer: the base goes through
    `docker import` once (or everything through `docker load`); the IDs match
    the registry's config digests; Cleanup of a deployment never installed
    removes both, and no transient image is left at any point."""
    engine = Engine() if split else PlainLoadEngine()
    assert engine.imports_base_layers() is split  # dockerd here has the classic store
    common = {"bin/busybox": BUSYBOX.read_bytes(), "m": uuid.uuid4().hex.encode()}
    repo = f"offmulti{uuid.uuid4().hex[:6]}"
    first = push_image(registry.host, f"{repo}/a", "v1", [common, {"a": b"a" * 9000}])
    second = push_image(registry.host, f"{repo}/b", "v1", [common, {"b": b"b"}])
    refs = [f"{registry.host}/{repo}/a:v1", f"{registry.host}/{repo}/b:v1"]
    options = parse_options(["--embed-images", "-n", "m1", "-t", DEVICE_TYPE, *refs])
    store = tmp_path / "blobs"
    store.mkdir()
    images = export_all(options, BlobStore(str(store)))
    meta = build_metadata(options, [as_resolved(i) for i in images], images).to_dict()
    tree = make_tree(tmp_path, meta, True, images)
    tags = [loaded_tag(ref) for ref in meta["containers"]]
    try:
        run_state("Download", str(tree), config, engine)
        assert [image_id(tag) for tag in tags] == [first.config_digest, second.config_digest]
        assert transient_left(Path(config.journal_dir)) == []
        log = json.loads((tmp_path / "journal" / "journal.json").read_text())
        recorded = [ref for ref in log["deployment"]["pulled"] if IMPORT_REPOSITORY in ref]
        assert len(recorded) == (1 if split else 0)  # the shared base: imported once
        run_state("Cleanup", str(tree), config, engine)  # the client gave up after Download
        assert [image_id(tag) for tag in tags] == ["", ""]
    finally:
        remove_images(*tags)
