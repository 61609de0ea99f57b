"""Every line the client reads from the packed module arrives in one write(2).

The 5.x client takes the first chunk a query writes as its answer and fails on any
further chunk ("Too many lines when querying ..."). What the reader sees as one
chunk depends on timing unless the writer makes one write: so this test counts
the module's write(2) calls on its stdout pipe under strace (ptrace sees every
call, whatever the scheduling), with each of Python's buffering modes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from tests.realstack import require

# write(1, "No\n", 3) = 3   (strace -qq -e trace=write,writev -e signal=none -s 4096)
STDOUT_WRITE = re.compile(r'^(?:write|writev)\(1, .*\)\s+=\s+-?\d+', re.M)
STDERR_WRITE = re.compile(r'^(?:write|writev)\(2, "(.*)", \d+\)\s+=\s+-?\d+', re.M)
BUFFERING: Dict[str, List[str]] = {
    "default": [],
    "unbuffered": ["-u"],  # what PYTHONUNBUFFERED=1 does too
}


def traced(packed: Path, flags: List[str], state: str, tree: Path) -> str:
    """strace's record of the module's writes (stdout and stderr pipes, as under the client)."""
    require("strace")
    trace = tree / f"{state}.trace"
    done = subprocess.run(
        ["strace", "-qq", "-s", "4096", "-e", "trace=write,writev", "-e", "signal=none",
         "-o", str(trace),
         sys.executable, "-I", "-S", *flags, str(packed), state, str(tree)],
        capture_output=True, text=True, check=False,  # stdout: a pipe, as under the client
        env={"MENDER_DOCKER_CONF": str(tree / "conf"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return trace.read_text()


def stdout_writes(packed: Path, flags: List[str], state: str, tree: Path) -> List[str]:
    return [m.group(0) for m in STDOUT_WRITE.finditer(traced(packed, flags, state, tree))]


@pytest.mark.real
@pytest.mark.parametrize("buffering", sorted(BUFFERING))
@pytest.mark.parametrize(
    ("query", "line"),
    [("SupportsRollback", "Yes"), ("NeedsArtifactReboot", "No"), ("ProvidePayloadFileSizes", "No")],
)
def test_each_query_answers_in_one_write(
    packed: Path, tmp_path: Path, buffering: str, query: str, line: str
) -> None:
    writes = stdout_writes(packed, BUFFERING[buffering], query, tmp_path)
    assert len(writes) == 1, f"{query} wrote {len(writes)} chunks: {writes}"
    size = len(line) + 1
    assert re.fullmatch(rf'write\(1, "{line}\\n", {size}\)\s+=\s+{size}', writes[0]), writes


@pytest.mark.real
@pytest.mark.parametrize("buffering", sorted(BUFFERING))
@pytest.mark.parametrize("state", ["ArtifactCommit", "Cleanup", "ArtifactFailure",
                                   "ArtifactVerifyReboot", "SupportsAugmentedArtifacts"])
def test_states_write_nothing_on_stdout(
    packed: Path, tmp_path: Path, buffering: str, state: str
) -> None:
    """Logs go to stderr: the client never mistakes one for an answer."""
    (tmp_path / "conf").write_text(
        f"data_dir = {tmp_path / 'data'}\nengine = /bin/false\n"  # no engine call is made
    )
    assert stdout_writes(packed, BUFFERING[buffering], state, tmp_path) == []


@pytest.mark.real
@pytest.mark.parametrize("buffering", sorted(BUFFERING))
def test_each_log_line_is_one_write(packed: Path, tmp_path: Path, buffering: str) -> None:
    """The client logs each chunk of stderr as a line: a chunk is a whole line."""
    (tmp_path / "conf").write_text(f"data_dir = {tmp_path / 'data'}\nengine = /bin/false\n")
    chunks = STDERR_WRITE.findall(traced(packed, BUFFERING[buffering], "Cleanup", tmp_path))
    assert chunks, "Cleanup logged nothing"
    for chunk in chunks:
        assert chunk.startswith("mender-docker: ") and chunk.endswith("\\n"), chunks
        assert chunk.count("\\n") == 1, chunks
