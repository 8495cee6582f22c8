"""GridSampler: the exact cartesian product, each point once, with threads and processes."""

from __future__ import annotations

import itertools
import json
import threading

import pytest

import tuningfork as tf
from tuningfork import TrialState
from tuningfork.testing import run_in_processes

VALUES = {"lr": [0.1, 0.01, 0.001], "layers": [1, 2], "act": ["relu", "tanh"]}


def objective(trial: tf.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
    layers = trial.suggest_int("layers", 1, 4)
    act = trial.suggest_categorical("act", ["relu", "tanh", "gelu"])
    return lr * layers + (act == "tanh")


def configs(study: tf.Study) -> list[tuple]:
    return [(t.params["lr"], t.params["layers"], t.params["act"]) for t in study.trials]


def test_explicit_values_cover_the_cartesian_product_once(storage_url):
    sampler = tf.GridSampler(VALUES, seed=0)
    assert sampler.grid_size == 12
    study = tf.create_study(storage=storage_url, sampler=sampler)
    study.optimize(objective)  # no n_trials: runs until the grid is exhausted
    found = configs(study)
    assert len(found) == 12
    assert sorted(found) == sorted(itertools.product(*VALUES.values()))
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    assert sorted(t.system_attrs["grid_index"] for t in study.trials) == list(range(12))
    with pytest.raises(tf.SearchExhausted, match="12 grid points"):
        study.ask()
    study.optimize(objective, n_trials=5)
    assert len(study.trials) == 12


def test_canonical_order_is_cartesian_last_parameter_fastest():
    sampler = tf.GridSampler(VALUES, shuffle=False)
    points = [sampler.grid_point(i) for i in range(sampler.grid_size)]
    assert [tuple(p.values()) for p in points] == list(itertools.product(*VALUES.values()))
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(objective, n_trials=4)
    assert [t.system_attrs["grid_index"] for t in study.trials] == [0, 1, 2, 3]
    assert [t.params for t in study.trials] == points[:4]


def test_shuffled_order_is_seeded():
    def order(seed):
        study = tf.create_study(storage="memory", sampler=tf.GridSampler(VALUES, seed=seed))
        study.optimize(objective)
        return [t.system_attrs["grid_index"] for t in study.trials]

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(3)) == list(range(12))


def test_grid_from_a_space_discretises_each_kind():
    space = tf.Space(
        kind=tf.Categorical(["a", "b", "c"]),
        few=tf.Int(1, 4),
        many=tf.Int(0, 100, step=10),
        log_int=tf.Int(1, 10_000, log=True),
        lr=tf.Float(1e-4, 1.0, log=True),
        x=tf.Float(-1.0, 1.0),
        stepped=tf.Float(0.0, 1.0, step=0.25),
        fine=tf.Float(0.0, 1.0, step=0.1),
    )
    values = tf.GridSampler(space, resolution=5, seed=0).describe()["values"]
    assert values["kind"] == ["a", "b", "c"]
    assert values["few"] == [1, 2, 3, 4]  # <= resolution values: all of them
    assert values["many"] == [0, 20, 50, 80, 100]  # on the step grid
    assert values["log_int"] == [1, 10, 100, 1000, 10_000]
    assert values["lr"] == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0], rel=1e-9)
    assert values["x"] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert values["stepped"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert values["fine"] == [0.0, 0.2, 0.5, 0.8, 1.0]
    for name, listed in values.items():
        assert len(set(listed)) == len(listed)
        assert all(space[name].contains(v) for v in listed)
    assert tf.GridSampler(space).grid_size == 3 * 4 * 5**6


def test_resolution_per_parameter_and_unique_points():
    space = tf.Space(a=tf.Float(0.0, 1.0), b=tf.Int(1, 3, log=True), c=tf.Int(0, 9))
    sampler = tf.GridSampler(space, resolution={"a": 3, "c": 1})
    values = sampler.describe()["values"]
    assert values == {"a": [0.0, 0.5, 1.0], "b": [1, 2, 3], "c": [4]}
    assert sampler.grid_size == 9
    # log-spaced ints that round together are kept once
    crowded = tf.GridSampler(tf.Space(n=tf.Int(1, 8, log=True)), resolution=7)
    listed = crowded.describe()["values"]["n"]
    assert listed == sorted(set(listed)) and listed[0] == 1 and listed[-1] == 8


def test_conditional_space_gives_only_valid_combinations():
    space = tf.Space(
        model=tf.Categorical(["linear", "net"]),
        layers=tf.Int(1, 2, when={"model": "net"}),
        dropout=tf.Categorical([0.0, 0.5], when={"layers": 2}),
        bias=tf.Categorical([True, False]),
    )
    sampler = tf.GridSampler(space, shuffle=False)
    points = [sampler.grid_point(i) for i in range(sampler.grid_size)]
    expected = [
        {"model": "linear", "bias": True},
        {"model": "linear", "bias": False},
        {"model": "net", "layers": 1, "bias": True},
        {"model": "net", "layers": 1, "bias": False},
        {"model": "net", "layers": 2, "dropout": 0.0, "bias": True},
        {"model": "net", "layers": 2, "dropout": 0.0, "bias": False},
        {"model": "net", "layers": 2, "dropout": 0.5, "bias": True},
        {"model": "net", "layers": 2, "dropout": 0.5, "bias": False},
    ]
    assert points == expected
    for point in points:
        space.validate(point)
    study = tf.create_study(storage="memory", sampler=tf.GridSampler(space, seed=4))
    study.optimize(lambda t: 0.0, space=space)
    assert sorted(map(json.dumps, (t.params for t in study.trials))) == sorted(
        map(json.dumps, expected)
    )


def test_grid_taken_from_the_space_given_to_optimize():
    space = tf.Space(x=tf.Float(0.0, 1.0), n=tf.Int(1, 2))
    sampler = tf.GridSampler(resolution=3, seed=0)
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(lambda t: t.params["x"], space=space)
    assert sorted((t.params["x"], t.params["n"]) for t in study.trials) == [
        (x, n) for x in (0.0, 0.5, 1.0) for n in (1, 2)
    ]
    assert sampler.grid_size == 6
    with pytest.raises(tf.SpaceError, match="another space"):
        study.ask(tf.Space(y=tf.Float(0.0, 1.0)))


def test_no_grid_is_a_clear_error():
    study = tf.create_study(storage="memory", sampler=tf.GridSampler())
    with pytest.raises(tf.SpaceError, match="GridSampler has no grid"):
        study.ask()


def test_parameter_outside_the_grid_is_refused_with_the_fix():
    study = tf.create_study(storage="memory", sampler=tf.GridSampler({"x": [1.0, 2.0]}))

    def uses_extra(trial):
        return trial.suggest_float("x", 0.0, 3.0) + trial.suggest_float("momentum", 0.0, 1.0)

    with pytest.raises(tf.SpaceError, match="'momentum' is not in the grid") as info:
        study.optimize(uses_extra, n_trials=1)
    assert "['x']" in str(info.value) and "GridSampler({..., 'momentum'" in str(info.value)
    assert study.trials[0].state is TrialState.FAIL


def test_grid_value_outside_the_suggested_range_is_an_error():
    study = tf.create_study(storage="memory", sampler=tf.GridSampler({"x": [5.0]}))
    with pytest.raises(tf.SpaceError, match="'x'"):
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        # bad options are OptionErrors; a bad grid is a SpaceError
        ({}, {"resolution": 0}, tf.OptionError, "resolution must be an int >= 1"),
        ({}, {"resolution": True}, tf.OptionError, "resolution must be"),
        ({"x": []}, {}, tf.SpaceError, "grid values of 'x'"),
        ({"x": [1, 1]}, {}, tf.SpaceError, "duplicate"),
        ({"x": [[1]]}, {}, tf.SpaceError, "grid values of 'x'"),
        ({}, {"shuffle": "yes"}, tf.OptionError, "shuffle"),
    ],
)
def test_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        tf.GridSampler(args or None, **kwargs)


def test_bad_resolution_names_and_empty_grids():
    with pytest.raises(tf.SpaceError, match="'y', which is not in the space"):
        tf.GridSampler(tf.Space(x=tf.Float(0, 1)), resolution={"y": 3})
    with pytest.raises(tf.SpaceError, match="explicit values"):
        tf.GridSampler({"x": [1, 2]}, resolution={"x": 3})
    with pytest.raises(tf.SpaceError, match="empty"):
        tf.GridSampler({})
    with pytest.raises(tf.SpaceError, match="more than"):
        tf.GridSampler(tf.Space({f"p{i}": tf.Float(0, 1) for i in range(11)}), resolution=5)


def test_describe_is_json_and_recorded():
    sampler = tf.GridSampler(VALUES, seed=3)
    study = tf.create_study(storage="memory", sampler=sampler)
    record = study.system_attrs["sampler"]
    assert json.loads(json.dumps(record)) == record
    assert record == {
        "name": "GridSampler",
        "seed": 3,
        "shuffle": True,
        "resolution": 5,
        "grid_size": 12,
        "values": VALUES,
    }


def test_four_threads_run_each_point_exactly_once(storage_url):
    study = tf.create_study(storage=storage_url, sampler=tf.GridSampler(VALUES, seed=5))
    study.optimize(objective, n_trials=100, n_jobs=4)
    found = configs(study)
    assert len(found) == 12 and len(set(found)) == 12
    assert [t.number for t in study.trials] == list(range(12))


def test_ask_from_threads_each_point_exactly_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    tf.create_study("g", storage=url, sampler=tf.GridSampler(VALUES, seed=6))
    errors: list[BaseException] = []

    def work():
        # each thread has its own Study handle, as separate workers would
        study = tf.load_study("g", storage=url, sampler=tf.GridSampler(VALUES, seed=6))
        try:
            while True:
                trial = study.ask()
                study.tell(trial, objective(trial))
        except tf.SearchExhausted:
            return
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    found = configs(tf.load_study("g", storage=url))
    assert len(found) == 12 and len(set(found)) == 12


def _grid_worker(url: str, seed: int) -> int:
    study = tf.load_study("grid", storage=url, sampler=tf.GridSampler(VALUES, seed=seed))
    study.optimize(objective)
    return len(study.trials)


@pytest.mark.slow
def test_two_processes_run_each_point_exactly_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'grid.db'}"
    tf.create_study("grid", storage=url, sampler=tf.GridSampler(VALUES, seed=7))
    # the processes' orders differ (different seeds): the claims still settle every point once
    run_in_processes(_grid_worker, [(url, 7), (url, 8)])
    study = tf.load_study("grid", storage=url)
    found = configs(study)
    assert len(found) == 12
    assert sorted(found) == sorted(itertools.product(*VALUES.values()))
    assert all(t.state is TrialState.COMPLETE for t in study.trials)


def test_resumed_study_completes_the_grid(tmp_path):
    url = f"sqlite:///{tmp_path / 'resume.db'}"
    first = tf.create_study("r", storage=url, sampler=tf.GridSampler(VALUES, seed=9))
    first.optimize(objective, n_trials=5)
    del first
    resumed = tf.load_study("r", storage=url, sampler=tf.GridSampler(VALUES, seed=9))
    resumed.optimize(objective)
    found = configs(resumed)
    assert len(found) == 12 and len(set(found)) == 12


def test_enqueued_trials_run_beside_the_grid():
    study = tf.create_study(storage="memory", sampler=tf.GridSampler({"x": [1.0, 2.0]}))
    study.enqueue_trial({"x": 1.5})
    study.optimize(lambda t: t.suggest_float("x", 0.0, 3.0))
    assert [t.params["x"] for t in study.trials][0] == 1.5
    assert sorted(t.params["x"] for t in study.trials) == [1.0, 1.5, 2.0]
