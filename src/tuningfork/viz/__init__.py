"""Plots of a study (``pip install 'tuningfork[viz]'``).

Each plot kind has a pure function computing its data from the study (`plot_data`; the
dataclasses of `tuningfork.viz._data`, re-exported here) and two renderers: matplotlib
(static PNG / SVG / PDF; a `matplotlib.figure.Figure` on its own Agg canvas, never
through pyplot) and plotly (interactive HTML, or JSON for a web dashboard; a
`plotly.graph_objects.Figure`). Both libraries are imported only when a plot is drawn;
a missing one raises `tuningfork.exceptions.MissingExtra`.

A plot reads only the study's trials (any storage). A study with nothing to show for a
kind (no complete trial, fewer than two parameters for a contour, no reports for learning
curves, ...) raises `tuningfork.exceptions.NothingToPlot` with a message saying what is
missing.

    >>> from tuningfork import viz
    >>> fig = viz.plot(study, "history")                 # matplotlib Figure
    >>> viz.save(study, "contour", "contour.html", params=["lr", "wd"])
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tuningfork.exceptions import NothingToPlot
from tuningfork.viz._data import (
    STATE_COLORS,
    Axis,
    BracketRungs,
    ContourData,
    ContourPanel,
    Curve,
    EdfCurve,
    EdfData,
    ExploitEdge,
    HistoryData,
    ImportanceData,
    IntermediateData,
    MemberSeries,
    ParallelData,
    ParetoData,
    PlotOptionError,
    PopulationData,
    RungsData,
    ScheduleData,
    ScheduleLine,
    SchedulePanel,
    SliceData,
    SlicePanel,
    TimelineBar,
    TimelineData,
    contour_data,
    edf_data,
    history_data,
    importance_data,
    intermediate_data,
    parallel_data,
    pareto_data,
    population_data,
    rungs_data,
    schedule_data,
    slice_data,
    timeline_data,
)

if TYPE_CHECKING:
    from tuningfork.study import Study
    from tuningfork.trial import FrozenTrial

Backend = Literal["matplotlib", "plotly"]
Target = Callable[["FrozenTrial"], float]

KINDS: tuple[str, ...] = (
    "history",
    "parallel",
    "slice",
    "contour",
    "edf",
    "intermediate",
    "importance",
    "timeline",
    "rungs",
    "pareto",
    "population",
    "schedule",
)

BACKENDS: tuple[str, ...] = ("matplotlib", "plotly")

#: File suffix -> backend used by `save`.
SUFFIXES: dict[str, str] = {
    ".png": "matplotlib",
    ".svg": "matplotlib",
    ".pdf": "matplotlib",
    ".html": "plotly",
    ".json": "plotly",
}

_DATA: dict[str, Callable[..., Any]] = {
    "history": history_data,
    "parallel": parallel_data,
    "slice": slice_data,
    "contour": contour_data,
    "edf": edf_data,
    "intermediate": intermediate_data,
    "importance": importance_data,
    "timeline": timeline_data,
    "rungs": rungs_data,
    "pareto": pareto_data,
    "population": population_data,
    "schedule": schedule_data,
}

_SIZE = ("width", "height", "dpi")


# -- the generic entry points ----------------------------------------------------------------


def plot_data(study: Study | Sequence[Study], kind: str, **options: Any) -> Any:
    """The data object of plot ``kind`` (e.g. `HistoryData` for "history"), computed from
    ``study`` with the kind's options (``params``, ``target``, ``target_name``, ``by``, ...;
    see the ``plot_<kind>`` functions). Needs neither matplotlib nor plotly."""
    data_fn = _data_fn(kind)
    _check_options(kind, data_fn, options)
    return data_fn(study, **options)


def plot(
    study: Study | Sequence[Study],
    kind: str,
    *,
    backend: Backend = "matplotlib",
    params: Sequence[str] | None = None,
    target: Target | None = None,
    target_name: str = "value",
    **options: Any,
) -> Any:
    """Draw plot ``kind`` (one of `KINDS`) of ``study``.

    Args:
        backend: "matplotlib" (returns a `matplotlib.figure.Figure`) or "plotly" (returns
            a `plotly.graph_objects.Figure`).
        params: the parameters to plot (parallel, slice, contour, importance; default all,
            or for contour the first ``max_params=4``).
        target: the value to plot for a trial (default its single objective value; needed
            for multi-objective studies except for "pareto").
        target_name: the label of that value on axes and colour bars.
        options: the kind's own options (see ``plot_<kind>``), and ``width`` / ``height``
            in pixels (``dpi`` for matplotlib, default 100).

    Raises:
        NothingToPlot: the study has nothing to show for this kind.
        MissingExtra: the backend's library is not installed.
        PlotOptionError: an unknown kind, backend or option.
    """
    data_fn = _data_fn(kind)
    renderer = _renderer(backend, kind)
    size = {k: options.pop(k) for k in _SIZE if k in options}
    accepted = inspect.signature(data_fn).parameters
    if params is not None:
        options["params"] = params
    if target is not None:
        options["target"] = target
    if "target_name" in accepted:
        options["target_name"] = target_name
    _check_options(kind, data_fn, options)
    return renderer(data_fn(study, **options), **size)


def save(
    study: Study | Sequence[Study],
    kind: str,
    path: str | os.PathLike[str],
    **options: Any,
) -> Path:
    """Draw plot ``kind`` of ``study`` (see `plot`, which takes the same options) and write
    it to ``path``; the suffix picks the format and the backend: ``.png`` / ``.svg`` /
    ``.pdf`` with matplotlib, ``.html`` (self-contained, works offline) / ``.json``
    (``fig.to_json()``, for a web page's ``Plotly.newPlot``) with plotly. A PNG is
    ``width`` x ``height`` pixels (default 800 x 600 for most kinds) at ``dpi`` (100).
    Returns the path written."""
    target = Path(path)
    suffix = target.suffix.lower()
    backend = SUFFIXES.get(suffix)
    if backend is None:
        raise PlotOptionError(
            f"cannot tell the format of {str(target)!r} from its suffix {suffix!r}; use one "
            f"of {', '.join(SUFFIXES)}",
            option="path",
            owner="save",
        )
    asked = options.pop("backend", backend)
    if asked != backend:
        raise PlotOptionError(
            f"a {suffix} file is written with {backend}, not {asked!r}; drop backend= or "
            "change the suffix",
            option="backend",
            owner="save",
        )
    include_plotlyjs = options.pop("include_plotlyjs", True)
    fig = plot(study, kind, backend=backend, **options)  # type: ignore[arg-type]
    target.parent.mkdir(parents=True, exist_ok=True)
    if backend == "matplotlib":
        fig.savefig(target, format=suffix[1:], dpi=fig.dpi)
    elif suffix == ".html":
        fig.write_html(target, include_plotlyjs=include_plotlyjs)
    else:
        target.write_text(fig.to_json(), encoding="utf-8")
    return target


# -- one function per kind -------------------------------------------------------------------


def plot_history(
    study: Study,
    *,
    by: Literal["trial", "time"] = "trial",
    backend: Backend = "matplotlib",
    target: Target | None = None,
    target_name: str = "value",
    direction: str | None = None,
    log_y: bool = False,
    **size: Any,
) -> Any:
    """Optimisation history: the value of each COMPLETE trial against its number
    (``by="trial"``) or its completion time in seconds since the first trial started
    (``by="time"``), with the best value so far as a step line. The best follows
    ``direction`` (default: the study's, for a single-objective study; no line for a
    multi-objective ``target`` without it). ``log_y``: a log value axis."""
    return plot(
        study, "history", backend=backend, target=target, target_name=target_name, by=by,
        direction=direction, log_y=log_y, **size,
    )  # fmt: skip


def plot_parallel_coordinates(
    study: Study,
    *,
    params: Sequence[str] | None = None,
    backend: Backend = "matplotlib",
    target: Target | None = None,
    target_name: str = "value",
    **size: Any,
) -> Any:
    """Parallel coordinates: one line per COMPLETE trial through an axis per parameter
    (log parameters on a log scale, categorical ones at their choices) and the target,
    coloured by the target. Trials lacking one of ``params`` (conditional parameters) are
    left out."""
    return plot(
        study, "parallel", backend=backend, params=params, target=target,
        target_name=target_name, **size,
    )  # fmt: skip


def plot_slice(
    study: Study,
    *,
    params: Sequence[str] | None = None,
    backend: Backend = "matplotlib",
    target: Target | None = None,
    target_name: str = "value",
    **size: Any,
) -> Any:
    """Slice plot: the target against each parameter (one panel each, log / categorical
    axes as the distribution says), for the COMPLETE trials where the parameter is active,
    coloured by trial number."""
    return plot(
        study, "slice", backend=backend, params=params, target=target,
        target_name=target_name, **size,
    )  # fmt: skip


def plot_contour(
    study: Study,
    *,
    params: Sequence[str] | None = None,
    backend: Backend = "matplotlib",
    target: Target | None = None,
    target_name: str = "value",
    max_params: int = 4,
    resolution: int = 50,
    **size: Any,
) -> Any:
    """Contour plot of the target over pairs of ``params`` (default: the first
    ``max_params``): one panel for two parameters, else a grid of all pairs. The surface is
    a linear interpolation of the COMPLETE trials (shown as points) on a ``resolution`` x
    ``resolution`` grid, in log space for log parameters. Needs at least 2 parameters."""
    return plot(
        study, "contour", backend=backend, params=params, target=target,
        target_name=target_name, max_params=max_params, resolution=resolution, **size,
    )  # fmt: skip


def plot_edf(
    study: Study | Sequence[Study],
    *,
    backend: Backend = "matplotlib",
    target: Target | None = None,
    target_name: str = "value",
    log_x: bool = False,
    **size: Any,
) -> Any:
    """Empirical distribution function of the COMPLETE trials' values: the fraction of
    trials with a value <= x. Pass several studies to compare them (one curve each)."""
    return plot(
        study, "edf", backend=backend, target=target, target_name=target_name, log_x=log_x,
        **size,
    )  # fmt: skip


def plot_intermediate_values(
    study: Study,
    *,
    backend: Backend = "matplotlib",
    target_name: str = "value",
    log_y: bool = False,
    step_label: str = "step",
    **size: Any,
) -> Any:
    """Learning curves: the values each trial reported by step, coloured by the trial's
    state (COMPLETE, PRUNED, PAUSED, RUNNING, FAIL), one legend entry per state."""
    return plot(
        study, "intermediate", backend=backend, target_name=target_name, log_y=log_y,
        step_label=step_label, **size,
    )  # fmt: skip


def plot_importance(
    study: Study,
    *,
    params: Sequence[str] | None = None,
    backend: Backend = "matplotlib",
    target: Target | None = None,
    target_name: str = "value",
    evaluator: Any = None,
    **size: Any,
) -> Any:
    """Hyperparameter importance bars, most important on top, from
    ``tuningfork.importance.get_param_importances(study, evaluator=, params=, target=)``.
    Needs at least 2 COMPLETE trials."""
    return plot(
        study, "importance", backend=backend, params=params, target=target,
        target_name=target_name, evaluator=evaluator, **size,
    )  # fmt: skip


def plot_timeline(
    study: Study,
    *,
    backend: Backend = "matplotlib",
    now: float | None = None,
    **size: Any,
) -> Any:
    """Timeline: one row per worker (threads of one process get a row each), a bar per
    trial run from its start to its end (seconds since the first start) coloured by
    state, to show parallel efficiency and idle workers. The title gives the utilisation,
    busy time / (rows x span). RUNNING trials end at ``now`` (default: the current time)."""
    return plot(study, "timeline", backend=backend, now=now, **size)


def plot_rungs(study: Study, *, backend: Backend = "matplotlib", **size: Any) -> Any:
    """Successive halving (SHA, ASHA, Hyperband, BOHB): how many trials reached each rung
    budget, per bracket (the trials' system attr ``bracket``), from the trials' last
    reported steps and the study's scheduler's rung budgets. For another scheduler, the
    trials are counted at each distinct last step."""
    return plot(study, "rungs", backend=backend, **size)


def plot_pareto_front(
    study: Study,
    *,
    backend: Backend = "matplotlib",
    objectives: Sequence[int] | None = None,
    objective_names: Sequence[str] | None = None,
    **size: Any,
) -> Any:
    """Pareto front of a multi-objective study: every COMPLETE trial, with the
    non-dominated ones highlighted, on 2 objectives (or 3, in 3-D), chosen by index with
    ``objectives`` (default the first 2 or 3); ``objective_names`` labels all of them."""
    return plot(
        study, "pareto", backend=backend, objectives=objectives,
        objective_names=objective_names, **size,
    )  # fmt: skip


def plot_population(
    study: Study,
    *,
    backend: Backend = "matplotlib",
    target_name: str = "value",
    log_y: bool = False,
    step_label: str = "step",
    **size: Any,
) -> Any:
    """Population-based training (`PBT`, `PB2`): each member's reported values by step,
    one colour per member index (a failed member's replacement continues its line), and
    each exploit as a dashed edge from the donor's value at the copy step to the
    recipient's next report, labelled with the donor and recipient trials. Raises
    `NothingToPlot` for a study without population members."""
    return plot(
        study, "population", backend=backend, target_name=target_name, log_y=log_y,
        step_label=step_label, **size,
    )  # fmt: skip


def plot_schedule(
    study: Study,
    *,
    params: Sequence[str] | None = None,
    trial: int | None = None,
    backend: Backend = "matplotlib",
    step_label: str = "step",
    **size: Any,
) -> Any:
    """Population-based training: each hyperparameter's value by step (one panel per name
    in ``params``, default all; a log axis for a log distribution), as a step line per
    member (the values in force over its trials, changing at its exploits), or, with
    ``trial``, the effective schedule behind that trial's model (its donors' values up to
    each copy: `tuningfork.trial.schedule_of`, what `PBTReplay` retrains). Raises
    `NothingToPlot` without ``trial`` for a study without population members."""
    return plot(
        study, "schedule", backend=backend, params=params, trial=trial,
        step_label=step_label, **size,
    )  # fmt: skip


# -- helpers ---------------------------------------------------------------------------------


def _data_fn(kind: str) -> Callable[..., Any]:
    try:
        return _DATA[kind]
    except (KeyError, TypeError):
        raise PlotOptionError(
            f"unknown plot kind {kind!r}; choose one of {', '.join(KINDS)}",
            option="kind",
            owner="plot",
        ) from None


def _renderer(backend: str, kind: str) -> Callable[..., Any]:
    if backend == "matplotlib":
        from tuningfork.viz import _matplotlib as module
    elif backend == "plotly":
        from tuningfork.viz import _plotly as module  # type: ignore[no-redef]
    else:
        raise PlotOptionError(
            f"unknown backend {backend!r}; choose 'matplotlib' or 'plotly'",
            option="backend",
            owner="plot",
        )
    module._import()  # MissingExtra now, before any work
    return module.RENDERERS[kind]


def _check_options(kind: str, data_fn: Callable[..., Any], options: dict[str, Any]) -> None:
    accepted = [p for p in inspect.signature(data_fn).parameters if p != "study"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise PlotOptionError(
            f"the {kind!r} plot does not take the option(s) {', '.join(unknown)}; it takes "
            f"{', '.join(accepted + list(_SIZE)) or 'no options'}",
            option=unknown[0],
            owner=f"plot({kind!r})",
        )


__all__ = [
    "BACKENDS",
    "KINDS",
    "STATE_COLORS",
    "SUFFIXES",
    "Axis",
    "BracketRungs",
    "ContourData",
    "ContourPanel",
    "Curve",
    "EdfCurve",
    "EdfData",
    "ExploitEdge",
    "HistoryData",
    "ImportanceData",
    "IntermediateData",
    "MemberSeries",
    "NothingToPlot",
    "ParallelData",
    "ParetoData",
    "PlotOptionError",
    "PopulationData",
    "RungsData",
    "ScheduleData",
    "ScheduleLine",
    "SchedulePanel",
    "SliceData",
    "SlicePanel",
    "TimelineBar",
    "TimelineData",
    "plot",
    "plot_contour",
    "plot_data",
    "plot_edf",
    "plot_history",
    "plot_importance",
    "plot_intermediate_values",
    "plot_parallel_coordinates",
    "plot_pareto_front",
    "plot_population",
    "plot_rungs",
    "plot_schedule",
    "plot_slice",
    "plot_timeline",
    "save",
]
