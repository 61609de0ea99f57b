"""A power cut and a boot of a podman device, simulated on one PodmanStore.

Podman has no daemon: containers are processes under their `conmon`, and the
state a reboot loses lives in tmpfs (/run, /dev/shm). `power_cut` makes the
store look exactly like that after a reboot, touching nothing of anyone else
on this machine: it SIGKILLs each running container's conmon (first, so it
cannot run its exit command: no cleanup, no restart by the policy) and the
container's init (the kernel then kills the rest of its PID namespace),
removes runc's state of those containers (/run/runc/<id>, and their cgroups),
unmounts what podman mounted under the store, and wipes the store's runroot
and tmp_dir: podman tells a reboot by the missing `alive` file in tmp_dir,
and the store's file locks live there too.

The containers must not use a bridge network: a real reboot would also clear
the firewall rules, IPAM entries and network namespaces netavark set up for
them, which are shared with every podman on this machine.

`boot` then runs what podman-restart.service runs at boot, read from the unit
file itself.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, List

from tests.realstack import PodmanStore, process_gone, require, run

RESTART_UNIT = Path("/lib/systemd/system/podman-restart.service")


def restart_service_command(unit: Path = RESTART_UNIT) -> List[str]:
    """The unit's ExecStart as an argument list, without its $LOGGING variable."""
    if not unit.is_file():
        raise AssertionError(f"{unit} is missing: the podman package installs it")
    lines = [line.strip() for line in unit.read_text().splitlines()]
    found = [line.split("=", 1)[1] for line in lines if line.startswith("ExecStart=")]
    if len(found) != 1:
        raise AssertionError(f"{unit}: expected one ExecStart line, found {found}")
    argv = [arg for arg in shlex.split(found[0]) if arg not in ("$LOGGING", "${LOGGING}")]
    if not os.path.isabs(argv[0]) or os.path.basename(argv[0]) != "podman":
        raise AssertionError(f"{unit}: ExecStart does not run podman: {found[0]}")
    return argv


def power_cut(store: PodmanStore, timeout: float = 60) -> List[str]:
    """Everything running in `store` dies as in a power cut; the store's tmpfs
    state is gone as after a reboot. Returns the IDs of the containers that ran."""
    require("runc")
    ids = store.run("ps", "-q", "--no-trunc").stdout.split()
    if not ids:
        raise AssertionError("no container runs: nothing to cut the power of")
    found: List[Dict[str, object]] = json.loads(store.run("container", "inspect", *ids).stdout)
    for item in found:
        state = item["State"]
        assert isinstance(state, dict)
        network = item.get("NetworkSettings") or {}
        assert isinstance(network, dict)
        if network.get("SandboxKey"):
            raise AssertionError(f"container {item['Name']} has a network namespace: "
                                 "power_cut needs containers without a bridge network")
    pids: List[int] = []
    for field in ("ConmonPid", "Pid"):  # conmon first: it must not see its container die
        for item in found:
            state = item["State"]
            assert isinstance(state, dict)
            pid = int(state.get(field) or 0)
            if pid > 0:
                os.kill(pid, signal.SIGKILL)
                pids.append(pid)
    deadline = time.monotonic() + timeout
    while not all(process_gone(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise AssertionError(f"processes {pids} did not die within {timeout:g} s")
        time.sleep(0.1)
    for container_id in ids:  # runc keeps its state in /run/runc, a tmpfs on a device
        run(["runc", "delete", "--force", container_id], check=False)
    store.unmount_all()
    shutil.rmtree(store.runroot, ignore_errors=True)
    shutil.rmtree(store.tmp_dir, ignore_errors=True)
    return ids


def boot(store: PodmanStore) -> subprocess.CompletedProcess[str]:
    """What podman-restart.service runs at boot, on `store` (its first podman command
    since the power cut: podman refreshes its state from there)."""
    return run(restart_service_command(), env={**os.environ, **store.env}, timeout=300)
