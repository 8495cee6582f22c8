"""What the dashboard shows, read from a storage without ever writing to it.

This module does not need Starlette: `DashboardData` opens the storage (refusing to create
a missing SQLite or journal file), keeps one incrementally updated `StudyView` per study,
and builds the JSON documents that the web API (`tuningfork.dashboard.app`) serves.

Versions are the storage's sequence numbers (the ``seq`` of the last batch read), so they
grow with every change, agree between server processes and survive a restart: a client
asking for the trials changed ``since`` a version gets every trial that changed after it
(after a server restart, possibly a few more).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tuningfork import exceptions
from tuningfork._export import best_trials as _best_trials
from tuningfork._export import state_counts as _counts
from tuningfork._export import strict_json
from tuningfork._export import trial_json as _trial_json
from tuningfork.exceptions import DashboardError
from tuningfork.storage import Storage, StudyInfo, get_storage, redact_url
from tuningfork.storage.view import StudyView
from tuningfork.study import Study, StudyReader, load_study
from tuningfork.trial import FrozenTrial

LOG_KEYS = ("stdout_log", "stderr_log")
"""The user attributes that name a trial's log files (set by `tuningfork.command`)."""

LOG_LINES = 200
"""How many lines of a log the dashboard shows (its end)."""

_LOG_TAIL_BYTES = 256 * 1024


# -- opening the storage, read-only ---------------------------------------------------------


def open_storage(url: str) -> Storage:
    """The storage at ``url``, opened only if it already holds tuningfork data: the
    dashboard never creates or alters a storage, so a missing or foreign file raises
    `StorageNotFound` (see `get_storage`'s ``create=False``)."""
    return get_storage(url, create=False)


# -- one study ------------------------------------------------------------------------------


class StudyTracker:
    """One study's trials, brought up to date incrementally, with the version (storage
    sequence number) at which each trial last changed."""

    def __init__(self, storage: Storage, info: StudyInfo) -> None:
        self.storage = storage
        self.info = info
        self._view = StudyView(info.directions)
        # the same change cursor the samplers' and schedulers' incremental models follow
        self._reader = StudyReader(self._view, info.name, time.time)
        self._lock = threading.Lock()

    @property
    def version(self) -> int:
        """The sequence number of the last batch of the study's log read so far."""
        return self._view.last_seq

    def sync(self) -> None:
        """Read the batches appended since the last sync and note which trials changed."""
        with self._lock:
            batches = self.storage.read(self.info.study_id, self._view.last_seq)
            if not batches:
                return
            self._view.apply(batches)

    def trials(self) -> list[FrozenTrial]:
        """Every trial, oldest first (as of the last sync)."""
        with self._lock:
            return self._reader.get_trials()

    def changed_since(self, since: int) -> list[FrozenTrial]:
        """The trials that changed after version ``since`` (every trial when ``since`` < 1)."""
        with self._lock:
            trials = self._reader.changed_since(max(since, 0))
        return sorted(trials, key=lambda t: t.number)

    def trial(self, number: int) -> FrozenTrial:
        """Trial ``number``; raises `TrialNotFound`."""
        with self._lock:
            return self._reader.trial(number)

    def summary(self) -> dict[str, Any]:
        """Name, directions, trial counts by state, best value and last activity."""
        with self._lock:
            trials = self._reader.get_trials()
            best = self._view.best_number
        best_value = None
        if best is not None and len(self.info.directions) == 1:
            values = trials[best].values
            best_value = values[0] if values else None
        stamps = [t.datetime_complete or t.datetime_start or 0.0 for t in trials]
        return {
            "name": self.info.name,
            "directions": list(self.info.directions),
            "n_trials": len(trials),
            "counts": _counts(t.state.value for t in trials),
            "best_value": best_value,
            "created": self.info.created,
            "last_activity": max([self.info.created, *stamps]),
            "version": self.version,
        }


# -- the whole storage ----------------------------------------------------------------------


@dataclasses.dataclass
class LogTail:
    """The end of a trial's log file."""

    key: str
    path: str
    lines: list[str]
    truncated: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "key": self.key,
            "path": self.path,
            "lines": self.lines,
            "truncated": self.truncated,
        }


class DashboardData:
    """Read-only access to every study of one storage, for the dashboard's API.

    The storage is opened on first use (and again after a failure, so a database that
    appears later is picked up); a study's `Study` handle and `StudyTracker` are kept.
    """

    def __init__(self, storage_url: str, *, artifact_root: str | Path | None = None) -> None:
        self.storage_url = storage_url
        self.artifact_root = artifact_root
        self._storage: Storage | None = None
        self._trackers: dict[str, StudyTracker] = {}
        self._studies: dict[str, Study] = {}
        self._lock = threading.Lock()

    @property
    def storage(self) -> Storage:
        """The storage, opened read-only on first use; raises `StorageError`."""
        with self._lock:
            if self._storage is None:
                self._storage = open_storage(self.storage_url)
            return self._storage

    def tracker(self, name: str) -> StudyTracker:
        """The synced tracker of study ``name``; raises `StudyNotFound`."""
        with self._lock:
            tracker = self._trackers.get(name)
        if tracker is None:
            storage = self.storage
            info = storage.get_study(name)
            with self._lock:
                tracker = self._trackers.setdefault(name, StudyTracker(storage, info))
        tracker.sync()
        return tracker

    def study(self, name: str) -> Study:
        """A `Study` handle on ``name`` (for best trials, workers, reproducibility, plots)."""
        with self._lock:
            study = self._studies.get(name)
        if study is None:
            storage = self.storage
            with warnings.catch_warnings():  # a sampler it cannot re-create does not matter
                warnings.simplefilter("ignore")
                study = load_study(name, storage, artifact_root=self.artifact_root)
            with self._lock:
                study = self._studies.setdefault(name, study)
        return study

    # -- documents ------------------------------------------------------------------------

    def studies(self) -> dict[str, Any]:
        """Every study's summary, oldest first."""
        infos = self.storage.list_studies()
        return {"studies": [self.tracker(info.name).summary() for info in infos]}

    def study_detail(self, name: str) -> dict[str, Any]:
        """A study's summary, best trial(s), workers and sampler/scheduler record."""
        tracker = self.tracker(name)
        study = self.study(name)
        attrs = study.system_attrs
        return strict_json(
            {
                **tracker.summary(),
                "best_trials": [_trial_json(t) for t in _best_trials(study)],
                "workers": [_worker_json(key, record) for key, record in study.workers.items()],
                "seed": attrs.get("seed"),
                "sampler": attrs.get("sampler"),
                "scheduler": attrs.get("scheduler"),
                "user_attrs": study.user_attrs,
                "storage": _display_url(self.storage),
                "population": population_summary(tracker.trials()),
            }
        )

    def trials(self, name: str, since: int = 0) -> dict[str, Any]:
        """The trials changed after version ``since``, as table rows, with the version now."""
        tracker = self.tracker(name)
        changed = tracker.changed_since(since)
        doc: dict[str, Any] = {
            "version": tracker.version,
            "since": since,
            "n_trials": len(tracker.trials()),
            "trials": [trial_row(t) for t in changed],
        }
        return strict_json(doc)

    def trial_detail(self, name: str, number: int) -> dict[str, Any]:
        """Everything about one trial: its record, reproducibility record and log keys."""
        trial = self.tracker(name).trial(number)
        study = self.study(name)
        doc = trial.to_json()
        doc["reproducibility"] = study.reproducibility(number)
        doc["logs"] = [key for key in LOG_KEYS if isinstance(trial.user_attrs.get(key), str)]
        doc["artifact_dir"] = str(study.artifact_dir)
        return strict_json(doc)

    def log_tail(self, name: str, number: int, key: str, lines: int = LOG_LINES) -> LogTail:
        """The last ``lines`` lines of the log named by the trial's user attribute ``key``.

        Only a file that resolves inside the study's artefact directory is read; any other
        path is refused (403), whatever the attribute says.
        """
        if key not in LOG_KEYS:
            raise DashboardError(f"unknown log {key!r}; use one of {', '.join(LOG_KEYS)}", 404)
        trial = self.tracker(name).trial(number)
        value = trial.user_attrs.get(key)
        if not isinstance(value, str) or not value:
            raise DashboardError(f"trial {number} has no {key}", 404)
        path = safe_path(self.study(name).artifact_dir, value)
        if not path.is_file():
            raise DashboardError(f"the log {value} does not exist (any more)", 404)
        text, truncated = _tail(path, lines)
        return LogTail(key, str(path), text, truncated)

    def plot(self, name: str, kind: str, options: Mapping[str, str] | None = None) -> str:
        """The plotly figure of a study's plot ``kind``, as JSON text (`tuningfork.viz`).

        ``options``: a page's query parameters, of which only `PLOT_OPTIONS` of the kind
        are accepted (e.g. ``trial`` for "schedule"); another one, or a bad value, is a 400.
        """
        viz = load_viz()
        kinds = tuple(getattr(viz, "KINDS", ()))
        if kind not in kinds:
            raise DashboardError(f"unknown plot {kind!r}; kinds: {', '.join(kinds)}", 404)
        study = self.study(name)
        nothing = getattr(exceptions, "NothingToPlot", None)
        try:
            figure = viz.plot(study, kind, backend="plotly", **plot_options(kind, options or {}))
        except exceptions.MissingExtra as error:
            raise DashboardError(str(error), 501) from error
        except exceptions.OptionError as error:
            raise DashboardError(str(error), 400) from error
        except Exception as error:
            if nothing is not None and isinstance(error, nothing):
                raise DashboardError(str(error) or f"nothing to plot for {kind}", 404) from error
            raise
        return str(figure.to_json())


PLOT_OPTIONS: dict[str, dict[str, Callable[[str], Any]]] = {
    "schedule": {"trial": int},
}
"""The options a page may pass to a plot, by kind: name -> how to read it from a query."""


def plot_options(kind: str, query: Mapping[str, str]) -> dict[str, Any]:
    """The plot options in ``query``, read by `PLOT_OPTIONS`; `DashboardError` (400) for
    an option the kind does not take or a value that does not read."""
    accepted = PLOT_OPTIONS.get(kind, {})
    options: dict[str, Any] = {}
    for key, text in query.items():
        if key not in accepted:
            allowed = ", ".join(accepted) or "none"
            raise DashboardError(
                f"the {kind} plot takes no option {key!r} (options: {allowed})", 400
            )
        try:
            options[key] = accepted[key](text)
        except ValueError:
            raise DashboardError(f"{key} must be an integer, not {text!r}", 400) from None
    return options


def population_summary(trials: Sequence[FrozenTrial]) -> dict[str, Any] | None:
    """For a population-based study (`PBT`, `PB2`): its members, the trials of each
    (oldest first) and the number of exploits; None for any other study."""
    members: dict[int, list[int]] = {}
    exploits = 0
    for trial in trials:
        info = trial.system_attrs.get("pbt")
        if not isinstance(info, Mapping) or "member" not in info:
            continue
        members.setdefault(int(info["member"]), []).append(trial.number)
        exploits += len(info.get("exploits", ()))
    if not members:
        return None
    return {
        "members": {str(m): numbers for m, numbers in sorted(members.items())},
        "n_members": len(members),
        "exploits": exploits,
    }


def plot_kinds() -> dict[str, Any]:
    """Which plots the dashboard can draw: ``{"available", "kinds", "message"}``."""
    try:
        viz = load_viz()
    except DashboardError as error:
        return {"available": False, "kinds": [], "message": str(error)}
    return {"available": True, "kinds": list(getattr(viz, "KINDS", ())), "message": ""}


def load_viz() -> Any:
    """`tuningfork.viz`, imported on first use; `DashboardError` (501) when unavailable."""
    try:
        return importlib.import_module("tuningfork.viz")
    except ImportError as error:
        raise DashboardError(
            f"plots are not available: {error} (install them with: pip install 'tuningfork[viz]')",
            501,
        ) from error


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    """One row of the trials table: number, state, values, params, duration, worker, ..."""
    row = _trial_json(trial)
    row["last_step"] = trial.last_step
    return row


def safe_path(root: Path, value: str) -> Path:
    """``value`` (absolute, or relative to ``root``) resolved, if it lies inside ``root``.

    Symbolic links are followed before the check, so a link that points out is refused.
    """
    base = root.resolve()
    candidate = Path(value)
    resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if not resolved.is_relative_to(base):
        raise DashboardError(
            f"refused to read {value}: it is outside the study's artefact directory {base}",
            403,
        )
    return resolved


def _tail(path: Path, lines: int) -> tuple[list[str], bool]:
    """The last ``lines`` lines of a text file (reading at most its last 256 KiB)."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - _LOG_TAIL_BYTES))
        data = handle.read()
    text = data.decode("utf-8", errors="replace").splitlines()
    if size > _LOG_TAIL_BYTES and text:
        text = text[1:]  # the first line read is probably cut
    return text[-lines:], size > _LOG_TAIL_BYTES or len(text) > lines


def _worker_json(key: str, record: dict[str, Any]) -> dict[str, Any]:
    fields = ("hostname", "pid", "slurm", "cuda_visible_devices")
    return {"id": key, **{field: record.get(field) for field in fields}}


def _display_url(storage: Storage) -> str:
    return redact_url(storage.url)
