"""The sampler interface: given a study's history, propose the next configuration.

A sampler is a pure function of the study's trials (as replayed from the storage) and a
seed, so that every worker, however late it starts, proposes consistently. It sees the
study through a `StudyReader` (read-only, no I/O) and never writes to the log: what it
wants recorded it hands to `StudyReader.record`, and the study appends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuningfork._record import Recorded
from tuningfork.exceptions import OptionError
from tuningfork.space import Distribution, Space, Value
from tuningfork.trial import FrozenTrial

if TYPE_CHECKING:
    from tuningfork.study import StudyReader


@dataclass(frozen=True)
class Reservation:
    """A configuration a sampler wants settled before the trial exists.

    ``key`` is claimed in the log together with the trial's creation; if another worker
    claimed the same key first, the trial is void and the sampler is asked again.
    """

    key: str
    params: Mapping[str, Value] = field(default_factory=dict)
    system_attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise OptionError(
                f"a Reservation's key must be a non-empty str, got {self.key!r}", option="key"
            )


class Sampler(Recorded):
    """Base class of every sampler.

    Subclasses implement `sample` (one parameter, define-by-run) and may override
    `sample_space` (a whole declared space at once) and `reserve` (exactly-once claims).
    Each gets the study's `StudyReader`, up to date, with the study's lock held: a
    sampler reads it freely and keeps per-study state keyed by it (e.g. a
    `weakref.WeakKeyDictionary`), following changes with `StudyReader.changed_since`.
    `describe` records the ``__init__`` options kept as attributes of the same names and
    `from_record` re-creates the sampler from that record (see `tuningfork.register`).
    """

    seed: int | None = None

    needs_fresh_view: bool = False
    """True for samplers that model other workers' running trials (constant liar): the
    study then reads the log before each proposal instead of using a view up to a few
    milliseconds old."""

    reserves: bool = False
    """Whether `reserve` may claim something (set on its own for a class that overrides
    `reserve`): the study then reads the log before each ask, so as not to lose races."""

    flush_suggestions: bool = False
    """True for samplers that model running trials (e.g. constant liar): each suggestion
    is then written to the storage at once, so other workers see it while the trial runs.
    False (the default) writes suggestions with the trial's next report or its result."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "reserve" in cls.__dict__ and "reserves" not in cls.__dict__:
            cls.reserves = True

    def reserve(self, study: StudyReader, space: Space | None) -> Reservation | None:
        """A claim to settle before the next trial is created, or None (the default).

        Raise `SearchExhausted` when there is nothing left to propose.
        """
        return None

    def sample(
        self, study: StudyReader, trial: FrozenTrial, name: str, distribution: Distribution
    ) -> Value:
        """Propose a value for one parameter of ``trial``."""
        raise NotImplementedError(f"{type(self).__name__} must implement sample()")

    def sample_space(
        self, study: StudyReader, trial: FrozenTrial, space: Space
    ) -> dict[str, Value]:
        """Propose a whole configuration of a declared ``space`` (only active parameters).

        The default asks `sample` for each parameter, parents before children.
        """
        params: dict[str, Value] = dict(trial.params)
        for name in space.names:
            if name in params or not space.is_active(name, params):
                continue
            params[name] = self.sample(study, trial, name, space[name])
        return params
