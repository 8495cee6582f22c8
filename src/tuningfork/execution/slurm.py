"""Launch workers as one SLURM job array, through `submitit <https://github.com/facebookincubator/submitit>`_.

Each array task runs `tuningfork.execution.worker.run_worker` against the shared storage, so
N tasks are N workers of one study (no driver process stays behind)::

    from tuningfork.execution import WorkerOptions
    from tuningfork.execution.slurm import launch_slurm, wait_slurm

    options = WorkerOptions(n_trials=10, max_retries=1, retry_failed_exceptions=True)
    ids = launch_slurm("mnist", "postgresql+psycopg://db/hpo", "train.py:objective",
                       n_workers=8, options=options, partition="gpu_p2",
                       account="abc@v100", time_limit_min=120, gpus_per_task=1)
    wait_slurm(ids)  # optional: the study is in the storage whatever happens here

GPUs: nothing is requested unless ``gpus_per_task`` is given; one GPU per trial (one
trial at a time per worker, the default) is ``gpus_per_task=1``.

Preemption and time limits: the job asks SLURM for a signal ``signal_before_s`` seconds
before its time limit (``sbatch --signal=USR2@60``; submitit's signal, which the environment
variable ``SUBMITIT_PREEMPT_SIGNAL`` may change). The worker treats that signal, like SIGTERM,
as a preemption: running trials checkpoint at their next report and are recorded PAUSED, and
the next worker resumes them first. Then, with ``requeue=True``, submitit calls the worker's
``checkpoint()`` and requeues the array task (``scontrol requeue``), which goes on with the
trials and time it has left (at most ``slurm_max_num_timeout``, 3, requeues after time-outs).
A task cancelled with ``scancel`` (SIGTERM) pauses its trials the same way and is not requeued;
a task killed outright (``scancel -s KILL``, a lost node) has its trial failed as ``stale``
by another worker after ``grace_period`` seconds, and retried if the study has ``max_retries``.

Needs the ``slurm`` extra: ``pip install 'tuningfork[slurm]'``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tuningfork.exceptions import LaunchError, OptionError, WorkerFailed, require
from tuningfork.execution.options import WorkerOptions, with_legacy
from tuningfork.execution.worker import (
    EXIT_BAD_ARGUMENTS,
    EXIT_OK,
    declared_space,
    load_objective,
    run_worker,
)

__all__ = ["SlurmWorker", "launch_slurm", "wait_slurm"]

# sacct states after which a job runs no more (REQUEUED / PREEMPTED may be followed by a rerun)
_FINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "TIMEOUT",
    }
)
_SACCT_LAG_S = 10.0


def _submitit() -> Any:
    return require("submitit", "slurm")


class SlurmWorker:
    """The callable that one array task runs: `run_worker` plus submitit's checkpoint protocol.

    submitit pickles it into the job folder; on the preemption signal it calls `checkpoint`,
    which hands back this object (with the trial runs and time already used), and requeues.
    """

    def __init__(
        self,
        study_name: str | None,
        storage_url: str,
        objective_ref: str,
        options: WorkerOptions | None = None,
        *,
        requeue: bool = True,
        n_trials: int | None = None,
        timeout: float | None = None,
        worker_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        """``options``: the worker's settings (`WorkerOptions`); ``n_trials``, ``timeout``
        and ``worker_kwargs`` are their older, deprecated form."""
        legacy = {**(worker_kwargs or {}), "n_trials": n_trials, "timeout": timeout}
        self.options = with_legacy(options, legacy, "SlurmWorker")
        self.study_name = study_name
        self.storage_url = storage_url
        self.objective_ref = objective_ref
        self.requeue = requeue
        self.runs_done = 0  # trial runs finished (not preempted) over all requeues
        self.seconds_used = 0.0
        self.requeues = 0

    def _options_left(self) -> WorkerOptions | None:
        """The options of this (re)run: the trial runs and time not used by earlier runs
        of the task; None when none are left."""
        options = self.options
        n_trials = timeout = None
        if options.n_trials is not None:
            n_trials = options.n_trials - self.runs_done
            if n_trials <= 0:
                return None
        if options.timeout is not None:
            timeout = options.timeout - self.seconds_used
            if timeout <= 0:  # a run of 0 s would be refused: nothing to do
                return None
        return options.replace(n_trials=n_trials, timeout=timeout)

    def __call__(self) -> int:
        usr_signal = _submitit_signal()
        options = self._options_left()
        if options is None:
            return EXIT_OK
        try:
            inner = load_objective(self.objective_ref)
        except Exception as error:  # ImportError, SyntaxError, TuningforkError, ...
            print(
                f"tuningfork worker: cannot load the objective {self.objective_ref!r}: "
                f"{type(error).__name__}: {error}",
                file=sys.stderr,
                flush=True,
            )
            raise WorkerFailed(f"worker exited with code {EXIT_BAD_ARGUMENTS}") from error
        objective = _CountingObjective(inner)
        signals = tuple(dict.fromkeys(("SIGTERM", *options.preempt_signals, usr_signal)))
        options = options.replace(
            preempt_signals=signals,
            space=options.space if options.space is not None else declared_space(inner),
        )
        received, code, started = b"", EXIT_OK, time.monotonic()
        # Signals that arrive while run_worker's own handlers are installed are recorded in
        # this pipe too (Python's C-level handler writes their numbers to the wake-up fd).
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        main = threading.current_thread() is threading.main_thread()  # signals: main only
        previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False) if main else -1
        try:
            code = run_worker(self.study_name, self.storage_url, objective, options)
        finally:
            if main:
                signal.set_wakeup_fd(previous_fd)
            self.seconds_used += time.monotonic() - started
            self.runs_done += objective.finished
            with contextlib.suppress(BlockingIOError):
                received = os.read(read_fd, 4096)
            os.close(read_fd)
            os.close(write_fd)
        if code != EXIT_OK:
            raise WorkerFailed(f"worker exited with code {code} (see the job's stderr log)")
        if self.requeue and usr_signal in received:
            # Paused cleanly; now let submitit's own handler (restored by run_worker) call
            # checkpoint(), requeue this task and exit.
            self.requeues += 1
            signal.raise_signal(usr_signal)
        return code

    def checkpoint(self) -> Any:
        """submitit's hook: the submission to requeue (None: do not requeue)."""
        if not self.requeue:
            return None
        return _submitit().helpers.DelayedSubmission(self)


class _CountingObjective:
    """Counts the objective's runs that were not preempted (so a requeued worker runs only
    the trials it has left)."""

    def __init__(self, objective: Callable[..., Any]) -> None:
        self.objective = objective
        self.finished = 0
        self._lock = threading.Lock()

    def __call__(self, trial: Any) -> Any:
        try:
            return self.objective(trial)
        finally:
            if not getattr(trial, "preempted", False):
                with self._lock:
                    self.finished += 1


def _submitit_signal() -> int:
    """The signal submitit asks SLURM for (``--signal=USR2@...`` unless
    ``SUBMITIT_PREEMPT_SIGNAL`` says otherwise)."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2").upper()
    number = getattr(signal, name if name.startswith("SIG") else f"SIG{name}", None)
    if number is None:
        raise OptionError(
            f"unknown signal in SUBMITIT_PREEMPT_SIGNAL={name!r}; use a signal name such as USR2",
            option="SUBMITIT_PREEMPT_SIGNAL",
            owner="environment",
        )
    return int(number)


def launch_slurm(
    study_name: str | None,
    storage_url: str,
    objective_ref: str,
    *,
    n_workers: int,
    options: WorkerOptions | None = None,
    partition: str | None = None,
    account: str | None = None,
    qos: str | None = None,
    time_limit_min: int = 60,
    gpus_per_task: int | None = None,
    cpus_per_task: int = 1,
    mem_gb: float | None = None,
    additional_sbatch: Mapping[str, Any] | None = None,
    signal_before_s: int = 60,
    log_dir: str | os.PathLike[str] = "tuningfork_slurm/%j",
    requeue: bool = True,
    job_name: str | None = None,
    quiet: bool = False,
    n_trials_per_worker: int | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    heartbeat_interval: float | None = None,
    grace_period: float | None = None,
    n_jobs: int | None = None,
    artifact_root: str | os.PathLike[str] | None = None,
    space: Mapping[str, Any] | None = None,
    max_trials: int | None = None,
) -> list[str]:
    """Submit ``n_workers`` workers of study ``study_name`` as one SLURM job array.

    The study must already exist in ``storage_url`` (``create_study`` or ``tuningfork run``),
    and the storage must be reachable from the compute nodes: PostgreSQL, or SQLite / a
    journal file on a shared file system. The objective is imported by reference
    (``"module:function"`` or ``"path/to/file.py:function"``) in each task, with the Python
    of this process (same venv).

    Args:
        n_workers: array tasks (workers), all submitted at once (``sbatch --array=0-N``).
        options: each worker's settings (`WorkerOptions`: ``n_trials`` and ``timeout`` per
            worker, ``max_trials`` for the study, retries including
            ``retry_failed_exceptions``, heartbeats, ``n_jobs``, space, ...). The SLURM
            signal (``signal_before_s``) is added to its ``preempt_signals``.
        partition / account / qos: ``sbatch --partition / --account / --qos``.
        time_limit_min: ``sbatch --time`` of each task, in minutes.
        gpus_per_task: ``--gpus-per-task`` (None: no GPU request; one GPU per trial is 1).
        cpus_per_task / mem_gb: ``--cpus-per-task`` and ``--mem`` (None: the partition's).
        additional_sbatch: other sbatch options, e.g. ``{"constraint": "v100-32g",
            "hint": "nomultithread"}`` (``--constraint=v100-32g --hint=nomultithread``).
        signal_before_s: seconds before the time limit at which SLURM signals the worker
            to checkpoint (submitit's ``--signal=USR2@...``).
        log_dir: submitit's folder for job scripts, pickles and logs; ``%j`` is the job id.
        requeue: requeue a task that was signalled before its time limit or preempted.
        job_name: ``--job-name`` (default ``tf-<study>``).
        quiet: do not print the job ids.
        n_trials_per_worker / timeout / max_retries / heartbeat_interval / grace_period /
            n_jobs / artifact_root / space / max_trials: deprecated, the older form of
            ``options`` (``n_trials_per_worker`` is its ``n_trials``); they still work, with a
            `DeprecationWarning`, and override ``options``.

    Returns:
        the job ids of the array tasks, ``"<array id>_<index>"`` (with one worker, submitit
        submits a plain job: ``["<job id>"]``).

    Raises:
        MissingExtra: submitit is not installed.
        OptionError: a bad ``n_workers`` or worker option.
        LaunchError: ``sbatch`` is not available or refused the job.
    """
    submitit = _submitit()
    legacy = {
        "n_trials_per_worker": n_trials_per_worker,
        "timeout": timeout,
        "max_retries": max_retries,
        "heartbeat_interval": heartbeat_interval,
        "grace_period": grace_period,
        "n_jobs": n_jobs,
        "artifact_root": artifact_root,
        "space": space,
        "max_trials": max_trials,
    }
    renamed = {"n_trials_per_worker": "n_trials"}
    options = with_legacy(options, legacy, "launch_slurm", renamed=renamed)
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise OptionError(
            f"n_workers must be an int >= 1, got {n_workers!r}",
            option="n_workers",
            owner="launch_slurm",
        )
    objective_ref = _node_reference(objective_ref)
    if not _which("sbatch"):
        raise LaunchError("sbatch is not on PATH: SLURM's client tools are needed to launch")
    executor = submitit.AutoExecutor(folder=str(log_dir), cluster="slurm")
    parameters: dict[str, Any] = {
        "name": job_name or f"tf-{study_name or 'study'}",
        "timeout_min": int(time_limit_min),
        "cpus_per_task": int(cpus_per_task),
        "tasks_per_node": 1,
        "nodes": 1,
        "slurm_signal_delay_s": int(signal_before_s),
        "slurm_array_parallelism": n_workers,
    }
    if mem_gb is not None:
        parameters["mem_gb"] = mem_gb
    for key, value in (
        ("slurm_partition", partition),
        ("slurm_account", account),
        ("slurm_qos", qos),
        ("slurm_gpus_per_task", gpus_per_task),
    ):
        if value is not None:
            parameters[key] = value
    if additional_sbatch:
        parameters["slurm_additional_parameters"] = {
            str(key).replace("-", "_"): value for key, value in additional_sbatch.items()
        }
    executor.update_parameters(**parameters)
    workers = [
        SlurmWorker(study_name, storage_url, objective_ref, options, requeue=requeue)
        for _ in range(n_workers)
    ]
    try:
        with executor.batch():
            jobs = [executor.submit(worker) for worker in workers]
    except subprocess.CalledProcessError as error:
        output = (error.output or b"").decode(errors="replace").strip()
        raise LaunchError(f"sbatch refused the job array: {output or error}") from error
    ids = [str(job.job_id) for job in jobs]
    if not quiet:
        print(
            f"tuningfork: submitted {n_workers} worker(s) of study {study_name!r} as SLURM job "
            f"array {ids[0].split('_')[0]}: {' '.join(ids)}",
            flush=True,
        )
    return ids


def _node_reference(objective_ref: str) -> str:
    """The reference a compute node imports: a file path made absolute here (the nodes
    may start in another directory)."""
    if not isinstance(objective_ref, str):
        raise OptionError(
            "objective_ref must be a 'module:function' or 'path/to/file.py:function' string "
            f"(a job imports it by name), got {objective_ref!r}",
            option="objective_ref",
            owner="launch_slurm",
        )
    module_part, _, function = objective_ref.rpartition(":")
    if module_part.endswith(".py") or "/" in module_part:  # resolve it here, not on the node
        return f"{Path(module_part).expanduser().resolve()}:{function}"
    return objective_ref


def wait_slurm(
    jobs: Iterable[Any], timeout: float | None = None, *, poll: float = 0.5
) -> dict[str, str]:
    """Wait until the given SLURM jobs (ids such as ``"123_4"``, or submitit jobs) run no
    more; their final states (``{"123_4": "COMPLETED", ...}``, from ``sacct``).

    A job is done when ``squeue`` no longer lists it and ``sacct`` gives it a final state
    (COMPLETED, FAILED, CANCELLED, TIMEOUT, ...); a requeued one is waited for again. Without
    accounting (``sacct`` fails) the states are "UNKNOWN". Raises TimeoutError naming the
    jobs not done after ``timeout`` seconds.
    """
    ids = [str(getattr(job, "job_id", job)) for job in jobs]
    deadline = None if timeout is None else time.monotonic() + timeout
    settle: float | None = None  # sacct may lag behind squeue: wait for it a little
    while True:
        queued = _queued(ids)
        pending = set(ids) if queued is None else queued
        if not pending:
            states = _final_states(ids)
            if states is None:
                return dict.fromkeys(ids, "UNKNOWN")
            pending = {job_id for job_id, state in states.items() if state not in _FINAL_STATES}
            settle = time.monotonic() + _SACCT_LAG_S if settle is None else settle
            if not pending or time.monotonic() > settle:
                return states
        else:
            settle = None
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"SLURM jobs not done yet: {' '.join(sorted(pending))}")
        time.sleep(poll)


def _which(program: str) -> bool:
    from shutil import which

    return which(program) is not None


def _run(args: list[str]) -> str | None:
    try:
        completed = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout if completed.returncode == 0 else None


def _queued(ids: list[str]) -> set[str] | None:
    """Those of ``ids`` that squeue lists (pending, running, completing); None if squeue
    cannot say."""
    bases = sorted({job_id.split("_")[0] for job_id in ids})
    out = _run(["squeue", "-h", "-r", "-o", "%i", "-j", ",".join(bases)])
    if out is None:  # squeue refuses a list with an id it no longer knows: ask one by one
        if _run(["squeue", "-h", "-o", "%i", "--me"]) is None:
            return None  # squeue itself fails, not only on unknown ids
        out = "".join(_run(["squeue", "-h", "-r", "-o", "%i", "-j", b]) or "" for b in bases)
    listed = set(out.split())
    return {job_id for job_id in ids if job_id in listed}


def _final_states(ids: list[str]) -> dict[str, str] | None:
    """sacct's state of each of ``ids`` ("MISSING" when sacct does not list it yet); None
    when sacct fails (no accounting)."""
    bases = sorted({job_id.split("_")[0] for job_id in ids})
    out = _run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(bases)])
    if out is None:
        return None
    states: dict[str, str] = {}
    for line in out.splitlines():
        job_id, _, state = line.partition("|")
        words = state.split()
        states[job_id.strip()] = words[0] if words else "UNKNOWN"
    return {job_id: states.get(job_id, "MISSING") for job_id in ids}
