"""An objective that runs an external command (any language) once per trial, and the
report protocol by which that program talks to the study while it runs.

    objective = CommandObjective(
        [sys.executable, "train.py", "--lr", "{lr}", "--epochs", "{budget}",
         "--momentum", "{momentum}", "--out", "{checkpoint_dir}"],
        result=ResultSpec(source="stdout", metrics=("val_loss",)),
        timeout=3600,
    )
    study.optimize(objective, n_trials=50, space=space, catch=(CommandFailed,))

The program is started without a shell (``subprocess.Popen(argv, shell=False)``) in a
process group of its own, with its stdout and stderr teed into
``<artifact_dir>/trial_<n>/stdout.log`` and ``stderr.log``.

Report protocol
---------------
Environment: every run gets ``TUNINGFORK_TRIAL_ID``, ``TUNINGFORK_STUDY``,
``TUNINGFORK_CHECKPOINT_DIR``, ``TUNINGFORK_BUDGET`` (empty when the scheduler sets none),
``TUNINGFORK_LAST_STEP`` (the last step reported before, on a resumed trial: continue from
``last_step + 1``; else empty), ``TUNINGFORK_RESUMED`` (``1``/``0``), ``TUNINGFORK_SEED``,
``TUNINGFORK_PARAMS`` (a JSON object of the parameters), ``TUNINGFORK_REPORT_FILE`` and
``TUNINGFORK_CONTROL_FILE``.

Intermediate values: the program prints a line that is the JSON object
``{"tuningfork": {"step": 3, "val_loss": 0.2}}`` on stdout, or appends such lines (or just
the inner object) to ``$TUNINGFORK_REPORT_FILE``. Each report becomes
``trial.report(value, step)`` with ``value`` the ``report_metric`` key (default: the first
result metric), then ``trial.should_stop()``. The answer is written atomically to
``$TUNINGFORK_CONTROL_FILE`` as ``{"action": "continue" | "stop" | "pause", "step": N}``
(``{"action": "continue"}`` before the first report). A report without an integer step or
without the metric is ignored with a warning (once per objective). A step reported twice in
one run is answered again but recorded once.

On "stop" or "pause" the program should save a checkpoint and exit with code 0 within
``grace_period`` seconds; otherwise its process group gets SIGTERM, and SIGKILL another
``grace_period`` later. Either way the trial ends as PRUNED (stop) or PAUSED (pause, to be
resumed later with ``TUNINGFORK_RESUMED=1``). `tuningfork.client` implements the program's
side in one standard-library file. See ``docs/protocol.md``.

Result: after the program exits with code 0 (and was not stopped), the metrics are read
from (`ResultSpec.source`) ``"stdout"``: the last stdout line that is a JSON object with
every metric key (report lines excluded; a single-metric study whose program printed only
reports falls back to the metric of its last report); ``"file"``: a JSON or YAML mapping
that the program wrote at ``ResultSpec.path``; ``"regex"``: the last match of
``ResultSpec.pattern`` in this run's stdout.

Failures (non-zero exit, death by a signal, per-trial timeout, no metric) raise
`CommandFailed`; ``study.optimize(objective, catch=(CommandFailed,))`` fails only that
trial, with the reason and the tail of the program's stderr, and goes on.

POSIX only (process groups and signals).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import datetime
import json
import math
import os
import re
import shlex
import signal
import string
import subprocess
import threading
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from tuningfork._redact import redact_urls
from tuningfork.exceptions import CommandFailed, TrialPruned, TuningforkError

if TYPE_CHECKING:
    from tuningfork.space import Space
    from tuningfork.trial import Trial

__all__ = ["BUILTIN_PLACEHOLDERS", "CommandFailed", "CommandObjective", "ResultSpec"]

BUILTIN_PLACEHOLDERS: tuple[str, ...] = ("trial_id", "study", "checkpoint_dir", "budget", "seed")
"""Placeholders every template may use besides the parameters (a parameter of the same name
takes precedence)."""

_POLL_S = 0.02  # how often the waiting loop looks at the process, the report file, signals
_READ_LIMIT = 1 << 20  # the longest stdout line parsed as JSON, in bytes
_INACTIVE = object()


@dataclass(frozen=True)
class ResultSpec:
    """Where the final metrics of a run are read.

    Attributes:
        source: ``"stdout"`` (default): the last line of stdout that is a JSON object with
            every key of ``metrics`` (report lines ``{"tuningfork": ...}`` do not count);
            ``"file"``: a JSON or YAML mapping the program writes at ``path``;
            ``"regex"``: the last match of ``pattern`` in the run's stdout.
        path: for ``"file"``: a template like the argv elements (e.g.
            ``"{checkpoint_dir}/result.json"``); relative paths are relative to the trial's
            working directory. The file must be written (or rewritten) by the run.
        pattern: for ``"regex"``: a Python regular expression searched in the run's whole
            stdout; the last match wins. Named groups give the metrics by name; without
            named groups, group 1 is the single metric (group 0 if the pattern has no
            group), and groups 1..n the metrics in order when there are several.
        metrics: one key per objective of the study (its directions), in order (default
            ``("value",)``).
    """

    source: Literal["stdout", "file", "regex"] = "stdout"
    path: str | None = None
    pattern: str | None = None
    metrics: tuple[str, ...] = ("value",)

    def __post_init__(self) -> None:
        if self.source not in ("stdout", "file", "regex"):
            raise TuningforkError(
                f"result source must be 'stdout', 'file' or 'regex', got {self.source!r}"
            )
        if isinstance(self.metrics, str) or not self.metrics:
            raise TuningforkError(
                f"result metrics must be a non-empty tuple of names, got {self.metrics!r}"
            )
        object.__setattr__(self, "metrics", tuple(str(m) for m in self.metrics))
        if len(set(self.metrics)) != len(self.metrics):
            raise TuningforkError(f"result metrics repeat a name: {self.metrics!r}")
        if self.source == "file" and not self.path:
            raise TuningforkError("result source 'file' needs a path (e.g. 'result.json')")
        if self.source == "regex":
            if not self.pattern:
                raise TuningforkError("result source 'regex' needs a pattern")
            try:
                compiled = re.compile(self.pattern)
            except re.error as error:
                raise TuningforkError(
                    f"result pattern {self.pattern!r} is not a regular expression: {error}"
                ) from None
            named = compiled.groupindex
            if named:
                missing = [m for m in self.metrics if m not in named]
                if missing:
                    raise TuningforkError(
                        f"result pattern {self.pattern!r} has no named group for metric(s) "
                        f"{missing}; name the groups like (?P<{missing[0]}>...)"
                    )
            elif len(self.metrics) > 1 and compiled.groups < len(self.metrics):
                raise TuningforkError(
                    f"result pattern {self.pattern!r} has {compiled.groups} group(s) for "
                    f"{len(self.metrics)} metrics; use named groups (?P<name>...)"
                )


# -- templates ---------------------------------------------------------------------------


class _Template:
    """A ``str.format``-style template whose fields are looked up whole (so a parameter named
    ``opt.lr`` works) and formatted by `_format_value` unless they carry a format spec."""

    def __init__(self, text: str, what: str) -> None:
        if not isinstance(text, str):
            raise TuningforkError(f"{what} must be a string, got {text!r}")
        self.text = text
        self.parts: list[tuple[str, str | None, str, str | None]] = []
        try:
            for literal, field, spec, conversion in string.Formatter().parse(text):
                if field is not None and (not field or field.isdigit()):
                    raise TuningforkError(
                        f"{what} {text!r}: positional placeholder {{{field}}}; name a "
                        "parameter or a built-in such as {trial_id}"
                    )
                self.parts.append((literal, field, spec or "", conversion))
        except ValueError as error:
            raise TuningforkError(
                f"{what} {text!r} is not a valid template ({error}); write {{{{ and }}}} "
                "for literal braces"
            ) from None
        self.fields = {field for _, field, _, _ in self.parts if field is not None}

    def render(self, values: Mapping[str, Any]) -> str | object:
        """The rendered text, or `_INACTIVE` if a field names an absent value."""
        out = []
        for literal, field, spec, conversion in self.parts:
            out.append(literal)
            if field is None:
                continue
            if field not in values or values[field] is None:
                return _INACTIVE
            value = values[field]
            if conversion == "r":
                value = repr(value)
            elif conversion == "s":
                value = str(value)
            elif conversion == "a":
                value = ascii(value)
            out.append(format(value, spec) if spec or conversion else _format_value(value))
        return "".join(out)


def _format_value(value: Any) -> str:
    """Booleans as ``true``/``false``, floats with ``repr`` (exact round trip; an integral
    budget as an int), everything else with ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _budget_text(budget: float | None) -> str | None:
    if budget is None:
        return None
    if isinstance(budget, float) and math.isfinite(budget) and budget.is_integer():
        return str(int(budget))
    return _format_value(budget)


def _is_flag(text: str) -> bool:
    if not text.startswith("-") or text == "-":
        return False
    try:
        float(text)
    except ValueError:
        return True
    return False  # a negative number is a value, not a flag


# -- the objective -----------------------------------------------------------------------


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

    Logs: ``<study.artifact_dir>/trial_<n>/stdout.log`` and ``stderr.log`` (appended across
    resumed runs, a header line per run), recorded as the user attributes ``stdout_log``
    and ``stderr_log``; the rendered argv is recorded as ``command`` (with the password
    of any URL in it masked).

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
            raise TuningforkError(
                f"argv must be a non-empty list of strings (one per argument), got {argv!r}; "
                "a command line string would need a shell, which is never used"
            )
        self.argv = [_Template(a, "argv element") for a in argv]
        self.env = {str(k): _Template(v, f"env {k!r}") for k, v in (env or {}).items()}
        self.cwd = _Template(cwd, "cwd") if cwd is not None else None
        if not isinstance(result, ResultSpec):
            raise TuningforkError(f"result must be a ResultSpec, got {result!r}")
        self.result = result
        self._path = _Template(result.path, "result path") if result.path else None
        self._pattern = re.compile(result.pattern) if result.pattern else None
        if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
            raise TuningforkError(f"timeout must be a positive number of seconds, got {timeout}")
        if not (grace_period >= 0 and math.isfinite(grace_period)):
            raise TuningforkError(f"grace_period must be >= 0 seconds, got {grace_period}")
        if isinstance(keep_log_lines, bool) or keep_log_lines < 0:
            raise TuningforkError(f"keep_log_lines must be >= 0, got {keep_log_lines}")
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
            raise TuningforkError(
                f"the command uses placeholder(s) {unknown} that are neither parameters "
                f"{where} ({sorted(names)}) nor built-ins ({sorted(BUILTIN_PLACEHOLDERS)}); "
                "fix the name, or add the parameter to the space"
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
        logdir = trial.study.artifact_dir / f"trial_{trial.number}"
        logdir.mkdir(parents=True, exist_ok=True)
        run = _Run(self, trial, argv, workdir, logdir, values)
        return run.execute()

    def _values(self, trial: Trial) -> dict[str, Any]:
        builtins: dict[str, Any] = {
            "trial_id": trial.number,
            "study": trial.study.name,
            "checkpoint_dir": str(trial.checkpoint_dir),
            "budget": _budget_text(trial.budget),
            "seed": trial.seed,
        }
        return {**builtins, **trial.params}

    def _argv(self, values: Mapping[str, Any]) -> list[str]:
        rendered = [t.render(values) for t in self.argv]
        keep = [r is not _INACTIVE for r in rendered]
        for i, r in enumerate(rendered):
            before = self.argv[i - 1] if i > 0 else None
            if (
                r is _INACTIVE
                and before is not None
                and not before.fields
                and _is_flag(before.text.replace("{{", "{").replace("}}", "}"))
            ):
                keep[i - 1] = False
        argv = [str(r) for r, k in zip(rendered, keep) if k]
        if not argv:
            raise CommandFailed("the command is empty once inactive parameters are dropped")
        return argv

    def _render_path(self, template: _Template, values: Mapping[str, Any], what: str) -> str:
        text = template.render(values)
        if text is _INACTIVE:
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


# -- process groups that must not outlive us ---------------------------------------------

_LIVE: set[int] = set()
_LIVE_LOCK = threading.Lock()


def _kill_leftovers() -> None:  # at interpreter exit: e.g. a worker thread's trial
    with _LIVE_LOCK:
        groups = list(_LIVE)
    for pgid in groups:
        _killpg(pgid, signal.SIGKILL)


atexit.register(_kill_leftovers)


def _killpg(pgid: int, sig: int) -> None:
    """Send ``sig`` to a process group; nothing if it is gone already."""
    with contextlib.suppress(OSError):
        os.killpg(pgid, sig)


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """True once the process has exited, without reaping it: its pid, and so its process
    group id, stays reserved until `Popen.wait`, so killing the group never hits a
    stranger that reused the number."""
    if proc.returncode is not None:
        return True
    waitid = getattr(os, "waitid", None)
    if waitid is None:  # no waitid (not Linux): reap, and accept the tiny reuse risk
        return proc.poll() is not None
    try:
        info = waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # already reaped
        return proc.poll() is not None
    return info is not None


# -- one run of the program --------------------------------------------------------------


class _Run:
    """One execution of the command for one trial (state local to the calling thread)."""

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
        self.report_file = logdir / "reports.jsonl"
        self.control_file = logdir / "control.json"
        keep = max(objective.keep_log_lines, 1)
        self.tails: dict[str, collections.deque[str]] = {
            "stdout": collections.deque(maxlen=keep),
            "stderr": collections.deque(maxlen=keep),
        }
        self.lock = threading.Lock()  # reports come from the stdout thread and the file
        self.answers: dict[int, str] = {}
        self.last_report: dict[str, Any] | None = None
        self.last_result: dict[str, Any] | None = None
        self.action: str | None = None  # "stop" / "pause" once the scheduler said so
        self.action_step: int | None = None
        self.stop_asked_at: float | None = None
        self.report_offset = 0
        self.report_rest = b""
        self.stdout_start = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.term_at: float | None = None  # when to send SIGTERM (monotonic)
        self.kill_at: float | None = None  # when to send SIGKILL
        self.signalled: list[str] = []
        self.started = 0.0  # time.monotonic() at the start
        self.timed_out = False
        self.preempted = False
        self.abandoned = False
        self.error: BaseException | None = None  # raised in the stdout thread, for the caller

    # -- setup ----------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        trial = self.trial
        env = dict(os.environ)
        for key, template in self.obj.env.items():
            text = template.render(self.values)
            if text is not _INACTIVE:
                env[key] = str(text)
        last = trial.last_step
        env.update(
            {
                "TUNINGFORK_TRIAL_ID": str(trial.number),
                "TUNINGFORK_STUDY": trial.study.name,
                "TUNINGFORK_CHECKPOINT_DIR": str(trial.checkpoint_dir),
                "TUNINGFORK_BUDGET": _budget_text(trial.budget) or "",
                "TUNINGFORK_LAST_STEP": "" if last is None else str(last),
                "TUNINGFORK_RESUMED": "1" if trial.resumed else "0",
                "TUNINGFORK_SEED": str(trial.seed),
                "TUNINGFORK_REPORT_FILE": str(self.report_file),
                "TUNINGFORK_CONTROL_FILE": str(self.control_file),
                "TUNINGFORK_PARAMS": json.dumps(trial.params),
            }
        )
        return env

    def _header(self) -> bytes:
        trial = self.trial
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        extra = f", resumed after step {trial.last_step}" if trial.resumed else ""
        budget = _budget_text(trial.budget)
        extra += f", budget {budget}" if budget is not None else ""
        line = f"==> tuningfork: trial {trial.number} run at {now}{extra}: {shlex.join(self.argv)}"
        return (line.replace("\n", "\\n") + "\n").encode()

    def _write_control(self, action: str, step: int | None = None) -> None:
        answer: dict[str, Any] = {"action": action}
        if step is not None:
            answer["step"] = step
        temp = self.control_file.with_name(f".{self.control_file.name}.{uuid.uuid4().hex}")
        temp.write_text(json.dumps(answer) + "\n")
        os.replace(temp, self.control_file)

    # -- the run --------------------------------------------------------------------------

    def execute(self) -> float | tuple[float, ...]:
        trial = self.trial
        self._write_control("continue")
        self.report_file.touch()
        self.report_offset = self.report_file.stat().st_size
        env = self._environment()
        header = self._header()
        out_log = open(self.stdout_log, "ab")  # noqa: SIM115 - closed in finally
        err_log = open(self.stderr_log, "ab")  # noqa: SIM115
        threads: list[threading.Thread] = []
        try:
            out_log.write(header)
            err_log.write(header)
            out_log.flush()
            err_log.flush()
            self.stdout_start = out_log.tell()
            trial.set_user_attr("stdout_log", str(self.stdout_log))
            trial.set_user_attr("stderr_log", str(self.stderr_log))
            trial.set_user_attr("command", [redact_urls(arg) for arg in self.argv])
            result_mtime = self._result_file_stamp()
            self.started = time.monotonic()
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    cwd=self.workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                    shell=False,
                )
            except OSError as error:
                raise self._failed(f"cannot start {self.argv[0]!r}: {error}") from None
            with _LIVE_LOCK:
                _LIVE.add(self.proc.pid)
            assert self.proc.stdout is not None and self.proc.stderr is not None
            threads = [
                threading.Thread(
                    target=self._pump,
                    args=(self.proc.stdout, out_log, "stdout"),
                    name=f"tuningfork-trial-{trial.number}-stdout",
                    daemon=True,
                ),
                threading.Thread(
                    target=self._pump,
                    args=(self.proc.stderr, err_log, "stderr"),
                    name=f"tuningfork-trial-{trial.number}-stderr",
                    daemon=True,
                ),
            ]
            for thread in threads:
                thread.start()
            try:
                self._wait()
            except KeyboardInterrupt:
                self._terminate_now(min(self.obj.grace_period, 2.0))
                raise
            self._finish_process(threads)
            self._poll_reports()  # reports appended just before the exit
            if self.error is not None:
                raise self.error
            return self._outcome(result_mtime)
        finally:
            self._cleanup(threads)
            out_log.close()
            err_log.close()

    def _wait(self) -> None:
        proc = self.proc
        assert proc is not None
        grace = self.obj.grace_period
        deadline = self.started + self.obj.timeout if self.obj.timeout is not None else None
        while not _has_exited(proc):
            now = time.monotonic()
            if self.error is not None:
                raise self.error
            self._poll_reports()
            if self.action is not None and self.term_at is None:
                self.term_at = (self.stop_asked_at or now) + grace
            if deadline is not None and now >= deadline and not self.timed_out:
                self.timed_out = True
                self.term_at = now if self.term_at is None else min(self.term_at, now)
            if self.trial.preempted and not self.preempted and self.action is None:
                self.preempted = True
                self._write_control("pause")
                self.term_at = now if self.term_at is None else min(self.term_at, now)
            if getattr(self.trial, "_finished", False) and not self.abandoned:
                self.abandoned = True  # told elsewhere (e.g. Ctrl-C in another thread)
                self.term_at = now if self.term_at is None else min(self.term_at, now)
            self._escalate(now)
            time.sleep(_POLL_S)

    def _escalate(self, now: float) -> None:
        if self.term_at is not None and now >= self.term_at and self.kill_at is None:
            self._signal(signal.SIGTERM)
            self.kill_at = now + self.obj.grace_period
        if self.kill_at is not None and now >= self.kill_at and "SIGKILL" not in self.signalled:
            self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.signalled.append(sig.name)
        _killpg(self.proc.pid, sig)

    def _terminate_now(self, wait: float) -> None:
        proc = self.proc
        if proc is None or _has_exited(proc):
            return
        self._signal(signal.SIGTERM)
        end = time.monotonic() + wait
        while time.monotonic() < end and not _has_exited(proc):
            time.sleep(_POLL_S)
        self._signal(signal.SIGKILL)

    def _finish_process(self, threads: list[threading.Thread]) -> None:
        """The program has exited: kill what it left in its group, reap it, drain pipes."""
        proc = self.proc
        assert proc is not None
        _killpg(proc.pid, signal.SIGKILL)  # leftovers; the unreaped leader keeps the pgid ours
        proc.wait()
        with _LIVE_LOCK:
            _LIVE.discard(proc.pid)
        for thread in threads:
            thread.join(5.0)

    def _cleanup(self, threads: list[threading.Thread]) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            _killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):  # unkillable (D state)
                proc.wait(10.0)
        with _LIVE_LOCK:
            _LIVE.discard(proc.pid)
        for thread in threads:
            thread.join(1.0)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    # -- output and reports ---------------------------------------------------------------

    def _pump(self, pipe: IO[bytes], log: IO[bytes], name: str) -> None:
        try:
            for raw in iter(lambda: pipe.readline(_READ_LIMIT), b""):
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self.tails[name].append(line)
                if name == "stdout" and self.error is None:
                    try:
                        self._stdout_line(line)
                    except Exception as error:  # e.g. the storage: raised by the caller
                        self.error = error
        except (OSError, ValueError):  # the pipe or log was closed under us
            pass

    def _stdout_line(self, line: str) -> None:
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
            self._report(data["tuningfork"])
        elif all(m in data for m in self.obj.result.metrics):
            self.last_result = data

    def _poll_reports(self) -> None:
        try:
            with open(self.report_file, "rb") as handle:
                handle.seek(self.report_offset)
                chunk = handle.read()
        except OSError:
            return
        if not chunk:
            return
        self.report_offset += len(chunk)
        data = self.report_rest + chunk
        *lines, self.report_rest = data.split(b"\n")
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
                self._report(item)

    def _report(self, item: dict[str, Any]) -> None:
        trial = self.trial
        metric = self.obj.report_metric
        step = item.get("step")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            self.obj._warn_once(
                "report-step",
                f"trial {trial.number}: ignored a report without a non-negative integer "
                f"'step': {item!r} (warned once)",
            )
            return
        with self.lock:
            if step in self.answers:  # the same report on stdout and in the file
                self._write_control(self.answers[step], step)
                return
            if self.action is not None:  # already told to stop: say it again
                self.answers[step] = self.action
                self._write_control(self.action, step)
                return
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
                self._write_control("continue", step)
                return
            if getattr(trial, "_finished", False):
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
            self._write_control(action, step)

    # -- the outcome ----------------------------------------------------------------------

    def _outcome(self, result_stamp: tuple[int, int] | None) -> float | tuple[float, ...]:
        proc = self.proc
        assert proc is not None
        code = proc.returncode
        if self.action is not None:
            verb = "paused" if self.action == "pause" else "stopped"
            message = f"{verb} by the scheduler at step {self.action_step}"
            if self.signalled:
                message += (
                    f" (did not exit within {self.obj.grace_period:g} s; sent "
                    f"{' then '.join(dict.fromkeys(self.signalled))})"
                )
            raise TrialPruned(message)
        if self.preempted:
            self.trial._paused = True  # recorded PAUSED, reason "preempted", resumed first
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
        return self._metrics(result_stamp)

    def _failed(self, reason: str) -> CommandFailed:
        n = self.obj.keep_log_lines
        parts = [reason]
        for name in ("stderr", "stdout"):
            lines = list(self.tails[name])[-n:] if n else []
            if lines:
                parts.append(f"--- last {len(lines)} line(s) of {name} ---")
                parts.extend(lines)
                break
        parts.append(f"logs: {self.stdout_log} and {self.stderr_log}")
        code = self.proc.returncode if self.proc is not None else None
        return CommandFailed(
            "\n".join(parts),
            reason=reason,
            returncode=code,
            stdout_log=str(self.stdout_log),
            stderr_log=str(self.stderr_log),
        )

    def _result_path(self) -> Path | None:
        template = self.obj._path
        if template is None or self.obj.result.source != "file":
            return None
        path = Path(self.obj._render_path(template, self.values, "result path"))
        return path if path.is_absolute() else self.workdir / path

    def _result_file_stamp(self) -> tuple[int, int] | None:
        path = self._result_path()
        try:
            stat = path.stat() if path is not None else None
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size) if stat is not None else None

    def _metrics(self, stamp: tuple[int, int] | None) -> float | tuple[float, ...]:
        spec = self.obj.result
        if spec.source == "file":
            data, where = self._from_file(stamp)
        elif spec.source == "regex":
            data, where = self._from_regex()
        else:
            data, where = self.last_result, "stdout (looked for the last JSON object line)"
            report = self.last_report
            if data is None and len(spec.metrics) == 1 and report and spec.metrics[0] in report:
                data = report  # only reports printed: the last one's value
        numbers = []
        for metric in spec.metrics:
            if data is None or metric not in data:
                raise self._failed(f"no metric {metric!r} found in {where}")
            value = data[metric]
            try:
                if isinstance(value, bool):
                    raise TypeError
                numbers.append(float(value))
            except (TypeError, ValueError):
                raise self._failed(
                    f"metric {metric!r} in {where} is {value!r}, not a number"
                ) from None
        return numbers[0] if len(numbers) == 1 else tuple(numbers)

    def _from_file(self, stamp: tuple[int, int] | None) -> tuple[dict[str, Any] | None, str]:
        path = self._result_path()
        assert path is not None
        where = f"the result file {str(path)!r}"
        if not path.is_file():
            raise self._failed(f"no result file {str(path)!r} (the program did not write it)")
        if stamp is not None and self._result_file_stamp() == stamp:
            raise self._failed(f"{where} was not written by this run (it is unchanged)")
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            data = json.loads(text)
        except ValueError:
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as error:
                raise self._failed(f"{where} is neither JSON nor YAML: {error}") from None
        if not isinstance(data, dict):
            raise self._failed(f"{where} holds {type(data).__name__}, not a mapping")
        return data, where

    def _from_regex(self) -> tuple[dict[str, Any] | None, str]:
        pattern = self.obj._pattern
        assert pattern is not None
        with open(self.stdout_log, "rb") as handle:
            handle.seek(self.stdout_start)
            text = handle.read().decode("utf-8", errors="replace")
        where = f"stdout (pattern {pattern.pattern!r})"
        last = None
        for last in pattern.finditer(text):  # noqa: B007 - the last match wins
            pass
        if last is None:
            return None, where
        metrics = self.obj.result.metrics
        if pattern.groupindex:
            return {m: last.group(m) for m in metrics if last.group(m) is not None}, where
        if len(metrics) == 1:
            return {metrics[0]: last.group(1 if pattern.groups else 0)}, where
        return {m: last.group(i + 1) for i, m in enumerate(metrics)}, where
