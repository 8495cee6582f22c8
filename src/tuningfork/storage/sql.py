"""SQL storage on SQLAlchemy 2 Core: SQLite (the embedded default) and PostgreSQL.

Tables: ``tuningfork_meta`` (schema version), ``tuningfork_studies``, ``tuningfork_events``
(one row per appended batch, its body JSON, never pickle) and ``tuningfork_heartbeats``.
The only query on the hot path reads a study's events after a sequence number, served by
the primary key index on ``(seq)`` with the ``(study_id, seq)`` index. SQLite runs in WAL
mode with a busy timeout, so readers never block and writers queue instead of failing.

PostgreSQL (``postgresql+psycopg://user@host:port/db``; ``postgresql://`` is read as the
same, and needs ``pip install 'tuningfork[postgres]'``):

* **No lost events.** A ``bigserial`` is handed out at INSERT time but rows become visible
  in commit order, so a reader polling "seq > last seen" could skip a batch that committed
  after a later-numbered one. Each append therefore takes
  ``pg_advisory_xact_lock(namespace, study_id)`` before its INSERT: a study's appends are
  serialised, commit order equals sequence order within the study, and the lock is released
  only after the commit is visible. Other studies append in parallel.
* **Retries.** Transient errors (a dropped or terminated connection, a server restart, a
  serialisation failure) retry the whole transaction with exponential backoff. An append
  whose COMMIT succeeded but whose reply was lost must not be appended twice, so each
  append also records a random token in ``tuningfork_batches`` (PostgreSQL only) in the same
  transaction; a retry first takes the study lock (so the lost transaction has finished,
  one way or the other) and then returns the recorded sequence number if its token is
  there. A study created just before its reply was lost is recognised by its name and
  creation time.
* **Few round trips.** An append is one statement in its own transaction (lock, insert,
  token) and a read one SELECT in autocommit, with no BEGIN or ROLLBACK. Connections come
  from SQLAlchemy's pool without a ping per checkout: a connection that turns out dead
  (the server restarted) fails its statement, which is retried on a fresh one. The
  tables are created under an advisory lock in one transaction, so many workers may
  start at once.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from tuningfork.exceptions import (
    DuplicatedStudyError,
    SchemaVersionError,
    StorageError,
    StorageNotFound,
    StudyNotFound,
    require,
)
from tuningfork.storage import redact_url
from tuningfork.storage.base import Batch, Event, Storage, StudyInfo, check_study_name
from tuningfork.storage.memory import _not_found

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 120.0
RETRIES = 8
"""How many times a PostgreSQL transaction is retried after a transient error (backoff
from 50 ms doubling to 2 s between tries: about 5 s in all)."""

# first key of the two-key advisory locks (an arbitrary constant: "tf" + 1), so that
# tuningfork's locks do not collide with an application's own single-key locks
_LOCK_NAMESPACE = 0x7466_0001
_SCHEMA_LOCK = 0  # second key of the lock held while creating the tables (study ids are > 0)

T = TypeVar("T")

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
    # BIGSERIAL on PostgreSQL; SQLite keeps INTEGER PRIMARY KEY AUTOINCREMENT
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
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

# PostgreSQL only: the token of each appended batch, so that a retried append whose first
# COMMIT went through is not appended again (see the module docstring)
_pg_metadata = sa.MetaData()
_batches = sa.Table(
    "tuningfork_batches",
    _pg_metadata,
    sa.Column("token", sa.String(32), primary_key=True),
    sa.Column("study_id", sa.Integer, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
)

_SELECT_EVENTS = (
    sa.select(_events.c.seq, _events.c.body)
    .where(_events.c.study_id == sa.bindparam("study_id"))
    .where(_events.c.seq > sa.bindparam("after"))
    .order_by(_events.c.seq)
)
_INSERT_EVENT = _events.insert()
_INSERT_EVENT_RETURNING = _events.insert().returning(_events.c.seq)
_STUDY_LOCK = sa.text("SELECT pg_advisory_xact_lock(:namespace, :key)")
# the lock is taken when the INSERT pulls its one input row from "locked", before the row
# (and its bigserial) exists; it is released at the statement's commit, once it is visible
_PG_APPEND = sa.text(
    "WITH locked AS (SELECT pg_advisory_xact_lock(:namespace, :study_id)), "
    "batch AS (INSERT INTO tuningfork_events (study_id, body) "
    "SELECT :study_id, :body FROM locked RETURNING seq) "
    "INSERT INTO tuningfork_batches (token, study_id, seq) "
    "SELECT :token, :study_id, seq FROM batch RETURNING seq"
)
_SELECT_TOKEN = sa.select(_batches.c.seq).where(_batches.c.token == sa.bindparam("token"))


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` URLs as ``postgresql+psycopg://`` (psycopg 3;
    SQLAlchemy 2.0 would otherwise pick psycopg2). Other URLs are returned unchanged."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class SQLStorage(Storage):
    """Studies in a SQL database given by a SQLAlchemy URL, e.g. ``sqlite:///study.db`` or
    ``postgresql+psycopg://user@host:5432/db``.

    Safe to share between threads and between processes on one machine (SQLite) or many
    machines (PostgreSQL). On PostgreSQL, transient errors are retried ``retries`` times.

    ``create=False`` opens only an existing tuningfork storage, creating and altering
    nothing (no file, no table, no SQLite journal mode); anything else raises
    `StorageNotFound`.
    """

    def __init__(
        self,
        url: str,
        *,
        engine_kwargs: dict[str, Any] | None = None,
        retries: int = RETRIES,
        create: bool = True,
    ) -> None:
        self.url = normalize_url(url)
        self._create = create
        self._engine_kwargs = dict(engine_kwargs or {})
        self._postgres = sa.make_url(self.url).get_backend_name() == "postgresql"
        self._retries = retries if self._postgres else 0
        self._pid = -1
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        if not create:
            _check_sqlite_file(self.url)  # read-only, before a connection could change it
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
        if self._create:
            _create_schema(self._engine, self.url)
        else:
            _check_schema(self._engine, self.url)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def artifact_root(self) -> Path:
        path = _sqlite_path(self.url)
        base = Path(path).resolve().parent if path else Path.cwd()
        return base / "tuningfork_artifacts"

    def _run(self, work: Callable[[sa.Connection, int], T]) -> T:
        """``work(connection, attempt)`` on a pooled connection; on PostgreSQL, retried
        from the start after a transient error (``work`` must be safe to run again)."""
        delay = 0.05
        attempt = 0
        while True:
            try:
                with self.engine.connect() as conn:
                    return work(conn, attempt)
            except DBAPIError as error:
                if attempt >= self._retries or not _transient(error):
                    raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(2 * delay, 2.0)
            attempt += 1

    # -- studies --------------------------------------------------------------------------

    def create_study(self, name: str, directions: tuple[str, ...]) -> StudyInfo:
        check_study_name(name)
        created = time.time()
        encoded = json.dumps(list(directions))

        def work(conn: sa.Connection, attempt: int) -> int:
            try:
                with conn.begin():
                    result = conn.execute(
                        _studies.insert().values(name=name, directions=encoded, created=created)
                    )
                    return _inserted_id(result)
            except IntegrityError:
                if attempt > 0:  # did our first try commit before its reply was lost?
                    row = conn.execute(sa.select(_studies).where(_studies.c.name == name)).first()
                    if row is not None and row.created == created and row.directions == encoded:
                        return int(row.study_id)
                raise DuplicatedStudyError(
                    f"a study named {name!r} already exists in {self._shown}; pass "
                    "load_if_exists=True to continue it, or choose another name"
                ) from None

        study_id = self._run(work)
        return StudyInfo(study_id, name, tuple(directions), created)

    def get_study(self, name: str) -> StudyInfo:
        query = sa.select(_studies).where(_studies.c.name == name)
        row = self._run(lambda conn, _: conn.execute(query).first())
        if row is None:
            names = [info.name for info in self.list_studies()]
            raise StudyNotFound(_not_found(name, names) + f" (storage: {self._shown})")
        return _info(row)

    def list_studies(self) -> list[StudyInfo]:
        query = sa.select(_studies).order_by(_studies.c.study_id)
        rows = self._run(lambda conn, _: conn.execute(query).all())
        return [_info(row) for row in rows]

    def delete_study(self, name: str) -> None:
        study_id = self.get_study(name).study_id

        def work(conn: sa.Connection, _: int) -> None:
            with conn.begin():
                conn.execute(_events.delete().where(_events.c.study_id == study_id))
                conn.execute(_heartbeats.delete().where(_heartbeats.c.study_id == study_id))
                if self._postgres:
                    conn.execute(_batches.delete().where(_batches.c.study_id == study_id))
                conn.execute(_studies.delete().where(_studies.c.study_id == study_id))

        self._run(work)

    # -- the log --------------------------------------------------------------------------

    def append(self, study_id: int, events: list[Event]) -> int:
        body = json.dumps(events, separators=(",", ":"))
        if self._postgres:
            token = uuid.uuid4().hex
            return self._run(lambda conn, attempt: _pg_append(conn, study_id, body, token, attempt))
        with self.engine.begin() as conn:
            result = conn.execute(_INSERT_EVENT, {"study_id": study_id, "body": body})
            return _inserted_id(result)

    def read(self, study_id: int, after: int) -> list[Batch]:
        params = {"study_id": study_id, "after": after}

        def work(conn: sa.Connection, _: int) -> Sequence[Any]:
            if self._postgres:  # one SELECT needs no BEGIN / ROLLBACK round trips
                conn.execution_options(isolation_level="AUTOCOMMIT")
            return conn.execute(_SELECT_EVENTS, params).all()

        rows = self._run(work)
        return [(int(seq), json.loads(body)) for seq, body in rows]

    def append_and_read(
        self, study_id: int, events: list[Event], after: int
    ) -> tuple[int, list[Batch]]:
        body = json.dumps(events, separators=(",", ":"))
        params = {"study_id": study_id, "after": after}
        if self._postgres:
            token = uuid.uuid4().hex

            def work(conn: sa.Connection, attempt: int) -> tuple[int, Sequence[Any]]:
                seq = _pg_append(conn, study_id, body, token, attempt)
                return seq, conn.execute(_SELECT_EVENTS, params).all()

            seq, rows = self._run(work)
        else:
            with self.engine.connect() as conn:
                with conn.begin():
                    result = conn.execute(_INSERT_EVENT, {"study_id": study_id, "body": body})
                    seq = _inserted_id(result)
                rows = conn.execute(_SELECT_EVENTS, params).all()
        return seq, [(int(s), json.loads(b)) for s, b in rows]

    def heartbeat(self, study_id: int, numbers: list[int], worker: str, now: float) -> None:
        if not numbers:
            return
        rows = [{"study_id": study_id, "number": n, "worker": worker, "beat": now} for n in numbers]
        if self._postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            upsert = pg_insert(_heartbeats)
            upsert = upsert.on_conflict_do_update(
                index_elements=[_heartbeats.c.study_id, _heartbeats.c.number],
                set_={"worker": upsert.excluded.worker, "beat": upsert.excluded.beat},
            )

            def work(conn: sa.Connection, _: int) -> None:
                with conn.begin():
                    conn.execute(upsert, rows)

            self._run(work)
            return
        with self.engine.begin() as conn:
            conn.execute(
                _heartbeats.delete().where(
                    _heartbeats.c.study_id == study_id, _heartbeats.c.number.in_(numbers)
                )
            )
            conn.execute(_heartbeats.insert(), rows)

    def heartbeats(self, study_id: int) -> dict[int, float]:
        query = sa.select(_heartbeats.c.number, _heartbeats.c.beat).where(
            _heartbeats.c.study_id == study_id
        )
        rows = self._run(lambda conn, _: conn.execute(query).all())
        return {int(number): float(beat) for number, beat in rows}

    @property
    def _shown(self) -> str:
        """The URL for messages, without its password."""
        return redact_url(self.url)

    def __repr__(self) -> str:
        return f"SQLStorage({self._shown!r})"


def _pg_append(conn: sa.Connection, study_id: int, body: str, token: str, attempt: int) -> int:
    """One PostgreSQL append transaction (see the module docstring). A first try is one
    statement in its own transaction (one round trip): take the study lock, insert the
    batch, record its token. The connection is left in autocommit, so a read that follows
    on it needs no BEGIN/ROLLBACK either (the pool resets it on return)."""
    if attempt == 0:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        params = {"namespace": _LOCK_NAMESPACE, "study_id": study_id, "body": body}
        return int(conn.execute(_PG_APPEND, {**params, "token": token}).scalar_one())
    with conn.begin():
        # serialise this study's appends: commit order = sequence order (no lost events)
        conn.execute(_STUDY_LOCK, {"namespace": _LOCK_NAMESPACE, "key": study_id})
        if attempt > 0:  # the lost try, if it committed, did so before we got the lock
            seq = conn.execute(_SELECT_TOKEN, {"token": token}).scalar()
            if seq is not None:
                return int(seq)
        seq = conn.execute(
            _INSERT_EVENT_RETURNING, {"study_id": study_id, "body": body}
        ).scalar_one()
        conn.execute(_batches.insert(), {"token": token, "study_id": study_id, "seq": seq})
    return int(seq)


def _transient(error: DBAPIError) -> bool:
    """Whether retrying the transaction may succeed: the connection was lost, or the server
    reported an operational problem (shutdown, restart, serialisation failure, deadlock)."""
    return bool(error.connection_invalidated) or isinstance(
        error, (OperationalError, InterfaceError)
    )


# what a PostgreSQL server that is restarting answers a new connection (SQLSTATE 57P03)
_RESTARTING = (
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    # a server in a fast restart may accept a connection and close it at once
    "server closed the connection unexpectedly",
)


def _refused(error: DBAPIError, attempt: int) -> bool:
    """Whether the first connection failed for good: no server there, or it refused us (said
    at once, not retried), unless the server said it is restarting (then it is retried)."""
    message = str(error.orig)
    restarting = any(text in message for text in _RESTARTING)
    return attempt == 0 and message.startswith("connection failed") and not restarting


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
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() in ("psycopg", "psycopg_async"):
            require("psycopg", "postgres")
        # no pool_pre_ping (a round trip per checkout): every PostgreSQL call runs in
        # `_run`, which retries on a fresh connection when a pooled one turns out dead
        return sa.create_engine(url, **kwargs)
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
    if engine.dialect.name == "postgresql":
        _create_pg_schema(engine, url)
        return
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
    _check_version(row, url)


def _create_pg_schema(engine: sa.Engine, url: str) -> None:
    """Create the tables and record the schema version in one transaction, under an
    advisory lock, so that workers starting together neither race nor fail."""
    query = sa.select(_meta.c.value).where(_meta.c.key == "schema_version")
    delay = 0.05
    row: Sequence[Any] | None = None
    for attempt in range(RETRIES + 1):
        try:
            with engine.begin() as conn:
                conn.execute(_STUDY_LOCK, {"namespace": _LOCK_NAMESPACE, "key": _SCHEMA_LOCK})
                _metadata.create_all(conn, checkfirst=True)
                _pg_metadata.create_all(conn, checkfirst=True)
                row = conn.execute(query).first()
                if row is None:
                    conn.execute(
                        _meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION))
                    )
                    row = (str(SCHEMA_VERSION),)
            break
        except DBAPIError as error:
            if attempt == RETRIES or not _transient(error) or _refused(error, attempt):
                raise StorageError(f"cannot open {redact_url(url)}: {error.orig}") from error
        time.sleep(delay * (0.5 + random.random()))
        delay = min(2 * delay, 2.0)
    _check_version(row, redact_url(url))


def _check_sqlite_file(url: str) -> None:
    """Raise `StorageNotFound` unless the SQLite file of ``url`` (if it names one) exists
    and holds tuningfork's tables. The file is read through a read-only connection: a
    normal one would create a missing file, and switch a foreign one to WAL mode."""
    path = _sqlite_path(url)
    if path is None:  # not SQLite, or in memory (`_make_engine` explains why not)
        return
    absolute = os.path.abspath(path)
    if not os.path.isfile(absolute):
        raise StorageNotFound(
            f"no tuningfork storage at {absolute} (no such file); check the storage URL, or "
            "create a study there first"
        )
    uri = f"file:{urllib.parse.quote(absolute)}?mode=ro"
    engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    try:
        _check_tables(engine, absolute)
    except DBAPIError as error:
        raise StorageNotFound(f"no tuningfork storage at {absolute}: {error.orig}") from error
    finally:
        engine.dispose()


def _check_schema(engine: sa.Engine, url: str) -> None:
    """What `_create_schema` makes, checked without creating anything: tuningfork's tables
    (already checked for SQLite) and a schema version this tuningfork reads."""
    shown = redact_url(url)
    try:
        if engine.dialect.name != "sqlite":
            _check_tables(engine, shown)
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(_meta.c.value).where(_meta.c.key == "schema_version")
            ).first()
    except DBAPIError as error:
        raise StorageError(f"cannot open {shown}: {error.orig}") from error
    _check_version(row, shown)


def _check_tables(engine: sa.Engine, where: str) -> None:
    with engine.connect() as conn:
        present = set(sa.inspect(conn).get_table_names())
    missing = sorted(set(_metadata.tables) - present)
    if missing:
        raise StorageNotFound(
            f"no tuningfork storage at {where}: the database lacks tuningfork's tables "
            f"({', '.join(missing)}); check the storage URL, or create a study there first"
        )


def _inserted_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    # an INSERT into a table with an autoincrement primary key always reports one
    assert key is not None
    return int(key[0])


def _check_version(row: Any, url: str) -> None:
    found = int(row[0]) if row is not None else SCHEMA_VERSION
    if found != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{url} holds tuningfork storage schema version {found}, but this tuningfork "
            f"reads version {SCHEMA_VERSION}; open it with a matching tuningfork version, "
            "or copy the study to a new storage"
        )
