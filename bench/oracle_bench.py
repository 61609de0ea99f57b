"""The differential oracle at scale: 10,000+ generated run-argument sets on a real engine.

    python bench/oracle_bench.py [--engine docker|podman|both] [--count 10000]
                                 [--batch 400] [--workers 3] [--failures FILE]
                                 [--start N]

The machinery is tests/hostile/differential.py's (the CI test runs a few hundred
sets): every spelling alone, then `--count` random sets of 1-4 features, each
created (never started) as written and as the module renders it; `inspect` is
compared with `policy.describe()` on every field the policy judges. Batches are
removed as they finish, so the engine never holds more than one batch. Prints the
count, the refusals by each side and the disagreements (which must be zero: the
exit status is 1 otherwise, with every failure written to `--failures`).
`--start N` re-runs the random sets from number N on (without the "alone" ones):
generation is seeded per batch, so `--start 3200 --count 400` is that batch again.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.hostile.differential import Engine, Outcome, differential, generate, summary  # noqa: E402
from tests.realstack import (  # noqa: E402
    ImageFactory,
    PodmanStore,
    Registry,
    require_engine,
    require_podman,
    unique,
)


def run_engine(
    name: str,
    image: str,
    work: Path,
    count: int,
    batch: int,
    workers: int,
    registry: Registry,
    start: int = 0,
) -> Outcome:
    store: Optional[PodmanStore] = None
    if name == "podman":
        require_podman()
        store = PodmanStore(work / "podman", registries=[registry.host])
    engine = Engine(name, work / f"{name}-cwd", store)
    engine.cwd.mkdir()
    outcome = Outcome()
    known = 0
    started = time.monotonic()
    try:
        engine.setup(image)
        done = 0
        while done < count or done == 0:
            size = min(batch, count - done) if count else 0
            cases = generate(name, size, engine.peer, engine.prefix, start=start + done)
            known += sum(1 for c in cases if c.known)
            engine.volumes += [v for c in cases for v in c.volumes]
            seen = len(outcome.failures)
            differential(engine, cases, outcome, workers)
            engine.cleanup(keep_baseline=True)
            for failure in outcome.failures[seen:]:  # as they come: a long run shows them early
                print(failure, flush=True)
            done += size
            rate = outcome.generated / (time.monotonic() - started)
            print(
                f"  {name}: {outcome.generated} sets, {outcome.compared} compared, "
                f"{len(outcome.failures)} failures ({rate:.1f} sets/s)",
                flush=True,
            )
            if not size:
                break
    finally:
        engine.cleanup()
        if store is not None:
            store.cleanup()
    print(summary(name, outcome, known, time.monotonic() - started), flush=True)
    return outcome


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--engine", choices=("docker", "podman", "both"), default="docker")
    parser.add_argument("--count", type=int, default=10_000, help="random sets per engine")
    parser.add_argument("--batch", type=int, default=400, help="sets created before cleanup")
    parser.add_argument("--workers", type=int, default=3, help="parallel creates")
    parser.add_argument("--failures", type=Path, default=Path("oracle-failures.txt"))
    parser.add_argument("--start", type=int, default=0, help="number of the first random set")
    args = parser.parse_args(argv)
    if args.count < 0 or args.start < 0 or args.batch < 1 or args.workers < 1:
        print("oracle_bench: --count, --start >= 0; --batch, --workers >= 1", file=sys.stderr)
        return 2
    require_engine()
    engines = ("docker", "podman") if args.engine == "both" else (args.engine,)
    failures: List[str] = []
    with tempfile.TemporaryDirectory(prefix="oracle-bench-") as temp:
        work = Path(temp)
        registry = Registry(work / "registry")
        registry.start()
        factory = ImageFactory(registry, work)
        try:
            image = factory.build(unique("oracle"), cmd=["sleep", "3600"])
            for name in engines:
                outcome = run_engine(
                    name, image, work, args.count, args.batch, args.workers, registry, args.start
                )
                failures += outcome.failures
        finally:
            factory.cleanup()
            registry.stop()
    if failures:
        args.failures.write_text("\n".join(failures) + "\n")
        print(f"{len(failures)} failures, written to {args.failures}", file=sys.stderr)
        return 1
    print("no disagreement")
    return 0


if __name__ == "__main__":
    sys.exit(main())
