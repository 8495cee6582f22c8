"""AutoSampler: the documented rule picks GP, CMA-ES or TPE, and the study record says which."""

from __future__ import annotations

import pytest

import tuningfork as tf
from tuningfork.samplers.cmaes import CmaEsSampler
from tuningfork.samplers.genetic import NSGAIISampler
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
        (NUMERIC, {}, GPSampler, "small space"),
        (  # measured: the GP beats TPE on all-categorical spaces too (docs/samplers.md)
            tf.Space(a=tf.Categorical(["p", "q"]), b=tf.Categorical([1, 2]), x=tf.Float(0, 1)),
            {},
            GPSampler,
            "small space",
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
        (NUMERIC, {"directions": ["minimize", "maximize"]}, TPESampler, "2 objectives: TPE"),
        (NUMERIC, {"directions": ["minimize"] * 3}, TPESampler, "3 objectives: TPE"),
    ],
)
def test_the_rule(space, kwargs, expected, reason):
    auto = tf.AutoSampler(seed=0)
    study = finished_study(space, 12, **kwargs)
    sampler, why = auto.choose(study.reader)  # from the finished trials (define-by-run)
    assert isinstance(sampler, expected) and reason in why
    sampler, why = auto.choose(study.reader, space)  # from a declared space
    assert isinstance(sampler, expected) and reason in why


def test_long_studies_move_to_cmaes_or_tpe():
    auto = tf.AutoSampler(seed=0, gp_max_trials=15)
    study = finished_study(NUMERIC, 14)
    assert isinstance(auto.choose(study.reader)[0], GPSampler)
    study = finished_study(NUMERIC, 15)
    sampler, why = auto.choose(study.reader)
    assert isinstance(sampler, CmaEsSampler) and "CMA-ES warm-started" in why
    assert sampler.start_at_trial == 15
    one_number = tf.Space(x=tf.Float(0, 1), kind=tf.Categorical(["a", "b"]))
    sampler, why = auto.choose(finished_study(one_number, 15).reader)
    assert isinstance(sampler, TPESampler) and "1 numeric parameter" in why


def test_two_objective_studies_move_to_nsga2():
    auto = tf.AutoSampler(seed=0, gp_max_trials=15)
    study = finished_study(NUMERIC, 14, directions=["minimize", "minimize"])
    assert isinstance(auto.choose(study.reader)[0], TPESampler)
    study = finished_study(NUMERIC, 15, directions=["minimize", "minimize"])
    sampler, why = auto.choose(study.reader)
    assert isinstance(sampler, NSGAIISampler) and "from trial 15: NSGA-II" in why


def test_without_cmaes_long_studies_move_to_tpe():
    auto = tf.AutoSampler(seed=0, gp_max_trials=15)
    auto.cmaes = None  # as when the cmaes package is missing
    sampler, why = auto.choose(finished_study(NUMERIC, 15).reader)
    assert isinstance(sampler, TPESampler) and "tuningfork[cmaes]" in why


def test_cmaes_waits_for_the_gp_trials_still_running():
    auto = tf.AutoSampler(seed=0, gp_max_trials=15)
    study = finished_study(NUMERIC, 14)
    running = study.ask(NUMERIC)  # trial 14 runs on
    sampler, why = auto.choose(study.reader)  # trial 15
    assert isinstance(sampler, GPSampler) and "until the trials before 15 finish" in why
    study.tell(running, 1.0)
    assert isinstance(auto.choose(study.reader)[0], CmaEsSampler)


def test_cmaes_continues_from_the_best_gp_trials():
    """After the switch, CMA-ES proposes around the region where the earlier trials were
    best (WS-CMA-ES), not from the centre of the box."""
    space = tf.Space(x=tf.Float(0, 1), y=tf.Float(0, 1))

    def objective(trial: tf.Trial) -> float:
        return (trial.params["x"] - 0.9) ** 2 + (trial.params["y"] - 0.1) ** 2

    study = tf.create_study(storage="memory", sampler=tf.AutoSampler(seed=3, gp_max_trials=30))
    study.optimize(objective, n_trials=45, space=space, show_progress_bar=False)
    assert study.system_attrs["auto_sampler"]["chosen"] == "CmaEsSampler"
    assert study.system_attrs["auto_sampler"]["from_trial"] == 30
    later = [t for t in study.trials if t.number >= 30]
    near = [abs(t.params["x"] - 0.9) < 0.2 and abs(t.params["y"] - 0.1) < 0.2 for t in later]
    assert sum(near) >= 0.8 * len(later)  # a box of 4% of the area


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
