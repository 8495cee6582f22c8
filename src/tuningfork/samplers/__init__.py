"""Samplers propose configurations from a study's history."""

from tuningfork.samplers.base import Reservation, Sampler
from tuningfork.samplers.random import RandomSampler

__all__ = ["RandomSampler", "Reservation", "Sampler"]
