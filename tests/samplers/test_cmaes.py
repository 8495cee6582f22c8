"""CmaEsSampler: the sampler contract, quality against random search, determinism from the
log, discrete and categorical dimensions, IPOP restarts and the missing-extra error."""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

import tuningfork as tf
from tuningfork.exceptions import MissingExtra, OptionError
from tuningfork.samplers import cmaes as cmaes_module
from tuningfork.testing import SamplerContract
from tuningfork.testing.functions import PROBLEMS

pytest.importorskip("cmaes")


class TestCmaEsSampler(SamplerContract):
    def make_sampler(self, seed: int, space: tf.Space) -> tf.Sampler:
        return tf.CmaEsSampler(seed=seed)


class TestCmaEsSamplerSeparable(SamplerContract):
    def make_sampler(self, seed: int, space: tf.Space) -> tf.Sampler:
        return tf.CmaEsSampler(seed=seed, separable=True, restart_strategy="bipop")


def _ill_conditioned(trial: tf.Trial) -> float:
    """A rotated-free ellipsoid in 5-D with condition number 10^4, minimum 0 at x = 1."""
    x = [trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(5)]
    return sum(10**i * (xi - 1.0) ** 2 for i, xi in enumerate(x))


def _best(sampler: tf.Sampler, objective: object, n_trials: int) -> float:
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(objective, n_trials=n_trials)  # type: ignore[arg-type]
    return study.best_value  # type: ignore[return-value]


def test_beats_random_search_on_ill_conditioned_and_rosenbrock() -> None:
    rosenbrock = PROBLEMS["rosenbrock5"]
    for objective in (_ill_conditioned, rosenbrock.objective):
        cma = [_best(tf.CmaEsSampler(seed=s), objective, 200) for s in range(5)]
        rand = [_best(tf.RandomSampler(seed=s), objective, 200) for s in range(5)]
        assert statistics.median(cma) < 0.2 * statistics.median(rand), (cma, rand)


_SCRIPT = """
import sys, tuningfork as tf
from tuningfork.trial import FrozenTrial, TrialState
study = tf.load_study("s", storage=sys.argv[1])
sampler = tf.CmaEsSampler(seed=3)
dist = tf.Float(-5.0, 5.0)
for number in (30, 31, 32):
    trial = FrozenTrial(number=number, state=TrialState.RUNNING)
    print(repr([sampler.sample(study.reader, trial, f"x{i}", dist) for i in range(3)]))
"""


def _sphere3(trial: tf.Trial) -> float:
    return sum(trial.suggest_float(f"x{i}", -5.0, 5.0) ** 2 for i in range(3))


def _proposals(sampler: tf.Sampler, study: tf.Study) -> list[str]:
    from tuningfork.trial import FrozenTrial, TrialState

    dist = tf.Float(-5.0, 5.0)
    lines = []
    for number in (30, 31, 32):
        trial = FrozenTrial(number=number, state=TrialState.RUNNING)
        lines.append(repr([sampler.sample(study.reader, trial, f"x{i}", dist) for i in range(3)]))
    return lines


def test_proposals_are_the_same_from_a_reloaded_study(tmp_path: Path) -> None:
    """A sampler that followed the study trial by trial and a new one in a new process,
    reading the whole log at once, hold the same optimizer and propose the same points."""
    url = f"sqlite:///{tmp_path / 'cma.db'}"
    sampler = tf.CmaEsSampler(seed=3)
    study = tf.create_study("s", storage=url, sampler=sampler)
    study.optimize(_sphere3, n_trials=30)  # 4 generations of 7 told, and 1 more trial
    assert sampler._states[study.reader].generation == 4
    expected = _proposals(sampler, study)
    assert len(set(expected)) == 3  # running trials get different candidates
    child = subprocess.run(
        [sys.executable, "-c", _SCRIPT, url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(tf.__file__).parents[1])},
    )
    assert child.stdout.strip().splitlines() == expected


def test_a_running_trial_holds_back_the_tells_but_not_the_proposals() -> None:
    """Trials told out of order: the generation is told only once every earlier trial has
    finished; meanwhile each new trial gets its own candidate of the current generation."""
    sampler = tf.CmaEsSampler(seed=5, popsize=4)
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(_sphere3, n_trials=1)  # the startup trial
    slow = study.ask()
    slow_value = _sphere3(slow)
    proposals = []
    for _ in range(6):
        trial = study.ask()
        value = _sphere3(trial)
        proposals.append(tuple(trial.params.values()))
        study.tell(trial, value)
    replay = sampler._states[study.reader]
    assert replay.generation == 0 and replay.read == 1  # held back by the running trial
    assert len(set(proposals)) == len(proposals)  # all different, from one generation
    study.tell(slow, slow_value)
    study.optimize(_sphere3, n_trials=1)
    assert replay.generation == 2  # startup + slow + 6 others = 8 = two generations of 4


def test_integer_and_stepped_dimensions_stay_on_their_grid() -> None:
    def objective(trial: tf.Trial) -> float:
        n = trial.suggest_int("n", -10, 10)
        k = trial.suggest_int("k", 0, 100, step=5)
        s = trial.suggest_float("s", 0.0, 2.0, step=0.25)
        x = trial.suggest_float("x", -1.0, 1.0)
        return (n - 3) ** 2 + (k - 35) ** 2 / 100 + (s - 0.75) ** 2 + x**2

    sampler = tf.CmaEsSampler(seed=0)
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(objective, n_trials=120)
    assert type(sampler._states[study.reader].optimizer).__name__ == "CatCMAwM"
    for trial in study.trials:
        assert type(trial.params["n"]) is int and -10 <= trial.params["n"] <= 10
        assert trial.params["k"] in range(0, 101, 5)
        assert trial.params["s"] in [0.25 * i for i in range(9)]
    assert study.best_params["n"] == 3 and study.best_value < 0.5


def _with_category(trial: tf.Trial) -> float:
    kind = trial.suggest_categorical("kind", ["a", "b", "c"])
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_float("y", -5.0, 5.0)
    return (x - 1) ** 2 + (y + 2) ** 2 + (0.0 if kind == "b" else 1.0)


def test_a_categorical_parameter_joins_catcmawm() -> None:
    sampler = tf.CmaEsSampler(seed=4)
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(_with_category, n_trials=150)
    replay = sampler._states[study.reader]
    assert type(replay.optimizer).__name__ == "CatCMAwM"
    assert [name for name, _ in replay.cats] == ["kind"]
    late = [t.params["kind"] for t in study.trials[-30:]]
    assert late.count("b") >= 17  # at random: 10 of 30 (the margin keeps the others)
    assert study.best_params["kind"] == "b" and study.best_value < 0.1


def _mixed_small(trial: tf.Trial) -> float:
    """Int, categorical and float together: minimum 0 at n=4, kind="b", x=0.3."""
    n = trial.suggest_int("n", 0, 12)
    kind = trial.suggest_categorical("kind", ["a", "b", "c", "d"])
    x = trial.suggest_float("x", -1.0, 1.0)
    return (n - 4) ** 2 / 4 + (0.0 if kind == "b" else 0.5) + (x - 0.3) ** 2


def test_a_mixed_space_goes_through_catcmawm_with_ints_on_their_grid() -> None:
    sampler = tf.CmaEsSampler(seed=1)
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(_mixed_small, n_trials=80)
    replay = sampler._states[study.reader]
    assert type(replay.optimizer).__name__ == "CatCMAwM"
    assert [name for name, _ in replay.dims or []] == ["n", "x"]
    assert replay.cats[0][0] == "kind" and list(replay.layout.grids) == [0]  # n is discrete
    assert replay.optimizer.n_integer == 1 and replay.optimizer.n_categorical == 1
    for trial in study.trials:
        assert type(trial.params["n"]) is int and 0 <= trial.params["n"] <= 12


def test_catcmawm_beats_random_search_on_a_small_mixed_problem() -> None:
    cma = [_best(tf.CmaEsSampler(seed=s), _mixed_small, 60) for s in range(5)]
    rand = [_best(tf.RandomSampler(seed=s), _mixed_small, 60) for s in range(5)]
    assert statistics.median(cma) < 0.5 * statistics.median(rand), (cma, rand)


def test_catcmawm_is_told_its_draw_before_rounding_while_its_generation_is_open() -> None:
    """The log holds the rounded integer; asking the open generation again for the trial
    gives the same values and the draw before rounding, which is what CatCMAwM learns from.
    A trial whose values are not that draw is told as evaluated."""
    import dataclasses

    sampler = tf.CmaEsSampler(seed=2)
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(_mixed_small, n_trials=3)
    trial = study.trials[-1]
    replay = sampler._states[study.reader]
    assert replay.read == trial.number  # the replay has not read it yet
    told = replay._tellable(trial)
    n_raw = told._v_raw[1]  # the Gaussian vector lists x, then n
    assert n_raw != told.z[0] and replay.layout.dims[0][1].from_unit(n_raw) == trial.params["n"]
    moved = dataclasses.replace(trial, params={**trial.params, "n": (trial.params["n"] + 1) % 13})
    told = replay._tellable(moved)
    assert told._v_raw[1] == told.z[0]  # as evaluated: on the grid


def test_catcmawm_replayed_by_a_new_sampler_holds_the_same_state() -> None:
    """A new sampler reading the whole log at once re-asks the same draws, tells the same
    solutions and holds the same distribution as the one that followed the study."""
    from tuningfork.trial import FrozenTrial, TrialState

    followed = tf.CmaEsSampler(seed=6)
    study = tf.create_study(storage="memory", sampler=followed)
    study.optimize(_mixed_small, n_trials=40)
    fresh = tf.CmaEsSampler(seed=6)
    late = FrozenTrial(number=40, state=TrialState.RUNNING)
    assert fresh.sample(study.reader, late, "n", tf.Int(0, 12)) == followed.sample(
        study.reader, late, "n", tf.Int(0, 12)
    )
    a, b = followed._states[study.reader], fresh._states[study.reader]
    assert a.generation == b.generation >= 3
    assert a.optimizer._mean.tolist() == b.optimizer._mean.tolist()
    assert a.optimizer._q.tolist() == b.optimizer._q.tolist()


def test_categories_alone_go_through_catcmawm() -> None:
    """A space of categorical parameters only (a NAS-style cell): CatCMAwM, not random."""
    problem = PROBLEMS["cell"]
    cma = []
    for s in range(3):
        sampler = tf.CmaEsSampler(seed=s)
        study = tf.create_study(storage="memory", sampler=sampler)
        study.optimize(problem.objective, n_trials=80)
        assert type(sampler._states[study.reader].optimizer).__name__ == "CatCMAwM"
        cma.append(study.best_value)
    rand = [_best(tf.RandomSampler(seed=s), problem.objective, 80) for s in range(3)]
    assert statistics.median(cma) < statistics.median(rand), (cma, rand)


def test_a_categorical_parameter_is_sampled_at_random_when_separable() -> None:
    """sep-CMA-ES has no categories: the internal RandomSampler with the same seed
    proposes them, while the numeric parameters still converge."""
    seed = 4
    sampler = tf.CmaEsSampler(seed=seed, separable=True)
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(_with_category, n_trials=100)
    replay = sampler._states[study.reader]
    assert [name for name, _ in replay.dims or []] == ["x", "y"] and replay.cats == []
    random = tf.RandomSampler(seed=seed)
    dist = tf.Categorical(["a", "b", "c"])
    for trial in study.trials:
        assert trial.params["kind"] == random.sample(study.reader, trial, "kind", dist)
    assert {t.params["kind"] for t in study.trials} == {"a", "b", "c"}
    best = study.best_trial
    assert best is not None and (best.params["x"] - 1) ** 2 + (best.params["y"] + 2) ** 2 < 0.1


def _flat(trial: tf.Trial) -> float:
    """Constant: CMA-ES stops on flat fitness (tolfun) after about 20 generations."""
    trial.suggest_float("x", 0.0, 1.0)
    trial.suggest_float("y", 0.0, 1.0)
    return 1.0


def _sphere2(trial: tf.Trial) -> float:
    return sum((trial.suggest_float(f"x{i}", -5.0, 5.0) - 1.0) ** 2 for i in range(2))


def test_ipop_restarts_with_a_larger_population_once_converged() -> None:
    """On a sphere the strategy converges (to machine precision) within 200 generations;
    IPOP then restarts it with twice the population."""
    studies = []
    for strategy in ("ipop", None):
        sampler = tf.CmaEsSampler(seed=0, restart_strategy=strategy)
        study = tf.create_study(storage="memory", sampler=sampler)
        study.optimize(_sphere2, n_trials=1200)
        assert study.best_value is not None and study.best_value < 1e-12
        studies.append(sampler._states[study.reader])
    restarted, kept = studies
    assert kept.restarts == 0 and kept.optimizer.should_stop()  # converged, not restarted
    assert restarted.restarts >= 1
    assert restarted.optimizer.population_size == 2**restarted.restarts * kept.popsize0


def _flat_mixed(trial: tf.Trial) -> float:
    trial.suggest_int("n", 0, 5)
    trial.suggest_categorical("kind", ["a", "b"])
    trial.suggest_float("x", 0.0, 1.0)
    return 1.0


@pytest.mark.filterwarnings("error")
def test_catcmawm_on_a_plateau_warns_nothing_and_restarts() -> None:
    """No spread in the values yet: cmaes's box penalty is NaN there (a RuntimeWarning),
    which the sampler keeps from the user; IPOP still restarts once the strategy stops."""
    sampler = tf.CmaEsSampler(seed=0, restart_strategy="ipop", popsize=4)
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(_flat_mixed, n_trials=250)
    replay = sampler._states[study.reader]
    assert type(replay.optimizer).__name__ == "CatCMAwM"
    assert replay.restarts >= 1
    assert replay.optimizer.population_size == 4 * 2**replay.restarts


def test_bipop_alternates_regimes() -> None:
    sampler = tf.CmaEsSampler(seed=2, restart_strategy="bipop", popsize=4)
    study = tf.create_study(storage="memory", sampler=sampler)
    study.optimize(_flat, n_trials=500)
    replay = sampler._states[study.reader]
    assert replay.restarts >= 2
    assert replay.budget["small"] > 0 and replay.budget["large"] > 0


def test_warm_start_begins_near_the_source_optimum() -> None:
    def shifted(trial: tf.Trial) -> float:
        return sum((trial.suggest_float(f"x{i}", -5.0, 5.0) - 3.0) ** 2 for i in range(3))

    source = tf.create_study(storage="memory", sampler=tf.RandomSampler(seed=0))
    source.optimize(shifted, n_trials=100)
    warm = tf.CmaEsSampler(seed=0, warm_start_trials=source)
    study = tf.create_study(storage="memory", sampler=warm)
    study.optimize(shifted, n_trials=20)
    cold = [_best(tf.CmaEsSampler(seed=s), shifted, 20) for s in range(3)]
    assert study.best_value < min(cold)
    assert warm.describe().get("warm_start_trials") is None  # trials are not recorded


def test_bad_options() -> None:
    with pytest.raises(OptionError, match="restart_strategy"):
        tf.CmaEsSampler(restart_strategy="lazy")
    with pytest.raises(OptionError, match="sigma0"):
        tf.CmaEsSampler(sigma0=0.0)
    with pytest.raises(OptionError, match="warm_start_trials"):
        tf.CmaEsSampler(warm_start_trials=[1, 2])
    source = tf.create_study(storage="memory")
    source.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with pytest.raises(OptionError, match="separable"):
        tf.CmaEsSampler(separable=True, warm_start_trials=source.trials)
    with pytest.raises(OptionError, match="one objective"):
        tf.create_study(
            directions=["minimize", "minimize"], storage="memory", sampler=tf.CmaEsSampler()
        ).optimize(lambda t: (t.suggest_float("x", 0, 1), 0.0), n_trials=1)


def test_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cmaes", None)  # import cmaes now raises ImportError
    with pytest.raises(MissingExtra, match=r"pip install 'tuningfork\[cmaes\]'"):
        tf.CmaEsSampler()
    assert cmaes_module.CmaEsSampler is tf.CmaEsSampler  # the module imports without it


def test_maximize() -> None:
    study = tf.create_study(direction="maximize", storage="memory", sampler=tf.CmaEsSampler(seed=0))
    study.optimize(lambda trial: -_sphere3(trial), n_trials=150)
    assert study.best_value is not None and study.best_value > -0.01


@pytest.mark.parametrize("earlier", [6, 40])
def test_start_at_trial_continues_a_study_from_its_best_trials(earlier):
    """Trials before start_at_trial are not told; the strategy's first generation lies
    around the best of them (WS-CMA-ES from 10 trials on, else at the best point with the
    default step), not around the centre of the box where a fresh CMA-ES starts."""
    space = tf.Space(x=tf.Float(0, 1), y=tf.Float(0, 1))

    def objective(trial: tf.Trial) -> float:
        return (trial.params["x"] - 0.9) ** 2 + (trial.params["y"] - 0.1) ** 2

    study = tf.create_study(storage="memory", sampler=tf.RandomSampler(seed=1))
    for i in range(earlier):  # a spread of points; the best one is near (0.9, 0.1)
        study.enqueue_trial({"x": 0.05 + 0.9 * (i % 7) / 6, "y": 0.95 - 0.9 * (i % 5) / 4})
    study.optimize(objective, n_trials=earlier, space=space, show_progress_bar=False)
    best = study.best_trial.params
    assert best["x"] > 0.6 and best["y"] < 0.4
    study.sampler = tf.CmaEsSampler(seed=0, start_at_trial=earlier)
    study.optimize(objective, n_trials=6, space=space, show_progress_bar=False)  # generation 0
    later = [t for t in study.trials if t.number >= earlier]
    centre = [statistics.mean(t.params[k] for t in later) for k in ("x", "y")]
    assert math.dist(centre, (best["x"], best["y"])) < 0.25
    assert math.dist(centre, (0.5, 0.5)) > 0.3  # a fresh CMA-ES would be about 0


def test_start_at_trial_is_checked():
    with pytest.raises(OptionError, match="start_at_trial"):
        tf.CmaEsSampler(start_at_trial=-1)


def test_start_at_trial_on_categories_alone_starts_without_a_warm_start():
    space = tf.Space(a=tf.Categorical(["p", "q", "r"]), b=tf.Categorical([1, 2, 3]))
    study = tf.create_study(storage="memory", sampler=tf.RandomSampler(seed=0))
    study.optimize(lambda t: float(t.params["b"]), n_trials=12, space=space)
    study.sampler = tf.CmaEsSampler(seed=0, start_at_trial=12)
    study.optimize(lambda t: float(t.params["b"]), n_trials=8, space=space)
    assert len(study.trials) == 20 and all(t.state.is_finished for t in study.trials)
