"""copy_study: a study moves between storages with every trial and attribute intact."""

from __future__ import annotations

from pathlib import Path

import pytest

import tuningfork as tf
from tuningfork.exceptions import DuplicatedStudyError, StudyNotFound
from tuningfork.storage import InMemoryStorage, copy_study
from tuningfork.storage.journal import JournalStorage
from tuningfork.trial import TrialState


def _make_study(storage: tf.Storage) -> tf.Study:
    study = tf.create_study("src", storage=storage, sampler=tf.GridSampler({"a": [1, 2, 3]}))
    study.set_user_attr("owner", {"name": "me", "tags": ["x", 1]})
    study.enqueue_trial({"a": 2}, user_attrs={"queued": True})
    study.optimize(lambda t: float(t.suggest_categorical("a", [1, 2, 3])), n_trials=2)
    paused = study.ask()
    paused.suggest_categorical("a", [1, 2, 3])
    paused.report(0.5, step=1)
    paused.set_user_attr("checkpoint", "ckpt-1")
    study.tell(paused, state="PAUSED")
    pruned = study.ask()
    study.tell(pruned, state="PRUNED")
    study.enqueue_trial({"a": 3})  # stays WAITING
    return study


def _snapshot(study: tf.Study) -> tuple[list[dict], dict]:
    return [t.to_json() for t in study.trials], study.system_attrs


def test_round_trip_sqlite_journal_memory(tmp_path: Path) -> None:
    sqlite = tf.SQLStorage(f"sqlite:///{tmp_path / 'a.db'}")
    journal = JournalStorage(tmp_path / "b.log")
    memory = InMemoryStorage()
    source = _make_study(sqlite)
    states = {t.state for t in source.trials}
    assert {TrialState.PAUSED, TrialState.COMPLETE, TrialState.WAITING} <= states
    expected = _snapshot(source)

    info = copy_study("src", sqlite, journal)
    assert info.name == "src" and info.directions == ("minimize",)
    copy_study("src", journal, memory, new_name="dst")
    for storage, name in ((journal, "src"), (memory, "dst")):
        copied = tf.load_study(name, storage=storage)
        assert _snapshot(copied) == expected
        assert copied.user_attrs == {"owner": {"name": "me", "tags": ["x", 1]}}
        assert copied.directions == source.directions
    # claims carried over: the copy goes on exactly as the original does
    runs = []
    for storage, name in ((sqlite, "src"), (memory, "dst")):
        study = tf.load_study(name, storage=storage, sampler=tf.GridSampler({"a": [1, 2, 3]}))
        study.optimize(lambda t: float(t.suggest_categorical("a", [1, 2, 3])), n_trials=5)
        runs.append([(t.number, t.state, t.params) for t in study.trials])
    assert runs[0] == runs[1]
    assert runs[0][4] == (4, TrialState.COMPLETE, {"a": 3})  # the queued trial, run once


def test_copy_by_url_and_errors(tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'a.db'}"
    target_url = f"journal://{tmp_path / 'b.log'}"
    study = tf.create_study("s", storage=source_url, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=3)
    copy_study("s", source_url, target_url)
    assert _snapshot(tf.load_study("s", storage=target_url)) == _snapshot(study)
    with pytest.raises(DuplicatedStudyError, match="already has a study named 's'"):
        copy_study("s", source_url, target_url)
    with pytest.raises(StudyNotFound, match="nope"):
        copy_study("nope", source_url, target_url)
    with pytest.raises(DuplicatedStudyError, match="onto itself"):
        copy_study("s", source_url, source_url)
    copy_study("s", source_url, source_url, new_name="s2")
    assert _snapshot(tf.load_study("s2", storage=source_url)) == _snapshot(study)
