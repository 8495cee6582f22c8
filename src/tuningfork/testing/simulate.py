"""Simulated time: run a study's trials on N virtual workers, single-threaded.

This is a tool for tuningfork's own benchmarks and tests, not a user feature: it lets a
2-core machine compare schedulers at 4, 16 or 64 workers, and it makes an asynchronous
scheduler's behaviour under many workers exactly reproducible.

A benchmark function is ``evaluate(params, step) -> value`` with ``step_cost(params, step)
-> virtual seconds`` (default 1 per step), over steps ``1..max_step``. Each virtual worker
runs the ask-and-tell loop of a real worker::

    trial = study.ask(space)
    for step in range((trial.last_step or 0) + 1, end + 1):   # end: trial.budget or max_step
        trial.report(evaluate(trial.params, step), step)
        if trial.should_stop():                                # stop, or pause at a rung
            study.tell(trial, state="PRUNED")                  # recorded PAUSED if paused
            break
    else:
        study.tell(trial, value)

but a step takes no wall time: it *finishes* ``step_cost`` virtual seconds after it started,
and its report happens then. Every ask, report and tell of every worker is processed in the
order of an event queue keyed by (virtual time, worker id), so a scheduler sees the study
exactly as it would stand on a real cluster whose steps took those times (ties go to the
lower worker id; asking takes no virtual time). Everything is deterministic: the same
study seed, sampler and scheduler give the same trace.

The cost of a run is the sum of the step costs actually paid: a trial resumed from a pause
pays only the steps it adds. The run ends at a virtual-time limit, a total-cost limit, when
a ``stop`` callback says so, or when every worker has retired (a worker retires when
``study.ask`` raises `SearchExhausted`). Trials in flight at the end stay RUNNING in the
study.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuningfork._experimental import experimental
from tuningfork.exceptions import SearchExhausted, WaitForTrials
from tuningfork.space import Space
from tuningfork.study import Study, create_study
from tuningfork.trial import Trial

__all__ = [
    "Simulation",
    "StepRecord",
    "TrialRun",
    "simulate",
    "simulated_study",
]

Evaluate = Callable[[Mapping[str, Any], int], float]
StepCost = Callable[[Mapping[str, Any], int], float]


@dataclass(frozen=True)
class StepRecord:
    """One step a worker finished and reported.

    ``time``: the virtual time the step finished (= when its report was made);
    ``cost``: the total cost paid by all workers up to and including this step.
    """

    time: float
    cost: float
    worker: int
    trial: int
    step: int
    value: float


@dataclass(frozen=True)
class TrialRun:
    """One run of a trial on a worker, from its ask to its tell.

    ``state`` is the state the tell recorded (COMPLETE, PRUNED, PAUSED), or RUNNING for a
    run still in flight when the simulation ended. ``first_step`` > ``last_step`` for a run
    that had no step left to train (it was told its last value at once).
    """

    worker: int
    trial: int
    resumed: bool
    budget: float | None
    start: float
    end: float
    first_step: int
    last_step: int
    state: str


@dataclass
class Simulation:
    """The trace of a simulated run.

    ``steps``: every step reported, in the order processed (non-decreasing virtual time);
    ``runs``: every trial run (ask to tell), in the order they ended; ``params``: each
    trial's parameters, by trial number (as the simulation saw them); ``busy``: each
    worker's virtual time spent training (steps in flight at the end count up to
    ``elapsed``); ``elapsed``: the virtual time at the end; ``cost``: the total cost paid;
    ``ended_by``: ``"time_limit"``, ``"cost_limit"``, ``"stop"`` or ``"exhausted"``.
    """

    study: Study
    n_workers: int
    steps: list[StepRecord] = field(default_factory=list)
    runs: list[TrialRun] = field(default_factory=list)
    params: dict[int, dict[str, Any]] = field(default_factory=dict)
    busy: list[float] = field(default_factory=list)
    retired: list[float | None] = field(default_factory=list)
    elapsed: float = 0.0
    cost: float = 0.0
    ended_by: str = ""

    @property
    def utilisation(self) -> float:
        """Busy time over ``n_workers * elapsed`` (1.0: no worker ever waited or retired)."""
        if self.elapsed <= 0:
            return 0.0
        return sum(self.busy) / (self.n_workers * self.elapsed)

    def incumbents(self, direction: str | None = None) -> list[StepRecord]:
        """The steps at which the incumbent changed, in virtual-time order.

        The incumbent is the trial with the best value reported at the highest step any
        trial has reached so far (ties: the earliest report); the list holds each report
        that made a new trial the incumbent or improved its value.
        """
        sign = -1.0 if (direction or self.study.direction) == "maximize" else 1.0
        changes: list[StepRecord] = []
        top, best = -1, math.inf
        for record in self.steps:
            score = sign * record.value
            if record.step > top or (record.step == top and score < best):
                top, best = record.step, score
                changes.append(record)
        return changes


class _Worker:
    __slots__ = (
        "cost", "end", "first", "params", "resumed", "run_start", "step", "step_start", "trial"
    )  # fmt: skip

    def __init__(self) -> None:
        self.trial: Trial | None = None
        self.params: dict[str, Any] = {}
        self.step = 0  # the step in flight
        self.end = 0  # the last step of this run
        self.first = 0
        self.step_start = 0.0
        self.cost = 0.0  # the cost of the step in flight
        self.run_start = 0.0
        self.resumed = False


@experimental("0.1.0")
def simulate(
    study: Study,
    space: Space | Mapping[str, Any] | None,
    evaluate: Evaluate,
    *,
    n_workers: int,
    max_step: int,
    step_cost: StepCost | None = None,
    time_limit: float | None = None,
    cost_limit: float | None = None,
    stop: Callable[[Simulation, StepRecord], bool] | None = None,
) -> Simulation:
    """Run ``study`` on ``n_workers`` virtual workers until a limit; return the trace.

    Args:
        study: any study (e.g. from `simulated_study`); its sampler and scheduler decide.
        space: passed to ``study.ask``, so that each trial's parameters are known at once.
        evaluate: ``evaluate(params, step)``: the value a trial reports at ``step``.
        n_workers: how many virtual workers share the study.
        max_step: the last step of a trial run without a budget, and a cap on any budget
            (should be at least the scheduler's largest budget).
        step_cost: ``step_cost(params, step)``: how long step ``step`` takes, in virtual
            seconds (> 0); default 1.
        time_limit: end when the virtual clock passes this time (steps still in flight
            then are not paid and their reports never happen).
        cost_limit: end right after the report whose step makes the total cost reach this.
        stop: ``stop(simulation, record)``, called after each report with the trace so far
            and the report's `StepRecord`; True ends the run there.

    At least one of ``time_limit`` and ``cost_limit`` is required.
    """
    if n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers!r}")
    if max_step < 1:
        raise ValueError(f"max_step must be >= 1, got {max_step!r}")
    if time_limit is None and cost_limit is None:
        raise ValueError("give time_limit or cost_limit (or both): a simulation needs an end")
    if space is not None and not isinstance(space, Space):
        space = Space.from_dict(space)

    sim = Simulation(study, n_workers, busy=[0.0] * n_workers, retired=[None] * n_workers)
    workers = [_Worker() for _ in range(n_workers)]
    queue: list[tuple[float, int]] = [(0.0, w) for w in range(n_workers)]  # one event each
    heapq.heapify(queue)
    now = 0.0
    ended_by = "exhausted"

    def cost_of(params: dict[str, Any], step: int) -> float:
        if step_cost is None:
            return 1.0
        c = float(step_cost(params, step))
        if not (c > 0 and math.isfinite(c)):
            raise ValueError(f"step_cost must be a positive number, got {c!r} at step {step}")
        return c

    def start_step(w: int, worker: _Worker, t: float) -> None:
        assert worker.trial is not None
        worker.step_start = t
        worker.cost = cost_of(worker.params, worker.step)
        heapq.heappush(queue, (t + worker.cost, w))

    def end_run(w: int, worker: _Worker, t: float, state: str) -> None:
        assert worker.trial is not None
        sim.runs.append(
            TrialRun(
                worker=w,
                trial=worker.trial.number,
                resumed=worker.resumed,
                budget=worker.trial.budget,
                start=worker.run_start,
                end=t,
                first_step=worker.first,
                last_step=worker.step if state != "RUNNING" else worker.step - 1,
                state=state,
            )
        )
        worker.trial = None

    while queue:
        t, w = queue[0]
        if time_limit is not None and t > time_limit:
            now, ended_by = time_limit, "time_limit"
            break
        heapq.heappop(queue)
        now = t
        worker = workers[w]
        if worker.trial is None:  # the worker is free: ask
            try:
                trial = study.ask(space)
            except WaitForTrials:  # ask again just after the next step ends elsewhere
                if queue:
                    heapq.heappush(queue, (queue[0][0] + 1e-9, w))
                else:
                    sim.retired[w] = t
                continue
            except SearchExhausted:
                sim.retired[w] = t
                continue
            worker.trial = trial
            worker.params = sim.params[trial.number] = trial.params
            worker.resumed = trial.resumed
            worker.run_start = t
            worker.first = (trial.last_step or 0) + 1
            budget = trial.budget
            worker.end = max_step if budget is None else min(max_step, _ceil(budget))
            if worker.first > worker.end:  # nothing to train: tell the value it has
                value = trial.frozen().intermediate_values[trial.last_step or 0]
                worker.step = worker.first - 1
                told = study.tell(trial, value)
                end_run(w, worker, t, told.state.value)
                heapq.heappush(queue, (t, w))
                continue
            worker.step = worker.first
            start_step(w, worker, t)
            continue
        # the worker's step in flight finishes now: pay it, report it
        trial = worker.trial
        step = worker.step
        sim.busy[w] += worker.cost
        sim.cost += worker.cost
        value = float(evaluate(worker.params, step))
        trial.report(value, step)
        record = StepRecord(t, sim.cost, w, trial.number, step, value)
        sim.steps.append(record)
        if trial.should_stop():
            told = study.tell(trial, state="PRUNED")
            end_run(w, worker, t, told.state.value)
            heapq.heappush(queue, (t, w))
        elif step >= worker.end:
            told = study.tell(trial, value)
            end_run(w, worker, t, told.state.value)
            heapq.heappush(queue, (t, w))
        else:
            worker.step = step + 1
            start_step(w, worker, t)
        if cost_limit is not None and sim.cost >= cost_limit - 1e-9:
            ended_by = "cost_limit"
            break
        if stop is not None and stop(sim, record):
            ended_by = "stop"
            break

    sim.elapsed = now
    for w, worker in enumerate(workers):  # runs in flight at the end
        if worker.trial is not None:
            if worker.step_start < now:
                sim.busy[w] += now - worker.step_start
            end_run(w, worker, now, "RUNNING")
    sim.ended_by = ended_by
    return sim


def _ceil(budget: float) -> int:
    """The first whole step at or past ``budget`` (a rung's value is the report there)."""
    return max(1, math.ceil(budget - 1e-9))


def simulated_study(
    *,
    sampler: Any = None,
    scheduler: Any = None,
    direction: str = "minimize",
    seed: int | None = 0,
    name: str | None = None,
    artifact_root: Any = None,
) -> Study:
    """An in-memory study for `simulate` (the arguments are those of `create_study`)."""
    return create_study(
        name,
        storage="memory",
        direction=direction,
        sampler=sampler,
        scheduler=scheduler,
        seed=seed,
        artifact_root=artifact_root,
    )
