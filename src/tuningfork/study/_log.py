"""The only code that reads and writes a study's storage: append events, read the batches
appended since the last read into the study's view, and heartbeats."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from tuningfork.exceptions import TrialNotFound
from tuningfork.repro import environment_record, worker_id, worker_record
from tuningfork.storage import Storage, StudyInfo
from tuningfork.storage.view import StudyView, TrialRecord

# A view read from the log less than this long ago (seconds) is fresh enough for the next
# ask after a tell (see `StudyLog.sync_unless_fresh`).
FRESH_VIEW_S = 0.005


class StudyLog:
    """One handle's connection to a study's event log and the view replayed from it.

    ``lock`` guards the view: whoever reads the view or appends holds it. ``carry`` holds
    events (a tell) that ride with the next append, so a worker pays one write per trial.
    """

    def __init__(self, info: StudyInfo, storage: Storage, clock: Callable[[], float]) -> None:
        self.info = info
        self.storage = storage
        self.clock = clock
        self.view = StudyView(info.directions)
        self.lock = threading.RLock()
        self.worker = worker_id()
        self.carry: list[dict[str, Any]] = []
        self._announced = False
        self._read_at = 0.0  # time.monotonic() of the last read of the log into the view

    def sync(self) -> None:
        """Apply the batches appended since the last read."""
        self._read_at = time.monotonic()
        batches = self.storage.read(self.info.study_id, self.view.last_seq)
        if batches:
            self.view.apply(batches)

    def sync_unless_fresh(self) -> None:
        """`sync`, unless the view was read from the log less than `FRESH_VIEW_S` ago:
        a worker that finishes a trial within that time (a cheap objective) decides its
        next ask on a view at most that stale, and saves a storage round trip per trial.
        Claims are still settled by log order, so staleness costs at most a lost race."""
        if time.monotonic() - self._read_at >= FRESH_VIEW_S:
            self.sync()

    def append(self, events: list[dict[str, Any]], *, sync: bool = False) -> int:
        """Append events as one atomic batch; with ``sync``, also bring the view up to date
        (in one storage round trip where the backend allows)."""
        if self.carry:  # a tell waiting to ride with this append (see `tell_and_ask`)
            events = [*self.carry, *events]
            self.carry = []
        if not self._announced:
            record = {"id": self.worker, **worker_record(), "environment": environment_record()}
            events = [{"op": "study", "worker": record}, *events]
            self._announced = True
        if not sync:
            return self.storage.append(self.info.study_id, events)
        self._read_at = time.monotonic()
        seq, batches = self.storage.append_and_read(self.info.study_id, events, self.view.last_seq)
        self.view.apply(batches)
        return seq

    def record(self, number: int) -> TrialRecord:
        """Trial ``number``'s record, reading the log once if the view does not have it."""
        try:
            return self.view.records[number]
        except IndexError:
            with self.lock:
                self.sync()
            if 0 <= number < len(self.view.records):
                return self.view.records[number]
            raise TrialNotFound(
                f"study {self.info.name!r} has no trial {number} (it has {len(self.view.records)})"
            ) from None

    def heartbeat(self, numbers: list[int]) -> None:
        self.storage.heartbeat(self.info.study_id, numbers, self.worker, self.clock())

    def heartbeats(self) -> dict[int, float]:
        return self.storage.heartbeats(self.info.study_id)
