"""get_storage(url, create=False): what reads a storage opens only an existing tuningfork
storage, and creates or alters nothing (no file, no table, no journal mode, no lock file)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

import tuningfork as tf
from tuningfork.exceptions import StorageNotFound
from tuningfork.storage import get_storage
from tuningfork.storage.journal import JournalStorage


def _foreign_database(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE things (id INTEGER)")
        connection.commit()


def _files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path / 'a.db'}", f"journal://{tmp_path / 'a.log'}"):
        with pytest.raises(StorageNotFound, match="no tuningfork storage at .* [(]no such file"):
            get_storage(url, create=False)
    with pytest.raises(StorageNotFound, match="no tuningfork storage at"):
        get_storage(f"sqlite:///{tmp_path / 'no' / 'dir.db'}", create=False)
    assert list(tmp_path.iterdir()) == []


def test_a_foreign_database_gets_no_tables_and_keeps_its_journal_mode(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    _foreign_database(path)
    before = _files(tmp_path)
    with pytest.raises(StorageNotFound, match="lacks tuningfork's tables [(]tuningfork_events"):
        get_storage(f"sqlite:///{path}", create=False)
    assert _files(tmp_path) == before
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)


@pytest.mark.parametrize("content", [b"", b"hello, I am text\n" * 10])
def test_an_empty_or_text_file_is_no_storage(tmp_path: Path, content: bytes) -> None:
    for name in ("x.db", "x.log"):
        (tmp_path / name).write_bytes(content)
    before = _files(tmp_path)
    for url in (f"sqlite:///{tmp_path / 'x.db'}", f"journal://{tmp_path / 'x.log'}"):
        with pytest.raises(StorageNotFound, match="no tuningfork storage at"):
            get_storage(url, create=False)
    assert _files(tmp_path) == before


def test_memory_is_no_existing_storage() -> None:
    with pytest.raises(StorageNotFound, match="in-memory storage lives in one process"):
        get_storage("memory", create=False)


@pytest.mark.parametrize("scheme", ["sqlite:///", "journal://"])
def test_an_existing_storage_opens_and_reads(tmp_path: Path, scheme: str) -> None:
    url = f"{scheme}{tmp_path / 'study'}"
    study = tf.create_study("s", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert get_storage(url, create=False) is get_storage(url)  # the one opened already
    fresh = tf.SQLStorage(url, create=False) if scheme == "sqlite:///" else None
    fresh = fresh or JournalStorage(tmp_path / "study", create=False)
    assert [info.name for info in fresh.list_studies()] == ["s"]
    assert len(tf.load_study("s", storage=fresh).trials) == 2


def test_a_journal_opened_read_only_gets_no_lock_file(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    JournalStorage(path).create_study("s", ("minimize",))
    (tmp_path / "s.log.lock").unlink()
    before = _files(tmp_path)
    assert [info.name for info in JournalStorage(path, create=False).list_studies()] == ["s"]
    assert _files(tmp_path) == before
