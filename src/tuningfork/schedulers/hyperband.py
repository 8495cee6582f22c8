"""Hyperband (Li et al., 2018, "Hyperband: a novel bandit-based approach to hyperparameter
optimization", JMLR 18): brackets of successive halving that trade the number of
configurations against the budget each gets, from s = s_max (many trials, small budgets)
to s = 0 (few trials, all at the largest budget).
"""

from __future__ import annotations

from tuningfork.schedulers._halving import HalvingScheduler
from tuningfork.schedulers._rungs import Bracket, hyperband_brackets


class Hyperband(HalvingScheduler):
    """Hyperband over synchronous (SHA) or asynchronous (ASHA) brackets.

    Args:
        min_budget: the smallest budget, in the steps the objective reports (default 1);
            a whole number, as every budget.
        max_budget: the largest budget, R (default 81).
        eta: reduction factor (default 3). With R = 81 and eta = 3 the brackets are those
            of Li et al.'s Table 1 (see `brackets`).
        mode: ``"promotion"`` (default; trials pause at rung budgets and are resumed from
            their checkpoints) or ``"stopping"`` (trials run on and are stopped).
        asynchronous: run each bracket as ASHA (Li et al., 2020) instead of SHA (default
            False); each new trial then draws its bracket with probability proportional
            to the bracket's size.
        sizes: ``"table"`` (default) or ``"ceil"``; see `hyperband_brackets`.
        seed: seeds the asynchronous bracket draw (default: the study's seed).
        rungs: ``"down"`` (default): the largest bracket's rung budgets are
            max_budget * eta^-k, rounded to whole steps, down to min_budget (Li et al.,
            2018), so its first rung may lie above min_budget (1, 52, eta 3: 2, 6, 17, 52);
            ``"up"``: min_budget * eta^k below the last rung, max_budget (1, 3, 9, 52). In
            both, bracket s runs the largest bracket's top s + 1 rungs. `rung_budgets`
            returns them.
        finish_top: when `Study.optimize`'s ``max_trials`` is reached and the rule
            promotes nothing more, the best paused trial of the highest rung is promoted
            rung by rung until this many trials complete at max_budget (default 1; 0: no).

    Synchronous brackets run in turn s_max, s_max - 1, ..., 0, s_max, ...; a new trial joins
    the oldest bracket instance with a free first-rung slot, and promotions come before new
    trials.
    """

    def __init__(
        self,
        min_budget: float = 1,
        max_budget: float = 81,
        eta: float = 3,
        *,
        mode: str = "promotion",
        asynchronous: bool = False,
        sizes: str = "table",
        seed: int | None = None,
        rungs: str = "down",
        finish_top: int = 1,
    ) -> None:
        brackets = hyperband_brackets(
            min_budget, max_budget, eta, sizes=sizes, rungs=rungs, owner=type(self).__name__
        )
        super().__init__(
            min_budget,
            max_budget,
            eta,
            mode=mode,
            asynchronous=asynchronous,
            brackets=brackets,
            seed=seed,
            rungs=rungs,
            finish_top=finish_top,
        )
        self.sizes = sizes

    @property
    def bracket_table(self) -> list[Bracket]:
        """The brackets, s = s_max first: rung budgets r_i and trials per rung n_i."""
        return [self.brackets[s] for s in self.order]
