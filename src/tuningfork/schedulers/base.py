"""The scheduler interface: at each report, continue, stop or pause the trial.

Stopping-type rules (median, ASHA-as-pruning) answer only CONTINUE or STOP; promotion-type
algorithms (SHA/ASHA with promotions, Hyperband with resume, PBT) also answer PAUSE.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from tuningfork.trial import FrozenTrial

if TYPE_CHECKING:
    from tuningfork.study import Study


class Decision(str, enum.Enum):
    """A scheduler's answer to a report."""

    CONTINUE = "continue"
    STOP = "stop"
    PAUSE = "pause"


class Scheduler:
    """Base class of every scheduler. Subclasses implement `decide`."""

    def decide(self, study: Study, trial: FrozenTrial, step: int, value: float) -> Decision:
        """The answer to ``trial`` having reported ``value`` at ``step`` (its last report)."""
        raise NotImplementedError(f"{type(self).__name__} must implement decide()")

    def describe(self) -> dict[str, Any]:
        """A JSON record of this scheduler's class and options, kept in the study's record."""
        return {"name": type(self).__name__}


class NoScheduler(Scheduler):
    """Never stops a trial: every trial runs to the end."""

    def decide(self, study: Study, trial: FrozenTrial, step: int, value: float) -> Decision:
        return Decision.CONTINUE
