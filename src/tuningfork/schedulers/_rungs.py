"""Budgets of successive halving and Hyperband brackets (shared by SHA, ASHA, Hyperband,
BOHB and DEHB).

A bracket ``s`` has ``s + 1`` rungs; rung ``i`` trains to budget
``r_i = max_budget * eta ** (i - s)`` (Li et al., 2018, Algorithm 1: ``r = R eta^-s``), so
every bracket's last rung is the maximum budget. ``s_max = floor(log_eta(max / min))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tuningfork.exceptions import SchedulerError
from tuningfork.trial import FrozenTrial


@dataclass(frozen=True)
class Bracket:
    """One successive-halving bracket: rung budgets and the nominal number of trials per rung."""

    s: int
    budgets: tuple[float, ...]
    sizes: tuple[int, ...]


def check_budgets(min_budget: float, max_budget: float, eta: float) -> None:
    """Raise `SchedulerError` unless 0 < min_budget < max_budget and eta > 1."""
    if not (isinstance(eta, (int, float)) and eta > 1 and math.isfinite(eta)):
        raise SchedulerError(f"eta must be a number > 1 (3 is the usual choice), got {eta!r}")
    if not (0 < min_budget < max_budget and math.isfinite(max_budget)):
        raise SchedulerError(
            f"budgets must satisfy 0 < min_budget < max_budget, got min_budget={min_budget!r}, "
            f"max_budget={max_budget!r}; they are in your step units (epochs, samples, seconds)"
        )


def s_max(min_budget: float, max_budget: float, eta: float) -> int:
    """The largest bracket index: floor(log_eta(max_budget / min_budget))."""
    return int(math.floor(math.log(max_budget / min_budget) / math.log(eta) + 1e-9))


def bracket_budgets(s: int, min_budget: float, max_budget: float, eta: float) -> tuple[float, ...]:
    """Rung budgets of bracket ``s``: max_budget * eta^(i - s), i = 0..s; whole numbers
    when min_budget and max_budget are ints (rounded, and never below min_budget)."""
    budgets = [max_budget * eta ** (i - s) for i in range(s + 1)]
    if isinstance(min_budget, int) and isinstance(max_budget, int):
        return tuple(max(min_budget, int(round(b))) for b in budgets)
    return tuple(budgets)


def hyperband_brackets(
    min_budget: float, max_budget: float, eta: float, *, sizes: str = "table"
) -> list[Bracket]:
    """Hyperband's brackets s = s_max .. 0 (Li et al., 2018).

    ``sizes="table"`` gives n = floor((s_max + 1) / (s + 1)) * eta^s trials in the first
    rung, which reproduces the paper's Table 1 (R = 81, eta = 3: 81, 27, 9, 6, 5) and
    HpBandSter; ``sizes="ceil"`` gives Algorithm 1's n = ceil((s_max + 1) / (s + 1) * eta^s)
    (81, 34, 15, 8, 5). Rung i keeps floor(n / eta^i) trials.
    """
    check_budgets(min_budget, max_budget, eta)
    if sizes not in ("table", "ceil"):
        raise SchedulerError(f"sizes must be 'table' or 'ceil', got {sizes!r}")
    top = s_max(min_budget, max_budget, eta)
    brackets = []
    for s in range(top, -1, -1):
        if sizes == "table":
            n = (top + 1) // (s + 1) * eta**s
        else:
            n = math.ceil((top + 1) / (s + 1) * eta**s - 1e-9)
        rungs = tuple(max(1, int(math.floor(n / eta**i + 1e-9))) for i in range(s + 1))
        brackets.append(Bracket(s, bracket_budgets(s, min_budget, max_budget, eta), rungs))
    return brackets


def value_at(trial: FrozenTrial, budget: float) -> float | None:
    """The trial's value at a rung: its report at the first step >= budget (None if none)."""
    values = trial.intermediate_values
    exact = values.get(int(budget)) if float(budget).is_integer() else None
    if exact is not None:
        return exact
    steps = [step for step in values if step >= budget]
    return values[min(steps)] if steps else None


def rung_reached(trial: FrozenTrial, budgets: tuple[float, ...]) -> int:
    """The highest rung index the trial has a value at (-1 if none)."""
    last = trial.last_step
    if last is None:
        return -1
    return sum(1 for budget in budgets if budget <= last) - 1
