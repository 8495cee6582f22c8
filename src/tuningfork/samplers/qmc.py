"""Quasi-Monte Carlo search: trial n takes point n of a low-discrepancy sequence.

Sobol' (1967) and Halton (1960) sequences from `scipy.stats.qmc`, optionally scrambled
(Owen, 1995, "Randomly permuted (t,m,s)-nets and (t,s)-sequences"; Sobol' uses Owen-type
linear matrix scrambling with a digital shift, Halton a random permutation per digit).
They cover the unit cube more evenly than independent draws, which Bergstra & Bengio
(2012, "Random search for hyper-parameter optimization", section 5) show helps in HPO.
"""

from __future__ import annotations

import inspect
import random
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tuningfork import _check as check
from tuningfork.exceptions import SpaceError
from tuningfork.repro import derive_seed
from tuningfork.samplers.base import Sampler
from tuningfork.space import Distribution, Space, Value
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import StudyReader

__all__ = ["QMCSampler"]

_QMC_TYPES = ("sobol", "halton")
_SOBOL_MAX_DIMS = 21201
# Points are generated in blocks; a power of two keeps Sobol's balance and its warning quiet.
_BLOCK = 64
_CACHED_BLOCKS = 8


class QMCSampler(Sampler):
    """Quasi-random search over the unit cube of the parameters.

    Args:
        qmc_type: "sobol" (default) or "halton".
        scramble: randomise the sequence under ``seed`` (True, recommended); False gives the
            standard unscrambled sequence, whose first point is the origin.
        seed: seeds the scrambling and the independent draws; None draws one from the
            operating system.

    Trial ``n`` takes point ``n`` of the sequence, computed directly from ``n`` and the seed
    (not from how many points this process drew), so the configurations do not depend on
    which worker ran which trial, and a resumed study continues the same sequence.

    With a declared `Space` (``study.ask(space)`` / ``optimize(space=...)``) the sequence has
    one dimension per parameter (``space.dims``) and point ``n`` is decoded with the space,
    so conditional parameters appear only where active.

    Define-by-run, the dimensions are inferred from the study: they are the parameters of
    the lowest-numbered COMPLETE trial, in sorted name order, with that trial's
    distributions. A parameter in that set, suggested with the same distribution, takes
    its coordinate of point ``n``. Any other parameter — every parameter while the study
    has no completed trial (so trial 0 always), a parameter first seen later, or one
    suggested with another distribution — gets an independent uniform draw from a
    generator seeded with ``derive_seed(seed, n, name)``.
    """

    seed: int  # never None here: drawn when not given

    def __init__(
        self,
        *,
        qmc_type: Literal["sobol", "halton"] = "sobol",
        scramble: bool = True,
        seed: int | None = None,
    ) -> None:
        self.qmc_type = check.choice(qmc_type, list(_QMC_TYPES), "qmc_type", "QMCSampler")
        self.scramble = check.flag(scramble, "scramble", "QMCSampler")
        seed = check.seed(seed, "QMCSampler")
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self._lock = threading.Lock()
        self._sequences: dict[int, _Sequence] = {}
        # per study view: (completed trials counted, lowest COMPLETE number, its dimensions)
        self._inferred: weakref.WeakKeyDictionary[StudyReader, tuple[int, int, _Dimensions]] = (
            weakref.WeakKeyDictionary()
        )

    # -- the Sampler interface ------------------------------------------------------------

    def sample_space(
        self, study: StudyReader, trial: FrozenTrial, space: Space
    ) -> dict[str, Value]:
        """Point ``trial.number`` of a ``space.dims``-dimensional sequence, decoded.

        Equal to ``space.decode(point)``, except that values already fixed on the trial
        (an enqueued configuration) are kept and conditions are checked against them.
        """
        params: dict[str, Value] = dict(trial.params)
        if not space.dims:
            return params
        point = self._point(trial.number, space.dims)
        for i, name in enumerate(space.names):
            if name in params or not space.is_active(name, params):
                continue
            params[name] = space[name].from_unit(float(point[i]))
        return params

    def sample(
        self, study: StudyReader, trial: FrozenTrial, name: str, distribution: Distribution
    ) -> Value:
        """A coordinate of point ``trial.number``, or an independent draw (see the class)."""
        dims = self._dimensions(study)
        if dims is not None:
            position = dims.position.get(name)
            if position is not None and dims.distributions[position].same_as(distribution):
                point = self._point(trial.number, len(dims.position))
                return distribution.from_unit(float(point[position]))
        draw = random.Random(derive_seed(self.seed, trial.number, name)).random()
        return distribution.from_unit(draw)

    # -- points ---------------------------------------------------------------------------

    def _point(self, index: int, dims: int) -> np.ndarray:
        """Point ``index`` of the ``dims``-dimensional sequence, in [0, 1)^dims."""
        with self._lock:
            sequence = self._sequences.get(dims)
            if sequence is None:
                sequence = self._sequences[dims] = _Sequence(self._engine_factory(dims))
            return sequence.point(index)

    def _engine_factory(self, dims: int) -> Callable[[], Any]:
        from scipy.stats import qmc  # scipy.stats is slow to import; only QMC needs it

        if self.qmc_type == "sobol" and dims > _SOBOL_MAX_DIMS:
            raise SpaceError(
                f"a Sobol' sequence has at most {_SOBOL_MAX_DIMS} dimensions, the space has "
                f"{dims}; use qmc_type='halton'"
            )
        engine_class = qmc.Sobol if self.qmc_type == "sobol" else qmc.Halton
        # scipy >= 1.15 names the generator argument rng; older versions call it seed
        keyword = "rng" if "rng" in inspect.signature(engine_class).parameters else "seed"
        seed, scramble = self.seed, self.scramble

        def make() -> Any:
            generator = np.random.default_rng(seed)
            return engine_class(dims, scramble=scramble, **{keyword: generator})

        return make

    # -- define-by-run dimensions ---------------------------------------------------------

    def _dimensions(self, study: StudyReader) -> _Dimensions | None:
        """The inferred dimensions: those of the lowest-numbered COMPLETE trial, or None.

        A trial never leaves COMPLETE, so the lowest such number only falls; it is looked
        for again, below the last one found, only when the study's count of completed
        trials has changed.
        """
        completed = study.n_complete
        if not completed:
            return None
        with self._lock:
            cached = self._inferred.get(study)
            if cached is not None and cached[0] == completed:
                return cached[2]
            below = cached[1] if cached is not None else len(study)
            first = next((i for i in range(below) if study.state(i) is TrialState.COMPLETE), below)
            if cached is not None and first == cached[1]:
                dims = cached[2]
            else:
                dims = _Dimensions(study.trial(first).distributions)
            self._inferred[study] = (completed, first, dims)
            return dims


class _Dimensions:
    """Sorted parameter names and their distributions, as QMC dimensions."""

    __slots__ = ("position", "distributions")

    def __init__(self, distributions: dict[str, Distribution]) -> None:
        names = sorted(distributions)
        self.position = {name: i for i, name in enumerate(names)}
        self.distributions = [distributions[name] for name in names]


class _Sequence:
    """Points of one sequence, generated in blocks of `_BLOCK`.

    A block is drawn by the engine that drew the previous block when the access is
    sequential (amortised O(1) per point), and otherwise by a fresh engine fast-forwarded
    to the block's start; both give the same points, since the scrambling depends only on
    the seed.
    """

    def __init__(self, make_engine: Callable[[], Any]) -> None:
        self._make_engine = make_engine
        self._engine: Any = None
        self._blocks: OrderedDict[int, np.ndarray] = OrderedDict()

    def point(self, index: int) -> np.ndarray:
        if index < 0:
            raise IndexError(f"point index must be >= 0, got {index}")  # a bug, not a user's
        block, offset = divmod(index, _BLOCK)
        points = self._blocks.get(block)
        if points is None:
            points = self._draw(block)
        else:
            self._blocks.move_to_end(block)
        return points[offset]

    def _draw(self, block: int) -> np.ndarray:
        start = block * _BLOCK
        if self._engine is None or self._engine.num_generated != start:
            self._engine = self._make_engine()
            if start:
                self._engine.fast_forward(start)
        points = self._engine.random(_BLOCK)
        self._blocks[block] = points
        if len(self._blocks) > _CACHED_BLOCKS:
            self._blocks.popitem(last=False)
        return points
