"""MedianStopping (Golovin et al., 2017): stops exactly the trials behind the median."""

from __future__ import annotations

import pytest

import tuningfork as tf
from tuningfork import Decision, TrialState
from tuningfork.trial import FrozenTrial


def completed_study(curves, direction="minimize"):
    """A study whose completed trials reported ``curves`` (a list of lists of values)."""
    study = tf.create_study(storage="memory", direction=direction)
    for curve in curves:
        trial = study.ask()
        for step, value in enumerate(curve):
            trial.report(value, step)
        study.tell(trial, curve[-1])
    return study


def running(values) -> FrozenTrial:
    return FrozenTrial(
        number=99,
        state=TrialState.RUNNING,
        intermediate_values={s: v for s, v in enumerate(values)},
    )


def decide(rule, study, values):
    step = len(values) - 1
    return rule.decide(study.reader, running(values), step, values[-1])


def test_stops_a_trial_worse_than_the_median_at_that_step():
    study = completed_study([[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]])  # median 3 at each step
    rule = tf.MedianStopping(n_startup_trials=5)
    assert decide(rule, study, [3.5]) is Decision.STOP
    assert decide(rule, study, [3.0]) is Decision.CONTINUE  # equal to the median: not worse
    assert decide(rule, study, [2.5]) is Decision.CONTINUE
    # the trial's *best* value so far counts: a good early value keeps it alive
    assert decide(rule, study, [2.0, 3.5]) is Decision.CONTINUE
    assert decide(rule, study, [4.0, 3.5]) is Decision.STOP


def test_maximize_flips_the_comparison():
    study = completed_study([[1], [2], [3], [4], [5]], direction="maximize")
    rule = tf.MedianStopping(n_startup_trials=5)
    assert decide(rule, study, [2.5]) is Decision.STOP
    assert decide(rule, study, [3.5]) is Decision.CONTINUE


def test_startup_trials_warmup_and_interval():
    study = completed_study([[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]])
    assert decide(tf.MedianStopping(n_startup_trials=4), study, [9]) is Decision.CONTINUE
    rule = tf.MedianStopping(n_startup_trials=3, n_warmup_steps=2)
    assert decide(rule, study, [9]) is Decision.CONTINUE
    assert decide(rule, study, [9, 9]) is Decision.CONTINUE
    assert decide(rule, study, [9, 9, 9]) is Decision.STOP
    rule = tf.MedianStopping(n_startup_trials=3, interval_steps=2)
    assert decide(rule, study, [9]) is Decision.STOP  # step 0 is checked
    assert decide(rule, study, [9, 9]) is Decision.CONTINUE  # step 1 is skipped
    assert decide(rule, study, [9, 9, 9]) is Decision.STOP


def test_needs_completed_trials_that_reached_the_step():
    study = completed_study([[1], [2], [3]])  # nobody reached step 1
    rule = tf.MedianStopping(n_startup_trials=1)
    assert decide(rule, study, [0.0, 9.0]) is Decision.CONTINUE
    assert decide(tf.MedianStopping(n_startup_trials=1, n_min_trials=4), study, [9]) is (
        Decision.CONTINUE
    )


def test_running_average_variant():
    # completed curves' running averages at step 1: (0+4)/2=2, (2+2)/2=2, (4+0)/2=2
    study = completed_study([[0, 4], [2, 2], [4, 0]])
    plain = tf.MedianStopping(n_startup_trials=3)
    averaged = tf.MedianStopping(n_startup_trials=3, use_running_average=True)
    assert decide(plain, study, [3, 2.5]) is Decision.STOP  # median of values at step 1 is 2
    assert decide(averaged, study, [3, 1.5]) is Decision.CONTINUE  # best 1.5 < 2


@pytest.mark.parametrize(
    "kwargs", [{"n_startup_trials": -1}, {"n_warmup_steps": -1}, {"interval_steps": 0}]
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        tf.MedianStopping(**kwargs)


def test_saves_work_in_optimize():
    """With curves whose final value is fixed by the start, stopping prunes the bad half."""
    study = tf.create_study(storage="memory", seed=0, scheduler=tf.MedianStopping())
    steps_run = []

    def objective(trial):
        level = trial.suggest_float("level", 0.0, 1.0)
        for step in range(10):
            trial.report(level + 1.0 / (step + 1), step)
            if trial.should_stop():
                steps_run.append(step + 1)
                raise tf.TrialPruned()
        steps_run.append(10)
        return level

    study.optimize(objective, n_trials=40)
    pruned = study.get_trials(states=[TrialState.PRUNED])
    complete = study.get_trials(states=[TrialState.COMPLETE])
    assert len(pruned) >= 10
    assert sum(steps_run) < 0.75 * 10 * 40
    # every pruned trial was worse than the median of those completed before it
    best_pruned = min(t.params["level"] for t in pruned)
    assert best_pruned > min(t.params["level"] for t in complete)
