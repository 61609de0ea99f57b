"""The policy reads run arguments the way the real docker does.

For each spelling, `docker create` (nothing is started) shows what the engine
made of the arguments in `HostConfig`; a small oracle over that resolved view
says whether docker would grant the container host access. The policy's
verdict, the oracle's and the expected one must agree: a spelling the policy
misreads (too lax or too strict) fails here.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from mender_docker.module.engine import Engine
from mender_docker.module.policy import find_violations, policy_from_settings
from mender_docker.runargs import GRAMMARS
from tests.hostile.planning import planned
from tests.realstack import ImageFactory, run, unique

POLICY = policy_from_settings({"deny_run_args": "dangerous"})
SENSITIVE_SOURCES = {"/", "/etc", "/run/docker.sock", "/var/run/docker.sock"}
DANGEROUS_CAPS = {"ALL", "SYS_ADMIN"}
NAMESPACE_MODES = ("NetworkMode", "PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode")

# (run_args, docker grants host access). Not `--cgroupns=host`: on a cgroup v1 host
# (like this one) it is dockerd's default, so docker's view cannot tell it apart.
CASES = [
    ("--privileged", True),
    ("--privileged=true", True),
    ("-itv/:/host", True),
    ("-tv=/:/host", True),
    ("-i -v /:/host:ro", True),
    ("--volume=//:/host", True),
    ("--volume /etc/:/host-etc", True),
    ("--mount type=bind,src=/,dst=/host,readonly", True),
    ('--mount=type=bind,"source=/var/run/docker.sock",target=/s', True),
    ("--mount type=volume,dst=/h,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/", True),
    ("--net host", True),
    ("--network=host", True),
    ("--pid host", True),
    ("--ipc=host", True),
    ("--uts host", True),
    ("--userns=host", True),
    ("--cap-add cap_sys_admin", True),
    ("--cap-add=ALL", True),
    ("--device /dev/null", True),
    ("--security-opt seccomp:unconfined", True),
    ("--security-opt label=disable", True),
    ("--security-opt apparmor=unconfined", True),
    # issue 10: what docker itself makes of spellings the old scanner misread
    ("--network name=host", True),
    ("--net Name=HOST", True),
    ("--mount 'type=bind,\"src=/\",dst=/h\nx'", True),  # Go's CSV reads the first line
    (
        "--mount type=volume,dst=/x,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=etc",
        True,
    ),
    ("-v /proc/self/root/run/docker.sock:/var/run/docker.sock:ro", True),
    ("-v /proc/1/root:/h:ro", True),
    ("-l -d -l --volume=/:/host", False),  # two labels: the module runs them as labels
    ("--label --detach --label --pid=host", False),
    ("-e --privileged", False),
    ("--privileged=false", False),
    ("--label x=--net=host -l y=-v/:/h", False),
    ("-v /anonymous", False),
    ("-v /etc/localtime:/etc/localtime:ro", False),
    ("--network bridge", False),
    ("--cap-add NET_BIND_SERVICE --cap-drop ALL", False),
    ("--security-opt no-new-privileges", False),
    ("--tmpfs /run -w /app -u 1000", False),
]


@pytest.fixture(scope="module")
def image(image_factory: ImageFactory) -> str:
    return image_factory.build(unique("hostile-policy"), cmd=["sleep", "3600"])


@pytest.fixture(scope="module")
def baseline(image: str) -> List[str]:
    """What a container gets with no arguments at all (daemon defaults)."""
    names: List[str] = []
    try:
        return host_access(docker_create(image, [], names))
    finally:
        for name in names:
            run(["docker", "rm", "-f", "-v", name], check=False)


@pytest.fixture
def created() -> Iterator[List[str]]:
    names: List[str] = []
    yield names
    for name in names:
        run(["docker", "rm", "-f", "-v", name], check=False)


def docker_create(image: str, args: List[str], created: List[str]) -> Dict[str, Any]:
    name = unique("hostile-policy")
    created.append(name)
    run(["docker", "create", "--name", name, *args, image])
    info: Dict[str, Any] = json.loads(run(["docker", "inspect", name]).stdout)[0]
    return info


def host_access(info: Dict[str, Any]) -> List[str]:
    """What in docker's resolved configuration reaches the host (the oracle)."""
    host = info["HostConfig"]
    found: List[str] = []
    if host.get("Privileged"):
        found.append("privileged")
    found += [key for key in NAMESPACE_MODES if host.get(key) == "host"]
    for cap in host.get("CapAdd") or []:
        if cap.upper().replace("CAP_", "", 1) in DANGEROUS_CAPS:
            found.append(f"cap {cap}")
    if host.get("Devices"):
        found.append("devices")
    for opt in host.get("SecurityOpt") or []:
        if "unconfined" in opt or opt.replace(":", "=") == "label=disable":
            found.append(opt)
    sources = [bind.split(":")[0] for bind in host.get("Binds") or []]
    for mount in host.get("Mounts") or []:
        if mount.get("Type") == "bind":
            sources.append(mount.get("Source", ""))
        options = ((mount.get("VolumeOptions") or {}).get("DriverConfig") or {}).get("Options")
        if options and "device" in options:
            sources.append(options["device"])
    for source in sources:
        normal = "/" + posixpath.normpath(source).lstrip("/")
        try:
            resolved = os.path.realpath(normal)  # what the kernel binds
        except OSError:  # /proc/1/root: unreadable in a sandbox, the host's / for dockerd
            resolved = "/"
        if normal in SENSITIVE_SOURCES or resolved in SENSITIVE_SOURCES:
            found.append(f"bind {source}")
    return found


def violations_expected_only_from_text(run_args: str) -> bool:
    """The value-swallowing cases: docker reads the raw text as labels too."""
    return run_args.startswith(("-l -d", "--label --detach"))


@pytest.mark.parametrize(("run_args", "dangerous"), CASES, ids=[c[0] for c in CASES])
def test_policy_agrees_with_docker(
    image: str, baseline: List[str], created: List[str], run_args: str, dangerous: bool
) -> None:
    args = shlex.split(run_args)
    (item,) = planned(args)
    # docker's view of the arguments as written, and of the argv the module runs
    info = docker_create(image, args, created)
    docker_view = [item for item in host_access(info) if item not in baseline]
    module_info = docker_create(image, list(item.args), created)
    assert [i for i in host_access(module_info) if i not in baseline] == (
        [] if violations_expected_only_from_text(run_args) else docker_view
    )
    violations = find_violations([item], POLICY)
    assert bool(docker_view) == dangerous, f"docker resolved {run_args!r} to {docker_view}"
    assert bool(violations) == dangerous, [str(v) for v in violations]


def test_docker_resolves_relative_bind_sources_on_the_host(
    image: str, created: List[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Why `bind-relative` is in the preset: this CLI turns `./x` into a host path
    # under the caller's working directory (the module's is the Mender file tree).
    monkeypatch.chdir(tmp_path)
    args = ["-v", "./..:/host"]
    info = docker_create(image, args, created)
    binds = info["HostConfig"].get("Binds") or []
    assert binds and binds[0].split(":")[0] == str(tmp_path.parent)
    violations = find_violations(planned(args), POLICY)
    assert [v.rule for v in violations] == ["bind-relative"]


@pytest.mark.real
@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_option_table_matches_the_installed_cli(engine: str) -> None:
    # The parser must know which options take a value exactly as the real CLI does,
    # or `--flag VALUE` and `-xVALUE` would be misread (hidden options are not listed).
    help_text = run([engine, "run", "--help"]).stdout
    flags = re.findall(
        r"^[ \t]+(?:-(\w), )?--([a-z0-9-]+)(?: (\S+))?(?:[ \t]{2,}\S|[ \t]*$)",
        help_text,
        re.MULTILINE,
    )
    assert len(flags) > 80, help_text
    grammar = GRAMMARS[engine]
    for short, name, kind in flags:
        option = grammar.lookup(name)
        assert option is not None, f"--{name} is missing from runopts.py"
        assert (option.kind == "value") == bool(kind), f"--{name}: {kind or 'a bool'}"
        if short:
            assert grammar.short.get(short) == option, f"-{short} is --{name}"
    assert {short for short, _, _ in flags if short} == set(grammar.short)


def test_the_module_labels_win_over_the_artifacts(image: str, created: List[str]) -> None:
    # Labels in the module's namespace are refused in the meta-data; should one get
    # through anyway, the module's own come last on the command line and win.
    name = unique("hostile-labels")
    created.append(name)
    Engine().create(
        name, image, ["--label=io.mender.docker.managed=0"], {"io.mender.docker.managed": "1"}
    )
    labels = json.loads(
        run(["docker", "inspect", "--format", "{{json .Config.Labels}}", name]).stdout
    )
    assert labels["io.mender.docker.managed"] == "1"
