"""The default sampler: picks Gaussian-process BO, CMA-ES or TPE from the study's space and
progress, and switches from the GP to CMA-ES (warm-started from the GP's trials) when the
study outgrows the GP.

Rule (deterministic, derived from the study's log and the trial's number, so every worker
picks alike; the measurements behind it are in ``docs/samplers.md``):
  * Several objectives: TPE (MOTPE's split) for the first ``gp_max_trials`` trials, then
    NSGA-II (`NSGAIISampler`, Deb et al. 2002), whose cost stays low where TPE's grows
    (measured on ZDT and DTLZ, ``benchmarks/multiobjective.py``).
  * TPE (`TPESampler`) for conditional spaces and more than ``gp_max_dims`` parameters:
    its group decomposition handles conditions (Watanabe, 2023).
  * GP (`GPSampler`) for the first ``gp_max_trials`` trials otherwise, categorical
    parameters included: the most sample-efficient choice on every problem of the
    quality benchmark at 100 trials, all-categorical ones too (Snoek et al., 2012).
  * From trial ``gp_max_trials`` on, where the GP's cubic cost would grow: CMA-ES
    (`CmaEsSampler`, Hansen & Ostermeier 2001, with CatCMAwM for categoricals), warm-started
    from the best of the GP's trials (WS-CMA-ES, Nomura et al., 2021), when the space has
    at least two numeric parameters and the ``cmaes`` package is installed; TPE
    otherwise. CMA-ES starts once every earlier trial has finished (with several
    workers the GP proposes until then).
The choice is made per trial and written to the study record (``auto_sampler``) whenever
it changes, with the reason.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

from tuningfork import _check as check
from tuningfork.exceptions import MissingExtra
from tuningfork.samplers.base import Sampler
from tuningfork.space import Categorical, Distribution, Space, Value
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.samplers.cmaes import CmaEsSampler
    from tuningfork.study import StudyReader


class AutoSampler(Sampler):
    """Chooses `GPSampler`, `CmaEsSampler`, `TPESampler` or `NSGAIISampler` for each trial
    (see the module docstring for the rule and ``docs/samplers.md`` for the measurements
    behind it).

    Args:
        seed: seeds every sampler it uses (default None: drawn from the operating system).
        gp_max_trials: trials numbered below this use the GP (default 200), later ones
            CMA-ES or TPE; a two-objective study moves from TPE to NSGA-II there.
        gp_max_dims: use the GP (and CMA-ES after it) for at most this many parameters
            (default 16); TPE above.
    """

    flush_suggestions = True  # the GP and TPE treat running trials as constant liars

    def __init__(
        self, *, seed: int | None = None, gp_max_trials: int = 200, gp_max_dims: int = 16
    ) -> None:
        from tuningfork.samplers.genetic import NSGAIISampler
        from tuningfork.samplers.gp import GPSampler
        from tuningfork.samplers.tpe import TPESampler

        self.tpe = TPESampler(seed=check.seed(seed, "AutoSampler"))
        self.seed = self.tpe.seed
        self.gp = GPSampler(seed=self.seed)
        self.nsga2 = NSGAIISampler(seed=self.seed)
        self.gp_max_trials = check.integer(gp_max_trials, "gp_max_trials", "AutoSampler", minimum=0)
        self.gp_max_dims = check.integer(gp_max_dims, "gp_max_dims", "AutoSampler", minimum=0)
        self.cmaes = _cmaes_or_none(self.seed, self.gp_max_trials)
        self._lock = threading.Lock()
        self._last: Sampler = self.gp  # the sampler chosen for the latest trial
        self._chosen: dict[int, Sampler] = {}  # trial number -> sampler (recent trials)
        # per study (a reader per study handle): the last name recorded, and whether every
        # trial before gp_max_trials has finished (then CMA-ES may start)
        self._recorded: weakref.WeakKeyDictionary[StudyReader, str] = weakref.WeakKeyDictionary()
        self._settled: weakref.WeakKeyDictionary[StudyReader, int] = weakref.WeakKeyDictionary()

    # -- the rule -------------------------------------------------------------------------

    def choose(
        self, study: StudyReader, space: Space | None = None, number: int | None = None
    ) -> tuple[Sampler, str]:
        """The sampler for trial ``number`` (default: the next trial) and the reason."""
        number = len(study) if number is None else number
        objectives = len(study.directions)
        if objectives > 1 and number >= self.gp_max_trials:
            return self.nsga2, f"{objectives} objectives, from trial {self.gp_max_trials}: NSGA-II"
        if objectives > 1:
            return self.tpe, f"{objectives} objectives: TPE up to trial {self.gp_max_trials}"
        distributions = _space_of(study, space)
        if distributions is None:
            return self.tpe, "conditional parameters"
        if len(distributions) > self.gp_max_dims:
            return self.tpe, f"{len(distributions)} parameters (GP up to {self.gp_max_dims})"
        if number < self.gp_max_trials:
            return self.gp, f"trial {number} of a small space (GP up to {self.gp_max_trials})"
        return self._after_gp(study, distributions)

    def _after_gp(
        self, study: StudyReader, distributions: dict[str, Distribution]
    ) -> tuple[Sampler, str]:
        """CMA-ES from the GP's trials where it applies, else TPE."""
        past = f"from trial {self.gp_max_trials}"
        numeric = sum(not isinstance(d, Categorical) for d in distributions.values())
        if numeric < 2:
            return self.tpe, f"{past}: {numeric} numeric parameter(s), too few for CMA-ES"
        if self.cmaes is None:
            return self.tpe, f"{past}: CMA-ES needs pip install 'tuningfork[cmaes]'"
        if not self._earlier_finished(study):
            return self.gp, f"{past}: GP until the trials before {self.gp_max_trials} finish"
        return self.cmaes, f"{past}: CMA-ES warm-started from the best earlier trials"

    def _earlier_finished(self, study: StudyReader) -> bool:
        """Whether every trial numbered below ``gp_max_trials`` has finished (checked
        once per trial: a finished trial stays finished)."""
        with self._lock:
            start = self._settled.get(study, 0)
        end = min(self.gp_max_trials, len(study))
        while start < end and study.state(start).is_finished:
            start += 1
        with self._lock:
            self._settled[study] = start
        return start >= self.gp_max_trials

    def _for_trial(self, study: StudyReader, trial: FrozenTrial, space: Space | None) -> Sampler:
        with self._lock:
            sampler = self._chosen.get(trial.number)
            if sampler is not None:
                return sampler
        sampler, reason = self.choose(study, space, trial.number)
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


_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _cmaes_or_none(seed: int, start: int) -> CmaEsSampler | None:
    """CMA-ES continuing a study from trial ``start``, or None without the cmaes package."""
    from tuningfork.samplers.cmaes import CmaEsSampler

    try:
        return CmaEsSampler(seed=seed, start_at_trial=start)
    except MissingExtra:
        return None


def _space_of(study: StudyReader, space: Space | None) -> dict[str, Distribution] | None:
    """The parameters of the study, or None when they are conditional."""
    if space is not None:
        if any(space[name].when for name in space.names):
            return None
        return {name: space[name] for name in space.names}
    names: set[str] | None = None
    distributions: dict[str, Distribution] = {}
    for trial in study.get_trials(states=_FINISHED):
        keys = set(trial.distributions)
        if names is not None and keys != names:
            return None
        names = keys
        distributions = trial.distributions
    return dict(distributions)
