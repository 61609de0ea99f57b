"""The journal: round trip, the released module's format, atomic replacement, clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

import pytest

from mender_docker.atomicfile import write_atomic
from mender_docker.module.deployment import Phase
from mender_docker.module.errors import JournalError
from mender_docker.module.journal import (
    Deployment,
    Journal,
    JournalStore,
    PreviousContainer,
    Rename,
)

# Written by the released module (the code of commit 2224b7a, before the records were
# typed, on the fake engine) in the middle of a deployment: ArtifactInstall done, one
# managed container replaced (renamed out of the way), one unmanaged stopped. Only the
# tree path was shortened.
RELEASED_JOURNAL = """\
{
 "deployment": {
  "artifact": "release-2",
  "created": [
   "4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce"
  ],
  "id": "0252ea84d50248cba4ff11d07dd67fa7",
  "images": [
   "web@sha256:972269617bf96d6be7837637efbcf7ca88b6d1e49334f9ea5bd0b2477f9e70b5"
  ],
  "kept": [],
  "networks": [],
  "networks_created": [],
  "phase": "installed",
  "planned": [
   {
    "config_hash": "88ddc594d1a32ab97ecc0464f7ad8fb98c3fe80b29e326c4db5a7cdcf9c44b42",
    "image": "web@sha256:972269617bf96d6be7837637efbcf7ca88b6d1e49334f9ea5bd0b2477f9e70b5",
    "name": "web"
   }
  ],
  "previous": [
   {
    "id": "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b",
    "managed": true,
    "name": "web",
    "restart_policy": "unless-stopped"
   },
   {
    "id": "d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35",
    "managed": false,
    "name": "legacy",
    "restart_policy": "on-failure:3"
   }
  ],
  "pulled": [
   "web@sha256:972269617bf96d6be7837637efbcf7ca88b6d1e49334f9ea5bd0b2477f9e70b5"
  ],
  "renamed": [
   {
    "from": "web",
    "id": "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b",
    "to": "web-mender-prev-0252ea84"
   }
  ],
  "scope": "all",
  "stopped": [
   "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b",
   "d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35"
  ],
  "tree": "/data/mender/modules/v3/payloads/0000/tree"
 },
 "previous_images": [
  "web@sha256:8724d338e126049234c1d85057d87a9e9991a703bb402e390abba5dc99f26361"
 ],
 "version": 1
}
"""
WEB_OLD = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
LEGACY = "d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35"


def test_round_trip(tmp_path: Path) -> None:
    store = JournalStore(str(tmp_path / "data"))
    assert store.load() == Journal()
    saved = Journal(Deployment(id="d1", artifact="a", created=["c1"]), previous_images=["x"])
    store.save(saved)
    assert store.load() == saved


def test_typed_records_round_trip(tmp_path: Path) -> None:
    store = JournalStore(str(tmp_path))
    deployment = Deployment(id="d1", artifact="a", phase=Phase.INSTALLING)
    deployment.previous = [PreviousContainer("c1", "web", "always", managed=True)]
    deployment.renamed = [Rename("c1", from_name="web", to="web-mender-prev-d1")]
    store.save(Journal(deployment))
    loaded = store.load().deployment
    assert loaded == deployment
    assert loaded is not None and type(loaded.phase) is Phase
    assert type(loaded.previous[0]) is PreviousContainer and type(loaded.renamed[0]) is Rename


def test_a_journal_of_the_released_module_loads_and_saves_the_same(tmp_path: Path) -> None:
    (tmp_path / "journal.json").write_text(RELEASED_JOURNAL)
    store = JournalStore(str(tmp_path))
    journal = store.load()
    deployment = journal.deployment
    assert deployment is not None
    assert deployment.phase is Phase.INSTALLED
    assert deployment.previous == [
        PreviousContainer(WEB_OLD, "web", "unless-stopped", managed=True),
        PreviousContainer(LEGACY, "legacy", "on-failure:3", managed=False),
    ]
    assert deployment.renamed == [Rename(WEB_OLD, from_name="web", to="web-mender-prev-0252ea84")]
    assert deployment.stopped == [WEB_OLD, LEGACY] and len(deployment.created) == 1
    assert deployment.planned[0]["name"] == "web"
    store.save(journal)
    assert (tmp_path / "journal.json").read_text() == RELEASED_JOURNAL, "same keys, same JSON"


def test_phases_keep_their_journal_strings() -> None:
    assert [p.value for p in Phase] == [
        "downloading",
        "downloaded",
        "installing",
        "installed",
        "committed",
        "rolling-back",
        "rolled-back",
        "cleaned",
        "failed",
    ]
    from_a_string = Deployment(id="d", artifact="a", phase="rolled-back")  # type: ignore[arg-type]
    assert from_a_string.phase is Phase.ROLLED_BACK
    # messages and `mender-docker status` show the string, on every Python version
    assert f"{Phase.ROLLING_BACK}" == str(Phase.ROLLING_BACK) == "rolling-back"


def test_an_unknown_phase_is_a_journal_error(tmp_path: Path) -> None:
    (tmp_path / "journal.json").write_text(RELEASED_JOURNAL.replace('"installed"', '"half-done"'))
    with pytest.raises(JournalError, match="cannot read journal"):
        JournalStore(str(tmp_path)).load()


def test_a_failed_replace_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "journal.json"
    write_atomic(str(target), b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(str(target), b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["journal.json"]


def test_writes_are_fsynced_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: List[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_atomic(str(tmp_path / "j"), b"data")
    assert events == ["fsync", "replace", "fsync"]  # file, rename, directory
    assert (tmp_path / "j").read_bytes() == b"data"


@pytest.mark.parametrize("content", ["{not json", '{"version": 99}', "[]"])
def test_a_corrupt_journal_is_one_clear_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "journal.json").write_text(content)
    with pytest.raises(JournalError, match="cannot read journal"):
        JournalStore(str(tmp_path)).load()


def test_an_unwritable_directory_is_a_journal_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(JournalError, match="cannot write journal"):
        JournalStore(str(tmp_path / "file" / "sub")).save(Journal())
