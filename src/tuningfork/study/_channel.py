"""`TrialChannel`: what a live `Trial` handle asks of its study (sampling, reports, the
scheduler's decisions, attributes), so the handle needs none of the study's private state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tuningfork.schedulers.base import Decision
from tuningfork.space import Distribution, Value
from tuningfork.study import _tell
from tuningfork.trial import FrozenTrial, Trial

if TYPE_CHECKING:
    from tuningfork.study._study import Study


class TrialChannel:
    """One per `Study` handle; every `Trial` the handle asks holds it."""

    def __init__(self, study: Study) -> None:
        self._study = study

    @property
    def flush_suggestions(self) -> bool:
        return self._study.sampler.flush_suggestions

    @property
    def seed(self) -> int:
        return self._study.reader.seed

    def frozen(self, number: int) -> FrozenTrial:
        return self._study._log.record(number).frozen()

    def snapshot(self, trial: Trial) -> FrozenTrial:
        """The trial as it stands, with the handle's suggestions not written yet: built
        from the record's fields, copied (a snapshot never changes afterwards)."""
        record = self._study._log.record(trial.number)
        return record.snapshot(trial._params, trial._distributions)

    def sample(self, trial: Trial, name: str, distribution: Distribution) -> Value:
        study = self._study
        with study._log.lock:
            if study.sampler.needs_fresh_view:
                study._log.sync()  # see what other workers suggested since the ask
            value = study.sampler.sample(study.reader, self.snapshot(trial), name, distribution)
            if study.reader._outbox:
                study._flush_records()
        return value

    def flush(self, trial: Trial) -> None:
        """Write the trial's pending suggestions now (see `Sampler.flush_suggestions`)."""
        log = self._study._log
        with log.lock:
            events = _tell.pending_events(trial)
            if events:
                log.append(events)

    def report(self, trial: Trial, value: float, step: int) -> None:
        _tell.report(self._study, trial, value, step)

    def decision(self, number: int) -> Decision:
        decided = self._study._log.record(number).decision
        return Decision(decided) if decided else Decision.CONTINUE

    def should_stop(self, trial: Trial) -> bool:
        return _tell.should_stop(self._study, trial)

    def pause(self, trial: Trial, reason: str) -> None:
        _tell.decide(self._study, trial, Decision.PAUSE, reason)

    def set_user_attr(self, trial: Trial, key: str, value: Any) -> None:
        _tell.set_user_attr(self._study, trial, key, value)

    def set_system_attrs(self, trial: Trial, attrs: Mapping[str, Any]) -> None:
        _tell.set_system_attrs(self._study, trial, attrs)
