"""Parzen estimators in the unit cube, the densities l(x) and g(x) of TPE.

Each parameter is a dimension of the unit cube (`Distribution.to_unit`). Numbers get
Gaussian kernels truncated to [0, 1]; on a grid (Int, stepped Float) the probability of a
value is the kernel's mass over the value's cell, so ints, steps and log scales are exact.
Categories get Aitchison-Aitken-style tables. The bandwidth is hyperopt's neighbour rule
with the "magic clip" (Bergstra et al., 2011; as in Optuna 5); a wide prior kernel keeps
every region reachable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tuningfork.space import Categorical, Distribution, Float, Int, Value

__all__ = ["Dimension", "ParzenEstimator", "CONTINUOUS", "GRID", "CATEGORICAL"]

CONTINUOUS, GRID, CATEGORICAL = 0, 1, 2

# Smallest kernel mass used in a logarithm: a cell many standard deviations from a kernel
# has mass 0 in floating point, and log(0) would turn a likelihood ratio into NaN.
_TINY = 1e-300
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
# Below this bandwidth the expanded quadratic form (x^2 a - 2 x mu a + mu^2 a) loses
# precision, so the kernels are evaluated directly.
_EXPANSION_MIN_SIGMA = 1e-6
# Weights of observations: the newest this many keep weight 1 (Bergstra et al., 2013).
_FLAT_WEIGHTS = 25


class Dimension:
    """One parameter as a dimension of the unit cube.

    ``kind`` is CONTINUOUS (a Float without step: coordinate in [0, 1]), GRID (an Int or a
    stepped Float: the coordinate of a candidate is its cell index) or CATEGORICAL (the
    coordinate is the choice index). ``size`` counts the cells or choices.
    """

    __slots__ = ("dist", "kind", "size", "_log_origin", "_log_width", "_low")

    def __init__(self, dist: Distribution) -> None:
        self.dist = dist
        self._log_origin = self._log_width = 0.0
        self._low = 0
        if isinstance(dist, Categorical):
            self.kind, self.size = CATEGORICAL, len(dist.choices)
        elif isinstance(dist, Int):
            self.kind, self.size = GRID, (dist.high - dist.low) // dist.step + 1
            if dist.log:  # cells of equal width in log space, as Int.from_unit maps them
                self._low = dist.low
                self._log_origin = math.log(dist.low - 0.5)
                self._log_width = math.log(dist.high + 0.5) - self._log_origin
        elif isinstance(dist, Float) and dist.step is not None:
            self.kind = GRID
            self.size = round((dist.high - dist.low) / dist.step) + 1
        elif isinstance(dist, Float):
            self.kind, self.size = CONTINUOUS, 0
        else:
            raise TypeError(f"unsupported distribution {dist!r}")

    @property
    def log_cells(self) -> bool:
        return self._log_width > 0.0

    def encode(self, value: Value) -> float:
        """An observed value as a kernel centre: its unit coordinate, or its choice index."""
        if self.kind == CATEGORICAL:
            return float(self.dist.index(value))  # type: ignore[attr-defined]
        return self.dist.to_unit(value)

    def cells(self, u: np.ndarray) -> np.ndarray:
        """The cell of each unit coordinate, as `from_unit` maps it."""
        if self.log_cells:
            values = np.floor(np.exp(self._log_origin + u * self._log_width) + 0.5)
            return np.clip(values - self._low, 0, self.size - 1)
        return np.minimum(np.floor(u * self.size), self.size - 1)

    def edges(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit coordinates of the left and right edges of the cells."""
        if self.log_cells:
            values = self._low + cells
            left = (np.log(values - 0.5) - self._log_origin) / self._log_width
            right = (np.log(values + 0.5) - self._log_origin) / self._log_width
            return left, right
        return cells / self.size, (cells + 1.0) / self.size

    def decode(self, coordinate: float) -> Value:
        """The parameter value of a candidate's coordinate."""
        if self.kind == CONTINUOUS:
            return self.dist.from_unit(float(coordinate))
        cell = int(coordinate)
        if self.kind == CATEGORICAL:
            return self.dist.choices[cell]  # type: ignore[attr-defined]
        if self.log_cells:
            return self._low + cell
        return self.dist.from_unit((cell + 0.5) / self.size)


def default_weights(count: int) -> np.ndarray:
    """Weights of ``count`` observations, oldest first: the newest 25 weigh 1 and older ones
    ramp down linearly towards 1/count (Bergstra et al., 2013; Optuna's default)."""
    if count <= _FLAT_WEIGHTS:
        return np.ones(count)
    ramp = np.linspace(1.0 / count, 1.0, num=count - _FLAT_WEIGHTS)
    return np.concatenate([ramp, np.ones(_FLAT_WEIGHTS)])


class ParzenEstimator:
    """A mixture of product kernels, one per observation, plus a prior kernel.

    ``observations`` is an (n, d) array of encoded values (`Dimension.encode`); a NaN
    entry (a running trial that has not suggested that parameter yet) takes the prior's
    kernel in that dimension. ``weights`` are the n observations' weights; the prior gets
    ``prior_weight`` and the whole is normalised.
    """

    def __init__(
        self,
        dims: Sequence[Dimension],
        observations: np.ndarray,
        weights: np.ndarray,
        *,
        prior_weight: float,
        magic_clip: bool,
    ) -> None:
        n = len(observations)
        self.dims = dims
        raw = np.append(weights, prior_weight) if n else np.ones(1)
        self.log_weights = np.log(raw / raw.sum())
        numeric = [i for i, dim in enumerate(dims) if dim.kind != CATEGORICAL]
        self._continuous = [j for j, i in enumerate(numeric) if dims[i].kind == CONTINUOUS]
        self._continuous_columns = [numeric[j] for j in self._continuous]
        self._grid = [(j, i) for j, i in enumerate(numeric) if dims[i].kind == GRID]
        self._numeric = numeric
        self.mu, self.sigma = _kernels(observations[:, numeric], magic_clip)
        # grid kernels repeat (few centres, few widths): masses are computed per distinct one
        self._grid_kernels = {j: _distinct(self.mu[:, j], self.sigma[:, j]) for j, _ in self._grid}
        self._tables = [
            (i, _category_table(observations[:, i], dims[i].size, prior_weight))
            for i, dim in enumerate(dims)
            if dim.kind == CATEGORICAL
        ]
        self._quadratic = self._expand() if self._continuous else None
        if self._continuous:
            mu, sigma = self.mu[:, self._continuous], self.sigma[:, self._continuous]
            offsets = np.log(sigma) + _log_truncation(mu, sigma) + _LOG_SQRT_2PI
            self._continuous_offset = offsets.sum(axis=1)

    # -- sampling -------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` candidates: unit coordinates, cell indices and choice indices."""
        chosen = rng.choice(len(self.log_weights), size=size, p=np.exp(self.log_weights))
        candidates = np.empty((size, len(self.dims)))
        if self._numeric:
            from scipy.special import ndtr, ndtri  # imported on first use: slow to load

            mu, sigma = self.mu[chosen], self.sigma[chosen]
            low, high = ndtr(-mu / sigma), ndtr((1.0 - mu) / sigma)
            z = ndtri(low + rng.random(mu.shape) * (high - low))
            coordinates = np.clip(mu + sigma * z, 0.0, 1.0)
            for j, i in enumerate(self._numeric):
                dim = self.dims[i]
                column = coordinates[:, j]
                candidates[:, i] = column if dim.kind == CONTINUOUS else dim.cells(column)
        for i, table in self._tables:
            cumulative = np.cumsum(np.exp(table[chosen]), axis=1)
            draws = rng.random(size)[:, None] * cumulative[:, -1:]
            index = (cumulative < draws).sum(axis=1)
            candidates[:, i] = np.minimum(index, self.dims[i].size - 1)
        return candidates

    # -- density --------------------------------------------------------------------------

    def log_pdf(self, candidates: np.ndarray) -> np.ndarray:
        """log density (mass, on grids) of each candidate under the mixture."""
        if len(self.dims) == 1 and self._tables:
            # one categorical parameter: the mixture's log probability of each choice, once
            _, table = self._tables[0]
            terms = self.log_weights[:, None] + table
            top = terms.max(axis=0)
            per_choice = top + np.log(np.exp(terms - top).sum(axis=0))
            return per_choice[candidates[:, 0].astype(np.intp)]
        terms = np.broadcast_to(self.log_weights, (len(candidates), len(self.log_weights)))
        terms = terms + self._continuous_terms(candidates)
        for j, i in self._grid:
            terms += self._grid_terms(candidates[:, i], j, self.dims[i])
        for i, table in self._tables:
            terms += table[:, candidates[:, i].astype(np.intp)].T
        top = terms.max(axis=1)
        return top + np.log(np.exp(terms - top[:, None]).sum(axis=1))

    def _expand(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Coefficients of sum_d (x_d - mu_d)^2 / sigma_d^2 as a quadratic form in x, so the
        kernels of all candidates come from two matrix products."""
        mu = self.mu[:, self._continuous]
        sigma = self.sigma[:, self._continuous]
        if sigma.min() < _EXPANSION_MIN_SIGMA:
            return None
        precision = 1.0 / sigma**2
        constant = (mu**2 * precision).sum(axis=1)
        return precision.T.copy(), (-2.0 * mu * precision).T.copy(), constant

    def _continuous_terms(self, candidates: np.ndarray) -> np.ndarray | float:
        if not self._continuous:
            return 0.0
        x = candidates[:, self._continuous_columns]
        if self._quadratic is not None:
            precision, linear, constant = self._quadratic
            squares = (x**2) @ precision + x @ linear + constant
        else:
            mu, sigma = self.mu[:, self._continuous], self.sigma[:, self._continuous]
            squares = (((x[:, None, :] - mu[None]) / sigma[None]) ** 2).sum(axis=2)
        return -0.5 * squares - self._continuous_offset

    def _grid_terms(self, cells: np.ndarray, j: int, dim: Dimension) -> np.ndarray:
        from scipy.special import ndtr

        mu, sigma, log_truncation, kernel_of = self._grid_kernels[j]
        distinct_cells, cell_of = np.unique(cells, return_inverse=True)
        left, right = dim.edges(distinct_cells)
        low = (left[:, None] - mu) / sigma
        high = (right[:, None] - mu) / sigma
        # a cell right of the kernel's centre is measured in the mirrored lower tail, where
        # ndtr keeps its relative precision
        upper = low > 0.0
        low, high = np.where(upper, -high, low), np.where(upper, -low, high)
        mass = ndtr(high) - ndtr(low)
        log_mass = np.log(np.maximum(mass, _TINY)) - log_truncation
        # two np.take calls: about 20 times faster than log_mass[np.ix_(cells, kernels)]
        return np.take(np.take(log_mass, kernel_of, axis=1), cell_of.ravel(), axis=0)


def _log_truncation(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """log of each kernel's mass inside [0, 1] (at least Phi(1) - Phi(0): mu is in [0, 1])."""
    from scipy.special import ndtr

    return np.log(ndtr((1.0 - mu) / sigma) - ndtr(-mu / sigma))


def _distinct(
    mu: np.ndarray, sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (mu, sigma) pairs, their `_log_truncation`, and the index of each
    kernel's pair among them."""
    order = np.lexsort((sigma, mu))
    mu, sigma = mu[order], sigma[order]
    first = np.empty(len(mu), dtype=bool)
    first[0] = True
    first[1:] = (mu[1:] != mu[:-1]) | (sigma[1:] != sigma[:-1])
    index = np.empty(len(mu), dtype=np.intp)
    index[order] = np.cumsum(first) - 1
    mu, sigma = mu[first], sigma[first]
    return mu, sigma, _log_truncation(mu, sigma), index


def _kernels(observations: np.ndarray, magic_clip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Centres and bandwidths of the numeric kernels, the prior's last (centre 0.5, width 1).

    The bandwidth of an observation is the larger distance to its neighbours among the
    sorted observations, the domain's ends counting as neighbours except for the first and
    last observation (hyperopt's rule, Optuna's ``consider_endpoints=False``), clipped to
    [1 / min(100, n + 2), 1] (the "magic clip"; with it off, to [1e-12, 1]).
    """
    n, width = observations.shape
    mu = np.full((n + 1, width), 0.5)
    sigma = np.ones((n + 1, width))
    if n == 0 or width == 0:
        return mu, sigma
    low = 1.0 / min(100.0, n + 2.0) if magic_clip else 1e-12
    missing = np.isnan(observations)
    if not missing.any():
        mu[:n] = observations
        sigma[:n] = _neighbour_widths(observations)
    else:
        for column in range(width):
            present = ~missing[:, column]
            values = observations[present, column]
            mu[:n][present, column] = values
            sigma[:n][present, column] = _neighbour_widths(values[:, None])[:, 0]
    np.clip(sigma[:n], low, 1.0, out=sigma[:n])
    return mu, sigma


def _neighbour_widths(values: np.ndarray) -> np.ndarray:
    """Column by column: the larger gap to a sorted neighbour (see `_kernels`)."""
    n, width = values.shape
    if n == 0:
        return np.ones((0, width))
    columns = np.ascontiguousarray(values.T)  # sorting along contiguous rows is faster
    order = np.argsort(columns, axis=1)
    padded = np.empty((width, n + 2))
    padded[:, 0], padded[:, -1] = 0.0, 1.0
    padded[:, 1:-1] = np.take_along_axis(columns, order, axis=1)
    gaps = np.diff(padded, axis=1)
    widths = np.maximum(gaps[:, :-1], gaps[:, 1:])
    if n >= 2:
        widths[:, 0], widths[:, -1] = gaps[:, 1], gaps[:, -2]
    result = np.empty_like(widths)
    np.put_along_axis(result, order, widths, axis=1)
    return result.T


def _category_table(observed: np.ndarray, size: int, prior_weight: float) -> np.ndarray:
    """log probabilities (n + 1, size): each observed choice keeps weight 1 and every choice
    gets prior_weight / (n + 1), then rows are normalised (Optuna's Aitchison-Aitken-style
    kernel); the prior's row and those of missing entries are uniform."""
    n = len(observed)
    table = np.full((n + 1, size), prior_weight / (n + 1))
    present = ~np.isnan(observed)
    rows = np.flatnonzero(present)
    table[rows, observed[present].astype(np.intp)] += 1.0
    table[n] = 1.0
    table[~np.append(present, True)] = 1.0
    return np.log(table / table.sum(axis=1, keepdims=True))
