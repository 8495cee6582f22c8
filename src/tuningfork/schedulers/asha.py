"""Asynchronous successive halving, ASHA (Li et al., 2020, "A system for massively parallel
hyperparameter tuning", MLSys).

A trial goes on from a rung as soon as it is in the top 1/eta of the values recorded at
that rung so far; nobody waits for a rung to fill, so N workers stay busy.
"""

from __future__ import annotations

from tuningfork import _check as check
from tuningfork.exceptions import SchedulerError
from tuningfork.schedulers._halving import HalvingScheduler
from tuningfork.schedulers._rungs import Bracket, check_budgets, ladder


class ASHA(HalvingScheduler):
    """Asynchronous successive halving.

    Args:
        min_budget: the smallest budget, in the steps the objective reports (default 1);
            a whole number, as every budget.
        max_budget: budget of the last rung (default 81).
        eta: reduction factor (default 3).
        min_early_stopping_rate: skip this many of the lowest rungs (Li et al.'s ``s``;
            default 0).
        mode: ``"promotion"`` (default, as SHA, Hyperband and BOHB): a trial pauses at
            each rung budget with a checkpoint, and an ask resumes the best paused trial
            that is in the top 1/eta of its rung (Algorithm 2), else starts a new trial at
            the smallest budget; ``"stopping"``: a trial runs on and is stopped at a rung
            where it is not in the top 1/eta of the values there so far (the first trial
            at a rung always goes on), for objectives that cannot checkpoint.
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
        min_early_stopping_rate: int = 0,
        mode: str = "promotion",
        rungs: str = "down",
        finish_top: int = 1,
    ) -> None:
        low, high = check_budgets(min_budget, max_budget, eta, owner="ASHA")
        steps = ladder(low, high, eta, rungs, owner="ASHA")
        rate = check.integer(
            min_early_stopping_rate,
            "min_early_stopping_rate",
            "ASHA",
            minimum=0,
            error=SchedulerError,
        )
        s = len(steps) - 1 - rate
        if s < 1:
            raise SchedulerError(
                f"min_early_stopping_rate must be in [0, {len(steps) - 2}] "
                f"for these budgets, got {min_early_stopping_rate}",
                option="min_early_stopping_rate",
                owner="ASHA",
            )
        sizes = tuple(max(1, int(eta ** (s - i))) for i in range(s + 1))
        bracket = Bracket(s, steps[-(s + 1) :], sizes)
        super().__init__(
            low,
            high,
            eta,
            mode=mode,
            asynchronous=True,
            brackets=[bracket],
            rungs=rungs,
            finish_top=finish_top,
        )
        self.min_early_stopping_rate = min_early_stopping_rate
