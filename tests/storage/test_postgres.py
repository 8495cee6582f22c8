"""SQLStorage on a real PostgreSQL server: the storage contract, many worker processes,
no lost events for a polling reader, retries after dropped connections.

Runs when TUNINGFORK_TEST_POSTGRES names a server, e.g.
``postgresql+psycopg://postgres@127.0.0.1:55432/hpo`` (start one with
``bash .ci/pg-up.sh``; `.ci/run` does). Each test gets a fresh database. Without the
variable the tests are skipped, but where ``CI`` or ``TUNINGFORK_REQUIRE_SERVERS`` is set a
missing or unreachable server fails them instead.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import tuningfork as tf
from tuningfork.exceptions import StorageNotFound
from tuningfork.storage import sql
from tuningfork.testing import StorageContract, run_in_processes

ENV = "TUNINGFORK_TEST_POSTGRES"
BASE_URL = os.environ.get(ENV, "")
REQUIRED = bool(os.environ.get("CI") or os.environ.get("TUNINGFORK_REQUIRE_SERVERS"))


def _libpq(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string for psycopg."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _with_database(url: str, database: str) -> str:
    return sa.make_url(url).set(database=database).render_as_string(hide_password=False)


def _server_problem() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can."""
    if not BASE_URL:
        return f"{ENV} is not set (start a server with `bash .ci/pg-up.sh` and set it)"
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed: pip install 'tuningfork[postgres]'"
    try:
        with psycopg.connect(_libpq(sql.normalize_url(BASE_URL)), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as error:
        return f"PostgreSQL at {BASE_URL} ({ENV}) is not reachable: {error}"
    return None


PROBLEM = _server_problem()


def _require_server() -> None:
    if PROBLEM is None:
        return
    if REQUIRED:
        pytest.fail(f"{PROBLEM}; CI/TUNINGFORK_REQUIRE_SERVERS is set, so this fails", False)
    pytest.skip(PROBLEM)


def _admin(sql_text: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(sql.normalize_url(BASE_URL)), autocommit=True) as conn:
        conn.execute(sql_text)  # type: ignore[arg-type]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a fresh, empty database, dropped after the test."""
    _require_server()
    name = f"tf_test_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE DATABASE {name}")
    try:
        yield _with_database(sql.normalize_url(BASE_URL), name)
    finally:
        tf.storage._open.clear()
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- the contract -----------------------------------------------------------------------------


class TestPostgresStorage(StorageContract):
    processes = True
    n_processes = 4
    trials_per_process = 60

    @pytest.fixture
    def storage(self, pg_url: str) -> Iterator[tf.Storage]:
        store = tf.SQLStorage(pg_url)
        yield store
        store.close()

    def make_storage(self, tmp_path: Path) -> tf.Storage:  # the fixture above is used
        raise NotImplementedError


# -- URLs, extras, schema versions --------------------------------------------------------------


def test_plain_postgresql_url_means_psycopg_3() -> None:
    assert sql.normalize_url("postgresql://u@h:5/db") == "postgresql+psycopg://u@h:5/db"
    assert sql.normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sql.normalize_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sql.normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` fail
    with pytest.raises(tf.MissingExtra, match=r"pip install 'tuningfork\[postgres\]'"):
        tf.SQLStorage("postgresql://nobody@127.0.0.1:1/none")


def test_unreachable_server_is_a_clear_error_without_password() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(tf.StorageError, match="cannot open") as info:
        tf.SQLStorage("postgresql://someone:secret@127.0.0.1:1/none")
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "message, refused",
    [
        ('connection failed: connection to server at "127.0.0.1", port 1 failed: Connection '
         "refused", True),
        ('connection failed: connection to server at "127.0.0.1", port 55432 failed: FATAL:  '
         "the database system is shutting down", False),
        ("connection failed: ... FATAL:  the database system is starting up", False),
        ("server closed the connection unexpectedly", False),
        # a server in a fast restart may accept the connection, then close it at once
        ('connection failed: connection to server at "127.0.0.1", port 55432 failed: server '
         "closed the connection unexpectedly", False),
    ],
)  # fmt: skip
def test_a_restarting_server_is_retried_from_the_first_connection(message, refused) -> None:
    error = sa.exc.OperationalError("SELECT 1", {}, Exception(message))
    assert sql._refused(error, attempt=0) is refused
    assert sql._refused(error, attempt=1) is False


def test_unreachable_server_read_only_is_the_same_clear_error() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(tf.StorageError, match="cannot open") as info:
        tf.SQLStorage("postgresql://someone:secret@127.0.0.1:1/none", create=False)
    assert "secret" not in str(info.value) and "someone:***@" in str(info.value)


def test_a_database_without_tuningfork_tables_is_no_storage_and_gets_none(pg_url: str) -> None:
    with pytest.raises(StorageNotFound, match="no tuningfork storage at .*tuningfork_events"):
        tf.SQLStorage(pg_url, create=False)
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()
    tf.SQLStorage(pg_url).create_study("s", ("minimize",))
    assert [info.name for info in tf.SQLStorage(pg_url, create=False).list_studies()] == ["s"]


def test_plain_url_opens(pg_url: str) -> None:
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    store = tf.SQLStorage(plain)
    assert store.url == pg_url
    store.create_study("s", ("minimize",))
    store.close()


def test_schema_version_mismatch_is_a_clear_error(pg_url: str) -> None:
    store = tf.SQLStorage(pg_url)
    with store.engine.begin() as conn:
        found = conn.execute(
            sa.text("SELECT value FROM tuningfork_meta WHERE key = 'schema_version'")
        ).scalar_one()
        assert int(found) == sql.SCHEMA_VERSION
        conn.execute(sa.text("UPDATE tuningfork_meta SET value = '99'"))
    store.close()
    with pytest.raises(tf.SchemaVersionError, match="schema version 99"):
        tf.SQLStorage(pg_url)


# -- no lost events (RECIPES-services.md, PostgreSQL gotcha 5) ----------------------------------


def test_a_slow_commit_does_not_let_a_reader_skip_its_batch(pg_url: str) -> None:
    """Append A is numbered first but commits late; append B comes meanwhile. Without
    serialised appends B would commit first, the reader would move past A's number, and
    never see A."""
    store = tf.SQLStorage(pg_url)
    study = store.create_study("gap", ("minimize",)).study_id
    slow: set[int] = set()

    def delay_commit(_conn: Any) -> None:
        if threading.get_ident() in slow:
            time.sleep(0.6)

    sa.event.listen(store.engine, "commit", delay_commit)
    seqs: dict[str, int] = {}

    def append(label: str, is_slow: bool) -> None:
        if is_slow:
            slow.add(threading.get_ident())
        seqs[label] = store.append(study, [{"op": "test", "label": label}])

    first = threading.Thread(target=append, args=("a", True))
    second = threading.Thread(target=append, args=("b", False))
    first.start()
    time.sleep(0.15)
    second.start()
    seen: list[tuple[int, str]] = []
    last = 0
    while True:
        done = not (first.is_alive() or second.is_alive())  # before the read: a last look
        for seq, events in store.read(study, last):
            seen.append((seq, events[0]["label"]))
            last = seq
        if done or len(seen) >= 2:
            break
        time.sleep(0.005)
    first.join()
    second.join()
    assert sorted(label for _, label in seen) == ["a", "b"], seen
    assert [seq for seq, _ in seen] == sorted(seqs.values())
    store.close()


def _appender(url: str, study_id: int, writer: int, count: int) -> int:
    store = tf.storage.get_storage(url)
    for i in range(count):
        store.append(study_id, [{"op": "test", "label": f"{writer}:{i}"}])
    return count


def test_a_polling_reader_misses_nothing_under_concurrent_appends(pg_url: str) -> None:
    store = tf.SQLStorage(pg_url)
    study = store.create_study("poll", ("minimize",)).study_id
    writers, count = 8, 60
    seen: list[tuple[int, str]] = []
    done = threading.Event()

    def poll() -> None:
        last = 0
        while True:
            finished = done.is_set()
            batches = store.read(study, last)
            for seq, events in batches:
                assert seq > last
                seen.append((seq, events[0]["label"]))
                last = seq
            if finished:
                return
            if not batches:
                time.sleep(0.001)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        run_in_processes(_appender, [(pg_url, study, w, count) for w in range(writers)])
    finally:
        done.set()
        reader.join()
    labels = [label for _, label in seen]
    assert len(labels) == writers * count
    assert set(labels) == {f"{w}:{i}" for w in range(writers) for i in range(count)}
    assert [seq for seq, _ in seen] == [seq for seq, _ in store.read(study, 0)]
    store.close()


# -- retries --------------------------------------------------------------------------------------


def test_an_append_whose_reply_was_lost_is_not_appended_twice(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tf.SQLStorage(pg_url)
    study = store.create_study("lost", ("minimize",)).study_id
    real = sql._pg_append
    calls: list[int] = []

    def commit_then_lose_the_reply(*args: Any) -> int:
        seq = real(*args)
        calls.append(seq)
        if len(calls) == 1:
            raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))
        return seq

    monkeypatch.setattr(sql, "_pg_append", commit_then_lose_the_reply)
    seq = store.append(study, [{"op": "test", "label": "once"}])
    assert calls == [seq, seq]
    assert store.read(study, 0) == [(seq, [{"op": "test", "label": "once"}])]
    seq2, batches = store.append_and_read(study, [{"op": "test", "label": "twice"}], 0)
    assert [label["label"] for _, events in batches for label in events] == ["once", "twice"]
    assert seq2 > seq
    store.close()


def test_a_study_created_before_its_reply_was_lost_is_found_not_duplicated(
    pg_url: str,
) -> None:
    store = tf.SQLStorage(pg_url)
    lose = [True]

    def commit_then_fail(conn: sa.Connection) -> None:
        if lose and lose.pop():
            conn.connection.dbapi_connection.commit()  # the COMMIT goes through ...
            raise sa.exc.OperationalError("COMMIT", {}, Exception("connection lost"))  # ... unseen

    sa.event.listen(store.engine, "commit", commit_then_fail)
    info = store.create_study("once", ("minimize",))
    assert not lose
    assert store.list_studies() == [info]
    with pytest.raises(tf.DuplicatedStudyError):
        store.create_study("once", ("minimize",))
    store.close()


def test_a_terminated_connection_is_retried(pg_url: str) -> None:
    store = tf.SQLStorage(pg_url)
    study = store.create_study("kill", ("minimize",)).study_id
    store.append(study, [{"op": "test", "label": "before"}])
    _terminate_backends(pg_url)
    store.append(study, [{"op": "test", "label": "after"}])
    assert [events[0]["label"] for _, events in store.read(study, 0)] == ["before", "after"]
    _terminate_backends(pg_url)
    assert store.get_study("kill").study_id == study
    store.close()


def _terminate_backends(url: str) -> int:
    import psycopg

    database = sa.make_url(url).database
    with psycopg.connect(_libpq(sql.normalize_url(BASE_URL)), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


# -- many workers on one study ---------------------------------------------------------------


def _value(x: float, y: int) -> float:
    return (x - 0.3) ** 2 + y


def _objective(trial: tf.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    y = trial.suggest_int("y", 0, 9)
    return _value(x, y)


def _optimize_worker(url: str, name: str, index: int, n_trials: int) -> int:
    import logging

    from tuningfork.samplers.random import RandomSampler

    logging.getLogger("tuningfork").setLevel(logging.WARNING)
    study = tf.load_study(name, storage=url, sampler=RandomSampler(seed=index))
    study.optimize(_objective, n_trials=n_trials)
    return n_trials


def _check_complete(study: tf.Study, total: int) -> list[Any]:
    trials = study.trials
    assert len(trials) == total
    assert [t.number for t in trials] == list(range(total))
    assert all(t.state is tf.TrialState.COMPLETE for t in trials), [
        (t.number, t.state) for t in trials if t.state is not tf.TrialState.COMPLETE
    ]
    for t in trials:
        assert t.value == pytest.approx(_value(t.params["x"], t.params["y"]))
    return trials


@pytest.mark.slow
def test_eight_workers_optimize_one_study(pg_url: str) -> None:
    study = tf.create_study("eight", storage=pg_url)
    workers, per = 8, 15
    run_in_processes(_optimize_worker, [(pg_url, "eight", i, per) for i in range(workers)])
    _check_complete(study, workers * per)


@pytest.mark.slow
def test_enqueued_configurations_run_exactly_once_under_eight_workers(pg_url: str) -> None:
    study = tf.create_study("queue", storage=pg_url)
    configs = [{"x": round(0.01 * i, 2), "y": i % 10} for i in range(32)]
    for config in configs:
        study.enqueue_trial(config)
    workers = 8
    run_in_processes(_optimize_worker, [(pg_url, "queue", i, 4) for i in range(workers)])
    trials = _check_complete(study, len(configs))
    ran = sorted((t.params["x"], t.params["y"]) for t in trials)
    assert ran == sorted((c["x"], c["y"]) for c in configs)


@pytest.mark.slow
def test_dropped_connections_lose_no_completed_trial(pg_url: str) -> None:
    tf.create_study("drops", storage=pg_url)
    workers, per = 8, 15
    stop = threading.Event()
    killed: list[int] = []

    def killer() -> None:
        while not stop.wait(0.2):
            killed.append(_terminate_backends(pg_url))

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        run_in_processes(_optimize_worker, [(pg_url, "drops", i, per) for i in range(workers)])
    finally:
        stop.set()
        thread.join()
    assert sum(killed) > 0, "no connection was terminated: the test tested nothing"
    _check_complete(tf.load_study("drops", storage=pg_url), workers * per)


def _slow_objective(trial: tf.Trial) -> float:
    time.sleep(0.02)
    return _objective(trial)


def _slow_worker(url: str, name: str, index: int, n_trials: int) -> int:
    from tuningfork.samplers.random import RandomSampler

    study = tf.load_study(name, storage=url, sampler=RandomSampler(seed=index))
    study.optimize(_slow_objective, n_trials=n_trials)
    return n_trials


@pytest.mark.slow
def test_a_server_restart_loses_no_completed_trial(pg_url: str) -> None:
    """Restart the PostgreSQL server under 4 running workers: every trial completes once."""
    data = Path(os.environ.get("PGDIR", "/tmp/pg-ci")) / "data"
    if os.geteuid() != 0 or not (data / "PG_VERSION").exists():
        pytest.skip("restarting the server needs root and the server of .ci/pg-up.sh")
    pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
    tf.create_study("restart", storage=pg_url)
    restarted: list[int] = []

    def restart() -> None:
        # restart under running workers: once each has connected and started trials (a
        # worker whose very first connection finds no server is told so at once, by design)
        watcher = tf.load_study("restart", storage=pg_url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len({t.worker for t in watcher.get_trials()}) >= 4:
                break
            time.sleep(0.05)
        watcher.storage.close()
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", pg_ctl, "-D", str(data), "-m", "fast", "-w",
             "-l", str(data.parent / "server.log"), "restart"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        restarted.append(done.returncode)

    thread = threading.Thread(target=restart)
    thread.start()
    try:
        run_in_processes(_slow_worker, [(pg_url, "restart", i, 40) for i in range(4)])
    finally:
        thread.join()
    assert restarted == [0], "the server was not restarted: the test tested nothing"
    _check_complete(tf.load_study("restart", storage=pg_url), 160)
