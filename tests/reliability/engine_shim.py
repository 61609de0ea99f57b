#!/usr/bin/env python3
"""An engine in front of the real docker CLI that simulates a power cut.

The module runs it as its `engine`. It reads `shim.json` next to itself:
    real        the real engine binary
    state       count only calls made by the module while in this protocol state
    kill_at     0: count only; N: on the N-th counted call, SIGKILL the module
    when        "before" (the docker command never runs) or "after" (it ran)
    kill_client also SIGKILL the Mender client that ran the module
    counter     file holding the count so far (COUNTER.killed appears once it killed)
    calls       file getting one line per counted call: "N<TAB>argv"
Standard library only; the module is this process's parent.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_DIRS = "/modules/v3"  # 3.4: /usr/share/mender/modules/v3; 5.x: $MENDER_DATA_DIR/modules/v3


def module_state(pid: int) -> str:
    """The protocol state the calling module runs: `.../modules/v3/TYPE STATE TREE` in its argv."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return ""
    for index, arg in enumerate(argv[:-1]):
        if os.path.dirname(arg).endswith(MODULE_DIRS):
            return argv[index + 1]
    return ""


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def count_call(control: Dict[str, Any], argv: List[str]) -> int:
    """Number this call (under a lock: the module stops containers in parallel)."""
    with open(control["counter"], "a+", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        handle.seek(0)
        number = int(handle.read().strip() or "0") + 1
        handle.seek(0)
        handle.truncate()
        handle.write(str(number))
        with open(control["calls"], "a", encoding="utf-8") as calls:
            calls.write(f"{number}\t{' '.join(argv)}\n")
    return number


def power_cut(control: Dict[str, Any], module: int) -> None:
    client = parent_of(module)
    with open(control["counter"] + ".killed", "w", encoding="utf-8") as marker:
        marker.write(str(module))
    os.kill(module, signal.SIGKILL)
    if control.get("kill_client"):
        os.kill(client, signal.SIGKILL)


def main() -> int:
    with open(os.path.join(HERE, "shim.json"), encoding="utf-8") as handle:
        control = json.load(handle)
    argv = sys.argv[1:]
    module = os.getppid()
    target = 0
    if control.get("state") and module_state(module) == control["state"]:
        number = count_call(control, argv)
        target = number if number == control.get("kill_at") else 0
    if target and control.get("when", "before") == "before":
        power_cut(control, module)
        return 137
    code = subprocess.call([control["real"], *argv])
    if target:
        power_cut(control, module)
        return 137
    return code


if __name__ == "__main__":
    sys.exit(main())
