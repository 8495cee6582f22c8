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

import contextlib
import hashlib
import inspect
import math
import random
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tuningfork import _check as check
from tuningfork.exceptions import SamplerError
from tuningfork.samplers._acquisition import log_ei
from tuningfork.samplers._gp_model import (
    CholeskyError,
    GaussianProcess,
    Prior,
    default_theta,
    fit_hyperparameters,
)
from tuningfork.samplers.base import Sampler
from tuningfork.samplers.qmc import QMCSampler
from tuningfork.space import Categorical, Distribution, Float, Int, Space, Value
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import StudyReader

__all__ = ["GPSampler"]

_CONTINUOUS, _GRID, _CATEGORICAL = 0, 1, 2
# a grid with more values than this is relaxed to a continuous input during L-BFGS-B (and
# rounded after); a smaller one is searched value by value
_EXHAUSTIVE_GRID = 16
# hyperparameters are refitted ("anchors") every this many observations (every tenth of
# the count beyond 100); in between, each fit starts from the last anchor, so a fit depends
# only on the trials
_ANCHOR_EVERY = 10
# below this many observations the fit is also refined between anchors (beyond it, a few
# more observations barely move the hyperparameters, and a refit costs O(n^3) per step)
_REFIT_BELOW = 100
# smallest noise variance of the standardised outputs: low enough to resolve a converging
# optimum (1e-6 limited the final regret on Hartmann-6 to about 1e-4), high enough to keep
# the covariance well conditioned (jitter is added if not)
_NOISE_FLOOR = 1e-8
_FIT_ITERATIONS = 200
_ACQUISITION_ITERATIONS = 100
_N_INCUMBENTS = 5
_MAX_PROPOSALS = 256  # cached proposals per study view
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


_blas_controller: Any = None  # threadpoolctl's ThreadpoolController; False without threadpoolctl
_blas_modules = 0  # len(sys.modules) when _blas_controller was built
_blas_lock = threading.Lock()
_blas_users = 0  # proposals under way, in any thread
_blas_limiter: Any = None  # the limit they share; it restores the libraries' own when lifted


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Limit every loaded BLAS library to one thread while proposing, if threadpoolctl is
    installed.

    The GP works on many small matrices, where BLAS threads only contend: on a busy
    machine, OpenBLAS's threads made proposals an order of magnitude slower. numpy and
    scipy may each bring their own OpenBLAS, and scipy's does the GP's linear algebra.
    The limit is process-wide, so proposals in several threads share one: the first sets
    it and the last lifts it (two limits in turn would restore each other's one thread).
    """
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            controller = _blas_controller_now()
            _blas_limiter = (
                None if controller is None else controller.limit(limits=1, user_api="blas")
            )
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def _blas_controller_now() -> Any:
    """threadpoolctl's controller of the BLAS libraries loaded now (None without threadpoolctl).

    A controller sees only the libraries loaded when it is built, and scipy is imported
    lazily, so scipy.linalg (scipy's own BLAS and LAPACK) is imported first, and the
    controller is rebuilt whenever the count of imported modules has changed (a library is
    loaded by an extension module's import). A build costs about 0.5 ms; the check, far less.
    """
    global _blas_controller, _blas_modules
    if _blas_controller is False:
        return None
    if _blas_controller is None or len(sys.modules) != _blas_modules:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _blas_controller = False
            return None
        import scipy.linalg  # noqa: F401  loads scipy's BLAS, which the GP uses

        _blas_controller = ThreadpoolController()
        _blas_modules = len(sys.modules)
    return _blas_controller


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


# -- per-view state -----------------------------------------------------------------------


class _ViewState:
    """What the sampler keeps for one study view; all of it can be rebuilt from the trials."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._inferred: tuple[int, Space | None] = (-1, None)
        self._complete: set[int] = set()
        self._shared: dict[str, Distribution] | None = None
        # trial number -> (the space proposed in, the proposal or None during startup)
        self.proposals: OrderedDict[int, tuple[Space, dict[str, Value] | None]] = OrderedDict()
        self._models: dict[Space, _SpaceModel] = {}

    def remember(self, number: int, space: Space, proposal: dict[str, Value] | None) -> None:
        self.proposals[number] = (space, proposal)
        while len(self.proposals) > _MAX_PROPOSALS:
            self.proposals.popitem(last=False)

    def model(self, space: Space) -> _SpaceModel:
        model = self._models.get(space)
        if model is None:
            model = self._models[space] = _SpaceModel(space)
        return model

    def inferred_space(self, study: StudyReader) -> Space | None:
        """The parameters every COMPLETE trial has with one distribution, sorted by name.

        A trial never leaves COMPLETE, so only the newly completed ones are intersected."""
        completed = study.n_complete
        if completed == self._inferred[0]:
            return self._inferred[1]
        changed = False
        for record in study.get_trials((TrialState.COMPLETE,)):
            if record.number in self._complete:
                continue
            self._complete.add(record.number)
            if self._shared is None:
                self._shared, changed = dict(record.distributions), True
                continue
            for name in list(self._shared):
                dist = record.distributions.get(name)
                if dist is None or not dist.same_as(self._shared[name]):
                    del self._shared[name]
                    changed = True
        space = self._inferred[1]
        if changed:
            shared = self._shared or {}
            names = sorted(shared)
            space = Space({name: _unconditional(shared[name]) for name in names}) if names else None
        self._inferred = (completed, space)
        return space


def _unconditional(dist: Distribution) -> Distribution:
    """The distribution without its condition (define-by-run has no declared conditions)."""
    if not dist.when:
        return dist
    if isinstance(dist, Categorical):
        return Categorical(dist.choices)
    if isinstance(dist, Int):
        return Int(dist.low, dist.high, log=dist.log, step=dist.step)
    assert isinstance(dist, Float)
    return Float(dist.low, dist.high, log=dist.log, step=dist.step)


class _SpaceModel:
    """Observations and fitted hyperparameters of one space within one study view.

    Encoded rows of completed trials are kept (a completed trial never changes). Fitted
    hyperparameters are kept for "anchor" prefixes of the observations (every
    `_ANCHOR_EVERY` of them, in order of completion), each keyed by a digest of its data.
    """

    def __init__(self, space: Space) -> None:
        self.encoding = _Encoding(space)
        self._rows: dict[int, np.ndarray | None] = {}
        self._anchors: dict[int, tuple[bytes, np.ndarray]] = {}

    def observations(self, study: StudyReader) -> tuple[np.ndarray, np.ndarray]:
        """Inputs (n, d) and values (n,) of the COMPLETE trials that fit the space, in order
        of completion (then of number), so that older prefixes stay stable."""
        found: list[tuple[float, int, np.ndarray, float]] = []
        for record in study.get_trials((TrialState.COMPLETE,)):
            if not record.values:
                continue
            row = self._rows.get(record.number, _MISSING)
            if row is _MISSING:
                row = self._rows[record.number] = self.encoding.encode(record.params)
            if row is not None:
                found.append(
                    (record.datetime_complete or 0.0, record.number, row, record.values[0])
                )
        found.sort(key=lambda item: (item[0], item[1]))
        dims = self.encoding.dims
        x = np.array([item[2] for item in found]).reshape(len(found), dims)
        y = np.array([item[3] for item in found], dtype=np.float64)
        return x, y

    def running_rows(self, study: StudyReader, exclude: int) -> np.ndarray:
        """Encoded configurations of RUNNING trials (other than ``exclude``) that fit."""
        rows = []
        for record in study.running_trials():
            if record.number == exclude:
                continue
            row = self.encoding.encode(record.params)
            if row is not None:
                rows.append(row)
        return np.array(rows).reshape(len(rows), self.encoding.dims)

    def hyperparameters(
        self, x: np.ndarray, y: np.ndarray, fit: _Fit, centre: np.ndarray
    ) -> np.ndarray:
        """Fitted theta for all n observations, starting from the last anchor's fit.

        The anchor of size m is fitted on the first m observations from the previous
        anchor's theta and from ``centre``; a fit between anchors starts from the last one
        (from `_REFIT_BELOW` observations on, the last anchor's theta is used as it is).
        """
        n, categorical = len(y), self.encoding.categorical
        previous: np.ndarray | None = None
        size = 0
        for size in _anchor_sizes(n):
            digest = _digest(x[:size], y[:size])
            cached = self._anchors.get(size)
            if cached is None or cached[0] != digest:
                starts = [centre] if previous is None else [previous, centre]
                theta = fit(x[:size], y[:size], categorical, starts)
                cached = self._anchors[size] = (digest, theta)
            previous = cached[1]
        if previous is not None and (size == n or n >= _REFIT_BELOW):
            return previous
        return fit(x, y, categorical, [centre] if previous is None else [previous])


def _anchor_sizes(n: int) -> list[int]:
    """The anchor sizes up to n: every `_ANCHOR_EVERY` observations, then every tenth of
    the size (so that the O(n^3) anchor fits stay a small share of the time per trial)."""
    sizes, size = [], _ANCHOR_EVERY
    while size <= n:
        sizes.append(size)
        size += max(_ANCHOR_EVERY, size // 10)
    return sizes


_MISSING: Any = object()
_Fit = Callable[[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]], np.ndarray]


def _digest(x: np.ndarray, y: np.ndarray) -> bytes:
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(np.ascontiguousarray(x).tobytes())
    hasher.update(np.ascontiguousarray(y).tobytes())
    return hasher.digest()


# -- encoding -------------------------------------------------------------------------------


class _Encoding:
    """A space's configurations as vectors: numbers through ``to_unit``, categoricals as
    the index of the choice (an extra index for "inactive" in a conditional space)."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.names = space.names
        self.dists = [space[name] for name in self.names]
        self.dims = len(self.names)
        self.kind = np.zeros(self.dims, dtype=np.int64)
        self.count = np.zeros(self.dims, dtype=np.int64)
        self.inactive = np.full(self.dims, 0.5)
        self.conditional = any(dist.when for dist in self.dists)
        self._log_int: dict[int, tuple[float, float, int, int]] = {}
        for i, dist in enumerate(self.dists):
            if isinstance(dist, Categorical):
                self.kind[i] = _CATEGORICAL
                self.count[i] = len(dist.choices)
                self.inactive[i] = len(dist.choices)
            elif isinstance(dist, Int):
                self.kind[i] = _GRID
                self.count[i] = (dist.high - dist.low) // dist.step + 1
                if dist.log:
                    origin = math.log(dist.low - 0.5)
                    width = math.log(dist.high + 0.5) - origin
                    self._log_int[i] = (origin, width, dist.low, dist.high)
            elif isinstance(dist, Float) and dist.step is not None:
                self.kind[i] = _GRID
                self.count[i] = round((dist.high - dist.low) / dist.step) + 1
        self.categorical = self.kind == _CATEGORICAL
        self.parents = np.zeros(self.dims, dtype=bool)
        self._conditions: list[list[tuple[int, np.ndarray]]] = []
        self._position = {name: i for i, name in enumerate(self.names)}
        for dist in self.dists:
            conditions = []
            for parent, values in (dist.when or {}).items():
                p = self._position[parent]
                self.parents[p] = True
                conditions.append((p, self._encoded_values(p, values)))
            self._conditions.append(conditions)

    def _encoded_values(self, i: int, values: tuple[Value, ...]) -> np.ndarray:
        dist = self.dists[i]
        legal = [value for value in values if dist.contains(value)]
        if isinstance(dist, Categorical):
            return np.array([dist.index(value) for value in legal], dtype=np.float64)
        return np.array([dist.to_unit(value) for value in legal], dtype=np.float64)

    # -- rows ------------------------------------------------------------------------

    def encode(self, params: Mapping[str, Value]) -> np.ndarray | None:
        """The vector of a configuration, or None when it does not fit the space (an
        active parameter missing or out of range)."""
        row = self.inactive.copy()
        if self.conditional:
            indices = [self._position[name] for name in self.space.active_names(params)]
        else:
            indices = range(self.dims)
        for i in indices:
            if not self._set(row, i, params):
                return None
        return row

    def _set(self, row: np.ndarray, i: int, params: Mapping[str, Value]) -> bool:
        name, dist = self.names[i], self.dists[i]
        if name not in params or not dist.contains(params[name]):
            return False
        value = params[name]
        row[i] = dist.index(value) if isinstance(dist, Categorical) else dist.to_unit(value)
        return True

    def fixed_row(self, fixed: Mapping[str, Value]) -> np.ndarray:
        """NaN for free inputs, the encoded value for fixed ones."""
        row = np.full(self.dims, np.nan)
        for i, name in enumerate(self.names):
            if name in fixed and self.dists[i].contains(fixed[name]):
                self._set(row, i, fixed)
        return row

    def decode(self, row: np.ndarray, fixed: Mapping[str, Value]) -> dict[str, Value]:
        """The configuration of a vector, active parameters only; fixed values kept."""
        params: dict[str, Value] = {}
        for i, name in enumerate(self.names):
            if self.conditional and not self.space.is_active(name, params):
                continue
            if name in fixed:
                params[name] = fixed[name]
                continue
            dist = self.dists[i]
            if isinstance(dist, Categorical):
                index = int(np.clip(round(row[i]), 0, len(dist.choices) - 1))
                params[name] = dist.choices[index]
            else:
                params[name] = dist.from_unit(float(np.clip(row[i], 0.0, 1.0)))
        return params

    # -- vectorised moves --------------------------------------------------------------

    def from_cube(self, u: np.ndarray) -> np.ndarray:
        """Legal vectors from points of [0, 1)^d (a categorical takes floor(u * n))."""
        x = u.copy()
        for i in np.flatnonzero(self.categorical):
            x[:, i] = np.minimum(np.floor(u[:, i] * self.count[i]), self.count[i] - 1)
        return self.round(x)

    def round(self, x: np.ndarray) -> np.ndarray:
        """Inputs clipped to [0, 1], grid inputs moved to the centre of their cell."""
        for i in np.flatnonzero(~self.categorical):
            x[:, i] = np.clip(x[:, i], 0.0, 1.0)
            if self.kind[i] == _GRID:
                x[:, i] = self._centre(i, self._cell(i, x[:, i]))
        return x

    def _cell(self, i: int, u: np.ndarray) -> np.ndarray:
        """Grid input i: the value index (log ints: the value itself) whose cell holds u."""
        if i in self._log_int:
            origin, width, low, high = self._log_int[i]
            return np.clip(np.floor(np.exp(origin + u * width) + 0.5), low, high)
        return np.clip(np.floor(u * self.count[i]), 0, self.count[i] - 1)

    def _centre(self, i: int, cell: np.ndarray) -> np.ndarray:
        """Inverse of `_cell`: the unit value at the centre of a cell (as ``to_unit``)."""
        if i in self._log_int:
            origin, width, _, _ = self._log_int[i]
            return (0.5 * (np.log(cell - 0.5) + np.log(cell + 0.5)) - origin) / width
        return (cell + 0.5) / self.count[i]

    def centres(self, i: int) -> np.ndarray:
        """Every legal unit value of grid input i."""
        if i in self._log_int:
            _, _, low, high = self._log_int[i]
            return self._centre(i, np.arange(low, high + 1, dtype=np.float64))
        return self._centre(i, np.arange(self.count[i], dtype=np.float64))

    def shift(self, i: int, u: np.ndarray, step: int) -> np.ndarray:
        """Grid input i moved ``step`` cells (clipped at the ends)."""
        cell = self._cell(i, u) + step
        if i in self._log_int:
            _, _, low, high = self._log_int[i]
            return self._centre(i, np.clip(cell, low, high))
        return self._centre(i, np.clip(cell, 0, self.count[i] - 1))

    def canonical(self, x: np.ndarray) -> np.ndarray:
        """Set inactive inputs to their fixed encoding in place; returns the active mask."""
        active = np.ones(x.shape, dtype=bool)
        if not self.conditional:
            return active
        for i, conditions in enumerate(self._conditions):
            for parent, allowed in conditions:
                matches = np.any(np.abs(x[:, parent, None] - allowed[None, :]) < 1e-9, axis=1)
                active[:, i] &= active[:, parent] & matches
            x[~active[:, i], i] = self.inactive[i]
        return active


# -- acquisition optimisation --------------------------------------------------------------


class _AcquisitionOptimiser:
    """Maximise log EI over legal vectors: score candidates, refine the best ones."""

    def __init__(
        self,
        gp: GaussianProcess,
        encoding: _Encoding,
        best: float,
        fixed_row: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        self.gp = gp
        self.encoding = encoding
        self.best = best
        self.fixed = ~np.isnan(fixed_row)
        self.fixed_row = fixed_row
        self.rng = rng

    def score(self, x: np.ndarray) -> np.ndarray:
        mean, var = self.gp.predict(x)
        return log_ei(mean, var, self.best)[0]

    def _legal(self, x: np.ndarray) -> np.ndarray:
        x[:, self.fixed] = self.fixed_row[self.fixed]
        x = self.encoding.round(x)
        self.encoding.canonical(x)
        return x

    def run(self, incumbents: np.ndarray, n_candidates: int, n_starts: int) -> np.ndarray:
        candidates = np.vstack(
            [self._global(n_candidates), self._local(incumbents, n_candidates // 2)]
        )
        candidates = self._legal(candidates)
        values = self.score(candidates)
        order = np.argsort(-values, kind="stable")
        starts = _distinct(candidates[order], max(n_starts, 1))
        if n_starts == 0:
            return starts[0]
        start_values = self.score(starts)
        x, values = self._refine(starts, start_values)
        # the joint L-BFGS-B above stops before every start has converged: polish the best
        best = int(np.argmax(values))
        x, _ = self._refine(x[best : best + 1], values[best : best + 1])
        return x[0]

    def _global(self, n: int) -> np.ndarray:
        from scipy.stats import qmc

        keyword = "rng" if "rng" in inspect.signature(qmc.Sobol).parameters else "seed"
        sobol = qmc.Sobol(self.encoding.dims, scramble=True, **{keyword: self.rng})
        # a power of two keeps Sobol's balance (and scipy quiet); the first n are used
        points = sobol.random_base2(max(0, math.ceil(math.log2(n))))[:n]
        return self.encoding.from_cube(points)

    def _local(self, incumbents: np.ndarray, n: int) -> np.ndarray:
        """Points around the best trials: Gaussian steps scaled by the length scales (a
        TuRBO-like box) at radii log-uniform in [1e-3, 0.5], on a random subset of inputs
        (each with probability min(1, 20 / d)); categorical inputs switch at random."""
        enc, rng = self.encoding, self.rng
        if n == 0 or not len(incumbents):
            return np.empty((0, enc.dims))
        # half the points around the best trial, the rest shared by the next ones
        share = np.full(len(incumbents), (n // 2) // max(len(incumbents) - 1, 1))
        share[0] = n - share[1:].sum()
        centres = np.repeat(incumbents, share, axis=0)
        m = len(centres)
        scales = self.gp.length_scales.copy()
        numeric = ~enc.categorical
        if numeric.any():
            scales[numeric] /= math.exp(float(np.mean(np.log(scales[numeric]))))
        radius = np.exp(rng.uniform(math.log(1e-3), math.log(0.5), size=(m, 1)))
        perturb = rng.random((m, enc.dims)) < min(1.0, 20.0 / enc.dims)
        none = ~perturb.any(axis=1)
        perturb[none, rng.integers(0, enc.dims, size=int(none.sum()))] = True
        steps = rng.standard_normal((m, enc.dims)) * radius * np.minimum(scales, 10.0)
        x = centres + np.where(perturb & numeric, steps, 0.0)
        for i in np.flatnonzero(enc.categorical):
            switch = perturb[:, i] & (rng.random(m) < 0.5)
            x[switch, i] = rng.integers(0, enc.count[i], size=int(switch.sum()))
        return x

    # -- refinement ---------------------------------------------------------------------

    def _refine(self, x: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        enc = self.encoding
        relaxed = (enc.kind == _CONTINUOUS) | ((enc.kind == _GRID) & (enc.count > _EXHAUSTIVE_GRID))
        movable = relaxed & ~self.fixed & ~enc.parents
        discrete = (enc.kind != _CONTINUOUS) & ~self.fixed
        if movable.any():
            x, values, _ = self._gradient_step(x, values, np.flatnonzero(movable))
        for _ in range(3):  # alternate until a discrete move changes nothing
            if not discrete.any():
                break
            x, values, moved = self._discrete_step(x, values, np.flatnonzero(discrete))
            if not moved or not movable.any():
                break
            x, values, _ = self._gradient_step(x, values, np.flatnonzero(movable))
        return x, values

    def _gradient_step(
        self, x0: np.ndarray, values: np.ndarray, dims: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """L-BFGS-B on the relaxed inputs of all starts at once (their sum of log EI; the
        starts do not interact), in coordinates scaled by the length scales."""
        from scipy.optimize import minimize

        scale = self.gp.length_scales[dims]
        active = self.encoding.canonical(x0.copy())[:, dims]
        z0 = x0[:, dims] / scale
        upper = np.broadcast_to(1.0 / scale, z0.shape)
        low = np.where(active, 0.0, z0).ravel()
        high = np.where(active, upper, z0).ravel()
        shape = z0.shape

        def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
            x = x0.copy()
            x[:, dims] = z.reshape(shape) * scale
            mean, var, d_mean, d_var = self.gp.predict_with_grad(x, dims)
            value, g_mean, g_var, _ = log_ei(mean, var, self.best)
            grad = (g_mean[:, None] * d_mean + g_var[:, None] * d_var) * scale
            grad[~active] = 0.0
            return -float(np.sum(value)), -grad.ravel()

        result = minimize(
            objective,
            z0.ravel(),
            jac=True,
            method="L-BFGS-B",
            bounds=list(zip(low, high)),
            options={"maxiter": _ACQUISITION_ITERATIONS},
        )
        x = x0.copy()
        x[:, dims] = np.clip(result.x.reshape(shape) * scale, 0.0, 1.0)
        x = self._legal(x)
        new_values = self.score(x)
        better = new_values > values
        x = np.where(better[:, None], x, x0)
        return x, np.where(better, new_values, values), bool(better.any())

    def _discrete_step(
        self, x: np.ndarray, values: np.ndarray, dims: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """Each discrete input in turn: try its other values (all of them for categoricals
        and small grids, the cells 1, 2 and 4 away for large grids); keep the best."""
        enc = self.encoding
        moved = False
        for i in dims:
            options = self._options(x, i)
            if not options:
                continue
            tries = np.repeat(x[None, :, :], len(options), axis=0)
            for k, column in enumerate(options):
                tries[k, :, i] = column
            flat = tries.reshape(-1, enc.dims)
            enc.canonical(flat)
            scores = self.score(flat).reshape(len(options), len(x))
            pick = np.argmax(scores, axis=0)
            best = scores[pick, np.arange(len(x))]
            better = best > values + 1e-12
            if better.any():
                moved = True
                x = x.copy()
                x[better] = tries[pick[better], np.flatnonzero(better)]
                values = np.where(better, best, values)
        return x, values, moved

    def _options(self, x: np.ndarray, i: int) -> list[np.ndarray]:
        enc = self.encoding
        if enc.kind[i] == _CATEGORICAL:
            return [np.full(len(x), float(c)) for c in range(int(enc.count[i]))]
        if enc.count[i] <= _EXHAUSTIVE_GRID:
            return [np.full(len(x), u) for u in enc.centres(i)]
        return [enc.shift(i, x[:, i], s) for s in (-4, -2, -1, 1, 2, 4)]


def _distinct(x: np.ndarray, k: int) -> np.ndarray:
    """The first k distinct rows of x (in order)."""
    _, first = np.unique(x, axis=0, return_index=True)
    keep = np.sort(first)[:k]
    return x[keep]
