"""What `GPSampler` keeps per study view, all of it rebuildable from the trials: the proposals
it made, and per space the encoded observations and the fitted hyperparameters (refitted
at anchors, so that a fit depends only on the trials)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from tuningfork.samplers._gp_encoding import _Encoding
from tuningfork.space import Categorical, Distribution, Float, Int, Space, Value
from tuningfork.trial import TrialState

if TYPE_CHECKING:
    from tuningfork.study import StudyReader

# hyperparameters are refitted ("anchors") every this many observations (every tenth of
# the count beyond 100); in between, each fit starts from the last anchor, so a fit depends
# only on the trials
_ANCHOR_EVERY = 10
# below this many observations the fit is also refined between anchors (beyond it, a few
# more observations barely move the hyperparameters, and a refit costs O(n^3) per step)
_REFIT_BELOW = 100

_MAX_PROPOSALS = 256  # cached proposals per study view


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
