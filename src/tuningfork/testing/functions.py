"""Standard test functions for optimisers, with their domains and known optima.

Definitions follow Surjanovic & Bingham's "Virtual Library of Simulation Experiments"
(Simon Fraser University). Each `Problem` gives a `Space`, a function of a parameter dict
and the global minimum, so regret = best value found - optimum.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuningfork.space import Categorical, Float, Int, Space

__all__ = [
    "PROBLEMS",
    "Problem",
    "ackley",
    "branin",
    "cell",
    "hartmann3",
    "hartmann6",
    "levy",
    "mixed",
    "regions",
    "rosenbrock",
]


@dataclass(frozen=True)
class Problem:
    """A minimisation problem: ``function(params)`` over ``space``, global minimum ``optimum``."""

    name: str
    space: Space
    function: Callable[[Mapping[str, Any]], float]
    optimum: float

    def objective(self, trial: Any) -> float:
        """A define-by-run objective: suggests every parameter of the space, in order."""
        params = {name: trial.suggest(name, self.space[name]) for name in self.space.names}
        return self.function(params)

    def regret(self, value: float) -> float:
        """How far ``value`` is above the global minimum."""
        return value - self.optimum


def _vector(params: Mapping[str, Any], prefix: str = "x") -> np.ndarray:
    return np.array([params[f"{prefix}{i}"] for i in range(len(params))], dtype=float)


def branin(params: Mapping[str, Any]) -> float:
    """Branin-Hoo on x0 in [-5, 10], x1 in [0, 15]; minimum 0.397887 at three points."""
    x0, x1 = params["x0"], params["x1"]
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return (x1 - b * x0**2 + c * x0 - r) ** 2 + s * (1 - t) * math.cos(x0) + s


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array(
    [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]
)
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _hartmann(x: np.ndarray, a: np.ndarray, p: np.ndarray) -> float:
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(a * (x - p) ** 2, axis=1))))


def hartmann3(params: Mapping[str, Any]) -> float:
    """Hartmann 3-d on [0, 1]^3; minimum -3.86278."""
    return _hartmann(_vector(params), _H3_A, _H3_P)


def hartmann6(params: Mapping[str, Any]) -> float:
    """Hartmann 6-d on [0, 1]^6; minimum -3.32237."""
    return _hartmann(_vector(params), _H6_A, _H6_P)


def levy(params: Mapping[str, Any]) -> float:
    """Levy on [-10, 10]^d; minimum 0 at (1, ..., 1)."""
    w = 1 + (_vector(params) - 1) / 4
    head = math.sin(math.pi * w[0]) ** 2
    middle = np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
    tail = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return float(head + middle + tail)


def rosenbrock(params: Mapping[str, Any]) -> float:
    """Rosenbrock on [-5, 10]^d; minimum 0 at (1, ..., 1)."""
    x = _vector(params)
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def ackley(params: Mapping[str, Any]) -> float:
    """Ackley on [-32.768, 32.768]^d; minimum 0 at the origin."""
    x = _vector(params)
    d = len(x)
    first = -20 * math.exp(-0.2 * math.sqrt(float(np.sum(x**2)) / d))
    second = -math.exp(float(np.sum(np.cos(2 * math.pi * x))) / d)
    return first + second + 20 + math.e


_MIXED_SHIFT = {"adam": 0.0, "sgd": 0.3, "rmsprop": 0.15}


def mixed(params: Mapping[str, Any]) -> float:
    """A 6-parameter mixed problem (2 floats, one log, 2 ints, 2 categoricals) shaped like a
    training run's loss; minimum 0 at lr=1e-3, dropout=0.2, layers=3, units=128,
    optimizer="adam", batch_norm=True."""
    lr_term = (math.log10(params["lr"]) + 3) ** 2 / 4
    dropout_term = (params["dropout"] - 0.2) ** 2 * 4
    layers_term = (params["layers"] - 3) ** 2 / 8
    units_term = (math.log2(params["units"]) - 7) ** 2 / 9
    return (
        lr_term
        + dropout_term
        + layers_term
        + units_term
        + _MIXED_SHIFT[params["optimizer"]]
        + (0.0 if params["batch_norm"] else 0.2)
    )


CELL_OPERATIONS = ("none", "skip", "conv1x1", "conv3x3", "avgpool")
_CELL_EDGES = ("e01", "e02", "e12", "e03", "e13", "e23")  # edge "eab" joins node a to b
_CELL_GAIN = {"none": 0.0, "skip": 0.35, "conv1x1": 0.6, "conv3x3": 1.0, "avgpool": 0.25}
_CELL_WEIGHT = {"e01": 1.0, "e02": 0.6, "e12": 0.9, "e03": 0.4, "e13": 0.7, "e23": 1.0}


def cell(params: Mapping[str, Any]) -> float:
    """A NAS-style cell (shaped like NAS-Bench-201's): one of 5 operations on each of the 6
    edges of a 4-node DAG, 5^6 = 15,625 configurations. The loss falls with each edge's
    operation (conv3x3 best), rises with more than 2 conv3x3 (a cost), by 0.3 without a
    skip into the output node and by 2 when no path reaches it; minimum 0 (by enumeration)
    at e01=conv3x3, e02=conv1x1, e12=conv3x3, e03=skip, e13=conv1x1, e23=conv3x3."""
    ops = [params[edge] for edge in _CELL_EDGES]
    reached = {0}
    for edge, op in zip(_CELL_EDGES, ops):
        if int(edge[1]) in reached and op != "none":
            reached.add(int(edge[2]))
    loss = 3.67 - sum(_CELL_WEIGHT[e] * _CELL_GAIN[op] for e, op in zip(_CELL_EDGES, ops))
    loss += 0.15 * max(0, ops.count("conv3x3") - 2) ** 2
    if "skip" not in (params["e03"], params["e13"], params["e23"]):
        loss += 0.3
    if 3 not in reached:
        loss += 2.0
    return loss


# centre and offset of the sphere in each region; "r5" is best, its centre away from the others
_REGIONS = {
    "r0": ((1.0, 3.2, 2.2, -2.2), 1.0),
    "r1": ((-1.6, 3.0, -4.0, 2.6), 0.8),
    "r2": ((2.4, -0.3, -1.6, -1.8), 0.6),
    "r3": ((-2.0, -0.4, 0.0, 0.4), 0.4),
    "r4": ((4.0, 2.3, 1.0, 3.9), 0.2),
    "r5": ((-2.3, -2.7, 0.9, -3.6), 0.0),
}


def regions(params: Mapping[str, Any]) -> float:
    """A shifted sphere whose centre and offset a categorical chooses: 2 |x - c_r|^2 + b_r
    over x in [-5, 5]^4 and 6 regions r with offsets b_r from 1.0 down to 0 (region "r5");
    minimum 0 at x = c_r5 = (-2.3, -2.7, 0.9, -3.6), region="r5". A sampler that settles in
    a region keeps a regret of at least 0.2."""
    centre, offset = _REGIONS[params["region"]]
    return 2.0 * sum((params[f"x{i}"] - c) ** 2 for i, c in enumerate(centre)) + offset


def _box(d: int, low: float, high: float) -> Space:
    return Space({f"x{i}": Float(low, high) for i in range(d)})


PROBLEMS: dict[str, Problem] = {
    "branin": Problem(
        "branin", Space(x0=Float(-5.0, 10.0), x1=Float(0.0, 15.0)), branin, 0.397887357729738
    ),
    "hartmann3": Problem("hartmann3", _box(3, 0.0, 1.0), hartmann3, -3.86278214782076),
    "hartmann6": Problem("hartmann6", _box(6, 0.0, 1.0), hartmann6, -3.32236801141551),
    "levy10": Problem("levy10", _box(10, -10.0, 10.0), levy, 0.0),
    "rosenbrock5": Problem("rosenbrock5", _box(5, -5.0, 10.0), rosenbrock, 0.0),
    "ackley10": Problem("ackley10", _box(10, -32.768, 32.768), ackley, 0.0),
    "mixed": Problem(
        "mixed",
        Space(
            lr=Float(1e-5, 1e-1, log=True),
            dropout=Float(0.0, 0.5),
            layers=Int(1, 8),
            units=Int(16, 1024, log=True),
            optimizer=Categorical(["adam", "sgd", "rmsprop"]),
            batch_norm=Categorical([True, False]),
        ),
        mixed,
        0.0,
    ),
    "regions": Problem(
        "regions",
        Space(
            {**{f"x{i}": Float(-5.0, 5.0) for i in range(4)}, "region": Categorical(list(_REGIONS))}
        ),
        regions,
        0.0,
    ),
    "cell": Problem(
        "cell",
        Space({edge: Categorical(list(CELL_OPERATIONS)) for edge in _CELL_EDGES}),
        cell,
        0.0,
    ),
}
"""The synthetic problems of the quality benchmark, by name."""
