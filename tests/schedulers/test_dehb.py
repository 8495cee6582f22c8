"""DEHB (Awad et al., 2021): Hyperband's first iteration, DE parents from the lower budget,
selection, fresh trials at their budgets, claims between threads, and quality."""

from __future__ import annotations

import itertools
import statistics
import threading
from collections import Counter

import numpy as np
import pytest

import tuningfork as tf
from tuningfork.exceptions import SchedulerError
from tuningfork.samplers.random import RandomSampler
from tuningfork.schedulers._rungs import hyperband_brackets, value_at
from tuningfork.schedulers.dehb import DEHB
from tuningfork.schedulers.hyperband import Hyperband
from tuningfork.space import Categorical, Float, Int, Space
from tuningfork.storage.memory import InMemoryStorage
from tuningfork.testing import SchedulerContract
from tuningfork.testing.schedulers import curve_objective
from tuningfork.trial import FrozenTrial, TrialState

SPACE = Space({f"x{i}": Float(0.0, 1.0) for i in range(4)})


def toy(params: dict, step: int) -> float:
    """A multi-fidelity toy: the final quality plus a term that shrinks with the budget."""
    return sum((params[f"x{i}"] - 0.3) ** 2 for i in range(4)) + 0.2 / step


def new_study(scheduler: tf.Scheduler, seed: int = 0) -> tf.Study:
    return tf.create_study(
        storage="memory", sampler=RandomSampler(seed=seed), scheduler=scheduler, seed=seed
    )


def drive(study: tf.Study, *, asks: int | None = None, budget: float | None = None) -> float:
    """Ask-and-tell with the toy: each run trains from trial.last_step to trial.budget and
    returns there; stops after ``asks`` asks or once ``budget`` steps were paid."""
    spent, n = 0, 0
    while (asks is None or n < asks) and (budget is None or spent < budget):
        trial = study.ask(SPACE)
        start, end = trial.last_step or 0, int(trial.budget)
        study.tell(trial, toy(trial.params, end))
        spent += end - start
        n += 1
    return spent


def slot(t: FrozenTrial) -> tuple[int, int, int]:
    return (t.system_attrs["instance"], t.system_attrs["rung"], t.system_attrs["slot"])


def cell(study: tf.Study, instance: int, rung: int) -> list[FrozenTrial]:
    return [t for t in study.trials if slot(t)[:2] == (instance, rung)]


def ranked(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    budget = trials[0].system_attrs["budget"]
    return sorted(trials, key=lambda t: (value_at(t, budget), t.number))


def members(study: tf.Study, budget: float) -> list[FrozenTrial]:
    """The sub-population at ``budget`` computed here independently: the best trial per
    target (ties to the later trial), best first."""
    best: dict[int, FrozenTrial] = {}
    for t in study.trials:
        if t.system_attrs.get("budget") != budget:
            continue
        held = best.get(t.system_attrs["target"])
        if held is None or value_at(t, budget) <= value_at(held, budget):
            best[t.system_attrs["target"]] = t
    return ranked(list(best.values()))


def is_mutant(x: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, f: float) -> bool:
    """Whether x is a + f (b - c) (a coordinate that left [0, 1] was redrawn: any value)."""
    mutant = a + f * (b - c)
    inside = np.abs(mutant - 0.5) <= 0.5
    same = np.abs(x - mutant) < 1e-9
    return bool(np.all(same | ~inside) and np.sum(same & inside) >= 2)


class TestDEHBContract(SchedulerContract):
    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return DEHB(1, 27, 3, seed=seed)

    @pytest.mark.xfail(
        strict=True,
        reason="DEHB has no finish at a cap (no assign_at_cap): with max_trials=20 below "
        "its first bracket's 27 slots, every trial ends PAUSED at budget 1",
    )
    def test_a_capped_study_ends_trained_to_max_budget(self) -> None:
        super().test_a_capped_study_ends_trained_to_max_budget()


def test_first_iteration_is_hyperbands_brackets():
    scheduler = DEHB(1, 81, 3, seed=0)
    study = new_study(scheduler)
    drive(study, asks=187)  # one Hyperband iteration: 121 + 40 + 13 + 8 + 5
    counts = Counter(slot(t)[:2] for t in study.trials)
    expected = {}
    for j, bracket in enumerate(hyperband_brackets(1, 81, 3)):
        for i, (n, budget) in enumerate(zip(bracket.sizes, bracket.budgets)):
            expected[(j, i)] = n
            assert {t.system_attrs["budget"] for t in cell(study, j, i)} == {budget}
            assert {t.system_attrs["bracket"] for t in cell(study, j, i)} == {bracket.s}
            if i > 0:  # successive halving: the best n_i of the rung below, re-run fresh
                promoted = ranked(cell(study, j, i - 1))[:n]
                by_slot = sorted(cell(study, j, i), key=lambda t: t.system_attrs["slot"])
                assert [t.params for t in by_slot] == [t.params for t in promoted]
    assert counts == expected
    assert scheduler.population_sizes == {1: 81, 3: 27, 9: 9, 27: 6, 81: 5}
    # slots at a budget take the sub-population's members in turn
    targets = [t.system_attrs["target"] for t in study.trials if t.system_attrs["budget"] == 27]
    assert targets == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2]  # 3 + 3 + 3 + 6 slots


def test_deterministic_under_a_seed():
    def params(seed: int) -> list[dict]:
        study = new_study(DEHB(1, 27, 3, seed=seed), seed=seed)
        drive(study, asks=150)  # 65 trials per iteration: mostly DE
        return [t.params for t in study.trials]

    assert params(3) == params(3)
    assert params(3) != params(4)


def test_parents_come_from_the_best_of_the_lower_budget():
    dehb = DEHB(1, 27, 3, mutation_factor=0.1, crossover_prob=1.0, seed=1)
    study = new_study(dehb, seed=1)
    drive(study, asks=65 + 27)  # the first iteration, then rung 0 of instance 4 (s = 3)
    pool = dehb.parent_pool(study.reader, 4, 1)
    best = [t for t in members(study, 1) if isinstance(t, FrozenTrial)][:9]
    assert len(pool) == 9 and pool == best  # the top n_1 of budget 1's sub-population
    assert {t.number for t in pool} != {t.number for t in ranked(cell(study, 4, 0))[:9]}
    child = study.ask(SPACE)  # with CR = 1: r1 + F (r2 - r3) of three of them
    vectors = [SPACE.encode(t.params) for t in pool]
    x = SPACE.encode(child.params)
    assert any(is_mutant(x, a, b, c, 0.1) for a, b, c in itertools.permutations(vectors, 3))


def test_bracket_parents_come_from_the_lower_rung_then_the_lower_budget():
    dehb = DEHB(1, 27, 3, mutation_factor=0.1, crossover_prob=1.0, parents="bracket", seed=1)
    study = new_study(dehb, seed=1)
    drive(study, asks=65 + 27)  # the first iteration, then rung 0 of instance 4 (s = 3)
    rung0 = cell(study, 4, 0)
    assert len(rung0) == 27
    pool = dehb.parent_pool(study.reader, 4, 1)
    assert pool == ranked(rung0)[:9]  # successive halving's top n_1 of the rung below

    # with CR = 1 the new configuration is the mutant r1 + F (r2 - r3) of three of them
    child = study.ask(SPACE)
    assert slot(study.trials[-1]) == (4, 1, 0)
    vectors = [SPACE.encode(t.params) for t in pool]
    x = SPACE.encode(child.params)
    assert any(is_mutant(x, a, b, c, 0.1) for a, b, c in itertools.permutations(vectors, 3))
    study.tell(child, toy(child.params, 3))

    drive(study, asks=8 + 3)  # the rest of rung 1, and rung 2 (3 trials at budget 9)
    # rung 3 keeps 1 trial: too few parents, so the budget-9 sub-population tops them up
    top = ranked(cell(study, 4, 2))[0]
    expected = [top] + [t for t in members(study, 9) if t.number != top.number]
    assert dehb.parent_pool(study.reader, 4, 3) == expected
    # a bracket's first rung breeds from its own budget's sub-population
    assert dehb.parent_pool(study.reader, 5, 0) == members(study, 3)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_selection_keeps_the_better_of_target_and_trial(direction):
    dehb = DEHB(1, 27, 3, seed=2)
    study = tf.create_study(storage="memory", scheduler=dehb, seed=2, direction=direction)
    drive(study, asks=65)
    sign = 1 if direction == "minimize" else -1
    for better in (True, False, True, False):
        trial = study.ask(SPACE)
        record = study.trials[trial.number].system_attrs
        budget, target = record["budget"], record["target"]
        before = dehb.subpopulation(study.reader, budget)[target]
        value = value_at(before, budget) + (-sign if better else sign)
        study.tell(trial, value)
        after = dehb.subpopulation(study.reader, budget)[target]
        assert after.number == (trial.number if better else before.number)


def test_trials_run_fresh_to_their_budget_and_only_max_budget_completes():
    study = new_study(DEHB(1, 27, 3, seed=5), seed=5)
    study.optimize(curve_objective(27), n_trials=140)
    assert not study.get_trials([TrialState.RUNNING, TrialState.FAIL])
    for t in study.trials:
        budget = t.system_attrs["budget"]
        assert sorted(t.intermediate_values) == list(range(1, budget + 1))  # fresh, 1..b
        assert "resumed_at" not in t.system_attrs
        expected = TrialState.COMPLETE if budget == 27 else TrialState.PAUSED
        assert t.state is expected, (t.number, budget, t.state)
    assert study.best_trial.system_attrs["budget"] == 27


def test_two_threads_never_fill_one_slot():
    # two handles on one storage (each with its own lock and view, as two processes would
    # have), each running two threads: only the claims in the log keep slots apart
    storage = InMemoryStorage()
    dehb = DEHB(1, 27, 3, seed=6)
    first = tf.create_study("shared", storage=storage, scheduler=dehb, seed=6)
    second = tf.load_study("shared", storage=storage, scheduler=dehb)  # one object, two views
    workers = [
        threading.Thread(target=study.optimize, args=(curve_objective(27),), kwargs=options)
        for study in (first, second)
        for options in [{"n_trials": 60, "n_jobs": 2}]
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    trials = first.trials
    assert not first.get_trials([TrialState.RUNNING, TrialState.FAIL])
    assert len({slot(t) for t in trials}) == len(trials) == 120
    for (j, i), n in Counter(slot(t)[:2] for t in trials).items():
        assert n <= dehb.bracket_of(j).sizes[i]


def test_a_restarted_worker_agrees():
    dehb = DEHB(1, 27, 3, seed=9)
    study = new_study(dehb, seed=9)
    drive(study, asks=100)
    trial = study.ask(SPACE)  # left running: its slot is taken
    fresh = DEHB(1, 27, 3, seed=9)  # rebuilds its state from the trials alone
    assert fresh.assign(study.reader, SPACE) == dehb.assign(study.reader, SPACE)
    taken = "dehb:{}:{}:{}".format(*slot(study.trials[trial.number]))
    assert fresh.assign(study.reader, SPACE).claims != (taken,)
    study.tell(trial, 1.0)
    assert fresh.assign(study.reader, SPACE) == dehb.assign(study.reader, SPACE)


@pytest.mark.parametrize("strategy", ["rand1_exp", "rand2_bin", "best1_bin", "currenttobest1_exp"])
def test_other_strategies_breed_legal_configurations(strategy):
    study = new_study(DEHB(1, 9, 3, strategy=strategy, seed=7), seed=7)
    drive(study, asks=60)  # 20 trials per iteration
    assert len({tuple(t.params.values()) for t in study.trials}) > 40
    for t in study.trials:
        SPACE.validate(t.params)


def test_conditional_space_gets_only_active_parameters():
    space = Space(
        kind=Categorical(["a", "b"]),
        x=Float(0.0, 1.0, when={"kind": ["a"]}),
        y=Int(1, 9, when={"kind": ["b"]}),
        z=Float(1e-4, 1.0, log=True),
    )
    study = new_study(DEHB(1, 9, 3, seed=8), seed=8)
    for _ in range(80):  # four DEHB iterations of 20 trials
        trial = study.ask(space)
        space.validate(trial.params)
        study.tell(trial, trial.params["z"] + trial.params.get("x", 0.5) / int(trial.budget))
    assert {t.params["kind"] for t in study.trials[20:]} == {"a", "b"}


def test_beats_hyperband_with_random_sampling_on_a_multi_fidelity_toy():
    def best(scheduler: tf.Scheduler, seed: int) -> float:
        study = new_study(scheduler, seed)
        drive(study, budget=3400)  # two of DEHB's iterations (1701 steps each)
        return study.best_value

    dehb = statistics.median(best(DEHB(seed=seed), seed) for seed in range(5))
    hyperband = statistics.median(best(Hyperband(), seed) for seed in range(5))
    assert dehb < 0.6 * hyperband, (dehb, hyperband)


def test_rejects_bad_options():
    with pytest.raises(SchedulerError, match="strategy"):
        DEHB(strategy="rand3_bin")
    with pytest.raises(SchedulerError, match="mutation_factor"):
        DEHB(mutation_factor=0)
    with pytest.raises(SchedulerError, match="crossover_prob"):
        DEHB(crossover_prob=1.5)
    with pytest.raises(SchedulerError, match="parents"):
        DEHB(parents="elsewhere")
    with pytest.raises(SchedulerError, match="min_budget"):
        DEHB(9, 3)
    study = tf.create_study(storage="memory", directions=["minimize", "minimize"], scheduler=DEHB())
    with pytest.raises(SchedulerError, match="one objective"):
        study.ask(SPACE)


def test_describe_is_json():
    record = DEHB(1, 27, 3, strategy="best1_exp", seed=3).describe()
    assert record == {
        "name": "DEHB",
        "min_budget": 1,
        "max_budget": 27,
        "eta": 3,
        "mutation_factor": 0.5,
        "crossover_prob": 0.5,
        "strategy": "best1_exp",
        "parents": "budget",
        "seed": 3,
        "rungs": "down",
    }
