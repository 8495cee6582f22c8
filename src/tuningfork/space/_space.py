"""`Space`: an ordered mapping of parameter name -> distribution with conditions, its
dict and YAML forms, and the encoding of whole configurations as vectors."""

from __future__ import annotations

import heapq
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tuningfork.exceptions import ParameterConflict, SpaceError
from tuningfork.space._distributions import Categorical, Distribution, _parse_spec
from tuningfork.space._values import (
    Value,
    _Condition,
    _did_you_mean,
)


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
