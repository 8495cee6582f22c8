"""The storage interface: a registry of studies plus, per study, an append-only event log.

A backend needs only three things per study: append a batch of events atomically, read
the batches appended after a given sequence number, and record heartbeats. Everything a
study knows is replayed from its log (see `tuningfork.storage.view`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Event = dict[str, Any]
Batch = tuple[int, list[Event]]


@dataclass(frozen=True)
class StudyInfo:
    """A study's entry in the registry. ``created`` is seconds since the epoch."""

    study_id: int
    name: str
    directions: tuple[str, ...]
    created: float


class Storage(abc.ABC):
    """Where studies live. Subclasses: `InMemoryStorage`, `SQLStorage`."""

    url: str = ""

    @abc.abstractmethod
    def create_study(self, name: str, directions: tuple[str, ...]) -> StudyInfo:
        """Register a new study; raise DuplicatedStudyError if the name is taken."""

    @abc.abstractmethod
    def get_study(self, name: str) -> StudyInfo:
        """Look a study up by name; raise StudyNotFound if there is none."""

    @abc.abstractmethod
    def list_studies(self) -> list[StudyInfo]:
        """Every study, oldest first."""

    @abc.abstractmethod
    def delete_study(self, name: str) -> None:
        """Remove a study and its whole log; raise StudyNotFound if there is none."""

    @abc.abstractmethod
    def append(self, study_id: int, events: list[Event]) -> int:
        """Append ``events`` as one atomic batch; return the batch's sequence number.

        Sequence numbers grow in log order: a batch appended later has a larger number,
        and a reader never sees a batch before an earlier-numbered one.
        """

    @abc.abstractmethod
    def read(self, study_id: int, after: int) -> list[Batch]:
        """The batches whose sequence number is greater than ``after``, in log order."""

    def append_and_read(
        self, study_id: int, events: list[Event], after: int
    ) -> tuple[int, list[Batch]]:
        """Append ``events`` as one batch, then read every batch after ``after`` (which
        includes the new one). Backends override it to make it one round trip."""
        seq = self.append(study_id, events)
        return seq, self.read(study_id, after)

    def heartbeat(self, study_id: int, numbers: list[int], worker: str, now: float) -> None:  # noqa: B027
        """Record that ``worker`` is alive and running trials ``numbers`` (no-op by default)."""

    def heartbeats(self, study_id: int) -> dict[int, float]:
        """The last heartbeat time of each trial that sent one (empty by default)."""
        return {}

    def artifact_root(self) -> Path:
        """The directory under which studies keep checkpoints and other artefacts."""
        return Path.cwd() / "tuningfork_artifacts"

    def close(self) -> None:  # noqa: B027
        """Release connections (optional)."""
