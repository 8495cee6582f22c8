"""The parameter distributions (Float, Int, Categorical): legal values, their unit-interval
encoding, their JSON form, and parsing of the plain dict specs of YAML study files."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tuningfork.exceptions import SpaceError
from tuningfork.space._values import (
    _STEP_TOLERANCE,
    Value,
    _choice_key,
    _clip_unit,
    _decimals,
    _did_you_mean,
    _finite,
    _flag,
    _integer,
    _is_number,
    _Key,
    _normalise_when,
    _numeric_key,
    _when_key,
)


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

    low: float
    high: float
    log: bool
    step: float | None

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
