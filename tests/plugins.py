"""A sampler and a scheduler written as a plug-in author would, against the public API
only (`tuningfork`, `StudyReader`, `Assignment`, `Decision`): the proof that the
interface the built-ins use is enough. Used by tests/test_plugins.py."""

from __future__ import annotations

import weakref

import numpy as np

import tuningfork as tf
from tuningfork import Assignment, Decision, FrozenTrial, StudyReader


class LocalSearchSampler(tf.Sampler):
    """Samples near the best complete trial so far (with probability ``p_local``), else
    uniformly; the best is kept up to date incrementally with `StudyReader.changed_since`,
    so a proposal costs O(trials changed since the last one)."""

    def __init__(self, *, seed: int | None = None, p_local: float = 0.7, width: float = 0.1):
        self.seed = seed
        self.p_local = p_local
        self.width = width
        self._best: weakref.WeakKeyDictionary[StudyReader, list] = weakref.WeakKeyDictionary()
        self.scanned = 0  # trials looked at in all, to show the model is incremental

    def _incumbent(self, study: StudyReader) -> FrozenTrial | None:
        cursor, best = self._best.get(study, (0, None))
        sign = 1.0 if study.directions[0] == "minimize" else -1.0
        for trial in study.changed_since(cursor):
            self.scanned += 1
            complete = trial.state is tf.TrialState.COMPLETE and trial.values
            if complete and (best is None or sign * trial.values[0] < sign * best.values[0]):
                best = trial
        self._best[study] = (study.cursor, best)
        return best

    def sample(
        self, study: StudyReader, trial: FrozenTrial, name: str, distribution: tf.Distribution
    ) -> tf.Value:
        seed = study.seed if self.seed is None else self.seed
        offset = sum(map(ord, name))
        rng = np.random.default_rng([seed, trial.number, offset])
        best = self._incumbent(study)
        if best is not None and name in best.params and rng.random() < self.p_local:
            centre = distribution.to_unit(best.params[name])
            u = float(np.clip(centre + rng.normal(0.0, self.width), 0.0, 1.0 - 1e-12))
        else:
            u = float(rng.random())
        return distribution.from_unit(u)


class TwoRungHalving(tf.Scheduler):
    """Asynchronous successive halving with two rungs, in promotion mode (Li et al.,
    2020): every new trial trains to ``low`` and pauses there; a paused trial in the top
    1/``eta`` of all trials that reached ``low`` resumes to ``high``. Promotions are
    claimed (``promote:<n>``) so that two workers never resume one trial."""

    pauses = True  # promotion mode: trials pause at low

    def __init__(self, low: int = 3, high: int = 27, eta: int = 3) -> None:
        self.low = low
        self.high = high
        self.eta = eta

    def decide(self, study: StudyReader, trial: FrozenTrial, step: int, value: float) -> Decision:
        budget = trial.system_attrs.get("budget", self.high)
        if step >= budget and budget < self.high:
            return Decision.PAUSE
        return Decision.CONTINUE

    def _ranked(self, study: StudyReader) -> list[FrozenTrial]:
        """The trials that reported at ``low``, best first."""
        sign = 1.0 if study.directions[0] == "minimize" else -1.0
        reached = [t for t in study.get_trials() if self.low in t.intermediate_values]
        return sorted(reached, key=lambda t: (sign * t.intermediate_values[self.low], t.number))

    def _promotion(self, study: StudyReader, top: list[FrozenTrial]) -> Assignment | None:
        for t in top:
            key = f"promote:{t.number}"
            if t.state is tf.TrialState.PAUSED and not study.claimed(key):
                return Assignment(resume=t.number, budget=self.high, claims=(key,))
        return None

    def assign(self, study: StudyReader, space: tf.Space | None) -> Assignment:
        ranked = self._ranked(study)
        top = ranked[: len(ranked) // self.eta]
        return self._promotion(study, top) or Assignment(budget=self.low)

    def assign_at_cap(self, study: StudyReader) -> Assignment | None:
        return self._promotion(study, self._ranked(study)[:1])
