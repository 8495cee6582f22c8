"""`GPSampler`'s encoding of a space's configurations as vectors: numbers through the unit
interval, grids by cell, categoricals by the index of the choice."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from tuningfork.space import Categorical, Float, Int, Space, Value

_CONTINUOUS, _GRID, _CATEGORICAL = 0, 1, 2
# a grid with more values than this is relaxed to a continuous input during L-BFGS-B (and
# rounded after); a smaller one is searched value by value
_EXHAUSTIVE_GRID = 16


class _Encoding:
    """A space's configurations as vectors: numbers through ``to_unit``, categoricals as
    the index of the choice (an extra index for "inactive" in a conditional space)."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.names = space.names
        self.dists = [space[name] for name in self.names]
        self.dims = len(self.names)
        self.kind = np.zeros(self.dims, dtype=np.int64)
        self.count = np.zeros(self.dims, dtype=np.int64)
        self.inactive = np.full(self.dims, 0.5)
        self.conditional = any(dist.when for dist in self.dists)
        self._log_int: dict[int, tuple[float, float, int, int]] = {}
        for i, dist in enumerate(self.dists):
            if isinstance(dist, Categorical):
                self.kind[i] = _CATEGORICAL
                self.count[i] = len(dist.choices)
                self.inactive[i] = len(dist.choices)
            elif isinstance(dist, Int):
                self.kind[i] = _GRID
                self.count[i] = (dist.high - dist.low) // dist.step + 1
                if dist.log:
                    origin = math.log(dist.low - 0.5)
                    width = math.log(dist.high + 0.5) - origin
                    self._log_int[i] = (origin, width, dist.low, dist.high)
            elif isinstance(dist, Float) and dist.step is not None:
                self.kind[i] = _GRID
                self.count[i] = round((dist.high - dist.low) / dist.step) + 1
        self.categorical = self.kind == _CATEGORICAL
        self.parents = np.zeros(self.dims, dtype=bool)
        self._conditions: list[list[tuple[int, np.ndarray]]] = []
        self._position = {name: i for i, name in enumerate(self.names)}
        for dist in self.dists:
            conditions = []
            for parent, values in (dist.when or {}).items():
                p = self._position[parent]
                self.parents[p] = True
                conditions.append((p, self._encoded_values(p, values)))
            self._conditions.append(conditions)

    def _encoded_values(self, i: int, values: tuple[Value, ...]) -> np.ndarray:
        dist = self.dists[i]
        legal = [value for value in values if dist.contains(value)]
        if isinstance(dist, Categorical):
            return np.array([dist.index(value) for value in legal], dtype=np.float64)
        return np.array([dist.to_unit(value) for value in legal], dtype=np.float64)

    # -- rows ------------------------------------------------------------------------

    def encode(self, params: Mapping[str, Value]) -> np.ndarray | None:
        """The vector of a configuration, or None when it does not fit the space (an
        active parameter missing or out of range)."""
        row = self.inactive.copy()
        indices: Iterable[int] = range(self.dims)
        if self.conditional:
            indices = [self._position[name] for name in self.space.active_names(params)]
        for i in indices:
            if not self._set(row, i, params):
                return None
        return row

    def _set(self, row: np.ndarray, i: int, params: Mapping[str, Value]) -> bool:
        name, dist = self.names[i], self.dists[i]
        if name not in params or not dist.contains(params[name]):
            return False
        value = params[name]
        row[i] = dist.index(value) if isinstance(dist, Categorical) else dist.to_unit(value)
        return True

    def fixed_row(self, fixed: Mapping[str, Value]) -> np.ndarray:
        """NaN for free inputs, the encoded value for fixed ones."""
        row = np.full(self.dims, np.nan)
        for i, name in enumerate(self.names):
            if name in fixed and self.dists[i].contains(fixed[name]):
                self._set(row, i, fixed)
        return row

    def decode(self, row: np.ndarray, fixed: Mapping[str, Value]) -> dict[str, Value]:
        """The configuration of a vector, active parameters only; fixed values kept."""
        params: dict[str, Value] = {}
        for i, name in enumerate(self.names):
            if self.conditional and not self.space.is_active(name, params):
                continue
            if name in fixed:
                params[name] = fixed[name]
                continue
            dist = self.dists[i]
            if isinstance(dist, Categorical):
                index = int(np.clip(round(row[i]), 0, len(dist.choices) - 1))
                params[name] = dist.choices[index]
            else:
                params[name] = dist.from_unit(float(np.clip(row[i], 0.0, 1.0)))
        return params

    # -- vectorised moves --------------------------------------------------------------

    def from_cube(self, u: np.ndarray) -> np.ndarray:
        """Legal vectors from points of [0, 1)^d (a categorical takes floor(u * n))."""
        x = u.copy()
        for i in np.flatnonzero(self.categorical):
            x[:, i] = np.minimum(np.floor(u[:, i] * self.count[i]), self.count[i] - 1)
        return self.round(x)

    def round(self, x: np.ndarray) -> np.ndarray:
        """Inputs clipped to [0, 1], grid inputs moved to the centre of their cell."""
        for i in np.flatnonzero(~self.categorical).tolist():
            x[:, i] = np.clip(x[:, i], 0.0, 1.0)
            if self.kind[i] == _GRID:
                x[:, i] = self._centre(i, self._cell(i, x[:, i]))
        return x

    def _cell(self, i: int, u: np.ndarray) -> np.ndarray:
        """Grid input i: the value index (log ints: the value itself) whose cell holds u."""
        if i in self._log_int:
            origin, width, low, high = self._log_int[i]
            return np.clip(np.floor(np.exp(origin + u * width) + 0.5), low, high)
        return np.clip(np.floor(u * self.count[i]), 0, self.count[i] - 1)

    def _centre(self, i: int, cell: np.ndarray) -> np.ndarray:
        """Inverse of `_cell`: the unit value at the centre of a cell (as ``to_unit``)."""
        if i in self._log_int:
            origin, width, _, _ = self._log_int[i]
            return (0.5 * (np.log(cell - 0.5) + np.log(cell + 0.5)) - origin) / width
        return (cell + 0.5) / self.count[i]

    def centres(self, i: int) -> np.ndarray:
        """Every legal unit value of grid input i."""
        if i in self._log_int:
            _, _, low, high = self._log_int[i]
            return self._centre(i, np.arange(low, high + 1, dtype=np.float64))
        return self._centre(i, np.arange(self.count[i], dtype=np.float64))

    def shift(self, i: int, u: np.ndarray, step: int) -> np.ndarray:
        """Grid input i moved ``step`` cells (clipped at the ends)."""
        cell = self._cell(i, u) + step
        if i in self._log_int:
            _, _, low, high = self._log_int[i]
            return self._centre(i, np.clip(cell, low, high))
        return self._centre(i, np.clip(cell, 0, self.count[i] - 1))

    def canonical(self, x: np.ndarray) -> np.ndarray:
        """Set inactive inputs to their fixed encoding in place; returns the active mask."""
        active = np.ones(x.shape, dtype=bool)
        if not self.conditional:
            return active
        for i, conditions in enumerate(self._conditions):
            for parent, allowed in conditions:
                matches = np.any(np.abs(x[:, parent, None] - allowed[None, :]) < 1e-9, axis=1)
                active[:, i] &= active[:, parent] & matches
            x[~active[:, i], i] = self.inactive[i]
        return active
