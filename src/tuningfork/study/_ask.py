"""Asking: what the next trial is. In order: a trial a signal paused, then the
scheduler's assignment (resume a paused trial, or start one with a budget), then a
queued configuration, then a new trial from the sampler. Every claim is settled by log
order: the first in the log wins, a loser asks again."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tuningfork.exceptions import OptionError, SearchExhausted, WaitForTrials
from tuningfork.schedulers.base import Assignment
from tuningfork.space import Distribution, Space
from tuningfork.study._json import json_checked
from tuningfork.trial import Trial, TrialState

if TYPE_CHECKING:
    from tuningfork.study._study import Study

_MAX_CLAIM_TRIES = 1000


def take_trial(study: Study, space: Space | None) -> Trial:
    """The next trial (the caller holds the log's lock, with the view up to date)."""
    preempted = _resume_preempted(study)
    if preempted is not None:
        return preempted
    for _ in range(_MAX_CLAIM_TRIES):
        assignment = study.scheduler.assign(study.reader, space)
        study._flush_records()
        if assignment is not None and assignment.wait:
            raise WaitForTrials(
                f"study {study.name!r}: the scheduler waits for running trials "
                f"{list(study.reader.numbers(TrialState.RUNNING))} to report; ask again later"
            )
        if assignment is not None and assignment.prune:
            _prune_paused(study, assignment.prune)
        if assignment is not None and assignment.resume is not None:
            trial = _resume(study, assignment)
        elif assignment is not None and assignment.checkpoint is not None:
            trial = _create_from_checkpoint(study, assignment)
        else:
            trial = _start_waiting(study, assignment) or _create(study, space, assignment)
        if trial is not None:
            return trial
    raise SearchExhausted(
        f"could not claim a configuration in {_MAX_CLAIM_TRIES} tries; other workers "
        "took every one the sampler or scheduler proposed"
    )


def may_claim(study: Study) -> bool:
    """Whether the next ask may claim something that another worker may have claimed
    since our last read (a grid point, a queued or preempted trial, a place under
    ``max_trials``): then a stale view would lose the race and cost a write."""
    view = study._log.view
    return (
        study._call.max_trials is not None
        or bool(view.waiting or view.preempted)
        or study.sampler.reserves
    )


def _handle(study: Study, number: int, **kwargs: Any) -> Trial:
    """A handle on trial ``number`` with what its objective may need to know:
    ``retry_of`` (the failed trial this one retries, or None), ``checkpoint_of`` (whose
    checkpoint directory to load from: the first trial of a retry chain)."""
    trial = Trial(study, number, channel=study._channel, **kwargs)
    system = study._log.view.records[number].system_attrs
    trial.retry_of = system.get("retry_of")
    trial.checkpoint_of = system.get("checkpoint_of", number)
    trial.preempted = False
    return trial


def _claim_fields(
    study: Study, event: dict[str, Any], assignment: Assignment | None, system: dict[str, Any]
) -> None:
    if study._call.monitored:
        system["heartbeat"] = True
    if assignment is not None:
        if assignment.claims:
            event["claims"] = list(assignment.claims)
        system.update(assignment.system_attrs)
        if assignment.budget is not None:
            system["budget"] = assignment.budget
    if system:
        event["sys"] = system


def _start_waiting(study: Study, assignment: Assignment | None) -> Trial | None:
    log = study._log
    view = log.view
    while view.waiting:
        number = next(iter(view.waiting))
        token = uuid.uuid4().hex
        event = {"op": "start", "n": number, "worker": log.worker, "t": study._clock()}
        _claim_fields(study, event, assignment, {})
        log.append([{**event, "token": token}], sync=True)
        record = view.records[number]
        if record.token == token:
            budget = assignment.budget if assignment is not None else None
            return _handle(study, number, fixed_params=record.params, budget=budget)
        if record.state is TrialState.WAITING:
            return None  # the scheduler's claim was taken: ask it again
    return None


def _create(study: Study, space: Space | None, assignment: Assignment | None) -> Trial | None:
    log = study._log
    reservation = study.sampler.reserve(study.reader, space)
    study._flush_records()
    event: dict[str, Any] = {"op": "trial", "state": "RUNNING", "worker": log.worker}
    event["t"] = study._clock()
    system: dict[str, Any] = {}
    if reservation is not None:
        event["claim"] = reservation.key
        system.update(reservation.system_attrs)
    _claim_fields(study, event, assignment, system)
    max_trials = study._call.max_trials
    if max_trials is not None:
        place = len(log.view.records)  # a stale view loses the claim and asks again
        if place >= max_trials:
            return _resume_at_cap(study)
        event["claims"] = [*event.get("claims", ()), f"place:{place}"]
    seq = log.append([event], sync=True)
    number = log.view.number_by_seq.pop(seq, None)
    if number is None:
        return None
    fixed = dict(reservation.params) if reservation is not None else {}
    hints = dict(assignment.params) if assignment is not None else {}
    budget = assignment.budget if assignment is not None else None
    return _handle(study, number, fixed_params=fixed, budget=budget, hints=hints)


def _create_from_checkpoint(study: Study, assignment: Assignment) -> Trial | None:
    """A new trial that starts from another trial's committed checkpoint (e.g. PBT's
    replacement of a failed member): the parameters and their distributions are written
    with its creation, and it goes on from the checkpoint's step."""
    log = study._log
    commit = assignment.checkpoint
    assert commit is not None
    params = json_checked(dict(assignment.params), "Assignment.params")
    source = log.view.records[int(commit["trial"])].distributions
    missing = sorted(set(params) - set(source))
    if missing:
        raise OptionError(
            f"Assignment.params names {missing}, which trial {commit['trial']} (whose "
            "checkpoint the new trial starts from) does not have",
            option="params",
        )
    dists = {name: source[name] for name in params}
    event: dict[str, Any] = {"op": "trial", "state": "RUNNING", "worker": log.worker}
    event.update(t=study._clock(), params=params)
    event["dists"] = {name: dist._json() for name, dist in dists.items()}
    _claim_fields(study, event, assignment, {})
    max_trials = study._call.max_trials
    if max_trials is not None:
        place = len(log.view.records)
        if place >= max_trials:
            return _resume_at_cap(study)
        event["claims"] = [*event.get("claims", ()), f"place:{place}"]
    seq = log.append([event], sync=True)
    number = log.view.number_by_seq.pop(seq, None)
    if number is None:
        return None
    trial = _handle(
        study,
        number,
        params=params,
        distributions=dists,
        budget=assignment.budget,
        last_step=int(commit["step"]),
    )
    trial._restore = dict(commit)
    return trial


def _resume(study: Study, assignment: Assignment) -> Trial | None:
    log = study._log
    number = assignment.resume
    assert number is not None
    token = uuid.uuid4().hex
    now = study._clock()
    event = {"op": "resume", "n": number, "worker": log.worker, "t": now, "token": token}
    _claim_fields(study, event, assignment, {"resumed_at": now})
    if assignment.params:
        _check_new_params(log.view.records[number].distributions, assignment, number)
        event["params"] = json_checked(dict(assignment.params), "Assignment.params")
    log.append([event], sync=True)
    record = log.view.records[number]
    if record.token != token:
        return None
    last = max(record.intermediate_values) if record.intermediate_values else None
    trial = _handle(
        study,
        number,
        params=record.params,
        distributions=record.distributions,
        budget=assignment.budget,
        last_step=last,
    )
    if assignment.checkpoint is not None:
        trial._restore = dict(assignment.checkpoint)
    return trial


def _check_new_params(dists: Mapping[str, Distribution], assignment: Assignment, n: int) -> None:
    """New values for a resumed trial must be values of its own parameters' distributions."""
    for name, value in assignment.params.items():
        dist = dists.get(name)
        if dist is None:
            raise OptionError(
                f"Assignment.params gives {name!r}, which trial {n} does not have; a resumed "
                f"trial keeps its parameter names (it has {sorted(dists)})",
                option="params",
            )
        if not dist.contains(value):
            raise OptionError(
                f"Assignment.params gives {name}={value!r} for trial {n}, outside {dist.label()}",
                option="params",
            )


def _resume_at_cap(study: Study) -> Trial | None:
    """No new trial may start (``max_trials``): the scheduler's last promotion beyond
    its rule (`Scheduler.assign_at_cap`), or `SearchExhausted`. None: another worker
    claimed that promotion first (ask again)."""
    assignment = study.scheduler.assign_at_cap(study.reader)
    study._flush_records()
    if assignment is not None and assignment.wait:
        raise WaitForTrials(
            f"study {study.name!r} has its {study._call.max_trials} trials (max_trials); "
            "the scheduler waits for running trials to report"
        )
    if assignment is None or assignment.resume is None:
        raise SearchExhausted(
            f"study {study.name!r} has its {study._call.max_trials} trials (max_trials)"
        )
    return _resume(study, assignment)


def _resume_preempted(study: Study) -> Trial | None:
    """Resume a trial that a signal paused (system attr ``preempted``) before anything
    else, at the budget it had; the first resume in the log wins."""
    view = study._log.view
    for number in list(view.preempted):
        record = view.records[number]
        assignment = Assignment(
            resume=number,
            budget=record.system_attrs.get("budget"),
            system_attrs={"preempted": False},
        )
        trial = _resume(study, assignment)
        if trial is not None:
            return trial
    return None


def _prune_paused(study: Study, numbers: Iterable[int]) -> None:
    records = study._log.view.records
    events = [
        {
            "op": "finish",
            "n": number,
            "state": "PRUNED",
            "if_state": "PAUSED",
            "reason": "not promoted from its rung",
            "t": study._clock(),
        }
        for number in numbers
        if records[number].state is TrialState.PAUSED
        # a trial paused by a signal mid-rung is resumed, never judged on its rung
        and not records[number].system_attrs.get("preempted")
    ]
    if events:
        study._log.append(events, sync=True)
