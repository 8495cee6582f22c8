"""The registry of samplers and schedulers, plug-ins, and records derived from __init__."""

from __future__ import annotations

import json
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

import tuningfork as tf
from tuningfork import registry
from tuningfork.config import parse_config
from tuningfork.exceptions import OptionError
from tuningfork.samplers import RandomSampler, Sampler, TPESampler, sampler_from_record
from tuningfork.schedulers import NoScheduler, Scheduler, scheduler_from_record
from tuningfork.space import Distribution, Value
from tuningfork.trial import FrozenTrial

RECORDS = Path(__file__).parent / "data" / "records_0.json"
STUDY_FILE = 'study: s\nspace: {x: {type: float, low: 0.0, high: 1.0}}\ncommand: [prog, "{x}"]\n'


@pytest.fixture(autouse=True)
def own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers into a copy, and finds the entry points of its own sys.path."""
    registry.names("sampler")  # the built-ins are in before the copy
    copy = {kind: dict(table) for kind, table in registry._by_name.items()}
    monkeypatch.setattr(registry, "_by_name", copy)
    monkeypatch.setattr(registry, "_plugins_loaded", set())


class HalfSampler(Sampler):
    """A user's sampler: always the middle of the unit interval, scaled."""

    def __init__(self, *, scale: float = 1.0, seed: int | None = None) -> None:
        self.scale = scale
        self.seed = seed

    def sample(
        self, study: Any, trial: FrozenTrial, name: str, distribution: Distribution
    ) -> Value:
        return distribution.from_unit(0.5 * self.scale)  # type: ignore[attr-defined]


class NeverStop(Scheduler):
    def __init__(self, patience: int = 3) -> None:
        self.patience = patience

    def decide(self, study: Any, trial: FrozenTrial, step: int, value: float) -> tf.Decision:
        return tf.Decision.CONTINUE


def _record(obj: Sampler | Scheduler) -> dict[str, Any]:
    return json.loads(json.dumps(obj.describe()))


# -- records ---------------------------------------------------------------------------------


@pytest.mark.parametrize("item", json.loads(RECORDS.read_text()), ids=lambda item: item["built"])
def test_a_record_written_before_the_registry_loads_and_round_trips(item) -> None:
    record = item["record"]
    rebuilt = sampler_from_record(record) or scheduler_from_record(record)
    assert rebuilt is not None and type(rebuilt).__name__ == record["name"]
    assert _record(rebuilt) == record  # the same record: no key lost, none renamed


def test_every_built_in_has_a_stored_record() -> None:
    stored = {item["record"]["name"] for item in json.loads(RECORDS.read_text())}
    for kind in registry.KINDS:
        for name in registry.names(kind):
            assert registry.lookup(kind, name).__name__ in stored


def test_the_record_is_derived_from_init() -> None:
    sampler = HalfSampler(scale=0.5, seed=3)
    assert sampler.describe() == {"name": "HalfSampler", "scale": 0.5, "seed": 3}
    again = HalfSampler.from_record({**sampler.describe(), "unknown": 1})
    assert (again.scale, again.seed) == (0.5, 3)
    any_of = tf.AnyOf(tf.MedianStopping(n_startup_trials=2), tf.PatienceStopping(4))
    record = _record(any_of)
    assert record["schedulers"][1] == {"name": "PatienceStopping", "patience": 4, "min_delta": 0.0}
    assert _record(tf.AnyOf.from_record(record)) == record


def test_a_function_gamma_is_recorded_by_name_and_comes_back_as_the_default() -> None:
    def my_gamma(n: int) -> int:
        return n // 4

    record = _record(TPESampler(gamma=my_gamma, seed=1))
    assert record["gamma"].endswith("my_gamma")
    assert TPESampler.from_record(record).gamma is None


# -- register and lookup ------------------------------------------------------------------


def test_register_lookup_and_names() -> None:
    assert registry.register(HalfSampler, name="half") is HalfSampler
    assert registry.lookup("sampler", "half") is HalfSampler
    assert registry.lookup("sampler", "HALFSAMPLER") is HalfSampler  # the class name, any case
    assert registry.lookup("sampler", "TPE") is TPESampler
    assert "half" in registry.names("sampler")
    decorated = tf.register(name="never")(NeverStop)
    assert decorated is NeverStop and registry.lookup("scheduler", "never") is NeverStop
    assert registry.lookup("scheduler", "none") is NoScheduler


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(OptionError) as info:
        registry.lookup("sampler", "tpee")
    assert str(info.value).startswith(  # samplers registered later follow
        "unknown sampler 'tpee'; did you mean 'tpe'? allowed: auto, random, grid, qmc, tpe, gp"
    )
    assert info.value.option == "name"


def test_register_checks_the_class_and_kind() -> None:
    with pytest.raises(OptionError, match="neither a Sampler nor a Scheduler"):
        registry.register(dict)
    with pytest.raises(OptionError, match="it is a sampler"):
        registry.register(HalfSampler, kind="scheduler")


def test_load_study_re_creates_a_registered_class(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    tf.register(HalfSampler)
    tf.register(NeverStop)
    tf.create_study("s", url, sampler=HalfSampler(scale=0.25, seed=2), scheduler=NeverStop(5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        study = tf.load_study("s", url)
    assert isinstance(study.sampler, HalfSampler) and study.sampler.scale == 0.25
    assert isinstance(study.scheduler, NeverStop) and study.scheduler.patience == 5


def test_load_study_warns_for_a_class_that_is_not_registered(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    tf.create_study("s", url, sampler=HalfSampler(seed=2))
    with pytest.warns(UserWarning, match="'HalfSampler', which cannot be re-created"):
        study = tf.load_study("s", url)
    assert isinstance(study.sampler, RandomSampler)


def test_a_study_file_names_a_registered_class() -> None:
    tf.register(HalfSampler, name="half")
    tf.register(NeverStop, name="never")
    config = parse_config(
        STUDY_FILE + "seed: 4\nsampler: {name: half, scale: 0.5}\nscheduler: never\n"
    )
    sampler = config.make_sampler()
    assert isinstance(sampler, HalfSampler) and (sampler.scale, sampler.seed) == (0.5, 4)
    assert isinstance(config.make_scheduler(), NeverStop)
    with pytest.raises(tf.ConfigError, match="unknown sampler option 'scal'; did you mean"):
        parse_config(STUDY_FILE + "sampler: {name: half, scal: 0.5}\n")


# -- plug-ins through entry points --------------------------------------------------------


def _install_plugin(root: Path, body: str, entry_points: str) -> None:
    """A tiny installed distribution: a module and a dist-info with entry points."""
    (root / "tf_plugin_demo.py").write_text(textwrap.dedent(body))
    info = root / "tf_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tf-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


PLUGIN = """\
    from tuningfork.samplers import Sampler

    class PluginSampler(Sampler):
        def __init__(self, *, width: float = 1.0, seed=None):
            self.width = width
            self.seed = seed

        def sample(self, study, trial, name, distribution):
            return distribution.from_unit(0.5 * self.width)
"""


def test_a_plug_in_entry_point_is_found_by_name(tmp_path: Path, monkeypatch) -> None:
    _install_plugin(
        tmp_path,
        PLUGIN,
        """\
        [tuningfork.samplers]
        plugged = tf_plugin_demo:PluginSampler
        broken = tf_plugin_demo_missing:Nothing
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tf_plugin_demo", raising=False)
    with pytest.warns(UserWarning, match="entry point 'broken' .* could not be loaded"):
        config = parse_config(STUDY_FILE + "sampler: {name: plugged, width: 0.5}\n")
    sampler = config.make_sampler()
    assert type(sampler).__name__ == "PluginSampler" and sampler.width == 0.5
    assert "plugged" in registry.names("sampler")
    again = sampler_from_record(sampler.describe())  # what load_study does
    assert type(again) is type(sampler) and again.width == 0.5


def test_the_public_api_plug_ins_of_tests_plugins_work_in_study_files_and_on_load(
    tmp_path: Path,
) -> None:
    from plugins import LocalSearchSampler, TwoRungHalving

    tf.register(LocalSearchSampler, name="local")
    tf.register(TwoRungHalving, name="two_rungs")
    config = parse_config(
        STUDY_FILE + f"storage: sqlite:///{tmp_path / 'p.db'}\nseed: 1\n"
        "sampler: {name: local, width: 0.2}\nscheduler: {name: two_rungs, high: 9}\n"
    )
    config.create_study()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        study = tf.load_study("s", config.storage_url())
    assert isinstance(study.sampler, LocalSearchSampler) and study.sampler.width == 0.2
    assert isinstance(study.scheduler, TwoRungHalving) and study.scheduler.high == 9
