"""The engine adapter without a daemon: parsers, error classes, the argument lists."""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import pytest

from mender_docker.module.engine import (
    CommandFeed,
    ContainerEngine,
    ContainerInfo,
    Engine,
    Feed,
    _network_attachments,
    classify,
    parse_container,
    parse_exit_event,
    parse_image,
)
from mender_docker.module.errors import (
    DaemonDownError,
    EngineError,
    EngineMissingError,
    HealthCheckError,
    NoSuchObjectError,
)
from mender_docker.module.health import fail, wait_healthy
from tests.fakes.device import Device
from tests.fakes.engine import (
    MUTATING,
    READ_ONLY,
    FakeEngine,
    FakeFeed,
    as_container_engine,
    as_feed,
)

DOCKER_INSPECT = {  # trimmed `docker inspect` of a container, Engine 20.10
    "Id": "4f1c" + "0" * 60,
    "Name": "/web",
    "Image": "sha256:" + "a" * 64,
    "State": {
        "Status": "running",
        "Running": True,
        "ExitCode": 0,
        "StartedAt": "2026-11-26T00:00:00.1Z",
        "Health": {"Status": "starting", "FailingStreak": 0},
    },
    "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}},
    "Config": {"Image": "reg/web@sha256:" + "b" * 64, "Labels": {"a": "1"}},
}
PODMAN_INSPECT = {  # podman 4 names a few things differently
    "Id": "9" * 64,
    "Name": "db",
    "Image": "c" * 64,
    "ImageName": "reg/db@sha256:" + "d" * 64,
    "State": {"Status": "exited", "Running": False, "ExitCode": 137, "Healthcheck": None},
    "HostConfig": {"RestartPolicy": {"Name": "", "MaximumRetryCount": 0}},
    "Config": {"Labels": None},
}
# A container its restart policy restarted after `exit 3`, as both engines show it
# (dockerd 20.10, podman 4.3): running, RestartCount 1, and ExitCode 0 again.
DOCKER_RESTARTED = {
    **DOCKER_INSPECT,
    "Created": "2026-12-01T15:56:26.35381132Z",
    "RestartCount": 1,
    "State": {"Status": "running", "Running": True, "ExitCode": 0},
}
PODMAN_RESTARTED = {
    **PODMAN_INSPECT,
    "Created": "2026-12-01T15:56:14.544181009Z",
    "RestartCount": 1,
    "State": {"Status": "running", "Running": True, "ExitCode": 0, "Health": {"Status": ""}},
}
DOCKER_DIE = json.dumps(
    {
        "status": "die",
        "id": "3a52",
        "Type": "container",
        "Action": "die",
        "Actor": {"ID": "3a52", "Attributes": {"exitCode": "3", "name": "x"}},
        "time": 1796140588,
    }
)
PODMAN_DIED = json.dumps(
    {"ContainerExitCode": 3, "ID": "fa5e", "Name": "x", "Status": "died", "Type": "container"}
)


def test_parse_docker_container() -> None:
    info = parse_container(DOCKER_INSPECT)
    assert (info.name, info.running, info.health) == ("web", True, "starting")
    assert info.restart_policy == "on-failure:3"
    assert info.image == "reg/web@sha256:" + "b" * 64
    assert info.labels == {"a": "1"} and info.started_at.startswith("2026")


def test_parse_podman_container() -> None:
    info = parse_container(PODMAN_INSPECT)
    assert (info.name, info.running, info.exit_code) == ("db", False, 137)
    assert (info.restart_policy, info.health, info.labels) == ("no", None, {})
    assert info.image == "reg/db@sha256:" + "d" * 64
    assert info.id == "9" * 64  # container IDs stay bare hex on both engines
    assert info.image_id == "sha256:" + "c" * 64  # image IDs as docker writes them


@pytest.mark.parametrize("data", [DOCKER_RESTARTED, PODMAN_RESTARTED], ids=["docker", "podman"])
def test_parse_a_container_restarted_by_its_policy(data: Dict[str, Any]) -> None:
    info = parse_container(data)
    assert (info.running, info.status, info.exit_code, info.restart_count) == (
        True,
        "running",
        0,
        1,
    )
    assert info.health is None and info.created == data["Created"]


def test_parse_exit_events() -> None:
    assert parse_exit_event(DOCKER_DIE) == 3
    assert parse_exit_event(PODMAN_DIED) == 3
    assert parse_exit_event(json.dumps({"Status": "died", "Name": "x"})) == 0  # podman omits 0
    assert parse_exit_event(json.dumps({"Status": "start"})) is None
    assert parse_exit_event("not json") is None
    assert parse_exit_event("[]") is None


def test_parse_health_interval() -> None:
    """Config.Healthcheck.Interval is in nanoseconds; unset means the engines' 30 s."""
    checked = {**DOCKER_INSPECT, "Config": {"Healthcheck": {"Interval": 1_500_000_000}}}
    assert parse_container(checked).health_interval == 1.5
    assert parse_container(DOCKER_INSPECT).health_interval == 30.0


def test_parse_image() -> None:
    image = parse_image({"Id": "sha256:1", "RepoDigests": ["r@sha256:2"], "Size": 5})
    assert (image.id, image.repo_digests, image.size) == ("sha256:1", ("r@sha256:2",), 5)
    podman = parse_image({"Id": "e" * 64, "RepoDigests": None})  # podman: no sha256: prefix
    assert (podman.id, podman.repo_digests) == ("sha256:" + "e" * 64, ())


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        ("Error: No such container: abc", NoSuchObjectError),
        ("Error response from daemon: No such image: x@sha256:1", NoSuchObjectError),
        ('Error: no container with name or ID "x" found: no such container', NoSuchObjectError),
        (
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
            "Is the docker daemon running?",
            DaemonDownError,
        ),
        ("Error: unable to connect to Podman socket", DaemonDownError),
        ("Error response from daemon: Conflict. The container name is in use", EngineError),
    ],
)
def test_classify(stderr: str, kind: type) -> None:
    error = classify(["docker", "x"], 1, stderr + "\nSee 'docker --help'.")
    assert type(error) is kind
    assert "See '" not in str(error)


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    """A stand-in CLI that prints its argv as JSON: proves what the adapter runs."""
    script = tmp_path / "podman"
    script.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    script.chmod(0o755)
    return script


def test_argument_lists_reach_the_binary_verbatim(recorder: Path) -> None:
    engine = Engine(binary=str(recorder))
    out = engine.run(["run", "-e", "A=$(rm -rf /); `x`", "--label", "k=v w"])
    assert json.loads(out) == ["run", "-e", "A=$(rm -rf /); `x`", "--label", "k=v w"]
    line = engine.create("n", "img@sha256:1", ["--tty=true", "--publish=80:80"], {"l": "1"})
    # our labels come after the artifact's options: they win over any label those set
    assert json.loads(line) == [
        "create",
        "--name=n",
        "--tty=true",
        "--publish=80:80",
        "--label=l=1",
        "img@sha256:1",
    ]


def test_each_network_gets_its_own_aliases() -> None:
    args = ["--tty=true", "--network=name=p_back,alias=web,alias=front",
            "--network=name=p_default,alias=web"]  # fmt: skip
    assert _network_attachments(args, podman=True) == (
        ["--tty=true", "--network=p_back:alias=web,alias=front", "--network=p_default:alias=web"],
        [],
    )
    assert _network_attachments(args, podman=False) == (
        ["--tty=true", "--network=p_back", "--network-alias=web", "--network-alias=front"],
        [("p_default", ["web"])],
    )
    plain = ["--network=a", "--network=b", "--network-alias=x"]  # every network gets x
    assert _network_attachments(plain, podman=False) == (
        ["--network=a", "--network-alias=x"], [("b", ["x"])]
    )
    assert _network_attachments(plain, podman=True) == (plain, [])


def test_missing_binary_and_timeouts(tmp_path: Path) -> None:
    with pytest.raises(EngineMissingError, match="not found"):
        Engine(binary=str(tmp_path / "nope")).run(["ps"])
    slow = tmp_path / "slow"
    slow.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(5)\n")
    slow.chmod(0o755)
    with pytest.raises(EngineError, match="timed out"):
        Engine(binary=str(slow), timeout=0.3).run(["ps"])


def test_version_of_a_local_podman_without_a_service(tmp_path: Path) -> None:
    podman = tmp_path / "podman"
    podman.write_text(
        f"#!{sys.executable}\nimport json\n"
        'print(json.dumps({"Client": {"Version": "4.3.1"}, "Server": None}))\n'
    )
    podman.chmod(0o755)
    assert Engine(binary=str(podman)).version() == "4.3.1"


def test_healthcheck_run_on_podman(tmp_path: Path) -> None:
    """`podman healthcheck run`: exit 0 healthy, exit 1 unhealthy (a probe result, not
    an error), anything else is the engine's own complaint."""
    podman = tmp_path / "podman"
    podman.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "cid = sys.argv[3]\n"
        "if cid == 'good': sys.exit(0)\n"
        "if cid == 'sick': print('unhealthy'); sys.exit(1)\n"
        "print('Error: container gone is not running', file=sys.stderr); sys.exit(125)\n"
    )
    podman.chmod(0o755)
    engine = Engine(binary=str(podman))
    assert not engine.runs_healthchecks()
    assert Engine(binary="/usr/bin/docker").runs_healthchecks()
    assert engine.run_healthcheck("good") == "healthy"
    assert engine.run_healthcheck("sick") == "unhealthy"
    assert "is not running" in engine.run_healthcheck("gone")


@pytest.mark.parametrize(("behaviour", "passes"), [("healthy", True), ("unhealthy", False)])
def test_gate_runs_the_probes_where_the_engine_does_not(
    tmp_path: Path, behaviour: str, passes: bool
) -> None:
    """Podman 4 without systemd leaves health `starting`: the gate probes at the check's
    interval itself, so a healthy container passes and an unhealthy one fails the gate."""
    device = Device(tmp_path)
    engine = device.engine
    engine.podman4 = True
    container_id = engine.add_container("web", engine.publish("web", "1", behaviour=behaviour))
    engine.start(container_id)
    assert engine.containers[container_id].health == "starting"
    ctx = device.context()
    if passes:
        wait_healthy(ctx, [container_id], timeout=10, window=1)
    else:
        with pytest.raises(HealthCheckError, match="health unhealthy"):
            wait_healthy(ctx, [container_id], timeout=10, window=1)
    probes = [c for c in engine.calls if c[0] == "run_healthcheck"]
    assert probes and len(probes) <= 10  # one per second of interval, not one per poll


# -- one door for every engine command -----------------------------------------------


def test_run_and_the_feeds_start_their_commands_in_one_place(
    recorder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: List[List[str]] = []
    original = Engine._spawn

    def spy(self: Engine, args: Sequence[str], *streams: Any) -> Any:
        spawned.append(list(args))
        return original(self, args, *streams)

    monkeypatch.setattr(Engine, "_spawn", spy)
    engine = Engine(binary=str(recorder))
    assert json.loads(engine.run(["ps", "-q"])) == ["ps", "-q"]
    feed = engine.start_load()
    feed.write(b"ignored")
    assert json.loads(feed.finish()) == ["load"]
    importing = engine.start_import("t:1")
    importing.abort()
    assert spawned == [["ps", "-q"], ["load"], ["import", "-", "t:1"]]


def test_a_missing_binary_is_reported_alike_for_commands_and_feeds(tmp_path: Path) -> None:
    for binary in ("docker-" + "0" * 8, str(tmp_path / "docker")):
        engine = Engine(binary=binary)
        with pytest.raises(EngineMissingError) as info:
            engine.run(["ps"])
        assert info.value.command == [binary, "ps"]
        with pytest.raises(EngineMissingError) as info:
            engine.start_load()
        assert info.value.command == [binary, "load"]


def test_a_feed_streams_its_input_and_reports_a_failure(tmp_path: Path) -> None:
    cli = tmp_path / "docker"
    cli.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "data = sys.stdin.buffer.read()\n"
        "if data == b'bad': print('Error: unexpected EOF', file=sys.stderr); sys.exit(1)\n"
        "print(len(data))\n"
    )
    cli.chmod(0o755)
    engine = Engine(binary=str(cli))
    feed = engine.start_load()
    assert isinstance(feed, CommandFeed)
    for _ in range(64):
        feed.write(b"x" * 65536)
    assert feed.finish().strip() == str(64 * 65536)
    feed = engine.start_load()
    feed.write(b"bad")
    with pytest.raises(EngineError, match="unexpected EOF"):
        feed.finish()


@pytest.mark.parametrize("podman", [False, True], ids=["docker", "podman"])
def test_last_exit_code_reads_the_die_events(tmp_path: Path, podman: bool) -> None:
    """dockerd's `events` waits for new events unless told --until; podman's --until
    in the past races its reader, --stream=false reads what was logged and stops."""
    cli = tmp_path / ("podman" if podman else "docker")
    argv_file = tmp_path / "argv"
    event = PODMAN_DIED if podman else DOCKER_DIE
    later = event.replace("3", "7") if podman else event.replace('"3"', '"7"')
    cli.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(argv_file)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"print({event!r}); print({later!r})\n"
    )
    cli.chmod(0o755)
    engine = Engine(binary=str(cli))
    assert engine.last_exit_code("abc", "2026-12-01T15:56:14.5Z") == 7  # the last one
    argv = json.loads(argv_file.read_text())
    assert argv[:5] == ["events", "--filter", "container=abc", "--filter"]  + [
        "event=died" if podman else "event=die"
    ]
    assert argv[argv.index("--since") + 1] == "2026-12-01T15:56:14.5Z"
    if podman:
        assert "--stream=false" in argv and "--until" not in argv
    else:
        assert float(argv[argv.index("--until") + 1]) > 1.7e9
    cli.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(125)\n")
    assert engine.last_exit_code("abc") is None  # no events: not known


# -- the fake engine is a ContainerEngine --------------------------------------------


def _methods(cls: type) -> Dict[str, inspect.Signature]:
    return {
        name: inspect.signature(value)
        for name, value in vars(cls).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }


def test_the_fake_engine_has_every_method_of_the_protocol_with_its_signature() -> None:
    engine: ContainerEngine = as_container_engine(FakeEngine())  # mypy checks this too
    feed: Feed = as_feed(FakeFeed(FakeEngine(), "load"))
    assert engine is not None and feed is not None
    for protocol, implementations in (
        (ContainerEngine, (FakeEngine, Engine)),
        (Feed, (FakeFeed, CommandFeed)),
    ):
        wanted = _methods(protocol)
        assert wanted
        for cls in implementations:
            have = {name: inspect.signature(getattr(cls, name)) for name in wanted}
            assert have == wanted, cls


def test_every_protocol_method_is_classified_mutating_or_read_only() -> None:
    methods = set(_methods(ContainerEngine))
    assert not MUTATING & READ_ONLY
    assert methods <= MUTATING | READ_ONLY
    assert READ_ONLY <= methods  # no stale names
    stale = MUTATING - methods
    assert stale == {"finish_load", "abort_load", "finish_import", "abort_import"}


def _docker_save(config_hex: str, tag: str) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, body in (
            ("manifest.json", json.dumps([{"Config": f"{config_hex}.json", "RepoTags": [tag]}])),
            (f"{config_hex}.json", "{}"),
        ):
            raw = body.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return data.getvalue()


def _fake_world() -> Tuple[FakeEngine, str, str]:
    """A fake with an image, a network, a container, and an unused image `spare`."""
    engine = FakeEngine()
    ref = engine.publish("web", "1")
    engine.networks["net"] = {}
    container_id = engine.add_container("web", ref)
    engine.preload(engine.publish("spare", "1"))
    return engine, ref, container_id


MUTATING_CALLS: List[Tuple[str, Callable[[FakeEngine, str, str], object]]] = [
    ("pull", lambda e, ref, c: e.pull(ref)),
    ("start_load", lambda e, ref, c: e.start_load()),
    ("start_import", lambda e, ref, c: e.start_import("t:1")),
    ("finish_load", lambda e, ref, c: _load(e)),
    ("abort_load", lambda e, ref, c: e.start_load().abort()),
    ("finish_import", lambda e, ref, c: _import(e).finish()),
    ("abort_import", lambda e, ref, c: _import(e).abort()),
    ("create", lambda e, ref, c: e.create("new", ref, ["--network=net"], {"a": "1"})),
    ("create_network", lambda e, ref, c: e.create_network("n2", {})),
    ("remove_network", lambda e, ref, c: e.remove_network("net")),
    ("create_volume", lambda e, ref, c: e.create_volume("v", {})),
    ("remove_volume", lambda e, ref, c: (e.volumes.update(v={}), e.remove_volume("v"))),
    ("stop", lambda e, ref, c: e.stop(c, 1)),
    ("start", lambda e, ref, c: e.start(c)),
    ("rename", lambda e, ref, c: e.rename(c, "web-old")),
    ("set_restart_policy", lambda e, ref, c: e.set_restart_policy(c, "no")),
    ("remove_container", lambda e, ref, c: e.remove_container(c)),
    ("remove_image", lambda e, ref, c: e.remove_image(e.publish("spare", "1"))),
]


def _load(engine: FakeEngine) -> str:
    feed = engine.start_load()
    feed.write(_docker_save("ab" * 32, "loaded:1"))
    return feed.finish()


def _import(engine: FakeEngine) -> Feed:
    feed = engine.start_import("t:1")
    feed.write(b"layer")
    return feed


@pytest.mark.parametrize(("name", "call"), MUTATING_CALLS, ids=[n for n, _ in MUTATING_CALLS])
def test_every_mutating_call_of_the_fake_is_recorded(
    name: str, call: Callable[[FakeEngine, str, str], object]
) -> None:
    """So that a test's "nothing was changed" (`mutations() == []`) can fail."""
    engine, ref, container_id = _fake_world()
    engine.calls.clear()
    call(engine, ref, container_id)
    assert name in {c[0] for c in engine.mutations()}, engine.calls


def test_the_recording_test_covers_every_mutating_call() -> None:
    assert {name for name, _ in MUTATING_CALLS} == MUTATING


def test_read_only_calls_of_the_fake_record_no_mutation() -> None:
    engine, ref, container_id = _fake_world()
    engine.calls.clear()
    engine.version(), engine.data_root(), engine.list_containers(all=True)
    engine.inspect_containers([container_id]), engine.inspect_image(ref)
    engine.imports_base_layers(), engine.network_exists("net"), engine.list_networks("a=1")
    engine.volume_exists("v"), engine.logs_tail(container_id, 5), engine.run_healthcheck("web")
    engine.last_exit_code(container_id), engine.volume_mountpoint("v")
    engine.lasting_restart_policy(), engine.runs_healthchecks()
    assert len(engine.calls) == 13 and engine.mutations() == []


def test_the_fake_load_registers_what_the_tar_names_and_an_abort_nothing() -> None:
    engine = FakeEngine()
    assert _load(engine) == "Loaded image: loaded:1\n"
    image = engine.inspect_image("loaded:1")
    assert image is not None and image.id == "sha256:" + "ab" * 32
    feed = engine.start_load()
    feed.write(_docker_save("cd" * 32, "other:1"))
    feed.abort()
    assert engine.inspect_image("other:1") is None and len(engine.images) == 1
    feed = engine.start_load()
    feed.write(b"not a tar")
    with pytest.raises(EngineError, match="Error processing tar file"):
        feed.finish()
    assert [c[0] for c in engine.calls if c[0] in MUTATING] == [
        "start_load",
        "finish_load",
        "start_load",
        "abort_load",
        "start_load",
        "finish_load",
    ]


# -- the health gate names the exit code whichever order things happened in ----------


def _gate_error(device: Device, container_id: str, **ctx_changes: Any) -> str:
    ctx = dataclasses.replace(device.context(), **ctx_changes)
    with pytest.raises(HealthCheckError) as info:
        wait_healthy(ctx, [container_id], timeout=10, window=3)
    return str(info.value)


def _crashing(tmp_path: Path) -> Tuple[Device, str]:
    device = Device(tmp_path)
    engine = device.engine
    container_id = engine.add_container("web", engine.publish("web", "1"))
    engine.start(container_id)
    return device, container_id


def test_gate_sees_the_container_exited_before_its_restart(tmp_path: Path) -> None:
    device, container_id = _crashing(tmp_path)
    device.engine.exit(container_id, 3)
    message = _gate_error(device, container_id)
    assert message.endswith(
        "exited during the health gate (exited, restarted 0 times, last exit code 3)"
    )
    assert not [c for c in device.engine.calls if c[0] == "last_exit_code"]  # inspect says


def test_gate_first_looks_after_the_restart(tmp_path: Path) -> None:
    """The flaky order of the fault matrix: the engine has restarted the container
    before the gate's first look, inspect says running and exit code 0."""
    device, container_id = _crashing(tmp_path)
    device.engine.restart(container_id, 3)
    message = _gate_error(device, container_id)
    assert message.endswith(
        "exited during the health gate (running, restarted 1 time, last exit code 3)"
    )
    assert ("last_exit_code", container_id, "2026-01-01T00:00:00Z") in device.engine.calls


@pytest.mark.parametrize("order", ["exit", "exit-restart", "exit-restart-twice"])
def test_gate_names_the_exit_code_in_every_order(tmp_path: Path, order: str) -> None:
    """The container crashes while the gate watches (after its first look): whether
    the gate next sees it down or already restarted (once, or twice with another
    code first), it names the restart count and the last exit code."""
    device, container_id = _crashing(tmp_path)
    engine = device.engine
    sleep = device.clock.sleep

    def crash_then_sleep(seconds: float) -> None:
        if not engine.containers[container_id].exits:
            if order == "exit":
                engine.exit(container_id, 3)
            else:
                if order == "exit-restart-twice":
                    engine.restart(container_id, 9)
                engine.restart(container_id, 3)
        sleep(seconds)

    message = _gate_error(device, container_id, sleep=crash_then_sleep)
    expected = {
        "exit": "(exited, restarted 0 times, last exit code 3)",
        "exit-restart": "(running, restarted 1 time, last exit code 3)",
        "exit-restart-twice": "(running, restarted 2 times, last exit code 3)",
    }[order]
    assert message.endswith(f"exited during the health gate {expected}")


def test_gate_says_when_the_last_exit_code_is_not_known(tmp_path: Path) -> None:
    device, container_id = _crashing(tmp_path)
    device.engine.restart(container_id, 3)
    device.engine.events_lost = True
    assert _gate_error(device, container_id).endswith(
        "(running, restarted 1 time, last exit code unknown)"
    )


@pytest.mark.parametrize(
    ("state", "restarted", "expected"),
    [
        # docker between the exit and the restart: RestartCount already counts it
        (dict(status="restarting", running=False, exit_code=3, restart_count=1), False,
         "(restarting, restarted 1 time, last exit code 3)"),
        (dict(status="exited", running=False, exit_code=3, restart_count=3), False,
         "(exited, restarted 3 times, last exit code 3)"),  # on-failure:3 gave up
        (dict(status="stopped", running=False, exit_code=3), False,  # podman's word
         "(stopped, restarted 0 times, last exit code 3)"),
        (dict(status="running", running=True, restart_count=2), False,
         "(running, restarted 2 times, last exit code 7)"),
        # seen started again without a count (dockerd restarted): still the code
        (dict(status="running", running=True), True,
         "(running, restart count 0, last exit code 7)"),
        (dict(status="running", running=True, health="unhealthy"), False,
         "(running, health unhealthy)"),
        (dict(status="created", running=False), False, "(created, exit code 0)"),
    ],
)  # fmt: skip
def test_fail_names_restarts_and_exit_code(
    tmp_path: Path, state: Dict[str, Any], restarted: bool, expected: str
) -> None:
    device, container_id = _crashing(tmp_path)
    device.engine.containers[container_id].exits.append(7)
    [info] = device.engine.inspect_containers([container_id])
    info = dataclasses.replace(info, **state)
    assert isinstance(info, ContainerInfo)
    with pytest.raises(HealthCheckError) as caught:
        fail(device.context(), info, "failed", restarted)
    assert str(caught.value).endswith(f"failed {expected}")
