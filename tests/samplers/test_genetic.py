"""GASampler and NSGAIISampler: the operators, the ranking, quality against random search
on a sphere and on ZDT1, constraints, and proposals that follow from the log alone."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

import tuningfork as tf
from tuningfork.exceptions import OptionError, SamplerError
from tuningfork.samplers.genetic import (
    constrained_domination,
    fronts,
    polynomial_mutation,
    sbx,
)
from tuningfork.testing import SamplerContract
from tuningfork.trial import FrozenTrial, TrialState

UNIT5 = tf.Space(**{f"x{i}": tf.Float(0.0, 1.0) for i in range(5)})
SPHERE5 = tf.Space(**{f"x{i}": tf.Float(-5.0, 5.0) for i in range(5)})


class TestGAContract(SamplerContract):
    # a small population, so that most of the contract's trials are children
    def make_sampler(self, seed: int, space: tf.Space) -> tf.Sampler:
        return tf.GASampler(population_size=6, seed=seed)


class TestNSGAIIContract(SamplerContract):
    # single objective (the contract's studies); several objectives are tested below
    def make_sampler(self, seed: int, space: tf.Space) -> tf.Sampler:
        return tf.NSGAIISampler(population_size=6, seed=seed)


# -- helpers --------------------------------------------------------------------------------


def sphere(trial: tf.Trial) -> float:
    return sum(float(trial.params[f"x{i}"]) ** 2 for i in range(5))  # type: ignore[arg-type]


def zdt1(trial: tf.Trial) -> tuple[float, float]:
    """ZDT1 (Zitzler, Deb & Thiele, 2000) in 5-D: the front is f2 = 1 - sqrt(f1)."""
    x = [float(trial.params[f"x{i}"]) for i in range(5)]  # type: ignore[arg-type]
    g = 1.0 + 9.0 * sum(x[1:]) / 4.0
    return x[0], g * (1.0 - (x[0] / g) ** 0.5)


def hypervolume(points: Sequence[Sequence[float]], reference: tuple[float, float]) -> float:
    """The area that the points dominate below ``reference`` (two objectives, minimised)."""
    inside = sorted(tuple(p) for p in points if p[0] < reference[0] and p[1] < reference[1])
    area, floor = 0.0, reference[1]
    for f1, f2 in inside:  # by f1: each point that lowers f2 adds a rectangle
        if f2 < floor:
            area += (reference[0] - f1) * (floor - f2)
            floor = f2
    return area


def run(
    sampler: tf.Sampler,
    objective: Callable[[tf.Trial], object],
    space: tf.Space,
    n_trials: int,
    directions: Sequence[str] = ("minimize",),
) -> tf.Study:
    study = tf.create_study(storage="memory", sampler=sampler, directions=list(directions))
    study.optimize(objective, n_trials=n_trials, space=space, show_progress_bar=False)  # type: ignore[arg-type]
    return study


def trial(number: int, values: Sequence[float]) -> FrozenTrial:
    return FrozenTrial(number=number, state=TrialState.COMPLETE, values=tuple(values))


# -- the operators --------------------------------------------------------------------------


def test_sbx_children_stay_in_bounds_and_near_their_parents() -> None:
    rng = np.random.default_rng(0)
    for _ in range(2000):
        x1, x2, u = rng.random(3)
        c1, c2 = sbx(x1, x2, u, 15.0)
        assert 0.0 <= c1 <= 1.0 and 0.0 <= c2 <= 1.0
        assert c1 <= c2
    # u = 0.5 is the median spread factor 1: the children are the parents
    assert sbx(0.3, 0.6, 0.5, 15.0) == pytest.approx((0.3, 0.6))
    # a larger distribution index keeps children closer to the parents
    gaps = {eta: abs(sbx(0.4, 0.6, 0.95, eta)[0] - 0.4) for eta in (2.0, 15.0, 100.0)}
    assert gaps[2.0] > gaps[15.0] > gaps[100.0] > 0.0
    assert sbx(0.5, 0.5, 0.9, 15.0) == (0.5, 0.5)


def test_polynomial_mutation_stays_in_bounds_and_is_centred() -> None:
    rng = np.random.default_rng(1)
    for x in (0.0, 0.01, 0.5, 0.99, 1.0):
        moved = [polynomial_mutation(x, u, 20.0) for u in rng.random(2000)]
        assert all(0.0 <= m <= 1.0 for m in moved)
    steps = [polynomial_mutation(0.5, u, 20.0) - 0.5 for u in rng.random(4000)]
    assert abs(statistics.mean(steps)) < 0.005
    assert 0.0 < statistics.median(abs(s) for s in steps) < 0.05  # eta 20: small steps
    assert polynomial_mutation(0.5, 0.5, 20.0) == 0.5


# -- the ranking ----------------------------------------------------------------------------


def test_fast_non_dominated_sorting() -> None:
    losses = np.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [4.0, 4.0], [2.0, 2.0]])
    dominates = constrained_domination(losses, np.zeros(len(losses)))
    assert fronts(dominates).tolist() == [0, 0, 0, 1, 2, 0]


def test_constrained_domination() -> None:
    losses = np.array([[5.0, 5.0], [0.0, 0.0], [1.0, 1.0], [9.0, 9.0]])
    violations = np.array([0.0, 2.0, 1.0, 0.0])
    dominates = constrained_domination(losses, violations)
    assert dominates[0, 1] and dominates[0, 2]  # feasible beats infeasible, whatever the losses
    assert dominates[2, 1] and not dominates[1, 2]  # the smaller violation wins
    assert dominates[0, 3] and not dominates[3, 0]
    assert fronts(dominates).tolist() == [0, 3, 2, 1]


def test_nsga2_population_is_ranked_by_front_then_crowding() -> None:
    sampler = tf.NSGAIISampler(population_size=4, seed=0)
    study = tf.create_study(storage="memory", directions=["minimize", "maximize"])
    # maximising the second objective: (1, 4), (2, 5), (3, 6) form the front, (3, 4) and
    # (2, 3) come after
    complete = [trial(0, (3, 4)), trial(1, (1, 4)), trial(2, (2, 5)), trial(3, (3, 6))]
    complete.append(trial(4, (2, 3)))
    ranked = sampler._rank(study.reader, None, complete)  # type: ignore[arg-type]
    # the two ends of the front (infinite crowding) come first, by number, then the middle
    assert [t.number for t in ranked] == [1, 3, 2, 0, 4]


def test_ga_population_is_the_best_trials() -> None:
    sampler = tf.GASampler(population_size=3, seed=0)
    study = tf.create_study(storage="memory", direction="maximize")
    complete = [trial(0, (1.0,)), trial(1, (float("nan"),)), trial(2, (3.0,)), trial(3, (2.0,))]
    ranked = sampler._rank(study.reader, None, complete)  # type: ignore[arg-type]
    assert [t.number for t in ranked] == [2, 3, 0, 1]


# -- quality --------------------------------------------------------------------------------


def test_ga_beats_random_search_on_a_sphere() -> None:
    ga, rand = [], []
    for seed in range(5):
        ga.append(run(tf.GASampler(seed=seed), sphere, SPHERE5, 300).best_value)
        rand.append(run(tf.RandomSampler(seed=seed), sphere, SPHERE5, 300).best_value)
    # with 300 trials random search ends near 4; the GA well below 1
    assert statistics.median(ga) < 0.25 * statistics.median(rand), (ga, rand)


def test_maximising_is_minimising_the_negation() -> None:
    def negated(trial: tf.Trial) -> float:
        return -sphere(trial)

    low = run(tf.GASampler(population_size=10, seed=3), sphere, SPHERE5, 40)
    high = run(tf.GASampler(population_size=10, seed=3), negated, SPHERE5, 40, ["maximize"])
    assert [t.params for t in low.trials] == [t.params for t in high.trials]

    def zdt1_negated(trial: tf.Trial) -> tuple[float, float]:
        f1, f2 = zdt1(trial)
        return f1, -f2

    both = ("minimize", "minimize")
    mixed = ("minimize", "maximize")
    low = run(tf.NSGAIISampler(population_size=10, seed=3), zdt1, UNIT5, 40, both)
    high = run(tf.NSGAIISampler(population_size=10, seed=3), zdt1_negated, UNIT5, 40, mixed)
    assert [t.params for t in low.trials] == [t.params for t in high.trials]


def test_nsga2_beats_random_search_on_zdt1() -> None:
    both = ("minimize", "minimize")
    found, rand = [], []
    for seed in range(5):
        for sampler, volumes in (
            (tf.NSGAIISampler(population_size=20, seed=seed), found),
            (tf.RandomSampler(seed=seed), rand),
        ):
            study = run(sampler, zdt1, UNIT5, 250, both)
            front = [t.values for t in study.best_trials]
            volumes.append(hypervolume(front, (1.1, 1.1)))  # type: ignore[arg-type]
    # the true front's hypervolume is about 0.87; with 250 trials NSGA-II's median is
    # about 0.39 and random search's about 0.01 (ZDT1's g makes random points poor)
    assert statistics.median(found) > 5 * statistics.median(rand), (found, rand)
    assert statistics.median(found) > 0.2


def test_constraints_keep_late_trials_feasible() -> None:
    """x1 >= 0.5 (half the space) against ZDT1's pull towards x1 = 0."""

    def objective(trial: tf.Trial) -> tuple[float, float]:
        trial.set_user_attr("c", 0.5 - float(trial.params["x1"]))  # type: ignore[arg-type]
        return zdt1(trial)

    def constraints(trial: FrozenTrial) -> list[float]:
        return [trial.user_attrs["c"]]

    def late_feasible(sampler: tf.Sampler) -> float:
        study = run(sampler, objective, UNIT5, 120, ("minimize", "minimize"))
        late = study.trials[60:]
        return sum(t.user_attrs["c"] <= 0 for t in late) / len(late)

    for seed in range(2):
        kept = late_feasible(
            tf.NSGAIISampler(population_size=20, constraints_func=constraints, seed=seed)
        )
        free = late_feasible(tf.NSGAIISampler(population_size=20, seed=seed))
        rand = late_feasible(tf.RandomSampler(seed=seed))
        assert kept > 0.8 and kept > rand and kept > free, (kept, rand, free)


# -- proposals follow from the log ----------------------------------------------------------


@pytest.mark.parametrize("make", [tf.GASampler, tf.NSGAIISampler])
def test_a_fresh_sampler_proposes_the_same_child(make: Callable[..., tf.Sampler]) -> None:
    directions = ("minimize", "minimize") if make is tf.NSGAIISampler else ("minimize",)
    objective = zdt1 if make is tf.NSGAIISampler else sphere
    space = UNIT5 if make is tf.NSGAIISampler else SPHERE5
    study = run(make(population_size=8, seed=4), objective, space, 30, directions)
    fresh = make(population_size=8, seed=4)
    again = make(population_size=8, seed=4)
    children = []
    for number in (30, 31, 32):
        pending = FrozenTrial(number=number, state=TrialState.RUNNING)
        child = fresh.sample_space(study.reader, pending, space)
        assert child == again.sample_space(study.reader, pending, space)
        children.append(child)
    # concurrent trials get different children
    assert children[0] != children[1] != children[2]


def test_nsga2_resumes_after_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'resume.db'}"
    both = ["minimize", "minimize"]

    def make() -> tf.Sampler:
        return tf.NSGAIISampler(population_size=6, seed=2)

    whole = tf.create_study("whole", storage=url, sampler=make(), directions=both)
    whole.optimize(zdt1, n_trials=20, space=UNIT5, show_progress_bar=False)
    part = tf.create_study("part", storage=url, sampler=make(), directions=both)
    part.optimize(zdt1, n_trials=9, space=UNIT5, show_progress_bar=False)
    del part
    resumed = tf.load_study("part", storage=url, sampler=make())
    resumed.optimize(zdt1, n_trials=11, space=UNIT5, show_progress_bar=False)
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]


# -- options and records --------------------------------------------------------------------


def my_constraints(trial: FrozenTrial) -> list[float]:
    return [0.0]


def test_constraints_func_is_recorded_by_name_only() -> None:
    sampler = tf.NSGAIISampler(constraints_func=my_constraints, seed=1)
    record = json.loads(json.dumps(sampler.describe()))
    assert record["constraints_func"].endswith("my_constraints")
    with pytest.warns(UserWarning, match="my_constraints"):
        again = tf.NSGAIISampler.from_record(record)
    assert again.constraints_func is None and again.seed == 1
    # a study that ran with constraints, loaded without a sampler, says they are off
    study = tf.create_study("c", storage="memory", sampler=sampler, directions=["minimize"] * 2)
    with pytest.warns(UserWarning, match="recorded by name only"):
        loaded = tf.load_study("c", storage=study.storage)
    assert isinstance(loaded.sampler, tf.NSGAIISampler)
    assert tf.GASampler.from_record(tf.GASampler(eta_c=3.0, seed=2).describe()).eta_c == 3.0


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"population_size": 1}, "population_size"),
        ({"crossover_prob": 1.5}, "crossover_prob"),
        ({"mutation_prob": -0.1}, "mutation_prob"),
        ({"eta_c": -1.0}, "eta_c"),
        ({"eta_m": float("inf")}, "eta_m"),
        ({"constraints_func": "not a function"}, "constraints_func"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], option: str) -> None:
    with pytest.raises(OptionError) as raised:
        tf.NSGAIISampler(**options)  # type: ignore[arg-type]
    assert raised.value.option == option


def test_ga_refuses_several_objectives() -> None:
    sampler = tf.GASampler(population_size=2, seed=0)
    study = tf.create_study(storage="memory", sampler=sampler, directions=["minimize"] * 2)
    with pytest.raises(SamplerError, match="NSGAIISampler"):
        study.optimize(zdt1, n_trials=3, space=UNIT5, show_progress_bar=False)


def test_a_parameter_no_parent_holds_is_drawn_at_random() -> None:
    """Parents that suggested nothing (a branch without parameters) still give a child."""

    def objective(trial: tf.Trial) -> float:
        if trial.number < 4:
            return 1.0
        return float(trial.suggest_float("late", 0.0, 1.0))

    study = tf.create_study(storage="memory", sampler=tf.GASampler(population_size=3, seed=0))
    study.optimize(objective, n_trials=8, show_progress_bar=False)
    late = [t.params["late"] for t in study.trials[4:]]
    assert all(0.0 <= x <= 1.0 for x in late) and len(set(late)) == 4  # type: ignore[operator]
