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
