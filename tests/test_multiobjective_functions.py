"""The multi-objective problems and the hypervolume in tuningfork.testing.multiobjective."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tuningfork as tf
from tuningfork.exceptions import OptionError
from tuningfork.testing.multiobjective import (
    PROBLEMS,
    dtlz1,
    dtlz2,
    hypervolume,
    pareto_front,
    zdt1,
    zdt2,
    zdt3,
)

# -- hypervolume: small cases by hand ---------------------------------------------------------


def test_hypervolume_of_one_point_is_its_box():
    assert hypervolume([[1.0, 2.0]], [3.0, 3.0]) == pytest.approx(2.0)
    assert hypervolume([[0.0, 0.0, 0.0]], [1.0, 2.0, 3.0]) == pytest.approx(6.0)
    assert hypervolume([[2.0], [1.0]], [3.0]) == pytest.approx(2.0)


def test_hypervolume_two_objectives_by_hand():
    # boxes [1, 3] x [2, 3] and [2, 3] x [1, 3]: 2 + 2 - their overlap 1
    assert hypervolume([[1.0, 2.0], [2.0, 1.0]], [3.0, 3.0]) == pytest.approx(3.0)
    # a staircase of three: strips 1 x 3, 1 x 2, 1 x 1
    assert hypervolume([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]], [3.0, 3.0]) == pytest.approx(6.0)


def test_hypervolume_ignores_dominated_duplicate_and_outside_points():
    base = [[1.0, 2.0], [2.0, 1.0]]
    extra = [
        [2.0, 2.5],  # dominated
        [1.0, 2.0],  # duplicate
        [4.0, 0.0],  # beyond the reference in the first objective
        [0.0, 3.0],  # on the reference: dominates nothing
        [np.nan, 0.0],
    ]
    assert hypervolume(base + extra, [3.0, 3.0]) == pytest.approx(3.0)
    assert hypervolume([[4.0, 4.0]], [3.0, 3.0]) == 0.0
    assert hypervolume(np.empty((0, 2)), [3.0, 3.0]) == 0.0


def test_hypervolume_three_objectives_by_hand():
    # three unit-thick boxes 1 x 2 x 2 around the axes, in [0, 2]^3: by inclusion-exclusion
    # 3 x 4 - 3 x 2 (pairwise overlaps 1 x 1 x 2) + 1 (all three: the unit cube) = 7
    axes = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert hypervolume(axes, [2.0, 2.0, 2.0]) == pytest.approx(7.0)
    extra = [[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [3.0, 0.0, 0.0], [1.5, 0.5, 2.0]]
    assert hypervolume(axes + extra, [2.0, 2.0, 2.0]) == pytest.approx(7.0)
    # two points on one level of the third objective, one above
    points = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    # slice z in [0, 1): 2-D hypervolume of the first two in [2, 2] = 2 + 2 - 1 = 3;
    # slice z in [1, 2): all three, the third dominates the box = 4
    assert hypervolume(points, [2.0, 2.0, 2.0]) == pytest.approx(3.0 + 4.0)


def test_hypervolume_rejects_mismatched_shapes():
    with pytest.raises(OptionError, match="rows of 2"):
        hypervolume([[1.0, 2.0, 3.0]], [4.0, 4.0])
    with pytest.raises(OptionError, match="finite"):
        hypervolume([[1.0, 2.0]], [4.0, math.inf])


def test_pareto_front_keeps_the_non_dominated_rows_in_order():
    points = [[1.0, 3.0], [2.0, 2.0], [2.0, 3.0], [3.0, 1.0], [1.0, 3.0]]
    front = pareto_front(points)
    assert front.tolist() == [[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [1.0, 3.0]]
    assert pareto_front(np.empty((0, 2))).shape == (0, 2)


# -- hypervolume against pymoo on random sets ---------------------------------------------------


@pytest.mark.parametrize("objectives", [2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hypervolume_matches_pymoo(objectives, seed):
    hv_module = pytest.importorskip("pymoo.indicators.hv")
    rng = np.random.default_rng(seed)
    # points near a front (a sphere's orthant) plus random ones (mostly dominated), some
    # beyond the reference point and a few duplicates
    near = rng.random((60, objectives))
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    points = np.vstack([near, rng.random((40, objectives)) * 1.4, near[:5]])
    reference = np.full(objectives, 1.1)
    expected = hv_module.HV(ref_point=reference)(points)
    assert hypervolume(points, reference) == pytest.approx(expected, rel=1e-9)


# -- the problems --------------------------------------------------------------------------------


def _optimal_x(problem, position):
    """A Pareto-optimal x of ``problem``: ``position`` in front, the rest at the optimum of g."""
    n = len(problem.space.names)
    rest = 0.0 if problem.name.startswith("zdt") else 0.5
    return np.concatenate([position, np.full(n - len(position), rest)])


@pytest.mark.parametrize(
    ("problem", "front"),
    [(zdt1(), 121 - 1 / 3), (zdt2(), 121 - 2 / 3), (zdt1(5), 121 - 1 / 3)],
)
def test_zdt_front_hypervolume_is_the_area_above_the_curve(problem, front):
    assert problem.front_hypervolume == pytest.approx(front)
    points = [problem.function(_optimal_x(problem, [f1])) for f1 in np.linspace(0, 1, 20_001)]
    # a fine sample of the front is a staircase just below the true front's hypervolume
    missing = problem.front_hypervolume - hypervolume(points, problem.reference_point)
    assert 0.0 <= missing < 1e-4


def test_zdt3_front_hypervolume_from_a_sample_of_its_pieces():
    problem = zdt3()
    points = [problem.function(_optimal_x(problem, [f1])) for f1 in np.linspace(0, 1, 20_001)]
    missing = problem.front_hypervolume - hypervolume(points, problem.reference_point)
    assert 0.0 <= missing < 1e-4
    front = pareto_front(points[::4])
    # five disconnected pieces: gaps in f1 between consecutive non-dominated points
    gaps = np.diff(np.sort(front[:, 0]))
    assert int(np.sum(gaps > 0.01)) == 4
    assert front[:, 1].min() == pytest.approx(-0.7734, abs=1e-4)


def test_dtlz2_front_is_the_unit_sphere_and_its_hypervolume():
    problem = dtlz2()
    assert len(problem.space.names) == 12  # M + k - 1 = 3 + 10 - 1
    assert problem.front_hypervolume == pytest.approx(1.1**3 - math.pi / 6)
    grid = np.linspace(0, 1, 41)
    points = np.array([problem.function(_optimal_x(problem, [a, b])) for a in grid for b in grid])
    assert np.allclose(np.linalg.norm(points, axis=1), 1.0)
    # 1,681 points of the front: a little below its hypervolume, never above
    assert 0.97 < problem.hypervolume_ratio(points) <= 1.0
    off = problem.function(np.full(12, 0.9))  # g > 0: outside the sphere
    assert np.linalg.norm(off) > 1.0


def test_dtlz1_front_is_the_simplex_and_its_hypervolume():
    problem = dtlz1()
    assert len(problem.space.names) == 7  # M + k - 1 = 3 + 5 - 1
    assert problem.front_hypervolume == pytest.approx(100.0**3 - 0.5**3 / 6)
    grid = np.linspace(0, 1, 41)
    points = np.array([problem.function(_optimal_x(problem, [a, b])) for a in grid for b in grid])
    assert np.allclose(points.sum(axis=1), 0.5)
    # against (1, 1, 1) the box less the simplex under the front: 1 - 0.5^3 / 3!
    assert hypervolume(points, [1.0, 1.0, 1.0]) == pytest.approx(1 - 0.5**3 / 6, abs=2e-3)
    # a local front: x_M.. at 0.6 instead of 0.5 (g = 100 * 5 * 0.01 = 5)
    local = problem.function(np.array([0.3, 0.7, *[0.6] * 5]))
    assert sum(local) == pytest.approx(0.5 * (1 + 5.0))


def test_problem_variants_and_their_names():
    assert set(PROBLEMS) == {
        "zdt1", "zdt2", "zdt3", "zdt1_n5", "zdt2_n5", "zdt3_n5", "dtlz1", "dtlz2",
    }  # fmt: skip
    assert len(PROBLEMS["zdt3"].space.names) == 30 and len(PROBLEMS["zdt3_n5"].space.names) == 5
    four = dtlz2(n_objectives=4)
    assert four.name == "dtlz2_m4" and len(four.space.names) == 13
    assert four.directions == ("minimize",) * 4
    assert four.front_hypervolume == pytest.approx(1.1**4 - math.pi**2 / 2 / 16)
    with pytest.raises(OptionError, match="at least 2 variables"):
        zdt1(1)
    with pytest.raises(OptionError, match="at least 2 objectives"):
        dtlz1(n_objectives=1)


@pytest.mark.parametrize("name", ["zdt1_n5", "dtlz2"])
def test_problem_objective_runs_in_a_study(name):
    problem = PROBLEMS[name]
    study = tf.create_study(
        storage="memory", directions=list(problem.directions), sampler=tf.RandomSampler(seed=0)
    )
    study.optimize(problem.objective, n_trials=8, show_progress_bar=False)
    trials = study.trials
    assert len(trials) == 8
    for trial in trials:
        assert trial.values is not None and len(trial.values) == len(problem.reference_point)
        assert tuple(trial.values) == pytest.approx(problem.evaluate(trial.params))
    values = [t.values for t in trials]
    assert 0.0 <= problem.hypervolume_ratio(values) < 1.0
