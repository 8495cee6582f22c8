"""Multi-fidelity optimisation: regret against cumulative budget, every method in one run.

Each method optimises each problem of `tuningfork.testing.mf_functions` (BOCA's
multi-fidelity Branin, Hartmann 3 and Hartmann 6, and LCBench when its surrogate can be
loaded) with seeds 0..N-1, paying what a user would pay (see `Meter`): the fidelity has
steps 1..81 (z = step / 81), one step costs 1/81 of a unit, one unit is one evaluation at
full fidelity; a trial that continues or resumes pays only its added steps, a fresh
evaluation at budget b pays b / 81. Reports the median and quartiles of the regret of the
incumbent (the best configuration at the highest step reached so far) when the cumulative
cost first reaches 10, 30 and 100 units, and the time of each run. Writes all raw curves as
JSON and the tables as Markdown (and, with --results, a section of RESULTS.md).

    .venv/bin/python benchmarks/multifidelity.py             # full run: 10 seeds, 100 units
    .venv/bin/python benchmarks/multifidelity.py --quick     # smoke run: 3 seeds, 30 units

A method is ``run(problem, seed, meter)`` in `METHODS`: it pays every evaluation to the
meter (``meter.charge`` per step, ``meter.charge_fresh`` per evaluation from scratch) and
runs until the meter raises `BudgetSpent` (caught here).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import importlib.util
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _mf_baselines import BASELINES, ETA, MIN_STEP
from _mf_baselines import LABELS as BASELINE_LABELS
from _mf_baselines import PACKAGES as BASELINE_PACKAGES
from _mf_tuningfork import LABELS as TUNINGFORK_LABELS
from _mf_tuningfork import TUNINGFORK
from _report import command, machine_lines, package_version, write_section

from tuningfork.testing.mf_functions import MF_PROBLEMS, BudgetSpent, Meter, MFProblem

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "out" / "multifidelity.json"
SECTION = "multifidelity.py"
BEGIN = f"<!-- begin {SECTION} (generated; edit the script, not this section) -->"
END = f"<!-- end {SECTION} -->"

MAX_STEP = 81  # R: the fidelity steps are 1..R, z = step / R
BUDGET = 100.0  # units (full-fidelity evaluations) per run
MARKS = (10.0, 30.0, 100.0)
QUICK = {"seeds": 3, "budget": 30.0}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

Runner = Callable[[MFProblem, int, Meter], None]

# -- the methods: plug new ones in here -------------------------------------------------------

METHODS: dict[str, Runner] = {**BASELINES, **TUNINGFORK}
"""Method key -> ``run(problem, seed, meter)``. tuningfork's runners (ASHA, Hyperband, BOHB,
DEHB) are added here, e.g. ``METHODS["tf-asha"] = run_tf_asha``."""
LABELS: dict[str, str] = {**BASELINE_LABELS, **TUNINGFORK_LABELS}
"""Method key -> the name in the tables (the key when absent)."""
REQUIRES: dict[str, tuple[str, ...]] = {
    "optuna-tpe-sha": ("optuna",),
    "optuna-tpe-hyperband": ("optuna",),
    "dehb": ("dehb", "ConfigSpace", "loguru"),
}
"""Method key -> modules it imports: a method whose modules are missing is skipped with a
note (e.g. ``("tuningfork.schedulers.asha",)`` for a scheduler not written yet)."""
PACKAGES: dict[str, tuple[str, ...]] = {**BASELINE_PACKAGES}
"""Method key -> distributions whose versions the report lists."""
INSTALL_HINTS = {
    "dehb": "`.venv/bin/pip install --no-deps dehb==0.1.2` after `pip install -e .[bench]` "
    "(dehb 0.1.2 declares numpy<2 and pyarrow, which it does not need here)",
}


# -- the problems ----------------------------------------------------------------------------


def problem_names() -> list[str]:
    """The problems a run can use: the synthetic ones, and LCBench where it can be loaded."""
    return [*MF_PROBLEMS, *optional_problem_names()]


# One LCBench task by default: Optuna's TPE takes 10-50 s per run on each (its truncated-
# normal code for the integer parameters is slow), so all three would triple the run time.
DEFAULT_PROBLEMS = [*MF_PROBLEMS, "lcbench_189906"]


def optional_problem_names() -> list[str]:
    try:
        from tuningfork.testing.mf_functions import LCBENCH_PROBLEMS
    except ImportError:
        return []
    return list(LCBENCH_PROBLEMS)


def load_problem(name: str) -> MFProblem:
    if name in MF_PROBLEMS:
        return MF_PROBLEMS[name]
    from tuningfork.testing.mf_functions import load_lcbench

    return load_lcbench(name)


def problem_missing(name: str) -> str | None:
    """Why problem ``name`` cannot be run here, or None."""
    if name in MF_PROBLEMS:
        return None
    try:
        load_problem(name)
    except Exception as error:  # a missing package or data folder
        return f"{type(error).__name__}: {error}"
    return None


def method_missing(key: str) -> str | None:
    """Why method ``key`` cannot be run here, or None."""
    for module in REQUIRES.get(key, ()):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # a missing parent package
            found = False
        if not found:
            hint = INSTALL_HINTS.get(key)
            return f"module {module} is not installed" + (f"; install with {hint}" if hint else "")
    return None


# -- one job: a problem, a method, a seed -----------------------------------------------------


def marks_for(budget: float) -> list[float]:
    return sorted({m for m in MARKS if m <= budget} | {budget})


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one (problem, method, seed) until its budget is spent; the meter's record."""
    warnings.filterwarnings("ignore")  # Optuna's ExperimentalWarning, ConfigSpace's deprecations
    problem = load_problem(job["problem"])
    began = time.perf_counter()
    meter = Meter(problem, max_step=job["max_step"], budget=job["budget"], marks=job["marks"])
    exhausted, error = True, None
    try:
        METHODS[job["method"]](problem, job["seed"], meter)
        exhausted = False  # the method returned before the budget was spent
        meter.close()
    except BudgetSpent:
        pass
    except Exception:
        error = traceback.format_exc()
    return {
        **{k: job[k] for k in ("problem", "method", "seed", "budget", "max_step")},
        **meter.result(),
        "exhausted_budget": exhausted,
        "wall_s": time.perf_counter() - began,
        "error": error,
    }


def _init_worker(modules: Sequence[str]) -> None:
    """Import the methods' modules up front, so that a run's time leaves the imports out."""
    warnings.filterwarnings("ignore")
    for module in modules:
        importlib.import_module(module)


def run_jobs(jobs: list[dict[str, Any]], workers: int) -> list[dict[str, Any]]:
    """Run the jobs in ``workers`` processes (one thread each); results in job order."""
    for variable in THREAD_VARIABLES:  # one thread per job: the workers share the cores
        os.environ.setdefault(variable, "1")
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    began = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(sorted({m for job in jobs for m in REQUIRES.get(job["method"], ())}),),
    ) as pool:
        futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            i = futures[future]
            job, result = jobs[i], future.result()
            results[i] = result
            head = f"[{done}/{len(jobs)}] {job['problem']} {job['method']} seed {job['seed']}"
            if result["error"]:
                _progress(f"{head}: FAILED\n{result['error']}")
            else:
                elapsed = (time.perf_counter() - began) / 60
                _progress(
                    f"{head}: regret {_g(result['regret'])} at {result['cost']:.1f} units, "
                    f"{result['wall_s']:.1f} s; elapsed {elapsed:.1f} min"
                )
    return [r for r in results if r is not None]


# -- report -----------------------------------------------------------------------------------


def _g(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x == 0:
        return "0"
    return f"{x:.2g}" if abs(x) < 1e-3 or abs(x) >= 1e4 else f"{x:.3g}"


def _median_iqr(values: Sequence[float]) -> str:
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return f"{_g(q50)} [{_g(q25)}, {_g(q75)}]"


def label(key: str) -> str:
    return LABELS.get(key, key)


def at_mark(result: dict[str, Any], mark: float) -> float | None:
    return result["at_marks"].get(f"{mark:g}")


def problem_table(
    problem: str, methods: Sequence[str], marks: Sequence[float], results: Sequence[dict]
) -> list[str]:
    """Rows = methods, columns = regret at each mark (median [25%, 75%]), then a winner row."""
    head = (
        "| method | "
        + " | ".join(
            f"regret at {m:g} units: median [25%, 75%]" if i == 0 else f"at {m:g}"
            for i, m in enumerate(marks)
        )
        + " | trials (median) | s per run: median (max) | seeds |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    medians: dict[str, list[float | None]] = {}
    for method in methods:
        runs = [
            r
            for r in results
            if r["problem"] == problem and r["method"] == method and not r["error"]
        ]
        if not runs:
            continue
        cells, row = [], []
        for mark in marks:
            values = [v for r in runs if (v := at_mark(r, mark)) is not None]
            row.append(float(np.median(values)) if values else None)
            cells.append(_median_iqr(values) if values else "—")
        medians[method] = row
        walls = [r["wall_s"] for r in runs]
        trials = statistics.median(r["trials"] for r in runs)
        early = sum(1 for r in runs if not r["exhausted_budget"])
        seeds = f"{len(runs)}" + (f" ({early} stopped early)" if early else "")
        cells += [f"{trials:g}", f"{statistics.median(walls):.2f} ({max(walls):.2f})", seeds]
        lines.append(f"| {label(method)} | " + " | ".join(cells) + " |")
    winners = []
    for i in range(len(marks)):
        column = {m: row[i] for m, row in medians.items() if row[i] is not None}
        if not column:
            winners.append("—")
            continue
        best = min(column.values())
        winners.append(", ".join(label(m) for m, v in column.items() if v == best))
    lines.append("| **lowest median** | " + " | ".join(winners) + " | | | |")
    return lines


def time_table(methods: Sequence[str], results: Sequence[dict]) -> list[str]:
    lines = [
        "| method | s per run: mean | median | max | runs | process-s in all |",
        "|---|---|---|---|---|---|",
    ]
    for method in methods:
        walls = [r["wall_s"] for r in results if r["method"] == method and not r["error"]]
        if walls:
            lines.append(
                f"| {label(method)} | {statistics.mean(walls):.2f} | "
                f"{statistics.median(walls):.2f} | {max(walls):.2f} | {len(walls)} | "
                f"{sum(walls):.0f} |"
            )
    return lines


def versions(methods: Sequence[str]) -> str:
    packages = ["tuningfork", "numpy", "scipy"]
    for method in methods:
        packages += [p for p in PACKAGES.get(method, ()) if p not in packages]
    return ", ".join(f"{p} {package_version(p)}" for p in packages)


def render(
    args: argparse.Namespace,
    problems: Sequence[str],
    methods: Sequence[str],
    skipped: dict[str, str],
    results: Sequence[dict],
    started: datetime.datetime,
    run_s: float,
    load: tuple[float, float],
) -> str:
    marks = marks_for(args.budget)
    busy = sum(r["wall_s"] for r in results)
    lines = [
        f"## Multi-fidelity optimisation (`benchmarks/{Path(__file__).name}`)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC"
        + (" (quick smoke run: figures are not meaningful)" if args.quick else ""),
        *(f"- {key}: {value}" for key, value in machine_lines().items()),
        f"- versions: {versions(methods)}",
        f"- command: `{command()}`",
        f"- {len(problems)} problems x {len(methods)} methods x {args.seeds} seeds, "
        f"{args.budget:g} units per run, {args.workers} worker processes, one thread each; "
        f"run time {run_s / 60:.1f} min ({busy / 60:.1f} process-min); load average "
        f"{load[0]:.1f} at the start, {load[1]:.1f} at the end, on {os.cpu_count()} cores",
        "",
        f"Problems: BOCA's multi-fidelity test functions (Kandasamy et al., ICML 2017) at "
        f"fidelity z = step / {MAX_STEP}, steps 1..{MAX_STEP}; z = 1 is the true function. "
        "LCBench (`lcbench_<OpenML task>`, the tasks of YAHPO-SO): the YAHPO Gym surrogate "
        "(v1.0.2 ONNX model, read with onnxruntime), value = 100 - val_accuracy after "
        f"max(1, round(52 z)) of 52 epochs, regret against 100 - the best val_accuracy of "
        "YAHPO's global statistics (clipped at 0). "
        f"Cost: one unit = one evaluation at full fidelity; each step costs 1/{MAX_STEP}; "
        "a trial that goes on, or resumes from its checkpoint, pays only its added steps; a "
        f"fresh evaluation at budget b pays b/{MAX_STEP}. Regret at a cost C: the incumbent "
        "is the configuration with the best value reported at the highest step any trial "
        "has reached so far (ties: the earliest); regret = its true value (z = 1) - the "
        "global minimum, taken when the cumulative cost first reaches C. Median and "
        f"quartiles over seeds 0..{args.seeds - 1}. Methods: random search evaluates every "
        f"configuration at full fidelity; Optuna `TPESampler(seed=s)` with "
        f"`SuccessiveHalvingPruner(min_resource={MIN_STEP}, reduction_factor={ETA})` or "
        f"`HyperbandPruner(min_resource={MIN_STEP}, max_resource={MAX_STEP}, "
        f"reduction_factor={ETA})`, in memory, each trial reporting steps 1..{MAX_STEP} "
        f"until pruned; `dehb.DEHB(min_fidelity={MIN_STEP}, max_fidelity={MAX_STEP}, "
        f"eta={ETA}, n_workers=1, seed=s)` by ask and tell, every job a fresh evaluation.",
        "",
    ]
    if skipped:
        lines += ["Not run:", ""] + [f"- {k}: {why}" for k, why in skipped.items()] + [""]
    errors = [r for r in results if r["error"]]
    if errors:
        lines += [f"{len(errors)} run(s) failed (not reported):", ""]
        lines += [
            f"- {r['problem']} / {r['method']} / seed {r['seed']}: "
            + r["error"].strip().splitlines()[-1]
            for r in errors[:20]
        ]
        lines.append("")
    for name in problems:
        problem = load_problem(name)
        what = f"global minimum {problem.optimum:.6g}"
        if problem.note:
            what = f"reference minimum {problem.optimum:.6g} = {problem.note}"
        lines += [f"### {name} ({len(problem.space)} parameters, {what})", ""]
        lines += problem_table(name, methods, marks, results)
        lines.append("")
    lines += targets(problems, methods, results)
    lines += ["### Time per run (all problems)", "", *time_table(methods, results), ""]
    return "\n".join(lines)


OPTUNA = ("optuna-tpe-sha", "optuna-tpe-hyperband")
TARGET_MARKS = (30.0, 100.0)


def _values(results: Sequence[dict], problem: str, method: str, mark: float) -> list[float]:
    return [
        v
        for r in results
        if r["problem"] == problem and r["method"] == method and not r["error"]
        if (v := at_mark(r, mark)) is not None
    ]


def _best(results: Sequence[dict], problem: str, methods: Sequence[str], mark: float):
    """(median, method) of the method with the lowest median regret, or None."""
    medians = [
        (float(np.median(values)), m)
        for m in methods
        if (values := _values(results, problem, m, mark))
    ]
    return min(medians) if medians else None


def targets(problems: Sequence[str], methods: Sequence[str], results: Sequence[dict]) -> list:
    """Issue 4's targets: tuningfork's best method beats Optuna's best at 30 and 100 units
    on every problem; tuningfork's DEHB is no worse than the dehb package."""
    ours = [m for m in methods if m.startswith("tf-")]
    theirs = [m for m in methods if m in OPTUNA]
    lines = ["### Targets", ""]
    if ours and theirs:
        lines += [
            "tuningfork's best method against Optuna's best (lowest median regret of each "
            "side, per problem and budget):",
            "",
            "| problem | units | tuningfork's best | median | Optuna's best | median | |",
            "|---|---|---|---|---|---|---|",
        ]
        for problem in problems:
            for mark in TARGET_MARKS:
                mine, other = (
                    _best(results, problem, ours, mark),
                    _best(results, problem, theirs, mark),
                )
                if mine is None or other is None:
                    continue
                verdict = "PASS" if mine[0] < other[0] else "FAIL"
                lines.append(
                    f"| {problem} | {mark:g} | {label(mine[1])} | {_g(mine[0])} | "
                    f"{label(other[1])} | {_g(other[0])} | {verdict} |"
                )
        lines.append("")
    if "tf-dehb" in methods and "dehb" in methods:
        from scipy.stats import mannwhitneyu

        lines += [
            "tuningfork DEHB against the `dehb` package: no worse = a lower or equal median, "
            "or a median difference that a one-sided Mann-Whitney U test does not find "
            'significant (p >= 0.05 for "tuningfork\'s regrets are larger").',
            "",
            "| problem | units | tuningfork DEHB | dehb | p | |",
            "|---|---|---|---|---|---|",
        ]
        for problem in problems:
            for mark in marks_for(max(TARGET_MARKS)):
                mine = _values(results, problem, "tf-dehb", mark)
                other = _values(results, problem, "dehb", mark)
                if not mine or not other:
                    continue
                p = float(mannwhitneyu(mine, other, alternative="greater").pvalue)
                ok = np.median(mine) <= np.median(other) or p >= 0.05
                lines.append(
                    f"| {problem} | {mark:g} | {_g(float(np.median(mine)))} | "
                    f"{_g(float(np.median(other)))} | {p:.2f} | {'PASS' if ok else 'FAIL'} |"
                )
        lines.append("")
    return lines


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: " + json.dumps(QUICK))
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 10; quick 3)")
    parser.add_argument("--budget", type=float, help="units per run (default 100; quick 30)")
    parser.add_argument(
        "--problems",
        nargs="+",
        metavar="NAME",
        help=f"default: {' '.join(DEFAULT_PROBLEMS)}; 'all' for all of: "
        + " ".join(problem_names()),
    )
    parser.add_argument(
        "--methods", nargs="+", metavar="KEY", help=f"default: all ({', '.join(METHODS)})"
    )
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="JSON of all runs (the table: same .md)"
    )
    parser.add_argument("--results", type=Path, help="also write a section of this RESULTS.md")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else {"seeds": 10, "budget": BUDGET}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    unknown = [m for m in args.methods or () if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    known = problem_names()
    if args.problems == ["all"]:
        args.problems = known
    unknown = [p for p in args.problems or () if p not in known]
    if unknown:
        parser.error(f"unknown problem(s) {unknown}; known: {', '.join(known)}")
    return args


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    began, load_start = time.perf_counter(), os.getloadavg()[0]
    skipped: dict[str, str] = {}
    methods, problems = [], []
    for key in args.methods or list(METHODS):
        if (why := method_missing(key)) is None:
            methods.append(key)
        else:
            skipped[f"method {key}"] = why
    for name in args.problems or DEFAULT_PROBLEMS:
        if (why := problem_missing(name)) is None:
            problems.append(name)
        else:
            skipped[f"problem {name}"] = why
    for what, why in skipped.items():
        _progress(f"skipping {what}: {why}")
    marks = marks_for(args.budget)
    jobs = [
        {
            "problem": problem,
            "method": method,
            "seed": seed,
            "budget": args.budget,
            "max_step": MAX_STEP,
            "marks": marks,
        }
        for seed in range(args.seeds)
        for problem in problems
        for method in methods
    ]
    _progress(f"{len(jobs)} runs of {args.budget:g} units on {args.workers} workers")
    results = run_jobs(jobs, args.workers)
    run_s = time.perf_counter() - began
    body = render(
        args,
        problems,
        methods,
        skipped,
        results,
        started,
        run_s,
        (load_start, os.getloadavg()[0]),
    )
    print(body)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "started": started.isoformat(),
        "command": command(),
        "machine": machine_lines(),
        "versions": versions(methods),
        "max_step": MAX_STEP,
        "budget": args.budget,
        "marks": marks,
        "seeds": args.seeds,
        "problems": problems,
        "methods": methods,
        "skipped": skipped,
        "run_s": run_s,
        "runs": results,
    }
    args.out.write_text(json.dumps(record, default=str))
    markdown = args.out.with_suffix(".md")
    markdown.write_text(body)
    _progress(f"wrote {args.out} and {markdown}")
    if args.results is not None:
        write_section(args.results, body, BEGIN, END)
        _progress(f"wrote its section of {args.results}")
    return 1 if any(r["error"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
