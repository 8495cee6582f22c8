"""PBT's explore step (Jaderberg et al. 2017, "Population Based Training of Neural
Networks", section 3): perturb a copied value by a factor, or resample it from its
distribution, always returning a value of the declared distribution."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from tuningfork.space import Categorical, Distribution, Float, Int, Value


def resample(dist: Distribution, rng: np.random.Generator) -> Value:
    """A value drawn from the distribution as declared (uniform, or log-uniform for a
    log scale; a uniform choice for a categorical)."""
    return dist.from_unit(float(rng.random()))


def perturb(
    value: Value,
    dist: Distribution,
    rng: np.random.Generator,
    factors: Sequence[float] = (0.8, 1.2),
    resample_probability: float = 0.25,
) -> Value:
    """PBT's "perturb": with probability ``resample_probability`` a fresh draw, else:

    * a number is multiplied by one of ``factors`` (chosen uniformly) when it is positive
      and its range has no negative values (log scales always); otherwise (0, or a range
      across zero, where a product would stay put or flip sign) it moves by
      ``factor - 1`` of its range's width. An int that the factor would leave where it is
      moves by one step in the factor's direction. The result is clipped to
      [low, high] and put on the step grid;
    * a categorical moves to a neighbouring choice (the previous one for a factor below 1,
      the next one above), clipped at the ends of the list of choices, as Ray Tune does.
    """
    if rng.random() < resample_probability:
        return resample(dist, rng)
    factor = float(factors[int(rng.integers(len(factors)))])
    if isinstance(dist, Categorical):
        index = dist.index(value) + (1 if factor > 1 else -1)
        return dist.choices[min(max(index, 0), len(dist.choices) - 1)]
    if isinstance(dist, (Float, Int)):
        return _scale(value, dist, factor)
    return value  # an unknown kind of distribution: keep the value (it is legal)


def explore(
    params: Mapping[str, Value],
    dists: Mapping[str, Distribution],
    names: Sequence[str],
    rng: np.random.Generator,
    *,
    mode: str,
    factors: Sequence[float],
    resample_probability: float,
) -> dict[str, Value]:
    """New values for ``names`` (the others are kept): ``mode`` "perturb" or "resample"."""
    result = dict(params)
    for name in names:
        dist = dists[name]
        if mode == "resample":
            result[name] = resample(dist, rng)
        else:
            result[name] = perturb(params[name], dist, rng, factors, resample_probability)
    return result


def _scale(value: Value, dist: Float | Int, factor: float) -> Value:
    number = float(value)  # type: ignore[arg-type]
    if dist.log or (dist.low >= 0 and number > 0):
        moved = number * factor  # multiplicative, as in Jaderberg et al.
    else:  # 0 or a range across zero: a product would stay put or flip sign
        moved = number + (factor - 1.0) * (dist.high - dist.low)
    if isinstance(dist, Int):
        whole = int(round(moved))
        if whole == int(number) and dist.high > dist.low:  # too small to move an int
            whole += dist.step if factor > 1 else -dist.step
        return _on_int_grid(whole, dist)
    return _on_float_grid(moved, dist)


def _on_int_grid(value: int, dist: Int) -> int:
    value = min(max(value, dist.low), dist.high)
    k = round((value - dist.low) / dist.step)
    return int(min(dist.low + k * dist.step, dist.high))


def _on_float_grid(value: float, dist: Float) -> float:
    if not math.isfinite(value):
        value = dist.high if value > 0 else dist.low
    value = min(max(value, dist.low), dist.high)
    if dist.step is not None:
        return dist.from_unit(dist.to_unit(value))  # the nearest grid point
    return value
