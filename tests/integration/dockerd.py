"""Restart the real dockerd the way a device reboot or a daemon crash would."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.realstack import run


def dockerd_pid() -> int:
    pid = Path("/var/run/docker.pid")
    return int(pid.read_text().strip())


def restart_dockerd(timeout: float = 60) -> None:
    """Stop dockerd (SIGTERM, as at shutdown), start it again, wait until it answers."""
    pid = dockerd_pid()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    log = open("/var/log/mender-docker-dockerd.log", "ab")
    subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    while time.monotonic() < deadline:
        if run(["docker", "info"], check=False, timeout=10).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("dockerd did not come back after a restart")
