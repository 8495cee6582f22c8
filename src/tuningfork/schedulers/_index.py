"""An index of a study's trials by bracket, rung and bracket instance, for the successive
halving engine.

It is a cache of the study's view, never a source of truth: `update` re-reads only the
trials that changed since its last call (`StudyReader.changed_since`), so an ask costs
O(changed trials x log n).
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tuningfork.schedulers._rungs import Bracket, rung_reached, value_at
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import StudyReader

Key = tuple[float, int]
"""A rung entry: (sign * value, trial number); sorted ascending, the best first."""


class TrialIndex:
    """Rung values, paused trials and instance members of one study's trials."""

    def __init__(self, brackets: Mapping[int, Bracket], default: int | None, sign: float) -> None:
        self.brackets = brackets
        self.default = default  # the bracket of trials that carry none (async only)
        self.sign = sign
        self.lock = threading.Lock()
        self.trials: list[FrozenTrial] = []
        self.cursor = 0  # where in the study's log the index is up to date
        self.rungs: dict[tuple[int, int], list[Key]] = {}
        self.paused: dict[tuple[int, int], set[int]] = {}
        self.instances: dict[int, list[int]] = {}
        self.done: set[int] = set()  # synchronous instances whose trials have all finished
        self._entries: dict[int, list[tuple[tuple[int, int], Key]]] = {}
        self._paused_at: dict[int, tuple[int, int]] = {}

    def update(self, study: StudyReader) -> None:
        """Bring the index up to date with the trials that changed since the last call."""
        trials = self.trials
        for frozen in study.changed_since(self.cursor):
            number = frozen.number
            if number < len(trials):
                trials[number] = frozen
            else:
                trials.append(frozen)
                instance = frozen.system_attrs.get("instance")
                if instance is not None:
                    self.instances.setdefault(instance, []).append(number)
            self._reindex(frozen)
        self.cursor = study.cursor

    def bracket_of(self, trial: FrozenTrial) -> int | None:
        s = trial.system_attrs.get("bracket", self.default)
        return s if s in self.brackets else None

    def _reindex(self, trial: FrozenTrial) -> None:
        number = trial.number
        for where, key in self._entries.pop(number, ()):
            entries = self.rungs[where]
            del entries[bisect.bisect_left(entries, key)]
        where_paused = self._paused_at.pop(number, None)
        if where_paused is not None:
            self.paused[where_paused].discard(number)
        s = self.bracket_of(trial)
        if s is None:
            return
        budgets = self.brackets[s].budgets
        added = []
        for rung, budget in enumerate(budgets):
            value = value_at(trial, budget)
            if value is None:
                break
            key = (self.key(value), number)
            bisect.insort(self.rungs.setdefault((s, rung), []), key)
            added.append(((s, rung), key))
        if added:
            self._entries[number] = added
        if trial.state is TrialState.PAUSED:
            at = (s, rung_reached(trial, budgets))
            self.paused.setdefault(at, set()).add(number)
            self._paused_at[number] = at

    def key(self, value: float) -> float:
        """Sort key of a value: smaller is better; NaN ranks last."""
        return math.inf if math.isnan(value) else self.sign * value

    def rank(self, s: int, rung: int, value: float, number: int) -> tuple[int, int]:
        """(how many values at the rung beat ``value``, how many values there are) when
        trial ``number`` has ``value`` there (its indexed entry, if any, is replaced)."""
        entries = self.rungs.get((s, rung), [])
        key = self.key(value)
        better = bisect.bisect_left(entries, (key, -1))
        n = len(entries) + 1
        for where, own in self._entries.get(number, ()):
            if where == (s, rung):
                n -= 1
                better -= 1 if own[0] < key else 0
        return better, n
