"""Solve the 2-D Poisson equation with successive over-relaxation (SOR): a program that
tuningfork tunes without knowing anything about it but its command line and its output.

The model problem: -(u_xx + u_yy) = f on the unit square, u = 0 on the boundary, with
f = 2 pi^2 sin(pi x) sin(pi y), whose exact solution is u = sin(pi x) sin(pi y). The
five-point finite-difference scheme on an n x n interior grid (h = 1 / (n + 1)) gives the
linear system that SOR solves::

    u_ij <- (1 - omega) u_ij + omega / 4 (u_i-1,j + u_i+1,j + u_i,j-1 + u_i,j+1 + h^2 f_ij)

omega = 1 is Gauss-Seidel; 1 < omega < 2 over-relaxes. The points are swept in red-black
order (all points with i + j even, then all with i + j odd): a point of one colour depends
only on points of the other, so each half-sweep is one vectorised numpy update.

Theory (Young, 1950): for this model problem the Jacobi iteration matrix has spectral radius
mu = cos(pi h), and SOR converges fastest at

    omega_opt = 2 / (1 + sqrt(1 - mu^2)) = 2 / (1 + sin(pi / (n + 1)))

(1.9078 for n = 64), where its spectral radius is omega_opt - 1 ~ 1 - 2 pi h, against
cos^2(pi h) ~ 1 - pi^2 h^2 for Gauss-Seidel: O(n) iterations instead of O(n^2). Below
omega_opt the iteration count grows steeply, above it roughly like 1 / (2 - omega). (With a
finite tolerance the measured minimum lies a little above omega_opt: about 1.92 for n = 64,
because at omega_opt the iteration matrix is defective and the error decays slower than
its spectral radius alone says.)

The program prints one line, which study.yaml reads with a regular expression::

    iterations=135 seconds=0.012 converged=true residual=9.7e-07 error=2.0e-04 omega=1.9078

``iterations`` is the number of SOR sweeps until the relative residual
max|f - A u| / max|f| is below ``--tol``; a poor omega is cut off after ``--max-iter``
sweeps and reports ``iterations=<max-iter> converged=false``, so it still has a (bad)
value and the search moves away from it. Run it by hand::

    python sor.py --omega 1.9 --n 64
    python sor.py --omega 1.0 --n 64          # Gauss-Seidel: about 40 times as many
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np


def optimal_omega(n: int) -> float:
    """Young's optimal relaxation factor for the n x n model problem."""
    return 2.0 / (1.0 + math.sin(math.pi / (n + 1)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--omega", type=float, required=True, help="relaxation factor, (0, 2)")
    parser.add_argument("--n", type=int, default=64, help="interior grid points per side")
    parser.add_argument("--tol", type=float, default=1e-6, help="relative residual to reach")
    parser.add_argument(
        "--max-iter", type=int, default=20_000, help="give up after this many sweeps"
    )
    args = parser.parse_args(argv)
    if not 0.0 < args.omega < 2.0:
        parser.error(f"--omega must be in (0, 2) for SOR to converge, got {args.omega}")
    if args.n < 2 or args.tol <= 0 or args.max_iter < 1:
        parser.error("need --n >= 2, --tol > 0 and --max-iter >= 1")
    return args


def _half_sweep(u: np.ndarray, rhs: np.ndarray, omega: float, n: int, colour: int) -> None:
    """Update the points of one colour (i + j even: 0, odd: 1) in place.

    ``u`` and ``rhs`` (= h^2 f) are (n + 2) x (n + 2) arrays, the boundary included. The
    interior points with i = i0, i0 + 2, ... <= n and j = j0, j0 + 2, ... <= n form a
    strided view; their four neighbours are the same view shifted by one.
    """
    for i0, j0 in (((1, 1), (2, 2)), ((1, 2), (2, 1)))[colour]:
        rows, cols = slice(i0, n + 1, 2), slice(j0, n + 1, 2)
        up, down = slice(i0 - 1, n, 2), slice(i0 + 1, n + 2, 2)
        left, right = slice(j0 - 1, n, 2), slice(j0 + 1, n + 2, 2)
        neighbours = u[up, cols] + u[down, cols] + u[rows, left] + u[rows, right]
        u[rows, cols] += omega * (0.25 * (neighbours + rhs[rows, cols]) - u[rows, cols])


def _residual(u: np.ndarray, f: np.ndarray, h2: float) -> float:
    """max |f - A u| over the interior, A the five-point negative Laplacian."""
    lap = (4.0 * u[1:-1, 1:-1] - u[:-2, 1:-1] - u[2:, 1:-1] - u[1:-1, :-2] - u[1:-1, 2:]) / h2
    return float(np.max(np.abs(f[1:-1, 1:-1] - lap)))


def solve(n: int, omega: float, tol: float, max_iter: int) -> dict[str, float | int | bool]:
    """Run SOR from u = 0 until the relative residual is below ``tol`` (or ``max_iter``)."""
    h = 1.0 / (n + 1)
    x = np.linspace(0.0, 1.0, n + 2)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    exact = np.sin(np.pi * xx) * np.sin(np.pi * yy)
    f = 2.0 * np.pi**2 * exact
    rhs = h * h * f
    u = np.zeros((n + 2, n + 2))
    scale = float(np.max(np.abs(f[1:-1, 1:-1])))
    start = time.perf_counter()
    iterations, relative = 0, 1.0
    while iterations < max_iter:
        _half_sweep(u, rhs, omega, n, 0)  # red
        _half_sweep(u, rhs, omega, n, 1)  # black
        iterations += 1
        relative = _residual(u, f, h * h) / scale
        if not math.isfinite(relative) or relative < tol:
            break
    return {
        "iterations": iterations,
        "seconds": time.perf_counter() - start,
        "converged": math.isfinite(relative) and relative < tol,
        "residual": relative,
        "error": float(np.max(np.abs(u - exact))),  # the discretisation error, O(h^2)
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = solve(args.n, args.omega, args.tol, args.max_iter)
    if not out["converged"]:
        out["iterations"] = args.max_iter  # cut off (or diverged): count it as the cap
    print(
        f"iterations={out['iterations']} seconds={out['seconds']:.4f} "
        f"converged={str(out['converged']).lower()} residual={out['residual']:.3g} "
        f"error={out['error']:.3g} omega={args.omega:.6g} (optimal {optimal_omega(args.n):.6g})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
