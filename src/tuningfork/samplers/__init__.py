"""Samplers propose configurations from a study's history."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from tuningfork.samplers.auto import AutoSampler
from tuningfork.samplers.base import Reservation, Sampler
from tuningfork.samplers.gp import GPSampler
from tuningfork.samplers.grid import GridSampler
from tuningfork.samplers.qmc import QMCSampler
from tuningfork.samplers.random import RandomSampler
from tuningfork.samplers.tpe import TPESampler
from tuningfork.space import Space

__all__ = [
    "AutoSampler",
    "GPSampler",
    "GridSampler",
    "QMCSampler",
    "RandomSampler",
    "Reservation",
    "Sampler",
    "TPESampler",
    "sampler_from_record",
]

_BY_OPTIONS: dict[str, type[Sampler]] = {
    "RandomSampler": RandomSampler,
    "QMCSampler": QMCSampler,
    "TPESampler": TPESampler,
    "GPSampler": GPSampler,
    "AutoSampler": AutoSampler,
}


def sampler_from_record(record: Mapping[str, Any]) -> Sampler | None:
    """Re-create a built-in sampler from the record `Sampler.describe()` wrote in a study,
    so that a study loaded later (another process, a restart) goes on with the same sampler.
    Returns None for a sampler it cannot rebuild (e.g. a user's own class)."""
    name = record.get("name")
    if name == "GridSampler":
        return _grid_from_record(record)
    cls = _BY_OPTIONS.get(str(name))
    if cls is None:
        return None
    accepted = inspect.signature(cls).parameters
    options = {key: value for key, value in record.items() if key in accepted}
    if isinstance(options.get("gamma"), str):  # a function, recorded by its name only
        del options["gamma"]
    return cls(**options)


def _grid_from_record(record: Mapping[str, Any]) -> GridSampler:
    options = {"seed": record.get("seed"), "shuffle": record.get("shuffle", True)}
    if "space" in record:
        space = Space.from_dict(record["space"])
        return GridSampler(space, resolution=record.get("resolution", 5), **options)
    if "values" in record:
        return GridSampler(record["values"], **options)
    return GridSampler(resolution=record.get("resolution", 5), **options)
