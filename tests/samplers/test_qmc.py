"""QMCSampler: Sobol' and Halton points, better spread than random, keyed on trial numbers."""

from __future__ import annotations

import random
import statistics

import numpy as np
import pytest
from scipy.stats import qmc

import tuningfork as tf
from tuningfork.repro import derive_seed
from tuningfork.trial import FrozenTrial, TrialState

UNIT_SQUARE = tf.Space(x=tf.Float(0.0, 1.0), y=tf.Float(0.0, 1.0))


def points(sampler: tf.Sampler, n: int, space: tf.Space = UNIT_SQUARE) -> np.ndarray:
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(lambda t: 0.0, n_trials=n, space=space)
    return np.array([[t.params[name] for name in space.names] for t in study.trials])


def point_of(sampler: tf.Sampler, number: int, space: tf.Space = UNIT_SQUARE) -> list:
    """The configuration `sampler` gives trial `number` (without running the others)."""
    study = tf.create_study(storage="memory", sampler=sampler)
    trial = FrozenTrial(number=number, state=TrialState.RUNNING)
    return list(sampler.sample_space(study.reader, trial, space).values())


@pytest.mark.parametrize("qmc_type", ["sobol", "halton"])
def test_first_points_are_better_spread_than_random(qmc_type):
    # 2^5 points of the unit square: lower (centred L2) discrepancy than random search,
    # for every seed tried
    n = 2**5
    quasi, rand = [], []
    for seed in range(5):
        quasi.append(qmc.discrepancy(points(tf.QMCSampler(qmc_type=qmc_type, seed=seed), n)))
        rand.append(qmc.discrepancy(points(tf.RandomSampler(seed=seed), n)))
    assert all(q < r for q, r in zip(quasi, rand)), (quasi, rand)
    assert statistics.mean(quasi) < 0.5 * statistics.mean(rand)


def test_scrambled_sobol_is_scipy_sobol_under_the_seed():
    found = points(tf.QMCSampler(seed=3), 8)
    expected = qmc.Sobol(2, scramble=True, rng=np.random.default_rng(3)).random(8)
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-12)


def test_unscrambled_sobol_is_the_standard_sequence():
    found = points(tf.QMCSampler(scramble=False, seed=0), 8)
    standard = [[0, 0], [0.5, 0.5], [0.75, 0.25], [0.25, 0.75]]
    standard += [[0.375, 0.375], [0.875, 0.875], [0.625, 0.125], [0.125, 0.625]]
    np.testing.assert_allclose(found, standard, atol=1e-12)
    # the seed does not matter without scrambling
    np.testing.assert_allclose(points(tf.QMCSampler(scramble=False, seed=9), 8), standard)


def test_unscrambled_halton_is_the_standard_sequence():
    found = points(tf.QMCSampler(qmc_type="halton", scramble=False), 6)
    bases_2_and_3 = [[0, 0], [1 / 2, 1 / 3], [1 / 4, 2 / 3], [3 / 4, 1 / 9]]
    bases_2_and_3 += [[1 / 8, 4 / 9], [5 / 8, 7 / 9]]
    np.testing.assert_allclose(found, bases_2_and_3, atol=1e-12)


@pytest.mark.parametrize("qmc_type", ["sobol", "halton"])
def test_point_n_does_not_depend_on_the_order_of_access(qmc_type):
    sequential = points(tf.QMCSampler(qmc_type=qmc_type, seed=5), 150).tolist()
    sampler = tf.QMCSampler(qmc_type=qmc_type, seed=5)
    order = list(range(150))
    random.Random(0).shuffle(order)
    for number in order:  # jumps between blocks, backwards and forwards
        assert point_of(sampler, number) == pytest.approx(sequential[number], abs=0)
    # far into the sequence, straight from a fresh sampler
    engine = qmc.Sobol if qmc_type == "sobol" else qmc.Halton
    far = engine(2, rng=np.random.default_rng(5)).random(2**13)[5000]
    assert point_of(tf.QMCSampler(qmc_type=qmc_type, seed=5), 5000) == pytest.approx(far)


def test_declared_space_uses_space_decode():
    space = tf.Space(
        kind=tf.Categorical(["a", "b"]),
        depth=tf.Int(1, 4, when={"kind": "b"}),
        lr=tf.Float(1e-4, 1.0, log=True),
    )
    sampler = tf.QMCSampler(seed=1)
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(lambda t: 0.0, n_trials=16, space=space)
    engine = qmc.Sobol(space.dims, rng=np.random.default_rng(1))
    for trial, u in zip(study.trials, engine.random(16)):
        assert trial.params == space.decode(u)
    assert {t.params["kind"] for t in study.trials} == {"a", "b"}


def test_enqueued_values_are_kept_with_a_declared_space():
    space = tf.Space(kind=tf.Categorical(["a", "b"]), depth=tf.Int(1, 4, when={"kind": "b"}))
    study = tf.create_study(storage="memory", sampler=tf.QMCSampler(seed=0))
    study.enqueue_trial({"kind": "b"})
    trial = study.ask(space)
    assert trial.params["kind"] == "b" and 1 <= trial.params["depth"] <= 4


def test_define_by_run_first_trial_independent_then_inferred_dimensions():
    seed = 4
    sampler = tf.QMCSampler(seed=seed)
    study = tf.create_study(storage="memory", sampler=sampler)

    def objective(trial):
        y = trial.suggest_float("y", 0.0, 1.0)
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number >= 3:
            trial.suggest_float("late", 0.0, 1.0)
        return x + y

    study.optimize(objective, n_trials=8)
    trials = study.trials

    def independent(number, name):
        return random.Random(derive_seed(seed, number, name)).random()

    # no completed trial yet: independent draws
    assert trials[0].params == {"y": independent(0, "y"), "x": independent(0, "x")}
    # then the dimensions are trial 0's parameters in sorted order: (x, y)
    sobol = qmc.Sobol(2, rng=np.random.default_rng(seed)).random(8)
    for trial in trials[1:]:
        assert trial.params["x"] == pytest.approx(sobol[trial.number][0], abs=1e-15)
        assert trial.params["y"] == pytest.approx(sobol[trial.number][1], abs=1e-15)
    # a parameter first seen later is drawn independently
    for trial in trials[3:]:
        assert trial.params["late"] == independent(trial.number, "late")


def test_define_by_run_other_distribution_is_drawn_independently():
    seed = 2
    study = tf.create_study(storage="memory", sampler=tf.QMCSampler(seed=seed))
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)
    trial = study.ask()
    value = trial.suggest_float("x", 0.0, 10.0)
    assert value == 10.0 * random.Random(derive_seed(seed, 1, "x")).random()


def test_failed_trials_do_not_define_the_dimensions():
    study = tf.create_study(storage="memory", sampler=tf.QMCSampler(seed=0))
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    study.tell(trial, state="FAIL")
    assert study.sampler._dimensions(study.reader) is None  # type: ignore[attr-defined]
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=2)
    dims = study.sampler._dimensions(study.reader)  # type: ignore[attr-defined]
    assert dims is not None and list(dims.position) == ["x"]


def test_describe_and_bad_arguments():
    sampler = tf.QMCSampler(qmc_type="halton", scramble=False, seed=1)
    assert sampler.describe() == {
        "name": "QMCSampler",
        "seed": 1,
        "qmc_type": "halton",
        "scramble": False,
    }
    assert isinstance(tf.QMCSampler().seed, int)
    with pytest.raises(tf.TuningforkError, match="'sobol', 'halton'"):
        tf.QMCSampler(qmc_type="lhs")  # type: ignore[arg-type]
    with pytest.raises(tf.TuningforkError, match="scramble"):
        tf.QMCSampler(scramble="yes")  # type: ignore[arg-type]


def test_threads_share_the_sampler():
    study = tf.create_study(storage="memory", sampler=tf.QMCSampler(seed=0))
    study.optimize(lambda t: 0.0, n_trials=64, n_jobs=4, space=UNIT_SQUARE)
    trials = study.trials
    expected = qmc.Sobol(2, rng=np.random.default_rng(0)).random(64)
    for trial in trials:
        assert [trial.params["x"], trial.params["y"]] == list(expected[trial.number])
