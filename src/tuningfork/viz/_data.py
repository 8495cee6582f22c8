"""The data of each plot, computed from a study's trials alone (no plotting library needed).

Every ``*_data`` function here reads only ``study.name``, ``study.directions``,
``study.trials`` and, for the rung plot, ``study.scheduler``, so it works on a study from
any storage. The results are plain dataclasses of numpy arrays and strings that the
matplotlib and plotly renderers draw, and that tests and dashboards can read directly.

Parameter values are put on an `Axis`: numbers as they are (``scale="log"`` for a log
distribution), categorical choices as their positions 0, 1, 2, ... in ``Axis.categories``.
Times are in seconds, counted from the first trial's start.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tuningfork._pareto import non_dominated
from tuningfork.exceptions import NothingToPlot, PlotOptionError
from tuningfork.space import Categorical, Distribution
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import Study

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


# -- shared pieces ---------------------------------------------------------------------------


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


def no_complete_message(study: Study) -> str:
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
    study: Study, trials: Sequence[FrozenTrial], params: Sequence[str] | None
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


# -- parallel coordinates, slice, contour ----------------------------------------------------


def _rows(
    study: Study,
    params: Sequence[str] | None,
    target: Target | None,
    *,
    require_all: bool,
) -> tuple[list[FrozenTrial], list[str], dict[str, ParamAxis], Target]:
    fn = resolve_target(study, target)
    done = complete_trials(study)
    names = check_params(study, done, params)
    if not names:
        raise NothingToPlot(f"the complete trials of study {study.name!r} have no parameters")
    axes = {name: param_axis(name, done) for name in names}
    if require_all:
        done = [t for t in done if all(name in t.params for name in names)]
        if not done:
            raise NothingToPlot(
                f"no complete trial of study {study.name!r} has all of the parameters {names} "
                "(conditional parameters?); pass params= with the ones to compare"
            )
    return done, names, axes, fn


@dataclass(eq=False)
class ParallelData:
    """One line per complete trial across the parameters' axes and the target's.

    ``columns[i]`` holds the trials' values on ``axes[i]`` (the last is the target);
    ``color`` is the target value of each trial.
    """

    title: str
    target_name: str
    axes: list[Axis]
    columns: list[np.ndarray]
    numbers: np.ndarray
    color: np.ndarray
    direction: str | None


def parallel_data(
    study: Study,
    *,
    params: Sequence[str] | None = None,
    target: Target | None = None,
    target_name: str = "value",
) -> ParallelData:
    """Data of the parallel-coordinates plot (complete trials that have every parameter)."""
    done, names, axes, fn = _rows(study, params, target, require_all=True)
    y = _targets(done, fn)
    columns = [np.array([axes[n].encode(t.params[n]) for t in done], dtype=float) for n in names]
    return ParallelData(
        title=f"parallel coordinates of study {study.name!r} ({len(done)} trials)",
        target_name=target_name,
        axes=[axes[n].axis for n in names] + [Axis(target_name)],
        columns=[*columns, y],
        numbers=np.array([t.number for t in done], dtype=int),
        color=y,
        direction=resolve_direction(study, target, None),
    )


@dataclass(eq=False)
class SlicePanel:
    """The target against one parameter, for the complete trials where it is active."""

    param: str
    axis: Axis
    x: np.ndarray
    y: np.ndarray
    numbers: np.ndarray


@dataclass(eq=False)
class SliceData:
    """One `SlicePanel` per parameter."""

    title: str
    target_name: str
    panels: list[SlicePanel]


def slice_data(
    study: Study,
    *,
    params: Sequence[str] | None = None,
    target: Target | None = None,
    target_name: str = "value",
) -> SliceData:
    """Data of the slice plot: one panel per parameter."""
    done, names, axes, fn = _rows(study, params, target, require_all=False)
    panels = []
    for name in names:
        active = [t for t in done if name in t.params]
        panels.append(
            SlicePanel(
                param=name,
                axis=axes[name].axis,
                x=np.array([axes[name].encode(t.params[name]) for t in active], dtype=float),
                y=_targets(active, fn),
                numbers=np.array([t.number for t in active], dtype=int),
            )
        )
    return SliceData(
        title=f"slice plot of study {study.name!r}", target_name=target_name, panels=panels
    )


@dataclass(eq=False)
class ContourPanel:
    """The target over two parameters: the trials' points and, when they span an area, the
    target linearly interpolated on a ``grid_x`` x ``grid_y`` grid (``grid_z[j, i]`` at
    ``grid_x[i], grid_y[j]``; NaN outside the points' hull). ``row``/``col`` place the
    panel in the grid of panels."""

    x_param: str
    y_param: str
    row: int
    col: int
    x_axis: Axis
    y_axis: Axis
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    grid_x: np.ndarray | None
    grid_y: np.ndarray | None
    grid_z: np.ndarray | None


@dataclass(eq=False)
class ContourData:
    """Pairwise contour panels of ``params``: one panel for 2 parameters, else an n x n
    grid whose cell (row i, col j), i != j, plots params[j] (x) against params[i] (y)."""

    title: str
    target_name: str
    params: list[str]
    n_rows: int
    panels: list[ContourPanel]
    direction: str | None


def contour_data(
    study: Study,
    *,
    params: Sequence[str] | None = None,
    target: Target | None = None,
    target_name: str = "value",
    max_params: int = 4,
    resolution: int = 50,
) -> ContourData:
    """Data of the contour plot of ``params`` (default: the first ``max_params`` parameters)."""
    done, names, axes, fn = _rows(study, params, target, require_all=False)
    if params is None:
        names = names[:max_params]
    if len(names) < 2:
        raise NothingToPlot(
            f"a contour plot needs at least 2 parameters; study {study.name!r} has {names}"
        )
    pairs = (
        [(0, 1, 0, 0)]
        if len(names) == 2
        else [(j, i, i, j) for i in range(len(names)) for j in range(len(names)) if i != j]
    )
    panels = []
    for xi, yi, row, col in pairs:
        xn, yn = names[xi], names[yi]
        active = [t for t in done if xn in t.params and yn in t.params]
        xa, ya = axes[xn], axes[yn]
        x = np.array([xa.encode(t.params[xn]) for t in active], dtype=float)
        y = np.array([ya.encode(t.params[yn]) for t in active], dtype=float)
        z = _targets(active, fn)
        gx, gy, gz = _interpolate(x, y, z, xa.axis, ya.axis, resolution)
        panels.append(ContourPanel(xn, yn, row, col, xa.axis, ya.axis, x, y, z, gx, gy, gz))
    return ContourData(
        title=f"contour plot of study {study.name!r}",
        target_name=target_name,
        params=names,
        n_rows=1 if len(names) == 2 else len(names),
        panels=panels,
        direction=resolve_direction(study, target, None),
    )


def _to_plane(values: np.ndarray, axis: Axis) -> np.ndarray:
    return np.log10(values) if axis.is_log else values


def _from_plane(values: np.ndarray, axis: Axis) -> np.ndarray:
    return 10.0**values if axis.is_log else values


def _interpolate(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, xa: Axis, ya: Axis, n: int
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    if len(x) < 3:
        return None, None, None
    px, py = _to_plane(x, xa), _to_plane(y, ya)
    if np.ptp(px) == 0 or np.ptp(py) == 0:
        return None, None, None
    from scipy.interpolate import griddata
    from scipy.spatial import QhullError

    gx = np.linspace(px.min(), px.max(), n)
    gy = np.linspace(py.min(), py.max(), n)
    # interpolate on the unit square, so that neither axis' units dominate the triangulation
    ux, uy = (px - px.min()) / np.ptp(px), (py - py.min()) / np.ptp(py)
    mesh_x, mesh_y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    try:
        gz = griddata((ux, uy), z, (mesh_x, mesh_y), method="linear")
    except (QhullError, ValueError):  # all points on a line
        return None, None, None
    return _from_plane(gx, xa), _from_plane(gy, ya), gz


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
    reporting = [t for t in trials if t.last_step is not None]
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
    for s, budgets in table.items():
        members = [t for t in reporting if t.system_attrs.get("bracket", default) == s]
        if members or len(table) == 1:
            groups.append((s, f"bracket s={s}", tuple(map(float, budgets)), members))
    if not groups:
        steps = tuple(float(s) for s in sorted({t.last_step for t in reporting}))  # type: ignore[misc]
        groups.append((None, "all trials", steps, reporting))
    brackets = []
    for s, label, budgets, members in groups:
        reached = np.array(
            [sum(1 for t in members if t.last_step >= b) for b in budgets],  # type: ignore[operator]
            dtype=int,
        )
        stopped: dict[str, np.ndarray] = {}
        for t in members:
            top = sum(1 for b in budgets if t.last_step >= b) - 1  # type: ignore[operator]
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


# -- Pareto front ----------------------------------------------------------------------------


@dataclass(eq=False)
class ParetoData:
    """The objective values of the complete trials (``values[i, k]``: trial i, objective
    ``objectives[k]``) and which of them are on the Pareto front."""

    title: str
    objective_names: list[str]
    directions: list[str]
    objectives: tuple[int, ...]
    values: np.ndarray
    numbers: np.ndarray
    on_front: np.ndarray

    @property
    def front_order(self) -> np.ndarray:
        """Indices of the front's trials sorted by the first plotted objective."""
        idx = np.flatnonzero(self.on_front)
        return idx[np.argsort(self.values[idx, 0], kind="stable")]


def pareto_data(
    study: Study,
    *,
    objectives: Sequence[int] | None = None,
    objective_names: Sequence[str] | None = None,
) -> ParetoData:
    """Data of the Pareto-front plot of a multi-objective study (2 or 3 of its objectives,
    by index; default the first 3). The front is computed on the plotted objectives."""
    n = len(study.directions)
    if n < 2:
        raise NothingToPlot(
            f"a Pareto front needs a study with 2 or more objectives; study {study.name!r} "
            "has 1 (see the 'history' plot)"
        )
    chosen = tuple(range(min(n, 3))) if objectives is None else tuple(objectives)
    if not 2 <= len(chosen) <= 3 or any(not 0 <= k < n for k in chosen):
        raise PlotOptionError(
            f"objectives must be 2 or 3 distinct indices in [0, {n - 1}], got {list(chosen)}",
            option="objectives",
            owner="plot_pareto_front",
        )
    if len(set(chosen)) != len(chosen):
        raise PlotOptionError(
            f"objectives must be distinct, got {list(chosen)}",
            option="objectives",
            owner="plot_pareto_front",
        )
    names = (
        list(objective_names)
        if objective_names is not None
        else [f"objective {k}" for k in range(n)]
    )
    if len(names) != n:
        raise PlotOptionError(
            f"objective_names needs {n} names, got {len(names)}",
            option="objective_names",
            owner="plot_pareto_front",
        )
    done = complete_trials(study)
    values = np.array([[t.values[k] for k in chosen] for t in done], dtype=float)  # type: ignore[index]
    directions = [study.directions[k] for k in chosen]
    signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    on_front = non_dominated(values * signs)
    return ParetoData(
        title=f"Pareto front of study {study.name!r} ({int(on_front.sum())} of {len(done)} "
        "complete trials)",
        objective_names=[_direction_label(names[k], study.directions[k]) for k in chosen],
        directions=directions,
        objectives=chosen,
        values=values,
        numbers=np.array([t.number for t in done], dtype=int),
        on_front=on_front,
    )


def _direction_label(name: str, direction: str) -> str:
    return f"{name} ({'min' if direction == 'minimize' else 'max'})"


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
