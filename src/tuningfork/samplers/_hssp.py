"""Hypervolume subset selection: the rows of a set of points that together dominate the
most volume, chosen greedily. MOTPE cuts its last good front this way (Ozaki et al., 2020,
"Multiobjective tree-structured Parzen estimator for computationally expensive optimization
problems"; 2022, JAIR)."""

from __future__ import annotations

import heapq

import numpy as np

from tuningfork._pareto import dominated_volume

__all__ = ["reference_point", "select"]

# The reference point lies this share of the set's range beyond its worst point, so the
# extremes of a front gain a thin slab, not an unbounded one (crowding distance's flaw).
_MARGIN = 0.1


def reference_point(points: np.ndarray) -> np.ndarray:
    """The worst value of each column of ``points`` (finite, non-empty) plus a tenth of the
    column's range; plus 1 where the column is constant (every point then gains the same
    factor from it, so its size does not matter)."""
    worst, best = points.max(axis=0), points.min(axis=0)
    span = worst - best
    return worst + np.where(span > 0, _MARGIN * span, 1.0)


def select(points: np.ndarray, k: int, reference: np.ndarray) -> np.ndarray:
    """Indices of ``k`` rows of ``points`` (finite, every column minimised, all strictly
    better than ``reference``) in the order a greedy choice takes them: each time the row
    that adds the most hypervolume to those taken, ties to the lower index.

    Lazy greedy (Minoux, 1978): hypervolume is submodular, so a row's contribution only
    shrinks as rows are taken and an old contribution bounds the new one from above; a row
    whose contribution is fresh and still the largest bound is the greedy choice. Most rows
    are never re-evaluated, so a choice costs a few exact hypervolumes of at most ``k``
    rows."""
    count = len(points)
    if k >= count:
        return np.arange(count)
    # against the empty set, a row contributes its box up to the reference point
    heap = [(-float(np.prod(reference - row)), index) for index, row in enumerate(points)]
    heapq.heapify(heap)
    fresh = np.ones(count, dtype=bool)
    chosen: list[int] = []
    volume = 0.0
    while len(chosen) < k:
        bound, index = heapq.heappop(heap)
        if fresh[index]:
            chosen.append(index)
            volume -= bound
            fresh[:] = False
            continue
        gain = dominated_volume(points[chosen + [index]], reference) - volume
        fresh[index] = True
        heapq.heappush(heap, (-gain, index))
    return np.array(chosen, dtype=np.intp)
