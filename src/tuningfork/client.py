"""The program's side of tuningfork's report protocol, in one standard-library file.

A training script run by `tuningfork.command.CommandObjective` (or a YAML study file) uses
it to read its parameters, report progress and learn whether to stop::

    from tuningfork import client

    lr = float(client.params().get("lr", 0.01))
    start = (client.last_step() or 0) + 1 if client.resumed() else 1
    for epoch in range(start, int(client.budget() or 10) + 1):
        loss = train_one_epoch(lr)
        if client.report(val_loss=loss, step=epoch) != "continue":
            save_checkpoint(client.checkpoint_dir())
            break
    else:
        client.result(val_loss=loss)

That saves after the answer, which suits stopping and halving schedulers (ASHA...). With a
population-based one (PBT, PB2) save **before** reporting at the budget: that report
commits the checkpoint directory as it stands (other members may copy it), and the
answer comes once it is snapshotted; a resumed run may then find another member's
checkpoint there and new values in `params`::

    for epoch in range(start, int(client.budget()) + 1):
        loss = train_one_epoch(lr)
        if epoch == int(client.budget()):
            save_checkpoint(client.checkpoint_dir())  # before: the report commits it
        if client.report(val_loss=loss, step=epoch) != "continue":
            break  # paused at a perturbation boundary
    else:
        client.result(val_loss=loss)

Outside tuningfork (no ``TUNINGFORK_*`` environment variables) every function has a
harmless default, so the script still runs on its own. The file imports only the standard
library and works under Python 3.8 or later: copy it next to a script that cannot install
tuningfork. See ``docs/protocol.md`` for the protocol itself.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import warnings
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:  # typing only: this file must import under Python 3.8's standard library
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

    # what signal.signal returns: the previous handler
    _Handler = Callable[[int, FrameType | None], Any] | int | None

__all__ = [
    "ANSWER_TIMEOUT",
    "budget",
    "checkpoint_dir",
    "last_step",
    "on_terminate",
    "params",
    "report",
    "result",
    "resumed",
    "seed",
    "should_stop",
    "trial_id",
]

ANSWER_TIMEOUT = 2.0
"""Seconds `report` waits for tuningfork's answer to a step before assuming "continue";
a report at the budget waits as long as the answer takes (see `report`)."""

_POLL_S = 0.005
_last_action = "continue"


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def params() -> dict:
    """The trial's parameters (``TUNINGFORK_PARAMS``); ``{}`` outside tuningfork."""
    raw = _env("TUNINGFORK_PARAMS")
    return dict(json.loads(raw)) if raw else {}


def trial_id() -> int | None:
    """The trial number, or None outside tuningfork."""
    raw = _env("TUNINGFORK_TRIAL_ID")
    return int(raw) if raw is not None else None


def budget() -> float | None:
    """How far to train in this run, in report steps (epochs...); None if not set."""
    raw = _env("TUNINGFORK_BUDGET")
    return float(raw) if raw is not None else None


def last_step() -> int | None:
    """On a resumed trial, the last step reported before (go on from ``last_step() + 1``);
    else None."""
    raw = _env("TUNINGFORK_LAST_STEP")
    return int(raw) if raw is not None else None


def resumed() -> bool:
    """True when this run continues a paused trial: load the checkpoint first."""
    return os.environ.get("TUNINGFORK_RESUMED") == "1"


def checkpoint_dir() -> str | None:
    """The trial's checkpoint directory (it exists), or None outside tuningfork."""
    return _env("TUNINGFORK_CHECKPOINT_DIR")


def seed() -> int | None:
    """A seed for this trial's random generators, or None outside tuningfork."""
    raw = _env("TUNINGFORK_SEED")
    return int(raw) if raw is not None else None


def _read_control(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):  # not there yet
        return {}
    return data if isinstance(data, dict) else {}


def report(_step: int | None = None, /, *, step: int | None = None, **metrics: float) -> str:
    """Report ``metrics`` at ``step`` (an int: epoch, samples, seconds) and return
    tuningfork's answer: ``"continue"``, ``"stop"`` (end the run) or ``"pause"`` (save a
    checkpoint and end the run; it may be resumed later). Exit with code 0 after "stop" or
    "pause". Called as ``report(val_loss=0.3, step=epoch)``: values first, then the step,
    as ``trial.report(value, step)`` (``report(epoch, val_loss=...)``, the step first,
    still works with a DeprecationWarning).

    Inside tuningfork the report is appended as a JSON line to ``TUNINGFORK_REPORT_FILE``
    (printed to stdout if only the control file is set), then the answer for this step is
    awaited in ``TUNINGFORK_CONTROL_FILE`` for up to `ANSWER_TIMEOUT` seconds ("continue"
    if none comes). A report at the budget (``step >= budget()``) waits for its answer
    however long it takes, since a population-based scheduler (PBT, PB2) snapshots the
    checkpoint directory before answering: do not touch it until `report` returns.
    Outside tuningfork the report line is printed and "continue" returned.
    """
    global _last_action
    if _step is not None:
        if step is not None:
            raise TypeError("report() got the step twice; pass it once, as step=")
        warnings.warn(
            "client.report(step, **metrics) is deprecated; write report(**metrics, step=N) "
            "(values first, as trial.report(value, step))",
            DeprecationWarning,
            stacklevel=2,
        )
        step = _step
    if step is None:
        raise TypeError("report() needs the step: report(val_loss=0.3, step=epoch)")
    line = json.dumps({"tuningfork": {"step": step, **metrics}})
    report_file = _env("TUNINGFORK_REPORT_FILE")
    if report_file:
        with open(report_file, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")  # one write: lines from one process never interleave
    else:
        print(line, flush=True)
    control = _env("TUNINGFORK_CONTROL_FILE")
    action = _await_answer(control, step) if control else "continue"
    _last_action = action
    return action


def _await_answer(control: str, step: int) -> str:
    """The answer to the report at ``step``: "continue" when none came within
    `ANSWER_TIMEOUT` seconds. At the budget there is no time limit, as long as the process
    that started this one lives: a population-based scheduler answers only once it has
    snapshotted the checkpoint directory, which must not change meanwhile."""
    limit = budget()
    valid = isinstance(step, int) and not isinstance(step, bool)  # others get no answer
    at_budget = valid and limit is not None and step >= limit
    parent = os.getppid()
    end = time.monotonic() + ANSWER_TIMEOUT
    while True:
        data = _read_control(control)
        if data.get("step") == step or data.get("action") in ("stop", "pause"):
            return str(data.get("action", "continue"))
        if at_budget and os.getppid() != parent:
            return "continue"  # tuningfork is gone: no answer will come
        if not at_budget and time.monotonic() >= end:
            return "continue"
        time.sleep(_POLL_S)


def should_stop() -> bool:
    """True when the last answer was "stop" or "pause", or tuningfork has since asked the
    program to pause (a preempted worker)."""
    global _last_action
    if _last_action in ("stop", "pause"):
        return True
    control = _env("TUNINGFORK_CONTROL_FILE")
    if control:
        action = _read_control(control).get("action")
        if action in ("stop", "pause"):
            _last_action = str(action)
            return True
    return False


def result(**metrics: float) -> None:
    """Print the final metrics as one JSON object line on stdout (``ResultSpec`` source
    "stdout"), e.g. ``result(val_loss=0.12)``."""
    print(json.dumps(metrics), flush=True)


def on_terminate(callback: Callable[[], object], exit_code: int = 0) -> _Handler:
    """Install a SIGTERM handler that calls ``callback()`` (save a checkpoint there) and
    then exits with ``exit_code`` (default 0, so a paused or preempted trial is not taken for
    a crash). tuningfork sends SIGTERM when a preempted worker stops, when a trial outlives
    its timeout, or when a stopped trial does not exit within the grace period. Call it from
    the main thread; returns the previous handler."""

    def handler(signum: int, frame: FrameType | None) -> NoReturn:
        try:
            callback()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        raise SystemExit(exit_code)

    return signal.signal(signal.SIGTERM, handler)
