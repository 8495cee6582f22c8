"""NSGA-III (Deb & Jain, 2014): the steady-state genetic sampler of `NSGAIISampler` with
survivor selection by reference-point niching instead of crowding, for studies with three
or more objectives; constraints as in Jain & Deb (2014, Part II).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from tuningfork import _check as check
from tuningfork.exceptions import OptionError, SamplerError
from tuningfork.repro import derive_seed
from tuningfork.samplers.genetic import (
    _ConstrainedSampler,
    _finite,
    _losses,
    _StudyState,
    constrained_domination,
    fronts,
)
from tuningfork.trial import FrozenTrial

if TYPE_CHECKING:
    from tuningfork.study import StudyReader

__all__ = [
    "NSGAIIISampler",
    "associate",
    "das_dennis",
    "default_divisions",
    "niche_select",
    "normalize",
]

# the weight of the other axes in the achievement scalarising function that finds an
# axis's extreme point (the paper's 10^-6: nearly the axis itself, never a division by 0)
_ASF_EPSILON = 1e-6


# -- reference points -----------------------------------------------------------------------


def das_dennis(n_objectives: int, divisions: int) -> np.ndarray:
    """The structured reference points of Das & Dennis (1998): every point of the unit
    simplex in ``n_objectives`` dimensions whose coordinates are multiples of
    ``1 / divisions``, one per row; there are C(divisions + M - 1, M - 1) of them (91 for
    3 objectives and 12 divisions)."""
    if n_objectives == 1:
        return np.ones((1, 1))
    slots = divisions + n_objectives - 1
    rows = []
    # stars and bars: M - 1 bars among the slots split the divisions into M parts
    for bars in itertools.combinations(range(slots), n_objectives - 1):
        edges = (-1, *bars, slots)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(n_objectives)])
    return np.array(rows, dtype=float) / divisions


def default_divisions(n_objectives: int) -> tuple[int, int]:
    """The paper's divisions for ``n_objectives`` (Deb & Jain, 2014, Table I) as (outer,
    inner): one layer of 12 for 3 objectives and 6 for 5; from 8 objectives, where one
    layer would put every point on the boundary, an outer layer and an inner one (0: none).
    Between the paper's rows, and for 1-2 objectives, the nearest sensible choice."""
    if n_objectives <= 2:
        return 47, 0  # 48 points on the segment, about NSGAIISampler's 50 members
    if n_objectives == 3:
        return 12, 0  # 91 points
    if n_objectives == 4:
        return 8, 0  # 165 points
    if n_objectives == 5:
        return 6, 0  # 210 points
    if n_objectives <= 7:
        return 4, 0  # 126 or 210 points
    if n_objectives <= 10:
        return 3, 2  # 156 points for 8 objectives, 275 for 10
    return 2, 1  # 135 points for 15 objectives


def _reference_set(n_objectives: int, outer: int, inner: int) -> np.ndarray:
    """Das-Dennis points with ``outer`` divisions and, if ``inner`` > 0, a second layer with
    ``inner`` divisions shrunk halfway towards the simplex's centre (the paper's two
    layers)."""
    points = das_dennis(n_objectives, outer)
    if inner > 0:
        centre = 1.0 / n_objectives
        points = np.vstack([points, 0.5 * das_dennis(n_objectives, inner) + 0.5 * centre])
    return points


# -- normalisation, association, niching ----------------------------------------------------


def normalize(losses: np.ndarray, first_front: np.ndarray) -> np.ndarray:
    """Adaptive normalisation (Deb & Jain, 2014, Section IV-C) of the candidates' losses
    (rows; lower is better): translated by the ideal point (each objective's minimum),
    then divided by the intercepts of the hyperplane through the extreme points (each
    axis's minimiser of the achievement scalarising function). Where the hyperplane is
    degenerate (extreme points that coincide or are collinear, or an intercept that is
    not positive) the intercepts are the nadir of the first front (``first_front``: a mask
    of the rows in it), and an objective that still has no span is divided by the span of
    all candidates, or by 1."""
    shifted = losses - losses.min(axis=0)
    return shifted / _intercepts(shifted, first_front)


def _intercepts(shifted: np.ndarray, first_front: np.ndarray) -> np.ndarray:
    m = shifted.shape[1]
    weights = np.full((m, m), _ASF_EPSILON)
    np.fill_diagonal(weights, 1.0)
    # asf[axis, row] = max over objectives of shifted / weight
    asf = (shifted[None, :, :] / weights[:, None, :]).max(axis=2)
    extremes = shifted[asf.argmin(axis=1)]
    tolerance = 1e-10 * max(float(shifted.max(initial=0.0)), 1e-300)
    intercepts = None
    try:
        plane = np.linalg.solve(extremes, np.ones(m))
        with np.errstate(divide="ignore", over="ignore"):
            intercepts = 1.0 / plane
        solved = np.allclose(extremes @ plane, 1.0)
        if not (solved and np.all(np.isfinite(intercepts)) and np.all(intercepts > tolerance)):
            intercepts = None
    except np.linalg.LinAlgError:
        pass
    if intercepts is None:
        intercepts = shifted[first_front].max(axis=0)
    flat = intercepts <= tolerance
    intercepts = np.where(flat, shifted.max(axis=0), intercepts)
    return np.where(intercepts <= tolerance, 1.0, intercepts)


def associate(points: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each normalised point's reference line (the line from the origin through a
    reference point) at the smallest perpendicular distance, and that distance (Deb &
    Jain, 2014, Algorithm 3). Ties go to the first reference point."""
    directions = references / np.linalg.norm(references, axis=1, keepdims=True)
    along = points @ directions.T  # [point, line]: length of the projection
    gaps = points[:, None, :] - along[:, :, None] * directions[None, :, :]
    distances = np.linalg.norm(gaps, axis=2)
    niche = distances.argmin(axis=1)
    return niche, distances[np.arange(len(points)), niche]


def niche_select(
    count: int,
    niche: np.ndarray,
    distance: np.ndarray,
    niche_count: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Niche-preserving selection (Deb & Jain, 2014, Algorithm 4): the indices of
    ``count`` members of the last front (``niche`` and ``distance`` from `associate`),
    given how many already chosen members each reference point has (``niche_count``).

    Repeatedly, among the reference points with the fewest chosen members (ties broken
    by ``rng``), one is taken: with no member yet, it gets its last-front member nearest
    its line; with some, a random one of its last-front members. A reference point with
    no last-front member left drops out."""
    counts = niche_count.astype(float)
    # each reference point's last-front members, by index; one with none is out at once
    # (the paper drops it when it first comes up: the same choices, one draw fewer)
    pools: dict[int, list[int]] = {}
    for member, line in enumerate(niche.tolist()):
        pools.setdefault(line, []).append(member)
    counts[[line for line in range(len(counts)) if line not in pools]] = math.inf
    chosen: list[int] = []
    while len(chosen) < count:
        fewest = np.flatnonzero(counts == counts.min())
        line = int(fewest[rng.integers(len(fewest))])
        pool = pools[line]
        if counts[line] == 0:
            at = min(range(len(pool)), key=lambda k: (distance[pool[k]], k))
        else:
            at = int(rng.integers(len(pool)))
        chosen.append(pool.pop(at))
        counts[line] = counts[line] + 1 if pool else math.inf
    return np.array(chosen, dtype=int)


# -- the sampler ----------------------------------------------------------------------------


class NSGAIIISampler(_ConstrainedSampler):
    """NSGA-III (Deb & Jain, 2014, "An evolutionary many-objective optimization algorithm
    using reference-point-based nondominated sorting approach, Part I"), steady state,
    with constraints as in Part II (Jain & Deb, 2014).

    The population is the ``population_size`` survivors of all completed trials: whole
    fronts of the constrained non-dominated sorting (objectives to maximise are negated)
    while they fit, then members of the first front that does not fit chosen by
    reference-point niching: the candidates are normalised (ideal point, extreme points,
    hyperplane intercepts, see `normalize`), each is associated with its nearest reference
    line (`associate`), and the reference directions with the fewest survivors get
    members first (`niche_select`). Random choices use
    ``derive_seed(seed, "nsga3", "niching", n)`` for n completed trials, so every worker
    chooses the same survivors. Each new trial is one child of two parents picked at
    random among the survivors (with a ``constraints_func``: two binary tournaments, the
    feasible or less violating parent wins, a random one of two feasible ones), with the
    variation operators of `GASampler` (SBX and polynomial mutation for numbers, uniform
    ones for categories). Until ``population_size`` trials have completed, configurations
    are random; conditional spaces as `GASampler`.

    One or two objectives work too (with one, niching picks at random among tied
    values), but there `NSGAIISampler` or `GASampler` is the better choice: the paper's
    reference points matter from three objectives on. Ranking costs O(M N^2) for N
    completed trials and M objectives, once per newly completed trial.

    Args:
        population_size: completed trials that survive (default None: the paper's rule,
            the smallest multiple of 4 not below the number H of reference points, e.g.
            92 for 3 objectives; 48 for one objective).
        reference_points: the reference points, one row of M non-negative numbers per
            point (a direction in normalised objective space; only the direction counts),
            e.g. to aim at a preferred region (default None: Das-Dennis points).
        dividing_parameter: divisions p of each objective for the Das-Dennis points (p + 1
            points per edge of the simplex; default None: `default_divisions`, 12 for 3
            objectives, two layers from 8 objectives). Give it or ``reference_points``,
            not both.
        crossover_prob: probability that a child is crossed over at all (default 1.0, the
            paper's).
        mutation_prob: probability that each parameter is mutated (default None: 1/d for d
            parameters in the parents, the paper's).
        eta_c: SBX distribution index (default 30, the paper's).
        eta_m: polynomial mutation distribution index (default 20, the paper's).
        constraints_func: as for `NSGAIISampler` (a pure function of a completed trial;
            values > 0 are violations; recorded by name only).
        seed: trial n's random numbers come from
            ``numpy.random.default_rng(derive_seed(seed, "nsga3", n))`` (default None:
            drawn at random and recorded).
    """

    _tag = "nsga3"

    def __init__(
        self,
        *,
        population_size: int | None = None,
        reference_points: Sequence[Sequence[float]] | np.ndarray | None = None,
        dividing_parameter: int | None = None,
        crossover_prob: float = 1.0,
        mutation_prob: float | None = None,
        eta_c: float = 30.0,
        eta_m: float = 20.0,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            # the base checks an int; None (the paper's rule) is resolved per study
            population_size=2 if population_size is None else population_size,
            crossover_prob=crossover_prob,
            mutation_prob=mutation_prob,
            eta_c=eta_c,
            eta_m=eta_m,
            constraints_func=constraints_func,
            seed=seed,
        )
        self.population_size: int | None = population_size  # type: ignore[assignment]
        if dividing_parameter is not None:
            dividing_parameter = check.integer(
                dividing_parameter, "dividing_parameter", "NSGAIIISampler", minimum=1
            )
            if reference_points is not None:
                raise OptionError(
                    "give reference_points or dividing_parameter, not both",
                    option="dividing_parameter",
                    owner="NSGAIIISampler",
                )
        self.dividing_parameter = dividing_parameter
        self.reference_points = _checked_points(reference_points)
        self._references: dict[int, np.ndarray] = {}

    def references(self, n_objectives: int) -> np.ndarray:
        """The reference points (one row each) for a study with ``n_objectives``."""
        points = self._references.get(n_objectives)
        if points is None:
            if self.reference_points is not None:
                points = np.array(self.reference_points)
            elif self.dividing_parameter is not None:
                points = das_dennis(n_objectives, self.dividing_parameter)
            else:
                points = _reference_set(n_objectives, *default_divisions(n_objectives))
            self._references[n_objectives] = points
        return points

    def _size(self, study: StudyReader) -> int:
        if self.population_size is not None:
            return self.population_size
        count = len(study.directions)
        if count == 1:
            return 48
        return 4 * math.ceil(len(self.references(count)) / 4)

    def _rank(
        self, study: StudyReader, state: _StudyState, complete: list[FrozenTrial]
    ) -> list[FrozenTrial]:
        """The survivors first, then the others, each by front then trial number."""
        references = self.references(len(study.directions))
        if references.shape[1] != len(study.directions):
            raise SamplerError(
                f"NSGAIIISampler's reference_points have {references.shape[1]} coordinates; "
                f"study {study.name!r} has {len(study.directions)} objectives"
            )
        if not complete:
            return []
        losses = _finite(_losses(complete, study.directions))
        rank = fronts(constrained_domination(losses, self._violations(state, complete)))
        rng = np.random.default_rng(derive_seed(self.seed, "nsga3", "niching", len(complete)))
        kept = survivors(losses, rank, references, self._size(study), rng)
        order = np.lexsort((np.array([t.number for t in complete]), rank, ~kept))
        return [complete[i] for i in order]

    def _parents(
        self, state: _StudyState, population: list[FrozenTrial], rng: np.random.Generator
    ) -> tuple[FrozenTrial, FrozenTrial]:
        """Two different survivors at random (Part I); with constraints, two binary
        tournaments on the violation (Part II)."""
        if self.constraints_func is None:
            first, second = rng.choice(len(population), size=2, replace=False)
            return population[int(first)], population[int(second)]
        return self._tournament(state, population, rng), self._tournament(state, population, rng)

    def _tournament(
        self, state: _StudyState, population: list[FrozenTrial], rng: np.random.Generator
    ) -> FrozenTrial:
        one, other = (population[int(i)] for i in rng.choice(len(population), 2, replace=False))
        coin = rng.random()  # drawn always, so the stream does not depend on the outcome
        mine, theirs = self._violation(state, one), self._violation(state, other)
        if mine != theirs:
            return one if mine < theirs else other
        return one if coin < 0.5 else other


def survivors(
    losses: np.ndarray,
    rank: np.ndarray,
    references: np.ndarray,
    size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """A mask of the ``size`` survivors (all when there are no more): the fronts of
    ``rank`` that fit whole, then the last front's members by `niche_select` (Deb & Jain,
    2014, Algorithm 1)."""
    if len(rank) <= size:
        return np.ones(len(rank), dtype=bool)
    last = np.sort(rank)[size - 1]
    kept = rank < last
    candidates = rank <= last
    if candidates.sum() == size:
        return candidates
    points = normalize(losses[candidates], rank[candidates] == rank[candidates].min())
    niche, distance = associate(points, references)
    before = kept[candidates]
    niche_count = np.bincount(niche[before], minlength=len(references))
    picked = niche_select(
        int(size - kept.sum()), niche[~before], distance[~before], niche_count, rng
    )
    kept[np.flatnonzero(rank == last)[picked]] = True
    return kept


def _checked_points(points: object) -> tuple[tuple[float, ...], ...] | None:
    """User reference points as a tuple of rows (plain data for the record), or None."""
    if points is None:
        return None
    try:
        array = np.array(points, dtype=float)
    except (TypeError, ValueError):
        array = np.empty(0)
    valid = (
        array.ndim == 2
        and array.size > 0
        and bool(np.all(np.isfinite(array)))
        and bool(np.all(array >= 0))
        and bool(np.all(array.sum(axis=1) > 0))
    )
    if not valid:
        raise OptionError(
            "reference_points must be a 2-D array, one row of M non-negative numbers (not all "
            f"0) per reference point, got {points!r}",
            option="reference_points",
            owner="NSGAIIISampler",
        )
    return tuple(tuple(float(x) for x in row) for row in array)
