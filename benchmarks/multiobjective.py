"""Multi-objective quality: tuningfork's samplers against Optuna 5 and pymoo on ZDT and DTLZ,
by hypervolume, in one run.

Runs every (problem, sampler, seed) and reports the median hypervolume, as a fraction of
the true front's, and the worst seed's, at 100 and 1,000 trials, the time per trial outside
the objective, and issue 16's target as a PASS/FAIL line. Each job's result is cached as
JSON in benchmarks/out/multiobjective/, so an interrupted run resumes. Prints a table per
problem and writes its section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/multiobjective.py              # full run (43 min on 2 busy cores)
    .venv/bin/python benchmarks/multiobjective.py --dry-run    # the plan and its time
    .venv/bin/python benchmarks/multiobjective.py --quick      # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.util
import inspect
import json
import math
import os
import sys
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _report import command, machine_lines, package_version, write_section
from quality import (
    Clock,
    _ms,
    _progress,
    _source_files,
    announce,
    job_path,
    load_cached,
    run_jobs,
)

import tuningfork as tf
from tuningfork.testing import multiobjective as mo
from tuningfork.testing.multiobjective import PROBLEMS, MultiObjectiveProblem

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "RESULTS.md"
DEFAULT_CACHE = HERE / "out" / "multiobjective"
SECTION = "multiobjective.py"
BEGIN = f"<!-- begin {SECTION} (generated; edit the script, not this section) -->"
END = f"<!-- end {SECTION} -->"
DEFAULT_PROBLEMS = ["zdt1", "zdt2", "zdt3", "dtlz1", "dtlz2"]
TARGET_SHARE = 5 / 7  # issue 16: "no worse than its anchor on at least 5 of 7 problems"


@dataclass(frozen=True)
class SamplerSpec:
    key: str
    label: str
    framework: str  # "tuningfork", "optuna" or "pymoo"
    population: str  # its default population, as the framework sets it
    cheap: bool = True  # runs to the largest --trials by default (else to the smallest)
    three_objectives: bool = False  # NSGA-III: only on problems with 3 or more objectives


SAMPLERS: dict[str, SamplerSpec] = {
    s.key: s
    for s in (
        SamplerSpec("tf-nsga2", "tuningfork NSGA-II", "tuningfork", "50"),
        SamplerSpec("tf-nsga3", "tuningfork NSGA-III", "tuningfork", "its default", True, True),
        SamplerSpec("tf-tpe", "tuningfork TPE (multi-objective)", "tuningfork", "—", cheap=False),
        SamplerSpec("tf-auto", "tuningfork auto (default)", "tuningfork", "—", cheap=False),
        SamplerSpec("tf-random", "tuningfork random", "tuningfork", "—"),
        SamplerSpec("optuna-nsga2", "Optuna NSGAIISampler", "optuna", "50"),
        SamplerSpec("optuna-nsga3", "Optuna NSGAIIISampler", "optuna", "50", True, True),
        SamplerSpec("optuna-tpe", "Optuna TPESampler (MOTPE)", "optuna", "—", cheap=False),
        SamplerSpec("pymoo-nsga2", "pymoo NSGA2", "pymoo", "100"),
        SamplerSpec(
            "pymoo-nsga3", "pymoo NSGA3", "pymoo", "91 (Das-Dennis, 12 partitions)", True, True
        ),  # fmt: skip
    )
}
# tuningfork samplers looked up by registry name
REGISTERED = {"tf-nsga2": "nsga2", "tf-nsga3": "nsga3", "tf-tpe": "tpe", "tf-random": "random"}
QUICK = {
    "problems": ["zdt1_n5", "dtlz2"],
    "samplers": ["tf-nsga2", "tf-random", "optuna-nsga2", "pymoo-nsga2"],
    "seeds": 2,
    "trials": [20, 40],
}
# Rough seconds per trial at 1,000 trials (the plan's estimate when no cached job says
# better); the model-based ones grow with the study, these are for 100 trials.
DEFAULT_COST_S = {
    "tf-nsga2": 0.05,
    "tf-nsga3": 0.05,
    "tf-tpe": 0.05,
    "tf-auto": 0.05,
    "tf-random": 0.001,
    "optuna-nsga2": 0.002,
    "optuna-nsga3": 0.003,
    "optuna-tpe": 0.05,
    "pymoo-nsga2": 0.001,
    "pymoo-nsga3": 0.002,
}


# -- samplers, found lazily -------------------------------------------------------------------


def missing_reason(key: str) -> str | None:
    """Why sampler ``key`` cannot run here, or None when it can."""
    framework = SAMPLERS[key].framework
    if framework != "tuningfork":
        return None if importlib.util.find_spec(framework) else f"{framework} is not installed"
    if key == "tf-auto":
        return None
    try:
        tf.registry.lookup("sampler", REGISTERED[key])
    except Exception as error:  # not written yet (NSGA-III), or broken mid-edit
        return f"not registered ({type(error).__name__}: {error})"
    return None


def sampler_fingerprint(key: str) -> str:
    """Changes when the code behind ``key`` changes: tuningfork sources, or the versions."""
    spec = SAMPLERS[key]
    if spec.framework == "tuningfork":
        digest = hashlib.sha256()
        for path in _source_files("tf-tpe" if key != "tf-random" else key):
            digest.update(path.name.encode() + path.read_bytes())
        return f"tuningfork {tf.__version__} src {digest.hexdigest()[:12]}"
    return f"{spec.framework} {package_version(spec.framework)}"


def problem_fingerprint(name: str) -> str:
    problem = PROBLEMS[name]
    text = inspect.getsource(mo) + name + repr(problem.reference_point)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# -- one job: a problem, a sampler, a seed ----------------------------------------------------


class VectorClock(Clock):
    """`quality.Clock` for objectives that return several values."""

    def evaluate(self, params: Mapping[str, Any]) -> Any:
        began = time.perf_counter()
        self.framework_s.append(began - self._last)
        value = tuple(float(v) for v in self.function(params))  # type: ignore[attr-defined]
        self.values.append(value)  # type: ignore[arg-type]
        self._last = time.perf_counter()
        return value


def run_tuningfork(key: str, problem: MultiObjectiveProblem, seed: int, trials: int,
                   clock: VectorClock) -> str:  # fmt: skip
    sampler = (
        None if key == "tf-auto" else tf.registry.lookup("sampler", REGISTERED[key])(seed=seed)
    )
    study = tf.create_study(
        storage="memory", sampler=sampler, seed=seed, directions=list(problem.directions)
    )
    clock.start()
    study.optimize(
        lambda trial: clock.evaluate(trial.params),
        n_trials=trials,
        space=problem.space,
        show_progress_bar=False,
    )
    chosen = study.system_attrs.get("auto_sampler")
    if isinstance(chosen, Mapping):
        return f"{type(study.sampler).__name__}: {chosen.get('chosen')} ({chosen.get('reason')})"
    return type(study.sampler).__name__


def run_optuna(key: str, problem: MultiObjectiveProblem, seed: int, trials: int,
               clock: VectorClock) -> str:  # fmt: skip
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = {
        "optuna-nsga2": optuna.samplers.NSGAIISampler,
        "optuna-nsga3": optuna.samplers.NSGAIIISampler,
        "optuna-tpe": optuna.samplers.TPESampler,
    }[key](seed=seed)
    study = optuna.create_study(sampler=sampler, directions=list(problem.directions))
    names = problem.space.names

    def objective(trial: Any) -> Any:
        return clock.evaluate({name: trial.suggest_float(name, 0.0, 1.0) for name in names})

    clock.start()
    study.optimize(objective, n_trials=trials, gc_after_trial=False)
    return type(sampler).__name__


def pymoo_algorithm(key: str, objectives: int) -> Any:
    """pymoo's NSGA2 or NSGA3 with its defaults (NSGA3 needs reference directions: Das-Dennis
    with 12 partitions, 91 directions for 3 objectives, as in pymoo's examples)."""
    if key == "pymoo-nsga2":
        from pymoo.algorithms.moo.nsga2 import NSGA2

        return NSGA2()
    from pymoo.algorithms.moo.nsga3 import NSGA3
    from pymoo.util.ref_dirs import get_reference_directions

    return NSGA3(get_reference_directions("das-dennis", objectives, n_partitions=12))


def run_pymoo(key: str, problem: MultiObjectiveProblem, seed: int, trials: int,
              clock: VectorClock) -> str:  # fmt: skip
    """pymoo's ask-and-tell: a generation at a time; the last one is cut at ``trials``
    (its tail is never evaluated, nor told)."""
    from pymoo.core.problem import Problem

    names = problem.space.names
    bounds = np.zeros(len(names)), np.ones(len(names))
    space = Problem(n_var=len(names), n_obj=len(problem.directions), xl=bounds[0], xu=bounds[1])
    algorithm = pymoo_algorithm(key, len(problem.directions))
    algorithm.setup(space, termination=("n_evals", trials), seed=seed, verbose=False)
    clock.start()
    while len(clock.values) < trials:
        population = algorithm.ask()
        rows = population.get("X")[: trials - len(clock.values)]
        values = [clock.evaluate(dict(zip(names, map(float, row)))) for row in rows]
        if len(values) < len(population):
            break
        population.set("F", np.array(values))
        algorithm.tell(infills=population)
    return f"{type(algorithm).__name__} pop_size {algorithm.pop_size}"


RUNNERS = {"tuningfork": run_tuningfork, "optuna": run_optuna, "pymoo": run_pymoo}


def _init_worker() -> None:
    warnings.filterwarnings("ignore")  # Optuna's ExperimentalWarning (NSGA-III, MOTPE)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job and write its JSON file; returns a short summary (or the error)."""
    began = time.perf_counter()
    try:
        problem = PROBLEMS[job["problem"]]
        clock = VectorClock(problem.evaluate)  # type: ignore[arg-type]
        runner = RUNNERS[SAMPLERS[job["sampler"]].framework]
        chosen = runner(job["sampler"], problem, job["seed"], job["trials"], clock)
        if len(clock.values) != job["trials"]:
            raise RuntimeError(f"{len(clock.values)} of {job['trials']} trials evaluated")
        points = np.array(clock.values)
        ratios = {str(m): problem.hypervolume_ratio(points[:m]) for m in job["marks"]}
        result = {
            **job,
            "values": clock.values,
            "framework_s": clock.framework_s,
            "hypervolume": ratios,
            "wall_s": time.perf_counter() - began,
            "chosen": chosen,
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        path = Path(job["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(result, default=str))
        os.replace(partial, path)  # a half-written file never looks like a result
        return {"ok": True, "wall_s": result["wall_s"], "hv": ratios[str(job["trials"])]}
    except Exception:
        return {"ok": False, "wall_s": time.perf_counter() - began, "error": traceback.format_exc()}


# -- the plan ---------------------------------------------------------------------------------


def run_length(args: argparse.Namespace, sampler: str) -> int:
    """Every sampler here ignores the budget, so one run to the largest mark gives every
    smaller mark too (its first trials); the costly ones run to the smallest only."""
    full = SAMPLERS[sampler].cheap or sampler in args.long
    return max(args.trials) if full else min(args.trials)


def applies(sampler: str, problem: str) -> bool:
    return not SAMPLERS[sampler].three_objectives or len(PROBLEMS[problem].directions) >= 3


def plan(args: argparse.Namespace, samplers: list[str]) -> list[dict[str, Any]]:
    """Every job of the run, with its cache path and the fingerprint of the code behind it."""
    fingerprints = {s: sampler_fingerprint(s) for s in samplers}
    jobs = []
    for problem in args.problems:
        problem_print = problem_fingerprint(problem)
        for sampler in (s for s in samplers if applies(s, problem)):
            trials = run_length(args, sampler)
            for seed in range(args.seeds):
                jobs.append(
                    {
                        "problem": problem,
                        "sampler": sampler,
                        "seed": seed,
                        "trials": trials,
                        "marks": sorted(m for m in args.trials if m <= trials),
                        "fingerprint": {"sampler": fingerprints[sampler], "problem": problem_print},
                        "path": str(job_path(args.cache_dir, problem, sampler, seed, trials)),
                    }
                )
    return jobs


def cost_per_trial(cache: Path, problem: str, sampler: str, trials: int) -> float:
    """Seconds per trial from a cached job of this pair and length (any seed, any code)."""
    for path in sorted(cache.glob(f"{problem}__{sampler}__seed*__trials{trials}.json")):
        try:
            result = json.loads(path.read_text())
            return float(result["wall_s"]) / max(1, len(result["values"]))
        except (OSError, ValueError, KeyError):
            continue
    return DEFAULT_COST_S.get(sampler, 0.05)


def pending(args: argparse.Namespace, jobs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The jobs without a valid cached result: seed by seed, longest first within a seed."""
    to_run = []
    for job in jobs:
        if not args.force and load_cached(Path(job["path"]), job["fingerprint"]) is not None:
            continue
        cost = cost_per_trial(args.cache_dir, job["problem"], job["sampler"], job["trials"])
        to_run.append({**job, "estimate_s": job["trials"] * cost})
    to_run.sort(key=lambda j: (j["seed"], -j["estimate_s"]))
    return to_run


def _hypervolume(summary: dict[str, Any]) -> str:
    return f"hypervolume {summary['hv']:.4f}"


# -- report -----------------------------------------------------------------------------------


@dataclass
class Report:
    """The cached results by (problem, sampler), one per seed."""

    results: dict[tuple[str, str], list[dict[str, Any]]]
    problems: list[str]
    samplers: list[str]
    marks: list[int]

    def ratios(self, problem: str, sampler: str, mark: int) -> np.ndarray | None:
        """Each seed's hypervolume fraction at ``mark`` trials (None: not run that long)."""
        runs = self.results.get((problem, sampler), [])
        values = [r["hypervolume"][str(mark)] for r in runs if str(mark) in r["hypervolume"]]
        return np.array(values) if values else None

    def median(self, problem: str, sampler: str, mark: int) -> float | None:
        ratios = self.ratios(problem, sampler, mark)
        return None if ratios is None else float(np.median(ratios))

    def problem_table(self, problem: str) -> list[str]:
        heads = [f"hypervolume at {m}: median [worst seed]" for m in self.marks]
        lines = [
            "| sampler | " + " | ".join(heads) + " | ms/trial outside the objective: to "
            f"{self.marks[0]} | over the run | trials run | seeds |",
            "|---|" + "---|" * (len(heads) + 4),
        ]
        for sampler in self.samplers:
            runs = self.results.get((problem, sampler))
            if not runs:
                continue
            cells = []
            for mark in self.marks:
                ratios = self.ratios(problem, sampler, mark)
                cells.append(
                    "—" if ratios is None else f"{_r(np.median(ratios))} [{_r(ratios.min())}]"
                )
            times = [np.array(r["framework_s"]) * 1e3 for r in runs]
            first = float(np.mean([t[: self.marks[0]].mean() for t in times]))
            cells += [_ms(first), _ms(float(np.mean([t.mean() for t in times])))]
            cells += [str(runs[0]["trials"]), str(len(runs))]
            lines.append(f"| {SAMPLERS[sampler].label} | " + " | ".join(cells) + " |")
        return lines

    def compare(self, ours: str, theirs: str, mark: int) -> list[tuple[str, float, float, bool]]:
        """(problem, our median, theirs, no worse?) where both ran to ``mark`` trials."""
        rows = []
        for problem in self.problems:
            mine, other = self.median(problem, ours, mark), self.median(problem, theirs, mark)
            if mine is not None and other is not None:
                rows.append((problem, mine, other, mine >= other))
        return rows

    def target_lines(self, ours: str, anchors: Sequence[str]) -> list[str]:
        """A PASS/FAIL/SKIP line per anchor and mark: "no worse on >= N of M problems"."""
        lines = []
        for anchor in anchors:
            for mark in self.marks:
                rows = self.compare(ours, anchor, mark)
                need = math.ceil(TARGET_SHARE * len(rows))
                name = (
                    f"{SAMPLERS[ours].label} no worse than {SAMPLERS[anchor].label} at {mark} "
                    f"trials on >= {need} of {len(rows)} problems"
                )
                if not rows:
                    lines.append(f"SKIP  {name}: not both run to {mark} trials")
                    continue
                wins = sum(1 for row in rows if row[3])
                losses = [f"{p} {_r(m)} vs {_r(o)}" for p, m, o, fine in rows if not fine]
                tail = f"{wins} of {len(rows)}" + (
                    f"; behind on {', '.join(losses)}" if losses else ""
                )
                lines.append(f"{'PASS' if wins >= need else 'FAIL'}  {name}: {tail}")
        return lines


def _r(x: float) -> str:
    """A hypervolume fraction: four decimals (near 1, the differences are in the last ones)."""
    return "0" if x == 0 else f"{x:.4f}"


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: " + json.dumps(QUICK))
    parser.add_argument(
        "--problems", nargs="+", choices=list(PROBLEMS), metavar="NAME",
        help=f"default: {', '.join(DEFAULT_PROBLEMS)}; also: "
        + ", ".join(p for p in PROBLEMS if p not in DEFAULT_PROBLEMS),
    )  # fmt: skip
    parser.add_argument(
        "--samplers", nargs="+", choices=list(SAMPLERS), metavar="KEY",
        help=f"default: all ({', '.join(SAMPLERS)})",
    )  # fmt: skip
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 10)")
    parser.add_argument(
        "--trials", type=int, nargs="+", help="the trial counts reported (default 100 1000)"
    )
    parser.add_argument(
        "--long", nargs="*", default=[], metavar="KEY",
        help="costly samplers to run to the largest trial count too (by default "
        + ", ".join(k for k, s in SAMPLERS.items() if not s.cheap)
        + " run to the smallest only)",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE,
        help="per-job JSON results (default benchmarks/out/multiobjective)",
    )  # fmt: skip
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
            "problems": DEFAULT_PROBLEMS,
            "samplers": list(SAMPLERS),
            "seeds": 10,
            "trials": [100, 1000],
        }  # fmt: skip
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.trials = sorted(set(args.trials))
    return args


def machine() -> dict[str, str]:
    packages = ("tuningfork", "optuna", "pymoo", "numpy", "scipy")
    return {
        **machine_lines(),
        "versions": ", ".join(f"{p} {package_version(p)}" for p in packages),
    }


def describe_problems(problems: Sequence[str]) -> list[str]:
    lines = []
    for name in problems:
        p = PROBLEMS[name]
        lines.append(
            f"- `{name}`: {len(p.space.names)} variables in [0, 1], {len(p.directions)} "
            f"objectives, reference point {list(p.reference_point)}, true front's hypervolume "
            f"{p.front_hypervolume:.6g}"
        )
    return lines


def render(
    args: argparse.Namespace,
    report: Report,
    skipped: dict[str, str],
    errors: list[str],
    started: datetime.datetime,
    timing: tuple[float, float],
    jobs: Sequence[dict[str, Any]],
    load: tuple[float, float],
) -> str:
    run_s, job_s = timing
    busy = sum(r["wall_s"] for runs in report.results.values() for r in runs)
    short = [SAMPLERS[s].label for s in report.samplers if run_length(args, s) < max(args.trials)]
    lines = [
        f"## Multi-objective quality (`benchmarks/{Path(__file__).name}`)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC"
        + (" (quick smoke run: figures are not meaningful)" if args.quick else ""),
        *(f"- {key}: {value}" for key, value in machine().items()),
        f"- command: `{command()}`",
        f"- {len(report.problems)} problems x {len(report.samplers)} samplers x {args.seeds} "
        f"seeds, reported at {' and '.join(map(str, args.trials))} trials; {args.workers} "
        "worker processes, one thread each",
        f"- run time of this command: {run_s / 60:.1f} min; jobs run now: {job_s / 60:.1f} "
        f"process-min; all reported jobs: {busy / 60:.1f} process-min (cached jobs are reused "
        "while the code behind them is unchanged)",
        f"- load average {load[0]:.1f} at the start and {load[1]:.1f} at the end (on "
        f"{os.cpu_count()} cores): a shared machine, times are indicative",
        "",
        "Problems (`tuningfork.testing.multiobjective`; ZDT: Zitzler, Deb & Thiele 2000, DTLZ: "
        "Deb, Thiele, Laumanns & Zitzler 2002; every objective minimised):",
        "",
        *describe_problems(report.problems),
        "",
        "Hypervolume is the exact volume dominated by all the points evaluated so far (not "
        "only the last population), bounded by the reference point, as a fraction of the true "
        "front's (1 = the whole front); the median over the seeds and, in brackets, the worst "
        "seed. Every sampler here ignores the budget, so the value at "
        f"{min(args.trials)} trials is read from the first trials of the longer run. "
        '"ms/trial outside the objective" is the wall time from the end of one evaluation to '
        "the start of the next (ask, sampling, tell, bookkeeping; pymoo asks a generation at "
        "a time), the mean over the trials and the seeds.",
        "",
        "Samplers, all with their defaults and `seed=s` (seeds 0..N-1): tuningfork "
        "`NSGAIISampler` (population 50), `TPESampler` (multi-objective: "
        "fronts, the last cut by hypervolume subset selection), `RandomSampler`, "
        "and `create_study(directions=...)` without a sampler (auto); Optuna 5 "
        "`NSGAIISampler` and `NSGAIIISampler` (population 50), `TPESampler`; pymoo `NSGA2` "
        "(population 100) and `NSGA3` (reference directions: Das-Dennis with 12 partitions, "
        "91 for 3 objectives, population 91) through ask-and-tell. Tuningfork via "
        "`study.optimize(..., space=...)` in memory, Optuna via `suggest_float`. NSGA-III "
        "runs only on the 3-objective problems."
        + (
            f" To keep the run short, {', '.join(short)} ran to {min(args.trials)} trials only "
            "(their sampling grows with the study: 1,000 trials of zdt1 took tuningfork's TPE "
            "2 min on a quiet core, Optuna's more than 10)."
            if short
            else ""
        ),
        "",
    ]
    if skipped:
        lines += ["Samplers not run:", ""]
        lines += [f"- {SAMPLERS[k].label} (`{k}`): {why}" for k, why in skipped.items()]
        lines.append("")
    missing = len(jobs) - sum(len(runs) for runs in report.results.values())
    if missing:
        lines += [f"{missing} of {len(jobs)} jobs have no result (not run or failed).", ""]
    if errors:
        lines += [f"{len(errors)} job(s) failed (not reported):", ""]
        lines += [f"- {e}" for e in errors[:20]]
        lines.append("")
    for problem in report.problems:
        p = PROBLEMS[problem]
        lines += [
            f"### {problem} ({len(p.space.names)} variables, {len(p.directions)} objectives)",
            "",
            *report.problem_table(problem),
            "",
        ]
    lines += [
        "### Targets",
        "",
        "No worse: our median hypervolume >= theirs (ties, e.g. both 0, count as no worse); "
        f"the share asked for is issue 16's 5 of 7 ({TARGET_SHARE:.0%}), rounded up.",
        "",
        "```",
        *report.target_lines("tf-nsga2", ["optuna-nsga2", "pymoo-nsga2"]),
        *(
            report.target_lines("tf-nsga3", ["optuna-nsga3", "pymoo-nsga3"])
            if "tf-nsga3" in report.samplers
            else []
        ),
        "```",
    ]
    return "\n".join(lines) + "\n"


def collect(
    jobs: Sequence[dict[str, Any]],
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The cached results of ``jobs`` made by the code the jobs were planned with."""
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for job in jobs:
        result = load_cached(Path(job["path"]), job["fingerprint"])
        if result is not None:
            results.setdefault((job["problem"], job["sampler"]), []).append(result)
    return results


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
        errors, job_s = run_jobs(to_run, args.workers, run_job, _init_worker, _hypervolume)
    report = Report(collect(jobs), list(args.problems), samplers, list(args.trials))
    body = render(
        args,
        report,
        skipped,
        errors,
        started,
        (time.perf_counter() - began, job_s),
        jobs,
        (load_start, os.getloadavg()[0]),
    )
    print(body)
    write_section(args.results, body, BEGIN, END)
    _progress(f"wrote {args.results}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
