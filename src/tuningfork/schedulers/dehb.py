"""DEHB (Awad, Mallik & Hutter, 2021, "DEHB: Evolutionary Hyperband for scalable, robust and
efficient hyperparameter optimization", IJCAI): differential evolution (DE) over Hyperband's
budgets, one sub-population per budget, in Hyperband's brackets of successive halving.

Every decision is derived from the study's trials: a sub-population member is the best
trial evaluated in its slot (what DE's "replace the target if better" yields in any order of
completion), and slots, targets and random draws are numbered from the seed. Choices
where the paper and the authors' code (dehb 0.1.2) differ or are silent: a rung i > 0
breeds, as in the code, from the top n_i of the lower budget's whole sub-population
(``parents="budget"``); ``parents="bracket"`` takes what successive halving promotes from
rung i - 1 of the same bracket instance instead. Median regret over 30 seeds at 100 units
of `benchmarks/multifidelity.py`, "budget" against "bracket": multi-fidelity Hartmann6
0.433 / 0.511, Hartmann3 0.0013 / 0.0036, Branin 0.018 / 0.035, LCBench 2.68 / 2.98 (on
the 4-d toy of the tests "bracket" was better: 0.0052 against 0.0078 after 5103 steps). As
in the code, only the very first bracket's first rung is purely random, later brackets'
first rungs evolve from their budget's sub-population already in the first iteration
(random first rungs throughout that iteration: 0.0089). A trial below the maximum budget
ends PAUSED (its evaluation at that budget is done; DEHB never resumes it: a higher rung
re-runs configurations fresh), so that only maximum-budget evaluations COMPLETE.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tuningfork import _check as check
from tuningfork._experimental import experimental
from tuningfork.exceptions import SchedulerError, SpaceError
from tuningfork.repro import derive_seed
from tuningfork.schedulers._halving import _sign
from tuningfork.schedulers._rungs import (
    Bracket,
    check_budgets,
    hyperband_brackets,
    rungs_message,
    value_at,
)
from tuningfork.schedulers.base import Assignment, Decision, Scheduler
from tuningfork.space import Distribution, Space, Value
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import StudyReader

_MUTATIONS = {"rand1": 3, "rand2": 5, "best1": 3, "currenttobest1": 3}
"""DE mutation strategies and the number of distinct parents each draws (best included)."""
_CROSSOVERS = ("bin", "exp")
_ENDED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.PAUSED)
_KEYS = ("instance", "rung", "slot", "target")
"""The system attributes that mark a trial as one of DEHB's slots."""

Slot = tuple[int, int, int]
"""(bracket instance, rung, index in the rung)."""
_Entry = tuple[int, int, int, int, float, "float | None", bool]
"""A DEHB trial: instance, rung, slot, target, budget, value there, ended."""
Parent = FrozenTrial | tuple[float, int]
"""A DE parent: an evaluated trial, or (budget, target) for a sub-population member not
evaluated yet, which stands at its initial random point."""


@dataclass
class _State:
    """What DEHB knows about one study: derived from its trials, and brought up to date at
    every ask by re-reading only the trials that are new or not settled yet."""

    sign: float
    cells: dict[tuple[int, int], dict[int, tuple[FrozenTrial, bool]]] = field(default_factory=dict)
    """(instance, rung) -> slot -> (its trial, whether the trial has ended)."""
    members: dict[float, dict[int, tuple[float, FrozenTrial]]] = field(default_factory=dict)
    """budget -> target -> (value, trial): the evaluated sub-population members."""
    entries: dict[int, tuple[FrozenTrial, _Entry | None]] = field(default_factory=dict)
    """trial number -> (the trial as last read, what it means to DEHB)."""
    by_target: dict[tuple[float, int], set[int]] = field(default_factory=dict)
    open: set[int] = field(default_factory=set)
    """Trials that may still change (running, waiting): re-read at every ask."""
    seen: int = 0
    """Trials read so far (trial numbers below it)."""
    last_instance: int = -1
    first_open: int = 0
    """No bracket instance below it has a free slot (a slot, once taken, stays taken)."""
    recorded: _RecordedSpace = field(default_factory=lambda: _RecordedSpace())
    space: Space | None = None
    """The space of the current ask (the given one, else the recorded one)."""


@experimental("0.1.0")
class DEHB(Scheduler):
    """DEHB: Hyperband whose configurations after the first iteration are bred by DE.

    Args:
        min_budget, max_budget, eta: Hyperband's budgets (whole numbers of the steps the
            objective reports) and reduction factor; the brackets are
            `hyperband_brackets`' (with R = 81 and eta = 3, those of Li et al.'s Table 1).
        mutation_factor: DE's F, the scale of the difference vectors (default 0.5).
        crossover_prob: DE's CR, the probability that a coordinate comes from the mutant
            (default 0.5).
        strategy: ``"<mutation>_<crossover>"``: mutation ``rand1`` (default), ``rand2``,
            ``best1`` or ``currenttobest1``; crossover ``bin`` (default) or ``exp``.
        parents: where mutation parents for a rung i > 0 come from: ``"budget"``
            (default, as the authors' code): the best n_i of the sub-population of
            b_(i-1); ``"bracket"``: the n_i that successive halving promotes from rung
            i - 1 of the same bracket instance.
        seed: seeds DE's draws (default: the study's seed).
        rungs: ``"down"`` (default): rung budgets counted down from max_budget as in
            Li et al. (2018), ``"up"``: up from min_budget (see `Hyperband`);
            `rung_budgets` returns them.

    How it runs. Bracket instances j = 0, 1, ... cycle through s = s_max .. 0 as in
    Hyperband; a trial fills one slot (j, rung i, index k) and trains FRESH, from step 1 up
    to the rung's budget b_i (``trial.budget``; it is never resumed). Below max_budget the
    trial is paused at b_i and stays PAUSED: it was evaluated at a lower fidelity and only
    informs DE; trials at max_budget complete, so `Study.best_trial` only reflects
    max-budget evaluations. Each budget b has a sub-population of as many members as its
    largest rung; slot (j, i, k) targets member ``(slots at b_i before it) mod size``.

    Every sub-population starts as random points in the unit cube (one per member, drawn
    from the seed); a member is replaced by the first trial evaluated in its slot.
    The first iteration (instances 0 .. s_max) fills them: the very first bracket's first
    rung evaluates the initial population of the smallest budget, and in rung i > 0 of a
    first-iteration instance the best n_i of its rung i - 1 are re-run at b_i (successive
    halving's promotion). Every other slot (j, i, k) is bred by DE. Parents for a rung
    i > 0 come from ``parents`` (see above), topped up, when fewer than the strategy
    needs, from the sub-population of b_(i-1), then from all sub-populations, then with
    random points; a bracket's first rung
    draws its parents from its own budget's sub-population (so, as in the authors'
    implementation, the first rungs of the other first-iteration brackets already evolve
    from what earlier brackets found). Mutation, crossover with the target member and
    repair (a coordinate outside [0, 1] is redrawn uniformly, the authors' default) work in
    the space's unit cube (`Space.encode`). Selection: the member of a slot is the best
    trial evaluated in it so far.

    Asynchrony (the paper's asynchronous DEHB, "immediate" update): nothing waits for a
    generation. A rung of an instance opens once the rung below it has ended (successive
    halving needs it whole to pick its top configurations); a worker that finds no open
    slot starts the next bracket instance instead of waiting, so several brackets run at
    once, and every proposal uses the sub-populations as they are at that ask. Slots are
    claimed in the log, so two workers never fill one slot.

    Before the space is known (define-by-run, no trial recorded yet, no space given to
    ``ask``) a new configuration is left to the study's sampler.
    """

    pauses = True

    def __init__(
        self,
        min_budget: float = 1,
        max_budget: float = 81,
        eta: float = 3,
        *,
        mutation_factor: float = 0.5,
        crossover_prob: float = 0.5,
        strategy: str = "rand1_bin",
        parents: str = "budget",
        seed: int | None = None,
        rungs: str = "down",
    ) -> None:
        brackets = hyperband_brackets(min_budget, max_budget, eta, rungs=rungs, owner="DEHB")
        self.parents = check.choice(
            parents, ("budget", "bracket"), "parents", "DEHB", error=SchedulerError
        )
        self.mutation_factor = check.number(
            mutation_factor,
            "mutation_factor",
            "DEHB",
            low=0,
            high=2,
            low_open=True,
            hint=" (0.5 is usual)",
            error=SchedulerError,
        )
        self.crossover_prob = check.number(
            crossover_prob,
            "crossover_prob",
            "DEHB",
            low=0,
            high=1,
            hint=" (0.5 is usual)",
            error=SchedulerError,
        )
        strategies = [f"{m}_{c}" for m in _MUTATIONS for c in _CROSSOVERS]
        self.strategy = check.choice(strategy, strategies, "strategy", "DEHB", error=SchedulerError)
        self.min_budget, self.max_budget = check_budgets(min_budget, max_budget, eta, owner="DEHB")
        self.eta = eta
        self.rungs = rungs
        self.seed = check.seed(seed, "DEHB", error=SchedulerError)
        mutation, _, crossover = self.strategy.partition("_")
        self._mutation = mutation
        self._crossover = crossover
        self._brackets = brackets
        self._population_sizes = _population_sizes(brackets)
        self._slots_before = _slots_before(brackets)
        self._lock = threading.Lock()
        self._cached: tuple[Any, _State] | None = None  # (a study's reader, its state)

    @property
    def bracket_table(self) -> list[Bracket]:
        """The brackets, s = s_max first: rung budgets r_i and trials per rung n_i."""
        return list(self._brackets)

    def rung_budgets(self) -> tuple[tuple[int, ...], ...]:
        """The rung budgets, in whole steps, of each bracket, s = s_max first (see
        `ASHA.rung_budgets`)."""
        return tuple(bracket.budgets for bracket in self._brackets)

    def rung_table(self) -> dict[int, tuple[int, ...]]:
        return {bracket.s: bracket.budgets for bracket in self._brackets}

    def start_message(self) -> str:
        limits = (self.min_budget, self.max_budget)
        return rungs_message(type(self).__name__, self.rung_budgets(), limits, self.eta, self.rungs)

    @property
    def population_sizes(self) -> dict[float, int]:
        """The size of each budget's sub-population: its largest rung over the brackets."""
        return dict(self._population_sizes)

    # -- the answer to a report -----------------------------------------------------------

    def decide(self, study: StudyReader, trial: FrozenTrial, step: int, value: float) -> Decision:
        attrs = trial.system_attrs
        budget = attrs.get("budget")
        if budget is None or not all(key in attrs for key in _KEYS):
            return Decision.CONTINUE  # not one of DEHB's slots (e.g. enqueued before it)
        if step >= budget and budget < self.max_budget:
            return Decision.PAUSE  # evaluated at its budget: DEHB never resumes it
        return Decision.CONTINUE

    # -- the next trial to run ------------------------------------------------------------

    def assign(self, study: StudyReader, space: Space | None) -> Assignment:
        with self._lock:
            state = self._state(study, space)
            j, i, k = self._free_slot(state)
            params = self._configuration(study, state, (j, i, k), self.target_of(j, i, k))
        bracket = self.bracket_of(j)
        return Assignment(
            budget=bracket.budgets[i],
            claims=(f"dehb:{j}:{i}:{k}",),
            system_attrs={
                "bracket": bracket.s,
                "instance": j,
                "rung": i,
                "slot": k,
                "target": self.target_of(j, i, k),
            },
            params=params,
        )

    def bracket_of(self, instance: int) -> Bracket:
        """Bracket instance j runs bracket s_max - (j mod (s_max + 1))."""
        return self._brackets[instance % len(self._brackets)]

    def target_of(self, instance: int, rung: int, slot: int) -> int:
        """The sub-population member that slot (instance, rung, slot) competes with."""
        budget = self.bracket_of(instance).budgets[rung]
        before = self._slots_before[budget]
        per_iteration = before[-1]
        n = len(self._brackets)
        count = instance // n * per_iteration + before[instance % n] + slot
        return count % self._population_sizes[budget]

    def _free_slot(self, state: _State) -> Slot:
        """The first free slot whose rung is open, oldest bracket instance first; else the
        first slot of a new instance."""
        while state.first_open <= state.last_instance and self._full(state, state.first_open):
            state.first_open += 1
        for j in range(state.first_open, state.last_instance + 1):
            slot = self._free_in(state, j)
            if slot is not None:
                return slot
        return (state.last_instance + 1, 0, 0)

    def _full(self, state: _State, j: int) -> bool:
        sizes = self.bracket_of(j).sizes
        return all(len(state.cells.get((j, i), {})) >= n for i, n in enumerate(sizes))

    def _free_in(self, state: _State, j: int) -> Slot | None:
        bracket = self.bracket_of(j)
        for i, size in enumerate(bracket.sizes):
            taken = state.cells.get((j, i), {})
            if len(taken) >= size:
                continue
            if i > 0 and not self._rung_ended(state, j, i - 1):
                return None  # successive halving needs the rung below whole: try another
            return (j, i, min(set(range(size)) - set(taken)))
        return None

    def _rung_ended(self, state: _State, j: int, i: int) -> bool:
        bracket = self.bracket_of(j)
        taken = state.cells.get((j, i), {})
        return len(taken) >= bracket.sizes[i] and all(ended for _, ended in taken.values())

    # -- configurations -------------------------------------------------------------------

    def _configuration(
        self, study: StudyReader, state: _State, slot: Slot, target: int
    ) -> dict[str, Value]:
        j, i, k = slot
        if j < len(self._brackets) and i > 0:  # first iteration: successive halving
            promoted = self._promoted(state, j, i)
            if k < len(promoted):
                return dict(promoted[k].params)
        space = state.space
        if space is None:
            return {}  # the study's sampler draws it
        seed = self._seed(study)
        budget = self.bracket_of(j).budgets[i]
        if j == 0 and i == 0:  # the very first bracket: the initial random population
            return space.decode(self._initial(seed, space, budget, target))
        rng = np.random.default_rng(derive_seed(seed, "dehb", j, i, k))
        member = state.members.get(budget, {}).get(target)
        current: Parent = member[1] if member is not None else (budget, target)
        pool: list[Parent | None] = [p for p in self._pool(state, j, i) if not _same(p, current)]
        need = _MUTATIONS[self._mutation]
        pool += [None] * (need - len(pool))  # None: a fresh random point
        if self._mutation in ("best1", "currenttobest1"):  # the pool's best, then two others
            picks = [0, *(1 + rng.choice(len(pool) - 1, need - 1, replace=False))]
        else:
            picks = list(rng.choice(len(pool), need, replace=False))
        vectors = [self._vector(pool[p], seed, space, rng) for p in picks]
        target_vector = self._vector(current, seed, space, rng)
        mutant = self._mutate(vectors, target_vector)
        child = self._cross(target_vector, mutant, rng)
        outside = (child < 0.0) | (child > 1.0)
        child[outside] = rng.random(int(outside.sum()))
        return space.decode(child)

    def parent_pool(self, study: StudyReader, instance: int, rung: int) -> list[Parent]:
        """Where DE draws mutation parents for a slot of (instance, rung), best first: trials,
        and ``(budget, target)`` for a sub-population member not evaluated yet (its initial
        random point). For inspection and tests; see the class docstring."""
        with self._lock:
            return self._pool(self._state(study, None), instance, rung)

    def _pool(self, state: _State, j: int, i: int) -> list[Parent]:
        budgets = self.bracket_of(j).budgets
        if i == 0:
            return self._members(state, budgets[0])  # holds the target: DE leaves it out
        need = _MUTATIONS[self._mutation]
        if self.parents == "budget":  # the best n_i of the lower budget's sub-population
            pool: list[Parent] = list(self._ranked(state, budgets[i - 1])[: self._size(j, i)])
        else:  # what successive halving promotes from the rung below in this instance
            pool = list(self._promoted(state, j, i))
        if len(pool) < need:
            pool = _merge(pool, self._members(state, budgets[i - 1]))
        if len(pool) < need:
            for budget in sorted(state.members, reverse=True):
                pool = _merge(pool, self._ranked(state, budget))
        return pool

    def _size(self, j: int, i: int) -> int:
        return self.bracket_of(j).sizes[i]

    def _members(self, state: _State, budget: float) -> list[Parent]:
        """A budget's sub-population: evaluated members best first, then the initial random
        points of the members not evaluated yet."""
        evaluated = state.members.get(budget, {})
        virtual = [(budget, t) for t in range(self._population_sizes[budget]) if t not in evaluated]
        return [*self._ranked(state, budget), *virtual]

    def _vector(self, parent: Parent | None, seed: int, space: Space, rng: Any) -> np.ndarray:
        if parent is None:
            return rng.random(space.dims)
        if isinstance(parent, FrozenTrial):
            return _complete(_encode(space, parent.params), rng)
        return self._initial(seed, space, *parent)

    def _initial(self, seed: int, space: Space, budget: float, target: int) -> np.ndarray:
        """The initial random point of a sub-population member (the paper's random init)."""
        level = sorted(self._population_sizes).index(budget)
        return np.random.default_rng(derive_seed(seed, "dehb-init", level, target)).random(
            space.dims
        )

    def _promoted(self, state: _State, j: int, i: int) -> list[FrozenTrial]:
        """The top n_i of rung i - 1 of instance j, best first: successive halving's pick."""
        bracket = self.bracket_of(j)
        budget = bracket.budgets[i - 1]
        scored = [
            (v, t)
            for t, _ in state.cells.get((j, i - 1), {}).values()
            if (v := _value(t, budget)) is not None
        ]
        scored.sort(key=lambda item: (state.sign * item[0], item[1].number))
        return [t for _, t in scored[: bracket.sizes[i]]]

    def _ranked(self, state: _State, budget: float) -> list[FrozenTrial]:
        """The evaluated members of a budget's sub-population, best first."""
        members = sorted(
            state.members.get(budget, {}).values(),
            key=lambda item: (state.sign * item[0], item[1].number),
        )
        return [t for _, t in members]

    def subpopulation(self, study: StudyReader, budget: float) -> dict[int, FrozenTrial]:
        """The evaluated members of a budget's sub-population, by target index (the best
        trial evaluated in each slot so far)."""
        with self._lock:
            members = self._state(study, None).members.get(budget, {})
            return {target: t for target, (_, t) in sorted(members.items())}

    def _mutate(self, r: list[np.ndarray], current: np.ndarray) -> np.ndarray:
        """The mutant from the chosen parents ``r`` (the best first for best1 and
        currenttobest1)."""
        f = self.mutation_factor
        if self._mutation == "currenttobest1":
            return current + f * (r[0] - current) + f * (r[1] - r[2])
        mutant = r[0] + f * (r[1] - r[2])  # rand1, and best1 with r[0] the best
        if self._mutation == "rand2":
            mutant = mutant + f * (r[3] - r[4])
        return mutant

    def _cross(self, current: np.ndarray, mutant: np.ndarray, rng: Any) -> np.ndarray:
        d = len(current)
        if self._crossover == "bin":
            take = rng.random(d) < self.crossover_prob
            take[rng.integers(d)] = True  # at least one coordinate from the mutant
        else:  # exponential: a run of coordinates from a random start, at least one
            take = np.zeros(d, dtype=bool)
            start, length = int(rng.integers(d)), 1
            while length < d and rng.random() < self.crossover_prob:
                length += 1
            take[[(start + m) % d for m in range(length)]] = True
        return np.where(take, mutant, current)

    # -- state ----------------------------------------------------------------------------

    def _state(self, study: StudyReader, space: Space | None) -> _State:
        """The study's state, brought up to date (the caller holds the study's lock, then
        ``self._lock``)."""
        if len(study.directions) != 1:
            raise SchedulerError(
                "DEHB selects configurations by one objective; this study has "
                f"{len(study.directions)} directions"
            )
        if self._cached is None or self._cached[0] is not study:
            self._cached = (study, _State(sign=_sign(study)))
        state = self._cached[1]
        count = len(study)
        for number in [*sorted(state.open), *range(state.seen, count)]:
            self._read(state, study.trial(number))
        state.seen = count
        state.space = space or state.recorded.space()
        return state

    def _read(self, state: _State, t: FrozenTrial) -> None:
        held = state.entries.get(t.number)
        if held is not None and held[0] is t:
            return  # unchanged since the last ask
        entry = self._entry(t)
        state.entries[t.number] = (t, entry)
        state.recorded.add(t)
        if t.state in _ENDED:
            state.open.discard(t.number)
        else:
            state.open.add(t.number)
        if entry is None:
            return
        j, i, k, target, budget, _, ended = entry
        state.cells.setdefault((j, i), {})[k] = (t, ended)
        state.last_instance = max(state.last_instance, j)
        state.by_target.setdefault((budget, target), set()).add(t.number)
        self._select(state, budget, target)

    def _select(self, state: _State, budget: float, target: int) -> None:
        """DE's selection keeps the better of target and trial (the trial on a tie): over
        any order of completion, the member is the best trial evaluated in the slot, ties
        to the latest."""
        best: tuple[float, FrozenTrial] | None = None
        for number in sorted(state.by_target[(budget, target)]):
            t, entry = state.entries[number]
            value = entry[5] if entry is not None else None
            if value is not None and (best is None or state.sign * value <= state.sign * best[0]):
                best = (value, t)
        if best is not None:
            state.members.setdefault(budget, {})[target] = best

    def _entry(self, t: FrozenTrial) -> _Entry | None:
        attrs = t.system_attrs
        if not all(isinstance(attrs.get(key), int) for key in _KEYS):
            return None  # not one of DEHB's slots
        j, i, k, target = (attrs[key] for key in _KEYS)
        bracket = self.bracket_of(j)
        if i >= len(bracket.budgets):
            return None  # written by a DEHB with other budgets
        budget = bracket.budgets[i]
        value = _value(t, budget)
        return (j, i, k, target, budget, value, value is not None or t.state in _ENDED)

    def _seed(self, study: StudyReader) -> int:
        if self.seed is not None:
            return self.seed
        return study.seed


# -- helpers ---------------------------------------------------------------------------------


def _population_sizes(brackets: Sequence[Bracket]) -> dict[float, int]:
    sizes: dict[float, int] = {}
    for bracket in brackets:
        for budget, n in zip(bracket.budgets, bracket.sizes):
            sizes[budget] = max(n, sizes.get(budget, 0))
    return sizes


def _slots_before(brackets: Sequence[Bracket]) -> dict[float, list[int]]:
    """For each budget, the number of slots at that budget in brackets 0 .. m - 1 of one
    Hyperband iteration, for m = 0 .. len(brackets) (the last entry: one whole iteration)."""
    before: dict[float, list[int]] = {}
    for budget in {b for bracket in brackets for b in bracket.budgets}:
        counts = [0]
        for bracket in brackets:
            n = sum(size for b, size in zip(bracket.budgets, bracket.sizes) if b == budget)
            counts.append(counts[-1] + n)
        before[budget] = counts
    return before


def _value(trial: FrozenTrial, budget: float) -> float | None:
    """The trial's value at its rung's budget (its final value if it completed silently)."""
    value = value_at(trial, budget)
    if value is None and trial.state is TrialState.COMPLETE and trial.values:
        return trial.values[0]
    return value


class _RecordedSpace:
    """The union of the trials' recorded distributions (the latest trial's wins for a name),
    kept up to date one trial at a time."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[int, Distribution]] = {}
        self._space: Space | None = None
        self._stale = False

    def add(self, trial: FrozenTrial) -> None:
        for name, dist in trial.distributions.items():
            held = self._latest.get(name)
            if held is None or (held[0] <= trial.number and held[1] != dist):
                self._latest[name] = (trial.number, dist)
                self._stale = True

    def space(self) -> Space | None:
        if self._stale:
            self._stale = False
            try:
                self._space = Space({name: d for name, (_, d) in self._latest.items()})
            except SpaceError:  # conditions on parents never recorded: left to the sampler
                self._space = None
        return self._space


def _encode(space: Space, params: Mapping[str, Value]) -> np.ndarray:
    """Unit-cube coordinates of ``params``; NaN where a parameter is missing or illegal."""
    vector = np.full(space.dims, np.nan)
    for index, name in enumerate(space.names):
        dist = space[name]
        if name in params and dist.contains(params[name]):
            vector[index] = dist.to_unit(params[name])
    return vector


def _complete(vector: np.ndarray, rng: Any) -> np.ndarray:
    """Fill NaN coordinates (inactive or missing parameters) with uniform draws."""
    missing = np.isnan(vector)
    if missing.any():
        vector[missing] = rng.random(int(missing.sum()))
    return vector


def _same(a: Parent, b: Parent) -> bool:
    if isinstance(a, FrozenTrial) and isinstance(b, FrozenTrial):
        return a.number == b.number
    return a == b


def _merge(first: list[Parent], more: Sequence[Parent]) -> list[Parent]:
    return first + [p for p in more if not any(_same(p, q) for q in first)]
