"""`StudyReader`: the public, read-only view of a study that samplers and schedulers get.

It reads the study's in-memory view and never touches the storage: the study brings the
view up to date (and holds its lock) before it calls a policy, so a policy's reads are
cheap and consistent. Incremental models follow the study with `cursor` and
`changed_since` instead of rescanning every trial.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tuningfork.exceptions import TrialNotFound
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.storage.view import StudyView


class StudyReader:
    """What a policy may know about a study, as of the study's last read of its log.

    Trials come as `FrozenTrial` records (immutable; the same object until the trial
    changes, so ``is`` tells a policy whether to look again). Made by the study (see
    `Study.reader`); a plug-in never builds one.
    """

    __slots__ = ("_view", "_name", "_clock", "_outbox", "__weakref__")

    def __init__(self, view: StudyView, name: str, clock: Callable[[], float]) -> None:
        self._view = view
        self._name = name
        self._clock = clock
        self._outbox: dict[str, Any] = {}

    # -- the study ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The study's name."""
        return self._name

    @property
    def directions(self) -> tuple[str, ...]:
        """ "minimize" or "maximize", one per objective."""
        return self._view.directions

    @property
    def direction(self) -> str:
        """The direction of a single-objective study (raises for several objectives)."""
        from tuningfork.exceptions import OptionError

        if len(self._view.directions) != 1:
            raise OptionError(
                f"study {self._name!r} has {len(self._view.directions)} objectives; use directions",
                option="direction",
            )
        return self._view.directions[0]

    @property
    def seed(self) -> int:
        """The study's recorded seed (0 when none was recorded)."""
        return int(self._view.study_attrs.get("seed") or 0)

    @property
    def attrs(self) -> Mapping[str, Any]:
        """The study's recorded attributes (read-only): seed, sampler and scheduler
        records, and what policies asked to record (see `record`)."""
        return MappingProxyType(self._view.study_attrs)

    def now(self) -> float:
        """The study's clock: seconds since the epoch (`time.time` unless the study was
        given another clock, as tests do). Trials' times are on the same clock."""
        return self._clock()

    # -- trials ---------------------------------------------------------------------------

    def __len__(self) -> int:
        """How many trials the study has, in any state."""
        return len(self._view.records)

    def trial(self, number: int) -> FrozenTrial:
        """Trial ``number`` as it stands."""
        if not 0 <= number < len(self._view.records):
            raise TrialNotFound(f"study {self._name!r} has no trial {number} (it has {len(self)})")
        return self._view.records[number].frozen()

    def state(self, number: int) -> TrialState:
        """Trial ``number``'s state (cheaper than `trial` when that is all one needs)."""
        return self._view.records[number].state

    def get_trials(self, states: Iterable[TrialState | str] | None = None) -> list[FrozenTrial]:
        """The trials, oldest first, optionally only those in ``states``."""
        records = self._view.records
        if states is None:
            return [r.frozen() for r in records]
        wanted = {TrialState(s) for s in states}
        return [r.frozen() for r in records if r.state in wanted]

    @property
    def trials(self) -> list[FrozenTrial]:
        """All trials, oldest first."""
        return self.get_trials()

    @property
    def n_complete(self) -> int:
        """How many trials are COMPLETE."""
        return self._view.n_complete

    def numbers(self, state: TrialState | str) -> tuple[int, ...]:
        """The numbers of the trials in ``state``, oldest first (cheap for RUNNING, PAUSED
        and WAITING, which the view indexes)."""
        state = TrialState(state)
        index = {
            TrialState.RUNNING: self._view.running,
            TrialState.PAUSED: self._view.paused,
            TrialState.WAITING: self._view.waiting,
        }.get(state)
        if index is not None:
            return tuple(index)
        return tuple(r.number for r in self._view.records if r.state is state)

    def running_trials(self) -> list[FrozenTrial]:
        """The RUNNING trials (with the parameters they have written so far)."""
        records = self._view.records
        return [records[n].frozen() for n in list(self._view.running)]

    @property
    def best_trial(self) -> FrozenTrial | None:
        """The best COMPLETE trial of a single-objective study, or None."""
        best = self._view.best_number
        return None if best is None else self._view.records[best].frozen()

    def claimed(self, key: str) -> bool:
        """Whether a claim key (a grid point, a promotion slot) is taken in the log."""
        return key in self._view.claims

    # -- following changes ----------------------------------------------------------------

    @property
    def cursor(self) -> int:
        """A position in the study's log: pass it to `changed_since` later."""
        return self._view.last_seq

    def changed_since(self, cursor: int) -> list[FrozenTrial]:
        """The trials created or changed after ``cursor`` (0: every trial), oldest change
        first, each once, as they stand now."""
        changes = self._view.changes
        start = bisect.bisect_right(changes, (cursor, float("inf")))
        numbers = dict.fromkeys(number for _, number in changes[start:])
        records = self._view.records
        return [records[n].frozen() for n in numbers]

    # -- what a policy wants recorded -----------------------------------------------------

    def record(self, key: str, value: Any) -> None:
        """Ask the study to record ``value`` (JSON) as study attribute ``key``; the study
        appends it to the log after the policy returns (a policy never writes itself).
        Seen in `attrs` once written."""
        self._outbox[key] = value


def take_records(reader: StudyReader) -> dict[str, Any]:
    """The records a policy asked for since the last call (the study appends them)."""
    taken, reader._outbox = reader._outbox, {}
    return taken
