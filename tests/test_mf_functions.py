"""The multi-fidelity problems are BOCA's (true function at z = 1, a bias that vanishes as
z -> 1), and the Meter charges and keeps the incumbent as the benchmark defines."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tuningfork.testing.functions import PROBLEMS
from tuningfork.testing.mf_functions import MF_PROBLEMS, BudgetSpent, Meter, MFProblem


def point(values):
    return {f"x{i}": v for i, v in enumerate(values)}


MINIMISERS = [
    ("mf_branin", {"x0": -math.pi, "x1": 12.275}),
    ("mf_branin", {"x0": math.pi, "x1": 2.275}),
    ("mf_branin", {"x0": 9.42478, "x1": 2.475}),
    ("mf_hartmann3", point([0.114614, 0.555649, 0.852547])),
    ("mf_hartmann6", point([0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573])),
]
ORDINARY = {"mf_branin": "branin", "mf_hartmann3": "hartmann3", "mf_hartmann6": "hartmann6"}
OPTIMA = {"mf_branin": 0.397887, "mf_hartmann3": -3.86278, "mf_hartmann6": -3.32237}


def random_points(name, n, seed=0):
    space = MF_PROBLEMS[name].space
    rng = random.Random(seed)
    return [space.decode([rng.random() for _ in range(space.dims)]) for _ in range(n)]


@pytest.mark.parametrize("name, params", MINIMISERS)
def test_full_fidelity_minimum_at_the_known_minimisers(name, params):
    problem = MF_PROBLEMS[name]
    problem.space.validate(params)
    assert problem.evaluate(params, 1.0) == pytest.approx(OPTIMA[name], abs=1e-5)
    assert problem.optimum == pytest.approx(OPTIMA[name], abs=1e-5)
    assert problem.regret(params) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("name", sorted(MF_PROBLEMS))
def test_full_fidelity_is_the_ordinary_function(name):
    problem, ordinary = MF_PROBLEMS[name], PROBLEMS[ORDINARY[name]]
    assert problem.space == ordinary.space
    assert problem.optimum == ordinary.optimum
    for params in random_points(name, 50):
        assert problem.evaluate(params, 1.0) == pytest.approx(ordinary.function(params), abs=1e-12)


@pytest.mark.parametrize("name", sorted(MF_PROBLEMS))
def test_bias_shrinks_as_the_fidelity_rises(name):
    problem = MF_PROBLEMS[name]
    fidelities = [1 / 81, 0.1, 0.3, 0.5, 0.9, 1.0]
    biased = 0
    for params in random_points(name, 50, seed=1):
        true = problem.evaluate(params, 1.0)
        bias = [abs(problem.evaluate(params, z) - true) for z in fidelities]
        assert all(a >= b - 1e-12 for a, b in zip(bias, bias[1:])), bias
        assert bias[-1] == 0.0
        biased += bias[0] > 1e-6
    assert biased >= 45  # the low fidelities are really different functions


def test_hartmann_bias_is_the_alpha_shift():
    # f(x, z) - f(x, 1) = 0.1 (1 - z) sum_i exp(-...) in (0, 0.4 (1 - z)]
    problem = MF_PROBLEMS["mf_hartmann3"]
    params = point([0.114614, 0.555649, 0.852547])
    gap = problem.evaluate(params, 0.5) - problem.evaluate(params, 1.0)
    assert 0.0 < gap <= 0.4 * 0.5


@pytest.mark.parametrize("z", [0.0, -0.1, 1.01, math.nan])
def test_fidelity_out_of_range_is_an_error(z):
    with pytest.raises(ValueError, match="fidelity"):
        MF_PROBLEMS["mf_branin"].evaluate({"x0": 0.0, "x1": 0.0}, z)


# -- Meter ------------------------------------------------------------------------------------


def linear_problem():
    """f(x, z) = x + (1 - z): the true value is x, the optimum 0."""
    from tuningfork.space import Float, Space

    return MFProblem("linear", Space(x=Float(0.0, 1.0)), lambda p, z: p["x"] + 1 - z, 0.0)


def test_meter_charges_steps_and_fresh_evaluations():
    meter = Meter(linear_problem(), max_step=9, budget=100)
    for step in (1, 2, 3):
        meter.charge("a", {"x": 0.5}, step, 0.5 + 1 - step / 9)
    assert meter.spent_steps == 3 and meter.cost == pytest.approx(3 / 9)
    meter.charge("a", {"x": 0.5}, 4, 0.5 + 1 - 4 / 9)  # resumed: pays only the added step
    meter.charge_fresh({"x": 0.2}, 9, 0.2)
    assert meter.spent_steps == 4 + 9 and meter.evaluations == 5
    assert meter.step_of("a") == 4 and meter.step_of("b") == 0


def test_meter_rejects_skipped_steps_and_repays_restarts():
    meter = Meter(linear_problem(), max_step=9)
    meter.charge(0, {"x": 0.5}, 1, 1.0)
    with pytest.raises(ValueError, match="step 3 after step 1"):
        meter.charge(0, {"x": 0.5}, 3, 1.0)
    meter.charge(0, {"x": 0.5}, 2, 1.0)
    meter.charge(0, {"x": 0.5}, 1, 1.0)  # retrained from scratch
    assert meter.repaid_steps == 2 and meter.spent_steps == 3
    with pytest.raises(ValueError, match="integer in 1..9"):
        meter.charge_fresh({"x": 0.5}, 10, 1.0)


def test_incumbent_is_the_best_at_the_highest_step_reached():
    meter = Meter(linear_problem(), max_step=9)
    meter.charge(0, {"x": 0.9}, 1, 0.1)  # best value, but only at step 1
    meter.charge(1, {"x": 0.6}, 1, 0.2)
    assert meter.incumbent_params == {"x": 0.9} and meter.regret == pytest.approx(0.9)
    meter.charge(1, {"x": 0.6}, 2, 5.0)  # a worse value at a higher step wins
    assert meter.incumbent_params == {"x": 0.6} and meter.top_step == 2
    meter.charge(2, {"x": 0.3}, 1, -1.0)  # a lower step is ignored
    meter.charge(2, {"x": 0.3}, 2, 5.0)  # a tie at the top step: the earliest stays
    assert meter.incumbent_params == {"x": 0.6}
    meter.charge(2, {"x": 0.3}, 3, 9.0)
    assert meter.incumbent_params == {"x": 0.3} and meter.regret == pytest.approx(0.3)
    flat = [number for point in meter.curve for number in point]
    assert flat == pytest.approx([1 / 9, 0.9, 3 / 9, 0.6, 6 / 9, 0.3])


def test_marks_and_budget():
    meter = Meter(linear_problem(), max_step=3, budget=4, marks=(1, 2, 4))
    meter.charge_fresh({"x": 0.8}, 2, 0.8)
    assert meter.at_marks == {}
    meter.charge_fresh({"x": 0.5}, 3, 0.5)  # cost 5/3: past mark 1, regret then in force
    assert meter.at_marks == {1: pytest.approx(0.5)}
    meter.charge_fresh({"x": 0.7}, 3, 0.7)  # worse: regret stays 0.5
    assert meter.at_marks[2] == pytest.approx(0.5)
    with pytest.raises(BudgetSpent):
        meter.charge_fresh({"x": 0.1}, 3, 0.1)  # cost 11/3 < 4: no; next one crosses
        meter.charge("k", {"x": 0.0}, 1, 1.0)
    assert meter.spent and meter.at_marks[4] == pytest.approx(0.1)
    with pytest.raises(BudgetSpent):
        meter.charge("k", {"x": 0.0}, 2, 1.0)
    assert not isinstance(BudgetSpent(), Exception)


def test_close_fills_the_marks_not_reached():
    meter = Meter(linear_problem(), max_step=3, budget=10, marks=(1, 10))
    meter.charge_fresh({"x": 0.25}, 3, 0.25)
    meter.close()
    assert meter.at_marks == {1: 0.25, 10: 0.25}
    record = meter.result()
    assert record["at_marks"] == {"1": 0.25, "10": 0.25} and record["cost"] == 1.0


# -- LCBench (optional) -----------------------------------------------------------------------


def lcbench_problem():
    pytest.importorskip("onnxruntime")
    from tuningfork.testing.mf_functions import load_lcbench, yahpo_data_path

    try:
        yahpo_data_path()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    return load_lcbench("lcbench_189906")


def test_lcbench_surrogate_is_deterministic_and_epoch_discrete():
    problem = lcbench_problem()
    params = problem.space.decode([0.5] * problem.space.dims)
    problem.space.validate(params)
    full = problem.evaluate(params, 1.0)
    assert 0.0 <= full <= 100.0 and full == problem.evaluate(params, 1.0)
    # z = step / 81 gives epoch max(1, round(52 z)): steps 1 and 2 are both epoch 1
    assert problem.evaluate(params, 1 / 81) == problem.evaluate(params, 2 / 81)
    assert problem.evaluate(params, 1 / 81) != full
    assert problem.optimum == pytest.approx(100 - 93.0684, abs=1e-4)
    assert problem.regret(params) == pytest.approx(max(full - problem.optimum, 0.0))


# -- the benchmark's runners (benchmarks/_mf_baselines.py) ------------------------------------

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def baselines():
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    import _mf_baselines

    return _mf_baselines


def spend(key, seed, budget=3.0, problem="mf_hartmann3"):
    meter = Meter(MF_PROBLEMS[problem], max_step=81, budget=budget, marks=(1.0, budget))
    with pytest.raises(BudgetSpent), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        baselines().BASELINES[key](MF_PROBLEMS[problem], seed, meter)
    return meter


@pytest.mark.parametrize(
    "key, needs",
    [
        ("random", None),
        ("optuna-tpe-sha", "optuna"),
        ("optuna-tpe-hyperband", "optuna"),
        ("dehb", "dehb"),
    ],
)
def test_baseline_spends_the_budget_and_is_deterministic(key, needs):
    if needs:
        pytest.importorskip(needs)
    first, again, other = spend(key, 0), spend(key, 0), spend(key, 1)
    assert 3.0 <= first.cost <= 4.0  # stops at the budget, at most one evaluation over
    assert first.curve == again.curve and first.at_marks == again.at_marks
    assert first.curve != other.curve
    assert set(first.at_marks) == {1.0, 3.0}
    if key == "random":
        assert first.trials == 3 and first.top_step == 81


@pytest.mark.slow
def test_benchmark_quick_run(tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "mf.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "multifidelity.py"),
            "--quick",
            "--seeds",
            "2",
            "--budget",
            "5",
            "--problems",
            "mf_branin",
            "--methods",
            "random",
            "optuna-tpe-sha",
            "tf-asha-tpe",
            "tf-hyperband",
            "tf-bohb",
            "tf-dehb",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "### mf_branin" in completed.stdout and "**lowest median**" in completed.stdout
    record = json.loads(out.read_text())
    assert len(record["runs"]) == 12 and record["marks"] == [5.0]
    assert all(run["cost"] >= 5.0 and run["exhausted_budget"] for run in record["runs"])
    assert out.with_suffix(".md").read_text().startswith("## Multi-fidelity")
