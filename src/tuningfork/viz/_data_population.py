"""The data of the population-based training plots (`PBT`, `PB2`): each member's value by
step with its exploits (copies of a donor's checkpoint) as edges, and each hyperparameter's
schedule, read from the trials' ``system_attrs["pbt"]`` records."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tuningfork.exceptions import NothingToPlot, PlotOptionError
from tuningfork.trial import FrozenTrial, schedule_of
from tuningfork.viz._data_common import Axis, check_params, no_complete_message, param_axis

if TYPE_CHECKING:
    from tuningfork.study import Study, StudyReader

#: One colour per member index (matplotlib's "tab10", then "Dark2"), cycled.
MEMBER_COLORS: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#1b9e77", "#d95f02", "#7570b3", "#e7298a",
    "#66a61e", "#e6ab02",
)  # fmt: skip


def member_color(member: int) -> str:
    """The colour of member ``member`` in both backends."""
    return MEMBER_COLORS[member % len(MEMBER_COLORS)]


# -- the population --------------------------------------------------------------------------


@dataclass(eq=False)
class MemberSeries:
    """One member's reported values by step, over all its trials (a failed member's
    replacement continues its line). ``numbers[i]``: the trial that reported point i."""

    member: int
    trials: tuple[int, ...]
    steps: np.ndarray
    values: np.ndarray
    numbers: np.ndarray
    states: tuple[str, ...]

    def pieces(self) -> list[slice]:
        """The runs of points to join by lines: a new piece starts where the steps go back
        (a replacement that started from scratch)."""
        breaks = [0, *(np.flatnonzero(np.diff(self.steps) <= 0) + 1).tolist(), len(self.steps)]
        return [slice(a, b) for a, b in zip(breaks, breaks[1:]) if b > a]


@dataclass(frozen=True)
class ExploitEdge:
    """One exploit: at ``step`` the ``recipient`` trial (of ``member``) copied the
    checkpoint of ``donor`` (of ``donor_member``, value ``donor_value`` at ``step``) and
    went on with the hyperparameters ``after`` instead of ``before``. ``to_step`` /
    ``to_value``: the recipient's first report after the copy (None before it has one)."""

    member: int
    recipient: int
    donor: int
    donor_member: int | None
    step: int
    donor_value: float
    to_step: int | None
    to_value: float | None
    before: Mapping[str, Any]
    after: Mapping[str, Any]


@dataclass(eq=False)
class PopulationData:
    """Each member's values by step, and every exploit as an edge from the donor's point
    to the recipient's next point."""

    title: str
    target_name: str
    step_label: str
    members: list[MemberSeries]
    exploits: list[ExploitEdge]
    log_y: bool = False


def pbt_info(trial: FrozenTrial) -> Mapping[str, Any] | None:
    """A trial's PBT record (``system_attrs["pbt"]``) if it is a population member."""
    info = trial.system_attrs.get("pbt")
    return info if isinstance(info, Mapping) and "member" in info else None


def members(study: Study | StudyReader) -> dict[int, list[FrozenTrial]]:
    """Member index -> its trials, oldest first; `NothingToPlot` without any member."""
    if not study.trials:
        raise NothingToPlot(no_complete_message(study))
    found: dict[int, list[FrozenTrial]] = {}
    for trial in study.trials:
        info = pbt_info(trial)
        if info is not None:
            found.setdefault(int(info["member"]), []).append(trial)
    if not found:
        raise NothingToPlot(
            f"study {study.name!r} has no population member (no trial recorded by a PBT or "
            "PB2 scheduler); run it with scheduler=tf.PBT(...) or tf.PB2(...)"
        )
    return dict(sorted(found.items()))


def population_data(
    study: Study | StudyReader,
    *,
    target_name: str = "value",
    log_y: bool = False,
    step_label: str = "step",
) -> PopulationData:
    """Data of the population plot: one series per member, one edge per exploit."""
    groups = members(study)
    member_of = {t.number: m for m, trials in groups.items() for t in trials}
    by_number = {t.number: t for trials in groups.values() for t in trials}
    series = [_series(m, trials) for m, trials in groups.items()]
    if not any(s.steps.size for s in series):
        raise NothingToPlot(
            f"no member of study {study.name!r} has reported a value yet; members report "
            "with trial.report(value, step)"
        )
    edges = []
    for m, trials in groups.items():
        for trial in trials:
            for record in pbt_info(trial).get("exploits", ()):  # type: ignore[union-attr]
                edges.append(_edge(m, trial, record, member_of, by_number))
    n_trials = sum(len(t) for t in groups.values())
    return PopulationData(
        title=f"population of study {study.name!r} ({len(groups)} members, {n_trials} trials, "
        f"{len(edges)} exploits)",
        target_name=target_name,
        step_label=step_label,
        members=series,
        exploits=edges,
        log_y=log_y,
    )


def _series(member: int, trials: Sequence[FrozenTrial]) -> MemberSeries:
    steps: list[int] = []
    values: list[float] = []
    numbers: list[int] = []
    for trial in trials:
        for step in sorted(trial.intermediate_values):
            steps.append(step)
            values.append(trial.intermediate_values[step])
            numbers.append(trial.number)
    return MemberSeries(
        member=member,
        trials=tuple(t.number for t in trials),
        steps=np.array(steps, dtype=float),
        values=np.array(values, dtype=float),
        numbers=np.array(numbers, dtype=int),
        states=tuple(t.state.value for t in trials),
    )


def _edge(
    member: int,
    trial: FrozenTrial,
    record: Mapping[str, Any],
    member_of: Mapping[int, int],
    by_number: Mapping[int, FrozenTrial],
) -> ExploitEdge:
    step = int(record["step"])
    donor = int(record["donor"])
    later = sorted(s for s in trial.intermediate_values if s > step)
    value = record.get("donor_value")
    if value is None and donor in by_number:  # older records: read it off the donor
        value = by_number[donor].intermediate_values.get(step)
    return ExploitEdge(
        member=member,
        recipient=trial.number,
        donor=donor,
        donor_member=member_of.get(donor),
        step=step,
        donor_value=math.nan if value is None else float(value),
        to_step=later[0] if later else None,
        to_value=trial.intermediate_values[later[0]] if later else None,
        before=dict(record.get("before", {})),
        after=dict(record.get("after", {})),
    )


# -- the hyperparameter schedules ------------------------------------------------------------


@dataclass(eq=False)
class ScheduleLine:
    """A step line of one hyperparameter: ``values[i]`` is in force from ``steps[i]`` on
    (after the report at that step) until the next step; the last point is where the line
    ends (the last reported step). ``numbers[i]``: the trial that trained with it."""

    label: str
    member: int | None
    steps: np.ndarray
    values: np.ndarray
    numbers: np.ndarray


@dataclass(eq=False)
class SchedulePanel:
    """One hyperparameter: its axis (log for a log distribution, categorical positions)
    and one line per member (or one for a single trial's schedule)."""

    param: str
    axis: Axis
    lines: list[ScheduleLine]


@dataclass(eq=False)
class ScheduleData:
    """Each hyperparameter's value by step: per member (the values in force over its
    trials), or, with ``trial``, the effective schedule behind that trial's model."""

    title: str
    step_label: str
    panels: list[SchedulePanel]
    trial: int | None = None


def schedule_data(
    study: Study | StudyReader,
    *,
    params: Sequence[str] | None = None,
    trial: int | None = None,
    step_label: str = "step",
) -> ScheduleData:
    """Data of the schedule plot: one panel per hyperparameter in ``params`` (default all).

    Without ``trial``, one step line per member from its trials' exploits (``before`` /
    ``after``) and current parameters; with ``trial``, that trial's effective schedule
    (`tuningfork.trial.schedule_of`: its donors' schedules up to each copy), which works
    for any trial, PBT member or not.
    """
    segments: list[tuple[str, int | None, _Points]]
    if trial is None:
        groups = members(study)
        trials = [t for group in groups.values() for t in group]
        segments = [(f"member {m}", m, _member_schedule(group)) for m, group in groups.items()]
        title = f"hyperparameter schedules of study {study.name!r} ({len(groups)} members)"
    else:
        chosen = _trial(study, trial)
        trials = [chosen]
        segments = [(f"trial {trial}", _member(chosen), _trial_schedule(chosen))]
        title = f"hyperparameter schedule behind trial {trial} of study {study.name!r}"
    names = check_params(study, trials, params)
    if not names:
        raise NothingToPlot(f"the trials of study {study.name!r} have no parameter to plot")
    panels = []
    for name in names:
        axis = param_axis(name, trials)
        lines = [_line(label, m, points, name, axis.encode) for label, m, points in segments]
        panels.append(SchedulePanel(name, axis.axis, [ln for ln in lines if ln.steps.size]))
    return ScheduleData(title=title, step_label=step_label, panels=panels, trial=trial)


# (step, trial number, params) points: params in force from step on; the last ends the line
_Points = list[tuple[int, int, Mapping[str, Any]]]


def _member_schedule(trials: Sequence[FrozenTrial]) -> _Points:
    """The parameters a member trained with, over its trials: each trial from where it
    started (0, or the step a replacement copied its donor at) to its last report."""
    points: _Points = []
    for trial in trials:
        info = pbt_info(trial) or {}
        exploits = list(info.get("exploits", ()))
        if exploits and "replaces" in info and exploits[0]["step"] not in trial.intermediate_values:
            # a replacement that started as a copy: it never trained with "before"
            first = exploits.pop(0)
            start, current = int(first["step"]), dict(first["after"])
        else:
            start = 0
            current = dict(exploits[0]["before"]) if exploits else dict(trial.params)
        points.append((start, trial.number, current))
        for record in exploits:
            points.append((int(record["step"]), trial.number, dict(record["after"])))
        end = max([start, *trial.intermediate_values])
        points.append((end, trial.number, points[-1][2]))
    return points


def _trial_schedule(trial: FrozenTrial) -> _Points:
    entries = schedule_of(trial)
    points: _Points = [(step, trial.number, params) for step, params in entries]
    end = max([entries[-1][0], *trial.intermediate_values])
    points.append((end, trial.number, entries[-1][1]))
    return points


def _line(
    label: str,
    member: int | None,
    points: _Points,
    name: str,
    encode: Callable[[Any], float],
) -> ScheduleLine:
    kept: list[tuple[int, int, Any]] = []
    for step, number, params in points:
        if name not in params:
            continue
        if kept and kept[-1][0] == step:
            kept.pop()  # a change at the step a run ended or started: the later one holds
        kept.append((step, number, params[name]))
    return ScheduleLine(
        label=label,
        member=member,
        steps=np.array([s for s, _, _ in kept], dtype=float),
        values=np.array([encode(v) for _, _, v in kept], dtype=float),
        numbers=np.array([n for _, n, _ in kept], dtype=int),
    )


def _trial(study: Study | StudyReader, number: int) -> FrozenTrial:
    for trial in study.trials:
        if trial.number == number:
            return trial
    known = f"0 to {len(study.trials) - 1}" if study.trials else "none yet"
    raise PlotOptionError(
        f"study {study.name!r} has no trial {number!r}; its trial numbers: {known}",
        option="trial",
        owner="plot('schedule')",
    )


def _member(trial: FrozenTrial) -> int | None:
    info = pbt_info(trial)
    return None if info is None else int(info["member"])
