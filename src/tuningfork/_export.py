"""Exporting a study's trials: flat rows, CSV, JSON and pandas; and the JSON pieces that
the command line and the dashboard both show (a trial, state counts, the best trials)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tuningfork.exceptions import MissingExtra, OptionError
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import Study

_FORMATS = ("csv", "json")
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING", "PAUSED")


def rows(study: Study) -> tuple[list[str], list[dict[str, Any]]]:
    """The trials as flat rows (one dict per trial) and the ordered column names."""
    trials = study.trials
    value_cols = (
        ["value"]
        if len(study.directions) == 1
        else [f"values_{i}" for i in range(len(study.directions))]
    )
    params = _ordered(key for t in trials for key in t.params)
    users = _ordered(key for t in trials for key in t.user_attrs)
    base = ["number", "state", *value_cols, "datetime_start", "datetime_complete", "duration"]
    tail = ["worker", "reason"]
    columns = base + [f"params_{p}" for p in params] + [f"user_attrs_{u}" for u in users] + tail
    out = []
    for trial in trials:
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.value,
            "datetime_start": trial.datetime_start,
            "datetime_complete": trial.datetime_complete,
            "duration": trial.duration,
            "worker": trial.worker,
            "reason": trial.reason,
        }
        for i, col in enumerate(value_cols):
            row[col] = trial.values[i] if trial.values is not None else None
        for p in params:
            row[f"params_{p}"] = trial.params.get(p)
        for u in users:
            row[f"user_attrs_{u}"] = trial.user_attrs.get(u)
        out.append(row)
    return columns, out


def to_dataframe(study: Study) -> Any:
    """A pandas DataFrame of the trials, one row each."""
    try:
        import pandas as pd
    except ImportError as error:
        raise MissingExtra(
            "to_dataframe() needs pandas; install it with: pip install 'tuningfork[pandas]'"
        ) from error
    columns, data = rows(study)
    return pd.DataFrame(data, columns=columns)


def to_json(study: Study) -> dict[str, Any]:
    """The study and its trials as one JSON-serialisable dict."""
    return {
        "study": study.name,
        "directions": list(study.directions),
        "system_attrs": study.system_attrs,
        "trials": [trial.to_json() for trial in study.trials],
    }


def export(study: Study, path: str | Path, format: str | None = None) -> Path:  # noqa: A002
    """Write the trials to ``path`` as CSV or JSON; the format defaults to the suffix."""
    target = Path(path)
    chosen = (format or target.suffix.lstrip(".")).lower()
    if chosen not in _FORMATS:
        raise OptionError(
            f"cannot export to {chosen or 'a file without suffix'!r}; use format 'csv' or 'json'",
            option="format",
            owner="export",
        )
    with target.open("w", newline="") as handle:
        write(study, handle, chosen)
    return target


def write(study: Study, stream: TextIO, format: str) -> None:  # noqa: A002
    """Write the trials to an open text stream as "csv" or "json" (strict JSON: NaN -> null)."""
    if format == "json":
        stream.write(json.dumps(strict_json(to_json(study)), indent=1, allow_nan=False) + "\n")
        return
    columns, data = rows(study)
    writer = csv.DictWriter(stream, fieldnames=columns)
    writer.writeheader()
    writer.writerows(_csv_cell(row) for row in data)


def strict_json(value: Any) -> Any:
    """``value`` with NaN and infinities as None, so that it dumps as strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value


def _csv_cell(row: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()}


def _ordered(keys: Any) -> list[str]:
    return list(dict.fromkeys(keys))


# -- shared by the command line and the dashboard ------------------------------------------


def best_trials(study: Study) -> list[FrozenTrial]:
    if len(study.directions) > 1:
        return study.best_trials
    # best_trial, not best_trials: on ties the API names one trial, the first to complete
    has_complete = bool(study.get_trials(states=(TrialState.COMPLETE,)))
    return [study.best_trial] if has_complete else []


def trial_json(trial: FrozenTrial) -> dict[str, Any]:
    values = list(trial.values) if trial.values is not None else None
    return {
        "number": trial.number,
        "state": trial.state.value,
        "value": values[0] if values is not None and len(values) == 1 else None,
        "values": values,
        "params": dict(trial.params),
        "datetime_start": trial.datetime_start,
        "datetime_complete": trial.datetime_complete,
        "duration": trial.duration,
        "worker": trial.worker,
        "reason": trial.reason,
    }


def state_counts(states: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    return counts
