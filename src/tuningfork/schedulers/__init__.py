"""Schedulers watch a trial's reports and answer continue, stop or pause."""

import inspect
from collections.abc import Mapping
from typing import Any

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

_BY_NAME: dict[str, type[Scheduler]] = {
    cls.__name__: cls
    for cls in (
        ASHA, SHA, Hyperband, BOHB, DEHB, MedianStopping, PercentileStopping,
        ThresholdStopping, TimeStopping, RankStopping, PatienceStopping, NoScheduler,
    )
}  # fmt: skip


def scheduler_from_record(record: Mapping[str, Any]) -> Scheduler | None:
    """Re-create a built-in scheduler from the record `Scheduler.describe()` wrote in a
    study, so that a worker that loads the study (another process, node, a restart) goes
    on with the same scheduler. Returns None for one it cannot rebuild (a user's class)."""
    name = str(record.get("name"))
    if name == "AnyOf":
        members = [scheduler_from_record(m) for m in record.get("schedulers", ())]
        if not members or any(m is None for m in members):
            return None
        return AnyOf(*members)  # type: ignore[arg-type]
    cls = _BY_NAME.get(name)
    if cls is None:
        return None
    accepted = inspect.signature(cls).parameters
    options = {key: value for key, value in record.items() if key in accepted}
    try:
        return cls(**options)
    except (TypeError, ValueError):  # a record from another version: options changed
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
    "NoScheduler",
    "PatienceStopping",
    "PercentileStopping",
    "RankStopping",
    "Scheduler",
    "ThresholdStopping",
    "TimeStopping",
]
