"""The report protocol, study side: the ``TUNINGFORK_*`` environment of a run, the report
lines read from stdout and the report file, each relayed to the trial, and the scheduler's
answer written to the control file (`tuningfork.client` is the program's side)."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuningfork.command._templates import budget_text

if TYPE_CHECKING:
    from tuningfork.command._objective import CommandObjective
    from tuningfork.trial import Trial


def protocol_environment(trial: Trial, report_file: Path, control_file: Path) -> dict[str, str]:
    """The ``TUNINGFORK_*`` variables every run gets."""
    last = trial.last_step
    return {
        "TUNINGFORK_TRIAL_ID": str(trial.number),
        "TUNINGFORK_STUDY": trial.study.name,
        "TUNINGFORK_CHECKPOINT_DIR": str(trial.checkpoint_dir),
        "TUNINGFORK_BUDGET": budget_text(trial.budget) or "",
        "TUNINGFORK_LAST_STEP": "" if last is None else str(last),
        "TUNINGFORK_RESUMED": "1" if trial.resumed else "0",
        "TUNINGFORK_SEED": str(trial.seed),
        "TUNINGFORK_REPORT_FILE": str(report_file),
        "TUNINGFORK_CONTROL_FILE": str(control_file),
        "TUNINGFORK_PARAMS": json.dumps(trial.params),
    }


class Reports:
    """The reports of one run and the answers given to them.

    Reports come from two places (stdout lines in the pump thread, the report file in the
    waiting thread), so they are relayed under a lock; a step seen twice is answered again
    but reported once. Once the scheduler says stop or pause, `action` holds it (with
    `action_step` and `stop_asked_at`, monotonic) and every later report gets that answer.
    """

    def __init__(self, objective: CommandObjective, trial: Trial, logdir: Path) -> None:
        self.obj = objective
        self.trial = trial
        self.report_file = logdir / "reports.jsonl"
        self.control_file = logdir / "control.json"
        self.lock = threading.Lock()
        self.answers: dict[int, str] = {}
        self.last_report: dict[str, Any] | None = None
        self.last_result: dict[str, Any] | None = None  # the last stdout line with the metrics
        self.action: str | None = None  # "stop" / "pause" once the scheduler said so
        self.action_step: int | None = None
        self.stop_asked_at: float | None = None
        self.offset = 0
        self.rest = b""

    def start(self) -> None:
        """Answer "continue" before any report, and read only what this run appends."""
        self.write_control("continue")
        self.report_file.touch()
        self.offset = self.report_file.stat().st_size

    def environment(self) -> dict[str, str]:
        return protocol_environment(self.trial, self.report_file, self.control_file)

    def write_control(self, action: str, step: int | None = None) -> None:
        """Replace the control file atomically, so the program never reads half of it."""
        answer: dict[str, Any] = {"action": action}
        if step is not None:
            answer["step"] = step
        temp = self.control_file.with_name(f".{self.control_file.name}.{uuid.uuid4().hex}")
        temp.write_text(json.dumps(answer) + "\n")
        os.replace(temp, self.control_file)

    def stdout_line(self, line: str) -> None:
        """A line of the program's stdout: a report, a result line, or anything else."""
        text = line.strip()
        if not (text.startswith("{") and text.endswith("}")):
            return
        try:
            data = json.loads(text)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        if isinstance(data.get("tuningfork"), dict):
            self.relay(data["tuningfork"])
        elif all(m in data for m in self.obj.result.metrics):
            self.last_result = data

    def poll(self) -> None:
        """Relay the whole lines appended to the report file since the last poll."""
        try:
            with open(self.report_file, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return
        if not chunk:
            return
        self.offset += len(chunk)
        data = self.rest + chunk
        *lines, self.rest = data.split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                item = json.loads(text)
            except ValueError:
                self.obj._warn_once(
                    "report-json",
                    f"trial {self.trial.number}: ignored a report file line "
                    f"that is not JSON: {text[:200]!r}",
                )
                continue
            if isinstance(item, dict) and isinstance(item.get("tuningfork"), dict):
                item = item["tuningfork"]
            if isinstance(item, dict):
                self.relay(item)

    def relay(self, item: dict[str, Any]) -> None:
        """One report: to ``trial.report`` and ``trial.should_stop``; the answer to the
        control file."""
        step = item.get("step")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            self.obj._warn_once(
                "report-step",
                f"trial {self.trial.number}: ignored a report without a non-negative integer "
                f"'step': {item!r} (warned once)",
            )
            return
        with self.lock:
            if step in self.answers:  # the same report on stdout and in the file
                self.write_control(self.answers[step], step)
                return
            if self.action is not None:  # already told to stop: say it again
                self.answers[step] = self.action
                self.write_control(self.action, step)
                return
            self._relay_value(item, step)

    def _relay_value(self, item: dict[str, Any], step: int) -> None:
        trial = self.trial
        metric = self.obj.report_metric
        value = item.get(metric)
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = None
        if number is None or isinstance(value, bool):
            self.obj._warn_once(
                "report-metric",
                f"trial {trial.number}: ignored a report without a number for "
                f"{metric!r}: {item!r} (warned once)",
            )
            self.answers[step] = "continue"
            self.write_control("continue", step)
            return
        if trial.finished:
            return
        trial.report(number, step)
        self.last_report = item
        action = "continue"
        if trial.should_stop():
            action = "pause" if trial.paused else "stop"
            self.action = action
            self.action_step = step
            self.stop_asked_at = time.monotonic()
        self.answers[step] = action
        self.write_control(action, step)
