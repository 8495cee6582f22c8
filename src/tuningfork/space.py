"""Search spaces: Float, Int and Categorical distributions, conditions, and `Space`.

Every distribution maps its legal values to and from the unit interval [0, 1], so samplers
can work in a unit cube; a `Space` orders parameters (parents before children), checks
whole configurations and encodes them as vectors (index or one-hot encoding).
"""

from __future__ import annotations

import heapq
import math
import numbers
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import yaml

from tuningfork._names import did_you_mean
from tuningfork.exceptions import ParameterConflict, SpaceError

__all__ = [
    "Categorical",
    "Distribution",
    "Float",
    "Int",
    "Space",
    "Value",
    "distribution_from_json",
]

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


# --------------------------------------------------------------------------- distributions


class Distribution:
    """Base class of the parameter distributions (Float, Int, Categorical).

    `when`, if set, is the parameter's condition: it is active only when every named
    parent parameter takes one of the listed values. Distributions are immutable by
    convention; treat their attributes as read-only.
    """

    __slots__ = ("when", "_json_memo")
    _type_name = ""

    when: dict[str, tuple[Value, ...]] | None

    def __init__(self, when: Mapping[str, Any] | None = None) -> None:
        self.when = _normalise_when(when)
        self._json_memo: dict[str, Any] | None = None

    def contains(self, value: object) -> bool:
        """Whether `value` is legal: right type, in range and on the step grid."""
        raise NotImplementedError

    def to_unit(self, value: Value) -> float:
        """Map a legal value to [0, 1] (the inverse of `from_unit`)."""
        raise NotImplementedError

    def from_unit(self, u: float) -> Value:
        """Map u in [0, 1] (clipped if outside) to a legal value."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """Plain JSON dict with "type", the fields, and "when" when a condition is set."""
        return dict(self._json())

    def _json(self) -> dict[str, Any]:
        # computed once: distributions are immutable, and this is on the hot path
        if self._json_memo is None:
            data: dict[str, Any] = {"type": self._type_name, **self._json_fields()}
            if self.when:
                data["when"] = {parent: list(values) for parent, values in self.when.items()}
            self._json_memo = data
        return self._json_memo

    def same_as(self, other: Distribution) -> bool:
        """Equality ignoring `when` (used for define-by-run conflict checks)."""
        return type(self) is type(other) and self._fields() == other._fields()

    def label(self) -> str:
        """Short human text, e.g. "Float(0.001, 0.1, log=True)"."""
        return f"{type(self).__name__}({', '.join(self._label_args())})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Distribution):
            return NotImplemented
        return self.same_as(other) and _when_key(self.when) == _when_key(other.when)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._fields(), _when_key(self.when)))

    def __repr__(self) -> str:
        args = self._label_args()
        if self.when:
            args.append(f"when={self.when!r}")
        return f"{type(self).__name__}({', '.join(args)})"

    # Subclass hooks -----------------------------------------------------------------------

    def _fields(self) -> tuple:
        raise NotImplementedError

    def _json_fields(self) -> dict[str, Any]:
        raise NotImplementedError

    def _label_args(self) -> list[str]:
        raise NotImplementedError

    def _expected(self) -> str:
        """What a legal value looks like, for error messages."""
        raise NotImplementedError

    def _condition_key(self, value: object) -> _Key | None:
        """Key used to compare a value of this parameter with a child's condition."""
        return _numeric_key(value)


class _Range(Distribution):
    """Shared fields of Float and Int: bounds, log scale and step."""

    __slots__ = ("low", "high", "log", "step")

    def _fields(self) -> tuple:
        return (self.low, self.high, self.log, self.step)

    def _json_fields(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log, "step": self.step}


class Float(_Range):
    """A real number in [low, high] (both inclusive; low == high fixes it at that value).

    `log=True` samples uniformly in log space (needs low > 0). `step` restricts values to
    the grid low + k*step (step must divide high - low); log and step cannot be combined.
    In the unit cube a continuous Float maps linearly (or log-linearly) onto [0, 1]; a
    stepped Float, like Int, gives each of its n grid points a cell of width 1/n and maps a
    value to the centre of its cell, so uniform u gives uniform grid points.
    """

    __slots__ = ("_origin", "_width", "_count", "_digits", "_tol")
    _type_name = "float"

    low: float
    high: float
    log: bool
    step: float | None

    def __init__(
        self,
        low: float,
        high: float,
        *,
        log: bool = False,
        step: float | None = None,
        when: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(when)
        self.low = _finite(low, "low")
        self.high = _finite(high, "high")
        self.log = _flag(log, "log")
        self.step = None if step is None else _finite(step, "step")
        _check_range(self.low, self.high)
        self._origin = self._width = 0.0
        self._count = self._digits = 0
        self._tol = 0.0
        if self.log:
            self._init_log()
        else:
            self._origin, self._width = self.low, self.high - self.low
        if self.step is not None:
            self._init_step(self.step)

    def _init_log(self) -> None:
        if self.step is not None:
            raise SpaceError("log=True and step cannot be used together; choose one")
        if self.low <= 0:
            raise SpaceError(
                f"log=True needs low > 0, got low={self.low!r}; use a positive low or log=False"
            )
        self._origin = math.log(self.low)
        self._width = math.log(self.high) - self._origin

    def _init_step(self, step: float) -> None:
        if step <= 0:
            raise SpaceError(f"step must be > 0, got step={step!r}")
        span = self.high - self.low
        ratio = span / step
        count = round(ratio)
        self._digits = max(_decimals(self.low), _decimals(step))
        if (count < 1 and span > 0) or abs(ratio - count) > _STEP_TOLERANCE * max(1.0, ratio):
            below = round(self.low + max(1, math.floor(ratio)) * step, self._digits)
            raise SpaceError(
                f"step={step!r} does not divide high - low = {span!r}; "
                f"use a step that divides it or a high on the grid such as high={below!r}"
            )
        self._count = count + 1
        self._tol = _STEP_TOLERANCE * step + 1e-15 * max(abs(self.low), abs(self.high))

    def contains(self, value: object) -> bool:
        """Int or float (not bool), finite, in [low, high], and on the grid if stepped."""
        kind = type(value)
        if kind is not float and kind is not int and not _is_number(value):
            return False
        number = float(value)  # type: ignore[arg-type]
        if not self.low <= number <= self.high:  # also rejects NaN
            return False
        if self.step is None:
            return True
        k = round((number - self.low) / self.step)
        return abs(number - (self.low + k * self.step)) <= self._tol

    def to_unit(self, value: Value) -> float:
        """Linear: (v - low) / (high - low); log: the same in log space; stepped: cell centre."""
        number = float(value)  # type: ignore[arg-type]
        if self.step is not None:
            return (round((number - self.low) / self.step) + 0.5) / self._count
        if self._width == 0.0:  # a constant: the centre of the cube
            return 0.5
        if self.log:
            return (math.log(number) - self._origin) / self._width
        return (number - self.low) / self._width

    def from_unit(self, u: float) -> float:
        """Inverse of `to_unit`; stepped values are exact grid points such as 0.3."""
        if not 0.0 <= u <= 1.0:
            u = _clip_unit(u)
        if self.step is not None:
            k = int(u * self._count)
            return self._grid_point(k if k < self._count else self._count - 1)
        if u <= 0.0 or u >= 1.0:  # exact end points (exp(log(low)) may miss low by an ulp)
            return self.low if u <= 0.0 else self.high
        if self.log:
            number = math.exp(self._origin + u * self._width)
        else:
            number = self._origin + u * self._width
        return self.low if number < self.low else (self.high if number > self.high else number)

    def _grid_point(self, k: int) -> float:
        """low + k*step, rounded to the decimals of low and step to remove float noise."""
        number = round(self.low + k * self.step, self._digits)  # type: ignore[operator]
        return self.low if number < self.low else (self.high if number > self.high else number)

    def _label_args(self) -> list[str]:
        args = [repr(self.low), repr(self.high)]
        if self.log:
            args.append("log=True")
        if self.step is not None:
            args.append(f"step={self.step!r}")
        return args

    def _expected(self) -> str:
        text = f"a float in [{self.low!r}, {self.high!r}]"
        if self.step is not None:
            text += f" on the grid {self.low!r} + k*{self.step!r}"
        return text


class Int(_Range):
    """An integer in [low, high] (both inclusive; low == high fixes it) on the grid
    low + k*step (default step 1).

    In the unit cube each of the n legal values owns a cell of width 1/n, so uniform u gives
    uniform values. `log=True` (needs low >= 1 and step 1) maps u log-uniformly onto
    [low - 0.5, high + 0.5] and rounds. `to_unit` gives the centre of the value's cell.
    """

    __slots__ = ("_count", "_origin", "_width")
    _type_name = "int"

    low: int
    high: int
    log: bool
    step: int

    def __init__(
        self,
        low: int,
        high: int,
        *,
        log: bool = False,
        step: int = 1,
        when: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(when)
        self.low = _integer(low, "low")
        self.high = _integer(high, "high")
        self.log = _flag(log, "log")
        self.step = _integer(step, "step")
        _check_range(self.low, self.high)
        self._check_step()
        self._count = (self.high - self.low) // self.step + 1
        self._origin = self._width = 0.0
        if self.log:
            self._init_log()

    def _check_step(self) -> None:
        if self.step <= 0:
            raise SpaceError(f"step must be > 0, got step={self.step!r}")
        span = self.high - self.low
        if span % self.step:
            below = self.low + span // self.step * self.step
            raise SpaceError(
                f"step={self.step!r} does not divide high - low = {span!r}; "
                f"use high={below!r} or high={below + self.step!r}"
            )

    def _init_log(self) -> None:
        if self.step != 1:
            raise SpaceError(f"log=True needs step=1, got step={self.step!r}; choose one")
        if self.low < 1:
            raise SpaceError(f"log=True needs low >= 1, got low={self.low!r}; raise low")
        self._origin = math.log(self.low - 0.5)
        self._width = math.log(self.high + 0.5) - self._origin

    def contains(self, value: object) -> bool:
        """An int (numpy ints too, never a bool or a float) in [low, high] on the grid."""
        if type(value) is not int:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
                return False
            value = int(value)
        return self.low <= value <= self.high and (value - self.low) % self.step == 0

    def to_unit(self, value: Value) -> float:
        """Centre of the value's cell (in log space when log=True)."""
        if self.log:
            centre = 0.5 * (math.log(value - 0.5) + math.log(value + 0.5))  # type: ignore[operator]
            return (centre - self._origin) / self._width
        return ((value - self.low) / self.step + 0.5) / self._count  # type: ignore[operator]

    def from_unit(self, u: float) -> int:
        """The value whose cell holds u (u clipped to [0, 1])."""
        if not 0.0 <= u <= 1.0:
            u = _clip_unit(u)
        if self.log:
            value = math.floor(math.exp(self._origin + u * self._width) + 0.5)
            return self.low if value < self.low else (self.high if value > self.high else value)
        k = int(u * self._count)
        return self.low + (k if k < self._count else self._count - 1) * self.step

    def _label_args(self) -> list[str]:
        args = [repr(self.low), repr(self.high)]
        if self.log:
            args.append("log=True")
        if self.step != 1:
            args.append(f"step={self.step!r}")
        return args

    def _expected(self) -> str:
        text = f"an int (not a bool) in [{self.low!r}, {self.high!r}]"
        if self.step != 1:
            text += f" on the grid {self.low!r} + k*{self.step!r}"
        return text


class Categorical(Distribution):
    """One of a fixed, ordered tuple of JSON scalars (str, int, float, bool or None).

    Comparison is type-aware: True, 1 and 1.0 are three different choices. In the unit
    cube, choice i of n owns the cell [i/n, (i+1)/n) and maps to its centre (i + 0.5)/n.
    """

    __slots__ = ("choices", "_index", "_count")
    _type_name = "categorical"

    choices: tuple[Value, ...]

    def __init__(self, choices: Sequence[Value], *, when: Mapping[str, Any] | None = None) -> None:
        super().__init__(when)
        if isinstance(choices, (str, bytes, Mapping, set, frozenset)) or not isinstance(
            choices, Iterable
        ):
            raise SpaceError(f"choices must be a list of values, got {choices!r}")
        self._index: dict[_Key, int] = {}
        for choice in choices:
            self._add_choice(choice)
        if not self._index:
            raise SpaceError("choices is empty; give at least one choice")
        self.choices = tuple(key[1] for key in self._index)
        self._count = len(self.choices)

    def _add_choice(self, choice: object) -> None:
        key = _choice_key(choice)
        if key is None:
            raise SpaceError(
                f"choice {choice!r} has type {type(choice).__name__}; choices must be "
                "str, int, float, bool or None (JSON scalars)"
            )
        if key[0] is float and not math.isfinite(key[1]):
            raise SpaceError(f"choice {choice!r} is not finite; use a finite number or a string")
        if key in self._index:
            raise SpaceError(f"duplicate choice {choice!r}; list each choice once")
        self._index[key] = len(self._index)

    def index(self, value: object) -> int:
        """Position of `value` in `choices` (type-aware), or SpaceError."""
        position = self._index.get(_choice_key(value))  # type: ignore[arg-type]
        if position is None:
            raise SpaceError(f"{value!r} is not one of the choices {list(self.choices)!r}")
        return position

    def contains(self, value: object) -> bool:
        """Whether `value` is one of the choices (type-aware: True is not 1)."""
        return _choice_key(value) in self._index

    def to_unit(self, value: Value) -> float:
        """(index + 0.5) / n."""
        return (self.index(value) + 0.5) / self._count

    def from_unit(self, u: float) -> Value:
        """choices[min(int(u * n), n - 1)]."""
        if not 0.0 <= u <= 1.0:
            u = _clip_unit(u)
        k = int(u * self._count)
        return self.choices[k if k < self._count else self._count - 1]

    def _fields(self) -> tuple:
        return tuple(self._index)

    def _json_fields(self) -> dict[str, Any]:
        return {"choices": list(self.choices)}

    def _label_args(self) -> list[str]:
        return [repr(list(self.choices))]

    def _expected(self) -> str:
        return f"one of {list(self.choices)!r}"

    def _condition_key(self, value: object) -> _Key | None:
        return _choice_key(value)


def _check_range(low: float, high: float) -> None:
    """low <= high; low == high is a constant (a range narrowed to one value)."""
    if not low <= high:
        raise SpaceError(
            f"low must be <= high, got low={low!r}, high={high!r}; swap them (low == high "
            "fixes the parameter at that value)"
        )


# --------------------------------------------------------------------------- parsing

_KEYS: dict[str, tuple[str, ...]] = {
    "float": ("type", "low", "high", "log", "step", "when"),
    "int": ("type", "low", "high", "log", "step", "when"),
    "categorical": ("type", "choices", "when"),
}


def distribution_from_json(data: Mapping[str, Any]) -> Distribution:
    """Inverse of `Distribution.to_json`; SpaceError on bad data."""
    if not isinstance(data, Mapping) or "type" not in data:
        raise SpaceError(
            f"expected a distribution dict with a 'type' key (as written by to_json), got {data!r}"
        )
    return _parse_spec(data)


def _parse_spec(spec: object) -> Distribution:
    """A Distribution, a list of choices, or a dict spec such as {'type': 'int', ...}."""
    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, (list, tuple)):
        return Categorical(spec)
    if not isinstance(spec, Mapping):
        raise SpaceError(
            "expected a mapping such as {'type': 'float', 'low': 0.0, 'high': 1.0}, "
            f"a list of choices or a Distribution, got {spec!r}"
        )
    kind = _spec_type(spec)
    _check_keys(spec, kind)
    when = spec.get("when")
    if kind == "categorical":
        return Categorical(_required(spec, "choices", kind), when=when)
    low = _number(_required(spec, "low", kind), "low")
    high = _number(_required(spec, "high", kind), "high")
    log = spec.get("log", False)
    step = spec.get("step")
    step = None if step is None else _number(step, "step")
    if kind == "float":
        return Float(low, high, log=log, step=step, when=when)  # type: ignore[arg-type]
    return Int(low, high, log=log, step=1 if step is None else step, when=when)  # type: ignore[arg-type]


def _spec_type(spec: Mapping[str, Any]) -> str:
    kind = spec.get("type", "categorical" if "choices" in spec else None)
    if kind is None:
        raise SpaceError(f"missing key 'type'; use one of {list(_KEYS)}")
    if not isinstance(kind, str) or kind not in _KEYS:
        raise SpaceError(
            f"unknown type {kind!r}{_did_you_mean(kind, _KEYS)}; use one of {list(_KEYS)}"
        )
    return kind


def _check_keys(spec: Mapping[str, Any], kind: str) -> None:
    allowed = _KEYS[kind]
    for key in spec:
        if key not in allowed:
            raise SpaceError(
                f"unknown key {key!r}{_did_you_mean(key, allowed)} for type {kind!r}; "
                f"allowed keys: {list(allowed)}"
            )


def _required(spec: Mapping[str, Any], key: str, kind: str) -> Any:
    if key not in spec:
        raise SpaceError(f"missing key {key!r} for type {kind!r}")
    return spec[key]


def _number(value: object, what: str) -> object:
    """Numeric text (YAML reads 1e-5 as a string) -> float; other values pass through."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise SpaceError(f"{what} must be a number, got {value!r}") from None
    return value


# --------------------------------------------------------------------------- Space


class Space(Mapping[str, Distribution]):
    """An ordered mapping of parameter name -> Distribution, with conditions.

    `names` lists parents before children (topological order), otherwise the declaration
    order; iteration, `encode` and `decode` all follow it.
    """

    __slots__ = ("_params", "_conditions", "_offsets", "_onehot_dims")

    def __init__(
        self, params: Mapping[str, Distribution] | None = None, **kwargs: Distribution
    ) -> None:
        declared = _collect(params, kwargs)
        _check_conditions(declared)
        self._params = {name: declared[name] for name in _topological_order(declared)}
        self._conditions = {
            name: _compile(dist, self._params) for name, dist in self._params.items()
        }
        self._offsets: list[int] = []
        width = 0
        for dist in self._params.values():
            self._offsets.append(width)
            width += len(dist.choices) if isinstance(dist, Categorical) else 1
        self._onehot_dims = width

    # Construction from data ---------------------------------------------------------------

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> Space:
        """Build from a plain dict (the YAML study-file format), name -> spec.

        A spec is {'type': 'float'|'int'|'categorical', ...}, a list of choices, or a
        Distribution; any of the dict forms may carry "when".
        """
        if not isinstance(mapping, Mapping):
            raise SpaceError(f"a space must be a mapping of name -> spec, got {mapping!r}")
        params: dict[str, Distribution] = {}
        for name, spec in mapping.items():
            if not isinstance(name, str) or not name:
                raise SpaceError(f"parameter names must be non-empty strings, got {name!r}")
            try:
                params[name] = _parse_spec(spec)
            except SpaceError as error:
                raise _named(name, error) from error
        return cls(params)

    @classmethod
    def from_yaml(cls, text_or_path: str | os.PathLike[str]) -> Space:
        """Build from YAML text or a YAML file (a path object, or a string naming a file)."""
        text = _read_yaml_source(text_or_path)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise SpaceError(f"invalid YAML in the space: {error}") from error
        if isinstance(data, str) and "\n" not in text.strip():
            raise SpaceError(f"no space file named {text!r}, and the text is not a YAML mapping")
        return cls.from_dict({} if data is None else data)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """JSON-able dict name -> spec; round-trips through `from_dict`."""
        return {name: dist.to_json() for name, dist in self._params.items()}

    # Mapping protocol ---------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names, parents before children, otherwise in declaration order."""
        return tuple(self._params)

    @property
    def dims(self) -> int:
        """Width of the index encoding: one column per parameter."""
        return len(self._params)

    def onehot_dims(self) -> int:
        """Width of the one-hot encoding: len(choices) per categorical, 1 per number."""
        return self._onehot_dims

    def __getitem__(self, name: str) -> Distribution:
        return self._params[name]

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        return list(self._params.items()) == list(other._params.items())

    def __hash__(self) -> int:
        return hash(tuple(self._params.items()))

    def __repr__(self) -> str:
        body = ", ".join(f"{name!r}: {dist!r}" for name, dist in self._params.items())
        return f"Space({{{body}}})"

    # Conditions ---------------------------------------------------------------------------

    def is_active(self, name: str, params: Mapping[str, Value]) -> bool:
        """Whether `name` is active: its parents are active and take allowed values."""
        if name not in self._params:
            raise self._unknown(name)
        for parent, key_of, allowed in self._conditions[name]:
            if parent not in params or key_of(params[parent]) not in allowed:
                return False
            if not self.is_active(parent, params):
                return False
        return True

    def active_names(self, params: Mapping[str, Value]) -> list[str]:
        """The active parameters for `params`, in `names` order."""
        active: dict[str, None] = {}
        for name in self._params:
            if self._holds(name, params, active):
                active[name] = None
        return list(active)

    def validate(self, params: Mapping[str, Value]) -> None:
        """SpaceError on an unknown name, a missing active or a present inactive parameter,
        or an illegal value (the message names the parameter and its legal values)."""
        self._check(params)

    # Encoding -----------------------------------------------------------------------------

    def encode(self, params: Mapping[str, Value], *, onehot: bool = False) -> np.ndarray:
        """Validate `params` and encode them as a float64 vector.

        Index encoding: one column per parameter (`to_unit`), NaN when inactive. One-hot
        encoding: a categorical expands to len(choices) columns of 0/1 (all 0 when inactive);
        numbers keep one column (NaN when inactive).
        """
        active = self._check(params)
        if not onehot:
            return np.array(
                [
                    dist.to_unit(params[name]) if name in active else math.nan
                    for name, dist in self._params.items()
                ],
                dtype=np.float64,
            )
        vector = np.zeros(self._onehot_dims, dtype=np.float64)
        for (name, dist), offset in zip(self._params.items(), self._offsets):
            if isinstance(dist, Categorical):
                if name in active:
                    vector[offset + dist.index(params[name])] = 1.0
            else:
                vector[offset] = dist.to_unit(params[name]) if name in active else math.nan
        return vector

    def decode(self, u: Sequence[float] | np.ndarray, *, onehot: bool = False) -> dict[str, Value]:
        """Vector -> configuration holding only the active parameters, in `names` order.

        Values of inactive parameters are ignored (NaN is fine there); a one-hot block
        decodes to the choice with the largest entry (the first on ties).
        """
        values = self._vector(u, self._onehot_dims if onehot else self.dims, onehot)
        offsets = self._offsets if onehot else range(self.dims)
        decoded: dict[str, Value] = {}
        for (name, dist), offset in zip(self._params.items(), offsets):
            if not self._holds(name, decoded, decoded):
                continue
            if onehot and isinstance(dist, Categorical):
                decoded[name] = self._decode_block(name, dist, values, offset)
            else:
                decoded[name] = dist.from_unit(self._unit(name, values[offset]))
        return decoded

    # Private helpers ----------------------------------------------------------------------

    def _holds(self, name: str, params: Mapping[str, Value], active: Mapping[str, object]) -> bool:
        """Whether `name`'s condition holds, given the names already known to be active."""
        for parent, key_of, allowed in self._conditions[name]:
            if parent not in active or parent not in params:
                return False
            if key_of(params[parent]) not in allowed:
                return False
        return True

    def _check(self, params: Mapping[str, Value]) -> dict[str, None]:
        """validate(), returning the active names."""
        if not isinstance(params, Mapping):
            raise SpaceError(f"expected a mapping of parameter name -> value, got {params!r}")
        for name in params:
            if name not in self._params:
                raise self._unknown(name)
        active: dict[str, None] = {}
        for name, dist in self._params.items():
            if self._holds(name, params, active):
                self._check_value(name, dist, params)
                active[name] = None
            elif name in params:
                reason = self._why_inactive(name, params, active)
                raise SpaceError(
                    f"parameter {name!r} is inactive here ({reason}) but has a value; remove it",
                    parameter=name,
                )
        return active

    @staticmethod
    def _check_value(name: str, dist: Distribution, params: Mapping[str, Value]) -> None:
        if name not in params:
            raise SpaceError(
                f"parameter {name!r} is active but has no value; give it {dist._expected()}",
                parameter=name,
            )
        if not dist.contains(params[name]):
            raise SpaceError(
                f"parameter {name!r}: {params[name]!r} is not a legal value; "
                f"expected {dist._expected()}",
                parameter=name,
            )

    def _why_inactive(
        self, name: str, params: Mapping[str, Value], active: Mapping[str, object]
    ) -> str:
        when = self._params[name].when or {}
        for parent, key_of, allowed in self._conditions[name]:
            if parent not in active:
                return f"its parent {parent!r} is inactive"
            if parent not in params:
                return f"its parent {parent!r} has no value"
            if key_of(params[parent]) not in allowed:
                return f"it needs {parent!r} in {list(when[parent])!r}, got {params[parent]!r}"
        return "its condition does not hold"

    def _unknown(self, name: object) -> SpaceError:
        return SpaceError(
            f"unknown parameter {name!r}{_did_you_mean(name, self._params)}; "
            f"the space has {list(self._params)!r}"
        )

    @staticmethod
    def _vector(u: Sequence[float] | np.ndarray, width: int, onehot: bool) -> list[float]:
        try:
            vector = np.asarray(u, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise SpaceError(f"expected a vector of {width} numbers, got {u!r}") from error
        if vector.shape != (width,):
            encoding = "one-hot" if onehot else "index"
            raise SpaceError(
                f"expected a vector of {width} numbers ({encoding} encoding), "
                f"got shape {vector.shape}"
            )
        return vector.tolist()

    @staticmethod
    def _unit(name: str, u: float) -> float:
        if u != u:
            raise SpaceError(
                f"parameter {name!r} is active but its encoded value is NaN", parameter=name
            )
        return u

    @staticmethod
    def _decode_block(name: str, dist: Categorical, values: list[float], offset: int) -> Value:
        block = values[offset : offset + len(dist.choices)]
        if any(x != x for x in block):
            raise SpaceError(
                f"parameter {name!r} is active but its one-hot block holds NaN", parameter=name
            )
        return dist.choices[block.index(max(block))]


def _named(name: str, error: SpaceError) -> SpaceError:
    """The same error type, its message prefixed with the parameter name."""
    return type(error)(f"parameter {name!r}: {error}", parameter=name)


def _read_yaml_source(text_or_path: str | os.PathLike[str]) -> str:
    is_path = isinstance(text_or_path, os.PathLike) or (
        isinstance(text_or_path, str) and "\n" not in text_or_path and os.path.isfile(text_or_path)
    )
    if not is_path:
        if not isinstance(text_or_path, str):
            raise SpaceError(f"expected YAML text or a path, got {text_or_path!r}")
        return text_or_path
    try:
        return Path(text_or_path).read_text(encoding="utf-8")
    except OSError as error:
        raise SpaceError(f"cannot read the space file {str(text_or_path)!r}: {error}") from error


def _collect(
    params: Mapping[str, Distribution] | None, kwargs: Mapping[str, Distribution]
) -> dict[str, Distribution]:
    """Merge params and keyword parameters, checking names and types."""
    if params is not None and not isinstance(params, Mapping):
        raise SpaceError(f"params must be a mapping of name -> Distribution, got {params!r}")
    declared: dict[str, Distribution] = {}
    for source in (params or {}, kwargs):
        for name, dist in source.items():
            if not isinstance(name, str) or not name:
                raise SpaceError(f"parameter names must be non-empty strings, got {name!r}")
            if not isinstance(dist, Distribution):
                raise SpaceError(
                    f"parameter {name!r}: expected a Float, Int or Categorical, got "
                    f"{type(dist).__name__}; use Space.from_dict for plain specs",
                    parameter=name,
                )
            if name in declared:
                kind = SpaceError if declared[name] == dist else ParameterConflict
                raise kind(f"parameter {name!r} is defined twice; define it once", parameter=name)
            declared[name] = dist
    return declared


def _check_conditions(declared: Mapping[str, Distribution]) -> None:
    """Every condition names another declared parameter and legal values of it."""
    for name, dist in declared.items():
        for parent, values in (dist.when or {}).items():
            if parent == name:
                raise SpaceError(
                    f"parameter {name!r}: its condition refers to itself; "
                    "condition on another parameter",
                    parameter=name,
                )
            if parent not in declared:
                raise SpaceError(
                    f"parameter {name!r}: condition on unknown parameter {parent!r}"
                    f"{_did_you_mean(parent, declared)}; declare it or fix the name",
                    parameter=name,
                )
            for value in values:
                if not declared[parent].contains(value):
                    raise SpaceError(
                        f"parameter {name!r}: condition value {value!r} is not a legal value "
                        f"of {parent!r}, which is {declared[parent].label()}",
                        parameter=name,
                    )


def _topological_order(declared: Mapping[str, Distribution]) -> list[str]:
    """Parents before children; among ready names, declaration order first."""
    order = list(declared)
    position = {name: i for i, name in enumerate(order)}
    waiting = {name: len(declared[name].when or ()) for name in order}
    children: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for parent in declared[name].when or ():
            children[parent].append(name)
    ready = [position[name] for name in order if not waiting[name]]
    heapq.heapify(ready)
    result: list[str] = []
    while ready:
        name = order[heapq.heappop(ready)]
        result.append(name)
        for child in children[name]:
            waiting[child] -= 1
            if not waiting[child]:
                heapq.heappush(ready, position[child])
    if len(result) < len(order):
        raise SpaceError(_cycle_message(declared, [n for n in order if n not in set(result)]))
    return result


def _cycle_message(declared: Mapping[str, Distribution], remaining: list[str]) -> str:
    """Follow parent links among the stuck names until one repeats."""
    stuck = set(remaining)
    path = [remaining[0]]
    while path.count(path[-1]) < 2:
        when = declared[path[-1]].when or {}
        path.append(next(parent for parent in when if parent in stuck))
    cycle = path[path.index(path[-1]) :]
    chain = " -> ".join(repr(name) for name in cycle)
    return f"conditions form a cycle: {chain} (each depends on the next); break the cycle"


def _compile(dist: Distribution, params: Mapping[str, Distribution]) -> tuple[_Condition, ...]:
    """(parent, parent's key function, allowed keys) for each parent of `dist`."""
    conditions = []
    for parent, values in (dist.when or {}).items():
        key_of = params[parent]._condition_key
        conditions.append((parent, key_of, frozenset(key_of(value) for value in values)))
    return tuple(conditions)
