"""Random search (Bergstra & Bengio, 2012, "Random search for hyper-parameter optimization"):
each parameter drawn independently and uniformly, log-uniformly for log parameters.

Draws are counter-based: trial ``n``'s value of parameter ``p`` comes from a SplitMix64
hash of ``(seed, n, p)`` (Steele et al., 2014), so a seed gives the same configurations in
any process and any order of workers, without keeping generator state.
"""

from __future__ import annotations

import random
import zlib
from typing import TYPE_CHECKING

from tuningfork import _check as check
from tuningfork.samplers.base import Sampler
from tuningfork.space import Distribution, Value
from tuningfork.trial import FrozenTrial

if TYPE_CHECKING:
    from tuningfork.study import StudyReader

_MASK = (1 << 64) - 1
_TO_UNIT = 1.0 / (1 << 53)


def _mix(x: int) -> int:
    """SplitMix64's finaliser: a bijective, well-mixing hash of a 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def uniform_draw(seed: int, number: int, name: str) -> float:
    """A uniform number in [0, 1) determined by ``(seed, number, name)`` alone."""
    key = _mix(_mix(_mix(seed & _MASK) ^ number) ^ zlib.crc32(name.encode()))
    return (key >> 11) * _TO_UNIT


class RandomSampler(Sampler):
    """Uniform random search.

    Args:
        seed: base seed (default None: drawn from the operating system and recorded in the
            study). The same seed gives the same value of a parameter in the same trial
            number, whichever worker runs it.
    """

    def __init__(self, *, seed: int | None = None) -> None:
        seed = check.seed(seed, "RandomSampler")
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self._base = _mix(self.seed & _MASK)

    def sample(
        self, study: StudyReader, trial: FrozenTrial, name: str, distribution: Distribution
    ) -> Value:
        key = _mix(_mix(self._base ^ trial.number) ^ zlib.crc32(name.encode()))
        return distribution.from_unit((key >> 11) * _TO_UNIT)
