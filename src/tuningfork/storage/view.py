"""A study's in-memory view, rebuilt by replaying its event log.

Each process keeps one view per study and applies only the batches appended since its
last read, so the cost of a trial does not grow with the study. Races are settled by log
order: the first claim of a key (a grid point, an enqueued trial) wins, later ones are void.

Events (plain JSON dicts, key ``op``):
  trial   create a trial (state RUNNING or WAITING, params, distributions, worker, claim key)
  start   claim a WAITING trial (first start wins)
  params  add suggested parameters to a trial
  report  an intermediate value at a step (optional ``checkpoint``: the trial's checkpoint
          committed at that step, recorded in system attr ``checkpoints`` by step)
  attrs   user and system attributes of a trial
  finish  the final state, values and reason (the first finish wins; with ``if_state``,
          only a trial in that state is finished, e.g. pruning a trial still PAUSED)
  pause   a RUNNING trial stops at a rung with a checkpoint (state PAUSED; optional
          ``reason``, e.g. "preempted" when its worker was told to stop by a signal)
  resume  claim a PAUSED trial to run it on at a larger budget (first resume wins;
          optional ``params``: new values of some of its parameters from here on)
  decide  the scheduler's answer (``pause`` or ``stop``) to the report at ``step``, or a
          pause asked by the trial itself (``reason``, e.g. "preempted"); CONTINUE answers
          are not written. The trial's final state follows its last decision.
  study   study-level attributes (reproducibility record, sampler and scheduler names;
          ``user``: user attributes merged key by key)

``trial``, ``start`` and ``resume`` events may carry ``claim`` (one key) and ``claims`` (a
list): the event takes effect only if none of its keys was claimed before it in the log.

A ``trial`` event whose system attributes hold ``retry_of: n`` is the retry of trial ``n``
(queued with the claim ``retry:n``, so there is at most one); replaying it also records
``retried_by`` on trial ``n``, so the link needs no second event.
"""

from __future__ import annotations

from typing import Any

from tuningfork.space import Distribution, distribution_from_json
from tuningfork.storage.base import Batch, Event
from tuningfork.trial import FrozenDict, FrozenTrial, TrialState

_STATES = {state.value: state for state in TrialState}
_RUNNING = TrialState.RUNNING
_WAITING = TrialState.WAITING
_COMPLETE = TrialState.COMPLETE
_PAUSED = TrialState.PAUSED


class TrialRecord:
    """A trial's mutable state inside a view; `frozen()` gives a cached immutable copy."""

    __slots__ = (
        "number",
        "state",
        "params",
        "distributions",
        "values",
        "intermediate_values",
        "user_attrs",
        "system_attrs",
        "datetime_start",
        "datetime_complete",
        "worker",
        "reason",
        "token",
        "decision",
        "decision_reason",
        "changed",
        "_frozen",
    )

    def __init__(self, number: int, state: TrialState) -> None:
        self.number = number
        self.state = state
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, Distribution] = {}
        self.values: tuple[float, ...] | None = None
        self.intermediate_values: dict[int, float] = {}
        self.user_attrs: dict[str, Any] = {}
        self.system_attrs: dict[str, Any] = {}
        self.datetime_start: float | None = None
        self.datetime_complete: float | None = None
        self.worker: str | None = None
        self.reason: str | None = None
        self.token: str | None = None
        self.decision: str | None = None  # "pause" / "stop" since the trial last started
        self.decision_reason: str | None = None
        self.changed = 0  # sequence number of the last batch that changed this record
        self._frozen: FrozenTrial | None = None

    def frozen(self) -> FrozenTrial:
        """The record as an immutable `FrozenTrial` (cached until the record changes)."""
        if self._frozen is None:
            self._frozen = self.snapshot(self.params, self.distributions)
        return self._frozen

    def snapshot(
        self, params: dict[str, Any], distributions: dict[str, Distribution]
    ) -> FrozenTrial:
        """A new `FrozenTrial` of the record with these parameters (a live trial's, which
        may hold suggestions not written yet); every mapping copied."""
        return FrozenTrial(
            number=self.number,
            state=self.state,
            params=FrozenDict(params),
            distributions=FrozenDict(distributions),
            values=self.values,
            intermediate_values=FrozenDict(self.intermediate_values),
            user_attrs=FrozenDict(self.user_attrs),
            system_attrs=FrozenDict(self.system_attrs),
            datetime_start=self.datetime_start,
            datetime_complete=self.datetime_complete,
            worker=self.worker,
            reason=self.reason,
        )


class StudyView:
    """Everything known about one study, as of sequence number ``last_seq``."""

    def __init__(self, directions: tuple[str, ...]) -> None:
        self.directions = directions
        self.records: list[TrialRecord] = []
        self.claims: dict[str, int] = {}
        self.number_by_seq: dict[int, int] = {}
        self.waiting: dict[int, None] = {}  # insertion-ordered set of WAITING trial numbers
        self.running: dict[int, None] = {}
        self.paused: dict[int, None] = {}
        self.preempted: dict[int, None] = {}  # the PAUSED ones with system attr "preempted"
        self.study_attrs: dict[str, Any] = {}
        self.workers: dict[str, Any] = {}
        self.best_number: int | None = None
        self.n_complete = 0
        self.last_seq = 0
        # (sequence number, trial number) of every change to a trial, in log order: what
        # incremental models read through `StudyReader.changed_since`
        self.changes: list[tuple[int, int]] = []
        self._dist_cache: dict[Any, Distribution] = {}

    # -- replay ---------------------------------------------------------------------------

    def apply(self, batches: list[Batch]) -> None:
        """Apply batches read from the log, in order."""
        for seq, events in batches:
            if seq <= self.last_seq:
                continue
            for event in events:
                handler = _HANDLERS.get(event.get("op", ""))
                if handler is not None:  # unknown ops come from newer versions: skip them
                    handler(self, seq, event)
            self.last_seq = seq

    def _claim(self, seq: int, event: Event) -> bool:
        """Register the event's claim keys; False if any was claimed earlier (lost race)."""
        keys = event.get("claims")
        key = event.get("claim")
        if not keys and key is None:
            return True
        keys = [*(keys or ()), *(() if key is None else (key,))]
        if any(key in self.claims for key in keys):
            return False
        for key in keys:
            self.claims[key] = seq
        return True

    def _on_trial(self, seq: int, event: Event) -> None:
        if not self._claim(seq, event):
            return  # lost the race: this trial never existed
        number = len(self.records)
        record = TrialRecord(number, _STATES[event.get("state", "RUNNING")])
        if "params" in event:
            record.params = dict(event["params"])
        if "dists" in event:
            record.distributions = self._distributions(event["dists"])
        if "sys" in event:
            record.system_attrs = dict(event["sys"])
        if "user" in event:
            record.user_attrs = dict(event["user"])
        record.worker = event.get("worker")
        record.token = event.get("token")
        if record.state is _RUNNING:
            record.datetime_start = event.get("t")
            self.running[number] = None
        elif record.state is _WAITING:
            self.waiting[number] = None
        self.records.append(record)
        self.number_by_seq[seq] = number
        self._touch(seq, record)
        retry_of = record.system_attrs.get("retry_of")
        if isinstance(retry_of, int) and 0 <= retry_of < number:
            failed = self.records[retry_of]
            failed.system_attrs["retried_by"] = number
            self._touch(seq, failed)

    def _on_start(self, seq: int, event: Event) -> None:
        record = self.records[event["n"]]
        if record.state is not _WAITING or not self._claim(seq, event):
            return  # another worker started it first
        record.state = _RUNNING
        record.datetime_start = event.get("t")
        record.worker = event.get("worker")
        record.token = event.get("token")
        record.system_attrs.update(event.get("sys", {}))
        self._touch(seq, record)
        del self.waiting[record.number]
        self.running[record.number] = None

    def _on_params(self, seq: int, event: Event) -> None:
        record = self.records[event["n"]]
        record.params.update(event["params"])
        record.distributions.update(self._distributions(event.get("dists", {})))
        self._touch(seq, record)

    def _on_report(self, seq: int, event: Event) -> None:
        record = self.records[event["n"]]
        if record.state.is_finished:
            return
        record.intermediate_values[event["step"]] = event["value"]
        commit = event.get("checkpoint")
        if commit is not None:  # a new dict: frozen copies share the old one
            known = record.system_attrs.get("checkpoints", {})
            entry = {**commit, "trial": record.number, "step": event["step"]}
            record.system_attrs["checkpoints"] = {**known, str(event["step"]): entry}
        self._touch(seq, record)

    def _on_attrs(self, seq: int, event: Event) -> None:
        record = self.records[event["n"]]
        record.user_attrs.update(event.get("user", {}))
        record.system_attrs.update(event.get("sys", {}))
        self._touch(seq, record)
        self._track_preempted(record)

    def _on_finish(self, seq: int, event: Event) -> None:
        record = self.records[event["n"]]
        if record.state.is_finished:
            return  # the first finish wins (e.g. a stale-trial reaper racing the worker)
        if "if_state" in event and record.state.value != event["if_state"]:
            return
        record.state = _STATES[event["state"]]
        values = event.get("values")
        record.values = tuple(values) if values is not None else None
        record.datetime_complete = event.get("t")
        record.reason = event.get("reason")
        self._touch(seq, record)
        self.running.pop(record.number, None)
        self.waiting.pop(record.number, None)
        self.paused.pop(record.number, None)
        self.preempted.pop(record.number, None)
        if record.state is _COMPLETE:
            self.n_complete += 1
            self._update_best(record)

    def _on_pause(self, seq: int, event: Event) -> None:
        record = self.records[event["n"]]
        if record.state is not _RUNNING:
            return
        record.state = _PAUSED
        record.system_attrs.update(event.get("sys", {}))
        record.reason = event.get("reason")
        self._touch(seq, record)
        self.running.pop(record.number, None)
        self.paused[record.number] = None
        self._track_preempted(record)

    def _on_resume(self, seq: int, event: Event) -> None:
        record = self.records[event["n"]]
        if record.state is not _PAUSED or not self._claim(seq, event):
            return  # another worker resumed it first
        record.state = _RUNNING
        record.worker = event.get("worker")
        record.token = event.get("token")
        record.reason = None  # the pause's reason (e.g. "preempted") no longer holds
        record.decision = record.decision_reason = None
        record.system_attrs.update(event.get("sys", {}))
        if "params" in event:  # new values from here on (PBT's explore), same names
            record.params.update(event["params"])
        self._touch(seq, record)
        del self.paused[record.number]
        self.preempted.pop(record.number, None)
        self.running[record.number] = None

    def _on_decide(self, seq: int, event: Event) -> None:
        record = self.records[event["n"]]
        if record.state is not _RUNNING:
            return
        record.decision = event["decision"]
        record.decision_reason = event.get("reason")
        self._touch(seq, record)

    def _touch(self, seq: int, record: TrialRecord) -> None:
        record._frozen = None
        record.changed = seq
        self.changes.append((seq, record.number))

    def _on_study(self, seq: int, event: Event) -> None:
        self.study_attrs.update(event.get("attrs", {}))
        if "user" in event:  # one user attribute at a time: handles never drop keys
            self.study_attrs["user"] = {**self.study_attrs.get("user", {}), **event["user"]}
        worker = event.get("worker")
        if worker is not None:
            self.workers[worker["id"]] = worker

    def _track_preempted(self, record: TrialRecord) -> None:
        if record.state is _PAUSED and record.system_attrs.get("preempted"):
            self.preempted[record.number] = None
        else:
            self.preempted.pop(record.number, None)

    def _distributions(self, raw: dict[str, Any]) -> dict[str, Distribution]:
        # identical distributions recur in every trial: parse each JSON text once
        result = {}
        cache = self._dist_cache
        for name, data in raw.items():
            try:
                key: Any = tuple(data.items())
                dist = cache.get(key)
            except TypeError:  # lists inside (categorical choices, conditions)
                key = repr(sorted(data.items()))
                dist = cache.get(key)
            if dist is None:
                dist = cache[key] = distribution_from_json(data)
            result[name] = dist
        return result

    def _update_best(self, record: TrialRecord) -> None:
        if len(self.directions) != 1 or record.values is None:
            return
        if self.best_number is None:
            self.best_number = record.number
            return
        best = self.records[self.best_number].values[0]  # type: ignore[index]
        value = record.values[0]
        better = value < best if self.directions[0] == "minimize" else value > best
        if better:
            self.best_number = record.number


_HANDLERS = {
    "trial": StudyView._on_trial,
    "start": StudyView._on_start,
    "params": StudyView._on_params,
    "report": StudyView._on_report,
    "attrs": StudyView._on_attrs,
    "finish": StudyView._on_finish,
    "pause": StudyView._on_pause,
    "resume": StudyView._on_resume,
    "study": StudyView._on_study,
    "decide": StudyView._on_decide,
}
