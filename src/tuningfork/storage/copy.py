"""Copying a study from one storage to another, losslessly.

A study is its event log, so a copy is a replay: read every batch from the source and
append the same events, batch by batch and in the same order, to a new study in the
target. Trial numbers, parameters, reports, attributes, states (PAUSED included) and
claims all come out identical, because the target's view replays the same log. Works
between any two storages (memory, SQLite, journal, PostgreSQL), given as `Storage`
objects or URLs.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from tuningfork.exceptions import DuplicatedStudyError, StudyNotFound
from tuningfork.storage.base import check_study_name

if TYPE_CHECKING:
    from tuningfork.storage.base import Storage, StudyInfo

__all__ = ["copy_study"]


def copy_study(
    name: str,
    from_storage: Storage | str,
    to_storage: Storage | str,
    new_name: str | None = None,
) -> StudyInfo:
    """Copy study ``name`` from ``from_storage`` into ``to_storage`` as ``new_name``
    (default: the same name); return the new study's `StudyInfo`.

    Storages are `Storage` objects or URLs (``sqlite:///a.db``, ``journal:///x.log``,
    ``memory`` is accepted but gives a fresh, private storage). Every batch of the log is
    copied with its events unchanged, so the copy's trials, study attributes and worker
    records equal the source's; the last heartbeat of each trial is copied too. Only the
    study's creation time is new. Copy a study that no worker is writing to: batches
    appended during the copy may be left out.

    Raises `StudyNameError` for a name that `check_study_name` rejects (before any
    storage is opened), `StudyNotFound` if the source has no such study, and
    `DuplicatedStudyError` if the target already has a study of the new name (nothing is
    written then). If the copy fails midway, the partial target study is deleted.
    """
    from tuningfork.storage import get_storage, redact_url

    target_name = name if new_name is None else new_name
    check_study_name(target_name)  # before the target is opened: a bad name creates nothing
    source = get_storage(from_storage)
    target = get_storage(to_storage)
    info = source.get_study(name)  # StudyNotFound names the study and the storage
    if source is target and target_name == name:
        raise DuplicatedStudyError(
            f"cannot copy study {name!r} onto itself; give new_name to copy it within "
            f"{redact_url(source.url) or 'the same storage'}"
        )
    try:
        target.get_study(target_name)
    except StudyNotFound:
        pass
    else:
        raise DuplicatedStudyError(
            f"the target storage {redact_url(target.url) or target!r} already has a study named "
            f"{target_name!r}; delete it first (tuningfork.delete_study, or `tuningfork delete`) "
            "or pass another new_name"
        )
    batches = [events for _, events in source.read(info.study_id, 0)]
    beats = source.heartbeats(info.study_id)
    copied = target.create_study(target_name, info.directions)
    try:
        for start in range(0, len(batches), 1000):
            target.append_batches(copied.study_id, batches[start : start + 1000])
        by_time: dict[float, list[int]] = {}
        for number, beat in beats.items():
            by_time.setdefault(beat, []).append(number)
        for beat, numbers in sorted(by_time.items()):
            target.heartbeat(copied.study_id, sorted(numbers), "copied", beat)
    except BaseException:
        with contextlib.suppress(Exception):  # the original error matters more
            target.delete_study(target_name)
        raise
    return copied
