"""SQLStorage on SQLite: schema versions, WAL mode, and JSON (never pickle) in the tables."""

from __future__ import annotations

import json
import sqlite3

import pytest

import tuningfork as tf
from tuningfork.storage.sql import SCHEMA_VERSION


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "study.db"


def test_schema_version_mismatch_is_a_clear_error(db_path):
    url = f"sqlite:///{db_path}"
    tf.SQLStorage(url).close()
    with sqlite3.connect(db_path) as conn:
        (found,) = conn.execute(
            "SELECT value FROM tuningfork_meta WHERE key = 'schema_version'"
        ).fetchone()
        assert int(found) == SCHEMA_VERSION
        conn.execute("UPDATE tuningfork_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(tf.SchemaVersionError) as info:
        tf.SQLStorage(url)
    message = str(info.value)
    assert str(db_path) in message
    assert "schema version 99" in message
    assert f"reads version {SCHEMA_VERSION}" in message
    assert "matching tuningfork version" in message
    assert isinstance(info.value, tf.StorageError)


def test_reopening_a_matching_version_keeps_the_studies(db_path):
    url = f"sqlite:///{db_path}"
    first = tf.SQLStorage(url)
    first.create_study("kept", ("minimize",))
    first.close()
    again = tf.SQLStorage(url)
    assert [info.name for info in again.list_studies()] == ["kept"]
    again.close()


def test_sqlite_runs_in_wal_mode(db_path):
    storage = tf.SQLStorage(f"sqlite:///{db_path}")
    with storage.engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        timeout_ms = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert str(mode).lower() == "wal"
    assert timeout_ms > 0
    storage.close()
    with sqlite3.connect(db_path) as conn:  # WAL is a property of the file, seen by anyone
        assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    conn.close()


def test_events_are_json_text_not_pickle(db_path):
    url = f"sqlite:///{db_path}"
    study = tf.create_study("plain", storage=url, seed=1)
    space = tf.Space(lr=tf.Float(1e-4, 1.0, log=True), kind=tf.Categorical(["a", None, True]))
    study.optimize(lambda t: t.params["lr"], n_trials=5, space=space)
    trial = study.ask()
    trial.report(0.5, 1)
    trial.set_user_attr("note", {"nested": [1, 2.5, None]})
    study.tell(trial, 0.25)
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT seq, study_id, typeof(body), body FROM tuningfork_events ORDER BY seq"
        ).fetchall()
        studies = conn.execute("SELECT directions FROM tuningfork_studies").fetchall()
    conn.close()
    assert rows
    ops = set()
    for _seq, _study_id, kind, body in rows:
        assert kind == "text"
        assert not body.startswith("\x80")  # the pickle protocol header
        events = json.loads(body)
        assert isinstance(events, list)
        ops.update(event["op"] for event in events)
    assert {"study", "trial", "params", "report", "attrs", "finish"} <= ops
    assert json.loads(studies[0][0]) == ["minimize"]
    # what was read raw is what the study replays
    assert study.trials[-1].user_attrs == {"note": {"nested": [1, 2.5, None]}}


def test_a_read_only_copy_opens_with_plain_sqlite(db_path):
    url = f"sqlite:///{db_path}"
    tf.create_study("other-tools", storage=url).optimize(
        lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=3
    )
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM tuningfork_studies")]
        finished = [
            event
            for (body,) in conn.execute("SELECT body FROM tuningfork_events")
            for event in json.loads(body)
            if event["op"] == "finish"
        ]
    conn.close()
    assert names == ["other-tools"]
    assert [event["state"] for event in finished] == ["COMPLETE"] * 3
