"""The main job, end to end, on local defaults.

Builds two demo web images (and a broken third), pushes them to a local
registry, generates artifacts with our generator, then drives the real Mender
client with our module: install+commit v1, install+commit v2, a broken v3 that
rolls back by itself, and an explicit `mender rollback`. Prints what runs at
each step and leaves the machine as it found it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.realstack import (  # noqa: E402
    DEVICE_TYPE,
    ImageFactory,
    MenderDevice,
    Registry,
    run,
)

PORT = 18080
LABEL = "io.mender.docker.managed"


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def serving() -> str:
    """What the demo web service answers on the host port, or why it does not."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=2) as resp:
            body: bytes = resp.read()
            return body.decode().strip()
    except OSError as exc:
        return f"(not answering: {exc.__class__.__name__})"


def show_state(device: MenderDevice) -> None:
    print(f"   mender show-artifact: {device.show_artifact()}")
    ps = run(
        ["docker", "ps", "-a", "--filter", f"label={LABEL}",
         "--format", "{{.Names}}\t{{.Status}}\t{{.Image}}"]
    ).stdout.strip()
    for line in ps.splitlines() or ["(no containers of ours)"]:
        print(f"   container: {line}")
    print(f"   http://127.0.0.1:{PORT}/ -> {serving()}")


def generate(out: Path, name: str, image: str) -> Path:
    artifact = out / f"{name}.mender"
    run(
        ["docker-artifact-gen", "-n", name, "-t", DEVICE_TYPE, "-o", str(artifact),
         "--run-args", f"-p {PORT}:8080", "--health-window", "2", "--health-timeout", "15",
         image]
    )
    print(f"   generated {artifact.name} for {image}")
    return artifact


def step(device: MenderDevice, verb: str, *args: str) -> bool:
    started = time.monotonic()
    proc = device.mender(verb, *args)
    took = time.monotonic() - started
    ok = proc.returncode == 0
    print(f"   mender {verb} {' '.join(Path(a).name for a in args)}: "
          f"{'OK' if ok else f'FAILED (exit {proc.returncode})'} in {took:.1f}s")
    if not ok:
        ours = [line for line in proc.stderr.splitlines() if "mender-docker" in line]
        for line in ours[-6:]:
            print(f"     | {line.strip()}")
    return ok


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="mender-docker-demo-"))
    registry = Registry(work / "registry")
    factory = ImageFactory(registry, work)
    device = MenderDevice(work / "device")
    conf = work / "mender-docker.conf"
    conf.write_text(f"scope = managed\ndata_dir = {work / 'journal'}\nstop_timeout = 5\n")
    import os

    os.environ["MENDER_DOCKER_CONF"] = str(conf)
    failures: List[str] = []
    try:
        say("starting a local registry")
        registry.start()
        print(f"   docker-registry on {registry.host}")

        say("building and pushing the demo images")
        v1 = factory.http_service("demo/web", "v1")
        v2 = factory.http_service("demo/web", "v2")
        v3 = factory.build("demo/web", "v3-broken", cmd=["sh", "-c", "echo crashing; exit 3"])
        for ref in (v1, v2, v3):
            print(f"   {ref}")
        # The device pulls from the registry: drop the local copies so it really does.
        factory.cleanup()

        say("generating artifacts with docker-artifact-gen")
        a1, a2, a3 = (generate(work, f"demo-{v}", ref) for v, ref in
                      (("v1", v1), ("v2", v2), ("v3-broken", v3)))

        say("installing our update module for the Mender client")
        module = work / "docker-module"
        run(["mender-docker", "build-module", "-o", str(module)])
        device.use_module(module)
        print(f"   /usr/share/mender/modules/v3/docker <- {module.name}")

        say("v1: mender install + commit")
        if not (step(device, "install", str(a1)) and step(device, "commit")):
            failures.append("v1 install")
        show_state(device)

        say("v2: mender install + commit (v1 replaced, its container and image cleaned up)")
        if not (step(device, "install", str(a2)) and step(device, "commit")):
            failures.append("v2 install")
        show_state(device)

        say("v3 (container exits at start): install fails the health gate and rolls back")
        if step(device, "install", str(a3)):
            failures.append("v3 was accepted")
        show_state(device)

        say("v1 again, then an explicit `mender rollback` before commit")
        if not step(device, "install", str(a1)):
            failures.append("v1 re-install")
        show_state(device)
        if not step(device, "rollback"):
            failures.append("rollback")
        show_state(device)
    finally:
        say("cleaning up")
        argv = ["docker", "ps", "-aq", "--filter", f"label={LABEL}"]
        names = run(argv, check=False).stdout.split()
        if names:
            run(["docker", "rm", "-f", *names], check=False)
        argv = ["docker", "images", "-q", f"{registry.host}/demo/web"]
        for ref in run(argv, check=False).stdout.split():
            run(["docker", "image", "rm", "-f", ref], check=False)
        device.restore()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
        print("   containers, images, module and registry restored")
    if failures:
        print(f"\nDEMO FAILED: {', '.join(failures)}")
        return 1
    print("\nDEMO OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
