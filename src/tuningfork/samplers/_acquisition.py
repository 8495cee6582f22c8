"""Log expected improvement for `GPSampler`, computed stably in log space.

Ament et al. (2023), "Unexpected improvements to expected improvement for Bayesian
optimization" (NeurIPS): log EI = log(sigma) + log_h(z), with log_h evaluated through
``log1mexp`` and the scaled complementary error function ``erfcx`` where z is very negative,
so that log EI stays finite (and its gradient useful) where EI itself underflows to zero.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["log_ei", "log_h", "log_h_grad"]

_C1 = 0.5 * math.log(2.0 * math.pi)  # log sqrt(2 pi)
_C2 = 0.5 * math.log(0.5 * math.pi)  # log sqrt(pi / 2)
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_EPS = 1.0 / math.sqrt(np.finfo(np.float64).eps)  # about 6.7e7


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """log(1 - exp(x)) for x < 0, accurate on both sides of -log 2 (Maechler, 2012)."""
    return np.where(
        x > -math.log(2.0),
        np.log(-np.expm1(np.minimum(x, -1e-300))),
        np.log1p(-np.exp(np.minimum(x, 0.0))),
    )


def log_h(z: np.ndarray) -> np.ndarray:
    """log(phi(z) + z * Phi(z)), the log of EI / sigma at standardised improvement z.

    Three regimes (Ament et al., 2023, eq. 9): direct for z > -1; for -1/sqrt(eps) < z <= -1,
    -z^2/2 - log sqrt(2 pi) + log1mexp(log(erfcx(-z / sqrt 2) |z|) + log sqrt(pi / 2));
    and the asymptote -z^2/2 - log sqrt(2 pi) - 2 log|z| beyond.
    """
    from scipy.special import erfcx, log_ndtr  # imported on first use: scipy is slow to load

    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    upper = z > -1.0
    far = z <= -_INV_SQRT_EPS
    middle = ~upper & ~far
    if upper.any():
        zu = z[upper]
        pdf = np.exp(-0.5 * zu * zu - _C1)
        cdf = np.exp(log_ndtr(zu))
        out[upper] = np.log(pdf + zu * cdf)
    if middle.any():
        zm = z[middle]
        inner = np.log(erfcx(-zm / _SQRT2) * np.abs(zm)) + _C2
        out[middle] = -0.5 * zm * zm - _C1 + _log1mexp(inner)
    if far.any():
        zf = z[far]
        out[far] = -0.5 * zf * zf - _C1 - 2.0 * np.log(np.abs(zf))
    return out


def log_h_grad(z: np.ndarray, value: np.ndarray) -> np.ndarray:
    """d log_h / dz = Phi(z) / h(z), from ``value = log_h(z)`` (computed in log space)."""
    from scipy.special import log_ndtr

    return np.exp(log_ndtr(z) - value)


def log_ei(
    mean: np.ndarray, var: np.ndarray, best: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """log EI of minimisation below ``best`` and its partial derivatives.

    Returns (log_ei, d/d mean, d/d var, z) for a Gaussian posterior N(mean, var).
    """
    sigma = np.sqrt(var)
    z = (best - mean) / sigma
    value = log_h(z)
    dz = log_h_grad(z, value)
    d_mean = -dz / sigma
    # d/d sigma = 1/sigma - dz * z / sigma, and d sigma / d var = 1 / (2 sigma)
    d_var = (1.0 - dz * z) / (2.0 * var)
    return np.log(sigma) + value, d_mean, d_var, z
