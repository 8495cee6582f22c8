"""AutoSampler: the documented rule picks GP or TPE, and the study record says which."""

from __future__ import annotations

import pytest

import tuningfork as tf
from tuningfork.samplers.gp import GPSampler
from tuningfork.samplers.tpe import TPESampler
from tuningfork.testing import SamplerContract


class TestAutoContract(SamplerContract):
    def make_sampler(self, seed: int, space: tf.Space) -> tf.Sampler:
        return tf.AutoSampler(seed=seed)


def finished_study(space: tf.Space, n: int, **kwargs) -> tf.Study:
    study = tf.create_study(storage="memory", sampler=tf.RandomSampler(seed=0), **kwargs)
    for _ in range(n):
        trial = study.ask(space)
        values = [float(len(trial.params))] * len(study.directions)
        study.tell(trial, values=values)
    return study


NUMERIC = tf.Space(x=tf.Float(0, 1), y=tf.Float(1e-3, 1, log=True), n=tf.Int(1, 9))


@pytest.mark.parametrize(
    "space, kwargs, expected, reason",
    [
        (NUMERIC, {}, GPSampler, "small numeric"),
        (
            tf.Space(a=tf.Categorical(["p", "q"]), b=tf.Categorical([1, 2]), x=tf.Float(0, 1)),
            {},
            TPESampler,
            "2 of 3 parameters categorical",
        ),
        (
            tf.Space(kind=tf.Categorical(["a", "b"]), x=tf.Float(0, 1, when={"kind": "a"})),
            {},
            TPESampler,
            "conditional",
        ),
        (
            tf.Space({f"x{i}": tf.Float(0, 1) for i in range(17)}),
            {},
            TPESampler,
            "17 parameters",
        ),
        (NUMERIC, {"directions": ["minimize", "maximize"]}, TPESampler, "multi-objective"),
    ],
)
def test_the_rule(space, kwargs, expected, reason):
    auto = tf.AutoSampler(seed=0)
    study = finished_study(space, 12, **kwargs)
    sampler, why = auto.choose(study.reader)  # from the finished trials (define-by-run)
    assert isinstance(sampler, expected) and reason in why
    sampler, why = auto.choose(study.reader, space)  # from a declared space
    assert isinstance(sampler, expected) and reason in why


def test_long_studies_move_to_tpe():
    auto = tf.AutoSampler(seed=0, gp_max_trials=15)
    study = finished_study(NUMERIC, 14)
    assert isinstance(auto.choose(study.reader)[0], GPSampler)
    study = finished_study(NUMERIC, 15)
    sampler, why = auto.choose(study.reader)
    assert isinstance(sampler, TPESampler) and "15 finished trials" in why


def test_the_study_record_says_what_was_chosen_and_why():
    study = tf.create_study(storage="memory", seed=1)  # the default sampler
    assert isinstance(study.sampler, tf.AutoSampler)
    space = tf.Space(kind=tf.Categorical(["a", "b"]), x=tf.Float(0, 1, when={"kind": "a"}))
    study.optimize(lambda t: t.params.get("x", 0.5), n_trials=3, space=space)
    record = study.system_attrs["auto_sampler"]
    assert record == {"chosen": "TPESampler", "reason": "conditional parameters", "from_trial": 0}
    reloaded = tf.load_study(study.name, storage=study.storage).sampler
    assert isinstance(reloaded, tf.AutoSampler) and reloaded.seed == 1


def test_default_sampler_beats_random_on_branin():
    from statistics import median

    from tuningfork.testing.functions import PROBLEMS

    problem = PROBLEMS["branin"]

    def best(sampler):
        study = tf.create_study(storage="memory", sampler=sampler)
        study.optimize(problem.objective, n_trials=30)
        return problem.regret(study.best_value)

    auto = median(best(tf.AutoSampler(seed=s)) for s in range(3))
    random = median(best(tf.RandomSampler(seed=s)) for s in range(3))
    assert auto < random / 2
