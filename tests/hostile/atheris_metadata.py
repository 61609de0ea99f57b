"""Coverage-guided fuzzing of the meta-data parser with atheris (libFuzzer), bounded.

Not part of pytest (atheris is not a dev dependency): run it by hand or in a
nightly job. It feeds arbitrary bytes, read as the module reads
`header/meta-data` (UTF-8), to `spec.parse_metadata_json`; anything but
MetadataError, or an accepted document whose plan is unsafe, is a crash that
libFuzzer reports with the input that caused it.

    pip install atheris
    python tests/hostile/atheris_metadata.py                  # 30 s, bounded
    python tests/hostile/atheris_metadata.py -runs=200000 CORPUS_DIR
Any libFuzzer flag given on the command line replaces the default bound.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from typing import List

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

with atheris.instrument_imports():
    from mender_docker.module.policy import PolicyError, check, policy_from_settings
    from mender_docker.spec import NAME_RE, MetadataError, parse_metadata_json

POLICY = policy_from_settings({"deny_run_args": "dangerous", "allowed_registries": "docker.io"})
SEEDS = [
    b'{"containers":["busybox@sha256:' + b"0" * 64 + b'"],"run_args":"-p 80:80 --name web"}',
    b'{"containers":["r.example.com/a@sha256:' + b"1" * 64 + b'","b@sha256:' + b"2" * 64
    + b'"],"names":["a",""],"container_args":["-v /:/h","--cap-add=ALL"],"stop_timeout":3}',
]  # fmt: skip


def one_input(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # the module reports this as a MetadataError before parsing
    try:
        meta = parse_metadata_json(text)
    except MetadataError as exc:
        if "\n" in str(exc):
            raise AssertionError(f"multi-line error: {exc!r}") from None
        return
    planned = meta.plan()
    names = [item.name for item in planned]
    if len(set(names)) != len(names) or not all(NAME_RE.fullmatch(n) for n in names):
        raise AssertionError(f"unsafe names accepted: {names!r}")
    for item in planned:
        for arg in item.args:
            if "\x00" in arg:
                raise AssertionError(f"NUL in an accepted argument: {arg!r}")
            arg.encode("utf-8")
    if parse_metadata_json(meta.to_json()) != meta:
        raise AssertionError("accepted meta-data does not survive a round trip")
    try:
        check(planned, POLICY)
    except PolicyError:
        pass


def main(argv: List[str]) -> None:
    args = list(argv)
    if not any(a.startswith(("-runs=", "-max_total_time=")) for a in args[1:]):
        args.append("-max_total_time=30")
    if not any(not a.startswith("-") for a in args[1:]):
        # No corpus directory given: fuzz in a child process from the seeds in a
        # temporary corpus, removed afterwards (libFuzzer exits without returning).
        corpus = tempfile.mkdtemp(prefix="atheris-metadata-")
        try:
            for index, seed in enumerate(SEEDS):
                with open(os.path.join(corpus, f"seed-{index}"), "wb") as handle:
                    handle.write(seed)
            child = subprocess.run([sys.executable, *args, corpus], check=False)
        finally:
            shutil.rmtree(corpus, ignore_errors=True)
        sys.exit(child.returncode)
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
