"""A one-line progress display for `Study.optimize`, shown when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import Study


class Progress:
    """Prints ``[done/total] best=... elapsed`` on one line, rewritten in place."""

    def __init__(
        self,
        study: Study,
        n_trials: int | None,
        timeout: float | None,
        enabled: bool | None,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.study = study
        self.n_trials = n_trials
        self.timeout = timeout
        self.done = 0
        self.best: float | None = None
        self.start = time.monotonic()
        self._last_draw = 0.0

    def update(self, trial: FrozenTrial) -> None:
        """Count a finished trial and redraw (at most ten times a second)."""
        self.done += 1
        if trial.state is TrialState.COMPLETE and len(self.study.directions) == 1:
            value = trial.values[0]  # type: ignore[index]
            better = self.best is None or (
                value < self.best if self.study.direction == "minimize" else value > self.best
            )
            if better:
                self.best = value
        now = time.monotonic()
        if self.enabled and (now - self._last_draw > 0.1 or self.done == self.n_trials):
            self._last_draw = now
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def line(self) -> str:
        """The text of the progress line."""
        total = f"/{self.n_trials}" if self.n_trials is not None else ""
        elapsed = time.monotonic() - self.start
        limit = f"/{self.timeout:.0f}s" if self.timeout is not None else "s"
        best = f"{self.best:.6g}" if self.best is not None else "-"
        return f"[{self.done}{total} trials] best={best} elapsed={elapsed:.1f}{limit}"

    def close(self) -> None:
        """End the line."""
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()
