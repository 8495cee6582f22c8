"""fANOVA: hyperparameter importance from a random forest's functional ANOVA decomposition.

Hutter, Hoos & Leyton-Brown, "An Efficient Approach for Assessing Hyperparameter
Importance", ICML 2014.
"""

from __future__ import annotations

import math

import numpy as np

from tuningfork import _check as check
from tuningfork.exceptions import MissingExtra
from tuningfork.importance._base import (
    ImportanceEvaluator,
    Target,
    check_direction,
    prepare,
    unit_grid,
)
from tuningfork.space import Space
from tuningfork.trial import FrozenTrial

__all__ = ["FanovaEvaluator"]

# Encoded value of an inactive (conditional) parameter: a point outside the unit interval.
_INACTIVE = -1.0
# A discrete parameter with more values than this is measured as uniform on [0, 1].
_MAX_DISCRETE = 4096


def _require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError as error:
        raise MissingExtra(
            "FanovaEvaluator needs scikit-learn; install it with: "
            "pip install 'tuningfork[sklearn]' (or use PedAnovaEvaluator, which needs no extra)"
        ) from error


class _Measure:
    """The probability measure of one input dimension of the forest.

    A mixture of the point mass `inactive` at ``_INACTIVE`` (the share of trials in which
    the parameter is inactive) and, with weight ``1 - inactive``, the distribution's own
    sampling measure in the unit cube: uniform on [0, 1] for a continuous parameter, or
    point masses at the centres of a discrete parameter's values.
    """

    def __init__(self, grid: tuple[np.ndarray, np.ndarray] | None, inactive: float) -> None:
        self.inactive = inactive
        self.points: np.ndarray | None = None
        self.cumulative: np.ndarray | None = None
        if grid is not None:
            self.points = grid[0]
            self.cumulative = np.concatenate([[0.0], np.cumsum(grid[1])])

    def mass(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Measure of the half-open intervals (lo, hi] (tree splits send x <= t left)."""
        if self.points is None:
            active = np.clip(np.minimum(hi, 1.0) - np.maximum(lo, 0.0), 0.0, None)
        else:
            assert self.cumulative is not None
            upper = np.searchsorted(self.points, hi, side="right")
            lower = np.searchsorted(self.points, lo, side="right")
            active = self.cumulative[upper] - self.cumulative[lower]
        total = (1.0 - self.inactive) * active
        if self.inactive > 0.0:
            total = total + self.inactive * ((lo < _INACTIVE) & (hi >= _INACTIVE))
        return total


class FanovaEvaluator(ImportanceEvaluator):
    """Importance as the share of a random forest's variance that each parameter explains.

    A random forest (scikit-learn's ``RandomForestRegressor``: bootstrap samples, every
    feature considered at each split, ``max_features=1.0``) is fitted to the target on the
    unit-cube encoded parameters (`Distribution.to_unit`: log-scaled parameters on the log
    scale). Each tree is a piecewise-constant function over a partition of the input domain
    into boxes, so its functional ANOVA decomposition (Hutter, Hoos & Leyton-Brown, ICML
    2014) is computed exactly: with the product measure mu of the parameters' own sampling
    distributions, the tree's mean m and total variance V = sum_leaf mu(leaf) (y_leaf - m)^2,
    and for parameter d the marginal f_d(x_d) = integral of f over every other parameter,
    constant between consecutive split thresholds on d; its variance V_d over mu_d, divided
    by V, is the tree's first-order importance of d. The result averages V_d / V over the
    trees (trees that are constant are skipped). Only first-order (single-parameter) terms
    are computed, so the values sum to at most 1; the rest is interaction.

    Encoding choices:

    * A categorical is its choice index (the cell centre ``(i + 0.5) / n``) with ordinal
      splits: scikit-learn's trees have no categorical splits, but a tree may split the
      index axis several times, so any function of the choices can be represented, and the
      marginal stays a function of one input (one-hot columns would make the product measure
      visit impossible "no choice" or "two choices" points). Its measure gives each choice
      probability 1/n, as sampling does.
    * Int and stepped Float parameters are measured as point masses at their values' cell
      centres (log-Int cells have their log widths); above 4096 values, as uniform on [0, 1].
    * A conditional parameter that is inactive in a trial is encoded as the separate value
      -1, outside the unit interval, and its measure gives that value the share of trials in
      which it is inactive (the active part keeps the rest). Because the measure is a
      product, the forest is also integrated over combinations that cannot occur (a child
      "active" while its parent says otherwise); the forest's prediction there comes from
      its nearest split cells.

    A parameter that takes a single value in every trial is never split on: importance 0.
    Needs scikit-learn (``pip install 'tuningfork[sklearn]'``). ``seed`` fixes the forest's
    bootstrap, so equal trials and seed give equal importances.
    """

    def __init__(
        self,
        n_trees: int = 64,
        max_depth: int = 64,
        min_samples_leaf: int = 1,
        seed: int | None = None,
    ) -> None:
        _require_sklearn()
        owner = "FanovaEvaluator"
        n_trees = check.integer(n_trees, "n_trees", owner)
        max_depth = check.integer(max_depth, "max_depth", owner)
        min_samples_leaf = check.integer(min_samples_leaf, "min_samples_leaf", owner)
        seed = check.seed(seed, owner)
        self.n_trees = n_trees
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.seed = seed

    def evaluate(
        self,
        trials: list[FrozenTrial],
        space: Space,
        *,
        target: Target | None = None,
        direction: str = "minimize",
    ) -> dict[str, float]:
        """First-order variance fractions V_d / V averaged over the trees (see the class)."""
        _require_sklearn()
        from sklearn.ensemble import RandomForestRegressor

        check_direction(direction)  # the variance decomposition does not depend on it
        x, y = prepare(trials, space, target)
        names = list(space.names)
        result = dict.fromkeys(names, 0.0)
        if float(np.ptp(y)) == 0.0:
            return result
        inactive = np.isnan(x)
        measures = [
            _Measure(unit_grid(space[name], _MAX_DISCRETE), float(inactive[:, j].mean()))
            for j, name in enumerate(names)
        ]
        features = np.where(inactive, _INACTIVE, x)
        forest = RandomForestRegressor(
            n_estimators=self.n_trees,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            max_features=1.0,
            bootstrap=True,
            random_state=self.seed,
            n_jobs=1,
        )
        forest.fit(features, y)
        totals = np.zeros(len(names))
        used = 0
        for estimator in forest.estimators_:
            fractions = _tree_fractions(estimator.tree_, measures)
            if fractions is not None:
                totals += fractions
                used += 1
        if used:
            for j, name in enumerate(names):
                result[name] = float(totals[j] / used)
        return result


def _leaf_boxes(tree: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """Lower and upper bounds (lo, hi] of every leaf's box, the leaf values, and the sorted
    split thresholds used on each feature."""
    left = tree.children_left  # type: ignore[attr-defined]
    right = tree.children_right  # type: ignore[attr-defined]
    feature = tree.feature  # type: ignore[attr-defined]
    threshold = tree.threshold  # type: ignore[attr-defined]
    n_nodes = len(left)
    n_features = int(tree.n_features)  # type: ignore[attr-defined]
    lo = np.full((n_nodes, n_features), -math.inf)
    hi = np.full((n_nodes, n_features), math.inf)
    # scikit-learn numbers a node after its parent, so one forward pass fills every box
    for node in range(n_nodes):
        child = left[node]
        if child < 0:
            continue
        f, t = feature[node], threshold[node]
        lo[child] = lo[node]
        hi[child] = hi[node]
        hi[child, f] = t
        other = right[node]
        lo[other] = lo[node]
        hi[other] = hi[node]
        lo[other, f] = t
    leaves = left < 0
    split = ~leaves
    splits = {
        int(f): np.unique(threshold[split][feature[split] == f]) for f in np.unique(feature[split])
    }
    values = tree.value[leaves, 0, 0]  # type: ignore[attr-defined]
    return lo[leaves], hi[leaves], np.asarray(values, dtype=np.float64), splits


def _tree_fractions(tree: object, measures: list[_Measure]) -> np.ndarray | None:
    """V_d / V of one tree for every feature d, or None for a constant tree."""
    lo, hi, values, splits = _leaf_boxes(tree)
    n_leaves, n_features = lo.shape
    mass = np.empty((n_leaves, n_features))
    for j, measure in enumerate(measures):
        mass[:, j] = measure.mass(lo[:, j], hi[:, j])
    weight = mass.prod(axis=1)
    total = weight.sum()
    if total <= 0.0:
        return None
    weight /= total  # 1 up to rounding: the leaves partition the domain
    mean = float(weight @ values)
    variance = float(weight @ (values - mean) ** 2)
    if variance <= 1e-14 * max(1.0, mean * mean):
        return None
    # prefix[:, j] * suffix[:, j] = product of every mass column except j
    ones = np.ones((n_leaves, 1))
    prefix = np.cumprod(np.hstack([ones, mass[:, :-1]]), axis=1)
    suffix = np.cumprod(np.hstack([ones, mass[:, :0:-1]]), axis=1)[:, ::-1]
    fractions = np.zeros(n_features)
    for j, thresholds in splits.items():
        edges = np.concatenate([[-math.inf], thresholds, [math.inf]])
        start = np.searchsorted(edges, lo[:, j])
        stop = np.searchsorted(edges, hi[:, j])
        contribution = prefix[:, j] * suffix[:, j] * values / total
        step = np.zeros(len(edges))
        np.add.at(step, start, contribution)
        np.add.at(step, stop, -contribution)
        marginal = np.cumsum(step)[:-1]  # f_d on each segment (edges[k], edges[k + 1]]
        segment_mass = measures[j].mass(edges[:-1], edges[1:])
        fractions[j] = float(segment_mass @ (marginal - mean) ** 2) / variance
    return fractions
