"""What the data of every plot shares: the target value, complete trials, parameter axes,
state colours and axis ranges."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tuningfork.exceptions import NothingToPlot, PlotOptionError
from tuningfork.space import Categorical, Distribution
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import Study, StudyReader

Target = Callable[[FrozenTrial], float]
Scale = Literal["linear", "log", "categorical"]

#: The colour of each trial state, shared by both backends (matplotlib "tab10" colours).
STATE_COLORS: dict[str, str] = {
    "COMPLETE": "#1f77b4",
    "PRUNED": "#ff7f0e",
    "FAIL": "#d62728",
    "PAUSED": "#9467bd",
    "RUNNING": "#2ca02c",
    "WAITING": "#7f7f7f",
}
STATE_ORDER: tuple[str, ...] = tuple(STATE_COLORS)


@dataclass(frozen=True)
class Axis:
    """How one quantity is laid out on an axis.

    ``scale`` is "linear", "log" (values are plotted as they are on a log axis) or
    "categorical" (values are positions 0..n-1 whose tick labels are ``categories``).
    """

    label: str
    scale: Scale = "linear"
    categories: tuple[str, ...] = ()

    @property
    def is_log(self) -> bool:
        return self.scale == "log"

    @property
    def is_categorical(self) -> bool:
        return self.scale == "categorical"


def no_complete_message(study: Study | StudyReader) -> str:
    return f"study {study.name!r} has no complete trial to plot; run some trials first"


def resolve_target(study: Study, target: Target | None) -> Target:
    """The function giving a trial's plotted value: ``target`` or the single objective."""
    if target is not None:
        return target
    if len(study.directions) != 1:
        raise PlotOptionError(
            f"study {study.name!r} has {len(study.directions)} objectives; pass target= "
            "(e.g. target=lambda t: t.values[0]) and target_name= to plot one of them",
            option="target",
            owner="plot",
        )
    return _first_value


def _first_value(trial: FrozenTrial) -> float:
    return trial.values[0]  # type: ignore[index]


def resolve_direction(study: Study, target: Target | None, direction: str | None) -> str | None:
    """The direction of the plotted value: ``direction`` if given, else the study's own
    when it has one objective (also with a ``target``), else None (no "best" is shown)."""
    if direction is not None:
        if direction not in ("minimize", "maximize"):
            raise PlotOptionError(
                f"direction must be 'minimize' or 'maximize', got {direction!r}",
                option="direction",
                owner="plot",
            )
        return direction
    if len(study.directions) == 1:
        return study.directions[0]
    return None


def complete_trials(study: Study, trials: Sequence[FrozenTrial] | None = None) -> list[FrozenTrial]:
    """The COMPLETE trials with values, or `NothingToPlot` when there is none."""
    trials = study.trials if trials is None else trials
    done = [t for t in trials if t.state is TrialState.COMPLETE and t.values is not None]
    if not done:
        raise NothingToPlot(no_complete_message(study))
    return done


def _targets(trials: Sequence[FrozenTrial], target: Target) -> np.ndarray:
    values = np.array([float(target(t)) for t in trials], dtype=float)
    return values


def _choice_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


@dataclass(frozen=True)
class ParamAxis:
    """A parameter's axis and how to put its values on it."""

    axis: Axis
    keys: dict[tuple[str, Any], int] = field(default_factory=dict)

    def encode(self, value: Any) -> float:
        if self.axis.is_categorical:
            return float(self.keys[_choice_key(value)])
        return float(value)


def param_names(trials: Sequence[FrozenTrial]) -> list[str]:
    """Parameter names in the order they first appear."""
    names: dict[str, None] = {}
    for trial in trials:
        for name in trial.params:
            names.setdefault(name, None)
    return list(names)


def check_params(
    study: Study | StudyReader, trials: Sequence[FrozenTrial], params: Sequence[str] | None
) -> list[str]:
    """``params`` checked against the trials' parameters, or all of them in order."""
    known = param_names(trials)
    if params is None:
        return known
    if isinstance(params, str):
        params = [params]
    unknown = [p for p in params if p not in known]
    if unknown:
        raise PlotOptionError(
            f"study {study.name!r} has no complete trial with parameter(s) {unknown}; "
            f"its parameters are {known}",
            option="params",
            owner="plot",
        )
    return list(dict.fromkeys(params))


def param_axis(name: str, trials: Sequence[FrozenTrial]) -> ParamAxis:
    """The axis of parameter ``name`` from the distributions the trials recorded: categorical
    if any trial had it categorical (choices in order of appearance), log if the latest
    numeric distribution was log, else linear."""
    dists: list[Distribution] = [t.distributions[name] for t in trials if name in t.distributions]
    if any(isinstance(d, Categorical) for d in dists):
        keys: dict[tuple[str, Any], int] = {}
        labels: list[str] = []
        for d in dists:
            for choice in d.choices if isinstance(d, Categorical) else ():
                key = _choice_key(choice)
                if key not in keys:
                    keys[key] = len(keys)
                    labels.append(str(choice))
        for t in trials:  # values whose distribution was not recorded as categorical
            if name in t.params and _choice_key(t.params[name]) not in keys:
                keys[_choice_key(t.params[name])] = len(keys)
                labels.append(str(t.params[name]))
        return ParamAxis(Axis(name, "categorical", tuple(labels)), keys)
    log = bool(getattr(dists[-1], "log", False)) if dists else False
    return ParamAxis(Axis(name, "log" if log else "linear"))


def finite_range(values: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite values, (0, 1) if there is none."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    return float(finite.min()), float(finite.max())


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten covering [low, high] (both > 0), at least the ends."""
    a, b = math.floor(math.log10(low)), math.ceil(math.log10(high))
    return [10.0**k for k in range(a, b + 1)]
