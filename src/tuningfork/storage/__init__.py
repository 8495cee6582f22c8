"""Storages: where studies live. `get_storage` turns a URL (or None) into one."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from tuningfork._redact import redact_urls
from tuningfork.exceptions import StorageError, StorageNotFound, StorageURLError
from tuningfork.storage.base import MAX_STUDY_NAME_BYTES, Storage, StudyInfo, check_study_name
from tuningfork.storage.copy import copy_study
from tuningfork.storage.journal import JournalStorage, journal_path
from tuningfork.storage.memory import InMemoryStorage

if TYPE_CHECKING:
    from tuningfork.storage.sql import SQLStorage

DEFAULT_URL = "sqlite:///tuningfork.db"
"""The storage used when none is given: a SQLite file in the current directory
(override with the TUNINGFORK_STORAGE environment variable)."""

SQL_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg")
"""The URL schemes of SQL storages (`SQLStorage`): SQLite, and PostgreSQL through psycopg 3
(``postgresql://`` and ``postgres://`` are read as ``postgresql+psycopg://``)."""

URL_FORMS = (
    "sqlite:///path/to/study.db, postgresql+psycopg://user:password@host:5432/database "
    "(or postgresql://), journal:///path/to/study.log, or memory"
)
"""The storage URLs `get_storage` accepts, for messages."""

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
    "check_url",
    "copy_study",
    "default_url",
    "get_storage",
    "redact_url",
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


def redact_url(url: str) -> str:
    """``url`` with its password shown as ``***``, for messages and logs:
    ``postgresql://u:secret@h/db`` gives ``postgresql://u:***@h/db`` (a ``password=`` query
    parameter is masked too). A URL without a password is returned unchanged."""
    return redact_urls(url)


def check_url(url: str) -> str:
    """The scheme of a storage URL that `get_storage` can open; raise `StorageURLError`
    naming the URL and the supported forms otherwise."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise StorageURLError(f"{redact_url(url)!r} is not a storage URL; use {URL_FORMS}")
    if scheme != "journal" and scheme not in SQL_SCHEMES:
        raise StorageURLError(
            f"storage URL {redact_url(url)!r}: tuningfork does not support {scheme!r} "
            f"storages; use {URL_FORMS}"
        )
    return scheme


def _absolute(url: str) -> str:
    """The URL with a relative SQLite path made absolute (the cache key survives chdir)."""
    if not url.startswith("sqlite:///") or url.startswith("sqlite:////"):
        return url
    path, _, query = url[len("sqlite:///") :].partition("?")
    if path in ("", ":memory:"):
        return url
    absolute = f"sqlite:///{os.path.abspath(path)}"
    return f"{absolute}?{query}" if query else absolute


def get_storage(storage: Storage | str | None, *, create: bool = True) -> Storage:
    """A storage object from a URL, an existing storage, or None (the default URL).

    ``"memory"`` gives a new in-memory storage. ``journal://PATH`` opens a journal file
    (`JournalStorage`; ``journal:///abs/path.log`` is absolute, ``journal://rel.log``
    relative to the current directory). ``sqlite:///path.db`` and
    ``postgresql+psycopg://...`` open a `SQLStorage` (see `SQL_SCHEMES`); any other URL
    raises `StorageURLError`, naming it and the supported forms. SQL and journal URLs are
    opened once per process and shared, so that threads reuse one connection pool (one
    journal index).

    Opening a storage creates it (a SQLite file and its tables, a journal file) unless
    ``create=False``: then only an existing tuningfork storage is opened, and nothing is
    created or altered; a missing file, a database without tuningfork's tables, a file
    that is not a journal, or ``"memory"`` raise `StorageNotFound` naming the path. What
    reads a storage without writing (the read-only commands, the dashboard) opens it so.
    """
    if isinstance(storage, Storage):
        return storage
    url = default_url() if storage is None else storage
    if not isinstance(url, str):
        raise StorageError(
            f"storage must be a URL string, a Storage object or None, not {type(url).__name__}"
        )
    if url in ("memory", ":memory:"):
        if not create:
            raise StorageNotFound(
                f"no tuningfork storage at {url!r}: an in-memory storage lives in one process "
                "and starts empty; use a SQLite file, a journal file or PostgreSQL"
            )
        return InMemoryStorage()
    if check_url(url) == "journal":
        key = (os.getpid(), f"journal://{journal_path(url)}")
        with _open_lock:
            if key not in _open:
                _open[key] = JournalStorage(key[1], create=create)
            return _open[key]
    from tuningfork.storage.sql import SQLStorage

    key = (os.getpid(), _absolute(url))
    with _open_lock:
        if key not in _open:
            _open[key] = SQLStorage(key[1], create=create)
        return _open[key]
