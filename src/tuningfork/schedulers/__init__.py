"""Schedulers watch a trial's reports and answer continue, stop or pause."""

from tuningfork.schedulers._rungs import Bracket, hyperband_brackets
from tuningfork.schedulers.asha import ASHA
from tuningfork.schedulers.base import Assignment, Decision, NoScheduler, Scheduler
from tuningfork.schedulers.bohb import BOHB
from tuningfork.schedulers.dehb import DEHB
from tuningfork.schedulers.early_stopping import (
    AnyOf,
    PatienceStopping,
    PercentileStopping,
    RankStopping,
    ThresholdStopping,
    TimeStopping,
)
from tuningfork.schedulers.hyperband import Hyperband
from tuningfork.schedulers.median import MedianStopping
from tuningfork.schedulers.sha import SHA

__all__ = [
    "ASHA",
    "AnyOf",
    "Assignment",
    "BOHB",
    "DEHB",
    "Bracket",
    "Hyperband",
    "SHA",
    "hyperband_brackets",
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
