"""Storages: where studies live. `get_storage` turns a URL (or None) into one."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from tuningfork.exceptions import StorageError
from tuningfork.storage.base import MAX_STUDY_NAME_BYTES, Storage, StudyInfo, check_study_name
from tuningfork.storage.copy import copy_study
from tuningfork.storage.journal import JournalStorage, journal_path
from tuningfork.storage.memory import InMemoryStorage

if TYPE_CHECKING:
    from tuningfork.storage.sql import SQLStorage

DEFAULT_URL = "sqlite:///tuningfork.db"
"""The storage used when none is given: a SQLite file in the current directory
(override with the TUNINGFORK_STORAGE environment variable)."""

_open: dict[tuple[int, str], Storage] = {}
_open_lock = threading.Lock()

__all__ = [
    "DEFAULT_URL",
    "MAX_STUDY_NAME_BYTES",
    "InMemoryStorage",
    "JournalStorage",
    "SQLStorage",
    "Storage",
    "StudyInfo",
    "check_study_name",
    "copy_study",
    "default_url",
    "get_storage",
]


def __getattr__(name: str) -> Any:
    """`SQLStorage` is imported when first used: SQLAlchemy is slow to import, and a study
    on a journal file or in memory does not need it."""
    if name == "SQLStorage":
        from tuningfork.storage.sql import SQLStorage

        return SQLStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_url() -> str:
    """The default storage URL: $TUNINGFORK_STORAGE, else ``sqlite:///tuningfork.db``."""
    return os.environ.get("TUNINGFORK_STORAGE") or DEFAULT_URL


def _absolute(url: str) -> str:
    """The URL with a relative SQLite path made absolute (the cache key survives chdir)."""
    if not url.startswith("sqlite:///") or url.startswith("sqlite:////"):
        return url
    path, _, query = url[len("sqlite:///") :].partition("?")
    if path in ("", ":memory:"):
        return url
    absolute = f"sqlite:///{os.path.abspath(path)}"
    return f"{absolute}?{query}" if query else absolute


def get_storage(storage: Storage | str | None) -> Storage:
    """A storage object from a URL, an existing storage, or None (the default URL).

    ``"memory"`` gives a new in-memory storage. ``journal://PATH`` opens a journal file
    (`JournalStorage`; ``journal:///abs/path.log`` is absolute, ``journal://rel.log``
    relative to the current directory). SQL and journal URLs are opened once per process
    and shared, so that threads reuse one connection pool (one journal index).
    """
    if isinstance(storage, Storage):
        return storage
    url = default_url() if storage is None else storage
    if not isinstance(url, str):
        raise StorageError(
            f"storage must be a URL string, a Storage object or None, not {type(url).__name__}"
        )
    if url in ("memory", ":memory:"):
        return InMemoryStorage()
    if "://" not in url:
        raise StorageError(
            f"{url!r} is not a storage URL; use e.g. 'sqlite:///study.db', "
            "'journal:///path/study.log' or 'memory'"
        )
    if url.startswith("journal://"):
        key = (os.getpid(), f"journal://{journal_path(url)}")
        with _open_lock:
            if key not in _open:
                _open[key] = JournalStorage(key[1])
            return _open[key]
    from tuningfork.storage.sql import SQLStorage

    key = (os.getpid(), _absolute(url))
    with _open_lock:
        if key not in _open:
            _open[key] = SQLStorage(key[1])
        return _open[key]
