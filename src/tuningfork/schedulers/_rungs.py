"""Budgets of successive halving and Hyperband brackets (shared by SHA, ASHA, Hyperband,
BOHB and DEHB).

Budgets are steps: the whole numbers that ``trial.report`` counts (epochs, batches).
The largest bracket has ``s_max + 1`` rungs, ``s_max = floor(log_eta(max / min))``. Its rung
budgets (the *ladder*) count down from max_budget by default, ``r_i = max_budget * eta **
(i - s_max)`` (Li et al., 2018, Algorithm 1: ``r = R eta^-s``), so the first rung may lie
above min_budget (min 1, max 52, eta 3: 2, 6, 17, 52); with ``rungs="up"`` they count up
from min_budget, ``r_i = min_budget * eta ** i`` below the last rung, which is max_budget
(1, 3, 9, 52), as in ASHA's ``r eta^k`` (Li et al., 2020). Bracket ``s`` runs the ladder's
top ``s + 1`` rungs, so every bracket ends at max_budget and all brackets share one set of
budgets. Every rung budget is rounded here, by `to_step`, to the nearest whole step (halves
up) and never below min_budget; where rounding gives two rungs one step (only possible with
eta < 2), the ladder keeps one, and s_max counts the distinct rungs.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

from tuningfork import _check as check
from tuningfork.exceptions import SchedulerError
from tuningfork.trial import FrozenTrial

RUNG_ORDERS = ("down", "up")
"""``rungs=`` options: count rung budgets down from max_budget, or up from min_budget."""


@dataclass(frozen=True)
class Bracket:
    """One successive-halving bracket: rung budgets (in steps) and the nominal number of
    trials per rung."""

    s: int
    budgets: tuple[int, ...]
    sizes: tuple[int, ...]


def check_budgets(
    min_budget: float, max_budget: float, eta: float, *, owner: str | None = None
) -> tuple[int, int]:
    """(min_budget, max_budget) as ints; raise `SchedulerError` (naming ``owner``, the
    scheduler) unless both are whole numbers of steps (1, 1.0 and numpy numbers are),
    0 < min_budget < max_budget and eta > 1."""
    check.number(
        eta,
        "eta",
        owner,
        low=1,
        low_open=True,
        high_open=True,
        hint=" (3 is the usual choice)",
        error=SchedulerError,
    )
    low = _whole(min_budget, "min_budget", owner)
    high = _whole(max_budget, "max_budget", owner)
    if not 0 < low < high:
        raise SchedulerError(
            f"budgets must satisfy 0 < min_budget < max_budget, got min_budget={min_budget!r}, "
            f"max_budget={max_budget!r}; they are in your step units (epochs, batches)",
            option="min_budget" if low <= 0 else "max_budget",
            owner=owner,
        )
    return low, high


def _whole(value: object, name: str, owner: str | None) -> int:
    """``value`` as an int, if it is a whole number (an int, 27.0, a numpy number)."""
    if not isinstance(value, bool):  # True is not a budget
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
            # typeshed types Real.__trunc__ as Integral-like, so int() rejects it; it works
            return int(value)  # type: ignore[call-overload]
    raise SchedulerError(
        f"{name} must be a whole number of steps, got {value!r}: budgets are the steps "
        "that trial.report counts (epochs, batches); for a fraction of the data or of the "
        "training, scale it to steps, e.g. min_budget=1, max_budget=100 for 1% to 100%",
        option=name,
        owner=owner,
    )


def check_rungs(rungs: str, *, owner: str | None = None) -> str:
    """Raise `SchedulerError` unless ``rungs`` is one of `RUNG_ORDERS`."""
    if rungs not in RUNG_ORDERS:
        raise SchedulerError(
            f"rungs must be 'down' (count rung budgets down from max_budget, as Li et al.) "
            f"or 'up' (count up from min_budget), got {rungs!r}",
            option="rungs",
            owner=owner,
        )
    return rungs


def to_step(budget: float) -> int:
    """A rung budget rounded to a whole step: the nearest, halves up (the one rounding
    rule of every scheduler's rungs)."""
    return int(math.floor(budget + 0.5))


def ladder(
    min_budget: int, max_budget: int, eta: float, rungs: str = "down", *, owner: str | None = None
) -> tuple[int, ...]:
    """The rung budgets of the largest bracket, in steps, strictly increasing, from
    whole-number budgets (see the module's docstring for the rule)."""
    check_rungs(rungs, owner=owner)
    top = int(math.floor(math.log(max_budget / min_budget) / math.log(eta) + 1e-9))
    if rungs == "down":
        exact = [max_budget * eta ** (i - top) for i in range(top + 1)]
    else:
        exact = [min_budget * eta**i for i in range(top)] + [max_budget]
    return tuple(sorted({max(min_budget, to_step(budget)) for budget in exact}))


def s_max(min_budget: int, max_budget: int, eta: float, rungs: str = "down") -> int:
    """The largest bracket index: floor(log_eta(max_budget / min_budget)), less any rungs
    that rounding merged."""
    return len(ladder(min_budget, max_budget, eta, rungs)) - 1


def bracket_budgets(
    s: int, min_budget: int, max_budget: int, eta: float, rungs: str = "down"
) -> tuple[int, ...]:
    """Rung budgets of bracket ``s``: the top s + 1 rungs of the `ladder`."""
    return ladder(min_budget, max_budget, eta, rungs)[-(s + 1) :]


def hyperband_brackets(
    min_budget: float,
    max_budget: float,
    eta: float,
    *,
    sizes: str = "table",
    rungs: str = "down",
    owner: str | None = None,
) -> list[Bracket]:
    """Hyperband's brackets s = s_max .. 0 (Li et al., 2018).

    ``sizes="table"`` gives n = floor((s_max + 1) / (s + 1)) * eta^s trials in the first
    rung, which reproduces the paper's Table 1 (R = 81, eta = 3: 81, 27, 9, 6, 5) and
    HpBandSter; ``sizes="ceil"`` gives Algorithm 1's n = ceil((s_max + 1) / (s + 1) * eta^s)
    (81, 34, 15, 8, 5). Rung i keeps floor(n / eta^i) trials. Budgets must be whole
    numbers of steps; ``rungs`` counts the ladder down from max_budget (default) or up from
    min_budget, and bracket s runs its top s + 1 rungs.
    """
    low, high = check_budgets(min_budget, max_budget, eta, owner=owner)
    check.choice(sizes, ("table", "ceil"), "sizes", owner, error=SchedulerError)
    steps = ladder(low, high, eta, rungs, owner=owner)
    top = len(steps) - 1
    brackets = []
    for s in range(top, -1, -1):
        if sizes == "table":
            n = (top + 1) // (s + 1) * eta**s
        else:
            n = math.ceil((top + 1) / (s + 1) * eta**s - 1e-9)
        counts = tuple(max(1, int(math.floor(n / eta**i + 1e-9))) for i in range(s + 1))
        brackets.append(Bracket(s, steps[top - s :], counts))
    return brackets


def rungs_message(
    name: str,
    brackets: Sequence[tuple[int, ...]],
    limits: tuple[int, int],
    eta: float,
    rungs: str,
) -> str:
    """The line printed when a run starts: the rung budgets of the largest bracket (and
    where each bracket starts), and how they were counted from ``limits``, the
    (min_budget, max_budget)."""
    low, high = limits
    text = f"{name} rungs (steps): {', '.join(str(b) for b in brackets[0])}"
    if len(brackets) > 1:
        starts = ", ".join(str(budgets[0]) for budgets in brackets)
        text += f"; its {len(brackets)} brackets start at {starts}"
    if rungs == "down":
        how = f"counting down from max_budget={high} by eta={eta:g}"
        return f"{text} ({how}; rungs='up' starts at min_budget={low})"
    how = f"counting up from min_budget={low} by eta={eta:g}, the last at max_budget={high}"
    return f"{text} ({how}; rungs='down' counts down from max_budget)"


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
