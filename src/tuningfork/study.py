"""Studies: create, load, ask, tell, optimize, and read the results.

A `Study` is a handle on a study kept in a storage. It keeps a `StudyView` replayed from
the study's event log and brings it up to date before each decision, so any number of
`Study` handles, in threads, processes or machines, can share one study.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import signal
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuningfork import _export
from tuningfork._progress import Progress
from tuningfork.exceptions import (
    CommandFailed,
    SearchExhausted,
    SpaceError,
    StudyNotFound,
    TrialNotFound,
    TrialNotInStudy,
    TrialPruned,
    TrialStateError,
    TuningforkError,
)
from tuningfork.repro import derive_seed, environment_record, worker_id, worker_record
from tuningfork.samplers.base import Sampler
from tuningfork.samplers.random import RandomSampler
from tuningfork.schedulers.base import Assignment, Decision, NoScheduler, Scheduler
from tuningfork.space import Space, Value
from tuningfork.storage import Storage, StudyInfo, get_storage
from tuningfork.storage.base import check_study_name
from tuningfork.storage.view import StudyView, TrialRecord
from tuningfork.trial import FrozenTrial, Trial, TrialState, check_values

Objective = Callable[[Trial], Any]
Callback = Callable[["Study", FrozenTrial], None]

_DIRECTIONS = ("minimize", "maximize")
_MAX_CLAIM_TRIES = 1000
DEFAULT_HEARTBEAT_INTERVAL_S = 10.0
DEFAULT_GRACE_PERIOD_S = 60.0
# A view read from the log less than this long ago (seconds) is fresh enough for the next
# ask after a tell (see `Study._sync_unless_fresh`).
FRESH_VIEW_S = 0.005


class Study:
    """A handle on one study. Make one with `create_study` or `load_study`."""

    def __init__(
        self,
        info: StudyInfo,
        storage: Storage,
        *,
        sampler: Sampler | None = None,
        scheduler: Scheduler | None = None,
        artifact_root: str | Path | None = None,
    ) -> None:
        self._info = info
        self.storage = storage
        self._view = StudyView(info.directions)
        self._lock = threading.RLock()
        self._worker = worker_id()
        self._announced = False
        self._active: dict[int, Trial] = {}
        self._last_reap = time.monotonic()
        self._monitored = False  # True while optimize() sends heartbeats for our trials
        self._max_trials: int | None = None  # optimize(max_trials=): new trials claim a place
        self.heartbeat_interval = DEFAULT_HEARTBEAT_INTERVAL_S
        self.grace_period = DEFAULT_GRACE_PERIOD_S
        self._max_retries: int | None = None  # None: the study's record decides
        self._retry_failed_exceptions: bool | None = None
        self._preempt = False  # set by optimize()'s signal handler: stop at the next report
        self._preempted_by: int | None = None
        self._carry: list[dict[str, Any]] = []  # events to prepend to the next append
        self._read_at = 0.0  # time.monotonic() of the last read of the log into the view
        self._local = threading.local()  # .sampling: a sampler of this thread is choosing
        self._sync()
        self.sampler = sampler if sampler is not None else self._recorded_sampler()
        self.scheduler = scheduler if scheduler is not None else self._recorded_scheduler()
        self.artifact_root = (
            Path(artifact_root) if artifact_root is not None else storage.artifact_root()
        )
        self._artifact_dir: Path | None = None

    def _recorded_scheduler(self) -> Scheduler:
        from tuningfork.schedulers import scheduler_from_record

        record = self._view.study_attrs.get("scheduler") or {"name": "NoScheduler"}
        scheduler = scheduler_from_record(record)
        if scheduler is None:
            warnings.warn(
                f"study {self.name!r} was run with scheduler {record.get('name')!r}, which "
                "cannot be re-created from its record; no trial will be stopped or paused. "
                "Pass scheduler= to load_study to go on with your own.",
                stacklevel=3,
            )
            scheduler = NoScheduler()
        return scheduler

    def _recorded_sampler(self) -> Sampler:
        from tuningfork.samplers import sampler_from_record

        attrs = self._view.study_attrs
        record = attrs.get("sampler") or {"name": "RandomSampler", "seed": attrs.get("seed")}
        sampler = sampler_from_record(record)
        if sampler is None:
            warnings.warn(
                f"study {self.name!r} was run with sampler {record.get('name')!r}, which "
                "cannot be re-created from its record; using RandomSampler. Pass sampler= "
                "to load_study to go on with your own.",
                stacklevel=3,
            )
            sampler = RandomSampler(attrs.get("seed"))
        return sampler

    # -- identity -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The study's name."""
        return self._info.name

    @property
    def directions(self) -> tuple[str, ...]:
        """ "minimize" or "maximize" for each objective."""
        return self._info.directions

    @property
    def direction(self) -> str:
        """The direction of a single-objective study."""
        if len(self.directions) != 1:
            raise TuningforkError(
                f"study {self.name!r} has {len(self.directions)} objectives; use .directions"
            )
        return self.directions[0]

    @property
    def system_attrs(self) -> dict[str, Any]:
        """The study's record: seed, sampler, scheduler, environment (refreshed)."""
        with self._lock:
            self._sync()
            return dict(self._view.study_attrs)

    @property
    def workers(self) -> dict[str, dict[str, Any]]:
        """The record of each worker process that has written to the study, by worker id:
        hostname, pid, SLURM ids, and its environment (versions, git commit)."""
        with self._lock:
            self._sync()
            return {key: dict(value) for key, value in self._view.workers.items()}

    @property
    def uid(self) -> str | None:
        """The study's unique id: a random hex string recorded in its log when it was created,
        unique across storages and re-creations under the same name (a copy made with
        `copy_study` keeps it). None for a study created before tuningfork recorded one."""
        uid = self._view.study_attrs.get("uid")
        if uid is None:
            with self._lock:
                self._sync()
            uid = self._view.study_attrs.get("uid")
        return uid if isinstance(uid, str) else None

    @property
    def artifact_dir(self) -> Path:
        """The study's folder for checkpoints and logs: ``<artifact_root>/<name>-<uid[:12]>``,
        so two studies of the same name (in two storages beside each other, or a study
        deleted and created again) never share a checkpoint. A study created before ids were
        recorded keeps its old folder, ``<artifact_root>/<name>``."""
        if self._artifact_dir is None:
            uid = self.uid
            if uid is None and "directions" not in self._view.study_attrs:
                return self.artifact_root / self.name  # its record is not written yet
            self._artifact_dir = self.artifact_root / artifact_folder(self.name, uid)
        return self._artifact_dir

    def _best_known(self) -> FrozenTrial | None:
        """The best complete trial as of the last read of the log (no read; single
        objective), or None."""
        best = self._view.best_number if len(self.directions) == 1 else None
        return self._view.records[best].frozen() if best is not None else None

    def _owns(self, trial: Trial) -> bool:
        """Whether ``trial`` was asked from this study (through any handle on it)."""
        other = trial.study
        if other is self:
            return True
        same_storage = other.storage is self.storage or bool(
            self.storage.url and other.storage.url == self.storage.url
        )
        return (
            same_storage and other._info.study_id == self._info.study_id and other.uid == self.uid
        )

    @property
    def created(self) -> float:
        """When the study was created, in seconds since the epoch."""
        return self._info.created

    @property
    def user_attrs(self) -> dict[str, Any]:
        """Attributes set with `set_user_attr`."""
        return dict(self.system_attrs.get("user", {}))

    def set_user_attr(self, key: str, value: Any) -> None:
        """Attach a JSON-serialisable attribute to the study."""
        user = self.user_attrs
        user[key] = _json_checked(value, f"study attribute {key!r}")
        self._append([{"op": "study", "attrs": {"user": user}}])

    # -- retries and preemption -----------------------------------------------------------

    @property
    def max_retries(self) -> int:
        """How many times a failed trial is retried (a new WAITING trial with the same
        parameters, linked by ``retry_of`` / ``retried_by``). The study's record decides
        (``create_study(max_retries=...)``) unless this handle overrides it: assign to it, or
        pass ``max_retries`` to `load_study`."""
        if self._max_retries is not None:
            return self._max_retries
        return int(self._view.study_attrs.get("max_retries") or 0)

    @max_retries.setter
    def max_retries(self, value: int | None) -> None:
        self._max_retries = _check_retries(value)

    @property
    def retry_failed_exceptions(self) -> bool:
        """Whether trials failed by the objective (an exception, a bad value) are retried too;
        otherwise only stale trials (their worker vanished) are. Interrupted trials (Ctrl-C)
        never are. From the study's record unless this handle overrides it."""
        if self._retry_failed_exceptions is not None:
            return self._retry_failed_exceptions
        return bool(self._view.study_attrs.get("retry_failed_exceptions", False))

    @retry_failed_exceptions.setter
    def retry_failed_exceptions(self, value: bool | None) -> None:
        self._retry_failed_exceptions = None if value is None else bool(value)

    @property
    def preempted_by(self) -> int | None:
        """The signal number that stopped the last `optimize` call early (None if none did)."""
        return self._preempted_by

    def _wants_retry(self, record: TrialRecord) -> bool:
        if record.state is not TrialState.FAIL or "retried_by" in record.system_attrs:
            return False
        if int(record.system_attrs.get("retry_count", 0)) >= self.max_retries:
            return False
        reason = record.reason or ""
        if reason.startswith("stale"):
            return True
        return self.retry_failed_exceptions and not reason.startswith("interrupted")

    def _queue_retries(self, numbers: Iterable[int]) -> None:
        """Queue a retry of each failed trial in ``numbers`` that the study's retry rule
        allows. The claim ``retry:<n>`` makes it exactly once, however many workers try."""
        if self.max_retries <= 0:
            return
        events = []
        for number in numbers:
            record = self._view.records[number]
            if not self._wants_retry(record):
                continue
            system = record.system_attrs
            events.append(
                {
                    "op": "trial",
                    "state": "WAITING",
                    "params": dict(record.params),
                    "dists": {k: d._json() for k, d in record.distributions.items()},
                    "sys": {
                        "retry_of": number,
                        "retry_count": int(system.get("retry_count", 0)) + 1,
                        # whose checkpoint directory the chain of retries shares
                        "checkpoint_of": system.get("checkpoint_of", number),
                    },
                    "claim": f"retry:{number}",
                }
            )
        if events:
            self._append(events, sync=True)

    def _handle(self, trial: Trial) -> Trial:
        """Mark a trial handle with what its objective may need to know: ``retry_of`` (the
        failed trial this one retries, or None), ``checkpoint_of`` (whose checkpoint
        directory to load from: the first trial of a retry chain) and ``preempted``."""
        system = self._view.records[trial.number].system_attrs
        trial.retry_of = system.get("retry_of")
        trial.checkpoint_of = system.get("checkpoint_of", trial.number)
        trial.preempted = False
        return trial

    # -- the log --------------------------------------------------------------------------

    def _sync(self) -> None:
        self._read_at = time.monotonic()
        batches = self.storage.read(self._info.study_id, self._view.last_seq)
        if batches:
            self._view.apply(batches)

    @contextlib.contextmanager
    def _sampling(self) -> Iterator[None]:
        """While a sampler chooses values, its reads of the study's trials use a view at
        most `FRESH_VIEW_S` old (`_sync_unless_fresh`) instead of reading the log at each
        call (a sampler may ask for the trials once per parameter)."""
        outer = getattr(self._local, "sampling", False)
        self._local.sampling = True
        try:
            yield
        finally:
            self._local.sampling = outer

    def _sync_unless_fresh(self) -> None:
        """`_sync`, unless the view was read from the log less than `FRESH_VIEW_S` ago:
        a worker that finishes a trial within that time (a cheap objective) decides its
        next ask on a view at most that stale, and saves a storage round trip per trial.
        Claims are still settled by log order, so staleness costs at most a lost race."""
        if time.monotonic() - self._read_at >= FRESH_VIEW_S:
            self._sync()

    def _may_claim(self) -> bool:
        """Whether the next ask may claim something that another worker may have claimed
        since our last read (a grid point, a queued or preempted trial, a place under
        ``max_trials``): then a stale view would lose the race and cost a write."""
        view = self._view
        return (
            self._max_trials is not None
            or bool(view.waiting or view.preempted)
            or type(self.sampler).reserve is not Sampler.reserve
        )

    def _append(self, events: list[dict[str, Any]], *, sync: bool = False) -> int:
        """Append events as one atomic batch; with ``sync``, also bring the view up to date
        (in one storage round trip where the backend allows)."""
        if self._carry:  # a tell waiting to ride with this append (see `_tell_and_ask`)
            events = [*self._carry, *events]
            self._carry = []
        if not self._announced:
            record = {"id": self._worker, **worker_record(), "environment": environment_record()}
            events = [{"op": "study", "worker": record}, *events]
            self._announced = True
        if not sync:
            return self.storage.append(self._info.study_id, events)
        self._read_at = time.monotonic()
        seq, batches = self.storage.append_and_read(
            self._info.study_id, events, self._view.last_seq
        )
        self._view.apply(batches)
        return seq

    def _record(self, number: int) -> TrialRecord:
        try:
            return self._view.records[number]
        except IndexError:
            with self._lock:
                self._sync()
            if 0 <= number < len(self._view.records):
                return self._view.records[number]
            raise TrialNotFound(
                f"study {self.name!r} has no trial {number} (it has {len(self._view.records)})"
            ) from None

    # -- ask ------------------------------------------------------------------------------

    def ask(self, space: Space | Mapping[str, Any] | None = None) -> Trial:
        """Start a trial: a queued configuration if there is one, else a new one.

        With ``space`` (a `Space` or a dict in `Space.from_dict` form), every active
        parameter is sampled now and available as ``trial.params``; without it, parameters
        are sampled as the objective calls ``trial.suggest_*``.
        A multi-fidelity scheduler may instead hand back a PAUSED trial to resume from its
        checkpoint (``trial.resumed`` is True, ``trial.last_step`` says where it stopped)
        and sets ``trial.budget``, the step up to which the trial should train in this run.
        Before any of that, a trial that a signal paused (``preempted``, see `optimize`)
        is resumed; a queued retry of a failed trial (``trial.retry_of``) runs like any
        queued configuration.
        Raises `SearchExhausted` when the sampler has nothing left (e.g. a finished grid).
        """
        if space is not None and not isinstance(space, Space):
            space = Space.from_dict(space)
        with self._lock:
            self._sync()
            self._reap_stale()
            trial = self._take_trial(space)
            self._active[trial.number] = trial
        trial._space = space
        if space is not None and not trial.resumed:
            try:
                self._fill_from_space(trial, space)
            except BaseException as error:  # never leave a trial RUNNING with no one on it
                self.tell(trial, state=TrialState.FAIL, reason=_describe_error(error))
                raise
        return trial

    def _fill_from_space(self, trial: Trial, space: Space) -> None:
        for name in space.names:  # queued values first, so the sampler conditions on them
            preset = name in trial._fixed or name in trial._hints
            if preset and space.is_active(name, trial._params):
                trial.suggest(name, space[name])
        # a queued or scheduler-proposed configuration may leave nothing to sample
        if any(name not in trial._params for name in space.active_names(trial._params)):
            with self._sampling():
                params = self.sampler.sample_space(self, trial.frozen(), space)
            for name in space.active_names(params):
                if name not in trial._params:
                    trial._assign(name, space[name], params[name])
        if self.sampler.flush_suggestions:
            self._flush_params(trial)

    def _take_trial(self, space: Space | None) -> Trial:
        preempted = self._resume_preempted()
        if preempted is not None:
            return preempted
        for _ in range(_MAX_CLAIM_TRIES):
            assignment = self.scheduler.assign(self, space)
            if assignment is not None and assignment.prune:
                self._prune_paused(assignment.prune)
            if assignment is not None and assignment.resume is not None:
                trial = self._resume(assignment)
            else:
                trial = self._start_waiting(assignment) or self._create(space, assignment)
            if trial is not None:
                return trial
        raise SearchExhausted(
            f"could not claim a configuration in {_MAX_CLAIM_TRIES} tries; other workers "
            "took every one the sampler or scheduler proposed"
        )

    def _claim_fields(
        self, event: dict[str, Any], assignment: Assignment | None, system: dict[str, Any]
    ) -> None:
        if self._monitored:
            system["heartbeat"] = True
        if assignment is not None:
            if assignment.claims:
                event["claims"] = list(assignment.claims)
            system.update(assignment.system_attrs)
            if assignment.budget is not None:
                system["budget"] = assignment.budget
        if system:
            event["sys"] = system

    def _start_waiting(self, assignment: Assignment | None) -> Trial | None:
        view = self._view
        while view.waiting:
            number = next(iter(view.waiting))
            token = uuid.uuid4().hex
            event = {"op": "start", "n": number, "worker": self._worker, "t": time.time()}
            self._claim_fields(event, assignment, {})
            self._append([{**event, "token": token}], sync=True)
            record = view.records[number]
            if record.token == token:
                budget = assignment.budget if assignment is not None else None
                return self._handle(Trial(self, number, fixed_params=record.params, budget=budget))
            if record.state is TrialState.WAITING:
                return None  # the scheduler's claim was taken: ask it again
        return None

    def _create(self, space: Space | None, assignment: Assignment | None) -> Trial | None:
        reservation = self.sampler.reserve(self, space)
        event: dict[str, Any] = {
            "op": "trial",
            "state": "RUNNING",
            "worker": self._worker,
            "t": time.time(),
        }
        system: dict[str, Any] = {}
        if reservation is not None:
            event["claim"] = reservation.key
            system.update(reservation.system_attrs)
        self._claim_fields(event, assignment, system)
        if self._max_trials is not None:
            place = len(self._view.records)  # a stale view loses the claim and asks again
            if place >= self._max_trials:
                return self._resume_at_cap()
            event["claims"] = [*event.get("claims", ()), f"place:{place}"]
        seq = self._append([event], sync=True)
        number = self._view.number_by_seq.pop(seq, None)
        if number is None:
            return None
        fixed = dict(reservation.params) if reservation is not None else {}
        hints = dict(assignment.params) if assignment is not None else {}
        budget = assignment.budget if assignment is not None else None
        return self._handle(Trial(self, number, fixed_params=fixed, budget=budget, hints=hints))

    def _resume(self, assignment: Assignment) -> Trial | None:
        number = assignment.resume
        assert number is not None
        token = uuid.uuid4().hex
        now = time.time()
        event = {"op": "resume", "n": number, "worker": self._worker, "t": now, "token": token}
        self._claim_fields(event, assignment, {"resumed_at": now})
        self._append([event], sync=True)
        record = self._view.records[number]
        if record.token != token:
            return None
        last = max(record.intermediate_values) if record.intermediate_values else None
        trial = Trial(
            self,
            number,
            params=record.params,
            distributions=record.distributions,
            budget=assignment.budget,
            last_step=last,
        )
        return self._handle(trial)

    def _resume_at_cap(self) -> Trial | None:
        """No new trial may start (``max_trials``): the scheduler's last promotion beyond
        its rule (`Scheduler.assign_at_cap`), or `SearchExhausted`. None: another worker
        claimed that promotion first (ask again)."""
        assignment = self.scheduler.assign_at_cap(self)
        if assignment is None or assignment.resume is None:
            raise SearchExhausted(
                f"study {self.name!r} has its {self._max_trials} trials (max_trials)"
            )
        return self._resume(assignment)

    def _resume_preempted(self) -> Trial | None:
        """Resume a trial that a signal paused (system attr ``preempted``) before anything
        else, at the budget it had; the first resume in the log wins."""
        for number in list(self._view.preempted):
            record = self._view.records[number]
            assignment = Assignment(
                resume=number,
                budget=record.system_attrs.get("budget"),
                system_attrs={"preempted": False},
            )
            trial = self._resume(assignment)
            if trial is not None:
                return trial
        return None

    def _prune_paused(self, numbers: Iterable[int]) -> None:
        events = [
            {
                "op": "finish",
                "n": number,
                "state": "PRUNED",
                "if_state": "PAUSED",
                "reason": "not promoted from its rung",
                "t": time.time(),
            }
            for number in numbers
            if self._view.records[number].state is TrialState.PAUSED
            # a trial paused by a signal mid-rung is resumed, never judged on its rung
            and not self._view.records[number].system_attrs.get("preempted")
        ]
        if events:
            self._append(events, sync=True)

    # -- tell -----------------------------------------------------------------------------

    def tell(
        self,
        trial: Trial | int,
        value: float | Sequence[float] | None = None,
        *,
        values: Sequence[float] | None = None,
        state: TrialState | str | None = None,
        reason: str | None = None,
    ) -> FrozenTrial:
        """Finish a trial with its objective value(s), or with a state (PRUNED, FAIL), or
        pause it (PAUSED: it stopped at a rung with a checkpoint and may be resumed).

        A trial whose last report the scheduler answered with *pause* is recorded as PAUSED
        whether it is told PRUNED or a value. A trial with a ``budget`` that returns a value
        without having reported at its budget has that value recorded as its report at the
        budget, so the scheduler can rank (and pause) it.
        A value that is None, NaN, infinite or not a number fails the trial with a warning
        that says why. Telling a finished trial raises `TrialStateError`.
        """
        with self._lock:
            number, final, events = self._tell_events(trial, value, values, state, reason)
            self._append(events, sync=True)
            return self._tell_done(trial, number, final)

    def _tell_events(
        self,
        trial: Trial | int,
        value: float | Sequence[float] | None,
        values: Sequence[float] | None,
        state: TrialState | str | None,
        reason: str | None,
    ) -> tuple[int, TrialState, list[dict[str, Any]]]:
        """The events that finish (or pause) a trial, its number and its final state; the
        caller holds ``self._lock`` and appends them."""
        handle, number = (trial, trial.number) if isinstance(trial, Trial) else (None, trial)
        if handle is not None and not self._owns(handle):
            raise TrialNotInStudy(
                f"trial {number} belongs to study {handle.study.name!r} "
                f"({handle.study.storage.url or 'in memory'}), not to study {self.name!r}; "
                "tell a trial to the study that asked it"
            )
        final = TrialState(state) if state is not None else TrialState.COMPLETE
        if final in (TrialState.WAITING, TrialState.RUNNING):
            raise TrialStateError(f"tell() ends a trial; state {final} is not a final state")
        raw = values if values is not None else value
        numbers: tuple[float, ...] | None = None
        if final is TrialState.COMPLETE:
            try:
                numbers = check_values(raw, len(self.directions))
            except ValueError as error:
                final, reason = TrialState.FAIL, str(error)
                warnings.warn(f"trial {number} failed: {error}", stacklevel=3)
        elif raw is not None:
            numbers = tuple(float(v) for v in (raw if isinstance(raw, Sequence) else [raw]))
        record = self._record(number)
        if record.state.is_finished or record.state is TrialState.PAUSED:
            raise TrialStateError(
                f"trial {number} is already {record.state}; a trial is told only once per run"
            )
        events = self._pending_events(handle, number)
        if handle is not None and final is not TrialState.FAIL:
            if final is TrialState.COMPLETE and numbers is not None:
                events += self._report_at_budget(handle, record, numbers)
            if handle._paused:
                final = TrialState.PAUSED
            elif handle._stopped:
                final, numbers = TrialState.PRUNED, None
        if final is TrialState.PAUSED:
            pause: dict[str, Any] = {"op": "pause", "n": number, "t": time.time()}
            if handle is not None and handle.preempted:
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
                    "t": time.time(),
                }
            )
        return number, final, events

    def _tell_done(self, trial: Trial | int, number: int, final: TrialState) -> FrozenTrial:
        """What follows a tell's append (the caller holds ``self._lock``)."""
        if isinstance(trial, Trial):
            trial._finished = True
        self._active.pop(number, None)
        if final is TrialState.FAIL:
            self._queue_retries([number])
        return self._view.records[number].frozen()

    def _tell_and_ask(
        self, trial: Trial, space: Space | None, **tell: Any
    ) -> tuple[FrozenTrial, Trial | None]:
        """`tell` and the next `ask` in one atomic batch: the finish events ride with the
        first append of the ask (a new trial's creation, a claim, a resume), so a worker
        that runs one trial after another pays one durable write per trial, not two. The
        ask decides as if another worker had asked just before this tell; log order settles
        claims as usual. Returns the told trial and the next one (None when the sampler is
        exhausted)."""
        following: Trial | None = None
        frozen: FrozenTrial | None = None
        with self._lock:
            number, final, events = self._tell_events(
                trial, tell.get("value"), tell.get("values"), tell.get("state"), tell.get("reason")
            )
            if final is TrialState.FAIL and self.max_retries > 0:
                self._append(events, sync=True)  # its retry is queued before the next ask
                frozen = self._tell_done(trial, number, final)
            else:
                self._carry = events
            try:
                if self._may_claim():
                    self._sync()
                else:
                    self._sync_unless_fresh()
                self._reap_stale()
                following = self._take_trial(space)
                self._active[following.number] = following
                following._space = space
            except SearchExhausted:
                following = None
            finally:
                if self._carry:  # nothing was appended: the finish goes alone
                    carry, self._carry = self._carry, []
                    self._append(carry, sync=True)
            if frozen is None:
                frozen = self._tell_done(trial, number, final)
        if following is not None and space is not None and not following.resumed:
            try:
                self._fill_from_space(following, space)
            except BaseException as error:  # never leave a trial RUNNING with no one on it
                self.tell(following, state=TrialState.FAIL, reason=_describe_error(error))
                raise
        return frozen, following

    def _report_at_budget(
        self, handle: Trial, record: TrialRecord, numbers: tuple[float, ...]
    ) -> list[dict[str, Any]]:
        """A trial that trained to its budget and returned without reporting there: its value
        becomes the report at the budget, and the scheduler decides whether it pauses."""
        budget = handle.budget
        if budget is None or len(numbers) != 1 or isinstance(self.scheduler, NoScheduler):
            return []
        steps = record.intermediate_values
        if steps and max(steps) >= budget:
            return []
        step = math.ceil(budget)
        frozen = dataclasses.replace(
            record.frozen(), intermediate_values={**steps, step: numbers[0]}
        )
        decision = self.scheduler.decide(self, frozen, step, numbers[0])
        handle._paused = decision is Decision.PAUSE
        handle._stopped = decision is Decision.STOP
        return [{"op": "report", "n": handle.number, "step": step, "value": numbers[0]}]

    def _pending_events(self, handle: Trial | None, number: int) -> list[dict[str, Any]]:
        if handle is None:
            return []
        pending = handle._take_pending()
        if not pending:
            return []
        dists = {name: handle._distributions[name]._json() for name in pending}
        return [{"op": "params", "n": number, "params": pending, "dists": dists}]

    # -- during a trial -------------------------------------------------------------------

    def _report(self, trial: Trial, value: float, step: int) -> None:
        with self._lock:
            events = self._pending_events(trial, trial.number)
            events.append({"op": "report", "n": trial.number, "step": step, "value": value})
            self._append(events, sync=True)

    def _should_stop(self, trial: Trial) -> bool:
        """The scheduler's answer first: a trial that reaches its rung just as a signal
        arrives is paused (or stopped) at the rung as usual, not as preempted, so that it is
        resumed at the next budget rather than again at the same one."""
        decision = Decision.CONTINUE
        with self._lock:
            frozen = self._view.records[trial.number].frozen()
        step = frozen.last_step
        if step is not None:
            decision = self.scheduler.decide(self, frozen, step, frozen.intermediate_values[step])
        if decision is Decision.CONTINUE and self._preempt:
            trial.preempted = True  # a signal asked this worker to stop: checkpoint, return
            trial._paused = True
            return True
        if decision is not Decision.CONTINUE:
            trial.preempted = False  # recorded as the scheduler decided (see above)
        if decision is Decision.PAUSE:
            trial._paused = True
        return decision is not Decision.CONTINUE

    def _flush_params(self, trial: Trial) -> None:
        """Write the trial's pending suggestions now (see `Sampler.flush_suggestions`)."""
        with self._lock:
            events = self._pending_events(trial, trial.number)
            if events:
                self._append(events)

    def _set_user_attr(self, trial: Trial, key: str, value: Any) -> None:
        value = _json_checked(value, f"trial attribute {key!r}")
        with self._lock:
            events = self._pending_events(trial, trial.number)
            events.append({"op": "attrs", "n": trial.number, "user": {key: value}})
            self._append(events, sync=True)

    # -- enqueue --------------------------------------------------------------------------

    def enqueue_trial(
        self,
        params: Mapping[str, Value],
        *,
        user_attrs: Mapping[str, Any] | None = None,
        skip_if_exists: bool = False,
    ) -> int | None:
        """Queue a configuration to run before any sampled one; it runs exactly once.

        Returns the queued trial's number, or None when ``skip_if_exists`` is set and a
        trial with the same parameters already exists.
        """
        params = _json_checked(dict(params), "enqueued parameters")
        with self._lock:
            self._sync()
            if skip_if_exists and any(r.params == params for r in self._view.records):
                return None
            event: dict[str, Any] = {"op": "trial", "state": "WAITING", "params": params}
            if user_attrs:
                event["user"] = _json_checked(dict(user_attrs), "user_attrs")
            seq = self._append([event], sync=True)
            return self._view.number_by_seq.pop(seq)

    # -- optimize -------------------------------------------------------------------------

    def optimize(
        self,
        objective: Objective,
        n_trials: int | None = None,
        timeout: float | None = None,
        n_jobs: int = 1,
        catch: type[BaseException] | Iterable[type[BaseException]] = (),
        callbacks: Iterable[Callback] = (),
        show_progress_bar: bool | None = None,
        *,
        space: Space | Mapping[str, Any] | None = None,
        preempt_signals: Iterable[int | str] = ("SIGTERM",),
        executor: Any = None,
        max_trials: int | None = None,
    ) -> None:
        """Run ``objective`` on new trials until ``n_trials`` have run, ``timeout`` seconds
        have passed, or the sampler is exhausted.

        ``max_trials``: a cap on the study's trials, every worker's counted (any state): no
        trial is created once the study holds that many, exactly, however many workers share
        it (each new trial claims one of ``max_trials`` places in the log). Resuming paused
        trials (promotions, trials a signal paused) and queued ones goes on; when the next
        ask would need a new trial, the scheduler may still promote beyond its rule
        (`Scheduler.assign_at_cap`: SHA, ASHA, Hyperband and BOHB train the best paused
        trials on to max_budget, see their ``finish_top``), else that worker's run ends.
        A scheduler warns when the cap is too small for it (`Scheduler.cap_warning`). N
        workers with ``max_trials=M`` make M trials in all, where ``n_trials`` would make N
        times as many runs.

        With a scheduler that pauses and resumes trials (promotion-mode SHA, ASHA,
        Hyperband), ``n_trials`` counts runs: resuming a paused trial counts as one.

        A trial costs one storage write: its result goes in one atomic batch with the
        creation of the thread's next trial (except with a scheduler that assigns trials,
        such as ASHA, where the result is written first).

        ``n_jobs`` threads run trials at once (-1: one per CPU). An exception of a type in
        ``catch`` fails its trial with a warning and the study goes on; any other exception
        fails its trial and is raised. A return value that is None, NaN, infinite or of the
        wrong type fails the trial with a warning. Ctrl-C marks running trials failed
        (reason "interrupted") and raises KeyboardInterrupt; the storage stays consistent.
        ``show_progress_bar``: None (default) shows a live progress line when stderr is a
        terminal and otherwise prints one line per finished trial to stderr (number, state,
        value, best so far: what a batch job's log needs); False prints nothing.

        Preemption: while optimize runs in the main thread, each signal in
        ``preempt_signals`` (default SIGTERM, which SLURM sends before killing a job; add
        "SIGUSR1" for ``sbatch --signal=USR1@60``; ``()`` to keep the process's own handlers)
        stops the run cleanly: no new trial starts, each running trial gets
        ``trial.preempted = True`` and ``trial.should_stop()`` True at its next report, so the
        objective saves its checkpoint and raises `TrialPruned` (or returns); the trial is
        recorded PAUSED with reason "preempted", and the next ``ask`` of any worker resumes it
        first (``trial.resumed``, ``trial.last_step``, same ``checkpoint_dir``). optimize then
        returns normally and `preempted_by` names the signal. A trial that ignores the
        request and completes is recorded as usual. The previous handlers are restored.

        ``executor``: run the trials elsewhere instead of in threads here, e.g.
        ``tuningfork.execution.dask.DaskExecutor(client)`` (one Dask task per trial run, on
        any Dask cluster; the storage must be shared, not "memory"). ``catch``, callbacks
        (run here) and ``timeout`` behave as above; ``n_jobs`` must stay 1 and
        ``preempt_signals`` are not used (the executor's workers handle their signals).

        A scheduler with something to say at the start (`Scheduler.start_message`, e.g.
        the rung budgets of ASHA or Hyperband) says it in one line on stderr (unless
        ``show_progress_bar`` is False).
        """
        message = self.scheduler.start_message() if show_progress_bar is not False else None
        if message:
            print(message, file=sys.stderr)
        if executor is not None:
            if n_jobs != 1:
                raise TuningforkError(
                    "n_jobs applies to threads in this process; with an executor, set how "
                    "many trials run at once on the executor (e.g. DaskExecutor(n_workers=))"
                )
            executor.run(
                self,
                objective,
                n_trials=n_trials,
                timeout=timeout,
                catch=catch,
                callbacks=callbacks,
                show_progress_bar=show_progress_bar,
                space=space,
            )
            return
        if max_trials is not None and (isinstance(max_trials, bool) or max_trials < 1):
            raise TuningforkError(f"max_trials must be an int >= 1, got {max_trials!r}")
        warning = self.scheduler.cap_warning(max_trials) if max_trials is not None else None
        if warning:
            warnings.warn(warning, stacklevel=2)
        runner = _Runner(self, objective, n_trials, timeout, catch, callbacks, space)
        progress = Progress(self, n_trials, timeout, show_progress_bar)
        runner.progress = progress
        self._preempt = False
        self._preempted_by = None
        previous = _install_preemption(self, runner, preempt_signals)
        heart = _Heartbeat(self)
        self._monitored = True
        self._max_trials = max_trials
        try:
            runner.run(_n_workers(n_jobs))
        finally:
            self._max_trials = None
            self._monitored = False
            heart.stop()
            progress.close()
            for number, handler in previous.items():
                signal.signal(number, handler if handler is not None else signal.SIG_DFL)

    # -- results --------------------------------------------------------------------------

    def get_trials(self, states: Iterable[TrialState | str] | None = None) -> list[FrozenTrial]:
        """The study's trials, oldest first, optionally only those in ``states``."""
        with self._lock:
            if getattr(self._local, "sampling", False):
                self._sync_unless_fresh()
            else:
                self._sync()
            records = self._view.records
            if states is None:
                return [r.frozen() for r in records]
            wanted = {TrialState(s) for s in states}
            return [r.frozen() for r in records if r.state in wanted]

    @property
    def trials(self) -> list[FrozenTrial]:
        """All trials, oldest first (see `get_trials` to filter by state)."""
        return self.get_trials()

    @property
    def best_trial(self) -> FrozenTrial:
        """The completed trial with the best value (single-objective studies)."""
        self.direction  # noqa: B018 - raises for multi-objective studies
        with self._lock:
            self._sync()
            best = self._view.best_number
            if best is None:
                raise TuningforkError(
                    f"study {self.name!r} has no completed trial yet; run some trials first"
                )
            return self._view.records[best].frozen()

    @property
    def best_params(self) -> dict[str, Value]:
        """The parameters of `best_trial`."""
        return dict(self.best_trial.params)

    @property
    def best_value(self) -> float:
        """The value of `best_trial`."""
        return self.best_trial.values[0]  # type: ignore[index]

    @property
    def best_trials(self) -> list[FrozenTrial]:
        """The completed trials on the Pareto front (the best trial when single-objective)."""
        complete = self.get_trials(states=(TrialState.COMPLETE,))
        return _pareto_front(complete, self.directions)

    def to_dataframe(self) -> Any:
        """The trials as a pandas DataFrame (needs pandas: pip install 'tuningfork[pandas]')."""
        return _export.to_dataframe(self)

    def export(self, path: str | Path, format: str | None = None) -> Path:  # noqa: A002
        """Write the trials to ``path`` as CSV or JSON (from the suffix unless ``format``)."""
        return _export.export(self, path, format)

    def reproducibility(self, number: int) -> dict[str, Any]:
        """What is needed to reproduce trial ``number``: its parameters, the study's and the
        trial's seeds, and the record of the worker that ran it (host, pid, SLURM ids,
        Python and package versions, git commit and dirty flag)."""
        with self._lock:
            self._sync()
            record = self._record(number)
            seed = self._view.study_attrs.get("seed")
            worker = self._view.workers.get(record.worker or "", {})
        return {
            "study": self.name,
            "trial": number,
            "params": dict(record.params),
            "seed": {"study_seed": seed, "trial_seed": derive_seed(int(seed or 0), number)},
            "worker": worker,
        }

    def __repr__(self) -> str:
        return f"Study(name={self.name!r}, storage={self.storage.url!r})"

    # -- stale trials ---------------------------------------------------------------------

    def _reap_stale(self) -> None:
        now = time.monotonic()
        if now - self._last_reap < self.grace_period / 4 or not self._view.running:
            return
        self._last_reap = now
        beats = self.storage.heartbeats(self._info.study_id)
        wall = time.time()
        events = []
        for number in list(self._view.running):
            record = self._view.records[number]
            if number in self._active or not record.system_attrs.get("heartbeat"):
                continue  # only trials run by optimize() promise heartbeats
            started = max(record.datetime_start or 0.0, record.system_attrs.get("resumed_at", 0.0))
            beat = max(beats.get(number, 0.0), started)
            if wall - beat <= self.grace_period:
                continue
            worker = record.worker
            reason = f"stale: no heartbeat from worker {worker} for {wall - beat:.0f} s"
            events.append(
                {"op": "finish", "n": number, "state": "FAIL", "reason": reason, "t": wall}
            )
        if events:
            self._append(events, sync=True)
            self._queue_retries(event["n"] for event in events)


@dataclass(frozen=True)
class StudySummary:
    """One line of `list_studies`: a study's name, directions, size and best value."""

    name: str
    directions: tuple[str, ...]
    n_trials: int
    counts: dict[str, int]
    best_value: float | None
    created: float


# -- module functions -----------------------------------------------------------------------


def create_study(
    name: str | None = None,
    storage: Storage | str | None = None,
    *,
    direction: str | None = None,
    directions: Sequence[str] | None = None,
    sampler: Sampler | None = None,
    scheduler: Scheduler | None = None,
    load_if_exists: bool = False,
    seed: int | None = None,
    artifact_root: str | Path | None = None,
    max_retries: int = 0,
    retry_failed_exceptions: bool = False,
) -> Study:
    """Create a study (or load it, with ``load_if_exists``).

    Args:
        name: unique within the storage; None makes one up.
        storage: a URL (``sqlite:///path.db``, ``memory``), a `Storage`, or None for the
            default: ``sqlite:///tuningfork.db`` in the current directory.
        direction / directions: "minimize" (default) or "maximize", one per objective.
        sampler: proposes configurations (default: `AutoSampler` seeded with ``seed``,
            which picks Gaussian-process BO or TPE from the space and budget).
        scheduler: stops or pauses trials from their reports (default: `NoScheduler`).
        load_if_exists: return the existing study of that name instead of raising
            `DuplicatedStudyError`.
        seed: recorded in the study and used to seed the default sampler (None: one is
            drawn and recorded).
        artifact_root: where trials' checkpoint directories go (default: beside the
            SQLite file, or the current directory).
        max_retries: how many times a trial that failed because its worker vanished (stale)
            is retried: a new WAITING trial with the same parameters, system attrs
            ``retry_of`` / ``retry_count`` / ``checkpoint_of``, and ``retried_by`` on the
            failed one. Recorded in the study, so every worker agrees (`load_study` may
            override it for one handle). With ``load_if_exists`` the record of an existing
            study wins.
        retry_failed_exceptions: retry trials whose objective raised (or returned a bad
            value) too, not only stale ones (as Optuna's RetryFailedTrialCallback does).
    """
    chosen = _check_directions(direction, directions)
    max_retries = _check_retries(max_retries)
    name = (
        name
        if name is not None
        else f"study-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    )
    check_study_name(name)  # before the storage is opened: a bad name creates nothing
    store = get_storage(storage)
    try:
        info = store.create_study(name, chosen)
    except TuningforkError:
        if not load_if_exists:
            raise
        info = store.get_study(name)
        if info.directions != chosen:
            raise TuningforkError(
                f"study {name!r} exists with directions {list(info.directions)}, not "
                f"{list(chosen)}; pass the same directions or use another name"
            ) from None
        return Study(info, store, sampler=sampler, scheduler=scheduler, artifact_root=artifact_root)
    if sampler is None:
        from tuningfork.samplers.auto import AutoSampler

        sampler = AutoSampler(seed=seed)
    study = Study(info, store, sampler=sampler, scheduler=scheduler, artifact_root=artifact_root)
    record = {
        "directions": list(chosen),
        "seed": seed if seed is not None else sampler.seed,
        "sampler": sampler.describe(),
        "scheduler": study.scheduler.describe(),
        "environment": environment_record(),
        "created_by": study._worker,
        "uid": uuid.uuid4().hex,
        "max_retries": max_retries,
        "retry_failed_exceptions": bool(retry_failed_exceptions),
    }
    study._append([{"op": "study", "attrs": record}], sync=True)
    return study


def load_study(
    name: str | None = None,
    storage: Storage | str | None = None,
    *,
    sampler: Sampler | None = None,
    scheduler: Scheduler | None = None,
    artifact_root: str | Path | None = None,
    max_retries: int | None = None,
    retry_failed_exceptions: bool | None = None,
) -> Study:
    """Open an existing study. ``name`` may be left out when the storage holds one study.

    Without a ``sampler`` or ``scheduler``, the ones the study was created with are
    re-created from its record (their class, options and seed), so every worker of a study
    samples and schedules alike. ``max_retries`` / ``retry_failed_exceptions`` override the
    study's recorded retry rule for this handle only (None: use the record).
    """
    store = get_storage(storage)
    if name is None:
        studies = store.list_studies()
        if len(studies) != 1:
            names = ", ".join(s.name for s in studies) or "none"
            raise StudyNotFound(
                f"{store.url} holds {len(studies)} studies ({names}); name the one to load"
            )
        name = studies[0].name
    info = store.get_study(name)
    study = Study(info, store, sampler=sampler, scheduler=scheduler, artifact_root=artifact_root)
    study.max_retries = max_retries
    study.retry_failed_exceptions = retry_failed_exceptions
    return study


def delete_study(
    name: str,
    storage: Storage | str | None = None,
    *,
    artifact_root: str | Path | None = None,
    keep_artifacts: bool = False,
) -> Path | None:
    """Delete a study and all its trials from the storage, and its artefact folder
    (checkpoints and logs, `Study.artifact_dir`) unless ``keep_artifacts``.

    ``artifact_root``: where the study's artefacts are, if the study was run with one
    (default: the storage's, e.g. ``tuningfork_artifacts`` beside a SQLite file).
    Returns the study's artefact folder (removed, or left where it is with
    ``keep_artifacts``), or None when the study has none.
    """
    store = get_storage(storage)
    info = store.get_study(name)
    view = StudyView(info.directions)
    view.apply(store.read(info.study_id, 0))
    root = Path(artifact_root) if artifact_root is not None else store.artifact_root()
    uid = view.study_attrs.get("uid")
    folder = root / artifact_folder(name, uid if isinstance(uid, str) else None)
    store.delete_study(name)
    if not folder.is_dir():
        return None
    if not keep_artifacts:
        shutil.rmtree(folder)
    return folder


def artifact_folder(name: str, uid: str | None) -> str:
    """The name of a study's artefact folder: ``<name>-<uid[:12]>`` (``<name>`` for a study
    created before ids were recorded)."""
    return f"{name}-{uid[:12]}" if uid else name


def list_studies(storage: Storage | str | None = None) -> list[StudySummary]:
    """A summary of every study in the storage, oldest first."""
    store = get_storage(storage)
    summaries = []
    for info in store.list_studies():
        view = StudyView(info.directions)
        view.apply(store.read(info.study_id, 0))
        counts: dict[str, int] = {}
        for record in view.records:
            counts[record.state.value] = counts.get(record.state.value, 0) + 1
        best = view.best_number
        best_value = view.records[best].values[0] if best is not None else None  # type: ignore[index]
        summaries.append(
            StudySummary(
                info.name, info.directions, len(view.records), counts, best_value, info.created
            )
        )
    return summaries


# -- helpers --------------------------------------------------------------------------------


def _check_directions(direction: str | None, directions: Sequence[str] | None) -> tuple[str, ...]:
    if direction is not None and directions is not None:
        raise TuningforkError("give direction or directions, not both")
    chosen = tuple(directions) if directions is not None else (direction or "minimize",)
    if not chosen:
        raise TuningforkError("directions is empty; give at least one of 'minimize', 'maximize'")
    for item in chosen:
        if item not in _DIRECTIONS:
            raise TuningforkError(
                f"direction {item!r} is not allowed; use 'minimize' or 'maximize'"
            )
    return chosen


def _check_retries(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TuningforkError(f"max_retries must be an int >= 0, got {value!r}")
    return value


def _signal_number(item: int | str) -> int:
    if isinstance(item, str):
        name = item.upper() if item.upper().startswith("SIG") else f"SIG{item.upper()}"
        number = getattr(signal, name, None)
        if number is None:
            raise TuningforkError(f"unknown signal {item!r} (e.g. 'SIGTERM', 'SIGUSR1')")
        return int(number)
    return int(item)


def _install_preemption(
    study: Study, runner: _Runner, signals: Iterable[int | str]
) -> dict[int, Any]:
    """Install the preemption handler for ``signals``; the handlers it replaced."""
    numbers = [_signal_number(item) for item in signals]
    if not numbers or threading.current_thread() is not threading.main_thread():
        return {}  # signal handlers can only be set from the main thread

    def handler(signum: int, frame: Any) -> None:
        # only flags here: the main thread may be inside a storage call
        study._preempted_by = signum
        study._preempt = True
        runner.stop.set()
        for _ in range(3):
            try:
                trials = list(study._active.values())
            except RuntimeError:  # changed size in another thread: look again
                continue
            for trial in trials:
                trial.preempted = True
            break

    previous = {}
    for number in numbers:
        previous[number] = signal.signal(number, handler)
    return previous


def _json_checked(value: Any, what: str) -> Any:
    """A copy of ``value`` as the storage will return it (tuples become lists), so that
    later changes to the caller's object change nothing, whatever the storage."""
    import json

    if value is None or isinstance(value, (str, int, float)):
        return value
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError) as error:
        raise TuningforkError(
            f"{what} must be JSON-serialisable (str, number, bool, None, list, dict): {error}"
        ) from None


def _n_workers(n_jobs: int) -> int:
    import os

    if n_jobs == -1:
        return os.cpu_count() or 1
    if n_jobs < 1:
        raise TuningforkError(f"n_jobs must be >= 1 or -1 (one per CPU), got {n_jobs}")
    return n_jobs


def _pareto_front(trials: list[FrozenTrial], directions: tuple[str, ...]) -> list[FrozenTrial]:
    signs = [1.0 if d == "minimize" else -1.0 for d in directions]
    points = [[s * v for s, v in zip(signs, t.values or ())] for t in trials]

    def dominated(i: int) -> bool:
        return any(
            all(a <= b for a, b in zip(points[j], points[i])) and points[j] != points[i]
            for j in range(len(points))
        )

    return [t for i, t in enumerate(trials) if not dominated(i)]


class _Heartbeat:
    """Sends heartbeats for the trials a `Study` handle is running, from a daemon thread."""

    def __init__(self, study: Study) -> None:
        self._study = study
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tuningfork-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        study = self._study
        while not self._stop.wait(study.heartbeat_interval):
            numbers = list(study._active)
            try:
                study.storage.heartbeat(study._info.study_id, numbers, study._worker, time.time())
            except Exception as error:  # a missed beat is not fatal; the next one may pass
                warnings.warn(f"heartbeat failed: {error}", stacklevel=1)

    def stop(self) -> None:
        self._stop.set()


class _Runner:
    """The ask-run-tell loop of `Study.optimize`, in one or more threads."""

    def __init__(
        self,
        study: Study,
        objective: Objective,
        n_trials: int | None,
        timeout: float | None,
        catch: type[BaseException] | Iterable[type[BaseException]],
        callbacks: Iterable[Callback],
        space: Space | Mapping[str, Any] | None,
    ) -> None:
        if n_trials is not None and n_trials < 0:
            raise TuningforkError(f"n_trials must be >= 0, got {n_trials}")
        if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
            raise TuningforkError(f"timeout must be a positive number of seconds, got {timeout}")
        self.study = study
        self.objective = objective
        self.n_trials = n_trials
        self.deadline = time.monotonic() + timeout if timeout is not None else None
        self.catch = (catch,) if isinstance(catch, type) else tuple(catch)
        self.callbacks = list(callbacks)
        self.space = space if space is None or isinstance(space, Space) else Space.from_dict(space)
        self.started = 0
        self.lock = threading.Lock()
        self.asking = threading.Lock()  # held from ask() until the trial is in study._active
        self.stop = threading.Event()
        self.progress: Progress | None = None
        self.error: BaseException | None = None

    def run(self, n_workers: int) -> None:
        if n_workers == 1:
            try:
                self.loop()
            except KeyboardInterrupt:  # e.g. while telling: no trial is left RUNNING
                self._fail_active("interrupted (KeyboardInterrupt)")
                raise
            return
        threads = [
            threading.Thread(target=self._thread_loop, name=f"tuningfork-{i}", daemon=True)
            for i in range(n_workers)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.1)
        except KeyboardInterrupt:
            self.stop.set()
            with self.asking:  # no thread is between ask() and registering its trial
                self._fail_active("interrupted (KeyboardInterrupt)")
            raise
        if self.error is not None:
            raise self.error

    def _thread_loop(self) -> None:
        try:
            self.loop()
        except BaseException as error:  # re-raised in the calling thread
            self.error = error
            self.stop.set()

    def _take_slot(self) -> bool:
        with self.lock:
            if self.stop.is_set():
                return False
            if self.n_trials is not None and self.started >= self.n_trials:
                return False
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return False
            self.started += 1
            return True

    def loop(self) -> None:
        trial: Trial | None = None
        while True:
            if trial is None:
                trial = self._ask()
                if trial is None:
                    return
            if self.study._preempt:  # the signal came while asking: run nothing, pause it
                trial.preempted = True
                trial._paused = True
                self._tell(trial, state=TrialState.PRUNED, reason="preempted")
                return
            outcome = self.run_one(trial)
            frozen, trial = self._finish(trial, outcome)
            if frozen is None:
                continue
            if self.progress is not None:
                self.progress.update(frozen, self.study._best_known())
            for callback in self.callbacks:
                callback(self.study, frozen)

    def _ask(self) -> Trial | None:
        """A new trial for this loop, or None when there is no slot or nothing to ask."""
        if not self._take_slot():
            return None
        try:
            with self.asking:
                if self.stop.is_set():  # interrupted while waiting: start nothing
                    return None
                return self.study.ask(self.space)
        except SearchExhausted:
            # only this thread is done: at a cap (max_trials) another thread, asking after
            # its running trial, may still get a promotion (`Scheduler.assign_at_cap`)
            return None

    def _finish(
        self, trial: Trial, outcome: dict[str, Any]
    ) -> tuple[FrozenTrial | None, Trial | None]:
        """Tell ``outcome``; when this loop goes on, ask the next trial in the same batch
        (`Study._tell_and_ask`). Returns the told trial and the next one, if any.

        Only where asking is cheap: a scheduler that assigns trials (SHA, ASHA, Hyperband,
        BOHB, DEHB) may fit a model in its ``assign``, which would leave the result unwritten
        for that long, so with one the tell goes first as usual."""
        if not _plain_assign(self.study.scheduler) or not self._take_slot():
            return self._tell(trial, **outcome), None
        try:
            with self.asking:
                if self.stop.is_set():
                    return self._tell(trial, **outcome), None
                frozen, following = self.study._tell_and_ask(trial, self.space, **outcome)
        except TrialStateError:  # already failed by an interrupt or a stale-trial reaper
            return None, self._ask()
        if following is None:
            self.stop.set()  # the sampler has nothing left
        return frozen, following

    def run_one(self, trial: Trial) -> dict[str, Any]:
        """Run the objective on ``trial``; the keyword arguments of its tell."""
        study = self.study
        try:
            raw = self.objective(trial)
        except TrialPruned as error:
            return {"state": TrialState.PRUNED, "reason": str(error) or "pruned"}
        except KeyboardInterrupt:
            self._tell(trial, state=TrialState.FAIL, reason="interrupted (KeyboardInterrupt)")
            raise
        except self.catch as error:
            reason = _describe_error(error)
            warnings.warn(f"trial {trial.number} failed: {reason}", stacklevel=2)
            return {"state": TrialState.FAIL, "reason": reason}
        except BaseException as error:
            self._tell(trial, state=TrialState.FAIL, reason=_describe_error(error))
            raise
        try:
            values = check_values(raw, len(study.directions))
        except ValueError as error:
            warnings.warn(f"trial {trial.number} failed: {error}", stacklevel=2)
            return {"state": TrialState.FAIL, "reason": str(error)}
        return {"values": values}

    def _tell(self, trial: Trial, **kwargs: Any) -> FrozenTrial | None:
        try:
            return self.study.tell(trial, **kwargs)
        except TrialStateError:
            return None  # already failed by an interrupt or a stale-trial reaper

    def _fail_active(self, reason: str) -> None:
        for trial in list(self.study._active.values()):
            self._tell(trial, state=TrialState.FAIL, reason=reason)


def _plain_assign(scheduler: Scheduler) -> bool:
    """Whether ``scheduler`` keeps `Scheduler.assign`'s plain "a new trial" (the stopping
    rules), so that asking involves no scheduler computation."""
    from tuningfork.schedulers.early_stopping import AnyOf

    if isinstance(scheduler, AnyOf):
        return all(_plain_assign(member) for member in scheduler.schedulers)
    return type(scheduler).assign is Scheduler.assign


def _describe_error(error: BaseException) -> str:
    if isinstance(error, CommandFailed):  # its message already says what went wrong
        return f"{type(error).__name__}: {error}"
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    tail = "".join(lines[-6:]).strip()
    return f"{type(error).__name__}: {error}\n{tail}"


__all__ = [
    "Study",
    "StudySummary",
    "create_study",
    "delete_study",
    "list_studies",
    "load_study",
    "SpaceError",
]
