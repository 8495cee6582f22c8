"""A study capped by ``max_trials`` ends with its best configurations trained to
max_budget (issue 13, item 5): at the cap, the best paused trial of the highest rung is
promoted beyond the rule until ``finish_top`` trials complete there."""

from __future__ import annotations

import collections
import threading
import time
import warnings

import pytest

import tuningfork as tf
from tuningfork.schedulers._rungs import value_at
from tuningfork.trial import TrialState

SPACE = tf.Space(x=tf.Float(0.0, 1.0))
CAP = r"max_trials=20 is below the 27 trials"


def curve(x: float, step: int) -> float:
    """A learning curve whose ranking of configurations is the same at every step."""
    return x + 1.0 / step


def objective(trial: tf.Trial) -> float:
    x = trial.params["x"]
    value = float("nan")
    for step in range((trial.last_step or 0) + 1, trial.budget + 1):
        value = curve(x, step)
        trial.report(value, step)
        if trial.should_stop():
            raise tf.TrialPruned()
    return value


def capped(scheduler: tf.Scheduler, *, worsening: bool = False, n_jobs: int = 1) -> tf.Study:
    """Run ``scheduler`` under max_trials=20; ``worsening``: each configuration is worse
    than the one before, the order in which ASHA's rule promotes the fewest."""
    study = tf.create_study(
        storage="memory", sampler=tf.RandomSampler(seed=3), scheduler=scheduler, seed=3
    )
    if worsening:
        for i in range(20):
            study.enqueue_trial({"x": i / 19})
    with pytest.warns(UserWarning, match=CAP):
        study.optimize(objective, space=SPACE, max_trials=20, n_jobs=n_jobs)
    return study


def assert_finished_best(study: tf.Study, finish_top: int) -> None:
    """Exactly ``finish_top`` trials completed at 27: the best at the highest budget that
    the other trials reached."""
    complete = study.get_trials([TrialState.COMPLETE])
    assert len(study.trials) == 20
    assert len(complete) == finish_top and all(t.last_step == 27 for t in complete)
    budget = max(t.last_step for t in study.trials if t.state is not TrialState.COMPLETE)
    there = [t for t in study.trials if value_at(t, budget) is not None]
    ranked = sorted(there, key=lambda t: (value_at(t, budget), t.number))
    assert {t.number for t in complete} == {t.number for t in ranked[:finish_top]}
    assert study.best_trial.number == ranked[0].number
    assert all(t.system_attrs.get("promoted_at_cap") for t in complete)


@pytest.mark.parametrize("finish_top", [1, 2])
def test_capped_asha_trains_the_best_of_its_highest_rung_to_max_budget(finish_top: int) -> None:
    """Worsening configurations: ASHA's rule takes 6 of 20 to budget 3, 2 to 9, none to 27."""
    study = capped(tf.ASHA(1, 27, 3, mode="promotion", finish_top=finish_top), worsening=True)
    assert_finished_best(study, finish_top)


@pytest.mark.parametrize("finish_top", [1, 2])
def test_capped_hyperband_trains_the_best_of_its_first_rung_to_max_budget(finish_top: int) -> None:
    """Its first bracket needs 27 trials at budget 1 before it promotes any: with 20, only
    the cap's promotions take the best of them on, rung by rung."""
    study = capped(tf.Hyperband(1, 27, 3, finish_top=finish_top))
    assert_finished_best(study, finish_top)
    assert max(t.last_step for t in study.trials if t.state is TrialState.PAUSED) == 1


def test_capped_sha_in_stopping_mode_runs_its_finish_to_the_end() -> None:
    study = capped(tf.SHA(1, 27, 3, mode="stopping", finish_top=2))
    assert len(study.get_trials([TrialState.COMPLETE])) == 2


@pytest.mark.parametrize("finish_top", [1, 2])
def test_two_threads_never_resume_a_trial_twice_and_finish_exactly_finish_top(
    finish_top: int,
) -> None:
    """The thread that meets the cap while the other runs a trial leaves the finish to it
    (finish_top=1), or both finish one each (2); claims keep them from resuming one trial."""
    runs: collections.Counter[tuple[int, int]] = collections.Counter()
    active: set[int] = set()
    lock = threading.Lock()

    def tracked(trial: tf.Trial) -> float:
        with lock:
            assert trial.number not in active, f"trial {trial.number} runs twice at once"
            active.add(trial.number)
            runs[(trial.number, (trial.last_step or 0) + 1)] += 1
        try:
            time.sleep(0.002)  # let the two threads overlap
            return objective(trial)
        finally:
            with lock:
                active.discard(trial.number)

    for seed in range(3):
        study = tf.create_study(
            storage="memory",
            sampler=tf.RandomSampler(seed=seed),
            scheduler=tf.Hyperband(1, 27, 3, finish_top=finish_top),
        )
        runs.clear()
        with pytest.warns(UserWarning, match=CAP):
            study.optimize(tracked, space=SPACE, max_trials=20, n_jobs=2)
        assert max(runs.values()) == 1, "a trial was resumed at the same step twice"
        assert not study.get_trials([TrialState.RUNNING, TrialState.FAIL])
        assert_finished_best(study, finish_top)


def test_finish_top_zero_ends_where_the_rule_leaves_the_trials() -> None:
    study = capped(tf.Hyperband(1, 27, 3, finish_top=0))
    assert {t.state for t in study.trials} == {TrialState.PAUSED}
    with pytest.raises(tf.TuningforkError, match="no completed trial"):
        study.best_trial  # noqa: B018


def test_the_cap_warning_says_what_happens_and_is_given_only_when_needed() -> None:
    study = tf.create_study(storage="memory", scheduler=tf.ASHA(1, 27, 3, mode="promotion"))
    with pytest.warns(UserWarning) as caught:
        study.optimize(objective, space=SPACE, max_trials=20, n_trials=1)
    (message,) = [str(w.message) for w in caught]
    assert message == (
        "max_trials=20 is below the 27 trials that ASHA's first bracket may need before its "
        "rule trains a trial to max_budget=27; when the cap is reached, the best paused "
        "trials of the highest rung are promoted rung by rung until 1 trial(s) complete at "
        "max_budget (finish_top)"
    )
    assert (
        tf.ASHA(1, 27, 3, mode="promotion", finish_top=2)
        .cap_warning(20)
        .endswith("until 2 trial(s) complete at max_budget (finish_top)")
    )
    assert tf.SHA(1, 27, 3, n_trials=9).cap_warning(20) is None  # 9 trials suffice
    assert tf.ASHA(1, 27, 3, mode="stopping").cap_warning(2) is None  # trials run to 27
    assert "SHA" in tf.AnyOf(tf.SHA(1, 27, 3), tf.MedianStopping()).cap_warning(20)
    study = tf.create_study(storage="memory", scheduler=tf.ASHA(1, 27, 3, mode="promotion"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all
        study.optimize(objective, space=SPACE, max_trials=27, n_trials=3)


def test_finish_top_is_checked_recorded_and_restored() -> None:
    with pytest.raises(tf.SchedulerError, match=r"finish_top must be an int >= 0.*got -1"):
        tf.ASHA(finish_top=-1)
    storage = tf.storage.InMemoryStorage()
    for i, scheduler in enumerate([tf.ASHA(1, 27, 3, finish_top=3), tf.BOHB(finish_top=2)]):
        assert scheduler.describe()["finish_top"] == scheduler.finish_top
        tf.create_study(f"f{i}", storage=storage, scheduler=scheduler)
        assert tf.load_study(f"f{i}", storage=storage).scheduler.finish_top == scheduler.finish_top
