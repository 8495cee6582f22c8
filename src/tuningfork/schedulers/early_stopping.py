"""Early-stopping rules beside the median rule: percentile, threshold, time/budget, rank and
patience, and `AnyOf` to compose them (stop if any member says stop).

- `PercentileStopping`: the median rule (Golovin et al., 2017, "Google Vizier", 3.2.2) with
  any percentile, as Optuna's ``PercentilePruner``.
- `ThresholdStopping`: stop when the reported value leaves ``[lower, upper]`` (or is NaN).
- `TimeStopping`: stop on wall-clock time since the trial started or on the step reached.
- `RankStopping`: stop a trial outside the top fraction of the trials that reported at a step.
- `PatienceStopping`: stop when the best value has not improved for ``patience`` reports
  (Prechelt, 1998, "Early stopping -- but when?").

Steps are in the user's units of budget (epochs, samples, seconds), as in `Trial.report`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from tuningfork import _check as check
from tuningfork.exceptions import SchedulerError
from tuningfork.schedulers.base import Assignment, Decision, Scheduler
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.space import Space
    from tuningfork.study import StudyReader


def _int(value: object, option: str, owner: object, minimum: int) -> int:
    return check.integer(value, option, type(owner).__name__, minimum=minimum, error=SchedulerError)


def _number(value: object, option: str, owner: object, **interval: Any) -> float:
    return check.number(value, option, type(owner).__name__, error=SchedulerError, **interval)


def _option_error(message: str, option: str, owner: object) -> SchedulerError:
    return SchedulerError(message, option=option, owner=type(owner).__name__)


def _percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` with linear interpolation, as NumPy's
    default; q=50 is the median."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _maximize(study: StudyReader) -> bool:
    return study.direction == "maximize"


class PercentileStopping(Scheduler):
    """Stop trials whose best value so far is worse than a percentile of completed trials.

    For "minimize", a trial is stopped when its best value up to the step is above the
    ``percentile``-th percentile of the completed trials' values at the step; for "maximize",
    when it is below the ``(100 - percentile)``-th percentile. So ``percentile=25`` keeps only
    trials in the best quarter, as Optuna's ``PercentilePruner``, and ``percentile=50`` is
    `MedianStopping`. Percentiles interpolate linearly between values (as NumPy's default).
    NaN values are ignored; a trial that reported only NaN is stopped at a checked step.

    Args:
        percentile: in [0, 100] (default 50.0: the median).
        n_startup_trials: no trial is stopped until this many trials have completed (default 5).
        n_warmup_steps: no trial is stopped at a step below this (default 0).
        interval_steps: only check at steps that are multiples of this after the warm-up
            (default 1: every report).
        n_min_trials: at least this many completed trials must have reported at the step
            (default 1).
    """

    def __init__(
        self,
        percentile: float = 50.0,
        *,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        n_min_trials: int = 1,
    ) -> None:
        self.percentile = _number(percentile, "percentile", self, low=0.0, high=100.0)
        self.n_startup_trials = _int(n_startup_trials, "n_startup_trials", self, 0)
        self.n_warmup_steps = _int(n_warmup_steps, "n_warmup_steps", self, 0)
        self.interval_steps = _int(interval_steps, "interval_steps", self, 1)
        self.n_min_trials = _int(n_min_trials, "n_min_trials", self, 1)

    def decide(self, study: StudyReader, trial: FrozenTrial, step: int, value: float) -> Decision:
        if step < self.n_warmup_steps or (step - self.n_warmup_steps) % self.interval_steps:
            return Decision.CONTINUE
        completed = study.get_trials(states=(TrialState.COMPLETE,))
        if len(completed) < max(self.n_startup_trials, 1):
            return Decision.CONTINUE
        others = [v for v in (self._value_at(t, step) for t in completed) if v is not None]
        others = [v for v in others if not math.isnan(v)]
        if len(others) < self.n_min_trials:
            return Decision.CONTINUE
        mine = [v for s, v in trial.intermediate_values.items() if s <= step and not math.isnan(v)]
        if not mine:
            return Decision.STOP  # only NaN reported: worse than anything
        if _maximize(study):
            worse = max(mine) < _percentile(others, 100.0 - self.percentile)
        else:
            worse = min(mine) > _percentile(others, self.percentile)
        return Decision.STOP if worse else Decision.CONTINUE

    def _value_at(self, trial: FrozenTrial, step: int) -> float | None:
        """A completed trial's value at ``step`` for the comparison (None: not reported)."""
        return trial.intermediate_values.get(step)


class ThresholdStopping(Scheduler):
    """Stop a trial whose reported value leaves ``[lower, upper]``, e.g. accuracy below 0.2
    at epoch 3 or later: ``ThresholdStopping(lower=0.2, n_warmup_steps=3)``.

    Independent of the study's direction. A NaN value always stops the trial, even in the
    warm-up.

    Args:
        lower: stop when the value is below this (default None: no lower bound).
        upper: stop when the value is above this (default None: no upper bound).
        n_warmup_steps: bounds apply only at steps >= this (default 0).
    """

    def __init__(
        self,
        *,
        lower: float | None = None,
        upper: float | None = None,
        n_warmup_steps: int = 0,
    ) -> None:
        if lower is None and upper is None:
            raise _option_error("lower or upper must be given (both are None)", "lower", self)
        self.lower = None if lower is None else _number(lower, "lower", self)
        self.upper = None if upper is None else _number(upper, "upper", self)
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise _option_error(
                f"lower must be <= upper, got lower={lower!r}, upper={upper!r}", "lower", self
            )
        self.n_warmup_steps = _int(n_warmup_steps, "n_warmup_steps", self, 0)

    def decide(self, study: StudyReader, trial: FrozenTrial, step: int, value: float) -> Decision:
        if math.isnan(value):
            return Decision.STOP
        if step < self.n_warmup_steps:
            return Decision.CONTINUE
        if self.lower is not None and value < self.lower:
            return Decision.STOP
        if self.upper is not None and value > self.upper:
            return Decision.STOP
        return Decision.CONTINUE


class TimeStopping(Scheduler):
    """Stop a trial that has run too long, in wall-clock time or in budget.

    Args:
        max_seconds: stop once more than this many seconds (on the study's clock,
            `StudyReader.now`) have passed since the trial's ``datetime_start`` (default
            None: no time limit).
        max_step: stop a trial that reports at a step above this (default None).
        max_budget_fraction: in (0, 1]; stop once ``step >= max_budget_fraction * max_step``,
            i.e. at that fraction of the full budget (default None). Needs ``max_step``.

    At least one of them must be given.
    """

    def __init__(
        self,
        *,
        max_seconds: float | None = None,
        max_budget_fraction: float | None = None,
        max_step: int | None = None,
    ) -> None:
        if max_seconds is None and max_budget_fraction is None and max_step is None:
            raise _option_error(
                "one of max_seconds, max_budget_fraction, max_step must be given",
                "max_seconds",
                self,
            )
        if max_seconds is not None:
            max_seconds = _number(max_seconds, "max_seconds", self, low=0.0, low_open=True)
        if max_step is not None:
            max_step = _int(max_step, "max_step", self, 1)
        if max_budget_fraction is not None:
            max_budget_fraction = _number(
                max_budget_fraction, "max_budget_fraction", self, low=0.0, high=1.0, low_open=True
            )
            if max_step is None:
                raise _option_error(
                    f"max_budget_fraction={max_budget_fraction!r} needs max_step (the full budget)",
                    "max_step",
                    self,
                )
        self.max_seconds = max_seconds
        self.max_budget_fraction = max_budget_fraction
        self.max_step = max_step

    def decide(self, study: StudyReader, trial: FrozenTrial, step: int, value: float) -> Decision:
        start = trial.datetime_start
        if (
            self.max_seconds is not None
            and start is not None
            and (study.now() - start > self.max_seconds)
        ):
            return Decision.STOP
        if self.max_step is not None:
            if step > self.max_step:
                return Decision.STOP
            if (
                self.max_budget_fraction is not None
                and step >= self.max_budget_fraction * self.max_step
            ):
                return Decision.STOP
        return Decision.CONTINUE


class RankStopping(Scheduler):
    """Stop a trial outside the top ``top_fraction`` of the trials that reported at a step.

    The trials ranked are all trials, completed and running (the trial itself included), with
    a value at the step; they are ranked by that value in the study's direction, and the best
    ``ceil(top_fraction * n)`` of them are kept. Ties with the last kept value are kept.
    Pruned and failed trials are not ranked. A NaN value is always stopped at a checked step.

    Args:
        top_fraction: in (0, 1], e.g. 0.25 keeps the best quarter.
        step: the step at which to rank (default None: rank at every report).
        n_startup_trials: no trial is stopped until this many trials have completed (default 5).
    """

    def __init__(
        self, top_fraction: float, *, step: int | None = None, n_startup_trials: int = 5
    ) -> None:
        top_fraction = _number(top_fraction, "top_fraction", self, low=0.0, high=1.0, low_open=True)
        if step is not None:
            step = _int(step, "step", self, 0)
        n_startup_trials = _int(n_startup_trials, "n_startup_trials", self, 0)
        self.top_fraction = top_fraction
        self.step = step
        self.n_startup_trials = n_startup_trials

    def decide(self, study: StudyReader, trial: FrozenTrial, step: int, value: float) -> Decision:
        if self.step is not None and step != self.step:
            return Decision.CONTINUE
        if math.isnan(value):
            return Decision.STOP
        trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.RUNNING))
        if sum(t.state == TrialState.COMPLETE for t in trials) < self.n_startup_trials:
            return Decision.CONTINUE
        values = [
            t.intermediate_values[step]
            for t in trials
            if t.number != trial.number and step in t.intermediate_values
        ]
        values = [v for v in values if not math.isnan(v)] + [value]
        maximize = _maximize(study)
        values.sort(reverse=maximize)
        keep = max(1, math.ceil(self.top_fraction * len(values) - 1e-9))
        cutoff = values[keep - 1]
        worse = value < cutoff if maximize else value > cutoff
        return Decision.STOP if worse else Decision.CONTINUE


class PatienceStopping(Scheduler):
    """Stop a trial whose best value has not improved for ``patience`` consecutive reports
    (Prechelt, 1998, "Early stopping -- but when?").

    A report improves when it beats the best earlier value by more than ``min_delta`` (lower
    for "minimize", higher for "maximize"). NaN reports never improve. A trial is stopped
    when its last ``patience`` reports, in step order, are all non-improving.

    Args:
        patience: number of reports, >= 1.
        min_delta: >= 0, in the units of the reported value (default 0.0).
    """

    def __init__(self, patience: int, *, min_delta: float = 0.0) -> None:
        self.patience = _int(patience, "patience", self, 1)
        self.min_delta = _number(min_delta, "min_delta", self, low=0.0)

    def decide(self, study: StudyReader, trial: FrozenTrial, step: int, value: float) -> Decision:
        sign = -1.0 if _maximize(study) else 1.0  # compare sign * value: lower is better
        best = math.inf
        stale = 0
        for s in sorted(trial.intermediate_values):
            if s > step:
                break
            v = trial.intermediate_values[s]
            if not math.isnan(v) and sign * v < best - self.min_delta:
                best = sign * v
                stale = 0
            else:
                stale += 1
        return Decision.STOP if stale >= self.patience else Decision.CONTINUE


class AnyOf(Scheduler):
    """Compose schedulers: STOP if any member says STOP, else PAUSE if any says PAUSE, else
    CONTINUE. Every member is asked at every report. At an ask, the first member with an
    assignment (a promotion, a budget) decides, so e.g. ``AnyOf(ASHA(mode="promotion"),
    ThresholdStopping(lower=0.1))`` promotes as ASHA does and also stops hopeless trials.

    Args:
        *schedulers: one or more `Scheduler` instances.
    """

    def __init__(self, *schedulers: Scheduler) -> None:
        if not schedulers:
            raise _option_error(
                "schedulers must hold at least one Scheduler, got none", "schedulers", self
            )
        for member in schedulers:
            if not isinstance(member, Scheduler):
                raise _option_error(
                    f"schedulers must be Scheduler instances, got {member!r}", "schedulers", self
                )
        self.schedulers = tuple(schedulers)
        self.assigns = any(member.assigns for member in self.schedulers)
        self.decides = any(member.decides for member in self.schedulers)
        self.pauses = any(member.pauses for member in self.schedulers)

    def decide(self, study: StudyReader, trial: FrozenTrial, step: int, value: float) -> Decision:
        decisions = [m.decide(study, trial, step, value) for m in self.schedulers]
        if Decision.STOP in decisions:
            return Decision.STOP
        if Decision.PAUSE in decisions:
            return Decision.PAUSE
        return Decision.CONTINUE

    def assign(self, study: StudyReader, space: Space | None) -> Assignment | None:
        for member in self.schedulers:
            assignment = member.assign(study, space)
            if assignment is not None:
                return assignment
        return None

    def assign_at_cap(self, study: StudyReader) -> Assignment | None:
        for member in self.schedulers:
            assignment = member.assign_at_cap(study)
            if assignment is not None:
                return assignment
        return None

    def cap_warning(self, max_trials: int) -> str | None:
        said = [text for m in self.schedulers if (text := m.cap_warning(max_trials))]
        return "; ".join(said) if said else None

    def start_message(self) -> str | None:
        said = [text for m in self.schedulers if (text := m.start_message())]
        return "; ".join(said) if said else None
