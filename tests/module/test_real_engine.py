"""The engine adapter and the module's states against the real dockerd and registry.

Everything runs with `scope = managed` and a label namespace of its own, so
these tests never touch containers of other tests sharing the daemon.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

from mender_docker.cli.module_tools import build_module
from mender_docker.module.config import Config
from mender_docker.module.context import Context
from mender_docker.module.deployment import Phase
from mender_docker.module.engine import Engine
from mender_docker.module.errors import (
    DaemonDownError,
    EngineMissingError,
    HealthCheckError,
    NoSuchObjectError,
)
from mender_docker.module.health import fail
from mender_docker.module.journal import JournalStore
from mender_docker.module.main import main
from tests.realstack import ENGINES, PODMAN, ImageFactory, PodmanStore, Registry, run, unique
from tests.registry.ocipush import layer, push_image

pytestmark = pytest.mark.real


class Cleaner:
    """Removes what a test created on the shared daemon, whatever happens."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.images: List[str] = []

    def containers(self) -> List[str]:
        out = run(
            ["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={self.namespace}.test=1"]
        ).stdout
        managed = run(
            ["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={self.namespace}.managed=1"]
        ).stdout
        return sorted(set(out.split()) | set(managed.split()))

    def clean(self) -> None:
        ids = self.containers()
        if ids:
            run(["docker", "rm", "-f", *ids], check=False)
        for ref in self.images:
            run(["docker", "image", "rm", "-f", ref], check=False)


@pytest.fixture
def cleaner() -> Iterator[Cleaner]:
    helper = Cleaner(f"test.mender-docker.{uuid.uuid4().hex[:8]}")
    try:
        yield helper
    finally:
        helper.clean()


def forget_locally(ref: str) -> None:
    """Remove an image the factory built, so the module must pull it from the registry."""
    tag = run(["docker", "image", "inspect", "--format", "{{json .RepoTags}}", ref]).stdout
    for name in json.loads(tag) or []:
        run(["docker", "image", "rm", name], check=False)
    run(["docker", "image", "rm", ref], check=False)
    assert run(["docker", "image", "inspect", ref], check=False).returncode != 0


def inspect(container: str) -> Dict[str, object]:
    data: List[Dict[str, object]] = json.loads(run(["docker", "inspect", container]).stdout)
    return data[0]


# -- the adapter ---------------------------------------------------------------------


def test_adapter_lifecycle(image_factory: ImageFactory, cleaner: Cleaner) -> None:
    engine = Engine()
    ref = image_factory.build(unique("adapter"))
    cleaner.images.append(ref)
    forget_locally(ref)
    assert engine.inspect_image(ref) is None
    engine.pull(ref)
    image = engine.inspect_image(ref)
    assert image is not None and ref in image.repo_digests and image.id.startswith("sha256:")
    root = engine.data_root()
    assert root and os.path.isdir(root)

    name = unique("adapter")
    labels = {f"{cleaner.namespace}.test": "1", "odd": "a=b c"}
    cid = engine.create(name, ref, ["--restart=on-failure:3", "--env=X=1 2"], labels)
    [info] = engine.inspect_containers([cid])
    assert (info.status, info.running, info.restart_count) == ("created", False, 0)
    engine.start(cid)
    [info] = engine.inspect_containers([cid])
    assert (info.name, info.running, info.restart_policy) == (name, True, "on-failure:3")
    assert info.labels["odd"] == "a=b c" and info.image_id == image.id
    assert cid in engine.list_containers(label=f"{cleaner.namespace}.test=1")

    engine.set_restart_policy(cid, "no")
    engine.rename(cid, name + "-old")
    engine.stop(cid, 1)
    [info] = engine.inspect_containers([cid])
    assert (info.name, info.running, info.restart_policy) == (name + "-old", False, "no")
    assert cid not in engine.list_containers()
    assert cid in engine.list_containers(all=True)
    first_start = info.started_at
    engine.start(cid)
    [info] = engine.inspect_containers([cid])
    assert info.running and info.started_at != first_start
    assert "no logs" not in engine.logs_tail(cid, 5)

    gone = "0" * 64
    assert [c.id for c in engine.inspect_containers([gone, cid, gone])] == [cid]

    engine.remove_container(cid)
    assert engine.inspect_containers([cid]) == []
    engine.remove_container(cid)  # `rm -f` of a gone container: nothing to do
    with pytest.raises(NoSuchObjectError):
        engine.start(cid)
    engine.remove_image(ref)
    assert engine.inspect_image(ref) is None


@pytest.mark.parametrize("kind", ENGINES)
def test_a_container_its_policy_restarted_still_tells_its_last_exit_code(
    kind: str, image_factory: ImageFactory, registry: Registry, cleaner: Cleaner, tmp_path: Path
) -> None:
    """Restarted by its restart policy, a container shows ExitCode 0 again on both
    engines (dockerd 20.10, podman 4.3): the exit code comes from the `die` events,
    and the health gate's error names it whichever order it looked in."""
    ref = image_factory.build(unique("restarts"), cmd=["sh", "-c", "sleep 2; exit 3"])
    cleaner.images.append(ref)
    # not under tmp_path: with a store that deep, podman's exit command (its cleanup,
    # which restarts the container) never ran here, the container stayed `stopped`
    short = Path(tempfile.mkdtemp(prefix="mdpm-"))
    store = PodmanStore(short / "podman", registries=[registry.host]) if kind == PODMAN else None
    engine = Engine(kind, env=store.env if store else None)
    try:
        if store:
            engine.pull(ref)
        name = unique("restarts")
        cid = engine.create(name, ref, ["--restart=always"], {f"{cleaner.namespace}.test": "1"})
        [info] = engine.inspect_containers([cid])
        assert engine.last_exit_code(cid, info.created) is None  # it never ran
        engine.start(cid)
        deadline = time.monotonic() + 60
        while not (info.running and info.restart_count >= 1) and time.monotonic() < deadline:
            time.sleep(0.1)
            [info] = engine.inspect_containers([cid])
        assert (info.running, info.exit_code) == (True, 0), info  # the reset code
        assert info.created and engine.last_exit_code(cid, info.created) == 3
        ctx = Context(Config(), engine, JournalStore(str(tmp_path / "data")), str(tmp_path))
        with pytest.raises(HealthCheckError) as failed:
            fail(ctx, info, "exited during the health gate")
        count = info.restart_count
        assert str(failed.value).endswith(
            f"exited during the health gate (running, restarted {count} "
            f"time{'' if count == 1 else 's'}, last exit code 3)"
        )
        engine.remove_container(cid)
    finally:
        if store:
            store.cleanup()
        shutil.rmtree(short, ignore_errors=True)


@pytest.mark.parametrize("kind", ENGINES)
def test_layer_chains_are_what_image_inspect_says(
    kind: str, image_factory: ImageFactory, registry: Registry
) -> None:
    """What a delta's base check sees (Engine.layer_chains) is the engine's own
    RootFS.Layers of every image, among them a two-layer image just pulled."""
    files = [{"a": uuid.uuid4().hex.encode()}, {"b": uuid.uuid4().hex.encode()}]
    repo = unique("chains")
    pushed = push_image(registry.host, repo, "v1", files)
    ref = f"{registry.host}/{repo}@{pushed.digest}"
    short = Path(tempfile.mkdtemp(prefix="mdpm-"))
    store = PodmanStore(short / "podman", registries=[registry.host]) if kind == PODMAN else None
    env: Optional[Dict[str, str]] = {**os.environ, **store.env} if store else None
    engine = Engine(kind, env=store.env if store else None)

    def inspected() -> Set[Tuple[str, ...]]:
        ids = run([kind, "image", "ls", "-a", "-q", "--no-trunc"], env=env).stdout.split()
        if not ids:
            return set()
        out = run([kind, "image", "inspect", "--format", "{{json .RootFS.Layers}}", *ids], env=env)
        return {tuple(json.loads(line) or ()) for line in out.stdout.splitlines() if line.strip()}

    try:
        engine.pull(ref)
        before = inspected()
        chains = engine.layer_chains()
        after = inspected()  # dockerd is shared: other tests' images may come and go
        assert len(chains) == len(set(chains))
        assert before & after <= set(chains) <= before | after
        assert tuple(layer(f)[1] for f in files) in chains
    finally:
        if store:
            store.cleanup()
        else:
            run(["docker", "image", "rm", ref], check=False)
        shutil.rmtree(short, ignore_errors=True)


def test_adapter_classifies_failures() -> None:
    with pytest.raises(EngineMissingError, match="not found"):
        Engine(binary="docker-" + uuid.uuid4().hex).version()
    down = Engine(env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    with pytest.raises(DaemonDownError) as info:
        down.version()
    assert info.value.command[:2] == ["docker", "version"] and info.value.returncode != 0
    assert info.value.stderr


# -- the module's states ------------------------------------------------------------


class RealDevice:
    def __init__(self, root: Path, namespace: str) -> None:
        self.root = root
        self.data = root / "data"
        self.conf = root / "mender-docker.conf"
        self.conf.write_text(
            f"data_dir = {self.data}\nscope = managed\nlabel_namespace = {namespace}\n"
            "stop_timeout = 1\nhealth_window = 1\nhealth_timeout = 20\n"
        )
        self.tree = root / "tree"
        self.count = 0

    def new_tree(self, artifact: str, metadata: Dict[str, object]) -> None:
        self.count += 1
        self.tree = self.root / f"tree-{self.count}"
        (self.tree / "header").mkdir(parents=True)
        (self.tree / "tmp").mkdir()
        (self.tree / "header" / "artifact_name").write_text(artifact)
        (self.tree / "header" / "meta-data").write_text(json.dumps(metadata))

    def state(self, name: str, monkeypatch: pytest.MonkeyPatch) -> int:
        monkeypatch.setenv("MENDER_DOCKER_CONF", str(self.conf))
        return main([name, str(self.tree)])

    def phase(self) -> str:
        deployment = JournalStore(str(self.data)).load().deployment
        assert deployment is not None
        return deployment.phase


def running(namespace: str) -> Dict[str, str]:
    out = run(
        [
            "docker",
            "ps",
            "--filter",
            f"label={namespace}.managed=1",
            "--format",
            "{{.Names}}\t{{.ID}}",
        ]
    ).stdout
    return dict(line.split("\t") for line in out.splitlines() if line)


def test_download_install_commit_cleanup_then_update(
    image_factory: ImageFactory,
    cleaner: Cleaner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo_web, repo_db = unique("web"), unique("db")
    web1 = image_factory.build(repo_web, "1")
    web2 = image_factory.build(repo_web, "2", healthcheck=["true"])
    db = image_factory.build(repo_db, "1")
    cleaner.images += [web1, web2, db]
    for ref in (web1, web2, db):
        forget_locally(ref)
    web, dbname = unique("web"), unique("db")
    device = RealDevice(tmp_path, cleaner.namespace)

    device.new_tree("r1", {"containers": [web1, db], "run_args": "", "names": [web, dbname]})
    assert device.state("Download", monkeypatch) == 0
    assert running(cleaner.namespace) == {}, "Download starts nothing"
    for state in ("ArtifactInstall", "ArtifactCommit", "Cleanup"):
        assert device.state(state, monkeypatch) == 0, state
    first = running(cleaner.namespace)
    assert set(first) == {web, dbname}
    assert inspect(web)["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"  # type: ignore[index]

    device.new_tree("r2", {"containers": [web2, db], "names": [web, dbname]})
    for state in ("Download", "ArtifactInstall", "ArtifactCommit", "Cleanup"):
        assert device.state(state, monkeypatch) == 0, state
    second = running(cleaner.namespace)
    assert second[dbname] == first[dbname], "the unchanged container kept running"
    assert second[web] != first[web]
    assert inspect(web)["State"]["Health"]["Status"] == "healthy"  # type: ignore[index]
    assert cleaner.containers() == sorted(str(inspect(n)["Id"]) for n in (web, dbname)), (
        "the replaced container was removed"
    )
    assert run(["docker", "image", "inspect", web1], check=False).returncode != 0, (
        "the previous deployment's unused image was removed"
    )
    assert device.phase() == Phase.CLEANED


def test_failed_health_gate_rolls_back_with_the_packed_module(
    image_factory: ImageFactory, cleaner: Cleaner, tmp_path: Path
) -> None:
    repo = unique("svc")
    good = image_factory.build(repo, "1")
    bad = image_factory.build(repo, "2", cmd=["sh", "-c", "echo dying; exit 3"])
    cleaner.images += [good, bad]
    forget_locally(bad)
    name = unique("svc")
    device = RealDevice(tmp_path, cleaner.namespace)
    packed = tmp_path / "docker"
    build_module(str(packed))

    def state(name_: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-I", "-S", str(packed), name_, str(device.tree)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "MENDER_DOCKER_CONF": str(device.conf)},
            check=False,
        )

    device.new_tree("r1", {"containers": [good], "names": [name]})
    for step in ("Download", "ArtifactInstall", "ArtifactCommit", "Cleanup"):
        assert state(step).returncode == 0, step
    before = running(cleaner.namespace)

    device.new_tree("r2", {"containers": [bad], "names": [name], "run_args": "--restart=no"})
    assert state("Download").returncode == 0
    failed = state("ArtifactInstall")
    assert failed.returncode == 1
    assert "exit code 3" in failed.stderr and "dying" in failed.stderr
    assert "Traceback" not in failed.stderr
    for step in ("ArtifactRollback", "ArtifactRollback", "ArtifactFailure", "Cleanup"):
        assert state(step).returncode == 0, step
    assert running(cleaner.namespace) == before, "the previous container runs again"
    assert inspect(name)["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"  # type: ignore[index]
    assert run(["docker", "image", "inspect", bad], check=False).returncode != 0
    assert device.phase() == Phase.FAILED
    assert Phase.ROLLED_BACK != Phase.FAILED


def test_sigkill_during_install_then_rollback(
    image_factory: ImageFactory, cleaner: Cleaner, tmp_path: Path
) -> None:
    repo = unique("kill")
    old, new = image_factory.build(repo, "1"), image_factory.build(repo, "2")
    cleaner.images += [old, new]
    name = unique("kill")
    device = RealDevice(tmp_path, cleaner.namespace)
    device.conf.write_text(device.conf.read_text() + "stop_timeout = 4\n")
    packed = tmp_path / "docker"
    build_module(str(packed))
    env = {**os.environ, "MENDER_DOCKER_CONF": str(device.conf)}

    def state(step: str) -> int:
        argv = [sys.executable, "-I", "-S", str(packed), step, str(device.tree)]
        return subprocess.run(argv, env=env, capture_output=True, timeout=120).returncode

    device.new_tree("r1", {"containers": [old], "names": [name]})
    for step in ("Download", "ArtifactInstall", "ArtifactCommit", "Cleanup"):
        assert state(step) == 0, step
    before = running(cleaner.namespace)

    device.new_tree("r2", {"containers": [new], "names": [name]})
    assert state("Download") == 0
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", str(packed), "ArtifactInstall", str(device.tree)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while device.phase() != "installing" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)  # inside the 4 s stop of the old container
        assert proc.poll() is None, "install ended before it could be killed"
    finally:
        proc.kill()  # SIGKILL: no cleanup handler runs
        proc.wait()
    assert device.phase() == "installing"
    assert state("ArtifactRollback") == 0
    assert running(cleaner.namespace) == before
    assert inspect(name)["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"  # type: ignore[index]
    for step in ("ArtifactFailure", "Cleanup"):
        assert state(step) == 0, step
    assert running(cleaner.namespace) == before
