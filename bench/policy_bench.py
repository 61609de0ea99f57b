"""Benchmark: parse and check the run arguments of many containers (issue 10's bound).

    python bench/policy_bench.py [--containers 1000] [--baseline 2430ed9]

Meta-data with N containers sharing ~100 KB of `run_args` plus ~0.5 KB of their own
`container_args` each (the module's limit for all of them together is 1 MiB), then
the device's work in Download before anything is pulled: parse the meta-data,
plan the containers for docker, judge them against `deny_run_args = dangerous`.
Issue 10 asks for under 1 s. The same input goes through the code of `--baseline`
(a git revision: by default the last one before the one-parser design, which took
about a minute) in its own process. The original module had no policy at all: its
shell split the words, so there is no third column. Prints seconds and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIGEST = "sha256:" + "ab" * 32

TIMED = """
import json, sys, time
from mender_docker.spec import parse_metadata_json
from mender_docker.module.policy import check, policy_from_settings
text = open(sys.argv[1]).read()
start = time.perf_counter()
meta = parse_metadata_json(text)
try:
    plan = meta.plan("docker")
except TypeError:  # before the one-parser design plan() took no engine
    plan = meta.plan()
check(plan, policy_from_settings({"deny_run_args": "dangerous"}))
print(json.dumps({"seconds": time.perf_counter() - start, "containers": len(plan)}))
"""


def metadata(count: int) -> str:
    common = []
    while sum(map(len, common)) < 100_000:
        i = len(common)
        common.append(f"-e VAR_{i}=value-{i} --label app.setting.{i}=on -p {10000 + i}:80")
    own = [
        " ".join(f"-e OWN_{i}_{k}=x{k}" for k in range(40))[:500] + f" --name app-{i}"
        for i in range(count)
    ]
    images = [f"registry.example.com/app{i}@{DIGEST}" for i in range(count)]
    return json.dumps({"containers": images, "run_args": " ".join(common), "container_args": own})


def measure(source: Path, path: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", TIMED, path],
        env={**os.environ, "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(done.stdout)["seconds"])


def baseline_source(revision: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--baseline", default="2430ed9", help="git revision ('' to skip)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="policy-bench-") as tmp:
        path = os.path.join(tmp, "meta-data")
        text = metadata(options.containers)
        Path(path).write_text(text)
        ours = measure(ROOT / "src", path)
        print(f"input: {options.containers} containers, {len(text) // 1024} KiB of meta-data")
        verdict = "yes" if ours < 1 else "NO"
        print(f"ours:      {ours:8.3f} s   (issue 10 asks for under 1 s: {verdict})")
        if options.baseline:
            before = measure(baseline_source(options.baseline, Path(tmp)), path)
            print(f"{options.baseline}:  {before:8.3f} s   ratio {before / ours:.0f}x faster now")
    return 0


if __name__ == "__main__":
    sys.exit(main())
