"""The README's first command, `scripts/demo`, on both Mender clients: it must end with
its OK line (v1, v2, a broken v3 rolled back, an explicit rollback, a client killed
during ArtifactInstall then resumed or undone) and leave nothing behind."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

import pytest

from tests.realstack import CLIENTS, require_engine, run

DEMO = Path(__file__).resolve().parent.parent / "scripts" / "demo.py"


def demo_containers() -> List[str]:
    """Containers named like the demo's (`demo-web`, renamed `demo-web-mender-prev-...`)."""
    names = run(["docker", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
    return [name for name in names if name.startswith("demo-web")]


@pytest.mark.real
@pytest.mark.parametrize("client", CLIENTS, ids=[f"mender-{c}" for c in CLIENTS])
def test_demo_runs_end_to_end(client: str) -> None:
    require_engine()
    assert demo_containers() == []
    proc = run([sys.executable, str(DEMO), "--client", client], check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    binary = "mender-update" if client == "5.1" else "mender"
    assert f"DEMO OK ({binary} {client})" in proc.stdout, proc.stdout[-3000:]
    if client == "5.1":
        assert "resume" in proc.stdout, proc.stdout[-3000:]
    assert demo_containers() == [], "the demo left containers behind"
