"""Maximising log expected improvement over legal vectors for `GPSampler`: scrambled Sobol'
candidates and candidates around the incumbents, refined by L-BFGS-B and a search over
the discrete values."""

from __future__ import annotations

import inspect
import math

import numpy as np

from tuningfork.samplers._acquisition import log_ei
from tuningfork.samplers._gp_encoding import (
    _CATEGORICAL,
    _CONTINUOUS,
    _EXHAUSTIVE_GRID,
    _GRID,
    _Encoding,
)
from tuningfork.samplers._gp_model import (
    GaussianProcess,
)

_ACQUISITION_ITERATIONS = 100


class _AcquisitionOptimiser:
    """Maximise log EI over legal vectors: score candidates, refine the best ones."""

    def __init__(
        self,
        gp: GaussianProcess,
        encoding: _Encoding,
        best: float,
        fixed_row: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        self.gp = gp
        self.encoding = encoding
        self.best = best
        self.fixed = ~np.isnan(fixed_row)
        self.fixed_row = fixed_row
        self.rng = rng

    def score(self, x: np.ndarray) -> np.ndarray:
        mean, var = self.gp.predict(x)
        return log_ei(mean, var, self.best)[0]

    def _legal(self, x: np.ndarray) -> np.ndarray:
        x[:, self.fixed] = self.fixed_row[self.fixed]
        x = self.encoding.round(x)
        self.encoding.canonical(x)
        return x

    def run(self, incumbents: np.ndarray, n_candidates: int, n_starts: int) -> np.ndarray:
        candidates = np.vstack(
            [self._global(n_candidates), self._local(incumbents, n_candidates // 2)]
        )
        candidates = self._legal(candidates)
        values = self.score(candidates)
        order = np.argsort(-values, kind="stable")
        starts = _distinct(candidates[order], max(n_starts, 1))
        if n_starts == 0:
            return starts[0]
        start_values = self.score(starts)
        x, values = self._refine(starts, start_values)
        # the joint L-BFGS-B above stops before every start has converged: polish the best
        best = int(np.argmax(values))
        x, _ = self._refine(x[best : best + 1], values[best : best + 1])
        return x[0]

    def _global(self, n: int) -> np.ndarray:
        from scipy.stats import qmc

        keyword = "rng" if "rng" in inspect.signature(qmc.Sobol).parameters else "seed"
        sobol = qmc.Sobol(self.encoding.dims, scramble=True, **{keyword: self.rng})
        # a power of two keeps Sobol's balance (and scipy quiet); the first n are used
        points = sobol.random_base2(max(0, math.ceil(math.log2(n))))[:n]
        return self.encoding.from_cube(points)

    def _local(self, incumbents: np.ndarray, n: int) -> np.ndarray:
        """Points around the best trials: Gaussian steps scaled by the length scales (a
        TuRBO-like box) at radii log-uniform in [1e-3, 0.5], on a random subset of inputs
        (each with probability min(1, 20 / d)); categorical inputs switch at random."""
        enc, rng = self.encoding, self.rng
        if n == 0 or not len(incumbents):
            return np.empty((0, enc.dims))
        # half the points around the best trial, the rest shared by the next ones
        share = np.full(len(incumbents), (n // 2) // max(len(incumbents) - 1, 1))
        share[0] = n - share[1:].sum()
        centres = np.repeat(incumbents, share, axis=0)
        m = len(centres)
        scales = self.gp.length_scales.copy()
        numeric = ~enc.categorical
        if numeric.any():
            scales[numeric] /= math.exp(float(np.mean(np.log(scales[numeric]))))
        radius = np.exp(rng.uniform(math.log(1e-3), math.log(0.5), size=(m, 1)))
        perturb = rng.random((m, enc.dims)) < min(1.0, 20.0 / enc.dims)
        none = ~perturb.any(axis=1)
        perturb[none, rng.integers(0, enc.dims, size=int(none.sum()))] = True
        steps = rng.standard_normal((m, enc.dims)) * radius * np.minimum(scales, 10.0)
        x = centres + np.where(perturb & numeric, steps, 0.0)
        for i in np.flatnonzero(enc.categorical):
            switch = perturb[:, i] & (rng.random(m) < 0.5)
            x[switch, i] = rng.integers(0, enc.count[i], size=int(switch.sum()))
        return x

    # -- refinement ---------------------------------------------------------------------

    def _refine(self, x: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        enc = self.encoding
        relaxed = (enc.kind == _CONTINUOUS) | ((enc.kind == _GRID) & (enc.count > _EXHAUSTIVE_GRID))
        movable = relaxed & ~self.fixed & ~enc.parents
        discrete = (enc.kind != _CONTINUOUS) & ~self.fixed
        if movable.any():
            x, values, _ = self._gradient_step(x, values, np.flatnonzero(movable))
        for _ in range(3):  # alternate until a discrete move changes nothing
            if not discrete.any():
                break
            x, values, moved = self._discrete_step(x, values, np.flatnonzero(discrete))
            if not moved or not movable.any():
                break
            x, values, _ = self._gradient_step(x, values, np.flatnonzero(movable))
        return x, values

    def _gradient_step(
        self, x0: np.ndarray, values: np.ndarray, dims: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """L-BFGS-B on the relaxed inputs of all starts at once (their sum of log EI; the
        starts do not interact), in coordinates scaled by the length scales."""
        from scipy.optimize import minimize

        scale = self.gp.length_scales[dims]
        active = self.encoding.canonical(x0.copy())[:, dims]
        z0 = x0[:, dims] / scale
        upper = np.broadcast_to(1.0 / scale, z0.shape)
        low = np.where(active, 0.0, z0).ravel()
        high = np.where(active, upper, z0).ravel()
        shape = z0.shape

        def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
            x = x0.copy()
            x[:, dims] = z.reshape(shape) * scale
            mean, var, d_mean, d_var = self.gp.predict_with_grad(x, dims)
            value, g_mean, g_var, _ = log_ei(mean, var, self.best)
            grad = (g_mean[:, None] * d_mean + g_var[:, None] * d_var) * scale
            grad[~active] = 0.0
            return -float(np.sum(value)), -grad.ravel()

        result = minimize(
            objective,
            z0.ravel(),
            jac=True,
            method="L-BFGS-B",
            bounds=list(zip(low, high)),
            options={"maxiter": _ACQUISITION_ITERATIONS},
        )
        x = x0.copy()
        x[:, dims] = np.clip(result.x.reshape(shape) * scale, 0.0, 1.0)
        x = self._legal(x)
        new_values = self.score(x)
        better = new_values > values
        x = np.where(better[:, None], x, x0)
        return x, np.where(better, new_values, values), bool(better.any())

    def _discrete_step(
        self, x: np.ndarray, values: np.ndarray, dims: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """Each discrete input in turn: try its other values (all of them for categoricals
        and small grids, the cells 1, 2 and 4 away for large grids); keep the best."""
        enc = self.encoding
        moved = False
        for i in dims:
            options = self._options(x, i)
            if not options:
                continue
            tries = np.repeat(x[None, :, :], len(options), axis=0)
            for k, column in enumerate(options):
                tries[k, :, i] = column
            flat = tries.reshape(-1, enc.dims)
            enc.canonical(flat)
            scores = self.score(flat).reshape(len(options), len(x))
            pick = np.argmax(scores, axis=0)
            best = scores[pick, np.arange(len(x))]
            better = best > values + 1e-12
            if better.any():
                moved = True
                x = x.copy()
                x[better] = tries[pick[better], np.flatnonzero(better)]
                values = np.where(better, best, values)
        return x, values, moved

    def _options(self, x: np.ndarray, i: int) -> list[np.ndarray]:
        enc = self.encoding
        if enc.kind[i] == _CATEGORICAL:
            return [np.full(len(x), float(c)) for c in range(int(enc.count[i]))]
        if enc.count[i] <= _EXHAUSTIVE_GRID:
            return [np.full(len(x), u) for u in enc.centres(i)]
        return [enc.shift(i, x[:, i], s) for s in (-4, -2, -1, 1, 2, 4)]


def _distinct(x: np.ndarray, k: int) -> np.ndarray:
    """The first k distinct rows of x (in order)."""
    _, first = np.unique(x, axis=0, return_index=True)
    keep = np.sort(first)[:k]
    return x[keep]
