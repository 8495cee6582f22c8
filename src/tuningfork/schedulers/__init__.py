"""Schedulers watch a trial's reports and answer continue, stop or pause."""

from tuningfork.schedulers.base import Decision, NoScheduler, Scheduler
from tuningfork.schedulers.early_stopping import (
    AnyOf,
    PatienceStopping,
    PercentileStopping,
    RankStopping,
    ThresholdStopping,
    TimeStopping,
)
from tuningfork.schedulers.median import MedianStopping

__all__ = [
    "AnyOf",
    "Decision",
    "MedianStopping",
    "NoScheduler",
    "PatienceStopping",
    "PercentileStopping",
    "RankStopping",
    "Scheduler",
    "ThresholdStopping",
    "TimeStopping",
]
