"""The worker loop: load a study, import the objective, run trials until told to stop.

Start one per GPU, node or SLURM job; they share the study through its storage::

    from tuningfork.execution import WorkerOptions, run_worker
    options = WorkerOptions(n_trials=20, heartbeat_interval=10)
    raise SystemExit(run_worker("mnist", "sqlite:///hpo.db", "train:objective", options))

A worker sends heartbeats for its trials, so a worker that dies (``kill -9``, a node lost)
has its trial failed as ``stale`` by another worker after ``grace_period`` seconds and,
when the study has ``max_retries``, re-queued as a linked retry. SIGTERM (and the signals
in ``preempt_signals``, e.g. SLURM's ``--signal=USR1@60``) makes the worker stop cleanly:
running trials are asked to checkpoint and are recorded PAUSED ("preempted"), and the next
worker resumes them first. The worker's host, pid and SLURM ids are recorded in the study
(`Study.workers`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuningfork._progress import best_text
from tuningfork.exceptions import ObjectiveNotFound, TuningforkError
from tuningfork.execution.options import WorkerOptions, with_legacy
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.space import Space
    from tuningfork.study import Study

__all__ = [
    "EXIT_ALL_FAILED",
    "EXIT_BAD_ARGUMENTS",
    "EXIT_ERROR",
    "EXIT_OK",
    "WorkerOptions",
    "declared_space",
    "load_objective",
    "run_worker",
]

EXIT_OK = 0
EXIT_ERROR = 1  # the objective raised an exception not in ``catch``
EXIT_BAD_ARGUMENTS = 2  # the objective could not be imported, or the study not loaded
EXIT_ALL_FAILED = 3  # the worker ran trials and every one of them failed


def load_objective(ref: str) -> Callable[..., Any]:
    """Import ``"module:function"`` or ``"path/to/file.py:function"`` (dotted attribute
    paths such as ``"pkg.mod:Class.method"`` work too), or build the command objective of
    a YAML study file (``"path/to/study.yaml"``, see `tuningfork.config`). A module name is
    looked up on ``sys.path`` plus the current directory, as ``python -m`` would."""
    if ref.endswith((".yaml", ".yml")) and ":" not in ref:  # a study file: its command
        from tuningfork.execution.study_file import study_file_objective

        return study_file_objective(ref)
    module_part, sep, attr = ref.rpartition(":")
    if not sep or not module_part or not attr:
        raise ObjectiveNotFound(
            f"objective {ref!r} must look like 'module:function' or 'path/to/file.py:function'"
        )
    if module_part.endswith(".py") or "/" in module_part or os.sep in module_part:
        path = Path(module_part).expanduser().resolve()
        if not path.is_file():
            raise ObjectiveNotFound(f"objective file {str(path)!r} does not exist")
        name = f"_tuningfork_objective_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ObjectiveNotFound(f"cannot import {str(path)!r} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # so pickling and dataclasses inside it work
        directory = str(path.parent)
        if directory not in sys.path:  # its sibling modules import as in `python file.py`
            sys.path.insert(0, directory)
        spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(module_part)
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ObjectiveNotFound(f"{module_part!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise ObjectiveNotFound(f"objective {ref!r} is not callable")
    return target


def run_worker(
    study_name: str | None,
    storage_url: str,
    objective_ref: str | Callable[..., Any],
    options: WorkerOptions | None = None,
    *legacy_args: Any,
    **legacy_kwargs: Any,
) -> int:
    """Run one worker on study ``study_name`` in ``storage_url``; return a process exit code.

    Args:
        study_name: the study (None: the storage's only study). It must exist
            (`create_study` or ``tuningfork run`` first).
        storage_url: e.g. ``sqlite:///hpo.db``, ``postgresql+psycopg://...``.
        objective_ref: ``"module:function"`` or ``"path/to/file.py:function"`` (or the
            callable itself).
        options: how many trials, how long, retries, heartbeats, signals, space (see
            `WorkerOptions`; None: its defaults). The space defaults to the one of a study
            file's command objective (``objective_ref="study.yaml"``).

    Deprecated: ``n_trials`` and ``timeout`` as the 4th and 5th positional arguments, and
    every `WorkerOptions` field as a keyword argument (``run_worker(..., n_trials=20)``);
    they still work, with a `DeprecationWarning`, and override ``options``.

    Returns:
        0 when the worker ran out of trials, time or configurations, or was preempted
        cleanly (running trials paused for resumption); 1 when the objective raised an
        exception not in ``catch`` (its trial is failed); 2 when the objective could not be
        imported or the study could not be loaded; 3 when it ran trials and every one
        failed (the summary on stderr quotes the first failure). 130 after Ctrl-C.
    """
    options = _legacy_options(options, legacy_args, legacy_kwargs)
    try:
        objective = objective_ref if callable(objective_ref) else load_objective(str(objective_ref))
    except Exception as error:  # ImportError, SyntaxError, TuningforkError, ...
        _say(f"cannot load the objective {objective_ref!r}: {type(error).__name__}: {error}")
        return EXIT_BAD_ARGUMENTS
    if options.space is None:
        options = options.replace(space=declared_space(objective))
    try:
        study = options.open_study(study_name, storage_url)
    except TuningforkError as error:
        _say(f"cannot load study {study_name!r} from {storage_url!r}: {error}")
        return EXIT_BAD_ARGUMENTS
    tally = _Tally()
    try:
        study.optimize(objective, callbacks=[tally], **options.optimize_arguments())
    except KeyboardInterrupt:
        _say("interrupted; running trials were marked failed")
        return 130
    except Exception:
        _say("the objective raised; its trial was marked failed:\n" + traceback.format_exc())
        return EXIT_ERROR
    _say(tally.summary(study))
    if study.preempted_by is not None:
        _say(
            f"stopped by signal {study.preempted_by}; running trials were paused and will be "
            "resumed by the next worker"
        )
    if tally.all_failed:
        _say(f"every trial of this worker failed; the first: {tally.first_failure}")
        return EXIT_ALL_FAILED
    return EXIT_OK


def _legacy_options(
    options: Any, legacy_args: tuple[Any, ...], legacy_kwargs: dict[str, Any]
) -> WorkerOptions:
    """The options of a call in the older form ``run_worker(name, url, ref, n_trials,
    timeout, n_jobs=..., ...)``, which still works with a `DeprecationWarning`."""
    if options is not None and not isinstance(options, WorkerOptions):  # old n_trials
        legacy_args = (options, *legacy_args)
        options = None
    if len(legacy_args) > 2:
        raise TypeError(
            f"run_worker() takes at most 5 positional arguments ({3 + len(legacy_args)} given)"
        )
    positional = dict(zip(("n_trials", "timeout"), legacy_args))
    clash = sorted(set(positional) & set(legacy_kwargs))
    if clash:
        raise TypeError(f"run_worker() got multiple values for argument(s) {clash}")
    return with_legacy(options, {**positional, **legacy_kwargs}, "run_worker", stacklevel=4)


def declared_space(objective: Callable[..., Any]) -> Space | None:
    """The space a command objective declares (a study file's), so its placeholders get
    values; None for a define-by-run objective."""
    from tuningfork.command import CommandObjective

    return objective.space if isinstance(objective, CommandObjective) else None


class _Tally:
    """A callback counting the states of the trial runs this worker finished."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.first_failure: str | None = None
        self.lock = threading.Lock()

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        with self.lock:
            state = trial.state.value
            self.counts[state] = self.counts.get(state, 0) + 1
            if trial.state is TrialState.FAIL and self.first_failure is None:
                reason = (trial.reason or "no reason recorded").strip().splitlines()
                self.first_failure = f"trial {trial.number}: {reason[0]}"

    @property
    def all_failed(self) -> bool:
        total = sum(self.counts.values())
        return total > 0 and self.counts.get(TrialState.FAIL.value, 0) == total

    def summary(self, study: Study) -> str:
        total = sum(self.counts.values())
        states = ", ".join(f"{n} {state}" for state, n in sorted(self.counts.items()))
        ran = f"ran {total} trial run(s)" + (f": {states}" if states else "")
        return f"{ran}; study {study.name!r} best: {best_text(study, ['value'])}"


def _say(message: str) -> None:
    print(f"tuningfork worker: {message}", file=sys.stderr, flush=True)
