"""Gaussian-process regression for `GPSampler` (Rasmussen & Williams, 2006, "Gaussian
Processes for Machine Learning", ch. 2 and 5), in numpy and scipy.

Kernel: signal variance times a Matern-5/2 function of the squared distance
``r2 = sum_i (x_i - x'_i)^2 / l_i^2`` with one length scale per input (ARD); a categorical
input adds ``[x_i != x'_i] / l_i^2`` (a Hamming-distance factor, as in Optuna's GPSampler)
instead of a squared difference. Noise: a variance ``floor + exp(theta_noise)`` on the
diagonal. The hyperparameters ``theta = (log l_1..l_d, log signal, log noise)`` are fitted
by L-BFGS-B on the negative log marginal likelihood minus log priors, with analytic
gradients (R&W eq. 5.9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tuningfork.exceptions import CholeskyError

__all__ = ["GaussianProcess", "Prior", "fit_hyperparameters", "neg_log_posterior"]

_SQRT5 = math.sqrt(5.0)
_LOG_2PI = math.log(2.0 * math.pi)
_JITTERS = (0.0, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2)


def matern52(r2: np.ndarray) -> np.ndarray:
    """Matern-5/2 correlation as a function of the squared scaled distance:
    (1 + r + r^2 / 3) exp(-r) with r = sqrt(5 r2) (in place, to spare memory passes)."""
    r = np.multiply(r2, 5.0)
    np.sqrt(r, out=r)
    out = np.negative(r)
    np.exp(out, out=out)
    poly = np.multiply(r, 1.0 / 3.0)
    poly += 1.0
    poly *= r
    poly += 1.0
    out *= poly
    return out


def matern52_grad(r2: np.ndarray) -> np.ndarray:
    """d matern52 / d r2 (finite at r2 = 0, unlike the derivative in r)."""
    r = np.sqrt(5.0 * r2)
    return -(5.0 / 6.0) * (1.0 + r) * np.exp(-r)


def _cholesky(matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor, adding a growing jitter (relative to the mean diagonal)
    until the factorisation succeeds; returns (factor, jitter added)."""
    from scipy.linalg import lapack  # imported on first use: scipy is slow to load

    scale = float(np.mean(np.diag(matrix))) or 1.0
    for jitter in _JITTERS:
        if jitter:
            matrix = matrix + np.eye(len(matrix)) * (jitter * scale)
        factor, info = lapack.dpotrf(matrix, lower=1, clean=1, overwrite_a=0)
        if info == 0:
            return factor, jitter * scale
    raise CholeskyError("the covariance matrix is not positive definite, even with jitter")


def _lower_inverse(factor: np.ndarray) -> np.ndarray:
    """The lower triangle of (L L^T)^-1 from its lower Cholesky factor L (the strict upper
    triangle holds garbage)."""
    from scipy.linalg import lapack

    inv, info = lapack.dpotri(factor, lower=1)
    if info != 0:
        raise CholeskyError("could not invert the covariance matrix")
    return inv


def _inverse(factor: np.ndarray) -> np.ndarray:
    """The inverse of L L^T from its lower Cholesky factor L (symmetric, full)."""
    lower = np.tril(_lower_inverse(factor))
    return lower + np.tril(lower, -1).T


def _solve(factor: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.linalg import lapack

    solution, info = lapack.dpotrs(factor, y, lower=1)
    if info != 0:
        raise CholeskyError("could not solve with the Cholesky factor")
    return solution


@dataclass(frozen=True)
class Prior:
    """Log priors on the hyperparameters (densities in theta = log scale, up to constants).

    Length scales: log-normal, log l ~ N(mu, sigma^2) with mu = ``length_loc`` +
    ``length_dim_slope`` * log(d) (Hvarfner et al., 2024, "Vanilla Bayesian optimization
    performs great in high dimensions", scale the prior with the dimension).
    Signal variance: Gamma(``signal_shape``, ``signal_rate``) (Optuna's Gamma(2, 1)).
    Noise variance: Gamma(``noise_shape``, ``noise_rate``) (Optuna's Gamma(1.1, 30), which
    keeps the noise of standardised outputs small unless the data insist).
    """

    length_loc: float = 0.0
    length_dim_slope: float = 0.5
    length_scale: float = 1.0
    signal_shape: float = 2.0
    signal_rate: float = 1.0
    noise_shape: float = 1.1
    noise_rate: float = 30.0

    def length_mean(self, dims: int) -> float:
        return self.length_loc + self.length_dim_slope * math.log(max(dims, 1))

    def log_density(
        self, theta: np.ndarray, noise: float, noise_grad: float
    ) -> tuple[float, np.ndarray]:
        """(log prior, gradient in theta); ``noise`` is the noise variance and
        ``noise_grad`` its derivative in theta's last entry (0 when it is fixed)."""
        dims = len(theta) - 2
        grad = np.zeros_like(theta)
        deviation = (theta[:dims] - self.length_mean(dims)) / self.length_scale
        value = -0.5 * float(deviation @ deviation)
        grad[:dims] = -deviation / self.length_scale
        signal = math.exp(theta[dims])
        value += (self.signal_shape - 1.0) * theta[dims] - self.signal_rate * signal
        grad[dims] = (self.signal_shape - 1.0) - self.signal_rate * signal
        value += (self.noise_shape - 1.0) * math.log(noise) - self.noise_rate * noise
        grad[dims + 1] = ((self.noise_shape - 1.0) / noise - self.noise_rate) * noise_grad
        return value, grad


class _Distances:
    """Per-input distances of every training pair j < k (flattened upper triangle)."""

    def __init__(self, x: np.ndarray, categorical: np.ndarray) -> None:
        n = len(x)
        self.rows, self.cols = np.triu_indices(n, 1)
        diff = x[self.rows] - x[self.cols]
        self.pairs = np.where(categorical, (diff != 0.0).astype(np.float64), diff * diff)


def _unpack(theta: np.ndarray, noise_floor: float, fixed_noise: bool) -> tuple[float, float]:
    """(noise variance, its derivative in theta[-1])."""
    if fixed_noise:
        return noise_floor, 0.0
    excess = math.exp(theta[-1])
    return noise_floor + excess, excess


def neg_log_posterior(
    theta: np.ndarray,
    distances: _Distances,
    y: np.ndarray,
    prior: Prior,
    noise_floor: float,
    fixed_noise: bool,
) -> tuple[float, np.ndarray]:
    """Negative (log marginal likelihood + log prior) and its gradient in theta.

    d log p(y) / d theta_j = 0.5 tr((alpha alpha^T - K^-1) dK/d theta_j) (R&W eq. 5.9).
    """
    n, dims = len(y), len(theta) - 2
    inverse_sq = np.exp(-2.0 * theta[:dims])
    signal = math.exp(theta[dims])
    noise, noise_grad = _unpack(theta, noise_floor, fixed_noise)
    r2 = distances.pairs @ inverse_sq
    corr = matern52(r2)
    cov = np.empty((n, n))
    cov[distances.rows, distances.cols] = signal * corr
    cov[distances.cols, distances.rows] = signal * corr
    np.fill_diagonal(cov, signal + noise)
    factor, _ = _cholesky(cov)
    alpha = _solve(factor, y)
    log_det = 2.0 * float(np.sum(np.log(np.diag(factor))))
    nll = 0.5 * float(y @ alpha) + 0.5 * log_det + 0.5 * n * _LOG_2PI
    # W = alpha alpha^T - K^-1 on the pairs j < k; dpotri fills the lower triangle of K^-1
    inverse = _lower_inverse(factor)
    upper = alpha[distances.rows] * alpha[distances.cols] - inverse[distances.cols, distances.rows]
    diagonal = float(alpha @ alpha - np.trace(inverse))
    grad = np.empty_like(theta)
    # off-diagonal pairs appear twice in the trace, hence no 0.5 on the pair sums
    grad[:dims] = -2.0 * inverse_sq * ((upper * signal * matern52_grad(r2)) @ distances.pairs)
    grad[dims] = signal * (0.5 * diagonal + float(upper @ corr))
    grad[dims + 1] = 0.5 * diagonal * noise_grad
    log_prior, prior_grad = prior.log_density(theta, noise, noise_grad)
    return nll - log_prior, -(grad + prior_grad)


def hyperparameter_bounds(dims: int, fixed_noise: bool) -> list[tuple[float, float]]:
    """Box for theta: length scales in [1e-3, 1e3] (inputs live in [0, 1]), signal
    variance in [1e-2, 1e2] (outputs are standardised), noise excess in [1e-9, 1]."""
    noise = (math.log(1e-9),) * 2 if fixed_noise else (math.log(1e-9), 0.0)
    return [(math.log(1e-3), math.log(1e3))] * dims + [(math.log(1e-2), math.log(1e2)), noise]


def default_theta(dims: int, prior: Prior) -> np.ndarray:
    """The prior's centre: length scales at its median, unit signal, small noise."""
    return np.concatenate([np.full(dims, prior.length_mean(dims)), [0.0, math.log(1e-3)]])


def fit_hyperparameters(
    x: np.ndarray,
    y: np.ndarray,
    categorical: np.ndarray,
    starts: list[np.ndarray],
    *,
    prior: Prior,
    noise_floor: float,
    fixed_noise: bool,
    max_iter: int,
) -> tuple[np.ndarray, float]:
    """MAP hyperparameters: L-BFGS-B from each start, keeping the best; returns
    (theta, negative log posterior). A start whose optimisation fails keeps its value."""
    from scipy.optimize import minimize  # imported on first use: scipy is slow to load

    distances = _Distances(x, categorical)
    bounds = hyperparameter_bounds(x.shape[1], fixed_noise)
    low = np.array([b[0] for b in bounds])
    high = np.array([b[1] for b in bounds])
    best_theta, best_value = None, math.inf
    args = (distances, y, prior, noise_floor, fixed_noise)
    for start in starts:
        start = np.clip(start, low, high)
        try:
            result = minimize(
                neg_log_posterior,
                start,
                args=args,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": max_iter, "gtol": 1e-3},
            )
            theta, value = result.x, float(result.fun)
        except (CholeskyError, np.linalg.LinAlgError, ValueError):
            theta, value = start, math.inf
        if not math.isfinite(value):
            try:
                value = neg_log_posterior(start, *args)[0]
                theta = start
            except CholeskyError:
                continue
        if value < best_value:
            best_theta, best_value = theta, value
    if best_theta is None:
        best_theta = np.clip(starts[0], low, high)
    return best_theta, best_value


class GaussianProcess:
    """The posterior of a fitted GP on training inputs ``x`` (n, d) and outputs ``y`` (n,).

    Continuous inputs live in [0, 1]; categorical ones (``categorical`` mask) hold the
    index of a choice. The Cholesky factor and the inverse covariance are computed once
    and reused for every prediction.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        categorical: np.ndarray,
        theta: np.ndarray,
        *,
        noise_floor: float,
        fixed_noise: bool,
        extra_noise: np.ndarray | None = None,
    ) -> None:
        dims = x.shape[1]
        self.x = np.asarray(x, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)
        self.categorical = categorical
        self.theta = theta
        self.noise_floor = noise_floor
        self.fixed_noise = fixed_noise
        self.length_scales = np.exp(theta[:dims])
        self.inverse_sq = np.exp(-2.0 * theta[:dims])
        self.signal = math.exp(theta[dims])
        self.noise = _unpack(theta, noise_floor, fixed_noise)[0]
        self._continuous = ~categorical
        self._extra_noise = np.zeros(0) if extra_noise is None else extra_noise
        cov = self.kernel(self.x, self.x)
        diagonal = np.full(len(self.x), self.noise)
        if len(self._extra_noise):
            diagonal[len(self.x) - len(self._extra_noise) :] = self._extra_noise
        cov[np.diag_indices_from(cov)] += diagonal
        self._factor, _ = _cholesky(cov)
        self.alpha = _solve(self._factor, self.y)
        self._inverse = _inverse(self._factor)

    def with_observations(self, x: np.ndarray, y: np.ndarray, noise: float) -> GaussianProcess:
        """The same hyperparameters, conditioned on extra observations of f with noise
        variance ``noise`` (the model's own noise stays on the original observations)."""
        return GaussianProcess(
            np.vstack([self.x, x]),
            np.concatenate([self.y, y]),
            self.categorical,
            self.theta,
            noise_floor=self.noise_floor,
            fixed_noise=self.fixed_noise,
            extra_noise=np.concatenate([self._extra_noise, np.full(len(x), noise)]),
        )

    def _r2(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Scaled squared distances between rows of a (m, d) and b (n, d): (m, n)."""
        cont = self._continuous
        scale = np.sqrt(self.inverse_sq[cont])
        sa, sb = a[:, cont] * scale, b[:, cont] * scale
        r2 = sa @ (-2.0 * sb).T
        r2 += (sa * sa).sum(1)[:, None]
        r2 += (sb * sb).sum(1)[None, :]
        np.maximum(r2, 0.0, out=r2)
        for i in np.flatnonzero(self.categorical):
            r2 += self.inverse_sq[i] * (a[:, i, None] != b[None, :, i])
        return r2

    def kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Prior covariance between rows of a and b, without noise."""
        return self.signal * matern52(self._r2(a, b))

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of f at rows of x (variance floored at 1e-12)."""
        from scipy.linalg import solve_triangular

        k = self.kernel(x, self.x)
        mean = k @ self.alpha
        v = solve_triangular(self._factor, k.T, lower=True, check_finite=False)
        var = self.signal - np.einsum("ij,ij->j", v, v)
        return mean, np.maximum(var, 1e-12)

    def predict_with_grad(
        self, x: np.ndarray, dims: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, variance and their gradients in the continuous inputs ``dims`` of x:
        (mean (m,), var (m,), d mean (m, len(dims)), d var (m, len(dims)))."""
        r2 = self._r2(x, self.x)
        k = self.signal * matern52(r2)
        q = k @ self._inverse
        mean = k @ self.alpha
        var = self.signal - np.einsum("ij,ij->i", q, k)
        # dk_j/dx_i = signal * matern52'(r2_j) * 2 (x_i - X_ji) / l_i^2
        dk_dr2 = 2.0 * self.signal * matern52_grad(r2)
        diff = x[:, None, dims] - self.x[None, :, dims]  # (m, n, len(dims))
        scaled = diff * self.inverse_sq[dims]
        d_mean = np.einsum("mn,mni->mi", dk_dr2 * self.alpha[None, :], scaled)
        d_var = -2.0 * np.einsum("mn,mni->mi", dk_dr2 * q, scaled)
        floored = var < 1e-12
        var = np.maximum(var, 1e-12)
        d_var[floored] = 0.0
        return mean, var, d_mean, d_var
