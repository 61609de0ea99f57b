"""A device with our module behind an engine shim, and checks of its end state.

Shared by the crash sweep (pytest and the `crash_sweep.py` script) and the
fault matrix. Every rig uses its own label namespace, so concurrent runs and
other engineers' containers are never looked at nor touched.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from tests.integration.conftest import Deployer
from tests.realstack import DEVICE_TYPE, EngineCli, ImageFactory, MenderDevice, run, unique

SHIM = Path(__file__).with_name("engine_shim.py")
TERMINAL_PHASES = ("failed", "cleaned", "rolled-back")
# PID 1 of a container ignores SIGTERM unless it traps it: exit at once, stops stay fast
QUICK_EXIT = ["sh", "-c", 'trap "exit 0" TERM; sleep 3600 & wait']


def real_engine(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"missing real component: {name}")
    return found


@dataclass
class Container:
    id: str
    name: str
    image: str
    state: str


class Rig:
    """The real Mender client running our module, whose engine is the shim.

    The module is installed under a payload type of its own (`docker-rel<hex>`) and
    the artifacts carry that type: the client's module directory is shared with the
    other test suites on this machine, which install their own `docker` module."""

    def __init__(
        self,
        device: MenderDevice,
        factory: ImageFactory,
        work: Path,
        module: Path,
        engine: EngineCli,
    ) -> None:
        self.work = work
        self.engine = engine
        suffix = unique("rel").replace("-", "")
        self.namespace = f"io.test.{suffix}"
        self.type_name = f"docker-{suffix}"
        device.use_module(module, self.type_name)
        self.shim_dir = work / "shim"
        self.shim_dir.mkdir(parents=True, exist_ok=True)
        # named after the engine: the module tells podman by its binary's name
        self.shim = self.shim_dir / f"{engine.name}-shim"
        shutil.copy2(SHIM, self.shim)
        self.shim.chmod(0o755)
        self.arm(state="")
        self.deployer = Deployer(device, factory, work, engine)  # gives the client engine.env
        self.deployer.write_conf(
            engine=str(self.shim),
            label_namespace=self.namespace,
            stop_timeout="1",
            health_window="0.5",
            health_timeout="10",
            command_timeout="60",
            pull_retries="0",
        )
        self.device = device

    def artifact(
        self, name: str, *images: str, extra: Sequence[str] = (), drop: Sequence[str] = ()
    ) -> Path:
        """Our generator's artifact, re-written by mender-artifact with this rig's type
        (and without the meta-data keys in `drop`)."""
        generated = self.deployer.artifact(f"{name}-generated", *images, extra=extra)
        with tarfile.open(generated) as outer:
            header = outer.extractfile(
                next(m for m in outer.getmembers() if m.name.startswith("header.tar"))
            )
            assert header is not None
            with tarfile.open(fileobj=io.BytesIO(header.read())) as inner:
                member = inner.extractfile("headers/0000/meta-data")
                assert member is not None
                meta_data = member.read()
        meta_path = self.work / f"{name}.meta-data"
        if drop:
            meta = json.loads(meta_data)
            meta_data = json.dumps({k: v for k, v in meta.items() if k not in drop}).encode()
        meta_path.write_bytes(meta_data)
        out = self.work / f"{name}.mender"
        run(["mender-artifact", "write", "module-image", "-T", self.type_name, "-n", name,
             "-t", DEVICE_TYPE, "-m", str(meta_path), "--software-name", "docker",
             "-o", str(out)])  # fmt: skip
        generated.unlink()
        return out

    # -- the shim --------------------------------------------------------------------
    def arm(self, state: str, kill_at: int = 0, when: str = "before",
            kill_client: bool = False) -> None:
        """Count the engine calls the module makes in `state`; kill it at call `kill_at`."""
        counter, calls = self.shim_dir / "count", self.shim_dir / "calls"
        counter.write_text("0")
        (self.shim_dir / "count.killed").unlink(missing_ok=True)
        calls.write_text("")
        control = {
            "real": real_engine(self.engine.name), "state": state, "kill_at": kill_at, "when": when,
            "kill_client": kill_client, "counter": str(counter), "calls": str(calls),
        }  # fmt: skip
        (self.shim_dir / "shim.json").write_text(json.dumps(control))

    def killed(self) -> bool:
        return (self.shim_dir / "count.killed").exists()

    def calls(self) -> List[str]:
        lines = (self.shim_dir / "calls").read_text().splitlines()
        return [line.split("\t", 1)[1] for line in lines if "\t" in line]

    # -- what is on the engine -------------------------------------------------------
    def containers(self, all_states: bool = True) -> List[Container]:
        found = self.engine.containers(f"{self.namespace}.managed=1", all_states)
        return [Container(**c) for c in found]

    def running_ids(self) -> List[str]:
        return sorted(c.id for c in self.containers(all_states=False))

    def journal_phase(self) -> str:
        """The phase `mender-docker status` reports (it must parse the journal)."""
        proc = run(["mender-docker", "status", "--data-dir", str(self.deployer.journal)],
                   check=False)
        if proc.returncode != 0:
            raise AssertionError(f"mender-docker status failed: {proc.stderr.strip()}")
        for line in proc.stdout.splitlines():
            if line.startswith("phase:"):
                return line.split(":", 1)[1].strip()
        return "(none)"

    def journal(self) -> Dict[str, object]:
        data: Dict[str, object] = json.loads((self.deployer.journal / "journal.json").read_text())
        return data

    def cleanup(self) -> None:
        self.engine.remove_containers(*[c.id for c in self.containers()])

    def image_present(self, ref: str) -> bool:
        return self.engine.run("image", "inspect", ref, check=False).returncode == 0

    def remove_image(self, ref: str) -> None:
        self.engine.run("image", "rm", "-f", ref, check=False)


def sweep_images(factory: ImageFactory, repo: str) -> Tuple[str, str]:
    """v1 and v2 of a tiny image, pushed and gone from the shared dockerd (where the
    factory builds): the device under test pulls them."""
    images = (factory.build(repo, "v1", cmd=QUICK_EXIT), factory.build(repo, "v2", cmd=QUICK_EXIT))
    factory.cleanup()  # the tags
    for ref in images:  # and the pulled-by-digest names
        remove_image(ref)
    return images


def remove_image(ref: str) -> None:
    """From the machine's shared dockerd (where the factory builds)."""
    run(["docker", "image", "rm", "-f", ref], check=False)


def client_log(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr
