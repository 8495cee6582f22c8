"""GPSampler: the sampler contract and its defining behaviour (the model's likelihood
gradient, log EI, interpolation, optimisation quality, parallel proposals, determinism)."""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

import tuningfork as tf
from tuningfork.exceptions import TuningforkError
from tuningfork.samplers._acquisition import log_ei, log_h
from tuningfork.samplers._gp_encoding import _Encoding
from tuningfork.samplers._gp_model import (
    GaussianProcess,
    Prior,
    _Distances,
    default_theta,
    fit_hyperparameters,
    neg_log_posterior,
)
from tuningfork.samplers.base import Sampler
from tuningfork.samplers.gp import GPSampler, _outputs, _standardise
from tuningfork.samplers.random import RandomSampler
from tuningfork.space import Categorical, Float, Int, Space
from tuningfork.testing import SamplerContract
from tuningfork.testing.functions import PROBLEMS
from tuningfork.testing.samplers import bounds_space, conditional_space
from tuningfork.trial import TrialState

# fewer candidates than the default keep the suite fast; the algorithm is the same
FAST = {"n_candidates": 256, "n_local_search": 4}


class TestGPContract(SamplerContract):
    def make_sampler(self, seed: int, space: Space) -> Sampler:
        return GPSampler(seed=seed, **FAST)


# -- the model ------------------------------------------------------------------------------


def _data(n: int = 25, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three continuous inputs and one categorical (3 choices), standardised outputs."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 4))
    x[:, 3] = rng.integers(0, 3, n)
    y = np.sin(6 * x[:, 0]) + x[:, 1] ** 2 + 0.5 * x[:, 3]
    return x, (y - y.mean()) / y.std(), np.array([False, False, False, True])


@pytest.mark.parametrize("fixed_noise", [False, True])
def test_marginal_likelihood_gradient_matches_finite_differences(fixed_noise: bool) -> None:
    x, y, categorical = _data()
    distances = _Distances(x, categorical)
    theta = np.array([-1.2, -0.3, 0.4, -0.5, 0.2, math.log(0.01)])
    args = (distances, y, Prior(), 1e-6, fixed_noise)
    _, grad = neg_log_posterior(theta, *args)
    numeric = np.empty_like(theta)
    for i in range(len(theta)):
        step = np.zeros_like(theta)
        step[i] = 1e-6
        plus = neg_log_posterior(theta + step, *args)[0]
        minus = neg_log_posterior(theta - step, *args)[0]
        numeric[i] = (plus - minus) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)
    if fixed_noise:
        assert grad[-1] == 0.0


def test_posterior_gradient_matches_finite_differences() -> None:
    x, y, categorical = _data()
    theta = np.array([-1.0, -0.5, 0.0, 0.0, 0.0, math.log(1e-3)])
    gp = GaussianProcess(x, y, categorical, theta, noise_floor=1e-6, fixed_noise=False)
    points, _, _ = _data(6, seed=1)
    dims = np.array([0, 1, 2])
    _, _, d_mean, d_var = gp.predict_with_grad(points, dims)
    for i in dims:
        step = np.zeros(4)
        step[i] = 1e-5
        mean_plus, var_plus = gp.predict(points + step)
        mean_minus, var_minus = gp.predict(points - step)
        np.testing.assert_allclose((mean_plus - mean_minus) / 2e-5, d_mean[:, i], atol=1e-6)
        np.testing.assert_allclose((var_plus - var_minus) / 2e-5, d_var[:, i], atol=1e-6)


def test_gp_interpolates_noise_free_data() -> None:
    x, y, categorical = _data()
    start = default_theta(4, Prior())
    theta, _ = fit_hyperparameters(
        x, y, categorical, [start], prior=Prior(), noise_floor=1e-6, fixed_noise=True, max_iter=200
    )
    gp = GaussianProcess(x, y, categorical, theta, noise_floor=1e-6, fixed_noise=True)
    mean, var = gp.predict(x)
    np.testing.assert_allclose(mean, y, atol=1e-3)
    assert np.all(var < 1e-4)
    # away from the data the model is uncertain again
    _, far = gp.predict(np.array([[0.5, 0.5, 0.5, 2.0]]) + 10.0)
    assert far[0] > 0.1


def test_duplicate_points_and_constant_values_do_not_crash() -> None:
    x, _, categorical = _data(10)
    x = np.vstack([x, x, x[:3]])  # every point twice, some three times
    for fixed_noise in (False, True):
        for y in (np.zeros(len(x)), np.arange(len(x)) % 2 - 0.5):
            start = default_theta(4, Prior())
            theta, value = fit_hyperparameters(
                x, y, categorical, [start], prior=Prior(), noise_floor=1e-6,
                fixed_noise=fixed_noise, max_iter=50,
            )  # fmt: skip
            assert np.all(np.isfinite(theta)) and math.isfinite(value)
            gp = GaussianProcess(
                x, y, categorical, theta, noise_floor=1e-6, fixed_noise=fixed_noise
            )
            mean, var = gp.predict(x)
            assert np.all(np.isfinite(mean)) and np.all(np.isfinite(var))


def test_output_warp_is_the_maximum_likelihood_yeo_johnson_transform() -> None:
    from scipy.stats import yeojohnson

    rng = np.random.default_rng(0)
    for y in (rng.lognormal(size=50) * 100, rng.normal(size=40), -rng.lognormal(size=30)):
        z = _standardise(y)
        expected, _ = yeojohnson(z)
        np.testing.assert_allclose(_outputs(y), _standardise(expected), atol=1e-4)
        warped = _outputs(y)
        assert abs(warped.mean()) < 1e-9 and abs(warped.std() - 1) < 1e-9
        assert np.array_equal(np.argsort(warped), np.argsort(y))  # order kept
    assert np.array_equal(_outputs(np.full(5, 3.0)), np.zeros(5))


# -- log expected improvement -----------------------------------------------------------------


def test_log_ei_matches_naive_log_ei_where_ei_is_not_tiny() -> None:
    rng = np.random.default_rng(0)
    mean = rng.normal(size=200)
    var = rng.uniform(0.01, 2.0, size=200)
    best = 0.3
    sigma = np.sqrt(var)
    z = (best - mean) / sigma
    naive = np.log(sigma * (norm.pdf(z) + z * norm.cdf(z)))
    keep = z > -8  # EI above about 1e-17: the naive formula is still accurate there
    value, d_mean, d_var, _ = log_ei(mean, var, best)
    np.testing.assert_allclose(value[keep], naive[keep], rtol=1e-9, atol=1e-9)
    # and the gradients agree with finite differences
    h = 1e-6
    np.testing.assert_allclose(
        d_mean, (log_ei(mean + h, var, best)[0] - log_ei(mean - h, var, best)[0]) / (2 * h),
        rtol=1e-4, atol=1e-6,
    )  # fmt: skip
    np.testing.assert_allclose(
        d_var, (log_ei(mean, var + h, best)[0] - log_ei(mean, var - h, best)[0]) / (2 * h),
        rtol=1e-4, atol=1e-6,
    )  # fmt: skip


def test_log_ei_stays_finite_where_ei_underflows() -> None:
    z = np.array([-40.0, -1e3, -1e7, -1e9, -1e12])
    value = log_h(z)
    assert np.all(np.isfinite(value))
    assert np.all(np.diff(value) < 0)  # still ordered: more negative z, smaller EI
    with np.errstate(divide="ignore"):
        assert np.log(norm.pdf(-40.0) - 40.0 * norm.cdf(-40.0)) == -math.inf
    # asymptotically log h(z) = -z^2/2 - log sqrt(2 pi) - 2 log|z|
    asymptote = -0.5 * z**2 - 0.5 * math.log(2 * math.pi) - 2 * np.log(-z)
    np.testing.assert_allclose(value, asymptote, rtol=1e-3)
    _, d_mean, d_var, _ = log_ei(np.array([40.0]), np.array([1.0]), 0.0)
    assert np.isfinite(d_mean[0]) and d_mean[0] < 0 and np.isfinite(d_var[0])


def test_log_h_is_continuous_across_its_branches() -> None:
    for edge in (-1.0, -1.0 / math.sqrt(np.finfo(float).eps)):
        below, above = log_h(np.array([edge * (1 + 1e-9), edge * (1 - 1e-9)]))
        assert abs(below - above) < 1e-6 * max(1.0, abs(below))


# -- encoding -------------------------------------------------------------------------------


def test_rounding_lands_on_legal_values_as_from_unit_does() -> None:
    space = bounds_space()
    encoding = _Encoding(space)
    u = np.random.default_rng(0).random((500, space.dims))
    x = encoding.from_cube(u)
    for row, raw in zip(x, u):
        params = encoding.decode(row, {})
        space.validate(params)
        for i, name in enumerate(space.names):
            dist = space[name]
            if isinstance(dist, Categorical):
                assert params[name] == dist.from_unit(raw[i])
            elif encoding.kind[i] != 0:  # a grid: its cell, and the centre of it
                assert params[name] == dist.from_unit(raw[i])
                assert row[i] == pytest.approx(dist.to_unit(params[name]), abs=1e-12)


# -- the sampler ----------------------------------------------------------------------------


def _median_regret(problem_name: str, make_sampler, seeds: range, n_trials: int) -> float:
    problem = PROBLEMS[problem_name]
    regrets = []
    for seed in seeds:
        study = tf.create_study(storage="memory", sampler=make_sampler(seed))
        study.optimize(problem.objective, n_trials=n_trials)
        regrets.append(problem.regret(study.best_value))
    return statistics.median(regrets)


@pytest.mark.slow
@pytest.mark.parametrize("problem_name", ["branin", "hartmann6"])
def test_beats_random_search(problem_name: str) -> None:
    """Over 10 seeds, the median regret after 60 trials is under a tenth of random search's
    (a 'clear margin'; in practice it is several orders of magnitude lower)."""
    seeds = range(10)
    gp = _median_regret(problem_name, lambda s: GPSampler(seed=s, **FAST), seeds, 60)
    rand = _median_regret(problem_name, lambda s: RandomSampler(seed=s), seeds, 60)
    assert gp < 0.1 * rand, (gp, rand)


def _mixed_space() -> Space:
    return Space(
        x=Float(-2.0, 3.0),
        lr=Float(1e-5, 1e-1, log=True),
        q=Float(0.0, 1.0, step=0.25),
        n=Int(-3, 7),
        units=Int(1, 1024, log=True),
        k=Int(0, 100, step=5),
        kind=Categorical(["a", "b", "c"]),
    )


@pytest.mark.parametrize("mode", ["define_by_run", "space"])
def test_proposals_stay_legal(mode: str) -> None:
    """The optimum sits on the edges and between grid points: proposals must still be legal
    values (int, step, log and categorical), never outside the space."""
    space = _mixed_space()

    def value(params: dict) -> float:
        return (
            (params["x"] - 3.1) ** 2
            + abs(math.log10(params["lr"]) + 5.2)
            + (params["q"] - 0.6) ** 2
            + (params["n"] - 7.4) ** 2
            + abs(params["units"] - 700.5) / 100
            + (params["k"] - 52) ** 2 / 100
            + (params["kind"] != "b")
        )

    study = tf.create_study(storage="memory", sampler=GPSampler(seed=3, n_startup_trials=5, **FAST))
    if mode == "space":
        study.optimize(lambda trial: value(trial.params), n_trials=25, space=space)
    else:
        study.optimize(lambda t: value({n: t.suggest(n, space[n]) for n in space}), n_trials=25)
    for trial in study.trials:
        assert trial.state is TrialState.COMPLETE
        space.validate(trial.params)
        assert type(trial.params["n"]) is int and type(trial.params["x"]) is float
    best = study.best_params
    assert best["kind"] == "b"


def test_conditional_space_is_modelled() -> None:
    space = conditional_space()

    def objective(trial: tf.Trial) -> float:
        p = trial.params
        base = {"linear": 1.0, "tree": 0.5, "net": 0.0}[p["model"]]
        return base + abs(math.log10(p["lr"]) + 2) + (p.get("dropout", 0.5) - 0.1) ** 2

    sampler = GPSampler(seed=0, n_startup_trials=8, **FAST)
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(objective, n_trials=30, space=space)
    for trial in study.trials:
        space.validate(trial.params)
    assert study.best_params["model"] == "net"
    assert study.best_value < 0.5


def _ask_configuration(study: tf.Study, space: Space) -> dict:
    trial = study.ask()
    return {name: trial.suggest(name, space[name]) for name in space}


def test_constant_liar_workers_propose_distinct_points() -> None:
    problem = PROBLEMS["hartmann3"]
    space = problem.space
    study = tf.create_study(storage="memory", sampler=GPSampler(seed=1, **FAST))
    study.optimize(problem.objective, n_trials=10)
    # four workers ask before any of them tells
    workers = [
        tf.load_study(study.name, storage=study.storage, sampler=GPSampler(seed=1, **FAST))
        for _ in range(4)
    ]
    proposals = [_ask_configuration(worker, space) for worker in workers]
    points = np.array([space.encode(p) for p in proposals])
    distances = [np.linalg.norm(a - b) for a, b in itertools.combinations(points, 2)]
    assert min(distances) > 1e-3, proposals
    assert len({tuple(p.values()) for p in proposals}) == 4


def test_without_constant_liar_workers_can_collide() -> None:
    """The control: the same four workers without the liar all propose one point."""
    problem = PROBLEMS["hartmann3"]
    study = tf.create_study(storage="memory", sampler=GPSampler(seed=1, **FAST))
    study.optimize(problem.objective, n_trials=10)
    options = {"constant_liar": False, **FAST}
    workers = [
        tf.load_study(study.name, storage=study.storage, sampler=GPSampler(seed=1, **options))
        for _ in range(2)
    ]
    first, second = (_ask_configuration(worker, problem.space) for worker in workers)
    assert workers[0].sampler.flush_suggestions is False
    # different trial numbers give different random candidates, so only nearly equal
    distance = np.linalg.norm(problem.space.encode(first) - problem.space.encode(second))
    assert distance < 0.5


@pytest.mark.parametrize("mode", ["define_by_run", "space"])
def test_same_seed_same_configurations(mode: str) -> None:
    problem = PROBLEMS["hartmann3"]

    def run(seed: int) -> list[dict]:
        sampler = GPSampler(seed=seed, n_startup_trials=5, **FAST)
        study = tf.create_study(storage="memory", sampler=sampler)
        if mode == "space":
            study.optimize(lambda t: problem.function(t.params), n_trials=15, space=problem.space)
        else:
            study.optimize(problem.objective, n_trials=15)
        return [t.params for t in study.trials]

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_a_restarted_process_makes_the_same_decisions(tmp_path: Path) -> None:
    """The fits are rebuilt from the trials alone: a process that loads the study midway
    (an empty cache) proposes exactly what an uninterrupted one does."""
    problem = PROBLEMS["hartmann3"]
    url = f"sqlite:///{tmp_path / 'gp.db'}"
    options = {"seed": 9, "n_startup_trials": 5, **FAST}
    whole = tf.create_study("whole", storage=url, sampler=GPSampler(**options))
    whole.optimize(problem.objective, n_trials=28)
    part = tf.create_study("part", storage=url, sampler=GPSampler(**options))
    part.optimize(problem.objective, n_trials=23)
    resumed = tf.load_study("part", storage=url, sampler=GPSampler(**options))
    resumed.optimize(problem.objective, n_trials=5)
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]


def test_enqueued_values_are_kept_fixed() -> None:
    problem = PROBLEMS["hartmann3"]
    study = tf.create_study(storage="memory", sampler=GPSampler(seed=0, **FAST))
    study.optimize(problem.objective, n_trials=10)
    study.enqueue_trial({"x1": 0.25})
    study.optimize(problem.objective, n_trials=1)
    last = study.trials[-1]
    assert last.params["x1"] == 0.25
    assert set(last.params) == {"x0", "x1", "x2"}


def test_parameters_outside_the_inferred_space_are_drawn_independently() -> None:
    def objective(trial: tf.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number >= 8:  # a parameter that appears late, and one that changes range
            trial.suggest_int("late", 0, 3)
        y = trial.suggest_float("y", 0.0, 1.0 if trial.number < 12 else 2.0)
        return (x - 0.2) ** 2 + (y - 0.7) ** 2

    study = tf.create_study(storage="memory", sampler=GPSampler(seed=0, n_startup_trials=4, **FAST))
    study.optimize(objective, n_trials=16)
    for trial in study.trials:
        assert 0.0 <= trial.params["x"] <= 1.0
        assert trial.params.get("late", 0) in (0, 1, 2, 3)


def test_maximize() -> None:
    problem = PROBLEMS["branin"]
    study = tf.create_study(
        storage="memory", direction="maximize", sampler=GPSampler(seed=0, **FAST)
    )
    study.optimize(lambda t: -problem.objective(t), n_trials=30)
    assert problem.regret(-study.best_value) < 0.05


def test_constant_objective_does_not_crash() -> None:
    study = tf.create_study(storage="memory", sampler=GPSampler(seed=0, n_startup_trials=3, **FAST))
    study.optimize(lambda t: 1.0 + 0 * t.suggest_float("x", 0, 1), n_trials=8)
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    study = tf.create_study(storage="memory", sampler=GPSampler(seed=0, n_startup_trials=3, **FAST))
    study.enqueue_trial({"x": 0.5})
    study.enqueue_trial({"x": 0.5})
    study.enqueue_trial({"x": 0.5})
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=6)
    assert all(t.state is TrialState.COMPLETE for t in study.trials)


# A user's script: scipy (and its own OpenBLAS) is not loaded until the GP needs it. The
# subclass records the thread count of every loaded BLAS library while the GP proposes.
_BLAS_WATCH = """
import json
import tuningfork as tf
from threadpoolctl import threadpool_info
from tuningfork.samplers.gp import GPSampler

def blas_threads():
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

proposing = []

class WatchedGPSampler(GPSampler):
    def _gaussian_process(self, *args):
        proposing.append(blas_threads())
        return super()._gaussian_process(*args)

sampler = WatchedGPSampler(seed=0, n_startup_trials=3, n_candidates=64, n_local_search=1)
study = tf.create_study(storage="memory", sampler=sampler)
study.optimize(lambda t: (t.suggest_float("x", -1.0, 1.0) - 0.3) ** 2, n_trials=6)
print(json.dumps({"proposing": proposing, "after": blas_threads()}))
"""


@pytest.mark.slow
def test_every_blas_library_runs_one_thread_while_the_gp_proposes() -> None:
    """scipy's own OpenBLAS, loaded lazily after numpy's, is limited too (issue 13)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-c", _BLAS_WATCH], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert len(report["proposing"]) == 3  # trials 3, 4 and 5
    for threads in report["proposing"]:
        assert threads and set(threads) == set(report["after"])
        assert set(threads.values()) == {1}, threads
    if len(os.sched_getaffinity(0)) > 1:  # the libraries' own counts come back afterwards
        assert min(report["after"].values()) > 1, report["after"]


def test_overlapping_proposals_share_one_limit_and_restore_the_threads() -> None:
    """Two proposals in two threads overlap: the one that ends first must not lift the
    other's limit, and the last one restores the libraries' own thread counts."""
    code = textwrap.dedent(
        """
        import json
        import scipy.linalg
        from threadpoolctl import threadpool_info
        from tuningfork.samplers._blas import _single_threaded_blas

        def blas():
            return {i["filepath"]: i["num_threads"] for i in threadpool_info()
                    if i["user_api"] == "blas"}

        before = blas()
        first, second = _single_threaded_blas(), _single_threaded_blas()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)  # the first proposal ends, the second goes on
        during = blas()
        second.__exit__(None, None, None)
        print(json.dumps({"before": before, "during": during, "after": blas()}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    if max(report["before"].values()) == 1:
        pytest.skip("every BLAS library runs one thread here already")
    assert set(report["during"].values()) == {1}
    assert report["after"] == report["before"]


def test_multi_objective_study_is_refused() -> None:
    study = tf.create_study(
        storage="memory", directions=["minimize", "minimize"], sampler=GPSampler(seed=0)
    )
    trial = study.ask()
    with pytest.raises(TuningforkError, match="GPSampler supports single-objective studies"):
        trial.suggest_float("x", 0.0, 1.0)


def test_options_are_checked_and_described() -> None:
    with pytest.raises(TuningforkError, match="n_startup_trials"):
        GPSampler(n_startup_trials=0)
    sampler = GPSampler(seed=3, constant_liar=False, deterministic_objective=True)
    record = sampler.describe()
    assert record == {
        "name": "GPSampler",
        "seed": 3,
        "n_startup_trials": 10,
        "constant_liar": False,
        "deterministic_objective": True,
        "n_candidates": 2048,
        "n_local_search": 10,
    }
    assert sampler.flush_suggestions is False
    assert GPSampler(seed=3).flush_suggestions is True
