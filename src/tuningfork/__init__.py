"""tuningfork: hyperparameter optimisation for deep learning, from a laptop to a SLURM cluster.

The public API is what this module exports; everything else may change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuningfork.exceptions import (
    CheckpointError,
    CommandFailed,
    ConfigError,
    DuplicatedStudyError,
    ExperimentalWarning,
    LaunchError,
    MissingExtra,
    NoCompletedTrial,
    NotEnoughTrials,
    NothingToPlot,
    ObjectiveNotFound,
    ObjectiveValueError,
    OptionError,
    ParameterConflict,
    PlotOptionError,
    SamplerError,
    SchedulerError,
    SchemaVersionError,
    SearchExhausted,
    SerializationError,
    SpaceError,
    StorageError,
    StorageNotFound,
    StorageURLError,
    StorageWarning,
    StudyNameError,
    StudyNotFound,
    TrialNotFound,
    TrialNotInStudy,
    TrialPruned,
    TrialStateError,
    TuningforkError,
    WaitForTrials,
    WorkerFailed,
)
from tuningfork.registry import register
from tuningfork.samplers import (
    AutoSampler,
    CmaEsSampler,
    DESampler,
    EDASampler,
    GPSampler,
    GridSampler,
    PSOSampler,
    QMCSampler,
    RandomSampler,
    Sampler,
    TPESampler,
)
from tuningfork.samplers.base import Reservation
from tuningfork.samplers.genetic import GASampler, NSGAIISampler
from tuningfork.samplers.nsga3 import NSGAIIISampler
from tuningfork.schedulers import (
    ASHA,
    BOHB,
    DEHB,
    PB2,
    PBT,
    SHA,
    AnyOf,
    Decision,
    Hyperband,
    MedianStopping,
    NoScheduler,
    PatienceStopping,
    PBTReplay,
    PercentileStopping,
    RankStopping,
    Scheduler,
    ThresholdStopping,
    TimeStopping,
)
from tuningfork.schedulers.base import Assignment
from tuningfork.space import Categorical, Distribution, Float, Int, Space
from tuningfork.storage import (
    InMemoryStorage,
    JournalStorage,
    Storage,
    copy_study,
    get_storage,
)
from tuningfork.study import (
    Study,
    StudyReader,
    StudySummary,
    create_study,
    delete_study,
    list_studies,
    load_study,
)
from tuningfork.trial import FrozenTrial, Trial, TrialState

if TYPE_CHECKING:
    from tuningfork.storage.sql import SQLStorage


def __getattr__(name: str) -> Any:
    """`SQLStorage` is imported when first used (SQLAlchemy is slow to import)."""
    if name == "SQLStorage":
        from tuningfork.storage.sql import SQLStorage

        return SQLStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


try:
    from importlib.metadata import version as _version

    __version__ = _version("tuningfork")
except Exception:  # running from a source tree that is not installed
    __version__ = "0.1.0"

__all__ = [
    "Assignment",
    "ExperimentalWarning",
    "CommandFailed",
    "NoCompletedTrial",
    "OptionError",
    "Reservation",
    "StudyReader",
    "ConfigError",
    "ASHA",
    "BOHB",
    "DEHB",
    "SHA",
    "Hyperband",
    "SchedulerError",
    "AnyOf",
    "PatienceStopping",
    "PercentileStopping",
    "RankStopping",
    "ThresholdStopping",
    "TimeStopping",
    "AutoSampler",
    "CmaEsSampler",
    "GPSampler",
    "TPESampler",
    "GASampler",
    "NSGAIISampler",
    "NSGAIIISampler",
    "DESampler",
    "EDASampler",
    "PSOSampler",
    "Categorical",
    "Decision",
    "Distribution",
    "DuplicatedStudyError",
    "Float",
    "FrozenTrial",
    "GridSampler",
    "InMemoryStorage",
    "JournalStorage",
    "Int",
    "MedianStopping",
    "MissingExtra",
    "NotEnoughTrials",
    "NothingToPlot",
    "NoScheduler",
    "ObjectiveValueError",
    "ParameterConflict",
    "QMCSampler",
    "RandomSampler",
    "SQLStorage",
    "Sampler",
    "Scheduler",
    "SchemaVersionError",
    "SearchExhausted",
    "WaitForTrials",
    "CheckpointError",
    "PBT",
    "PB2",
    "PBTReplay",
    "Space",
    "SpaceError",
    "Storage",
    "StorageError",
    "Study",
    "StorageNotFound",
    "StorageURLError",
    "StorageWarning",
    "StudyNameError",
    "StudyNotFound",
    "StudySummary",
    "Trial",
    "TrialNotFound",
    "TrialNotInStudy",
    "TrialPruned",
    "TrialState",
    "TrialStateError",
    "LaunchError",
    "NoCompletedTrial",
    "ObjectiveNotFound",
    "OptionError",
    "PlotOptionError",
    "SamplerError",
    "SerializationError",
    "WorkerFailed",
    "TuningforkError",
    "copy_study",
    "create_study",
    "delete_study",
    "get_storage",
    "list_studies",
    "load_study",
    "register",
    "__version__",
]
