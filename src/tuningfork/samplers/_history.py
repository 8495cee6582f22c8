"""A study's finished trials as TPE sees them, read from the study view incrementally.

Finished trials never change, so each is read once: its rank key (for the good/bad split)
goes into growing arrays, and its encoded row goes into the matrix of every parameter set
(group) that has asked for rows. Running trials are re-read on every call; there are few.
PAUSED trials (stopped at a rung by a multi-fidelity scheduler) count like pruned ones, by
the step they reached; their key is updated in place when they are resumed and go further.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tuningfork.samplers import _hssp
from tuningfork.space import Distribution, Value
from tuningfork.trial import TrialState

if TYPE_CHECKING:
    from tuningfork.samplers._parzen import Dimension
    from tuningfork.study import StudyReader
    from tuningfork.trial import FrozenTrial

__all__ = ["Encoded", "Observed", "History"]

_COMPLETE, _PRUNED, _RUNNING = TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING
_PAUSED = TrialState.PAUSED
# Encoded matrices kept per study: one per group of parameters (a few in practice).
_MAX_ENCODINGS = 64

Group = tuple[tuple[str, Distribution], ...]
"""A set of parameters with their distributions, sorted by name."""


class Observed:
    """A trial's number and a copy of its parameters and their distributions."""

    __slots__ = ("number", "params", "distributions")

    def __init__(self, record: FrozenTrial) -> None:
        self.number = record.number
        self.params: Mapping[str, Value] = record.params  # read-only mappings: no copy
        self.distributions: Mapping[str, Distribution] = record.distributions


class _Column:
    """A growing 1-d or 2-d float array (amortised O(1) append)."""

    def __init__(self, width: int = 0) -> None:
        self._width = width
        shape = (16, width) if width else (16,)
        self._data = np.empty(shape)
        self.size = 0

    def append(self, row: Any) -> None:
        if self.size == len(self._data):
            grown = np.empty((2 * len(self._data), *self._data.shape[1:]))
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size] = row
        self.size += 1

    @property
    def values(self) -> np.ndarray:
        return self._data[: self.size]

    def set(self, position: int, row: Any) -> None:
        self._data[position] = row


class Encoded:
    """Encoded rows of the finished trials that hold every parameter of one group."""

    def __init__(self, group: Group, dims: Sequence[Dimension]) -> None:
        self.group = group
        self.dims = dims
        self.rows = _Column(len(group))
        self.index = _Column()  # position of each row's trial in `History.finished`
        self.cursor = 0  # how many of `History.finished` were looked at

    def add(self, position: int, trial: Observed) -> None:
        row = encode(self.group, self.dims, trial.params, trial.distributions, partial=False)
        if row is not None:
            self.rows.append(row)
            self.index.append(position)


def encode(
    group: Group,
    dims: Sequence[Dimension],
    params: Mapping[str, Value],
    distributions: Mapping[str, Distribution],
    *,
    partial: bool,
) -> list[float] | None:
    """A trial's row for ``group``; None unless it holds every parameter of the group with the
    same distribution. With ``partial``, missing parameters become NaN, and None is returned
    only when the trial holds none of them."""
    row: list[float] = []
    found = 0
    for (name, dist), dim in zip(group, dims):
        own = distributions.get(name)
        if name in params and own is not None and (own is dist or own.same_as(dist)):
            row.append(dim.encode(params[name]))
            found += 1
        elif partial:
            row.append(math.nan)
        else:
            return None
    return row if found else None


class History:
    """The finished (COMPLETE and PRUNED) trials of one study view, in the order found.

    The ranking puts complete trials first: by loss (the value, negated when maximising)
    in a single-objective study; in a multi-objective one as MOTPE does (Ozaki et al.,
    2020): front by front (non-dominated sorting, Deb et al., 2002), and the front that does
    not fit whole is cut by greedy hypervolume subset selection (`_hssp`), so the good
    trials are the ones that dominate the most volume together. Above 3 objectives the cut
    goes by crowding distance instead (NSGA-II; exact hypervolume costs a factor n more per
    objective). A NaN objective value counts as +inf. Pruned trials
    follow, by the last step they reached (later first) and, single-objective, the value
    reported there; then pruned trials that reported nothing. Remaining ties go to the
    lower trial number.
    """

    def __init__(self, directions: Sequence[str]) -> None:
        self._signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
        self.n_objectives = len(directions)
        self._multi = self.n_objectives > 1
        self.finished: list[Observed] = []
        self._keys = _Column(4)  # (category, -step, loss, number)
        self._losses = _Column(len(directions)) if self._multi else None
        self._cursor = 0  # records of the view looked at
        self._unfinished: dict[int, None] = {}  # looked at, not finished yet
        self._paused: dict[int, tuple[int, Any]] = {}  # taken while PAUSED: position, frozen
        self._encodings: OrderedDict[Group, Encoded] = OrderedDict()
        self._split: tuple[int, int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.finished)

    # -- reading the view -----------------------------------------------------------------

    def refresh(self, study: StudyReader) -> None:
        """Take in the trials that finished since the last call."""
        for number in list(self._paused):
            self._recheck(study.trial(number))
        for number in list(self._unfinished):
            state = study.state(number)
            if state.is_finished or state is _PAUSED:
                del self._unfinished[number]
                self._take(study.trial(number))
        count = len(study)
        for number in range(self._cursor, count):
            state = study.state(number)
            if state.is_finished or state is _PAUSED:
                self._take(study.trial(number))
            else:
                self._unfinished[number] = None
        self._cursor = count

    def _recheck(self, record: FrozenTrial) -> None:
        """Update the key of a trial taken while PAUSED, if it has changed since."""
        position, seen = self._paused[record.number]
        frozen = record
        if frozen is seen:
            return
        key = self._key(record)
        if key is not None:  # a FAIL after a pause keeps what the trial showed before
            self._keys.set(position, key)
            self._split = None
        if record.state.is_finished:
            del self._paused[record.number]
        else:
            self._paused[record.number] = (position, frozen)

    def _take(self, record: FrozenTrial) -> None:
        key = self._key(record)
        if key is None:
            return  # failed trials say nothing about their configuration
        if record.state is _PAUSED:
            self._paused[record.number] = (len(self.finished), record)
        self.finished.append(Observed(record))
        self._keys.append(key)
        if self._losses is None:
            return
        if key[0] == 0.0:  # complete
            losses = self._signs * np.asarray(record.values, dtype=float)
            self._losses.append(np.where(np.isnan(losses), math.inf, losses))
        else:
            self._losses.append(math.nan)

    def _key(self, record: FrozenTrial) -> tuple[float, float, float, float] | None:
        if record.state is _COMPLETE and record.values:
            loss = 0.0 if self._multi else self._loss(record.values[0])
            return (0.0, 0.0, loss, float(record.number))
        if record.state is not _PRUNED and record.state is not _PAUSED:
            return None
        steps = record.intermediate_values
        if not steps:
            return (2.0, 0.0, 0.0, float(record.number))
        step = max(steps)
        loss = 0.0 if self._multi else self._loss(steps[step])
        return (1.0, -float(step), loss, float(record.number))

    def _loss(self, value: float) -> float:
        loss = self._signs[0] * float(value)
        return loss if loss == loss else math.inf  # NaN ranks last

    # -- the split ------------------------------------------------------------------------

    def below(self, n_below: int) -> np.ndarray:
        """A mask over `finished`: True for the ``n_below`` best-ranked trials."""
        count = len(self.finished)
        if self._split is not None and self._split[:2] == (count, n_below):
            return self._split[2]
        keys = self._keys.values
        order = np.lexsort((keys[:, 3], keys[:, 2], keys[:, 1], keys[:, 0]))
        n_below = min(max(0, n_below), count)
        chosen = order[:n_below]
        if self._multi and n_below > 0 and keys[order[n_below - 1], 0] == 0.0:
            chosen = self._front_cut(order[keys[order, 0] == 0.0], n_below)
        mask = np.zeros(count, dtype=bool)
        mask[chosen] = True
        self._split = (count, n_below, mask)
        return mask

    def _front_cut(self, complete: np.ndarray, n_below: int) -> np.ndarray:
        """``n_below`` of the ``complete`` trials (positions, by number): whole fronts
        first, then a subset of the next front (`_cut`)."""
        from tuningfork.samplers.genetic import fronts

        losses = self._losses.values[complete]  # type: ignore[union-attr]
        rank = fronts(_dominates(losses))
        by_front = np.argsort(rank, kind="stable")
        level = rank[by_front[n_below - 1]]
        before = complete[by_front[rank[by_front] < level]]
        tied = complete[rank == level]
        return np.concatenate([before, self._cut(tied, n_below - len(before))])

    def _cut(self, tied: np.ndarray, take: int) -> np.ndarray:
        """``take`` of the ``tied`` trials (one front, by number): hypervolume subset
        selection over those with finite losses, up to 3 objectives; crowding distance
        (largest first) above that. Remaining ties go to the lower trial number."""
        points = self._losses.values[tied]  # type: ignore[union-attr]
        if self.n_objectives > 3:
            return tied[np.argsort(-_crowding(points), kind="stable")[:take]]
        finite = np.isfinite(points).all(axis=1)
        inside, outside = tied[finite], tied[~finite]
        if not len(inside):
            return outside[:take]
        share = min(take, len(inside))
        picked = _hssp.select(points[finite], share, _hssp.reference_point(points[finite]))
        return np.concatenate([inside[picked], outside[: take - share]])

    def numbers(self) -> np.ndarray:
        """Trial number of each finished trial."""
        return self._keys.values[:, 3]

    # -- encoded rows ---------------------------------------------------------------------

    def encoded(self, group: Group, dims: Sequence[Dimension]) -> Encoded:
        """The encoded rows of ``group``, brought up to date."""
        encoding = self._encodings.get(group)
        if encoding is None:
            encoding = self._encodings[group] = Encoded(group, dims)
            if len(self._encodings) > _MAX_ENCODINGS:
                self._encodings.popitem(last=False)
        else:
            self._encodings.move_to_end(group)
        finished = self.finished
        for position in range(encoding.cursor, len(finished)):
            encoding.add(position, finished[position])
        encoding.cursor = len(finished)
        return encoding


def _dominates(losses: np.ndarray) -> np.ndarray:
    """``[i, j]`` True where row i Pareto-dominates row j (lower is better in every column)."""
    count = len(losses)
    no_worse = np.ones((count, count), dtype=bool)
    for column in losses.T:  # a column at a time: no (count, count, M) array
        no_worse &= column[:, None] <= column[None, :]
    return no_worse & ~no_worse.T


def _crowding(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each point (rows) within the set; ends are infinite."""
    count, width = points.shape
    distance = np.zeros(count)
    if count <= 2:
        return np.full(count, math.inf)
    for column in range(width):
        order = np.argsort(points[:, column], kind="stable")
        ordered = points[order, column]
        distance[order[0]] = distance[order[-1]] = math.inf
        span = ordered[-1] - ordered[0]
        if span > 0:
            distance[order[1:-1]] += (ordered[2:] - ordered[:-2]) / span
    return distance


def running_trials(study: StudyReader, exclude: int) -> list[Observed]:
    """The study's RUNNING trials other than ``exclude`` that have suggested something."""
    return [
        Observed(record)
        for record in study.running_trials()
        if record.number != exclude and record.params
    ]


class GroupInference:
    """The define-by-run search space, split into groups of parameters that are active
    together (Optuna's group decomposition).

    Every finished trial's parameter set is a union of whole groups: each new trial splits
    the groups it cuts, and its parameters seen for the first time form a new group. A
    parameter suggested with two different distributions leaves the inferred space.
    """

    def __init__(self) -> None:
        self._cursor = 0
        self._distributions: dict[str, Distribution] = {}
        self._conflicts: set[str] = set()
        self._groups: list[frozenset[str]] = []
        self._result: list[Group] = []

    def update(self, finished: Sequence[Observed]) -> list[Group]:
        """The groups, sorted, after taking in ``finished[cursor:]``."""
        if self._cursor == len(finished):
            return self._result
        for trial in finished[self._cursor :]:
            self._take(trial)
        self._cursor = len(finished)
        known = self._distributions
        groups = [tuple((name, known[name]) for name in sorted(group)) for group in self._groups]
        self._result = sorted(groups, key=lambda group: [name for name, _ in group])
        return self._result

    def _take(self, trial: Observed) -> None:
        names = set()
        for name, dist in trial.distributions.items():
            if name in self._conflicts or name not in trial.params:
                continue
            known = self._distributions.setdefault(name, dist)
            if known is dist or known.same_as(dist):
                names.add(name)
            else:
                self._conflicts.add(name)
                self._groups = [group - {name} for group in self._groups if group != {name}]
        groups: list[frozenset[str]] = []
        covered: set[str] = set()
        for group in self._groups:
            covered |= group
            groups.extend(part for part in (group & names, group - names) if part)
        fresh = names - covered
        if fresh:
            groups.append(frozenset(fresh))
        self._groups = groups
