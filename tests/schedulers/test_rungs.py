"""Rung budgets: whole steps, one rounding rule, counted down from max_budget (Li et al.,
2018) or up from min_budget, returned by `rung_budgets`, recorded, and printed at the start
of a run."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tuningfork as tf
from tuningfork.schedulers import hyperband_brackets
from tuningfork.storage import InMemoryStorage
from tuningfork.trial import TrialState

HALVING = (tf.ASHA, tf.SHA, tf.Hyperband, tf.BOHB, tf.DEHB)


def report_at_budget(trial: tf.Trial) -> float:
    """The issue's objective: one report, at ``trial.budget`` (1 without a budget)."""
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.report(x, trial.budget if trial.budget is not None else 1)
    if trial.should_stop():
        raise tf.TrialPruned()
    return x


def test_float_bounds_give_whole_step_budgets_that_report_accepts() -> None:
    """Issue 13, item 7: ASHA(1.0, 100.0) gave trial.budget 1.2345..., which report refused."""
    scheduler = tf.ASHA(1.0, 100.0, eta=3, mode="promotion")
    study = tf.create_study(storage="memory", scheduler=scheduler, seed=0)
    study.optimize(report_at_budget, n_trials=40)
    assert not study.get_trials([TrialState.FAIL])
    budgets = {t.system_attrs["budget"] for t in study.trials}
    assert budgets <= {1, 4, 11, 33, 100} and len(budgets) >= 3
    assert all(type(b) is int for b in budgets)
    assert scheduler.min_budget == 1 and type(scheduler.max_budget) is int


@pytest.mark.parametrize("cls", HALVING)
def test_whole_floats_and_numpy_numbers_are_steps(cls: type) -> None:
    for low, high in ((1.0, 27.0), (np.int64(1), np.float64(27.0))):
        scheduler = cls(low, high, 3)
        assert scheduler.rung_budgets()[0] == (1, 3, 9, 27)
        assert scheduler.describe()["max_budget"] == 27
        assert type(scheduler.describe()["min_budget"]) is int


@pytest.mark.parametrize("cls", HALVING)
def test_fractional_budgets_are_refused_with_the_fix(cls: type) -> None:
    with pytest.raises(tf.SchedulerError, match=r"min_budget must be a whole number.*got 0\.5"):
        cls(0.5, 27, 3)
    with pytest.raises(tf.SchedulerError, match=r"max_budget .* got 2\.5.*scale it to steps"):
        cls(1, 2.5, 3)
    with pytest.raises(tf.SchedulerError, match="whole number"):
        hyperband_brackets(0.5, 40.5, 3)


def test_rung_budgets_count_down_by_default_and_up_as_an_option() -> None:
    assert tf.ASHA(1, 52, 3).rung_budgets() == ((2, 6, 17, 52),)
    assert tf.ASHA(1, 52, 3, rungs="up").rung_budgets() == ((1, 3, 9, 52),)
    assert tf.SHA(1, 52, 3, rungs="up").rung_budgets() == ((1, 3, 9, 52),)
    assert tf.ASHA(1, 100, 3).rung_budgets() == ((1, 4, 11, 33, 100),)
    assert tf.ASHA(1, 100, 3, rungs="up").rung_budgets() == ((1, 3, 9, 27, 100),)
    # a skipped lowest rung (Li et al.'s s) skips the ladder's first rung either way
    assert tf.ASHA(1, 52, 3, min_early_stopping_rate=1).rung_budgets() == ((6, 17, 52),)
    assert tf.ASHA(1, 52, 3, rungs="up", min_early_stopping_rate=1).rung_budgets() == ((3, 9, 52),)
    # Hyperband: bracket s runs the top s + 1 rungs of the largest bracket
    assert tf.Hyperband(1, 52, 3, rungs="up").rung_budgets() == (
        (1, 3, 9, 52), (3, 9, 52), (9, 52), (52,),
    )  # fmt: skip
    assert tf.Hyperband(1, 52, 3).rung_budgets() == ((2, 6, 17, 52), (6, 17, 52), (17, 52), (52,))
    assert tf.DEHB(1, 52, 3, rungs="up").rung_budgets() == (
        (1, 3, 9, 52), (3, 9, 52), (9, 52), (52,),
    )  # fmt: skip
    # the paper's table is unchanged, and both orders agree where eta divides evenly
    assert tf.Hyperband(1, 81, 3, rungs="up").bracket_table == tf.Hyperband(1, 81, 3).bracket_table


def test_counting_up_runs_trials_at_those_budgets() -> None:
    study = tf.create_study(
        storage="memory", scheduler=tf.ASHA(1, 52, 3, mode="promotion", rungs="up"), seed=1
    )
    study.optimize(report_at_budget, n_trials=60)
    budgets = {t.system_attrs["budget"] for t in study.trials}
    assert budgets == {1, 3, 9, 52}


@pytest.mark.parametrize("rungs", ["down", "up"])
def test_rounding_gives_strictly_increasing_steps_from_min_to_max(rungs: str) -> None:
    for low, high, eta in itertools.product(
        (1, 2, 3, 7), (10, 27, 52, 100, 1000), (1.2, 1.5, 2, 2.5, 3, 4)
    ):
        if low >= high:
            continue
        for budgets in tf.Hyperband(low, high, eta, rungs=rungs).rung_budgets():
            assert all(type(b) is int for b in budgets)
            assert budgets[-1] == high and budgets[0] >= low
            assert list(budgets) == sorted(set(budgets)), (low, high, eta, budgets)
    # eta < 2 rounds several rungs onto one step: they are merged, and s_max counts the rest
    assert tf.ASHA(1, 3, 1.2).rung_budgets() == ((1, 2, 3),)
    assert [b.s for b in hyperband_brackets(1, 3, 1.2)] == [2, 1, 0]


def test_bad_rungs_option_is_a_clear_error() -> None:
    with pytest.raises(tf.SchedulerError, match=r"rungs must be 'down' .* or 'up'.*'upward'"):
        tf.ASHA(1, 27, 3, rungs="upward")


def test_rungs_option_is_recorded_and_restored_by_load_study() -> None:
    storage = InMemoryStorage()
    made = [
        tf.ASHA(1, 52, 3, mode="promotion", rungs="up"),
        tf.SHA(1, 52, 3, rungs="up"),
        tf.Hyperband(1, 52, 3, rungs="up"),
        tf.BOHB(1, 52, 3, rungs="up", seed=1),
        tf.DEHB(1, 52, 3, rungs="up", seed=1),
    ]
    for i, scheduler in enumerate(made):
        assert scheduler.describe()["rungs"] == "up"
        tf.create_study(f"r{i}", storage=storage, scheduler=scheduler)
        again = tf.load_study(f"r{i}", storage=storage).scheduler
        assert again.rung_budgets() == scheduler.rung_budgets()
        assert again.describe() == scheduler.describe()


def test_optimize_prints_the_rungs_when_it_starts(capsys) -> None:
    study = tf.create_study(storage="memory", scheduler=tf.ASHA(1, 52, 3))
    study.optimize(report_at_budget, n_trials=1)
    assert capsys.readouterr().err.splitlines()[:1] == [  # then a line per trial
        "ASHA rungs (steps): 2, 6, 17, 52 (counting down from max_budget=52 by eta=3; "
        "rungs='up' starts at min_budget=1)"
    ]
    study = tf.create_study(storage="memory", scheduler=tf.Hyperband(1, 52, 3, rungs="up"))
    study.optimize(report_at_budget, n_trials=1)
    assert capsys.readouterr().err.splitlines()[:1] == [
        "Hyperband rungs (steps): 1, 3, 9, 52; its 4 brackets start at 1, 3, 9, 52 (counting "
        "up from min_budget=1 by eta=3, the last at max_budget=52; rungs='down' counts down "
        "from max_budget)"
    ]
    any_of = tf.AnyOf(tf.SHA(1, 9, 3), tf.ThresholdStopping(upper=5.0))
    study = tf.create_study(storage="memory", scheduler=any_of)
    study.optimize(report_at_budget, n_trials=1)
    assert capsys.readouterr().err.startswith("SHA rungs (steps): 1, 3, 9 (counting down")
    study = tf.create_study(storage="memory", scheduler=tf.MedianStopping())
    study.optimize(report_at_budget, n_trials=1)
    lines = capsys.readouterr().err.splitlines()  # nothing but the trial's line
    assert len(lines) == 1 and lines[0].startswith("trial 0 ")
    study.optimize(report_at_budget, n_trials=1, show_progress_bar=False)
    assert capsys.readouterr().err == ""
