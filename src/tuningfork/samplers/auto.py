"""The default sampler: picks Gaussian-process BO or TPE from the study's space and budget.

Rule (deterministic, derived from the study's trials, so every worker picks alike):
  * GP (`GPSampler`) while the study is small and numeric: fewer than `gp_max_trials`
    finished trials, at most `gp_max_dims` parameters, no conditional parameters (every
    finished trial has the same parameters), and at most half of them categorical.
    GP-based BO is the most sample-efficient choice there (Snoek et al., 2012; Eggensperger
    et al., 2021, HPOBench), and its cubic cost is still small.
  * TPE (`TPESampler`) otherwise: conditional or categorical-heavy spaces, many
    parameters, or long studies, where TPE's cost stays flat and its group decomposition
    handles conditions (Watanabe, 2023).
The choice is made per trial and written to the study record (``auto_sampler``) whenever
it changes, with the reason.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

from tuningfork import _check as check
from tuningfork.samplers.base import Sampler
from tuningfork.space import Categorical, Distribution, Space, Value
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import StudyReader


class AutoSampler(Sampler):
    """Chooses `GPSampler` or `TPESampler` for each trial (see the module docstring).

    Args:
        seed: seeds both samplers (default None: drawn from the operating system).
        gp_max_trials: use GP only while fewer trials than this have finished (default 200).
        gp_max_dims: use GP only for at most this many parameters (default 16).
    """

    flush_suggestions = True  # both choices treat running trials as constant liars

    def __init__(
        self, *, seed: int | None = None, gp_max_trials: int = 200, gp_max_dims: int = 16
    ) -> None:
        from tuningfork.samplers.gp import GPSampler
        from tuningfork.samplers.tpe import TPESampler

        self.tpe = TPESampler(seed=check.seed(seed, "AutoSampler"))
        self.seed = self.tpe.seed
        self.gp = GPSampler(seed=self.seed)
        self.gp_max_trials = check.integer(gp_max_trials, "gp_max_trials", "AutoSampler", minimum=0)
        self.gp_max_dims = check.integer(gp_max_dims, "gp_max_dims", "AutoSampler", minimum=0)
        self._lock = threading.Lock()
        self._last: Sampler = self.gp  # the sampler chosen for the latest trial
        self._chosen: dict[int, Sampler] = {}  # trial number -> sampler (recent trials)
        # last name recorded, per study (a reader per study handle)
        self._recorded: weakref.WeakKeyDictionary[StudyReader, str] = weakref.WeakKeyDictionary()

    # -- the rule -------------------------------------------------------------------------

    def choose(self, study: StudyReader, space: Space | None = None) -> tuple[Sampler, str]:
        """The sampler for the next trial and the reason, from the study's finished trials."""
        finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
        if len(study.directions) != 1:
            return self.tpe, "multi-objective study"
        if len(finished) >= self.gp_max_trials:
            return self.tpe, f"{len(finished)} finished trials (GP up to {self.gp_max_trials})"
        distributions = _space_of(finished, space)
        if distributions is None:
            return self.tpe, "conditional parameters"
        if len(distributions) > self.gp_max_dims:
            return self.tpe, f"{len(distributions)} parameters (GP up to {self.gp_max_dims})"
        categorical = sum(isinstance(d, Categorical) for d in distributions.values())
        if distributions and categorical * 2 > len(distributions):
            return self.tpe, f"{categorical} of {len(distributions)} parameters categorical"
        return self.gp, "small numeric space"

    def _for_trial(self, study: StudyReader, trial: FrozenTrial, space: Space | None) -> Sampler:
        with self._lock:
            sampler = self._chosen.get(trial.number)
            if sampler is not None:
                return sampler
        sampler, reason = self.choose(study, space)
        with self._lock:
            if len(self._chosen) > 256:
                self._chosen.clear()
            self._chosen[trial.number] = sampler
            self._last = sampler
            name = type(sampler).__name__
            changed = self._recorded.get(study) != name
            self._recorded[study] = name
        if changed:
            record = {"chosen": name, "reason": reason, "from_trial": trial.number}
            study.record("auto_sampler", record)
        return sampler

    # -- the Sampler interface ------------------------------------------------------------

    @property
    def needs_fresh_view(self) -> bool:  # type: ignore[override]
        """Whether the sampler chosen last reads other workers' latest suggestions (TPE's
        constant liar): the study then reads the log before each proposal."""
        return self._last.needs_fresh_view

    def sample(
        self, study: StudyReader, trial: FrozenTrial, name: str, distribution: Distribution
    ) -> Value:
        return self._for_trial(study, trial, None).sample(study, trial, name, distribution)

    def sample_space(
        self, study: StudyReader, trial: FrozenTrial, space: Space
    ) -> dict[str, Value]:
        return self._for_trial(study, trial, space).sample_space(study, trial, space)


def _space_of(finished: list[FrozenTrial], space: Space | None) -> dict[str, Distribution] | None:
    """The parameters of the study, or None when they are conditional."""
    if space is not None:
        if any(space[name].when for name in space.names):
            return None
        return {name: space[name] for name in space.names}
    names: set[str] | None = None
    distributions: dict[str, Distribution] = {}
    for trial in finished:
        keys = set(trial.distributions)
        if names is not None and keys != names:
            return None
        names = keys
        distributions = trial.distributions
    return dict(distributions)
