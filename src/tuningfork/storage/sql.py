"""SQL storage on SQLAlchemy 2 Core: SQLite (the embedded default) and, later, PostgreSQL.

Tables: ``tuningfork_meta`` (schema version), ``tuningfork_studies``, ``tuningfork_events``
(one row per appended batch, its body JSON, never pickle) and ``tuningfork_heartbeats``.
The only query on the hot path reads a study's events after a sequence number, served by
the primary key index on ``(seq)`` with the ``(study_id, seq)`` index. SQLite runs in WAL
mode with a busy timeout, so readers never block and writers queue instead of failing.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError, OperationalError

from tuningfork.exceptions import (
    DuplicatedStudyError,
    SchemaVersionError,
    StorageError,
    StudyNotFound,
)
from tuningfork.storage.base import Batch, Event, Storage, StudyInfo
from tuningfork.storage.memory import _not_found

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 120.0

_metadata = sa.MetaData()
_meta = sa.Table(
    "tuningfork_meta",
    _metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
_studies = sa.Table(
    "tuningfork_studies",
    _metadata,
    sa.Column("study_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(512), nullable=False, unique=True),
    sa.Column("directions", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)
_events = sa.Table(
    "tuningfork_events",
    _metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_id", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_tuningfork_events_study_seq", "study_id", "seq"),
    sqlite_autoincrement=True,
)
_heartbeats = sa.Table(
    "tuningfork_heartbeats",
    _metadata,
    sa.Column("study_id", sa.Integer, primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("worker", sa.String(256), nullable=False),
    sa.Column("beat", sa.Float, nullable=False),
)

_SELECT_EVENTS = (
    sa.select(_events.c.seq, _events.c.body)
    .where(_events.c.study_id == sa.bindparam("study_id"))
    .where(_events.c.seq > sa.bindparam("after"))
    .order_by(_events.c.seq)
)
_INSERT_EVENT = _events.insert()


class SQLStorage(Storage):
    """Studies in a SQL database given by a SQLAlchemy URL, e.g. ``sqlite:///study.db``.

    Safe to share between threads and between processes on one machine (SQLite) or many
    machines (PostgreSQL, in a later release).
    """

    def __init__(self, url: str, *, engine_kwargs: dict[str, Any] | None = None) -> None:
        self.url = url
        self._engine_kwargs = dict(engine_kwargs or {})
        self._pid = -1
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        self._connect()

    # -- connection -----------------------------------------------------------------------

    @property
    def engine(self) -> sa.Engine:
        # a forked child must not reuse the parent's connections
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._connect()
        assert self._engine is not None
        return self._engine

    def _connect(self) -> None:
        if self._engine is not None:
            self._engine.dispose(close=False)
        self._engine = _make_engine(self.url, self._engine_kwargs)
        self._pid = os.getpid()
        _create_schema(self._engine, self.url)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def artifact_root(self) -> Path:
        path = _sqlite_path(self.url)
        base = Path(path).resolve().parent if path else Path.cwd()
        return base / "tuningfork_artifacts"

    # -- studies --------------------------------------------------------------------------

    def create_study(self, name: str, directions: tuple[str, ...]) -> StudyInfo:
        created = time.time()
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    _studies.insert().values(
                        name=name, directions=json.dumps(list(directions)), created=created
                    )
                )
                study_id = int(result.inserted_primary_key[0])
        except IntegrityError:
            raise DuplicatedStudyError(
                f"a study named {name!r} already exists in {self.url}; pass "
                "load_if_exists=True to continue it, or choose another name"
            ) from None
        return StudyInfo(study_id, name, tuple(directions), created)

    def get_study(self, name: str) -> StudyInfo:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_studies).where(_studies.c.name == name)).first()
        if row is None:
            names = [info.name for info in self.list_studies()]
            raise StudyNotFound(_not_found(name, names) + f" (storage: {self.url})")
        return _info(row)

    def list_studies(self) -> list[StudyInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(_studies).order_by(_studies.c.study_id)).all()
        return [_info(row) for row in rows]

    def delete_study(self, name: str) -> None:
        info = self.get_study(name)
        with self.engine.begin() as conn:
            conn.execute(_events.delete().where(_events.c.study_id == info.study_id))
            conn.execute(_heartbeats.delete().where(_heartbeats.c.study_id == info.study_id))
            conn.execute(_studies.delete().where(_studies.c.study_id == info.study_id))

    # -- the log --------------------------------------------------------------------------

    def append(self, study_id: int, events: list[Event]) -> int:
        body = json.dumps(events, separators=(",", ":"))
        with self.engine.begin() as conn:
            result = conn.execute(_INSERT_EVENT, {"study_id": study_id, "body": body})
            return int(result.inserted_primary_key[0])

    def read(self, study_id: int, after: int) -> list[Batch]:
        with self.engine.connect() as conn:
            rows = conn.execute(_SELECT_EVENTS, {"study_id": study_id, "after": after}).all()
        return [(int(seq), json.loads(body)) for seq, body in rows]

    def append_and_read(
        self, study_id: int, events: list[Event], after: int
    ) -> tuple[int, list[Batch]]:
        body = json.dumps(events, separators=(",", ":"))
        with self.engine.connect() as conn:
            with conn.begin():
                result = conn.execute(_INSERT_EVENT, {"study_id": study_id, "body": body})
                seq = int(result.inserted_primary_key[0])
            rows = conn.execute(_SELECT_EVENTS, {"study_id": study_id, "after": after}).all()
        return seq, [(int(s), json.loads(b)) for s, b in rows]

    def heartbeat(self, study_id: int, numbers: list[int], worker: str, now: float) -> None:
        if not numbers:
            return
        rows = [{"study_id": study_id, "number": n, "worker": worker, "beat": now} for n in numbers]
        with self.engine.begin() as conn:
            conn.execute(
                _heartbeats.delete().where(
                    _heartbeats.c.study_id == study_id, _heartbeats.c.number.in_(numbers)
                )
            )
            conn.execute(_heartbeats.insert(), rows)

    def heartbeats(self, study_id: int) -> dict[int, float]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_heartbeats.c.number, _heartbeats.c.beat).where(
                    _heartbeats.c.study_id == study_id
                )
            ).all()
        return {int(number): float(beat) for number, beat in rows}

    def __repr__(self) -> str:
        return f"SQLStorage({self.url!r})"


def _info(row: Any) -> StudyInfo:
    return StudyInfo(
        int(row.study_id), row.name, tuple(json.loads(row.directions)), float(row.created)
    )


def _sqlite_path(url: str) -> str | None:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    return None if database in (None, "", ":memory:") else database


def _make_engine(url: str, kwargs: dict[str, Any]) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, **kwargs)
    path = _sqlite_path(url)
    if path is None:
        raise StorageError(
            f"{url!r} is an in-memory SQLite database, which other processes cannot see; "
            "use storage='memory' for a study in memory, or a file: sqlite:///study.db"
        )
    directory = Path(path).resolve().parent
    if not directory.is_dir():
        raise StorageError(f"cannot open {url!r}: the directory {directory} does not exist")
    connect_args = {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
    # writes always commit inside engine.begin(), and pysqlite opens no transaction for a
    # SELECT, so a connection needs no rollback when it goes back to the pool
    options = {"pool_reset_on_return": None, **kwargs}
    engine = sa.create_engine(url, connect_args=connect_args, **options)
    sa_event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    cursor.close()


def _create_schema(engine: sa.Engine, url: str) -> None:
    for attempt in range(5):
        try:
            _metadata.create_all(engine, checkfirst=True)
            break
        except OperationalError as error:  # another process created the tables meanwhile
            if "already exists" not in str(error) or attempt == 4:
                raise StorageError(
                    f"cannot create tuningfork's tables in {url}: {error}"
                ) from error
    with engine.connect() as conn:
        row = conn.execute(sa.select(_meta.c.value).where(_meta.c.key == "schema_version")).first()
    if row is None:
        try:
            with engine.begin() as conn:
                conn.execute(_meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        except IntegrityError:
            pass  # another process wrote it first; checked below
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(_meta.c.value).where(_meta.c.key == "schema_version")
            ).first()
    found = int(row[0]) if row is not None else SCHEMA_VERSION
    if found != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{url} holds tuningfork storage schema version {found}, but this tuningfork "
            f"reads version {SCHEMA_VERSION}; open it with a matching tuningfork version, "
            "or copy the study to a new storage"
        )
