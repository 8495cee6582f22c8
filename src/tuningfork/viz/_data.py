"""The data of each plot, computed from a study's trials alone (no plotting library needed).

Every ``*_data`` function here reads only ``study.name``, ``study.directions``,
``study.trials`` and, for the rung plot, ``study.scheduler``, so it works on a study from
any storage (the population and schedule plots also on a `StudyReader`). The results are
plain dataclasses of numpy arrays and strings that the matplotlib and plotly renderers
draw, and that tests and dashboards can read directly.

Parameter values are put on an `Axis`: numbers as they are (``scale="log"`` for a log
distribution), categorical choices as their positions 0, 1, 2, ... in ``Axis.categories``.
Times are in seconds, counted from the first trial's start.

The functions live in one module per plot family (``_data_*.py``); this module gathers
them, so renderers, tests and dashboards import every name from here.
"""

from __future__ import annotations

from tuningfork.exceptions import PlotOptionError
from tuningfork.viz._data_common import (
    STATE_COLORS,
    STATE_ORDER,
    Axis,
    ParamAxis,
    Scale,
    Target,
    check_params,
    complete_trials,
    finite_range,
    log_ticks,
    no_complete_message,
    param_axis,
    param_names,
    resolve_direction,
    resolve_target,
)
from tuningfork.viz._data_fidelity import (
    BracketRungs,
    Curve,
    IntermediateData,
    RungsData,
    intermediate_data,
    rungs_data,
)
from tuningfork.viz._data_history import (
    EdfCurve,
    EdfData,
    HistoryData,
    ImportanceData,
    TimelineBar,
    TimelineData,
    edf_data,
    history_data,
    importance_data,
    timeline_data,
)
from tuningfork.viz._data_params import (
    ContourData,
    ContourPanel,
    ParallelData,
    SliceData,
    SlicePanel,
    contour_data,
    parallel_data,
    slice_data,
)
from tuningfork.viz._data_pareto import ParetoData, pareto_data
from tuningfork.viz._data_population import (
    MEMBER_COLORS,
    ExploitEdge,
    MemberSeries,
    PopulationData,
    ScheduleData,
    ScheduleLine,
    SchedulePanel,
    member_color,
    population_data,
    schedule_data,
)

__all__ = [
    "Axis",
    "BracketRungs",
    "ContourData",
    "ContourPanel",
    "Curve",
    "EdfCurve",
    "ExploitEdge",
    "EdfData",
    "HistoryData",
    "ImportanceData",
    "IntermediateData",
    "MEMBER_COLORS",
    "MemberSeries",
    "ParallelData",
    "ParamAxis",
    "ParetoData",
    "PlotOptionError",
    "PopulationData",
    "RungsData",
    "STATE_COLORS",
    "STATE_ORDER",
    "Scale",
    "ScheduleData",
    "ScheduleLine",
    "SchedulePanel",
    "SliceData",
    "SlicePanel",
    "Target",
    "TimelineBar",
    "TimelineData",
    "check_params",
    "complete_trials",
    "contour_data",
    "edf_data",
    "finite_range",
    "history_data",
    "importance_data",
    "intermediate_data",
    "log_ticks",
    "member_color",
    "no_complete_message",
    "parallel_data",
    "param_axis",
    "param_names",
    "pareto_data",
    "population_data",
    "resolve_direction",
    "resolve_target",
    "rungs_data",
    "schedule_data",
    "slice_data",
    "timeline_data",
]
