"""The error contract: every exception type lives in `tuningfork.exceptions`, a bad option
raises `OptionError` (a TuningforkError and a ValueError) naming the option and its owner,
and no source file raises a bare TuningforkError."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

import tuningfork as tf
from tuningfork import exceptions, viz
from tuningfork._export import export
from tuningfork.execution.worker import load_objective
from tuningfork.importance import PedAnovaEvaluator, get_param_importances

SRC = Path(tf.__file__).parent

# Files allowed a bare TuningforkError: none (keep it so).
BARE_RAISES_LEFT: set[str] = set()


def test_no_bare_tuningfork_error_is_raised():
    pattern = re.compile(r"raise\s+(exceptions\.)?TuningforkError\(")
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative in BARE_RAISES_LEFT:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    assert not found, "raise a specific type instead:\n" + "\n".join(found)


def test_every_exception_type_lives_in_exceptions_and_keeps_its_old_home():
    from tuningfork.dashboard.data import DashboardError
    from tuningfork.samplers._gp_model import CholeskyError
    from tuningfork.testing.mf_functions import BudgetSpent
    from tuningfork.viz._data import PlotOptionError

    assert PlotOptionError is exceptions.PlotOptionError is viz.PlotOptionError
    assert DashboardError is exceptions.DashboardError
    assert CholeskyError is exceptions.CholeskyError
    assert BudgetSpent is exceptions.BudgetSpent
    # the bases stay: a plot option error is an option error now, the rest as before
    assert issubclass(PlotOptionError, tf.OptionError)
    assert issubclass(CholeskyError, ArithmeticError)
    assert not issubclass(BudgetSpent, Exception)
    assert issubclass(DashboardError, tf.TuningforkError)


def test_errors_with_fields_keep_them_across_pickling():
    plot = pickle.loads(pickle.dumps(viz.PlotOptionError("bad", option="by", owner="plot")))
    assert (type(plot), plot.option, plot.owner, str(plot)) == (
        viz.PlotOptionError,
        "by",
        "plot",
        "bad",
    )
    answer = pickle.loads(pickle.dumps(exceptions.DashboardError("gone", 404)))
    assert (answer.status, str(answer)) == (404, "gone")


# (constructor, keyword options, the option named, the owner named)
BAD_OPTIONS = [
    (tf.RandomSampler, {"seed": "one"}, "seed", "RandomSampler"),
    (tf.QMCSampler, {"qmc_type": "lattice"}, "qmc_type", "QMCSampler"),
    (tf.QMCSampler, {"scramble": 1}, "scramble", "QMCSampler"),
    (tf.TPESampler, {"n_ei_candidates": 0}, "n_ei_candidates", "TPESampler"),
    (tf.TPESampler, {"gamma": 1.5}, "gamma", "TPESampler"),
    (tf.TPESampler, {"prior_weight": float("inf")}, "prior_weight", "TPESampler"),
    (tf.TPESampler, {"seed": 1.5}, "seed", "TPESampler"),
    (tf.GPSampler, {"n_startup_trials": 0}, "n_startup_trials", "GPSampler"),
    (tf.GPSampler, {"n_local_search": -1}, "n_local_search", "GPSampler"),
    (tf.GPSampler, {"constant_liar": "yes"}, "constant_liar", "GPSampler"),
    (tf.AutoSampler, {"gp_max_trials": -1}, "gp_max_trials", "AutoSampler"),
    (tf.AutoSampler, {"seed": "x"}, "seed", "AutoSampler"),
    (tf.GridSampler, {"shuffle": "yes"}, "shuffle", "GridSampler"),
    (tf.GridSampler, {"resolution": 0}, "resolution", "GridSampler"),
    (tf.GridSampler, {"resolution": {"x": 0}}, "resolution", "GridSampler"),
    (tf.PercentileStopping, {"percentile": 200}, "percentile", "PercentileStopping"),
    (tf.PercentileStopping, {"n_warmup_steps": -1}, "n_warmup_steps", "PercentileStopping"),
    (tf.MedianStopping, {"interval_steps": 0}, "interval_steps", "MedianStopping"),
    (tf.MedianStopping, {"use_running_average": 1}, "use_running_average", "MedianStopping"),
    (tf.ThresholdStopping, {"lower": 2.0, "upper": 1.0}, "lower", "ThresholdStopping"),
    (tf.ThresholdStopping, {"lower": float("nan")}, "lower", "ThresholdStopping"),
    (tf.TimeStopping, {"max_seconds": 0}, "max_seconds", "TimeStopping"),
    (tf.TimeStopping, {"max_budget_fraction": 0.5}, "max_step", "TimeStopping"),
    (tf.RankStopping, {"top_fraction": 0}, "top_fraction", "RankStopping"),
    (tf.PatienceStopping, {"patience": 0}, "patience", "PatienceStopping"),
    (tf.PatienceStopping, {"patience": 2, "min_delta": -1}, "min_delta", "PatienceStopping"),
    (tf.SHA, {"n_trials": 0}, "n_trials", "SHA"),
    (tf.SHA, {"eta": 1}, "eta", "SHA"),
    (tf.ASHA, {"min_early_stopping_rate": -1}, "min_early_stopping_rate", "ASHA"),
    (tf.ASHA, {"min_budget": 0.5}, "min_budget", "ASHA"),
    (tf.ASHA, {"rungs": "upward"}, "rungs", "ASHA"),
    (tf.Hyperband, {"sizes": "round"}, "sizes", "Hyperband"),
    (tf.Hyperband, {"mode": "fast"}, "mode", "Hyperband"),
    (tf.Hyperband, {"finish_top": -1}, "finish_top", "Hyperband"),
    (tf.Hyperband, {"seed": "x"}, "seed", "Hyperband"),
    (tf.Hyperband, {"min_budget": 9, "max_budget": 3}, "max_budget", "Hyperband"),
    (tf.BOHB, {"random_fraction": 2}, "random_fraction", "BOHB"),
    (tf.BOHB, {"bandwidth_factor": 0}, "bandwidth_factor", "BOHB"),
    (tf.BOHB, {"n_samples": 0}, "n_samples", "BOHB"),
    (tf.BOHB, {"mode": "fast"}, "mode", "BOHB"),
    (tf.DEHB, {"strategy": "best9_bin"}, "strategy", "DEHB"),
    (tf.DEHB, {"mutation_factor": 3}, "mutation_factor", "DEHB"),
    (tf.DEHB, {"crossover_prob": -0.1}, "crossover_prob", "DEHB"),
    (tf.DEHB, {"parents": "all"}, "parents", "DEHB"),
    (tf.DEHB, {"eta": 0.5}, "eta", "DEHB"),
    (PedAnovaEvaluator, {"n_grid": 1}, "n_grid", "PedAnovaEvaluator"),
    (
        PedAnovaEvaluator,
        {"target_quantile": 0.5, "region_quantile": 0.2},
        "target_quantile",
        "PedAnovaEvaluator",
    ),  # fmt: skip
]


@pytest.mark.parametrize(
    "make, options, option, owner",
    BAD_OPTIONS,
    ids=[f"{make.__name__}-{'-'.join(options)}" for make, options, _, _ in BAD_OPTIONS],
)
def test_a_bad_option_raises_option_error_naming_it(make, options, option, owner):
    with pytest.raises(tf.OptionError) as info:
        make(**options)
    error = info.value
    assert isinstance(error, tf.TuningforkError) and isinstance(error, ValueError)
    assert (error.option, error.owner) == (option, owner)
    # the message names the option and the bad value
    message = str(error)
    assert option in message
    values = [
        v
        for value in options.values()
        for v in (value.values() if isinstance(value, dict) else [value])
    ]
    assert any(repr(value) in message for value in values), message


def test_scheduler_options_raise_scheduler_error():
    # a scheduler's options were SchedulerError before and stay so; early stopping too now
    for make, options, _, _ in BAD_OPTIONS:
        if issubclass(make, tf.Scheduler):
            with pytest.raises(tf.SchedulerError):
                make(**options)


def test_any_of_without_members_names_the_option():
    with pytest.raises(tf.SchedulerError) as info:
        tf.AnyOf()
    assert (info.value.option, info.value.owner) == ("schedulers", "AnyOf")


@pytest.fixture
def study():
    study = tf.create_study()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    return study


@pytest.mark.parametrize(
    "kind, options, option",
    [
        ("pie", {}, "kind"),
        ("history", {"by": "epoch"}, "by"),
        ("history", {"direction": "up"}, "direction"),
        ("history", {"colour": "red"}, "colour"),
        ("slice", {"params": ["nope"]}, "params"),
    ],
)
def test_a_bad_plot_option_raises_plot_option_error(study, kind, options, option):
    with pytest.raises(viz.PlotOptionError) as info:
        viz.plot_data(study, kind, **options)
    assert isinstance(info.value, tf.OptionError) and isinstance(info.value, ValueError)
    assert info.value.option == option


def test_export_importance_and_objective_references(study, tmp_path):
    with pytest.raises(tf.OptionError) as info:
        export(study, tmp_path / "trials.xml")
    assert info.value.option == "format" and "'xml'" in str(info.value)
    with pytest.raises(tf.OptionError) as info:
        get_param_importances(study, direction="up")
    assert info.value.option == "direction"
    for ref in ("no_colon", str(tmp_path / "missing.py") + ":f", "json:no_such_function"):
        with pytest.raises(tf.ObjectiveNotFound):
            load_objective(ref)
