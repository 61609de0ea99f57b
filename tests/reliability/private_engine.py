"""A second, private dockerd with its data root on a small tmpfs.

Real Docker Engine, but only ours: other suites on this machine (which stop every
container they see, or restart the shared daemon) cannot disturb it, we can
restart it, and its disk can be filled without hurting anyone.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

from tests.realstack import EngineCli, require, run


class PrivateDockerd:
    def __init__(self, root: Path, size_mb: int = 256) -> None:
        require("dockerd", "docker", "mount", "umount", "ip")
        self.root = root
        self.size_mb = size_mb
        self.data = root / "data"
        self.socket = root / "docker.sock"
        self.pidfile = root / "docker.pid"
        self.host = f"unix://{self.socket}"
        self.env: Dict[str, str] = {**os.environ, "DOCKER_HOST": self.host}
        self.mounted = False
        self.proc: Optional[subprocess.Popen[bytes]] = None
        # A bridge of our own. Never `--bridge none`: that makes dockerd DELETE the
        # host's docker0 interface, breaking the machine's own dockerd.
        self.bridge = f"rel{uuid.uuid4().hex[:8]}"
        self.subnet = f"10.213.{random.randint(0, 255)}.1/24"
        self.bridge_made = False

    def argv(self) -> List[str]:
        return [
            "dockerd", "--data-root", str(self.data / "root"),
            "--exec-root", str(self.root / "exec"), "-H", self.host,
            "--pidfile", str(self.pidfile), "--bridge", self.bridge, "--iptables=false",
            "--ip-masq=false", "--storage-driver", "overlay2",
            # dockerd retries a broken layer download 5 times (50 s of back-off); once
            # is enough to show the behaviour and keeps the fault matrix fast
            "--max-download-attempts", "2",
        ]  # fmt: skip

    def start(self) -> None:
        if not self.mounted:
            self.data.mkdir(parents=True, exist_ok=True)
            run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m", "tmpfs", str(self.data)])
            self.mounted = True
        if not self.bridge_made:
            run(["ip", "link", "add", self.bridge, "type", "bridge"])
            self.bridge_made = True
            run(["ip", "addr", "add", self.subnet, "dev", self.bridge])
            run(["ip", "link", "set", self.bridge, "up"])
        log = open(self.root / "dockerd.log", "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log, start_new_session=True)
        self.wait_up()

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.docker("info", check=False).returncode == 0:
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"private dockerd did not start: {self.log_tail()}")

    def log_tail(self) -> str:
        return (self.root / "dockerd.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        """SIGTERM, as at shutdown: dockerd stops its containers and exits."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["docker", *args], check=check, env=self.env)

    def cli(self) -> EngineCli:
        """This dockerd as the tests' engine view (and the module's, through the client)."""
        return EngineCli("docker", docker_host=self.host)

    def close(self) -> None:
        if self.proc is not None:
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
        self.stop()
        if self.mounted:
            run(["umount", "-l", str(self.data)], check=False)
            self.mounted = False
        if self.bridge_made:
            run(["ip", "link", "del", self.bridge], check=False)
            self.bridge_made = False

