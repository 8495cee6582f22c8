"""A sampler with an incremental model and a promoting scheduler, written in tests/plugins.py
against the public API only, pass the same contracts as the built-ins."""

from __future__ import annotations

from plugins import LocalSearchSampler, TwoRungHalving

import tuningfork as tf
from tuningfork.testing import SamplerContract, SchedulerContract


class TestLocalSearchSampler(SamplerContract):
    def make_sampler(self, seed: int, space: tf.Space) -> tf.Sampler:
        return LocalSearchSampler(seed=seed)


class TestTwoRungHalving(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return TwoRungHalving(3, 27, 3)


def test_the_sampler_model_is_incremental():
    sampler = LocalSearchSampler(seed=0)
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.3) ** 2, n_trials=60)
    # each trial changes a few times (created, params, finished): each is read a few
    # times, never the whole study at every proposal (which would be ~60 * 60 / 2)
    assert sampler.scanned <= 4 * 60
    assert study.best_value < 0.01


def test_the_scheduler_promotes_the_best_and_trains_it_to_the_top():
    study = tf.create_study(
        storage="memory", sampler=tf.RandomSampler(seed=1), scheduler=TwoRungHalving(3, 27, 3)
    )

    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        for step in range((trial.last_step or 0) + 1, 28):
            trial.report(x + 1.0 / step, step)
            if trial.should_stop():
                raise tf.TrialPruned()
        return x

    study.optimize(objective, n_trials=40, max_trials=30)
    complete = study.get_trials(["COMPLETE"])
    assert complete and all(max(t.intermediate_values) == 27 for t in complete)
    paused = study.get_trials(["PAUSED"])
    best_paused = min(t.params["x"] for t in paused) if paused else 1.0
    assert min(t.params["x"] for t in complete) <= best_paused
