"""The storage interface: a registry of studies plus, per study, an append-only event log.

A backend needs only three things per study: append a batch of events atomically, read
the batches appended after a given sequence number, and record heartbeats. Everything a
study knows is replayed from its log (see `tuningfork.storage.view`).
"""

from __future__ import annotations

import abc
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuningfork.exceptions import StudyNameError

MAX_STUDY_NAME_BYTES = 242
"""The longest study name, in bytes of UTF-8: a study's artefact folder is named
``<name>-<12 hex digits of a unique id>``, which must fit the 255-byte limit that common
file systems put on a file name."""

Event = dict[str, Any]
Batch = tuple[int, list[Event]]


@dataclass(frozen=True)
class StudyInfo:
    """A study's entry in the registry. ``created`` is seconds since the epoch."""

    study_id: int
    name: str
    directions: tuple[str, ...]
    created: float


def check_study_name(name: str) -> None:
    """Raise `StudyNameError` unless ``name`` can name a study.

    A name is a string with a visible character, without control characters (NUL,
    newline, tab, ...), without ``/`` or ``\\`` and other than ``.`` or ``..`` (it names the
    study's artefact folder), and at most `MAX_STUDY_NAME_BYTES` bytes in UTF-8. Every
    backend's `Storage.create_study` calls it, so no path creates a study it rejects.
    """
    if not isinstance(name, str):
        raise StudyNameError(f"a study name must be a string, not {type(name).__name__} {name!r}")
    if not name.strip():
        raise StudyNameError(f"study name {name!r} is empty; give it a visible character")
    control = next((char for char in name if unicodedata.category(char) == "Cc"), None)
    if control is not None:
        raise StudyNameError(
            f"study name {name!r} contains the control character {control!r}; a name may "
            "not contain NUL, newlines, tabs or other control characters"
        )
    if "/" in name or "\\" in name or name in (".", ".."):
        raise StudyNameError(
            f"study name {name!r} may not contain '/' or '\\' nor be '.' or '..': it names "
            "the study's artefact folder; use e.g. '-' instead"
        )
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise StudyNameError(
            f"study name {name!r} is not valid Unicode text (it holds a lone surrogate)"
        ) from None
    if size > MAX_STUDY_NAME_BYTES:
        raise StudyNameError(
            f"study name {name[:40]!r}... is {size} bytes in UTF-8, over the limit of "
            f"{MAX_STUDY_NAME_BYTES}: the study's artefact folder, named <name>-<12 hex "
            "digits>, must fit the file system's 255-byte limit on a file name; choose a "
            "shorter name"
        )


class Storage(abc.ABC):
    """Where studies live. Subclasses: `InMemoryStorage`, `SQLStorage`."""

    url: str = ""

    @abc.abstractmethod
    def create_study(self, name: str, directions: tuple[str, ...]) -> StudyInfo:
        """Register a new study; raise DuplicatedStudyError if the name is taken.

        Implementations call `check_study_name` first, so a bad name creates nothing."""

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

    def append_batches(self, study_id: int, batches: list[list[Event]]) -> list[int]:
        """Append several batches, each atomic with its own sequence number, in order; the
        default appends them one by one (a backend may do it in one write)."""
        return [self.append(study_id, events) for events in batches]

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
