"""Restart the real dockerd the way a device reboot or a daemon crash would."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.realstack import process_gone, run


def dockerd_pid() -> int:
    pid = Path("/var/run/docker.pid")
    return int(pid.read_text().strip())


def restart_dockerd(timeout: float = 60) -> None:
    """Stop dockerd (SIGTERM, as at shutdown), start it again, wait until it answers.

    The daemon may be a child of this process (an earlier restart started it): once it
    exits it stays a zombie until reaped, so "gone" means gone or a zombie."""
    pid = dockerd_pid()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"dockerd (pid {pid}) did not stop within {timeout:g} s")
        time.sleep(0.2)
    log = open("/var/log/mender-docker-dockerd.log", "ab")
    subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run(["docker", "info"], check=False, timeout=10).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("dockerd did not come back after a restart")
