"""The Debian package's own files: the default configuration and the purge rule."""

from __future__ import annotations

import re
import subprocess
from dataclasses import fields, replace
from pathlib import Path
from typing import Dict, Optional

import pytest

from mender_docker.module.config import Config, default_data_dir, parse_config
from mender_docker.module.deployment import FINAL, Phase
from mender_docker.module.journal import Deployment, Journal, JournalStore

SOURCES = Path(__file__).resolve().parents[2] / "packaging" / "deb"
CONF = SOURCES / "mender-docker.conf"
KEY_LINE = re.compile(r"^# (\w+) =(.*)$")


def commented_keys() -> Dict[str, str]:
    found = {}
    for line in CONF.read_text().splitlines():
        match = KEY_LINE.match(line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def test_the_default_configuration_names_every_key_commented_out() -> None:
    assert set(commented_keys()) == {f.name for f in fields(Config)}
    assert parse_config(CONF.read_text(), str(CONF)) == Config()


@pytest.mark.parametrize("key", [f.name for f in fields(Config)])
def test_each_commented_line_shows_the_default(key: str) -> None:
    value = commented_keys()[key]
    config = parse_config(f"{key} = {value}\n")
    if key == "data_dir":  # the default depends on /data: the line shows one of the two
        assert value in ("/data/mender-docker", "/var/lib/mender-docker")
        assert default_data_dir() in ("/data/mender-docker", "/var/lib/mender-docker")
    elif getattr(Config(), key) is None:  # no default: the line is an example
        assert config != Config()
    else:
        assert config == Config(), f"uncommenting {key} changes the configuration"


def run_purge(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """The package's postrm, purging, with its data directory list pointed at `data_dir`."""
    script = (SOURCES / "postrm").read_text()
    default = 'DATA_DIRS="/data/mender-docker /var/lib/mender-docker"\n'
    assert default in script
    script = script.replace(default, f'DATA_DIRS="{data_dir}"\n')
    return subprocess.run(
        ["sh", "-c", script, "postrm", "purge"], capture_output=True, text=True, check=False
    )


def write_journal(data_dir: Path, phase: Optional[Phase]) -> None:
    deployment = None
    if phase is not None:
        deployment = Deployment(id="d-1", artifact="release-1", phase=phase, tree="/t")
        deployment.planned = [{"name": "web", "image": "r/web@sha256:" + "a" * 64}]
    JournalStore(str(data_dir)).save(Journal(deployment=deployment, previous_images=["x"]))
    (data_dir / "lock").touch()


@pytest.mark.parametrize("phase", list(Phase), ids=[p.value for p in Phase])
def test_purge_keeps_the_journal_of_a_deployment_under_way(tmp_path: Path, phase: Phase) -> None:
    data_dir = tmp_path / "mender-docker"
    write_journal(data_dir, phase)
    done = run_purge(data_dir)
    assert done.returncode == 0, done.stderr
    if phase in FINAL:
        assert not data_dir.exists()
        assert done.stderr == ""
    else:
        assert (data_dir / "journal.json").exists()
        assert f"keeping {data_dir}" in done.stderr


@pytest.mark.parametrize("content", [None, "no deployment"], ids=["no-journal", "empty"])
def test_purge_removes_a_data_directory_with_nothing_under_way(
    tmp_path: Path, content: Optional[str]
) -> None:
    data_dir = tmp_path / "mender-docker"
    data_dir.mkdir()
    if content is not None:
        write_journal(data_dir, None)
    done = run_purge(data_dir)
    assert (done.returncode, done.stderr) == (0, "")
    assert not data_dir.exists()


@pytest.mark.parametrize(
    "text", ["", "{", '{"version": 2, "deployment": null}', '{"version":1,"deployment":null}']
)
def test_purge_keeps_a_journal_it_cannot_read(tmp_path: Path, text: str) -> None:
    data_dir = tmp_path / "mender-docker"
    data_dir.mkdir()
    (data_dir / "journal.json").write_text(text)
    done = run_purge(data_dir)
    assert done.returncode == 0
    assert (data_dir / "journal.json").exists()


def test_purge_without_a_data_directory_does_nothing(tmp_path: Path) -> None:
    done = run_purge(tmp_path / "absent")
    assert (done.returncode, done.stderr) == (0, "")


def test_a_phase_inside_a_value_is_not_read_as_the_phase(tmp_path: Path) -> None:
    data_dir = tmp_path / "mender-docker"
    write_journal(data_dir, Phase.INSTALLED)
    store = JournalStore(str(data_dir))
    journal = store.load()
    assert journal.deployment is not None
    journal.deployment = replace(journal.deployment, artifact='x",\n  "phase": "cleaned",')
    store.save(journal)
    assert run_purge(data_dir).returncode == 0
    assert (data_dir / "journal.json").exists()
