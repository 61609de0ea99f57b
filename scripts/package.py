"""Builds the Debian package of the device module with dpkg-deb.

    scripts/package [-o DIR]     writes DIR/mender-docker-module_<version>_all.deb (DIR: dist)

The package holds the one-file module (as `mender-docker build-module` builds it) at
/usr/share/mender/modules/v3/docker, diverting the Mender client's own, and a
commented /etc/mender/mender-docker.conf (a conffile). The maintainer scripts,
control template, copyright and changelog are in packaging/deb.
The version is pyproject.toml's; the changelog's top entry must name it.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import mender_docker
from mender_docker.cli.module_tools import DEFAULT_INSTALL_PATH, build_module

PACKAGE = "mender-docker-module"
ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "packaging" / "deb"
CONFFILE = "etc/mender/mender-docker.conf"
DOC = f"usr/share/doc/{PACKAGE}"
MAINTAINER_SCRIPTS = ("preinst", "postrm")


class PackageError(Exception):
    """A problem that stops the build; shown as one line."""


def project_version() -> str:
    """pyproject.toml's [project] version (read by hand: tomllib is Python 3.11+)."""
    table, version = "", ""
    for line in (ROOT / "pyproject.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            table = line.strip()
        found = re.match(r'^version\s*=\s*"([^"]+)"\s*$', line)
        if table == "[project]" and found:
            version = found.group(1)
    if not version:
        raise PackageError("pyproject.toml has no [project] version")
    if version != mender_docker.__version__:
        raise PackageError(
            f"pyproject.toml says {version} but src/mender_docker/__init__.py says "
            f"{mender_docker.__version__}: make them agree"
        )
    return version


def changelog_version() -> str:
    first = (SOURCES / "changelog").read_text(encoding="utf-8").splitlines()[0]
    found = re.match(rf"^{re.escape(PACKAGE)} \(([^)]+)\) ", first)
    if found is None:
        raise PackageError(f"packaging/deb/changelog: cannot read the version in {first!r}")
    return found.group(1)


def put(root: Path, relative: str, data: bytes, mode: int = 0o644) -> Path:
    """Write one file of the package tree with its mode, making its directories 0755."""
    path = root / relative
    for parent in reversed(path.relative_to(root).parents):
        directory = root / parent
        directory.mkdir(exist_ok=True)
        directory.chmod(0o755)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def installed_size(tree: Path) -> int:
    """KiB, as dpkg-gencontrol counts them: each file and directory rounded up."""
    paths = list(tree.rglob("*"))
    files = sum(-(-max(p.stat().st_size, 1) // 1024) for p in paths if p.is_file())
    return files + sum(1 for p in paths if p.is_dir())


def stage(tree: Path, version: str) -> None:
    """The package's file tree and its DEBIAN control directory under `tree`."""
    module = put(tree, DEFAULT_INSTALL_PATH.lstrip("/"), b"", 0o755)
    build_module(str(module))
    module.chmod(0o755)
    put(tree, CONFFILE, (SOURCES / "mender-docker.conf").read_bytes())
    put(tree, f"{DOC}/copyright", (SOURCES / "copyright").read_bytes())
    changelog = gzip.compress((SOURCES / "changelog").read_bytes(), compresslevel=9, mtime=0)
    put(tree, f"{DOC}/changelog.gz", changelog)  # gzip -9n: no name, no time stamp

    files = sorted(p for p in tree.rglob("*") if p.is_file())
    md5sums = "".join(
        f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.relative_to(tree)}\n"  # noqa: S324
        for p in files
        if not str(p.relative_to(tree)).startswith("etc/")  # dpkg checks conffiles itself
    )
    control = (SOURCES / "control").read_text(encoding="utf-8")
    control = control.replace("@VERSION@", version)
    control = control.replace("@INSTALLED_SIZE@", str(installed_size(tree)))
    put(tree, "DEBIAN/control", control.encode())
    put(tree, "DEBIAN/md5sums", md5sums.encode())
    put(tree, "DEBIAN/conffiles", f"/{CONFFILE}\n".encode())
    for script in MAINTAINER_SCRIPTS:
        put(tree, f"DEBIAN/{script}", (SOURCES / script).read_bytes(), 0o755)


def build(output_dir: Path) -> Path:
    if shutil.which("dpkg-deb") is None:
        raise PackageError("dpkg-deb is missing (Debian's dpkg package); run scripts/setup")
    version = project_version()
    logged = changelog_version()
    if logged != version:
        raise PackageError(
            f"packaging/deb/changelog's top entry is {logged}, pyproject.toml says {version}: "
            "add a changelog entry for it"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"{PACKAGE}_{version}_all.deb"
    with tempfile.TemporaryDirectory(prefix="mender-docker-deb-") as staging:
        tree = Path(staging) / "tree"
        tree.mkdir(mode=0o755)
        tree.chmod(0o755)
        stage(tree, version)
        done = subprocess.run(
            ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise PackageError(f"dpkg-deb failed: {done.stderr.strip() or done.stdout.strip()}")
    return target


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/package", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output-dir", default=str(ROOT / "dist"), help="default: dist")
    args = parser.parse_args(argv)
    try:
        print(build(Path(args.output_dir)))
    except (PackageError, OSError) as exc:
        print(f"scripts/package: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
