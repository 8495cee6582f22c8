"""Population-based bandits, PB2 (Parker-Holder, Nguyen & Roberts, NeurIPS 2020,
"Provably Efficient Online Hyperparameter Optimization with Population-Based Bandits"):
PBT whose explore step picks the copied member's new hyperparameters by a time-varying GP
bandit (UCB) fitted on every member's improvement per interval, instead of at random."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tuningfork.schedulers._explore import explore
from tuningfork.schedulers.pbt import PBT, _Population, unit_dims
from tuningfork.space import Distribution, Float, Int, Value
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import CheckpointStore, StudyReader

_MAX_ROWS = 200


class PB2(PBT):
    """PB2: `PBT` (same exploit, boundaries, modes and failure handling) with a GP-UCB
    explore for numeric hyperparameters.

    At each exploit, the data are, for every member and interval, (the interval's end
    step, the hyperparameters in force during it, scaled to [0, 1]) -> the improvement of
    the objective over the interval; a GP with a time-varying kernel (Bogunovic et al.
    2016) is fitted to it, and the new values maximise the upper confidence bound at the
    next boundary, with the members training now added as pending points so that parallel
    members spread out (`tuningfork.schedulers._pb2_gp.propose`). Parker-Holder et al.
    report PB2 ahead of PBT with small populations (4 to 8 members).

    Categorical hyperparameters: not PB2-Mix (Parker-Holder et al. 2021); they are
    explored as by PBT (a neighbouring choice, or a fresh draw with probability
    ``resample_probability``), the documented fallback. Before two intervals have been
    observed, numeric ones are also perturbed as by PBT.

    Args: as `PBT` (default population 4, as in the paper's experiments), plus
        kappa: the UCB exploration weight (default None: the paper's schedule, growing
            slowly with the number of observations).
    """

    def __init__(
        self,
        population_size: int = 4,
        perturbation_interval: int = 10,
        max_budget: int = 100,
        *,
        quantile_fraction: float = 0.25,
        resample_probability: float = 0.25,
        hyperparams: Sequence[str] | None = None,
        synchronous: bool = False,
        burn_in: int = 0,
        seed: int | None = None,
        max_failures: int | None = None,
        kappa: float | None = None,
        keep_checkpoints: bool = False,
        checkpoint_store: CheckpointStore | None = None,
    ) -> None:
        super().__init__(
            population_size,
            perturbation_interval,
            max_budget,
            quantile_fraction=quantile_fraction,
            resample_probability=resample_probability,
            hyperparams=hyperparams,
            synchronous=synchronous,
            burn_in=burn_in,
            seed=seed,
            max_failures=max_failures,
            keep_checkpoints=keep_checkpoints,
            checkpoint_store=checkpoint_store,
        )
        if kappa is not None and (
            isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not kappa >= 0
        ):
            from tuningfork.exceptions import SchedulerError

            raise SchedulerError(
                f"kappa must be a number >= 0 or None, got {kappa!r}", option="kappa", owner="PB2"
            )
        self.kappa = kappa

    def _new_values(
        self,
        study: StudyReader,
        population: _Population,
        donor: FrozenTrial,
        params: dict[str, Value],
        names: list[str],
        step: int,
        rng: np.random.Generator,
    ) -> dict[str, Value]:
        dists = donor.distributions
        numeric = [n for n in names if isinstance(dists[n], (Float, Int))]
        others = [n for n in names if n not in numeric]
        result = self._perturb(params, dists, others, rng)
        if not numeric:
            return result
        sign = 1.0 if study.direction == "minimize" else -1.0
        times, x, y = self._observations(population, numeric, dists, sign)
        if np.isfinite(y).sum() < 2:
            return self._perturb(result, dists, numeric, rng)  # too little data yet
        pending = self._pending(population, numeric, dists)
        from tuningfork.schedulers._pb2_gp import propose

        chosen = propose(
            times,
            x,
            y,
            pending,
            float(self.next_budget(step)),
            rng,
            discrete=unit_dims([dists[n] for n in numeric]),
            kappa=self.kappa,
        )
        for name, u in zip(numeric, chosen):
            result[name] = dists[name].from_unit(float(u))
        return result

    def _perturb(
        self,
        params: dict[str, Value],
        dists: Any,
        names: list[str],
        rng: np.random.Generator,
    ) -> dict[str, Value]:
        return explore(
            params,
            dists,
            names,
            rng,
            mode="perturb",
            factors=self.perturbation_factors,
            resample_probability=self.resample_probability,
        )

    def _observations(
        self,
        population: _Population,
        names: list[str],
        dists: Any,
        sign: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(end step, scaled hyperparameters, improvement) of every member's intervals."""
        rows: list[tuple[float, list[float], float]] = []
        for trial in population.trials:
            if not all(n in trial.distributions for n in names):
                continue
            for start, end in self._intervals(trial):
                before = _value_at_start(trial, start)
                after = trial.intermediate_values[end]
                gain = sign * (before - after)
                if not math.isfinite(gain):
                    continue  # a diverged member: no information on its hyperparameters
                params = _own_params(trial, end)
                rows.append((float(end), _unit(params, names, dists), gain))
        rows = rows[-_MAX_ROWS:]
        if not rows:
            return np.zeros(0), np.zeros((0, len(names))), np.zeros(0)
        times = np.array([r[0] for r in rows])
        x = np.array([r[1] for r in rows])
        y = np.array([r[2] for r in rows])
        return times, x, y

    def _intervals(self, trial: FrozenTrial) -> list[tuple[int, int]]:
        """(start, end) boundary pairs of the intervals ``trial`` trained itself."""
        steps = trial.intermediate_values
        starts = {e["step"] for e in trial.system_attrs["pbt"].get("exploits", ())}
        found = []
        end = self.first_boundary() + self.perturbation_interval
        while end <= self.max_budget:
            start = end - self.perturbation_interval
            if end in steps and (start in steps or start in starts):
                found.append((start, end))
            end = self.next_budget(end) if end < self.max_budget else self.max_budget + 1
        return found

    def _pending(self, population: _Population, names: list[str], dists: Any) -> np.ndarray:
        running = [
            _unit(dict(t.params), names, dists)
            for t in population.alive()
            if t.state is TrialState.RUNNING and all(n in t.params for n in names)
        ]
        return np.array(running, dtype=float).reshape(len(running), len(names))


def _value_at_start(trial: FrozenTrial, start: int) -> float:
    """The value the interval from ``start`` began at: the trial's own report there, or,
    when it copied a donor at ``start``, the donor's value (its weights were the donor's)."""
    for exploit in trial.system_attrs["pbt"].get("exploits", ()):
        if exploit["step"] == start:
            return float(exploit["donor_value"])
    return trial.intermediate_values[start]


def _own_params(trial: FrozenTrial, end: int) -> dict[str, Value]:
    """The hyperparameters ``trial`` trained with during the interval ending at ``end``."""
    exploits = trial.system_attrs["pbt"].get("exploits", ())
    params = dict(exploits[0]["before"]) if exploits else dict(trial.params)
    for exploit in exploits:
        if exploit["step"] < end:
            params = dict(exploit["after"])
    return params


def _unit(
    params: dict[str, Value], names: list[str], dists: dict[str, Distribution]
) -> list[float]:
    return [float(dists[n].to_unit(params[n])) for n in names]
