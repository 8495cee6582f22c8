"""The data of the multi-fidelity plots: learning curves (intermediate values) and the
rungs of a successive-halving scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tuningfork.exceptions import NothingToPlot
from tuningfork.trial import FrozenTrial
from tuningfork.viz._data_common import no_complete_message

if TYPE_CHECKING:
    from tuningfork.study import Study


# -- learning curves -------------------------------------------------------------------------


@dataclass(eq=False)
class Curve:
    """The values one trial reported, by step."""

    number: int
    state: str
    steps: np.ndarray
    values: np.ndarray


@dataclass(eq=False)
class IntermediateData:
    """Each trial's reported values (learning curves), with its state (colour)."""

    title: str
    target_name: str
    curves: list[Curve]
    log_y: bool = False
    step_label: str = "step"


def intermediate_data(
    study: Study,
    *,
    target_name: str = "value",
    log_y: bool = False,
    step_label: str = "step",
) -> IntermediateData:
    """Data of the learning curves of every trial that reported intermediate values."""
    trials = study.trials
    if not trials:
        raise NothingToPlot(no_complete_message(study))
    curves = []
    for t in trials:
        if not t.intermediate_values:
            continue
        steps = sorted(t.intermediate_values)
        curves.append(
            Curve(
                t.number,
                t.state.value,
                np.array(steps, dtype=float),
                np.array([t.intermediate_values[s] for s in steps], dtype=float),
            )
        )
    if not curves:
        raise NothingToPlot(
            f"no trial of study {study.name!r} reported intermediate values; report them "
            "with trial.report(value, step)"
        )
    return IntermediateData(
        title=f"learning curves of study {study.name!r} ({len(curves)} trials)",
        target_name=target_name,
        curves=curves,
        log_y=log_y,
        step_label=step_label,
    )


# -- rungs -----------------------------------------------------------------------------------


@dataclass(eq=False)
class BracketRungs:
    """How many trials of one bracket reached each rung budget (their last report at a
    step >= the budget); ``stopped[state][i]``: of those, how many ended at rung i."""

    bracket: int | None
    label: str
    budgets: tuple[float, ...]
    reached: np.ndarray
    n_trials: int
    stopped: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(eq=False)
class RungsData:
    """Trials per rung budget for each bracket of a successive-halving scheduler (or, for
    another scheduler, per distinct last step)."""

    title: str
    scheduler: str
    brackets: list[BracketRungs]


def rungs_data(study: Study) -> RungsData:
    """Data of the rung plot, from the trials' last steps and the scheduler's brackets
    (its rung budgets; each trial's bracket is its system attr ``bracket``)."""
    trials = study.trials
    if not trials:
        raise NothingToPlot(no_complete_message(study))
    last = {t.number: t.last_step for t in trials if t.last_step is not None}
    reporting = [t for t in trials if t.number in last]
    if not reporting:
        raise NothingToPlot(
            f"no trial of study {study.name!r} reported intermediate values, so none reached "
            "a rung; report them with trial.report(value, step)"
        )
    scheduler = study.scheduler
    name = type(scheduler).__name__
    table = scheduler.rung_table()
    groups: list[tuple[int | None, str, tuple[float, ...], list[FrozenTrial]]] = []
    default = next(iter(table)) if len(table) == 1 else None
    for bracket, rung_budgets in table.items():
        members = [t for t in reporting if t.system_attrs.get("bracket", default) == bracket]
        if members or len(table) == 1:
            label = f"bracket s={bracket}"
            groups.append((bracket, label, tuple(map(float, rung_budgets)), members))
    if not groups:
        steps = tuple(float(step) for step in sorted(set(last.values())))
        groups.append((None, "all trials", steps, reporting))
    brackets = []
    for s, label, budgets, members in groups:
        reached = np.array(
            [sum(1 for t in members if last[t.number] >= b) for b in budgets],
            dtype=int,
        )
        stopped: dict[str, np.ndarray] = {}
        for t in members:
            top = sum(1 for b in budgets if last[t.number] >= b) - 1
            if top >= 0:
                counts = stopped.setdefault(t.state.value, np.zeros(len(budgets), dtype=int))
                counts[top] += 1
        brackets.append(BracketRungs(s, label, budgets, reached, len(members), stopped))
    eta = scheduler.describe().get("eta")
    described = name if eta is None else f"{name}, eta={eta:g}"
    return RungsData(
        title=f"trials per rung of study {study.name!r} ({described})",
        scheduler=name,
        brackets=brackets,
    )
