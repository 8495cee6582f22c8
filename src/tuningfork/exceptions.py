"""Exception types raised by tuningfork.

Every error a user can cause has its own type, and its message names the offending
value and how to fix it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any


class TuningforkError(Exception):
    """Base class of every error raised by tuningfork."""


class SpaceError(TuningforkError, ValueError):
    """A search space or a parameter definition is invalid.

    ``parameter`` names the parameter the error is about (None: the space as a whole);
    the message then starts with ``parameter 'NAME'``.
    """

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter

    def __reduce__(self) -> tuple[object, ...]:  # keep the parameter across processes
        return (_space_error, (type(self), str(self), self.parameter))


def _space_error(kind: type[SpaceError], message: str, parameter: str | None) -> SpaceError:
    return kind(message, parameter=parameter)


class ParameterConflict(SpaceError):
    """A define-by-run parameter was suggested again with a different distribution."""


class StorageError(TuningforkError):
    """The storage cannot be opened, read or written."""


class SchemaVersionError(StorageError):
    """The storage was written by an incompatible version of tuningfork."""


class StudyNotFound(TuningforkError, KeyError):
    """No study of that name exists in the storage."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "study not found"


class DuplicatedStudyError(TuningforkError):
    """A study of that name already exists (pass load_if_exists=True to reuse it)."""


class TrialNotFound(TuningforkError, KeyError):
    """No trial with that number exists in the study."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "trial not found"


class TrialNotInStudy(TuningforkError, ValueError):
    """A trial was told to a study other than the one that asked it."""


class TrialStateError(TuningforkError):
    """The operation is not allowed in the trial's current state (e.g. telling it twice)."""


class ObjectiveValueError(TuningforkError, ValueError):
    """An objective returned something that is not a finite number (or list of them)."""


class OptionError(TuningforkError, ValueError):
    """An option given to a sampler, scheduler, study or command is not allowed.

    ``option`` names the option (e.g. ``"n_ei_candidates"``) and ``owner`` what it was
    given to (e.g. ``"TPESampler"``), so callers such as the study-file checker can say
    where the problem is without reading the message.
    """

    def __init__(self, message: str, *, option: str | None = None, owner: str | None = None):
        super().__init__(message)
        self.option = option
        self.owner = owner

    def __reduce__(self) -> tuple[object, ...]:  # keep option and owner across processes
        return (_option_error, (type(self), str(self), self.option, self.owner))


def _option_error(
    kind: type[OptionError], message: str, option: str | None, owner: str | None
) -> OptionError:
    return kind(message, option=option, owner=owner)


class SchedulerError(OptionError):
    """A scheduler was given options it cannot work with, or a study it cannot schedule."""


class SamplerError(OptionError):
    """A sampler was given a study it cannot sample (e.g. `GPSampler` and a study with
    several objectives); its own bad options raise `OptionError`."""


class PlotOptionError(OptionError):
    """A plot was asked with an option it does not accept or a value it cannot use."""


class NoCompletedTrial(TuningforkError, ValueError):
    """A result (the best trial, the best value) was asked of a study that has no completed
    trial yet; run some trials first."""


class SearchExhausted(TuningforkError):
    """The sampler has no configuration left to propose (e.g. every grid point was run)."""


class WaitForTrials(SearchExhausted):
    """Nothing can run until trials that are running now report (e.g. PBT's synchronous
    generation waits for its last members); ask again later. `Study.optimize` and the
    executors wait and ask again; a loop that treats it as `SearchExhausted` ends, and the
    paused trials stay in the study for the next run."""


class CheckpointError(TuningforkError):
    """A committed checkpoint could not be made or copied: its files are missing, or the
    copy's content hash differs from the one recorded when it was committed."""


class CommandFailed(TuningforkError):
    """An objective that runs an external command (`tuningfork.command.CommandObjective`)
    failed: non-zero exit, killed by a signal, per-trial timeout, or no metric found.

    The message starts with the reason (e.g. "exit code 3") and goes on with the tail of the
    program's stderr (or stdout) and the paths of its logs. ``reason`` holds the first part
    alone; ``returncode`` the exit status (negative: killed by that signal; None: unknown).
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        returncode: int | None = None,
        stdout_log: str | None = None,
        stderr_log: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message
        self.returncode = returncode
        self.stdout_log = stdout_log
        self.stderr_log = stderr_log

    def __reduce__(self) -> tuple[Any, ...]:
        # keep the keyword fields across pickling (Dask and SLURM executors send errors back)
        fields = {
            "reason": self.reason,
            "returncode": self.returncode,
            "stdout_log": self.stdout_log,
            "stderr_log": self.stderr_log,
        }
        return (_command_failed, (str(self), fields))


def _command_failed(message: str, fields: dict[str, Any]) -> CommandFailed:
    return CommandFailed(message, **fields)


class ObjectiveNotFound(TuningforkError):
    """An objective named by reference (``"module:function"``, ``"path/file.py:function"``)
    cannot be loaded: a malformed reference, a missing file or attribute, not callable."""


class WorkerFailed(TuningforkError):
    """A worker started by a launcher (a SLURM job, a Dask task) ended with an error exit
    code; its own log says why."""


class LaunchError(TuningforkError):
    """A launcher cannot start workers: SLURM's ``sbatch`` is missing or refused the jobs."""


class SerializationError(TuningforkError):
    """An objective, sampler or scheduler cannot be sent to another process (cloudpickle
    failed); the message names what failed to pickle."""


class ConfigError(TuningforkError):
    """A YAML study file is invalid.

    The message lists every problem found, one per line, each as
    ``FILE:LINE: FIELD: what is wrong and what is allowed``; `problems` holds those lines.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems) if problems is not None else [message]


class TrialPruned(Exception):  # noqa: N818 - name chosen to match other HPO frameworks
    """Raise inside an objective to end the trial as PRUNED (stopped early).

    Not a subclass of TuningforkError: it is control flow, not an error.
    """


class MissingExtra(TuningforkError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class NothingToPlot(TuningforkError, ValueError):
    """A plot was asked of a study that has nothing to show for it (no complete trial, too
    few parameters, no reports, ...); the message says what is missing."""


class NotEnoughTrials(TuningforkError, ValueError):
    """An analysis (e.g. parameter importance) was asked of a study with too little data for
    it: too few complete trials, or no parameters; the message says what it needs."""


def require(module: str, extra: str) -> ModuleType:
    """Import an optional module, or raise MissingExtra naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtra(
            f"{module!r} is not installed; install it with: pip install 'tuningfork[{extra}]'"
        ) from error


class StudyNameError(TuningforkError, ValueError):
    """A study name cannot be used: empty, a path, holding a control character, or too long
    for the study's artefact folder; the message says which rule it breaks."""


class StorageURLError(StorageError, ValueError):
    """A storage URL is malformed or names a kind of storage tuningfork does not support;
    the message names the URL (its password masked) and the forms that work."""


class StorageNotFound(StorageError):
    """No tuningfork storage is at a URL that must name an existing one (a read-only command,
    ``get_storage(url, create=False)``): a missing file, a database without tuningfork's
    tables, a file that is not a journal. The message names the path or URL."""


class ExperimentalWarning(FutureWarning):
    """An experimental API was used: it works and is tested, but its interface may change
    in a minor release (see `tuningfork._experimental`)."""


class DashboardError(TuningforkError):
    """A request the dashboard answers with an HTTP error ``status`` and the message."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[object, ...]:  # keep the status across processes
        return (type(self), (str(self), self.status))


class CholeskyError(ArithmeticError):
    """The covariance matrix of a Gaussian process is not positive definite, even with
    jitter. Internal to `GPSampler`, which falls back when it happens."""


class BudgetSpent(BaseException):  # noqa: N818 (a signal, not an error)
    """Raised by a `tuningfork.testing.mf_functions.Meter` once the budget is spent, to end
    the method's run.

    A `BaseException`, like `KeyboardInterrupt`, so that a framework's trial loop that
    catches `Exception` (to mark a trial failed and go on) lets it through."""


class StorageWarning(UserWarning):
    """A storage skipped something it could not read (e.g. journal lines that are not valid
    records); the message says what, where, and how to clean it up."""
