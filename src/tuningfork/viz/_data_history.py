"""The data of the plots of a study's course: the optimisation history, the empirical
distribution of values, parameter importance and the timeline of trials."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tuningfork.exceptions import NothingToPlot, PlotOptionError
from tuningfork.trial import FrozenTrial, TrialState
from tuningfork.viz._data_common import (
    Target,
    _targets,
    check_params,
    complete_trials,
    no_complete_message,
    param_names,
    resolve_direction,
    resolve_target,
)

if TYPE_CHECKING:
    from tuningfork.study import Study


def _relative(t: float | None, t0: float) -> float:
    return float("nan") if t is None else t - t0


# -- history ---------------------------------------------------------------------------------


@dataclass(eq=False)
class HistoryData:
    """Objective value of each complete trial and the best value so far.

    ``x`` is the trial number (``by="trial"``) or the completion time in seconds since the
    first trial started (``by="time"``); ``best_y[i]`` is the best of ``y[: i + 1]`` in
    ``direction`` (empty when the direction is unknown).
    """

    title: str
    x_label: str
    target_name: str
    by: str
    direction: str | None
    numbers: np.ndarray
    x: np.ndarray
    y: np.ndarray
    best_y: np.ndarray
    log_y: bool = False
    n_trials: int = 0


def history_data(
    study: Study,
    *,
    by: Literal["trial", "time"] = "trial",
    target: Target | None = None,
    target_name: str = "value",
    direction: str | None = None,
    log_y: bool = False,
) -> HistoryData:
    """Data of the optimisation history: see `HistoryData`."""
    if by not in ("trial", "time"):
        raise PlotOptionError(
            f"by must be 'trial' or 'time', got {by!r}", option="by", owner="plot_history"
        )
    fn = resolve_target(study, target)
    direction = resolve_direction(study, target, direction)
    trials = study.trials
    done = complete_trials(study, trials)
    if by == "trial":
        x = np.array([t.number for t in done], dtype=float)
        x_label = "trial"
    else:
        t0 = min(t.datetime_start for t in trials if t.datetime_start is not None)
        x = np.array([_relative(t.datetime_complete, t0) for t in done], dtype=float)
        x_label = "wall-clock time (s)"
    order = np.argsort(x, kind="stable")
    x = x[order]
    y = _targets(done, fn)[order]
    numbers = np.array([done[i].number for i in order], dtype=int)
    if direction == "minimize":
        best = np.minimum.accumulate(y)
    elif direction == "maximize":
        best = np.maximum.accumulate(y)
    else:
        best = np.array([], dtype=float)
    return HistoryData(
        title=f"optimisation history of study {study.name!r} ({len(done)} of {len(trials)} "
        "trials complete)",
        x_label=x_label,
        target_name=target_name,
        by=by,
        direction=direction,
        numbers=numbers,
        x=x,
        y=y,
        best_y=best,
        log_y=log_y,
        n_trials=len(trials),
    )


# -- empirical distribution ------------------------------------------------------------------


@dataclass(eq=False)
class EdfCurve:
    """The empirical distribution of one study's values: ``fraction[i]`` of its complete
    trials have a value <= ``values[i]`` (sorted ascending)."""

    name: str
    values: np.ndarray
    fraction: np.ndarray


@dataclass(eq=False)
class EdfData:
    """One `EdfCurve` per study."""

    title: str
    target_name: str
    curves: list[EdfCurve]
    log_x: bool = False


def edf_data(
    study: Study | Sequence[Study],
    *,
    target: Target | None = None,
    target_name: str = "value",
    log_x: bool = False,
) -> EdfData:
    """Data of the empirical distribution function of one or several studies' values."""
    studies = [study] if not isinstance(study, Sequence) else list(study)
    if not studies:
        raise NothingToPlot("no study given to plot")
    curves = []
    for each in studies:
        fn = resolve_target(each, target)
        values = np.sort(_targets(complete_trials(each), fn))
        fraction = np.arange(1, len(values) + 1) / len(values)
        curves.append(EdfCurve(each.name, values, fraction))
    names = ", ".join(repr(s.name) for s in studies)
    kind = "study" if len(studies) == 1 else "studies"
    return EdfData(
        title=f"empirical distribution of {target_name} of {kind} {names}",
        target_name=target_name,
        curves=curves,
        log_x=log_x,
    )


# -- importance ------------------------------------------------------------------------------


@dataclass(eq=False)
class ImportanceData:
    """Hyperparameter importances, most important first."""

    title: str
    target_name: str
    names: list[str]
    importances: np.ndarray
    evaluator: str | None = None


def importance_data(
    study: Study,
    *,
    params: Sequence[str] | None = None,
    target: Target | None = None,
    target_name: str = "value",
    evaluator: Any = None,
) -> ImportanceData:
    """Data of the importance bars, from `tuningfork.importance.get_param_importances`."""
    done = complete_trials(study)
    if len(done) < 2:
        raise NothingToPlot(
            f"parameter importance needs at least 2 complete trials; study {study.name!r} "
            f"has {len(done)}"
        )
    check_params(study, done, params)
    if not param_names(done):
        raise NothingToPlot(f"the complete trials of study {study.name!r} have no parameters")
    try:
        from tuningfork.importance import get_param_importances
    except ImportError as error:  # pragma: no cover - depends on the module being there
        raise PlotOptionError(
            f"parameter importance needs tuningfork.importance, which is not available: {error}"
        ) from error
    if target is None:
        resolve_target(study, None)  # a clear error for multi-objective studies
    result = get_param_importances(study, evaluator=evaluator, params=params, target=target)
    items = sorted(result.items(), key=lambda kv: -float(kv[1]))
    name = None
    if evaluator is not None:
        name = evaluator if isinstance(evaluator, str) else type(evaluator).__name__
    suffix = f" ({name})" if name else ""
    return ImportanceData(
        title=f"hyperparameter importance for {target_name} in study {study.name!r}{suffix}",
        target_name=target_name,
        names=[k for k, _ in items],
        importances=np.array([float(v) for _, v in items], dtype=float),
        evaluator=name,
    )


# -- timeline --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineBar:
    """One trial's run on a row: from ``start`` to ``end`` seconds after the first start."""

    number: int
    row: int
    start: float
    end: float
    state: str


@dataclass(eq=False)
class TimelineData:
    """Trials' runs, one row per worker (threads of one process, which share a worker id,
    get a row each: ``host:pid #2``). ``utilisation`` = busy time / (rows x span)."""

    title: str
    rows: list[str]
    bars: list[TimelineBar]
    span: float
    busy: float
    utilisation: float


def timeline_data(study: Study, *, now: float | None = None) -> TimelineData:
    """Data of the timeline: a bar per trial run, from its start (or, for a resumed trial,
    its latest resumption) to its end; RUNNING trials end at ``now`` (default: the current
    time); WAITING and PAUSED trials, which are not running, are left out."""
    trials = study.trials
    if not trials:
        raise NothingToPlot(no_complete_message(study))
    now = time.time() if now is None else now
    runs: list[tuple[str, float, float, FrozenTrial]] = []
    for t in trials:
        if t.state in (TrialState.WAITING, TrialState.PAUSED) or t.datetime_start is None:
            continue
        start = float(t.system_attrs.get("resumed_at") or t.datetime_start)
        end = t.datetime_complete if t.datetime_complete is not None else now
        runs.append((t.worker or "unknown worker", start, max(start, float(end)), t))
    if not runs:
        raise NothingToPlot(f"no trial of study {study.name!r} has started running yet")
    t0 = min(r[1] for r in runs)
    t1 = max(r[2] for r in runs)
    # lanes: trials of one worker id that overlap in time ran in different threads
    lanes: dict[str, list[float]] = {}
    placed: list[tuple[str, int, float, float, FrozenTrial]] = []
    for worker, start, end, t in sorted(runs, key=lambda r: (r[1], r[3].number)):
        ends = lanes.setdefault(worker, [])
        for lane, free in enumerate(ends):
            if free <= start + 1e-9:
                ends[lane] = end
                break
        else:
            lane = len(ends)
            ends.append(end)
        placed.append((worker, lane, start, end, t))
    row_names: list[str] = []
    row_index: dict[tuple[str, int], int] = {}
    for worker in sorted(lanes):
        for lane in range(len(lanes[worker])):
            row_index[(worker, lane)] = len(row_names)
            row_names.append(worker if len(lanes[worker]) == 1 else f"{worker} #{lane + 1}")
    bars = [
        TimelineBar(t.number, row_index[(w, lane)], s - t0, e - t0, t.state.value)
        for w, lane, s, e, t in sorted(placed, key=lambda p: p[4].number)
    ]
    span = t1 - t0
    busy = float(sum(b.end - b.start for b in bars))
    utilisation = busy / (len(row_names) * span) if span > 0 else 1.0
    return TimelineData(
        title=f"timeline of study {study.name!r}: {len(row_names)} worker(s), "
        f"utilisation {utilisation:.0%} over {span:.3g} s",
        rows=row_names,
        bars=bars,
        span=span,
        busy=busy,
        utilisation=utilisation,
    )
