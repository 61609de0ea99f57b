"""The journal: round trip, atomic replacement, clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

import pytest

from mender_docker.module.errors import JournalError
from mender_docker.module.journal import Deployment, Journal, JournalStore, write_atomic


def test_round_trip(tmp_path: Path) -> None:
    store = JournalStore(str(tmp_path / "data"))
    assert store.load() == Journal()
    saved = Journal(Deployment(id="d1", artifact="a", created=["c1"]), previous_images=["x"])
    store.save(saved)
    assert store.load() == saved


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
