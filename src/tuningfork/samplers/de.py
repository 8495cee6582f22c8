"""Differential evolution (Storn & Price, 1997, "Differential evolution - a simple and
efficient heuristic for global optimization over continuous spaces"), steady-state: the
population is slots of trial numbers read from the log, so no worker waits for a generation.
"""

from __future__ import annotations

import numpy as np

from tuningfork import _check as check
from tuningfork.samplers._population import Population, PopulationSampler, SearchSpace
from tuningfork.trial import FrozenTrial

__all__ = ["DESampler"]

_STRATEGIES = ("rand/1/bin", "current-to-best/1/bin")


class DESampler(PopulationSampler):
    """Differential evolution in the unit cube of the inferred search space.

    The population is ``population_size`` slots: trial n belongs to slot
    ``n % population_size``, and a slot's member is its best complete trial (ties: lower
    trial number first). Trial n's target vector is its own slot's member, so a trial
    replaces only its parent, and only when it is better: the one-to-one selection of
    Storn & Price (1997), read from the log without a generation barrier. The mutant is
    built from distinct random members other than the target:

    - ``"rand/1/bin"``: v = x_r1 + F (x_r2 - x_r3);
    - ``"current-to-best/1/bin"``: v = x_i + F (x_best - x_i) + F (x_r1 - x_r2);

    then binomial crossover with the target (each coordinate from the mutant with
    probability CR, one random coordinate always), clipped into [0, 1]. By default F is
    dithered: drawn per trial from U(0.5, 1) by the trial's generator (Das, Konar &
    Chakraborty, 2005, "Two improved differential evolution schemes for faster global
    search"), so steps keep a range of lengths.

    Why: the previous view (the best ``population_size`` trials, fixed F = 0.5) collapsed
    onto one basin and stalled; on benchmarks/quality.py (10 seeds, 1,000 trials) slots
    with a dithered F took the median regret from 0.628 to 1.4e-4 on hartmann6, 490 to
    3.6 on rosenbrock5 and 12.2 to 2.1 on ackley10, ahead of nevergrad's DE on 6 of 7
    problems at 100 and at 1,000 trials (benchmarks/RESULTS.md).

    Categorical parameters (choice indices, which have no differences) follow the same
    shape: the mutant's category is its base member's (x_r1, or x_i for current-to-best)
    where the difference members agree on the category, and a uniformly random one where
    they differ; crossover then takes the mutant's category with probability CR, else keeps
    the target's.

    Until ``population_size`` trials are complete, configurations are random (the initial
    population); so is a trial whose slot holds no complete trial yet (its trials failed
    or were pruned), and every trial while fewer than 4 slots hold one. Parameters outside
    the inferred space are random too (see `PopulationSampler`).

    Args:
        strategy: ``"current-to-best/1/bin"`` (default: greedier, which pays at the
            budgets of hyperparameter searches) or ``"rand/1/bin"`` (the classic one).
        F: the differential weight, in (0, 2]; None (the default) draws it per trial from
            U(0.5, 1).
        CR: the crossover probability, in [0, 1] (default 0.9).
        population_size: slots of the population (at least 4); None (the default) for
            2 per parameter of the space, at least 12 (Storn & Price's 10 per parameter
            leaves a 100-trial budget mostly random: measured in benchmarks/RESULTS.md).
        seed: seeds every proposal: trial n's generator is seeded with
            ``derive_seed(seed, "DESampler", n)``; None draws a seed at random.
    """

    def __init__(
        self,
        *,
        strategy: str = "current-to-best/1/bin",
        F: float | None = None,  # noqa: N803 - the paper's names
        CR: float = 0.9,  # noqa: N803
        population_size: int | None = None,
        seed: int | None = None,
    ) -> None:
        owner = "DESampler"
        self.strategy = check.choice(strategy, _STRATEGIES, "strategy", owner)
        self.F = (
            None if F is None else check.number(F, "F", owner, low=0.0, high=2.0, low_open=True)
        )
        self.CR = check.number(CR, "CR", owner, low=0.0, high=1.0)
        self.population_size = (
            None
            if population_size is None
            else check.integer(population_size, "population_size", owner, minimum=4)
        )
        super().__init__(seed=seed)

    def size(self, n_dims: int) -> int:
        """The population size for ``n_dims`` parameters."""
        if self.population_size is not None:
            return self.population_size
        return max(12, 2 * n_dims)

    def propose(
        self, population: Population, trial: FrozenTrial, rng: np.random.Generator
    ) -> np.ndarray:
        members, target_at = _slots(population, self.size(len(population.space)), trial.number)
        if target_at is None:
            return _random_row(population.space, rng)
        count = len(members)
        target = members[target_at]
        F = rng.uniform(0.5, 1.0) if self.F is None else self.F  # noqa: N806
        others = rng.permutation([i for i in range(count) if i != target_at])
        if self.strategy == "rand/1/bin":
            base, plus, minus = members[others[0]], members[others[1]], members[others[2]]
            mutant = base + F * (plus - minus)
        else:  # current-to-best/1/bin: members[0] is the best
            base, plus, minus = target, members[others[0]], members[others[1]]
            mutant = target + F * (members[0] - target) + F * (plus - minus)
        mutant = np.clip(mutant, 0.0, 1.0)
        categorical = population.space.categorical
        if categorical.any():
            mutant[categorical] = _categorical_mutant(
                base[categorical],
                plus[categorical],
                minus[categorical],
                population.space.n_choices[categorical],
                rng,
            )
        return _binomial_crossover(target, mutant, self.CR, rng)


def _slots(population: Population, size: int, number: int) -> tuple[np.ndarray, int | None]:
    """The slots' members (rows, best first) and the position of trial ``number``'s own
    slot among them: None when that slot is empty or fewer than 4 slots are filled."""
    order = population.best(len(population))
    slot_of = population.numbers[order] % size
    _, first = np.unique(slot_of, return_index=True)
    first.sort()  # the best trial of each slot, best slot first
    mine = np.flatnonzero(slot_of[first] == number % size)
    if len(first) < 4 or not len(mine):
        return population.rows[order[first]], None
    return population.rows[order[first]], int(mine[0])


def _random_row(space: SearchSpace, rng: np.random.Generator) -> np.ndarray:
    """A uniform point of the space: unit values, choice indices."""
    row = rng.random(len(space))
    return np.where(space.categorical, np.floor(row * space.n_choices), row)


def _categorical_mutant(
    base: np.ndarray,
    plus: np.ndarray,
    minus: np.ndarray,
    n_choices: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """The base's category where the difference members agree, a random one elsewhere."""
    random_choice = np.floor(rng.random(len(base)) * n_choices)
    return np.where(plus == minus, base, random_choice)


def _binomial_crossover(
    target: np.ndarray,
    mutant: np.ndarray,
    CR: float,
    rng: np.random.Generator,  # noqa: N803
) -> np.ndarray:
    """Each coordinate from the mutant with probability CR; coordinate j_rand always, so
    that the trial differs from the target (Storn & Price, 1997)."""
    take = rng.random(len(target)) < CR
    take[int(rng.integers(len(target)))] = True
    return np.where(take, mutant, target)
