"""A study's identity: trials are told only to the study that asked them, and checkpoint
folders are never shared by two studies of the same name."""

from __future__ import annotations

import pytest

import tuningfork as tf
from tuningfork import TrialState


@pytest.fixture(params=["memory", "sqlite", "journal"])
def url_of(request, tmp_path):
    """A function giving the URL of storage ``n`` of the backend under test."""

    def url(n: int = 0) -> str:
        if request.param == "memory":
            return "memory"
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / f's{n}.db'}"
        return f"journal://{tmp_path / f's{n}.log'}"

    return url


def test_telling_a_trial_to_another_study_raises_and_writes_nothing(url_of):
    storage = tf.storage.get_storage(url_of())
    a = tf.create_study("a", storage=storage)
    b = tf.create_study("b", storage=storage)
    trial_a = a.ask()
    trial_b = b.ask()
    with pytest.raises(tf.TrialNotInStudy, match="belongs to study 'b'"):
        a.tell(trial_b, 1.0)
    assert [t.state for t in a.trials] == [TrialState.RUNNING]
    assert [t.state for t in b.trials] == [TrialState.RUNNING]
    b.tell(trial_b, 2.0)  # the right study still takes it
    a.tell(trial_a, 1.0)
    assert a.trials[0].value == 1.0 and b.trials[0].value == 2.0


def test_a_study_of_the_same_name_in_another_storage_is_another_study(url_of):
    a = tf.create_study("same", storage=url_of(0))
    b = tf.create_study("same", storage=url_of(1))
    trial_b = b.ask()
    a.ask()
    with pytest.raises(tf.TrialNotInStudy):
        a.tell(trial_b, 1.0)
    assert a.trials[0].state is TrialState.RUNNING


def test_a_re_created_study_does_not_take_the_old_ones_trials(url_of):
    url = url_of()
    storage = tf.storage.get_storage(url)
    old = tf.create_study("s", storage=storage)
    trial = old.ask()
    tf.delete_study("s", storage=storage)
    new = tf.create_study("s", storage=storage)
    new.ask()
    with pytest.raises(tf.TrialNotInStudy):
        new.tell(trial, 1.0)


def test_another_handle_on_the_same_study_may_tell(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = tf.create_study("s", storage=url)
    second = tf.load_study("s", storage=url)
    trial = first.ask()
    second.tell(trial, 3.0)
    assert first.trials[0].value == 3.0


def test_checkpoint_folders_differ_between_same_named_studies(tmp_path):
    # two storages in one directory share the artefact root beside them
    one = tf.create_study("net", storage=f"sqlite:///{tmp_path / 'a.db'}")
    two = tf.create_study("net", storage=f"journal://{tmp_path / 'b.log'}")
    assert one.artifact_root == two.artifact_root == tmp_path / "tuningfork_artifacts"
    first = one.ask()
    (first.checkpoint_dir / "model.pt").write_text("weights of study one")
    one.tell(first, 1.0)
    second = two.ask()
    assert second.number == first.number == 0
    assert not second.resumed
    assert not (second.checkpoint_dir / "model.pt").exists()  # the documented pattern is safe
    assert one.artifact_dir != two.artifact_dir
    assert one.artifact_dir.name.startswith("net-")
    assert one.uid and two.uid and one.uid != two.uid
    # every handle of a study finds the same folder
    assert tf.load_study("net", f"sqlite:///{tmp_path / 'a.db'}").artifact_dir == one.artifact_dir


def test_a_re_created_study_gets_a_fresh_checkpoint_folder(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    old = tf.create_study("s", storage=url)
    trial = old.ask()
    (trial.checkpoint_dir / "model.pt").write_text("old")
    old.tell(trial, 1.0)
    tf.delete_study("s", storage=url, keep_artifacts=True)
    new = tf.create_study("s", storage=url)
    assert not any(new.ask().checkpoint_dir.iterdir())


def test_delete_study_removes_its_artefacts_only(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    keep = tf.create_study("keep", storage=url)
    gone = tf.create_study("gone", storage=url)
    for study in (keep, gone):
        trial = study.ask()
        (trial.checkpoint_dir / "model.pt").write_text(study.name)
        study.tell(trial, 1.0)
    removed = tf.delete_study("gone", storage=url)
    assert removed == gone.artifact_dir
    assert not removed.exists()
    assert (keep.artifact_dir / "trial_0" / "model.pt").read_text() == "keep"
    assert [s.name for s in tf.list_studies(url)] == ["keep"]
    kept = tf.delete_study("keep", storage=url, keep_artifacts=True)
    assert kept == keep.artifact_dir and (kept / "trial_0" / "model.pt").exists()
    never_ran = tf.create_study("empty", storage=url)
    assert tf.delete_study(never_ran.name, storage=url) is None


def test_a_copy_keeps_its_identity_and_checkpoints(tmp_path):
    source = f"sqlite:///{tmp_path / 'a.db'}"
    study = tf.create_study("s", storage=source)
    trial = study.ask()
    (trial.checkpoint_dir / "model.pt").write_text("w")
    study.tell(trial, 1.0)
    tf.copy_study("s", source, f"journal://{tmp_path / 'b.log'}")
    moved = tf.load_study("s", f"journal://{tmp_path / 'b.log'}")
    assert moved.uid == study.uid
    assert moved.artifact_dir == study.artifact_dir


def test_a_study_without_a_recorded_id_keeps_its_old_folder(tmp_path):
    storage = tf.storage.get_storage(f"sqlite:///{tmp_path / 's.db'}")
    info = storage.create_study("legacy", ("minimize",))
    storage.append(info.study_id, [{"op": "study", "attrs": {"directions": ["minimize"]}}])
    study = tf.load_study("legacy", storage)
    assert study.uid is None
    assert study.artifact_dir == tmp_path / "tuningfork_artifacts" / "legacy"
