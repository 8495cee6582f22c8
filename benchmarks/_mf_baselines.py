"""The other frameworks' methods of the multi-fidelity benchmark (`multifidelity.py`).

Each runner is ``run(problem, seed, meter)``: it optimises ``problem`` with the given seed,
pays every evaluation to ``meter`` (a `tuningfork.testing.mf_functions.Meter`) and runs
until the meter raises `BudgetSpent` (which the harness catches):

- random search at full budget (numpy, seeded): every configuration pays one unit;
- Optuna 5's TPE with its successive-halving or Hyperband pruner: a trial trains step by
  step (1..R), reports each step and stops when pruned; it pays each step it computes;
- the `dehb` package (DEHB, Awad, Mallik & Hutter, IJCAI 2021) through its ask-and-tell
  interface: every job is a fresh evaluation at its fidelity b, which pays b / R.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from quality import optuna_suggest

from tuningfork.space import Categorical, Float, Int, Space
from tuningfork.testing.mf_functions import Meter, MFProblem

ETA = 3
MIN_STEP = 1

Runner = Callable[[MFProblem, int, Meter], None]


# -- random search ----------------------------------------------------------------------------


def run_random(problem: MFProblem, seed: int, meter: Meter) -> None:
    """Random search, every configuration evaluated at full fidelity (one unit each)."""
    rng = np.random.default_rng(seed)
    space, top = problem.space, meter.max_step
    while True:
        params = space.decode(rng.random(space.dims))
        meter.charge_fresh(params, top, problem.evaluate(params, 1.0))


# -- Optuna -----------------------------------------------------------------------------------


def _run_optuna(problem: MFProblem, seed: int, meter: Meter, pruner: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, top = problem.space, meter.max_step

    def objective(trial: Any) -> float:
        params = {name: optuna_suggest(trial, name, space[name]) for name in space.names}
        value = float("nan")
        for step in range(1, top + 1):
            value = problem.evaluate(params, step / top)
            meter.charge(trial.number, params, step, value)
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    # A fixed study name: the Hyperband pruner assigns brackets by crc32(name + number).
    study = optuna.create_study(
        study_name=f"mf-{problem.name}-{seed}",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner,
        direction="minimize",
    )
    study.optimize(objective, n_trials=None, gc_after_trial=False)


def run_optuna_sha(problem: MFProblem, seed: int, meter: Meter) -> None:
    """Optuna TPE + `SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)`."""
    import optuna

    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=MIN_STEP, reduction_factor=ETA)
    _run_optuna(problem, seed, meter, pruner)


def run_optuna_hyperband(problem: MFProblem, seed: int, meter: Meter) -> None:
    """Optuna TPE + `HyperbandPruner(min_resource=1, max_resource=R, reduction_factor=3)`."""
    import optuna

    pruner = optuna.pruners.HyperbandPruner(
        min_resource=MIN_STEP, max_resource=meter.max_step, reduction_factor=ETA
    )
    _run_optuna(problem, seed, meter, pruner)


# -- DEHB (the `dehb` package) ----------------------------------------------------------------


def to_configspace(space: Space, seed: int) -> Any:
    """The ConfigSpace equivalent of an unconditional ``space`` without steps."""
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=seed)
    hyperparameters = []
    for name in space.names:
        d = space[name]
        if d.when is not None or getattr(d, "step", None) not in (None, 1):
            raise ValueError(f"{name}: conditions and steps are not translated to ConfigSpace")
        if isinstance(d, Float):
            hyperparameters.append(CS.Float(name, (d.low, d.high), log=d.log))
        elif isinstance(d, Int):
            hyperparameters.append(CS.Integer(name, (d.low, d.high), log=d.log))
        elif isinstance(d, Categorical):
            hyperparameters.append(CS.Categorical(name, list(d.choices)))
        else:
            raise TypeError(f"no ConfigSpace translation for {d!r}")
    cs.add(hyperparameters)
    return cs


def from_configuration(space: Space, config: Mapping[str, Any]) -> dict[str, Any]:
    """A ConfigSpace configuration as plain Python values of ``space``."""
    params: dict[str, Any] = {}
    for name in space.names:
        d, value = space[name], config[name]
        if isinstance(d, Float):
            params[name] = min(max(float(value), d.low), d.high)
        elif isinstance(d, Int):
            params[name] = min(max(int(round(float(value))), d.low), d.high)
        else:
            params[name] = value.item() if hasattr(value, "item") else value
    return params


def run_dehb(problem: MFProblem, seed: int, meter: Meter) -> None:
    """`dehb.DEHB` (0.1.2) with min_fidelity 1, max_fidelity R, eta 3, one worker, seeded
    (``seed=`` seeds its generator, its DE subpopulations and the ConfigSpace sampler), by
    ask and tell; each job at fidelity b is a fresh evaluation paying b / R."""
    from dehb import DEHB
    from loguru import logger

    space, top = problem.space, meter.max_step
    with tempfile.TemporaryDirectory(prefix="dehb-") as output, warnings.catch_warnings():
        # ConfigSpace 1.x deprecates the getters dehb 0.1.2 calls (get_hyperparameters, ...)
        warnings.simplefilter("ignore", DeprecationWarning)
        optimizer = DEHB(
            cs=to_configspace(space, seed),
            min_fidelity=MIN_STEP,
            max_fidelity=top,
            eta=ETA,
            n_workers=1,
            seed=seed,
            output_path=output,  # its log file; state is saved only by run(), not used here
            save_freq="end",
            log_level="ERROR",
        )
        try:
            while True:
                job = optimizer.ask()
                step = int(round(float(job["fidelity"])))
                params = from_configuration(space, job["config"])
                value = problem.evaluate(params, step / top)
                meter.charge_fresh(params, step, value)
                optimizer.tell(job, {"fitness": value, "cost": step / top})
        finally:
            logger.remove()  # closes dehb's log file in the temporary directory


BASELINES: dict[str, Runner] = {
    "random": run_random,
    "optuna-tpe-sha": run_optuna_sha,
    "optuna-tpe-hyperband": run_optuna_hyperband,
    "dehb": run_dehb,
}
"""The other frameworks' runners, by method key."""

LABELS = {
    "random": "random search (full budget)",
    "optuna-tpe-sha": "Optuna TPE + SuccessiveHalvingPruner",
    "optuna-tpe-hyperband": "Optuna TPE + HyperbandPruner",
    "dehb": "dehb DEHB",
}
PACKAGES = {
    "random": ("numpy",),
    "optuna-tpe-sha": ("optuna",),
    "optuna-tpe-hyperband": ("optuna",),
    "dehb": ("dehb", "ConfigSpace", "numpy"),
}
"""The packages whose versions determine each runner's results (and its cache key)."""
