"""The scheduler contract (tuningfork.testing.SchedulerContract) applied to every built-in
scheduler, in each of its modes."""

from __future__ import annotations

import tuningfork as tf
from tuningfork.testing import SchedulerContract


class TestMedianStopping(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.MedianStopping(n_startup_trials=3)


class TestASHAStopping(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.ASHA(1, 27, 3, mode="stopping")


class TestASHAPromotion(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.ASHA(1, 27, 3, mode="promotion")


class TestSHAStopping(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.SHA(1, 27, 3, mode="stopping", n_trials=9)


class TestSHAPromotion(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.SHA(1, 27, 3, mode="promotion", n_trials=9)


class TestHyperbandPromotion(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.Hyperband(1, 27, 3)


class TestHyperbandStopping(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.Hyperband(1, 27, 3, mode="stopping")


class TestAsyncHyperband(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.Hyperband(1, 27, 3, mode="promotion", asynchronous=True, seed=seed)


class TestBOHB(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.BOHB(1, 27, 3, seed=seed)


class TestPercentileStopping(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.PercentileStopping(25.0, n_startup_trials=3)


class TestThresholdStopping(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.ThresholdStopping(upper=0.6, n_warmup_steps=2)


class TestTimeStopping(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.TimeStopping(max_seconds=600.0)


class TestRankStopping(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.RankStopping(0.5, step=3, n_startup_trials=3)


class TestPatienceStopping(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.PatienceStopping(3)


class TestAnyOf(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.AnyOf(tf.ThresholdStopping(upper=1.0), tf.RankStopping(0.5, step=9))


def test_load_study_recreates_the_recorded_scheduler() -> None:
    from tuningfork.storage import InMemoryStorage

    storage = InMemoryStorage()
    made = [
        tf.ASHA(1, 27, 3, mode="promotion"),
        tf.Hyperband(1, 27, 3, asynchronous=True, seed=4),
        tf.BOHB(1, 27, 3, seed=2),
        tf.DEHB(1, 27, 3, seed=1),
        tf.AnyOf(tf.MedianStopping(n_startup_trials=2), tf.PatienceStopping(3)),
    ]
    for i, scheduler in enumerate(made):
        tf.create_study(f"s{i}", storage=storage, scheduler=scheduler)
        again = tf.load_study(f"s{i}", storage=storage).scheduler
        assert type(again) is type(scheduler)
        assert again.describe() == scheduler.describe()
    assert isinstance(tf.load_study("s0", storage=storage, scheduler=tf.NoScheduler()).scheduler,
                      tf.NoScheduler)  # fmt: skip
