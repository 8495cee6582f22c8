"""Schedulers watch a trial's reports and answer continue, stop or pause."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuningfork.registry import lookup, register
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
from tuningfork.schedulers.pb2 import PB2
from tuningfork.schedulers.pbt import PBT, PBTReplay, lineage, replay_schedule
from tuningfork.schedulers.sha import SHA

for _name, _class in (
    ("none", NoScheduler),
    ("median", MedianStopping),
    ("percentile", PercentileStopping),
    ("threshold", ThresholdStopping),
    ("time", TimeStopping),
    ("rank", RankStopping),
    ("patience", PatienceStopping),
    ("sha", SHA),
    ("asha", ASHA),
    ("hyperband", Hyperband),
    ("bohb", BOHB),
    ("dehb", DEHB),
    ("any_of", AnyOf),
    ("pbt", PBT),
    ("pb2", PB2),
    ("pbt_replay", PBTReplay),
):
    register(_class, name=_name)


def scheduler_from_record(record: Mapping[str, Any]) -> Scheduler | None:
    """Re-create a registered scheduler (a built-in, or a class of `tuningfork.register`
    or of a plug-in package) from the record `Scheduler.describe()` wrote in a study, so
    that a worker that loads the study (another process, node, a restart) goes on with the
    same scheduler. Returns None for one it cannot rebuild (not registered, or a record
    whose options this version does not take)."""
    try:
        cls = lookup("scheduler", str(record.get("name")))
        return cls.from_record(record)  # type: ignore[attr-defined]
    except (TypeError, ValueError):  # OptionError included: an unknown name
        return None


__all__ = [
    "scheduler_from_record",
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
    "PB2",
    "PBT",
    "PBTReplay",
    "lineage",
    "replay_schedule",
    "NoScheduler",
    "PatienceStopping",
    "PercentileStopping",
    "RankStopping",
    "Scheduler",
    "ThresholdStopping",
    "TimeStopping",
]
