"""Population-based training, PBT (Jaderberg et al. 2017, "Population Based Training of
Neural Networks", arXiv:1711.09846): a population trains in parallel; at every
perturbation interval the worst members copy the checkpoint and hyperparameters of the
best ("exploit") and perturb the copied hyperparameters ("explore").

Here a member is a trial that pauses at each interval boundary; the ask that resumes it
decides, from the log alone, whether it goes on as it is or copies a better member. That
resume is one log event, claimed like every promotion (two workers never resume one
member), naming the donor, the step, the donor's *committed* checkpoint (the files it had
saved when it reported that step, with their content hash) and the new hyperparameters;
the study copies the checkpoint into the member's directory and checks the hash before the
member runs. A failed member is replaced by a copy of a top member.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tuningfork import _check as check
from tuningfork.exceptions import SchedulerError, SearchExhausted
from tuningfork.repro import derive_seed
from tuningfork.schedulers._explore import explore
from tuningfork.schedulers.base import Assignment, Decision, Scheduler
from tuningfork.space import Categorical, Distribution, Float, Int, Value
from tuningfork.trial import FrozenTrial, TrialState, schedule_of

if TYPE_CHECKING:
    from tuningfork.space import Space
    from tuningfork.study import CheckpointStore, StudyReader

_MODES = ("perturb", "resample")
_DEAD = (TrialState.FAIL, TrialState.PRUNED)


@dataclass
class _Population:
    """The members as the log has them: member index -> its current trial, plus every
    trial of the population (earlier, failed ones too) for ranking."""

    current: dict[int, FrozenTrial] = field(default_factory=dict)
    trials: list[FrozenTrial] = field(default_factory=list)
    failures: int = 0
    broken: set[str] = field(default_factory=set)  # hashes of commits whose copy failed

    def alive(self) -> list[FrozenTrial]:
        return [t for t in self.current.values() if t.state not in _DEAD]


class PBT(Scheduler):
    """Population-based training (Jaderberg et al. 2017) as a scheduler.

    The objective trains from ``trial.checkpoint_dir`` (when ``trial.resumed``) up to
    ``trial.budget`` steps, saves its checkpoint there **before** it reports at that
    step, then returns (or raises `TrialPruned` once ``trial.should_stop()``): the
    member pauses. Whenever it is resumed it reloads the checkpoint and reads its
    hyperparameters again from ``trial.params`` / ``trial.suggest_*``: they may have
    changed, and the checkpoint may be another member's.

    Args:
        population_size: members trained at once (default 8). A failed member is
            replaced (up to ``max_failures`` times), so the population does not shrink.
        perturbation_interval: steps (in the unit the objective reports) between two
            exploit/explore decisions of a member (default 10).
        max_budget: the step at which a member's training ends (default 100).
        quantile_fraction: a member in the bottom fraction at a boundary copies a member
            of the top fraction (default 0.25, as Ray Tune; at most half the members
            ranked).
        explore: ``"perturb"`` (default): each explored hyperparameter is multiplied by
            one of ``perturbation_factors`` or resampled with ``resample_probability``
            (see `tuningfork.schedulers._explore.perturb` for ints, log scales and
            categoricals); ``"resample"``: each is drawn again from its distribution.
            Either way the value is one of its declared distribution.
        resample_probability: see ``explore`` (default 0.25).
        perturbation_factors: see ``explore`` (default (0.8, 1.2), Jaderberg et al.).
        hyperparams: the names of the parameters to explore (default None: every
            parameter); the others are copied from the donor as they are (e.g. a layer
            count, which the copied checkpoint fixes).
        synchronous: False (default): a member decides as soon as it reaches a boundary,
            ranked against every member that has reported that same step (members behind
            it are not ranked yet; ones ahead are ranked by their value at that step), so
            no worker waits. True: generations: members wait, paused, until every living
            member has reached the boundary, then all are ranked together (idle workers
            wait too; a failed member's replacement catches up first).
        burn_in: no exploit before this step (default 0): the first boundary is the first
            multiple of ``perturbation_interval`` at or after it.
        seed: seeds the donor choice and explore draws (default: the study's seed); each
            draw depends only on (seed, member, step), so every worker proposes the same.
        max_failures: failed members replaced at most this many times in all (default
            None: 4 x population_size), so that an objective that always fails ends.
        keep_checkpoints: keep every committed checkpoint (default False: a commit is
            deleted once no member can copy it any more, i.e. every member is past its
            step; each trial's last commit is kept).
        checkpoint_store: where committed checkpoints are kept (default None: files under
            the study's artefact folder); not recorded in the study (pass it to every
            worker's scheduler).

    Run ``study.optimize(objective, n_jobs=...)`` without ``n_trials``: it ends when every
    member has reached max_budget (``n_trials`` counts runs, one per member and interval).
    A worker with nothing to run while members train waits (`WaitForTrials`).

    Conditional spaces: a member copies only from members with the same parameter names.
    """

    pauses = True
    commits_checkpoints = True

    def __init__(
        self,
        population_size: int = 8,
        perturbation_interval: int = 10,
        max_budget: int = 100,
        *,
        quantile_fraction: float = 0.25,
        explore: str = "perturb",
        resample_probability: float = 0.25,
        perturbation_factors: Sequence[float] = (0.8, 1.2),
        hyperparams: Sequence[str] | None = None,
        synchronous: bool = False,
        burn_in: int = 0,
        seed: int | None = None,
        max_failures: int | None = None,
        keep_checkpoints: bool = False,
        checkpoint_store: CheckpointStore | None = None,
    ) -> None:
        owner = type(self).__name__
        self.keep_checkpoints = check.flag(
            keep_checkpoints, "keep_checkpoints", owner, error=SchedulerError
        )
        self.population_size = check.integer(
            population_size, "population_size", owner, minimum=2, error=SchedulerError
        )
        self.perturbation_interval = check.integer(
            perturbation_interval, "perturbation_interval", owner, minimum=1, error=SchedulerError
        )
        self.max_budget = check.integer(
            max_budget, "max_budget", owner, minimum=1, error=SchedulerError
        )
        self.burn_in = check.integer(burn_in, "burn_in", owner, minimum=0, error=SchedulerError)
        self.quantile_fraction = _fraction(quantile_fraction, "quantile_fraction", owner, 0.5)
        self.resample_probability = _fraction(
            resample_probability, "resample_probability", owner, 1.0
        )
        self.explore = check.choice(explore, _MODES, "explore", owner, error=SchedulerError)
        self.perturbation_factors = _factors(perturbation_factors, owner)
        self.hyperparams = _names(hyperparams, owner)
        self.synchronous = check.flag(synchronous, "synchronous", owner, error=SchedulerError)
        self.seed = check.seed(seed, owner, error=SchedulerError)
        if max_failures is not None:
            max_failures = check.integer(
                max_failures, "max_failures", owner, minimum=0, error=SchedulerError
            )
        self.max_failures = max_failures
        self._store = checkpoint_store
        if self.first_boundary() >= self.max_budget:
            raise SchedulerError(
                f"the first perturbation boundary ({self.first_boundary()}: "
                f"perturbation_interval={perturbation_interval}, burn_in={burn_in}) is not "
                f"below max_budget={max_budget}; members would never exploit",
                option="perturbation_interval",
                owner=owner,
            )

    @property
    def checkpoint_store(self) -> CheckpointStore | None:  # type: ignore[override]
        return self._store

    def _record_options(self) -> dict[str, Any]:
        options = super()._record_options()
        options.pop("checkpoint_store", None)  # a live object: not JSON, not recorded
        return options

    def start_message(self) -> str:
        mode = "synchronous" if self.synchronous else "asynchronous"
        return (
            f"{type(self).__name__}: population {self.population_size}, {mode}, exploit "
            f"every {self.perturbation_interval} steps from step {self.first_boundary()} "
            f"to max_budget={self.max_budget}"
        )

    # -- boundaries ----------------------------------------------------------------------

    def first_boundary(self) -> int:
        """The first step at which members are compared."""
        interval = self.perturbation_interval
        return max(interval, interval * math.ceil(self.burn_in / interval))

    def next_budget(self, step: int) -> int:
        """Where a member at ``step`` pauses next: the next boundary, or max_budget."""
        first = self.first_boundary()
        if step < first:
            return min(first, self.max_budget)
        interval = self.perturbation_interval
        return min(first + interval * ((step - first) // interval + 1), self.max_budget)

    # -- the answer to a report ----------------------------------------------------------

    def decide(self, study: StudyReader, trial: FrozenTrial, step: int, value: float) -> Decision:
        if "pbt" not in trial.system_attrs:
            return Decision.CONTINUE  # not a member (e.g. run before this scheduler)
        budget = trial.system_attrs.get("budget")
        if budget is not None and step >= budget and budget < self.max_budget:
            return Decision.PAUSE
        return Decision.CONTINUE

    # -- the next run --------------------------------------------------------------------

    def assign(self, study: StudyReader, space: Space | None) -> Assignment:
        _check_single_objective(study)
        population = self._population(study)
        if len(population.current) < self.population_size:
            return self._new_member(len(population.current))
        replacement = self._replace(study, population)
        if replacement is not None:
            return replacement
        resume = self._resume_next(study, population)
        if resume is not None:
            return resume
        alive = population.alive()
        if alive and all(t.state is TrialState.COMPLETE for t in alive):
            raise SearchExhausted(
                f"{type(self).__name__}: all {len(alive)} members trained to "
                f"max_budget={self.max_budget}"
            )
        if not alive:
            raise SearchExhausted(
                f"{type(self).__name__}: every member failed and max_failures="
                f"{self._max_failures()} replacements are used up"
            )
        return Assignment(wait=True)

    def obsolete_checkpoints(self, study: StudyReader) -> list[Mapping[str, Any]]:
        """Commits below the lowest boundary a member still needs donors at (where a
        living member paused or last passed, or a failed member awaits its replacement),
        except each member's last one; none with ``keep_checkpoints``."""
        if self.keep_checkpoints:
            return []
        population = self._population(study)
        floor = self._kept_from(population)
        obsolete = []
        for trial in population.trials:
            commits = trial.system_attrs.get("checkpoints", {})
            last = max((int(s) for s in commits), default=None)
            obsolete += [c for s, c in commits.items() if int(s) < floor and int(s) != last]
        return obsolete

    def _kept_from(self, population: _Population) -> int:
        """The lowest boundary whose commits are kept: where a member that is not done
        paused or last passed, or a failed one awaits its replacement."""
        if self.keep_checkpoints:
            return 0
        needed = [
            self._last_boundary(t)
            for t in population.current.values()
            if t.state is not TrialState.COMPLETE
        ]
        return min(needed, default=self.max_budget)

    def assign_at_cap(self, study: StudyReader) -> Assignment | None:
        """At `Study.optimize`'s ``max_trials`` no member can be added or replaced: the
        members there are go on (resumed, or waited for) until they reach max_budget."""
        population = self._population(study)
        resume = self._resume_next(study, population)
        if resume is not None:
            return resume
        alive = population.alive()
        if any(t.state is TrialState.RUNNING for t in alive):
            return Assignment(wait=True)
        return None

    def cap_warning(self, max_trials: int) -> str | None:
        if max_trials >= self.population_size:
            return None
        return (
            f"max_trials={max_trials} is below population_size={self.population_size}: "
            f"{type(self).__name__} trains a population of {max_trials}, and replaces no "
            "failed member"
        )

    def _population(self, study: StudyReader) -> _Population:
        population = _Population()
        for trial in study.trials:
            info = trial.system_attrs.get("pbt")
            if not isinstance(info, Mapping) or "member" not in info:
                continue
            population.trials.append(trial)
            population.current[int(info["member"])] = trial  # the latest one wins
            if trial.state in _DEAD:
                population.failures += 1
            error = trial.system_attrs.get("checkpoint_error")
            if isinstance(error, Mapping):
                population.broken.add(str(error.get("sha256")))
        population.failures -= sum(1 for t in population.current.values() if t.state in _DEAD)
        return population

    def _new_member(self, member: int) -> Assignment:
        return Assignment(
            budget=self.next_budget(0),
            claims=(f"pbt:member:{member}",),
            system_attrs={"pbt": {"member": member}},
        )

    def _max_failures(self) -> int:
        return 4 * self.population_size if self.max_failures is None else self.max_failures

    def _replace(self, study: StudyReader, population: _Population) -> Assignment | None:
        """A new trial in place of a failed member: a copy of a top member at the last
        boundary the failed one reached, or, when no other member can be ranked and
        copied there yet, at the boundary below it, and so on down to the lowest one whose
        commits are kept (from scratch if none)."""
        for member, dead in sorted(population.current.items()):
            if dead.state not in _DEAD:
                continue
            if population.failures >= self._max_failures():
                return None
            population.failures += 1
            claim = f"pbt:replace:{dead.number}"
            step, plan = self._last_boundary(dead), None
            floor = max(self._kept_from(population), self.first_boundary())
            while plan is None and step >= floor:
                plan = self._exploit(study, population, dead, step, force=True)
                if plan is None:
                    step -= self.perturbation_interval
            attrs = {"pbt": {"member": member, "replaces": dead.number}}
            if plan is None:
                return Assignment(budget=self.next_budget(0), claims=(claim,), system_attrs=attrs)
            params, commit, info = plan
            attrs["pbt"].update(info)
            return Assignment(
                budget=self.next_budget(step),
                claims=(claim,),
                params=params,
                checkpoint=commit,
                system_attrs=attrs,
            )
        return None

    def _last_boundary(self, trial: FrozenTrial) -> int:
        """The last boundary ``trial`` reached (reported, or started from), 0 if none."""
        reached = [e["step"] for e in trial.system_attrs["pbt"].get("exploits", ())]
        last = trial.last_step
        if last is not None and last >= self.first_boundary():
            first, interval = self.first_boundary(), self.perturbation_interval
            reached.append(first + interval * ((min(last, self.max_budget) - first) // interval))
        return max(reached, default=0)

    def _resume_next(self, study: StudyReader, population: _Population) -> Assignment | None:
        paused = [t for t in population.alive() if t.state is TrialState.PAUSED]
        if not paused:
            return None
        paused.sort(key=lambda t: (t.last_step or 0, t.number))
        if self.synchronous:
            return self._resume_generation(study, population, paused)
        trial = paused[0]
        return self._resume(study, population, trial)

    def _resume_generation(
        self, study: StudyReader, population: _Population, paused: list[FrozenTrial]
    ) -> Assignment | None:
        """Synchronous mode: resume the members paused at the lowest boundary once every
        living member has reached it (or ended); until then, wait."""
        step = paused[0].last_step or 0
        behind = [
            t
            for t in population.alive()
            if t.state is not TrialState.COMPLETE and step not in t.intermediate_values
        ]
        running = any(t.state is TrialState.RUNNING for t in behind)
        if behind and running:
            return None  # the generation is not complete: wait for those members
        return self._resume(study, population, paused[0])

    def _resume(
        self, study: StudyReader, population: _Population, trial: FrozenTrial
    ) -> Assignment:
        step = trial.last_step or 0
        claim = (f"pbt:resume:{trial.number}:{step}",)
        budget = self.next_budget(step)
        plan = self._exploit(study, population, trial, step, force=False)
        if plan is None:
            return Assignment(resume=trial.number, budget=budget, claims=claim)
        params, commit, info = plan
        attrs = dict(trial.system_attrs["pbt"])
        attrs.update(info)
        attrs["exploits"] = [*trial.system_attrs["pbt"].get("exploits", ()), *info["exploits"]]
        return Assignment(
            resume=trial.number,
            budget=budget,
            claims=claim,
            params=params,
            checkpoint=commit,
            system_attrs={"pbt": attrs},
        )

    # -- exploit and explore -------------------------------------------------------------

    def _exploit(
        self,
        study: StudyReader,
        population: _Population,
        trial: FrozenTrial,
        step: int,
        *,
        force: bool,
    ) -> tuple[dict[str, Value], dict[str, Any], dict[str, Any]] | None:
        """(new params, the donor's commit, attrs) when ``trial`` copies a donor at
        ``step``; None when it goes on as it is. ``force``: copy a top member whatever
        ``trial``'s rank (a replacement)."""
        if step < self.first_boundary():
            return None
        sign = 1.0 if study.direction == "minimize" else -1.0
        ranked = sorted(
            (sign * _value(t, step), t.number, t) for t in _latest_per_member(population, step)
        )
        n = len(ranked)
        if n < 2:
            return None
        k = max(1, min(math.ceil(n * self.quantile_fraction), n // 2))
        bottom = {number for _, number, _ in ranked[n - k :]}
        if not force and trial.number not in bottom:
            return None
        rng = np.random.default_rng(self._draw_seed(study, trial, step))
        donors = [
            t
            for _, number, t in ranked[:k]
            if number != trial.number
            and _commit(t, step, population) is not None
            and (force or set(t.params) == set(trial.params))
        ]
        if not donors:
            return None  # no top member committed a checkpoint at this step
        donor = donors[int(rng.integers(len(donors)))]
        commit = dict(donor.system_attrs["checkpoints"][str(step)])
        history = schedule_at(study, donor.number, step)  # what trained the copied weights
        before = history[-1][1]
        names = [n for n in (self.hyperparams or before) if n in before]
        after = self._new_values(study, population, donor, before, names, step, rng)
        schedule = [[s, p] for s, p in history] + [[step, after]]
        record = {
            "step": step,
            "donor": donor.number,
            "donor_value": _value(donor, step),
            "sha256": commit["sha256"],
            "before": dict(trial.params),
            "donor_params": before,
            "after": after,
        }
        return after, commit, {"schedule": schedule, "exploits": [record]}

    def _new_values(
        self,
        study: StudyReader,
        population: _Population,
        donor: FrozenTrial,
        params: dict[str, Value],
        names: list[str],
        step: int,
        rng: np.random.Generator,
    ) -> dict[str, Value]:
        """The explore step (PB2 overrides it)."""
        return explore(
            params,
            donor.distributions,
            names,
            rng,
            mode=self.explore,
            factors=self.perturbation_factors,
            resample_probability=self.resample_probability,
        )

    def _draw_seed(self, study: StudyReader, trial: FrozenTrial, step: int) -> int:
        seed = self.seed if self.seed is not None else study.seed
        member = trial.system_attrs["pbt"]["member"]
        return derive_seed(seed, "pbt", member, trial.number, step)


# -- lineage and replay -------------------------------------------------------------------


def _value(trial: FrozenTrial, step: int) -> float:
    value = trial.intermediate_values[step]
    return value if math.isfinite(value) else math.inf  # a diverged run ranks last


def _commit(trial: FrozenTrial, step: int, population: _Population) -> Mapping[str, Any] | None:
    """``trial``'s checkpoint committed at ``step``, unless there is none or its copy
    failed before (a damaged snapshot is never handed out twice)."""
    commit = trial.system_attrs.get("checkpoints", {}).get(str(step))
    if commit is None or commit["sha256"] in population.broken:
        return None
    return commit


def _latest_per_member(population: _Population, step: int) -> list[FrozenTrial]:
    """For each member, its latest trial with a value at ``step``: the comparable ones."""
    found: dict[int, FrozenTrial] = {}
    for trial in population.trials:
        if step in trial.intermediate_values:
            found[int(trial.system_attrs["pbt"]["member"])] = trial
    return list(found.values())


def schedule_at(study: StudyReader, number: int, step: float) -> list[tuple[int, dict[str, Value]]]:
    """The schedule that trained trial ``number``'s weights up to ``step`` (entries
    before ``step``), from its exploits alone: a copy made at ``step`` or later came after
    those weights (and replaced its record's schedule), so it is left out; one made
    before brings the donor's schedule up to that copy, found the same way."""
    trial = study.trial(number)
    exploits = trial.system_attrs.get("pbt", {}).get("exploits", ())
    earlier = [e for e in exploits if e["step"] < step]
    if not earlier:
        start = exploits[0]["before"] if exploits else trial.params
        return [(0, dict(start))]
    last = earlier[-1]
    history = schedule_at(study, int(last["donor"]), last["step"])
    return [*history, (int(last["step"]), dict(last["after"]))]


def _check_single_objective(study: StudyReader) -> None:
    if len(study.directions) != 1:
        raise SchedulerError(
            f"PBT ranks members by one objective; this study has {len(study.directions)} directions"
        )


def _fraction(value: float, name: str, owner: str, top: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= top:
        raise SchedulerError(
            f"{name} must be a number in (0, {top}], got {value!r}", option=name, owner=owner
        )
    return float(value)


def _factors(factors: Sequence[float], owner: str) -> tuple[float, ...]:
    values = tuple(factors) if isinstance(factors, (list, tuple)) else ()
    if not values or any(
        isinstance(f, bool) or not isinstance(f, (int, float)) or not (f > 0 and f != 1)
        for f in values
    ):
        raise SchedulerError(
            "perturbation_factors must be a non-empty list of positive numbers other than "
            f"1, e.g. (0.8, 1.2); got {factors!r}",
            option="perturbation_factors",
            owner=owner,
        )
    return tuple(float(f) for f in values)


def _names(names: Sequence[str] | None, owner: str) -> tuple[str, ...] | None:
    if names is None:
        return None
    if isinstance(names, str) or not all(isinstance(n, str) for n in names) or not names:
        raise SchedulerError(
            f"hyperparams must be a list of parameter names, got {names!r}",
            option="hyperparams",
            owner=owner,
        )
    return tuple(names)


def unit_dims(dists: Sequence[Distribution]) -> list[int | None]:
    """For each distribution, the number of grid points of its unit-cube cells (ints and
    stepped floats on a linear scale), or None (continuous, or a log-scaled int)."""
    dims: list[int | None] = []
    for dist in dists:
        if isinstance(dist, Int) and not dist.log:
            dims.append((dist.high - dist.low) // dist.step + 1)
        elif isinstance(dist, Float) and dist.step is not None:
            dims.append(round((dist.high - dist.low) / dist.step) + 1)
        elif isinstance(dist, Categorical):
            dims.append(len(dist.choices))
        else:
            dims.append(None)
    return dims


def replay_schedule(study: Any, number: int) -> list[tuple[int, dict[str, Value]]]:
    """The hyperparameter schedule that produced trial ``number``'s model: ``(step,
    params)`` pairs, each in force from just after ``step``; what `PBTReplay` retrains.
    ``study``: a `Study` or a `StudyReader`."""
    return schedule_of(_reader(study).trial(number))


def lineage(study: Any, number: int) -> list[dict[str, Any]]:
    """The copies behind trial ``number``'s model, newest first: one entry per exploit
    (``recipient``, ``donor``, ``step``, ``sha256`` of the copied checkpoint, the
    hyperparameters ``before`` and ``after``), following each donor back to the start."""
    reader = _reader(study)
    chain: list[dict[str, Any]] = []
    trial, limit = reader.trial(number), math.inf
    while True:
        exploits = [
            e for e in trial.system_attrs.get("pbt", {}).get("exploits", ()) if e["step"] < limit
        ]
        if not exploits:
            return chain
        last = exploits[-1]
        chain.append({"recipient": trial.number, **last})
        trial, limit = reader.trial(int(last["donor"])), last["step"]


def _reader(study: Any) -> StudyReader:
    return study.reader if hasattr(study, "reader") else study


class PBTReplay(Scheduler):
    """Retrain one model from scratch along a recorded PBT schedule ("PBT replay",
    Jaderberg et al. 2017, section 4): one trial, paused at each step where the schedule
    changes and resumed with the next parameters, from its own checkpoint.

    Args:
        schedule: ``(step, params)`` pairs as `replay_schedule` (or ``tuningfork
            pbt-replay``) gives them: steps increasing from 0.
        max_budget: the step at which training ends (that of the original study).
    """

    pauses = True

    def __init__(self, schedule: Sequence[Sequence[Any]], max_budget: int) -> None:
        owner = type(self).__name__
        self.max_budget = check.integer(
            max_budget, "max_budget", owner, minimum=1, error=SchedulerError
        )
        self.schedule = _check_schedule(schedule, self.max_budget)

    def decide(self, study: StudyReader, trial: FrozenTrial, step: int, value: float) -> Decision:
        budget = trial.system_attrs.get("budget")
        if "pbt" in trial.system_attrs and budget is not None and step >= budget < self.max_budget:
            return Decision.PAUSE
        return Decision.CONTINUE

    def assign(self, study: StudyReader, space: Space | None) -> Assignment:
        mine = [t for t in study.trials if t.system_attrs.get("pbt", {}).get("replay")]
        if not mine or mine[-1].state in _DEAD:
            attempt = len(mine)
            if attempt >= 3:
                raise SearchExhausted(f"PBTReplay: the replay failed {attempt} times")
            return self._segment(0, claims=(f"pbt:replay:{attempt}",))
        trial = mine[-1]
        if trial.state is TrialState.COMPLETE:
            raise SearchExhausted(f"PBTReplay: trial {trial.number} trained to max_budget")
        if trial.state is not TrialState.PAUSED:
            return Assignment(wait=True)
        step = trial.last_step or 0
        k = max(i for i, (start, _) in enumerate(self.schedule) if start <= step)
        segment = self._segment(k, claims=(f"pbt:replay:{trial.number}:{step}",))
        params = {n: v for n, v in segment.params.items() if n in trial.distributions}
        changed = {n: v for n, v in params.items() if trial.params.get(n) != v}
        return Assignment(
            resume=trial.number,
            budget=segment.budget,
            claims=segment.claims,
            params=changed,
            system_attrs=segment.system_attrs,
        )

    def _segment(self, k: int, claims: tuple[str, ...]) -> Assignment:
        following = [start for start, _ in self.schedule[k + 1 :]]
        budget = following[0] if following else self.max_budget
        recorded = [[start, dict(params)] for start, params in self.schedule[: k + 1]]
        return Assignment(
            budget=budget,
            claims=claims,
            params=dict(self.schedule[k][1]),
            system_attrs={"pbt": {"member": 0, "replay": True, "schedule": recorded}},
        )


def _check_schedule(
    schedule: Sequence[Sequence[Any]], max_budget: int
) -> list[tuple[int, dict[str, Any]]]:
    def bad(why: str) -> SchedulerError:
        return SchedulerError(
            f"schedule {why}; give (step, params) pairs with steps increasing from 0, as "
            "tuningfork.schedulers.pbt.replay_schedule returns them",
            option="schedule",
            owner="PBTReplay",
        )

    result: list[tuple[int, dict[str, Any]]] = []
    for entry in schedule:
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            raise bad(f"has the entry {entry!r}")
        step, params = entry
        if isinstance(step, bool) or not isinstance(step, int) or not isinstance(params, Mapping):
            raise bad(f"has the entry {entry!r}")
        if result and step <= result[-1][0]:
            raise bad(f"steps are not increasing at {step}")
        if step >= max_budget:
            raise bad(f"changes at step {step}, not below max_budget={max_budget}")
        result.append((step, dict(params)))
    if not result or result[0][0] != 0:
        raise bad("does not start at step 0")
    return result
