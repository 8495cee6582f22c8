"""The test functions reach their published minima at the published optimisers."""

from __future__ import annotations

import pytest

from tuningfork.testing.functions import PROBLEMS


def point(prefix_values):
    return {f"x{i}": v for i, v in enumerate(prefix_values)}


@pytest.mark.parametrize(
    "name, params",
    [
        ("branin", {"x0": -3.141592653589793, "x1": 12.275}),
        ("branin", {"x0": 9.42478, "x1": 2.475}),
        ("hartmann3", point([0.114614, 0.555649, 0.852547])),
        ("hartmann6", point([0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573])),
        ("levy10", point([1.0] * 10)),
        ("rosenbrock5", point([1.0] * 5)),
        ("ackley10", point([0.0] * 10)),
        (
            "mixed",
            {
                "lr": 1e-3,
                "dropout": 0.2,
                "layers": 3,
                "units": 128,
                "optimizer": "adam",
                "batch_norm": True,
            },
        ),
        ("regions", {"x0": -2.3, "x1": -2.7, "x2": 0.9, "x3": -3.6, "region": "r5"}),
        (
            "cell",
            {
                "e01": "conv3x3",
                "e02": "conv1x1",
                "e12": "conv3x3",
                "e03": "skip",
                "e13": "conv1x1",
                "e23": "conv3x3",
            },
        ),
    ],
)
def test_minimum_at_the_known_optimiser(name, params):
    problem = PROBLEMS[name]
    problem.space.validate(params)
    assert problem.function(params) == pytest.approx(problem.optimum, abs=1e-4)


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_random_points_are_above_the_optimum(name):
    problem = PROBLEMS[name]
    import random

    rng = random.Random(0)
    for _ in range(200):
        params = problem.space.decode([rng.random() for _ in range(problem.space.dims)])
        assert problem.regret(problem.function(params)) >= -1e-6


def test_cell_optimum_is_the_minimum_over_all_configurations():
    import itertools

    problem = PROBLEMS["cell"]
    names = problem.space.names
    values = [
        problem.function(dict(zip(names, ops)))
        for ops in itertools.product(problem.space[names[0]].choices, repeat=len(names))
    ]
    assert len(values) == 5**6
    assert min(values) == pytest.approx(problem.optimum, abs=1e-9)
