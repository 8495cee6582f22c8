"""Scalar helpers shared by the distributions and `Space`: type-aware value keys,
number checks, and the normalised form of a parameter's condition (`when`)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

import numpy as np

from tuningfork._names import did_you_mean
from tuningfork.exceptions import SpaceError

Value: TypeAlias = str | int | float | bool | None
"""A parameter value; always JSON-serialisable."""

_Key = tuple[type, Any]
_Condition = tuple[str, Callable[[object], "_Key | None"], frozenset]

# A stepped Float must have (high - low) / step within this relative distance of an integer.
_STEP_TOLERANCE = 1e-9


# --------------------------------------------------------------------------- scalar helpers


def _choice_key(value: object) -> _Key | None:
    """Type-aware identity of a scalar: True, 1 and 1.0 get three different keys.

    numpy scalars map to the matching Python type; anything that is not a JSON scalar
    (str, int, float, bool, None) gives None.
    """
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return (kind, value)
    if isinstance(value, (bool, np.bool_)):
        return (bool, bool(value))
    if isinstance(value, str):
        return (str, str(value))
    if isinstance(value, numbers.Integral):
        return (int, int(value))
    if isinstance(value, numbers.Real):
        return (float, float(value))
    return None


def _numeric_key(value: object) -> _Key | None:
    """Condition key for a numeric parent: 2 and 2.0 match, True does not match 1."""
    key = _choice_key(value)
    if key is not None and (key[0] is int or key[0] is float):
        return (float, float(key[1]))
    return key


def _is_number(value: object) -> bool:
    """True for int and float values (numpy ones included), False for bools."""
    kind = type(value)
    if kind is float or kind is int:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _finite(value: object, what: str) -> float:
    """`value` as a finite float, or SpaceError naming `what`."""
    if not _is_number(value):
        raise SpaceError(f"{what} must be a number (not a bool or text), got {value!r}")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise SpaceError(f"{what} must be a finite number, got {value!r}")
    return number


def _integer(value: object, what: str) -> int:
    """`value` as an int (integral floats such as 8.0 are accepted), or SpaceError."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if _is_number(value) and float(value).is_integer():  # type: ignore[arg-type]
        return int(value)  # type: ignore[call-overload]
    raise SpaceError(f"{what} must be an integer (not a bool), got {value!r}")


def _flag(value: object, what: str) -> bool:
    """`value` as a bool, or SpaceError (text such as 'true' is refused)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise SpaceError(f"{what} must be True or False, got {value!r}")


def _decimals(number: float) -> int:
    """Decimal places in the shortest repr of `number` (0.1 -> 1, 1e-05 -> 5, 250.0 -> 0)."""
    mantissa, _, exponent = repr(number).partition("e")
    fraction = mantissa.partition(".")[2].rstrip("0")
    return max(0, len(fraction) - int(exponent or 0))


def _clip_unit(u: float) -> float:
    """Clip a unit value that fell outside [0, 1]; NaN is an error."""
    if u != u:
        raise SpaceError("unit value is NaN; expected a number in [0, 1]")
    return 0.0 if u < 0.0 else 1.0


def _did_you_mean(word: object, options: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest option, or ''."""
    suggestion = did_you_mean(word, options)
    return f" ({suggestion})" if suggestion else ""


def _normalise_when(when: object) -> dict[str, tuple[Value, ...]] | None:
    """{'parent': v} or {'parent': [v1, v2]} -> {'parent': (v1, v2)}; None or {} -> None."""
    if when is None:
        return None
    if not isinstance(when, Mapping):
        raise SpaceError(f"when must be a mapping {{parent: value or [values]}}, got {when!r}")
    normalised: dict[str, tuple[Value, ...]] = {}
    for parent, allowed in when.items():
        if not isinstance(parent, str) or not parent:
            raise SpaceError(f"when keys must be parameter names, got {parent!r}")
        values = tuple(allowed) if isinstance(allowed, (list, tuple)) else (allowed,)
        if not values:
            raise SpaceError(f"when[{parent!r}] is empty; list at least one value of {parent!r}")
        normalised[parent] = tuple(_condition_value(parent, value) for value in values)
    return normalised or None


def _condition_value(parent: str, value: object) -> Value:
    key = _choice_key(value)
    if key is None:
        raise SpaceError(
            f"when[{parent!r}] value {value!r} must be a str, int, float, bool or None"
        )
    return key[1]


def _when_key(when: dict[str, tuple[Value, ...]] | None) -> frozenset | None:
    """Hashable, order-insensitive, type-aware form of a condition (for == and hash)."""
    if not when:
        return None
    return frozenset(
        (parent, frozenset(_choice_key(value) for value in values))
        for parent, values in when.items()
    )
