"""Where a finished run's metrics are read: `ResultSpec` (stdout, a file, or a regular
expression) and the reader that applies it once the program has exited."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tuningfork.exceptions import CommandFailed, OptionError


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
            raise OptionError(
                f"result source must be 'stdout', 'file' or 'regex', got {self.source!r}",
                option="source",
                owner="ResultSpec",
            )
        if isinstance(self.metrics, str) or not self.metrics:
            raise OptionError(
                f"result metrics must be a non-empty tuple of names, got {self.metrics!r}",
                option="metrics",
                owner="ResultSpec",
            )
        object.__setattr__(self, "metrics", tuple(str(m) for m in self.metrics))
        if len(set(self.metrics)) != len(self.metrics):
            raise OptionError(
                f"result metrics repeat a name: {self.metrics!r}",
                option="metrics",
                owner="ResultSpec",
            )
        if self.source == "file" and not self.path:
            raise OptionError(
                "result source 'file' needs a path (e.g. 'result.json')",
                option="path",
                owner="ResultSpec",
            )
        if self.source == "regex":
            self._check_pattern()

    def _check_pattern(self) -> None:
        if not self.pattern:
            raise OptionError(
                "result source 'regex' needs a pattern", option="pattern", owner="ResultSpec"
            )
        try:
            compiled = re.compile(self.pattern)
        except re.error as error:
            raise OptionError(
                f"result pattern {self.pattern!r} is not a regular expression: {error}",
                option="pattern",
                owner="ResultSpec",
            ) from None
        named = compiled.groupindex
        if named:
            missing = [m for m in self.metrics if m not in named]
            if missing:
                raise OptionError(
                    f"result pattern {self.pattern!r} has no named group for metric(s) "
                    f"{missing}; name the groups like (?P<{missing[0]}>...)",
                    option="pattern",
                    owner="ResultSpec",
                )
        elif len(self.metrics) > 1 and compiled.groups < len(self.metrics):
            raise OptionError(
                f"result pattern {self.pattern!r} has {compiled.groups} group(s) for "
                f"{len(self.metrics)} metrics; use named groups (?P<name>...)",
                option="pattern",
                owner="ResultSpec",
            )


Stamp = tuple[int, int]  # a file's (mtime in ns, size): "was it rewritten by this run?"


class ResultReader:
    """Reads one run's metrics as ``spec`` says.

    Args:
        path: the rendered result file (absolute), for ``source="file"``; else None.
        stdout_log / stdout_start: the log and the offset at which this run's output starts
            (for ``source="regex"``).
        fail: makes the `CommandFailed` to raise from a reason (it adds the log's tail).
    """

    def __init__(
        self,
        spec: ResultSpec,
        path: Path | None,
        stdout_log: Path,
        fail: Callable[[str], CommandFailed],
    ) -> None:
        self.spec = spec
        self.path = path
        self.stdout_log = stdout_log
        self.stdout_start = 0
        self.fail = fail
        self.pattern = re.compile(spec.pattern) if spec.pattern else None
        self.stamp_before = self.stamp()

    def stamp(self) -> Stamp | None:
        try:
            stat = self.path.stat() if self.path is not None else None
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size) if stat is not None else None

    def metrics(
        self, last_result: dict[str, Any] | None, last_report: dict[str, Any] | None
    ) -> float | tuple[float, ...]:
        """The metric(s) of the run, in ``spec.metrics`` order; raises `CommandFailed` when
        one is missing or not a number. ``last_result`` / ``last_report``: the last stdout
        line with every metric, and the last report (for ``source="stdout"``)."""
        spec = self.spec
        if spec.source == "file":
            data, where = self._from_file()
        elif spec.source == "regex":
            data, where = self._from_regex()
        else:
            data, where = last_result, "stdout (looked for the last JSON object line)"
            report = last_report
            if data is None and len(spec.metrics) == 1 and report and spec.metrics[0] in report:
                data = report  # only reports printed: the last one's value
        numbers = []
        for metric in spec.metrics:
            if data is None or metric not in data:
                raise self.fail(f"no metric {metric!r} found in {where}")
            value = data[metric]
            try:
                if isinstance(value, bool):
                    raise TypeError
                numbers.append(float(value))
            except (TypeError, ValueError):
                raise self.fail(
                    f"metric {metric!r} in {where} is {value!r}, not a number"
                ) from None
        return numbers[0] if len(numbers) == 1 else tuple(numbers)

    def _from_file(self) -> tuple[dict[str, Any] | None, str]:
        path = self.path
        assert path is not None
        where = f"the result file {str(path)!r}"
        if not path.is_file():
            raise self.fail(f"no result file {str(path)!r} (the program did not write it)")
        if self.stamp_before is not None and self.stamp() == self.stamp_before:
            raise self.fail(f"{where} was not written by this run (it is unchanged)")
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            data = json.loads(text)
        except ValueError:
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as error:
                raise self.fail(f"{where} is neither JSON nor YAML: {error}") from None
        if not isinstance(data, dict):
            raise self.fail(f"{where} holds {type(data).__name__}, not a mapping")
        return data, where

    def _from_regex(self) -> tuple[dict[str, Any] | None, str]:
        pattern = self.pattern
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
        metrics = self.spec.metrics
        if pattern.groupindex:
            return {m: last.group(m) for m in metrics if last.group(m) is not None}, where
        if len(metrics) == 1:
            return {metrics[0]: last.group(1 if pattern.groups else 0)}, where
        return {m: last.group(i + 1) for i, m in enumerate(metrics)}, where
