"""The single-file module: runs with a bare python3, imports only the standard library."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mender_docker.cli.main import main as cli_main
from mender_docker.cli.module_tools import DEVICE_SHARED, format_status, install_module
from mender_docker.module.journal import Deployment, Journal, JournalStore

# Runs under `-I -S`: no site-packages on the path, so a third-party import fails
# outright; where the interpreter knows its stdlib (3.10+), every import is also
# checked against that list.
CHECK_IMPORTS = """
import json, sys, zipfile
before = set(sys.modules)
sys.path.insert(0, sys.argv[1])
names = [n[:-3].replace("/", ".") for n in zipfile.ZipFile(sys.argv[1]).namelist()
         if n.endswith(".py") and not n.endswith("__main__.py")]
names = [n[: -len(".__init__")] if n.endswith(".__init__") else n for n in names]
for name in names:
    __import__(name)
stdlib = getattr(sys, "stdlib_module_names", None)
foreign = sorted(m for m in set(sys.modules) - before
                 if stdlib is not None and m.split(".")[0] not in stdlib
                 and not m.startswith("mender_docker"))
print(json.dumps({"imported": sorted(names), "foreign": foreign}))
"""


def test_runs_with_no_site_packages(packed: Path, tmp_path: Path) -> None:
    assert packed.stat().st_mode & 0o111
    assert packed.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    for state, answer in [
        ("SupportsRollback", "Yes\n"),
        ("NeedsArtifactReboot", "No\n"),
        ("ProvidePayloadFileSizes", "No\n"),
        ("SomeFutureState", ""),
    ]:
        done = subprocess.run(
            [sys.executable, "-I", "-S", str(packed), state, str(tmp_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, answer, "")


def test_imports_nothing_outside_the_standard_library(packed: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", CHECK_IMPORTS, str(packed)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout)
    assert "mender_docker.module.main" in report["imported"]
    assert "mender_docker.spec" in report["imported"]
    assert report["foreign"] == []
    files = [n for n in zipfile.ZipFile(packed).namelist() if not n.endswith("/")]
    allowed = {"__main__.py", "mender_docker/__init__.py"}
    allowed |= {f"mender_docker/{name}" for name in DEVICE_SHARED}
    allowed |= {name + "c" for name in allowed if name != "__main__.py"}  # bytecode
    assert [
        n for n in files if n not in allowed and not n.startswith("mender_docker/module/")
    ] == []


def test_queries_come_from_bytecode_without_the_state_handlers(
    packed: Path, tmp_path: Path
) -> None:
    """Break every source in a copy of the packed file but protocol's bytecode: a query
    still answers, so it uses the precompiled `protocol` and nothing else of ours."""
    broken = tmp_path / "docker"
    with zipfile.ZipFile(packed) as original, zipfile.ZipFile(broken, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            keep = item.filename.endswith("__main__.py") or item.filename.endswith(
                ("mender_docker/__init__.pyc", "module/__init__.pyc", "protocol.pyc")
            )
            if item.filename.endswith(".py") and not keep:
                data = b"raise SystemExit('source used')\n"
            elif item.filename.endswith(".pyc") and not keep:
                data = b""  # no valid bytecode: zipimport would fall back to the source
            copy.writestr(item, data)
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(broken), "SupportsRollback", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "Yes\n", "")


def test_bad_meta_data_is_one_line_from_the_packed_module(packed: Path, tmp_path: Path) -> None:
    (tmp_path / "header").mkdir()
    (tmp_path / "header" / "meta-data").write_text('{"containers": ["web:latest"]}')
    conf = tmp_path / "conf"
    conf.write_text(f"data_dir = {tmp_path / 'data'}\n")
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(packed), "Download", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={"MENDER_DOCKER_CONF": str(conf), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "not pinned by digest" in done.stderr
    assert "Traceback" not in done.stderr


def test_install_module_keeps_a_backup_of_a_foreign_module(tmp_path: Path) -> None:
    target = tmp_path / "docker"
    target.write_text("#!/bin/sh\necho original\n")
    assert "kept as" in install_module(str(target))
    assert (tmp_path / "docker.orig").read_text() == "#!/bin/sh\necho original\n"
    assert zipfile.is_zipfile(target)
    assert "earlier mender-docker" in install_module(str(target))
    assert (tmp_path / "docker.orig").read_text() == "#!/bin/sh\necho original\n"


def test_install_module_into_a_missing_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli_main(["install-module", "--path", str(tmp_path / "no" / "docker")])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err


def test_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no deployment" in format_status(str(tmp_path))
    deployment = Deployment(id="abc", artifact="release-7", phase="installed", created=["1" * 64])
    deployment.planned = [{"name": "web", "image": "web@sha256:" + "2" * 64, "config_hash": ""}]
    JournalStore(str(tmp_path)).save(Journal(deployment))
    assert cli_main(["status", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "release-7" in out and "installed" in out and "web@sha256:2222" in out
