"""Before/after comparison of two tuningfork source trees, both measured in one run.

Runs the tuningfork parts of `overhead.py` (ask+tell time per trial, the throughput of
several processes on one SQLite study, TPE and GP sampling time), `quality.py` (regret of
the TPE, GP and auto samplers) and `multifidelity.py` (ASHA, Hyperband + TPE, BOHB, DEHB)
for a BEFORE and an AFTER tree. Each tree runs in its own child processes
(``PYTHONPATH=<tree>/src:<tree>/benchmarks``), so the two versions never share a process;
the timed parts alternate between the trees block by block, so load drifts hit both alike.
Prints tables of before, after and after/before with a PASS/FAIL line per part, and writes
its section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/compare.py --before ../wt-base --after .            # ~20 min
    .venv/bin/python benchmarks/compare.py --before ../wt-base --after . --dry-run  # the plan
    .venv/bin/python benchmarks/compare.py --before . --after . --quick             # smoke run
"""

# Only the standard library at module level: the child processes run this file with the
# tree under test's paths (and overhead.py's throughput workers, spawned from a child,
# import it again as their __main__), where this folder's modules are not on the path.
from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib
import importlib.util
import inspect
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "RESULTS.md"
SECTION = "compare.py"
BEGIN = f"<!-- begin {SECTION} (generated; edit the script, not this section) -->"
END = f"<!-- end {SECTION} -->"
PARTS = ("overhead", "sampling", "quality", "mf")
TIME_LIMIT = 1.10  # a timed figure passes when after / before <= this, at the medians
BLOCK = 50  # trials a tree runs before the other tree takes its turn (overhead.py's BLOCK)
# A mark's figure is the median of the trials before it: wider windows than overhead.py's
# (50 and 10), because a ratio within 10% needs a steadier figure than a level does (a
# 50-trial window of a 0.03 ms round trip moves by 15% between repeats on a shared machine).
PER_TRIAL_WINDOW = 250
WARM_UP = 20  # trials of a throwaway study of each kind before the timed ones
SAMPLING_WINDOW = 50
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# The helpers of each tree's own benchmarks that the children run; the report says whether
# their source is the same in both trees (a difference there is a difference of method).
HARNESS = (
    "overhead.round_trip",
    "overhead.Series",
    "overhead.run_throughput",
    "overhead._worker",
    "overhead.Sampling",
    "overhead._ask_tell_step",
    "quality.Clock",
    "_mf_tuningfork.run_study",
)


@dataclass(frozen=True)
class Method:
    """A multi-fidelity method: a tuningfork scheduler with its options (passed by
    keyword), a sampler, and whether the scheduler takes the run's seed."""

    label: str
    scheduler: str
    options: dict[str, Any]
    sampler: str = "TPESampler"
    seeded: bool = False


# ASHA's mode is always explicit: the after code may change its default.
MF_METHODS: dict[str, Method] = {
    "asha-stopping-tpe": Method("ASHA (mode=stopping) + TPE", "ASHA", {"mode": "stopping"}),
    "asha-promotion-tpe": Method("ASHA (mode=promotion) + TPE", "ASHA", {"mode": "promotion"}),
    "hyperband-tpe": Method("Hyperband + TPE", "Hyperband", {"mode": "promotion"}, seeded=True),
    "bohb": Method("BOHB", "BOHB", {"mode": "promotion"}, "RandomSampler", seeded=True),
    "dehb": Method("DEHB", "DEHB", {}, "RandomSampler", seeded=True),
}
MF_MIN_STEP, MF_ETA = 1, 3  # multifidelity.py's settings
QUALITY_SAMPLERS = {"tpe": "TPE", "gp": "GP", "auto": "auto (default)"}
SAMPLING_FAMILIES = {"TPE": "TPESampler", "GP": "GPSampler"}
LCBENCH = "lcbench_189906"  # multifidelity.py's default LCBench task


@dataclass(frozen=True)
class Plan:
    """What one run measures; `FULL` and `QUICK` are the two presets."""

    parts: tuple[str, ...] = PARTS
    quick: bool = False
    seed: int = 0  # of the timed studies
    repeats: int = 5  # fresh processes per tree for the per-trial and sampling times
    marks: tuple[int, ...] = (100, 1_000, 3_000)  # ask+tell time per trial
    workers: int = 4  # throughput: processes on one SQLite study
    per_worker: int = 250
    throughput_runs: int = 9  # per tree, taking turns
    sampling_marks: tuple[int, ...] = (100, 200)
    seeds: int = 10  # quality and multi-fidelity: seeds 0..N-1
    quality_problems: tuple[str, ...] = ("branin", "hartmann6", "levy10", "mixed")
    quality_marks: tuple[int, ...] = (25, 50, 100)
    mf_problems: tuple[str, ...] = ("mf_branin", "mf_hartmann3", "mf_hartmann6", LCBENCH)
    mf_marks: tuple[float, ...] = (10.0, 30.0, 100.0)
    max_step: int = 81


FULL = Plan()
QUICK = Plan(
    quick=True,
    repeats=1,
    marks=(50, 100),
    workers=2,
    per_worker=25,
    throughput_runs=1,
    sampling_marks=(20,),
    seeds=2,
    quality_problems=("branin", "mixed"),
    quality_marks=(5, 10, 20),
    mf_problems=("mf_branin",),
    mf_marks=(3.0, 10.0),
)


# -- the child side: one process per tree, answering one JSON request per line ---------------


def serve(tree: Path) -> int:
    """Answer requests from stdin, one JSON object per line, with one JSON line each on the
    original stdout; whatever the code under test prints goes to stderr instead."""
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    child = Child(tree)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"ok": getattr(child, "op_" + request.pop("op"))(**request)}
        except Exception:
            answer = {"error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    return 0


def _module(name: str, tree: Path) -> Any:
    """A module that must come from ``tree`` (tuningfork, or one of its benchmarks)."""
    module = importlib.import_module(name)
    where = Path(module.__file__ or "").resolve()
    if not where.is_relative_to(tree.resolve()):
        raise RuntimeError(f"{name} was imported from {where}, not from the tree {tree}")
    return module


class Child:
    """The measurements, run with one tree's tuningfork and its benchmarks' helpers."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self.tf = _module("tuningfork", tree)
        self.series: list[Any] = []
        self.blocks = 0

    def op_info(self) -> dict[str, Any]:
        harness = {}
        for name in HARNESS:
            module, attribute = name.split(".")
            try:
                source = inspect.getsource(getattr(_module(module, self.tree), attribute))
                harness[name] = hashlib.sha256(source.encode()).hexdigest()[:12]
            except Exception as error:
                harness[name] = f"missing ({type(error).__name__})"
        return {"version": self.tf.__version__, "path": self.tf.__file__, "harness": harness}

    # overhead and sampling: studies run block after block, in turns with the other tree

    def op_setup(self, kind: str, directory: str, seed: int, limit: int) -> list[str]:
        overhead = _module("overhead", self.tree)
        self.blocks = 0
        # Warm up on throwaway studies first: the first trials of a process pay for lazy
        # imports (the GP's scipy), the SQLite engine and cold caches, not per-trial work.
        for name in ("warm-up", "timed"):
            if kind == "per_trial":
                self.series = self._per_trial(overhead, Path(directory) / name, seed, limit)
            else:
                self.series = self._sampling(overhead, seed, limit)
            if name == "warm-up":
                for series in self.series:
                    series.run(WARM_UP)
        return [s.label for s in self.series]

    def _per_trial(self, overhead: Any, directory: Path, seed: int, limit: int) -> list[Any]:
        tf = self.tf
        directory.mkdir(parents=True, exist_ok=True)

        def maker(url: str, sampler: str) -> Callable[[], Any]:
            if sampler == "RandomSampler":  # as overhead.tuningfork_study, by keyword
                return lambda: tf.create_study(storage=url, sampler=tf.RandomSampler(seed=seed))
            return lambda: tf.create_study(storage=url, seed=seed)

        series = []
        for storage in ("memory", "SQLite"):
            for sampler in ("RandomSampler", "default sampler"):
                name = f"{sampler.split()[0].lower()}.db"
                url = "memory" if storage == "memory" else f"sqlite:///{directory / name}"
                make, label = maker(url, sampler), f"{storage}, {sampler}"
                series.append(overhead.Series(storage, label, "tuningfork", make, limit))
        return series

    def _sampling(self, overhead: Any, seed: int, limit: int) -> list[Any]:
        tf, series = self.tf, []

        def maker(cls: Any) -> Callable[[], Any]:  # as overhead.sampling_series
            return lambda: tf.create_study(storage="memory", sampler=cls(seed=seed), seed=seed)

        for family, name in SAMPLING_FAMILIES.items():
            step = overhead._ask_tell_step(maker(getattr(tf, name)), "tuningfork")
            series.append(overhead.Sampling(family, family, "tuningfork", limit, step))
        return series

    def op_block(self, n: int) -> None:
        order = self.series if self.blocks % 2 == 0 else self.series[::-1]
        for series in order:
            series.run(n)
        self.blocks += 1

    def op_marks(self, marks: list[int], window: int) -> dict[str, list[float | None]]:
        """Milliseconds per trial at each mark: the median of the ``window`` trials before
        it (of all of them below the window), None for a mark not reached."""
        return {s.label: [_window_ms(s.times, m, window) for m in marks] for s in self.series}

    def op_throughput(self, run: int, directory: str, workers: int, per_worker: int, seed: int):
        overhead = _module("overhead", self.tree)
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        result = overhead.run_throughput("tuningfork", run, folder, workers, per_worker, seed)
        return {**asdict(result), "trials_per_s": result.trials_per_s, "intact": result.intact}

    # quality and multi-fidelity: one (problem, method, seed) per request

    def op_quality(self, problem: str, sampler: str, seed: int, trials: int) -> dict[str, Any]:
        tf, quality = self.tf, _module("quality", self.tree)
        task = _module("tuningfork.testing.functions", self.tree).PROBLEMS[problem]
        chosen = {
            "tpe": lambda: tf.TPESampler(seed=seed),
            "gp": lambda: tf.GPSampler(seed=seed),
            "auto": lambda: None,  # create_study's own choice
        }[sampler]()
        began = time.perf_counter()
        clock = quality.Clock(task.function)
        study = tf.create_study(storage="memory", sampler=chosen, seed=seed)
        clock.start()
        study.optimize(
            lambda trial: clock.evaluate(trial.params),
            n_trials=trials,
            space=task.space,
            show_progress_bar=False,
        )
        return {
            "values": clock.values,
            "optimum": task.optimum,
            "framework_ms": 1e3 * statistics.mean(clock.framework_s),
            "wall_s": time.perf_counter() - began,
        }

    def op_mf_missing(self, problems: list[str]) -> dict[str, str]:
        """Why each of ``problems`` cannot be loaded here (absent: it can)."""
        missing = {}
        for name in problems:
            try:
                self._mf_problem(name)
            except Exception as error:  # LCBench without onnxruntime or its data
                missing[name] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
        return missing

    def _mf_problem(self, name: str) -> Any:
        functions = _module("tuningfork.testing.mf_functions", self.tree)
        if name in functions.MF_PROBLEMS:
            return functions.MF_PROBLEMS[name]
        return functions.load_lcbench(name)

    def op_mf(
        self, problem: str, method: str, seed: int, budget: float, max_step: int, marks: list[float]
    ) -> dict[str, Any]:
        tf = self.tf
        functions = _module("tuningfork.testing.mf_functions", self.tree)
        run_study = _module("_mf_tuningfork", self.tree).run_study
        task = self._mf_problem(problem)
        chosen = MF_METHODS[method]
        options = {**chosen.options, **({"seed": seed} if chosen.seeded else {})}
        scheduler = getattr(tf, chosen.scheduler)(
            min_budget=MF_MIN_STEP, max_budget=max_step, eta=MF_ETA, **options
        )
        sampler = getattr(tf, chosen.sampler)(seed=seed)
        study = tf.create_study(storage="memory", sampler=sampler, scheduler=scheduler, seed=seed)
        meter = functions.Meter(task, max_step=max_step, budget=budget, marks=marks)
        began = time.perf_counter()
        try:
            run_study(study, task, meter)
            meter.close()  # stopped before the budget: the last regret holds at later marks
        except functions.BudgetSpent:
            pass
        record = meter.result()
        trace = [record[k] for k in ("curve", "evaluations", "trials", "incumbent_value")]
        return {
            "at_marks": record["at_marks"],
            "optimum": task.optimum,
            "trials": record["trials"],
            "digest": _digest(trace),
            "wall_s": time.perf_counter() - began,
        }


def _window_ms(times: Sequence[float], mark: int, window: int) -> float | None:
    if len(times) < mark:
        return None
    return statistics.median(times[max(0, mark - window) : mark]) * 1e3


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, default=repr).encode()).hexdigest()[:16]


# -- the parent side: the trees, their child processes, the parts -----------------------------


class ChildError(RuntimeError):
    """A child process failed a request (its traceback is the message) or died."""


@dataclass(frozen=True)
class Tree:
    """One source tree under comparison: ``name`` is "before" or "after"."""

    name: str
    path: Path
    commit: str
    dirty: bool

    @classmethod
    def at(cls, name: str, path: Path) -> Tree:
        if not (path / "src" / "tuningfork").is_dir() or not (path / "benchmarks").is_dir():
            raise SystemExit(f"--{name} {path}: no src/tuningfork and benchmarks/ there")
        commit = _git(path, "rev-parse", "--short", "HEAD") or "unknown"
        changes = _git(
            path, "status", "--porcelain", "--untracked-files=no", "--", "src", "benchmarks"
        )
        return cls(name, path.resolve(), commit, bool(changes))

    @property
    def label(self) -> str:
        return f"`{self.path}` at {self.commit}" + (" + uncommitted changes" if self.dirty else "")

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.path / "src"), str(self.path / "benchmarks")])
        env["PYTHONHASHSEED"] = "0"  # both trees alike, should anything depend on it
        for variable in THREAD_VARIABLES:  # one thread per process: the trees share the cores
            env[variable] = "1"
        return env


def _git(path: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


class Server:
    """A child process that runs one tree's measurements on request."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        # -P: the script's folder (this tree's benchmarks) must not shadow the tree's own.
        self.process = subprocess.Popen(
            [sys.executable, "-P", str(Path(__file__).resolve()), "--serve", str(tree.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=tree.environment(),
            cwd=tree.path,  # LCBench's data is found above the working directory
        )

    def call(self, op: str, **arguments: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # reported below, with the exit status
        line = self.process.stdout.readline()
        if not line:
            status = self.process.wait()
            raise ChildError(f"the {self.tree.name} tree's process exited ({status}) during {op}")
        answer = json.loads(line)
        if "error" in answer:
            raise ChildError(f"{self.tree.name} tree, {op}:\n{answer['error']}")
        return answer["ok"]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def servers(trees: Sequence[Tree]) -> Iterator[list[Server]]:
    started = [Server(tree) for tree in trees]
    try:
        yield started
    finally:
        for server in started:
            server.close()


def turns(pair: Sequence[Server], index: int) -> Sequence[Server]:
    """The order of the trees' turns: flipped every other time."""
    return pair if index % 2 == 0 else pair[::-1]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def _scratch() -> Iterator[Path]:
    """A temporary folder for one measurement's SQLite files, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tuningfork-compare-") as folder:
        yield Path(folder)


def measure_in_turns(
    plan: Plan, trees: Sequence[Tree], kind: str, marks: Sequence[int], window: int
):
    """``plan.repeats`` runs of fresh processes, the two trees taking turns every BLOCK
    trials; per tree, the milliseconds at each mark for each repeat."""
    limit = max(marks)
    figures: dict[str, list[dict[str, list[float | None]]]] = {t.name: [] for t in trees}
    for repeat in range(plan.repeats):
        began = time.perf_counter()
        with _scratch() as folder, servers(trees) as pair:
            for server in pair:
                where = str(folder / server.tree.name)
                server.call("setup", kind=kind, directory=where, seed=plan.seed, limit=limit)
            for index, start in enumerate(range(0, limit, BLOCK)):
                for server in turns(pair, index + repeat):
                    server.call("block", n=min(BLOCK, limit - start))
            for server in pair:
                figures[server.tree.name].append(
                    server.call("marks", marks=list(marks), window=window)
                )
        elapsed = time.perf_counter() - began
        _progress(f"  {kind}: repeat {repeat + 1}/{plan.repeats}, {elapsed:.0f} s")
    return figures


def measure_throughput(plan: Plan, trees: Sequence[Tree]) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in trees}
    with _scratch() as folder, servers(trees) as pair:
        for run in range(plan.throughput_runs):
            for server in turns(pair, run):
                name = server.tree.name
                result = server.call(
                    "throughput",
                    run=run + 1,
                    directory=str(folder / f"{name}-{run + 1}"),
                    workers=plan.workers,
                    per_worker=plan.per_worker,
                    seed=plan.seed,
                )
                runs[name].append(result)
            _progress(f"  throughput: run {run + 1}/{plan.throughput_runs}")
    return runs


def run_jobs(trees: Sequence[Tree], op: str, jobs: Sequence[dict[str, Any]]):
    """Every job on both trees, the two trees at once (one process each; their results do
    not depend on timing); per tree, the results in job order (or the error)."""

    def run_all(server: Server) -> list[dict[str, Any]]:
        results = []
        for done, job in enumerate(jobs, 1):
            try:
                results.append(server.call(op, **job))
            except ChildError as error:
                results.append({"error": str(error)})
            if done % 10 == 0 or done == len(jobs):
                _progress(f"  {op}, {server.tree.name}: {done}/{len(jobs)} runs")
        return results

    with servers(trees) as pair, ThreadPoolExecutor(len(pair)) as pool:
        futures = {server.tree.name: pool.submit(run_all, server) for server in pair}
        return {name: future.result() for name, future in futures.items()}


# -- the parts: each measures, then summarises into rows and a verdict -------------------------


@dataclass
class Part:
    """One part's outcome: the raw figures, its tables (Markdown lines) and its verdict."""

    name: str
    title: str
    raw: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    verdict: str = ""
    passed: bool = True
    failed_runs: int = 0  # runs that raised (a part that could not run at all: -1)
    seconds: float = 0.0


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _ratio(after: float | None, before: float | None) -> float | None:
    if after is None or before is None:
        return None
    if before == 0:
        return 1.0 if after == 0 else math.inf
    return after / before


def _r(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def paired_ratio(before: Sequence[float | None], after: Sequence[float | None]):
    """The median over repeats of after / before within a repeat (the two trees took turns
    in it, so they saw the same load), with its lowest and highest value; None if none."""
    ratios = [a / b for b, a in zip(before, after) if a is not None and b]
    if not ratios:
        return None, None, None
    return statistics.median(ratios), min(ratios), max(ratios)


def _ratio_cell(median: float | None, low: float | None, high: float | None) -> str:
    if median is None:
        return "—"
    return _r(median) if low == high else f"{_r(median)} [{_r(low)}, {_r(high)}]"


def timed_rows(figures: dict[str, list[dict]], marks: Sequence[int], unit: str) -> tuple:
    """Rows of a timed table and its figures' ratios: per series and mark, each tree's
    median over repeats, the paired ratio, and the before tree's spread over its repeats
    (max/min: the noise a ratio must be read against)."""
    rows, ratios = [], []
    labels = list(figures["before"][0]) if figures["before"] else []
    for label in labels:
        for i, mark in enumerate(marks):
            before = [r[label][i] for r in figures["before"]]
            after = [r[label][i] for r in figures["after"]]
            ratio = paired_ratio(before, after)
            present = [v for v in before if v]
            spread = _r(max(present) / min(present)) if len(present) > 1 else "—"
            ratios.append((f"{label} at {unit} {mark:,}", ratio[0]))
            rows.append(
                f"| {label} | {mark:,} | {_ms(_median(before))} | {_ms(_median(after))} | "
                f"{_ratio_cell(*ratio)} | {spread} |"
            )
    return rows, ratios


def time_verdict(ratios: Sequence[tuple[str, float | None]], extra: str = "") -> tuple[bool, str]:
    measured = [(name, r) for name, r in ratios if r is not None]
    if not measured:
        return False, "nothing measured"
    worst = max(measured, key=lambda item: item[1])
    within = sum(1 for _, r in measured if r <= TIME_LIMIT)
    ok = within == len(measured) == len(ratios)
    text = (
        f"{within}/{len(ratios)} figures with after/before <= {TIME_LIMIT:.2f} at the medians; "
        f"highest {worst[1]:.3f} ({worst[0]})"
    )
    return ok, text + extra


def overhead_part(plan: Plan, trees: Sequence[Tree]) -> Part:
    part = Part("overhead", "Framework overhead: ask+tell time per trial and throughput")
    figures = measure_in_turns(plan, trees, "per_trial", plan.marks, PER_TRIAL_WINDOW)
    runs = measure_throughput(plan, trees)
    part.raw = {"per_trial_ms": figures, "marks": list(plan.marks), "throughput": runs}
    rows, ratios = timed_rows(figures, plan.marks, "trial")
    rates = {
        name: [r["trials_per_s"] if r["fatal"] is None else None for r in rs]
        for name, rs in runs.items()
    }
    # runs i of the two trees ran one after the other; a rate's time ratio is before / after
    time_ratio = paired_ratio(rates["after"], rates["before"])
    rate_ratio = paired_ratio(rates["before"], rates["after"])
    ratios.append((f"{plan.workers}-process throughput (time per trial)", time_ratio[0]))
    intact = {name: sum(1 for r in rs if r["intact"]) for name, rs in runs.items()}
    all_intact = all(intact[name] == len(runs[name]) for name in runs)
    ok, text = time_verdict(
        ratios,
        f"; throughput runs intact: before {intact['before']}/{len(runs['before'])}, "
        f"after {intact['after']}/{len(runs['after'])}",
    )
    part.passed, part.verdict = ok and all_intact, text
    part.lines = [
        f"#### Ask+tell time per trial (ms: the median of the {PER_TRIAL_WINDOW} round trips "
        "ending at the mark, or of all before it; median over repeats)",
        "",
        "| storage, sampler | trial | before | after | after/before [lowest, highest] | "
        "before's spread (max/min over repeats) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"#### Throughput of {plan.workers} processes on one SQLite study "
        f"({plan.per_worker} ask+tell trials each, overhead.py's `run_throughput`)",
        "",
        "| tree | runs (trials/s) | median trials/s | intact runs |",
        "|---|---|---|---|",
        *(
            f"| {name} | {', '.join(_rate(v) for v in rates[name])} | "
            f"{_ms(_median(rates[name]))} | {intact[name]}/{len(runs[name])} |"
            for name in ("before", "after")
        ),
        f"| after/before (trials/s; median over pairs of runs [lowest, highest]) | | "
        f"{_ratio_cell(*rate_ratio)} | |",
    ]
    return part


def _rate(trials_per_s: float | None) -> str:
    return "crashed" if trials_per_s is None else f"{trials_per_s:,.0f}"


def sampling_part(plan: Plan, trees: Sequence[Tree]) -> Part:
    part = Part("sampling", "Sampling time per trial: TPE and GP")
    figures = measure_in_turns(plan, trees, "sampling", plan.sampling_marks, SAMPLING_WINDOW)
    part.raw = {"ms": figures, "marks": list(plan.sampling_marks)}
    rows, ratios = timed_rows(figures, plan.sampling_marks, "trial")
    part.passed, part.verdict = time_verdict(ratios)
    part.lines = [
        f"#### Sampling time per trial (ms: the median of the {SAMPLING_WINDOW} trials ending "
        "at the mark; median over repeats; problem `mixed`, in memory)",
        "",
        "| sampler | trial | before | after | after/before [lowest, highest] | before's spread "
        "(max/min over repeats) |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
    return part


def quality_part(plan: Plan, trees: Sequence[Tree]) -> Part:
    part = Part("quality", "Optimisation quality: regret of TPE, GP and auto")
    trials = max(plan.quality_marks)
    jobs = [
        {"problem": problem, "sampler": sampler, "seed": seed, "trials": trials}
        for seed in range(plan.seeds)
        for problem in plan.quality_problems
        for sampler in QUALITY_SAMPLERS
    ]
    results = run_jobs(trees, "quality", jobs)
    for rs in results.values():
        for result in rs:
            if "values" in result:
                result["regret"] = _regrets(result["values"], result["optimum"], plan.quality_marks)
                result["digest"] = _digest(result["values"])
    part.raw = {"jobs": jobs, "results": results}
    groups = [
        ((p, s), QUALITY_SAMPLERS[s]) for p in plan.quality_problems for s in QUALITY_SAMPLERS
    ]
    keys = ("problem", "sampler")
    part.lines, part.passed, part.verdict, part.failed_runs = regret_table(
        jobs, results, groups, keys, [str(m) for m in plan.quality_marks], "trials"
    )
    return part


def _regrets(values: Sequence[float], optimum: float, marks: Sequence[int]) -> dict[str, float]:
    """Simple regret (best so far - optimum, clipped at 0) at each mark, as quality.py."""
    return {str(m): max(0.0, min(values[:m]) - optimum) for m in marks if len(values) >= m}


def mf_part(plan: Plan, trees: Sequence[Tree]) -> Part:
    part = Part("mf", "Multi-fidelity: regret of ASHA, Hyperband + TPE, BOHB and DEHB")
    skipped: dict[str, str] = {}
    with servers(trees[:1]) as (server,):
        skipped = server.call("mf_missing", problems=list(plan.mf_problems))
    problems = [p for p in plan.mf_problems if p not in skipped]
    marks = sorted(plan.mf_marks)
    budget = max(marks)  # a run ends at its last mark
    jobs = [
        {
            "problem": problem,
            "method": method,
            "seed": seed,
            "budget": budget,
            "max_step": plan.max_step,
            "marks": marks,
        }
        for seed in range(plan.seeds)
        for problem in problems
        for method in MF_METHODS
    ]
    results = run_jobs(trees, "mf", jobs)
    for rs in results.values():
        for result in rs:
            if "at_marks" in result:
                result["regret"] = result.pop("at_marks")
    part.raw = {"jobs": jobs, "results": results, "skipped": skipped}
    groups = [((p, m), MF_METHODS[m].label) for p in problems for m in MF_METHODS]
    part.lines, part.passed, part.verdict, part.failed_runs = regret_table(
        jobs, results, groups, ("problem", "method"), [f"{m:g}" for m in marks], "units"
    )
    if skipped:
        part.lines += ["", *(f"Not run: {name} ({why})." for name, why in skipped.items())]
    return part


def regret_table(jobs, results, groups, keys, marks, unit) -> tuple[list[str], bool, str, int]:
    """Per (problem, method) and mark: the median and the worst seed of each tree, the ratio
    of the medians, and whether every seed's regret is the same in both trees."""
    lines = [
        f"| problem | method | {unit} | before: median | worst seed | after: median | "
        "worst seed | after/before (medians) | same regret for every seed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    cells = identical = 0
    worse: list[str] = []
    errors = [r["error"] for rs in results.values() for r in rs if "error" in r]
    same_runs = sum(
        1
        for b, a in zip(results["before"], results["after"], strict=True)
        if "digest" in b and b.get("digest") == a.get("digest")
    )
    for group, label in groups:
        index = [i for i, job in enumerate(jobs) if tuple(job[k] for k in keys) == group]
        for mark in marks:
            before = _column(jobs, results["before"], index, mark)
            after = _column(jobs, results["after"], index, mark)
            if not before or not after:
                continue
            cells += 1
            same = before == after
            identical += same
            b, a = statistics.median(before.values()), statistics.median(after.values())
            if not same and a > b:
                worse.append(f"{group[0]} {label} at {mark} {unit}: {_g(b)} -> {_g(a)}")
            lines.append(
                f"| {group[0]} | {label} | {mark} | {_g(b)} | {_worst(before)} | {_g(a)} | "
                f"{_worst(after)} | {_r(_ratio(a, b))} | "
                f"{'identical' if same else _difference(before, after)} |"
            )
    ok = not errors and not worse and cells > 0
    text = (
        f"{identical}/{cells} figures identical for every seed, "
        f"{cells - identical - len(worse)} differ but not worse at the median, "
        f"{len(worse)} worse"
        + (f" ({'; '.join(worse[:3])})" if worse else "")
        + f"; {same_runs}/{len(jobs)} runs identical throughout"
    )
    if errors:
        text += f"; {len(errors)} run(s) failed, first: {errors[0].strip().splitlines()[-1]}"
    return lines, ok, text, len(errors)


def _column(jobs: Sequence[dict], results: Sequence[dict], index: Sequence[int], mark: str):
    """Seed -> regret at ``mark`` of the runs ``index``, for those that have one."""
    column: dict[int, float] = {}
    for i in index:
        value = results[i].get("regret", {}).get(mark)
        if value is not None:
            column[jobs[i]["seed"]] = value
    return column


def _worst(column: dict[int, float]) -> str:
    seed = max(column, key=lambda s: column[s])
    return f"{_g(column[seed])} (seed {seed})"


def _difference(before: dict[int, float], after: dict[int, float]) -> str:
    changed = [s for s in before if before[s] != after.get(s)]
    return f"differs for {len(changed)} of {len(before)} seeds"


def _g(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x == 0:
        return "0"
    return f"{x:.2g}" if abs(x) < 1e-3 or abs(x) >= 1e4 else f"{x:.3g}"


RUNNERS: dict[str, Callable[[Plan, Sequence[Tree]], Part]] = {
    "overhead": overhead_part,
    "sampling": sampling_part,
    "quality": quality_part,
    "mf": mf_part,
}


# -- the plan's duration ----------------------------------------------------------------------

# Seconds measured on the reference machine (2 cores, AMD EPYC, idle), one process.
START_S = 3.0  # a child process: imports, the tree's benchmark modules
QUALITY_S = {  # one run of 100 trials
    ("branin", "gp"): 4.6,
    ("branin", "auto"): 4.6,
    ("hartmann6", "gp"): 5.5,
    ("hartmann6", "auto"): 6.3,
    ("levy10", "gp"): 6.9,
    ("levy10", "auto"): 8.1,
    ("mixed", "gp"): 9.5,
    ("mixed", "auto"): 8.2,
}
MF_RUN_S = 1.2  # one multi-fidelity run of 100 units (tuningfork's methods average)


def default_sampler_s(trials: int) -> float:
    """The auto sampler to ``trials`` with one parameter: GP to 200 trials, then TPE."""
    return 4.5 * (min(trials, 200) / 200) ** 2 + 9e-7 * max(0, trials**2 - 200**2)


def estimate(plan: Plan, lcbench: bool) -> dict[str, float]:
    """Seconds per part on the reference machine; a loaded machine takes longer."""
    top = max(plan.marks)
    per_trial = 2 * default_sampler_s(top) + top * (0.02 + 0.25 + 0.3) / 1e3 + START_S
    throughput = 1.5 + plan.workers * plan.per_worker / 2000
    gp_top = max(plan.sampling_marks)
    sampling = START_S + gp_top * 0.002 + 0.04 * gp_top + 1.1e-4 * gp_top**2
    scale = (max(plan.quality_marks) / 100) ** 1.5
    quality = plan.seeds * sum(
        QUALITY_S.get((p, s), 0.3 if s == "tpe" else 8.0) * scale
        for p in plan.quality_problems
        for s in QUALITY_SAMPLERS
    )
    problems = len([p for p in plan.mf_problems if p != LCBENCH or lcbench])
    mf = plan.seeds * problems * len(MF_METHODS) * MF_RUN_S * max(plan.mf_marks) / 100
    return {
        "overhead": 2 * plan.repeats * per_trial + 2 * plan.throughput_runs * throughput,
        "sampling": 2 * plan.repeats * sampling,
        # the two trees run at once, one process each: about one tree's time
        "quality": 1.1 * quality + START_S,
        "mf": 1.1 * mf + START_S,
    }


def describe_plan(plan: Plan, lcbench: bool) -> list[str]:
    times = estimate(plan, lcbench)
    chosen = {part: times[part] for part in plan.parts}
    mf_problems = [p for p in plan.mf_problems if p != LCBENCH or lcbench]
    what = {
        "overhead": f"ask+tell time per trial at trials {_marks(plan.marks)} (memory and "
        f"SQLite; RandomSampler and the default sampler), {plan.repeats} repeat(s) per tree; "
        f"{plan.throughput_runs} throughput run(s) per tree of {plan.workers} x "
        f"{plan.per_worker} trials",
        "sampling": f"TPE and GP time per trial at trials {_marks(plan.sampling_marks)}, "
        f"{plan.repeats} repeat(s) per tree",
        "quality": f"{len(plan.quality_problems)} problems ({', '.join(plan.quality_problems)}) "
        f"x {len(QUALITY_SAMPLERS)} samplers x {plan.seeds} seeds x "
        f"{max(plan.quality_marks)} trials, per tree",
        "mf": f"{len(mf_problems)} problems ({', '.join(mf_problems)}) x {len(MF_METHODS)} "
        f"methods x {plan.seeds} seeds x {max(plan.mf_marks):g} units, per tree",
    }
    lines = [
        f"- {part}: {what[part]}: about {seconds / 60:.1f} min" for part, seconds in chosen.items()
    ]
    lines.append(f"- in all: about {sum(chosen.values()) / 60:.0f} min on an idle 2-core machine")
    return lines


def _marks(marks: Sequence[float]) -> str:
    return ", ".join(f"{m:,g}" for m in marks)


# -- report -----------------------------------------------------------------------------------


def render(
    plan: Plan, trees: Sequence[Tree], info: dict, parts: Sequence[Part], facts: dict
) -> str:
    from _report import command, machine_lines, package_version

    packages = ("numpy", "scipy", "SQLAlchemy", "optuna", "scikit-learn")
    versions = ", ".join(f"{p} {package_version(p)}" for p in packages)
    lines = [
        f"## Before/after comparison (`benchmarks/{Path(__file__).name}`)",
        "",
        f"- date: {facts['started']:%Y-%m-%d %H:%M} UTC"
        + (" (quick smoke run: figures are not meaningful)" if plan.quick else ""),
        *(f"- {key}: {value}" for key, value in machine_lines().items()),
        f"- versions: {versions}, sqlite3 library {__import__('sqlite3').sqlite_version}",
        *(
            f"- {tree.name}: {tree.label}, tuningfork {info[tree.name]['version']}"
            for tree in trees
        ),
        f"- command: `{command()}`",
        f"- run time {facts['run_s'] / 60:.1f} min (estimate {facts['estimate_s'] / 60:.0f} "
        f"min); load average {facts['load'][0]:.1f} at the start and {facts['load'][1]:.1f} at "
        f"the end, on {os.cpu_count()} cores (a load above the core count inflates the times)",
        f"- the trees' benchmark helpers ({', '.join(f'`{h}`' for h in HARNESS)}): "
        + _harness_note(info),
        "",
        *method_text(plan),
        "",
        "### Verdicts",
        "",
        "```",
        *(f"{_verdict(part)}  {part.name}: {part.verdict}" for part in parts),
        "```",
    ]
    for part in parts:
        lines += ["", f"### {part.title}", "", *part.lines]
    return "\n".join(lines) + "\n"


def _verdict(part: Part) -> str:
    return "PASS" if part.passed else "FAIL"


def _harness_note(info: dict) -> str:
    before, after = info["before"]["harness"], info["after"]["harness"]
    differ = [name for name in HARNESS if before.get(name) != after.get(name)]
    if not differ:
        return "identical source in both trees"
    return "differ between the trees (each tree runs its own): " + ", ".join(differ)


def method_text(plan: Plan) -> list[str]:
    seeds = plan.seeds
    return [
        "Each tree runs in its own child processes with `PYTHONPATH=<tree>/src:<tree>/"
        "benchmarks`, one thread per process (OMP, OpenBLAS and MKL = 1), PYTHONHASHSEED=0, "
        "using the tree's own `overhead.py`, `quality.py` and `_mf_tuningfork.py` helpers "
        "and tuningfork's public API only (create_study, the samplers and schedulers, "
        "options by keyword). Timed parts: the two trees' processes take turns every "
        f"{BLOCK} trials (the first turn alternating between repeats), so load drifts hit "
        f"both; {plan.repeats} repeat(s) of fresh processes per tree, each warming up on "
        f"throwaway studies ({WARM_UP} trials of each kind) first. A mark's figure is the "
        f"median of the {PER_TRIAL_WINDOW} round trips before it ({SAMPLING_WINDOW} for "
        "sampling; all of them below that), wider windows than `overhead.py`'s 50 and 10, "
        "since a ratio within 10% needs steadier figures. Before and after are "
        "each tree's median over repeats; after/before is the median over repeats of the "
        "ratio within a repeat (the two trees saw the same load there; as `gp_threads.py`), "
        "with its lowest and highest value; the before tree's spread over its repeats shows "
        "the noise a ratio must be read against. Throughput: run i of each tree one after "
        f"the other, {plan.throughput_runs} pairs. Verdict: PASS when every timed ratio "
        f"is <= {TIME_LIMIT:.2f} (throughput: before's trials/s over after's) and every "
        "throughput run is intact (no lost or duplicated trial). Quality and multi-fidelity "
        "runs are deterministic for a seed, so the two trees run them at the same time; "
        '"identical" means the same regret for every seed, and the verdict is PASS when '
        "every figure is identical or its median is not worse (lower or equal).",
        "",
        "Choices (the full run's defaults are sized for about 20 minutes on an idle 2-core "
        f"machine): per-trial time at trials {_marks(plan.marks)} (the default sampler is "
        "the auto sampler, GP up to trial 200 and then TPE, whose time grows with the study: "
        "overhead.py's 10,000 would take most of the run); sampling time at trials "
        f"{_marks(plan.sampling_marks)} (about 0.1 s a trial for GP there); {seeds} seed(s) "
        "for quality and multi-fidelity (`quality.py` and `multifidelity.py` use 10; the "
        "median and the worst seed are shown); quality problems "
        f"{', '.join(plan.quality_problems)} (from 2 to 10 parameters, and `mixed` with "
        "log, integer and categorical ones; `quality.py` has no conditional problem) at "
        f"{_marks(plan.quality_marks)} trials; multi-fidelity problems "
        f"{', '.join(plan.mf_problems)} (LCBench only where onnxruntime and its data load) at "
        f"{_marks(plan.mf_marks)} units, each scheduler `(min_budget={MF_MIN_STEP}, "
        f"max_budget={plan.max_step}, eta={MF_ETA})` as in `multifidelity.py`, ASHA in both "
        "modes and Hyperband and BOHB in promotion mode, all passed explicitly (the after "
        "code may change ASHA's default mode)."
        + (" Quick smoke run: every figure shrunk to seconds." if plan.quick else ""),
    ]


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--before", type=Path, help="the baseline source tree")
    parser.add_argument("--after", type=Path, help="the source tree to compare with it")
    parser.add_argument("--quick", action="store_true", help="smoke run (a minute or so)")
    parser.add_argument("--seeds", type=int, help="quality and multi-fidelity seeds (default 10)")
    parser.add_argument("--repeats", type=int, help="timed repeats per tree (default 5)")
    parser.add_argument("--only", action="append", choices=PARTS, help="a part (repeatable)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="RESULTS.md path")
    parser.add_argument("--json", type=Path, help="also keep the raw figures in this file")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and its duration")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args(argv)
    if args.serve is None and (args.before is None or args.after is None):
        parser.error("--before and --after are required")
    return args


def make_plan(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    parts = tuple(p for p in PARTS if p in args.only) if args.only else PARTS
    plan = replace(plan, parts=parts)
    if args.seeds is not None:
        plan = replace(plan, seeds=args.seeds)
    if args.repeats is not None:
        plan = replace(plan, repeats=args.repeats)
    return plan


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve is not None:
        return serve(args.serve)
    plan = make_plan(args)
    trees = [Tree.at("before", args.before), Tree.at("after", args.after)]
    lcbench = importlib.util.find_spec("onnxruntime") is not None
    plan_lines = describe_plan(plan, lcbench)
    print("\n".join([*(f"{t.name}: {t.label}" for t in trees), *plan_lines]))
    if args.dry_run:
        return 0
    return run(args, plan, trees, sum(estimate(plan, lcbench)[p] for p in plan.parts))


def failed_part(name: str, error: str) -> Part:
    """A part that could not run: its verdict is the error's last line."""
    tail = error.strip().splitlines()
    part = Part(name, f"{name}: not measured", verdict=f"ERROR {tail[-1]}", passed=False)
    part.failed_runs, part.raw = -1, {"error": error}
    part.lines = ["```", *tail[-8:], "```"]
    return part


def run(args: argparse.Namespace, plan: Plan, trees: Sequence[Tree], estimate_s: float) -> int:
    from _report import write_section

    started = datetime.datetime.now(datetime.timezone.utc)
    began, load_start = time.perf_counter(), os.getloadavg()[0]
    try:
        with servers(trees) as pair:
            info = {server.tree.name: server.call("info") for server in pair}
    except ChildError as error:  # e.g. a tree whose tuningfork does not import
        _progress(str(error))
        return 2
    parts = []
    for name in plan.parts:
        _progress(f"{name}")
        part_began = time.perf_counter()
        try:
            part = RUNNERS[name](plan, trees)
        except ChildError as error:
            part = failed_part(name, str(error))
            _progress(str(error))
        part.seconds = time.perf_counter() - part_began
        _progress(f"{name}: {'PASS' if part.passed else 'FAIL'} in {part.seconds:.0f} s")
        parts.append(part)
    facts = {
        "started": started,
        "run_s": time.perf_counter() - began,
        "estimate_s": estimate_s,
        "load": (load_start, os.getloadavg()[0]),
    }
    body = render(plan, trees, info, parts, facts)
    print(body)
    write_section(args.results, body, BEGIN, END)
    _progress(f"wrote its section of {args.results}")
    if args.json is not None:
        record = {
            "plan": asdict(plan),
            "trees": {t.name: {**asdict(t), "path": str(t.path), **info[t.name]} for t in trees},
            "facts": {**facts, "started": started.isoformat()},
            "parts": {
                p.name: {"passed": p.passed, "verdict": p.verdict, "seconds": p.seconds, **p.raw}
                for p in parts
            },
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, default=str))
        _progress(f"wrote {args.json}")
    errors = any(p.failed_runs for p in parts)
    # a smoke run's times mean nothing: only a failed measurement fails it
    return 1 if errors or (not plan.quick and not all(p.passed for p in parts)) else 0


if __name__ == "__main__":
    sys.exit(main())
