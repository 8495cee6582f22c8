"""The scheduler interface: at each report, continue, stop or pause the trial.

Stopping-type rules (median, ASHA-as-pruning) answer only CONTINUE or STOP; promotion-type
algorithms (SHA/ASHA with promotions, Hyperband with resume, PBT) also answer PAUSE, and
take part in `Study.ask` through `Scheduler.assign`: resume a paused trial at a larger
budget, or start a new one with a budget (and possibly a bracket and a configuration).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuningfork._record import Recorded
from tuningfork.exceptions import OptionError
from tuningfork.trial import FrozenTrial

if TYPE_CHECKING:
    from tuningfork.space import Space, Value
    from tuningfork.study import CheckpointStore, StudyReader


class Decision(str, enum.Enum):
    """A scheduler's answer to a report."""

    CONTINUE = "continue"
    STOP = "stop"
    PAUSE = "pause"


@dataclass(frozen=True)
class Assignment:
    """What the next `Study.ask` should do, as decided by a scheduler.

    ``resume``: the number of a PAUSED trial to run on (None: start a new trial).
    ``budget``: how far the trial may train in this run, in the user's step units
    (becomes ``trial.budget``). ``claims``: keys settled by log order, so that two workers
    never take the same slot or promotion (the loser asks the scheduler again).
    ``system_attrs``: recorded on the trial (e.g. its bracket and rung). ``params``: a
    configuration for a new trial (parameters it does not name, and values outside the
    distribution the objective suggests, come from the sampler).
    ``prune``: PAUSED trials that lost their rung, to be recorded as PRUNED.

    With ``resume``, ``params`` are new values for some of the trial's parameters from
    now on (PBT's explore; the others keep their values), written in the same log event
    as the resume. ``checkpoint``: a committed checkpoint of another trial (an entry of
    its ``system_attrs["checkpoints"]``, see `Scheduler.commits_checkpoints`) that the
    study copies into this trial's checkpoint directory, and verifies by content hash,
    before the trial runs (PBT's exploit); a new trial then starts where that checkpoint
    stands (``trial.last_step`` is its step). ``wait``: nothing to run until running
    trials report (e.g. a synchronous generation); `Study.ask` raises `WaitForTrials`
    and `Study.optimize` asks again a moment later.
    """

    resume: int | None = None
    budget: int | None = None
    claims: tuple[str, ...] = ()
    system_attrs: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Value] = field(default_factory=dict)
    prune: tuple[int, ...] = ()
    checkpoint: Mapping[str, Any] | None = None
    wait: bool = False

    def __post_init__(self) -> None:
        if self.resume is not None and (isinstance(self.resume, bool) or self.resume < 0):
            raise OptionError(
                f"Assignment.resume must be a trial number >= 0, got {self.resume!r}",
                option="resume",
            )
        if self.wait and (self.resume is not None or self.params or self.claims):
            raise OptionError(
                "Assignment(wait=True) runs nothing: give it no resume, params or claims",
                option="wait",
            )
        if self.checkpoint is not None and not {"trial", "step", "sha256"} <= set(self.checkpoint):
            raise OptionError(
                "Assignment.checkpoint is a committed checkpoint as recorded in a trial's "
                "system_attrs['checkpoints'] (with 'trial', 'step' and 'sha256'), got "
                f"{dict(self.checkpoint)!r}",
                option="checkpoint",
            )
        if self.budget is not None and not self.budget > 0:
            raise OptionError(
                f"Assignment.budget must be > 0 (steps), got {self.budget!r}", option="budget"
            )
        if isinstance(self.claims, str):
            raise OptionError(
                f"Assignment.claims is a tuple of keys, got the str {self.claims!r}",
                option="claims",
            )
        object.__setattr__(self, "claims", tuple(self.claims))
        object.__setattr__(self, "prune", tuple(self.prune))


class Scheduler(Recorded):
    """Base class of every scheduler. Subclasses implement `decide` (and, for promotions,
    `assign`). Each gets the study's `StudyReader`, up to date, with the study's lock
    held; a scheduler never writes to the log: its answers (a `Decision`, an
    `Assignment`) are what the study records. `describe` records the ``__init__`` options
    kept as attributes of the same names and `from_record` re-creates the scheduler from
    that record (see `tuningfork.register`)."""

    pauses: bool = False
    """Whether `decide` may answer PAUSE (default False: a stopping rule, which only
    continues or stops). A scheduler that pauses sets it True; `SchedulerContract` then
    checks that its pauses lead to resumes at larger budgets, and that a stopping one
    never pauses."""

    decides: bool = True
    """False for a scheduler whose `decide` always answers CONTINUE (`NoScheduler`): the
    study then skips asking it at each report."""

    assigns: bool = False
    """Whether `assign` may do more than start a plain new trial (set on its own for a
    class that overrides `assign`): the study then writes a trial's result before the
    next ask rather than with it, since assigning may take a while."""

    commits_checkpoints: bool = False
    """Whether the study commits a trial's checkpoint when it reports at its budget
    (``step >= trial.budget``): the files of ``trial.checkpoint_dir`` are copied, as they
    stand at that report, to a read-only snapshot whose content hash is recorded with the
    report (system attribute ``checkpoints``, by step). Only a committed checkpoint can be
    given as `Assignment.checkpoint` (PBT's exploit); default False."""

    checkpoint_store: CheckpointStore | None = None
    """Where committed checkpoints are kept and how they are copied (default None: files
    under the study's artefact folder, `tuningfork.study.FileCheckpointStore`); a hook
    for object stores."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "assign" in cls.__dict__ and "assigns" not in cls.__dict__:
            cls.assigns = True

    def decide(self, study: StudyReader, trial: FrozenTrial, step: int, value: float) -> Decision:
        """The answer to ``trial`` having reported ``value`` at ``step`` (its last report)."""
        raise NotImplementedError(f"{type(self).__name__} must implement decide()")

    def assign(self, study: StudyReader, space: Space | None) -> Assignment | None:
        """Called by `Study.ask` with the study's view up to date: None for a plain new trial
        (the default), or an `Assignment`. ``space`` is the space given to ``ask``, if any."""
        return None

    def assign_at_cap(self, study: StudyReader) -> Assignment | None:
        """Called by `Study.ask`, with the study's view up to date, when no new trial may
        start (`Study.optimize`'s ``max_trials`` is reached): a last promotion beyond the
        scheduler's rule (an `Assignment` with ``resume``, claimed as usual), an
        ``Assignment(wait=True)`` while running trials may still lead to one, or None (the
        default) to end the run."""
        return None

    def cap_warning(self, max_trials: int) -> str | None:
        """What to warn a user of when `Study.optimize` caps the study at ``max_trials``
        trials (e.g. too few for the rule to train any trial to the end), or None (the
        default): nothing."""
        return None

    def rung_table(self) -> dict[int, tuple[int, ...]]:
        """The rung budgets (whole steps) of each bracket, by bracket number (the system
        attribute ``bracket`` of its trials), largest bracket first; empty (the default)
        for a scheduler without rungs. The dashboard's and `plot_rungs`' source."""
        return {}

    def start_message(self) -> str | None:
        """One line that `Study.optimize` (and so ``tuningfork run``) prints to stderr when
        a run starts, e.g. the rung budgets of a multi-fidelity scheduler; None (the
        default): nothing to say."""
        return None


class NoScheduler(Scheduler):
    """Never stops a trial: every trial runs to the end."""

    decides = False

    def decide(self, study: StudyReader, trial: FrozenTrial, step: int, value: float) -> Decision:
        return Decision.CONTINUE
