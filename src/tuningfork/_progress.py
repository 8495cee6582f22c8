"""What `Study.optimize` and the workers print while trials run: a live progress bar on a
terminal, else one line per finished trial (batch jobs, SLURM logs), and the line format
that ``tuningfork run`` prints too."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from tuningfork.exceptions import TuningforkError
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import Study


class Progress:
    """Shows how `Study.optimize` is going.

    ``enabled``: True draws ``[done/total trials] best=... elapsed=...`` on one line,
    rewritten in place; None (the default of ``optimize``) does that when ``stream`` is a
    terminal and otherwise prints one line per finished trial (`trial_line`), so that a
    batch job's log shows every trial; False prints nothing.
    """

    def __init__(
        self,
        study: Study,
        n_trials: int | None,
        timeout: float | None,
        enabled: bool | None,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = bool(enabled) or (enabled is None and terminal)
        self.lines = enabled is None and not terminal
        self.study = study
        self.n_trials = n_trials
        self.timeout = timeout
        self.done = 0
        self.best: float | None = None
        self.start = time.monotonic()
        self._last_draw = 0.0

    def update(self, trial: FrozenTrial, best: FrozenTrial | None = None) -> None:
        """Count a finished trial and redraw (at most ten times a second), or print its line
        with ``best``, the study's best trial as the caller knows it (None: read it)."""
        self.done += 1
        if trial.state is TrialState.COMPLETE and len(self.study.directions) == 1:
            value = trial.values[0]  # type: ignore[index]
            better = self.best is None or (
                value < self.best if self.study.direction == "minimize" else value > self.best
            )
            if better:
                self.best = value
        if self.lines:
            self._print_line(trial, best)
            return
        now = time.monotonic()
        if self.enabled and (now - self._last_draw > 0.1 or self.done == self.n_trials):
            self._last_draw = now
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def _print_line(self, trial: FrozenTrial, best: FrozenTrial | None) -> None:
        total = f"/{self.n_trials}" if self.n_trials is not None else ""
        best_so_far = best_text(self.study, ["value"], best)
        text = trial_line(
            trial,
            metrics=("value",) * len(self.study.directions),
            fields=[f"run {self.done}{total}", f"best {best_so_far}"],
            elapsed=time.monotonic() - self.start,
        )
        self.stream.write(text + "\n")
        self.stream.flush()

    def line(self) -> str:
        """The text of the progress bar."""
        total = f"/{self.n_trials}" if self.n_trials is not None else ""
        elapsed = time.monotonic() - self.start
        limit = f"/{self.timeout:.0f}s" if self.timeout is not None else "s"
        best = f"{self.best:.6g}" if self.best is not None else "-"
        return f"[{self.done}{total} trials] best={best} elapsed={elapsed:.1f}{limit}"

    def close(self) -> None:
        """End the progress bar's line."""
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()


def trial_line(
    trial: FrozenTrial,
    *,
    metrics: Sequence[str],
    fields: Sequence[str],
    elapsed: float,
    reason: bool = True,
) -> str:
    """One line for a finished trial run: its number, state and values (with ``reason``, a
    FAIL's reason, first line), then ``fields`` (e.g. counts, the best so far) and the
    seconds elapsed."""
    head = f"trial {trial.number} {trial.state.value}{outcome(trial, metrics)}"
    if reason and trial.state is TrialState.FAIL and trial.reason:
        head += f" ({trial.reason.strip().splitlines()[0]})"
    return f"{head}  | " + " | ".join([*fields, f"{elapsed:.0f}s"])


def outcome(trial: FrozenTrial, metrics: Sequence[str]) -> str:
    """`` val_acc=0.93`` for a complete trial, `` at step 9`` for a pruned or paused one."""
    if trial.state is TrialState.COMPLETE and trial.values is not None:
        return " " + " ".join(f"{m}={v:.6g}" for m, v in zip(metrics, trial.values))
    if trial.state in (TrialState.PRUNED, TrialState.PAUSED):
        step = trial.last_step
        return f" at step {step}" if step is not None else ""
    return ""


def best_text(study: Study, metrics: Sequence[str], best: FrozenTrial | None = None) -> str:
    """The study's best so far, every worker's trials counted: ``value=0.1 (trial 7)``, the
    size of the Pareto front, or ``-`` before the first complete trial. ``best``: the best
    trial if the caller knows it (saves reading the study)."""
    if len(study.directions) > 1:
        try:
            return f"{len(study.best_trials)} Pareto-optimal"
        except TuningforkError:
            return "-"
    if best is None:
        try:
            best = study.best_trial
        except TuningforkError:
            return "-"
    return f"{metrics[0]}={best.values[0]:.6g} (trial {best.number})"  # type: ignore[index]
