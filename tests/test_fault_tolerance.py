"""Retries of failed and stale trials, and clean preemption by a signal (SLURM)."""

from __future__ import annotations

import os
import signal
import time

import pytest

import tuningfork as tf
from tuningfork.exceptions import TuningforkError
from tuningfork.study._ask import _prune_paused
from tuningfork.study._reap import queue_retries
from tuningfork.trial import TrialState


def _orphan(url: str, name: str = "s", **create) -> tuple[tf.Study, int]:
    """A study whose trial 0 was started under optimize()'s heartbeat promise and then
    abandoned (as by a worker that died), with x recorded by a report."""
    dead = tf.create_study(name, storage=url, **create)
    dead._call.monitored = True  # as inside optimize(): its trials promise heartbeats
    trial = dead.ask()
    trial.report(trial.suggest_float("x", 0, 1), 0)
    return dead, trial.number


def _reap(study: tf.Study) -> None:
    study.grace_period = 0.2
    study.reap_stale(now=time.time() + 1.0)  # a second later: past the grace period


def test_max_retries_is_recorded_and_may_be_overridden(storage_url):
    study = tf.create_study("r", storage=storage_url, max_retries=2)
    assert study.max_retries == 2 and not study.retry_failed_exceptions
    if storage_url != "memory":
        assert tf.load_study("r", storage=storage_url).max_retries == 2
        again = tf.load_study("r", storage=storage_url, max_retries=0)
        assert again.max_retries == 0
    study.max_retries = None  # back to the record
    assert study.max_retries == 2
    with pytest.raises(TuningforkError, match="max_retries"):
        tf.create_study("bad", storage=storage_url, max_retries=-1)


def test_stale_trial_gets_exactly_one_linked_retry(tmp_path):
    url = f"sqlite:///{tmp_path / 'retry.db'}"
    dead, number = _orphan(url, max_retries=1)
    x = dead.trials[number].params["x"]
    first, second = tf.load_study("s", storage=url), tf.load_study("s", storage=url)
    _reap(first)
    _reap(second)  # a second reaper, or a replay of the same decision, adds nothing
    queue_retries(first, [number])
    second.get_trials()  # read the log
    queue_retries(second, [number])
    trials = tf.load_study("s", storage=url).trials
    assert len(trials) == 2
    failed, retry = trials
    assert failed.state is TrialState.FAIL and failed.reason.startswith("stale")
    assert failed.system_attrs["retried_by"] == retry.number
    assert retry.state is TrialState.WAITING and retry.params == {"x": x}
    assert retry.system_attrs["retry_of"] == number
    assert retry.system_attrs["retry_count"] == 1
    assert retry.system_attrs["checkpoint_of"] == number

    # the retry runs next, with the same parameters and the link on the handle
    runner = tf.load_study("s", storage=url)
    seen = []

    def objective(trial):
        seen.append((trial.number, trial.retry_of, trial.checkpoint_of, trial.resumed))
        seen.append(trial.checkpoint_dir.name)  # the failed trial's directory
        return trial.suggest_float("x", 0, 1)

    runner.optimize(objective, n_trials=1)
    assert seen == [(retry.number, number, number, False), f"trial_{number}"]
    assert runner.trials[retry.number].state is TrialState.COMPLETE
    assert runner.trials[retry.number].value == x


def test_retries_stop_at_max_retries(tmp_path):
    url = f"sqlite:///{tmp_path / 'chain.db'}"
    dead, number = _orphan(url, max_retries=1)
    alive = tf.load_study("s", storage=url)
    _reap(alive)
    # the retry, too, is abandoned by a dying worker
    dead.get_trials()  # read the log
    retry = dead.ask()
    assert retry.retry_of == number
    retry.report(0.5, 0)
    _reap(alive)
    trials = alive.trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    assert "retried_by" not in trials[1].system_attrs  # retried once already


def test_failed_objectives_are_retried_only_when_asked(storage_url):
    calls = []

    def flaky(trial):
        x = trial.suggest_float("x", 0, 1)
        calls.append(trial.retry_of)
        if len(calls) == 1:
            raise ValueError("transient")
        return x

    plain = tf.create_study("plain", storage=storage_url, max_retries=1)
    with pytest.warns(UserWarning, match="transient"):
        plain.optimize(flaky, n_trials=2, catch=(ValueError,))
    assert [t.state for t in plain.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert "retry_of" not in plain.trials[1].system_attrs  # a new configuration

    calls.clear()
    eager = tf.create_study(
        "eager", storage=storage_url, max_retries=1, retry_failed_exceptions=True
    )
    with pytest.warns(UserWarning, match="transient"):
        eager.optimize(flaky, n_trials=2, catch=(ValueError,))
    failed, retry = eager.trials
    assert calls == [None, 0]
    assert retry.state is TrialState.COMPLETE and retry.params == failed.params
    assert failed.system_attrs["retried_by"] == 1

    # Ctrl-C is the user's decision, not a fault: never retried
    trial = eager.ask()
    eager.tell(trial, state="FAIL", reason="interrupted (KeyboardInterrupt)")
    assert "retried_by" not in eager.trials[trial.number].system_attrs


def _preempting_objective(sent: list[int], signum: int = signal.SIGTERM):
    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        start = trial.last_step + 1 if trial.resumed else 0
        for step in range(start, 6):
            trial.report(x + step, step)
            if step == 2 and not sent:
                sent.append(step)
                os.kill(os.getpid(), signum)
            if trial.should_stop():
                assert trial.preempted and trial.paused
                raise tf.TrialPruned()
        return x

    return objective


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_pauses_the_trial_and_the_next_ask_resumes_it(storage_url, signum):
    before = signal.getsignal(signum)
    study = tf.create_study("p", storage=storage_url)
    sent: list[int] = []
    names = ("SIGTERM", "SIGUSR1") if signum == signal.SIGUSR1 else ("SIGTERM",)
    study.optimize(_preempting_objective(sent, signum), n_trials=5, preempt_signals=names)
    assert signal.getsignal(signum) is before  # restored
    assert study.preempted_by == signum
    (trial,) = study.trials  # no new trial started after the signal
    assert trial.state is TrialState.PAUSED and trial.reason == "preempted"
    assert trial.system_attrs["preempted"] is True
    assert sorted(trial.intermediate_values) == [0, 1, 2]

    other = tf.load_study("p", storage=storage_url) if storage_url != "memory" else study
    other.optimize(_preempting_objective(sent), n_trials=2)
    assert other.preempted_by is None
    first, second = other.trials
    assert first.state is TrialState.COMPLETE and first.reason is None
    assert first.system_attrs["preempted"] is False
    assert sorted(first.intermediate_values) == list(range(6))
    assert second.number == 1 and second.state is TrialState.COMPLETE


def test_a_trial_that_ignores_the_signal_completes():
    study = tf.create_study(storage="memory")

    def stubborn(trial):
        os.kill(os.getpid(), signal.SIGTERM)
        return trial.suggest_float("x", 0, 1)

    study.optimize(stubborn, n_trials=3)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]
    assert study.preempted_by == signal.SIGTERM


def test_preempted_trials_are_not_pruned_by_a_scheduler():
    study = tf.create_study(storage="memory")
    trial = study.ask()
    trial.preempted = True
    trial.pause("preempted")
    study.tell(trial, state="PRUNED")
    _prune_paused(study, [trial.number])
    assert study.trials[0].state is TrialState.PAUSED


def test_a_signal_at_a_rung_pauses_the_trial_at_the_rung_not_as_preempted():
    """A trial that reaches its rung's budget just as the signal comes is paused by the
    scheduler as usual, so the next ask resumes it at the next budget, not the same one."""
    study = tf.create_study(
        storage="memory", scheduler=tf.ASHA(min_budget=1, max_budget=9, eta=3, mode="promotion")
    )
    budgets: list[float | None] = []

    def objective(trial: tf.Trial) -> float:
        budgets.append(trial.budget)
        start = trial.last_step + 1 if trial.resumed else 1
        for step in range(start, int(trial.budget) + 1):
            trial.report(float(step), step)
            if len(budgets) == 1 and step == 1:  # the signal, at the rung's budget
                os.kill(os.getpid(), signal.SIGTERM)
            if trial.should_stop():
                raise tf.TrialPruned()
        return float(step)

    study.optimize(objective, n_trials=5)
    assert study.preempted_by == signal.SIGTERM
    (trial,) = study.trials
    assert trial.state is TrialState.PAUSED and trial.reason != "preempted"
    assert not trial.system_attrs.get("preempted")
    assert budgets == [1]
