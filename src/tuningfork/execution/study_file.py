"""``tuningfork run STUDY.yaml``: run a study described by a YAML study file.

The file (`tuningfork.config`) names the study, its storage, space, sampler, scheduler
and the command to run for each trial (`tuningfork.command.CommandObjective`). Running
it here starts ``resources.workers`` trials at a time in this process (each trial is a
child process, so threads suffice), prints a line per finished trial, and stops after
``limits.n_trials`` trials in the study (counting those of earlier runs; resuming a
paused trial is not a new one) or ``limits.timeout`` seconds. With ``--slurm`` it
submits SLURM workers instead, each of which reads the same file.

Ctrl-C (SIGINT) or SIGTERM stops the run cleanly: no new trial starts, each running
command is asked to checkpoint (its control file says ``pause``, then it gets SIGTERM and
``limits.grace_period`` seconds before SIGKILL), and its trial is recorded PAUSED
("preempted"). ``tuningfork run STUDY.yaml --resume`` resumes those trials first.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, TextIO

from tuningfork._progress import best_text, outcome, trial_line
from tuningfork._redact import redact_urls
from tuningfork.config import StudyConfig, load_config, redact_study_file
from tuningfork.exceptions import (
    CommandFailed,
    ConfigError,
    DuplicatedStudyError,
    OptionError,
    StudyNotFound,
    TuningforkError,
)
from tuningfork.execution.options import WORKER_FIELDS, WorkerOptions
from tuningfork.study import Study, load_study
from tuningfork.trial import FrozenTrial, TrialState

__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "run_study_file", "study_file_objective"]

EXIT_OK = 0
EXIT_INTERRUPTED = 130

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def study_file_objective(path: str | os.PathLike[str]) -> Any:
    """The objective of a study file: its command (what SLURM workers import by the path
    of the file, see `tuningfork.execution.worker.load_objective`)."""
    return load_config(path).command_objective()


def run_study_file(
    path: str | os.PathLike[str],
    *,
    workers: int | None = None,
    n_trials: int | None = None,
    slurm: bool = False,
    resume: bool = False,
    wait: bool = False,
    out: TextIO | None = None,
) -> int:
    """Run the study of the file at ``path``; return a process exit code.

    Args:
        workers: trials at once (default: ``resources.workers``); with ``slurm``, the
            number of SLURM workers (default: ``resources.slurm.n_workers``).
        n_trials: how many trials (configurations) the study should have, counting those
            of earlier runs (default: ``limits.n_trials``; None: until ``limits.timeout``
            or the sampler is exhausted), here or on SLURM (`Study.optimize`'s
            ``max_trials``: exact, however many workers). Resuming a paused trial (a
            promotion by ASHA or Hyperband, or a trial paused by Ctrl-C) is not a new
            trial: promotions go on until the scheduler asks for a new trial.
        slurm: submit SLURM workers (``resources.slurm``) instead of running here.
        resume: continue a study that already has trials: trials paused by an
            interruption are resumed first. Without it, a study with trials is an error,
            so two files that share a name do not mix their results.
        wait: with ``slurm``, wait for the jobs to end.
        out: where progress goes (default: standard output).

    Raises:
        ConfigError: the file is not valid (nothing runs).
        DuplicatedStudyError: the study has trials and ``resume`` is False.
        OptionError: ``n_trials`` or ``workers`` below 1.
    """
    stream = out if out is not None else sys.stdout
    config = load_config(path)
    study = _open_study(config, resume)
    target = n_trials if n_trials is not None else config.limits.n_trials
    if target is not None and target < 1:
        raise OptionError(
            f"--n-trials must be at least 1, got {target}",
            option="n_trials",
            owner="tuningfork run",
        )
    if _runs_wanted(study, target) == 0:
        _say(stream, f"study {study.name!r} already has {len(study.trials)} trials; done")
        _print_best(stream, study, config)
        return EXIT_OK
    if slurm:
        return _submit(config, study, Path(path), workers, target, wait, stream)
    return _run_here(config, study, workers, target, stream)


def _runs_wanted(study: Study, target: int | None) -> int | None:
    """Whether anything is left to do, as a count: new trials below ``target`` plus the
    trials an interruption paused (None: no limit)."""
    if target is None:
        return None
    interrupted = sum(
        1 for t in study.trials if t.state is TrialState.PAUSED and t.system_attrs.get("preempted")
    )
    return max(target - len(study.trials), 0) + interrupted


def _open_study(config: StudyConfig, resume: bool) -> Study:
    try:
        existing = load_study(config.study, config.storage_url())
    except StudyNotFound:
        existing = None
    if existing is not None and existing.trials and not resume:
        raise DuplicatedStudyError(
            f"study {config.study!r} already has {len(existing.trials)} trials in "
            f"{redact_urls(config.storage_url())}; pass --resume to continue it, or give the study "
            "another name in the file"
        )
    study = config.create_study(load_if_exists=True)
    if existing is None:
        study.set_user_attr("study_file", {"path": config.source, "text": _text(config)})
    return study


def _run_here(
    config: StudyConfig, study: Study, workers: int | None, target: int | None, out: TextIO
) -> int:
    n_jobs = workers if workers is not None else config.resources.workers
    if n_jobs < 1:
        raise OptionError(
            f"--workers must be at least 1, got {n_jobs}", option="workers", owner="tuningfork run"
        )
    objective = config.command_objective()
    printer = _Printer(study, config, target, out)
    total = "" if target is None else f" up to {target} trials,"
    _say(
        out,
        f"study {study.name!r} in {redact_urls(config.storage_url())}:{total} {n_jobs} at a time "
        f"(Ctrl-C pauses running trials; --resume continues)",
    )
    rungs = study.scheduler.start_message()
    if rungs:
        _say(out, rungs)
    with warnings.catch_warnings():  # the printer shows each failure with its log's tail
        warnings.filterwarnings("ignore", message=r"trial \d+ failed", category=UserWarning)
        _optimize(study, config, objective, target, n_jobs, printer)
    if study.preempted_by is not None:
        paused = [
            t for t in study.trials if t.state is TrialState.PAUSED and t.reason == "preempted"
        ]
        _say(
            out,
            f"stopped by signal {study.preempted_by}: {len(paused)} trial(s) paused; "
            f"`tuningfork run {config.source} --resume` resumes them",
        )
        _print_best(out, study, config)
        return EXIT_INTERRUPTED
    _print_best(out, study, config)
    return EXIT_OK


def _submit(
    config: StudyConfig,
    study: Study,
    path: Path,
    workers: int | None,
    target: int | None,
    wait: bool,
    out: TextIO,
) -> int:
    from tuningfork.execution.slurm import launch_slurm, wait_slurm

    slurm = _slurm_only(config.slurm_options())
    if not slurm:
        raise ConfigError(
            f"{config.source}: --slurm needs a resources.slurm section (partition, "
            "time_limit_min, gpus_per_task, ...); see `tuningfork init`"
        )
    if workers is not None:
        slurm["n_workers"] = workers
    options = WorkerOptions.from_study_file(config, max_trials=target)
    ids = launch_slurm(
        study.name, config.storage_url(), str(path.resolve()), options=options, quiet=True, **slurm
    )
    _say(out, f"submitted {len(ids)} SLURM worker(s): {' '.join(ids)}")
    rungs = study.scheduler.start_message()  # the workers print it in their own logs
    if rungs:
        _say(out, rungs)
    if not wait:
        return EXIT_OK
    states = wait_slurm(ids)
    _say(out, " ".join(f"{job}:{state}" for job, state in states.items()))
    _print_best(out, load_study(study.name, config.storage_url()), config)
    return EXIT_OK if all(s == "COMPLETED" for s in states.values()) else 1


def _slurm_only(options: dict[str, Any]) -> dict[str, Any]:
    """The SLURM options of ``StudyConfig.slurm_options()``, without the worker settings
    that `WorkerOptions.from_study_file` reads."""
    return {key: value for key, value in options.items() if key not in WORKER_FIELDS}


def _optimize(
    study: Study,
    config: StudyConfig,
    objective: Any,
    target: int | None,
    n_jobs: int,
    printer: _Printer,
) -> None:
    options = WorkerOptions(
        timeout=config.limits.timeout,
        n_jobs=n_jobs,
        catch=(CommandFailed,),
        show_progress_bar=False,
        space=config.space(),
        preempt_signals=("SIGTERM", "SIGINT"),  # Ctrl-C pauses the running trials too
        max_trials=target,
    )
    study.optimize(objective, callbacks=[printer], **options.optimize_arguments())


class _Printer:
    """A callback printing one line per finished trial run: how many runs have ended, the
    trial's state and values (or the reason it failed, with the last lines of its log),
    the study's trials against the target, the best so far and how many are running."""

    def __init__(self, study: Study, config: StudyConfig, target: int | None, out: TextIO) -> None:
        self.study = study
        self.metrics = config.resolved_metrics
        self.target = target
        self.out = out
        self.done = 0
        self.start = time.monotonic()
        self.lock = threading.Lock()  # trials finish in several threads

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        with self.lock:
            self._print(study, trial)

    def _print(self, study: Study, trial: FrozenTrial) -> None:
        self.done += 1
        target = "" if self.target is None else f"/{self.target}"
        fields = [
            f"trials {len(study.trials)}{target}",
            f"best {best_text(study, self.metrics)}",
            f"running {len(study.reader.numbers('RUNNING'))}",
        ]
        elapsed = time.monotonic() - self.start
        line = trial_line(trial, metrics=self.metrics, fields=fields, elapsed=elapsed, reason=False)
        self.out.write(f"[{self.done}] {line}\n")
        if trial.state is TrialState.FAIL and trial.reason:
            for text in trial.reason.rstrip().splitlines():
                self.out.write(f"    {text}\n")
        self.out.flush()


def _print_best(out: TextIO, study: Study, config: StudyConfig) -> None:
    metrics = config.resolved_metrics
    counts: dict[str, int] = {}
    for trial in study.trials:
        counts[trial.state.value] = counts.get(trial.state.value, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    _say(out, f"study {study.name!r}: {summary or 'no trials'}")
    if len(study.directions) == 1:
        try:
            best = study.best_trial
        except TuningforkError:
            return
        _say(out, f"best: trial {best.number}, {outcome(best, metrics).strip()}, {best.params}")


def _text(config: StudyConfig) -> str:
    """The study file's text as the study records it: secrets masked."""
    try:
        return redact_study_file(Path(config.source).read_text())
    except OSError:
        return ""


def _say(out: TextIO, message: str) -> None:
    out.write(f"tuningfork: {message}\n")
    out.flush()
