"""Checks of the options given to public constructors and functions: each returns the value
(normalised) or raises `OptionError` (or the subclass given) naming the option, its owner,
the bad value and what is allowed."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from tuningfork.exceptions import OptionError


def integer(
    value: object,
    option: str,
    owner: str | None,
    *,
    minimum: int = 1,
    hint: str = "",
    shown: str | None = None,
    error: type[OptionError] = OptionError,
) -> int:
    """``value`` as an int, if it is a whole number type (int, numpy int; not bool) and at
    least ``minimum``; ``hint`` (e.g. " (points per parameter)") follows the rule, and
    ``shown`` names the value in the message where it is part of the option (``x[1]``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise error(
            f"{shown or option} must be an int >= {minimum}{hint}, got {value!r}",
            option=option,
            owner=owner,
        )
    return int(value)


def number(
    value: object,
    option: str,
    owner: str | None,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
    error: type[OptionError] = OptionError,
) -> float:
    """``value`` as a float, if it is a real number (not bool, not NaN) in the interval from
    ``low`` to ``high`` (closed unless ``low_open`` / ``high_open``)."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    # NaN fails every comparison below, so a non-number falls into the same error
    x = float(value) if real else math.nan  # type: ignore[arg-type]
    above = x > low if low_open else x >= low
    below = x < high if high_open else x <= high
    if not (above and below):
        rule = _interval(low, high, low_open, high_open)
        raise error(
            f"{option} must be a number{rule}{hint}, got {value!r}", option=option, owner=owner
        )
    return x


def flag(
    value: object, option: str, owner: str | None, *, error: type[OptionError] = OptionError
) -> bool:
    """``value`` if it is True or False (1, "yes" and None are not)."""
    if not isinstance(value, bool):
        raise error(f"{option} must be True or False, got {value!r}", option=option, owner=owner)
    return value


def choice(
    value: object,
    choices: Sequence[str],
    option: str,
    owner: str | None,
    *,
    error: type[OptionError] = OptionError,
) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise error(
            f"{option} must be one of {list(choices)}, got {value!r}", option=option, owner=owner
        )
    return value


def seed(value: object, owner: str | None, *, error: type[OptionError] = OptionError) -> int | None:
    """A ``seed=`` option: an int (numpy ints too, not bool) or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(
            f"seed must be an int or None (None draws one at random), got {value!r}",
            option="seed",
            owner=owner,
        )
    return int(value)


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    """ " in [0, 1]", " > 0", ... (empty for the whole line)."""
    if math.isinf(low) and math.isinf(high):
        return ""
    if math.isinf(high):
        return f" {'>' if low_open else '>='} {low:g}"
    if math.isinf(low):
        return f" {'<' if high_open else '<='} {high:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
