"""The device owner's policy (module/policy.py): every spelling docker accepts is caught."""

from __future__ import annotations

import json
import shlex
from typing import List, Optional, Sequence, Tuple

import pytest

from mender_docker.module.errors import ConfigError, DeploymentError
from mender_docker.module.policy import (
    DANGEROUS,
    Policy,
    PolicyError,
    check,
    find_violations,
    parse_rule,
    policy_from_settings,
    registry_host,
    scan_args,
)
from mender_docker.spec import PlannedContainer, parse_metadata_json

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"registry.example.com/app@{DIGEST}"
DANGEROUS_POLICY = policy_from_settings({"deny_run_args": "dangerous"})


def planned(args: Sequence[str], image: str = IMAGE, name: str = "web") -> List[PlannedContainer]:
    return [PlannedContainer(image=image, name=name, args=tuple(args))]


def refusal(args: Sequence[str], policy: Policy = DANGEROUS_POLICY) -> Optional[PolicyError]:
    try:
        check(planned(args), policy)
    except PolicyError as exc:
        return exc
    return None


# (run_args as written in the meta-data, the rule that must refuse it)
DENIED: List[Tuple[str, str]] = [
    ("--privileged", "--privileged"),
    ("--privileged=true", "--privileged"),
    ("--privileged=1", "--privileged"),
    ("-d --privileged --rm", "--privileged"),
    ("--pid=host", "--pid=host"),
    ("--pid host", "--pid=host"),
    ("--pid=HOST", "--pid=host"),
    ("--network=host", "--network=host"),
    ("--network host", "--network=host"),
    ("--net=host", "--network=host"),
    ("--net host", "--network=host"),
    ("--ipc=host", "--ipc=host"),
    ("--ipc host", "--ipc=host"),
    ("--uts=host", "--uts=host"),
    ("--userns=host", "--userns=host"),
    ("--userns host", "--userns=host"),
    ("--cgroupns=host", "--cgroupns=host"),
    ("--cap-add=ALL", "--cap-add=ALL"),
    ("--cap-add all", "--cap-add=ALL"),
    ("--cap-add SYS_ADMIN", "--cap-add=SYS_ADMIN"),
    ("--cap-add=CAP_SYS_ADMIN", "--cap-add=SYS_ADMIN"),
    ("--cap-add=sys_admin", "--cap-add=SYS_ADMIN"),
    ("--cap-add=NET_BIND_SERVICE,SYS_ADMIN", "--cap-add=SYS_ADMIN"),
    ("--cap-add=SYS_MODULE", "--cap-add=SYS_MODULE"),
    ("--cap-add=cap_sys_ptrace", "--cap-add=SYS_PTRACE"),
    ("--device /dev/sda", "--device"),
    ("--device=/dev/mem:/dev/mem:rwm", "--device"),
    ("--device-cgroup-rule='c *:* rmw'", "--device-cgroup-rule"),
    ("--security-opt seccomp=unconfined", "--security-opt=unconfined"),
    ("--security-opt=seccomp:unconfined", "--security-opt=unconfined"),
    ("--security-opt apparmor=unconfined", "--security-opt=unconfined"),
    ("--security-opt=apparmor:UNCONFINED", "--security-opt=unconfined"),
    ("--security-opt label=disable", "--security-opt=unconfined"),
    ("--security-opt label:disable", "--security-opt=unconfined"),
    ("--security-opt systempaths=unconfined", "--security-opt=unconfined"),
    ("--security-opt unmask=ALL", "--security-opt=unconfined"),
    ("--pid=ns:/proc/1/ns/pid", "--pid=host"),
    ("--network ns:/proc/1/ns/net", "--network=host"),
    ("--use-api-socket", "--use-api-socket"),
    ("--volumes-from other", "--volumes-from"),
    ("--env-file /etc/shadow", "--env-file"),
    ("--label-file=/root/.ssh/id_rsa", "--label-file"),
    ("--cidfile /etc/cron.d/x", "--cidfile"),
    # bind mounts of the host root, every spelling
    ("-v /:/host", "bind=/"),
    ("-v /:/host:ro", "bind=/"),
    ("-v=/:/host", "bind=/"),
    ("-v/:/host", "bind=/"),
    ("-itv/:/host", "bind=/"),
    ("-itv /:/host", "bind=/"),
    ("-dv=/:/host", "bind=/"),
    ("--volume /:/host", "bind=/"),
    ("--volume=/:/host", "bind=/"),
    ("--volume=//:/host", "bind=/"),
    ("--volume=/etc/..:/host", "bind=/"),
    ("--volume=/./:/host:rw", "bind=/"),
    ("--mount type=bind,source=/,target=/host", "bind=/"),
    ("--mount=type=bind,src=/,dst=/host,readonly", "bind=/"),
    ("--mount Type=BIND,Source=/,Destination=/host", "bind=/"),
    ("--mount 'type=bind,\"source=/\",target=/host'", "bind=/"),
    ("--mount target=/host,source=/,type=bind", "bind=/"),
    (
        "--mount type=volume,dst=/h,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/",
        "bind=/",
    ),
    # sensitive host paths
    ("-v /etc:/host-etc", "bind=/etc"),
    ("-v /etc:/host-etc:ro", "bind=/etc"),
    ("-v /etc/:/host-etc", "bind=/etc"),
    ("-v /etc/shadow:/shadow", "bind=/etc"),
    ("-v /var/run/docker.sock:/var/run/docker.sock", "bind=/run/docker.sock"),
    ("-v /var/run/docker.sock:/s:ro", "bind=/run/docker.sock"),
    ("-v /run/docker.sock:/s", "bind=/run/docker.sock"),
    ("-v /var/run:/host-run:ro", "bind=/run/docker.sock"),
    ("-v /var:/host-var", "bind=/run/docker.sock"),
    ("--mount type=bind,src=/var/run/docker.sock,dst=/s,readonly=true", "bind=/run/docker.sock"),
    ("-v /proc:/host-proc", "bind=/proc"),
    ("-v /sys/fs/cgroup:/sys/fs/cgroup", "bind=/sys"),
    ("-v /dev:/dev", "bind=/dev"),
    ("-v /root/.ssh:/keys", "bind=/root"),
    ("-v /var/lib/docker:/docker", "bind=/var/lib/docker"),
    ("-v /usr/share/mender/modules:/m", "bind=/usr/share/mender"),
    ("-v /data/mender:/m:ro", "bind=/data/mender"),
    ("-v ./../../..:/host", "bind-relative"),
    ("--mount type=bind,src=.,dst=/h", "bind-relative"),
    # an argument docker would take as the image
    ("busybox", "positional"),
    ("-- other/image", "positional"),
    ("--privileged=false evil", "positional"),
]


@pytest.mark.parametrize(("run_args", "rule"), DENIED, ids=[a for a, _ in DENIED])
def test_dangerous_preset_refuses_every_spelling(run_args: str, rule: str) -> None:
    error = refusal(shlex.split(run_args))
    assert error is not None, f"{run_args!r} was allowed"
    assert [v.rule for v in error.violations] == [rule]
    message = str(error)
    assert "\n" not in message
    assert "'web'" in message and repr(rule) in message


# Everyday arguments the preset must leave alone (false positives break real deployments).
ALLOWED = [
    "",
    "-d -t --restart=always",
    "-p 8080:80 -e MODE=production --memory 64m",
    "-e --privileged",  # the value of -e: an environment variable named --privileged
    "--label note=--privileged",
    "--privileged=false",
    "--privileged=0",
    "--network=bridge",
    "--net mynet",
    "--network container:db",
    "--pid=container:db",
    "--ipc=shareable",
    "--cap-add=NET_BIND_SERVICE",
    "--cap-drop=ALL",
    "--security-opt no-new-privileges",
    "--security-opt seccomp=/etc/docker/seccomp.json",
    "-v data:/data",
    "-v /data/app:/data",
    "-v /srv/www:/www:ro",
    "-v /etc/localtime:/etc/localtime:ro",
    "-v /var/lib/app:/state",
    "-v /anonymous-volume-target",
    "--mount type=volume,src=data,dst=/data",
    "--mount type=bind,src=/srv/app,dst=/app",
    "--mount type=bind,src=/etc/localtime,dst=/etc/localtime,readonly",
    "--mount type=tmpfs,dst=/tmp",
    "--tmpfs /run",
    "--health-cmd 'wget -q -O- http://localhost/ || exit 1'",
    "--entrypoint /bin/sh",
    "-w /app -u 1000:1000 -h myhost",
]


@pytest.mark.parametrize("run_args", ALLOWED)
def test_dangerous_preset_allows_ordinary_arguments(run_args: str) -> None:
    error = refusal(shlex.split(run_args))
    assert error is None, str(error)


def test_policy_error_is_a_value_error_and_a_deployment_error() -> None:
    error = refusal(["--privileged"])
    assert isinstance(error, ValueError) and isinstance(error, DeploymentError)


def test_every_violation_is_reported_in_one_line() -> None:
    args = shlex.split("--privileged --pid=host -v /:/host -e A=1")
    error = refusal(args)
    assert error is not None
    assert [(v.argument, v.rule) for v in error.violations] == [
        ("--privileged", "--privileged"),
        ("--pid=host", "--pid=host"),
        ("-v /:/host", "bind=/"),
    ]
    assert "\n" not in str(error)


def test_a_bind_of_root_is_reported_once_not_per_sensitive_path() -> None:
    error = refusal(["-v", "/:/host"])
    assert error is not None and len(error.violations) == 1


def test_message_escapes_control_characters() -> None:
    error = refusal(["--privileged=yes\n--rm"])  # not a boolean docker knows: refused
    assert error is not None
    assert "\n" not in str(error) and "\\n" in str(error)


def test_empty_policy_allows_everything() -> None:
    policy = policy_from_settings({})
    assert not policy.active
    check(planned(["--privileged", "-v", "/:/host", "busybox"]), policy)


def test_none_means_no_rule() -> None:
    assert policy_from_settings({"deny_run_args": "none"}).rules == ()
    assert policy_from_settings({"deny_run_args": ""}).rules == ()


def test_default_is_the_dangerous_preset() -> None:
    default = policy_from_settings({"deny_run_args": "default"})
    assert default.deny == DANGEROUS == DANGEROUS_POLICY.deny


def test_preset_combines_with_more_rules() -> None:
    policy = policy_from_settings({"deny_run_args": "dangerous, --cap-add , --publish"})
    assert "--cap-add" in policy.deny and "--publish" in policy.deny
    assert len(policy.deny) == len(DANGEROUS) + 2
    error = refusal(["-p", "80:80", "--cap-add=NET_ADMIN"], policy)
    assert error is not None
    assert [(v.argument, v.rule) for v in error.violations] == [
        ("--cap-add=NET_ADMIN", "--cap-add"),
        ("-p 80:80", "--publish"),
    ]


def test_custom_rule_list_only_denies_what_it_names() -> None:
    policy = policy_from_settings({"deny_run_args": "--privileged,--net=host"})
    assert refusal(["-v", "/:/host"], policy) is None
    assert refusal(["--pid=host"], policy) is None
    error = refusal(["--network", "HOST"], policy)
    assert error is not None and error.violations[0].rule == "--network=host"


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("--privileged", "--privileged"),
        ("--privileged=true", "--privileged"),
        ("--net=host", "--network=host"),
        ("--pid host", "--pid=host"),
        ("-v", "--volume"),
        ("-p", "--publish"),
        ("--cap-add=cap_sys_admin", "--cap-add=SYS_ADMIN"),
        ("--security-opt=seccomp:unconfined", "--security-opt=seccomp=unconfined"),
        ("bind=/var/run/docker.sock", "bind=/run/docker.sock"),
        ("bind=/etc/", "bind=/etc"),
        ("--volume=/srv", "bind=/srv"),
        ("-v=/srv", "bind=/srv"),
        ("bind-relative", "bind-relative"),
        ("positional", "positional"),
    ],
)
def test_rule_spellings_are_normalised(text: str, normalised: str) -> None:
    assert parse_rule(text).text == normalised


def test_specific_security_opt_rule() -> None:
    policy = policy_from_settings({"deny_run_args": "--security-opt=apparmor=unconfined"})
    assert refusal(["--security-opt", "apparmor:unconfined"], policy) is not None
    assert refusal(["--security-opt", "seccomp=unconfined"], policy) is None


def test_bind_rule_on_own_path() -> None:
    policy = policy_from_settings({"deny_run_args": "bind=/srv/secrets"})
    assert refusal(["-v", "/srv/secrets:/s:ro"], policy) is not None
    assert refusal(["-v", "/srv:/s:ro"], policy) is not None  # holds the path
    assert refusal(["-v", "/srv/secrets/a:/a"], policy) is not None  # writable inside
    assert refusal(["-v", "/srv/secrets/a:/a:ro"], policy) is None  # read-only inside
    assert refusal(["-v", "/srv/secrets2:/a"], policy) is None  # a sibling, not inside


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"deny_run_args": "privileged"}, "unknown rule 'privileged'"),
        ({"deny_run_args": "dangerus"}, "unknown rule 'dangerus'"),
        ({"deny_run_args": "bind=etc"}, "bind= needs an absolute path"),
        ({"deny_run_args": "--Privileged"}, "does not name a docker run option"),
        ({"deny_run_args": "-Z"}, "does not name a docker run option"),
        ({"deny_run_args": "--pid="}, "has an empty value"),
        ({"deny_run_args": "--privileged=false"}, "write just --privileged"),
        ({"allowed_registries": ""}, "allowed_registries is empty"),
        ({"allowed_registries": " , "}, "allowed_registries is empty"),
        ({"allowed_registries": "registry.example.com/library"}, "is not a registry host"),
        ({"allowed_registries": "bad host"}, "is not a registry host"),
    ],
)
def test_bad_settings_are_config_errors(settings: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        policy_from_settings(settings)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("image", "host"),
    [
        (f"busybox@{DIGEST}", "docker.io"),
        (f"library/busybox@{DIGEST}", "docker.io"),
        (f"myorg/app:1.0@{DIGEST}", "docker.io"),
        (f"docker.io/library/busybox@{DIGEST}", "docker.io"),
        (f"index.docker.io/library/busybox@{DIGEST}", "docker.io"),
        (f"registry.example.com/app@{DIGEST}", "registry.example.com"),
        (f"Registry.Example.com/app@{DIGEST}", "registry.example.com"),
        (f"127.0.0.1:5000/app@{DIGEST}", "127.0.0.1:5000"),
        (f"localhost/app@{DIGEST}", "localhost"),
        (f"localhost:5000/a/b/c@{DIGEST}", "localhost:5000"),
        (f"MyHost/app@{DIGEST}", "myhost"),  # an uppercase first component is a host
        (f"[::1]:5000/app@{DIGEST}", "[::1]:5000"),
    ],
)
def test_registry_host_resolves_like_docker(image: str, host: str) -> None:
    assert registry_host(image) == host


def test_allowed_registries() -> None:
    policy = policy_from_settings({"allowed_registries": "Registry.Example.com, 10.0.0.1:5000"})
    assert policy.allowed_registries == ("registry.example.com", "10.0.0.1:5000")
    check(planned([], f"registry.example.com/app@{DIGEST}"), policy)
    check(planned([], f"10.0.0.1:5000/x/y@{DIGEST}"), policy)
    for image in (f"busybox@{DIGEST}", f"10.0.0.1:5001/x@{DIGEST}", f"evil.com/app@{DIGEST}"):
        with pytest.raises(PolicyError, match="allowed_registries"):
            check(planned([], image), policy)


def test_docker_io_spellings_are_one_registry() -> None:
    policy = policy_from_settings({"allowed_registries": "index.docker.io"})
    check(planned([], f"busybox@{DIGEST}"), policy)
    check(planned([], f"docker.io/library/busybox@{DIGEST}"), policy)


def test_allowed_registries_refuses_a_positional_image_swap() -> None:
    # `docker run -d --name web evil.com/x registry.example.com/app@...` runs evil.com/x.
    policy = policy_from_settings({"allowed_registries": "registry.example.com"})
    violations = find_violations(planned(["evil.com/x"]), policy)
    assert [(v.argument, v.rule) for v in violations] == [("evil.com/x", "allowed_registries")]


def test_checked_against_what_the_meta_data_plans() -> None:
    # The whole path the module takes: meta-data -> plan -> policy.
    meta = parse_metadata_json(
        json.dumps(
            {
                "containers": [
                    f"registry.example.com/a@{DIGEST}",
                    f"registry.example.com/b@{DIGEST}",
                ],
                "run_args": "--restart=always",
                "container_args": ["-p 80:80", "--name b -itv/:/host"],
            }
        )
    )
    plan = meta.plan()
    with pytest.raises(PolicyError) as info:
        check(plan, DANGEROUS_POLICY)
    (violation,) = info.value.violations
    assert (violation.container, violation.argument, violation.rule) == (
        "b",
        "-itv/:/host",
        "bind=/",
    )
    check(plan[:1], DANGEROUS_POLICY)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-itv/:/h"], [("interactive", None), ("tty", None), ("volume", "/:/h")]),
        (["-d=false"], [("detach", "false")]),
        (["-v", "-x"], [("volume", "-x")]),  # a valued flag takes the next argument whatever it is
        (["--net", "host"], [("network", "host")]),
        (["--privileged", "x"], [("privileged", None)]),  # a boolean takes no value
        (["-pP", "80"], [("publish", "P")]),
    ],
)
def test_scan_args_follows_docker_flag_parsing(
    args: List[str], expected: List[Tuple[str, Optional[str]]]
) -> None:
    uses, _ = scan_args(args)
    assert [(u.option, u.value) for u in uses] == expected


def test_scan_args_positionals() -> None:
    assert scan_args(["--privileged", "x"])[1] == ["x"]
    assert scan_args(["-e", "A", "--", "-v", "/:/h"])[1] == ["-v", "/:/h"]
    assert scan_args(["-"])[1] == ["-"]
