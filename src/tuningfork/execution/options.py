"""`WorkerOptions`: the settings of one worker, checked once and passed as one frozen object
to every launcher (`run_worker`, `launch_slurm`, the Dask executor, the command line)."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuningfork.exceptions import OptionError

if TYPE_CHECKING:
    from tuningfork.config import StudyConfig
    from tuningfork.space import Space
    from tuningfork.study import Study

__all__ = ["WorkerOptions"]

_OWNER = "WorkerOptions"


@dataclass(frozen=True)
class WorkerOptions:
    """What a worker needs besides the study, the storage and the objective.

    Every field has the same name as a `Study.optimize` / `load_study` argument, as a
    ``tuningfork worker`` flag (``--n-trials``, ``--max-retries``, ...) and as a study-file
    key; the defaults are those of a worker started with no option.

    Attributes:
        n_trials: trial runs for this worker (None, the default: until ``timeout``,
            ``max_trials`` or the sampler is exhausted). N workers with ``n_trials=k`` run
            N*k trial runs in all; resuming a paused trial is one run.
        max_trials: stop once the study holds this many trials, every worker's counted
            (None: no cap). N workers with ``max_trials=M`` make M trials in all.
        timeout: seconds after which this worker starts no new trial (None: no limit).
        n_jobs: threads running trials in this worker (default 1; -1: one per CPU).
        catch: exception types that fail only their trial (default: any ``Exception``, so
            one bad configuration does not end the worker).
        max_retries: retries of a trial whose worker vanished (None: the study's record).
        retry_failed_exceptions: also retry trials whose objective raised (None: the
            study's record).
        heartbeat_interval: seconds between a running trial's heartbeats (None: the
            study's default, 10).
        grace_period: seconds of heartbeat silence after which another worker's trial
            counts as stale and is failed (None: the study's default, 60).
        preempt_signals: signals that stop the worker cleanly, running trials paused for
            the next worker (default: SIGTERM; add "SIGUSR1" for ``sbatch
            --signal=USR1@60``; ``()`` keeps the process's own handlers).
        show_progress_bar: None (default): a live line on a terminal, else one line per
            finished trial on stderr; False: only the final summary.
        space: a declared search space (a `Space` or its `Space.to_dict` form) when the
            objective does not suggest its own parameters (None: the objective's own, e.g.
            a study file's command).
        artifact_root: the folder under which the study keeps checkpoints and logs (None:
            the study's default).

    Raises:
        OptionError: a value out of range or of the wrong type; ``option`` names the field.
    """

    n_trials: int | None = None
    max_trials: int | None = None
    timeout: float | None = None
    n_jobs: int = 1
    catch: tuple[type[BaseException], ...] = (Exception,)
    max_retries: int | None = None
    retry_failed_exceptions: bool | None = None
    heartbeat_interval: float | None = None
    grace_period: float | None = None
    preempt_signals: tuple[int | str, ...] = ("SIGTERM",)
    show_progress_bar: bool | None = None
    space: Space | Mapping[str, Any] | None = None
    artifact_root: str | None = None

    def __post_init__(self) -> None:
        _check_count("n_trials", self.n_trials, minimum=0)
        _check_count("max_trials", self.max_trials, minimum=1)
        _check_count("max_retries", self.max_retries, minimum=0)
        self._set("timeout", _seconds("timeout", self.timeout, zero=False))
        self._set("heartbeat_interval", _seconds("heartbeat_interval", self.heartbeat_interval))
        self._set("grace_period", _seconds("grace_period", self.grace_period, zero=True))
        _check_n_jobs(self.n_jobs)
        _check_flag("retry_failed_exceptions", self.retry_failed_exceptions)
        _check_flag("show_progress_bar", self.show_progress_bar)
        self._set("catch", _exception_types(self.catch))
        self._set("preempt_signals", _signals(self.preempt_signals))
        self._set("space", _space(self.space))
        if self.artifact_root is not None:
            self._set("artifact_root", os.fspath(self.artifact_root))

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # normalising a frozen field, once

    def replace(self, **changes: Any) -> WorkerOptions:
        """A copy with ``changes`` (checked like the original)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_study_file(cls, config: StudyConfig, **changes: Any) -> WorkerOptions:
        """The options of a SLURM worker of a study file: ``limits.timeout`` and
        ``limits.max_retries``, ``resources.slurm.n_jobs`` and ``heartbeat_interval``, and
        the file's space; ``changes`` override them (e.g. ``max_trials``)."""
        slurm = config.resources.slurm
        values: dict[str, Any] = {
            "timeout": config.limits.timeout,
            "max_retries": config.limits.max_retries,
            "space": config.space().to_dict(),
        }
        if slurm is not None:
            values["n_jobs"] = slurm.n_jobs
            values["heartbeat_interval"] = slurm.heartbeat_interval
        return cls(**{**values, **changes})

    def open_study(self, study_name: str | None, storage_url: str, **load: Any) -> Study:
        """Load the study with these options' ``artifact_root`` and retry rule, and set its
        ``heartbeat_interval`` and ``grace_period`` (``load``: more `load_study` arguments,
        e.g. ``sampler``)."""
        from tuningfork.study import load_study

        study = load_study(
            study_name,
            storage_url,
            artifact_root=self.artifact_root,
            max_retries=self.max_retries,
            retry_failed_exceptions=self.retry_failed_exceptions,
            **load,
        )
        if self.heartbeat_interval is not None:
            study.heartbeat_interval = self.heartbeat_interval
        if self.grace_period is not None:
            study.grace_period = self.grace_period
        return study

    def optimize_arguments(self) -> dict[str, Any]:
        """The keyword arguments of `Study.optimize` these options set."""
        return {
            "n_trials": self.n_trials,
            "timeout": self.timeout,
            "n_jobs": self.n_jobs,
            "catch": self.catch,
            "show_progress_bar": self.show_progress_bar,
            "space": self.space,
            "preempt_signals": self.preempt_signals,
            "max_trials": self.max_trials,
        }


def with_legacy(
    options: WorkerOptions | None,
    legacy: Mapping[str, Any],
    caller: str,
    *,
    renamed: Mapping[str, str] | None = None,
    stacklevel: int = 3,
) -> WorkerOptions:
    """``options`` with the loose keyword arguments of an older ``caller`` folded in, with
    a `DeprecationWarning` that names the new form; None values are left out. ``renamed``
    maps an old keyword to its field (``n_trials_per_worker`` -> ``n_trials``)."""
    renamed = renamed or {}
    if options is not None and not isinstance(options, WorkerOptions):
        raise OptionError(
            f"options must be a WorkerOptions, got {type(options).__name__}",
            option="options",
            owner=caller,
        )
    given = {name: value for name, value in legacy.items() if value is not None}
    unknown = sorted(set(given) - WORKER_FIELDS - set(renamed))
    if unknown:
        raise TypeError(f"{caller}() got unexpected keyword argument(s) {unknown}")
    base = options if options is not None else WorkerOptions()
    if not given:
        return base
    fields = {renamed.get(name, name): value for name, value in given.items()}
    shown = ", ".join(f"{name}=..." for name in fields)
    warnings.warn(
        f"{caller}({', '.join(f'{name}=' for name in given)}) is deprecated; pass "
        f"options=WorkerOptions({shown})",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return base.replace(**fields)


WORKER_FIELDS = frozenset(f.name for f in dataclasses.fields(WorkerOptions))
"""The names of the `WorkerOptions` fields (to tell worker settings from launcher ones)."""


# -- checks ---------------------------------------------------------------------------------


def _check_count(name: str, value: Any, *, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise OptionError(
            f"{name} must be an int >= {minimum} or None, got {value!r}", option=name, owner=_OWNER
        )


def _seconds(name: str, value: Any, *, zero: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(
            f"{name} must be a number of seconds or None, got {value!r}", option=name, owner=_OWNER
        )
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise OptionError(
            f"{name} must be finite and {bound} seconds, got {value!r}", option=name, owner=_OWNER
        )
    return number


def _check_n_jobs(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or (value < 1 and value != -1):
        raise OptionError(
            f"n_jobs must be an int >= 1, or -1 for one thread per CPU, got {value!r}",
            option="n_jobs",
            owner=_OWNER,
        )


def _check_flag(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise OptionError(
            f"{name} must be True, False or None, got {value!r}", option=name, owner=_OWNER
        )


def _exception_types(value: Any) -> tuple[type[BaseException], ...]:
    items = (value,) if isinstance(value, type) else tuple(value)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise OptionError(
                f"catch must hold exception types (e.g. (CommandFailed,)), got {item!r}",
                option="catch",
                owner=_OWNER,
            )
    return items


def _signals(value: Iterable[int | str] | str) -> tuple[int | str, ...]:
    items = (value,) if isinstance(value, (str, int)) else tuple(value)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, str)) or not _is_signal(item):
            raise OptionError(
                f"preempt_signals: {item!r} is not a signal; name one such as 'SIGTERM' or "
                "'SIGUSR1'",
                option="preempt_signals",
                owner=_OWNER,
            )
    return items


def _is_signal(item: int | str) -> bool:
    if isinstance(item, int):
        return item in set(signal.valid_signals())
    name = item.upper() if item.upper().startswith("SIG") else f"SIG{item.upper()}"
    return isinstance(getattr(signal, name, None), signal.Signals)


def _space(value: Any) -> Any:
    from tuningfork.space import Space

    if value is None or isinstance(value, Space):
        return value
    if isinstance(value, Mapping):
        return dict(value)
    raise OptionError(
        f"space must be a Space or its dict form, got {type(value).__name__}",
        option="space",
        owner=_OWNER,
    )
