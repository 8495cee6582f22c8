"""The scheduler contract: the behaviour every scheduler must show.

Deterministic under a seed; several threads and processes share a study without running
a trial twice at once; a study resumed after a restart (a new process, a new scheduler
object) goes on exactly as an uninterrupted one; budgets are whole steps and are respected;
a trial that never reports, or fails, does not stall the study. A scheduler that pauses
(`Scheduler.pauses`) resumes its paused trials at larger budgets, never beyond max_budget,
and a study capped by ``max_trials`` ends with a trial trained to max_budget; one that
does not pause never leaves a trial PAUSED.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from tuningfork.exceptions import TrialPruned
from tuningfork.samplers.random import RandomSampler
from tuningfork.schedulers.base import Scheduler
from tuningfork.space import Float, Space
from tuningfork.study import Study, create_study, load_study
from tuningfork.testing.storages import run_in_processes
from tuningfork.trial import FrozenTrial, Trial, TrialState

__all__ = ["Run", "SchedulerContract", "curve_objective"]

SPACE = Space(x=Float(0.0, 1.0), y=Float(0.0, 1.0))


def curve_value(params: dict, step: int) -> float:
    """A learning curve: the final quality depends on x and y, and improves with steps."""
    return (params["x"] - 0.3) ** 2 + (params["y"] - 0.6) ** 2 + 0.5 / step


@dataclass(frozen=True)
class Run:
    """One run of the objective on a trial, as the objective saw it: its ``trial.budget``,
    the last step reported before it started (None: a new trial) and when it ended, and
    whether the scheduler paused it (``trial.paused``)."""

    number: int
    budget: float | None
    first_step: int | None
    last_step: int | None
    paused: bool


def curve_objective(
    max_budget: int, fail_every: int = 0, silent: bool = False, runs: list[Run] | None = None
) -> Callable[[Trial], float]:
    """An objective that trains from ``trial.last_step + 1`` up to its budget, reporting
    each step; ``fail_every``: trial numbers divisible by it raise; ``silent``: return at
    the budget without reporting; ``runs``: a list that each run appends its `Run` to."""

    def train(trial: Trial) -> float:
        params = {"x": trial.suggest_float("x", 0.0, 1.0), "y": trial.suggest_float("y", 0.0, 1.0)}
        if fail_every and trial.number % fail_every == fail_every - 1:
            raise RuntimeError("this configuration crashes")
        end = int(trial.budget) if trial.budget is not None else max_budget
        end = min(end, max_budget)
        if silent:
            return curve_value(params, end)
        value = float("nan")
        for step in range((trial.last_step or 0) + 1, end + 1):
            value = curve_value(params, step)
            trial.report(value, step)
            if trial.should_stop():
                raise TrialPruned()
        return value

    def objective(trial: Trial) -> float:
        first = trial.last_step
        try:
            return train(trial)
        finally:
            if runs is not None:
                runs.append(Run(trial.number, trial.budget, first, trial.last_step, trial.paused))

    return objective


def _fingerprint(trials: list[FrozenTrial]) -> list[tuple]:
    return [
        (
            t.number,
            t.state.value,
            tuple(sorted(t.params.items())),
            tuple(sorted(t.intermediate_values.items())),
        )
        for t in trials
    ]


def _worker(factory: type, storage: str, name: str, n_runs: int) -> int:
    contract = factory()
    study = load_study(
        name, storage=storage, sampler=RandomSampler(seed=None), scheduler=contract.make(1)
    )
    study.optimize(curve_objective(contract.max_budget), n_trials=n_runs)
    return n_runs


class SchedulerContract:
    """Contract tests for a `Scheduler`. Subclass it and implement `make_scheduler`.

    ``max_budget`` is the scheduler's largest budget (the step the contract's objective
    trains to when the scheduler sets no budget); ``n_runs`` is how many asks each test
    makes; ``max_trials`` caps the study of `test_a_capped_study_ends_trained_to_max_budget`
    (below the 27 trials a Hyperband bracket with eta 3 and 4 rungs needs); ``finish_top``
    is how many trials the scheduler trains to max_budget when the cap is reached (the
    option of that name of SHA, ASHA, Hyperband, BOHB; 1 by default).
    """

    max_budget: ClassVar[int] = 27
    n_runs: ClassVar[int] = 60
    max_trials: ClassVar[int] = 20
    finish_top: ClassVar[int] = 1

    def make_scheduler(self, seed: int) -> Scheduler:
        """Return a new scheduler (the same options every time)."""
        raise NotImplementedError

    def make(self, seed: int) -> Scheduler:
        return self.make_scheduler(seed)

    def run(
        self,
        seed: int,
        n_runs: int | None = None,
        *,
        max_trials: int | None = None,
        runs: list[Run] | None = None,
        **objective_options: int,
    ) -> Study:
        """A study of the contract's objective, in memory: ``n_runs`` runs (default
        `n_runs`), or with ``max_trials`` until the cap ends it; ``runs`` collects each
        run (see `curve_objective`)."""
        study = create_study(
            storage="memory",
            sampler=RandomSampler(seed=seed),
            scheduler=self.make(seed),
            seed=seed,
        )
        objective = curve_objective(self.max_budget, runs=runs, **objective_options)  # type: ignore[arg-type]
        n_trials = None if max_trials is not None else n_runs or self.n_runs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # failing trials' and the cap's warnings
            study.optimize(
                objective, n_trials=n_trials, max_trials=max_trials, catch=(RuntimeError,)
            )
        return study

    def check_trials(self, trials: list[FrozenTrial], contiguous: bool = True) -> None:
        """Reports are contiguous from step 1, within the budget, and match the states."""
        for t in trials:
            steps = sorted(t.intermediate_values)
            if contiguous:
                assert steps == list(range(1, len(steps) + 1)), (t.number, steps)
            assert not steps or steps[-1] <= self.max_budget
            budget = t.system_attrs.get("budget")
            assert budget is None or type(budget) is int, (t.number, budget)  # whole steps
            if budget is not None and steps:
                assert steps[-1] <= max(budget, 1), (t.number, steps[-1], budget)
            if t.state is TrialState.PAUSED:
                assert steps, f"trial {t.number} paused before any report"
                assert self.make(0).pauses, (
                    f"trial {t.number} is PAUSED, but the scheduler says it never pauses "
                    "(Scheduler.pauses is False)"
                )

    def check_runs(self, trials: list[FrozenTrial], runs: list[Run]) -> None:
        """What the runs of each trial show: budgets within max_budget; a trial runs again
        only after a pause, from the step after its last report, at a budget above that
        step (so it trains further); a pause comes below max_budget, after a report; a
        PAUSED trial's last run paused; and a scheduler that does not declare `pauses`
        never pauses."""
        by_trial: dict[int, list[Run]] = defaultdict(list)
        for run in runs:
            by_trial[run.number].append(run)
        pauses = self.make(0).pauses
        for t in trials:
            mine = by_trial.get(t.number, [])
            for run in mine:
                assert run.budget is None or run.budget <= self.max_budget, (
                    f"trial {t.number} ran with budget {run.budget} > max_budget {self.max_budget}"
                )
                assert not run.paused or pauses, (
                    f"trial {t.number} was paused, but the scheduler says it never pauses "
                    "(Scheduler.pauses is False)"
                )
                if run.paused:
                    assert run.last_step is not None, f"trial {t.number} paused before a report"
                    assert run.last_step < self.max_budget, (
                        f"trial {t.number} paused at step {run.last_step}, at max_budget: "
                        "it has nothing left to be resumed for and should complete"
                    )
            for before, after in zip(mine, mine[1:]):
                self._check_resume(t.number, before, after)
            if t.state is TrialState.PAUSED:
                assert mine and mine[-1].paused, f"trial {t.number} is PAUSED, its last run was not"

    def _check_resume(self, number: int, before: Run, after: Run) -> None:
        assert before.paused, f"trial {number} ran again without having been paused"
        assert after.first_step == before.last_step, (
            f"trial {number} resumed after step {after.first_step}, but paused at "
            f"{before.last_step}"
        )
        budget = self.max_budget if after.budget is None else after.budget
        assert before.last_step is not None and budget > before.last_step, (
            f"trial {number} paused at step {before.last_step} and was resumed with budget "
            f"{after.budget}: a resume must be at a budget above where the trial paused"
        )

    def check_capped_end(self, study: Study, runs: list[Run]) -> None:
        """The end of ``optimize(max_trials=...)`` with no ``n_trials``: exactly
        `max_trials` trials, none RUNNING or WAITING, and at least `finish_top` of them
        COMPLETE at max_budget (the cap's promotions, `Scheduler.assign_at_cap`, finish
        them when the rule did not). Trials left PAUSED are allowed — losers of their rung,
        or trials waiting for a promotion that only new trials could have earned — since
        the finish took the best on; `check_runs` checks how each one got there."""
        trials = study.trials
        assert len(trials) == self.max_trials, (len(trials), self.max_trials)
        assert not study.get_trials([TrialState.RUNNING, TrialState.WAITING])
        finished = [
            t.number
            for t in study.get_trials([TrialState.COMPLETE])
            if t.last_step == self.max_budget
        ]
        assert len(finished) >= self.finish_top, (
            f"the capped study ended with {len(finished)} trial(s) complete at max_budget "
            f"{self.max_budget}, fewer than finish_top={self.finish_top} "
            f"(states: {sorted({t.state.value for t in trials})})"
        )
        self.check_runs(trials, runs)

    def test_deterministic_under_a_seed(self) -> None:
        first = self.run(seed=7)
        second = self.run(seed=7)
        assert _fingerprint(first.trials) == _fingerprint(second.trials)
        self.check_trials(first.trials)

    def test_some_trials_finish(self) -> None:
        study = self.run(seed=3, n_runs=self.n_runs * 2)
        assert study.get_trials([TrialState.COMPLETE]), "no trial reached the end"
        self.check_trials(study.trials)

    def test_resumes_after_restart(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'restart.db'}"
        half = self.n_runs // 2
        study = create_study(
            "restart", storage=url, sampler=RandomSampler(seed=5), scheduler=self.make(5), seed=5
        )
        study.optimize(curve_objective(self.max_budget), n_trials=half)
        again = load_study("restart", storage=url, sampler=RandomSampler(seed=5))
        again.scheduler = self.make(5)
        again.optimize(curve_objective(self.max_budget), n_trials=self.n_runs - half)
        straight = self.run(seed=5)
        assert _fingerprint(again.trials) == _fingerprint(straight.trials)

    def test_threads_share_a_study(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'threads.db'}"
        study = create_study("threads", storage=url, scheduler=self.make(2), seed=2)
        study.optimize(curve_objective(self.max_budget), n_trials=self.n_runs, n_jobs=4)
        assert not study.get_trials([TrialState.RUNNING, TrialState.FAIL])
        self.check_trials(study.trials)

    def test_processes_share_a_study(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'processes.db'}"
        create_study("processes", storage=url, scheduler=self.make(1), seed=1)
        runs = self.n_runs // 3
        run_in_processes(_worker, [(type(self), url, "processes", runs)] * 3)
        study = load_study("processes", storage=url)
        assert not study.get_trials([TrialState.RUNNING, TrialState.FAIL])
        self.check_trials(study.trials)

    def test_trial_that_never_reports(self) -> None:
        study = self.run(seed=4, silent=True)
        assert not study.get_trials([TrialState.RUNNING, TrialState.FAIL])
        assert study.get_trials([TrialState.COMPLETE]) or study.get_trials([TrialState.PAUSED])
        self.check_trials(study.trials, contiguous=False)

    def test_pauses_are_resumed_at_larger_budgets(self) -> None:
        runs: list[Run] = []
        study = self.run(seed=8, runs=runs)
        self.check_runs(study.trials, runs)
        self.check_trials(study.trials)

    def test_a_capped_study_ends_trained_to_max_budget(self) -> None:
        runs: list[Run] = []
        study = self.run(seed=9, max_trials=self.max_trials, runs=runs)
        self.check_capped_end(study, runs)
        self.check_trials(study.trials)

    def test_failing_trials_do_not_stall_the_study(self) -> None:
        study = self.run(seed=6, n_runs=self.n_runs * 2, fail_every=4)
        failed = study.get_trials([TrialState.FAIL])
        assert failed
        assert len(study.trials) > len(failed)
        assert not study.get_trials([TrialState.RUNNING])
        self.check_trials([t for t in study.trials if t.state is not TrialState.FAIL])
