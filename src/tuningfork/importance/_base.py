"""The evaluator interface and the helpers every evaluator shares: turning trials into an
encoded matrix (NaN where a parameter is inactive) and a vector of target values."""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence

import numpy as np

from tuningfork.exceptions import NotEnoughTrials, OptionError
from tuningfork.space import Categorical, Distribution, Float, Int, Space
from tuningfork.trial import FrozenTrial

__all__ = ["ImportanceEvaluator", "Target"]

Target = Callable[[FrozenTrial], float]
"""Maps a trial to the number whose importance is analysed (default: its single value)."""

_DIRECTIONS = ("minimize", "maximize")


class ImportanceEvaluator(abc.ABC):
    """Estimates how much each parameter of a space matters to a target.

    Subclasses implement `evaluate`; `tuningfork.importance.get_param_importances` collects
    a study's complete trials and their space, calls it, then sorts and normalises.
    """

    @abc.abstractmethod
    def evaluate(
        self,
        trials: list[FrozenTrial],
        space: Space,
        *,
        target: Target | None = None,
        direction: str = "minimize",
    ) -> dict[str, float]:
        """Raw, unnormalised importance (>= 0) of every parameter of `space`, in its order.

        Args:
            trials: finished trials to learn from (normally the COMPLETE ones). A parameter
                missing from a trial, or whose value the space's distribution does not hold,
                counts as inactive in that trial.
            space: the parameters to rate, with the distributions that give their ranges.
            target: the number to explain, ``target(trial)``; default ``trial.value``
                (single-objective trials). Trials whose target is not finite are ignored.
            direction: "minimize" or "maximize": which end of the target is good (only
                evaluators that look at the best trials, such as PED-ANOVA, use it).
        """


# --------------------------------------------------------------------------- shared helpers


def check_direction(direction: str) -> str:
    if direction not in _DIRECTIONS:
        raise OptionError(
            f"direction {direction!r} is not allowed; use 'minimize' or 'maximize'",
            option="direction",
            owner="get_param_importances",
        )
    return direction


def target_values(trials: Sequence[FrozenTrial], target: Target | None) -> np.ndarray:
    """The target of each trial as float64 (NaN where missing or not finite)."""
    out = np.full(len(trials), math.nan)
    for i, trial in enumerate(trials):
        if target is not None:
            raw: object = target(trial)
        else:
            if trial.values is None:
                continue
            if len(trial.values) != 1:
                raise OptionError(
                    f"trial {trial.number} has {len(trial.values)} objective values; pass "
                    "target=lambda t: t.values[0] (or another number) to say what to explain",
                    option="target",
                    owner="get_param_importances",
                )
            raw = trial.values[0]
        try:
            number = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError) as error:
            raise OptionError(
                f"target returned {raw!r} for trial {trial.number}; it must return a number",
                option="target",
                owner="get_param_importances",
            ) from error
        if math.isfinite(number):
            out[i] = number
    return out


def encode_trials(trials: Sequence[FrozenTrial], space: Space) -> np.ndarray:
    """(n_trials, n_params) unit-cube encoding (`Distribution.to_unit`), NaN if inactive."""
    matrix = np.full((len(trials), len(space)), math.nan)
    for j, (name, dist) in enumerate(space.items()):
        for i, trial in enumerate(trials):
            if name in trial.params:
                value = trial.params[name]
                if dist.contains(value):
                    matrix[i, j] = dist.to_unit(value)
    return matrix


def prepare(
    trials: Sequence[FrozenTrial], space: Space, target: Target | None
) -> tuple[np.ndarray, np.ndarray]:
    """Encoded parameters and targets of the trials whose target is finite."""
    y = target_values(trials, target)
    keep = np.isfinite(y)
    if int(keep.sum()) < 2:
        raise NotEnoughTrials(
            f"parameter importance needs at least 2 trials with a finite target, got "
            f"{int(keep.sum())}"
        )
    kept = [trial for trial, ok in zip(trials, keep) if ok]
    return encode_trials(kept, space), y[keep]


def unit_grid(dist: Distribution, max_points: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Unit-cube centres of a discrete distribution's values and the probability that the
    distribution's uniform (or log-uniform) sampling gives each; None for a continuous
    distribution or one with more than `max_points` values (then uniform on [0, 1] is
    exact up to the width of one cell)."""
    if isinstance(dist, Categorical):
        count = len(dist.choices)
        if count > max_points:
            return None
        centres = (np.arange(count) + 0.5) / count
        return centres, np.full(count, 1.0 / count)
    if isinstance(dist, Int):
        count = (dist.high - dist.low) // dist.step + 1
        if count > max_points:
            return None
        values = dist.low + dist.step * np.arange(count)
        if dist.log:
            edges = np.log(np.concatenate([values - 0.5, [values[-1] + 0.5]]))
            edges = (edges - edges[0]) / (edges[-1] - edges[0])
            return 0.5 * (edges[:-1] + edges[1:]), np.diff(edges)
        return (np.arange(count) + 0.5) / count, np.full(count, 1.0 / count)
    if isinstance(dist, Float) and dist.step is not None:
        count = round((dist.high - dist.low) / dist.step) + 1
        if count > max_points:
            return None
        return (np.arange(count) + 0.5) / count, np.full(count, 1.0 / count)
    return None
