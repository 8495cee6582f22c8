"""Grid search: every point of a finite grid runs exactly once, in a seeded shuffled order.

Exhaustive search over a cartesian grid (the baseline of Bergstra & Bengio, 2012, "Random
search for hyper-parameter optimization"). Workers settle who runs which point through the
study's claim log, so several workers never run a point twice; conditional spaces give only
the valid combinations.
"""

from __future__ import annotations

import math
import random
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tuningfork import _check as check
from tuningfork.exceptions import SearchExhausted, SpaceError
from tuningfork.samplers.base import Reservation, Sampler
from tuningfork.space import Categorical, Distribution, Float, Int, Space, Value
from tuningfork.trial import FrozenTrial

if TYPE_CHECKING:
    from tuningfork.study import StudyReader

__all__ = ["GridSampler"]

DEFAULT_RESOLUTION = 5
MAX_GRID_POINTS = 10_000_000
"""Larger grids cannot be run exhaustively; use RandomSampler or QMCSampler instead."""


class GridSampler(Sampler):
    """Run every point of a grid exactly once, then stop the study (`SearchExhausted`).

    Args:
        space_or_values: the grid, either explicit values per parameter
            (``{"lr": [0.1, 0.01], "layers": [1, 2]}``, the cartesian product) or a `Space`
            whose distributions are discretised: a Categorical gives all its choices; an Int
            all its values when it has at most ``resolution`` of them, else ``resolution``
            evenly spaced values (log-spaced when ``log=True``); a Float ``resolution``
            points evenly spaced in its unit encoding (so log-spaced when ``log=True``,
            on the step grid when stepped). A conditional space gives only valid points: a
            child parameter appears only in points where it is active. None takes the grid
            from the space given to ``study.ask`` / ``study.optimize`` (one space per sampler).
        resolution: points per numeric parameter, one number or ``{name: number}`` (names
            left out get 5).
        seed: seeds the visiting order (``numpy.random.default_rng(seed)``); None draws one
            from the operating system.
        shuffle: visit the grid in a seeded random order (True) or in the canonical order
            (the cartesian order with the last parameter changing fastest).

    Grid points have canonical indexes 0..N-1. Before each new trial the sampler takes the
    first point, in visiting order, whose key ``grid:<index>`` is not yet claimed in the
    study's log; if another worker claims it first, the study asks again. The index is
    kept in the trial's ``system_attrs["grid_index"]``. A point whose trial failed is not
    run again. Define-by-run objectives must suggest only parameters of the grid.
    """

    def __init__(
        self,
        space_or_values: Space | Mapping[str, Sequence[Value]] | None = None,
        *,
        resolution: int | Mapping[str, int] = DEFAULT_RESOLUTION,
        seed: int | None = None,
        shuffle: bool = True,
    ) -> None:
        shuffle = check.flag(shuffle, "shuffle", "GridSampler")
        seed = check.seed(seed, "GridSampler")
        if seed is None and shuffle:
            seed = random.SystemRandom().randrange(2**32)
        self.seed = seed
        self.shuffle = shuffle
        self._resolution = _check_resolution(resolution)
        self._grid: _Grid | None = None
        self._order: np.ndarray | None = None
        # position in the visiting order before which every point is claimed, per study view
        self._cursors: weakref.WeakKeyDictionary[StudyReader, int] = weakref.WeakKeyDictionary()
        if isinstance(space_or_values, Space):
            self._grid = _Grid.from_space(space_or_values, self._resolution)
        elif space_or_values is not None:
            if self._resolution[1]:
                raise SpaceError(
                    "resolution per parameter applies to a Space; with explicit values "
                    "list the values you want for each parameter"
                )
            self._grid = _Grid.from_values(space_or_values)

    # -- the grid -------------------------------------------------------------------------

    @property
    def grid_size(self) -> int:
        """The number of grid points N."""
        return self._require_grid(None).size

    def grid_point(self, index: int) -> dict[str, Value]:
        """The configuration of grid point ``index`` (canonical order, 0..N-1)."""
        grid = self._require_grid(None)
        if not 0 <= index < grid.size:
            raise SpaceError(f"grid index {index} is out of range 0..{grid.size - 1}")
        return grid.point(index)

    def _require_grid(self, space: Space | None) -> _Grid:
        if self._grid is None:
            if space is None:
                raise SpaceError(
                    "GridSampler has no grid: pass a Space or {name: [values]} to "
                    "GridSampler(...), or a space to study.ask(space) / study.optimize(space=...)"
                )
            self._grid = _Grid.from_space(space, self._resolution)
        elif space is not None and self._grid.space is not None and space != self._grid.space:
            raise SpaceError(
                "GridSampler was built for another space; use one GridSampler per space "
                f"(grid space: {self._grid.space!r}, asked for: {space!r})"
            )
        return self._grid

    def _visiting_order(self, grid: _Grid) -> np.ndarray:
        if self._order is None:
            if self.shuffle:
                self._order = np.random.default_rng(self.seed).permutation(grid.size)
            else:
                self._order = np.arange(grid.size)
        return self._order

    # -- the Sampler interface ------------------------------------------------------------

    def reserve(self, study: StudyReader, space: Space | None) -> Reservation:
        """Claim the first unclaimed grid point in visiting order; `SearchExhausted` if none."""
        grid = self._require_grid(space)
        order = self._visiting_order(grid)
        position = self._cursors.get(study, 0)
        # claims only grow, so points before the cursor stay claimed: each is skipped once
        while position < len(order) and study.claimed(f"grid:{order[position]}"):
            position += 1
        self._cursors[study] = position
        if position == len(order):
            raise SearchExhausted(
                f"all {grid.size} grid points of study {study.name!r} have been claimed"
            )
        index = int(order[position])
        return Reservation(
            key=f"grid:{index}", params=grid.point(index), system_attrs={"grid_index": index}
        )

    def sample(
        self, study: StudyReader, trial: FrozenTrial, name: str, distribution: Distribution
    ) -> Value:
        """Refuse: grid values come from the reservation, so ``name`` is outside this point."""
        grid = self._grid
        if grid is not None and name in grid.names:
            index = trial.system_attrs.get("grid_index")
            where = f"grid point {index}" if index is not None else "this trial (not a grid trial)"
            raise SpaceError(
                f"parameter {name!r} is in the grid but has no value in {where}; in a "
                "conditional grid suggest it only where its condition holds"
            )
        known = list(grid.names) if grid is not None else []
        raise SpaceError(
            f"parameter {name!r} is not in the grid (which has {known!r}); add it to the "
            f"grid, e.g. GridSampler({{..., {name!r}: [value, ...]}}), or to the Space "
            "given to GridSampler"
        )

    def _record_options(self) -> dict[str, Any]:
        # the first argument is a Space or a mapping of values: recorded as "space" and/or
        # "values" (with the grid's size), which `from_record` reads back
        default, per_name = self._resolution
        record: dict[str, Any] = {"seed": self.seed, "shuffle": self.shuffle}
        record["resolution"] = per_name or default
        if self._grid is not None and self._grid.space is not None:
            record["space"] = self._grid.space.to_dict()
        if self._grid is not None:
            record["grid_size"] = self._grid.size
            record["values"] = {name: list(vs) for name, vs in self._grid.values.items()}
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> GridSampler:
        """The grid sampler of a record: over its space, else over its values."""
        options = {"seed": record.get("seed"), "shuffle": record.get("shuffle", True)}
        resolution = record.get("resolution", DEFAULT_RESOLUTION)
        if "space" in record:
            return cls(Space.from_dict(record["space"]), resolution=resolution, **options)
        if "values" in record:
            return cls(record["values"], **options)
        return cls(resolution=resolution, **options)


# -- building grids -------------------------------------------------------------------------


class _Grid:
    """Grid points in canonical order: the cartesian order, last parameter fastest.

    A grid without conditions is decoded from its index (mixed radix); a conditional grid
    is enumerated once, since only valid combinations count.
    """

    def __init__(
        self, values: dict[str, tuple[Value, ...]], space: Space | None, conditional: bool
    ) -> None:
        self.values = values
        self.names = tuple(values)
        self.space = space
        self._points: list[dict[str, Value]] | None = None
        if conditional and space is not None:
            self._points = _enumerate(space, values)
            self.size = len(self._points)
        else:
            self.size = math.prod(len(vs) for vs in values.values())
        if self.size > MAX_GRID_POINTS:
            raise SpaceError(
                f"the grid has {self.size} points, more than {MAX_GRID_POINTS}; lower the "
                "resolution or list fewer values, or use RandomSampler or QMCSampler"
            )

    @classmethod
    def from_values(cls, values: Mapping[str, Sequence[Value]]) -> _Grid:
        if not isinstance(values, Mapping):
            raise SpaceError(
                "GridSampler needs a Space or a mapping {name: [values]}, got "
                f"{type(values).__name__}"
            )
        if not values:
            raise SpaceError("the grid is empty; give at least one parameter and its values")
        checked: dict[str, tuple[Value, ...]] = {}
        for name, listed in values.items():
            if not isinstance(name, str) or not name:
                raise SpaceError(f"grid parameter names must be non-empty strings, got {name!r}")
            try:
                checked[name] = Categorical(listed).choices
            except SpaceError as error:
                raise SpaceError(f"grid values of {name!r}: {error}") from None
        return cls(checked, None, conditional=False)

    @classmethod
    def from_space(cls, space: Space, resolution: tuple[int, dict[str, int]]) -> _Grid:
        if not isinstance(space, Space):
            raise SpaceError(f"GridSampler needs a Space, got {type(space).__name__}")
        if not len(space):
            raise SpaceError("the space is empty; a grid needs at least one parameter")
        default, per_name = resolution
        for name in per_name:
            if name not in space:
                raise SpaceError(
                    f"resolution names {name!r}, which is not in the space {list(space)!r}"
                )
        values = {
            name: _discretise(name, space[name], per_name.get(name, default))
            for name in space.names
        }
        conditional = any(space[name].when for name in space.names)
        return cls(values, space, conditional)

    def point(self, index: int) -> dict[str, Value]:
        if self._points is not None:
            return dict(self._points[index])
        chosen: dict[str, Value] = {}
        for name in reversed(self.names):
            index, digit = divmod(index, len(self.values[name]))
            chosen[name] = self.values[name][digit]
        return {name: chosen[name] for name in self.names}


def _enumerate(space: Space, values: Mapping[str, tuple[Value, ...]]) -> list[dict[str, Value]]:
    """Every valid combination, parents before children; an inactive parameter is left out."""
    names = space.names
    points: list[dict[str, Value]] = []
    params: dict[str, Value] = {}

    def walk(i: int) -> None:
        if i == len(names):
            if len(points) >= MAX_GRID_POINTS:
                raise SpaceError(
                    f"the grid has more than {MAX_GRID_POINTS} points; lower the resolution, "
                    "or use RandomSampler or QMCSampler"
                )
            points.append(dict(params))
            return
        name = names[i]
        if not space.is_active(name, params):
            walk(i + 1)
            return
        for value in values[name]:
            params[name] = value
            walk(i + 1)
        del params[name]

    walk(0)
    return points


def _discretise(name: str, dist: Distribution, resolution: int) -> tuple[Value, ...]:
    """The grid values of one parameter (see `GridSampler`)."""
    if isinstance(dist, Categorical):
        return dist.choices
    if isinstance(dist, Int):
        count = (dist.high - dist.low) // dist.step + 1
        if count <= resolution:
            return tuple(dist.low + k * dist.step for k in range(count))
        if dist.log:
            points = np.geomspace(dist.low, dist.high, resolution)
            return _unique(int(min(max(round(p), dist.low), dist.high)) for p in points)
        return _unique(dist.low + k * dist.step for k in _evenly(count, resolution))
    if isinstance(dist, Float):
        if dist.step is not None:
            count = round((dist.high - dist.low) / dist.step) + 1
            if count <= resolution:
                return tuple(dist.from_unit((k + 0.5) / count) for k in range(count))
            return _unique(dist.from_unit((k + 0.5) / count) for k in _evenly(count, resolution))
        units = np.linspace(0.0, 1.0, resolution) if resolution > 1 else [0.5]
        return _unique(_tidy(dist, dist.from_unit(float(u))) for u in units)
    raise SpaceError(
        f"parameter {name!r}: GridSampler cannot discretise {type(dist).__name__}; "
        "give its values explicitly"
    )


def _tidy(dist: Float, value: float) -> float:
    """``value`` rounded to 12 significant digits (1e-3, not 0.0010000000000000002),
    kept inside [low, high]."""
    rounded = float(f"{value:.12g}")
    return min(max(rounded, dist.low), dist.high)


def _evenly(count: int, resolution: int) -> list[int]:
    """``resolution`` evenly spaced indexes of 0..count-1 (both ends; the middle for 1)."""
    if resolution == 1:
        return [(count - 1) // 2]
    return [int(k) for k in np.round(np.linspace(0, count - 1, resolution))]


def _unique(values: Any) -> tuple[Value, ...]:
    return tuple(dict.fromkeys(values))


def _check_resolution(resolution: int | Mapping[str, int]) -> tuple[int, dict[str, int]]:
    """(default, per-name) resolutions, each an int >= 1."""
    if isinstance(resolution, Mapping):
        per_name = {str(name): _positive(value, name) for name, value in resolution.items()}
        return DEFAULT_RESOLUTION, per_name
    return _positive(resolution, None), {}


def _positive(value: object, name: object) -> int:
    what = "resolution" if name is None else f"resolution[{name!r}]"
    return check.integer(
        value, "resolution", "GridSampler", hint=" (points per parameter)", shown=what
    )
