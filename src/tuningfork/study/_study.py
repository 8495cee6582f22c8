"""The `Study` handle: ask, tell, optimize, and the results. The work is done by the
modules beside it (`_log`: the storage; `_ask`; `_tell`; `_optimize`; `_reap`)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tuningfork import _export
from tuningfork._pareto import pareto_front
from tuningfork.exceptions import CheckpointError, NoCompletedTrial, OptionError
from tuningfork.repro import derive_seed
from tuningfork.samplers.base import Sampler
from tuningfork.samplers.random import RandomSampler
from tuningfork.schedulers.base import NoScheduler, Scheduler
from tuningfork.space import Space, Value
from tuningfork.storage import Storage, StudyInfo
from tuningfork.study import _ask, _optimize, _reap, _tell
from tuningfork.study._channel import TrialChannel
from tuningfork.study._checkpoints import CheckpointStore, FileCheckpointStore
from tuningfork.study._json import json_checked
from tuningfork.study._log import StudyLog
from tuningfork.study._reader import StudyReader, take_records
from tuningfork.trial import FrozenTrial, Trial, TrialState

Objective = _optimize.Objective
Callback = _optimize.Callback

DEFAULT_HEARTBEAT_INTERVAL_S = 10.0
_COMMIT_KEYS = ("trial", "step", "sha256")
DEFAULT_GRACE_PERIOD_S = 60.0


class Study:
    """A handle on one study. Make one with `create_study` or `load_study`.

    ``clock``: the wall clock the study stamps events with and judges stale trials by,
    in seconds since the epoch (default `time.time`); tests pass a fake one.
    """

    def __init__(
        self,
        info: StudyInfo,
        storage: Storage,
        *,
        sampler: Sampler | None = None,
        scheduler: Scheduler | None = None,
        artifact_root: str | Path | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._info = info
        self.storage = storage
        self._clock = clock if clock is not None else time.time
        self._log = StudyLog(info, storage, self._clock)
        self.reader = StudyReader(self._log.view, info.name, self._clock)
        """The public read-only view of this study that samplers and schedulers get
        (`StudyReader`), as of this handle's last read of the log."""
        self._channel = TrialChannel(self)
        self._active: dict[int, Trial] = {}  # the trials this handle is running
        self._call = _optimize.Call()  # the running optimize() call's state, if any
        self._last_reap = self._clock()
        self.heartbeat_interval = DEFAULT_HEARTBEAT_INTERVAL_S
        self.grace_period = DEFAULT_GRACE_PERIOD_S
        self._max_retries: int | None = None  # None: the study's record decides
        self._retry_failed_exceptions: bool | None = None
        self._preempted_by: int | None = None
        self._log.sync()
        self.sampler = sampler if sampler is not None else self._recorded_sampler()
        self.scheduler = scheduler if scheduler is not None else self._recorded_scheduler()
        self.artifact_root = (
            Path(artifact_root) if artifact_root is not None else storage.artifact_root()
        )
        self._artifact_dir: Path | None = None
        self._discarded: set[str] = set()  # committed checkpoints this handle deleted
        self._commit_warnings: set[str] = set()  # kinds of uncommitted checkpoint warned of

    def _recorded_scheduler(self) -> Scheduler:
        from tuningfork.schedulers import scheduler_from_record

        record = self._log.view.study_attrs.get("scheduler") or {"name": "NoScheduler"}
        scheduler = scheduler_from_record(record)
        if scheduler is None:
            warnings.warn(
                f"study {self.name!r} was run with scheduler {record.get('name')!r}, which "
                "cannot be re-created from its record; no trial will be stopped or paused. "
                "Pass scheduler= to load_study, or register the class (tuningfork.register), "
                "to go on with your own.",
                stacklevel=3,
            )
            scheduler = NoScheduler()
        return scheduler

    def _recorded_sampler(self) -> Sampler:
        from tuningfork.samplers import sampler_from_record

        attrs = self._log.view.study_attrs
        record = attrs.get("sampler") or {"name": "RandomSampler", "seed": attrs.get("seed")}
        sampler = sampler_from_record(record)
        if sampler is None:
            warnings.warn(
                f"study {self.name!r} was run with sampler {record.get('name')!r}, which "
                "cannot be re-created from its record; using RandomSampler. Pass sampler= "
                "to load_study, or register the class (tuningfork.register), to go on with "
                "your own.",
                stacklevel=3,
            )
            sampler = RandomSampler(seed=attrs.get("seed"))
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
            raise OptionError(
                f"study {self.name!r} has {len(self.directions)} objectives; use .directions",
                option="direction",
            )
        return self.directions[0]

    @property
    def system_attrs(self) -> dict[str, Any]:
        """The study's record: seed, sampler, scheduler, environment (refreshed)."""
        with self._log.lock:
            self._log.sync()
            return dict(self._log.view.study_attrs)

    @property
    def workers(self) -> dict[str, dict[str, Any]]:
        """The record of each worker process that has written to the study, by worker id:
        hostname, pid, SLURM ids, and its environment (versions, git commit)."""
        with self._log.lock:
            self._log.sync()
            return {key: dict(value) for key, value in self._log.view.workers.items()}

    @property
    def uid(self) -> str | None:
        """The study's unique id: a random hex string recorded in its log when it was created,
        unique across storages and re-creations under the same name (a copy made with
        `copy_study` keeps it). None for a study created before tuningfork recorded one."""
        uid = self._log.view.study_attrs.get("uid")
        if uid is None:
            with self._log.lock:
                self._log.sync()
            uid = self._log.view.study_attrs.get("uid")
        return uid if isinstance(uid, str) else None

    @property
    def artifact_dir(self) -> Path:
        """The study's folder for checkpoints and logs: ``<artifact_root>/<name>-<uid[:12]>``,
        so two studies of the same name (in two storages beside each other, or a study
        deleted and created again) never share a checkpoint. A study created before ids were
        recorded keeps its old folder, ``<artifact_root>/<name>``."""
        if self._artifact_dir is None:
            uid = self.uid
            if uid is None and "directions" not in self._log.view.study_attrs:
                return self.artifact_root / self.name  # its record is not written yet
            self._artifact_dir = self.artifact_root / artifact_folder(self.name, uid)
        return self._artifact_dir

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
        """Attach a JSON-serialisable attribute to the study. Each key is written on its
        own, so handles setting different keys at once never drop each other's."""
        value = json_checked(value, f"study attribute {key!r}")
        with self._log.lock:
            self._log.append([{"op": "study", "user": {key: value}}], sync=True)

    # -- retries and preemption -----------------------------------------------------------

    @property
    def max_retries(self) -> int:
        """How many times a failed trial is retried (a new WAITING trial with the same
        parameters, linked by ``retry_of`` / ``retried_by``). The study's record decides
        (``create_study(max_retries=...)``) unless this handle overrides it: assign to it, or
        pass ``max_retries`` to `load_study`."""
        if self._max_retries is not None:
            return self._max_retries
        return int(self._log.view.study_attrs.get("max_retries") or 0)

    @max_retries.setter
    def max_retries(self, value: int | None) -> None:
        self._max_retries = check_retries(value)

    @property
    def retry_failed_exceptions(self) -> bool:
        """Whether trials failed by the objective (an exception, a bad value) are retried too;
        otherwise only stale trials (their worker vanished) are. Interrupted trials (Ctrl-C)
        never are. From the study's record unless this handle overrides it."""
        if self._retry_failed_exceptions is not None:
            return self._retry_failed_exceptions
        return bool(self._log.view.study_attrs.get("retry_failed_exceptions", False))

    @retry_failed_exceptions.setter
    def retry_failed_exceptions(self, value: bool | None) -> None:
        self._retry_failed_exceptions = None if value is None else bool(value)

    @property
    def preempted_by(self) -> int | None:
        """The signal number that stopped the last `optimize` call early (None if none did)."""
        return self._preempted_by

    # -- policies' records ----------------------------------------------------------------

    def _flush_records(self) -> None:
        """Append what a policy asked to record (`StudyReader.record`); the caller holds
        the log's lock."""
        if not self.reader._outbox:
            return
        records = take_records(self.reader)
        if records:
            self._log.append([{"op": "study", "attrs": records}])

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
        try:
            while True:
                with self._log.lock:
                    self._log.sync()
                    self._reap_if_due()
                    trial = _ask.take_trial(self, space)
                    self._active[trial.number] = trial
                trial._space = space
                if self._restore_checkpoint(trial):
                    break
        finally:  # also at the end of a run (SearchExhausted): what is left may go
            self._discard_obsolete()
        if space is not None and not trial.resumed:
            self._fill_or_fail(trial, space)
        return trial

    @property
    def checkpoint_store(self) -> CheckpointStore:
        """Where this study's committed checkpoints are kept: the scheduler's
        ``checkpoint_store`` if it has one, else files under ``artifact_dir / "committed"``
        (`FileCheckpointStore`)."""
        store = self.scheduler.checkpoint_store
        if store is None:
            store = FileCheckpointStore(self.artifact_dir / "committed")
        return store

    def _discard_obsolete(self) -> None:
        """Delete the committed checkpoints the scheduler no longer needs; each once per
        handle."""
        if not self.scheduler.commits_checkpoints:
            return
        store = self.checkpoint_store
        with self._log.lock:
            obsolete = self.scheduler.obsolete_checkpoints(self.reader)
        for commit in obsolete:
            key = str(commit["sha256"]) + str(commit.get("path"))
            if key not in self._discarded:
                self._discarded.add(key)
                store.discard(commit)

    def _restore_checkpoint(self, trial: Trial) -> bool:
        """Copy the committed checkpoint a scheduler assigned to ``trial`` (PBT's exploit)
        into its checkpoint directory, outside the lock. False when the copy failed: the
        trial is then told FAIL with the reason (a scheduler replaces it), with a warning,
        and the caller asks again."""
        commit, trial._restore = trial._restore, None
        if commit is None:
            return True
        try:
            self.checkpoint_store.restore(commit, trial.checkpoint_dir)
        except (CheckpointError, OSError) as error:
            reason = f"could not copy its starting checkpoint: {error}"
            warnings.warn(f"trial {trial.number} failed: {reason}", stacklevel=3)
            # named in the log, so that no scheduler hands out that checkpoint again
            trial.set_system_attrs({"checkpoint_error": {k: commit[k] for k in _COMMIT_KEYS}})
            self.tell(trial, state=TrialState.FAIL, reason=reason)
            return False
        return True

    def _fill_or_fail(self, trial: Trial, space: Space) -> None:
        """Sample the declared ``space`` into a new trial; a trial whose sampling fails is
        told FAIL (never left RUNNING with no one on it) and the error raised."""
        try:
            self._fill_from_space(trial, space)
        except BaseException as error:
            self.tell(trial, state=TrialState.FAIL, reason=_optimize._describe_error(error))
            raise

    def _fill_from_space(self, trial: Trial, space: Space) -> None:
        for name in space.names:  # queued values first, so the sampler conditions on them
            preset = name in trial._fixed or name in trial._hints
            if preset and space.is_active(name, trial._params):
                trial.suggest(name, space[name])
        # a queued or scheduler-proposed configuration may leave nothing to sample
        if any(name not in trial._params for name in space.active_names(trial._params)):
            with self._log.lock:
                if self.sampler.needs_fresh_view:
                    self._log.sync()
                params = self.sampler.sample_space(self.reader, trial.frozen(), space)
                self._flush_records()
            for name in space.active_names(params):
                if name not in trial._params:
                    trial._assign(name, space[name], params[name])
        if self.sampler.flush_suggestions:
            self._channel.flush(trial)

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

        The final state follows the trial's last decision in the log (`Trial.decision`):
        a trial the scheduler paused (or that called `Trial.pause`) is recorded as PAUSED
        whether it is told PRUNED or a value, and one it stopped as PRUNED. A trial with a
        ``budget`` that returns a value without having reported at its budget has that
        value recorded as its report at the budget, so the scheduler can rank (and pause)
        it. A value that is None, NaN, infinite or not a number fails the trial with a
        warning that says why. Telling a finished trial raises `TrialStateError`.
        """
        with self._log.lock:
            number, final, events = _tell.tell_events(self, trial, value, values, state, reason)
            self._log.append(events, sync=True)
            return _tell.tell_done(self, trial, number, final)

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
        params = json_checked(dict(params), "enqueued parameters")
        log = self._log
        with log.lock:
            log.sync()
            if skip_if_exists and any(r.params == params for r in log.view.records):
                return None
            event: dict[str, Any] = {"op": "trial", "state": "WAITING", "params": params}
            if user_attrs:
                event["user"] = json_checked(dict(user_attrs), "user_attrs")
            seq = log.append([event], sync=True)
            return log.view.number_by_seq.pop(seq)

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
        _optimize.optimize(
            self,
            objective,
            n_trials,
            timeout,
            n_jobs,
            catch,
            callbacks,
            show_progress_bar,
            space,
            preempt_signals,
            executor,
            max_trials,
        )

    # -- results --------------------------------------------------------------------------

    def get_trials(self, states: Iterable[TrialState | str] | None = None) -> list[FrozenTrial]:
        """The study's trials, oldest first, optionally only those in ``states`` (reads
        the log first)."""
        with self._log.lock:
            self._log.sync()
            return self.reader.get_trials(states)

    @property
    def trials(self) -> list[FrozenTrial]:
        """All trials, oldest first (see `get_trials` to filter by state)."""
        return self.get_trials()

    @property
    def best_trial(self) -> FrozenTrial:
        """The completed trial with the best value (single-objective studies)."""
        self.direction  # noqa: B018 - raises for multi-objective studies
        with self._log.lock:
            self._log.sync()
            best = self.reader.best_trial
        if best is None:
            raise NoCompletedTrial(
                f"study {self.name!r} has no completed trial yet; run some trials first"
            )
        return best

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
        return pareto_front(complete, self.directions)

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
        with self._log.lock:
            self._log.sync()
            record = self._log.record(number)
            seed = self._log.view.study_attrs.get("seed")
            worker = self._log.view.workers.get(record.worker or "", {})
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

    def reap_stale(self, now: float | None = None) -> list[int]:
        """Fail the RUNNING trials of any worker whose heartbeats stopped more than
        `grace_period` seconds before ``now`` (seconds since the epoch; default: the
        study's clock), and queue their retries (`max_retries`). `ask` does this on its
        own every quarter grace period. Returns the numbers of the trials failed."""
        with self._log.lock:
            self._log.sync()
            return _reap.reap_stale(self, self._clock() if now is None else now)

    def _reap_if_due(self) -> None:
        """`reap_stale` at most every quarter grace period (the caller holds the lock)."""
        now = self._clock()
        if now - self._last_reap < self.grace_period / 4 or not self._log.view.running:
            return
        self._last_reap = now
        _reap.reap_stale(self, now)


def artifact_folder(name: str, uid: str | None) -> str:
    """The name of a study's artefact folder: ``<name>-<uid[:12]>`` (``<name>`` for a study
    created before ids were recorded)."""
    return f"{name}-{uid[:12]}" if uid else name


def check_retries(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OptionError(f"max_retries must be an int >= 0, got {value!r}", option="max_retries")
    return value
