"""The sampler contract: the behaviour every sampler must show, define-by-run and declared.

Same seed, same configurations; values respect bounds, log scales, steps, integer and
categorical types, and conditions; several processes share a study; a study resumed
after a restart continues exactly as an uninterrupted one; a parameter the sampler cannot
handle gives a `SpaceError` that names it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tuningfork.exceptions import SpaceError
from tuningfork.samplers.base import Sampler
from tuningfork.space import Categorical, Float, Int, Space, Value
from tuningfork.study import Study, create_study, load_study
from tuningfork.testing.storages import run_in_processes
from tuningfork.trial import FrozenTrial, Trial, TrialState

__all__ = ["SamplerContract", "define_by_run_objective"]

MODES = ("define_by_run", "space")
"""How the contract asks: suggest_* calls inside the objective, or a declared Space."""


# -- spaces the contract samples ------------------------------------------------------------


def bounds_space() -> Space:
    """One parameter of every kind: linear, log and stepped floats and ints, categorical,
    and ranges narrowed to one value (constants)."""
    return Space(
        uniform=Float(-2.0, 3.0),
        pinned_float=Float(0.5, 0.5),
        pinned_int=Int(3, 3, log=True),
        log_float=Float(1e-5, 1e-1, log=True),
        stepped_float=Float(0.0, 1.0, step=0.25),
        integer=Int(-3, 7),
        stepped_int=Int(0, 12, step=4),
        log_int=Int(1, 1024, log=True),
        choice=Categorical(["a", 1, 2.5, True, None]),
    )


def log_space() -> Space:
    """Wide log ranges, where linear sampling would almost never reach the lower half."""
    return Space(lr=Float(1e-6, 1.0, log=True), units=Int(1, 4096, log=True))


def choices_space() -> Space:
    """Two categoricals; True and 1 are different choices."""
    return Space(letter=Categorical(["a", "b", "c", "d", "e"]), flag=Categorical([True, 1]))


def conditional_space() -> Space:
    """Conditions two levels deep: ``dropout`` needs ``layers``, which needs ``model``."""
    return Space(
        model=Categorical(["linear", "tree", "net"]),
        depth=Int(1, 8, when={"model": "tree"}),
        layers=Int(1, 3, when={"model": "net"}),
        dropout=Float(0.0, 0.5, when={"layers": [2, 3]}),
        optimizer=Categorical(["sgd", "adam"], when={"model": "net"}),
        momentum=Float(0.0, 0.99, when={"optimizer": "sgd"}),
        lr=Float(1e-4, 1e-1, log=True),
    )


def small_space() -> Space:
    """A small mixed space (a grid of 30 points at the default resolution)."""
    return Space(x=Float(-1.0, 1.0), n=Int(0, 2), kind=Categorical(["a", "b"]))


def score(space: Space, params: dict[str, Value]) -> float:
    """A smooth objective of the unit-encoded values, so model-based samplers get signal."""
    return sum((space[name].to_unit(value) - 0.3) ** 2 for name, value in params.items())


def define_by_run_objective(space: Space) -> Callable[[Trial], float]:
    """An objective that suggests the parameters of ``space`` one by one, parents first,
    each only where its condition holds."""

    def objective(trial: Trial) -> float:
        params: dict[str, Value] = {}
        for name in space.names:
            if space.is_active(name, params):
                params[name] = trial.suggest(name, space[name])
        return score(space, params)

    return objective


def declared_objective(space: Space) -> Callable[[Trial], float]:
    """An objective for ``optimize(space=...)``: the parameters are already sampled."""

    def objective(trial: Trial) -> float:
        return score(space, trial.params)

    return objective


def _optimize(study: Study, space: Space, mode: str, n_trials: int | None) -> None:
    if mode == "space":
        study.optimize(declared_objective(space), n_trials=n_trials, space=space)
    else:
        study.optimize(define_by_run_objective(space), n_trials=n_trials)


def _process_worker(
    contract: type[SamplerContract],
    url: str,
    name: str,
    seed: int,
    space_dict: dict[str, Any],
    mode: str,
    n_trials: int,
) -> int:
    """One process of the multi-process test: load the study and optimize."""
    space = Space.from_dict(space_dict)
    study = load_study(name, storage=url, sampler=contract().make_sampler(seed, space))
    _optimize(study, space, mode, n_trials)
    return len(study.trials)


def _check_types(space: Space, params: dict[str, Value]) -> None:
    """Floats are floats and ints are ints (not numpy scalars, not bools)."""
    for name, value in params.items():
        dist = space[name]
        if isinstance(dist, Float):
            assert type(value) is float, f"{name}={value!r} should be a float"
        elif isinstance(dist, Int):
            assert type(value) is int, f"{name}={value!r} should be an int"


def _config(trial: FrozenTrial) -> tuple[tuple[str, str], ...]:
    """A hashable, type-aware form of a trial's parameters."""
    return tuple(sorted((name, repr(value)) for name, value in trial.params.items()))


# -- the contract ---------------------------------------------------------------------------


class SamplerContract:
    """Contract tests for a `Sampler`. Subclass it and implement `make_sampler`.

    Class attributes to adjust:
        exhaustive: True for a sampler over a finite set of configurations that raises
            `SearchExhausted` when all have run (a grid); the contract then also checks
            that no configuration runs twice, and runs resumed studies to exhaustion.
        n_trials: trials per single-process test.
        max_exhaustive_trials: the most trials an exhaustive sampler may run on the
            contract's small space (30 points on a 5-point grid) before it must stop.
    """

    exhaustive: ClassVar[bool] = False
    n_trials: ClassVar[int] = 24
    max_exhaustive_trials: ClassVar[int] = 200
    n_processes: ClassVar[int] = 4
    trials_per_process: ClassVar[int] = 6

    def make_sampler(self, seed: int, space: Space) -> Sampler:
        """A new sampler seeded with ``seed`` for a study whose parameters are ``space``.

        Most samplers ignore ``space``; a grid sampler builds its grid from it.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement make_sampler()")

    def run(
        self,
        space: Space,
        mode: str,
        *,
        seed: int = 0,
        n_trials: int | None = None,
        storage: str = "memory",
    ) -> list[FrozenTrial]:
        """Optimize a new study of ``space`` and return its trials."""
        study = create_study(storage=storage, sampler=self.make_sampler(seed, space))
        _optimize(study, space, mode, self.n_trials if n_trials is None else n_trials)
        return study.trials

    def check_trials(self, space: Space, trials: list[FrozenTrial]) -> None:
        """Every trial completed with a valid configuration of ``space``."""
        assert trials, "the sampler ran no trial"
        for trial in trials:
            assert trial.state is TrialState.COMPLETE, (trial.number, trial.state, trial.reason)
            space.validate(trial.params)
            _check_types(space, trial.params)
            assert set(trial.distributions) == set(trial.params)
        if self.exhaustive:
            configs = [_config(trial) for trial in trials]
            assert len(set(configs)) == len(configs), "a configuration ran twice"

    # -- determinism ----------------------------------------------------------------------

    @pytest.mark.parametrize("mode", MODES)
    def test_same_seed_same_configurations(self, mode: str) -> None:
        space = bounds_space()
        first = [t.params for t in self.run(space, mode, seed=7)]
        second = [t.params for t in self.run(space, mode, seed=7)]
        assert first == second
        assert [[type(v) for v in p.values()] for p in first] == [
            [type(v) for v in p.values()] for p in second
        ]

    # -- parameter kinds ------------------------------------------------------------------

    @pytest.mark.parametrize("mode", MODES)
    def test_respects_bounds_steps_and_types(self, mode: str) -> None:
        space = bounds_space()
        trials = self.run(space, mode, seed=1)
        self.check_trials(space, trials)
        for trial in trials:
            assert set(trial.params) == set(space.names)
            assert trial.params["stepped_float"] in (0.0, 0.25, 0.5, 0.75, 1.0)
            assert trial.params["stepped_int"] in (0, 4, 8, 12)
            assert (trial.params["pinned_float"], trial.params["pinned_int"]) == (0.5, 3)

    @pytest.mark.parametrize("mode", MODES)
    def test_log_parameters_are_log_distributed(self, mode: str) -> None:
        space = log_space()
        trials = self.run(space, mode, seed=2, n_trials=32)
        self.check_trials(space, trials)
        for name in space.names:
            dist = space[name]
            low, high = math.log(dist.low), math.log(dist.high)  # type: ignore[attr-defined]
            positions = [(math.log(t.params[name]) - low) / (high - low) for t in trials]  # type: ignore[arg-type]
            mean = sum(positions) / len(positions)
            lower_half = sum(p < 0.5 for p in positions) / len(positions)
            # uniform sampling in linear space would put almost everything near 1
            assert 0.3 <= mean <= 0.7, f"{name}: mean log position {mean:.2f}"
            assert lower_half >= 0.25, f"{name}: {lower_half:.0%} in the lower log half"

    @pytest.mark.parametrize("mode", MODES)
    def test_every_categorical_choice_is_seen(self, mode: str) -> None:
        space = choices_space()
        trials = self.run(space, mode, seed=3, n_trials=40)
        self.check_trials(space, trials)
        for name in space.names:
            seen = {repr(t.params[name]) for t in trials}
            expected = {repr(choice) for choice in space[name].choices}  # type: ignore[attr-defined]
            assert seen == expected, f"{name}: saw {sorted(seen)}"

    @pytest.mark.parametrize("mode", MODES)
    def test_conditional_parameters(self, mode: str) -> None:
        space = conditional_space()
        trials = self.run(space, mode, seed=4, n_trials=40)
        self.check_trials(space, trials)
        for trial in trials:  # validate() above also refuses inactive parameters
            assert set(trial.params) == set(space.active_names(trial.params))

    def test_parameter_outside_the_space(self) -> None:
        """A parameter the sampler was not set up for is sampled legally, or refused with a
        SpaceError that names it."""
        space = Space(x=Float(0.0, 1.0))
        study = create_study(storage="memory", sampler=self.make_sampler(0, space))

        def objective(trial: Trial) -> float:
            return trial.suggest_float("x", 0.0, 1.0) + trial.suggest_float("extra", 2.0, 3.0)

        try:
            study.optimize(objective, n_trials=3)
        except SpaceError as error:
            assert "'extra'" in str(error)
            return
        for trial in study.trials:
            assert 2.0 <= trial.params["extra"] <= 3.0  # type: ignore[operator]

    # -- workers and restarts -------------------------------------------------------------

    def test_concurrent_processes(self, tmp_path: Path) -> None:
        """Processes on one SQLite study (half define-by-run, half with the space)."""
        space = small_space()
        url = f"sqlite:///{tmp_path / 'processes.db'}"
        study = create_study("shared", storage=url, sampler=self.make_sampler(5, space))
        n, per = self.n_processes, self.trials_per_process
        args = [
            (type(self), url, "shared", 5, space.to_dict(), MODES[i % 2], per) for i in range(n)
        ]
        run_in_processes(_process_worker, args)
        trials = study.trials
        if self.exhaustive:
            assert len(trials) <= n * per
        else:
            assert len(trials) == n * per
        assert [t.number for t in trials] == list(range(len(trials)))
        self.check_trials(space, trials)

    @pytest.mark.parametrize("mode", MODES)
    def test_resumes_after_restart(self, mode: str, tmp_path: Path) -> None:
        """Stop after k trials, reload with a new sampler of the same seed, continue: trials
        k, k+1, ... are those of an uninterrupted run."""
        space = small_space()
        url = f"sqlite:///{tmp_path / 'resume.db'}"
        # an exhaustive sampler runs until it stops; the cap only ends a sampler that never does
        total, k, seed = (self.max_exhaustive_trials, 7, 11) if self.exhaustive else (12, 5, 11)

        whole = create_study("whole", storage=url, sampler=self.make_sampler(seed, space))
        _optimize(whole, space, mode, total)
        expected = [t.params for t in whole.trials]

        part = create_study("part", storage=url, sampler=self.make_sampler(seed, space))
        _optimize(part, space, mode, k)
        del part
        resumed = load_study("part", storage=url, sampler=self.make_sampler(seed, space))
        _optimize(resumed, space, mode, total - k)
        trials = resumed.trials
        self.check_trials(space, trials)
        assert [t.params for t in trials] == expected
        if self.exhaustive:
            assert len(trials) < total, f"the sampler did not stop within {total} trials"
