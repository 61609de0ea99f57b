"""The differential oracle: our reading of `run` arguments against the real engines'.

Issues 10 and 19. tests/hostile/test_differential.py runs a few hundred argvs per
engine in CI, bench/oracle_bench.py 10,000+; both use what is here.

Argument lists are generated from FEATURES (below: what the oracle covers), each a
list of spellings the engines' flag parser (pflag) reads one way or another:
namespaces, capabilities, devices, security options, -v and --mount (CSV quoting
and spacing too), --link, --log-driver/--log-opt, repeated and conflicting
options, Unicode case variants (Go's ToLower/ToUpper fold `İ` to `i` and `ſ` to
`S`, Python's do not), and every option of the options table (runopts.py) with a
sensible value (TABLE_VALUES; TABLE_LEFT_OUT says why an option has none). Every
spelling runs alone (a long feature in groups of `chunk`), then argvs of 1-4
features in random spellings, sometimes one feature twice (which one wins?), a
third of them respelled in other pflag forms (aliases, `=` or a separate word,
short letters and clusters, bool words): a seeded `random.Random`, fixed SEEDS,
so every run tries the same argvs. For each:

1. Our side: `parse(argv, engine)`, `refuse_always`, and what the policy refuses
   under any rule (`find_violations` with a rule that matches nothing generated:
   quotes in --mount, non-ASCII in a value the engine folds, ...). An argv we
   refuse is counted and recorded, never compared. For argvs the *parser* refuses,
   the engine is asked too: accepting one we call a syntax error fails (a
   "non-ASCII" refusal is a choice, not a syntax error), accepting an option our
   table does not know is reported (a table gap, not a danger: the policy refuses
   it). A feature with `refused_by_us` must be refused by our side, whatever the
   engine does with it (alone: with that text in the reason).
2. The container is created twice, never started: once with the argv as
   written (`<engine> create --name=N --pull=never <argv> IMAGE`) and once with
   what the module really hands the engine (`run.without("name",
   "detach").render()`). Both are inspected.
3. (a) the two creates must agree (both refused, or the same view: the
   rendering means what was written); (b) the engine's view must equal what
   `policy.describe(run)` says, on every field the policy judges: privileged;
   the pid/ipc/uts/userns/cgroupns/network mode class (host, container, ns:PATH,
   private); the added capabilities; host device paths; security option keys;
   every mount as (type, host source or volume name, read-only); volumes with
   driver options; --link peers; the log driver (the engine's default when unset).

`create` has no `--detach`, `run` has: a generated spelling marks the detach
letters and words with `~` (`-~dit`, `~--detach`); the argv as written keeps
them, the engine's create gets it without them (as the module drops them).

Engine quirks the comparison allows for, each read from the engine's source:
- docker records caps, modes and security options as the CLI sent them
  (`CapAdd: [CAP_SYS_ADMIN]`, `IpcMode: HOST`); the daemon adds `label=disable`
  when privileged or with the host's pid/ipc namespace (moby
  generateSecurityOpt); `systempaths=unconfined` is handled by the CLI
  (`MaskedPaths: []`). Of docker's CSV `--network name=a,name=b` the last name
  wins (describe() lists both; the policy judges every one). A --link on a
  user-defined network is kept in the network's endpoint (a DNS alias, no
  environment copied): counted as a link all the same.
- podman 4.3's inspect shows `--ipc host` as "shareable" (fixed in 4.4,
  containers/podman 623ad2a) and a rootful container's `--userns host` as "":
  the namespaces and capabilities are read from the OCI spec podman stored at
  create (its bolt or sqlite database). Its inspect hides devices when
  privileged and reports only the no-new-privileges (when on), label, seccomp
  and apparmor security options (libpod GetSecurityOptions).
- the default cgroup namespace differs between cgroup v1 and v2, and rootful
  podman's default user namespace is the host's: those are compared only when
  the argv gives them.
- both CLIs turn a relative bind source starting with "." into a path under
  their working directory (a temp dir here); both keep one of two identical
  mounts, podman one of two identical devices (mounts and devices compare as sets).

A disagreement found and not fixed yet is listed in KNOWN_DISAGREEMENTS: its
spelling is kept out of the generated argvs and checked alone, and the oracle fails
once it agrees (or the engine refuses it), so the list cannot rot.
Run the test with `-s` to see the counts, the engines' reasons for refusing, and the
spellings that never reached a comparison.
"""

from __future__ import annotations

import itertools
import json
import os
import posixpath
import random
import re
import shlex
import sqlite3
import stat
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

from mender_docker.module.errors import DeploymentError
from mender_docker.module.policy import Access, Mount, Policy, describe, find_violations
from mender_docker.runargs import GRAMMARS, RunArgs, RunArgsError, parse
from mender_docker.runopts import OPTIONS
from mender_docker.spec import (
    DEFAULT_LABEL_NAMESPACE,
    MetadataError,
    PlannedContainer,
    refuse_always,
)
from tests.realstack import PodmanStore, unique

SEEDS = (20240610, 7, 1999)
CASES = {"docker": 200, "podman": 100}  # random argvs per engine, spread over SEEDS
WORKERS = 3


@dataclass(frozen=True)
class Feature:
    """One thing an argv can ask for, in the spellings generated for it.

    A spelling is shell words; `d:`/`p:` in front limits it to docker/podman.
    Placeholders: {src} a host path, {dst} a fresh container path, {vol} a fresh
    named volume, {peer} a created (never started) container, {ns} the module's
    label namespace, {uniq} a fresh name (files in the engine's working directory).
    `~` marks run-only detach words and letters (see above). `refused_by_us`: every
    argv with one of these spellings must be refused by our side, alone with this
    text in the reason. `chunk`: the "alone" phase tries that many spellings at once
    (a long list in few creates)."""

    name: str
    spellings: Tuple[str, ...]
    refused_by_us: str = ""
    chunk: int = 1

    def for_engine(self, engine: str) -> Tuple[str, ...]:
        out = []
        for spelling in self.spellings:
            tag, sep, rest = spelling.partition(":")
            if sep and tag in ("d", "p"):
                if tag == engine[0]:
                    out.append(rest)
            else:
                out.append(spelling)
        return tuple(out)


# A sensible value for every option of the table (runopts.OPTIONS), or why it has none:
# the table's options all reach the engines, each in a random mix with the rest.
TABLE_VALUES: Dict[str, str] = {
    "add-host": "h:10.0.0.1", "annotation": "a=b", "arch": "amd64", "attach": "stdout",
    "authfile": "/dev/null", "blkio-weight": "500", "blkio-weight-device": "/dev/null:500",
    "cap-add": "NET_ADMIN", "cap-drop": "CHOWN", "cdi-spec-dir": "{uniq}", "cert-dir": "{uniq}",
    "cgroup-conf": "memory.high=100000000", "cgroup-parent": "{uniq}", "cgroupns": "private",
    "cgroups": "enabled", "chrootdirs": "/tmp", "cidfile": "{uniq}.cid",
    "conmon-pidfile": "{uniq}.pid", "cpu-count": "1", "cpu-percent": "50",
    "cpu-period": "100000", "cpu-quota": "50000", "cpu-rt-period": "1000000",
    "cpu-rt-runtime": "950000", "cpu-shares": "512", "cpus": "0.5", "cpuset-cpus": "0",
    "cpuset-mems": "0", "creds": "u:p", "decryption-key": "/dev/null", "detach": "",
    "detach-keys": "ctrl-x", "device": "/dev/null", "device-cgroup-rule": "'c 1:3 rwm'",
    "device-read-bps": "/dev/null:1mb", "device-read-iops": "/dev/null:100",
    "device-write-bps": "/dev/null:1mb", "device-write-iops": "/dev/null:100",
    "disable-content-trust": "", "dns": "10.0.0.1", "dns-option": "ndots:2",
    "dns-search": "example.com", "domainname": "example.com", "entrypoint": "sh", "env": "A=1",
    "env-file": "/dev/null", "env-host": "", "env-merge": "A=1", "expose": "80",
    "gidmap": "0:100000:65536", "gpus": "all", "group-add": "10", "group-entry": "g:x:10:",
    "health-cmd": "true", "health-interval": "5s", "health-log-destination": "local",
    "health-max-log-count": "3", "health-max-log-size": "100", "health-on-failure": "kill",
    "health-retries": "3", "health-start-interval": "1s", "health-start-period": "5s",
    "health-startup-cmd": "true", "health-startup-interval": "5s",
    "health-startup-retries": "3", "health-startup-success": "1",
    "health-startup-timeout": "5s", "health-timeout": "5s", "hostname": "box",
    "hosts-file": "none", "hostuser": "root", "http-proxy": "=false", "image-volume": "ignore",
    "init": "", "init-ctr": "always", "init-path": "/bin/true", "interactive": "",
    "io-maxbandwidth": "1mb", "io-maxiops": "100", "ip": "10.88.0.99", "ip6": "fd00::99",
    "ipc": "private", "isolation": "default", "kernel-memory": "64m", "label": "a=b",
    "label-file": "/dev/null", "link": "{peer}", "link-local-ip": "169.254.1.1",
    "log-driver": "none", "log-level": "warn", "log-opt": "max-size=1m",
    "mac-address": "02:42:ac:11:00:99", "max-workers": "2", "memory": "64m",
    "memory-reservation": "32m", "memory-swap": "-1", "memory-swappiness": "10",
    "mount": "type=tmpfs,dst={dst}", "network": "none", "network-alias": "a",
    "no-healthcheck": "", "no-hostname": "", "no-hosts": "", "oom-kill-disable": "",
    "oom-score-adj": "100", "os": "linux", "passwd": "=false",
    "passwd-entry": "'u:x:1000:1000::/:/bin/sh'", "personality": "LINUX32", "pid": "private",
    "pidfile": "{uniq}.pid", "pids-limit": "100", "platform": "linux/amd64", "pod": "{uniq}",
    "pod-id-file": "/dev/null", "preserve-fd": "3", "preserve-fds": "1", "privileged": "",
    "publish": "127.0.0.1:8080:80", "publish-all": "", "pull": "never", "quiet": "",
    "rdt-class": "x", "read-only": "", "read-only-tmpfs": "=false", "replace": "",
    "requires": "{peer}", "restart": "on-failure:3", "retry": "1", "retry-delay": "1s",
    "rm": "", "rmi": "", "rootfs": "", "runtime": "runc", "sdnotify": "ignore",
    "seccomp-policy": "image", "secret": "{uniq}", "security-opt": "no-new-privileges",
    "shm-size": "128m", "shm-size-systemd": "64m", "sig-proxy": "=false",
    "signature-policy": "/dev/null", "stop-signal": "SIGINT", "stop-timeout": "5",
    "storage-opt": "size=1G", "subgidname": "root", "subuidname": "root",
    "sysctl": "net.ipv4.ip_forward=1", "systemd": "false", "timeout": "10",
    "tls-verify": "=false", "tmpfs": "{dst}", "tty": "", "tz": "UTC",
    "uidmap": "0:100000:65536", "ulimit": "nofile=1024:2048", "umask": "0022",
    "unsetenv": "PATH", "unsetenv-all": "", "use-api-socket": "", "user": "1000",
    "userns": "host", "uts": "host", "variant": "v8", "volume": "{src}:{dst}:ro",
    "volume-driver": "local", "volumes-from": "{peer}:ro", "workdir": "/tmp",
}  # fmt: skip
# The podman globals that change the engine itself for the call (its store, runtime,
# configuration): refused by refuse_always, and the "as written" create would run them.
_ENGINE_CHANGING = (
    "cgroup-manager", "conmon", "cpu-profile", "db-backend", "default-mounts-file",
    "events-backend", "hooks-dir", "imagestore", "memory-profile", "module", "namespace",
    "network-backend", "network-cmd-path", "network-config-dir", "pull-option",
    "registries-conf", "root", "runroot", "runtime-flag", "storage-driver", "syslog", "tmpdir",
    "trace", "transient-store", "volumepath",
)  # fmt: skip
TABLE_LEFT_OUT: Dict[str, str] = {
    **{name: "a podman global changing the engine (refused by refuse_always)"
       for name in _ENGINE_CHANGING},
    "help": "prints help and creates nothing (refused by refuse_always)",
    "name": "the test names every container it creates",
}  # fmt: skip
# podman's --storage-opt is a global one (the store's options): docker's only
TABLE_ENGINES: Dict[str, str] = {"storage-opt": "d"}


def table_spellings() -> Dict[str, str]:
    """One spelling per option of the table, limited to the engines that have it."""
    out: Dict[str, str] = {}
    for name, _, kind, engines, _ in OPTIONS:
        if name in TABLE_LEFT_OUT:
            continue
        value = TABLE_VALUES[name]
        engines = TABLE_ENGINES.get(name, engines)
        if name == "detach":
            words = "~--detach"
        elif kind == "bool" or value.startswith("="):
            words = f"--{name}{value}"
        else:
            words = f"--{name} {value}"
        out[name] = words if engines == "dp" else f"{engines}:{words}"
    return out


OPTION_SPELLINGS = table_spellings()


FEATURES: Tuple[Feature, ...] = (
    Feature("privileged, booleans with values", (
        "--privileged", "--privileged=true", "--privileged=T", "--privileged=1",
        "--privileged=True", "--privileged=false", "--privileged=0", "--privileged=F",
        "--privileged=FALSE", "--privileged --privileged=false", "--privileged=f --privileged",
        "--privileged=TRUE", "--privileged=t", "--privileged=yes", "--privileged false",
    )),
    Feature("short clusters and detach", (
        "-~dit", "-it~d", "-i~dt", "~-d", "~--detach", "~--detach=true", "-~dv{src}:{dst}",
        "-itv {src}:{dst}", "-tv{src}:{dst}:ro", "-tv={src}:{dst}", "-~diP", "-itu 0",
        "-i~dtv {src}:{dst}:ro", "-iv={vol}:{dst}",
    )),
    Feature("value-swallowing traps", (
        "-l -d -l --volume={src}:{dst}", "--label --detach --label --pid=host", "-e --privileged",
        "--env --privileged", "-l -itv -l {src}:{dst}", "--label=-v --label {src}:{dst}",
        "-e -v -e {src}:{dst}", "-u --privileged", "-w -v", "--label --network --label host",
        "-l --cap-add=ALL", "--hostname --ipc=host", "-e -dv{src}:{dst}",
    )),
    Feature("--pid", (
        "--pid host", "--pid=host", "--pid HOST", "--pid=host --pid=", "--pid container:{peer}",
        "p:--pid=host --pid=private", "p:--pid ns:/proc/self/ns/pid",
    )),
    Feature("--ipc", (
        "--ipc host", "--ipc=host", "d:--ipc HOST", "p:--ipc HOST", "--ipc=host --ipc=private",
        "--ipc=private --ipc=host", "--ipc shareable", "--ipc none", "--ipc container:{peer}",
        "p:--ipc ns:/proc/self/ns/ipc",
    )),
    Feature("--uts", (
        "--uts host", "--uts=host --uts=", "--uts Host", "p:--uts=host --uts=private",
        "p:--uts ns:/proc/self/ns/uts",
    )),
    Feature("--userns", (
        "--userns host", "--userns=host --userns=", "--userns HOST",
        "p:--userns ns:/proc/self/ns/user",
    )),
    Feature("--cgroupns", (
        "--cgroupns host", "--cgroupns=private", "--cgroupns=host --cgroupns=private",
        "--cgroupns=private --cgroupns=host", "--cgroupns HOST",
        "p:--cgroupns ns:/proc/self/ns/cgroup",
    )),
    Feature("--network, --net, docker's CSV form", (
        "--net host", "--network=host", "--network host", "--net=HOST", "--network name=host",
        "--net Name=HOST", "--network=NAME=host,alias=a", "--network bridge", "--network none",
        "--network=name=bridge", "--net container:{peer}", "--network host --network bridge",
        "--network '\"name=host\"'", "p:--network ns:/proc/self/ns/net", "p:--network private",
    )),
    Feature("--cap-add, --cap-drop", (
        "--cap-add ALL", "--cap-add all", "--cap-add=sys_admin", "--cap-add cap_sys_admin",
        "--cap-add=CAP_NET_ADMIN", "--cap-add SYS_ADMIN,NET_ADMIN",
        "--cap-add cap_sys_ptrace --cap-add=net_raw", "--cap-add CHOWN", "--cap-add=",
        "--cap-add Cap_Sys_Time", "--cap-drop ALL --cap-add NET_ADMIN",
        "--cap-drop net_raw", "--cap-drop=all", "--cap-add SYS_ADMIN --cap-drop sys_admin",
        "--cap-add=ALL --cap-drop=CHOWN", "--cap-add NOT_A_CAP", "--cap-add all,sys_admin",
        "--cap-add CAP_ALL",
    )),
    Feature("--device", (
        "--device /dev/null", "--device=/dev/zero:/dev/z:rw", "--device /dev/full:/dev/f",
        "--device=/dev/null:r", "--device /dev/zero:/dev/z0 --device /dev/null:/dev/n0",
        "--device /dev/nonexistent", "--device /dev/pts",
    )),
    Feature("--security-opt", (
        "--security-opt seccomp=unconfined", "--security-opt seccomp:unconfined",
        "--security-opt=label=disable", "--security-opt label:disable",
        "--security-opt no-new-privileges", "--security-opt no-new-privileges:true",
        "--security-opt=no-new-privileges=true", "--security-opt apparmor=unconfined",
        "--security-opt systempaths=unconfined", "--security-opt Seccomp=unconfined",
        "--security-opt seccomp=unconfined --security-opt no-new-privileges",
        "p:--security-opt unmask=ALL",
    )),
    Feature("-v/--volume: host paths ro/rw, named, anonymous, relative", (
        "-v {src}:{dst}", "-v {src}:{dst}:ro", "-v {src}:{dst}:rw", "--volume={src}:{dst}:ro",
        "--volume {src}:{dst}", "-v{src}:{dst}", "-v={src}:{dst}:ro", "-v {vol}:{dst}",
        "-v {vol}:{dst}:ro", "-v {dst}", "--volume={dst}", "-v ..:{dst}", "-v ./:{dst}:ro",
        "-v .:{dst}", "-v {src}:{dst}:ro -v {src}:{dst}x", "-v {dst}:ro", "-v {src}:{dst}:RO",
        "-v {src}:{dst}:ro,rw", "-v {vol}:{dst}:rw,ro",
    )),
    Feature("--mount CSV forms", (
        "--mount type=bind,src={src},dst={dst}",
        "--mount Type=BIND,Source={src},Target={dst},readonly",
        "--mount type=bind,source={src},target={dst},ro",
        "--mount type=bind,src={src},dst={dst},ro=false",
        "--mount=type=bind,src={src},destination={dst},readonly=true",
        "--mount type=bind,src={src},dst={dst},ro=1",
        "--mount src={src},dst={dst},type=bind,ro=true",
        "--mount type=bind,src={src},dst={dst},readonly,ro=false",
        "--mount type=bind,src=/tmp,source={src},dst={dst}",
        "--mount type=volume,src={src},dst={dst},type=bind",
        "--mount src={src},dst={dst}",
        "--mount type=volume,src={vol},dst={dst}",
        "--mount type=volume,source={vol},target={dst},readonly",
        "--mount type=volume,dst={dst}",
        "--mount type=tmpfs,dst={dst}",
        "--mount type=volume,dst={dst},volume-opt=type=none,volume-opt=o=bind,"
        "volume-opt=device=/etc",
        "--mount type=volume,src={vol},dst={dst},volume-opt=type=none,volume-opt=o=bind,"
        "volume-opt=device=/etc",
        "--mount Type=Volume,Target={dst},Volume-Opt=type=none,Volume-Opt=o=bind,"
        "Volume-Opt=device=/etc",
        "--mount type=bind,src=..,dst={dst}",
        "--mount type=bind,src=./,dst={dst},ro",
        "--mount 'type=bind,\"src={src}\",dst={dst}'",
        "--mount 'type=bind,src={src},dst={dst}\nro'",
        "p:--mount type=devpts,destination={dst}",
        "p:--mount type=bind,src={src},dst={dst},rw",
        "p:--mount type=bind,src={src},dst={dst},ro=true,rw=true",
    )),
    Feature("mounts the CLI or the engine adds", (
        "d:--use-api-socket", "--volumes-from {peer}", "--volumes-from {peer}:ro",
    )),
    Feature("ordinary options", (
        "--tmpfs {dst}", "--read-only", "-p 8080", "--restart=always", "-w /tmp", "-u 1000",
        "--hostname h", "-P", "--init", "--label a=b", "--read-only=false", "--rm=false",
        "-e A=1 -e B", "p:--env-host",
    )),
    Feature("refused by us: --rm, our labels, unknown and run-only options", (
        "--rm", "--label {ns}.managed=0", "--privilege", "--Privileged", "--cap_add=ALL",
        "---privileged", "--net-host", "-V {src}:{dst}", "--sig-proxy=false",
        "--detach-keys=ctrl-x", "p:--log-level=warn",
    )),
    Feature("--link (docker): another container's environment", (
        "d:--link {peer}", "d:--link {peer}:alias", "d:--link={peer}:{peer}",
        "d:--link /{peer}:/x/alias", "d:--link {peer}:a --link {peer}:b",
        "d:--link {peer}:a --link={peer}:a", "d:--link {peer} --network none",
        "d:--link {peer} --network host", "d:--link {uniq}", "d:--link ' {peer}'",
        "d:--link {peer}:", "d:--link={peer}:a:b",
    )),
    Feature("--log-driver, --log-opt", (
        "--log-driver none", "--log-driver=local", "--log-driver json-file",
        "--log-driver=json-file --log-opt max-size=1m --log-opt max-file=2",
        "--log-driver none --log-driver json-file", "--log-driver json-file --log-driver=none",
        "--log-driver JSON-FILE", "--log-driver=journald", "--log-driver nonexistent",
        "--log-driver=", "--log-driver local --log-driver=", "--log-opt max-size=1m",
        "--log-driver ' none'", "d:--log-driver syslog", "d:--log-opt mode=non-blocking",
        "p:--log-driver k8s-file", "p:--log-driver=k8s-file --log-opt path={uniq}.log",
    )),
    Feature("repeated and conflicting options: the last wins, or they add up", (
        "--cap-add NET_ADMIN --cap-add SYS_TIME", "--cap-add sys_admin --cap-drop ALL",
        "--cap-drop ALL --cap-add sys_admin", "--device /dev/null --device /dev/zero",
        "--device /dev/null --device /dev/null:/dev/n2",
        "--security-opt label=disable --security-opt no-new-privileges=false",
        "--security-opt seccomp=unconfined --security-opt seccomp=unconfined",
        "-v {src}:{dst} -v {src}:{dst}", "-v {src}:{dst}:ro --mount type=bind,src={src},dst={dst}x",
        "--mount type=bind,src={src},dst={dst} --mount type=bind,src={src},dst={dst},ro",
        "--network none --network bridge", "--network bridge --network host",
        "--net=host --network=none", "--pid host --pid container:{peer}", "--uts host --uts ''",
        "--userns host --userns=''", "--ipc=host --ipc=shareable", "--read-only --read-only=false",
        "--tmpfs {dst} -v {src}:{dst}", "--privileged=false --privileged --privileged=0",
        "-v {vol}:{dst} -v {vol}:{dst}x:ro", "--volumes-from {peer} --volumes-from {peer}:ro",
    )),
    Feature("CSV quoting and spacing in --mount and --network", (
        "--mount '\"type=bind\",src={src},dst={dst}'",
        "--mount 'type=bind,src={src},dst={dst},\"readonly\"'",
        "--mount 'type=bind,src=\"{src}\",dst={dst}'",
        "--mount '\"type=bind,src={src}\",dst={dst}'",
        "--mount 'type=bind,src={src},dst={dst},readonly=\"true\"'",
        "--mount 'type=bind,src={src},dst={dst},'", "--mount 'type=bind, src={src},dst={dst}'",
        "--mount 'type=bind,src={src} ,dst={dst}'", "--mount ' type=bind,src={src},dst={dst}'",
        "--mount 'type=bind,,src={src},dst={dst}'", "--mount 'type= bind,src={src},dst={dst}'",
        "--mount 'type=bind,src={src},dst={dst},readonly '",
        "--mount 'type=bind\tsrc={src},dst={dst}'",
        "--network '\"name=host\",alias=a'", "--network 'name=\"host\"'", "--network name=host,",
        "--network ' name=host'", "--network 'name= host'", "--network name=bridge,name=host",
        "--network name=host,name=bridge", "--network 'name=host\t'", "--network ,name=host",
    )),
    Feature("non-ASCII in values the engine case-folds or splits (refused by us)", (
        "--mount type=bİnd,src={src},dst={dst}", "--mount TYPE=bİnd,source={src},target={dst}",
        "--mount type=bİnd,src={src},dst={dst},readonly",
        "--mount type=volume,dst={dst},volume-drİver=local",
        "--mount type=bind,src={src},dst={dst},bİnd-propagation=rshared",
        "--mount type=bind,src={src},destİnation={dst}",
        "--mount type=bind,src={src},dst={dst},bind-propagation=rsharİd",
        "d:--network name=contaİner:{peer}", "d:--network NAME=host,alİas=a",
        "--cap-add ſys_admin", "--cap-add sys_admın", "--cap-add=cap_ſys_ptrace",
        "--cap-drop ALL --cap-add ſYS_ADMIN", "--cap-drop ſys_admin",
        "--cap-add NET_ADMIN,ſYS_ADMIN", "--security-opt ſeccomp=unconfined",
        "--security-opt no-new-prİvileges",
        "--log-opt max-sİze=1m", "--ulimit nofİle=1024:2048",
        "--sysctl net.ipv4.İp_forward=1",
    ), refused_by_us="non-ASCII"),
    Feature("non-ASCII elsewhere: the engine refuses it, or means what describe() says", (
        "--network contaİner:{peer}", "--pid hoſt", "--ipc contaİner:{peer}",
        "--userns HOſT", "--uts hoſt", "--log-driver jſon-file", "--device /dev/nuİl",
        "-v {src}:{dst}:rö", "--privileged=ı", "--security-opt label=dİsable",
        "--mount type=volume,dst={dst},volume-opt=type=none,volume-opt=o=bİnd,"
        "volume-opt=device=/etc",
    )),
    Feature(
        "every option of the options table (runopts.py), with a sensible value",
        tuple(sorted(OPTION_SPELLINGS.values())),
        chunk=6,
    ),
)  # fmt: skip

# Host paths for {src}: the root, ordinary and sensitive ones, the host root through
# procfs, the docker socket through the /var/run symlink, `..` in the path.
SOURCES = (
    "/", "/etc", "/etc/", "//etc", "/proc/self/root", "/proc/1/root", "/var/run/docker.sock",
    "/var/run/../etc", "/etc/../etc", "/tmp", "/run",
)  # fmt: skip
# For each spelling alone: sources both engines create binds of (podman refuses a source
# it cannot stat: /var/etc, and /proc/1/root where procfs hides pid 1).
EXISTING_SOURCES = ("/", "/etc", "//etc", "/proc/self/root", "/var/run/docker.sock", "/etc/../etc")

# (engine, spelling) -> (field, why): a known disagreement between describe() and the
# engine. The spelling is left out of the generated argvs and checked on its own: the
# test fails when it stops disagreeing, so fix the code, then delete the entry.
KNOWN_DISAGREEMENTS: Dict[Tuple[str, str], Tuple[str, str]] = {
    # docker records no link for an empty alias (moby registerLink); describe() reports
    # the peer: stricter than the engine, no bypass
    ("docker", "--link {peer}:"): ("links", "docker drops a link with an empty alias"),
    # Fixed, kept here as the record of what this test found (the spellings now run
    # with the others): `--ipc HOST` / `--net=HOST` (docker keeps the case: no host
    # mode; describe() now too, the policy still refuses them case-blind),
    # `--use-api-socket` (docker's CLI binds the engine socket: describe() says so),
    # `--volumes-from` (docker copies the peer's mounts at create: describe() records
    # them), `--device DIR` on podman (every device file under it).
}

# The container whose namespaces and mounts {peer} names (created, never started).
PEER_ARGS = ["--volume=/etc:/peer-etc:ro"]
PODMAN_FALSE = ("0", "f", "false")  # strconv.ParseBool, lower-cased
DELIBERATE = "non-ASCII"  # a refusal of our parser that is no syntax error: a choice
ANONYMOUS_VOLUME = re.compile(r"^[0-9a-f]{64}$")  # the name both engines give one
SECURITY_ALIASES = {"systempaths": "unmask"}  # docker's name, podman's: unmasks /proc, /sys
NAMESPACES = ("pid", "ipc", "uts", "userns", "cgroupns", "network")
INSPECT_MODE = {  # HostConfig's field; podman calls CgroupnsMode CgroupMode
    "pid": "PidMode", "ipc": "IpcMode", "uts": "UTSMode", "userns": "UsernsMode",
    "cgroupns": "CgroupnsMode", "network": "NetworkMode",
}  # fmt: skip
SPEC_NAMESPACE = {
    "pid": "pid", "ipc": "ipc", "uts": "uts", "userns": "user", "cgroupns": "cgroup",
    "network": "network",
}  # fmt: skip


# -- generation ---------------------------------------------------------------------------


@dataclass
class Case:
    label: str  # "alone: SPELLING", "seed S #I", or "known: SPELLING"
    argv: List[str]  # as an artifact writes it (`run` arguments)
    create_argv: List[str]  # the same for `create`: without the detach words/letters
    volumes: List[str] = field(default_factory=list)  # named volumes it may create
    spellings: List[str] = field(default_factory=list)  # the FEATURES spellings it joins
    known: Optional[Tuple[str, str]] = None  # (field, why) for a KNOWN_DISAGREEMENTS check
    must_refuse: str = ""  # our side must refuse it (alone: with this in the reason)
    compared: bool = False
    refused: str = ""  # why we refuse it ("" if we accept it)
    parse_error: Optional[RunArgsError] = None
    run: Optional[RunArgs] = None
    rendered: List[str] = field(default_factory=list)
    results: Dict[str, Created] = field(default_factory=dict)  # "written"/"rendered"

    def show(self) -> str:
        return shlex.join(self.argv)


@dataclass
class Created:
    name: str
    ok: bool
    error: str = ""
    info: Optional[Dict[str, Any]] = None
    config: Optional[Dict[str, Any]] = None  # podman's stored container config


def expand(
    spelling: str, rng: random.Random, ctx: Dict[str, Any], sources: Sequence[str] = SOURCES
) -> Tuple[List[str], List[str], List[str]]:
    """A spelling's words for `run` and for `create`, and the named volumes it uses."""
    ctx["n"] += 1
    volume = f"{ctx['prefix']}-v{ctx['n']}"
    text = spelling.format(
        src=rng.choice(sources),
        dst=f"/d{ctx['n']}",
        vol=volume,
        peer=ctx["peer"],
        ns=DEFAULT_LABEL_NAMESPACE,
        uniq=f"{ctx['prefix']}-f{ctx['n']}",
    )
    run_words: List[str] = []
    create_words: List[str] = []
    for word in shlex.split(text):
        if word.startswith("~"):
            run_words.append(word[1:])
            continue
        run_words.append(word.replace("~d", "d"))
        create_words.append(word.replace("~d", ""))
        assert create_words[-1] != "-", spelling
    return run_words, create_words, [volume] if "{vol}" in spelling else []


def respell(words: Sequence[str], engine: str, rng: random.Random) -> Optional[List[str]]:
    """The same options in other pflag spellings (aliases, `=` or not, short letters,
    clusters, bool words), or None when our parser refuses `words`. What it means is
    only what the engine says: a wrong reading of ours shows in the comparison."""
    try:
        run = parse(words, engine)
    except RunArgsError:
        return None
    if run.positionals:
        return None
    grammar = GRAMMARS[engine]
    aliases = {name: [a for a, t in grammar.aliases.items() if t == name] for name in grammar.long}
    out: List[str] = []
    cluster = ""  # short bools waiting for the next argument
    for use in run.uses:
        option = grammar.long[use.option]
        name = rng.choice([use.option, *aliases[use.option]])
        short = option.short
        if option.kind == "bool":
            if use.value == "true" and short and rng.random() < 0.6:
                cluster += short
                continue
            word = rng.choice(["true", "1", "T", "TRUE", ""] if use.value == "true" else
                              ["false", "0", "F", "False"])  # fmt: skip
            out += [f"-{cluster}"] if cluster else []
            cluster = ""
            out.append(f"--{name}={word}" if word else f"--{name}")
            continue
        value = use.value
        forms = ["long=", "long "]
        if short:
            forms += ["short "] + (["short", "short="] if value and value[0] != "=" else [])
        form = rng.choice(forms)
        if form.startswith("short"):
            head = f"-{cluster}{short}"
            cluster = ""
            out += {
                "short ": [head, value],
                "short": [head + value],
                "short=": [f"{head}={value}"],
            }[form]
            continue
        out += [f"-{cluster}"] if cluster else []
        cluster = ""
        out += [f"--{name}={value}"] if form == "long=" else [f"--{name}", value]
    return out + ([f"-{cluster}"] if cluster else [])


def generate(engine: str, count: int, peer: str, prefix: str, start: int = 0) -> List[Case]:
    """Each spelling alone (or a feature's `chunk` together), then `count` argvs of 1-4
    features (each in a random spelling; sometimes one feature twice: conflicting
    options; a third of them respelled), then the known disagreements. `start`: the
    number of the first random argv (a benchmark generates in batches)."""
    excluded = {spelling for (eng, spelling) in KNOWN_DISAGREEMENTS if eng == engine}
    pool = [
        (feature, tuple(s for s in feature.for_engine(engine) if s not in excluded))
        for feature in FEATURES
    ]
    pool = [(feature, spellings) for feature, spellings in pool if spellings]
    cases: List[Case] = []

    def add(
        label: str,
        chosen: Sequence[Tuple[Feature, str]],
        rng: random.Random,
        sources: Sequence[str] = SOURCES,
    ) -> Case:
        ctx: Dict[str, Any] = {"n": 0, "peer": peer, "prefix": f"{prefix}-{start}-{len(cases)}"}
        case = Case(label, [], [], spellings=[spelling for _, spelling in chosen])
        for feature, spelling in chosen:
            run_words, create_words, volumes = expand(spelling, rng, ctx, sources)
            case.argv += run_words
            case.create_argv += create_words
            case.volumes += volumes
            case.must_refuse = case.must_refuse or feature.refused_by_us
        cases.append(case)
        return case

    if start == 0:
        alone = random.Random(f"{SEEDS[0]}-{engine}-alone")
        for feature, spellings in pool:
            for at in range(0, len(spellings), feature.chunk):
                group = spellings[at : at + feature.chunk]
                add(f"alone: {' '.join(group)}", [(feature, s) for s in group], alone,
                    EXISTING_SOURCES)  # fmt: skip
    rngs = {seed: random.Random(f"{seed}-{engine}-{start}") for seed in SEEDS}
    for number in range(start, start + count):
        seed = SEEDS[number % len(SEEDS)]
        rng = rngs[seed]
        features = rng.sample(pool, rng.randint(1, 4))
        if rng.random() < 0.25:  # the same option twice or more: which one wins?
            features.append(rng.choice(features))
        case = add(
            f"seed {seed} #{number // len(SEEDS)}",
            [(feature, rng.choice(spellings)) for feature, spellings in features],
            rng,
        )
        if rng.random() < 1 / 3:
            again = respell(case.create_argv, engine, rng)
            if again is not None:
                case.label += " respelled"
                case.argv = case.create_argv = again
    if start == 0:
        for (eng, spelling), known in KNOWN_DISAGREEMENTS.items():
            if eng == engine:
                feature = Feature("known", (spelling,))
                add(f"known: {spelling}", [(feature, spelling)], random.Random(0)).known = known
    return cases


# the rule find_violations is given: it matches nothing generated, so what the policy
# reports is what it refuses under every rule (quotes in --mount, non-ASCII, ...)
_ANY_RULE = Policy(deny=("--pod-id-file=/nonexistent/x",))
_DIGEST = "sha256:" + "0" * 64


def judge_ours(case: Case, engine: str) -> None:
    """Our side: parse, refuse_always, what the policy refuses under any rule; the
    rendered argv."""
    try:
        run = parse(case.argv, engine)
    except RunArgsError as exc:
        case.refused, case.parse_error = f"parse: {exc}", exc
        return
    try:
        refuse_always(run, "run_args", DEFAULT_LABEL_NAMESPACE, engine)
    except MetadataError as exc:
        case.refused = f"refuse_always: {exc}"
        return
    rendered = run.without("name", "detach").render()
    planned = PlannedContainer(f"example.com/x@{_DIGEST}", "c", tuple(rendered), run)
    try:
        unclear = describe(run).unclear
        found = [v for v in find_violations([planned], _ANY_RULE) if v.rule != "--pod-id-file"]
    except (ValueError, DeploymentError) as exc:
        case.refused = f"policy: {exc}"
        return
    if unclear:
        case.refused = f"unclear (refused by any policy): {unclear}"
        return
    if found:
        case.refused = f"policy (under any rule): {'; '.join(map(str, found))}"
        return
    case.run = run
    case.rendered = rendered


# -- the engines ----------------------------------------------------------------------------


class Engine:
    """One engine's CLI (docker, or podman with its own store), run in `cwd`."""

    def __init__(self, name: str, cwd: Path, store: Optional[PodmanStore] = None) -> None:
        self.name = name
        self.cwd = cwd
        self.store = store
        self.env = {**os.environ, **(store.env if store else {})}
        self.prefix = unique("diff").lower()  # of every container and volume name
        self.image = ""
        self.peer = ""
        self.containers: List[str] = []
        self.baseline: List[str] = []  # setup()'s containers: kept by cleanup(keep_baseline)
        self.serial = itertools.count()  # numbers the created containers (thread-safe)
        self.volumes: List[str] = []
        # podman: the bounding capabilities of a container without arguments and of
        # one with --cap-add ALL
        self.default_caps: FrozenSet[str] = frozenset()
        self.all_caps: FrozenSet[str] = frozenset()
        self.log_default = ""  # the log driver of a container without --log-driver

    def setup(self, image: str) -> None:
        """The image (podman: pulled into its store), the peer container {peer} names,
        and what a container gets without arguments (podman: its capabilities, and
        those of --cap-add ALL; the log driver)."""
        if self.store is not None:
            pulled = self.cli("pull", "-q", image, timeout=300)
            assert pulled.returncode == 0, pulled.stderr
        self.image = image
        self.peer = f"{self.prefix}-peer"
        peer_args = ["--ipc=shareable", *PEER_ARGS] if self.name == "docker" else PEER_ARGS
        baseline = [self.create(self.peer, peer_args)]
        if self.store is not None:
            baseline.append(self.create(f"{self.prefix}-all-caps", ["--cap-add=ALL"]))
        self.baseline = [c.name for c in baseline]
        assert all(c.ok for c in baseline), [c.error for c in baseline]
        self.inspect(baseline)
        assert baseline[0].info is not None
        self.log_default = baseline[0].info["HostConfig"]["LogConfig"]["Type"]
        if self.store is not None:
            self.default_caps, self.all_caps = [
                frozenset(
                    norm_cap(c)
                    for c in created.config["spec"]["process"]["capabilities"]["bounding"]
                )
                for created in baseline
                if created.config is not None
            ]

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.name, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            cwd=self.cwd,
        )

    def create(self, name: str, argv: Sequence[str]) -> Created:
        self.containers.append(name)
        proc = self.cli("create", f"--name={name}", "--pull=never", *argv, self.image)
        if proc.returncode != 0:
            return Created(name, False, (proc.stderr.strip() or proc.stdout.strip())[:400])
        return Created(name, True)

    def inspect(self, created: Sequence[Created]) -> None:
        names = [c.name for c in created if c.ok]
        for start in range(0, len(names), 100):
            chunk = names[start : start + 100]
            proc = self.cli("container", "inspect", *chunk)
            assert proc.returncode == 0, proc.stderr
            found = {info["Name"].lstrip("/"): info for info in json.loads(proc.stdout)}
            for item in created:
                if item.name in found:
                    item.info = found[item.name]
        if self.store is not None:
            configs = podman_configs(self.store, [c.info["Id"] for c in created if c.info])
            for item in created:
                if item.info:
                    item.config = configs[item.info["Id"]]

    def cleanup(self, keep_baseline: bool = False) -> None:
        """Remove the containers and volumes created so far (not setup()'s with
        `keep_baseline`: a benchmark cleans up after each batch)."""
        kept = set(self.baseline) if keep_baseline else set()
        # newest first: the peer goes after the containers joining its namespaces
        names = [n for n in self.containers[::-1] if n not in kept]
        for start in range(0, len(names), 100):
            self.cli("rm", "-f", "-v", *names[start : start + 100])
        listed = self.cli("ps", "-a", "--format", "{{.Names}}", "--filter", f"name={self.prefix}")
        left = [n for n in listed.stdout.split() if n not in kept]
        if left:
            self.cli("rm", "-f", "-v", *left)
        self.containers = [n for n in self.containers if n in kept]
        volumes = self.cli("volume", "ls", "-q").stdout.split()
        mine = [v for v in volumes if v in set(self.volumes)]
        if mine:
            self.cli("volume", "rm", "-f", *mine)
        self.volumes.clear()


def podman_configs(store: PodmanStore, ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """The container configs podman stored at create (with the OCI spec it will run):
    its sqlite database (podman >= 4.8 may use one) or the bolt one, read as bytes
    (every value is a JSON document: find the container's by its id)."""
    libpod = store.graphroot / "libpod"
    found: Dict[str, Dict[str, Any]] = {}
    if (libpod / "db.sql").exists():
        uri = f"file:{libpod / 'db.sql'}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as db:
            for cid in ids:
                row = db.execute("SELECT JSON FROM ContainerConfig WHERE ID=?", (cid,)).fetchone()
                assert row, f"podman container {cid} not in {libpod / 'db.sql'}"
                found[cid] = json.loads(row[0])
        return found
    text = (libpod / "bolt_state.db").read_bytes().decode("latin-1")
    decoder = json.JSONDecoder()
    for cid in ids:
        copies: List[Dict[str, Any]] = []
        at = text.find(f'"id":"{cid}"')
        while at >= 0:
            start = text.rfind('{"spec":', 0, at)
            try:
                config, _ = decoder.raw_decode(text, start) if start >= 0 else ({}, 0)
            except ValueError:
                config = {}
            if config.get("id") == cid:
                copies.append(config)
            at = text.find(f'"id":"{cid}"', at + 1)
        assert copies, f"podman container {cid}: no config in {libpod / 'bolt_state.db'}"
        assert all(c["spec"] == copies[0]["spec"] for c in copies), f"{cid}: stale copies differ"
        found[cid] = copies[0]
    return found


# -- the two views --------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """What a container gets on the host, in terms both sides can say."""

    privileged: bool
    namespaces: Tuple[Tuple[str, str], ...]  # (option, class): host, container, ns:PATH, private
    caps: Optional[FrozenSet[str]]  # added (upper case, no CAP_; {"ALL"} for all)
    devices: Optional[Tuple[str, ...]]  # host paths, a sorted set (podman keeps one of two)
    security: FrozenSet[str]  # option keys
    # (kind, source, read-only), a sorted set: a bind's normalised host path, a named
    # volume's name ("" for an anonymous one), "" for a tmpfs
    mounts: Tuple[Tuple[str, str, bool], ...]
    driver_opt_volumes: int  # volumes with driver options (the local driver mounts them)
    links: FrozenSet[str]  # --link peers (names)
    log_driver: str

    def differences(self, other: View) -> List[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


def ns_class(mode: str) -> str:
    if mode == "host":
        return "host"
    if mode.startswith("container:"):
        return "container"
    if mode.startswith("ns:"):
        return mode
    return "private"


def norm_host_path(path: str, cwd: Path) -> str:
    if not path.startswith("/"):
        path = posixpath.join(str(cwd), path)
    return "/" + posixpath.normpath(path).lstrip("/")


def norm_cap(cap: str) -> str:
    cap = cap.strip().upper()
    return cap[4:] if cap.startswith("CAP_") else cap


def security_key(opt: str) -> str:
    key = opt.split("=", 1)[0] if "=" in opt else opt.split(":", 1)[0]
    key = key.strip().lower()
    return SECURITY_ALIASES.get(key, key)


def device_files(path: str) -> List[str]:
    """podman's --device with a directory: every device file under it."""
    if not os.path.isdir(path):
        return [path]
    found = []
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            if stat.S_ISCHR(os.lstat(full).st_mode) or stat.S_ISBLK(os.lstat(full).st_mode):
                found.append(full)
    return found


def peer_mounts(access: Access, engine: Engine) -> List[Mount]:
    """docker copies a --volumes-from peer's mounts at create (podman when it starts)."""
    if engine.name != "docker":
        return []
    peer = describe(parse(PEER_ARGS, "docker")).mounts
    return [
        replace(m, readonly=m.readonly or source.readonly)
        for source in access.mounts
        if source.kind == "volumes-from"
        for m in peer
    ]


def hidden_by_podman(opt: str) -> bool:
    """podman's inspect shows no-new-privileges only when it is on."""
    key, _, value = opt.partition("=")
    return key == "no-new-privileges" and value in PODMAN_FALSE


def ours_view(access: Access, engine: Engine) -> View:
    namespaces = []
    for option in NAMESPACES:
        modes = access.namespaces.get(option)
        if not modes:
            mode = "private"
        elif option == "network" and engine.name == "podman":  # joins them all
            mode = "host" if "host" in modes else ns_class(modes[0])
        else:
            mode = ns_class(modes[-1])
        namespaces.append((option, mode))
    caps = frozenset(access.cap_add)
    if "ALL" in caps:
        caps = frozenset({"ALL"})
    kinds = ("bind", "volume", "tmpfs") if engine.name == "docker" else ("bind", "volume")
    mounts = [*access.mounts, *peer_mounts(access, engine)]
    if engine.name == "podman":
        caps = (engine.all_caps if "ALL" in caps else caps) - engine.default_caps
    return View(
        privileged=access.privileged,
        namespaces=tuple(namespaces),
        caps=caps,
        devices=tuple(
            sorted(
                set(access.devices)
                if engine.name == "docker"
                else {f for d in access.devices for f in device_files(d)}
            )
        ),
        security=frozenset(
            security_key(opt)
            for opt in access.security_opts
            if engine.name == "docker" or not hidden_by_podman(opt)
        ),
        mounts=tuple(
            sorted(
                {
                    (
                        m.kind,
                        norm_host_path(m.source, engine.cwd) if m.kind == "bind" else m.source,
                        m.readonly,
                    )
                    for m in mounts
                    if m.kind in kinds
                }
            )
        ),
        driver_opt_volumes=sum(1 for m in access.mounts if m.kind == "volume" and m.driver_opts),
        links=frozenset(name.lstrip("/") for name in access.links),
        log_driver=access.log_driver or engine.log_default,
    )


def engine_mounts(
    mounts: Sequence[Dict[str, Any]], engine: Engine, kinds: Sequence[str]
) -> Tuple[Tuple[str, str, bool], ...]:
    """(kind, source, read-only) of the mounts `inspect` lists, as View.mounts says."""
    out = set()
    for m in mounts:
        if m["Type"] not in kinds:
            continue
        source = ""
        if m["Type"] == "bind":
            source = norm_host_path(m["Source"], engine.cwd)
        elif m["Type"] == "volume" and not ANONYMOUS_VOLUME.match(m.get("Name") or ""):
            source = m.get("Name") or ""
        out.add((m["Type"], source, not m["RW"]))
    return tuple(sorted(out))  # a set: an engine keeps one of two identical mounts


def docker_view(info: Dict[str, Any], engine: Engine) -> View:
    host = info["HostConfig"]
    namespaces = [(option, ns_class(host.get(INSPECT_MODE[option]) or "")) for option in NAMESPACES]
    caps = frozenset(norm_cap(c) for c in host.get("CapAdd") or [])
    if "ALL" in caps:
        caps = frozenset({"ALL"})
    security = {security_key(opt) for opt in host.get("SecurityOpt") or []}
    if host.get("MaskedPaths") == []:
        security.add("unmask")
    mounts = info.get("Mounts") or []
    return View(
        privileged=bool(host.get("Privileged")),
        namespaces=tuple(namespaces),
        caps=caps,
        devices=tuple(sorted({d["PathOnHost"] for d in host.get("Devices") or []})),
        security=frozenset(security),
        mounts=engine_mounts(mounts, engine, ("bind", "volume", "tmpfs")),
        driver_opt_volumes=sum(
            1
            for m in host.get("Mounts") or []
            if m.get("Type") == "volume"
            and ((m.get("VolumeOptions") or {}).get("DriverConfig") or {}).get("Options")
        ),
        links=frozenset(
            link.split(":", 1)[0].lstrip("/")
            for link in [
                *(host.get("Links") or []),
                *(
                    link
                    for network in (
                        (info.get("NetworkSettings") or {}).get("Networks") or {}
                    ).values()
                    for link in (network or {}).get("Links") or []
                ),
            ]
        ),
        log_driver=(host.get("LogConfig") or {}).get("Type") or "",
    )


def podman_view(info: Dict[str, Any], config: Dict[str, Any], engine: Engine) -> View:
    host = info["HostConfig"]
    spec = config["spec"]
    present = {ns["type"] for ns in (spec.get("linux") or {}).get("namespaces") or []}
    namespaces = []
    for option in NAMESPACES:
        key = "CgroupMode" if option == "cgroupns" else INSPECT_MODE[option]
        mode = host.get(key) or ""
        if not mode.startswith(("container:", "ns:")) and SPEC_NAMESPACE[option] not in present:
            mode = "host"  # no namespace of that type in the spec: the host's
        namespaces.append((option, ns_class(mode)))
    privileged = bool(host.get("Privileged"))
    bounding = (spec.get("process") or {}).get("capabilities", {}).get("bounding") or []
    security = {security_key(opt) for opt in host.get("SecurityOpt") or []}
    if not privileged and not (spec.get("linux") or {}).get("maskedPaths"):
        security.add("unmask")
    mounts = [
        m
        for m in info.get("Mounts") or []
        if m["Type"] == "volume" or (m["Type"] == "bind" and m["Source"].startswith("/"))
    ]  # podman lists devpts and the like as binds of a source "devpts"
    return View(
        privileged=privileged,
        namespaces=tuple(namespaces),
        caps=None if privileged else frozenset(norm_cap(c) for c in bounding) - engine.default_caps,
        devices=None
        if privileged
        else tuple(sorted({d["PathOnHost"] for d in host.get("Devices") or []})),
        security=frozenset(security),
        mounts=engine_mounts(mounts, engine, ("bind", "volume")),
        driver_opt_volumes=sum(
            1
            for m in mounts
            if m["Type"] == "volume"
            and any(o.startswith("volume-opt=") for o in m.get("Options") or [])
        ),
        links=frozenset(),  # podman has no --link
        log_driver=(host.get("LogConfig") or {}).get("Type") or "",
    )


def engine_view(created: Created, engine: Engine) -> View:
    assert created.info is not None
    if engine.name == "docker":
        return docker_view(created.info, engine)
    assert created.config is not None
    return podman_view(created.info, created.config, engine)


def comparable(ours: View, theirs: View, given: Sequence[str], engine: str) -> Tuple[View, View]:
    """Both views without what the comparison must not judge (see the module docstring).
    `given`: the namespace options the argv sets to something other than the default."""
    skip = {"cgroupns"} | ({"userns"} if engine == "podman" else set())
    ns_ours = tuple(item for item in ours.namespaces if item[0] in given or item[0] not in skip)
    ns_theirs = tuple(item for item in theirs.namespaces if item[0] in dict(ns_ours))
    security = theirs.security
    modes = dict(theirs.namespaces)
    if "label" not in ours.security and (
        theirs.privileged or "host" in (modes["pid"], modes["ipc"])
    ):
        security = security - {"label"}  # the engine's own label=disable
    if engine == "podman" and theirs.privileged:
        ours = _replace(ours, security=ours.security - {"unmask"})
    ours = _replace(
        ours,
        namespaces=ns_ours,
        caps=ours.caps if theirs.caps is not None else None,
        devices=ours.devices if theirs.devices is not None else None,
    )
    return ours, _replace(theirs, namespaces=ns_theirs, security=security)


def _replace(view: View, **changes: Any) -> View:
    values = {f.name: getattr(view, f.name) for f in fields(view)}
    values.update(changes)
    return View(**values)


# -- the oracle ------------------------------------------------------------------------------


@dataclass
class Outcome:
    generated: int = 0
    refused_parse: List[Case] = field(default_factory=list)
    refused_always: List[Case] = field(default_factory=list)
    refused_unclear: List[Case] = field(default_factory=list)  # by the policy, any rule
    refused_by_engine: List[Case] = field(default_factory=list)
    compared: int = 0
    must_refuse: int = 0  # argvs our side must refuse (non-ASCII in folded values)
    spellings: Counter[str] = field(default_factory=Counter)  # spelling -> times compared
    table_gaps: List[str] = field(default_factory=list)  # engine accepts, our table lacks
    failures: List[str] = field(default_factory=list)

    @property
    def refused_by_us(self) -> int:
        return len(self.refused_parse) + len(self.refused_always) + len(self.refused_unclear)


def differential(
    engine: Engine, cases: List[Case], outcome: Optional[Outcome] = None, workers: int = WORKERS
) -> Outcome:
    """Create every case on `engine` and compare; adds to `outcome` (a benchmark runs
    batches into one). The containers stay until engine.cleanup()."""
    for case in cases:
        judge_ours(case, engine.name)
    if outcome is None:
        outcome = Outcome()
    outcome.generated += sum(1 for c in cases if c.known is None)

    def create(case: Case) -> None:
        base = f"{engine.prefix}-c{next(engine.serial)}"
        case.results["written"] = engine.create(f"{base}-w", case.create_argv)
        if not case.refused:
            case.results["rendered"] = engine.create(f"{base}-r", case.rendered)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(create, cases))
    engine.inspect([r for c in cases for r in c.results.values()])

    for case in cases:
        written = case.results.get("written")
        assert written is not None
        if case.must_refuse:
            outcome.must_refuse += 1
            alone = case.label.startswith("alone:")
            if not case.refused or (alone and case.must_refuse not in case.refused):
                outcome.failures.append(
                    f"{engine.name}: our side must refuse this ({case.must_refuse}):\n"
                    f"  argv: {case.show()}\n  ours: {case.refused or 'accepted'}\n"
                    f"  {engine.name}: {written.error or 'created'}"
                )
        if case.parse_error is not None:
            outcome.refused_parse.append(case)
            if written.ok and DELIBERATE not in str(case.parse_error):
                if str(case.parse_error).startswith("unknown option"):
                    outcome.table_gaps.append(f"{case.show()}: {case.parse_error}")
                else:
                    outcome.failures.append(
                        f"{engine.name} accepts what our parser calls a syntax error:\n"
                        f"  argv: {case.show()}\n  ours: {case.parse_error}"
                    )
            continue
        if case.refused:
            always = case.refused.startswith("refuse_always")
            (outcome.refused_always if always else outcome.refused_unclear).append(case)
            continue
        assert case.run is not None
        rendered = case.results["rendered"]
        if not written.ok or not rendered.ok:
            if written.ok != rendered.ok:
                outcome.failures.append(
                    f"{engine.name}: the argv as written and the module's rendering differ:\n"
                    f"  argv: {case.show()}\n  rendered: {shlex.join(case.rendered)}\n"
                    f"  written: {written.error or 'created'}\n"
                    f"  rendered: {rendered.error or 'created'}"
                )
            else:
                outcome.refused_by_engine.append(case)
            continue
        case.compared = True
        if case.known is None:
            outcome.compared += 1
            outcome.spellings.update(case.spellings)
        view_written, view_rendered = engine_view(written, engine), engine_view(rendered, engine)
        if view_written != view_rendered:
            outcome.failures.append(
                f"{engine.name}: the argv as written and the module's rendering differ in "
                f"{view_written.differences(view_rendered)}:\n  argv: {case.show()}\n"
                f"  rendered: {shlex.join(case.rendered)}\n"
                f"  written: {view_written}\n  rendered: {view_rendered}"
            )
        access = describe(case.run)
        given = tuple(option for option, modes in access.namespaces.items() if modes[-1])
        ours, theirs = comparable(ours_view(access, engine), view_rendered, given, engine.name)
        differ = ours.differences(theirs)
        if case.known is not None:
            if case.known[0] not in differ:
                outcome.failures.append(
                    f"{engine.name}: known disagreement no longer disagrees in {case.known[0]!r} "
                    f"(delete it from KNOWN_DISAGREEMENTS): {case.show()}"
                )
        elif differ:
            outcome.failures.append(
                f"{engine.name}: describe() and the engine disagree in {differ}:\n"
                f"  argv: {case.show()}\n"
                + "".join(
                    f"  {name}: ours {getattr(ours, name)!r}, {engine.name} "
                    f"{getattr(theirs, name)!r}\n"
                    for name in differ
                )
            )
    for case in cases:
        if case.known is not None and not case.compared:
            why = case.refused or " / ".join(r.error for r in case.results.values() if r.error)
            outcome.failures.append(
                f"{engine.name}: known disagreement {case.show()!r} is refused now ({why}): "
                "delete it from KNOWN_DISAGREEMENTS"
            )
    return outcome


def summary(engine: str, outcome: Outcome, known: int, seconds: float) -> str:
    """The figures in one line."""
    return (
        f"[{engine}] generated {outcome.generated}, refused by us {outcome.refused_by_us}"
        f" (parse {len(outcome.refused_parse)}, refuse_always {len(outcome.refused_always)}, "
        f"policy under any rule {len(outcome.refused_unclear)}; of all, non-ASCII that must be "
        f"refused {outcome.must_refuse}), refused by the engine "
        f"{len(outcome.refused_by_engine)}, compared {outcome.compared}, "
        f"disagreements and other failures {len(outcome.failures)}, "
        f"known disagreements {known}, {seconds:.1f} s"
    )


def report(engine: str, cases: Sequence[Case], outcome: Outcome, seconds: float) -> None:
    print("\n" + summary(engine, outcome, sum(1 for c in cases if c.known), seconds))
    ours = Counter(
        c.refused.split(":")[0] + ": " + c.refused.split(": ", 1)[1].split(" (")[0][:70]
        for c in outcome.refused_parse + outcome.refused_always + outcome.refused_unclear
    )
    for reason, count in ours.most_common(8):
        print(f"  we refused x{count}: {reason}")
    accepted = [
        c.show()
        for c in outcome.refused_always + outcome.refused_unclear
        if c.results["written"].ok
    ]
    print(f"  of those refused by refuse_always or the policy, {engine} creates {len(accepted)}")
    reasons = Counter(
        c.results["written"].error.splitlines()[0][:110] for c in outcome.refused_by_engine
    )
    for reason, count in reasons.most_common(12):
        print(f"  engine refused x{count}: {reason}")
    for gap in outcome.table_gaps:
        print(f"  engine accepts an option our table lacks: {gap}")
    spellings = {s for case in cases if case.known is None for s in case.spellings}
    never = sorted(spellings - set(outcome.spellings))
    print(
        f"  spellings: {len(spellings)}, compared on {engine} at least once: "
        f"{len(spellings) - len(never)}; always refused (by us or {engine}): {never}"
    )


def run_differential(engine: Engine, count: int) -> Outcome:
    started = time.monotonic()
    cases = generate(engine.name, count, engine.peer, engine.prefix)
    engine.volumes += [v for c in cases for v in c.volumes]
    try:
        outcome = differential(engine, cases)
    finally:
        engine.cleanup()
    report(engine.name, cases, outcome, time.monotonic() - started)
    return outcome
