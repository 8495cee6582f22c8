"""PED-ANOVA: hyperparameter importance from Pearson divergences of 1-D densities.

Watanabe, Bansal & Hutter, "PED-ANOVA: Efficiently Quantifying Hyperparameter Importance
in Arbitrary Subspaces", IJCAI 2023 (arXiv:2304.10255).
"""

from __future__ import annotations

import math

import numpy as np

from tuningfork import _check as check
from tuningfork.exceptions import OptionError
from tuningfork.importance._base import (
    ImportanceEvaluator,
    Target,
    check_direction,
    prepare,
    unit_grid,
)
from tuningfork.space import Categorical, Distribution, Space
from tuningfork.trial import FrozenTrial

__all__ = ["PedAnovaEvaluator"]


class PedAnovaEvaluator(ImportanceEvaluator):
    r"""Importance of each parameter for landing in the best ``target_quantile`` of trials.

    PED-ANOVA (Watanabe, Bansal & Hutter, IJCAI 2023) rates parameters by how differently
    they are distributed among the top trials than in a region of the space. Let the
    region be the best ``region_quantile`` (gamma) of the trials, and the top set the best
    ``target_quantile`` (gamma', with gamma' < gamma) of the trials. The paper's Theorem 1
    shows that, for the indicator b(x) = 1[x is in the top set] restricted to the region,
    the variance of the first-order (marginal) term of parameter d is

        V_d = (gamma' / gamma)^2 * D_PE(p_d^top || p_d^region),
        D_PE(p || q) = integral of q(x) (p(x) / q(x) - 1)^2 dx,

    the Pearson divergence between the 1-D densities of d in the top set and in the region,
    while the indicator's total variance is V = r (1 - r) with r = gamma' / gamma. So a
    parameter matters in the region when the good trials concentrate on part of its range.
    No model is fitted: the densities are estimated from the trials, which makes it fast,
    usable with few trials and free of extra dependencies. With ``region_quantile=1.0``
    (the default) the region is the whole space ("global" importance); a smaller one asks
    which parameters still matter among already good configurations ("local" importance).

    This evaluator returns V_d / V, the share of the indicator's variance that d explains
    alone. Densities:

    * numerical parameters (Float, Int) on the unit-cube scale (log-scaled ones on the log
      scale): a Parzen estimate with Gaussian kernels and Scott's rule bandwidth
      (h = std * n^(-1/5), at least half a grid spacing), mixed with the parameter's own
      sampling distribution (uniform in the unit cube) as a prior of weight
      ``prior_weight`` (out of n + prior_weight), evaluated on a grid of
      ``n_grid`` cell centres in [0, 1] (or on the values themselves for an Int or stepped
      Float with at most ``n_grid`` values) and normalised on it, so the integral is a sum;
    * categoricals: the choices' frequencies plus ``prior_weight`` spread evenly over them.

    Conditional parameters are rated on the trials where they are active: with alpha the
    share of the top set and beta the share of the region in which d is active, V_d uses
    alpha^2 / beta * D_PE of the active trials' densities (the variance of the indicator's
    marginal on the active part; whether d is active at all is credited to its parent).
    A parameter with a single value in the region gets 0. ``direction`` says which end of
    the target is best; ties keep the trials' order.
    """

    def __init__(
        self,
        target_quantile: float = 0.1,
        region_quantile: float = 1.0,
        *,
        n_grid: int = 100,
        prior_weight: float = 1.0,
        min_n_top_trials: int = 2,
    ) -> None:
        owner = "PedAnovaEvaluator"
        check.number(target_quantile, "target_quantile", owner, low=0, high=1, low_open=True)
        check.number(region_quantile, "region_quantile", owner, low=0, high=1, low_open=True)
        if not target_quantile < region_quantile:
            raise OptionError(
                "need 0 < target_quantile < region_quantile <= 1, got "
                f"target_quantile={target_quantile!r}, region_quantile={region_quantile!r}",
                option="target_quantile",
                owner=owner,
            )
        n_grid = check.integer(n_grid, "n_grid", owner, minimum=2)
        check.number(prior_weight, "prior_weight", owner, low=0, high_open=True, hint=" and finite")
        min_n_top_trials = check.integer(min_n_top_trials, "min_n_top_trials", owner)
        self.target_quantile = target_quantile
        self.region_quantile = region_quantile
        self.n_grid = n_grid
        self.prior_weight = prior_weight
        self.min_n_top_trials = min_n_top_trials

    def evaluate(
        self,
        trials: list[FrozenTrial],
        space: Space,
        *,
        target: Target | None = None,
        direction: str = "minimize",
    ) -> dict[str, float]:
        """V_d / V for every parameter d of `space` (see the class docstring)."""
        check_direction(direction)
        x, y = prepare(trials, space, target)
        n = len(y)
        if float(np.ptp(y)) == 0.0:  # no trial is better than another
            return dict.fromkeys(space.names, 0.0)
        order = np.argsort(y if direction == "minimize" else -y, kind="stable")
        n_region = max(2, min(n, math.ceil(self.region_quantile * n - 1e-9)))
        n_top = math.ceil(self.target_quantile * n - 1e-9)
        n_top = max(1, min(max(n_top, self.min_n_top_trials), n_region - 1))
        region = x[order[:n_region]]
        is_top = np.zeros(n_region, dtype=bool)
        is_top[:n_top] = True
        ratio = n_top / n_region
        result: dict[str, float] = {}
        for j, (name, dist) in enumerate(space.items()):
            column = region[:, j]
            active = ~np.isnan(column)
            top = column[active & is_top]
            everywhere = column[active]
            if len(top) == 0 or np.ptp(everywhere) == 0.0:
                result[name] = 0.0
                continue
            alpha = len(top) / n_top
            beta = len(everywhere) / n_region
            divergence = _pearson(self._density(dist, top), self._density(dist, everywhere))
            result[name] = ratio * alpha**2 * divergence / (beta * (1.0 - ratio))
        return result

    def _density(self, dist: Distribution, sample: np.ndarray) -> np.ndarray:
        """Probabilities of the grid points (or choices) estimated from the encoded sample."""
        n = len(sample)
        if isinstance(dist, Categorical):
            count = len(dist.choices)
            index = np.minimum((sample * count).astype(np.int64), count - 1)
            frequency = np.bincount(index, minlength=count).astype(np.float64)
            return (frequency + self.prior_weight / count) / (n + self.prior_weight)
        discrete = unit_grid(dist, self.n_grid)
        grid = discrete[0] if discrete is not None else (np.arange(self.n_grid) + 0.5) / self.n_grid
        spacing = 1.0 / len(grid)
        std = float(np.std(sample, ddof=1)) if n > 1 else 0.0
        bandwidth = max(std * n ** (-0.2), 0.5 * spacing)
        kernel = np.exp(-0.5 * ((grid[:, None] - sample[None, :]) / bandwidth) ** 2)
        kernel /= kernel.sum(axis=0, keepdims=True)  # each sample's kernel, truncated to [0, 1]
        parzen = kernel.mean(axis=1)
        prior = discrete[1] if discrete is not None else np.full(len(grid), 1.0 / len(grid))
        return (n * parzen + self.prior_weight * prior) / (n + self.prior_weight)


def _pearson(p: np.ndarray, q: np.ndarray) -> float:
    """D_PE(p || q) = sum_g q_g (p_g / q_g - 1)^2 for probability vectors on one grid."""
    q = np.maximum(q, 1e-300)
    return float(np.sum(q * (p / q - 1.0) ** 2))
