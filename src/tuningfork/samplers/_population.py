"""What the population samplers (DE, PSO, EDA, later a GA) share: the inferred search space,
its encoding as rows of numbers, the completed trials as the population, a per-trial
random generator, and one joint proposal per trial that each of its parameters reads.
"""

from __future__ import annotations

import math
import random
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tuningfork import _check as check
from tuningfork.exceptions import SamplerError
from tuningfork.repro import derive_seed
from tuningfork.samplers.base import Sampler
from tuningfork.samplers.random import RandomSampler
from tuningfork.space import Categorical, Distribution, Value
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import StudyReader

__all__ = ["Population", "PopulationSampler", "SearchSpace"]


class SearchSpace:
    """The parameters a population sampler proposes jointly, sorted by name, and their
    encoding: a numeric parameter (Float, Int) as its `Distribution.to_unit` value in
    [0, 1], a categorical one as the index of its choice (0, 1, ..., n - 1)."""

    def __init__(self, distributions: Mapping[str, Distribution]) -> None:
        self.names = tuple(sorted(distributions))
        self.distributions = tuple(distributions[name] for name in self.names)
        self.n_choices = np.array(
            [len(d.choices) if isinstance(d, Categorical) else 0 for d in self.distributions]
        )
        self.categorical = self.n_choices > 0
        """A mask of the categorical columns."""

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, params: Mapping[str, Value]) -> np.ndarray:
        """A trial's row (its parameters must hold every name of the space)."""
        return np.array(
            [
                d.index(params[name]) if isinstance(d, Categorical) else d.to_unit(params[name])
                for name, d in zip(self.names, self.distributions)
            ],
            dtype=float,
        )

    def decode(self, row: np.ndarray) -> dict[str, Value]:
        """Parameter values of a row: unit values are clipped into [0, 1], indices rounded
        and clipped to a valid choice."""
        params: dict[str, Value] = {}
        for name, d, x in zip(self.names, self.distributions, row.tolist()):
            if isinstance(d, Categorical):
                params[name] = d.choices[min(max(round(x), 0), len(d.choices) - 1)]
            else:
                params[name] = d.from_unit(min(max(x, 0.0), 1.0))
        return params


@dataclass
class Population:
    """The completed trials of a study as a population: row i of ``rows`` encodes trial
    ``numbers[i]`` (in the order the sampler found them complete), ``losses[i]`` its value
    (negated when maximising; NaN counts as +inf), lower being better."""

    space: SearchSpace
    numbers: np.ndarray
    rows: np.ndarray
    losses: np.ndarray

    def __len__(self) -> int:
        return len(self.numbers)

    def best(self, count: int) -> np.ndarray:
        """Positions of the ``count`` best members, best first (ties: lower trial number)."""
        order = np.lexsort((self.numbers, self.losses))
        return order[:count]

    def latest(self, count: int) -> np.ndarray:
        """Positions of the ``count`` members with the highest trial numbers, oldest first."""
        order = np.argsort(self.numbers, kind="stable")
        return order[max(len(order) - count, 0) :]


_Plan = dict[str, tuple[Value, Distribution]]
"""A trial's joint proposal: each parameter's value and the distribution it is for."""


@dataclass
class _StudyState:
    """What a sampler keeps per study view: rebuilt from the log by `_refresh`."""

    cursor: int = 0  # the reader's log position last read
    seen: set[int] = field(default_factory=set)  # completed trials taken in
    members: list[FrozenTrial] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)  # the members' trial numbers
    losses: list[float] = field(default_factory=list)
    distributions: dict[str, Distribution] | None = None  # the intersection so far
    space: SearchSpace | None = None
    rows: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    plans: dict[int, _Plan] = field(default_factory=dict)


class PopulationSampler(Sampler):
    """Base of the population samplers: subclasses implement `n_startup` and `propose`.

    The search space is inferred: the Float, Int and Categorical parameters suggested, with
    the same distribution, in every COMPLETE trial. Other parameters (conditional ones,
    those seen with two distributions, those new to the study) are sampled by an internal
    `RandomSampler` with the same seed, as is every parameter while fewer than
    `n_startup` trials are complete (the random initial population). Only COMPLETE trials
    form the population: pruned and failed ones say nothing here. Single objective only.

    At a trial's first suggestion the sampler proposes a point for the whole space at once
    (`propose`, with a generator seeded by ``derive_seed(seed, class name, trial number)``)
    and keeps it; each suggestion of that trial then reads its value from that point. The
    proposal depends only on the log and the seed, so any worker, or a restarted one,
    proposes the same point for the same trial and log.
    """

    seed: int  # never None here: drawn when not given

    def __init__(self, *, seed: int | None) -> None:
        seed = check.seed(seed, type(self).__name__)
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self._random = RandomSampler(seed=self.seed)
        self._lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[StudyReader, _StudyState] = (
            weakref.WeakKeyDictionary()
        )

    # -- what a subclass gives -------------------------------------------------------------

    def size(self, n_dims: int) -> int:
        """The population (or swarm) size for ``n_dims`` parameters."""
        raise NotImplementedError

    def n_startup(self, space: SearchSpace) -> int:
        """Complete trials needed before proposals start (random ones until then): one
        population, by default."""
        return self.size(len(space))

    def propose(
        self, population: Population, trial: FrozenTrial, rng: np.random.Generator
    ) -> np.ndarray:
        """A row of the space (unit values; choice indices) for ``trial``."""
        raise NotImplementedError

    # -- the Sampler interface -------------------------------------------------------------

    def sample(
        self, study: StudyReader, trial: FrozenTrial, name: str, distribution: Distribution
    ) -> Value:
        """The trial's joint proposal for ``name``, or a random value outside the space."""
        with self._lock:
            state = self._states.get(study)
            if state is None:
                state = self._states[study] = _StudyState()
            plan = state.plans.get(trial.number)
            if plan is None:
                plan = state.plans[trial.number] = self._plan(study, state, trial)
        proposed = plan.get(name)
        if proposed is not None and proposed[1].same_as(distribution):
            return proposed[0]
        return self._random.sample(study, trial, name, distribution)

    def _plan(self, study: StudyReader, state: _StudyState, trial: FrozenTrial) -> _Plan:
        _refresh(study, state)
        for number in [n for n in state.plans if study.state(n).is_finished]:
            del state.plans[number]  # kept only while their trials may still ask
        space = state.space
        if space is None or not len(space) or len(state.members) < self.n_startup(space):
            return {}
        population = Population(
            space,
            np.array(state.numbers),
            state.rows,
            np.array(state.losses),
        )
        rng = np.random.default_rng(derive_seed(self.seed, type(self).__name__, trial.number))
        values = space.decode(self.propose(population, trial, rng))
        return {name: (values[name], d) for name, d in zip(space.names, space.distributions)}


def _refresh(study: StudyReader, state: _StudyState) -> None:
    """Take in the trials completed since the last read (each once: they never change)."""
    if len(study.directions) != 1:
        raise SamplerError(
            f"the population samplers (DE, PSO, EDA) support single-objective studies; "
            f"study {study.name!r} has {len(study.directions)} objectives. Use a "
            "multi-objective sampler (or RandomSampler / TPESampler) for it."
        )
    sign = 1.0 if study.directions[0] == "minimize" else -1.0
    fresh = [
        record
        for record in study.changed_since(state.cursor)
        if record.state is TrialState.COMPLETE and record.number not in state.seen
    ]
    state.cursor = study.cursor
    for record in fresh:
        state.seen.add(record.number)
        state.members.append(record)
        state.numbers.append(record.number)
        loss = sign * float(record.values[0]) if record.values else math.nan
        state.losses.append(math.inf if math.isnan(loss) else loss)
        state.distributions = _intersect(state.distributions, record)
    _update_rows(state)


def _intersect(
    known: dict[str, Distribution] | None, record: FrozenTrial
) -> dict[str, Distribution]:
    """The parameters of ``known`` that ``record`` holds with the same distribution."""
    own = {name: d for name, d in record.distributions.items() if name in record.params}
    if known is None:
        return own
    return {name: d for name, d in known.items() if name in own and own[name].same_as(d)}


def _update_rows(state: _StudyState) -> None:
    """Encode the new members; re-encode all of them when the space has shrunk."""
    if state.distributions is None:
        return
    space = state.space
    if space is None or set(space.names) != set(state.distributions):
        space = state.space = SearchSpace(state.distributions)
        state.rows = np.empty((0, len(space)))
    done = len(state.rows)
    if done < len(state.members):
        fresh = [space.encode(member.params) for member in state.members[done:]]
        state.rows = np.vstack([state.rows, np.array(fresh).reshape(len(fresh), len(space))])
