"""The main job, end to end, on local defaults.

Builds the demo web images (v1, v2, v4, and a broken v3), pushes them to a
local registry, generates artifacts with our generator, then drives the real
Mender client with our module: install+commit v1, install+commit v2, a broken
v3 that rolls back by itself, an explicit rollback, and a client killed
(SIGKILL, with the module it runs) during the ArtifactInstall of v4. Under the
5.1 client (`mender-update`, the default) `commit` is then refused and
`mender-update resume` rolls back to v2; the 3.4 client (`--client 3.4`) has no
resume and forgets the deployment, so the next deployment undoes it first.
Prints what runs after each step and leaves the machine as it found it.

    scripts/demo [--client 5.1|3.4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import List, Optional, Sequence, Set, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.realstack import (  # noqa: E402
    CLIENTS,
    DEVICE_TYPE,
    ImageFactory,
    MenderDevice,
    Registry,
    free_port,
    run,
    unique,
)

DEFAULT_CLIENT = "5.1"
CONTAINER = "demo-web"
# The slow artifact's health gate: the client is killed long before it ends.
SLOW_WINDOW_S = 120
# Module log lines worth showing when a deployment undoes an unfinished one.
UNDO_WORDS = ("rolling", "rolled back", "starting previous", "removing new", "back to")


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def pick_port(preferred: int = 18080) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


class Demo:
    def __init__(self, client: str) -> None:
        self.client = client
        self.work = Path(tempfile.mkdtemp(prefix="mender-docker-demo-"))
        self.port = pick_port()
        # Our own label namespace: the demo sees, and cleans up, only what it made,
        # even while other installations of the module share this dockerd.
        self.namespace = unique("io.mender.demo")
        try:
            self.registry = Registry(self.work / "registry")
            self.factory = ImageFactory(self.registry, self.work)
            self.device = MenderDevice(self.work / "device", client=client)
        except BaseException:  # a missing component: leave nothing behind
            shutil.rmtree(self.work, ignore_errors=True)
            raise
        self.cli = self.device.binary  # `mender` (3.4) or `mender-update` (5.1)
        conf = self.work / "mender-docker.conf"
        conf.write_text(
            f"scope = managed\nlabel_namespace = {self.namespace}\n"
            f"data_dir = {self.work / 'journal'}\nstop_timeout = 5\n"
        )
        self.device.env["MENDER_DOCKER_CONF"] = str(conf)
        self.failures: List[str] = []
        self.client_proc: Optional[subprocess.Popen[bytes]] = None

    # -- showing what runs

    def serving(self) -> str:
        """What the demo web service answers on the host port, or why it does not."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2) as resp:
                body: bytes = resp.read()
                return body.decode().strip()
        except OSError as exc:
            return f"(not answering: {exc.__class__.__name__})"

    def show_state(self) -> None:
        print(f"   {self.cli} show-artifact: {self.device.show_artifact() or '(none)'}")
        ps = run(
            ["docker", "ps", "-a", "--filter", f"label={self.namespace}.managed=1",
             "--format", "{{.Names}}\t{{.Status}}\t{{.Image}}"]
        ).stdout.strip()
        for line in ps.splitlines() or ["(no containers of ours)"]:
            print(f"   container: {line}")
        print(f"   http://127.0.0.1:{self.port}/ -> {self.serving()}")

    def generate(self, name: str, image: str, window: float = 2, timeout: float = 15) -> Path:
        artifact = self.work / f"{name}.mender"
        run(
            ["docker-artifact-gen", "-n", name, "-t", DEVICE_TYPE, "-o", str(artifact),
             "--run-args", f"-p {self.port}:8080", "--name", CONTAINER,
             "--health-window", f"{window:g}", "--health-timeout", f"{timeout:g}", image]
        )
        print(f"   generated {artifact.name} for {image}"
              + (f" (health window {window:g} s)" if window != 2 else ""))
        return artifact

    def step(self, verb: str, *args: str, expect_ok: bool = True, undo_log: bool = False) -> bool:
        """Run one client command; print how it went (and why, when it failed)."""
        started = time.monotonic()
        proc = self.device.mender(verb, *args)
        took = time.monotonic() - started
        ok = proc.returncode == 0
        command = " ".join([self.cli, verb, *(Path(a).name for a in args)])
        print(f"   {command}: {'OK' if ok else f'FAILED (exit {proc.returncode})'} in {took:.1f}s")
        lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines()]
        ours = [line for line in lines if "mender-docker: " in line]  # the module's log
        if undo_log:
            for line in [x for x in ours if any(w in x for w in UNDO_WORDS)][:8]:
                print(f"     | {_message(line)}")
        elif not ok:
            errors = [x for x in lines if "level=error" in x or "severity=error" in x]
            shown = ours[-6:] or errors[-2:]
            for line in shown:
                print(f"     | {_message(line)}")
        if ok != expect_ok:
            self.failures.append(f"{command} {'failed' if expect_ok else 'was accepted'}")
        return ok

    # -- the crash

    def kill_during_install(self, artifact: Path, image: str) -> bool:
        """Start an install, SIGKILL the client and its module once the new container runs.

        Deterministic, no timing: the artifact's health window is long, so
        ArtifactInstall is still holding the gate when the new container
        (found by its image label) is running and answering.
        """
        argv = self.device.argv("install", str(artifact))
        log = open(self.work / "killed-install.log", "wb")
        # A session of its own, killed whole: the client and the module it runs
        # (in a process group of its own under 5.1) die together, as in a power cut.
        self.client_proc = proc = subprocess.Popen(
            argv, stdout=log, stderr=log, env={**os.environ, **self.device.env},
            start_new_session=True,
        )
        log.close()
        label = f"{self.namespace}.image={image}"
        deadline = time.monotonic() + 120
        found = ""
        while time.monotonic() < deadline and proc.poll() is None:
            found = run(["docker", "ps", "-q", "--filter", f"label={label}"]).stdout.strip()
            if found and "v4" in self.serving():
                break
            time.sleep(0.2)
        if proc.poll() is not None or not found:
            tail = (self.work / "killed-install.log").read_text(errors="replace")[-1500:]
            print(f"   the install ended (exit {proc.poll()}) before the new container ran:\n"
                  f"{tail}")
            self.failures.append("v4 never reached the health gate")
            self.stop_client()
            return False
        killed = kill_session(proc.pid)
        proc.wait()
        self.client_proc = None
        print(f"   {self.cli} install {artifact.name}: new container {found[:12]} running, "
              f"in the health gate ({SLOW_WINDOW_S} s window)")
        print(f"   SIGKILL to the client and the module it runs ({killed} processes)")
        return True

    def stop_client(self) -> None:
        proc, self.client_proc = self.client_proc, None
        if proc is not None:
            kill_session(proc.pid)
            proc.wait()

    # -- the whole demo

    def run(self) -> None:
        say(f"the Mender client: {self.cli} {self.client} "
            f"({'C++, what devices run today' if self.client == '5.1' else 'Go, Debian'})")
        say("starting a local registry")
        self.registry.start()
        print(f"   docker-registry on {self.registry.host}")

        say("building and pushing the demo images")
        factory = self.factory
        v1 = factory.http_service("demo/web", "v1")
        v2 = factory.http_service("demo/web", "v2")
        v3 = factory.build("demo/web", "v3-broken", cmd=["sh", "-c", "echo crashing; exit 3"])
        v4 = factory.http_service("demo/web", "v4")
        for ref in (v1, v2, v3, v4):
            print(f"   {ref}")
        # The device pulls from the registry: drop the local copies so it really does.
        factory.cleanup()

        say("generating artifacts with docker-artifact-gen")
        a1 = self.generate("demo-v1", v1)
        a2 = self.generate("demo-v2", v2)
        a3 = self.generate("demo-v3-broken", v3)
        a4 = self.generate("demo-v4-slow", v4, window=SLOW_WINDOW_S, timeout=SLOW_WINDOW_S + 60)

        say(f"installing our update module for {self.cli}")
        module = self.work / "docker-module"
        run(["mender-docker", "build-module", "-o", str(module)])
        self.device.use_module(module)
        print(f"   {self.device.module_dir / 'docker'} <- {module.name}")

        say(f"v1: {self.cli} install + commit")
        if self.step("install", str(a1)):
            self.step("commit")
        self.show_state()

        say(f"v2: {self.cli} install + commit (v1 replaced, its container and image cleaned up)")
        if self.step("install", str(a2)):
            self.step("commit")
        self.show_state()

        say("v3 (container exits at start): install fails the health gate and rolls back")
        self.step("install", str(a3), expect_ok=False)
        self.show_state()

        say(f"v1 again, then an explicit `{self.cli} rollback` before commit")
        if self.step("install", str(a1)):
            self.show_state()
            self.step("rollback")
        self.show_state()

        say("v4: the client is killed (SIGKILL) during ArtifactInstall of v4")
        if not self.kill_during_install(a4, v4):
            return
        self.show_state()
        if self.client == "3.4":
            self.crash_aftermath_34(a1)
        else:
            self.crash_aftermath_51()

    def crash_aftermath_51(self) -> None:
        say("the client kept the interrupted deployment: commit is refused")
        self.step("commit", expect_ok=False)
        self.show_state()
        say(f"`{self.cli} resume`: ArtifactRollback, ArtifactFailure, Cleanup -> v2 again")
        self.step("resume", undo_log=True)
        self.show_state()
        if "v2" not in self.serving():
            self.failures.append("resume did not bring v2 back")

    def crash_aftermath_34(self, next_artifact: Path) -> None:
        say("the 3.4 client has no resume and forgot the deployment: commit has nothing to do")
        self.step("commit", expect_ok=False)
        self.show_state()
        say("so the next deployment (v1) undoes v4 first (v2 comes back), then installs v1")
        if self.step("install", str(next_artifact), undo_log=True):
            self.step("commit")
        self.show_state()
        if "v1" not in self.serving():
            self.failures.append("the deployment after the crash did not bring v1")

    def cleanup(self) -> None:
        say("cleaning up")
        self.stop_client()
        argv = ["docker", "ps", "-aq", "--filter", f"label={self.namespace}.managed=1"]
        ids = run(argv, check=False).stdout.split()
        if ids:
            run(["docker", "rm", "-f", *ids], check=False)
        argv = ["docker", "images", "-q", f"{self.registry.host}/demo/web"]
        for ref in dict.fromkeys(run(argv, check=False).stdout.split()):
            run(["docker", "image", "rm", "-f", ref], check=False)
        self.factory.cleanup()
        self.device.restore()
        self.registry.stop()
        shutil.rmtree(self.work, ignore_errors=True)
        print("   containers, images, module and registry restored")


def kill_session(sid: int) -> int:
    """SIGKILL every process of session `sid` (started with start_new_session).

    The 5.1 client puts the module in a process group of its own (same
    session), so killing the client's group alone would leave the module
    running. Returns how many processes were killed.
    """
    killed: Set[int] = set()
    for _ in range(50):
        members = [pid for pid, session in _sessions() if session == sid]
        if not members:
            break
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    return len(killed)


def _sessions() -> List[Tuple[int, int]]:
    """(pid, session id) of every live process (zombies excluded)."""
    rows = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # state ppid pgrp session ...
        if fields[0] != "Z":
            rows.append((int(entry.name), int(fields[3])))
    return rows


def _message(line: str) -> str:
    """A log line without the client's prefix, kept short."""
    if "mender-docker:" in line:
        line = "mender-docker:" + line.split("mender-docker:", 1)[1]
    elif 'msg="' in line:  # a line of the client's own: its message
        line = "client: " + line.split('msg="', 1)[1]
    line = line.rstrip('"')
    if line.endswith("{...}"):  # the 5.1 client marks where it split the module's output
        line = line[: -len("{...}")]
    return line if len(line) <= 200 else line[:197] + "..."


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", choices=CLIENTS, default=DEFAULT_CLIENT,
                        help=f"the Mender client to drive (default {DEFAULT_CLIENT})")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    demo = Demo(args.client)
    old_sigterm = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        demo.run()
    finally:
        demo.cleanup()
        signal.signal(signal.SIGTERM, old_sigterm)
    if demo.failures:
        print(f"\nDEMO FAILED ({demo.cli} {demo.client}): {', '.join(demo.failures)}")
        return 1
    print(f"\nDEMO OK ({demo.cli} {demo.client})")
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # runs the cleanup


if __name__ == "__main__":
    sys.exit(main())
