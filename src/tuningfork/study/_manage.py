"""Create, load, delete and list studies."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tuningfork.exceptions import DuplicatedStudyError, OptionError, StudyNotFound
from tuningfork.repro import environment_record
from tuningfork.samplers.base import Sampler
from tuningfork.schedulers.base import Scheduler
from tuningfork.storage import Storage, get_storage
from tuningfork.storage.base import check_study_name
from tuningfork.storage.view import StudyView
from tuningfork.study._study import Study, artifact_folder, check_retries

_DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class StudySummary:
    """One line of `list_studies`: a study's name, directions, size and best value."""

    name: str
    directions: tuple[str, ...]
    n_trials: int
    counts: dict[str, int]
    best_value: float | None
    created: float


# -- module functions -----------------------------------------------------------------------


def create_study(
    name: str | None = None,
    storage: Storage | str | None = None,
    *,
    direction: str | None = None,
    directions: Sequence[str] | None = None,
    sampler: Sampler | None = None,
    scheduler: Scheduler | None = None,
    load_if_exists: bool = False,
    seed: int | None = None,
    artifact_root: str | Path | None = None,
    max_retries: int = 0,
    retry_failed_exceptions: bool = False,
    clock: Callable[[], float] | None = None,
) -> Study:
    """Create a study (or load it, with ``load_if_exists``).

    Args:
        name: unique within the storage; None makes one up.
        storage: a URL (``sqlite:///path.db``, ``memory``), a `Storage`, or None for the
            default: ``sqlite:///tuningfork.db`` in the current directory.
        direction / directions: "minimize" (default) or "maximize", one per objective.
        sampler: proposes configurations (default: `AutoSampler` seeded with ``seed``,
            which picks Gaussian-process BO or TPE from the space and budget).
        scheduler: stops or pauses trials from their reports (default: `NoScheduler`).
        load_if_exists: return the existing study of that name instead of raising
            `DuplicatedStudyError`.
        seed: recorded in the study and used to seed the default sampler (None: one is
            drawn and recorded).
        artifact_root: where trials' checkpoint directories go (default: beside the
            SQLite file, or the current directory).
        max_retries: how many times a trial that failed because its worker vanished (stale)
            is retried: a new WAITING trial with the same parameters, system attrs
            ``retry_of`` / ``retry_count`` / ``checkpoint_of``, and ``retried_by`` on the
            failed one. Recorded in the study, so every worker agrees (`load_study` may
            override it for one handle). With ``load_if_exists`` the record of an existing
            study wins.
        retry_failed_exceptions: retry trials whose objective raised (or returned a bad
            value) too, not only stale ones (as Optuna's RetryFailedTrialCallback does).
        clock: the wall clock (seconds since the epoch; default `time.time`) that stamps
            the study's events and judges stale trials; tests pass a fake one.
    """
    chosen = _check_directions(direction, directions)
    retries = check_retries(max_retries)
    name = (
        name
        if name is not None
        else f"study-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    )
    check_study_name(name)  # before the storage is opened: a bad name creates nothing
    store = get_storage(storage)
    try:
        info = store.create_study(name, chosen)
    except DuplicatedStudyError:
        if not load_if_exists:
            raise
        info = store.get_study(name)
        if info.directions != chosen:
            raise OptionError(
                f"study {name!r} exists with directions {list(info.directions)}, not "
                f"{list(chosen)}; pass the same directions or use another name"
            ) from None
        return Study(
            info,
            store,
            sampler=sampler,
            scheduler=scheduler,
            artifact_root=artifact_root,
            clock=clock,
        )
    if sampler is None:
        from tuningfork.samplers.auto import AutoSampler

        sampler = AutoSampler(seed=seed)
    study = Study(
        info, store, sampler=sampler, scheduler=scheduler, artifact_root=artifact_root, clock=clock
    )
    record = {
        "directions": list(chosen),
        "seed": seed if seed is not None else sampler.seed,
        "sampler": sampler.describe(),
        "scheduler": study.scheduler.describe(),
        "environment": environment_record(),
        "created_by": study._log.worker,
        "uid": uuid.uuid4().hex,
        "max_retries": retries,
        "retry_failed_exceptions": bool(retry_failed_exceptions),
    }
    with study._log.lock:
        study._log.append([{"op": "study", "attrs": record}], sync=True)
    return study


def load_study(
    name: str | None = None,
    storage: Storage | str | None = None,
    *,
    sampler: Sampler | None = None,
    scheduler: Scheduler | None = None,
    artifact_root: str | Path | None = None,
    max_retries: int | None = None,
    retry_failed_exceptions: bool | None = None,
    clock: Callable[[], float] | None = None,
) -> Study:
    """Open an existing study. ``name`` may be left out when the storage holds one study.

    Without a ``sampler`` or ``scheduler``, the ones the study was created with are
    re-created from its record (their class, options and seed), so every worker of a study
    samples and schedules alike. ``max_retries`` / ``retry_failed_exceptions`` override the
    study's recorded retry rule for this handle only (None: use the record).
    """
    store = get_storage(storage)
    if name is None:
        studies = store.list_studies()
        if len(studies) != 1:
            names = ", ".join(s.name for s in studies) or "none"
            raise StudyNotFound(
                f"{store.url} holds {len(studies)} studies ({names}); name the one to load"
            )
        name = studies[0].name
    info = store.get_study(name)
    study = Study(
        info, store, sampler=sampler, scheduler=scheduler, artifact_root=artifact_root, clock=clock
    )
    study.max_retries = max_retries
    study.retry_failed_exceptions = retry_failed_exceptions
    return study


def delete_study(
    name: str,
    storage: Storage | str | None = None,
    *,
    artifact_root: str | Path | None = None,
    keep_artifacts: bool = False,
) -> Path | None:
    """Delete a study and all its trials from the storage, and its artefact folder
    (checkpoints and logs, `Study.artifact_dir`) unless ``keep_artifacts``.

    ``artifact_root``: where the study's artefacts are, if the study was run with one
    (default: the storage's, e.g. ``tuningfork_artifacts`` beside a SQLite file).
    Returns the study's artefact folder (removed, or left where it is with
    ``keep_artifacts``), or None when the study has none.
    """
    store = get_storage(storage)
    info = store.get_study(name)
    view = StudyView(info.directions)
    view.apply(store.read(info.study_id, 0))
    root = Path(artifact_root) if artifact_root is not None else store.artifact_root()
    uid = view.study_attrs.get("uid")
    folder = root / artifact_folder(name, uid if isinstance(uid, str) else None)
    store.delete_study(name)
    if not folder.is_dir():
        return None
    if not keep_artifacts:
        shutil.rmtree(folder)
    return folder


def list_studies(storage: Storage | str | None = None) -> list[StudySummary]:
    """A summary of every study in the storage, oldest first."""
    store = get_storage(storage)
    summaries = []
    for info in store.list_studies():
        view = StudyView(info.directions)
        view.apply(store.read(info.study_id, 0))
        counts: dict[str, int] = {}
        for record in view.records:
            counts[record.state.value] = counts.get(record.state.value, 0) + 1
        best = view.best_number
        best_value = view.records[best].values[0] if best is not None else None  # type: ignore[index]
        summaries.append(
            StudySummary(
                info.name, info.directions, len(view.records), counts, best_value, info.created
            )
        )
    return summaries


# -- helpers --------------------------------------------------------------------------------


def _check_directions(direction: str | None, directions: Sequence[str] | None) -> tuple[str, ...]:
    if direction is not None and directions is not None:
        raise OptionError("give direction or directions, not both", option="directions")
    chosen = tuple(directions) if directions is not None else (direction or "minimize",)
    if not chosen:
        raise OptionError(
            "directions is empty; give at least one of 'minimize', 'maximize'", option="directions"
        )
    for item in chosen:
        if item not in _DIRECTIONS:
            raise OptionError(
                f"direction {item!r} is not allowed; use 'minimize' or 'maximize'",
                option="direction",
            )
    return chosen
