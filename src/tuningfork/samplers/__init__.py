"""Samplers propose configurations from a study's history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuningfork.samplers.base import Reservation, Sampler
from tuningfork.samplers.grid import GridSampler
from tuningfork.samplers.qmc import QMCSampler
from tuningfork.samplers.random import RandomSampler
from tuningfork.space import Space

__all__ = [
    "GridSampler",
    "QMCSampler",
    "RandomSampler",
    "Reservation",
    "Sampler",
    "sampler_from_record",
]


def sampler_from_record(record: Mapping[str, Any]) -> Sampler | None:
    """Re-create a built-in sampler from the record `Sampler.describe()` wrote in a study,
    so that a study loaded later (another process, a restart) goes on with the same sampler.
    Returns None for a sampler it cannot rebuild (e.g. a user's own class)."""
    name, seed = record.get("name"), record.get("seed")
    if name == "RandomSampler":
        return RandomSampler(seed=seed)
    if name == "QMCSampler":
        return QMCSampler(
            qmc_type=record.get("qmc_type", "sobol"),
            scramble=record.get("scramble", True),
            seed=seed,
        )
    if name == "GridSampler":
        options = {"seed": seed, "shuffle": record.get("shuffle", True)}
        if "space" in record:
            space = Space.from_dict(record["space"])
            return GridSampler(space, resolution=record.get("resolution", 5), **options)
        if "values" in record:
            return GridSampler(record["values"], **options)
        return GridSampler(resolution=record.get("resolution", 5), **options)
    return None
