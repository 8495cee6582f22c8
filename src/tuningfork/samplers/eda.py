"""An estimation-of-distribution algorithm: UMDA with Gaussian marginals (Mühlenbein &
Paaß, 1996, "From recombination of genes to the estimation of distributions"; Larrañaga &
Lozano, 2002), or one full-covariance Gaussian (EMNA_global), fitted to the best recent trials.
"""

from __future__ import annotations

import math

import numpy as np

from tuningfork import _check as check
from tuningfork.samplers._population import Population, PopulationSampler
from tuningfork.trial import FrozenTrial

__all__ = ["EDASampler"]

# A floor on each standard deviation (unit-cube lengths): an EDA's variance shrinks
# geometrically under truncation selection, and without a floor it can collapse before it
# reaches an optimum (premature convergence, Larrañaga & Lozano, 2002).
_MIN_STD = 0.005


class EDASampler(PopulationSampler):
    """Fit a distribution to the best recent trials and sample the next one from it.

    The population is the ``population_size`` complete trials with the highest numbers;
    truncation selection keeps its best ``ceil(selection_ratio * population_size)``. On the
    numeric parameters (in the unit cube) a Gaussian is fitted to the selected trials: one
    mean and standard deviation per parameter (UMDA, the default), or a mean and a full
    covariance matrix (``multivariate=True``, EMNA_global). Each standard deviation is at
    least 0.005; a sample is clipped into [0, 1]. Each categorical parameter is drawn from
    its choices' frequencies among the selected trials with Laplace smoothing:
    (count + 1) / (selected + number of choices), so no choice becomes impossible.

    Until ``population_size`` trials are complete, configurations are random; parameters
    outside the inferred space are random too (see `PopulationSampler`).

    Args:
        population_size: recent complete trials the model is fitted to (at least 2); None
            (the default) for 10 per parameter of the space, at least 20.
        selection_ratio: the fraction of the population selected, in (0, 1] (default 0.3).
        multivariate: fit a full covariance (True) or independent marginals (False, the
            default).
        seed: seeds every proposal: trial n's generator is seeded with
            ``derive_seed(seed, "EDASampler", n)``; None draws a seed at random.
    """

    def __init__(
        self,
        *,
        population_size: int | None = None,
        selection_ratio: float = 0.3,
        multivariate: bool = False,
        seed: int | None = None,
    ) -> None:
        owner = "EDASampler"
        self.population_size = (
            None
            if population_size is None
            else check.integer(population_size, "population_size", owner, minimum=2)
        )
        self.selection_ratio = check.number(
            selection_ratio, "selection_ratio", owner, low=0.0, high=1.0, low_open=True
        )
        self.multivariate = check.flag(multivariate, "multivariate", owner)
        super().__init__(seed=seed)

    def size(self, n_dims: int) -> int:
        """The population size for ``n_dims`` parameters."""
        if self.population_size is not None:
            return self.population_size
        return max(20, 10 * n_dims)

    def propose(
        self, population: Population, trial: FrozenTrial, rng: np.random.Generator
    ) -> np.ndarray:
        space = population.space
        recent = population.latest(self.size(len(space)))
        n_selected = max(1, math.ceil(self.selection_ratio * len(recent)))
        ranked = recent[np.lexsort((population.numbers[recent], population.losses[recent]))]
        selected = population.rows[ranked[:n_selected]]
        row = np.empty(len(space))
        numeric = ~space.categorical
        if numeric.any():
            row[numeric] = self._sample_numeric(selected[:, numeric], rng)
        for column in np.flatnonzero(space.categorical):
            row[column] = _sample_choice(selected[:, column], int(space.n_choices[column]), rng)
        return row

    def _sample_numeric(self, selected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mean = selected.mean(axis=0)
        if not self.multivariate or selected.shape[1] == 1:
            std = np.maximum(selected.std(axis=0), _MIN_STD)
            return np.clip(mean + std * rng.standard_normal(len(mean)), 0.0, 1.0)
        centred = selected - mean
        covariance = centred.T @ centred / len(selected) + _MIN_STD**2 * np.eye(len(mean))
        factor = np.linalg.cholesky(covariance)  # positive definite: the floor is added
        return np.clip(mean + factor @ rng.standard_normal(len(mean)), 0.0, 1.0)


def _sample_choice(indices: np.ndarray, n_choices: int, rng: np.random.Generator) -> float:
    """A choice index drawn from Laplace-smoothed frequencies of ``indices``."""
    counts = np.bincount(indices.astype(int), minlength=n_choices) + 1.0
    return float(rng.choice(n_choices, p=counts / counts.sum()))
