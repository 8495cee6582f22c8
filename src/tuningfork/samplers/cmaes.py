"""CMA-ES (Hansen & Ostermeier, 2001) through the `cmaes` package, with IPOP/BIPOP restarts
(Auger & Hansen, 2005; Hansen, 2009), CMA-ES with margin for discrete dimensions (Hamano et
al., 2022), sep-CMA-ES (Ros & Hansen, 2008) and warm starting (Nomura et al., 2021).

The optimizer is never stored: it is replayed from the log over the completed trials in
trial-number order, so every worker, restarted or late, holds the same one.
"""

from __future__ import annotations

import math
import random
import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tuningfork import _check as check
from tuningfork.exceptions import MissingExtra, OptionError
from tuningfork.repro import derive_seed
from tuningfork.samplers.base import Sampler
from tuningfork.samplers.random import RandomSampler
from tuningfork.space import Categorical, Distribution, Float, Int, Value
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import StudyReader

__all__ = ["CmaEsSampler"]

_OWNER = "CmaEsSampler"
_RESTARTS = (None, "ipop", "bipop")
# the default step size in the unit cube: the whole range within about three sigmas
_SIGMA0 = 1.0 / 6.0
# WS-CMA-ES estimates its start from the best tenth of the source trials
_WARM_MINIMUM = 10

Dimension = tuple[str, Distribution]


def _require_cmaes() -> Any:
    try:
        import cmaes
    except ImportError as error:
        raise MissingExtra(
            "CmaEsSampler needs the cmaes package; install it with: pip install 'tuningfork[cmaes]'"
        ) from error
    return cmaes


class CmaEsSampler(Sampler):
    """Covariance matrix adaptation evolution strategy over the numeric parameters.

    The search space is the parameters (except constants) that the first
    ``n_startup_trials`` complete trials all hold with the same distributions; Float and
    Int ones are encoded to the unit cube with `Distribution.to_unit`. Categorical ones
    join CatCMA (Hamano et al., 2024, CMA-ES for mixed continuous and categorical spaces)
    when the space has at least two numeric parameters and separable is False; otherwise
    they come from an internal `RandomSampler` with the same seed, as does every
    parameter outside the space or seen before the space is known. A conditional
    parameter in the space makes trials without it invisible to the strategy (they are
    not told): prefer a flat space.

    The optimizer is replayed from the log: the finished (COMPLETE, PRUNED, FAIL) trials
    are read in number order, as far as the first one that is not (running, waiting or
    paused: a scheduler that pauses trials holds the strategy back until they end), and
    the complete ones that hold the whole space are told to CMA-ES a generation
    (``popsize`` trials) at a time. Trial n's proposal is the optimizer's current
    generation asked with a random state derived from
    ``(seed, restart, generation, n)``: concurrent trials get different candidates, and a
    late trial (whose generation was already told) gets one of the current generation.
    A trial is told with the generation open when the reading reaches it, which is not
    always the one that proposed it (the strategy's update uses only the point and its
    value). With margin, a discrete value is told as evaluated (Optuna keeps CMAwM's
    continuous sample in the trial, which our samplers cannot write). A long-running
    trial delays the tells of later ones until it finishes (proposals go on from the
    current generation). Reading only new trials, a proposal costs about 0.3 ms at
    1,000 trials (5 dimensions).

    Args:
        seed: base seed (default None: drawn at random and recorded).
        sigma0: initial step size in the unit cube (default 1/6).
        popsize: population size (default 4 + floor(3 ln d) for d dimensions).
        restart_strategy: None, "ipop" (restart with ``inc_popsize`` times the population
            when the strategy stops, Auger & Hansen 2005) or "bipop" (alternate large and
            small populations, Hansen 2009). A restart starts from a random mean.
        inc_popsize: population growth factor at each large restart (default 2).
        with_margin: CMA-ES with margin (Hamano et al., 2022) when there are discrete
            dimensions (non-log Int, stepped Float), so they do not get stuck on one value;
            with CatCMA (which has its margin for categories only) they are continuous.
        separable: sep-CMA-ES (diagonal covariance, Ros & Hansen 2008), for many
            dimensions; ignores ``with_margin`` and samples categoricals at random.
        warm_start_trials: trials of a similar earlier task (a list of `FrozenTrial` or a
            `Study`): the initial mean, step size and covariance come from their best ones
            (WS-CMA-ES, Nomura et al., 2021). Not kept in the study's record.
        n_startup_trials: complete trials sampled at random that define the search space
            (default 1).
        start_at_trial: continue a study with CMA-ES from this trial number (default 0).
            The complete trials numbered below it are never told to the strategy: they
            define the search space (no startup trials are drawn) and, unless
            ``warm_start_trials`` is given, warm-start it (WS-CMA-ES on the study's own
            trials). The strategy starts once every one of them has finished; until
            then its trials are sampled at random (`AutoSampler` asks its earlier
            sampler instead). A study with no complete trial there starts as usual.

    Raises:
        MissingExtra: the ``cmaes`` package is not installed.
    """

    seed: int  # never None here: drawn when not given

    def __init__(
        self,
        *,
        seed: int | None = None,
        sigma0: float | None = None,
        popsize: int | None = None,
        restart_strategy: str | None = None,
        inc_popsize: int = 2,
        with_margin: bool = True,
        separable: bool = False,
        warm_start_trials: Iterable[FrozenTrial] | Any | None = None,
        n_startup_trials: int = 1,
        start_at_trial: int = 0,
    ) -> None:
        self._cmaes = _require_cmaes()
        seed = check.seed(seed, _OWNER)
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.sigma0 = None if sigma0 is None else _positive(sigma0, "sigma0")
        self.popsize = None if popsize is None else check.integer(popsize, "popsize", _OWNER)
        if restart_strategy not in _RESTARTS:
            raise OptionError(
                f"restart_strategy must be None, 'ipop' or 'bipop', got {restart_strategy!r}",
                option="restart_strategy",
                owner=_OWNER,
            )
        self.restart_strategy = restart_strategy
        self.inc_popsize = check.integer(inc_popsize, "inc_popsize", _OWNER, minimum=2)
        self.with_margin = check.flag(with_margin, "with_margin", _OWNER)
        self.separable = check.flag(separable, "separable", _OWNER)
        self.n_startup_trials = check.integer(n_startup_trials, "n_startup_trials", _OWNER)
        self.start_at_trial = check.integer(start_at_trial, "start_at_trial", _OWNER, minimum=0)
        self._warm = _warm_trials(warm_start_trials)
        if self._warm and self.separable:
            raise OptionError(
                "warm_start_trials needs a full covariance; use separable=False",
                option="warm_start_trials",
                owner=_OWNER,
            )
        self._random = RandomSampler(seed=self.seed)
        self._lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[StudyReader, _Replay] = weakref.WeakKeyDictionary()

    def sample(
        self, study: StudyReader, trial: FrozenTrial, name: str, distribution: Distribution
    ) -> Value:
        """Trial's value of ``name``: from its CMA-ES candidate when ``name`` is in the
        search space with this distribution, else at random."""
        if len(study.directions) != 1:
            raise OptionError(
                f"CmaEsSampler optimizes one objective; study {study.name!r} has "
                f"{len(study.directions)}",
                option="directions",
                owner=_OWNER,
            )
        with self._lock:
            replay = self._states.get(study)
            if replay is None:
                replay = self._states[study] = _Replay(self, study.directions[0])
            replay.advance(study)
            plan = replay.plans.get(trial.number)
            if plan is None:
                plan = replay.plans[trial.number] = replay.propose(trial.number)
        if name in plan and plan[name][0].same_as(distribution):
            return plan[name][1]
        return self._random.sample(study, trial, name, distribution)

    # -- used by the replay ---------------------------------------------------------------

    def _optimizer(
        self,
        dims: Sequence[Dimension],
        cats: Sequence[Categorical],
        mean: np.ndarray,
        sigma: float,
        popsize: int | None,
        cov: np.ndarray | None,
    ) -> Any:
        """A new cmaes optimizer over ``dims`` and ``cats`` (CatCMA when there are
        categories, else margin or separable as configured)."""
        bounds, steps = _bounds(dims)
        mean = np.clip(mean, bounds[:, 0], bounds[:, 1])
        seed = derive_seed(self.seed, "cmaes-init")
        if cats:
            return self._cmaes.CatCMA(
                mean=mean,
                sigma=sigma,
                cat_num=np.array([len(c.choices) for c in cats]),
                bounds=np.tile([0.0, 1.0], (len(dims), 1)),
                seed=seed,
                population_size=popsize,
                cov=cov,
            )
        if self.separable and len(dims) > 1:  # SepCMA needs two dimensions
            return self._cmaes.SepCMA(
                mean=mean, sigma=sigma, bounds=bounds, seed=seed, population_size=popsize
            )
        if self.with_margin and np.any(steps > 0):
            return self._cmaes.CMAwM(
                mean=mean,
                sigma=sigma,
                bounds=bounds,
                steps=steps,
                seed=seed,
                population_size=popsize,
                cov=cov,
            )
        return self._cmaes.CMA(
            mean=mean, sigma=sigma, bounds=bounds, seed=seed, population_size=popsize, cov=cov
        )


class _Replay:
    """One study's optimizer, rebuilt by reading finished trials in number order."""

    def __init__(self, sampler: CmaEsSampler, direction: str) -> None:
        self.sampler = sampler
        self.sign = -1.0 if direction == "maximize" else 1.0
        self.read = 0  # trials 0 .. read-1 are finished and were read
        self.startup: list[FrozenTrial] = []
        self.earlier: list[FrozenTrial] = []  # complete trials before start_at_trial
        self.dims: list[Dimension] | None = None  # None until the space is known
        self.cats: list[tuple[str, Categorical]] = []  # CatCMA's categorical dimensions
        self.optimizer: Any = None
        self.batch: list[tuple[np.ndarray, float]] = []
        self.restarts = 0
        self.popsize0 = 0
        self.large_runs = 0  # BIPOP: restarts with a large population so far
        self.budget = {"large": 0, "small": 0}  # BIPOP: evaluations per regime
        self.regime = "large"
        self.plans: dict[int, dict[str, tuple[Distribution, Value]]] = {}

    # -- reading the log ------------------------------------------------------------------

    def advance(self, study: StudyReader) -> None:
        """Read the trials that finished since the last call, up to the first running one."""
        start = self.sampler.start_at_trial
        while self.read < len(study) and study.state(self.read).is_finished:
            self.plans.pop(self.read, None)
            complete = study.state(self.read) is TrialState.COMPLETE
            if self.read < start:
                if complete and _finite(study.trial(self.read)):
                    self.earlier.append(study.trial(self.read))
            elif complete:
                self._read(study.trial(self.read))
            self.read += 1
            if self.read == start and self.earlier:
                self._start(self.earlier, warm=self.sampler._warm or self.earlier, tell=False)

    def _read(self, trial: FrozenTrial) -> None:
        value = trial.value
        if value is None or not math.isfinite(value):
            return
        if self.dims is None:
            self.startup.append(trial)
            if len(self.startup) >= self.sampler.n_startup_trials:
                self._start(self.startup)
            return
        point = self._encode(trial)
        if point is None or self.optimizer is None:
            return
        self.batch.append((point, self.sign * value))
        if len(self.batch) == self.optimizer.population_size:
            self.optimizer.tell(self.batch)
            self.batch = []
            if self.sampler.restart_strategy is not None and self.optimizer.should_stop():
                self._restart()

    def _start(
        self,
        startup: list[FrozenTrial],
        warm: list[FrozenTrial] | None = None,
        tell: bool = True,
    ) -> None:
        """Fix the search space from the startup trials and build the first optimizer,
        warm-started from ``warm`` (default: the sampler's ``warm_start_trials``); tell
        it the startup trials unless ``tell`` is False."""
        sampler = self.sampler
        self.dims, cats = _common_space(startup)
        if len(self.dims) >= 2 and not sampler.separable:  # CatCMA needs two numeric ones
            self.cats = cats
        if not self.dims:
            return
        mean = np.full(len(self.dims), 0.5)
        sigma = sampler.sigma0 or _SIGMA0
        cov = None
        warm = sampler._warm if warm is None else warm
        if warm:
            mean, sigma, cov = self._warm_start(warm)
        self.optimizer = sampler._optimizer(
            self.dims, self._cats, mean, sigma, sampler.popsize, cov
        )
        self.popsize0 = self.optimizer.population_size
        for trial in startup if tell else ():
            self._read(trial)

    def _warm_start(self, source: list[FrozenTrial]) -> tuple[np.ndarray, float, np.ndarray | None]:
        """Mean, step size and covariance from the best tenth of ``source`` (WS-CMA-ES);
        with fewer than ten usable trials, the best one's point and the default step."""
        assert self.dims is not None
        solutions = []
        for trial in source:
            x = _encode(self.dims, trial)
            if x is not None and trial.value is not None and math.isfinite(trial.value):
                solutions.append((x, self.sign * trial.value))
        if not solutions:
            raise OptionError(
                "no trial of warm_start_trials holds the search space "
                f"{[name for name, _ in self.dims]} with the same distributions",
                option="warm_start_trials",
                owner=_OWNER,
            )
        if len(solutions) < _WARM_MINIMUM:  # the estimate needs one top-tenth trial
            best = min(solutions, key=lambda pair: pair[1])
            return best[0], self.sampler.sigma0 or _SIGMA0, None
        mean, sigma, cov = self.sampler._cmaes.get_warm_start_mgd(solutions)
        return mean, float(sigma), cov

    def _restart(self) -> None:
        """A new optimizer from a random mean: IPOP grows the population, BIPOP alternates
        a growing one with small ones of random size and step (Hansen, 2009)."""
        assert self.dims is not None
        sampler = self.sampler
        used = self.optimizer.generation * self.optimizer.population_size
        self.budget[self.regime] += used
        self.restarts += 1
        rng = np.random.default_rng(derive_seed(sampler.seed, "cmaes-restart", self.restarts))
        sigma = sampler.sigma0 or _SIGMA0
        large = self.popsize0 * sampler.inc_popsize ** (self.large_runs + 1)
        if sampler.restart_strategy == "bipop" and self.budget["small"] < self.budget["large"]:
            self.regime = "small"
            u = rng.uniform()
            popsize = math.floor(self.popsize0 * (0.5 * large / self.popsize0) ** (u**2))
            sigma *= 10 ** (-2 * rng.uniform())
        else:
            self.regime = "large"
            self.large_runs += 1
            popsize = large
        mean = rng.uniform(size=len(self.dims))
        self.optimizer = sampler._optimizer(
            self.dims, self._cats, mean, sigma, max(popsize, 2), None
        )

    @property
    def _cats(self) -> list[Categorical]:
        return [dist for _, dist in self.cats]

    def _encode(self, trial: FrozenTrial) -> Any:
        """The point to tell: the unit-cube vector, with CatCMA paired with the one-hot
        matrix of its categories; None if the trial lacks a dimension."""
        assert self.dims is not None
        x = _encode(self.dims, trial)
        if x is None or not self.cats:
            return x
        width = max(len(dist.choices) for _, dist in self.cats)
        onehot = np.zeros((len(self.cats), width), dtype=bool)
        for i, (name, dist) in enumerate(self.cats):
            own = trial.distributions.get(name)
            if name not in trial.params or own is None or not own.same_as(dist):
                return None
            onehot[i, dist.index(trial.params[name])] = True
        return (x, onehot)

    # -- proposing ------------------------------------------------------------------------

    def propose(self, number: int) -> dict[str, tuple[Distribution, Value]]:
        """Trial ``number``'s candidate of the current generation (empty before the space
        is known)."""
        if self.dims is None or self.optimizer is None:
            return {}
        key = (self.restarts, self.optimizer.generation, number)
        self.optimizer.reseed_rng(derive_seed(self.sampler.seed, "cmaes-ask", *key))
        x = self.optimizer.ask()
        plan: dict[str, tuple[Distribution, Value]] = {}
        if self.cats:  # CatCMA: (the numeric point, the one-hot categories)
            x, onehot = x
            for (name, cat), row in zip(self.cats, onehot):
                plan[name] = (cat, cat.choices[int(np.argmax(row))])
        elif isinstance(x, tuple):  # CMAwM: (the point to evaluate, the point to tell)
            x = x[0]
        for (name, dist), u in zip(self.dims, x):
            plan[name] = (dist, dist.from_unit(float(u)))
        return plan

    @property
    def generation(self) -> int:
        """Generations told to the current optimizer (0 before it exists)."""
        return 0 if self.optimizer is None else int(self.optimizer.generation)


# -- the search space -------------------------------------------------------------------------


def _finite(trial: FrozenTrial) -> bool:
    return trial.value is not None and math.isfinite(trial.value)


def _common_space(
    trials: list[FrozenTrial],
) -> tuple[list[Dimension], list[tuple[str, Categorical]]]:
    """The non-constant Float and Int parameters, and the Categorical ones with two
    choices or more, that every trial holds with the same distribution, by name."""
    first = trials[0]
    dims: list[Dimension] = []
    cats: list[tuple[str, Categorical]] = []
    for name in sorted(first.params):
        dist = first.distributions[name]
        if not all(name in t.params and t.distributions[name].same_as(dist) for t in trials[1:]):
            continue
        if isinstance(dist, (Float, Int)) and dist.low != dist.high:
            dims.append((name, dist))
        elif isinstance(dist, Categorical) and len(dist.choices) > 1:
            cats.append((name, dist))
    return dims, cats


def _encode(dims: Sequence[Dimension], trial: FrozenTrial) -> np.ndarray | None:
    """The trial's point in the unit cube, or None if it lacks a dimension."""
    x = np.empty(len(dims))
    for i, (name, dist) in enumerate(dims):
        own = trial.distributions.get(name)
        if name not in trial.params or own is None or not own.same_as(dist):
            return None
        x[i] = dist.to_unit(trial.params[name])
    return x


def _bounds(dims: Sequence[Dimension]) -> tuple[np.ndarray, np.ndarray]:
    """Bounds and steps in the unit cube. A discrete dimension of n evenly spaced values
    (a non-log Int, a stepped Float) lives on the centres of its n cells: (k + 0.5) / n."""
    bounds = np.tile([0.0, 1.0], (len(dims), 1))
    steps = np.zeros(len(dims))
    for i, (_, dist) in enumerate(dims):
        if isinstance(dist, (Float, Int)) and _discrete(dist):
            half = dist.to_unit(dist.low)  # 0.5 / n
            bounds[i] = (half, 1.0 - half)
            steps[i] = 2.0 * half
    return bounds, steps


def _discrete(dist: Distribution) -> bool:
    """Evenly spaced values in the unit cube: a non-log Int or a stepped Float."""
    if isinstance(dist, Int):
        return not dist.log
    return isinstance(dist, Float) and dist.step is not None


# -- options ----------------------------------------------------------------------------------


def _positive(value: object, option: str) -> float:
    return check.number(value, option, _OWNER, low=0, high=math.inf, low_open=True, high_open=True)


def _warm_trials(source: Any) -> list[FrozenTrial]:
    """The complete trials of a list of trials or of a study (anything with `trials`)."""
    from tuningfork.study import Study  # here: the study package imports the samplers

    if source is None:
        return []
    if isinstance(source, Study):
        source = source.trials
    trials = list(source) if isinstance(source, Iterable) else [source]
    if not all(isinstance(t, FrozenTrial) for t in trials):
        raise OptionError(
            "warm_start_trials must be a list of FrozenTrial or a Study",
            option="warm_start_trials",
            owner=_OWNER,
        )
    return [t for t in trials if t.state is TrialState.COMPLETE]
