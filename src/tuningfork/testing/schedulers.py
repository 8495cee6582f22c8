"""The scheduler contract: the behaviour every scheduler must show.

Deterministic under a seed; several threads and processes share a study without running
a trial twice at once; a study resumed after a restart (a new process, a new scheduler
object) goes on exactly as an uninterrupted one; budgets are whole steps and are respected;
a trial that never reports, or fails, does not stall the study.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import ClassVar

from tuningfork.exceptions import TrialPruned
from tuningfork.samplers.random import RandomSampler
from tuningfork.schedulers.base import Scheduler
from tuningfork.space import Float, Space
from tuningfork.study import Study, create_study, load_study
from tuningfork.testing.storages import run_in_processes
from tuningfork.trial import FrozenTrial, Trial, TrialState

__all__ = ["SchedulerContract", "curve_objective"]

SPACE = Space(x=Float(0.0, 1.0), y=Float(0.0, 1.0))


def curve_value(params: dict, step: int) -> float:
    """A learning curve: the final quality depends on x and y, and improves with steps."""
    return (params["x"] - 0.3) ** 2 + (params["y"] - 0.6) ** 2 + 0.5 / step


def curve_objective(max_budget: int, fail_every: int = 0, silent: bool = False):
    """An objective that trains from ``trial.last_step + 1`` up to its budget, reporting
    each step; ``fail_every``: trial numbers divisible by it raise; ``silent``: return at
    the budget without reporting."""

    def objective(trial: Trial) -> float:
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

    ``max_budget`` is the step the contract's objective trains to when the scheduler
    sets no budget; ``n_runs`` is how many asks each test makes.
    """

    max_budget: ClassVar[int] = 27
    n_runs: ClassVar[int] = 60

    def make_scheduler(self, seed: int) -> Scheduler:
        """Return a new scheduler (the same options every time)."""
        raise NotImplementedError

    def make(self, seed: int) -> Scheduler:
        return self.make_scheduler(seed)

    def run(self, seed: int, n_runs: int | None = None, **objective_options: int) -> Study:
        study = create_study(
            storage="memory",
            sampler=RandomSampler(seed=seed),
            scheduler=self.make(seed),
            seed=seed,
        )
        objective = curve_objective(self.max_budget, **objective_options)  # type: ignore[arg-type]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the failing-trial test's warnings are expected
            study.optimize(objective, n_trials=n_runs or self.n_runs, catch=(RuntimeError,))
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

    def test_failing_trials_do_not_stall_the_study(self) -> None:
        study = self.run(seed=6, n_runs=self.n_runs * 2, fail_every=4)
        failed = study.get_trials([TrialState.FAIL])
        assert failed
        assert len(study.trials) > len(failed)
        assert not study.get_trials([TrialState.RUNNING])
        self.check_trials([t for t in study.trials if t.state is not TrialState.FAIL])
