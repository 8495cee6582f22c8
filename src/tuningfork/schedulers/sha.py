"""Successive halving, synchronous (Jamieson & Talwalkar, 2016, "Non-stochastic best arm
identification and hyperparameter optimization", AISTATS; Karnin et al., 2013).

n trials start at the smallest budget; when the rung is full, the best 1/eta go on to eta
times the budget, and so on up to the largest budget. "Synchronous": nobody is promoted
from a rung before every trial of the rung has reported there. While a rung fills, new
trials open the next instance of the bracket, so workers never idle.
"""

from __future__ import annotations

from tuningfork import _check as check
from tuningfork.exceptions import SchedulerError
from tuningfork.schedulers._halving import HalvingScheduler
from tuningfork.schedulers._rungs import Bracket, check_budgets, ladder


class SHA(HalvingScheduler):
    """Synchronous successive halving.

    Args:
        min_budget: the smallest budget, in the steps the objective reports (default 1);
            a whole number, as every budget.
        max_budget: budget of the last rung (e.g. the number of epochs of a full training).
        eta: reduction factor (default 3): the best 1/eta of a rung go on, at eta times
            the budget.
        n_trials: trials in the first rung of each instance (default eta^s, where s + 1 is
            the number of rungs, so that one trial reaches max_budget).
        mode: ``"promotion"`` (default): a trial pauses at each rung budget (checkpoint
            and return) and is resumed from its checkpoint if promoted; ``"stopping"``: a
            trial runs on and is stopped at a rung where it cannot be among the best 1/eta,
            continues where it is certainly among them, and pauses only while undecided.
        rungs: ``"down"`` (default): rung budgets max_budget * eta^-k, rounded to whole
            steps, down to min_budget (Li et al., 2018), so the first rung may lie above
            min_budget (1, 52, eta 3: 2, 6, 17, 52); ``"up"``: min_budget * eta^k below the
            last rung, max_budget (1, 3, 9, 52). `rung_budgets` returns them.
        finish_top: when `Study.optimize`'s ``max_trials`` is reached and the rule
            promotes nothing more, the best paused trial of the highest rung is promoted
            rung by rung until this many trials complete at max_budget (default 1; 0: no).
    """

    def __init__(
        self,
        min_budget: float = 1,
        max_budget: float = 81,
        eta: float = 3,
        *,
        n_trials: int | None = None,
        mode: str = "promotion",
        rungs: str = "down",
        finish_top: int = 1,
    ) -> None:
        low, high = check_budgets(min_budget, max_budget, eta, owner="SHA")
        steps = ladder(low, high, eta, rungs, owner="SHA")
        s = len(steps) - 1
        n = n_trials if n_trials is not None else int(round(eta**s))
        n = check.integer(n, "n_trials", "SHA", error=SchedulerError)
        sizes = tuple(max(1, int(n // eta**i)) for i in range(s + 1))
        bracket = Bracket(s, steps, sizes)
        super().__init__(
            low,
            high,
            eta,
            mode=mode,
            asynchronous=False,
            brackets=[bracket],
            rungs=rungs,
            finish_top=finish_top,
        )
        self.n_trials = n
