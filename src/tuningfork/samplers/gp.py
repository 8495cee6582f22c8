"""Gaussian-process Bayesian optimisation (Snoek et al., 2012, "Practical Bayesian optimization
of machine learning algorithms"; GP regression after Rasmussen & Williams, 2006).

A Matern-5/2 ARD Gaussian process is fitted to the completed trials, and the next
configuration maximises log expected improvement (Ament et al., 2023, "Unexpected
improvements to expected improvement for Bayesian optimization"). The acquisition is
optimised over scrambled Sobol' candidates plus candidates drawn around the best trials, in
a box scaled by the fitted length scales as in TuRBO's trust region (Eriksson et al., 2019,
"Scalable global optimization via local Bayesian optimization"), then refined by L-BFGS-B
and a search over the discrete values. Outputs are warped by a fitted Yeo-Johnson power
transform, as in HEBO (Cowen-Rivers et al., 2022, "HEBO: pushing the limits of
sample-efficient hyper-parameter optimisation"). Deviation from TuRBO: there is no
trust-region state; the local candidates only compete with the global ones on log EI.
"""

from __future__ import annotations

import math
import random
import threading
import weakref
from typing import TYPE_CHECKING

import numpy as np

from tuningfork import _check as check
from tuningfork.exceptions import SamplerError
from tuningfork.samplers._blas import _single_threaded_blas
from tuningfork.samplers._gp_model import (
    CholeskyError,
    GaussianProcess,
    Prior,
    default_theta,
    fit_hyperparameters,
)
from tuningfork.samplers._gp_search import _AcquisitionOptimiser
from tuningfork.samplers._gp_state import _ViewState
from tuningfork.samplers.base import Sampler
from tuningfork.samplers.qmc import QMCSampler
from tuningfork.space import Distribution, Space, Value
from tuningfork.trial import FrozenTrial

if TYPE_CHECKING:
    from tuningfork.study import StudyReader

__all__ = ["GPSampler"]

# smallest noise variance of the standardised outputs: low enough to resolve a converging
# optimum (1e-6 limited the final regret on Hartmann-6 to about 1e-4), high enough to keep
# the covariance well conditioned (jitter is added if not)
_NOISE_FLOOR = 1e-8
_FIT_ITERATIONS = 200
_N_INCUMBENTS = 5
_POWER_BOUNDS = (-2.0, 4.0)  # Yeo-Johnson exponents searched for the output warp


class GPSampler(Sampler):
    """Gaussian-process Bayesian optimisation with log expected improvement.

    Args:
        n_startup_trials: completed trials drawn quasi-randomly (a scrambled Sobol'
            sequence, `QMCSampler`) before the GP is used (default 10).
        seed: seeds the startup sequence and every random choice; trial ``n`` draws from
            ``numpy.random.default_rng([seed, n])``. None draws a seed from the OS.
        constant_liar: with several workers, condition each proposal on the running
            trials, believing that they will score the GP's mean there (the "Kriging
            believer" form of the constant liar; Ginsbourger et al., 2010), so parallel
            workers propose different points. Also writes suggestions at once
            (`flush_suggestions`), so other workers see them. Default True.
        deterministic_objective: fix the noise variance at 1e-8 (of the standardised
            outputs) instead of fitting it; use for noise-free objectives. Default False.
        n_candidates: scrambled Sobol' points scoring the acquisition each trial (default
            2048; half as many again are drawn around the best trials).
        n_local_search: best candidates refined by L-BFGS-B and a discrete search
            (default 10).

    The model (see `tuningfork.samplers._gp_model`): inputs in the unit cube through each
    distribution's ``to_unit`` (log parameters in log space; ints and stepped floats at
    the centres of their cells, relaxed to continuous values inside the optimiser and
    rounded back, small grids searched value by value); categorical parameters enter
    through a Hamming-distance kernel factor with their own length scale; outputs
    standardised, Yeo-Johnson warped and standardised again (a constant output is fine).
    Hyperparameters are fitted by L-BFGS-B on the log marginal likelihood plus log priors
    (log-normal length scales whose median grows with sqrt(dimension), Gamma signal and
    noise variances) at "anchors" (every 10 observations up to 100, then every tenth of
    the count), from the previous anchor's fit and from the prior's centre; below 100
    observations each trial also refines the last anchor's fit. The observations are
    ordered by completion, and each anchor is keyed by a digest of its data, so any
    process, however late it starts, rebuilds the same fits and proposes the same points.

    Define-by-run, the search space is inferred: the parameters every completed trial has,
    with the same distribution. On a trial's first suggestion the whole configuration is
    proposed and kept; later suggestions of that trial read from it. A parameter outside
    the inferred space (or suggested with another distribution) gets an independent
    quasi-random draw. With a declared `Space` (``study.ask(space)``), conditional
    parameters are modelled too: an inactive parameter is encoded as 0.5 (a categorical as
    an extra "inactive" choice) when fitting, and dropped when decoding a proposal.
    Values already fixed on the trial (an enqueued configuration) are held fixed.
    """

    seed: int  # drawn at construction when not given

    def __init__(
        self,
        *,
        n_startup_trials: int = 10,
        seed: int | None = None,
        constant_liar: bool = True,
        deterministic_objective: bool = False,
        n_candidates: int = 2048,
        n_local_search: int = 10,
    ) -> None:
        owner = "GPSampler"
        self.n_startup_trials = check.integer(n_startup_trials, "n_startup_trials", owner)
        self.n_candidates = check.integer(n_candidates, "n_candidates", owner)
        self.n_local_search = check.integer(n_local_search, "n_local_search", owner, minimum=0)
        seed = check.seed(seed, owner)
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.constant_liar = check.flag(constant_liar, "constant_liar", owner)
        self.deterministic_objective = check.flag(
            deterministic_objective, "deterministic_objective", owner
        )
        self.flush_suggestions = self.constant_liar
        self._prior = Prior()
        self._startup = QMCSampler(seed=self.seed)
        self._lock = threading.Lock()
        self._views: weakref.WeakKeyDictionary[StudyReader, _ViewState] = (
            weakref.WeakKeyDictionary()
        )

    # -- the Sampler interface ------------------------------------------------------------

    def sample(
        self, study: StudyReader, trial: FrozenTrial, name: str, distribution: Distribution
    ) -> Value:
        """The trial's GP proposal for ``name``, or an independent draw (see the class)."""
        _check_single_objective(study)
        state = self._state(study)
        with state.lock:
            if trial.number not in state.proposals:
                space = state.inferred_space(study)
                if space is None or name not in space:
                    return self._startup.sample(study, trial, name, distribution)
                with _single_threaded_blas():
                    proposal = self._propose(study, trial, space, state)
                state.remember(trial.number, space, proposal)
            space, proposal = state.proposals[trial.number]
        if proposal is not None and name in proposal and space[name].same_as(distribution):
            return proposal[name]
        return self._startup.sample(study, trial, name, distribution)

    def sample_space(
        self, study: StudyReader, trial: FrozenTrial, space: Space
    ) -> dict[str, Value]:
        """A whole configuration of ``space`` (active parameters only)."""
        _check_single_objective(study)
        if not space.dims:
            return dict(trial.params)
        state = self._state(study)
        with state.lock, _single_threaded_blas():
            proposal = self._propose(study, trial, space, state)
        if proposal is None:
            return self._startup.sample_space(study, trial, space)
        return proposal

    # -- proposals ------------------------------------------------------------------------

    def _state(self, study: StudyReader) -> _ViewState:
        with self._lock:
            state = self._views.get(study)
            if state is None:
                state = self._views[study] = _ViewState()
            return state

    def _propose(
        self, study: StudyReader, trial: FrozenTrial, space: Space, state: _ViewState
    ) -> dict[str, Value] | None:
        """A configuration of ``space`` from the GP, or None during the startup phase."""
        model = state.model(space)
        x, y = model.observations(study)
        if len(y) < self.n_startup_trials:
            return None
        if study.direction == "maximize":
            y = -y
        fixed = {name: trial.params[name] for name in space.names if name in trial.params}
        targets = _outputs(y)
        theta = model.hyperparameters(x, y, self._fit, default_theta(space.dims, self._prior))
        best = float(np.min(targets))
        try:
            gp = self._gaussian_process(x, targets, model.encoding.categorical, theta)
            running = model.running_rows(study, trial.number) if self.constant_liar else x[:0]
            if len(running):
                # Kriging believer: the running trials will score the GP's mean, exactly
                believed, _ = gp.predict(running)
                gp = gp.with_observations(running, believed, noise=_NOISE_FLOOR)
                best = min(best, float(np.min(believed)))
        except CholeskyError:
            return None  # a hopeless covariance: fall back to the quasi-random draw
        rng = np.random.default_rng([self.seed, trial.number])
        incumbents = x[np.argsort(targets, kind="stable")[:_N_INCUMBENTS]]
        fixed_row = model.encoding.fixed_row(fixed)
        optimiser = _AcquisitionOptimiser(gp, model.encoding, best, fixed_row, rng)
        best_x = optimiser.run(incumbents, self.n_candidates, self.n_local_search)
        return model.encoding.decode(best_x, fixed)

    def _gaussian_process(
        self, x: np.ndarray, y: np.ndarray, categorical: np.ndarray, theta: np.ndarray
    ) -> GaussianProcess:
        return GaussianProcess(
            x,
            y,
            categorical,
            theta,
            noise_floor=_NOISE_FLOOR,
            fixed_noise=self.deterministic_objective,
        )

    def _fit(
        self, x: np.ndarray, y: np.ndarray, categorical: np.ndarray, starts: list[np.ndarray]
    ) -> np.ndarray:
        """MAP hyperparameters for inputs x and (raw, minimised) outputs y."""
        theta, _ = fit_hyperparameters(
            x,
            _outputs(y),
            categorical,
            starts,
            prior=self._prior,
            noise_floor=_NOISE_FLOOR,
            fixed_noise=self.deterministic_objective,
            max_iter=_FIT_ITERATIONS,
        )
        return theta


def _check_single_objective(study: StudyReader) -> None:
    if len(study.directions) != 1:
        raise SamplerError(
            f"GPSampler supports single-objective studies; study {study.name!r} has "
            f"{len(study.directions)} objectives. Use a multi-objective sampler (or "
            "RandomSampler / QMCSampler) for it."
        )


def _outputs(y: np.ndarray) -> np.ndarray:
    """The GP's targets for minimised values y: standardised, warped by the Yeo-Johnson
    power transform whose exponent maximises the Gaussian likelihood (as HEBO does;
    Cowen-Rivers et al., 2022), and standardised again.

    Objectives such as Rosenbrock's span orders of magnitude; the warp compresses the long
    tail of bad values, so that the GP resolves the differences near the optimum.
    """
    z = _standardise(y)
    if not np.any(z):
        return z
    log_terms = float(np.sum(np.sign(z) * np.log1p(np.abs(z))))

    def negative_log_likelihood(power: float) -> float:
        variance = float(np.var(_yeo_johnson(z, power)))
        if not variance > 0.0 or not math.isfinite(variance):
            return math.inf
        return 0.5 * len(z) * math.log(variance) - (power - 1.0) * log_terms

    from scipy.optimize import minimize_scalar  # imported on first use: scipy is slow to load

    power = minimize_scalar(negative_log_likelihood, bounds=_POWER_BOUNDS, method="bounded").x
    return _standardise(_yeo_johnson(z, float(power)))


def _yeo_johnson(z: np.ndarray, power: float) -> np.ndarray:
    """The Yeo-Johnson (2000) transform of z with exponent ``power``."""
    out = np.empty_like(z)
    positive = z >= 0.0
    up, down = z[positive], -z[~positive]
    if abs(power) < 1e-8:
        out[positive] = np.log1p(up)
    else:
        out[positive] = np.expm1(power * np.log1p(up)) / power
    if abs(power - 2.0) < 1e-8:
        out[~positive] = -np.log1p(down)
    else:
        out[~positive] = -np.expm1((2.0 - power) * np.log1p(down)) / (2.0 - power)
    return out


def _standardise(y: np.ndarray) -> np.ndarray:
    """(y - mean) / std; a constant y gives zeros."""
    std = float(np.std(y))
    centred = y - float(np.mean(y))
    return centred / std if std > 1e-12 * max(1.0, float(np.max(np.abs(y)))) else centred * 0.0
