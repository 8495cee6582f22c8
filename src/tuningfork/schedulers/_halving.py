"""The engine under SHA, ASHA, Hyperband, BOHB and DEHB: brackets of successive halving,
synchronous or asynchronous, in stopping or promotion mode.

Everything is derived from the study's trials (their reports and the bracket / instance /
rung recorded in their system attributes), so every worker, and a worker restarted later,
makes the same decisions. Slots of a synchronous bracket and promotions are claimed in the
log: two workers never fill one slot or resume one trial.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tuningfork import _check as check
from tuningfork.exceptions import SchedulerError
from tuningfork.repro import derive_seed
from tuningfork.schedulers._index import TrialIndex
from tuningfork.schedulers._rungs import (
    Bracket,
    check_budgets,
    check_rungs,
    rung_reached,
    rungs_message,
    value_at,
)
from tuningfork.schedulers.base import Assignment, Decision, Scheduler
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.space import Space
    from tuningfork.study import StudyReader

_MODES = ("stopping", "promotion")
_ENDED = (TrialState.FAIL, TrialState.COMPLETE)


class HalvingScheduler(Scheduler):
    """Successive halving over one or more brackets (see `SHA`, `ASHA`, `Hyperband`).

    Args:
        min_budget, max_budget: the smallest and largest budget, in the steps the objective
            reports (epochs, batches): whole numbers (``100.0`` is 100; ``0.5`` is an error).
        eta: the reduction factor: 1/eta of a rung goes on to eta times the budget.
        mode: ``"stopping"``: a trial runs on to max_budget and is stopped at a rung where it
            does not qualify; ``"promotion"``: a trial pauses at each rung's budget and a
            later ask resumes it (from ``trial.checkpoint_dir``) at the next rung's budget.
        asynchronous: promote as soon as a trial is in the top 1/eta of its rung (ASHA);
            otherwise a rung waits until it is full (SHA).
        brackets: the brackets to run; synchronous brackets are run in turn, asynchronous
            ones are drawn for each new trial with probability proportional to their size.
        seed: seeds the draw of asynchronous brackets (default: the study's seed).
        rungs: how the brackets' rung budgets were counted, ``"down"`` from max_budget or
            ``"up"`` from min_budget (see `tuningfork.schedulers._rungs`); recorded.
        finish_top: when `Study.optimize`'s ``max_trials`` is reached and the rule promotes
            nothing more, promote the best paused trial of the highest rung, rung by rung,
            until this many trials have completed at max_budget (trials still running count
            as on their way; default 1; 0: end with the trials where the rule left them).

    `rung_budgets` returns the rung budgets (whole steps) of each bracket, and a run
    prints them when it starts (`start_message`).
    """

    def __init__(
        self,
        min_budget: float,
        max_budget: float,
        eta: float,
        *,
        mode: str,
        asynchronous: bool,
        brackets: Sequence[Bracket],
        seed: int | None = None,
        rungs: str = "down",
        finish_top: int = 1,
    ) -> None:
        owner = type(self).__name__
        self.min_budget, self.max_budget = check_budgets(min_budget, max_budget, eta, owner=owner)
        self.mode = check.choice(mode, _MODES, "mode", owner, error=SchedulerError)
        self.finish_top = check.integer(
            finish_top,
            "finish_top",
            owner,
            minimum=0,
            error=SchedulerError,
            hint=" (trials to train to max_budget when max_trials is reached; 1 is the default)",
        )
        self.eta = eta
        self.rungs = check_rungs(rungs, owner=owner)
        self.asynchronous = check.flag(asynchronous, "asynchronous", owner, error=SchedulerError)
        self.pauses = mode == "promotion" or not asynchronous  # SHA stopping: while undecided
        self.brackets = {bracket.s: bracket for bracket in brackets}
        self.order = [bracket.s for bracket in brackets]
        self.seed = check.seed(seed, owner, error=SchedulerError)
        self._indexes: weakref.WeakKeyDictionary[StudyReader, TrialIndex] = (
            weakref.WeakKeyDictionary()
        )

    def rung_budgets(self) -> tuple[tuple[int, ...], ...]:
        """The rung budgets, in whole steps, of each bracket this scheduler runs (largest
        bracket first): where trials are ranked, and in promotion mode the values
        ``trial.budget`` takes. E.g. ``ASHA(1, 52, 3)`` gives
        ``((2, 6, 17, 52),)``, counting down from max_budget; with ``rungs="up"``,
        ``((1, 3, 9, 52),)``."""
        return tuple(self.brackets[s].budgets for s in self.order)

    def rung_table(self) -> dict[int, tuple[int, ...]]:
        return {s: self.brackets[s].budgets for s in self.order}

    def start_message(self) -> str:
        limits = (self.min_budget, self.max_budget)
        return rungs_message(type(self).__name__, self.rung_budgets(), limits, self.eta, self.rungs)

    # -- the answer to a report -----------------------------------------------------------

    def decide(self, study: StudyReader, trial: FrozenTrial, step: int, value: float) -> Decision:
        s = trial.system_attrs.get("bracket", self.order[0] if self.asynchronous else None)
        bracket = self.brackets.get(s)  # type: ignore[arg-type]
        if bracket is None:  # started before this scheduler, or enqueued outside it
            return Decision.CONTINUE
        if self.mode == "promotion":
            budget = trial.system_attrs.get("budget")
            if budget is not None and step >= budget and budget < self.max_budget:
                return Decision.PAUSE
            return Decision.CONTINUE
        if trial.system_attrs.get("promoted_at_cap"):
            return Decision.CONTINUE  # trained on to max_budget beyond the rule
        rung = _rung_crossed(trial, step, bracket.budgets)
        if rung is None or rung == len(bracket.budgets) - 1:
            return Decision.CONTINUE
        _check_single_objective(study)
        index = self._index(study)
        if self.asynchronous:
            better, n = index.rank(bracket.s, rung, value, trial.number)
            keep = max(1, int(n // self.eta))
            return Decision.CONTINUE if better < keep else Decision.STOP
        return self._decide_sync(index, trial, bracket, rung, value)

    def _decide_sync(
        self, index: TrialIndex, trial: FrozenTrial, bracket: Bracket, rung: int, value: float
    ) -> Decision:
        numbers = index.instances.get(trial.system_attrs.get("instance"), [])  # type: ignore[arg-type]
        members = [trial if n == trial.number else index.trials[n] for n in numbers]
        budget = bracket.budgets[rung]
        key = index.key(value)
        values = [v for v in (value_at(t, budget) for t in members) if v is not None]
        better = sum(1 for other in values if index.key(other) < key)
        n_next = bracket.sizes[rung + 1]
        if better >= n_next:
            return Decision.STOP
        ended = sum(
            1
            for t in members
            if t.state in _ENDED
            and value_at(t, budget) is None
            and (rung == 0 or value_at(t, bracket.budgets[rung - 1]) is not None)
        )
        pending = max(0, bracket.sizes[rung] - len(values) - ended)
        if better + pending < n_next:
            return Decision.CONTINUE
        return Decision.PAUSE  # cannot tell yet: wait, checkpointed, for the rung to fill

    # -- the next trial to run ------------------------------------------------------------

    def assign(self, study: StudyReader, space: Space | None) -> Assignment:
        _check_single_objective(study)
        index = self._index(study)
        if self.asynchronous:
            return self._promote_async(index) or self._new_async(study)
        return self._assign_sync(index)

    def _index(self, study: StudyReader) -> TrialIndex:
        """This study's index, brought up to date."""
        index = self._indexes.get(study)
        if index is None:
            default = self.order[0] if self.asynchronous else None
            index = self._indexes[study] = TrialIndex(self.brackets, default, _sign(study))
        index.update(study)
        return index

    def _promote_async(self, index: TrialIndex) -> Assignment | None:
        """Li et al. (2020), Algorithm 2: look for a promotable trial from the top rung down."""
        if self.mode != "promotion":
            return None
        best: tuple[int, Assignment] | None = None
        for s in self.order:
            bracket = self.brackets[s]
            for rung in range(len(bracket.budgets) - 2, -1, -1):
                if best is not None and best[0] >= rung:
                    break
                found = self._promotable(index, s, rung)
                if found is not None:
                    best = (rung, self._resume(found, bracket, rung + 1))
                    break
        return best[1] if best is not None else None

    def _promotable(self, index: TrialIndex, s: int, rung: int) -> int | None:
        """The best PAUSED trial of the rung's top floor(n / eta), if any."""
        paused = index.paused.get((s, rung))
        entries = index.rungs.get((s, rung), [])
        top = int(len(entries) // self.eta)
        if not paused or top == 0:
            return None
        for _, number in entries[:top]:
            if number in paused:
                return number
        return None

    def _new_async(self, study: StudyReader) -> Assignment:
        bracket = self._draw_bracket(study)
        return Assignment(
            budget=self._first_budget(bracket),
            system_attrs={"bracket": bracket.s, "rung": 0},
        )

    def _draw_bracket(self, study: StudyReader) -> Bracket:
        if len(self.order) == 1:
            return self.brackets[self.order[0]]
        seed = self.seed
        if seed is None:
            seed = study.seed
        count = len(study)
        u = derive_seed(seed, "bracket", count) / 2**32
        weights = [self.brackets[s].sizes[0] for s in self.order]
        total = sum(weights)
        acc = 0.0
        for s, weight in zip(self.order, weights):
            acc += weight / total
            if u < acc:
                return self.brackets[s]
        return self.brackets[self.order[-1]]

    def _assign_sync(self, index: TrialIndex) -> Assignment:
        losers: list[int] = []
        for j in sorted(index.instances):
            if j in index.done:
                continue
            members = [index.trials[n] for n in index.instances[j]]
            bracket = self._instance_bracket(j)
            if len(members) >= bracket.sizes[0] and all(t.state.is_finished for t in members):
                index.done.add(j)  # finished states are final: never look again
                continue
            resume = self._promote_sync(index, bracket, members, losers)
            if resume is not None:
                return dataclasses.replace(resume, prune=tuple(losers))
        return dataclasses.replace(self._new_sync(index.instances), prune=tuple(losers))

    def _promote_sync(
        self, index: TrialIndex, bracket: Bracket, members: list[FrozenTrial], losers: list[int]
    ) -> Assignment | None:
        admitted = members
        if len(members) < bracket.sizes[0]:
            return None  # rung 0 is not full yet
        for rung in range(len(bracket.budgets) - 1):
            budget = bracket.budgets[rung]
            if any(value_at(t, budget) is None and not t.state.is_finished for t in admitted):
                return None  # the rung is not complete: wait
            scored = [(v, t) for t in admitted if (v := value_at(t, budget)) is not None]
            scored.sort(key=lambda item: (index.key(item[0]), item[1].number))
            winners = [t for _, t in scored[: bracket.sizes[rung + 1]]]
            chosen = {t.number for t in winners}
            for _, t in scored:
                paused_here = (
                    t.state is TrialState.PAUSED and rung_reached(t, bracket.budgets) == rung
                )
                if paused_here and t.number not in chosen:
                    losers.append(t.number)
            for t in winners:
                if t.state is TrialState.PAUSED and rung_reached(t, bracket.budgets) == rung:
                    return self._resume(t.number, bracket, rung + 1)
            admitted = winners
        return None

    def _new_sync(self, instances: dict[int, list[int]]) -> Assignment:
        for j in sorted(instances):
            bracket = self._instance_bracket(j)
            if len(instances[j]) < bracket.sizes[0]:
                return self._slot(j, bracket, len(instances[j]))
        j = max(instances) + 1 if instances else 0
        return self._slot(j, self._instance_bracket(j), 0)

    def _slot(self, j: int, bracket: Bracket, index: int) -> Assignment:
        return Assignment(
            budget=self._first_budget(bracket),
            claims=(f"slot:{j}:{index}",),
            system_attrs={"bracket": bracket.s, "instance": j, "rung": 0},
        )

    def _instance_bracket(self, j: int) -> Bracket:
        return self.brackets[self.order[j % len(self.order)]]

    # -- at the cap -----------------------------------------------------------------------

    def assign_at_cap(self, study: StudyReader) -> Assignment | None:
        """No new trial may start (``max_trials``) and the rule promotes nothing: while
        fewer than ``finish_top`` trials have completed at max_budget or are running,
        resume the best PAUSED trial of the highest rung (the largest budget reached; the
        best value there) at its next rung's budget. The promotion is claimed like any
        other, so two workers never resume one trial; a worker holding a running trial
        asks again after it, so the finish goes on rung by rung."""
        _check_single_objective(study)
        index = self._index(study)
        if self._finishing(index) >= self.finish_top:
            return None
        found = self._best_paused(index)
        if found is None:
            return None
        number, bracket, rung = found
        promotion = self._resume(number, bracket, rung + 1)
        attrs = {**promotion.system_attrs, "promoted_at_cap": True}
        return dataclasses.replace(promotion, system_attrs=attrs)

    def _finishing(self, index: TrialIndex) -> int:
        """Trials completed at max_budget, plus running ones (which may get there)."""
        return sum(
            1
            for t in index.trials
            if t.state is TrialState.RUNNING
            or (t.state is TrialState.COMPLETE and (t.last_step or 0) >= self.max_budget)
        )

    def _best_paused(self, index: TrialIndex) -> tuple[int, Bracket, int] | None:
        """(trial, bracket, rung) of the best paused trial at the largest budget reached
        below max_budget, over every bracket (they share their budgets)."""
        best: tuple[int, float, int, int, int] | None = None
        for (s, rung), numbers in index.paused.items():
            budgets = self.brackets[s].budgets
            if not numbers or not 0 <= rung < len(budgets) - 1:
                continue
            for key, number in index.rungs.get((s, rung), []):
                if number in numbers and not index.trials[number].system_attrs.get("preempted"):
                    candidate = (-budgets[rung], key, number, s, rung)
                    best = candidate if best is None else min(best, candidate)
                    break
        if best is None:
            return None
        _, _, number, s, rung = best
        return number, self.brackets[s], rung

    def cap_warning(self, max_trials: int) -> str | None:
        needed = self._trials_to_finish()
        if max_trials >= needed:
            return None
        name = type(self).__name__
        text = (
            f"max_trials={max_trials} is below the {needed} trials that {name}'s first "
            f"bracket may need before its rule trains a trial to max_budget={self.max_budget}; "
        )
        if self.finish_top == 0:
            return text + "with finish_top=0 the run may end with every trial below it"
        return text + (
            "when the cap is reached, the best paused trials of the highest rung are "
            f"promoted rung by rung until {self.finish_top} trial(s) complete at max_budget "
            "(finish_top)"
        )

    def _trials_to_finish(self) -> int:
        """Trials the first bracket needs before its rule takes one to max_budget."""
        bracket = self.brackets[self.order[0]]
        if not self.asynchronous:
            return bracket.sizes[0]  # a rung is ranked once it is full
        if self.mode == "stopping":
            return 1  # a trial runs on to max_budget unless it is stopped
        needed = 1  # floor(n / eta) >= needed at each rung below the last
        for _ in bracket.budgets[1:]:
            needed = math.ceil(needed * self.eta - 1e-9)
        return needed

    # -- helpers --------------------------------------------------------------------------

    def _first_budget(self, bracket: Bracket) -> int:
        return bracket.budgets[0] if self.mode == "promotion" else self.max_budget

    def _resume(self, number: int, bracket: Bracket, rung: int) -> Assignment:
        budget = bracket.budgets[rung] if self.mode == "promotion" else self.max_budget
        return Assignment(
            resume=number,
            budget=budget,
            claims=(f"promote:{number}:{rung}",),
            system_attrs={"rung": rung},
        )


def _rung_crossed(trial: FrozenTrial, step: int, budgets: tuple[float, ...]) -> int | None:
    """The rung this report reaches for the first time (None if it reaches none)."""
    earlier = [s for s in trial.intermediate_values if s < step]
    previous = max(earlier) if earlier else -math.inf
    crossed = [i for i, budget in enumerate(budgets) if previous < budget <= step]
    return crossed[-1] if crossed else None


def _sign(study: StudyReader) -> float:
    return 1.0 if study.directions[0] == "minimize" else -1.0


def _check_single_objective(study: StudyReader) -> None:
    if len(study.directions) != 1:
        raise SchedulerError(
            "successive halving ranks trials by one objective; this study has "
            f"{len(study.directions)} directions"
        )
