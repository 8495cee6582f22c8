"""The public interface of policies: `StudyReader`, truly frozen trials, declared
abilities, value objects that check themselves, study attributes written key by key."""

from __future__ import annotations

import json
import pickle

import pytest

import tuningfork as tf
from tuningfork import Assignment, Reservation, StudyReader, TrialState


def _study(**options) -> tf.Study:
    return tf.create_study(storage="memory", sampler=tf.RandomSampler(seed=0), **options)


def test_a_frozen_trial_does_not_change_after_a_report():
    study = _study()
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.report(1.0, 1)
    before = trial.frozen()
    stored = study.reader.trial(trial.number)
    trial.report(2.0, 2)
    trial.set_user_attr("k", 1)
    assert dict(before.intermediate_values) == {1: 1.0}
    assert dict(stored.intermediate_values) == {1: 1.0} and "k" not in stored.user_attrs
    assert dict(study.reader.trial(trial.number).intermediate_values) == {1: 1.0, 2: 2.0}


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.system_attrs.__setitem__("x", 1),
        lambda t: t.params.update(x=2),
        lambda t: t.user_attrs.setdefault("x", 1),
        lambda t: t.intermediate_values.pop(1),
        lambda t: t.params.clear(),
    ],
)
def test_a_frozen_trial_refuses_changes_and_the_view_is_untouched(change):
    study = _study()
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.report(1.0, 1)
    frozen = study.reader.trial(trial.number)
    with pytest.raises(TypeError, match="read-only"):
        change(frozen)
    again = study.get_trials()[0]
    assert "x" not in again.system_attrs and 1 in again.intermediate_values


def test_frozen_mappings_copy_pickle_and_serialise_like_dicts():
    study = _study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    trial = study.trials[0]
    copy = dict(trial.params)
    copy["y"] = 1  # a copy is a plain dict
    assert json.loads(json.dumps(trial.params)) == trial.params
    assert pickle.loads(pickle.dumps(trial)) == trial
    user = tf.FrozenTrial(number=0, state=TrialState.COMPLETE, params={"a": 1})
    with pytest.raises(TypeError):
        user.params["a"] = 2  # built from a plain dict, frozen too


def test_changed_since_lists_each_changed_trial_once_in_order():
    study = _study()
    reader = study.reader
    assert reader.changed_since(0) == []
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert [t.number for t in reader.changed_since(0)] == [0, 1, 2]
    cursor = reader.cursor
    assert reader.changed_since(cursor) == []
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.report(0.5, 1)
    study.tell(trial.number, 0.5)
    changed = reader.changed_since(cursor)
    assert [t.number for t in changed] == [3]
    assert changed[0].state is TrialState.COMPLETE  # as it stands now


def test_the_reader_answers_without_reading_the_storage():
    study = _study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    running = study.ask()
    waiting = study.enqueue_trial({"x": 0.5})
    reader = study.reader
    assert len(reader) == 4 and reader.n_complete == 2
    assert reader.numbers("RUNNING") == (running.number,)
    assert reader.numbers(TrialState.WAITING) == (waiting,)
    assert [t.number for t in reader.running_trials()] == [running.number]
    assert reader.best_trial is not None and reader.best_trial.value == study.best_value
    assert reader.directions == ("minimize",) and reader.direction == "minimize"
    assert reader.seed == int(study.system_attrs["seed"] or 0)
    assert not reader.claimed("grid:0")
    with pytest.raises(tf.TrialNotFound):
        reader.trial(99)
    with pytest.raises(TypeError):
        reader.attrs["seed"] = 3  # type: ignore[index]


def test_a_policy_records_through_the_reader_and_the_study_appends():
    class Noting(tf.RandomSampler):
        def sample(self, study, trial, name, distribution):
            study.record("noted", {"trial": trial.number})
            return super().sample(study, trial, name, distribution)

    study = tf.create_study(storage="memory", sampler=Noting(seed=1))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert study.system_attrs["noted"] == {"trial": 1}


def test_abilities_are_declared_not_guessed():
    class Claiming(tf.RandomSampler):
        def reserve(self, study, space):
            return None

    class Assigning(tf.Scheduler):
        def decide(self, study, trial, step, value):
            return tf.Decision.CONTINUE

        def assign(self, study, space):
            return None

    assert not tf.RandomSampler.reserves and Claiming.reserves
    assert not tf.MedianStopping.assigns and Assigning.assigns and tf.ASHA.assigns
    assert not tf.NoScheduler.decides and tf.MedianStopping.decides
    assert tf.AnyOf(tf.MedianStopping(), tf.ASHA(1, 9, 3)).assigns
    assert not tf.AnyOf(tf.MedianStopping(), tf.PatienceStopping(3)).assigns


@pytest.mark.parametrize(
    "make, option",
    [
        (lambda: Assignment(resume=-1), "resume"),
        (lambda: Assignment(resume=2, wait=True), "wait"),
        (lambda: Assignment(checkpoint={"trial": 1}), "checkpoint"),
        (lambda: Assignment(budget=0), "budget"),
        (lambda: Assignment(claims="promote:1"), "claims"),
        (lambda: Reservation(key=""), "key"),
    ],
)
def test_value_objects_check_themselves(make, option):
    with pytest.raises(tf.OptionError) as raised:
        make()
    assert raised.value.option == option and isinstance(raised.value, ValueError)


def test_study_attributes_are_written_key_by_key(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    first = tf.create_study("a", storage=url)
    second = tf.load_study("a", storage=url)
    first.set_user_attr("one", 1)
    second.set_user_attr("two", 2)  # its view had no "one": a whole-dict write dropped it
    assert tf.load_study("a", storage=url).user_attrs == {"one": 1, "two": 2}


def test_policies_get_the_reader_not_the_study():
    seen = []

    class Spy(tf.RandomSampler):
        def sample(self, study, trial, name, distribution):
            seen.append(study)
            return super().sample(study, trial, name, distribution)

    study = tf.create_study(storage="memory", sampler=Spy(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert seen and all(isinstance(s, StudyReader) and s is study.reader for s in seen)


def test_experimental_api_says_so_and_warns_once():
    from tuningfork import _experimental

    assert _experimental.is_experimental(tf.DEHB)
    from tuningfork.testing.simulate import simulate

    assert _experimental.is_experimental(simulate)
    assert not _experimental.is_experimental(StudyReader.record)  # the auto sampler uses it
    assert not _experimental.is_experimental(tf.ASHA)

    @_experimental.experimental("9.9")
    def fresh() -> int:
        return 1

    with pytest.warns(tf.ExperimentalWarning, match="fresh is experimental"):
        assert fresh() == 1
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fresh() == 1  # once per process
