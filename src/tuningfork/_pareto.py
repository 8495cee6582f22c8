"""The Pareto front of a multi-objective study: the one implementation that the study,
the plots and the samplers share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tuningfork.trial import FrozenTrial


def signs(directions: Sequence[str]) -> np.ndarray:
    """+1 for each minimised objective, -1 for each maximised one (so that lower is better)."""
    return np.array([1.0 if d == "minimize" else -1.0 for d in directions])


def non_dominated(points: np.ndarray) -> np.ndarray:
    """A boolean mask of the rows of ``points`` (lower is better in every column) that no
    other row dominates (no worse in every column and better in one). Duplicates of a
    non-dominated point are all kept."""
    points = np.asarray(points, dtype=float)
    no_worse = np.all(points[:, None, :] <= points[None, :, :], axis=2)  # [j, i]: j <= i
    better = np.any(points[:, None, :] < points[None, :, :], axis=2)
    return ~np.any(no_worse & better, axis=0)


def pareto_front(trials: list[FrozenTrial], directions: Sequence[str]) -> list[FrozenTrial]:
    """The trials (COMPLETE, with values) that no other trial dominates, in their order."""
    if not trials:
        return []
    points = np.array([list(t.values or ()) for t in trials], dtype=float) * signs(directions)
    return [t for t, keep in zip(trials, non_dominated(points)) if keep]


def dominated_volume(points: np.ndarray, ref: np.ndarray) -> float:
    """The hypervolume of non-empty ``points`` (rows, every objective minimised), all
    strictly better than ``ref``, exactly (see `tuningfork.testing.multiobjective.hypervolume`)."""
    if ref.size == 1:
        return float(ref[0] - points[:, 0].min())
    if ref.size == 2:
        return _sweep(points, ref)
    # Slices along the last objective: between two consecutive levels, the dominated
    # cross-section is the (m-1)-objective hypervolume of the points at or below the lower one.
    points = points[np.argsort(points[:, -1], kind="stable")]
    tops = np.append(points[1:, -1], ref[-1])
    volume = 0.0
    for i, (level, top) in enumerate(zip(points[:, -1], tops)):
        if top > level:  # equal levels: the slice is taken with the last of them
            volume += (top - level) * dominated_volume(points[: i + 1, :-1], ref[:-1])
    return float(volume)


def _sweep(points: np.ndarray, ref: np.ndarray) -> float:
    """Two objectives: sorted by the first, each point's strip reaches the next point's
    first objective, at the height of the lowest second objective seen so far."""
    order = np.lexsort((points[:, 1], points[:, 0]))
    first, lowest = points[order, 0], np.minimum.accumulate(points[order, 1])
    widths = np.diff(np.append(first, ref[0]))
    return float(np.sum(widths * (ref[1] - lowest)))
