"""In-memory storage: the event log kept in Python lists, for one process (its threads share it)."""

from __future__ import annotations

import threading
import time

from tuningfork.exceptions import DuplicatedStudyError, StudyNotFound
from tuningfork.storage.base import Batch, Event, Storage, StudyInfo, check_study_name


class InMemoryStorage(Storage):
    """Keeps studies in memory; they vanish with the process. Thread-safe."""

    url = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._studies: dict[str, StudyInfo] = {}
        self._logs: dict[int, list[Batch]] = {}
        self._beats: dict[int, dict[int, float]] = {}
        self._next_id = 1
        self._next_seq = 1

    def create_study(self, name: str, directions: tuple[str, ...]) -> StudyInfo:
        check_study_name(name)
        with self._lock:
            if name in self._studies:
                raise DuplicatedStudyError(
                    f"a study named {name!r} already exists; pass load_if_exists=True to "
                    "continue it, or choose another name"
                )
            info = StudyInfo(self._next_id, name, tuple(directions), time.time())
            self._next_id += 1
            self._studies[name] = info
            self._logs[info.study_id] = []
            return info

    def get_study(self, name: str) -> StudyInfo:
        try:
            return self._studies[name]
        except KeyError:
            raise StudyNotFound(_not_found(name, list(self._studies))) from None

    def list_studies(self) -> list[StudyInfo]:
        return sorted(self._studies.values(), key=lambda info: info.study_id)

    def delete_study(self, name: str) -> None:
        with self._lock:
            info = self.get_study(name)
            del self._studies[name]
            del self._logs[info.study_id]
            self._beats.pop(info.study_id, None)

    def append(self, study_id: int, events: list[Event]) -> int:
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            self._logs[study_id].append((seq, events))
            return seq

    def read(self, study_id: int, after: int) -> list[Batch]:
        log = self._logs.get(study_id, [])
        # batches are appended in seq order, so find the first newer one from the end
        start = len(log)
        while start > 0 and log[start - 1][0] > after:
            start -= 1
        return log[start:]

    def heartbeat(self, study_id: int, numbers: list[int], worker: str, now: float) -> None:
        with self._lock:
            beats = self._beats.setdefault(study_id, {})
            for number in numbers:
                beats[number] = now

    def heartbeats(self, study_id: int) -> dict[int, float]:
        return dict(self._beats.get(study_id, {}))


def _not_found(name: str, names: list[str]) -> str:
    from tuningfork._names import did_you_mean

    message = f"no study named {name!r} in this storage"
    suggestion = did_you_mean(name, names)
    if suggestion:
        return f"{message}; {suggestion}"
    if names:
        return f"{message}; it holds: {', '.join(sorted(names)[:10])}"
    return f"{message}; it holds no study yet (create one with create_study)"
