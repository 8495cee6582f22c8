"""PB2's explore step (Parker-Holder et al., 2020): the time-varying GP follows a moving
optimum, UCB finds a stationary one, pending points spread a batch (GP-BUCB), and bad rows,
tiny data and grids are handled."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tuningfork.exceptions import SchedulerError
from tuningfork.schedulers._pb2_gp import (
    _PRIOR,
    _model,
    _neg_log_posterior,
    _Pairs,
    _scaled_times,
    _start,
    propose,
)

NONE_PENDING = np.empty((0, 1))


def population(seed: int, centre: object, generations: int = 10, size: int = 8) -> tuple:
    """Synchronous generations every 10 steps; improvement -(x - centre(t))^2 + noise."""
    rng = np.random.default_rng(seed)
    times = np.repeat(np.arange(1, generations + 1) * 10.0, size)
    x = rng.random((len(times), 1))
    peak = np.vectorize(centre)(times) if callable(centre) else np.full(len(times), centre)
    y = -((x[:, 0] - peak) ** 2) + 0.02 * rng.standard_normal(len(times))
    return times, x, y


def test_stationary_optimum_is_found() -> None:
    hits = 0
    for seed in range(10):
        times, x, y = population(seed, 0.7)
        point = propose(times, x, y, NONE_PENDING, 110.0, np.random.default_rng(seed))
        hits += abs(point[0] - 0.7) < 0.1
    assert hits >= 8


def test_moving_optimum_is_followed_and_eps_fitted() -> None:
    """Optimum at 0.2 for steps <= 50 and at 0.8 after: the proposals follow the recent
    data (a stationary GP puts them near 0.5, between both), and the fitted forgetting is
    large, unlike on the stationary problem."""
    points = []
    for seed in range(8):
        times, x, y = population(seed, lambda t: 0.2 if t <= 50 else 0.8)
        points.append(propose(times, x, y, NONE_PENDING, 110.0, np.random.default_rng(seed))[0])
        moving = _model(times, x, y, NONE_PENDING, 110.0).eps
        times, x, y = population(seed, 0.7)
        stationary = _model(times, x, y, NONE_PENDING, 110.0).eps
        assert moving > 0.5 and stationary < 0.05
    assert min(points) > 0.5 and np.median(points) > 0.7


def test_pending_point_pushes_the_next_proposal_away() -> None:
    """Flat-ish data in the middle of the square: the first proposal, once pending, is not
    proposed again (same rng), and the second goes at least 0.3 away."""
    far = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        times = np.repeat(np.arange(1, 5) * 10.0, 6)
        x = 0.3 + 0.4 * rng.random((24, 2))
        y = 1e-3 * rng.standard_normal(24)
        first = propose(times, x, y, np.empty((0, 2)), 50.0, np.random.default_rng(seed))
        again = propose(times, x, y, np.empty((0, 2)), 50.0, np.random.default_rng(seed))
        second = propose(times, x, y, first[None], 50.0, np.random.default_rng(seed))
        np.testing.assert_array_equal(first, again)  # deterministic for one rng state
        far += np.linalg.norm(second - first) > 0.3
    assert far >= 9


def test_pending_points_shrink_the_variance_only() -> None:
    """GP-BUCB: pending points, observed at the mean, leave the mean as it is; the variance
    shrinks everywhere and almost vanishes at them (this module observes them nearly
    without noise)."""
    rng = np.random.default_rng(0)
    times = np.repeat([10.0, 20.0, 30.0], 4)
    x = 0.3 + 0.4 * rng.random((12, 1))
    y = -((x[:, 0] - 0.5) ** 2) + 0.01 * rng.standard_normal(12)
    pending = np.array([[0.05], [0.95]])
    alone = _model(times, x, y, NONE_PENDING, 40.0)
    batch = _model(times, x, y, pending, 40.0)
    grid = np.linspace(0.0, 1.0, 41)[:, None]
    mean_alone, var_alone, _, _ = alone.predict(grid)
    mean_batch, var_batch, _, _ = batch.predict(grid)
    np.testing.assert_allclose(mean_batch, mean_alone, atol=1e-10)
    assert np.all(var_batch <= var_alone + 1e-12)
    assert batch.predict(pending)[1].max() < 0.01 * alone.predict(pending)[1].min()


def test_non_finite_rows_are_ignored() -> None:
    times, x, y = population(1, 0.7)
    clean = propose(times, x, y, NONE_PENDING, 110.0, np.random.default_rng(3))
    bad_times = np.concatenate([times, [np.nan, 50.0, 60.0]])
    bad_x = np.vstack([x, [[0.1], [np.inf], [0.2]]])
    bad_y = np.concatenate([y, [1e6, 1e6, -np.inf]])
    dirty = propose(bad_times, bad_x, bad_y, NONE_PENDING, 110.0, np.random.default_rng(3))
    np.testing.assert_array_equal(dirty, clean)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_data_still_gives_a_point_in_the_cube(n: int) -> None:
    rng = np.random.default_rng(n)
    times, x, y = np.arange(n, dtype=float), rng.random((n, 3)), rng.random(n)
    pending = rng.random((2, 3))
    point = propose(times, x, y, pending, 5.0, np.random.default_rng(0))
    assert point.shape == (3,) and np.all((point >= 0.0) & (point <= 1.0))


def test_constant_rewards_go_where_nothing_is_known() -> None:
    """No signal to fit: the proposal is the point farthest (in variance) from the data."""
    times = np.repeat([10.0, 20.0], 5)
    x = np.linspace(0.0, 0.5, 10)[:, None]
    point = propose(times, x, np.ones(10), NONE_PENDING, 30.0, np.random.default_rng(0))
    assert point[0] > 0.9


def test_discrete_dimensions_come_back_on_their_grid() -> None:
    rng = np.random.default_rng(0)
    times = np.repeat(np.arange(1, 7) * 10.0, 6)
    x = rng.random((36, 3))
    y = -((x - 0.4) ** 2).sum(1)
    for seed in range(5):
        point = propose(
            times, x, y, x[:2], 70.0, np.random.default_rng(seed), discrete=(4, None, 7)
        )
        assert point[0] in (np.arange(4) + 0.5) / 4
        assert np.isclose((np.arange(7) + 0.5) / 7, point[2]).any()
        assert 0.0 <= point[1] <= 1.0


def test_bad_arguments_raise_scheduler_errors() -> None:
    times, x, y = population(0, 0.5, generations=2)
    rng = np.random.default_rng(0)
    with pytest.raises(SchedulerError, match="discrete"):
        propose(times, x, y, NONE_PENDING, 30.0, rng, discrete=(3, 4))
    with pytest.raises(SchedulerError, match="kappa"):
        propose(times, x, y, NONE_PENDING, 30.0, rng, kappa=-1.0)
    with pytest.raises(SchedulerError, match="one row per observation"):
        propose(times[:-1], x, y, NONE_PENDING, 30.0, rng)
    with pytest.raises(SchedulerError, match="same number"):
        propose(times, x, y, np.empty((0, 2)), 30.0, rng)


def test_kappa_zero_is_greedy_on_the_mean() -> None:
    times, x, y = population(2, 0.3)
    point = propose(times, x, y, NONE_PENDING, 110.0, np.random.default_rng(0), kappa=0.0)
    assert abs(point[0] - 0.3) < 0.05


def test_marginal_likelihood_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(4)
    times = rng.uniform(0.0, 100.0, 30)
    x = rng.random((30, 2))
    y = rng.standard_normal(30)
    t, _ = _scaled_times(times, 110.0)
    pairs = _Pairs(t, x)
    theta = _start(2, 1.5) + rng.normal(0.0, 0.3, 5)
    _, grad = _neg_log_posterior(theta, pairs, y, _PRIOR)
    for j in range(len(theta)):
        step = np.zeros_like(theta)
        step[j] = 1e-6
        up = _neg_log_posterior(theta + step, pairs, y, _PRIOR)[0]
        down = _neg_log_posterior(theta - step, pairs, y, _PRIOR)[0]
        assert grad[j] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-5)


def test_prediction_gradient_matches_finite_differences() -> None:
    times, x, y = population(5, 0.6, generations=3)
    x = np.hstack([x, np.random.default_rng(5).random((len(x), 1))])
    model = _model(times, x, y, np.array([[0.4, 0.4]]), 40.0)
    q = np.array([[0.3, 0.7], [0.9, 0.1]])
    _, _, d_mean, d_var = model.predict(q)
    for i in range(2):
        step = np.zeros_like(q)
        step[:, i] = 1e-6
        mean_up, var_up, _, _ = model.predict(q + step)
        mean_down, var_down, _, _ = model.predict(q - step)
        np.testing.assert_allclose(d_mean[:, i], (mean_up - mean_down) / 2e-6, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(d_var[:, i], (var_up - var_down) / 2e-6, rtol=1e-4, atol=1e-6)


def test_only_the_most_recent_rows_are_fitted() -> None:
    """Old rows beyond the 200 most recent are dropped: junk in them changes nothing."""
    times, x, y = population(6, 0.7, generations=25)  # 200 rows
    old_times = np.full(50, 1.0)
    old_x = np.random.default_rng(6).random((50, 1))
    both = propose(
        np.concatenate([old_times, times]),
        np.vstack([old_x, x]),
        np.concatenate([np.full(50, 5.0), y]),
        NONE_PENDING,
        260.0,
        np.random.default_rng(1),
    )
    recent = propose(times, x, y, NONE_PENDING, 260.0, np.random.default_rng(1))
    np.testing.assert_array_equal(both, recent)


def test_timing_is_printed_not_asserted(capsys: pytest.CaptureFixture[str]) -> None:
    """Timing belongs in benchmarks; this only runs the n=200, d=4 size once."""
    rng = np.random.default_rng(0)
    times = np.repeat(np.arange(1, 26) * 10.0, 8)
    x = rng.random((200, 4))
    y = -((x - 0.3) ** 2).sum(1) + 0.05 * rng.standard_normal(200)
    start = time.perf_counter()
    point = propose(times, x, y, rng.random((7, 4)), 260.0, np.random.default_rng(0))
    print(f"propose n=200 d=4: {time.perf_counter() - start:.3f} s")
    assert np.all(np.abs(point - 0.3) < 0.15)
