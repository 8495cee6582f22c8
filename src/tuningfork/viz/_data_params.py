"""The data of the plots of parameters against the target: parallel coordinates, slices
and contours (interpolated on a grid)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tuningfork.exceptions import NothingToPlot
from tuningfork.trial import FrozenTrial
from tuningfork.viz._data_common import (
    Axis,
    ParamAxis,
    Target,
    _targets,
    check_params,
    complete_trials,
    param_axis,
    resolve_direction,
    resolve_target,
)

if TYPE_CHECKING:
    from tuningfork.study import Study


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
