"""Random search: each parameter drawn independently and uniformly (log-uniformly for log
parameters), seeded per trial so the same seed gives the same configurations in any
process (Bergstra & Bengio, 2012, "Random search for hyper-parameter optimization")."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from tuningfork.repro import derive_seed
from tuningfork.samplers.base import Sampler
from tuningfork.space import Distribution, Value
from tuningfork.trial import FrozenTrial

if TYPE_CHECKING:
    from tuningfork.study import Study


class RandomSampler(Sampler):
    """Uniform random search.

    Args:
        seed: base seed. Trial ``n``'s draws come from a generator seeded with
            ``derive_seed(seed, n)``, so they do not depend on which worker ran which trial.
            None draws a seed from the operating system.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self._rngs: dict[int, random.Random] = {}

    def sample(
        self, study: Study, trial: FrozenTrial, name: str, distribution: Distribution
    ) -> Value:
        return distribution.from_unit(self._rng(trial.number).random())

    def _rng(self, number: int) -> random.Random:
        rng = self._rngs.get(number)
        if rng is None:
            if len(self._rngs) > 64:  # keep only the generators of recent trials
                self._rngs.clear()
            rng = self._rngs[number] = random.Random(derive_seed(self.seed, number))
        return rng
