"""Hyperparameter importance: fANOVA and PED-ANOVA on real studies."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest

import tuningfork as tf
from tuningfork.exceptions import (
    MissingExtra,
    NotEnoughTrials,
    SpaceError,
    TuningforkError,
)
from tuningfork.importance import (
    FanovaEvaluator,
    ImportanceEvaluator,
    PedAnovaEvaluator,
    format_importances,
    get_param_importances,
    trials_space,
)
from tuningfork.importance._fanova import _Measure, _tree_fractions
from tuningfork.space import Categorical, Float, Int, Space
from tuningfork.trial import FrozenTrial, Trial, TrialState

IGNORED = {"x3", "x4", "x5"}


def run_study(
    objective: Callable[[Trial], float | tuple[float, ...]],
    n_trials: int,
    *,
    seed: int = 0,
    **study_kwargs: object,
) -> tf.Study:
    """A real study driven by ask and tell with a seeded random sampler."""
    study = tf.create_study(storage="memory", sampler=tf.RandomSampler(seed=seed), **study_kwargs)
    for _ in range(n_trials):
        trial = study.ask()
        study.tell(trial, objective(trial))
    return study


def six_inputs(trial: Trial) -> float:
    # variances on uniform [0, 1] inputs: 16/12 = 1.33 > 9 * 4/45 = 0.8 > 4/12 = 0.33;
    # x3, x4 and x5 are suggested but never used
    x = [trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(6)]
    return 4.0 * x[0] + 3.0 * x[1] ** 2 + 2.0 * x[2]


@pytest.fixture(scope="module")
def six_study() -> tf.Study:
    return run_study(six_inputs, 200, seed=0)


# --------------------------------------------------------------------------- rankings


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ignored_inputs_rank_last_and_fanova_orders_by_variance(seed: int) -> None:
    study = run_study(six_inputs, 200, seed=seed)
    fanova = get_param_importances(study, evaluator=FanovaEvaluator(seed=seed))
    ped = get_param_importances(study, evaluator=PedAnovaEvaluator())
    for result in (fanova, ped):
        assert set(result) == {f"x{i}" for i in range(6)}
        assert set(list(result)[3:]) == IGNORED
        assert math.isclose(sum(result.values()), 1.0)
        assert all(value >= 0.0 for value in result.values())
        assert list(result.values()) == sorted(result.values(), reverse=True)
    assert list(fanova)[:3] == ["x0", "x1", "x2"]
    # a fully grown forest almost never splits on an unused input
    assert max(fanova[name] for name in IGNORED) < 0.02


def test_default_evaluator_is_ped_anova(six_study: tf.Study) -> None:
    assert get_param_importances(six_study) == get_param_importances(
        six_study, evaluator=PedAnovaEvaluator()
    )


def test_fanova_linear_function_matches_analytic_variance_fractions() -> None:
    # f = a x0 + b x1 on uniform inputs: Var = (a^2 + b^2) / 12, no interaction
    a, b = 3.0, 2.0

    def objective(trial: Trial) -> float:
        return a * trial.suggest_float("x0", 0.0, 1.0) + b * trial.suggest_float("x1", 0.0, 1.0)

    study = run_study(objective, 300, seed=5)
    raw = get_param_importances(study, evaluator=FanovaEvaluator(seed=0), normalize=False)
    assert raw["x0"] == pytest.approx(a**2 / (a**2 + b**2), abs=0.05)
    assert raw["x1"] == pytest.approx(b**2 / (a**2 + b**2), abs=0.05)
    assert sum(raw.values()) <= 1.0 + 1e-9
    assert sum(raw.values()) > 0.9  # additive: nearly all variance is first-order


def test_exact_decomposition_of_a_hand_built_tree() -> None:
    # root: x0 <= 0.5 ? (x1 <= 0.5 ? 0 : 2) : 4, on the uniform unit square.
    # mean 2.5, V = 2.75; f0 = {1, 4} -> V0 = 2.25; f1 = {2, 3} -> V1 = 0.25
    tree = SimpleNamespace(
        children_left=np.array([1, 3, -1, -1, -1]),
        children_right=np.array([2, 4, -1, -1, -1]),
        feature=np.array([0, 1, -2, -2, -2]),
        threshold=np.array([0.5, 0.5, -2.0, -2.0, -2.0]),
        value=np.array([0.0, 0.0, 4.0, 0.0, 2.0]).reshape(-1, 1, 1),
        n_features=2,
    )
    fractions = _tree_fractions(tree, [_Measure(None, 0.0), _Measure(None, 0.0)])
    assert fractions is not None
    assert fractions == pytest.approx([2.25 / 2.75, 0.25 / 2.75])
    # a discrete x1 with two values at 0.25 (mass 0.9) and 0.75: f1 = {1.8, 3}, mean 2.5 + ...
    points = (np.array([0.25, 0.75]), np.array([0.9, 0.1]))
    fractions = _tree_fractions(tree, [_Measure(None, 0.0), _Measure(points, 0.0)])
    leaf_mass = np.array([0.5 * 0.9, 0.5 * 0.1, 0.5])
    values = np.array([0.0, 2.0, 4.0])
    mean = leaf_mass @ values
    variance = leaf_mass @ (values - mean) ** 2
    f1 = np.array([0.5 * 0.0 + 0.5 * 4.0, 0.5 * 2.0 + 0.5 * 4.0])
    v1 = np.array([0.9, 0.1]) @ (f1 - mean) ** 2
    assert fractions is not None
    assert fractions[1] == pytest.approx(v1 / variance)


# --------------------------------------------------------------------------- parameter kinds

OPTIMISER_PENALTY = {"sgd": 2.0, "adam": 0.0, "rmsprop": 1.0}


def mixed_objective(trial: Trial) -> float:
    optimiser = trial.suggest_categorical("optimiser", ["sgd", "adam", "rmsprop"])
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    trial.suggest_int("layers", 1, 8)  # unused
    trial.suggest_categorical("activation", ["relu", "tanh"])  # unused
    trial.suggest_float("momentum", 0.0, 1.0)  # unused
    # lr matters on the log scale: linear in log10(lr), best at 1e-5
    return OPTIMISER_PENALTY[optimiser] + 0.5 * (math.log10(lr) + 5.0)


@pytest.mark.parametrize("evaluator", [FanovaEvaluator(seed=0), PedAnovaEvaluator()])
def test_categorical_and_log_parameters(evaluator: ImportanceEvaluator) -> None:
    study = run_study(mixed_objective, 200, seed=1)
    result = get_param_importances(study, evaluator=evaluator)
    assert set(list(result)[:2]) == {"optimiser", "lr"}
    assert min(result["optimiser"], result["lr"]) > 3 * max(
        result[name] for name in ("layers", "activation", "momentum")
    )


def test_log_parameter_is_rated_on_the_log_scale() -> None:
    # in the unit cube a log-float is uniform; its effect here is linear in log10(lr), so
    # fANOVA's first-order share is (nearly) all of the variance
    def objective(trial: Trial) -> float:
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        trial.suggest_float("noise", 0.0, 1.0)
        return math.log10(lr)

    study = run_study(objective, 150, seed=2)
    raw = get_param_importances(study, evaluator=FanovaEvaluator(seed=0), normalize=False)
    assert raw["lr"] > 0.95
    assert raw["noise"] < 0.01


def conditional_objective(trial: Trial) -> float:
    model = trial.suggest_categorical("model", ["linear", "tree"])
    trial.suggest_float("z", 0.0, 1.0)  # unused
    if model == "linear":
        return 5.0 * trial.suggest_float("alpha", 0.0, 1.0)
    trial.suggest_int("depth", 1, 10)  # active only for trees, and unused
    return 2.5


@pytest.mark.parametrize("evaluator", [FanovaEvaluator(seed=0), PedAnovaEvaluator()])
def test_conditional_parameters(evaluator: ImportanceEvaluator) -> None:
    study = run_study(conditional_objective, 200, seed=3)
    trials = study.get_trials(states=["COMPLETE"])
    assert any("alpha" not in t.params for t in trials)
    assert any("depth" not in t.params for t in trials)
    result = get_param_importances(study, evaluator=evaluator)
    assert set(result) == {"model", "z", "alpha", "depth"}
    assert list(result)[0] == "alpha"
    assert result["alpha"] > 5 * max(result["z"], result["depth"])


def test_fixed_parameters_get_zero() -> None:
    def objective(trial: Trial) -> float:
        trial.suggest_categorical("only", ["one"])
        pinned = trial.suggest_float("pinned", 0.0, 1.0)
        return trial.suggest_float("x", 0.0, 1.0) + pinned

    study = tf.create_study(storage="memory", sampler=tf.RandomSampler(seed=0))
    for _ in range(60):
        study.enqueue_trial({"pinned": 0.25})
        trial = study.ask()
        study.tell(trial, objective(trial))
    assert {t.params["pinned"] for t in study.trials} == {0.25}
    for evaluator in (FanovaEvaluator(seed=0), PedAnovaEvaluator()):
        result = get_param_importances(study, evaluator=evaluator)
        assert result["only"] == 0.0
        assert result["pinned"] == 0.0
        assert result["x"] == pytest.approx(1.0)
        assert list(result)[0] == "x"


def test_constant_objective_gives_zeros() -> None:
    study = run_study(lambda t: 0.0 * t.suggest_float("x", 0, 1) + 1.0, 20)
    for evaluator in (FanovaEvaluator(seed=0), PedAnovaEvaluator()):
        assert get_param_importances(study, evaluator=evaluator) == {"x": 0.0}


# --------------------------------------------------------------------------- directions


def test_maximize_mirrors_minimize() -> None:
    minimised = run_study(six_inputs, 150, seed=4)
    maximised = run_study(lambda t: -six_inputs(t), 150, seed=4, direction="maximize")
    assert [t.params for t in minimised.trials] == [t.params for t in maximised.trials]
    assert get_param_importances(maximised) == pytest.approx(get_param_importances(minimised))
    fanova_max = get_param_importances(maximised, evaluator=FanovaEvaluator(seed=1))
    fanova_min = get_param_importances(minimised, evaluator=FanovaEvaluator(seed=1))
    assert fanova_max == pytest.approx(fanova_min, abs=1e-6)
    # PED-ANOVA looks at the best trials, so the direction matters
    wrong_way = get_param_importances(maximised, direction="minimize")
    assert wrong_way != pytest.approx(get_param_importances(maximised))


def two_objectives(trial: Trial) -> tuple[float, float]:
    a = trial.suggest_float("a", 0.0, 1.0)
    b = trial.suggest_float("b", 0.0, 1.0)
    trial.suggest_float("c", 0.0, 1.0)
    return (a, 3.0 * b)


def test_multi_objective_needs_a_target() -> None:
    study = run_study(two_objectives, 120, directions=["minimize", "minimize"])
    with pytest.raises(TuningforkError, match="2 objectives; pass target="):
        get_param_importances(study)
    for evaluator in (FanovaEvaluator(seed=0), PedAnovaEvaluator()):
        first = get_param_importances(study, evaluator=evaluator, target=lambda t: t.values[0])
        second = get_param_importances(study, evaluator=evaluator, target=lambda t: t.values[1])
        assert list(first)[0] == "a"
        assert list(second)[0] == "b"
        assert first["a"] > 0.8 and second["b"] > 0.8


def test_evaluator_without_target_on_multi_objective_trials() -> None:
    study = run_study(two_objectives, 10, directions=["minimize", "maximize"])
    trials = study.get_trials(states=["COMPLETE"])
    with pytest.raises(TuningforkError, match="objective values; pass target="):
        PedAnovaEvaluator().evaluate(trials, trials_space(trials))


# --------------------------------------------------------------------------- errors


def test_too_few_complete_trials() -> None:
    study = tf.create_study(storage="memory", sampler=tf.RandomSampler(seed=0))
    with pytest.raises(NotEnoughTrials, match="at least 2 complete trials, the study .* has 0"):
        get_param_importances(study)
    trial = study.ask()
    study.tell(trial, trial.suggest_float("x", 0.0, 1.0))
    for state in ("FAIL", "PRUNED"):
        other = study.ask()
        other.suggest_float("x", 0.0, 1.0)
        study.tell(other, state=state)
    with pytest.raises(NotEnoughTrials, match="at least 2 complete trials, the study .* has 1"):
        get_param_importances(study)
    assert issubclass(NotEnoughTrials, TuningforkError)


def test_no_parameters() -> None:
    study = run_study(lambda t: 1.0, 3)
    with pytest.raises(NotEnoughTrials, match="at least one parameter"):
        get_param_importances(study)


def test_unknown_param_name(six_study: tf.Study) -> None:
    with pytest.raises(SpaceError, match="unknown parameter 'x9'"):
        get_param_importances(six_study, params=["x0", "x9"])


def test_missing_sklearn(monkeypatch: pytest.MonkeyPatch, six_study: tf.Study) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MissingExtra, match=r"pip install 'tuningfork\[sklearn\]'"):
        FanovaEvaluator()
    # the default needs no extra
    assert list(get_param_importances(six_study))[0] == "x0"


def test_package_imports_without_sklearn() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["sklearn"] = None
        import tuningfork as tf
        from tuningfork.importance import get_param_importances, FanovaEvaluator
        study = tf.create_study(storage="memory", sampler=tf.RandomSampler(seed=0))
        for _ in range(20):
            trial = study.ask()
            study.tell(trial, trial.suggest_float("x", 0, 1))
        print(list(get_param_importances(study)))
        try:
            FanovaEvaluator()
        except tf.MissingExtra as error:
            print(error)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "['x']" in done.stdout
    assert "pip install 'tuningfork[sklearn]'" in done.stdout


def test_bad_evaluator_options() -> None:
    with pytest.raises(ValueError, match="target_quantile"):
        PedAnovaEvaluator(target_quantile=0.5, region_quantile=0.5)
    with pytest.raises(ValueError, match="n_trees"):
        FanovaEvaluator(n_trees=0)
    with pytest.raises(TuningforkError, match="direction"):
        PedAnovaEvaluator().evaluate([], Space(x=Float(0, 1)), direction="up")


# --------------------------------------------------------------------------- options


def test_normalize_false_returns_raw_shares(six_study: tf.Study) -> None:
    for evaluator in (FanovaEvaluator(seed=0), PedAnovaEvaluator()):
        raw = get_param_importances(six_study, evaluator=evaluator, normalize=False)
        normalised = get_param_importances(six_study, evaluator=evaluator)
        total = sum(raw.values())
        assert 0.0 < total <= 1.0 + 1e-9
        assert not math.isclose(total, 1.0)
        assert list(raw) == list(normalised)
        assert {k: v / total for k, v in raw.items()} == pytest.approx(normalised)


def test_params_subset(six_study: tf.Study) -> None:
    for evaluator in (FanovaEvaluator(seed=0), PedAnovaEvaluator()):
        result = get_param_importances(six_study, evaluator=evaluator, params=["x4", "x0", "x1"])
        assert list(result)[:2] == ["x0", "x1"]
        assert set(result) == {"x0", "x1", "x4"}
        assert math.isclose(sum(result.values()), 1.0)


def test_region_quantile_gives_local_importance() -> None:
    # the best 10% all have x0 <= 0.2 (a fifth of its range) and x1 in the lower half of
    # its range, so x0 matters most overall; within the best 20% (about the trials with
    # x0 <= 0.2) x0 no longer matters and x1 decides which are best
    def objective(trial: Trial) -> float:
        x0 = trial.suggest_float("x0", 0.0, 1.0)
        x1 = trial.suggest_float("x1", 0.0, 1.0)
        return 10.0 * (x0 > 0.2) + x1

    study = run_study(objective, 300, seed=6)
    global_view = get_param_importances(study, evaluator=PedAnovaEvaluator(0.1, 1.0))
    local_view = get_param_importances(study, evaluator=PedAnovaEvaluator(0.1, 0.2))
    assert list(global_view)[0] == "x0"
    assert list(local_view)[0] == "x1"


def test_determinism(six_study: tf.Study) -> None:
    first = get_param_importances(six_study, evaluator=FanovaEvaluator(seed=7))
    again = get_param_importances(six_study, evaluator=FanovaEvaluator(seed=7))
    assert first == again
    other = get_param_importances(six_study, evaluator=FanovaEvaluator(seed=8))
    assert other != first
    assert get_param_importances(six_study) == get_param_importances(six_study)


def test_custom_evaluator_results_are_clipped_sorted_and_normalised(six_study: tf.Study) -> None:
    class Fixed(ImportanceEvaluator):
        def evaluate(self, trials, space, *, target=None, direction="minimize"):  # type: ignore[no-untyped-def]
            assert direction == "minimize"
            assert len(trials) == 200
            return {"x0": 1.0, "x1": 3.0, "x2": -1.0}

    result = get_param_importances(six_study, evaluator=Fixed())
    assert list(result)[:2] == ["x1", "x0"]
    assert result["x1"] == pytest.approx(0.75)
    assert result["x2"] == 0.0 and result["x5"] == 0.0


def test_trials_space_drops_conditions_and_resolves_changed_ranges() -> None:
    child = Float(0.0, 1.0, when={"kind": "a"})
    trials = [
        FrozenTrial(
            number=i,
            state=TrialState.COMPLETE,
            params={"kind": "a", "child": 0.5, "n": 3},
            distributions={
                "kind": Categorical(["a", "b"]),
                "child": child,
                "n": Int(1, 4) if i < 2 else Int(1, 8),
            },
            values=(float(i),),
        )
        for i in range(3)
    ]
    space = trials_space(trials)
    assert space["child"] == Float(0.0, 1.0)
    assert space["n"] == Int(1, 4)  # recorded by two trials of three


def test_format_importances() -> None:
    text = format_importances({"learning_rate": 0.75, "layers": 0.25, "dropout": 0.0})
    lines = text.splitlines()
    assert lines[0].split() == ["parameter", "importance"]
    assert lines[1].startswith("learning_rate") and lines[1].endswith("#" * 40)
    assert "0.750" in lines[1]
    assert lines[2].count("#") == 13  # 40 * 0.25 / 0.75, rounded
    assert "#" not in lines[3] and "0.000" in lines[3]
    assert format_importances({}) == "no parameters"
