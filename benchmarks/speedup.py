"""Parallel speed-up of ASHA and Hyperband at 1, 4, 16 and 64 workers, in simulated time.

Each scheduler optimises each multi-fidelity problem of `tuningfork.testing.mf_functions`
(BOCA's Branin, Hartmann 3 and Hartmann 6; fidelity z = step / 81, steps 1..81) with
`RandomSampler(seed=seed)`, on N virtual workers driven by `tuningfork.testing.simulate`: one
step costs 1/81 of a unit of virtual time (one unit = one evaluation at full fidelity), a
resumed trial pays only its added steps, and the workers' asks, reports and tells reach the
study in virtual-time order, as they would on a real cluster.

- Incumbent: the configuration with the best value reported at the highest step any trial
  has reached so far ("any step"); tracked alongside: the best value at step 81 only ("full
  fidelity"). Regret: the incumbent's true value (z = 1) minus the global minimum.
- Reference: the regret one worker has after 100 units of virtual time (same seed), and t1,
  the virtual time at which that worker first reached it.
- t_N: the virtual time at which N workers first reach the reference regret; each N-worker
  run stops once both incumbents have, or at a cap (max(4 t1 / N, 4 units), at most t1): a
  run that has not reached it by the cap is censored (its speed-up is below t1 / cap).
- Speed-up: t1 / t_N. (100 / t_N, which counts the time one worker spends after t1 without
  improving as "parallelisable", is in the JSON and in a secondary table.)
- Utilisation: the workers' busy time / (N x elapsed virtual time).

    .venv/bin/python benchmarks/speedup.py            # 3 problems x 4 schedulers x 10 seeds
    .venv/bin/python benchmarks/speedup.py --quick    # smoke run: 2 seeds, 30 units
    .venv/bin/python benchmarks/speedup.py --render benchmarks/out/speedup.json  # report only

Writes benchmarks/out/speedup.md and .json (and, with --results, a section of RESULTS.md).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import math
import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _report import command, machine_lines, package_version, write_section

import tuningfork as tf
from tuningfork.testing.mf_functions import MF_PROBLEMS, MFProblem
from tuningfork.testing.simulate import Simulation, StepRecord, simulate, simulated_study

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "out" / "speedup.json"
SECTION = "speedup.py"
BEGIN = f"<!-- begin {SECTION} (generated; edit the script, not this section) -->"
END = f"<!-- end {SECTION} -->"

MAX_STEP = 81  # R: the fidelity steps are 1..R, z = step / R
MIN_BUDGET, MAX_BUDGET, ETA = 1, 81, 3
REF_TIME = 100.0  # units of virtual time the one-worker reference runs
WORKERS = (4, 16, 64)
CAP_FACTOR = 4.0  # an N-worker run goes on to max(CAP_FACTOR * t1 / N, MIN_CAP), <= t1
MIN_CAP = 4.0  # units: a few full-budget trainings, whatever N
TARGET = {4: 2.0, 16: 8.0, 64: 32.0}  # ASHA: at least half of linear
QUICK = {"seeds": 2, "ref_time": 30.0}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

SCHEDULERS: dict[str, Callable[[], tf.Scheduler]] = {
    "asha-stopping": lambda: tf.ASHA(MIN_BUDGET, MAX_BUDGET, ETA, mode="stopping"),
    "asha-promotion": lambda: tf.ASHA(MIN_BUDGET, MAX_BUDGET, ETA, mode="promotion"),
    "hyperband-sync": lambda: tf.Hyperband(
        MIN_BUDGET, MAX_BUDGET, ETA, mode="promotion", asynchronous=False
    ),
    "hyperband-async": lambda: tf.Hyperband(
        MIN_BUDGET, MAX_BUDGET, ETA, mode="promotion", asynchronous=True
    ),
}
LABELS = {
    "asha-stopping": "ASHA, stopping",
    "asha-promotion": "ASHA, promotion",
    "hyperband-sync": "Hyperband, synchronous (promotion)",
    "hyperband-async": "Hyperband, asynchronous (promotion)",
}
ASHA_KEYS = ("asha-stopping", "asha-promotion")


# -- one simulated run ------------------------------------------------------------------------

DEFINITIONS = ("any", "full")
"""How the incumbent is chosen: "any": the best value at the highest step reached so far
(the definition of benchmarks/multifidelity.py); "full": the best value at step 81 only
(none until a trial reaches full fidelity)."""


class RegretTracker:
    """The incumbent's regret over virtual time (one definition of the incumbent); with a
    ``target``, notes when the regret first reaches it."""

    def __init__(self, problem: MFProblem, full_only: bool, target: float | None) -> None:
        self.problem = problem
        self.full_only = full_only
        self.target = target
        self.top = -1
        self.best = math.inf
        self.trial = -1
        self.regret = math.inf
        self.step = 0  # the step of the report that made the current incumbent
        self.curve: list[tuple[float, float, float, int]] = []  # (time, cost, regret, step)
        self.reached: tuple[float, float, int] | None = None  # (time, cost, step)

    def see(self, sim: Simulation, record: StepRecord) -> None:
        if self.full_only and record.step < MAX_STEP:
            return
        if record.step > self.top or (record.step == self.top and record.value < self.best):
            self.top, self.best = record.step, record.value
            if record.trial != self.trial:
                self.trial = record.trial
                regret = self.problem.regret(sim.params[record.trial])
                if regret != self.regret:
                    self.regret, self.step = regret, record.step
                    self.curve.append((record.time, record.cost, regret, record.step))
        if self.reached is None and self.target is not None and self.regret <= self.target:
            self.reached = (record.time, record.cost, self.step)

    def first_time_at(self, level: float) -> float | None:
        for when, _, regret, _ in self.curve:
            if regret <= level:
                return when
        return None


class Trackers:
    """Both definitions at once, as a `simulate` stop callback: True once both trackers have
    reached their targets (never, without targets)."""

    def __init__(self, problem: MFProblem, targets: dict[str, float] | None) -> None:
        self.by = {
            d: RegretTracker(problem, d == "full", None if targets is None else targets[d])
            for d in DEFINITIONS
        }
        self.first_full: float | None = None  # when a trial first reported step 81

    def __call__(self, sim: Simulation, record: StepRecord) -> bool:
        if record.step == MAX_STEP and self.first_full is None:
            self.first_full = record.time
        for tracker in self.by.values():
            tracker.see(sim, record)
        return all(t.reached is not None for t in self.by.values())


def run_one(
    problem: MFProblem, scheduler: str, seed: int, n_workers: int, time_limit: float,
    targets: dict[str, float] | None,
) -> tuple[Simulation, Trackers, float]:  # fmt: skip
    study = simulated_study(
        sampler=tf.RandomSampler(seed=seed), scheduler=SCHEDULERS[scheduler](), seed=seed
    )
    trackers = Trackers(problem, targets)
    began = time.perf_counter()
    sim = simulate(
        study,
        problem.space,
        lambda params, step: problem.evaluate(params, step / MAX_STEP),
        n_workers=n_workers,
        max_step=MAX_STEP,
        step_cost=lambda params, step: 1.0 / MAX_STEP,
        time_limit=time_limit,
        stop=trackers,
    )
    return sim, trackers, time.perf_counter() - began


def summary(sim: Simulation, trackers: Trackers, wall: float) -> dict[str, Any]:
    return {
        "elapsed": sim.elapsed,
        "cost": sim.cost,
        "ended_by": sim.ended_by,
        "utilisation": sim.utilisation,
        "trials": len(sim.params),
        "steps": len(sim.steps),
        "resumed_runs": sum(1 for r in sim.runs if r.resumed),
        "first_full_fidelity": trackers.first_full,
        "wall_s": wall,
    }


def cap_for(t1: float, n_workers: int) -> float:
    return min(t1, max(CAP_FACTOR * t1 / n_workers, MIN_CAP))


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """One (problem, scheduler, seed): the one-worker reference, then each N."""
    began = time.perf_counter()
    problem = MF_PROBLEMS[job["problem"]]
    out: dict[str, Any] = {k: job[k] for k in ("problem", "scheduler", "seed", "ref_time")}
    try:
        sim, trackers, wall = run_one(
            problem, job["scheduler"], job["seed"], 1, job["ref_time"], None
        )
        refs = {d: t.regret for d, t in trackers.by.items()}
        t1 = {d: t.first_time_at(refs[d]) for d, t in trackers.by.items()}
        out["reference"] = {
            **summary(sim, trackers, wall),
            **{
                d: {"regret": refs[d], "t1": t1[d], "curve": t.curve}
                for d, t in trackers.by.items()
            },
        }
        out["runs"] = {}
        for n in job["workers"]:
            cap = max(cap_for(t1[d], n) for d in DEFINITIONS)
            sim, trackers, wall = run_one(problem, job["scheduler"], job["seed"], n, cap, refs)
            run: dict[str, Any] = {**summary(sim, trackers, wall), "cap": cap}
            for d, tracker in trackers.by.items():
                if tracker.reached is not None:
                    tn, cost, step = tracker.reached
                else:
                    tn, cost, step = None, None, None
                run[d] = {
                    "t1": t1[d],
                    "reached": tn is not None,
                    "t_n": tn,
                    "cost": cost,
                    "incumbent_step": step,
                    "speedup": t1[d] / tn if tn else None,
                    "speedup_bound": None if tn else t1[d] / cap,
                    "speedup_vs_ref_time": job["ref_time"] / tn if tn else None,
                    "curve": tracker.curve,
                }
            out["runs"][str(n)] = run
        out["error"] = None
    except Exception:
        out["error"] = traceback.format_exc()
    out["wall_s"] = time.perf_counter() - began
    return out


def run_jobs(jobs: list[dict[str, Any]], processes: int) -> list[dict[str, Any]]:
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    began = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            i = futures[future]
            result = results[i] = future.result()
            what = f"{result['problem']} {result['scheduler']} seed {result['seed']}"
            head = f"[{done}/{len(jobs)}] {what}"
            if result["error"]:
                _progress(f"{head}: FAILED\n{result['error']}")
                continue
            speedups = " ".join(
                f"{n}:{_speedup_text(run['any'])}/{_speedup_text(run['full'])}"
                for n, run in result["runs"].items()
            )
            _progress(
                f"{head}: t1 {result['reference']['any']['t1']:.1f}, speed-up (any/full) "
                f"{speedups}; {result['wall_s']:.1f} s, "
                f"elapsed {(time.perf_counter() - began) / 60:.1f} min"
            )
    return [r for r in results if r is not None]


def _speedup_text(run: dict[str, Any]) -> str:
    if run["reached"]:
        return f"{run['speedup']:.1f}"
    return f"<{run['speedup_bound']:.1f}"


# -- report -----------------------------------------------------------------------------------


def _g(x: float) -> str:
    return f"{x:.2g}" if abs(x) < 10 else f"{x:.0f}"


def quartiles(values: Sequence[float | None], bounds: Sequence[float]) -> tuple[str, list]:
    """Median [25%, 75%] of speed-ups, a censored run counting as 0 (below its bound); a
    quantile that falls among censored runs reads "<bound"."""
    xs = [v if v is not None else 0.0 for v in values]
    q = np.percentile(xs, [25, 50, 75])
    bound = max(bounds) if bounds else None

    def cell(x: float) -> str:
        return f"<{_g(bound)}" if bound is not None and x < bound else _g(x)

    text = f"{cell(q[1])} [{cell(q[0])}, {cell(q[2])}]"
    if bounds:
        text += f" ({len(bounds)} cens.)"
    return text, [float(x) for x in q]


def ok(r: dict, scheduler: str, problem: str | None) -> bool:
    return (
        not r["error"]
        and r["scheduler"] == scheduler
        and (problem is None or r["problem"] == problem)
    )


def cell_runs(
    results: Sequence[dict], scheduler: str, n: int, problem: str | None, definition: str
) -> list[dict]:
    """The N-worker runs of a cell, each with the fields of one incumbent definition."""
    return [
        {**r["runs"][str(n)], **r["runs"][str(n)][definition], "ref_time": r["ref_time"]}
        for r in results
        if ok(r, scheduler, problem) and str(n) in r["runs"]
    ]


def speedup_cell(runs: Sequence[dict], key: str) -> tuple[str, list]:
    values = [run[key] for run in runs]
    bounds = [
        run["speedup_bound"] * (1.0 if key == "speedup" else run["ref_time"] / run["t1"])
        for run in runs
        if not run["reached"]
    ]
    return quartiles(values, bounds)


def speedup_table(
    results: Sequence[dict], schedulers: Sequence[str], workers: Sequence[int],
    problem: str | None, definition: str = "any", key: str = "speedup",
) -> list[str]:  # fmt: skip
    head = "| scheduler | t1: median (units) | " + " | ".join(f"{n} workers" for n in workers)
    lines = [head + " |", "|---|---|" + "---|" * len(workers)]
    for scheduler in schedulers:
        refs = [r["reference"][definition]["t1"] for r in results if ok(r, scheduler, problem)]
        if not refs:
            continue
        cells = [f"{np.median(refs):.1f}"]
        for n in workers:
            text, q = speedup_cell(cell_runs(results, scheduler, n, problem, definition), key)
            if key == "speedup" and scheduler in ASHA_KEYS and n in TARGET:
                text += " ✓" if q[1] >= TARGET[n] else " ✗"
            cells.append(text)
        lines.append(f"| {LABELS[scheduler]} | " + " | ".join(cells) + " |")
    if key == "speedup":
        lines.append(
            "| *target (ASHA)* | | "
            + " | ".join(f"≥ {TARGET.get(n, n / 2):g}" for n in workers)
            + " |"
        )
    return lines


def diagnostics_table(
    results: Sequence[dict], schedulers: Sequence[str], workers: Sequence[int],
    definition: str = "any",
) -> list[str]:  # fmt: skip
    lines = [
        "| scheduler | workers | reached | t_N: median (units) | t_N - t1 / N: median "
        "[25%, 75%] | reached below step 81 | "
        "limit: median | speed-up / limit | Amdahl: median | speed-up / Amdahl | "
        "cost to reach / t1 | utilisation: median (min) | trials |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scheduler in schedulers:
        for n in workers:
            runs = cell_runs(results, scheduler, n, None, definition)
            if not runs:
                continue
            reached = [r for r in runs if r["reached"]]
            tn = np.median([r["t_n"] for r in reached]) if reached else math.nan
            excess = [r["t_n"] - r["t1"] / n for r in reached] or [math.nan]
            q = np.percentile(excess, [25, 50, 75])
            low = sum(1 for r in reached if r["incumbent_step"] < MAX_STEP)
            bounds = [speedup_limit(r["t1"], n) for r in runs]
            share = np.median([(r["speedup"] or 0.0) / b for r, b in zip(runs, bounds)])
            amdahl = [amdahl_estimate(r["t1"], n) for r in runs]
            share_amdahl = np.median([(r["speedup"] or 0.0) / a for r, a in zip(runs, amdahl)])
            inflation = np.median([r["cost"] / r["t1"] for r in reached]) if reached else math.nan
            util = [r["utilisation"] for r in runs]
            trials = np.median([r["trials"] for r in runs])
            lines.append(
                f"| {LABELS[scheduler]} | {n} | {len(reached)}/{len(runs)} | {tn:.2f} | "
                f"{q[1]:.2f} [{q[0]:.2f}, {q[2]:.2f}] | "
                f"{low} | {np.median(bounds):.1f} | {share:.2f} | {np.median(amdahl):.1f} | "
                f"{share_amdahl:.2f} | {inflation:.2f} | "
                f"{np.median(util):.3f} ({min(util):.3f}) | {trials:.0f} |"
            )
    return lines


def speedup_limit(t1: float, n_workers: int) -> float:
    """min(N, t1 / 1 unit): N workers finish the one worker's t1 units of work in t1 / N at
    best, and no full-fidelity result exists before 1 unit of virtual time."""
    return max(min(float(n_workers), t1), 1e-9)


def amdahl_estimate(t1: float, n_workers: int) -> float:
    """t1 / (1 + (t1 - 1) / N): the speed-up if N workers repeat the one worker's path to the
    reference with its work shared, except the winner's own full-budget training (1 unit),
    which is serial (Amdahl's law)."""
    serial = min(t1, 1.0)
    return t1 / (serial + (t1 - serial) / n_workers)


def time_table(results: Sequence[dict], schedulers: Sequence[str]) -> list[str]:
    lines = ["| scheduler | s per job: median | max | process-s in all |", "|---|---|---|---|"]
    for scheduler in schedulers:
        walls = [r["wall_s"] for r in results if r["scheduler"] == scheduler and not r["error"]]
        if walls:
            lines.append(
                f"| {LABELS[scheduler]} | {np.median(walls):.1f} | {max(walls):.1f} | "
                f"{sum(walls):.0f} |"
            )
    return lines


def versions() -> str:
    return ", ".join(f"{p} {package_version(p)}" for p in ("tuningfork", "numpy", "scipy"))


def render(meta: dict[str, Any], results: Sequence[dict]) -> str:
    """The Markdown report of a run, from its JSON record (``meta``) and jobs."""
    busy = sum(r["wall_s"] for r in results)
    workers = meta["workers"]
    ref_time = meta["ref_time"]
    started = datetime.datetime.fromisoformat(meta["started"])
    lines = [
        f"## Parallel speed-up in simulated time (`benchmarks/{Path(__file__).name}`)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC"
        + (" (quick smoke run: figures are not meaningful)" if meta["quick"] else ""),
        *(f"- {key}: {value}" for key, value in meta["machine"].items()),
        f"- versions: {meta['versions']}",
        f"- command: `{meta['command']}`",
        f"- {len(meta['problems'])} problems x {len(meta['schedulers'])} schedulers x "
        f"{meta['seeds']} seeds, workers 1 and {', '.join(map(str, workers))}; reference "
        f"{ref_time:g} units; {meta['processes']} processes; run time "
        f"{meta['run_s'] / 60:.1f} min ({busy / 60:.1f} process-min)",
        "",
        "Method: each scheduler (`min_budget=1, max_budget=81, eta=3`, `RandomSampler(seed=seed)`, "
        "in-memory study) runs on N virtual workers of `tuningfork.testing.simulate`: one "
        "fidelity step of BOCA's multi-fidelity functions (z = step / 81) costs 1/81 of a unit "
        "of virtual time, a unit being one evaluation at full fidelity; a resumed trial pays "
        "only its added steps; asks, reports and tells reach the study in virtual-time order. "
        "The incumbent is the configuration with the best value reported at the highest step "
        "reached so far; regret = its true value (z = 1) - the global minimum. Reference: "
        f"the regret one worker has at {ref_time:g} units (same seed), first reached at t1. "
        "Speed-up at N workers = t1 / t_N, t_N = when N workers first reach the reference "
        f"regret. N-worker runs are capped at max({meta['cap_factor']:g} t1 / N, "
        f"{meta['min_cap']:g} units) (and t1): a run that has not reached the reference by "
        'then is censored ("cens."; speed-up below t1 / cap; counted as 0 in the quartiles, '
        'shown as "<bound"). '
        f"Cells: median [25%, 75%] over seeds 0..{meta['seeds'] - 1}; ✓/✗: ASHA's target, "
        "at least half of linear.",
        "",
        "Two incumbents are tracked in the same runs: **any step** (the definition above, "
        "as in `benchmarks/multifidelity.py`) and **full fidelity only** (the best value at "
        "step 81; none before a trial reaches it). They agree once a trial has reached step "
        "81, so their references are the same unless one worker's reference was first met "
        "before that; but before any trial reaches step 81 (the first unit of virtual time), "
        "the any-step incumbent is a low-fidelity pick among the many configurations N "
        "workers have started at once, which can match the reference by luck. No trial "
        "reaches step 81 before 1 unit of virtual time, so with the full-fidelity incumbent "
        "t_N >= 1 unit and the speed-up is at most t1 / 1 unit, whatever N.",
        "",
    ]
    errors = [r for r in results if r["error"]]
    if errors:
        lines += [f"{len(errors)} job(s) failed (not reported):", ""]
        lines += [
            f"- {r['problem']} / {r['scheduler']} / seed {r['seed']}: "
            + r["error"].strip().splitlines()[-1]
            for r in errors[:20]
        ]
        lines.append("")
    schedulers = meta["schedulers"]
    for definition, title in (("any", "any step"), ("full", "full fidelity only")):
        lines += [f"### All problems pooled: speed-up t1 / t_N, incumbent at {title}", ""]
        lines += speedup_table(results, schedulers, workers, None, definition)
        lines.append("")
    for name in meta["problems"]:
        problem = MF_PROBLEMS[name]
        for definition, title in (("any", "any step"), ("full", "full fidelity only")):
            lines += [
                f"### {name} ({len(problem.space)} parameters): speed-up t1 / t_N, "
                f"incumbent at {title}",
                "",
                *speedup_table(results, schedulers, workers, name, definition),
                "",
            ]
    lines += [
        "### Diagnostics (all problems pooled)",
        "",
        "t_N: virtual time to reach the reference, in units (one full-fidelity evaluation); "
        "t_N - t1 / N: the time lost to parallelism, over perfectly shared work (runs that "
        "reached the reference); "
        "reached below step 81: runs whose incumbent, when it reached the reference, had "
        "been reported only at a lower step; limit: min(N, t1 / 1 unit), the most N workers "
        "can gain without finding the reference with less work than one worker did, given "
        "that no full-fidelity result exists before 1 unit of virtual time (an any-step "
        "incumbent can beat it by meeting the reference below step 81); speed-up / limit: "
        "the share of it achieved (censored runs count 0); Amdahl: t1 / (1 + (t1 - 1) / N), the "
        "speed-up if N workers repeat the one worker's path to the reference with its work "
        "shared, except the winner's own full-budget training (1 unit), which is serial: an "
        "estimate of what is possible, not a bound (N workers may find an equally good "
        "configuration sooner); cost to reach / t1: the compute "
        "N workers spent "
        "to reach the reference over what one worker spent (1 = no extra work; speed-up = "
        "N x utilisation / this); "
        "utilisation: busy time / (N x elapsed virtual time) over the whole run.",
        "",
    ]
    for definition, title in (("any", "any step"), ("full", "full fidelity only")):
        lines += [
            f"Incumbent at {title}:",
            "",
            *diagnostics_table(results, schedulers, workers, definition),
            "",
        ]
    lines += [
        f"### Speed-up as {ref_time:g} / t_N (incumbent at any step, all problems pooled)",
        "",
        "The brief's first definition: it counts the time one worker spends after t1 without "
        "improving as if N workers could shorten it, so it exceeds N when t1 is well below "
        f"{ref_time:g}; shown for comparison only.",
        "",
        *speedup_table(results, schedulers, workers, None, "any", "speedup_vs_ref_time"),
        "",
        "### Time per job (a problem, a scheduler, a seed: all worker counts)",
        "",
        *time_table(results, schedulers),
        "",
    ]
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: " + json.dumps(QUICK))
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 10; quick 2)")
    parser.add_argument(
        "--ref-time", type=float, help="one-worker reference, in units (default 100; quick 30)"
    )
    parser.add_argument("--problems", nargs="+", choices=list(MF_PROBLEMS), metavar="NAME")
    parser.add_argument("--schedulers", nargs="+", choices=list(SCHEDULERS), metavar="KEY")
    parser.add_argument(
        "--workers", nargs="+", type=int, dest="workers_list", default=list(WORKERS),
        help="numbers of workers to compare with one (default 4 16 64)",
    )  # fmt: skip
    parser.add_argument("--processes", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON (the table: .md)")
    parser.add_argument("--results", type=Path, help="also write a section of this RESULTS.md")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="only write the report of a run's JSON"
    )
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else {"seeds": 10, "ref_time": REF_TIME}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.problems = args.problems or list(MF_PROBLEMS)
    args.schedulers = args.schedulers or list(SCHEDULERS)
    return args


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write(record: dict[str, Any], out: Path, results_md: Path | None) -> None:
    body = render(record, record["jobs"])
    print(body)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record))
    markdown = out.with_suffix(".md")
    markdown.write_text(body)
    _progress(f"wrote {out} and {markdown}")
    if results_md is not None:
        write_section(results_md, body, BEGIN, END)
        _progress(f"wrote its section of {results_md}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:  # the report again, from a run's JSON
        record = json.loads(args.render.read_text())
        write(record, args.out, args.results)
        return 0
    started = datetime.datetime.now(datetime.timezone.utc)
    began = time.perf_counter()
    order = {"asha-promotion": 0, "asha-stopping": 1}  # slowest first, for load balance
    jobs = [
        {
            "problem": problem,
            "scheduler": scheduler,
            "seed": seed,
            "ref_time": args.ref_time,
            "workers": args.workers_list,
        }
        for scheduler in sorted(args.schedulers, key=lambda s: order.get(s, 2))
        for seed in range(args.seeds)
        for problem in args.problems
    ]
    _progress(f"{len(jobs)} jobs on {args.processes} processes")
    results = run_jobs(jobs, args.processes)
    record = {
        "started": started.isoformat(),
        "command": command(),
        "machine": machine_lines(),
        "versions": versions(),
        "quick": args.quick,
        "max_step": MAX_STEP,
        "ref_time": args.ref_time,
        "workers": args.workers_list,
        "cap_factor": CAP_FACTOR,
        "min_cap": MIN_CAP,
        "seeds": args.seeds,
        "problems": args.problems,
        "schedulers": args.schedulers,
        "processes": args.processes,
        "run_s": time.perf_counter() - began,
        "jobs": results,
    }
    write(record, args.out, args.results)
    return 1 if any(r["error"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
