"""Compose applications on the device (module/application.py), on the fake engine:
names and labels, networks and volumes, dependency order, what is kept, rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from mender_docker.module.errors import HealthCheckError
from mender_docker.spec import MetadataError, parse_metadata, start_order
from tests.fakes.device import Device
from tests.fakes.engine import FakeEngine, SimulatedCrash

COMPOSE = "com.docker.compose"
# every journal write of these tests follows the phase table (deployment.NEXT)
pytestmark = pytest.mark.usefixtures("phases_follow_the_table")


def app(
    engine: FakeEngine,
    api: str = "1",
    web: str = "1",
    web_args: str = "",
    restart_web: bool = False,
    behaviours: Tuple[str, str] = ("ok", "ok"),
    migrate: bool = False,
) -> Dict[str, Any]:
    """Meta-data as the generator writes it for a small Compose project `shop`."""
    images = [
        engine.publish("shop/api", api, behaviours[0]),
        engine.publish("shop/web", web, behaviours[1]),
    ]
    services = ["api", "web"]
    args = [
        "--network=shop_default --network-alias=api -v shop_data:/data",
        "--network=shop_default --network-alias=web " + web_args,
    ]
    depends = ["", "api:service_healthy" + (":restart" if restart_web else "")]
    commands = ["serve --port 80", ""]
    if migrate:
        images.append(engine.publish("shop/migrate", "1", "completes"))
        services.append("migrate")
        args.append("--network=shop_default")
        depends = ["migrate:service_completed_successfully", depends[1], ""]
        commands.append("migrate")
    return {
        "containers": images,
        "run_args": "--restart=no",
        "project": "shop",
        "services": services,
        "container_args": args,
        "depends_on": depends,
        "commands": commands,
        "networks": ["shop_default"],
        "volumes": ["shop_data"],
    }


def install(device: Device, name: str, meta: Dict[str, Any]) -> None:
    device.new_deployment(name, meta)
    device.run("Download", "ArtifactInstall", "ArtifactCommit", "Cleanup")


def test_names_labels_networks_volumes_and_order(tmp_path: Path) -> None:
    device = Device(tmp_path)
    engine = device.engine
    install(device, "shop-1", app(engine))
    api, web = engine.by_name("shop-api-1"), engine.by_name("shop-web-1")
    assert api.running and web.running
    assert api.labels[f"{COMPOSE}.project"] == "shop"
    assert web.labels[f"{COMPOSE}.service"] == "web"
    assert api.command == ("serve", "--port", "80") and web.command == ()
    assert api.networks == ("shop_default",)
    assert engine.networks["shop_default"][f"{COMPOSE}.network"] == "default"
    assert engine.volumes["shop_data"][f"{COMPOSE}.volume"] == "data"
    mutations = [call[:2] for call in engine.mutations()]
    # the network before the services, api started before web
    assert mutations.index(("create_network", "shop_default")) < mutations.index(
        ("create", "shop-api-1")
    )
    starts = [call[1] for call in engine.calls if call[0] == "start"]
    assert starts == [api.id, web.id]


def test_a_network_is_created_with_its_options(tmp_path: Path) -> None:
    device = Device(tmp_path)
    engine = device.engine
    meta = app(engine)
    meta["network_options"] = ["--internal --subnet=172.30.0.0/24"]
    install(device, "shop-1", meta)
    assert engine.network_options["shop_default"] == ("--internal", "--subnet=172.30.0.0/24")


def test_only_the_changed_service_is_replaced(tmp_path: Path) -> None:
    device = Device(tmp_path)
    engine = device.engine
    install(device, "shop-1", app(engine))
    web_before = engine.by_name("shop-web-1").id
    install(device, "shop-2", app(engine, api="2"))
    assert engine.by_name("shop-web-1").id == web_before  # untouched
    assert engine.by_name("shop-web-1").started == 1  # not even restarted
    assert engine.by_name("shop-api-1").image == engine.publish("shop/api", "2")
    assert list(engine.volumes) == ["shop_data"]


def test_a_restart_dependency_restarts_the_unchanged_dependent(tmp_path: Path) -> None:
    device = Device(tmp_path)
    engine = device.engine
    install(device, "shop-1", app(engine, restart_web=True))
    web = engine.by_name("shop-web-1")
    install(device, "shop-2", app(engine, api="2", restart_web=True))
    assert engine.by_name("shop-web-1").id == web.id and web.started == 2


def test_a_broken_service_rolls_back_and_the_volume_stays(tmp_path: Path) -> None:
    device = Device(tmp_path)
    engine = device.engine
    install(device, "shop-1", app(engine))
    before = engine.snapshot()
    engine.networks.clear()  # as if shop-1 had run without a network of ours
    engine.by_name("shop-api-1").networks = ()
    engine.by_name("shop-web-1").networks = ()
    device.new_deployment("shop-2", app(engine, web="2", behaviours=("ok", "exits")))
    device.run("Download")
    with pytest.raises(HealthCheckError):
        device.run("ArtifactInstall")
    device.run("ArtifactRollback", "ArtifactFailure", "Cleanup")
    assert engine.snapshot() == before
    assert engine.networks == {}, "the network this deployment created is gone"
    assert list(engine.volumes) == ["shop_data"], "named volumes are never removed"


def test_a_one_shot_service_completes_before_its_dependents(tmp_path: Path) -> None:
    device = Device(tmp_path)
    engine = device.engine
    install(device, "shop-1", app(engine, migrate=True))
    migrate = engine.by_name("shop-migrate-1")
    assert not migrate.running and migrate.exit_code == 0
    starts = [call[1] for call in engine.calls if call[0] == "start"]
    assert starts[0] == migrate.id and len(starts) == 3
    assert engine.by_name("shop-api-1").running and engine.by_name("shop-web-1").running


def test_a_network_the_next_release_drops_is_removed_at_its_cleanup(tmp_path: Path) -> None:
    device = Device(tmp_path)
    engine = device.engine
    install(device, "shop-1", app(engine))
    single = {"containers": [engine.publish("plain", "1")], "run_args": ""}
    install(device, "plain-1", single)
    assert engine.networks == {}
    assert list(engine.volumes) == ["shop_data"]


def _install_calls(root: Path) -> int:
    device = Device(root)
    install(device, "shop-1", app(device.engine))
    device.new_deployment("shop-2", app(device.engine, api="2", web="2"))
    device.run("Download")
    before = len(device.engine.calls)
    device.run("ArtifactInstall")
    return len(device.engine.calls) - before


def test_rollback_after_a_crash_at_every_engine_call(tmp_path: Path) -> None:
    total = _install_calls(tmp_path / "count")
    assert total > 15
    for crash_at in range(1, total + 1):
        device = Device(tmp_path / f"crash-{crash_at}")
        engine = device.engine
        install(device, "shop-1", app(engine))
        before = (engine.snapshot(), dict(engine.networks), dict(engine.volumes))
        device.new_deployment("shop-2", app(engine, api="2", web="2"))
        device.run("Download")
        engine.crash_at = len(engine.calls) + crash_at
        with pytest.raises(SimulatedCrash):
            device.run("ArtifactInstall")
        device.run("ArtifactRollback", "ArtifactFailure", "Cleanup")
        after = (engine.snapshot(), dict(engine.networks), dict(engine.volumes))
        assert after == before, f"crash at install call {crash_at}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"services": ["api", "api"]}, "distinct service names"),
        ({"project": "Shop"}, "Compose project name"),
        ({"project": None}, "'project' and 'services' go together"),
        ({"depends_on": ["web", "api"]}, "has a cycle"),
        ({"depends_on": ["", "db:service_healthy"]}, "unknown service 'db'"),
        ({"depends_on": ["", "api:healthy"]}, "is not SERVICE"),
        ({"networks": ["bad name"]}, "'networks' must be a list of network names"),
        ({"volumes": ["a", "a"]}, "each once"),
    ],
)
def test_bad_application_meta_data(change: Dict[str, Any], message: str) -> None:
    meta = app(FakeEngine())
    meta.update(change)
    meta = {k: v for k, v in meta.items() if v is not None}
    with pytest.raises(MetadataError, match=message):
        parse_metadata(meta)


def test_start_waves() -> None:
    graph: Dict[str, List[str]] = {
        "web": ["api"],
        "api": ["db", "migrate"],
        "db": [],
        "migrate": ["db"],
    }
    assert start_order(graph) == [["db"], ["migrate"], ["api"], ["web"]]
