"""Optimisation quality: tuningfork's samplers against Optuna 5 and hyperopt, in one run.

Runs every (problem, sampler, seed) for a fixed number of trials (default 100), in worker
processes, and reports the median and interquartile range of simple regret at 25, 50 and
100 trials, each sampler's average rank, and the issue's targets as PASS/FAIL lines. Each
job's result is cached as JSON in benchmarks/out/quality/, so an interrupted run resumes.
Prints a table per problem and writes its section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/quality.py              # full run (about half an hour)
    .venv/bin/python benchmarks/quality.py --dry-run    # the plan and its estimated time
    .venv/bin/python benchmarks/quality.py --quick      # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _problems import REAL_PROBLEMS
from _report import command, machine_lines, package_version, write_section
from scipy.stats import rankdata

import tuningfork as tf
from tuningfork.space import Categorical, Distribution, Float, Int
from tuningfork.testing.functions import PROBLEMS, Problem

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "RESULTS.md"
DEFAULT_CACHE = HERE / "out" / "quality"
SECTION = "quality.py"
BEGIN = f"<!-- begin {SECTION} (generated; edit the script, not this section) -->"
END = f"<!-- end {SECTION} -->"

ALL_PROBLEMS: dict[str, Problem] = {**PROBLEMS, **REAL_PROBLEMS}
SYNTHETIC = tuple(PROBLEMS)
SOLVED = 1e-5  # two median regrets both at or below this are a tie ("both solved")
NO_WORSE_FACTOR = 1.0  # ours no worse than theirs: ours <= theirs * NO_WORSE_FACTOR
TIME_WINDOW = 10  # "ms per trial at trial N": median over seeds of trials N-10 .. N-1
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class SamplerSpec:
    key: str
    label: str
    framework: str  # "tuningfork", "optuna", "hyperopt", "nevergrad" or "pymoo"
    default: bool = True  # part of a run without --samplers


SAMPLERS: dict[str, SamplerSpec] = {
    s.key: s
    for s in (
        SamplerSpec("tf-tpe", "tuningfork TPE", "tuningfork"),
        SamplerSpec("tf-gp", "tuningfork GP", "tuningfork"),
        SamplerSpec("tf-auto", "tuningfork auto (default)", "tuningfork"),
        SamplerSpec("tf-random", "tuningfork random", "tuningfork"),
        # Optuna 5's default TPE is multivariate (single objective): the second variant is
        # the independent (univariate) TPE; "optuna-tpe-mv" (multivariate=True) would repeat
        # the default draw for draw, so it is not run unless asked for.
        SamplerSpec("optuna-tpe", "Optuna TPE (default: multivariate)", "optuna"),
        SamplerSpec("optuna-tpe-uni", "Optuna TPE univariate", "optuna"),
        SamplerSpec("optuna-tpe-mv", "Optuna TPE multivariate=True", "optuna", default=False),
        SamplerSpec("optuna-gp", "Optuna GPSampler", "optuna"),
        SamplerSpec("hyperopt-tpe", "hyperopt TPE", "hyperopt"),
        SamplerSpec("hyperopt-random", "hyperopt random", "hyperopt", default=False),
        # issue 16's population samplers (by their registry names) and their anchors of the
        # same family; not in a default run (ask for them with --samplers)
        SamplerSpec("tf-cmaes", "tuningfork CMA-ES", "tuningfork", default=False),
        SamplerSpec("tf-cmaes-ipop", "tuningfork CMA-ES (IPOP)", "tuningfork", default=False),
        SamplerSpec("tf-de", "tuningfork DE", "tuningfork", default=False),
        SamplerSpec("tf-pso", "tuningfork PSO", "tuningfork", default=False),
        SamplerSpec("tf-eda", "tuningfork EDA", "tuningfork", default=False),
        SamplerSpec("tf-ga", "tuningfork GA", "tuningfork", default=False),
        SamplerSpec("optuna-cmaes", "Optuna CmaEsSampler", "optuna", default=False),
        # NSGA-II on one objective ranks by value alone: it is then a (mu + lambda) GA
        SamplerSpec(
            "optuna-nsga2", "Optuna NSGAIISampler (one objective: a GA)", "optuna", default=False
        ),
        SamplerSpec("pymoo-ga", "pymoo GA", "pymoo", default=False),
        SamplerSpec("ng-cma", "nevergrad CMA", "nevergrad", default=False),
        SamplerSpec("ng-de", "nevergrad DE", "nevergrad", default=False),
        SamplerSpec("ng-pso", "nevergrad PSO", "nevergrad", default=False),
        SamplerSpec("ng-ngopt", "nevergrad NGOpt", "nevergrad", default=False),
        SamplerSpec("ng-emna", "nevergrad EMNA", "nevergrad", default=False),
    )
}
# tuningfork samplers looked up by registry name (key "tf-NAME"), with their options
REGISTERED = {
    "tf-cmaes": ("cmaes", {}),
    "tf-cmaes-ipop": ("cmaes", {"restart_strategy": "ipop"}),
    "tf-de": ("de", {}),
    "tf-pso": ("pso", {}),
    "tf-eda": ("eda", {}),
    "tf-ga": ("ga", {}),
}
# nevergrad 1.0 registers EMNA with its default options (isotropic, naive) as NaiveIsoEMNA.
# NGOpt fails at 1,000 trials with nevergrad 1.0.12 and numpy 2.4 (its metamodel calls
# float() on a one-element array: TypeError), on 4 of the 5 problems tried.
NEVERGRAD = {
    "ng-cma": "CMA",
    "ng-de": "DE",
    "ng-pso": "PSO",
    "ng-ngopt": "NGOpt",
    "ng-emna": "NaiveIsoEMNA",
}
QUICK = {
    "problems": ["branin", "mixed"],
    "samplers": ["tf-random", "optuna-tpe", "hyperopt-tpe"],
    "seeds": 2,
    "trials": 20,
}
# Rough seconds per trial for the plan's estimate when no cached job says better.
DEFAULT_COST_S = {
    "tf-tpe": 0.01,
    "tf-gp": 0.1,
    "tf-auto": 0.1,
    "tf-random": 0.001,
    "optuna-tpe": 0.005,
    "optuna-tpe-uni": 0.005,
    "optuna-tpe-mv": 0.01,
    "optuna-gp": 0.15,
    "hyperopt-tpe": 0.01,
    "hyperopt-random": 0.002,
    "tf-cmaes": 0.002,
    "tf-cmaes-ipop": 0.002,
    "tf-de": 0.002,
    "tf-pso": 0.002,
    "tf-eda": 0.002,
    "tf-ga": 0.002,
    "optuna-cmaes": 0.005,
    "optuna-nsga2": 0.005,
    "pymoo-ga": 0.002,
    "ng-cma": 0.002,
    "ng-de": 0.002,
    "ng-pso": 0.002,
    "ng-ngopt": 0.01,
    "ng-emna": 0.002,
}
EVALUATION_COST_S = {"digits_svc": 0.035}


# -- samplers, found lazily -------------------------------------------------------------------


def _tuningfork_class(module: str, name: str) -> Any:
    """``tuningfork.samplers.<module>.<name>``; raises if it is not there (yet)."""
    return getattr(importlib.import_module(f"tuningfork.samplers.{module}"), name)


def missing_reason(key: str) -> str | None:
    """Why sampler ``key`` cannot run here, or None when it can."""
    needs = {
        "optuna": ["optuna"],
        "hyperopt": ["hyperopt"],
        "nevergrad": ["nevergrad"],
        "pymoo": ["pymoo"],
    }.get(SAMPLERS[key].framework, [])
    if key == "optuna-cmaes":
        needs = [*needs, "cmaes"]
    if key == "optuna-gp":
        needs = [*needs, "torch"]
    for package in needs:
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed"
    try:
        if key == "tf-tpe":
            _tuningfork_class("tpe", "TPESampler")
        elif key == "tf-gp":
            _tuningfork_class("gp", "GPSampler")
        elif key == "tf-auto":
            return _auto_missing()
        elif key in REGISTERED:
            tf.registry.lookup("sampler", REGISTERED[key][0])
    except Exception as error:  # not written yet, or broken mid-edit
        return f"cannot import it ({type(error).__name__}: {error})"
    return None


def _auto_missing() -> str | None:
    """None when ``create_study()`` without a sampler picks tuningfork's auto sampler."""
    if importlib.util.find_spec("tuningfork.samplers.auto") is None:
        return "tuningfork.samplers.auto does not exist yet"
    sampler = tf.create_study(storage="memory", seed=0).sampler
    if not type(sampler).__module__.startswith("tuningfork.samplers.auto"):
        return f"create_study() without a sampler still uses {type(sampler).__name__}"
    return None


def _source_files(key: str) -> list[Path]:
    """The tuningfork source files whose change invalidates cached results of ``key``: the
    whole samplers package for the model-based samplers (they share private modules)."""
    package = Path(tf.__file__).resolve().parent
    common = [package / "samplers" / "base.py", *sorted((package / "space").glob("*.py"))]
    if key == "tf-random":
        return [package / "samplers" / "random.py", *common]
    samplers = sorted((package / "samplers").rglob("*.py"))
    return sorted({*samplers, *common, *(package / "study").glob("*.py")})


def sampler_fingerprint(key: str) -> str:
    """Changes when the code behind ``key`` changes: tuningfork sources, or the versions."""
    spec = SAMPLERS[key]
    if spec.framework == "tuningfork":
        digest = hashlib.sha256()
        for path in _source_files(key):
            digest.update(path.name.encode() + path.read_bytes())
        return f"tuningfork {tf.__version__} src {digest.hexdigest()[:12]}"
    # Optuna's GPSampler optimises its acquisition in batches with greenlet, sequentially
    # (slower, slightly different proposals) without it.
    packages = [spec.framework] + (["torch", "greenlet"] if key == "optuna-gp" else [])
    return ", ".join(f"{p} {package_version(p)}" for p in packages)


def problem_fingerprint(name: str) -> str:
    problem = ALL_PROBLEMS[name]
    if name in REAL_PROBLEMS:
        text = (HERE / "_problems.py").read_text()
    else:
        space = json.dumps(problem.space.to_dict(), sort_keys=True, default=str)
        text = inspect.getsource(problem.function) + space + repr(problem.optimum)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# -- one job: a problem, a sampler, a seed ----------------------------------------------------


class Clock:
    """Evaluates the problem's function, keeping each value and the framework's time before
    it: the wall time from the end of the previous evaluation (or the start) to the start of
    this one, i.e. everything the framework does per trial (ask, sample, tell, bookkeeping)."""

    def __init__(self, function: Callable[[Mapping[str, Any]], float]) -> None:
        self.function = function
        self.values: list[float] = []
        self.framework_s: list[float] = []
        self._last = time.perf_counter()

    def start(self) -> None:
        self._last = time.perf_counter()

    def evaluate(self, params: Mapping[str, Any]) -> float:
        began = time.perf_counter()
        self.framework_s.append(began - self._last)
        value = float(self.function(params))
        self.values.append(value)
        self._last = time.perf_counter()
        return value


def run_tuningfork(key: str, problem: Problem, seed: int, trials: int, clock: Clock) -> Any:
    sampler: Any
    if key == "tf-auto":
        sampler = None  # create_study's own choice
    elif key == "tf-random":
        sampler = tf.RandomSampler(seed=seed)
    elif key == "tf-tpe":
        sampler = _tuningfork_class("tpe", "TPESampler")(seed=seed)
    elif key in REGISTERED:
        name, options = REGISTERED[key]
        sampler = tf.registry.lookup("sampler", name)(seed=seed, **options)
    else:
        sampler = _tuningfork_class("gp", "GPSampler")(seed=seed)
    study = tf.create_study(storage="memory", sampler=sampler, seed=seed)
    clock.start()
    study.optimize(
        lambda trial: clock.evaluate(trial.params),
        n_trials=trials,
        space=problem.space,
        show_progress_bar=False,
    )
    if len(clock.values) != trials:
        raise RuntimeError(f"{len(clock.values)} of {trials} trials evaluated")
    record = study.system_attrs
    return {key: value for key, value in record.items() if "sampler" in key}


def optuna_suggest(trial: Any, name: str, distribution: Distribution) -> Any:
    if isinstance(distribution, Float):
        return trial.suggest_float(
            name, distribution.low, distribution.high, log=distribution.log, step=distribution.step
        )
    if isinstance(distribution, Int):
        return trial.suggest_int(
            name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    if isinstance(distribution, Categorical):
        return trial.suggest_categorical(name, list(distribution.choices))
    raise TypeError(f"no Optuna translation for {distribution!r}")


def run_optuna(key: str, problem: Problem, seed: int, trials: int, clock: Clock) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = {
        "optuna-tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "optuna-tpe-uni": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=False),
        "optuna-tpe-mv": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True),
        "optuna-gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "optuna-cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
        "optuna-nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
    }[key]()
    study = optuna.create_study(sampler=sampler, direction="minimize")
    space = problem.space

    def objective(trial: Any) -> float:
        params = {name: optuna_suggest(trial, name, space[name]) for name in space.names}
        return clock.evaluate(params)

    clock.start()
    study.optimize(objective, n_trials=trials, gc_after_trial=False)
    return None


def hyperopt_space(space: Any) -> dict[str, Any]:
    """Float -> uniform / loguniform (log of the bounds), Int -> quniform / qloguniform over
    [low - 0.5, high + 0.5] (each integer gets an equal share), Categorical -> choice.
    A stepped Float or Int draws its grid index instead (low + step * index)."""
    from hyperopt import hp

    result: dict[str, Any] = {}
    for name in space.names:
        d = space[name]
        if isinstance(d, Categorical):
            result[name] = hp.choice(name, list(d.choices))
        elif d.log:
            low, high = (d.low - 0.5, d.high + 0.5) if isinstance(d, Int) else (d.low, d.high)
            if isinstance(d, Int):
                result[name] = hp.qloguniform(name, math.log(low), math.log(high), 1)
            else:
                result[name] = hp.loguniform(name, math.log(low), math.log(high))
        elif isinstance(d, Int) and d.step == 1:
            result[name] = hp.quniform(name, d.low - 0.5, d.high + 0.5, 1)
        elif d.step is not None:
            count = round((d.high - d.low) / d.step) + 1
            result[name] = d.low + d.step * hp.quniform(name, -0.5, count - 0.5, 1)
        else:
            result[name] = hp.uniform(name, d.low, d.high)
    return result


def from_hyperopt(distribution: Distribution, value: Any) -> Any:
    """hyperopt's number as a legal value of ``distribution`` (clipped, on the grid)."""
    if isinstance(distribution, Categorical):
        return value
    clipped = min(max(float(value), distribution.low), distribution.high)
    if isinstance(distribution, Int):
        return int(round(clipped))
    if distribution.step is not None:
        return distribution.from_unit(distribution.to_unit(clipped))
    return clipped


def run_hyperopt(key: str, problem: Problem, seed: int, trials: int, clock: Clock) -> Any:
    from hyperopt import Trials, fmin, rand, tpe

    space = problem.space
    algo = tpe.suggest if key == "hyperopt-tpe" else rand.suggest

    def objective(raw: Mapping[str, Any]) -> float:
        return clock.evaluate({name: from_hyperopt(space[name], raw[name]) for name in raw})

    clock.start()
    fmin(
        objective,
        hyperopt_space(space),
        algo=algo,
        max_evals=trials,
        trials=Trials(),
        rstate=np.random.default_rng(seed),
        show_progressbar=False,
        verbose=False,
    )
    return None


def nevergrad_parameter(distribution: Distribution) -> Any:
    """The nevergrad parameter of a distribution (a stepped float is rounded back onto its
    grid by `from_nevergrad`)."""
    import nevergrad as ng

    if isinstance(distribution, Categorical):
        return ng.p.Choice(list(distribution.choices))
    low, high = distribution.low, distribution.high  # type: ignore[attr-defined]
    if isinstance(distribution, Int):
        kind = ng.p.Log if distribution.log else ng.p.Scalar
        return kind(lower=low - 0.499, upper=high + 0.499).set_integer_casting()
    if distribution.log:  # type: ignore[attr-defined]
        return ng.p.Log(lower=low, upper=high)
    return ng.p.Scalar(lower=low, upper=high)


def from_nevergrad(distribution: Distribution, value: Any) -> Any:
    if isinstance(distribution, Int):
        return min(max(int(value), distribution.low), distribution.high)
    if isinstance(distribution, Float):
        clipped = min(max(float(value), distribution.low), distribution.high)
        return distribution.from_unit(distribution.to_unit(clipped))  # onto a step grid
    return value


def run_nevergrad(key: str, problem: Problem, seed: int, trials: int, clock: Clock) -> Any:
    import nevergrad as ng

    space = problem.space
    parametrization = ng.p.Dict(**{n: nevergrad_parameter(space[n]) for n in space.names})
    parametrization.random_state = np.random.RandomState(seed)
    optimizer = ng.optimizers.registry[NEVERGRAD[key]](
        parametrization=parametrization, budget=trials, num_workers=1
    )
    clock.start()
    for _ in range(trials):
        candidate = optimizer.ask()
        params = {n: from_nevergrad(space[n], v) for n, v in candidate.value.items()}
        optimizer.tell(candidate, clock.evaluate(params))
    return None


def pymoo_bounds(distribution: Distribution) -> tuple[float, float]:
    """The real interval pymoo searches for a distribution: Float -> [low, high] (a log Float:
    [ln low, ln high]); Int -> [low - 0.5, high + 0.5] (log: the ln of those), rounded by
    `from_pymoo` so that each integer gets an equal share; Categorical -> the integer codes
    [-0.5, n - 0.5], rounded to the index of a choice."""
    if isinstance(distribution, Categorical):
        return -0.5, len(distribution.choices) - 0.5
    low, high = float(distribution.low), float(distribution.high)  # type: ignore[attr-defined]
    if isinstance(distribution, Int):
        low, high = low - 0.5, high + 0.5
    if distribution.log:  # type: ignore[attr-defined]
        return math.log(low), math.log(high)
    return low, high


def from_pymoo(distribution: Distribution, x: float) -> Any:
    """pymoo's real number as a legal value of ``distribution`` (rounded, clipped, on the
    grid of a stepped Float)."""
    if isinstance(distribution, Categorical):
        index = min(max(int(round(x)), 0), len(distribution.choices) - 1)
        return distribution.choices[index]
    number = math.exp(x) if distribution.log else x  # type: ignore[attr-defined]
    if isinstance(distribution, Int):
        return min(max(int(round(number)), distribution.low), distribution.high)
    return from_nevergrad(distribution, number)  # clipped, onto a step grid


def run_pymoo(key: str, problem: Problem, seed: int, trials: int, clock: Clock) -> Any:
    """pymoo's GA (defaults: 100 members and 100 children per generation, SBX crossover,
    polynomial mutation, duplicates eliminated) through ask-and-tell, one trial per child;
    the last generation is cut at the trial budget (its children are not told)."""
    from pymoo.algorithms.soo.nonconvex.ga import GA
    from pymoo.core.evaluator import Evaluator
    from pymoo.core.problem import Problem as PymooProblem
    from pymoo.core.termination import NoTermination
    from pymoo.problems.static import StaticProblem

    space = problem.space
    distributions = [space[name] for name in space.names]
    bounds = np.array([pymoo_bounds(d) for d in distributions])
    box = PymooProblem(n_var=len(distributions), n_obj=1, xl=bounds[:, 0], xu=bounds[:, 1])
    algorithm = GA()
    algorithm.setup(box, termination=NoTermination(), seed=seed)
    clock.start()
    while len(clock.values) < trials:
        population = algorithm.ask()
        if population is None or len(population) == 0:
            raise RuntimeError(f"pymoo's GA proposed nothing after {len(clock.values)} trials")
        values = []
        for x in population.get("X")[: trials - len(clock.values)]:
            params = {n: from_pymoo(d, float(v)) for n, d, v in zip(space.names, distributions, x)}
            values.append(clock.evaluate(params))
        if len(values) == len(population):
            evaluated = StaticProblem(box, F=np.array(values)[:, None])
            Evaluator().eval(evaluated, population)
            algorithm.tell(infills=population)
    return None


RUNNERS = {
    "tuningfork": run_tuningfork,
    "optuna": run_optuna,
    "hyperopt": run_hyperopt,
    "nevergrad": run_nevergrad,
    "pymoo": run_pymoo,
}


def _init_worker() -> None:
    warnings.filterwarnings("ignore")  # Optuna's ExperimentalWarning, sklearn's convergence
    try:
        import torch  # only to pin its threads; imported by Optuna's GPSampler anyway

        torch.set_num_threads(1)
    except ImportError:
        pass


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job and write its JSON file; returns a short summary (or the error)."""
    began = time.perf_counter()
    try:
        problem = ALL_PROBLEMS[job["problem"]]
        clock = Clock(problem.function)
        runner = RUNNERS[SAMPLERS[job["sampler"]].framework]
        chosen = runner(job["sampler"], problem, job["seed"], job["trials"], clock)
        if len(clock.values) != job["trials"]:
            raise RuntimeError(f"{len(clock.values)} of {job['trials']} trials evaluated")
        result = {
            **job,
            "values": clock.values,
            "framework_s": clock.framework_s,
            "wall_s": time.perf_counter() - began,
            "chosen": chosen,
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        path = Path(job["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(result, default=str))
        os.replace(partial, path)  # a half-written file never looks like a result
        return {"ok": True, "wall_s": result["wall_s"], "best": min(clock.values)}
    except Exception:
        return {"ok": False, "wall_s": time.perf_counter() - began, "error": traceback.format_exc()}


# -- the plan ---------------------------------------------------------------------------------


def job_path(cache: Path, problem: str, sampler: str, seed: int, trials: int) -> Path:
    return cache / f"{problem}__{sampler}__seed{seed}__trials{trials}.json"


def load_cached(path: Path, fingerprint: dict[str, str]) -> dict[str, Any] | None:
    """The cached result at ``path`` if it was made by the same code, else None."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if result.get("fingerprint") != fingerprint:
        return None
    return result


def cost_per_trial(cache: Path, problem: str, sampler: str) -> float:
    """Seconds per trial, from any cached job of this pair (any seed, any code), else a guess."""
    walls = []
    for path in cache.glob(f"{problem}__{sampler}__seed*__trials*.json"):
        try:
            result = json.loads(path.read_text())
            walls.append(result["wall_s"] / max(1, len(result["values"])))
        except (OSError, ValueError, KeyError):
            continue
    if walls:
        return statistics.median(walls)
    return DEFAULT_COST_S.get(sampler, 0.05) + EVALUATION_COST_S.get(problem, 0.0)


# -- report -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """The cached results of one (problem, sampler) pair, one per seed."""

    problem: str
    sampler: str
    results: list[dict[str, Any]]

    def best_curves(self) -> np.ndarray:
        """Running best value after each trial, one row per seed."""
        return np.array([np.minimum.accumulate(r["values"]) for r in self.results])

    def framework_ms(self) -> np.ndarray:
        return np.array([r["framework_s"] for r in self.results]) * 1e3


def reference_values(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """The optimum of each problem, or for a real problem the best value seen in the run."""
    reference = {}
    for outcome in outcomes:
        problem = ALL_PROBLEMS[outcome.problem]
        if not math.isnan(problem.optimum):
            reference[outcome.problem] = problem.optimum
            continue
        seen = min(min(r["values"]) for r in outcome.results)
        reference[outcome.problem] = min(reference.get(outcome.problem, math.inf), seen)
    return reference


def regret_curves(outcome: Outcome, reference: float) -> np.ndarray:
    # Clipped at 0: a value a rounding error below a published optimum is no regret.
    return np.maximum(outcome.best_curves() - reference, 0.0)


def marks_for(trials: int) -> list[int]:
    return sorted({max(1, round(trials * f)) for f in (0.25, 0.5, 1.0)})


def _g(x: float) -> str:
    if x == 0:
        return "0"
    return f"{x:.2g}" if abs(x) < 1e-3 or abs(x) >= 1e4 else f"{x:.3g}"


def _median_iqr(x: np.ndarray) -> str:
    q25, q50, q75 = np.percentile(x, [25, 50, 75])
    return f"{_g(q50)} [{_g(q25)}, {_g(q75)}]"


def _ms(x: float) -> str:
    return f"{x:.3f}" if x < 1 else (f"{x:.2f}" if x < 10 else f"{x:.0f}")


@dataclass
class Report:
    outcomes: dict[tuple[str, str], Outcome]
    problems: list[str]
    samplers: list[str]
    trials: int
    reference: dict[str, float]

    def regrets(self, problem: str, sampler: str) -> np.ndarray | None:
        outcome = self.outcomes.get((problem, sampler))
        if outcome is None:
            return None
        return regret_curves(outcome, self.reference[problem])

    def median_final(self, problem: str, sampler: str) -> float | None:
        regrets = self.regrets(problem, sampler)
        return None if regrets is None else float(np.median(regrets[:, -1]))

    def problem_table(self, problem: str) -> list[str]:
        marks = marks_for(self.trials)
        real = math.isnan(ALL_PROBLEMS[problem].optimum)
        head = "| sampler | " + " | ".join(
            f"regret at {m}: median [25%, 75%]" if i == 0 else f"at {m}"
            for i, m in enumerate(marks)
        )
        head += " |"
        if real:
            head += f" best value at {self.trials}: median [25%, 75%] |"
        head += f" ms/trial outside the objective: mean | at trial {self.trials} | seeds |"
        columns = head.count("|") - 1
        lines = [head, "|" + "---|" * columns]
        for sampler in self.samplers:
            regrets = self.regrets(problem, sampler)
            if regrets is None:
                continue
            outcome = self.outcomes[(problem, sampler)]
            cells = [_median_iqr(regrets[:, m - 1]) for m in marks]
            if real:
                cells.append(_median_iqr(outcome.best_curves()[:, -1]))
            times = outcome.framework_ms()
            window = times[:, max(0, self.trials - TIME_WINDOW) : self.trials]
            cells += [_ms(float(times.mean())), _ms(float(np.median(window)))]
            cells.append(str(len(outcome.results)))
            lines.append(f"| {SAMPLERS[sampler].label} | " + " | ".join(cells) + " |")
        return lines

    # -- ranks -------------------------------------------------------------------------------

    def ranked_samplers(self) -> list[str]:
        """The samplers with results on every problem (only they can be ranked)."""
        return [s for s in self.samplers if all((p, s) in self.outcomes for p in self.problems)]

    def ranks(self) -> dict[str, dict[str, float]]:
        """Rank of each sampler on each problem by median regret at the last trial (1 best;
        ties, including "both solved", share the average rank)."""
        samplers = self.ranked_samplers()
        table: dict[str, dict[str, float]] = {s: {} for s in samplers}
        for problem in self.problems:
            medians = [self.median_final(problem, s) for s in samplers]
            keys = [0.0 if m <= SOLVED else m for m in medians]  # type: ignore[operator]
            for sampler, rank in zip(samplers, rankdata(keys, method="average")):
                table[sampler][problem] = float(rank)
        return table

    def rank_table(self) -> tuple[list[str], dict[str, float]]:
        ranks = self.ranks()
        synthetic = [p for p in self.problems if p in SYNTHETIC]
        average = {s: statistics.mean(r.values()) for s, r in ranks.items() if r}
        order = sorted(average, key=lambda s: average[s])
        lines = [
            f"| position | sampler | average rank, all {len(self.problems)} problems | "
            f"average rank, {len(synthetic)} synthetic | ranked first (ties shared) on |",
            "|---|---|---|---|---|",
        ]
        for sampler in order:
            position = 1 + sum(1 for s in order if average[s] < average[sampler])
            syn = [ranks[sampler][p] for p in synthetic]
            firsts = [
                p for p in self.problems if ranks[sampler][p] == min(ranks[s][p] for s in order)
            ]
            lines.append(
                f"| {position} | {SAMPLERS[sampler].label} | {average[sampler]:.2f} | "
                f"{statistics.mean(syn):.2f} | {', '.join(firsts) or '—'} |"
                if syn
                else f"| {position} | {SAMPLERS[sampler].label} | {average[sampler]:.2f} | — | "
                f"{', '.join(firsts) or '—'} |"
            )
        return lines, average

    # -- targets -----------------------------------------------------------------------------

    def compare(
        self, ours: str, theirs: Sequence[str]
    ) -> list[tuple[str, float, float, str, bool]]:
        """(problem, our median, their best median, their sampler, no worse?) per synthetic
        problem where both have results."""
        rows = []
        for problem in self.problems:
            if problem not in SYNTHETIC:
                continue
            mine = self.median_final(problem, ours)
            others = [(self.median_final(problem, t), t) for t in theirs]
            others = [(m, t) for m, t in others if m is not None]
            if mine is None or not others:
                continue
            best, who = min(others)
            fine = mine <= best * NO_WORSE_FACTOR or (mine <= SOLVED and best <= SOLVED)
            rows.append((problem, mine, best, who, fine))
        return rows

    def target_line(self, name: str, ours: str, theirs: Sequence[str]) -> tuple[str, list[str]]:
        """A PASS/FAIL/SKIP line for "no worse on >= 5 of 7", and the problems we lose."""
        if ours not in self.samplers or not any(t in self.samplers for t in theirs):
            absent = [s for s in (ours, *theirs) if s not in self.samplers]
            return f"SKIP  {name}: not run ({', '.join(absent)})", []
        rows = self.compare(ours, theirs)
        wins = sum(1 for row in rows if row[4])
        losses = [
            f"{problem}: {mine:.3g} vs {best:.3g} ({SAMPLERS[who].label})"
            for problem, mine, best, who, fine in rows
            if not fine
        ]
        tail = f"{wins} of {len(rows)} no worse" + (
            f"; loses on {'; '.join(losses)}" if losses else ""
        )
        if len(rows) < len(SYNTHETIC) or self.trials != 100:
            why = f"{len(rows)} of {len(SYNTHETIC)} synthetic problems at {self.trials} trials"
            return f"SKIP  {name}: needs all 7 at 100 trials, have {why}: {tail}", losses
        return f"{'PASS' if wins >= 5 else 'FAIL'}  {name}: {tail}", losses

    def auto_line(self, average: dict[str, float]) -> str:
        name = "tuningfork auto sampler first or second of all samplers by average rank"
        if "tf-auto" not in average:
            return f"SKIP  {name}: not run (or not on every problem)"
        position = 1 + sum(1 for s in average if average[s] < average["tf-auto"])
        line = (
            f"position {position} of {len(average)} (average rank {average['tf-auto']:.2f} over "
            f"{len(self.problems)} problems"
        )
        leaders = sorted(average, key=lambda s: average[s])[:2]
        line += (
            "; top two: "
            + ", ".join(f"{SAMPLERS[s].label} {average[s]:.2f}" for s in leaders)
            + ")"
        )
        if len(self.problems) < len(ALL_PROBLEMS) or self.trials != 100:
            return f"SKIP  {name}: needs all {len(ALL_PROBLEMS)} problems at 100 trials: {line}"
        return f"{'PASS' if position <= 2 else 'FAIL'}  {name}: {line}"

    def where_we_lose(self) -> list[str]:
        """Per problem: is the best tuningfork model-based sampler behind someone else's?"""
        ours = [s for s in ("tf-tpe", "tf-gp", "tf-auto") if s in self.samplers]
        theirs = [s for s in self.samplers if SAMPLERS[s].framework != "tuningfork"]
        lines = []
        for problem in self.problems:
            mine = [(self.median_final(problem, s), s) for s in ours]
            other = [(self.median_final(problem, s), s) for s in theirs]
            mine = [(m, s) for m, s in mine if m is not None]
            other = [(m, s) for m, s in other if m is not None]
            if not mine or not other:
                continue
            (m, s), (o, t) = min(mine), min(other)
            if m <= o * NO_WORSE_FACTOR or (m <= SOLVED and o <= SOLVED):
                continue
            lines.append(f"- {problem}: {SAMPLERS[s].label} {m:.3g} vs {SAMPLERS[t].label} {o:.3g}")
        return lines


def auto_choices(report: Report) -> list[str]:
    """What the auto sampler said it chose, per problem (from the study record)."""
    lines = []
    for problem in report.problems:
        outcome = report.outcomes.get((problem, "tf-auto"))
        if outcome is None:
            continue
        counts: dict[str, int] = {}
        for result in outcome.results:
            record = result.get("chosen") or {}
            choice = record.get("auto_sampler")
            if isinstance(choice, Mapping):
                text = f"{choice.get('chosen')} from trial {choice.get('from_trial')}"
                text += f" ({choice.get('reason')})" if choice.get("reason") else ""
            else:  # an auto sampler that records its choice some other way
                text = json.dumps({k: v for k, v in record.items() if k != "sampler"})
            counts[text] = counts.get(text, 0) + 1
        summary = "; ".join(f"{text}: {n} seed(s)" for text, n in sorted(counts.items()))
        lines.append(f"- {problem}: {summary}")
    return lines


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: " + json.dumps(QUICK))
    parser.add_argument(
        "--problems",
        nargs="+",
        choices=list(ALL_PROBLEMS),
        metavar="NAME",
        help=f"default: all ({', '.join(ALL_PROBLEMS)})",
    )
    parser.add_argument(
        "--samplers",
        nargs="+",
        choices=list(SAMPLERS),
        metavar="KEY",
        help="default: "
        + ", ".join(k for k, s in SAMPLERS.items() if s.default)
        + "; also: "
        + ", ".join(k for k, s in SAMPLERS.items() if not s.default),
    )
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 10)")
    parser.add_argument("--trials", type=int, help="trials per study (default 100)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help="per-job JSON results (default benchmarks/out/quality)",
    )
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="RESULTS.md path")
    parser.add_argument("--force", action="store_true", help="rerun jobs even if cached")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and its time")
    parser.add_argument(
        "--cached-only", action="store_true", help="run nothing; report from the cached results"
    )
    args = parser.parse_args(argv)
    defaults = (
        QUICK
        if args.quick
        else {
            "problems": list(ALL_PROBLEMS),
            "samplers": [k for k, s in SAMPLERS.items() if s.default],
            "seeds": 10,
            "trials": 100,
        }
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, str]:
    packages = (
        "tuningfork",
        "optuna",
        "hyperopt",
        "torch",
        "greenlet",
        "numpy",
        "scipy",
        "scikit-learn",
        "cmaes",
        "nevergrad",
        "pymoo",
    )
    return {
        **machine_lines(),
        "versions": ", ".join(f"{p} {package_version(p)}" for p in packages),
    }


def plan(args: argparse.Namespace, samplers: list[str]) -> list[dict[str, Any]]:
    """Every job of the run, with its cache path and the fingerprint of the code behind it."""
    fingerprints = {s: sampler_fingerprint(s) for s in samplers}
    problems = {p: problem_fingerprint(p) for p in args.problems}
    jobs = []
    for problem in args.problems:
        for sampler in samplers:
            for seed in range(args.seeds):
                path = job_path(args.cache_dir, problem, sampler, seed, args.trials)
                jobs.append(
                    {
                        "problem": problem,
                        "sampler": sampler,
                        "seed": seed,
                        "trials": args.trials,
                        "fingerprint": {
                            "sampler": fingerprints[sampler],
                            "problem": problems[problem],
                        },
                        "path": str(path),
                    }
                )
    return jobs


def collect(jobs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cached results of ``jobs`` made by the code the jobs were planned with."""
    results = (load_cached(Path(job["path"]), job["fingerprint"]) for job in jobs)
    return [r for r in results if r is not None]


def pending(args: argparse.Namespace, jobs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The jobs without a valid cached result: seed by seed (so that a run cut short still
    has whole seeds), longest (estimated) first within a seed."""
    to_run = []
    for job in jobs:
        if not args.force and load_cached(Path(job["path"]), job["fingerprint"]) is not None:
            continue
        cost = cost_per_trial(args.cache_dir, job["problem"], job["sampler"])
        to_run.append({**job, "estimate_s": args.trials * cost})
    to_run.sort(key=lambda j: (j["seed"], -j["estimate_s"]))
    return to_run


def estimate(jobs: Sequence[dict], workers: int) -> float:
    """Wall seconds for ``jobs`` on ``workers`` processes, longest job first (greedy)."""
    loads = [0.0] * max(1, workers)
    for job in jobs:
        loads[loads.index(min(loads))] += job["estimate_s"]
    return max(loads)


def announce(jobs: Sequence[dict], to_run: Sequence[dict], workers: int, by_sampler: bool) -> None:
    """Print how many jobs run and their estimated time (per sampler too if asked)."""
    wall = estimate(to_run, workers)
    _progress(
        f"{len(jobs)} jobs, {len(jobs) - len(to_run)} cached, {len(to_run)} to run: "
        f"~{sum(j['estimate_s'] for j in to_run) / 60:.1f} process-min, "
        f"~{wall / 60:.1f} min on {workers} workers (estimate from cached timings "
        "where there are some, else rough defaults)"
    )
    if not by_sampler:
        return
    seconds: dict[str, float] = {}
    for job in to_run:
        seconds[job["sampler"]] = seconds.get(job["sampler"], 0.0) + job["estimate_s"]
    for sampler, total in sorted(seconds.items(), key=lambda kv: -kv[1]):
        _progress(f"  {sampler}: ~{total / 60:.1f} process-min")


def _best(summary: dict[str, Any]) -> str:
    return f"best {summary['best']:.6g}"


def run_jobs(
    jobs: list[dict],
    workers: int,
    run: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    initializer: Callable[[], None] = _init_worker,
    outcome: Callable[[dict[str, Any]], str] = _best,
) -> tuple[list[str], float]:
    """Run the jobs in ``workers`` processes; returns the error summaries and the job time.
    ``run`` (default `run_job`) runs one job in a worker, after ``initializer``; ``outcome``
    words a successful job's summary for the progress line."""
    for variable in THREAD_VARIABLES:  # one thread per job: the workers share the cores
        os.environ.setdefault(variable, "1")
    errors, busy, began = [], 0.0, time.perf_counter()
    remaining = sum(j["estimate_s"] for j in jobs)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker
    ) as pool:
        futures = {pool.submit(run or run_job, job): job for job in jobs}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            job, summary = futures[future], future.result()
            busy += summary["wall_s"]
            remaining -= job["estimate_s"]
            elapsed = time.perf_counter() - began
            left = max(0.0, remaining) / max(1, workers)
            head = f"[{done}/{len(jobs)}] {job['problem']} {job['sampler']} seed {job['seed']}"
            if summary["ok"]:
                _progress(
                    f"{head}: {outcome(summary)}, {summary['wall_s']:.1f} s; "
                    f"elapsed {elapsed / 60:.1f} min, ~{left / 60:.1f} min left"
                )
            else:
                last = summary["error"].strip().splitlines()[-1]
                errors.append(f"{job['problem']} / {job['sampler']} / seed {job['seed']}: {last}")
                _progress(f"{head}: FAILED\n{summary['error']}")
    return errors, busy


def build_report(
    args: argparse.Namespace,
    samplers: list[str],
    results: list[dict],
) -> Report:
    outcomes: dict[tuple[str, str], Outcome] = {}
    for result in sorted(results, key=lambda r: r["seed"]):
        key = (result["problem"], result["sampler"])
        outcomes.setdefault(key, Outcome(key[0], key[1], [])).results.append(result)
    reference = reference_values(list(outcomes.values()))
    problems = [p for p in args.problems if any(k[0] == p for k in outcomes)]
    return Report(outcomes, problems, samplers, args.trials, reference)


def render(
    args: argparse.Namespace,
    report: Report,
    skipped: dict[str, str],
    errors: list[str],
    started: datetime.datetime,
    run_s: float,
    job_s: float,
    jobs: Sequence[dict[str, Any]],
    load: tuple[float, float],
) -> str:
    by_code: dict[str, list[str]] = {}
    for sampler in report.samplers:
        if SAMPLERS[sampler].framework == "tuningfork":
            code = next(j["fingerprint"]["sampler"] for j in jobs if j["sampler"] == sampler)
            by_code.setdefault(code, []).append(sampler)
    fingerprints = [f"{', '.join(keys)}: {code}" for code, keys in by_code.items()]
    busy = sum(r["wall_s"] for o in report.outcomes.values() for r in o.results)
    marks = marks_for(args.trials)
    lines = [
        f"## Optimisation quality (`benchmarks/{Path(__file__).name}`)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC"
        + (" (quick smoke run: figures are not meaningful)" if args.quick else ""),
        *(f"- {key}: {value}" for key, value in machine().items()),
        f"- command: `{command()}`",
        f"- {len(report.problems)} problems x {len(report.samplers)} samplers x {args.seeds} "
        f"seeds x {args.trials} trials, {args.workers} worker processes, one thread each",
        f"- run time of this command: {run_s / 60:.1f} min; jobs run now: {job_s / 60:.1f} "
        f"process-min; all reported jobs: {busy / 60:.1f} process-min, i.e. about "
        f"{busy / 60 / args.workers:.0f} min for a run from an empty cache on {args.workers} "
        "workers (cached jobs are reused while the code behind them is unchanged)",
        "- tuningfork sampler sources: " + ("; ".join(fingerprints) or "—"),
        "",
        "Simple regret = best value found so far - the global minimum (clipped at 0). "
        "The real problem `digits_svc` (PCA + SVC on scikit-learn's digits, fixed stratified "
        "50/50 split, value = validation error = 1 - accuracy on 899 images; 7 parameters: "
        "PCA components int-log, whiten, kernel, C log, gamma log, degree, coef0) has no known "
        "optimum: its regret is taken against the lowest validation error seen by any sampler "
        "with any seed in this run"
        + (f" ({_g(report.reference['digits_svc'])})" if "digits_svc" in report.reference else "")
        + ". "
        f"Median and interquartile range (25th-75th percentile) over the seeds, at {marks} "
        'trials. "ms/trial outside the objective" is the wall time from the end of one '
        "evaluation to the start of the next (ask, sampling, tell and the framework's "
        f'bookkeeping); "at trial {args.trials}" is the median over the seeds of trials '
        f"{args.trials - TIME_WINDOW + 1}..{args.trials}. Each job runs single-threaded (OMP, "
        "OpenBLAS, MKL and torch threads = 1), two jobs at a time: these times are higher "
        "than `overhead.py`'s. Studies in memory (tuningfork `storage=\"memory\"`, Optuna's "
        "default); tuningfork via `study.optimize(..., space=problem.space)`, Optuna via "
        "define-by-run `suggest_*`, hyperopt via `fmin` (Float -> uniform/loguniform, Int -> "
        "quniform/qloguniform over [low - 0.5, high + 0.5] then int, Categorical -> choice). "
        "Seeds 0..N-1: `TPESampler(seed=s)`, `GPSampler(seed=s)`, `create_study(seed=s)` "
        "(auto), `RandomSampler(seed=s)`, Optuna `TPESampler(seed=s)` (in Optuna 5 the default "
        "is multivariate for one objective, so `multivariate=True` would repeat it draw for "
        "draw) / `TPESampler(seed=s, multivariate=False)` / `GPSampler(seed=s)`, hyperopt "
        "`rstate=default_rng(s)`, all other options at their defaults. The machine is shared: "
        f"load average {load[0]:.1f} at the start of this command and {load[1]:.1f} at the end "
        f"(on {os.cpu_count()} cores); a load above the core count slows every job, so the times "
        "are indicative only (see `overhead.py` for timed figures).",
        "",
    ]
    if skipped:
        lines += ["Samplers not run:", ""]
        lines += [f"- {SAMPLERS[k].label} (`{k}`): {why}" for k, why in skipped.items()]
        lines.append("")
    missing = len(jobs) - sum(len(o.results) for o in report.outcomes.values())
    if missing:
        lines += [
            f"{missing} of {len(jobs)} jobs have no result (not run, failed, or the code "
            "behind them changed since): their (problem, sampler) pairs have fewer seeds.",
            "",
        ]
    if errors:
        lines += [f"{len(errors)} job(s) failed (not reported):", ""]
        lines += [f"- {e}" for e in errors[:20]]
        lines.append("")
    for problem in report.problems:
        optimum = ALL_PROBLEMS[problem].optimum
        what = "optimum unknown" if math.isnan(optimum) else f"global minimum {optimum:.6g}"
        dims = len(ALL_PROBLEMS[problem].space.names)
        lines += [f"### {problem} ({dims} parameters, {what})", ""]
        lines += report.problem_table(problem)
        lines.append("")
    rank_lines, average = report.rank_table()
    excluded = [s for s in report.samplers if s not in report.ranked_samplers()]
    lines += [
        "### Average rank",
        "",
        f"Rank on each problem by median regret at {args.trials} trials (1 = best; median "
        f"regrets both <= {SOLVED:g} tie, ties share the average rank), averaged over the "
        "problems"
        + (f"; not ranked (missing results): {', '.join(excluded)}" if excluded else "")
        + ".",
        "",
        *rank_lines,
        "",
        "### Targets",
        "",
        f'"No worse": our median regret at {args.trials} trials <= theirs x '
        f"{NO_WORSE_FACTOR:g}, or both <= {SOLVED:g} (both solved). Optuna's best TPE variant "
        "is, per problem, the best median of those run (default = multivariate, and "
        "univariate).",
        "",
    ]
    gp_line, gp_losses = report.target_line(
        "tuningfork GP no worse than Optuna GPSampler on >= 5 of 7 synthetic problems",
        "tf-gp",
        ["optuna-gp"],
    )
    tpe_line, tpe_losses = report.target_line(
        "tuningfork TPE no worse than Optuna's best TPE variant on >= 5 of 7 synthetic problems",
        "tf-tpe",
        ["optuna-tpe", "optuna-tpe-uni", "optuna-tpe-mv"],
    )
    lines += ["```", gp_line, tpe_line, report.auto_line(average), "```", ""]
    lines += ["### Where we lose", ""]
    if not any(s in report.samplers for s in ("tf-tpe", "tf-gp", "tf-auto")):
        lines += ["- no tuningfork model-based sampler (TPE, GP, auto) in this run"]
    else:
        lines += [
            f"Target comparisons lost (median regret at {args.trials} trials, ours vs theirs):",
            "",
        ]
        lines += [f"- GP, {text}" for text in gp_losses]
        lines += [f"- TPE, {text}" for text in tpe_losses]
        if not gp_losses and not tpe_losses:
            lines.append("- none")
        lines += [
            "",
            "Problems where tuningfork's best model-based sampler (TPE, GP or auto) is behind "
            "the best sampler of another framework (same rule):",
            "",
        ]
        lines += report.where_we_lose() or ["- none"]
    choices = auto_choices(report)
    if choices:
        lines += ["", "What the auto sampler recorded in the study (`auto_sampler`):", ""]
        lines += choices
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    began = time.perf_counter()
    load_start = os.getloadavg()[0]
    skipped = {k: why for k in args.samplers if (why := missing_reason(k)) is not None}
    samplers = [k for k in args.samplers if k not in skipped]
    for key, why in skipped.items():
        _progress(f"skipping {SAMPLERS[key].label}: {why}")
    jobs = plan(args, samplers)
    to_run = pending(args, jobs)
    announce(jobs, to_run, args.workers, args.dry_run)
    if args.dry_run:
        return 0
    errors: list[str] = []
    job_s = 0.0
    if to_run and not args.cached_only:
        errors, job_s = run_jobs(to_run, args.workers)
    report = build_report(args, samplers, collect(jobs))
    body = render(
        args,
        report,
        skipped,
        errors,
        started,
        time.perf_counter() - began,
        job_s,
        jobs,
        (load_start, os.getloadavg()[0]),
    )
    print(body)
    write_section(args.results, body, BEGIN, END)
    _progress(f"wrote {args.results}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
