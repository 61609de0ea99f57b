"""The device owner's policy (module/policy.py): every spelling docker accepts is caught."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pytest

from mender_docker.imageref import ImageReferenceError
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
)
from mender_docker.spec import MetadataError, PlannedContainer, parse_metadata_json
from tests.hostile.planning import DIGEST, IMAGE, planned_many
from tests.hostile.planning import planned as plan_args

DANGEROUS_POLICY = policy_from_settings({"deny_run_args": "dangerous"})
SAFE_POLICY = policy_from_settings({"allow_run_args": "safe"})
JOURNAL = "/data/mender-docker"


def planned(
    args: Sequence[str], image: str = IMAGE, engine: str = "docker"
) -> List[PlannedContainer]:
    return plan_args(args, image, engine=engine)


def refusal(
    args: Sequence[str], policy: Policy = DANGEROUS_POLICY, engine: str = "docker"
) -> Optional[PolicyError]:
    try:
        check(planned(args, engine=engine), policy, protected=(JOURNAL,))
    except PolicyError as exc:
        return exc
    return None


# (run_args as written in the meta-data, the rule that must refuse it)
DENIED: List[Tuple[str, str]] = [
    ("--privileged", "--privileged"),
    ("--privileged=true", "--privileged"),
    ("--privileged=1", "--privileged"),
    ("-d --privileged -t", "--privileged"),
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
    ("--mount 'type=bind,\"source=/\",target=/host'", "unclear"),
    ("--mount target=/host,source=/,type=bind", "bind=/"),
    (
        "--mount type=volume,dst=/h,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/",
        "volume-opt",
    ),
    # sensitive host paths
    ("-v /etc:/host-etc", "bind=/etc/shadow"),
    ("-v /etc:/host-etc:ro", "bind=/etc/shadow"),
    ("-v /etc/:/host-etc", "bind=/etc/shadow"),
    ("-v /etc/shadow:/shadow", "bind=/etc/shadow"),
    ("-v /etc/cron.d:/c", "bind-rw=/etc"),
    ("-v /var/run/docker.sock:/var/run/docker.sock", "bind=/run"),
    ("-v /var/run/docker.sock:/s:ro", "bind=/run"),
    ("-v /run/docker.sock:/s", "bind=/run"),
    ("-v /var/run:/host-run:ro", "bind=/run"),
    ("-v /var:/host-var", "bind=/run"),
    ("--mount type=bind,src=/var/run/docker.sock,dst=/s,readonly=true", "bind=/run"),
    ("-v /proc:/host-proc", "bind=/proc"),
    ("-v /sys/fs/cgroup:/sys/fs/cgroup", "bind=/sys"),
    ("-v /dev:/dev", "bind=/dev"),
    ("-v /root/.ssh:/keys", "bind=/root"),
    ("-v /var/lib/docker:/docker", "bind=/var/lib/docker"),
    ("-v /var/lib/docker/volumes:/v:ro", "bind=/var/lib/docker"),
    ("-v /usr/share/mender/modules:/m", "bind=/usr/share/mender"),
    # Debian's mender-client links /var/lib/mender to /data/mender: rule paths resolve too
    ("-v /data/mender:/m:ro", "bind=/data/mender|bind=/var/lib/mender"),
    ("-v ./../../..:/host", "bind-relative"),
    ("--mount type=bind,src=.,dst=/h", "bind-relative"),
    # issue 10: the CSV form of --network (docker lower-cases it)
    ("--network name=host", "--network=host"),
    ("--net Name=HOST", "--network=host"),
    ("--network name=host,alias=x", "--network=host"),
    ("--network container:db", "--network=host"),
    ("--pid=container:db", "--pid=host"),
    # issue 10: --mount values engines read differently
    ("--mount 'type=bind,\"src=/\",dst=/h\nx'", "unclear"),
    ("--network 'name=\"host\"'", "unclear"),
    # issue 10: volumes of the local driver that mount host paths
    (
        "--mount type=volume,dst=/x,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=etc",
        "volume-opt",
    ),
    (
        "--mount type=volume,dst=/x,volume-opt=o=bind,volume-opt=device=/var/run/../etc",
        "volume-opt",
    ),
    ("--mount type=volume,dst=/x,volume-opt=type=overlay,volume-opt=o=lowerdir=/", "volume-opt"),
    # issue 10: host root through procfs
    ("-v /proc/self/root/run/docker.sock:/var/run/docker.sock:ro", "bind=/proc"),
    ("-v /proc/1/root:/h:ro", "bind=/proc"),
    # issue 10: secrets, read-only or not
    ("-v /etc/shadow:/s:ro", "bind=/etc/shadow"),
    ("-v /var/lib/mender:/m:ro", "bind=/var/lib/mender"),
    ("-v /root/.docker/config.json:/c:ro", "bind=/root"),
    ("-v /etc/mender:/m:ro", "bind=/etc/mender"),
    # issue 10: host control planes, writable
    ("-v /run/dbus/system_bus_socket:/s", "bind=/run"),
    ("-v /run/systemd:/s:ro", "bind=/run"),
    ("-v /usr/local/bin:/b", "bind-rw=/usr"),
    ("-v /boot:/b", "bind-rw=/boot"),
    ("-v /data/mender-docker:/j:ro", "bind=/data/mender-docker"),  # the module's journal
    ("-v /etc/localtime:/l:z", "bind-rw=/etc"),  # relabelling writes the host file
    ("--security-opt seccomp=/etc/docker/seccomp.json", "--security-opt=unconfined"),
    ("--security-opt label=type:spc_t", "--security-opt=unconfined"),
    ("--cap-add SYS_TIME", "--cap-add=SYS_TIME"),
    ("--gpus all", "--gpus"),
    ("--cgroup-parent /system.slice", "--cgroup-parent"),
    ("--runtime runc", "--runtime"),
]

# issue 10 item 8: options only podman has
PODMAN_DENIED = [
    ("--rootfs", "--rootfs"),
    ("--pidfile=/etc/passwd", "--pidfile"),
    ("--conmon-pidfile /etc/passwd", "--conmon-pidfile"),
    ("--init-path /bin/sh", "--init-path"),
    ("--env-host", "--env-host"),
    ("--pod mypod", "--pod"),
    ("--log-opt path=/etc/passwd", "--log-opt=path"),
    ("--mount type=glob,src=/etc/*,dst=/g", "bind=/etc/shadow"),
    ("-v /etc:/e:ro,U", "bind=/etc/shadow"),
    ("--authfile /root/auth.json", "--authfile"),
    ("--network ns:/proc/1/ns/net", "--network=host"),
]


@pytest.mark.parametrize(("run_args", "rule"), PODMAN_DENIED, ids=[a for a, _ in PODMAN_DENIED])
def test_dangerous_preset_refuses_podman_options(run_args: str, rule: str) -> None:
    error = refusal(shlex.split(run_args), engine="podman")
    assert error is not None, f"{run_args!r} was allowed"
    assert len(error.violations) == 1 and error.violations[0].rule in rule.split("|")


# What no device runs, whatever its policy (spec.ALWAYS_REFUSED and the parse).
ALWAYS_REFUSED = [
    ("--rm", "never allowed"),
    ("-d --rm=true", "never allowed"),
    ("--label-file=/root/.ssh/id_rsa", "never allowed"),
    ("--cidfile /etc/cron.d/x", "never allowed"),
    ("--label io.mender.docker.managed=0", "are the module's own"),
    ("-l io.mender.docker.deployment=x", "are the module's own"),
    ("--help", "never allowed"),
    ("busybox", "positional argument 'busybox'"),
    ("-- other/image", "positional argument 'other/image'"),
    ("--privileged=false evil", "positional argument 'evil'"),
    ("--no-such-option", "unknown option '--no-such-option'"),
    ("--rootfs", "unknown option '--rootfs'"),  # podman's, not docker's
    ("--privileged=yes", "takes true or false"),
]


@pytest.mark.parametrize(
    ("run_args", "fragment"), ALWAYS_REFUSED, ids=[a for a, _ in ALWAYS_REFUSED]
)
def test_refused_on_every_device(run_args: str, fragment: str) -> None:
    with pytest.raises(MetadataError, match=fragment):
        check(planned(shlex.split(run_args)), policy_from_settings({}))


@pytest.mark.parametrize(
    "run_args",
    [
        "--rmi",
        "--replace",
        "--root /tmp/x",
        "--hooks-dir /tmp",
        "--storage-opt x=y",
        "--preserve-fds 3",
        "--ns x",
    ],
)
def test_podman_options_that_change_the_engine_are_refused(run_args: str) -> None:
    with pytest.raises(MetadataError, match="never allowed"):
        planned(shlex.split(run_args), engine="podman")


def test_the_checked_arguments_are_the_executed_ones() -> None:
    # issue 10 item 1: the old code removed -d after the check, turning two labels
    # into a bind of / ; now the plan carries one `--option=value` per argument.
    (item,) = planned(shlex.split("-l -d -l --volume=/:/host --label --detach --label --pid=host"))
    assert item.args == (
        "--label=-d",
        "--label=--volume=/:/host",
        "--label=--detach",
        "--label=--pid=host",
    )
    assert refusal(["-l", "-d", "-l", "--volume=/:/host"]) is None


@pytest.mark.parametrize(("run_args", "rule"), DENIED, ids=[a for a, _ in DENIED])
def test_dangerous_preset_refuses_every_spelling(run_args: str, rule: str) -> None:
    error = refusal(shlex.split(run_args))
    assert error is not None, f"{run_args!r} was allowed"
    assert len(error.violations) == 1 and error.violations[0].rule in rule.split("|")
    message = str(error)
    assert "\n" not in message
    assert "'web'" in message and repr(error.violations[0].rule) in message


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
    "--ipc=shareable",
    "--cap-add=NET_BIND_SERVICE",
    "--cap-drop=ALL",
    "--security-opt no-new-privileges",
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
    with pytest.raises(MetadataError) as info:  # not a boolean docker knows: refused
        planned(["--privileged=yes\n--rm"])
    assert "\n" not in str(info.value) and "\\n" in str(info.value)
    error = refusal(["-v", "/:/host\nx"])
    assert error is not None
    assert "\n" not in str(error) and "\\n" in str(error)


def test_empty_policy_allows_everything() -> None:
    policy = policy_from_settings({})
    assert not policy.active
    check(planned(["--privileged", "-v", "/:/host"]), policy)


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
    assert refusal(["-v", "/srv/secrets/a:/a"], policy) is not None  # inside
    assert refusal(["-v", "/srv/secrets/a:/a:ro"], policy) is not None  # read-only inside
    assert refusal(["-v", "/srv/secrets2:/a"], policy) is None  # a sibling, not inside


def test_system_directories_are_protected_as_written() -> None:
    # Without resolving symlinks (on merged-/usr systems /bin resolves to /usr/bin).
    plan = planned(["-v", "/bin:/b", "-v", "/sbin:/s:ro"])
    found = find_violations(plan, DANGEROUS_POLICY, resolve=lambda path: path)
    assert [(v.argument, v.rule) for v in found] == [("-v /bin:/b", "bind-rw=/bin")]


def test_bind_rw_rule_on_own_path() -> None:
    policy = policy_from_settings({"deny_run_args": "bind-rw=/srv/app"})
    assert refusal(["-v", "/srv/app/x:/x"], policy) is not None
    assert refusal(["-v", "/srv:/s"], policy) is not None  # holds the path, writable
    assert refusal(["-v", "/srv/app/x:/x:ro"], policy) is None
    assert refusal(["-v", "/srv:/s:ro"], policy) is None


def test_host_paths_are_judged_as_the_kernel_resolves_them(tmp_path: Path) -> None:
    # issue 10 item 4: /var/run/../etc is /etc to the kernel (it follows /var/run -> /run)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("/etc")
    policy = policy_from_settings({"deny_run_args": "bind=/etc/shadow"})
    assert refusal(["-v", f"{tmp_path}/link:/e:ro"], policy) is not None
    assert refusal(["-v", f"{tmp_path}/link/../real:/e:ro"], policy) is None  # lexically fine...
    # issue 19: a writable bind through a link is refused: bind the path it leads to
    error = refusal(["-v", f"{tmp_path}/link/../real:/e"], policy)
    assert error is not None and [v.rule for v in error.violations] == ["bind-symlink"]
    (tmp_path / "up").symlink_to("/etc/ssl")
    assert refusal(["-v", f"{tmp_path}/up/..:/e:ro"], policy) is not None  # ...this is /etc


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"deny_run_args": "privileged"}, "unknown rule 'privileged'"),
        ({"deny_run_args": "dangerus"}, "unknown rule 'dangerus'"),
        ({"deny_run_args": "bind=etc"}, "bind= needs an absolute path"),
        ({"deny_run_args": "--Privileged"}, "does not name a docker or podman run option"),
        ({"deny_run_args": "-Z"}, "does not name a docker or podman run option"),
        ({"allow_run_args": "--privileged"}, "must start with `safe`"),
        ({"allow_run_args": "safe, bind=relative"}, "bind= needs an absolute path"),
        ({"deny_run_args": "x" * 70000}, "more than"),
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
        (f"INDEX.DOCKER.IO/app@{DIGEST}", "docker.io"),  # host names are case-blind
        # the Hub's API host is a registry of its own to docker: no mirrors, no library/
        (f"registry-1.docker.io/library/busybox@{DIGEST}", "registry-1.docker.io"),
    ],
)
def test_registry_host_resolves_like_docker(image: str, host: str) -> None:
    assert registry_host(image) == host


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        # docker 23+ reads an uppercase first component as a host, docker 20.10 refuses it
        # as an uppercase path: the shared grammar (imageref.py) takes what both take
        (f"MyHost/app@{DIGEST}", "repository name must be lowercase"),
        (f"[::1]:5000/app@{DIGEST}", "IPv6 registry addresses are not accepted"),  # 23+ only
        (f"a_b.c/app@{DIGEST}", "invalid registry host"),
    ],
)
def test_registry_host_of_a_malformed_reference(image: str, reason: str) -> None:
    # spec refuses the meta-data first; a policy given one anyway fails closed
    with pytest.raises(ImageReferenceError, match=reason):
        registry_host(image)
    with pytest.raises(MetadataError, match=reason):
        parse_metadata_json(json.dumps({"containers": [image]}))


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
    check(planned([], f"Index.Docker.IO/library/busybox@{DIGEST}"), policy)


def test_the_hub_api_host_is_a_registry_of_its_own() -> None:
    # docker pulls registry-1.docker.io/... without the docker.io mirrors and
    # credentials: listed on its own (before, both spellings were docker.io)
    policy = policy_from_settings({"allowed_registries": "docker.io"})
    with pytest.raises(PolicyError, match="'registry-1.docker.io' is not one of docker.io"):
        check(planned([], f"registry-1.docker.io/library/busybox@{DIGEST}"), policy)
    policy = policy_from_settings({"allowed_registries": "Registry-1.Docker.io"})
    assert policy.allowed_registries == ("registry-1.docker.io",)
    check(planned([], f"registry-1.docker.io/library/busybox@{DIGEST}"), policy)
    with pytest.raises(PolicyError, match="'docker.io' is not one of registry-1.docker.io"):
        check(planned([], f"busybox@{DIGEST}"), policy)


def test_a_positional_image_swap_is_refused_on_every_device() -> None:
    # `docker run -d --name web evil.com/x registry.example.com/app@...` runs evil.com/x.
    with pytest.raises(MetadataError, match="instead of the pinned one"):
        planned(["evil.com/x"])


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


# `allow_run_args = safe`: ordinary application settings pass, nothing else.
SAFE_ALLOWED = [
    "",
    "-p 8080:80 -p 127.0.0.1:53:53/udp -P --expose 9000",
    "-e MODE=production --env=A=1 -w /app -u 1000:1000 -h myhost --domainname example.com",
    "-v data:/data -v /anonymous --mount type=volume,src=db,dst=/db --mount type=tmpfs,dst=/t",
    "--restart=on-failure:3 --memory 64m --memory-swap 128m --cpus 0.5 --pids-limit 100",
    "--log-driver json-file --log-opt max-size=10m --log-opt max-file=3",
    "--health-cmd 'true' --health-interval 5s --health-retries 3 --no-healthcheck=false",
    "--read-only --tmpfs /run --network mynet --network-alias web --init --stop-timeout 30",
    "--cap-drop ALL --ulimit nofile=1024:2048 --dns 10.0.0.1 --add-host db:10.0.0.2",
    "--label app=web -l tier=front --entrypoint /bin/app --stop-signal SIGINT",
]


@pytest.mark.parametrize("run_args", SAFE_ALLOWED)
def test_safe_allows_ordinary_settings(run_args: str) -> None:
    assert refusal(shlex.split(run_args), SAFE_POLICY) is None


SAFE_REFUSED = [
    "-v /srv/app:/app:ro",  # any bind
    "--mount type=bind,src=/srv,dst=/s",
    "--mount type=volume,dst=/x,volume-opt=device=/srv",
    "--cap-add NET_ADMIN",
    "--network host",
    "--network container:db",
    "--network name=mynet,alias=x",  # the CSV form: no
    "--sysctl net.ipv4.ip_forward=1",
    "--log-driver syslog",
    "--log-opt syslog-address=udp://1.2.3.4:514",
    "-e HOME",  # copies the module's own environment
    "--security-opt no-new-privileges",
    "--device /dev/null",
    "--oom-score-adj -1000",
    "--userns host",
    "--privileged",
]


@pytest.mark.parametrize("run_args", SAFE_REFUSED)
def test_safe_refuses_everything_else(run_args: str) -> None:
    error = refusal(shlex.split(run_args), SAFE_POLICY)
    assert error is not None, f"{run_args!r} was allowed"
    assert error.violations[0].rule in ("safe", "--network=host", "volume-opt", "bind=/")
    assert "\n" not in str(error)


def test_safe_takes_extra_rules_and_deny_still_applies() -> None:
    policy = policy_from_settings(
        {"allow_run_args": "safe, --sysctl, bind=/srv/app", "deny_run_args": "dangerous"}
    )
    assert refusal(["--sysctl", "net.core.somaxconn=1024", "-v", "/srv/app/x:/x"], policy) is None
    error = refusal(["-v", "/:/h:ro"], policy)  # above /srv/app: not allowed by bind=/srv/app
    assert error is not None and [v.rule for v in error.violations] == ["bind=/"]
    assert refusal(["-v", "/srv/other:/o"], policy) is not None


def test_booleans_set_to_false_are_not_uses() -> None:
    assert refusal(["--privileged=false", "--init=false"], SAFE_POLICY) is None
    assert refusal(["--privileged=false"]) is None


# -- issue 19 -------------------------------------------------------------------------

# Go's strings.ToLower folds U+0130 to "i", Python's lower() to "i̇": refused under any rule
FOLDED = [
    "--mount type=b\u0130nd,source=/,target=/host",
    "--mount TYPE=b\u0130nd,src=/srv,dst=/s",
    "--mount type=volume,volume-dr\u0130ver=local,src=v,dst=/v",
    "--mount type=bind,src=/srv,dst=/s,b\u0130nd-propagation=rshared",
    "--network name=conta\u0130ner:victim",
    "--network conta\u0130ner:victim",
    "--cap-add=\u017fys_admin",  # ſ: ToUpper makes it S
    "--security-opt seccomp=unconf\u0130ned",
    "--log-opt P\u0130TH=/etc/x",
    "--ulimit n\u0130le=1:1",
    "--sysctl net.\u0130pv4.ip_forward=1",
    "--pid conta\u0130ner:x",
    "-v /srv:/s:\u0131ro",
]


@pytest.mark.parametrize("run_args", FOLDED)
@pytest.mark.parametrize(
    "settings",
    [{"deny_run_args": "dangerous"}, {"allow_run_args": "safe"},
     {"deny_run_args": "--privileged"}],
    ids=["dangerous", "safe", "one-rule"],
)  # fmt: skip
def test_non_ascii_where_the_engine_folds_case_is_refused_under_every_rule(
    run_args: str, settings: dict[str, str]
) -> None:
    error = refusal(shlex.split(run_args), policy_from_settings(settings))
    assert error is not None, f"{run_args!r} was allowed under {settings}"
    assert "non-ASCII" in str(error)


def test_non_ascii_in_paths_is_no_folding_matter() -> None:
    policy = policy_from_settings({"deny_run_args": "--privileged"})
    assert refusal(["--mount", "type=bind,src=/srv/caf\u00e9,dst=/caf\u00e9"], policy) is None
    assert refusal(["-e", "NAME=\u0130stanbul", "-v", "/srv/\u00e9:/e"], policy) is None


def test_a_capability_list_is_allowed_only_item_by_item() -> None:
    # podman splits --cap-add=A,B: an allow rule for A must not let B through
    policy = policy_from_settings({"allow_run_args": "safe, --cap-add=NET_ADMIN"})
    for engine in ("docker", "podman"):
        assert refusal(["--cap-add=NET_ADMIN"], policy, engine) is None
        error = refusal(["--cap-add=NET_ADMIN,SYS_ADMIN"], policy, engine)
        assert error is not None and error.violations[0].rule == "safe"


@pytest.mark.parametrize(
    ("run_args", "rule"),
    [
        ("--hosts-file /etc/shadow", "--hosts-file"),
        ("--health-log-destination /etc/cron.d", "--health-log-destination"),
        ("--secret db-password", "--secret"),
        ("--log-opt syslog-address=unixgram:///run/x", "--log-opt=syslog-address"),
        ("--log-opt splunk-url=https://x", "--log-opt=splunk-url"),
        ("--oom-score-adj=-1000", "--oom-score-adj"),
        ("--mount type=glob,src=/etc/cron.d/*,dst=/c", "bind-rw=/etc"),
    ],
)  # fmt: skip
def test_podman_5_options_that_reach_host_files_are_dangerous(run_args: str, rule: str) -> None:
    error = refusal(shlex.split(run_args), engine="podman")
    assert error is not None and error.violations[0].rule == rule


def test_only_a_negative_oom_score_adj_is_dangerous() -> None:
    assert refusal(["--oom-score-adj=500"]) is None
    assert refusal(["--oom-score-adj", "-1"]) is not None


@pytest.mark.parametrize(
    "path", ["/var/spool/cron", "/var/spool/cron/crontabs", "/etc/systemd/system",
             "/etc/cron.d", "/etc/ld.so.preload", "/usr/lib/systemd/system"],
)  # fmt: skip
def test_what_runs_as_root_by_itself_is_not_writable(path: str) -> None:
    assert refusal(["-v", f"{path}:/x"]) is not None
    assert refusal(["-v", f"{path}:/x:ro"]) is None


def test_rule_paths_are_resolved_like_bind_sources() -> None:
    # a device whose /etc/systemd is a link into its data partition
    links = {"/etc/systemd": "/data/overlay/systemd"}

    def resolve(path: str) -> str:
        for link, target in links.items():
            if path == link or path.startswith(link + "/"):
                return target + path[len(link):]
        return path

    found = find_violations(planned(["-v", "/data/overlay/systemd/system:/s"]),
                            DANGEROUS_POLICY, resolve=resolve)  # fmt: skip
    assert [v.rule for v in found] == ["bind-rw=/etc/systemd"]


def test_the_engines_state_and_the_clients_dirs_are_protected() -> None:
    protected = ("/data/docker", "/data/mender-client")
    for path in protected:
        found = find_violations(planned(["-v", f"{path}/x:/x:ro"]), DANGEROUS_POLICY, protected)
        assert [v.rule for v in found] == [f"bind={path}"]


def test_link_copies_a_containers_environment() -> None:
    assert refusal(["--link", "db:db"]) is not None
    error = refusal(["--link", "db"], SAFE_POLICY)
    assert error is not None and error.violations[0].rule == "safe"


def test_a_bind_inside_a_directory_another_service_writes_is_refused(tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    (srv / "x").mkdir(parents=True)
    policy = policy_from_settings({"allow_run_args": f"safe, bind={srv}"})
    plan = planned_many([f"-v {srv}/x:/x", f"-v {srv}/x/d:/host"])
    found = find_violations(plan, policy)
    assert [(v.container, v.rule) for v in found] == [(plan[1].name, "bind-swap")]
    assert f"inside {srv}/x, which container {plan[0].name!r} can write" in found[0].reason
    # the same directory twice is fine; so is a read-only planter (it writes nothing)
    assert not find_violations(planned_many([f"-v {srv}/x:/x", f"-v {srv}/x:/y"]), policy)
    assert not find_violations(planned_many([f"-v {srv}/x:/x:ro", f"-v {srv}/x/d:/h"]), policy)


def test_a_bind_inside_what_a_running_container_writes_is_refused(tmp_path: Path) -> None:
    policy = policy_from_settings({"deny_run_args": "dangerous"})
    plan = planned(["-v", f"{tmp_path}/x/d:/host"])
    assert not find_violations(plan, policy)
    found = find_violations(plan, policy, writable_elsewhere=[f"{tmp_path}/x"])
    assert [v.rule for v in found] == ["bind-swap"]
    assert "a container on the device can write" in found[0].reason
    # the engine's data root holds every container's layers and volumes
    found = find_violations(planned(["-v", "/data/docker/volumes/v/_data:/v:ro"]), policy,
                            writable_elsewhere=["/data/docker"])  # fmt: skip
    assert [v.rule for v in found] == ["bind-swap"]


def test_n_identical_binds_cost_no_more_than_one() -> None:
    # issue 19: 1000 copies of one bind were judged against each other (22-31 s)
    plan = planned(["-v", "/srv/a:/a"] * 1000)
    calls: List[str] = []

    def resolve(path: str) -> str:
        calls.append(path)
        return path

    assert not find_violations(plan, DANGEROUS_POLICY, resolve=resolve)
    assert calls.count("/srv/a") <= 3, "each distinct path is resolved a few times, not per copy"
