"""Studies to plot, built with real ask-and-tell (module-scoped: plots only read them)."""

from __future__ import annotations

import time
import warnings

import pytest

import tuningfork as tf
from tuningfork.trial import TrialState

matplotlib = pytest.importorskip("matplotlib")
pytest.importorskip("plotly")


def make_study(
    name: str = "demo", direction: str = "minimize", storage: str = "memory"
) -> tf.Study:
    return tf.create_study(
        name=name, storage=storage, direction=direction, sampler=tf.RandomSampler(seed=0), seed=0
    )


def fill_study(study: tf.Study, n: int = 24) -> tf.Study:
    """Trials with a log float ``lr``, an int ``units``, a categorical ``opt`` and a
    conditional ``beta`` (only when opt == "adam"); 5 reports each; every 7th trial fails
    and every 5th is pruned after 2 reports; one trial is left RUNNING."""
    for i in range(n):
        trial = study.ask()
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        units = trial.suggest_int("units", 8, 64)
        opt = trial.suggest_categorical("opt", ["sgd", "adam", "rmsprop"])
        beta = trial.suggest_float("beta", 0.8, 0.99) if opt == "adam" else 0.0
        value = (lr * 100 - 1) ** 2 + units / 64 + beta + {"sgd": 0.5, "adam": 0, "rmsprop": 1}[opt]
        if i % 7 == 3:
            study.tell(trial, state="FAIL", reason="boom")
            continue
        steps = 2 if i % 5 == 4 else 5
        for step in range(steps):
            trial.report(value + 1.0 / (step + 1), step)
        if i % 5 == 4:
            study.tell(trial, state="PRUNED")
        else:
            study.tell(trial, value)
    running = study.ask()
    running.suggest_float("lr", 1e-4, 1e-1, log=True)
    running.report(3.0, 0)
    return study


@pytest.fixture(scope="module")
def study() -> tf.Study:
    return fill_study(make_study())


@pytest.fixture(scope="module")
def max_study() -> tf.Study:
    s = make_study("maxi", direction="maximize")
    for v in [1.0, 3.0, 2.0, 5.0, 4.0]:
        t = s.ask()
        t.suggest_float("x", 0.0, 1.0)
        t.suggest_float("y", 0.0, 1.0)
        s.tell(t, v)
    return s


@pytest.fixture(scope="module")
def empty_study() -> tf.Study:
    return make_study("empty")


@pytest.fixture(scope="module")
def one_trial_study() -> tf.Study:
    s = make_study("single")
    t = s.ask()
    t.suggest_float("x", 0.0, 1.0)
    t.report(1.0, 0)
    s.tell(t, 1.0)
    return s


@pytest.fixture(scope="module")
def mo_study() -> tf.Study:
    """Two objectives (minimise, minimise) with a known front."""
    s = tf.create_study(
        name="mo", storage="memory", directions=["minimize", "minimize"],
        sampler=tf.RandomSampler(seed=0),
    )  # fmt: skip
    points = [(1, 5), (2, 3), (3, 4), (4, 1), (5, 5), (2.5, 2.5)]
    for p in points:
        t = s.ask()
        t.suggest_float("x", 0.0, 1.0)
        s.tell(t, values=list(p))
    t = s.ask()
    s.tell(t, state="FAIL")
    return s


@pytest.fixture(scope="module")
def mo3_study() -> tf.Study:
    s = tf.create_study(
        name="mo3", storage="memory", directions=["minimize", "maximize", "minimize"],
        sampler=tf.RandomSampler(seed=0),
    )  # fmt: skip
    for p in [(1, 1, 1), (2, 2, 2), (0, 0, 3), (3, 0, 3)]:
        t = s.ask()
        t.suggest_float("x", 0.0, 1.0)
        s.tell(t, values=list(p))
    return s


@pytest.fixture(scope="module")
def asha_study() -> tf.Study:
    """ASHA (stopping mode, budgets 1, 3, 9): trials stop at different rungs."""
    s = tf.create_study(
        name="asha", storage="memory", sampler=tf.RandomSampler(seed=0),
        scheduler=tf.ASHA(1, 9, 3, mode="stopping"), seed=0,
    )  # fmt: skip

    def objective(trial: tf.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(1, 10):
            trial.report(x + 1.0 / step, step)
            if trial.should_stop():
                raise tf.TrialPruned()
        return x

    s.optimize(objective, n_trials=30)
    return s


@pytest.fixture(scope="module")
def threaded_study() -> tf.Study:
    """8 trials of ~30 ms on 2 threads (one worker id: one process)."""
    s = make_study("threads")

    def objective(trial: tf.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        time.sleep(0.03)
        if trial.number == 2:
            raise ValueError("boom")
        return x

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s.optimize(objective, n_trials=8, n_jobs=2, catch=(ValueError,))
    return s


def states(study: tf.Study) -> dict[TrialState, int]:
    counts: dict[TrialState, int] = {}
    for t in study.trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    return counts
