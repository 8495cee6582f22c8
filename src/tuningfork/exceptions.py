"""Exception types raised by tuningfork.

Every error a user can cause has its own type, and its message names the offending
value and how to fix it.
"""

from __future__ import annotations


class TuningforkError(Exception):
    """Base class of every error raised by tuningfork."""


class SpaceError(TuningforkError, ValueError):
    """A search space or a parameter definition is invalid."""


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


class TrialStateError(TuningforkError):
    """The operation is not allowed in the trial's current state (e.g. telling it twice)."""


class ObjectiveValueError(TuningforkError, ValueError):
    """An objective returned something that is not a finite number (or list of them)."""


class SchedulerError(TuningforkError, ValueError):
    """A scheduler was given options it cannot work with, or a study it cannot schedule."""


class SearchExhausted(TuningforkError):
    """The sampler has no configuration left to propose (e.g. every grid point was run)."""


class TrialPruned(Exception):  # noqa: N818 - name chosen to match other HPO frameworks
    """Raise inside an objective to end the trial as PRUNED (stopped early).

    Not a subclass of TuningforkError: it is control flow, not an error.
    """


class MissingExtra(TuningforkError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, extra: str):  # type: ignore[no-untyped-def]
    """Import an optional module, or raise MissingExtra naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtra(
            f"{module!r} is not installed; install it with: pip install 'tuningfork[{extra}]'"
        ) from error
