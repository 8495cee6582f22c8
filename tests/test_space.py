"""Tests of tuningfork.space: distributions, conditions, Space, encodings and errors."""

from __future__ import annotations

import itertools
import json
import math
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from tuningfork.exceptions import ParameterConflict, SpaceError
from tuningfork.space import (
    Categorical,
    Distribution,
    Float,
    Int,
    Space,
    distribution_from_json,
)

# A fine grid of unit values at cell centres: M points, so n cells get M/n points each.
M = 2520  # divisible by 1..10 and 12, 14, 15, 18, 20, 21, ...
CENTRES = [(i + 0.5) / M for i in range(M)]


def assert_uniform(dist: Distribution, expected: list) -> None:
    """from_unit over CENTRES hits every expected value, each equally often (within 1)."""
    counts = Counter(dist.from_unit(u) for u in CENTRES)
    assert set(counts) == set(expected)
    assert max(counts.values()) - min(counts.values()) <= 1


def optimiser_space() -> Space:
    """opt -> (sgd) momentum, schedule -> (cosine) warmup: a two-level condition chain."""
    return Space(
        warmup=Int(0, 5, when={"schedule": "cosine"}),  # declared before its parents
        opt=Categorical(["sgd", "adam"]),
        lr=Float(1e-5, 1e-1, log=True),
        momentum=Float(0.0, 0.9, step=0.1, when={"opt": "sgd"}),
        schedule=Categorical(["const", "cosine"], when={"opt": ["sgd"]}),
        layers=Int(1, 4),
    )


def all_configurations(space: Space) -> list[dict]:
    """Every configuration of a small optimiser_space (numbers at a few legal values)."""
    configs = []
    for opt, sched, warmup, momentum in itertools.product(
        ["sgd", "adam"], ["const", "cosine"], [0, 3, 5], [0.0, 0.3, 0.9]
    ):
        params = {"opt": opt, "lr": 1e-3, "layers": 2, "momentum": momentum}
        params.update(schedule=sched, warmup=warmup)
        active = space.active_names(params)
        configs.append({name: params[name] for name in active})
    return configs


# --------------------------------------------------------------------------- Float


def test_float_linear_unit_mapping() -> None:
    dist = Float(-1.0, 3.0)
    assert dist.to_unit(-1.0) == 0.0
    assert dist.to_unit(1.0) == 0.5
    assert dist.to_unit(3.0) == 1.0
    assert dist.from_unit(0.25) == 0.0
    assert dist.from_unit(-0.5) == -1.0  # clipped
    assert dist.from_unit(7.0) == 3.0
    for u in np.linspace(0, 1, 101):
        assert dist.from_unit(dist.to_unit(dist.from_unit(u))) == pytest.approx(dist.from_unit(u))


def test_float_log_unit_mapping() -> None:
    dist = Float(1e-5, 1e-1, log=True)
    assert dist.to_unit(1e-5) == pytest.approx(0.0)
    assert dist.to_unit(1e-3) == pytest.approx(0.5)
    assert dist.to_unit(1e-1) == pytest.approx(1.0)
    for u in np.linspace(0, 1, 201):
        value = dist.from_unit(u)
        assert dist.contains(value)
        assert dist.to_unit(value) == pytest.approx(u, abs=1e-12)
    assert dist.from_unit(0.0) == 1e-5 and dist.from_unit(1.0) == 1e-1


@pytest.mark.parametrize(
    ("low", "high", "step", "expected"),
    [
        (0.0, 1.0, 0.1, [round(0.1 * k, 1) for k in range(11)]),
        (0.05, 0.95, 0.1, [round(0.05 + 0.1 * k, 2) for k in range(10)]),
        (-1.0, 1.0, 0.25, [-1 + 0.25 * k for k in range(9)]),
        (1e-3, 5e-3, 1e-3, [0.001, 0.002, 0.003, 0.004, 0.005]),
        (0.0, 10.0, 0.5, [0.5 * k for k in range(21)]),
        (2.0, 3.0, 1.0, [2.0, 3.0]),
    ],
)
def test_float_step_grid_exact_round_trip(low, high, step, expected) -> None:
    dist = Float(low, high, step=step)
    n = len(expected)
    values = [dist.from_unit((k + 0.5) / n) for k in range(n)]
    assert values == expected  # exact: 0.3, never 0.30000000000000004
    for value in values:
        assert type(value) is float
        assert dist.contains(value)
        assert dist.from_unit(dist.to_unit(value)) == value
    assert dist.from_unit(0.0) == expected[0]
    assert dist.from_unit(1.0) == expected[-1]
    assert_uniform(dist, expected)


def test_float_step_fine_grid_round_trip_is_exact() -> None:
    dist = Float(0.0, 1.0, step=1e-3)
    values = [dist.from_unit((k + 0.5) / 1001) for k in range(1001)]
    assert len(set(values)) == 1001
    assert all(value == round(value, 3) for value in values)
    assert all(dist.from_unit(dist.to_unit(value)) == value for value in values)


def test_float_step_non_decimal() -> None:
    dist = Float(0.0, 1.0, step=1 / 3)
    values = [dist.from_unit(u) for u in (0.1, 0.4, 0.6, 0.9)]
    assert values[0] == 0.0 and values[-1] == 1.0
    assert all(dist.contains(v) and dist.from_unit(dist.to_unit(v)) == v for v in values)


def test_float_from_unit_always_legal() -> None:
    for dist in (Float(0.1, 0.7), Float(1e-8, 1.0, log=True), Float(-3.0, 3.0, step=0.2)):
        for u in np.linspace(0, 1, 301):
            assert dist.contains(dist.from_unit(float(u)))


def test_float_contains() -> None:
    dist = Float(0.0, 1.0)
    assert dist.contains(0.5) and dist.contains(0) and dist.contains(1)
    assert dist.contains(np.float64(0.5)) and dist.contains(np.float32(0.5))
    for bad in (-0.1, 1.1, math.nan, math.inf, True, False, "0.5", None, [0.5], np.bool_(True)):
        assert not dist.contains(bad), bad
    stepped = Float(0.0, 1.0, step=0.1)
    assert stepped.contains(0.3) and stepped.contains(0.1 + 0.2)  # float noise is tolerated
    assert not stepped.contains(0.35)
    assert not stepped.contains(1.1)


# --------------------------------------------------------------------------- Int


@pytest.mark.parametrize(
    ("dist", "expected"),
    [
        (Int(0, 9), list(range(10))),
        (Int(-5, 5), list(range(-5, 6))),
        (Int(2, 20, step=3), list(range(2, 21, 3))),
        (Int(7, 8), [7, 8]),
        (Int(-10, 10, step=5), [-10, -5, 0, 5, 10]),
    ],
)
def test_int_exact_round_trip_and_uniformity(dist: Int, expected: list[int]) -> None:
    n = len(expected)
    assert [dist.from_unit((k + 0.5) / n) for k in range(n)] == expected
    for value in expected:
        assert dist.contains(value)
        assert 0.0 < dist.to_unit(value) < 1.0
        result = dist.from_unit(dist.to_unit(value))
        assert result == value and type(result) is int
    assert dist.from_unit(0.0) == expected[0] and dist.from_unit(1.0) == expected[-1]
    assert_uniform(dist, expected)


@pytest.mark.parametrize(("low", "high"), [(1, 10), (1, 1000), (3, 64), (100, 400)])
def test_int_log_exact_round_trip(low: int, high: int) -> None:
    dist = Int(low, high, log=True)
    for value in range(low, high + 1):
        result = dist.from_unit(dist.to_unit(value))
        assert result == value and type(result) is int
    seen = {dist.from_unit(float(u)) for u in np.linspace(0, 1, 20001)}
    assert seen == set(range(low, high + 1))  # every value reachable, nothing else
    assert dist.to_unit(low) > 0.0 and dist.to_unit(high) < 1.0


def test_int_log_prefers_small_values() -> None:
    counts = Counter(Int(1, 100, log=True).from_unit(u) for u in CENTRES)
    assert counts[1] > counts[10] > counts[100]


def test_int_contains() -> None:
    dist = Int(0, 10, step=2)
    assert dist.contains(4) and dist.contains(np.int64(4))
    for bad in (3, -2, 12, 4.0, True, False, "4", None, np.bool_(True), math.nan):
        assert not dist.contains(bad), bad


def test_int_accepts_integral_float_bounds() -> None:
    dist = Int(1.0, 8.0, step=1.0)  # type: ignore[arg-type]
    assert (dist.low, dist.high, dist.step) == (1, 8, 1)
    assert type(dist.low) is int


# --------------------------------------------------------------------------- Categorical


def test_categorical_unit_mapping_and_uniformity() -> None:
    dist = Categorical(["a", "b", "c", "d", "e"])
    assert dist.choices == ("a", "b", "c", "d", "e")
    for i, choice in enumerate(dist.choices):
        assert dist.to_unit(choice) == (i + 0.5) / 5
        assert dist.from_unit(dist.to_unit(choice)) == choice
    assert dist.from_unit(1.0) == "e" and dist.from_unit(0.0) == "a"
    assert dist.from_unit(-3.0) == "a" and dist.from_unit(3.0) == "e"
    assert_uniform(dist, list(dist.choices))
    assert_uniform(Categorical(list(range(7))), list(range(7)))


def test_categorical_index_is_type_aware() -> None:
    dist = Categorical([1, True, 1.0, None, "1", False, 0])
    assert [dist.index(c) for c in (1, True, 1.0, None, "1", False, 0)] == list(range(7))
    assert dist.index(np.int64(1)) == 0 and dist.index(np.bool_(True)) == 1
    assert dist.index(np.float64(1.0)) == 2
    for choice in dist.choices:
        assert dist.from_unit(dist.to_unit(choice)) is choice or choice is None
    only_int = Categorical([1, 2])
    assert not only_int.contains(True) and not only_int.contains(1.0)
    with pytest.raises(SpaceError, match=r"True is not one of the choices \[1, 2\]"):
        only_int.index(True)
    with pytest.raises(SpaceError, match=r"1.0 is not one of"):
        only_int.to_unit(1.0)
    assert not only_int.contains([1])  # unhashable values are simply not legal


def test_categorical_choices_canonicalised() -> None:
    dist = Categorical([np.int64(3), np.float64(0.5), np.bool_(False), np.str_("x")])
    assert dist.choices == (3, 0.5, False, "x")
    assert [type(c) for c in dist.choices] == [int, float, bool, str]
    json.dumps(dist.to_json())


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ([], "choices is empty"),
        (["sgd", "adam", "sgd"], "duplicate choice 'sgd'"),
        ([1, 2, 1], "duplicate choice 1"),
        ([None, None], "duplicate choice None"),
        ([[1, 2]], r"choice \[1, 2\] has type list"),
        ([{"a": 1}], "has type dict"),
        ([object()], "has type object"),
        ([math.nan], "choice nan is not finite"),
        ("abc", "choices must be a list"),
        ({"a", "b"}, "choices must be a list"),
        (3, "choices must be a list"),
    ],
)
def test_categorical_errors(choices, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        Categorical(choices)


def test_categorical_type_aware_choices_are_not_duplicates() -> None:
    assert len(Categorical([1, True, 1.0]).choices) == 3
    assert len(Categorical([0, False, 0.0, None, ""]).choices) == 5


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Float(1.0, 0.0), r"low must be <= high, got low=1.0, high=0.0; swap them"),
        (lambda: Int(5, 2), r"low must be <= high, got low=5, high=2"),
        (lambda: Float(0.0, 1.0, log=True), r"log=True needs low > 0, got low=0.0"),
        (lambda: Float(-1.0, 1.0, log=True), r"log=True needs low > 0, got low=-1.0"),
        (lambda: Int(0, 10, log=True), r"log=True needs low >= 1, got low=0"),
        (lambda: Int(1, 10, log=True, step=3), r"log=True needs step=1, got step=3"),
        (lambda: Float(0.0, 1.0, step=0.0), r"step must be > 0, got step=0.0"),
        (lambda: Float(0.0, 1.0, step=-0.1), r"step must be > 0, got step=-0.1"),
        (lambda: Int(0, 10, step=0), r"step must be > 0, got step=0"),
        (lambda: Int(0, 10, step=-2), r"step must be > 0, got step=-2"),
        (lambda: Float(0.0, 1.0, step=0.3), r"step=0.3 does not divide high - low = 1.0"),
        (lambda: Float(0.0, 1.0, step=2.0), r"step=2.0 does not divide"),
        (lambda: Int(0, 10, step=3), r"step=3 does not divide high - low = 10; use high=9"),
        (lambda: Float(0.0, 1.0, log=True, step=0.1), r"log=True and step .*choose one"),
        (lambda: Float(0.0, math.inf), r"high must be a finite number, got inf"),
        (lambda: Float(math.nan, 1.0), r"low must be a finite number, got nan"),
        (lambda: Float(0.0, 1.0, step=math.inf), r"step must be a finite number"),
        (lambda: Float(True, 2.0), r"low must be a number \(not a bool or text\), got True"),
        (lambda: Float(0.0, "1"), r"high must be a number .*got '1'"),
        (lambda: Int(0, True), r"high must be an integer \(not a bool\), got True"),
        (lambda: Int(1.5, 3), r"low must be an integer .*got 1.5"),
        (lambda: Int(0, 10, step=True), r"step must be an integer .*got True"),
        (lambda: Float(0.0, 1.0, log="yes"), r"log must be True or False, got 'yes'"),
        (lambda: Int(0, 1, log=1), r"log must be True or False, got 1"),
    ],
)
def test_distribution_errors(make, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        make()


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"opt": []}, r"when\['opt'\] is empty"),
        ({"opt": [["sgd"]]}, r"when\['opt'\] value \['sgd'\] must be a str, int"),
        ({"opt": object}, r"when\['opt'\] value"),
        ({1: "sgd"}, r"when keys must be parameter names, got 1"),
        ("opt", r"when must be a mapping"),
    ],
)
def test_when_errors(when, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        Float(0.0, 1.0, when=when)


def test_unit_nan_is_an_error() -> None:
    for dist in (Float(0.0, 1.0), Int(0, 3), Categorical(["a"]), Float(0.0, 1.0, step=0.5)):
        with pytest.raises(SpaceError, match="NaN"):
            dist.from_unit(math.nan)


# --------------------------------------------------------------------------- equality, json


def test_when_is_normalised() -> None:
    assert Float(0, 1, when={"opt": "sgd"}).when == {"opt": ("sgd",)}
    assert Float(0, 1, when={"opt": ["sgd", "adam"]}).when == {"opt": ("sgd", "adam")}
    assert Float(0, 1, when={"n": np.int64(2)}).when == {"n": (2,)}
    assert Float(0, 1, when={}).when is None
    assert Float(0, 1).when is None


def test_equality_hash_and_same_as() -> None:
    assert Float(0, 1) == Float(0.0, 1.0) and hash(Float(0, 1)) == hash(Float(0.0, 1.0))
    assert Float(0, 1) != Float(0, 1, log=False, step=0.5)
    assert Float(0, 1) != Int(0, 1) and not Float(0, 1).same_as(Int(0, 1))
    conditioned = Float(0, 1, when={"opt": "sgd"})
    assert conditioned != Float(0, 1) and conditioned.same_as(Float(0, 1))
    assert Float(0, 1, when={"o": ["a", "b"]}) == Float(0, 1, when={"o": ["b", "a"]})
    assert hash(Float(0, 1, when={"o": ["a", "b"]})) == hash(Float(0, 1, when={"o": ["b", "a"]}))
    assert Categorical([1, 2]) != Categorical([1.0, 2.0])
    assert Categorical([1, 2]) != Categorical([2, 1])
    assert Categorical([True]) != Categorical([1])
    assert Int(1, 8) == Int(1, 8, step=1) and Int(1, 8) != Int(1, 8, log=True)
    assert len({Float(0, 1), Float(0.0, 1.0), Int(0, 1), Categorical(["a"])}) == 3
    assert Float(0, 1) != "Float(0, 1)"


def test_label_and_repr() -> None:
    assert Float(0.001, 0.1, log=True).label() == "Float(0.001, 0.1, log=True)"
    assert Float(0, 1, step=0.1).label() == "Float(0.0, 1.0, step=0.1)"
    assert Int(1, 8).label() == "Int(1, 8)"
    assert Int(2, 10, step=2).label() == "Int(2, 10, step=2)"
    assert Int(1, 1024, log=True).label() == "Int(1, 1024, log=True)"
    assert Categorical(["sgd", "adam"]).label() == "Categorical(['sgd', 'adam'])"
    conditioned = Float(0, 1, when={"opt": "sgd"})
    assert conditioned.label() == "Float(0.0, 1.0)"
    assert repr(conditioned) == "Float(0.0, 1.0, when={'opt': ('sgd',)})"


JSON_CASES = [
    Float(0.0, 1.0),
    Float(1e-5, 1e-1, log=True),
    Float(0.0, 1.0, step=0.1, when={"opt": ["sgd", "momentum"]}),
    Int(1, 8),
    Int(2, 20, step=3),
    Int(1, 1024, log=True, when={"use": True}),
    Categorical(["sgd", "adam"]),
    Categorical([1, True, 1.0, None, "x"], when={"n": 2}),
]


@pytest.mark.parametrize("dist", JSON_CASES, ids=repr)
def test_json_round_trip(dist: Distribution) -> None:
    data = json.loads(json.dumps(dist.to_json()))
    assert data["type"] in ("float", "int", "categorical")
    assert ("when" in data) == (dist.when is not None)
    back = distribution_from_json(data)
    assert back == dist and type(back) is type(dist)
    if isinstance(dist, Categorical):
        assert [type(c) for c in back.choices] == [type(c) for c in dist.choices]


def test_to_json_fields() -> None:
    assert Float(0, 1, step=0.5).to_json() == {
        "type": "float",
        "low": 0.0,
        "high": 1.0,
        "log": False,
        "step": 0.5,
    }
    assert Int(1, 8, when={"a": "b"}).to_json() == {
        "type": "int",
        "low": 1,
        "high": 8,
        "log": False,
        "step": 1,
        "when": {"a": ["b"]},
    }
    assert Categorical(["a"]).to_json() == {"type": "categorical", "choices": ["a"]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "expected a distribution dict with a 'type' key"),
        ({"low": 0, "high": 1}, "expected a distribution dict with a 'type' key"),
        ({"type": "flot", "low": 0, "high": 1}, r"unknown type 'flot' \(did you mean 'float'\?\)"),
        ({"type": "float", "low": 0, "hihg": 1}, r"unknown key 'hihg' \(did you mean 'high'\?\)"),
        ({"type": "int", "low": "one", "high": 3}, "low must be a number, got 'one'"),
        ({"type": "float", "low": 0}, "missing key 'high' for type 'float'"),
        ({"type": "categorical"}, "missing key 'choices'"),
    ],
)
def test_distribution_from_json_errors(data, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        distribution_from_json(data)


# --------------------------------------------------------------------------- Space basics


def test_space_mapping_protocol_and_order() -> None:
    space = optimiser_space()
    assert space.names == ("opt", "lr", "momentum", "schedule", "warmup", "layers")
    assert list(space) == list(space.names) and len(space) == 6
    assert "opt" in space and "nope" not in space
    assert space["lr"] == Float(1e-5, 1e-1, log=True)
    assert dict(space.items())["layers"] == Int(1, 4)
    assert space.dims == 6 and space.onehot_dims() == 2 + 1 + 1 + 2 + 1 + 1
    with pytest.raises(KeyError):
        space["nope"]
    assert repr(space).startswith("Space({'opt': Categorical(['sgd', 'adam']), 'lr': Float(")


def test_space_declaration_order_without_conditions() -> None:
    space = Space({"b": Int(0, 1), "a": Int(0, 1)}, c=Float(0, 1))
    assert space.names == ("b", "a", "c")


def test_space_equality_and_hash() -> None:
    assert optimiser_space() == optimiser_space()
    assert hash(optimiser_space()) == hash(optimiser_space())
    assert Space(a=Int(0, 1), b=Int(0, 1)) != Space(b=Int(0, 1), a=Int(0, 1))
    assert Space(a=Int(0, 1)) != Space(a=Int(0, 2))
    assert Space(a=Int(0, 1)) != {"a": Int(0, 1)}


def test_empty_space() -> None:
    space = Space()
    assert space.names == () and space.dims == 0 and space.onehot_dims() == 0
    assert space.encode({}).shape == (0,)
    assert space.decode([]) == {}
    assert Space.from_yaml("") == space


def test_space_duplicate_names() -> None:
    with pytest.raises(SpaceError, match="parameter 'lr' is defined twice"):
        Space({"lr": Float(0, 1)}, lr=Float(0, 1))
    with pytest.raises(ParameterConflict, match="parameter 'lr' is defined twice"):
        Space({"lr": Float(0, 1)}, lr=Float(0, 2))


def test_space_rejects_non_distributions() -> None:
    with pytest.raises(SpaceError, match=r"parameter 'lr': expected a Float.*Space.from_dict"):
        Space({"lr": {"type": "float", "low": 0, "high": 1}})
    with pytest.raises(SpaceError, match="parameter names must be non-empty strings, got 1"):
        Space({1: Float(0, 1)})
    with pytest.raises(SpaceError, match="params must be a mapping"):
        Space([Float(0, 1)])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- conditions


def test_condition_errors() -> None:
    with pytest.raises(SpaceError, match=r"parameter 'm': condition on unknown parameter 'op'"):
        Space(opt=Categorical(["sgd"]), m=Float(0, 1, when={"op": "sgd"}))
    with pytest.raises(SpaceError, match=r"\(did you mean 'opt'\?\)"):
        Space(opt=Categorical(["sgd"]), m=Float(0, 1, when={"op": "sgd"}))
    with pytest.raises(SpaceError, match=r"parameter 'm': its condition refers to itself"):
        Space(m=Categorical(["a", "b"], when={"m": "a"}))
    with pytest.raises(
        SpaceError,
        match=r"parameter 'm': condition value 'rmsprop' is not a legal value of 'opt', "
        r"which is Categorical\(\['sgd', 'adam'\]\)",
    ):
        Space(opt=Categorical(["sgd", "adam"]), m=Float(0, 1, when={"opt": ["sgd", "rmsprop"]}))
    with pytest.raises(SpaceError, match=r"condition value 1 is not a legal value of 'bn'"):
        Space(bn=Categorical([True, False]), m=Float(0, 1, when={"bn": 1}))
    with pytest.raises(SpaceError, match=r"condition value 9 is not a legal value of 'n'"):
        Space(n=Int(1, 4), m=Float(0, 1, when={"n": 9}))


def test_condition_cycles() -> None:
    with pytest.raises(SpaceError, match=r"conditions form a cycle: 'a' -> 'b' -> 'a'"):
        Space(a=Int(1, 3, when={"b": 1}), b=Int(1, 3, when={"a": 2}))
    with pytest.raises(SpaceError, match=r"cycle: 'b' -> 'c' -> 'd' -> 'b'"):
        Space(
            a=Int(1, 3),
            b=Int(1, 3, when={"c": 1, "a": 1}),
            c=Int(1, 3, when={"d": 1}),
            d=Int(1, 3, when={"b": 1}),
        )


def test_nested_conditions() -> None:
    space = optimiser_space()
    adam = {"opt": "adam", "lr": 1e-3, "layers": 2}
    assert space.active_names(adam) == ["opt", "lr", "layers"]
    sgd = {"opt": "sgd", "lr": 1e-3, "momentum": 0.9, "schedule": "const", "layers": 2}
    assert space.active_names(sgd) == ["opt", "lr", "momentum", "schedule", "layers"]
    cosine = dict(sgd, schedule="cosine", warmup=3)
    assert space.active_names(cosine) == ["opt", "lr", "momentum", "schedule", "warmup", "layers"]
    assert space.is_active("warmup", cosine)
    # warmup's parent is inactive when opt is adam, even if schedule says cosine
    assert not space.is_active("warmup", dict(cosine, opt="adam"))
    assert "warmup" not in space.active_names(dict(cosine, opt="adam"))
    assert not space.is_active("momentum", {"lr": 1e-3})  # parent missing
    assert space.is_active("opt", {})
    with pytest.raises(SpaceError, match=r"unknown parameter 'warmpu' \(did you mean 'warmup'"):
        space.is_active("warmpu", cosine)


def test_conditions_compare_type_aware() -> None:
    space = Space(
        bn=Categorical([True, False, None]),
        bn_momentum=Float(0, 1, when={"bn": True}),
        note=Categorical(["x"], when={"bn": None}),
        layers=Int(1, 3),
        width2=Int(8, 64, when={"layers": [2, 3]}),
        dropout=Float(0.0, 0.5, step=0.1),
        extra=Int(0, 1, when={"dropout": 0.3}),
    )
    assert space.is_active("bn_momentum", {"bn": True})
    assert not space.is_active("bn_momentum", {"bn": 1})
    assert not space.is_active("bn_momentum", {"bn": np.int64(1)})
    assert space.is_active("bn_momentum", {"bn": np.bool_(True)})
    assert space.is_active("note", {"bn": None}) and not space.is_active("note", {"bn": False})
    assert space.is_active("width2", {"layers": 2}) and space.is_active("width2", {"layers": 3})
    assert space.is_active("width2", {"layers": np.int64(2)})
    assert not space.is_active("width2", {"layers": 1})
    assert not space.is_active("width2", {"layers": True})
    assert not space.is_active("width2", {"layers": [2]})
    assert space.is_active("extra", {"dropout": 0.3})


# --------------------------------------------------------------------------- validate


def test_validate_accepts_legal_configurations() -> None:
    space = optimiser_space()
    for params in all_configurations(space):
        space.validate(params)
    space.validate({"opt": "adam", "lr": 1e-3, "layers": np.int64(2)})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"opt": "adam", "lr": 1e-3, "layers": 2, "lrr": 1},
            r"unknown parameter 'lrr' \(did you mean 'lr'\?\); the space has \['opt'",
        ),
        ({"opt": "sgd", "lr": 1e-3, "layers": 2}, r"parameter 'momentum' is active but has no "),
        ({"opt": "adam", "layers": 2}, r"'lr' is active but has no value; give it a float in"),
        (
            {"opt": "adam", "lr": 1e-3, "layers": 2, "momentum": 0.5},
            r"parameter 'momentum' is inactive here \(it needs 'opt' in \['sgd'\], got 'adam'\)",
        ),
        (
            {"opt": "adam", "lr": 1e-3, "layers": 2, "warmup": 1},
            r"parameter 'warmup' is inactive here \(its parent 'schedule' is inactive\)",
        ),
        (
            {"opt": "adam", "lr": 1.0, "layers": 2},
            r"parameter 'lr': 1.0 is not a legal value; expected a float in \[1e-05, 0.1\]",
        ),
        (
            {"opt": "adam", "lr": 1e-3, "layers": 2.0},
            r"parameter 'layers': 2.0 is not a legal value; expected an int \(not a bool\) in "
            r"\[1, 4\]",
        ),
        ({"opt": "adam", "lr": 1e-3, "layers": True}, r"parameter 'layers': True is not a legal"),
        (
            {"opt": "rmsprop", "lr": 1e-3, "layers": 2},
            r"parameter 'opt': 'rmsprop' is not a legal value; expected one of \['sgd', 'adam'\]",
        ),
        (
            {"opt": "sgd", "lr": 1e-3, "layers": 2, "momentum": 0.35, "schedule": "const"},
            r"parameter 'momentum': 0.35 is not a legal value; expected a float in \[0.0, 0.9\] "
            r"on the grid 0.0 \+ k\*0.1",
        ),
        (["opt"], "expected a mapping of parameter name -> value"),
    ],
)
def test_validate_errors(params, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        optimiser_space().validate(params)


def test_validate_float_accepts_int_value() -> None:
    Space(x=Float(0, 10)).validate({"x": 3})


# --------------------------------------------------------------------------- encode / decode


def test_encode_index() -> None:
    space = optimiser_space()
    params = {"opt": "adam", "lr": 1e-3, "layers": 4}
    vector = space.encode(params)
    assert vector.dtype == np.float64 and vector.shape == (6,)
    assert vector[0] == 0.75 and vector[1] == pytest.approx(0.5)
    assert np.isnan(vector[2:5]).all() and vector[5] == 3.5 / 4


def test_encode_onehot() -> None:
    space = optimiser_space()
    params = {"opt": "sgd", "lr": 1e-3, "layers": 1, "momentum": 0.0, "schedule": "cosine"}
    params["warmup"] = 0
    vector = space.encode(params, onehot=True)
    # columns: opt(2) lr momentum schedule(2) warmup layers
    assert vector.shape == (8,)
    assert list(vector[:2]) == [1.0, 0.0] and list(vector[4:6]) == [0.0, 1.0]
    assert vector[3] == 0.5 / 10 and vector[6] == 0.5 / 6 and vector[7] == 0.5 / 4
    inactive = space.encode({"opt": "adam", "lr": 1e-3, "layers": 1}, onehot=True)
    assert list(inactive[:2]) == [0.0, 1.0]
    assert np.isnan(inactive[3]) and np.isnan(inactive[6])
    assert list(inactive[4:6]) == [0.0, 0.0]  # inactive categorical: all zero


def test_encode_validates() -> None:
    with pytest.raises(SpaceError, match="parameter 'layers'"):
        optimiser_space().encode({"opt": "adam", "lr": 1e-3, "layers": 9})


@pytest.mark.parametrize("onehot", [False, True])
def test_encode_decode_round_trip(onehot: bool) -> None:
    space = optimiser_space()
    configs = all_configurations(space)
    assert len({json.dumps(c, sort_keys=True) for c in configs}) > 10
    for params in configs:
        decoded = space.decode(space.encode(params, onehot=onehot), onehot=onehot)
        assert decoded["lr"] == pytest.approx(params["lr"], rel=1e-12)  # continuous
        assert decoded == params | {"lr": decoded["lr"]}  # everything else exactly
        assert list(decoded) == [name for name in space.names if name in params]
        assert all(type(decoded[name]) is type(params[name]) for name in params)


@pytest.mark.parametrize("onehot", [False, True])
def test_decode_random_vectors_gives_legal_configurations(onehot: bool) -> None:
    space = optimiser_space()
    width = space.onehot_dims() if onehot else space.dims
    rng = np.random.default_rng(0)
    seen = set()
    for u in rng.random((300, width)):
        params = space.decode(u, onehot=onehot)
        space.validate(params)
        assert list(params) == space.active_names(params)
        seen.add(len(params))
    assert seen == {3, 5, 6}  # adam, sgd+const, sgd+cosine


def test_decode_ignores_inactive_columns_and_clips() -> None:
    space = optimiser_space()
    vector = [0.9, 2.0, math.nan, math.nan, math.nan, -1.0]
    assert space.decode(vector) == {"opt": "adam", "lr": 0.1, "layers": 1}
    assert space.decode(np.array(vector)) == {"opt": "adam", "lr": 0.1, "layers": 1}
    onehot = [0.2, 0.7, 0.5, math.nan, math.nan, math.nan, math.nan, 0.99]
    assert space.decode(onehot, onehot=True) == {
        "opt": "adam",
        "lr": pytest.approx(1e-3),
        "layers": 4,
    }
    tie = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    assert space.decode(tie, onehot=True)["opt"] == "sgd"  # first on ties


def test_decode_errors() -> None:
    space = optimiser_space()
    with pytest.raises(SpaceError, match=r"expected a vector of 6 numbers \(index encoding\)"):
        space.decode([0.5] * 5)
    with pytest.raises(SpaceError, match=r"expected a vector of 8 numbers \(one-hot encoding\)"):
        space.decode([0.5] * 6, onehot=True)
    with pytest.raises(SpaceError, match="expected a vector of 6 numbers"):
        space.decode([[0.5] * 6])
    with pytest.raises(SpaceError, match="expected a vector of 6 numbers"):
        space.decode(["a"] * 6)
    with pytest.raises(SpaceError, match="parameter 'lr' is active but its encoded value is NaN"):
        space.decode([0.9, math.nan, 0.5, 0.5, 0.5, 0.5])
    with pytest.raises(SpaceError, match="parameter 'opt' is active but its one-hot block"):
        space.decode([math.nan, 1.0] + [0.5] * 6, onehot=True)


# --------------------------------------------------------------------------- from_dict / YAML


def test_from_dict_formats() -> None:
    space = Space.from_dict(
        {
            "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
            "dropout": {"type": "float", "low": 0, "high": 1, "step": 0.1},
            "layers": {"type": "int", "low": 1, "high": 8},
            "width": {
                "type": "int",
                "low": 16,
                "high": 256,
                "step": 16,
                "when": {"layers": [2, 3]},
            },
            "batch": {"type": "int", "low": 1, "high": 1024, "log": True},
            "opt": {"type": "categorical", "choices": ["sgd", "adam"]},
            "momentum": {"type": "float", "low": 0.0, "high": 0.99, "when": {"opt": "sgd"}},
            "act": ["relu", "gelu"],
            "norm": Categorical(["batch", "layer"]),
            "seed": {"choices": [1, 2, 3]},
        }
    )
    assert space["lr"] == Float(1e-5, 1e-1, log=True)
    assert space["dropout"] == Float(0.0, 1.0, step=0.1)
    assert space["width"] == Int(16, 256, step=16, when={"layers": [2, 3]})
    assert space["batch"] == Int(1, 1024, log=True)
    assert space["momentum"].when == {"opt": ("sgd",)}
    assert space["act"] == Categorical(["relu", "gelu"])
    assert space["norm"] == Categorical(["batch", "layer"])
    assert space["seed"] == Categorical([1, 2, 3])


def test_from_dict_numeric_strings() -> None:
    space = Space.from_dict(
        {
            "lr": {"type": "float", "low": "1e-5", "high": "1e-1", "log": True},
            "n": {"type": "int", "low": "1", "high": "1e3", "step": "1"},
        }
    )
    assert space["lr"] == Float(1e-5, 0.1, log=True)
    assert space["n"] == Int(1, 1000)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "float", "low": 1, "high": 0}, r"parameter 'lr': low must be <= high"),
        (
            {"type": "float", "low": "small", "high": 1},
            r"parameter 'lr': low must be a number, got",
        ),
        ({"type": "float", "low": 0, "high": 1, "log": "true"}, r"'lr': log must be True or"),
        ({"type": "float", "low": 0, "high": 1, "stp": 0.1}, r"'lr': unknown key 'stp' \(did you"),
        ({"type": "float", "low": 0, "high": 1, "choices": [1]}, r"allowed keys: \['type', 'low'"),
        ({"type": "categorical", "choices": ["a"], "low": 0}, r"unknown key 'low' for type 'cat"),
        ({"type": "integer", "low": 0, "high": 1}, r"'lr': unknown type 'integer' \(did you mean"),
        ({"type": ["float"], "low": 0, "high": 1}, r"unknown type \['float'\]"),
        ({"low": 0, "high": 1}, r"parameter 'lr': missing key 'type'; use one of \['float'"),
        ({"type": "int", "high": 1}, r"parameter 'lr': missing key 'low' for type 'int'"),
        ({"type": "categorical", "choices": []}, r"parameter 'lr': choices is empty"),
        (["a", "a"], r"parameter 'lr': duplicate choice 'a'"),
        (0.1, r"parameter 'lr': expected a mapping such as"),
        ({"type": "float", "low": 0, "high": 1, "step": 0.3}, r"'lr': step=0.3 does not divide"),
        ({"type": "float", "low": 0, "high": 1, "when": {"opt": []}}, r"'lr': when\['opt'\]"),
    ],
)
def test_from_dict_errors_name_the_parameter(spec, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        Space.from_dict({"lr": spec})


def test_from_dict_rejects_non_mappings() -> None:
    with pytest.raises(SpaceError, match="a space must be a mapping of name -> spec"):
        Space.from_dict(["lr"])  # type: ignore[arg-type]
    with pytest.raises(SpaceError, match="parameter names must be non-empty strings, got 3"):
        Space.from_dict({3: [1, 2]})


def test_to_dict_round_trip() -> None:
    space = optimiser_space()
    data = space.to_dict()
    assert list(data) == list(space.names)
    assert json.loads(json.dumps(data)) == data
    assert Space.from_dict(data) == space
    assert Space.from_dict(json.loads(json.dumps(data))) == space
    assert Space.from_yaml(yaml.safe_dump(data, sort_keys=False)) == space
    assert Space.from_yaml(yaml.safe_dump(data)) != space  # order matters (it fixes columns)
    assert Space.from_dict(space) == space  # a Space is a mapping of Distributions


YAML_TEXT = """
lr: {type: float, low: 1e-5, high: 1e-1, log: true}
optimizer: [sgd, adam]
momentum:
  type: float
  low: 0
  high: 0.9
  step: 0.1
  when: {optimizer: sgd}
use_bn: [true, false]
bn_momentum: {type: float, low: 0.9, high: 0.999, when: {use_bn: true}}
layers: {type: int, low: 1, high: 8}
"""


def test_from_yaml_text_and_files(tmp_path: Path) -> None:
    space = Space.from_yaml(YAML_TEXT)
    assert space["lr"] == Float(1e-5, 0.1, log=True)  # PyYAML reads 1e-5 as a string
    assert space["use_bn"].choices == (True, False)
    assert space.is_active("bn_momentum", {"use_bn": True})
    assert space.names == ("lr", "optimizer", "momentum", "use_bn", "bn_momentum", "layers")
    path = tmp_path / "space.yaml"
    path.write_text(YAML_TEXT)
    assert Space.from_yaml(path) == space
    assert Space.from_yaml(str(path)) == space


def test_from_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match="no space file named 'missing.yaml'"):
        Space.from_yaml(str(tmp_path / "missing.yaml").replace(str(tmp_path) + "/", ""))
    with pytest.raises(SpaceError, match="cannot read the space file"):
        Space.from_yaml(tmp_path / "missing.yaml")
    with pytest.raises(SpaceError, match="invalid YAML"):
        Space.from_yaml("lr: {type: float\n  low: [")
    with pytest.raises(SpaceError, match="a space must be a mapping"):
        Space.from_yaml("- a\n- b\n")
    with pytest.raises(SpaceError, match=r"parameter 'lr': unknown key 'hgh'"):
        Space.from_yaml("lr: {type: float, low: 0, hgh: 1}\n")


@pytest.mark.parametrize(
    "dist, value",
    [
        (Float(0.5, 0.5), 0.5),
        (Float(2.0, 2.0, log=True), 2.0),
        (Float(0.1, 0.1, step=0.05), 0.1),
        (Int(3, 3), 3),
        (Int(4, 4, log=True), 4),
        (Int(6, 6, step=2), 6),
    ],
)
def test_low_equal_to_high_is_a_constant(dist, value) -> None:
    assert dist.contains(value) and not dist.contains(value + 1)
    assert [dist.from_unit(u) for u in (0.0, 0.3, 1.0)] == [value] * 3
    assert dist.to_unit(value) == 0.5
    space = Space.from_dict({"c": dist.to_json(), "x": {"type": "float", "low": 0, "high": 1}})
    assert space["c"].same_as(dist)


def test_space_error_names_its_parameter() -> None:
    # callers (the study-file checker) place an error by this attribute, not by its text
    with pytest.raises(SpaceError) as bad_spec:
        Space.from_dict({"lr": {"type": "float", "low": 1, "high": 0}})
    assert bad_spec.value.parameter == "lr"
    with pytest.raises(SpaceError) as bad_parent:
        Space.from_dict({"m": {"type": "float", "low": 0, "high": 1, "when": {"opt": "sgd"}}})
    assert bad_parent.value.parameter == "m"
    with pytest.raises(SpaceError) as cycle:
        Space.from_dict(
            {
                "a": {"type": "int", "low": 0, "high": 1, "when": {"b": 0}},
                "b": {"type": "int", "low": 0, "high": 1, "when": {"a": 0}},
            }
        )
    assert cycle.value.parameter is None
    again = pickle.loads(pickle.dumps(bad_spec.value))
    assert again.parameter == "lr" and str(again) == str(bad_spec.value)
