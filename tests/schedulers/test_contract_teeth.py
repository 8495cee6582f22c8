"""The scheduler contract fails schedulers that break it: one that pauses every trial and
never resumes one, one that resumes a trial at the budget it paused at, one that pauses
without declaring it, one that sets a budget beyond max_budget. Each is written against
the public API only, as a user's scheduler would be."""

from __future__ import annotations

import pytest

import tuningfork as tf
from tuningfork.schedulers import Assignment
from tuningfork.space import Space
from tuningfork.testing import SchedulerContract
from tuningfork.testing.schedulers import Run


class PausesForever(tf.Scheduler):
    """Pauses every trial at its first report; never resumes one."""

    pauses = True

    def decide(
        self, study: tf.Study, trial: tf.FrozenTrial, step: int, value: float
    ) -> tf.Decision:
        return tf.Decision.PAUSE


class ResumesAtTheSameBudget(tf.Scheduler):
    """Pauses a trial at budget 3 and resumes it with budget 3 again: it cannot train on."""

    pauses = True

    def decide(
        self, study: tf.Study, trial: tf.FrozenTrial, step: int, value: float
    ) -> tf.Decision:
        budget = trial.system_attrs.get("budget")
        if budget is not None and step >= budget:
            return tf.Decision.PAUSE
        return tf.Decision.CONTINUE

    def assign(self, study: tf.Study, space: Space | None) -> Assignment:
        for t in study.get_trials([tf.TrialState.PAUSED]):
            claim = f"resume:{t.number}:{t.last_step}"
            return Assignment(resume=t.number, budget=t.system_attrs["budget"], claims=(claim,))
        return Assignment(budget=3)


class PausesUndeclared(tf.Scheduler):
    """A stopping rule (``pauses`` stays False) that pauses at step 2 all the same."""

    def decide(
        self, study: tf.Study, trial: tf.FrozenTrial, step: int, value: float
    ) -> tf.Decision:
        return tf.Decision.PAUSE if step == 2 else tf.Decision.CONTINUE


class BudgetBeyondMax(tf.Scheduler):
    """Starts every trial with a budget of 81 steps, above the contract's max_budget, 27."""

    def decide(
        self, study: tf.Study, trial: tf.FrozenTrial, step: int, value: float
    ) -> tf.Decision:
        return tf.Decision.CONTINUE

    def assign(self, study: tf.Study, space: Space | None) -> Assignment:
        return Assignment(budget=81)


def contract_for(scheduler: type[tf.Scheduler]) -> SchedulerContract:
    """The contract applied to ``scheduler`` (not collected: its class name has no Test)."""

    class Contract(SchedulerContract):
        def make_scheduler(self, seed: int) -> tf.Scheduler:
            return scheduler()

    return Contract()


def run(contract: SchedulerContract, **options: int) -> tuple[tf.Study, list[Run]]:
    runs: list[Run] = []
    return contract.run(seed=1, runs=runs, **options), runs


def test_a_scheduler_that_never_resumes_fails_the_capped_finish() -> None:
    contract = contract_for(PausesForever)
    study, runs = run(contract, max_trials=contract.max_trials)
    assert {t.state for t in study.trials} == {tf.TrialState.PAUSED}
    contract.check_runs(study.trials, runs)  # each pause by itself is well formed
    with pytest.raises(AssertionError, match=r"0 trial\(s\) complete at max_budget 27"):
        contract.check_capped_end(study, runs)


def test_a_scheduler_that_resumes_at_the_same_budget_fails() -> None:
    contract = contract_for(ResumesAtTheSameBudget)
    study, runs = run(contract, n_runs=12)
    assert any(r.number == runs[0].number for r in runs[1:])  # it was resumed
    with pytest.raises(AssertionError, match="paused at step 3 and was resumed with budget 3"):
        contract.check_runs(study.trials, runs)
    study, runs = run(contract, max_trials=contract.max_trials)
    with pytest.raises(AssertionError, match=r"0 trial\(s\) complete at max_budget"):
        contract.check_capped_end(study, runs)


def test_a_scheduler_that_pauses_without_declaring_it_fails() -> None:
    contract = contract_for(PausesUndeclared)
    study, runs = run(contract, n_runs=5)
    with pytest.raises(AssertionError, match="says it never pauses"):
        contract.check_runs(study.trials, runs)
    with pytest.raises(AssertionError, match="says it never pauses"):
        contract.check_trials(study.trials)


def test_a_budget_beyond_max_budget_fails() -> None:
    contract = contract_for(BudgetBeyondMax)
    study, runs = run(contract, n_runs=3)
    with pytest.raises(AssertionError, match="budget 81 > max_budget 27"):
        contract.check_runs(study.trials, runs)


@pytest.mark.parametrize(
    "scheduler",
    [tf.ASHA(1, 27, 3, mode="promotion"), tf.SHA(1, 27, 3, mode="stopping", n_trials=9)],
    ids=["ASHA-promotion", "SHA-stopping"],
)
def test_built_in_pausing_schedulers_declare_it(scheduler: tf.Scheduler) -> None:
    assert scheduler.pauses
    assert tf.AnyOf(tf.MedianStopping(), scheduler).pauses


def test_stopping_rules_declare_they_never_pause() -> None:
    for scheduler in (
        tf.NoScheduler(),
        tf.MedianStopping(),
        tf.ASHA(1, 27, 3, mode="stopping"),
        tf.Hyperband(1, 27, 3, mode="stopping", asynchronous=True),
        tf.AnyOf(tf.MedianStopping(), tf.PatienceStopping(3)),
    ):
        assert not scheduler.pauses, scheduler
