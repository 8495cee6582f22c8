"""BOHB (Falkner et al., 2018): Hyperband's brackets, configurations from a Parzen model
fitted on the largest budget with enough observations."""

from __future__ import annotations

import statistics
import threading

import pytest

import tuningfork as tf
from tuningfork.exceptions import SchedulerError
from tuningfork.samplers.random import RandomSampler
from tuningfork.schedulers.bohb import BOHB
from tuningfork.schedulers.hyperband import Hyperband
from tuningfork.space import Categorical, Float, Space

# Li et al. (2018), Table 1 (R = 81, eta = 3): (n_i, r_i) per rung, one list per bracket.
TABLE_1 = [
    [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
    [(27, 3), (9, 9), (3, 27), (1, 81)],
    [(9, 9), (3, 27), (1, 81)],
    [(6, 27), (2, 81)],
    [(5, 81)],
]


def toy(x: float, y: float, step: int) -> float:
    """The multi-fidelity toy: minimum 0.1 / step at (0.7, 0.2), exact at every step."""
    return (x - 0.7) ** 2 + (y - 0.2) ** 2 + 0.1 / step


def objective(trial) -> float:
    x = trial.suggest_float("x", 0, 1)
    y = trial.suggest_float("y", 0, 1)
    value = 0.0
    for step in range((trial.last_step or 0) + 1, int(trial.budget) + 1):
        value = toy(x, y, step)
        trial.report(value, step)
        if trial.should_stop():
            raise tf.TrialPruned()
    return value


def run_ask_tell(study, n_asks: int, space=None) -> None:
    """The ask-and-tell loop of the multi-fidelity interface, on the toy."""
    for _ in range(n_asks):
        trial = study.ask(space)
        if space is None:
            x, y = trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)
        else:
            x, y = trial.params["x"], trial.params["y"]
        value = 0.0
        for step in range((trial.last_step or 0) + 1, int(trial.budget) + 1):
            value = toy(x, y, step)
            trial.report(value, step)
            if trial.should_stop():
                study.tell(trial, state="PRUNED")
                break
        else:
            study.tell(trial, value)


def best_final_regret(study, max_budget: int) -> float:
    """Distance (squared) to the optimum of the best trial that reached max_budget."""
    finals = [
        t.intermediate_values[max_budget]
        for t in study.trials
        if max_budget in t.intermediate_values
    ]
    return min(finals) - 0.1 / max_budget


class Recording(BOHB):
    """BOHB that keeps, for each new-trial assignment, whether the model existed and the
    params it gave (a test probe; the scheduler itself keeps no state)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.new_trials: list[tuple[bool, dict]] = []

    def assign(self, study, space):
        assignment = super().assign(study, space)
        if assignment.resume is None:
            modelled = self.model_budget(study, space) is not None
            self.new_trials.append((modelled, dict(assignment.params)))
        return assignment


# -- (1) the brackets are Hyperband's -------------------------------------------------------


def test_bracket_table_is_hyperbands_table_1():
    bohb, hyperband = BOHB(1, 81, 3), Hyperband(1, 81, 3)
    assert bohb.bracket_table == hyperband.bracket_table
    table = [list(zip(b.sizes, b.budgets)) for b in bohb.bracket_table]
    assert table == TABLE_1


# -- (2) the model's budget -----------------------------------------------------------------


def test_model_is_fitted_on_the_largest_budget_with_enough_points():
    # one parameter: N_min = d + 1 = 2, so a budget needs N_min + 2 = 4 observations.
    # At budget 1 the good x are near 0.1; at budget 3 they are near 0.9.
    study = tf.create_study(storage="memory", sampler=RandomSampler(seed=0), seed=0)
    bohb = BOHB(1, 9, 3, random_fraction=0.0, seed=1)
    assert bohb.model_budget(study) is None
    assert bohb.propose(study) == {}  # no space known yet: the sampler draws

    def add(x: float, steps: int) -> None:
        study.enqueue_trial({"x": x})  # the test chooses the configurations
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        for step in range(1, steps + 1):
            trial.report(abs(x - (0.1 if step < 3 else 0.9)), step)
        study.tell(trial, abs(x - (0.1 if steps < 3 else 0.9)))

    for x in (0.05, 0.1, 0.15, 0.5, 0.8):
        add(x, 1)
    assert bohb.model_budget(study) == 1
    assert abs(bohb.propose(study)["x"] - 0.1) < 0.2
    for x in (0.85, 0.9, 0.95):
        add(x, 3)
    assert bohb.model_budget(study) == 1  # 3 observations at budget 3: too few
    add(0.2, 3)
    assert bohb.model_budget(study) == 3  # the largest budget with 4
    assert abs(bohb.propose(study)["x"] - 0.9) < 0.2
    # a larger N_min puts the model back on budget 1 (9 points there, 4 at budget 3)
    assert BOHB(1, 9, 3, min_points_in_model=3).model_budget(study) == 1
    assert BOHB(1, 9, 3, min_points_in_model=8).model_budget(study) is None


# -- (3) determinism ------------------------------------------------------------------------


def history(seed: int, scheduler_seed: int | None = None) -> list:
    study = tf.create_study(
        storage="memory",
        sampler=RandomSampler(seed=seed),
        scheduler=BOHB(1, 9, 3, seed=scheduler_seed if scheduler_seed is not None else seed),
        seed=seed,
    )
    study.optimize(objective, n_trials=60)
    return [(t.number, t.state, t.params, t.intermediate_values) for t in study.trials]


def test_same_seed_same_trials():
    first = history(3)
    assert first == history(3)
    assert first != history(3, scheduler_seed=4)


# -- (4) quality ----------------------------------------------------------------------------


def test_beats_hyperband_with_random_sampling_on_a_multi_fidelity_toy():
    regrets: dict[str, list[float]] = {"hyperband": [], "bohb": []}
    for seed in range(5):
        for name, scheduler in (
            ("hyperband", Hyperband(1, 81, 3, seed=seed)),
            ("bohb", BOHB(1, 81, 3, seed=seed)),
        ):
            study = tf.create_study(
                storage="memory", sampler=RandomSampler(seed=seed), scheduler=scheduler, seed=seed
            )
            run_ask_tell(study, 150)
            regrets[name].append(best_final_regret(study, 81))
    hyperband, bohb = (statistics.median(regrets[k]) for k in ("hyperband", "bohb"))
    # measured: Hyperband about 2e-3, BOHB about 1e-4
    assert bohb < hyperband / 3


# -- (5) the random fraction ----------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.0, 1 / 3, 1.0])
def test_random_fraction(fraction):
    scheduler = Recording(1, 9, 3, random_fraction=fraction, seed=5)
    study = tf.create_study(
        storage="memory", sampler=RandomSampler(seed=5), scheduler=scheduler, seed=5
    )
    run_ask_tell(study, 150)
    modelled = [params for has_model, params in scheduler.new_trials if has_model]
    assert len(modelled) > 60
    assert not any(params for has_model, params in scheduler.new_trials if not has_model)
    with_params = sum(1 for params in modelled if params) / len(modelled)
    if fraction == 0.0:
        assert with_params == 1.0
        assert all(set(params) == {"x", "y"} for params in modelled)
    elif fraction == 1.0:
        assert with_params == 0.0
    else:
        assert 0.5 < with_params < 0.85


# -- (6) define-by-run and declared spaces --------------------------------------------------


def test_define_by_run_and_declared_space():
    space = Space({"x": Float(0, 1), "y": Float(0, 1)})
    for given in (None, space):
        scheduler = Recording(1, 9, 3, random_fraction=0.0, seed=2)
        study = tf.create_study(
            storage="memory", sampler=RandomSampler(seed=2), scheduler=scheduler, seed=2
        )
        run_ask_tell(study, 80, space=given)
        proposals = [params for _, params in scheduler.new_trials if params]
        assert len(proposals) > 20
        # the proposals are the trials' parameters
        by_params = {(t.params["x"], t.params["y"]) for t in study.trials}
        assert all((p["x"], p["y"]) in by_params for p in proposals)
        assert best_final_regret(study, 9) < 0.01


def test_conditional_space_proposes_only_active_parameters():
    space = Space(
        {
            "kind": Categorical(["a", "b"]),
            "x": Float(0, 1, when={"kind": "a"}),
            "y": Float(0, 1, when={"kind": "b"}),
        }
    )
    study = tf.create_study(storage="memory", sampler=RandomSampler(seed=1), seed=1)
    bohb = BOHB(1, 9, 3, random_fraction=0.0, seed=1)
    for _ in range(12):
        trial = study.ask(space)
        params = trial.params
        value = params.get("x", 0.5) if params["kind"] == "a" else 1 + params["y"]
        trial.report(value, 1)
        study.tell(trial, value)
    assert bohb.model_budget(study, space) == 1
    proposal = bohb.propose(study, space)
    space.validate(proposal)  # every active parameter, no inactive one
    assert proposal["kind"] == "a" and proposal["x"] < 0.5  # kind a and small x are good
    # define-by-run, the union of the recorded distributions: every known parameter
    assert set(bohb.propose(study)) == {"kind", "x", "y"}


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_good_trials_follow_the_direction(direction):
    study = tf.create_study(storage="memory", direction=direction, seed=0)
    sign = 1.0 if direction == "minimize" else -1.0
    for x in (0.05, 0.1, 0.15, 0.5, 0.6, 0.8, 0.9):
        study.enqueue_trial({"x": x})
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        trial.report(sign * abs(x - 0.1), 1)
        study.tell(trial, sign * abs(x - 0.1))
    proposal = BOHB(1, 9, 3, random_fraction=0.0, seed=0).propose(study)
    assert abs(proposal["x"] - 0.1) < 0.2


def test_bandwidth_factor_widens_the_candidates():
    study = tf.create_study(storage="memory", seed=0)
    for x in (0.45, 0.5, 0.55, 0.1, 0.9, 0.95):
        study.enqueue_trial({"x": x})
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        trial.report(abs(x - 0.5), 1)
        study.tell(trial, abs(x - 0.5))

    def spread(factor: float) -> float:
        # one candidate per proposal: the proposal is a draw from the widened l(x), whose
        # good kernels sit at 0.5 and 0.45 (plus the prior's)
        draws = [
            BOHB(
                1, 9, 3, random_fraction=0.0, n_samples=1, bandwidth_factor=factor, seed=seed
            ).propose(study)["x"]
            for seed in range(60)
        ]
        return statistics.median(abs(x - 0.5) for x in draws)

    assert spread(0.3) < 0.6 * spread(3.0)  # measured: 0.09 and 0.28


def test_rejects_bad_options():
    with pytest.raises(SchedulerError, match="random_fraction"):
        BOHB(random_fraction=1.5)
    with pytest.raises(SchedulerError, match="min_points_in_model"):
        BOHB(min_points_in_model=0)
    with pytest.raises(SchedulerError, match="bandwidth_factor"):
        BOHB(bandwidth_factor=0)


# -- (7) concurrent workers -----------------------------------------------------------------


@pytest.mark.parametrize("asynchronous", [False, True])
def test_two_threads_never_run_a_trial_twice(asynchronous):
    runs: list[tuple[int, int | None]] = []
    lock = threading.Lock()

    def recorded(trial):
        with lock:
            runs.append((trial.number, trial.last_step))
        return objective(trial)

    study = tf.create_study(
        storage="memory",
        sampler=RandomSampler(seed=7),
        scheduler=BOHB(1, 9, 3, asynchronous=asynchronous, seed=7),
        seed=7,
    )
    study.optimize(recorded, n_trials=80, n_jobs=2)
    assert len(runs) == 80
    assert len(set(runs)) == len(runs)  # no (trial, starting step) ran twice
    states = {t.state for t in study.trials}
    assert tf.TrialState.FAIL not in states
    assert any(t.system_attrs.get("rung", 0) > 0 for t in study.trials)  # promotions happened
