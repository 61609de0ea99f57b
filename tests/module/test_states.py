"""State-machine tests of the module over the fake engine."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, List, Optional, Tuple

import pytest

from mender_docker.module.deployment import Phase
from mender_docker.module.engine import ImageInfo
from mender_docker.module.errors import (
    DaemonDownError,
    DeploymentError,
    EngineError,
    HealthCheckError,
)
from mender_docker.spec import MetadataError
from tests.fakes.device import Device
from tests.fakes.engine import SimulatedCrash

MANAGED = "io.mender.docker.managed"
# every journal write of these tests follows the phase table (deployment.NEXT)
pytestmark = pytest.mark.usefixtures("phases_follow_the_table")


@pytest.fixture
def device(tmp_path: Path) -> Device:
    return Device(tmp_path)


def test_happy_path_scope_all_stops_everything_and_never_removes_unmanaged(device: Device) -> None:
    engine = device.engine
    old = engine.add_container("legacy", engine.publish("legacy", "1"), restart_policy="always")
    web = engine.publish("registry.local/web", "2")
    device.new_deployment("release-2", {"containers": [web], "run_args": "-p 80:80"})

    device.run("Download")
    assert engine.containers[old].running, "Download must not touch running containers"
    assert ("pull", web) in engine.calls

    device.run("ArtifactInstall")
    new = engine.by_name("web")
    assert new.running and new.image == web
    assert new.args == ("--restart=unless-stopped", "--tty=true", "--publish=80:80")
    assert new.labels[MANAGED] == "1"
    assert new.labels["io.mender.docker.artifact"] == "release-2"
    assert not engine.containers[old].running
    assert engine.containers[old].restart_policy == "no", "pending: no revival by dockerd"

    device.run("ArtifactCommit", "Cleanup")
    assert old in engine.containers, "an unmanaged container is never removed"
    assert not engine.containers[old].running
    assert device.journal().deployment is not None
    assert device.journal().deployment.phase == Phase.CLEANED  # type: ignore[union-attr]
    assert device.journal().previous_images == [web]


def test_unchanged_containers_keep_running_untouched(device: Device) -> None:
    engine = device.engine
    web1, web2 = engine.publish("web", "1"), engine.publish("web", "2")
    db = engine.publish("db", "1")
    device.deploy("r1", [web1, db])
    db_id = engine.by_name("db").id
    old_web_id = engine.by_name("web").id
    engine.calls.clear()

    device.deploy("r2", [web2, db])
    assert engine.by_name("db").id == db_id
    assert not [call for call in engine.mutations() if db_id in call], "db was touched"
    assert engine.by_name("web").image == web2
    assert old_web_id not in engine.containers, "replaced managed container removed"
    assert engine._image(web1) is None, "unused image of the previous deployment removed"
    assert engine._image(db) is not None and engine._image(web2) is not None
    assert sorted(device.journal().previous_images) == sorted([web2, db])


def test_changed_arguments_redeploy_the_container(device: Device) -> None:
    web = device.engine.publish("web", "1")
    device.deploy("r1", [web])
    first = device.engine.by_name("web").id
    device.deploy("r2", [web], container_args=["-e MODE=fast"])
    assert device.engine.by_name("web").id != first
    assert device.engine.by_name("web").args[-1:] == ("--env=MODE=fast",)


def test_keep_previous_images(tmp_path: Path) -> None:
    device = Device(tmp_path, keep_previous_images=True)
    web1, web2 = device.engine.publish("web", "1"), device.engine.publish("web", "2")
    device.deploy("r1", [web1])
    device.deploy("r2", [web2])
    assert device.engine._image(web1) is not None
    assert device.journal().previous_images == [web2, web1]


def test_managed_scope_leaves_unmanaged_alone(tmp_path: Path) -> None:
    device = Device(tmp_path, scope="managed")
    engine = device.engine
    other = engine.add_container("other", engine.publish("other", "1"))
    device.deploy("r1", [engine.publish("web", "1")])
    device.deploy("r2", [engine.publish("web", "2")])
    assert engine.containers[other].running
    assert not [call for call in engine.mutations() if other in call]
    assert device.journal().deployment.previous[0].name == "web"  # type: ignore[union-attr]


@pytest.mark.parametrize("scope", ["managed", "all"])
def test_a_name_held_by_a_foreign_container_is_refused_in_download(
    tmp_path: Path, scope: str
) -> None:
    # issue 19: never renamed (scope = all renamed it and never renamed it back)
    device = Device(tmp_path, scope=scope)
    engine = device.engine
    engine.add_container("web", engine.publish("theirs", "1"), running=False)
    before = engine.snapshot()
    journal_before = device.journal_text()
    device.new_deployment("r1", {"containers": [engine.publish("web", "1")]})
    with pytest.raises(DeploymentError, match="'web' is taken by container .* did not deploy"):
        device.run("Download")
    assert engine.snapshot() == before and engine.mutations() == []
    assert device.journal_text() == journal_before
    device.run("ArtifactFailure", "Cleanup")
    assert engine.snapshot() == before


def test_labels_alone_do_not_make_a_container_ours(tmp_path: Path) -> None:
    # issue 19: another installation (or anyone) can write our labels; only the journal's
    # record makes a container this installation's to keep, replace or remove
    device = Device(tmp_path, scope="managed")
    engine = device.engine
    web = engine.publish("web", "1")
    device.deploy("r1", [web])
    spoof = engine.add_container(
        "spoofed", engine.publish("other", "1"), labels={MANAGED: "1"}
    )
    device.deploy("r2", [engine.publish("web", "2")])
    assert engine.containers[spoof].running, "a labelled foreign container is not in scope"
    assert not [call for call in engine.mutations() if spoof in call]
    device.new_deployment("r3", {"containers": [engine.publish("spoofed", "2")]})
    with pytest.raises(DeploymentError, match="'spoofed' is taken"):
        device.run("Download")


def test_a_journal_of_the_released_module_keeps_its_containers(tmp_path: Path) -> None:
    # a device updated from a module that did not record `owned`: its release is still ours
    device = Device(tmp_path, scope="managed")
    engine = device.engine
    device.deploy("r1", [engine.publish("web", "1")])
    path = Path(device.config.journal_dir) / "journal.json"
    data = json.loads(path.read_text())
    del data["owned"]
    path.write_text(json.dumps(data))
    old = engine.by_name("web").id
    device.deploy("r2", [engine.publish("web", "2")])
    assert old not in engine.containers, "the released module's container was replaced"
    assert engine.by_name("web").image.startswith("web@")


def _world(device: Device) -> Tuple[List[str], List[Tuple[str, str, bool, str]]]:
    """A device that ran r1 (web v1, db) next to an unmanaged container, about to get r2."""
    engine = device.engine
    engine.add_container("other", engine.publish("other", "1"), restart_policy="on-failure:3")
    web1, web2 = engine.publish("web", "1"), engine.publish("web", "2")
    db, cache = engine.publish("db", "1"), engine.publish("cache", "1")
    device.deploy("r1", [web1, db])
    return [web2, db, cache], engine.snapshot()


def _count_install_calls(tmp_path: Path) -> int:
    device = Device(tmp_path / "count")
    images, _ = _world(device)
    device.new_deployment("r2", {"containers": images})
    device.run("Download")
    before = len(device.engine.calls)
    device.run("ArtifactInstall")
    return len(device.engine.calls) - before


def test_rollback_after_a_crash_at_every_engine_call_of_install(tmp_path: Path) -> None:
    total = _count_install_calls(tmp_path)
    assert total > 15
    for crash_at in range(1, total + 1):
        device = Device(tmp_path / f"crash-{crash_at}")
        images, before = _world(device)
        device.new_deployment("r2", {"containers": images})
        device.run("Download")
        device.engine.crash_at = len(device.engine.calls) + crash_at
        with pytest.raises(SimulatedCrash):
            device.run("ArtifactInstall")
        device.run("ArtifactRollback")
        assert device.engine.snapshot() == before, f"crash at install call {crash_at}"
        device.run("ArtifactRollback", "ArtifactFailure", "Cleanup")  # idempotent
        assert device.engine.snapshot() == before, f"crash at install call {crash_at}"
        assert device.engine._image(images[2]) is None, "image pulled only for r2 removed"
        assert device.engine._image(images[1]) is not None, "image r1 still runs kept"
        assert device.journal().deployment.phase == Phase.FAILED  # type: ignore[union-attr]


def test_rollback_survives_its_own_crash(tmp_path: Path) -> None:
    device = Device(tmp_path)
    images, before = _world(device)
    device.new_deployment("r2", {"containers": images})
    device.run("Download", "ArtifactInstall")
    for crash_at in (2, 4, 6):
        device.engine.crash_at = len(device.engine.calls) + crash_at
        with pytest.raises(SimulatedCrash):
            device.run("ArtifactRollback")
    device.run("ArtifactRollback")
    assert device.engine.snapshot() == before


def test_rollback_after_commit(device: Device) -> None:
    images, before = _world(device)
    device.new_deployment("r2", {"containers": images})
    device.run("Download", "ArtifactInstall", "ArtifactCommit")
    assert device.engine.snapshot() != before
    device.run("ArtifactRollback", "ArtifactFailure", "Cleanup")
    assert device.engine.snapshot() == before
    assert device.journal().deployment.phase == Phase.FAILED  # type: ignore[union-attr]


def test_failure_without_rollback_restores_the_previous_state(device: Device) -> None:
    images, before = _world(device)
    device.new_deployment("r2", {"containers": images})
    device.run("Download", "ArtifactInstall", "ArtifactFailure", "Cleanup")
    assert device.engine.snapshot() == before


def test_rollback_when_nothing_was_installed(device: Device) -> None:
    images, before = _world(device)
    journal_before = device.journal_text()
    device.engine.calls.clear()
    device.new_deployment("r2", {"containers": images})
    device.run("ArtifactRollback", "ArtifactFailure", "Cleanup")  # Download never ran
    assert device.engine.snapshot() == before
    assert device.journal_text() == journal_before
    assert device.engine.mutations() == []


def test_failed_download_is_cleaned_up(device: Device) -> None:
    images, before = _world(device)
    missing = "web@sha256:" + "0" * 64  # not in the registry: the pull fails
    device.new_deployment("r2", {"containers": [images[2], missing]})
    with pytest.raises(DeploymentError, match="cannot pull"):
        device.run("Download")
    device.run("ArtifactFailure", "Cleanup")
    assert device.engine.snapshot() == before
    assert device.engine._image(images[2]) is None, "partial pull removed"


def test_health_gate_failure_rolls_back(device: Device) -> None:
    images, before = _world(device)
    crashy = device.engine.publish("crashy", "1", behaviour="exits")
    device.new_deployment("r2", {"containers": [images[0], crashy], "run_args": "--restart=no"})
    device.run("Download")
    with pytest.raises(HealthCheckError, match="crashy .* exited"):
        device.run("ArtifactInstall")
    assert device.journal().deployment.phase == Phase.INSTALLING  # type: ignore[union-attr]
    device.run("ArtifactRollback")
    assert device.engine.snapshot() == before
    assert device.journal().deployment.phase == Phase.ROLLED_BACK  # type: ignore[union-attr]


def test_health_gate_times_out_on_unhealthy(device: Device) -> None:
    sick = device.engine.publish("sick", "1", behaviour="unhealthy")
    device.new_deployment("r1", {"containers": [sick], "health_timeout": 3})
    device.run("Download")
    start = device.clock.now
    with pytest.raises(HealthCheckError, match="health unhealthy"):
        device.run("ArtifactInstall")
    assert 3 <= device.clock.now - start <= 4


def test_health_gate_waits_for_the_window(device: Device) -> None:
    web = device.engine.publish("web", "1", behaviour="healthy")
    device.new_deployment("r1", {"containers": [web], "health_window": 2})
    device.run("Download")
    start = device.clock.now
    device.run("ArtifactInstall")
    assert device.clock.now - start >= 2


def test_a_restart_during_the_health_gate_fails_it_at_once(device: Device) -> None:
    web = device.engine.publish("web", "1", behaviour="healthy")
    device.new_deployment("r1", {"containers": [web], "health_window": 5, "health_timeout": 60})
    device.run("Download")
    engine = device.engine
    original_inspect = engine.inspect_containers
    polls = {"n": 0}

    def inspect_with_one_restart(ids):  # type: ignore[no-untyped-def]
        polls["n"] += 1
        if polls["n"] == 3 and len(ids) == 1:  # the engine restarted it between polls
            engine.containers[ids[0]].started += 1
        return original_inspect(ids)

    engine.inspect_containers = inspect_with_one_restart  # type: ignore[method-assign]
    start = device.clock.now
    with pytest.raises(HealthCheckError, match="restarted by the engine"):
        device.run("ArtifactInstall")
    assert device.clock.now - start < 5, "failed before the window or the timeout ran out"


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"run_args": ""}, "no 'containers'"),
        ({"containers": "web"}, "list of strings"),
        ({"containers": ["web:latest"]}, "not pinned by digest"),
        ({"containers": ["web@sha256:" + "1" * 64], "extra": {"a": 1}}, "nested"),
        (
            {
                "containers": ["a/web@sha256:" + "1" * 64, "b/web@sha256:" + "1" * 64],
                "names": ["x", "x"],
            },
            "used by both",
        ),
        ({"containers": ["web@sha256:" + "1" * 64], "run_args": "'unclosed"}, "cannot split"),
    ],
)
def test_bad_metadata_changes_nothing(device: Device, metadata: dict, message: str) -> None:  # type: ignore[type-arg]
    images, before = _world(device)
    journal_before = device.journal_text()
    device.engine.calls.clear()
    device.new_deployment("bad", metadata)
    for state in ("Download", "ArtifactInstall"):
        with pytest.raises(MetadataError, match=message):
            device.run(state)
    assert device.engine.calls == []
    assert device.journal_text() == journal_before
    assert device.engine.snapshot() == before


def test_not_enough_disk_space_pulls_nothing(device: Device) -> None:
    web = device.engine.publish("web", "1")
    device.new_deployment("r1", {"containers": [web], "image_sizes": [2**50]})
    with pytest.raises(DeploymentError, match="not enough space"):
        device.run("Download")
    assert not device.engine.mutations()


def test_image_that_does_not_match_its_digest_is_refused(device: Device) -> None:
    web = device.engine.publish("web", "1")
    original_inspect = device.engine.inspect_image

    def lying_inspect(ref: str) -> Optional[ImageInfo]:  # an engine that found another image
        info = original_inspect(ref)
        return None if info is None else replace(info, repo_digests=("web@sha256:" + "f" * 64,))

    device.engine.inspect_image = lying_inspect  # type: ignore[method-assign]
    device.new_deployment("r1", {"containers": [web]})
    with pytest.raises(DeploymentError, match="does not match its digest"):
        device.run("Download")


def test_image_id_mismatch_is_refused(device: Device) -> None:
    web = device.engine.publish("web", "1")
    device.new_deployment("r1", {"containers": [web], "image_ids": ["sha256:" + "e" * 64]})
    with pytest.raises(DeploymentError, match="has ID"):
        device.run("Download")


def test_download_is_retried(tmp_path: Path) -> None:
    device = Device(tmp_path, pull_retries=2)
    web = device.engine.publish("web", "1")
    original_pull = device.engine.pull
    attempts = {"n": 0}

    def flaky(ref: str) -> None:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise EngineError(["docker", "pull"], 1, "connection reset")
        original_pull(ref)

    device.engine.pull = flaky  # type: ignore[method-assign]
    device.new_deployment("r1", {"containers": [web]})
    device.run("Download")
    assert attempts["n"] == 3


def test_daemon_down_fails_download_before_the_journal_changes(device: Device) -> None:
    device.new_deployment("r1", {"containers": [device.engine.publish("web", "1")]})
    device.engine.daemon_down = True
    with pytest.raises(DaemonDownError):
        device.run("Download")
    assert device.journal_text() is None


def test_commit_refuses_an_unfinished_install(device: Device) -> None:
    crashy = device.engine.publish("crashy", "1", behaviour="exits")
    device.new_deployment("r1", {"containers": [crashy], "run_args": "--restart no"})
    device.run("Download")
    with pytest.raises(HealthCheckError):
        device.run("ArtifactInstall")
    with pytest.raises(DeploymentError, match="cannot commit"):
        device.run("ArtifactCommit")


def test_rerunning_install_after_a_crash_undoes_then_redoes(device: Device) -> None:
    images, _ = _world(device)
    device.new_deployment("r2", {"containers": images})
    device.run("Download")
    device.engine.crash_at = len(device.engine.calls) + 12
    with pytest.raises(SimulatedCrash):
        device.run("ArtifactInstall")
    device.run("ArtifactInstall", "ArtifactCommit", "Cleanup")
    names = sorted(c.name for c in device.engine.containers.values())
    assert names == ["cache", "db", "other", "web"]
    assert device.engine.by_name("web").image == images[0]
    assert not device.engine.by_name("other").running


def _calls_of(tmp_path: Path, states: Tuple[str, ...], upto: Tuple[str, ...]) -> int:
    device = Device(tmp_path)
    images, _ = _world(device)
    device.new_deployment("r2", {"containers": images})
    device.run(*upto)
    before = len(device.engine.calls)
    device.run(*states)
    return len(device.engine.calls) - before


def test_crash_at_every_call_of_download_then_failure_and_cleanup(tmp_path: Path) -> None:
    total = _calls_of(tmp_path / "count", ("Download",), ())
    for crash_at in range(1, total + 1):
        device = Device(tmp_path / f"crash-{crash_at}")
        images, before = _world(device)
        device.new_deployment("r2", {"containers": images})
        device.engine.crash_at = len(device.engine.calls) + crash_at
        with pytest.raises(SimulatedCrash):
            device.run("Download")
        device.run("ArtifactFailure", "Cleanup")
        assert device.engine.snapshot() == before, f"crash at download call {crash_at}"
        assert device.engine._image(images[2]) is None, f"crash at download call {crash_at}"


def test_crash_at_every_call_of_cleanup_then_cleanup_again(tmp_path: Path) -> None:
    reference = Device(tmp_path / "reference")
    images, _ = _world(reference)
    reference.new_deployment("r2", {"containers": images})
    reference.run("Download", "ArtifactInstall", "ArtifactCommit", "Cleanup")
    expected = reference.engine.snapshot()
    total = _calls_of(
        tmp_path / "count", ("Cleanup",), ("Download", "ArtifactInstall", "ArtifactCommit")
    )
    for crash_at in range(1, total + 1):
        device = Device(tmp_path / f"crash-{crash_at}")
        images, _ = _world(device)
        device.new_deployment("r2", {"containers": images})
        device.run("Download", "ArtifactInstall", "ArtifactCommit")
        device.engine.crash_at = len(device.engine.calls) + crash_at
        with pytest.raises(SimulatedCrash):
            device.run("Cleanup")
        device.run("Cleanup")
        assert device.engine.snapshot() == expected, f"crash at cleanup call {crash_at}"
        assert device.engine._image(device.engine.publish("web", "1")) is None
        assert device.journal().deployment.phase == Phase.CLEANED  # type: ignore[union-attr]


def test_the_owners_policy_refuses_before_anything_changes(tmp_path: Path) -> None:
    device = Device(tmp_path, deny_run_args="dangerous", allowed_registries="registry.local")
    engine = device.engine
    ok = engine.publish("registry.local/web", "1")
    for meta, message in [
        ({"containers": [ok], "run_args": "--privileged"}, "--privileged"),
        ({"containers": [ok], "container_args": ["-v /:/host"]}, "bind"),
        ({"containers": [engine.publish("elsewhere.io/web", "1")]}, "elsewhere.io"),
    ]:
        device.new_deployment("r1", meta)
        for state in ("Download", "ArtifactInstall"):
            with pytest.raises(DeploymentError, match="policy refuses") as info:
                device.run(state)
            assert message in str(info.value)
    # the engine is only asked (what runs, where it keeps its state): nothing changes
    assert engine.mutations() == [] and device.journal_text() is None
    device.new_deployment("r1", {"containers": [ok], "run_args": "-p 80:80"})
    device.run("Download", "ArtifactInstall")
    assert engine.by_name("web").running


def test_podman4_gets_always_and_keeps_old_policies(tmp_path: Path) -> None:
    """podman 4 cannot change a restart policy: install and rollback go on without, and new
    containers get the one podman-restart.service honours at boot."""
    device = Device(tmp_path)
    device.engine.podman4 = True
    old = device.engine.add_container(
        "legacy", device.engine.publish("legacy", "1"), restart_policy="always"
    )
    before = device.engine.snapshot()
    device.new_deployment("r2", {"containers": [device.engine.publish("web", "2")]})
    device.run("Download", "ArtifactInstall")
    assert device.engine.by_name("web").args[:1] == ("--restart=always",)
    assert not device.engine.containers[old].running
    assert device.engine.containers[old].restart_policy == "always"
    device.run("ArtifactRollback", "ArtifactFailure", "Cleanup")
    assert device.engine.snapshot() == before


def _steps(written: List[str]) -> List[str]:
    """The phases written, each run of the same phase once."""
    return [phase for i, phase in enumerate(written) if i == 0 or written[i - 1] != phase]


def test_the_journal_walks_the_phase_table(
    device: Device, phases_follow_the_table: List[str]
) -> None:
    engine = device.engine
    device.deploy("r1", [engine.publish("web", "1")])
    crashy = engine.publish("crashy", "1", behaviour="exits")
    device.new_deployment("r2", {"containers": [crashy], "run_args": "--restart=no"})
    device.run("Download")
    with pytest.raises(HealthCheckError):
        device.run("ArtifactInstall")
    device.run("ArtifactRollback", "ArtifactFailure", "Cleanup")
    assert _steps(phases_follow_the_table) == [
        # r1: Download, ArtifactInstall (records and checks the images again), ...
        "downloading", "downloaded", "downloading", "downloaded",
        "installing", "installed", "committed", "cleaned",
        # r2: the health gate fails; ArtifactRollback, then Cleanup
        "downloading", "downloaded", "downloading", "downloaded",
        "installing", "rolling-back", "rolled-back", "failed",
    ]  # fmt: skip


def test_a_bind_source_swapped_after_create_is_refused_before_start(tmp_path: Path) -> None:
    # issue 19: the engine resolves a bind source when the container starts; the module
    # judges the binds again just before, as they resolve then
    srv = tmp_path / "srv"
    (srv / "app").mkdir(parents=True)
    device = Device(tmp_path, allow_run_args=f"safe, bind={srv}")
    engine = device.engine
    images, before = _world(device)
    real_create = engine.create

    def create_then_swap(*args: Any, **kwargs: Any) -> str:
        created = real_create(*args, **kwargs)
        if not (srv / "app").is_symlink():
            (srv / "app").rmdir()
            (srv / "app").symlink_to("/etc")
        return created

    device.new_deployment("r2", {"containers": images, "run_args": f"-v {srv}/app:/app:ro"})
    device.run("Download")
    engine.create = create_then_swap  # type: ignore[method-assign]
    with pytest.raises(DeploymentError, match=f"policy refuses.*{srv}/app"):
        device.run("ArtifactInstall")
    assert not any(c.running for c in engine.containers.values() if c.args)
    device.run("ArtifactRollback", "ArtifactFailure", "Cleanup")
    assert engine.snapshot() == before
