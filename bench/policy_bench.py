"""Benchmark: parse, plan and check the run arguments of adversarial meta-data.

    python bench/policy_bench.py [--containers 1000] [--baseline 1b3ec1e] [--timeout 120]

The device's work in Download before anything is pulled: parse the meta-data, plan
the containers for docker, judge them against `deny_run_args = dangerous` (and,
where the shape is about binds, `allow_run_args = safe, bind=/srv`), with 1000
containers already on the device writing through binds of their own. Issues 10 and
19 ask for under 1 s whatever the input within the size limits. Shapes:

  shared-100k      N containers sharing ~100 KB of run_args + ~0.5 KB each (issue 10)
  same-bind-1000   1000 copies of `-v /srv/a:/a` (13 KB; quadratic before: 22-31 s)
  same-bind-1500   1500 copies, as in a Download
  dangling-value   126 KB of run_args ending in `-e`, whose value each of 20
                   containers' container_args gives (re-parsed per container before)
  many-binds       1000 containers, each binding its own /srv/app/N writable
  non-ascii        1000 `--mount` values with Unicode case variants (refused)

Each shape goes through our code and the code of `--baseline` (a git revision, by
default the last before issue 19) in its own process; a baseline that takes longer
than --timeout is cut and shown as such. The original module had no policy at all:
its shell split the words, so there is no third column. Prints seconds and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
DIGEST = "sha256:" + "ab" * 32

TIMED = """
import json, sys, time
from mender_docker.spec import parse_metadata_json
from mender_docker.module.policy import check, policy_from_settings
text = open(sys.argv[1]).read()
settings = json.loads(sys.argv[2])
elsewhere = ["/srv/other/%d" % i for i in range(1000)]  # what 1000 containers can write
start = time.perf_counter()
meta = parse_metadata_json(text)
try:
    plan = meta.plan("docker")
except TypeError:  # before the one-parser design plan() took no engine
    plan = meta.plan()
try:
    check(plan, policy_from_settings(settings), writable_elsewhere=elsewhere)
except TypeError:  # before issue 19 the policy did not know what containers write
    try:
        check(plan, policy_from_settings(settings))
    except Exception:
        pass
except Exception:  # a refusal is an answer too
    pass
print(json.dumps({"seconds": time.perf_counter() - start, "containers": len(plan)}))
"""
DANGEROUS = {"deny_run_args": "dangerous"}
SAFE_SRV = {"allow_run_args": "safe, bind=/srv"}


def images(count: int) -> list:
    return [f"registry.example.com/app{i}@{DIGEST}" for i in range(count)]


def shared(count: int) -> str:
    common = []
    while sum(map(len, common)) < 100_000:
        i = len(common)
        common.append(f"-e VAR_{i}=value-{i} --label app.setting.{i}=on -p {10000 + i}:80")
    own = [
        " ".join(f"-e OWN_{i}_{k}=x{k}" for k in range(40))[:500] + f" --name app-{i}"
        for i in range(count)
    ]
    return json.dumps({"containers": images(count), "run_args": " ".join(common),
                       "container_args": own})  # fmt: skip


def same_bind(copies: int) -> str:
    return json.dumps({"containers": images(1), "run_args": " ".join(["-v /srv/a:/a"] * copies)})


def dangling_value(count: int = 20) -> str:
    common = []
    while len(" ".join(common)) < 126_000:
        common.append(f"-e VAR_{len(common)}=v")
    own = [f"OWN_{i}=x" for i in range(count)]
    return json.dumps({"containers": images(count), "run_args": " ".join(common) + " -e",
                       "container_args": own})  # fmt: skip


def many_binds(count: int) -> str:
    own = [f"-v /srv/app/{i}:/data" for i in range(count)]
    return json.dumps({"containers": images(count), "container_args": own})


def non_ascii(count: int) -> str:
    variants = ("type=b\u0130nd", "TYPE=bind", "type=bind,b\u0130nd-propagation=rshared")
    args = [f"--mount {variants[i % 3]},src=/srv/x{i},dst=/x{i}" for i in range(count)]
    return json.dumps({"containers": images(1), "run_args": " ".join(args)})


def shapes(count: int) -> list:
    return [
        ("shared-100k", shared(count), DANGEROUS),
        ("same-bind-1000", same_bind(1000), DANGEROUS),
        ("same-bind-1500", same_bind(1500), SAFE_SRV),
        ("dangling-value", dangling_value(), DANGEROUS),
        ("many-binds", many_binds(count), SAFE_SRV),
        ("non-ascii", non_ascii(count), DANGEROUS),
    ]


def measure(source: Path, path: str, settings: dict, timeout: float) -> Optional[float]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", TIMED, path, json.dumps(settings)],
            env={**os.environ, "PYTHONPATH": str(source)},
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None
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
    parser.add_argument("--baseline", default="1b3ec1e", help="git revision ('' to skip)")
    parser.add_argument("--timeout", type=float, default=120.0)
    options = parser.parse_args()
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="policy-bench-") as tmp:
        base = baseline_source(options.baseline, Path(tmp)) if options.baseline else None
        print(f"{'shape':16} {'KiB':>5} {'ours s':>8} {options.baseline or '-':>10} {'ratio':>8}")
        for name, text, settings in shapes(options.containers):
            path = os.path.join(tmp, f"{name}.json")
            Path(path).write_text(text)
            ours = measure(ROOT / "src", path, settings, options.timeout)
            assert ours is not None, f"{name}: ours took over {options.timeout} s"
            worst = max(worst, ours)
            line = f"{name:16} {len(text) // 1024:5} {ours:8.3f}"
            if base is not None:
                before = measure(base, path, settings, options.timeout)
                if before is None:
                    cut = f">{options.timeout:g}"
                    line += f" {cut:>10} {'>' + format(options.timeout / ours, '.0f') + 'x':>8}"
                else:
                    line += f" {before:10.3f} {before / ours:7.1f}x"
            print(line)
    verdict = "yes" if worst < 1 else "NO"
    print(f"worst shape: {worst:.3f} s (issues 10 and 19 ask for under 1 s: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
