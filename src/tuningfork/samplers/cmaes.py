"""CMA-ES (Hansen & Ostermeier, 2001) through the `cmaes` package, with IPOP/BIPOP restarts
(Auger & Hansen, 2005; Hansen, 2009), CatCMA with margin for integer, stepped and categorical
dimensions (Hamano et al., 2025), sep-CMA-ES (Ros & Hansen, 2008) and warm starting (Nomura et
al., 2021).

The optimizer is never stored: it is replayed from the log over the completed trials in
trial-number order, so every worker, restarted or late, holds the same one.
"""

from __future__ import annotations

import math
import random
import threading
import warnings
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
# a discrete dimension with more values is continuous to CatCMAwM (see `_grid`)
_MAX_LEVELS = 1000

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
    """Covariance matrix adaptation evolution strategy, over numeric and categorical parameters.

    The search space is the parameters (except constants) that the first
    ``n_startup_trials`` complete trials all hold with the same distributions; Float and
    Int ones are encoded to the unit cube with `Distribution.to_unit`. A space of
    continuous parameters only (Float, log Int) is searched by CMA-ES. A space with
    categorical parameters, or (``with_margin``) with discrete ones (a non-log Int or a
    stepped Float of at most 1,000 values, on the centres of its cells), is searched by
    CatCMA with margin (CatCMAwM, Hamano et al., 2025), which subsumes CMA-ES with margin
    (Hamano et al., 2022) and CatCMA (Hamano et al., 2024) and also takes a space of
    categories alone. Every parameter outside the space, or seen before the space is
    known, comes from an internal `RandomSampler` with the same seed, as do the
    categorical ones with ``separable``. A conditional parameter in the space makes
    trials without it invisible to the strategy (they are not told): prefer a flat space.

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
    value). CatCMAwM learns from its continuous sample before rounding, which the log
    does not hold: when the generation that proposed a trial is still open, the same
    draw is asked again and told; otherwise the trial is told as evaluated. A
    long-running trial delays the tells of later ones until it finishes (proposals go on
    from the current generation). Reading only new trials, a proposal costs about 0.3 ms
    at 1,000 trials (5 dimensions).

    Args:
        seed: base seed (default None: drawn at random and recorded).
        sigma0: initial step size in the unit cube (default 1/6: the box within three
            sigmas of its centre, where the search starts, as in Optuna).
        popsize: population size (default 4 + floor(3 ln d) for d dimensions, Hansen's
            default). nevergrad's CMA for a bounded continuous space (its benchmark-tuned
            "CMAbounded": pycma, elitist, diagonal, step about 0.08 of the range, 4 +
            floor(ln d)) is ahead at 100 trials on most of our quality problems, by far
            where the optimum is near the centre of the box, where both start.
        restart_strategy: None, "ipop" (restart with ``inc_popsize`` times the population
            when the strategy stops, Auger & Hansen 2005) or "bipop" (alternate large and
            small populations, Hansen 2009). A restart starts from a random mean.
        inc_popsize: population growth factor at each large restart (default 2).
        with_margin: a margin for discrete dimensions (non-log Int, stepped Float of at
            most 1,000 values: CatCMAwM), so they do not get stuck on one value (default
            True); without it they are continuous dimensions, rounded.
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
        layout: _Layout,
        mean: np.ndarray,
        sigma: float,
        popsize: int | None,
        cov: np.ndarray | None,
    ) -> Any:
        """A new cmaes optimizer over ``layout`` (CatCMAwM when it is mixed, else
        sep-CMA-ES or CMA-ES as configured); ``mean`` and ``cov`` in the order of its
        numeric dimensions."""
        mean = np.clip(mean, 0.0, 1.0)
        seed = derive_seed(self.seed, "cmaes-init")
        n = len(layout.dims)
        if layout.mixed:
            order = layout.order
            grids = [layout.grids[i] for i in order[len(order) - len(layout.grids) :]]
            continuous = n - len(grids)
            return self._cmaes.CatCMAwM(
                x_space=[[0.0, 1.0]] * continuous if continuous else None,
                z_space=grids or None,
                c_space=[len(dist.choices) for _, dist in layout.cats] or None,
                population_size=popsize,
                mean=mean[order] if n else None,
                sigma=sigma,
                # the library's own default scales the covariance by the box; ours is sigma
                # in the unit cube, as for CMA-ES
                cov=(np.eye(n) if cov is None else cov[np.ix_(order, order)]) if n else None,
                seed=seed,
            )
        bounds = np.tile([0.0, 1.0], (n, 1))
        if self.separable and n > 1:  # SepCMA needs two dimensions
            return self._cmaes.SepCMA(
                mean=mean, sigma=sigma, bounds=bounds, seed=seed, population_size=popsize
            )
        return self._cmaes.CMA(
            mean=mean, sigma=sigma, bounds=bounds, seed=seed, population_size=popsize, cov=cov
        )


@dataclass(frozen=True)
class _Layout:
    """The search space as the optimizer sees it: numeric dimensions (in the unit cube),
    categorical ones, and for CatCMAwM (``mixed``) the unit-cube grid of each discrete
    numeric dimension, by its index in ``dims``."""

    dims: list[Dimension]
    cats: list[tuple[str, Categorical]]
    grids: dict[int, list[float]]
    mixed: bool

    @property
    def order(self) -> list[int]:
        """CatCMAwM's order of the numeric dimensions: continuous ones, then discrete."""
        continuous = [i for i in range(len(self.dims)) if i not in self.grids]
        return continuous + sorted(self.grids)


class _Replay:
    """One study's optimizer, rebuilt by reading finished trials in number order."""

    def __init__(self, sampler: CmaEsSampler, direction: str) -> None:
        self.sampler = sampler
        self.sign = -1.0 if direction == "maximize" else 1.0
        self.read = 0  # trials 0 .. read-1 are finished and were read
        self.startup: list[FrozenTrial] = []
        self.earlier: list[FrozenTrial] = []  # complete trials before start_at_trial
        self.layout: _Layout | None = None  # None until the space is known
        self.optimizer: Any = None
        self.batch: list[tuple[Any, float]] = []
        self.restarts = 0
        self.popsize0 = 0
        self.large_runs = 0  # BIPOP: restarts with a large population so far
        self.budget = {"large": 0, "small": 0}  # BIPOP: evaluations per regime
        self.regime = "large"
        self.plans: dict[int, dict[str, tuple[Distribution, Value]]] = {}

    @property
    def dims(self) -> list[Dimension] | None:
        """The numeric dimensions of the space, None until it is known."""
        return None if self.layout is None else self.layout.dims

    @property
    def cats(self) -> list[tuple[str, Categorical]]:
        """The categorical dimensions the optimizer searches (none for CMA-ES)."""
        return [] if self.layout is None else self.layout.cats

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
        if self.layout is None:
            self.startup.append(trial)
            if len(self.startup) >= self.sampler.n_startup_trials:
                self._start(self.startup)
            return
        if self.optimizer is None:
            return
        point = self._tellable(trial)
        if point is None:
            return
        self.batch.append((point, self.sign * value))
        if len(self.batch) == self.optimizer.population_size:
            self._tell(sorted(self.batch, key=lambda pair: pair[1]))
            self.batch = []
            if self.sampler.restart_strategy is not None and self._converged():
                self._restart()

    def _tell(self, batch: list[tuple[Any, float]]) -> None:
        """Tell a generation, sorted by value. CatCMAwM's box penalty scales with the
        interquartile range of the values seen so far; while every generation had none
        (a plateau), cmaes 0.13.1 makes every penalised value NaN (with a RuntimeWarning),
        and its stable sort then keeps the order told: by value, the penalty ignored."""
        values = [value for _, value in batch]
        n = len(values)
        flat = values[3 * n // 4] == values[n // 4]
        if not (flat and self.layout is not None and self.layout.mixed):
            self.optimizer.tell(batch)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.optimizer.tell(batch)

    def _converged(self) -> bool:
        """The strategy's stopping test (CatCMAwM has none for categories alone)."""
        assert self.layout is not None
        return bool(self.layout.dims) and bool(self.optimizer.should_stop())

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
        dims, cats = _common_space(startup)
        grids = {}
        if sampler.with_margin:
            grids = {i: g for i, (_, dist) in enumerate(dims) if (g := _grid(dist)) is not None}
        mixed = not sampler.separable and bool(cats or grids)
        if not mixed:
            cats, grids = [], {}
        self.layout = _Layout(dims, cats, grids, mixed)
        if not dims and not cats:
            return
        mean = np.full(len(dims), 0.5)
        sigma = sampler.sigma0 or _SIGMA0
        cov = None
        warm = sampler._warm if warm is None else warm
        if warm and (dims or warm is sampler._warm):  # categories alone: no numeric start
            mean, sigma, cov = self._warm_start(warm)
        self.optimizer = sampler._optimizer(self.layout, mean, sigma, sampler.popsize, cov)
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
        if not solutions or not self.dims:
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
        assert self.layout is not None
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
        mean = rng.uniform(size=len(self.layout.dims))
        self.optimizer = sampler._optimizer(self.layout, mean, sigma, max(popsize, 2), None)

    def _tellable(self, trial: FrozenTrial) -> Any:
        """What to tell of a complete trial: CatCMAwM's own draw when asking the open
        generation again for this trial gives the trial's values, else the trial's values
        as evaluated; None if the trial lacks a dimension."""
        assert self.layout is not None
        told = self._encode(trial)
        if told is None or not self.layout.mixed:
            return told
        asked = self._ask(trial.number)
        plan = self._plan(asked)
        if all(trial.params[name] == value for name, (_, value) in plan.items()):
            return asked
        return told

    def _encode(self, trial: FrozenTrial) -> Any:
        """The trial as the optimizer's point: the unit-cube vector (CMA-ES), or a CatCMAwM
        solution of its values; None if the trial lacks a dimension."""
        assert self.layout is not None
        layout = self.layout
        x = _encode(layout.dims, trial)
        if x is None or not layout.mixed:
            return x
        onehot = None
        if layout.cats:
            width = max(len(dist.choices) for _, dist in layout.cats)
            onehot = np.zeros((len(layout.cats), width), dtype=bool)
            for i, (name, dist) in enumerate(layout.cats):
                own = trial.distributions.get(name)
                if name not in trial.params or own is None or not own.same_as(dist):
                    return None
                onehot[i, dist.index(trial.params[name])] = True
        gauss = x[layout.order]
        continuous = len(gauss) - len(layout.grids)
        return self.sampler._cmaes.CatCMAwM.Solution(
            x=gauss[:continuous] if continuous else None,
            z=gauss[continuous:] if layout.grids else None,
            c=onehot,
            _v_raw=gauss if len(gauss) else None,
        )

    # -- proposing ------------------------------------------------------------------------

    def _ask(self, number: int) -> Any:
        """Trial ``number``'s draw from the current generation (a seeded ask)."""
        key = (self.restarts, self.optimizer.generation, number)
        self.optimizer.reseed_rng(derive_seed(self.sampler.seed, "cmaes-ask", *key))
        return self.optimizer.ask()

    def _plan(self, asked: Any) -> dict[str, tuple[Distribution, Value]]:
        """The parameter values of an optimizer's draw."""
        assert self.layout is not None
        layout = self.layout
        plan: dict[str, tuple[Distribution, Value]] = {}
        if layout.mixed:  # a CatCMAwM solution: continuous x, discrete z, one-hot c
            gauss = [a for a in (asked.x, asked.z) if a is not None]
            x = np.empty(len(layout.dims))
            x[layout.order] = np.concatenate(gauss) if gauss else []
            for (name, cat), row in zip(layout.cats, asked.c if layout.cats else []):
                plan[name] = (cat, cat.choices[int(np.argmax(row))])
        else:
            x = asked
        for (name, dist), u in zip(layout.dims, x):
            plan[name] = (dist, dist.from_unit(float(u)))
        return plan

    def propose(self, number: int) -> dict[str, tuple[Distribution, Value]]:
        """Trial ``number``'s candidate of the current generation (empty before the space
        is known)."""
        if self.optimizer is None:
            return {}
        return self._plan(self._ask(number))

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


def _grid(dist: Distribution) -> list[float] | None:
    """The unit-cube centres of a discrete dimension's cells, (k + 0.5) / n, or None when it
    is continuous to CatCMAwM: a log Int, an unstepped Float, or more than 1,000 values
    (there a margin hardly matters and the grid would cost memory)."""
    if not _discrete(dist):
        return None
    count = round(0.5 / dist.to_unit(dist.low))  # type: ignore[attr-defined]
    if count > _MAX_LEVELS:
        return None
    return [dist.to_unit(dist.from_unit((k + 0.5) / count)) for k in range(count)]


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
