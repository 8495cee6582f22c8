"""Trials: the live handle an objective receives (`Trial`), the read-only record of a trial
(`FrozenTrial`) and the states a trial moves through (`TrialState`)."""

from __future__ import annotations

import enum
import functools
import math
import numbers
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tuningfork.exceptions import ParameterConflict, SpaceError, TrialStateError
from tuningfork.space import Categorical, Distribution, Float, Int, Space, Value

if TYPE_CHECKING:
    from tuningfork.schedulers.base import Decision
    from tuningfork.study import Study, TrialChannel


class TrialState(str, enum.Enum):
    """Where a trial stands.

    WAITING (queued) -> RUNNING -> COMPLETE | PRUNED | FAIL; PAUSED is a trial stopped at a
    rung with a checkpoint, waiting to be resumed at a larger budget.
    """

    WAITING = "WAITING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAIL = "FAIL"

    @property
    def is_finished(self) -> bool:
        """True for COMPLETE, PRUNED and FAIL."""
        return self in _FINISHED

    def __str__(self) -> str:
        return self.value


_FINISHED = frozenset({TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL})


_K = TypeVar("_K")
_V = TypeVar("_V")


class FrozenDict(dict[_K, _V]):
    """A dict that refuses changes: the mappings of a `FrozenTrial`. Reading, copying
    (``dict(d)``, ``d.copy()``, which give a plain dict) and JSON work as for a dict."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "a FrozenTrial's mappings are read-only; copy one first (dict(trial.params))"
        )

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


@dataclass(frozen=True)
class FrozenTrial:
    """The record of one trial, as replayed from the storage.

    Times are seconds since the epoch (``time.time()``); ``duration`` is in seconds.
    ``intermediate_values`` maps a step (a unit of budget: epoch, samples, seconds) to the
    value reported at that step.
    """

    number: int
    state: TrialState
    params: dict[str, Value] = field(default_factory=dict)
    distributions: dict[str, Distribution] = field(default_factory=dict)
    values: tuple[float, ...] | None = None
    intermediate_values: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    datetime_start: float | None = None
    datetime_complete: float | None = None
    worker: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        # a record never shares a mutable dict with anyone (spelt out: this runs for every
        # record a study makes, and the study's are FrozenDicts already)
        if type(self.params) is not FrozenDict:
            object.__setattr__(self, "params", FrozenDict(self.params))
        if type(self.distributions) is not FrozenDict:
            object.__setattr__(self, "distributions", FrozenDict(self.distributions))
        if type(self.intermediate_values) is not FrozenDict:
            object.__setattr__(self, "intermediate_values", FrozenDict(self.intermediate_values))
        if type(self.user_attrs) is not FrozenDict:
            object.__setattr__(self, "user_attrs", FrozenDict(self.user_attrs))
        if type(self.system_attrs) is not FrozenDict:
            object.__setattr__(self, "system_attrs", FrozenDict(self.system_attrs))

    @property
    def value(self) -> float | None:
        """The objective value of a single-objective trial (None until it completes)."""
        if self.values is None:
            return None
        if len(self.values) != 1:
            raise TrialStateError(
                f"trial {self.number} has {len(self.values)} objective values; use .values"
            )
        return self.values[0]

    @property
    def duration(self) -> float | None:
        """Seconds from start to completion, or None while unfinished."""
        if self.datetime_start is None or self.datetime_complete is None:
            return None
        return self.datetime_complete - self.datetime_start

    @property
    def last_step(self) -> int | None:
        """The largest step reported so far, or None."""
        return max(self.intermediate_values) if self.intermediate_values else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict of this record."""
        return {
            "number": self.number,
            "state": self.state.value,
            "params": dict(self.params),
            "distributions": {k: d.to_json() for k, d in self.distributions.items()},
            "values": list(self.values) if self.values is not None else None,
            "intermediate_values": {str(k): v for k, v in self.intermediate_values.items()},
            "user_attrs": dict(self.user_attrs),
            "system_attrs": dict(self.system_attrs),
            "datetime_start": self.datetime_start,
            "datetime_complete": self.datetime_complete,
            "duration": self.duration,
            "worker": self.worker,
            "reason": self.reason,
        }


class Trial:
    """The handle an objective receives: suggest parameters, report progress, ask whether to stop.

    Suggestions are kept locally and written to the storage together with the next report,
    attribute or the final result, so a trial costs few storage round trips.
    """

    def __init__(
        self,
        study: Study,
        number: int,
        *,
        channel: TrialChannel,
        fixed_params: Mapping[str, Value] | None = None,
        params: Mapping[str, Value] | None = None,
        distributions: Mapping[str, Distribution] | None = None,
        budget: float | None = None,
        last_step: int | None = None,
        hints: Mapping[str, Value] | None = None,
    ) -> None:
        self.study = study
        self.number = number
        self._channel = channel  # the study's door for this handle: reports, decisions
        self.budget = budget
        self._fixed = dict(fixed_params or {})
        self._hints = dict(hints or {})  # a scheduler's proposal; the sampler if out of range
        self._params: dict[str, Value] = dict(params or {})
        self._distributions: dict[str, Distribution] = dict(distributions or {})
        self._pending: dict[str, Value] = {}
        self._last_step = last_step
        self._resumed = last_step is not None or params is not None
        self.retry_of: int | None = None  # the failed trial this run retries
        self.checkpoint_of: int = number  # whose checkpoint directory this trial uses
        self.preempted = False  # a signal asked the worker to stop: checkpoint and return
        self._restore: dict[str, Any] | None = None  # a commit to copy in before it runs
        self._run_start = time.time()  # on this machine's clock, as file times are
        self._committed = False  # this run has committed its checkpoint (once per run)
        self._finished = False
        self._space: Space | None = None
        self._warned_not_finite = False

    # -- parameters -----------------------------------------------------------------------

    @property
    def params(self) -> dict[str, Value]:
        """The parameters suggested so far (a copy): the values in force now. A trial of
        a population-based scheduler (`PBT`) may come back from a pause with new values
        (see `schedule`); read them again after every resume."""
        return dict(self._params)

    @property
    def distributions(self) -> dict[str, Distribution]:
        """The distributions of the parameters suggested so far (a copy)."""
        return dict(self._distributions)

    @property
    def space(self) -> Space | None:
        """The declared space this trial was asked with (``study.ask(space)``, or
        ``optimize(..., space=...)``); None when its parameters are suggested define-by-run.
        Parameters of the space that ``trial.params`` lacks are inactive in this trial."""
        return self._space

    def suggest_float(
        self, name: str, low: float, high: float, *, log: bool = False, step: float | None = None
    ) -> float:
        """Suggest a float in [low, high]: log-uniform if ``log``, on a ``step`` grid if given."""
        return self.suggest(name, _float(low, high, log, step))  # type: ignore[return-value]

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        """Suggest an int in [low, high] (both inclusive), on a grid of ``step``."""
        return self.suggest(name, _int(low, high, step, log))  # type: ignore[return-value]

    def suggest_categorical(self, name: str, choices: Sequence[Value]) -> Value:
        """Suggest one of ``choices`` (str, int, float, bool or None)."""
        return self.suggest(name, Categorical(choices))

    def suggest(self, name: str, distribution: Distribution) -> Value:
        """Suggest a value for ``name`` from ``distribution`` (define-by-run). Raises
        `TrialStateError` once the trial has been told (it can take no new parameter)."""
        if self._finished:
            raise TrialStateError(
                f"trial {self.number} has already been told; suggest its parameters before "
                "telling it (study.tell), or ask a new trial"
            )
        known = self._distributions.get(name)
        if known is not None:
            if not known.same_as(distribution):
                raise ParameterConflict(
                    f"parameter {name!r} was suggested as {known.label()} and now as "
                    f"{distribution.label()}; a name must keep one distribution within a "
                    "trial (use a different name for the second parameter)"
                )
            return self._params[name]
        value = self._pick(name, distribution)
        self._assign(name, distribution, value)
        if self._channel.flush_suggestions:
            self._channel.flush(self)
        return value

    def _assign(self, name: str, distribution: Distribution, value: Value) -> None:
        self._params[name] = value
        self._distributions[name] = distribution
        self._pending[name] = value

    def _pick(self, name: str, distribution: Distribution) -> Value:
        if name in self._fixed:
            value = _as_float(distribution, self._fixed[name])
            if not distribution.contains(value):
                raise SpaceError(
                    f"parameter {name!r}: the fixed value {value!r} (enqueued, or from the "
                    f"sampler's grid) is not in {distribution.label()}; change that value "
                    "or the range"
                )
            return value
        hint = self._hints.get(name)
        if name in self._hints and distribution.contains(_as_float(distribution, hint)):
            return _as_float(distribution, hint)
        return self._channel.sample(self, name, distribution)

    # -- progress -------------------------------------------------------------------------

    def report(self, value: float, step: int) -> None:
        """Report an intermediate objective value at ``step`` (an epoch, or any unit of
        budget; a non-negative int, numpy ints included).

        Each step is reported once: a second report at a step already reported is ignored
        with a warning (a resumed trial goes on from ``last_step + 1``). A NaN or infinite
        value is recorded, with a warning once per trial: schedulers rank it below every
        number, so a run that diverged is stopped or not promoted; its final value must
        still be finite, or the trial fails.
        """
        self._check_running()
        step = _step(step)
        try:
            number = as_number(value, "report() needs a number, got")
        except ValueError as error:
            raise TrialStateError(str(error)) from None
        earlier = self._channel.frozen(self.number).intermediate_values
        if step in earlier:
            warnings.warn(
                f"trial {self.number} already reported step {step} (value {earlier[step]!r}); "
                f"this report ({number!r}) is ignored: report each step once",
                stacklevel=2,
            )
            return
        if not math.isfinite(number) and not self._warned_not_finite:
            self._warned_not_finite = True
            warnings.warn(
                f"trial {self.number} reported {number} at step {step}; it is recorded, and "
                "schedulers rank it below every number",
                stacklevel=2,
            )
        self._last_step = step
        self._channel.report(self, number, step)

    @property
    def budget(self) -> float | None:
        """How far to train in this run, in the scheduler's step units (epochs, samples,
        seconds): a multi-fidelity scheduler pauses or stops the trial at a report at or past
        this step. None when the study's scheduler does not set budgets."""
        return self._budget

    @budget.setter
    def budget(self, value: float | None) -> None:
        self._budget = value

    @property
    def last_step(self) -> int | None:
        """The largest step reported so far; on a resumed trial, where it stopped before
        (continue training from ``last_step + 1``). None before any report."""
        return self._last_step

    @property
    def finished(self) -> bool:
        """True once the trial has been told (its result is in the study): it takes no
        more suggestions, reports or attributes."""
        return self._finished

    @property
    def resumed(self) -> bool:
        """True when this run continues a PAUSED trial: load ``checkpoint_dir`` first."""
        return self._resumed

    @property
    def decision(self) -> Decision:
        """The scheduler's answer to this run's last report (recorded with the report, in
        the study's log): CONTINUE, STOP or PAUSE; PAUSE too after `pause`. The trial's
        final state follows it: a trial told after a PAUSE is recorded PAUSED, after a
        STOP PRUNED, whatever the objective returned."""
        return self._channel.decision(self.number)

    @property
    def paused(self) -> bool:
        """True once the scheduler has answered *pause* (or `pause` was called): save a
        checkpoint and return; the trial is recorded as PAUSED and a later ask may resume
        it at a larger budget."""
        from tuningfork.schedulers.base import Decision

        return self.decision is Decision.PAUSE

    def pause(self, reason: str) -> None:
        """Pause this trial at its last report, as if the scheduler had said so (e.g.
        ``"preempted"`` when the job must stop): it is recorded PAUSED when told and a
        later ask resumes it (a trial paused with ``"preempted"`` first, at the same
        budget). Save a checkpoint first."""
        self._check_running()
        self._channel.pause(self, reason)

    def should_stop(self) -> bool:
        """Whether this trial should stop after its last report: the scheduler answered
        STOP or PAUSE (`decision`), or the worker is being preempted.

        Raise ``TrialPruned`` when it returns True: the trial is recorded as PRUNED, or as
        PAUSED when the scheduler paused it (``trial.paused``; checkpoint before raising).
        """
        if self._last_step is None:
            return False
        return self._channel.should_stop(self)

    def set_user_attr(self, key: str, value: Any) -> None:
        """Attach a JSON-serialisable attribute to this trial."""
        self._check_running()
        self._channel.set_user_attr(self, key, value)

    def set_system_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Record JSON-serialisable facts about how this trial ran, as system attributes
        (for executors and integrations: e.g. the Dask worker that ran it). Keys the
        study uses itself (``budget``, ``bracket``, ``retry_of``, ...) are refused."""
        self._check_running()
        self._channel.set_system_attrs(self, attrs)

    @property
    def user_attrs(self) -> dict[str, Any]:
        """User attributes set so far."""
        return dict(self._channel.frozen(self.number).user_attrs)

    @property
    def seed(self) -> int:
        """A seed for this trial's own random generators (torch, numpy, data shuffling).

        Derived from the study's seed and the trial number, so a rerun of trial ``n`` of a
        study with the same seed gets the same value on any machine.
        """
        from tuningfork.repro import derive_seed

        return derive_seed(self._channel.seed, self.number)

    @property
    def schedule(self) -> list[tuple[int, dict[str, Value]]]:
        """The hyperparameter schedule behind this trial's model: ``(step, params)`` pairs,
        oldest first, each in force from just after ``step`` (the first from step 0). A
        trial of a population-based scheduler (`PBT`, `PB2`) changes its parameters when
        it copies a better member's checkpoint: its schedule starts with that member's up
        to the copy, then the new values. Other trials have one entry, ``(0, params)``."""
        return schedule_of(self._channel.frozen(self.number), self._params)

    @property
    def checkpoint_dir(self) -> Path:
        """A directory for this trial's checkpoints, under the study's artefact root (created).

        A retry of a failed trial (``retry_of``) gets the directory of the first trial of its
        retry chain (``checkpoint_of``), so it can go on from the last checkpoint saved there.
        """
        path = self.study.artifact_dir / f"trial_{self.checkpoint_of}"
        os.makedirs(path, exist_ok=True)
        return path

    def frozen(self) -> FrozenTrial:
        """A record of this trial as it stands, including suggestions not yet written."""
        return self._channel.snapshot(self)

    def _take_pending(self) -> dict[str, Value]:
        pending, self._pending = self._pending, {}
        return pending

    def _check_running(self) -> None:
        if self._finished:
            raise TrialStateError(f"trial {self.number} has already finished")

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={self._params!r})"


def schedule_of(
    trial: FrozenTrial, params: Mapping[str, Value] | None = None
) -> list[tuple[int, dict[str, Value]]]:
    """A trial's hyperparameter schedule (see `Trial.schedule`) from its record."""
    recorded = trial.system_attrs.get("pbt", {}).get("schedule")
    if not recorded:
        return [(0, dict(trial.params if params is None else params))]
    return [(int(step), dict(values)) for step, values in recorded]


def _step(step: object) -> int:
    """A report's step as an int: non-negative, an int or numpy integer (not a bool, not a
    float, even a whole one: steps are counts)."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise TrialStateError(
            f"step must be a non-negative int (an epoch, a number of samples), got {step!r}"
        )
    return int(step)


def _as_float(distribution: Distribution, value: Value) -> Value:
    if isinstance(distribution, Float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@functools.lru_cache(maxsize=4096)
def _float(low: float, high: float, log: bool, step: float | None) -> Float:
    # objectives suggest the same ranges trial after trial: build each distribution once
    return Float(low, high, log=log, step=step)


@functools.lru_cache(maxsize=4096)
def _int(low: int, high: int, step: int, log: bool) -> Int:
    return Int(low, high, step=step, log=log)


def check_values(raw: object, n_objectives: int) -> tuple[float, ...]:
    """Turn an objective's return value into a tuple of finite floats, or raise ValueError
    with a message saying what was wrong.

    A number (Python, numpy or torch scalar, 0-d array) or a sequence of them (list,
    tuple, 1-d numpy array or tensor), one per objective: ``0.5``, ``[0.5]`` and
    ``np.array([0.5])`` are the same single value.
    """
    if raw is None:
        raise ValueError("the objective returned None; return a number")
    items = _items(raw)
    if len(items) != n_objectives:
        raise ValueError(
            f"the objective returned {len(items)} value(s) but the study has {n_objectives} "
            "direction(s)"
        )
    values = []
    for item in items:
        number = as_number(item, "the objective returned")
        if not math.isfinite(number):
            raise ValueError(f"the objective returned {number}, which is not finite")
        values.append(number)
    return tuple(values)


def as_number(item: object, what: str) -> float:
    """``item`` as a float: a Python number (not a bool), a numpy or torch scalar, or an
    array or tensor holding one number; ValueError naming ``what`` otherwise."""
    if not isinstance(item, bool) and isinstance(item, (int, float)):
        return float(item)
    if not isinstance(item, (bool, str, bytes)):
        try:  # .item(): one number out of a numpy or torch scalar, array or tensor
            number = item.item() if hasattr(item, "item") else item
            if not isinstance(number, (bool, str, bytes)):
                return float(number)  # type: ignore[arg-type]
        except (TypeError, ValueError, RuntimeError):
            pass
    raise ValueError(f"{what} {item!r} of type {type(item).__name__}; give a float")


def _items(raw: object) -> list[object]:
    """The values of an objective's return value: a sequence's items, an array's elements
    (a numpy array or tensor of one dimension), or the one value."""
    if isinstance(raw, (list, tuple)):
        return list(raw)
    shape = getattr(raw, "shape", None)  # numpy's is a tuple, torch's a tuple subclass
    if isinstance(shape, tuple) and len(shape) == 1:
        return list(raw)  # type: ignore[call-overload]
    return [raw]
