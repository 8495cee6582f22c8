"""Early-stopping rules: percentile, threshold, time/budget, rank, patience, and AnyOf."""

from __future__ import annotations

import json
import math
import random
import time

import pytest

import tuningfork as tf
from tuningfork import Decision, TrialState
from tuningfork.schedulers.base import Scheduler
from tuningfork.schedulers.early_stopping import (
    AnyOf,
    PatienceStopping,
    PercentileStopping,
    RankStopping,
    ThresholdStopping,
    TimeStopping,
)
from tuningfork.trial import FrozenTrial


def completed_study(curves, direction="minimize", running_curves=()):
    """A study whose completed trials reported ``curves`` (a list of lists of values), and
    whose running trials reported ``running_curves``."""
    study = tf.create_study(storage="memory", direction=direction)
    for curve in curves:
        trial = study.ask()
        for step, value in enumerate(curve):
            trial.report(value, step)
        study.tell(trial, curve[-1])
    for curve in running_curves:
        trial = study.ask()
        for step, value in enumerate(curve):
            trial.report(value, step)
    return study


def running(values, start=None) -> FrozenTrial:
    return FrozenTrial(
        number=99,
        state=TrialState.RUNNING,
        intermediate_values={s: v for s, v in enumerate(values)},
        datetime_start=start,
    )


def decide(rule, study, values, start=None):
    step = len(values) - 1
    return rule.decide(study.reader, running(values, start), step, values[-1])


def run_levels(rule, levels, n_steps, curve, direction="minimize"):
    """Run one trial per level through ``study.optimize``; the trial reports
    ``curve(level, step)`` for ``n_steps`` steps. Returns the study and the last step each
    trial reported, by trial number."""
    study = tf.create_study(storage="memory", direction=direction, scheduler=rule)
    last_step = {}

    def objective(trial):
        level = levels[trial.number]
        for step in range(n_steps):
            trial.report(curve(level, step), step)
            last_step[trial.number] = step
            if trial.should_stop():
                raise tf.TrialPruned()
        return curve(level, n_steps - 1)

    study.optimize(objective, n_trials=len(levels))
    return study, last_step


def pruned_numbers(study):
    return {t.number for t in study.get_trials(states=[TrialState.PRUNED])}


# --- PercentileStopping ---------------------------------------------------------------------


def test_percentile_minimize_keeps_the_best_quarter():
    study = completed_study([[1], [2], [3], [4], [5]])  # 25th percentile: 2.0
    rule = PercentileStopping(25.0)
    assert decide(rule, study, [2.5]) is Decision.STOP
    assert decide(rule, study, [2.0]) is Decision.CONTINUE  # equal: not worse
    assert decide(rule, study, [1.5]) is Decision.CONTINUE
    assert decide(rule, study, [1.0, 2.5]) is Decision.CONTINUE  # best so far counts


def test_percentile_maximize_uses_the_complementary_percentile():
    study = completed_study([[1], [2], [3], [4], [5]], direction="maximize")  # 75th: 4.0
    rule = PercentileStopping(25.0)
    assert decide(rule, study, [3.5]) is Decision.STOP
    assert decide(rule, study, [4.0]) is Decision.CONTINUE
    assert decide(rule, study, [4.5]) is Decision.CONTINUE
    assert decide(rule, study, [5.0, 3.0]) is Decision.CONTINUE


def test_percentile_interpolates_linearly():
    study = completed_study([[1], [2], [3], [4]])  # 25th percentile: 1.75
    rule = PercentileStopping(25.0, n_startup_trials=4)
    assert decide(rule, study, [1.8]) is Decision.STOP
    assert decide(rule, study, [1.7]) is Decision.CONTINUE


def test_percentile_startup_warmup_interval_and_min_trials():
    study = completed_study([[1, 1, 1], [2, 2, 2], [3, 3, 3]])
    assert decide(PercentileStopping(n_startup_trials=4), study, [9]) is Decision.CONTINUE
    rule = PercentileStopping(n_startup_trials=3, n_warmup_steps=1, interval_steps=2)
    assert decide(rule, study, [9]) is Decision.CONTINUE  # warm-up
    assert decide(rule, study, [9, 9]) is Decision.STOP
    assert decide(rule, study, [9, 9, 9]) is Decision.CONTINUE  # off the interval
    rule = PercentileStopping(n_startup_trials=3, n_min_trials=4)
    assert decide(rule, study, [9]) is Decision.CONTINUE


def test_percentile_50_decides_as_median_stopping():
    seen = set()
    for seed in range(12):
        rng = random.Random(seed)
        direction = ("minimize", "maximize")[seed % 2]
        curves = [
            [rng.gauss(0, 1) for _ in range(rng.randint(1, 6))] for _ in range(rng.randint(1, 8))
        ]
        study = completed_study(curves, direction=direction)
        options = {
            "n_startup_trials": rng.randint(0, 4),
            "n_warmup_steps": rng.randint(0, 2),
            "interval_steps": rng.randint(1, 2),
            "n_min_trials": rng.randint(1, 3),
        }
        percentile = PercentileStopping(50.0, **options)
        median = tf.MedianStopping(**options)
        for _ in range(20):
            candidate = [rng.gauss(0, 1) for _ in range(rng.randint(1, 6))]
            expected = decide(median, study, candidate)
            assert decide(percentile, study, candidate) is expected
            seen.add(expected)
    assert seen == {Decision.STOP, Decision.CONTINUE}


def test_percentile_end_to_end_stops_trials_outside_the_quarter():
    # after 4 completed trials (0.5, 0.2, 0.8, 0.1) the 25th percentile is 0.175: trial 4
    # (0.3) is stopped although the median (0.35) would keep it; trial 5 (0.15) completes,
    # the 25th percentile becomes 0.15, trial 6 (0.9) is stopped, trial 7 (0.05) completes.
    levels = [0.5, 0.2, 0.8, 0.1, 0.3, 0.15, 0.9, 0.05]
    rule = PercentileStopping(25.0, n_startup_trials=4)
    study, last_step = run_levels(rule, levels, 3, lambda level, step: level)
    assert pruned_numbers(study) == {4, 6}
    assert last_step[4] == 0 and last_step[6] == 0


# --- ThresholdStopping ----------------------------------------------------------------------


def test_threshold_lower_and_upper_after_warmup():
    study = completed_study([])
    rule = ThresholdStopping(lower=0.2, n_warmup_steps=3)
    assert decide(rule, study, [0.1, 0.1, 0.1]) is Decision.CONTINUE  # step 2: warm-up
    assert decide(rule, study, [0.1, 0.1, 0.1, 0.19]) is Decision.STOP
    assert decide(rule, study, [0.1, 0.1, 0.1, 0.2]) is Decision.CONTINUE
    rule = ThresholdStopping(upper=5.0)
    assert decide(rule, study, [5.1]) is Decision.STOP
    assert decide(rule, study, [5.0]) is Decision.CONTINUE
    both = ThresholdStopping(lower=0.0, upper=1.0)
    assert decide(both, study, [-0.1]) is Decision.STOP
    assert decide(both, study, [0.5]) is Decision.CONTINUE


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_threshold_ignores_direction_and_nan_always_stops(direction):
    study = completed_study([], direction=direction)
    rule = ThresholdStopping(lower=0.2, n_warmup_steps=5)
    assert decide(rule, study, [math.nan]) is Decision.STOP  # even in the warm-up
    assert decide(ThresholdStopping(upper=1.0), study, [2.0]) is Decision.STOP


def test_threshold_end_to_end_stops_low_accuracy_at_epoch_3():
    # accuracy = level * (step + 1) / 10: at step 3 it is 0.4 * level, below 0.2 iff level < 0.5
    levels = [0.9, 0.3, 0.6, 0.45, 1.0, 0.1]
    rule = ThresholdStopping(lower=0.2, n_warmup_steps=3)
    study, last_step = run_levels(
        rule, levels, 10, lambda level, step: level * (step + 1) / 10, direction="maximize"
    )
    assert pruned_numbers(study) == {1, 3, 5}
    assert all(last_step[n] == 3 for n in (1, 3, 5))


# --- TimeStopping ---------------------------------------------------------------------------


def test_time_stops_after_max_seconds():
    study = completed_study([])
    rule = TimeStopping(max_seconds=10.0)
    assert decide(rule, study, [1.0], start=time.time() - 11.0) is Decision.STOP
    assert decide(rule, study, [1.0], start=time.time() - 1.0) is Decision.CONTINUE
    assert decide(rule, study, [1.0], start=None) is Decision.CONTINUE  # no start recorded


def test_time_max_step_and_budget_fraction():
    study = completed_study([])
    rule = TimeStopping(max_step=4)
    assert decide(rule, study, [1.0] * 5) is Decision.CONTINUE  # step 4
    assert decide(rule, study, [1.0] * 6) is Decision.STOP  # step 5
    rule = TimeStopping(max_step=10, max_budget_fraction=0.25)  # stop at step >= 2.5
    assert decide(rule, study, [1.0] * 3) is Decision.CONTINUE  # step 2
    assert decide(rule, study, [1.0] * 4) is Decision.STOP  # step 3


def test_time_end_to_end():
    # budget: trials with level > 0.5 want 10 steps and are stopped at step 5 (>= 0.5 * 9)
    levels = [0.2, 0.7, 0.9, 0.4]
    rule = TimeStopping(max_step=9, max_budget_fraction=0.5)
    study = tf.create_study(storage="memory", scheduler=rule)
    last_step = {}

    def objective(trial):
        level = levels[trial.number]
        for step in range(10 if level > 0.5 else 4):
            trial.report(level, step)
            last_step[trial.number] = step
            if trial.should_stop():
                raise tf.TrialPruned()
        return level

    study.optimize(objective, n_trials=len(levels))
    assert pruned_numbers(study) == {1, 2}
    assert last_step == {0: 3, 1: 5, 2: 5, 3: 3}

    # wall-clock, on the study's clock: the slow trial is stopped, the fast ones complete
    now = [1000.0]
    study = tf.create_study(
        storage="memory", scheduler=TimeStopping(max_seconds=0.05), clock=lambda: now[0]
    )

    def timed(trial):
        for step in range(5):
            if trial.number == 1:
                now[0] += 0.02  # each step of trial 1 takes 20 ms
            trial.report(1.0, step)
            if trial.should_stop():
                raise tf.TrialPruned()
        return 1.0

    study.optimize(timed, n_trials=3)
    assert pruned_numbers(study) == {1}


# --- RankStopping ---------------------------------------------------------------------------


def test_rank_counts_completed_and_running_trials():
    # step 0 values: completed 1..5, running 0.5 and 6; with the candidate, 8 values, keep 4
    study = completed_study([[1], [2], [3], [4], [5]], running_curves=[[0.5], [6]])
    rule = RankStopping(0.5)
    assert decide(rule, study, [2.5]) is Decision.CONTINUE  # 0.5, 1, 2, 2.5
    assert decide(rule, study, [3.5]) is Decision.STOP  # 0.5, 1, 2, 3 kept
    assert decide(rule, study, [3.0]) is Decision.CONTINUE  # tie with the last kept


def test_rank_maximize_and_step():
    study = completed_study([[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]], direction="maximize")
    rule = RankStopping(0.2)  # 6 values with the candidate: keep ceil(1.2) = 2
    assert decide(rule, study, [4.5]) is Decision.CONTINUE
    assert decide(rule, study, [3.5]) is Decision.STOP
    at_one = RankStopping(0.2, step=1)
    assert decide(at_one, study, [0.0]) is Decision.CONTINUE  # step 0 is not checked
    assert decide(at_one, study, [9.0, 0.0]) is Decision.STOP


def test_rank_waits_for_startup_trials():
    study = completed_study([[1], [2]], running_curves=[[0.0]])
    assert decide(RankStopping(0.5, n_startup_trials=3), study, [9]) is Decision.CONTINUE
    assert decide(RankStopping(0.5, n_startup_trials=2), study, [9]) is Decision.STOP


def test_rank_end_to_end():
    # at step 2, ranked against completed and running trials (pruned ones are not counted):
    # trial 4 (0.9) is 5th of 5 (keep 3): stopped; trial 5 (0.3) 3rd of 5: kept;
    # trial 6 (0.7) 4th of 6 (keep 3): stopped; trial 7 (0.05) first: kept.
    levels = [0.5, 0.2, 0.8, 0.1, 0.9, 0.3, 0.7, 0.05]
    rule = RankStopping(0.5, step=2, n_startup_trials=4)
    study, last_step = run_levels(rule, levels, 5, lambda level, step: level + 1 / (step + 1))
    assert pruned_numbers(study) == {4, 6}
    assert last_step[4] == 2 and last_step[6] == 2


# --- PatienceStopping -----------------------------------------------------------------------


def test_patience_minimize():
    study = completed_study([])
    rule = PatienceStopping(2)
    assert decide(rule, study, [3, 2, 1]) is Decision.CONTINUE
    assert decide(rule, study, [3, 2, 2]) is Decision.CONTINUE  # one report without progress
    assert decide(rule, study, [3, 2, 2, 2.5]) is Decision.STOP  # two
    assert decide(rule, study, [3, 2, 2, 1.9]) is Decision.CONTINUE  # improved again
    assert decide(rule, study, [1, 5, 4, 3]) is Decision.STOP  # best is still step 0


def test_patience_maximize_and_min_delta():
    study = completed_study([], direction="maximize")
    rule = PatienceStopping(2, min_delta=0.1)
    assert decide(rule, study, [1.0, 1.2, 1.4]) is Decision.CONTINUE
    assert decide(rule, study, [1.0, 1.05, 1.1]) is Decision.STOP  # gains <= 0.1
    assert decide(rule, study, [1.0, 0.5, 0.2]) is Decision.STOP
    assert decide(PatienceStopping(3), study, [1.0, 0.5, 0.2]) is Decision.CONTINUE
    assert decide(PatienceStopping(1), study, [1.0, math.nan]) is Decision.STOP


def test_patience_end_to_end():
    # curves improve until step k then stay flat: with patience 3 a trial stops at k + 3
    plateaus = [2, 8, 0, 5, 9]
    rule = PatienceStopping(3)
    study, last_step = run_levels(
        rule, plateaus, 10, lambda k, step: float(min(step, k)), direction="maximize"
    )
    assert pruned_numbers(study) == {0, 2, 3}
    assert last_step == {0: 5, 1: 9, 2: 3, 3: 8, 4: 9}
    # minimizing rising curves: the best is at step 0 and every trial stops at step 3
    study, last_step = run_levels(rule, plateaus, 10, lambda k, step: float(min(step, k)))
    assert pruned_numbers(study) == {0, 1, 2, 3, 4}
    assert set(last_step.values()) == {3}


# --- AnyOf ----------------------------------------------------------------------------------


class Fixed(Scheduler):
    def __init__(self, decision):
        self.decision = decision

    def decide(self, study, trial, step, value):
        return self.decision


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        (["continue", "continue"], Decision.CONTINUE),
        (["continue", "pause"], Decision.PAUSE),
        (["pause", "stop", "continue"], Decision.STOP),
        (["stop"], Decision.STOP),
    ],
)
def test_any_of_combines_decisions(members, expected):
    rule = AnyOf(*(Fixed(Decision(m)) for m in members))
    assert decide(rule, completed_study([]), [1.0]) is expected


def test_any_of_end_to_end_and_describe():
    # threshold stops trial 1 (NaN); patience stops trial 2 (flat after step 0)
    curves = {0: [3, 2, 1, 0], 1: [3, math.nan, 1, 0], 2: [1, 1, 1, 1]}
    rule = AnyOf(ThresholdStopping(upper=10.0), PatienceStopping(2))
    study, last_step = run_levels(rule, [0, 1, 2], 4, lambda n, step: curves[n][step])
    assert pruned_numbers(study) == {1, 2}
    assert last_step == {0: 3, 1: 1, 2: 2}
    record = json.loads(json.dumps(rule.describe()))
    assert record == {
        "name": "AnyOf",
        "schedulers": [
            {"name": "ThresholdStopping", "lower": None, "upper": 10.0, "n_warmup_steps": 0},
            {"name": "PatienceStopping", "patience": 2, "min_delta": 0.0},
        ],
    }


# --- arguments and records ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: PercentileStopping(-1.0), "percentile"),
        (lambda: PercentileStopping(100.5), "percentile"),
        (lambda: PercentileStopping(math.nan), "percentile"),
        (lambda: PercentileStopping(n_startup_trials=-1), "n_startup_trials"),
        (lambda: PercentileStopping(n_warmup_steps=-1), "n_warmup_steps"),
        (lambda: PercentileStopping(interval_steps=0), "interval_steps"),
        (lambda: PercentileStopping(n_min_trials=0), "n_min_trials"),
        (lambda: ThresholdStopping(), "lower or upper"),
        (lambda: ThresholdStopping(lower=2.0, upper=1.0), "lower must be <= upper"),
        (lambda: ThresholdStopping(lower=math.nan), "lower"),
        (lambda: ThresholdStopping(upper=1.0, n_warmup_steps=-1), "n_warmup_steps"),
        (lambda: TimeStopping(), "max_seconds"),
        (lambda: TimeStopping(max_seconds=0), "max_seconds"),
        (lambda: TimeStopping(max_step=0), "max_step"),
        (lambda: TimeStopping(max_step=10, max_budget_fraction=0.0), "max_budget_fraction"),
        (lambda: TimeStopping(max_step=10, max_budget_fraction=1.5), "max_budget_fraction"),
        (lambda: TimeStopping(max_budget_fraction=0.5), "needs max_step"),
        (lambda: RankStopping(0.0), "top_fraction"),
        (lambda: RankStopping(1.5), "top_fraction"),
        (lambda: RankStopping(0.5, step=-1), "step"),
        (lambda: RankStopping(0.5, n_startup_trials=-1), "n_startup_trials"),
        (lambda: PatienceStopping(0), "patience"),
        (lambda: PatienceStopping(2.5), "patience"),
        (lambda: PatienceStopping(2, min_delta=-0.1), "min_delta"),
        (lambda: AnyOf(), "schedulers"),
        (lambda: AnyOf(PatienceStopping(2), "median"), "schedulers"),
    ],
)
def test_bad_arguments(factory, name):
    with pytest.raises(ValueError, match=name):
        factory()


def test_describe_is_json_with_every_option():
    rules = [
        PercentileStopping(30.0, n_startup_trials=2),
        ThresholdStopping(lower=0.2, n_warmup_steps=3),
        TimeStopping(max_seconds=60.0, max_budget_fraction=0.5, max_step=20),
        RankStopping(0.25, step=4),
        PatienceStopping(5, min_delta=0.01),
    ]
    records = [json.loads(json.dumps(rule.describe())) for rule in rules]
    assert records[0] == {
        "name": "PercentileStopping",
        "percentile": 30.0,
        "n_startup_trials": 2,
        "n_warmup_steps": 0,
        "interval_steps": 1,
        "n_min_trials": 1,
    }
    assert records[1] == {
        "name": "ThresholdStopping",
        "lower": 0.2,
        "upper": None,
        "n_warmup_steps": 3,
    }
    assert records[2] == {
        "name": "TimeStopping",
        "max_seconds": 60.0,
        "max_budget_fraction": 0.5,
        "max_step": 20,
    }
    assert records[3] == {
        "name": "RankStopping",
        "top_fraction": 0.25,
        "step": 4,
        "n_startup_trials": 5,
    }
    assert records[4] == {"name": "PatienceStopping", "patience": 5, "min_delta": 0.01}
