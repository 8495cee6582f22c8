"""The data of the Pareto-front plot of a multi-objective study."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tuningfork._pareto import non_dominated
from tuningfork.exceptions import NothingToPlot, PlotOptionError
from tuningfork.viz._data_common import complete_trials

if TYPE_CHECKING:
    from tuningfork.study import Study


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
    # complete trials all have values
    values = np.array([[t.values[k] for k in chosen] for t in done], dtype=np.float64)  # type: ignore[index]
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
