"""`mender-docker build-module | install-module | status`: package and inspect the module.

The module ships as one executable zipapp (`#!/usr/bin/env python3`) holding
`mender_docker/{spec,imageref,runargs,runopts,atomicfile}.py` and
`mender_docker/module/*.py` with an `__init__.py` that imports nothing: it runs with
the system python3 and no site-packages.
"""

from __future__ import annotations

import argparse
import io
import os
import py_compile
import shutil
import tempfile
import zipapp
import zipfile
from pathlib import Path
from typing import List, Optional

import mender_docker
from mender_docker.atomicfile import write_atomic
from mender_docker.cli.common import run_command
from mender_docker.errors import MenderDockerError

DEFAULT_INSTALL_PATH = "/usr/share/mender/modules/v3/docker"
# The contract files the device module imports besides module/ itself.
DEVICE_SHARED = ("spec.py", "imageref.py", "runargs.py", "runopts.py", "atomicfile.py")
MARKER = "mender_docker/module/main.py"  # how we recognise a module we built
PACKAGE_INIT = '"""Container updates for Mender (packed update module)."""\n\n__version__ = "{}"\n'
ZIP_MAIN = '''"""The packed Docker Update Module: docker STATE FILE_TREE_DIR."""

import sys

from mender_docker.module.protocol import quick_answer

code = quick_answer(sys.argv[1:])
if code is None:
    from mender_docker.module.main import main

    code = main()
sys.exit(code)
'''


def build_module(output: str) -> None:
    """Write the single-file module to `output` (atomically, mode 0755)."""
    package = Path(mender_docker.__file__).parent
    shared = [package / name for name in DEVICE_SHARED]
    sources = [*shared, *sorted((package / "module").glob("*.py"))]
    with tempfile.TemporaryDirectory(prefix="mender-docker-build-") as staging:
        root = Path(staging) / "app"
        (root / "mender_docker" / "module").mkdir(parents=True)
        (root / "mender_docker" / "__init__.py").write_text(
            PACKAGE_INIT.format(mender_docker.__version__)
        )
        (root / "__main__.py").write_text(ZIP_MAIN)
        for source in sources:
            target = root / source.relative_to(package.parent)
            shutil.copyfile(source, target)
        precompile(root)
        buffer = io.BytesIO()
        zipapp.create_archive(root, buffer, interpreter="/usr/bin/env python3", compressed=True)
    write_executable(output, buffer.getvalue())


def precompile(root: Path) -> None:
    """Bytecode beside each source (`x.pyc`, which zipimport prefers): a zip cannot
    cache what Python compiles, so without it every state call would recompile.
    A device whose python3 is another version ignores these and reads the sources."""
    for source in sorted(root.rglob("*.py")):
        if source.name == "__main__.py":
            continue
        py_compile.compile(
            str(source),
            cfile=str(source.with_suffix(".pyc")),
            dfile=str(source.relative_to(root)),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )


def write_executable(path: str, data: bytes) -> None:
    write_atomic(path, data, mode=0o755)


def is_ours(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return MARKER in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def install_module(path: str) -> str:
    """Build and install; returns one line saying what was replaced."""
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise MenderDockerError(f"module directory {os.path.dirname(path)} does not exist")
    replaced = "nothing"
    if os.path.exists(path):
        if is_ours(path):
            replaced = "an earlier mender-docker module"
        else:
            backup = path + ".orig"
            if not os.path.exists(backup):
                shutil.copy2(path, backup)
            replaced = f"another module (kept as {backup})"
    build_module(path)
    return f"installed {path}, replacing {replaced}"


def format_status(data_dir: str) -> str:
    from mender_docker.module.journal import JournalStore

    journal = JournalStore(data_dir).load()
    deployment = journal.deployment
    if deployment is None:
        return f"no deployment recorded in {data_dir}"
    lines = [
        f"artifact:  {deployment.artifact}",
        f"phase:     {deployment.phase}",
        f"id:        {deployment.id}",
        f"scope:     {deployment.scope}",
        "containers:",
    ]
    lines += [f"  {p['name']:<20} {p['image']}" for p in deployment.planned] or ["  (none yet)"]
    lines.append(f"created:   {', '.join(c[:12] for c in deployment.created) or '-'}")
    lines.append(f"stopped:   {', '.join(c[:12] for c in deployment.stopped) or '-'}")
    lines.append(f"kept:      {', '.join(c[:12] for c in deployment.kept) or '-'}")
    lines.append(f"images:    {', '.join(journal.previous_images) or '-'}")
    return "\n".join(lines)


def _build(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="mender-docker build-module")
    parser.add_argument("-o", "--output", required=True, help="file to write")
    args = parser.parse_args(argv)
    build_module(args.output)
    print(f"wrote {args.output}")
    return 0


def _install(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="mender-docker install-module")
    parser.add_argument("--path", default=DEFAULT_INSTALL_PATH, help="where the client looks")
    args = parser.parse_args(argv)
    print(install_module(args.path))
    return 0


def _status(argv: List[str]) -> int:
    from mender_docker.module.config import load_config
    from mender_docker.module.errors import ModuleError

    parser = argparse.ArgumentParser(prog="mender-docker status")
    parser.add_argument("--data-dir", help="the module's data directory (default: from config)")
    args = parser.parse_args(argv)
    try:
        data_dir = args.data_dir or load_config().journal_dir
        print(format_status(data_dir))
    except ModuleError as exc:
        raise MenderDockerError(str(exc)) from None
    return 0


def run(name: str, argv: Optional[List[str]] = None) -> int:
    command = {"build-module": _build, "install-module": _install, "status": _status}[name]
    return run_command(command, argv, f"mender-docker {name}")
