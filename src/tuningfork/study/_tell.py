"""Telling: a trial's reports and the scheduler's answers to them, and its end (a value,
PRUNED, FAIL, or PAUSED), written to the log. The final state follows the log: a trial
whose last decision was PAUSE is recorded PAUSED, after STOP it is PRUNED."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuningfork.exceptions import OptionError, TrialNotInStudy, TrialStateError
from tuningfork.schedulers.base import Decision
from tuningfork.storage.view import TrialRecord
from tuningfork.study._json import json_checked
from tuningfork.trial import FrozenTrial, Trial, TrialState, check_values

if TYPE_CHECKING:
    from tuningfork.study._study import Study

Events = list[dict[str, Any]]

_CLOCK_SLACK_S = 1.0
"""How much earlier than a run's start a file time may read and still count as written
in that run (file systems round times; a shared one may run a little behind)."""


def pending_events(handle: Trial | None) -> Events:
    """The handle's suggestions not written yet, as a ``params`` event (or nothing)."""
    if handle is None:
        return []
    pending = handle._take_pending()
    if not pending:
        return []
    dists = {name: handle._distributions[name]._json() for name in pending}
    return [{"op": "params", "n": handle.number, "params": pending, "dists": dists}]


def report(study: Study, trial: Trial, value: float, step: int) -> None:
    """Write a report, then the scheduler's answer to it (a CONTINUE is not written).
    A report at the trial's budget first commits its checkpoint if the scheduler asks
    for commits (outside the lock: copying may take a while)."""
    commit = commit_checkpoint(study, trial, step)
    log = study._log
    with log.lock:
        events = pending_events(trial)
        event = {"op": "report", "n": trial.number, "step": step, "value": value}
        if commit is not None:
            event["checkpoint"] = commit
        events.append(event)
        log.append(events, sync=True)
        record = log.view.records[trial.number]
        if record.state is not TrialState.RUNNING or not study.scheduler.decides:
            return  # ended meanwhile (e.g. reaped), or a scheduler that never decides
        frozen = record.frozen()
        decision = study.scheduler.decide(study.reader, frozen, step, value)
        study._flush_records()
        if decision is not Decision.CONTINUE:
            log.append([_decide_event(trial.number, decision, step=step)], sync=True)


def commit_checkpoint(study: Study, trial: Trial, step: int) -> dict[str, Any] | None:
    """Commit ``trial``'s checkpoint at ``step`` when the scheduler asks for commits and
    the step is the run's first report at or past its budget (see
    `Scheduler.commits_checkpoints`); None when there is nothing new to commit (with a
    warning: other trials cannot copy it)."""
    budget = trial.budget
    if not study.scheduler.commits_checkpoints or budget is None or step < budget:
        return None
    if trial._committed:
        return None  # reports past the budget: the run's checkpoint is committed already
    trial._committed = True
    store = study.checkpoint_store
    commit = store.commit(trial.checkpoint_dir, trial.number, step)
    earlier = study._log.record(trial.number).system_attrs.get("checkpoints", {})
    stale = (
        commit is not None
        and any(c["sha256"] == commit["sha256"] for c in earlier.values())
        and not _written_since(trial.checkpoint_dir, trial._run_start - _CLOCK_SLACK_S)
    )
    if commit is None or stale:
        if commit is not None:
            store.discard(commit)
        what = "the same files as at an earlier report" if stale else "no files"
        if what not in study._commit_warnings:  # once per kind and handle: not per run
            study._commit_warnings.add(what)
            warnings.warn(
                f"trial {trial.number} reported step {step} (its budget) with {what} in "
                f"{trial.checkpoint_dir}: save the checkpoint there *before* trial.report() "
                "at the end of each run; no checkpoint was committed, so no other trial can "
                "copy this one at this step (further cases are not warned; a trial's "
                "system_attrs['checkpoints'] lists its commits)",
                stacklevel=4,
            )
        return None
    return commit


def _written_since(folder: Path, since: float) -> bool:
    """Whether a file of ``folder`` was written at or after ``since`` (seconds since the
    epoch): a checkpoint saved again in this run with the same bytes (training that left
    the state as it was) is a new one; files untouched since an earlier run are not."""
    for path in folder.rglob("*"):
        try:
            if path.is_file() and path.stat().st_mtime >= since:
                return True
        except OSError:  # removed meanwhile
            continue
    return False


def _decide_event(
    number: int, decision: Decision, *, step: int | None = None, reason: str | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = {"op": "decide", "n": number, "decision": decision.value}
    if step is not None:
        event["step"] = step
    if reason is not None:
        event["reason"] = reason
    return event


def decide(study: Study, trial: Trial, decision: Decision, reason: str) -> None:
    """Record a decision the trial (or its worker) took itself, e.g. a pause on preemption."""
    with study._log.lock:
        study._log.append([_decide_event(trial.number, decision, reason=reason)], sync=True)


def should_stop(study: Study, trial: Trial) -> bool:
    """The scheduler's answer first: a trial that reaches its rung just as a signal
    arrives is paused (or stopped) at the rung as usual, not as preempted, so that it is
    resumed at the next budget rather than again at the same one."""
    record = study._log.record(trial.number)
    if record.decision is not None:
        if record.decision_reason != "preempted":
            trial.preempted = False  # recorded as the scheduler decided (see above)
        return True
    if study._call.preempt:
        trial.preempted = True  # a signal asked this worker to stop: checkpoint, return
        decide(study, trial, Decision.PAUSE, "preempted")
        return True
    return False


def set_user_attr(study: Study, trial: Trial, key: str, value: Any) -> None:
    value = json_checked(value, f"trial attribute {key!r}")
    with study._log.lock:
        events = pending_events(trial)
        events.append({"op": "attrs", "n": trial.number, "user": {key: value}})
        study._log.append(events, sync=True)


_RESERVED = frozenset(
    {
        "budget",
        "bracket",
        "rung",
        "instance",
        "retry_of",
        "retry_count",
        "retried_by",
        "checkpoint_of",
        "preempted",
        "heartbeat",
        "resumed_at",
        "promoted_at_cap",
        "checkpoints",
        "pbt",
    }
)


def set_system_attrs(study: Study, trial: Trial, attrs: Any) -> None:
    taken = sorted(_RESERVED.intersection(attrs))
    if taken:
        raise OptionError(
            f"system attributes {taken} are the study's own; use other names",
            option="attrs",
        )
    attrs = json_checked(dict(attrs), "system attributes")
    with study._log.lock:
        events = pending_events(trial)
        events.append({"op": "attrs", "n": trial.number, "sys": attrs})
        study._log.append(events)


def tell_events(
    study: Study,
    trial: Trial | int,
    value: float | Sequence[float] | None,
    values: Sequence[float] | None,
    state: TrialState | str | None,
    reason: str | None,
) -> tuple[int, TrialState, Events]:
    """The events that finish (or pause) a trial, its number and its final state; the
    caller holds the log's lock and appends them."""
    handle, number = (trial, trial.number) if isinstance(trial, Trial) else (None, trial)
    if handle is not None and not study._owns(handle):
        raise TrialNotInStudy(
            f"trial {number} belongs to study {handle.study.name!r} "
            f"({handle.study.storage.url or 'in memory'}), not to study {study.name!r}; "
            "tell a trial to the study that asked it"
        )
    final = TrialState(state) if state is not None else TrialState.COMPLETE
    if final in (TrialState.WAITING, TrialState.RUNNING):
        raise TrialStateError(f"tell() ends a trial; state {final} is not a final state")
    raw = values if values is not None else value
    numbers: tuple[float, ...] | None = None
    if final is TrialState.COMPLETE:
        try:
            numbers = check_values(raw, len(study.directions))
        except ValueError as error:
            final, reason = TrialState.FAIL, str(error)
            warnings.warn(f"trial {number} failed: {error}", stacklevel=4)
    elif raw is not None:
        numbers = tuple(float(v) for v in (raw if isinstance(raw, Sequence) else [raw]))
    record = study._log.record(number)
    if record.state.is_finished or record.state is TrialState.PAUSED:
        raise TrialStateError(
            f"trial {number} is already {record.state}; a trial is told only once per run"
        )
    events = pending_events(handle)
    decision = Decision(record.decision) if record.decision else Decision.CONTINUE
    pause_reason = record.decision_reason
    if final is not TrialState.FAIL:
        if final is TrialState.COMPLETE and numbers is not None and handle is not None:
            at_budget, decided = _report_at_budget(study, handle, record, numbers)
            events += at_budget
            decision = decided or decision
        if decision is Decision.PAUSE:
            final = TrialState.PAUSED
        elif decision is Decision.STOP:
            final, numbers = TrialState.PRUNED, None
    if final is TrialState.PAUSED:
        pause: dict[str, Any] = {"op": "pause", "n": number, "t": study._clock()}
        # the log says why: a scheduler's pause at a rung stays one even when a signal
        # came just after it (the trial is promoted as usual, not resumed at the rung)
        if pause_reason == "preempted":
            pause["reason"] = "preempted"
            pause["sys"] = {"preempted": True}
        events.append(pause)
    else:
        events.append(
            {
                "op": "finish",
                "n": number,
                "state": final.value,
                "values": list(numbers) if numbers is not None else None,
                "reason": reason,
                "t": study._clock(),
            }
        )
    return number, final, events


def _report_at_budget(
    study: Study, handle: Trial, record: TrialRecord, numbers: tuple[float, ...]
) -> tuple[Events, Decision | None]:
    """A trial that trained to its budget and returned without reporting there: its value
    becomes the report at the budget, and the scheduler decides whether it pauses."""
    budget = handle.budget
    if budget is None or len(numbers) != 1 or not study.scheduler.decides:
        return [], None
    steps = record.intermediate_values
    if steps and max(steps) >= budget:
        return [], None
    step = math.ceil(budget)
    frozen = dataclasses.replace(record.frozen(), intermediate_values={**steps, step: numbers[0]})
    decision = study.scheduler.decide(study.reader, frozen, step, numbers[0])
    study._flush_records()
    event = {"op": "report", "n": handle.number, "step": step, "value": numbers[0]}
    commit = commit_checkpoint(study, handle, step)  # the value returned is its report
    if commit is not None:
        event["checkpoint"] = commit
    events: Events = [event]
    if decision is not Decision.CONTINUE:
        events.append(_decide_event(handle.number, decision, step=step))
    return events, decision


def tell_done(study: Study, trial: Trial | int, number: int, final: TrialState) -> FrozenTrial:
    """What follows a tell's append (the caller holds the log's lock)."""
    if isinstance(trial, Trial):
        trial._finished = True
    study._active.pop(number, None)
    if final is TrialState.FAIL:
        from tuningfork.study._reap import queue_retries

        queue_retries(study, [number])
    return study._log.view.records[number].frozen()
