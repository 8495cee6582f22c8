"""Studies: create, load, ask, tell, optimize, and read the results.

A `Study` is a handle on a study kept in a storage. It keeps a view replayed from the
study's event log and brings it up to date before each decision, so any number of
handles, in threads, processes or machines, can share one study. Samplers and schedulers
see the study through its `StudyReader`. See docs/architecture.md for the layers.
"""

from __future__ import annotations

from tuningfork.exceptions import SpaceError
from tuningfork.study._channel import TrialChannel
from tuningfork.study._checkpoints import CheckpointStore, FileCheckpointStore, directory_hash
from tuningfork.study._log import FRESH_VIEW_S
from tuningfork.study._manage import (
    StudySummary,
    create_study,
    delete_study,
    list_studies,
    load_study,
)
from tuningfork.study._optimize import Callback, Objective, Runner
from tuningfork.study._reader import StudyReader
from tuningfork.study._study import (
    DEFAULT_GRACE_PERIOD_S,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    Study,
    artifact_folder,
)

__all__ = [
    "DEFAULT_GRACE_PERIOD_S",
    "DEFAULT_HEARTBEAT_INTERVAL_S",
    "FRESH_VIEW_S",
    "Callback",
    "CheckpointStore",
    "FileCheckpointStore",
    "directory_hash",
    "Objective",
    "Runner",
    "SpaceError",
    "Study",
    "StudyReader",
    "StudySummary",
    "TrialChannel",
    "artifact_folder",
    "create_study",
    "delete_study",
    "list_studies",
    "load_study",
]
