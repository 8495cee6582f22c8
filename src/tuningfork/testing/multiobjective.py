"""Multi-objective test problems (ZDT, Zitzler, Deb & Thiele 2000; DTLZ, Deb, Thiele,
Laumanns & Zitzler 2002) with the hypervolume of their true Pareto fronts, and an exact
hypervolume (a sweep for 2 objectives, slicing along the last objective above that)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuningfork._pareto import dominated_volume, non_dominated
from tuningfork.exceptions import OptionError
from tuningfork.space import Float, Space

__all__ = [
    "PROBLEMS",
    "MultiObjectiveProblem",
    "dtlz1",
    "dtlz2",
    "hypervolume",
    "pareto_front",
    "zdt1",
    "zdt2",
    "zdt3",
]


@dataclass(frozen=True)
class MultiObjectiveProblem:
    """A problem whose objectives are all minimised, over ``space`` (Floats ``x0``..``x{n-1}``
    in [0, 1]). ``function`` maps the vector x to the objective values;
    ``front_hypervolume`` is the hypervolume of the true Pareto front against
    ``reference_point``, so that a set of points scores ``hypervolume / front_hypervolume``
    (1 = the whole front found)."""

    name: str
    space: Space
    function: Callable[[np.ndarray], tuple[float, ...]]
    reference_point: tuple[float, ...]
    front_hypervolume: float

    @property
    def directions(self) -> tuple[str, ...]:
        """ "minimize" for every objective."""
        return ("minimize",) * len(self.reference_point)

    def evaluate(self, params: Mapping[str, Any]) -> tuple[float, ...]:
        """The objective values of a parameter dict (``x0``, ``x1``, ...)."""
        return self.function(np.array([params[name] for name in self.space.names], dtype=float))

    def objective(self, trial: Any) -> tuple[float, ...]:
        """A define-by-run objective: suggests every parameter of the space, in order."""
        params = {name: trial.suggest(name, self.space[name]) for name in self.space.names}
        return self.evaluate(params)

    def hypervolume_ratio(self, points: Sequence[Sequence[float]] | np.ndarray) -> float:
        """The hypervolume of ``points`` (objective vectors) as a fraction of the true front's."""
        return hypervolume(points, self.reference_point) / self.front_hypervolume


# -- hypervolume and Pareto front -------------------------------------------------------------


def pareto_front(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """The rows of ``points`` (lower is better in every column) that no other row dominates,
    in their order; duplicates of a non-dominated row are all kept. Compares every pair of
    rows at once: n^2 x objectives booleans of memory (30 MB for 2,000 rows of 3)."""
    array = np.asarray(points, dtype=float)
    if array.size == 0:
        return array.reshape(0, array.shape[-1] if array.ndim == 2 else 0)
    return array[non_dominated(array)]


def hypervolume(
    points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float] | np.ndarray
) -> float:
    """The volume dominated by ``points`` (rows; every objective minimised) and bounded by
    ``reference``, exactly. Dominated and duplicate rows add nothing, and a row that is not
    better than the reference in every objective adds nothing either. Cost: O(n log n) for
    2 objectives (a sweep), O(n^2 log n) for 3 (a 2-objective sweep per slice along the
    third), a further factor n per objective above that."""
    ref = np.asarray(reference, dtype=float).ravel()
    array = np.asarray(points, dtype=float)
    if array.size == 0:
        return 0.0
    if array.ndim != 2 or array.shape[1] != ref.size:
        raise OptionError(
            f"points must be rows of {ref.size} objective values (one per reference "
            f"coordinate), got shape {array.shape}",
            option="points",
            owner="hypervolume",
        )
    if not np.all(np.isfinite(ref)):
        raise OptionError(
            f"the reference point must be finite, got {ref.tolist()}",
            option="reference",
            owner="hypervolume",
        )
    inside = array[np.all(array < ref, axis=1)]  # NaN rows drop out too
    return dominated_volume(inside, ref) if len(inside) else 0.0


# -- the problems -----------------------------------------------------------------------------


def _unit_space(n: int) -> Space:
    return Space({f"x{i}": Float(0.0, 1.0) for i in range(n)})


def _zdt_g(x: np.ndarray) -> float:
    return 1.0 + 9.0 * float(np.mean(x[1:]))


def _zdt1(x: np.ndarray) -> tuple[float, ...]:
    g = _zdt_g(x)
    return float(x[0]), g * (1.0 - math.sqrt(x[0] / g))


def _zdt2(x: np.ndarray) -> tuple[float, ...]:
    g = _zdt_g(x)
    return float(x[0]), g * (1.0 - (x[0] / g) ** 2)


def _zdt3(x: np.ndarray) -> tuple[float, ...]:
    g, f1 = _zdt_g(x), float(x[0])
    return f1, g * (1.0 - math.sqrt(f1 / g) - f1 / g * math.sin(10.0 * math.pi * f1))


# (11, 11), the common choice for ZDT: with 30 variables a run of 1,000 trials rarely gets a
# point below (1.1, 1.1) (g near 1 needs all 29 other variables near 0), so the front's
# nadir (1, 1) plus 10% would score most runs 0. Hypervolumes of the true fronts (g = 1):
# ZDT1 121 - (integral of 1 - sqrt(f1) over [0, 1] = 1/3); ZDT2 121 - 2/3; ZDT3 has no
# closed form: 121 minus the integral over f1 in [0, 11] of the running minimum of
# 1 - sqrt(f1) - f1 sin(10 pi f1) for f1 <= 1 (the front's lower envelope; its last value,
# -0.7734, beyond 1), by the trapezoid rule on 10^7 points.
ZDT_REFERENCE = (11.0, 11.0)
ZDT3_FRONT_HYPERVOLUME = 128.7781161307


def zdt1(n_variables: int = 30) -> MultiObjectiveProblem:
    """ZDT1 (convex front f2 = 1 - sqrt(f1)); 30 variables in Zitzler et al. (2000).
    Reference point (11, 11) for ZDT1-3."""
    return _zdt("zdt1", n_variables, _zdt1, 121.0 - 1.0 / 3.0)


def zdt2(n_variables: int = 30) -> MultiObjectiveProblem:
    """ZDT2 (concave front f2 = 1 - f1^2); 30 variables in Zitzler et al. (2000)."""
    return _zdt("zdt2", n_variables, _zdt2, 121.0 - 2.0 / 3.0)


def zdt3(n_variables: int = 30) -> MultiObjectiveProblem:
    """ZDT3 (a front in five disconnected pieces); 30 variables in Zitzler et al. (2000)."""
    return _zdt("zdt3", n_variables, _zdt3, ZDT3_FRONT_HYPERVOLUME)


def _zdt(
    name: str,
    n_variables: int,
    function: Callable[[np.ndarray], tuple[float, ...]],
    front: float,
) -> MultiObjectiveProblem:
    if n_variables < 2:
        raise OptionError(
            f"{name} needs at least 2 variables, got {n_variables}",
            option="n_variables",
            owner=name,
        )
    label = name if n_variables == 30 else f"{name}_n{n_variables}"
    return MultiObjectiveProblem(label, _unit_space(n_variables), function, ZDT_REFERENCE, front)


def _dtlz1(x: np.ndarray, objectives: int) -> tuple[float, ...]:
    rest = x[objectives - 1 :] - 0.5
    g = 100.0 * (rest.size + float(np.sum(rest**2 - np.cos(20.0 * math.pi * rest))))
    return _dtlz_shape(0.5 * (1.0 + g), x[: objectives - 1], lambda v: v, lambda v: 1.0 - v)


def _dtlz2(x: np.ndarray, objectives: int) -> tuple[float, ...]:
    g = float(np.sum((x[objectives - 1 :] - 0.5) ** 2))
    angle = 0.5 * math.pi
    return _dtlz_shape(
        1.0 + g, x[: objectives - 1], lambda v: math.cos(angle * v), lambda v: math.sin(angle * v)
    )


def _dtlz_shape(
    scale: float,
    position: np.ndarray,
    kept: Callable[[float], float],
    cut: Callable[[float], float],
) -> tuple[float, ...]:
    """f_i = scale * kept(x_0) ... kept(x_{M-i-2}) * cut(x_{M-i-1}) (no cut for f_0): the
    common product form of DTLZ1 (kept = x, cut = 1 - x) and DTLZ2 (cos, sin)."""
    count = position.size + 1
    values = []
    for i in range(count):
        value = scale
        for v in position[: count - 1 - i]:
            value *= kept(float(v))
        if i > 0:
            value *= cut(float(position[count - 1 - i]))
        values.append(float(value))
    return tuple(values)


# DTLZ1's 11^k - 1 local fronts hold short runs far from the true one: 1,000 trials of
# NSGA-II end with every point above 5 in some objective (g of tens), so a reference near
# the front's nadir (0.5) leaves every run of this benchmark at hypervolume 0; at 100 the
# hypervolume measures how far each run got towards the front.
DTLZ1_REFERENCE_COORDINATE = 100.0
DTLZ2_REFERENCE_COORDINATE = 1.1


def dtlz1(n_objectives: int = 3, k: int = 5) -> MultiObjectiveProblem:
    """DTLZ1 (linear front sum f = 0.5, 11^k - 1 local fronts), n = M + k - 1 variables
    (k = 5 in Deb et al. 2002). Reference point 100 in every objective, far beyond the
    front's nadir (0.5): the runs of a few thousand trials stay on local fronts tens of
    units away, where a reference at the nadir would score them all 0. The front's
    hypervolume is 100^M - 0.5^M / M! (the box less the simplex under the front), so a
    fraction near 1 here means "close to the front", not "covers it"."""
    front = DTLZ1_REFERENCE_COORDINATE**n_objectives - 0.5**n_objectives / math.factorial(
        n_objectives
    )
    return _dtlz("dtlz1", n_objectives, k, _dtlz1, DTLZ1_REFERENCE_COORDINATE, front)


def dtlz2(n_objectives: int = 3, k: int = 10) -> MultiObjectiveProblem:
    """DTLZ2 (the front is the unit sphere's positive orthant), n = M + k - 1 variables
    (k = 10 in Deb et al. 2002). Reference point 1.1 in every objective (the nadir, 1, plus
    10%); the front's hypervolume is 1.1^M less the orthant of the unit ball,
    pi^(M/2) / Gamma(M/2 + 1) / 2^M."""
    ball = math.pi ** (n_objectives / 2) / math.gamma(n_objectives / 2 + 1) / 2**n_objectives
    front = DTLZ2_REFERENCE_COORDINATE**n_objectives - ball
    return _dtlz("dtlz2", n_objectives, k, _dtlz2, DTLZ2_REFERENCE_COORDINATE, front)


def _dtlz(
    name: str,
    objectives: int,
    k: int,
    function: Callable[[np.ndarray, int], tuple[float, ...]],
    coordinate: float,
    front: float,
) -> MultiObjectiveProblem:
    if objectives < 2 or k < 1:
        raise OptionError(
            f"{name} needs at least 2 objectives and k >= 1, got {objectives} and {k}",
            option="n_objectives" if objectives < 2 else "k",
            owner=name,
        )
    label = name if objectives == 3 else f"{name}_m{objectives}"
    return MultiObjectiveProblem(
        label,
        _unit_space(objectives + k - 1),
        lambda x: function(x, objectives),
        (coordinate,) * objectives,
        front,
    )


PROBLEMS: dict[str, MultiObjectiveProblem] = {
    p.name: p for p in (zdt1(), zdt2(), zdt3(), zdt1(5), zdt2(5), zdt3(5), dtlz1(), dtlz2())
}
"""The problems by name: ``zdt1``, ``zdt2``, ``zdt3`` with 30 variables as in the paper,
``zdt1_n5``, ``zdt2_n5``, ``zdt3_n5`` with 5 (a smaller, easier variant: same fronts),
``dtlz1`` (7 variables) and ``dtlz2`` (12 variables) with 3 objectives."""
