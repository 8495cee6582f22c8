"""`CommandObjective`: runs a program once per trial, composing its process group
(`_process`), the report protocol (`_protocol`) and the reading of its result (`_result`)."""

from __future__ import annotations

import datetime
import math
import os
import shlex
import signal
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tuningfork._redact import redact_urls
from tuningfork.command._process import POLL_S, Process
from tuningfork.command._protocol import Reports
from tuningfork.command._result import ResultReader, ResultSpec
from tuningfork.command._templates import (
    BUILTIN_PLACEHOLDERS,
    INACTIVE,
    Template,
    budget_text,
    is_flag,
)
from tuningfork.exceptions import CommandFailed, OptionError, TrialPruned

if TYPE_CHECKING:
    from tuningfork.space import Space
    from tuningfork.trial import Trial


class CommandObjective:
    """An objective that runs a program once per trial and reads its result.

    Args:
        argv: the command, one string per argument (never run through a shell). Each is a
            ``str.format``-style template: ``{name}`` is the trial's parameter ``name``;
            built-ins are ``{trial_id}`` (the trial number), ``{study}``,
            ``{checkpoint_dir}``, ``{budget}`` and ``{seed}`` (see `BUILTIN_PLACEHOLDERS`;
            a parameter of the same name wins). ``{{`` and ``}}`` are literal braces. A
            format spec or conversion (``{lr:.3g}``, ``{name!r}``) formats the raw value;
            otherwise floats use ``repr`` (exact), bools ``true``/``false``, an integral
            budget an int (``9``, not ``9.0``), and the rest ``str``. A value goes to the
            program as one argument, byte for byte, whatever characters it holds.
        env: extra environment variables (values are templates), added to ``os.environ``
            and the ``TUNINGFORK_*`` variables of the report protocol.
        cwd: the working directory (a template; default: the current directory); created
            if missing.
        result: where the metrics are read (default: the last JSON object line of stdout
            with key ``"value"``).
        timeout: per-trial wall-clock limit in seconds (default None: no limit); on expiry
            the process group gets SIGTERM, then SIGKILL after ``grace_period``, and the
            trial fails with "timed out after N s (per-trial timeout)".
        grace_period: seconds the program has to exit after being told to stop or pause
            (then SIGTERM) and after SIGTERM (then SIGKILL); default 10.
        report_metric: the key of a report whose value goes to ``trial.report`` (default:
            ``result.metrics[0]``).
        keep_log_lines: how many last lines of stderr (stdout if stderr is empty) a
            `CommandFailed` message quotes (default 20).
        space: optional: the study's search space; if given, every placeholder must be a
            parameter of it or a built-in (checked here), so a typo is an error now rather
            than an argument silently dropped.

    Conditional parameters: a parameter that is inactive in a trial (absent from
    ``trial.params``), and a ``{budget}`` that the scheduler did not set, make every argv
    element that references them disappear; if the element just before such an element is
    an option flag (starts with ``-``, is not a number, and has no placeholder), the flag
    disappears too, so ``["--momentum", "{momentum}"]`` vanishes as a pair. ``env`` entries
    that reference an inactive parameter are not set. ``cwd`` and ``result.path`` must not
    reference one (that fails the trial).

    Processes: the program runs in a new session (its own process group). When the call
    returns or raises, nothing of that group is left running: leftover children of a
    program that exited are killed too. Ctrl-C kills the group (SIGTERM, then SIGKILL
    after at most 2 s) and re-raises KeyboardInterrupt. Preemption of the study (see
    `Study.optimize`, ``trial.preempted``) writes ``{"action": "pause"}`` to the control
    file, sends SIGTERM to the group at once and SIGKILL after ``grace_period``; the trial
    is recorded PAUSED (reason "preempted") and resumed by the next worker.

    Logs: ``<study.artifact_dir>/logs/trial_<n>/stdout.log`` and ``stderr.log`` (appended
    across resumed runs, a header line per run), beside the protocol's report and control
    files and outside ``trial.checkpoint_dir`` (see `log_dir`), recorded as the user
    attributes ``stdout_log`` and ``stderr_log``; the rendered argv is recorded as
    ``command`` (with the password of any URL in it masked).

    Thread-safe: one instance may run trials in several threads (``n_jobs > 1``).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        result: ResultSpec = ResultSpec(),  # noqa: B008 - a frozen dataclass, never mutated
        timeout: float | None = None,
        grace_period: float = 10.0,
        report_metric: str | None = None,
        keep_log_lines: int = 20,
        space: Space | Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(argv, (str, bytes)) or not argv:
            raise OptionError(
                f"argv must be a non-empty list of strings (one per argument), got {argv!r}; "
                "a command line string would need a shell, which is never used",
                option="argv",
                owner="CommandObjective",
            )
        self.argv = [Template(a, "argv element") for a in argv]
        self.env = {str(k): Template(v, f"env {k!r}") for k, v in (env or {}).items()}
        self.cwd = Template(cwd, "cwd") if cwd is not None else None
        if not isinstance(result, ResultSpec):
            raise OptionError(
                f"result must be a ResultSpec, got {result!r}",
                option="result",
                owner="CommandObjective",
            )
        self.result = result
        self._path = Template(result.path, "result path") if result.path else None
        if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
            raise OptionError(
                f"timeout must be a positive number of seconds, got {timeout}",
                option="timeout",
                owner="CommandObjective",
            )
        if not (grace_period >= 0 and math.isfinite(grace_period)):
            raise OptionError(
                f"grace_period must be >= 0 seconds, got {grace_period}",
                option="grace_period",
                owner="CommandObjective",
            )
        if isinstance(keep_log_lines, bool) or keep_log_lines < 0:
            raise OptionError(
                f"keep_log_lines must be >= 0, got {keep_log_lines}",
                option="keep_log_lines",
                owner="CommandObjective",
            )
        self.timeout = timeout
        self.grace_period = float(grace_period)
        self.report_metric = report_metric if report_metric is not None else result.metrics[0]
        self.keep_log_lines = int(keep_log_lines)
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self.space: Space | None = None
        if space is not None:
            from tuningfork.space import Space

            self.space = space if isinstance(space, Space) else Space.from_dict(space)
            self._check_placeholders(set(self.space.names), "of the space")

    def _check_placeholders(self, names: set[str], where: str) -> None:
        """Raise unless every placeholder names a parameter in ``names`` or a built-in: a
        misspelt placeholder would otherwise drop its argument as if inactive."""
        unknown = sorted(self.placeholders() - names)
        if unknown:
            raise OptionError(
                f"the command uses placeholder(s) {unknown} that are neither parameters "
                f"{where} ({sorted(names)}) nor built-ins ({sorted(BUILTIN_PLACEHOLDERS)}); "
                "fix the name, or add the parameter to the space",
                option="argv",
                owner="CommandObjective",
            )

    def placeholders(self) -> set[str]:
        """The parameter names used in the argv, env, cwd and result path templates (the
        built-ins left out), for checking against a search space."""
        templates = [*self.argv, *self.env.values()]
        templates += [t for t in (self.cwd, self._path) if t is not None]
        return {f for t in templates for f in t.fields} - set(BUILTIN_PLACEHOLDERS)

    def __repr__(self) -> str:
        return f"CommandObjective({[t.text for t in self.argv]!r}, result={self.result!r})"

    # -- one trial ------------------------------------------------------------------------

    def __call__(self, trial: Trial) -> float | tuple[float, ...]:
        """Run the command for ``trial``; return its metric(s). Raises `CommandFailed` on
        failure and `TrialPruned` when the scheduler stopped or paused it (or a signal
        preempted it).

        Raises `TuningforkError` (which ``catch=(CommandFailed,)`` does not catch, so the
        study stops at once) when a placeholder names neither a built-in nor a parameter of
        the trial's space (of ``trial.params`` when the trial has no declared space)."""
        space = self.space if self.space is not None else trial.space
        if space is not None:
            self._check_placeholders(set(space.names), "of the space")
        else:
            self._check_placeholders(set(trial.params), "of the trial")
        values = self._values(trial)
        argv = self._argv(values)
        cwd = self._render_path(self.cwd, values, "cwd") if self.cwd is not None else None
        workdir = Path(cwd) if cwd is not None else Path.cwd()
        workdir.mkdir(parents=True, exist_ok=True)
        logdir = log_dir(trial)
        logdir.mkdir(parents=True, exist_ok=True)
        run = _Run(self, trial, argv, workdir, logdir, values)
        return run.execute()

    def _values(self, trial: Trial) -> dict[str, Any]:
        builtins: dict[str, Any] = {
            "trial_id": trial.number,
            "study": trial.study.name,
            "checkpoint_dir": str(trial.checkpoint_dir),
            "budget": budget_text(trial.budget),
            "seed": trial.seed,
        }
        return {**builtins, **trial.params}

    def _argv(self, values: Mapping[str, Any]) -> list[str]:
        rendered = [t.render(values) for t in self.argv]
        keep = [r is not INACTIVE for r in rendered]
        for i, r in enumerate(rendered):
            before = self.argv[i - 1] if i > 0 else None
            if (
                r is INACTIVE
                and before is not None
                and not before.fields
                and is_flag(before.text.replace("{{", "{").replace("}}", "}"))
            ):
                keep[i - 1] = False
        argv = [str(r) for r, k in zip(rendered, keep) if k]
        if not argv:
            raise CommandFailed("the command is empty once inactive parameters are dropped")
        return argv

    def _render_path(self, template: Template, values: Mapping[str, Any], what: str) -> str:
        text = template.render(values)
        if text is INACTIVE:
            missing = sorted(f for f in template.fields if values.get(f) is None)
            raise CommandFailed(
                f"{what} {template.text!r} uses {missing}, which this trial does not have "
                "(an inactive conditional parameter, or no budget)"
            )
        return str(text)

    def _warn_once(self, key: str, message: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        warnings.warn(message, stacklevel=3)


def log_dir(trial: Trial) -> Path:
    """Where a trial's logs and its report and control files go:
    ``<artifact_dir>/logs/trial_<n>``. Never inside ``trial.checkpoint_dir``: a scheduler
    that commits checkpoints (PBT) snapshots that folder at the report at the budget and
    replaces it with another trial's snapshot on an exploit, which must neither copy
    logs nor take the recipient's own away."""
    return trial.study.artifact_dir / "logs" / f"trial_{trial.number}"


class _Run:
    """One execution of the command for one trial (state local to the calling thread): it
    starts the `Process`, relays its `Reports`, decides when the program must be stopped
    (the scheduler's answer, the per-trial timeout, preemption) and turns the way it ended
    into a value, `TrialPruned` or `CommandFailed`."""

    def __init__(
        self,
        objective: CommandObjective,
        trial: Trial,
        argv: list[str],
        workdir: Path,
        logdir: Path,
        values: dict[str, Any],
    ) -> None:
        self.obj = objective
        self.trial = trial
        self.argv = argv
        self.workdir = workdir
        self.values = values
        self.stdout_log = logdir / "stdout.log"
        self.stderr_log = logdir / "stderr.log"
        self.reports = Reports(objective, trial, logdir)
        self.process = Process(
            objective.grace_period, objective.keep_log_lines, self.reports.stdout_line
        )
        self.started = 0.0  # time.monotonic() at the start
        self.timed_out = False
        self.preempted = False
        self.abandoned = False

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for key, template in self.obj.env.items():
            text = template.render(self.values)
            if text is not INACTIVE:
                env[key] = str(text)
        env.update(self.reports.environment())
        return env

    def _header(self) -> bytes:
        trial = self.trial
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        extra = f", resumed after step {trial.last_step}" if trial.resumed else ""
        budget = budget_text(trial.budget)
        extra += f", budget {budget}" if budget is not None else ""
        line = f"==> tuningfork: trial {trial.number} run at {now}{extra}: {shlex.join(self.argv)}"
        return (line.replace("\n", "\\n") + "\n").encode()

    def _result_path(self) -> Path | None:
        template = self.obj._path
        if template is None or self.obj.result.source != "file":
            return None
        path = Path(self.obj._render_path(template, self.values, "result path"))
        return path if path.is_absolute() else self.workdir / path

    # -- the run --------------------------------------------------------------------------

    def execute(self) -> float | tuple[float, ...]:
        self.reports.start()
        env = self._environment()
        header = self._header()
        out_log = open(self.stdout_log, "ab")  # noqa: SIM115 - closed in finally
        err_log = open(self.stderr_log, "ab")  # noqa: SIM115
        try:
            stdout_start = self._write_headers(header, out_log, err_log)
            result = ResultReader(
                self.obj.result, self._result_path(), self.stdout_log, self._failed
            )
            result.stdout_start = stdout_start
            self._start(env, out_log, err_log)
            try:
                self._wait()
            except KeyboardInterrupt:
                self.process.terminate_now(min(self.obj.grace_period, 2.0))
                raise
            self.process.finish()
            self.reports.poll()  # reports appended just before the exit
            if self.process.error is not None:
                raise self.process.error
            self._raise_unless_completed()
            return result.metrics(self.reports.last_result, self.reports.last_report)
        finally:
            self.process.cleanup()
            out_log.close()
            err_log.close()

    def _write_headers(self, header: bytes, out_log: IO[bytes], err_log: IO[bytes]) -> int:
        """Start this run's part of the logs and record where they are; the offset of this
        run's stdout in its log."""
        out_log.write(header)
        err_log.write(header)
        out_log.flush()
        err_log.flush()
        self.trial.set_user_attr("stdout_log", str(self.stdout_log))
        self.trial.set_user_attr("stderr_log", str(self.stderr_log))
        self.trial.set_user_attr("command", [redact_urls(arg) for arg in self.argv])
        return out_log.tell()

    def _start(self, env: dict[str, str], out_log: IO[bytes], err_log: IO[bytes]) -> None:
        self.started = time.monotonic()
        label = f"tuningfork-trial-{self.trial.number}"
        try:
            self.process.start(self.argv, self.workdir, env, (out_log, err_log), label)
        except OSError as error:
            raise self._failed(f"cannot start {self.argv[0]!r}: {error}") from None

    def _wait(self) -> None:
        process = self.process
        reports = self.reports
        grace = self.obj.grace_period
        deadline = self.started + self.obj.timeout if self.obj.timeout is not None else None
        while not process.exited():
            now = time.monotonic()
            if process.error is not None:
                raise process.error
            reports.poll()
            if reports.action is not None and process.term_at is None:
                process.term_at = (reports.stop_asked_at or now) + grace
            if deadline is not None and now >= deadline and not self.timed_out:
                self.timed_out = True
                process.terminate_by(now)
            if self.trial.preempted and not self.preempted and reports.action is None:
                self.preempted = True
                reports.write_control("pause")
                process.terminate_by(now)
            if self.trial.finished and not self.abandoned:
                self.abandoned = True  # told elsewhere (e.g. Ctrl-C in another thread)
                process.terminate_by(now)
            process.escalate(now)
            time.sleep(POLL_S)

    # -- the outcome ----------------------------------------------------------------------

    def _raise_unless_completed(self) -> None:
        """Raise what ended the run early: `TrialPruned` for the scheduler's stop or pause
        and for preemption, `CommandFailed` for the rest; nothing for exit code 0."""
        code = self.process.returncode
        assert code is not None
        reports = self.reports
        if reports.action is not None:
            verb = "paused" if reports.action == "pause" else "stopped"
            message = f"{verb} by the scheduler at step {reports.action_step}"
            if self.process.signalled:
                message += (
                    f" (did not exit within {self.obj.grace_period:g} s; sent "
                    f"{' then '.join(dict.fromkeys(self.process.signalled))})"
                )
            raise TrialPruned(message)
        if self.preempted:
            self.trial.pause("preempted")  # recorded PAUSED, resumed first
            raise TrialPruned("preempted")
        if self.abandoned:
            raise self._failed("the trial was ended elsewhere (interrupted); stopped the program")
        if self.timed_out:
            raise self._failed(f"timed out after {self.obj.timeout:g} s (per-trial timeout)")
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            raise self._failed(f"killed by signal {name}")
        if code != 0:
            raise self._failed(f"exit code {code}")

    def _failed(self, reason: str) -> CommandFailed:
        """The `CommandFailed` for ``reason``, quoting the last lines of stderr (else stdout)
        and naming the logs."""
        n = self.obj.keep_log_lines
        parts = [reason]
        for name in ("stderr", "stdout"):
            lines = list(self.process.tails[name])[-n:] if n else []
            if lines:
                parts.append(f"--- last {len(lines)} line(s) of {name} ---")
                parts.extend(lines)
                break
        parts.append(f"logs: {self.stdout_log} and {self.stderr_log}")
        return CommandFailed(
            "\n".join(parts),
            reason=reason,
            returncode=self.process.returncode,
            stdout_log=str(self.stdout_log),
            stderr_log=str(self.stderr_log),
        )
