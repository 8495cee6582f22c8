"""Steady-state genetic samplers: `GASampler` (one objective) and `NSGAIISampler` (several
objectives, with constraints; Deb et al., 2002), both with SBX crossover and polynomial
mutation in the unit cube (Deb & Agrawal, 1995), in plain numpy.
"""

from __future__ import annotations

import math
import random
import threading
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from tuningfork import _check as check
from tuningfork._pareto import signs
from tuningfork.exceptions import OptionError, SamplerError
from tuningfork.repro import derive_seed
from tuningfork.samplers._history import _crowding
from tuningfork.samplers.base import Sampler
from tuningfork.samplers.random import RandomSampler
from tuningfork.space import Categorical, Distribution, Value
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import StudyReader

__all__ = ["GASampler", "NSGAIISampler"]

Child = dict[str, tuple[Distribution, Value]]
"""A proposed configuration: each parameter's distribution (from a parent) and value."""

# SBX is applied to each variable with this probability (Deb's reference code), so that a
# child keeps some of its first parent's coordinates as they are.
_PER_VARIABLE_CROSSOVER = 0.5


# -- variation operators in the unit cube ---------------------------------------------------


def sbx(x1: float, x2: float, u: float, eta: float) -> tuple[float, float]:
    """Bounded simulated binary crossover (Deb & Agrawal, 1995) of two coordinates in
    [0, 1] with a uniform number ``u``: two children, spread around the parents with the
    distribution index ``eta`` (larger: closer to the parents), never outside [0, 1]."""
    low, high = min(x1, x2), max(x1, x2)
    if high - low < 1e-14:
        return x1, x2
    exponent = 1.0 / (eta + 1.0)

    def spread(beta: float) -> float:
        # the spread factor is drawn from the part of the distribution that stays in bounds
        alpha = 2.0 - beta ** -(eta + 1.0)
        if u <= 1.0 / alpha:
            return float((u * alpha) ** exponent)
        return float((1.0 / (2.0 - u * alpha)) ** exponent)

    width = high - low
    c1 = 0.5 * (low + high - spread(1.0 + 2.0 * low / width) * width)
    c2 = 0.5 * (low + high + spread(1.0 + 2.0 * (1.0 - high) / width) * width)
    return min(max(c1, 0.0), 1.0), min(max(c2, 0.0), 1.0)


def polynomial_mutation(x: float, u: float, eta: float) -> float:
    """Bounded polynomial mutation (Deb & Agrawal, 1995; Deb's 1999 bounded form) of a
    coordinate in [0, 1] with a uniform number ``u``; the result stays in [0, 1]."""
    power = 1.0 / (eta + 1.0)
    if u < 0.5:
        base = 2.0 * u + (1.0 - 2.0 * u) * (1.0 - x) ** (eta + 1.0)
        delta = base**power - 1.0
    else:
        base = 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * x ** (eta + 1.0)
        delta = 1.0 - base**power
    return min(max(x + delta, 0.0), 1.0)


# -- the shared machinery -------------------------------------------------------------------


class _StudyState:
    """What a sampler keeps per study: the population (rebuilt when a trial completes) and
    the child of each trial that has started sampling."""

    def __init__(self) -> None:
        self.n_complete = -1
        self.population: list[FrozenTrial] = []  # best first
        self.children: dict[int, Child | None] = {}
        self.violations: dict[int, float] = {}


class _GeneticSampler(Sampler):
    """Steady state: each new trial is one child of two parents chosen by binary
    tournament from the population, a ranking of the completed trials."""

    seed: int  # never None here: drawn when not given
    _tag = ""

    def __init__(
        self,
        *,
        population_size: int,
        crossover_prob: float,
        mutation_prob: float | None,
        eta_c: float,
        eta_m: float,
        seed: int | None,
    ) -> None:
        owner = type(self).__name__
        self.population_size = check.integer(population_size, "population_size", owner, minimum=2)
        self.crossover_prob = check.number(crossover_prob, "crossover_prob", owner, low=0, high=1)
        self.mutation_prob = (
            None
            if mutation_prob is None
            else check.number(mutation_prob, "mutation_prob", owner, low=0, high=1)
        )
        self.eta_c = check.number(eta_c, "eta_c", owner, low=0, high=math.inf, high_open=True)
        self.eta_m = check.number(eta_m, "eta_m", owner, low=0, high=math.inf, high_open=True)
        seed = check.seed(seed, owner)
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self._random = RandomSampler(seed=self.seed)
        self._lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[StudyReader, _StudyState] = (
            weakref.WeakKeyDictionary()
        )

    def sample(
        self, study: StudyReader, trial: FrozenTrial, name: str, distribution: Distribution
    ) -> Value:
        """The trial's child's value of ``name``; a random value (`RandomSampler` with the
        same seed) while the population is not full, or for a parameter that neither
        parent holds with this distribution."""
        with self._lock:
            state = self._states.get(study)
            if state is None:
                state = self._states[study] = _StudyState()
            if trial.number not in state.children:
                # forget the children of finished trials (a trial asks until it ends)
                count = len(study)
                state.children = {
                    n: c
                    for n, c in state.children.items()
                    if n >= count or not study.state(n).is_finished
                }
                state.children[trial.number] = self._child(study, state, trial.number)
            child = state.children[trial.number]
        if child is not None and name in child:
            own, value = child[name]
            if own is distribution or own.same_as(distribution):
                return value
        return self._random.sample(study, trial, name, distribution)

    def _child(self, study: StudyReader, state: _StudyState, number: int) -> Child | None:
        """Trial ``number``'s child, or None while the population is not full."""
        if state.n_complete != study.n_complete:
            complete = [t for t in study.get_trials([TrialState.COMPLETE]) if t.values]
            state.population = self._rank(study, state, complete)[: self._size(study)]
            state.n_complete = study.n_complete
        population = state.population
        if len(population) < self._size(study):
            return None
        rng = np.random.default_rng(derive_seed(self.seed, self._tag, number))
        first, second = self._parents(state, population, rng)
        return self._mate(first, second, rng)

    def _size(self, study: StudyReader) -> int:
        """The population size for ``study`` (a subclass may derive it from the study)."""
        return self.population_size

    def _parents(
        self, state: _StudyState, population: list[FrozenTrial], rng: np.random.Generator
    ) -> tuple[FrozenTrial, FrozenTrial]:
        """Two binary tournaments: the population is sorted best first, so the lower index
        wins."""
        first = population[int(rng.integers(len(population), size=2).min())]
        second = population[int(rng.integers(len(population), size=2).min())]
        return first, second

    def _rank(
        self, study: StudyReader, state: _StudyState, complete: list[FrozenTrial]
    ) -> list[FrozenTrial]:
        """The completed trials, best first."""
        raise NotImplementedError

    def _mate(self, first: FrozenTrial, second: FrozenTrial, rng: np.random.Generator) -> Child:
        """SBX and polynomial mutation for numbers, uniform crossover and mutation for
        categories, over every parameter either parent holds."""
        names = sorted(set(first.params) | set(second.params))
        default = 1.0 / max(len(names), 1)  # parents may hold no parameter at all
        mutation = self.mutation_prob if self.mutation_prob is not None else default
        crossing = bool(rng.random() < self.crossover_prob)
        child: Child = {}
        for name in names:
            # the same count of draws for every parameter keeps the stream easy to follow
            cross, u_cross, side, mutate, u_mutate = rng.random(5)
            mine = first if name in first.params else second
            dist = mine.distributions[name]
            other = second.distributions.get(name)
            both = mine is first and other is not None and (other is dist or other.same_as(dist))
            value = mine.params[name]
            if isinstance(dist, Categorical):
                if both and crossing and side < 0.5:
                    value = second.params[name]
                if mutate < mutation:
                    value = dist.from_unit(u_mutate)  # a uniform choice
            else:
                x = dist.to_unit(value)
                if both and crossing and cross < _PER_VARIABLE_CROSSOVER:
                    pair = sbx(x, dist.to_unit(second.params[name]), u_cross, self.eta_c)
                    x = pair[0] if side < 0.5 else pair[1]
                if mutate < mutation:
                    x = polynomial_mutation(x, u_mutate, self.eta_m)
                value = dist.from_unit(float(x))  # a Python float: from_unit may return it
            child[name] = (dist, value)
        return child


def _losses(trials: Sequence[FrozenTrial], directions: Sequence[str]) -> np.ndarray:
    """Objective values as losses (maximised ones negated); NaN ranks last."""
    values = np.array([t.values for t in trials], dtype=float).reshape(len(trials), -1)
    losses = values * signs(directions)
    return np.where(np.isnan(losses), math.inf, losses)


def _finite(losses: np.ndarray) -> np.ndarray:
    """Losses with each infinite one just past the worst finite one, for measures that
    need finite spans (crowding, normalisation)."""
    finite = np.isfinite(losses)
    top = np.where(finite, np.abs(losses), 0.0).max() + 1.0
    return np.where(finite, losses, top)


# -- GA -------------------------------------------------------------------------------------


class GASampler(_GeneticSampler):
    """A steady-state genetic algorithm for one objective.

    The population is the ``population_size`` best completed trials. Each new trial is one
    child: two parents picked by binary tournament, simulated binary crossover (SBX, with
    probability ``crossover_prob``, then to each variable with probability 1/2) and
    polynomial mutation (Deb & Agrawal, 1995, "Simulated binary crossover for continuous
    search space"), in the unit cube of `Distribution.to_unit` (so log scales are exact;
    ints and steps are rounded by `Distribution.from_unit`). Categorical parameters get
    uniform crossover (either parent's value) and uniform mutation (a random choice).

    Until ``population_size`` trials have completed, configurations are random
    (`RandomSampler` with the same seed). Define-by-run and conditional spaces: the child
    covers every parameter either parent holds (from the first parent where only one
    does); a parameter outside it, or asked with another distribution, is drawn at random.
    Pruned and failed trials are not part of the population.

    Args:
        population_size: completed trials in the population (default 50, at least 2).
        crossover_prob: probability that a child is crossed over at all (default 0.9).
        mutation_prob: probability that each parameter is mutated (default None: 1/d for
            d parameters in the parents).
        eta_c: SBX distribution index (default 15; larger keeps children nearer their
            parents).
        eta_m: polynomial mutation distribution index (default 20).
        seed: trial n's random numbers come from
            ``numpy.random.default_rng(derive_seed(seed, "ga", n))``, so any process
            proposes the same child from the same log (default None: drawn at random and
            recorded).
    """

    _tag = "ga"

    def __init__(
        self,
        *,
        population_size: int = 50,
        crossover_prob: float = 0.9,
        mutation_prob: float | None = None,
        eta_c: float = 15.0,
        eta_m: float = 20.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            population_size=population_size,
            crossover_prob=crossover_prob,
            mutation_prob=mutation_prob,
            eta_c=eta_c,
            eta_m=eta_m,
            seed=seed,
        )

    def _rank(
        self, study: StudyReader, state: _StudyState, complete: list[FrozenTrial]
    ) -> list[FrozenTrial]:
        """By loss (the value, negated when maximised), then trial number."""
        if len(study.directions) != 1:
            raise SamplerError(
                f"GASampler supports single-objective studies; study {study.name!r} has "
                f"{len(study.directions)} objectives. Use NSGAIISampler for it."
            )
        if not complete:
            return []
        losses = _losses(complete, study.directions)[:, 0]
        order = np.lexsort((np.array([t.number for t in complete]), losses))
        return [complete[i] for i in order]


_C = TypeVar("_C", bound="_ConstrainedSampler")


# -- NSGA-II --------------------------------------------------------------------------------


def constrained_domination(losses: np.ndarray, violations: np.ndarray) -> np.ndarray:
    """``[i, j]`` True where trial i constrained-dominates trial j (Deb, 2000): a feasible
    trial (violation 0) dominates an infeasible one, of two infeasible ones the smaller
    total violation dominates, and two feasible ones compare by Pareto dominance of their
    losses (lower is better in every column)."""
    count = len(losses)
    no_worse = np.ones((count, count), dtype=bool)
    # a column at a time: about 25x faster than reducing a (count, count, M) array over M
    for column in losses.T:
        no_worse &= column[:, None] <= column[None, :]
    # better in some column = not no worse the other way round
    pareto = no_worse & ~no_worse.T
    feasible = violations <= 0.0
    if feasible.all():
        return pareto
    both = feasible[:, None] & feasible[None, :]
    neither = ~feasible[:, None] & ~feasible[None, :]
    return (
        (both & pareto)
        | (feasible[:, None] & ~feasible[None, :])
        | (neither & (violations[:, None] < violations[None, :]))
    )


def fronts(dominates: np.ndarray) -> np.ndarray:
    """Fast non-dominated sorting (Deb et al., 2002): each point's front, 0 for the points
    nothing dominates, 1 for those only front 0 dominates, and so on."""
    count = len(dominates)
    rank = np.zeros(count, dtype=int)
    dominated_by = dominates.sum(axis=0)
    left = np.ones(count, dtype=bool)
    level = 0
    while left.any():
        front = left & (dominated_by == 0)
        rank[front] = level
        left &= ~front
        dominated_by = dominated_by - dominates[front].sum(axis=0)
        level += 1
    return rank


class _ConstrainedSampler(_GeneticSampler):
    """A genetic sampler for several objectives with a ``constraints_func`` (constrained
    domination, Deb, 2000): the option's check, its record by name, and the violations."""

    def __init__(
        self,
        *,
        population_size: int,
        crossover_prob: float,
        mutation_prob: float | None,
        eta_c: float,
        eta_m: float,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None,
        seed: int | None,
    ) -> None:
        super().__init__(
            population_size=population_size,
            crossover_prob=crossover_prob,
            mutation_prob=mutation_prob,
            eta_c=eta_c,
            eta_m=eta_m,
            seed=seed,
        )
        if constraints_func is not None and not callable(constraints_func):
            raise OptionError(
                f"constraints_func must be a function of a FrozenTrial or None, "
                f"got {constraints_func!r}",
                option="constraints_func",
                owner=type(self).__name__,
            )
        self.constraints_func = constraints_func

    @classmethod
    def from_record(cls: type[_C], record: Mapping[str, Any]) -> _C:
        """A constraints function is recorded by its name only (data, not code): it comes
        back as None, with a warning; pass it again to `load_study` with a new sampler."""
        name = record.get("constraints_func")
        if isinstance(name, str):
            warnings.warn(
                f"{cls.__name__} was run with constraints_func {name!r}, which is recorded "
                "by name only; the re-created sampler has no constraints. Pass "
                f"sampler={cls.__name__}(constraints_func=..., seed=...) to load_study to go "
                "on with them.",
                stacklevel=4,
            )
            record = {key: value for key, value in record.items() if key != "constraints_func"}
        return super().from_record(record)

    def _violation(self, state: _StudyState, trial: FrozenTrial) -> float:
        total = state.violations.get(trial.number)
        if total is None:
            assert self.constraints_func is not None
            values = np.asarray(self.constraints_func(trial), dtype=float).ravel()
            values = np.where(np.isnan(values), math.inf, values)
            total = state.violations[trial.number] = float(np.maximum(values, 0.0).sum())
        return total

    def _violations(self, state: _StudyState, trials: Sequence[FrozenTrial]) -> np.ndarray:
        """Each trial's total violation (all 0 without a ``constraints_func``)."""
        if self.constraints_func is None:
            return np.zeros(len(trials))
        return np.array([self._violation(state, t) for t in trials])


class NSGAIISampler(_ConstrainedSampler):
    """NSGA-II (Deb et al., 2002, "A fast and elitist multiobjective genetic algorithm:
    NSGA-II"), steady state, with constrained domination (Deb, 2000, "An efficient
    constraint handling method for genetic algorithms").

    The completed trials are ranked by fast non-dominated sorting (objectives to maximise
    are negated) and, within a front, by crowding distance (largest first); the population
    is the ``population_size`` best of them (NSGA-II's elitist selection over everything
    seen). Each new trial is one child of two parents chosen by binary tournament on
    (front, crowding distance), with the variation operators of `GASampler` (SBX and
    polynomial mutation for numbers, uniform ones for categories). Any number of
    objectives is handled this way (from three on, `NSGAIIISampler`'s reference points
    keep the front spread better), and one objective works too (the fronts are then the
    distinct values). Ranking costs O(M N^2) for N completed trials and M objectives, once
    per newly completed trial.

    Args:
        population_size, crossover_prob, mutation_prob, eta_c, eta_m: as for `GASampler`.
        constraints_func: a function of a completed `FrozenTrial` giving its constraint
            values; a value > 0 is a violation, and the trial's total violation is the sum
            of the positive ones (a NaN counts as an infinite violation). Samplers never
            write to the log, so it is called again whenever a process ranks the trial:
            it must be pure, e.g. read what the objective stored in ``trial.user_attrs``.
            The study's record keeps only its name, so pass it again when loading the
            study (``load_study(..., sampler=NSGAIISampler(constraints_func=f, ...))``);
            a sampler re-created from the record alone has no constraints.
        seed: as for `GASampler` (trial n's numbers come from
            ``derive_seed(seed, "nsga2", n)``).
    """

    _tag = "nsga2"

    def __init__(
        self,
        *,
        population_size: int = 50,
        crossover_prob: float = 0.9,
        mutation_prob: float | None = None,
        eta_c: float = 15.0,
        eta_m: float = 20.0,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            population_size=population_size,
            crossover_prob=crossover_prob,
            mutation_prob=mutation_prob,
            eta_c=eta_c,
            eta_m=eta_m,
            constraints_func=constraints_func,
            seed=seed,
        )

    def _rank(
        self, study: StudyReader, state: _StudyState, complete: list[FrozenTrial]
    ) -> list[FrozenTrial]:
        """By front, then crowding distance (largest first), then trial number."""
        if not complete:
            return []
        losses = _losses(complete, study.directions)
        violations = self._violations(state, complete)
        rank = fronts(constrained_domination(losses, violations))
        spread = _finite(losses)
        crowd = np.zeros(len(complete))
        for level in np.unique(rank):
            members = rank == level
            crowd[members] = _crowding(spread[members])
        order = np.lexsort((np.array([t.number for t in complete]), -crowd, rank))
        return [complete[i] for i in order]
