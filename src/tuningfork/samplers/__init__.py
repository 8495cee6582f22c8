"""Samplers propose configurations from a study's history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuningfork.exceptions import OptionError
from tuningfork.registry import lookup, register
from tuningfork.samplers.auto import AutoSampler
from tuningfork.samplers.base import Reservation, Sampler
from tuningfork.samplers.cmaes import CmaEsSampler
from tuningfork.samplers.de import DESampler
from tuningfork.samplers.eda import EDASampler
from tuningfork.samplers.genetic import GASampler, NSGAIISampler
from tuningfork.samplers.gp import GPSampler
from tuningfork.samplers.grid import GridSampler
from tuningfork.samplers.nsga3 import NSGAIIISampler
from tuningfork.samplers.pso import PSOSampler
from tuningfork.samplers.qmc import QMCSampler
from tuningfork.samplers.random import RandomSampler
from tuningfork.samplers.tpe import TPESampler

__all__ = [
    "AutoSampler",
    "GASampler",
    "CmaEsSampler",
    "GPSampler",
    "GridSampler",
    "NSGAIISampler",
    "NSGAIIISampler",
    "DESampler",
    "EDASampler",
    "PSOSampler",
    "QMCSampler",
    "RandomSampler",
    "Reservation",
    "Sampler",
    "TPESampler",
    "sampler_from_record",
]

for _name, _class in (
    ("auto", AutoSampler),
    ("random", RandomSampler),
    ("grid", GridSampler),
    ("qmc", QMCSampler),
    ("tpe", TPESampler),
    ("gp", GPSampler),
    ("ga", GASampler),
    ("nsga2", NSGAIISampler),
    ("nsga3", NSGAIIISampler),
    ("de", DESampler),
    ("pso", PSOSampler),
    ("eda", EDASampler),
    ("cmaes", CmaEsSampler),
):
    register(_class, name=_name)


def sampler_from_record(record: Mapping[str, Any]) -> Sampler | None:
    """Re-create a registered sampler (a built-in, or a class of `tuningfork.register` or
    of a plug-in package) from the record `Sampler.describe()` wrote in a study, so that a
    study loaded later (another process, a restart) goes on with the same sampler.
    Returns None for a sampler that is not registered."""
    try:
        cls = lookup("sampler", str(record.get("name")))
    except OptionError:
        return None
    return cls.from_record(record)  # type: ignore[attr-defined]
