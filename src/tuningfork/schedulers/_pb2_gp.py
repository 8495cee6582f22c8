"""PB2's explore step (Parker-Holder, Nguyen & Roberts, 2020, "Provably efficient online
hyperparameter optimization with population-based bandits", NeurIPS): a time-varying GP
(Bogunovic, Scarlett & Cevher, 2016, "Time-varying Gaussian process bandit optimization",
AISTATS) fitted on the population's reward improvements, maximised by batch UCB whose
pending points shrink the variance (GP-BUCB: Desautels, Krause & Burdick, 2014, JMLR).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tuningfork.exceptions import CholeskyError, SchedulerError
from tuningfork.samplers._blas import _single_threaded_blas
from tuningfork.samplers._gp_model import (
    Prior,
    _cholesky,
    _Distances,
    _inverse,
    _lower_inverse,
    _solve,
    _unpack,
    default_theta,
    hyperparameter_bounds,
    matern52,
    matern52_grad,
)

__all__ = ["propose"]

_MAX_ROWS = 200  # the most recent observations kept: the fit is cubic in their number
_NOISE_FLOOR = 1e-8
_FIT_ITERATIONS = 60
_RATE_BOUNDS = (1e-3, 10.0)  # forgetting rate per span of the data's times: at most e^-5 over it
_RATE_STARTS = (0.1, 5.0)  # one start that forgets little, one that forgets a lot
_PENDING_NOISE = 1e-4  # a pending point's noise variance, relative to the signal's
_N_CANDIDATES = 1000
_N_POLISH = 5
_POLISH_ITERATIONS = 50
_BETA_C1, _BETA_C2 = 0.2, 0.4
# The GP sampler's priors, but a noise prior 10 times wider (Gamma(1.1, 3), mean 0.37 of
# the standardised variance): rewards gained over an interval are noisy, and the sampler's
# Gamma(1.1, 30) made the fit explain noise away by tiny length scales and total forgetting.
_PRIOR = Prior(noise_rate=3.0)
_OWNER = "PB2"


def propose(
    times: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    pending: np.ndarray,
    now: float,
    rng: np.random.Generator,
    *,
    discrete: Sequence[int | None] = (),
    kappa: float | None = None,
) -> np.ndarray:
    """New hyperparameters in [0, 1]^d for the member being explored.

    ``times`` (n,) is the step each observation's interval ended at, ``x`` (n, d) the
    hyperparameters in force during it (in [0, 1]^d; values outside are clipped), ``y``
    (n,) the reward gained over it (larger is better). Rows with a non-finite entry are
    dropped, and only the 200 most recent rows are kept. ``pending`` (m, d) holds the
    hyperparameters of the members training now; they are observed at ``now`` at the
    model's mean, which leaves the mean as it is and only shrinks the variance near them
    (GP-BUCB), so parallel members spread. Unlike GP-BUCB they are observed almost without
    noise, so that noisy rewards cannot let a batch repeat a running member's point.

    Time is measured in spans of the data's times, ``(t - min t) / (max t - min t)``, and
    the kernel is ``signal * Matern52(x, x') * (1 - eps)^(|t - t'| / 2)``; ``eps`` (in
    [0.001, 0.99995] per span) is fitted with the length scales, signal and noise by
    maximising the marginal likelihood times priors: the GP sampler's on the length scales
    and signal, a wider one on the noise, none on ``eps``. Rewards are standardised first.

    The acquisition is ``mean + kappa * std`` at time ``now``; ``kappa=None`` takes
    ``sqrt(beta_t)`` with PB2's schedule ``beta_t = 0.2 + max(0, log(0.4 n))``, n the
    number of observations (the scaled-down TV-GP-UCB constant of PB2's implementation).
    It is maximised over 1000 uniform candidates drawn from ``rng`` and an L-BFGS-B
    polish of the best 5; ``discrete[k] = n_k`` puts dimension k on the grid
    ``(j + 0.5) / n_k`` (``None``: continuous), and snapped points are scored again.
    With fewer than two usable rows or constant rewards, nothing is fitted: the
    proposal is the point of greatest prior variance given the data and ``pending``.
    """
    times, x, y, pending, grid = _checked(times, x, y, pending, discrete)
    if not math.isfinite(now):
        raise SchedulerError(f"now must be a finite time, got {now!r}", option="now", owner=_OWNER)
    if kappa is None:
        kappa = math.sqrt(_BETA_C1 + max(0.0, math.log(_BETA_C2 * max(len(y), 1))))
    elif not (math.isfinite(kappa) and kappa >= 0.0):
        raise SchedulerError(
            f"kappa must be a finite number >= 0, got {kappa!r}", option="kappa", owner=_OWNER
        )
    with _single_threaded_blas():  # small matrices: BLAS threads only contend
        posterior = _model(times, x, y, pending, float(now))
        return _maximise_ucb(posterior, kappa, grid, rng)


# -- inputs -------------------------------------------------------------------------------


def _checked(
    times: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    pending: np.ndarray,
    discrete: Sequence[int | None],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arrays of consistent shapes with non-finite rows dropped, and the grid sizes
    (0 for a continuous dimension)."""
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    x = np.asarray(x, dtype=np.float64)
    pending = np.asarray(pending, dtype=np.float64)
    dims = x.shape[1] if x.ndim == 2 else pending.shape[1] if pending.ndim == 2 else 0
    # an empty array of any shape stands for no rows
    x = x.reshape(0, dims) if x.size == 0 and x.ndim != 2 else x
    pending = pending.reshape(0, dims) if pending.size == 0 and pending.ndim != 2 else pending
    if x.ndim != 2 or pending.ndim != 2 or pending.shape[1] != dims or dims == 0:
        raise SchedulerError(
            f"x and pending must be 2-D with the same number (>= 1) of columns, got shapes "
            f"{x.shape} and {pending.shape}",
            option="x",
            owner=_OWNER,
        )
    if not len(times) == len(x) == len(y):
        raise SchedulerError(
            f"times, x and y must have one row per observation, got {len(times)}, "
            f"{len(x)} and {len(y)}",
            option="times",
            owner=_OWNER,
        )
    grid = _grid_sizes(discrete, dims)
    keep = np.isfinite(times) & np.isfinite(y) & np.isfinite(x).all(axis=1)
    times, x, y = times[keep], np.clip(x[keep], 0.0, 1.0), y[keep]
    pending = np.clip(pending[np.isfinite(pending).all(axis=1)], 0.0, 1.0)
    if len(y) > _MAX_ROWS:  # the most recent rows: older ones matter least to a decaying kernel
        recent = np.sort(np.argsort(times, kind="stable")[-_MAX_ROWS:])
        times, x, y = times[recent], x[recent], y[recent]
    return times, x, y, pending, grid


def _grid_sizes(discrete: Sequence[int | None], dims: int) -> np.ndarray:
    if len(discrete) not in (0, dims):
        raise SchedulerError(
            f"discrete must give one entry per dimension ({dims}), got {len(discrete)}",
            option="discrete",
            owner=_OWNER,
        )
    sizes = np.zeros(dims, dtype=np.int64)
    for k, size in enumerate(discrete):
        if size is None:
            continue
        if int(size) != size or size < 1:
            raise SchedulerError(
                f"discrete[{k}] must be None or a number of grid points >= 1, got {size!r}",
                option="discrete",
                owner=_OWNER,
            )
        sizes[k] = int(size)
    return sizes


def _snap(x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Discrete dimensions moved to the centre of their grid cell, (j + 0.5) / n_k."""
    out = x.copy()
    for k in np.flatnonzero(grid):
        cell = np.clip(np.floor(x[:, k] * grid[k]), 0, grid[k] - 1)
        out[:, k] = (cell + 0.5) / grid[k]
    return out


# -- the time-varying GP ------------------------------------------------------------------


def _scaled_times(times: np.ndarray, now: float) -> tuple[np.ndarray, float]:
    """Times in spans of the data's times, so the forgetting rate's bounds suit any unit."""
    if not len(times):
        return times, 0.0
    start = float(times.min())
    span = float(times.max()) - start
    if span <= 0.0:  # a single time: scale by the distance to now instead
        span = abs(now - start) or 1.0
    return (times - start) / span, (now - start) / span


class _Pairs:
    """Per-input squared distances and time gaps of every training pair j < k."""

    def __init__(self, t: np.ndarray, x: np.ndarray) -> None:
        distances = _Distances(x, np.zeros(x.shape[1], dtype=bool))
        self.rows, self.cols, self.x = distances.rows, distances.cols, distances.pairs
        self.dt = np.abs(t[self.rows] - t[self.cols])


def _eps(rate: float) -> float:
    """Bogunovic's eps from the rate in (1 - eps)^(dt / 2) = exp(-rate dt / 2)."""
    return -math.expm1(-rate)


def _neg_log_posterior(
    theta: np.ndarray, pairs: _Pairs, y: np.ndarray, prior: Prior
) -> tuple[float, np.ndarray]:
    """Negative (log marginal likelihood + log prior) and its gradient in theta =
    (log length scales, log signal, log noise excess, log forgetting rate).

    d log p(y) / d theta_j = 0.5 tr((alpha alpha^T - K^-1) dK/d theta_j) (Rasmussen &
    Williams, 2006, eq. 5.9), as in the GP sampler's model with a time factor added.
    """
    n, dims = len(y), len(theta) - 3
    inverse_sq = np.exp(-2.0 * theta[:dims])
    signal = math.exp(theta[dims])
    noise, noise_grad = _unpack(theta[: dims + 2], _NOISE_FLOOR, False)
    rate = math.exp(theta[dims + 2])
    r2 = pairs.x @ inverse_sq
    decay = np.exp(-0.5 * rate * pairs.dt)
    corr = matern52(r2) * decay
    cov = np.empty((n, n))
    cov[pairs.rows, pairs.cols] = signal * corr
    cov[pairs.cols, pairs.rows] = signal * corr
    np.fill_diagonal(cov, signal + noise)
    factor, _ = _cholesky(cov)
    alpha = _solve(factor, y)
    log_det = 2.0 * float(np.sum(np.log(np.diag(factor))))
    nll = 0.5 * float(y @ alpha) + 0.5 * log_det + 0.5 * n * math.log(2.0 * math.pi)
    inverse = _lower_inverse(factor)
    upper = alpha[pairs.rows] * alpha[pairs.cols] - inverse[pairs.cols, pairs.rows]
    diagonal = float(alpha @ alpha - np.trace(inverse))
    grad = np.empty_like(theta)
    # off-diagonal pairs appear twice in the trace, hence no 0.5 on the pair sums
    grad[:dims] = -2.0 * inverse_sq * ((upper * signal * decay * matern52_grad(r2)) @ pairs.x)
    grad[dims] = signal * (0.5 * diagonal + float(upper @ corr))
    grad[dims + 1] = 0.5 * diagonal * noise_grad
    grad[dims + 2] = -0.5 * rate * signal * float(upper @ (corr * pairs.dt))
    log_prior, prior_grad = prior.log_density(theta[: dims + 2], noise, noise_grad)
    return nll - log_prior, -(grad + np.append(prior_grad, 0.0))


def _fit(t: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """MAP theta by L-BFGS-B from two starts (little and much forgetting); the best wins."""
    from scipy.optimize import minimize  # imported on first use: scipy is slow to load

    dims = x.shape[1]
    prior = _PRIOR
    pairs = _Pairs(t, x)
    bounds = hyperparameter_bounds(dims, False) + [tuple(math.log(b) for b in _RATE_BOUNDS)]
    best_theta, best_value = _start(dims, _RATE_STARTS[0]), math.inf
    for rate in _RATE_STARTS:
        try:
            result = minimize(
                _neg_log_posterior,
                _start(dims, rate),
                args=(pairs, y, prior),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": _FIT_ITERATIONS, "gtol": 1e-3},
            )
        except (CholeskyError, np.linalg.LinAlgError, ValueError):
            continue
        if math.isfinite(result.fun) and result.fun < best_value:
            best_theta, best_value = result.x, float(result.fun)
    return best_theta


def _start(dims: int, rate: float) -> np.ndarray:
    return np.append(default_theta(dims, _PRIOR), math.log(rate))


class _Posterior:
    """The time-varying GP's posterior of f(now, x): the mean from the data, the variance
    from the data and the pending points (observed at ``now``, GP-BUCB).

    Deviation from GP-BUCB: a pending point is observed almost without noise (variance
    1e-4 of the signal's), not with the model's noise. Interval rewards are noisy, the
    fitted noise is then about the signal's, and one noisy observation only halved the
    variance at a running member's point, so a batch could repeat it.
    """

    def __init__(
        self, theta: np.ndarray, t: np.ndarray, x: np.ndarray, y: np.ndarray, pending: np.ndarray
    ) -> None:
        dims = x.shape[1]
        self.theta = theta
        self.inverse_sq = np.exp(-2.0 * theta[:dims])
        self.signal = math.exp(theta[dims])
        self.noise = _unpack(theta[: dims + 2], _NOISE_FLOOR, False)[0]
        self._diagonal = np.concatenate(
            [np.full(len(y), self.noise), np.full(len(pending), _PENDING_NOISE * self.signal)]
        )
        self.rate = math.exp(theta[dims + 2])
        self.dims = dims
        self.x = np.vstack([x, pending])
        self.t = np.concatenate([t, np.zeros(len(pending))])  # times relative to now
        n = len(y)
        self.alpha = np.zeros(len(self.x))
        if n:  # the mean: data alone (pending rows, observed at the mean, keep alpha 0)
            factor, _ = _cholesky(self._cov(slice(0, n)))
            self.alpha[:n] = _solve(factor, y)
        self._inverse = _inverse(_cholesky(self._cov(slice(None)))[0]) if len(self.x) else None

    @property
    def eps(self) -> float:
        return _eps(self.rate)

    def _cov(self, rows: slice) -> np.ndarray:
        """Covariance of the training rows ``rows``, noise included."""
        x, t = self.x[rows], self.t[rows]
        decay = np.exp(-0.5 * self.rate * np.abs(t[:, None] - t[None, :]))
        cov = self.signal * matern52(self._r2(x, x)) * decay
        cov[np.diag_indices_from(cov)] += self._diagonal[rows]
        return cov

    def _r2(self, b: np.ndarray, a: np.ndarray) -> np.ndarray:
        scale = np.sqrt(self.inverse_sq)
        sb, sa = b * scale, a * scale
        r2 = sb @ (-2.0 * sa).T
        r2 += (sb * sb).sum(1)[:, None]
        r2 += (sa * sa).sum(1)[None, :]
        return np.maximum(r2, 0.0)

    def predict(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, variance and their gradients in q at rows q (m, d) and time now."""
        m = len(q)
        if self._inverse is None:
            zeros = np.zeros((m, self.dims))
            return np.zeros(m), np.full(m, self.signal), zeros, zeros
        r2 = self._r2(q, self.x)
        decay = np.exp(-0.5 * self.rate * np.abs(self.t))[None, :]
        k = self.signal * matern52(r2) * decay
        kinv = k @ self._inverse
        mean = k @ self.alpha
        var = self.signal - np.einsum("ij,ij->i", kinv, k)
        # dk_j/dq_i = signal * decay_j * matern52'(r2_j) * 2 (q_i - x_ji) / l_i^2
        dk_dr2 = 2.0 * self.signal * decay * matern52_grad(r2)
        scaled = (q[:, None, :] - self.x[None, :, :]) * self.inverse_sq
        d_mean = np.einsum("mn,mni->mi", dk_dr2 * self.alpha[None, :], scaled)
        d_var = -2.0 * np.einsum("mn,mni->mi", dk_dr2 * kinv, scaled)
        floored = var < 1e-12
        d_var[floored] = 0.0
        return mean, np.maximum(var, 1e-12), d_mean, d_var


def _model(
    times: np.ndarray, x: np.ndarray, y: np.ndarray, pending: np.ndarray, now: float
) -> _Posterior:
    """The fitted posterior, with times relative to ``now`` (in spans of the data)."""
    t, now_scaled = _scaled_times(times, now)
    dims = x.shape[1]
    spread = float(np.std(y)) if len(y) >= 2 else 0.0
    if spread > 0.0 and math.isfinite(spread):
        standard = (y - float(np.mean(y))) / spread
        theta = _fit(t, x, standard)
    else:  # nothing to learn from: the prior's centre, and the variance decides alone
        standard = np.zeros(len(y))
        theta = _start(dims, _RATE_STARTS[0])
    return _Posterior(theta, t - now_scaled, x, standard, pending)


# -- the acquisition ----------------------------------------------------------------------


def _maximise_ucb(
    posterior: _Posterior, kappa: float, grid: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Best of uniform candidates and their L-BFGS-B polish, all snapped to the grid."""
    dims = posterior.dims
    candidates = rng.random((_N_CANDIDATES, dims))
    values = _ucb(posterior, kappa, candidates)
    starts = candidates[np.argsort(-values, kind="stable")[:_N_POLISH]]
    polished = _polish(posterior, kappa, starts)
    pool = _snap(np.vstack([polished, starts, candidates]), grid)
    best = int(np.argmax(_ucb(posterior, kappa, pool)))
    return np.asarray(pool[best])


def _ucb(posterior: _Posterior, kappa: float, q: np.ndarray) -> np.ndarray:
    mean, var, _, _ = posterior.predict(q)
    return np.asarray(mean + kappa * np.sqrt(var))


def _polish(posterior: _Posterior, kappa: float, starts: np.ndarray) -> np.ndarray:
    """L-BFGS-B on the sum of the starts' UCB (they do not interact), inside [0, 1]^d."""
    from scipy.optimize import minimize

    shape = starts.shape

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        mean, var, d_mean, d_var = posterior.predict(z.reshape(shape))
        std = np.sqrt(var)
        grad = d_mean + (kappa / (2.0 * std))[:, None] * d_var
        return -float(np.sum(mean + kappa * std)), -grad.ravel()

    result = minimize(
        objective,
        starts.ravel(),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, 1.0)] * starts.size,
        options={"maxiter": _POLISH_ITERATIONS},
    )
    return np.clip(result.x.reshape(shape), 0.0, 1.0)
