"""Particle swarm optimisation with a constriction factor (Clerc & Kennedy, 2002, "The
particle swarm - explosion, stability, and convergence in a multidimensional complex
space"), asynchronous: a particle is a slot of trial numbers, its history read from the log.
"""

from __future__ import annotations

import math

import numpy as np

from tuningfork import _check as check
from tuningfork.samplers._population import Population, PopulationSampler, SearchSpace
from tuningfork.trial import FrozenTrial

__all__ = ["PSOSampler"]

CHI = 0.7298
"""Clerc & Kennedy's constriction factor for c1 + c2 = 4.1."""
C1 = C2 = 2.05
"""The cognitive (personal best) and social (global best) coefficients."""
# Categorical coordinates have no velocity: this is the chance that one jumps to a random
# choice, which keeps every choice reachable as a velocity keeps every number reachable.
_CATEGORY_JUMP = 0.1


class PSOSampler(PopulationSampler):
    """Constriction-factor particle swarm in the unit cube of the inferred search space.

    Trial n belongs to particle ``n % swarm_size``. The particle's history is its COMPLETE
    trials (n - swarm_size, n - 2 swarm_size, ...): its position x is the latest of them,
    its velocity v the difference of its last two positions (zero with only one), its
    personal best p the best of them; the global best g is the best complete trial. Trial
    n is proposed at

        x' = x + chi (v + c1 r1 (p - x) + c2 r2 (g - x)),  r1, r2 ~ U(0, 1) per coordinate,

    clipped into [0, 1] (a clipped step is what the next velocity sees), with chi = 0.7298
    and c1 = c2 = 2.05 (Clerc & Kennedy, 2002). The update is asynchronous, as in Venter &
    Sobieszczanski-Sobieski (2006): each particle moves when its slot comes up, with the
    global best of that moment. A particle with no complete trial yet starts at a random
    point; until ``swarm_size`` trials are complete every configuration is random.

    A categorical coordinate moves to the personal best's choice or the global best's with
    weights c1 r1 and c2 r2 against 1 for staying, and with probability 0.1 to a random
    choice instead. Parameters outside the inferred space are random (see
    `PopulationSampler`).

    Args:
        swarm_size: particles in the swarm (at least 2); None (the default) for
            10 + floor(2 sqrt(d)) with d parameters (the Standard PSO 2006 rule).
        seed: seeds every proposal: trial n's generator is seeded with
            ``derive_seed(seed, "PSOSampler", n)``; None draws a seed at random.
    """

    def __init__(self, *, swarm_size: int | None = None, seed: int | None = None) -> None:
        self.swarm_size = (
            None
            if swarm_size is None
            else check.integer(swarm_size, "swarm_size", "PSOSampler", minimum=2)
        )
        super().__init__(seed=seed)

    def size(self, n_dims: int) -> int:
        """The swarm size for ``n_dims`` parameters."""
        if self.swarm_size is not None:
            return self.swarm_size
        return 10 + math.floor(2 * math.sqrt(n_dims))

    def propose(
        self, population: Population, trial: FrozenTrial, rng: np.random.Generator
    ) -> np.ndarray:
        space = population.space
        size = self.size(len(space))
        numbers = population.numbers
        mine = np.flatnonzero((numbers % size == trial.number % size) & (numbers < trial.number))
        r1, r2 = rng.random(len(space)), rng.random(len(space))
        if not len(mine):
            return _random_row(space, rng)
        mine = mine[np.argsort(numbers[mine], kind="stable")]
        x = population.rows[mine[-1]]
        v = x - population.rows[mine[-2]] if len(mine) > 1 else np.zeros(len(space))
        p = population.rows[mine[np.lexsort((numbers[mine], population.losses[mine]))[0]]]
        g = population.rows[population.best(1)[0]]
        moved = np.clip(x + CHI * (v + C1 * r1 * (p - x) + C2 * r2 * (g - x)), 0.0, 1.0)
        categorical = space.categorical
        if categorical.any():
            moved[categorical] = _categorical_move(
                x[categorical],
                p[categorical],
                g[categorical],
                r1[categorical],
                r2[categorical],
                space.n_choices[categorical],
                rng,
            )
        return moved


def _categorical_move(
    x: np.ndarray,
    p: np.ndarray,
    g: np.ndarray,
    r1: np.ndarray,
    r2: np.ndarray,
    n_choices: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Stay, or go to the personal or global best's choice (weights 1, c1 r1, c2 r2); jump
    to a random choice with probability `_CATEGORY_JUMP`."""
    pull_p, pull_g = C1 * r1, C2 * r2
    u = rng.random(len(x)) * (1.0 + pull_p + pull_g)
    moved = np.where(u < 1.0, x, np.where(u < 1.0 + pull_p, p, g))
    jump = rng.random(len(x)) < _CATEGORY_JUMP
    return np.where(jump, np.floor(rng.random(len(x)) * n_choices), moved)


def _random_row(space: SearchSpace, rng: np.random.Generator) -> np.ndarray:
    """A uniform point: unit values, and uniform choice indices."""
    row = rng.random(len(space))
    return np.where(space.categorical, np.floor(row * space.n_choices), row)
