"""Shared storages: throughput and per-trial latency, tuningfork side by side with Optuna 5.

Measures, in one run, (1) the throughput (trials per second) of 1, 4, 8 and 16 worker
processes sharing one study, each running ``study.optimize(objective, n_trials=k)`` on a
free objective, for tuningfork's SQLite, PostgreSQL and journal-file storages and Optuna's
RDBStorage on SQLite and PostgreSQL and JournalStorage(JournalFileBackend), checking after
each run that no trial was lost or duplicated; and (2) the ask+tell time per trial of one
worker at trial 100, 1,000 and 10,000 on each storage (Optuna's capped, see
``--optuna-max``). Prints the tables and PASS/FAIL lines, writes ``benchmarks/out/storage.md``
and ``.json``, and with ``--results PATH`` its own section of RESULTS.md.

    bash .ci/pg-up.sh                                       # PostgreSQL on 127.0.0.1:55432
    .venv/bin/python benchmarks/storage.py --postgres postgresql://postgres@127.0.0.1:55432/hpo \\
        --results benchmarks/RESULTS.md                     # full run (about 10 minutes)
    .venv/bin/python benchmarks/storage.py --quick --kinds sqlite journal   # smoke run
    bash .ci/pg-down.sh
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from _report import command, write_section
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from overhead import (
    TUNINGFORK,
    WINDOW,
    Series,
    Throughput,
    _ms,
    _progress,
    _stored_values,
    _verdict,
    machine,
    per_trial_table,
    run_in_turns,
    throughput_row,
)

import tuningfork as tf
from tuningfork.testing import run_in_processes

KINDS = ("SQLite", "PostgreSQL", "journal")
FRAMEWORKS = ("tuningfork", "optuna")
OPTUNA_LABEL = "Optuna RandomSampler"
TARGET_WORKERS = 8
SPEEDUP = 5
SECTION = "storage.py"
BEGIN = f"<!-- begin {SECTION} (generated; edit the script, not this section) -->"
END = f"<!-- end {SECTION} -->"
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "out" / "storage"

optuna.logging.set_verbosity(optuna.logging.WARNING)


# -- storages -------------------------------------------------------------------------------


@dataclass
class Target:
    """Where one framework keeps the studies of one storage kind."""

    framework: str
    kind: str
    url: str  # a SQLAlchemy URL, or a journal file's path

    def storage(self) -> Any:
        """What ``create_study``/``load_study`` take as ``storage``."""
        if self.kind == "journal":
            if self.framework == "tuningfork":
                return f"journal://{self.url}"
            return JournalStorage(JournalFileBackend(self.url))
        return self.url

    def create(self, name: str, seed: int) -> Any:
        if self.framework == "tuningfork":
            return tf.create_study(
                name, storage=self.storage(), sampler=tf.RandomSampler(seed=seed)
            )
        sampler = optuna.samplers.RandomSampler(seed=seed)
        return optuna.create_study(study_name=name, storage=self.storage(), sampler=sampler)

    def load(self, name: str, seed: int, index: int) -> Any:
        if self.framework == "tuningfork":  # draws depend on (seed, trial number): one seed
            return tf.load_study(name, storage=self.storage(), sampler=tf.RandomSampler(seed=seed))
        sampler = optuna.samplers.RandomSampler(seed=seed + index)  # stateful: one per process
        return optuna.load_study(study_name=name, storage=self.storage(), sampler=sampler)


class Postgres:
    """Two fresh databases (one per framework) on the server of ``url``, dropped at the end."""

    def __init__(self, url: str) -> None:
        base = sqlalchemy.make_url(url)
        if base.drivername in ("postgresql", "postgres"):
            base = base.set(drivername="postgresql+psycopg")
        self.base = base
        self.names = {f: f"tfbench_{f}_{os.getpid()}_{int(time.time())}" for f in FRAMEWORKS}
        self.admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            for name in self.names.values():
                conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))

    def url(self, framework: str) -> str:
        url = self.base.set(database=self.names[framework])
        return url.render_as_string(hide_password=False)

    def drop(self) -> None:
        with self.admin.connect() as conn:
            for name in self.names.values():
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def make_targets(kinds: Sequence[str], directory: Path, pg: Postgres | None) -> list[Target]:
    targets = []
    for kind in kinds:
        for framework in FRAMEWORKS:
            if kind == "SQLite":
                url = f"sqlite:///{directory / f'{framework}.db'}"
            elif kind == "journal":
                url = str(directory / f"{framework}.log")
            else:
                assert pg is not None
                url = pg.url(framework)
            targets.append(Target(framework, kind, url))
    return targets


# -- throughput -----------------------------------------------------------------------------


def _worker(target: Target, name: str, seed: int, index: int, k: int, barrier: Any) -> dict:
    """One worker process: load the study, wait for the others, ``optimize(n_trials=k)``.

    Exceptions of the storage (e.g. Optuna's "database is locked") are recorded and the
    worker goes on with the trials it has left (at most 50 times)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = target.load(name, seed, index)
    except BaseException:
        barrier.abort()
        return {"fatal": traceback.format_exc()}
    try:
        barrier.wait(timeout=300)
    except threading.BrokenBarrierError:
        return {"fatal": "another worker failed to load the study"}
    told: list[tuple[int, float]] = []

    def objective(trial: Any) -> float:
        value = trial.suggest_float("x", 0.0, 1.0)
        told.append((trial.number, value))
        return value

    errors: list[str] = []
    start = time.monotonic()  # CLOCK_MONOTONIC: one clock for all processes
    while len(told) < k and len(errors) < 50:
        try:
            if target.framework == "tuningfork":
                study.optimize(objective, n_trials=k - len(told), show_progress_bar=False)
            else:
                study.optimize(objective, n_trials=k - len(told))
        except Exception as error:
            errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:160]}")
    return {"told": told, "errors": errors, "start": start, "end": time.monotonic()}


@dataclass
class Run(Throughput):
    """One throughput run (overhead.py's record, plus the storage kind)."""

    kind: str = ""
    seconds_budget: float = 0.0

    @property
    def label(self) -> str:
        return "tuningfork" if self.framework == "tuningfork" else "Optuna"


def run_throughput(
    target: Target, workers: int, k: int, seed: int, budget: float, timeout: float
) -> Run:
    result = Run(target.framework, 1, workers, k, kind=target.kind, seconds_budget=budget)
    name = f"throughput-{workers}-{time.time_ns()}"
    target.create(name, seed)
    barrier = multiprocessing.get_context("spawn").Barrier(workers)
    args = [(target, name, seed, index, k, barrier) for index in range(workers)]
    try:
        reports = run_in_processes(_worker, args, timeout=timeout)
    except AssertionError as error:
        result.fatal = str(error)
        return result
    fatal = [r["fatal"] for r in reports if "fatal" in r]
    if fatal:
        result.fatal = fatal[0]
        return result
    result.wall_s = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    told = [pair for report in reports for pair in report["told"]]
    result.told = len(told)
    result.errors = [error for report in reports for error in report["errors"]]
    result.told_unique = len({number for number, _ in told}) == len(told)
    stored = _stored_values(target.framework, target.storage(), name)
    result.stored = len(stored)
    numbers = [number for number, _, _ in stored]
    result.unique_numbers = len(set(numbers)) == len(numbers)
    result.numbers_dense = sorted(numbers) == list(range(result.expected))
    result.all_complete = all(state == "COMPLETE" for _, state, _ in stored)
    by_number = {number: value for number, _, value in stored}
    result.values_matched = sum(1 for number, value in told if by_number.get(number) == value)
    return result


def trials_per_worker(rate: float, workers: int, budget: float, least: int, most: int) -> int:
    """k such that ``workers`` x k trials take about ``budget`` seconds at ``rate``."""
    total = rate * budget
    return max(least, min(most, int(total / workers)))


def measure_throughput(
    targets: Sequence[Target], args: argparse.Namespace, rates: dict[tuple[str, str], float]
) -> list[Run]:
    """Every worker count for every target; each kind's two frameworks back to back, so
    they share the machine's state; k from the rate of the last run on that target."""
    runs = []
    for workers in args.workers:
        for target in targets:
            key = (target.framework, target.kind)
            k = trials_per_worker(rates[key], workers, args.seconds, args.min_k, args.max_k)
            _progress(f"throughput {target.kind}, {target.framework}: {workers} x {k}")
            timeout = max(120.0, 20 * args.seconds + 5 * workers)
            run = run_throughput(target, workers, k, args.seed, args.seconds, timeout)
            if run.fatal is None and run.wall_s > 0:
                rates[key] = run.trials_per_s
            else:
                _progress(f"  failed: {(run.fatal or '').strip().splitlines()[-1:]}")
            runs.append(run)
    return runs


# -- per-trial latency ----------------------------------------------------------------------


def measure_latency(targets: Sequence[Target], args: argparse.Namespace) -> dict[str, list[Series]]:
    groups: dict[str, list[Series]] = {}
    for kind in dict.fromkeys(t.kind for t in targets):
        group = []
        for target in (t for t in targets if t.kind == kind):
            ours = target.framework == "tuningfork"
            limit = args.max_trials if ours else min(args.optuna_max, args.max_trials)
            name = f"latency-{time.time_ns()}"
            make = _maker(target, name, args.seed)
            group.append(
                Series(kind, TUNINGFORK if ours else OPTUNA_LABEL, target.framework, make, limit)
            )
        _progress(f"per-trial time, {kind}")
        run_in_turns(group, kind)
        groups[kind] = group
    return groups


def _maker(target: Target, name: str, seed: int) -> Callable[[], Any]:
    return lambda: target.create(name, seed)


def _rate_from_latency(groups: dict[str, list[Series]]) -> dict[tuple[str, str], float]:
    """A first guess of each target's one-process rate: 1 / median time at trial 100."""
    rates = {}
    for kind, group in groups.items():
        for series in group:
            ms = series.at(min(100, len(series.times)))
            rates[(series.framework, kind)] = 1e3 / ms if ms else 100.0
    return rates


# -- report ---------------------------------------------------------------------------------


def throughput_table(runs: Sequence[Run], worker_counts: Sequence[int]) -> list[str]:
    head = " | ".join(f"{w} process{'es' if w > 1 else ''}" for w in worker_counts)
    lines = [
        f"| storage | framework | {head} |",
        "|---|---|" + "---|" * len(worker_counts),
    ]
    kinds = list(dict.fromkeys(r.kind for r in runs))
    for kind in kinds:
        for framework in FRAMEWORKS:
            cells = []
            for w in worker_counts:
                run = _find(runs, kind, framework, w)
                cells.append(_rate_cell(run))
            label = "tuningfork" if framework == "tuningfork" else "Optuna"
            lines.append(f"| {kind} | {label} | {' | '.join(cells)} |")
        cells = []
        for w in worker_counts:
            a, b = _find(runs, kind, "tuningfork", w), _find(runs, kind, "optuna", w)
            ok = a and b and a.fatal is None and b.fatal is None
            cells.append(f"{a.trials_per_s / b.trials_per_s:.1f}x" if ok else "—")  # type: ignore[union-attr]
        lines.append(f"| {kind} | ratio tuningfork / Optuna | {' | '.join(cells)} |")
    return lines


def _rate_cell(run: Run | None) -> str:
    if run is None:
        return "not run"
    if run.fatal is not None:
        return "crashed"
    cell = f"{run.trials_per_s:,.0f}"
    if not run.intact:
        cell += " (NOT intact)"
    return cell


def runs_table(runs: Sequence[Run]) -> list[str]:
    lines = [
        "| storage | framework | processes x trials | wall s | trials/s | stored | unique "
        "numbers 0..N-1 | all COMPLETE | told values found | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(throughput_row(f"| {r.kind} | {r.label} |", r))
    return lines


def _find(runs: Sequence[Run], kind: str, framework: str, workers: int) -> Run | None:
    return next(
        (r for r in runs if r.kind == kind and r.framework == framework and r.workers == workers),
        None,
    )


def targets_lines(
    runs: Sequence[Run], groups: dict[str, list[Series]], kinds: Sequence[str]
) -> list[str]:
    lines = []
    for kind in kinds:
        name = f"{TARGET_WORKERS}-process {kind} throughput >= {SPEEDUP}x Optuna's"
        a = _find(runs, kind, "tuningfork", TARGET_WORKERS)
        b = _find(runs, kind, "optuna", TARGET_WORKERS)
        if a is None or b is None:
            lines.append(f"SKIP  {name}: not run")
        elif a.fatal is not None or b.fatal is not None:
            who = "tuningfork" if a.fatal is not None else "Optuna"
            lines.append(f"FAIL  {name}: {who}'s run crashed")
        else:
            ratio = a.trials_per_s / b.trials_per_s
            lines.append(
                f"{_verdict(ratio >= SPEEDUP)}  {name}: {a.trials_per_s:,.0f} vs "
                f"{b.trials_per_s:,.0f} trials/s ({ratio:.1f}x)"
            )
    for framework, label in (("tuningfork", "tuningfork"), ("optuna", "Optuna (reference)")):
        mine = [r for r in runs if r.framework == framework]
        if not mine:
            continue
        broken = [f"{r.kind} {r.workers}x{r.per_worker}" for r in mine if not r.intact]
        trials = sum(r.stored for r in mine)
        name = f"{label}: no lost or duplicated trial in any run"
        detail = f"{len(mine) - len(broken)}/{len(mine)} runs intact, {trials:,} trials checked"
        if broken:
            detail += "; not intact: " + ", ".join(broken)
        verdict = _verdict(not broken) if framework == "tuningfork" else "INFO"
        lines.append(f"{verdict}  {name}: {detail}")
    for kind, group in groups.items():
        ours = next((s for s in group if s.framework == "tuningfork"), None)
        top = len(ours.times) if ours else 0
        name = f"tuningfork {kind} ask+tell at trial {top:,} <= 2x at trial 100"
        a = ours.at(100) if ours else None
        b = ours.at(top) if ours and top > 100 else None
        if a is None or b is None:
            lines.append(f"SKIP  {name}: trial {top:,} not reached")
            continue
        lines.append(f"{_verdict(b <= 2 * a)}  {name}: {_ms(b)} vs {_ms(a)} ms ({b / a:.2f}x)")
    return lines


def latency_marks(groups: dict[str, list[Series]]) -> list[int]:
    tops = {len(s.times) for g in groups.values() for s in g}
    return sorted({m for m in (100, 1_000, 10_000) if m <= max(tops, default=0)} | tops)


def report(
    args: argparse.Namespace,
    started: datetime.datetime,
    elapsed: float,
    load: Sequence[float],
    notes: Sequence[str],
    groups: dict[str, list[Series]],
    runs: Sequence[Run],
) -> str:
    kinds = list(dict.fromkeys([*groups, *(r.kind for r in runs)]))
    marks = latency_marks(groups)
    errors = sorted({e for r in runs for e in r.errors})
    lines = [
        f"## Shared storages: throughput and latency (`benchmarks/{Path(__file__).name}`)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC"
        + (" (quick smoke run: figures are not meaningful)" if args.quick else ""),
        *(f"- {key}: {value}" for key, value in machine().items()),
        f"- psycopg: {_version('psycopg')}",
        f"- command: `{command()}`",
        f"- run time: {elapsed / 60:.1f} minutes; load average {load[0]:.1f} at the start and "
        f"{load[1]:.1f} at the end on {os.cpu_count()} cores (1-minute averages; the end "
        "figure counts this script's own worker processes, the start one other users)",
        *(f"- note: {note}" for note in notes),
        "",
        "Storages: tuningfork `sqlite:///FILE` (WAL, synchronous=NORMAL), "
        "`postgresql+psycopg://...` and `journal:///FILE`; Optuna `RDBStorage` on the same "
        "kinds of URL (its SQLite defaults: rollback journal, synchronous=FULL) and "
        "`JournalStorage(JournalFileBackend(FILE))`. PostgreSQL: a fresh database per "
        "framework on the server given by `--postgres`, dropped at the end; files in a "
        "temporary directory; a fresh study per run. Both frameworks use a RandomSampler.",
        "",
        "### Throughput (trials/s, all processes together)",
        "",
        "Each of N spawned processes loads one shared study, waits at a barrier for the "
        "others, then runs `study.optimize(lambda t: t.suggest_float('x', 0, 1), n_trials=k)`. "
        "The time is from the first process leaving the barrier to the last one finishing "
        "(imports and loading the study not counted). k is chosen so that a run takes about "
        f"{args.seconds:g} s at the rate of the previous run on that storage (at least "
        f"{args.min_k}, at most {args.max_k:,} per process). After each run the stored trials "
        "are read back: N x k trials, numbers 0..N x k - 1 each once, every one COMPLETE with "
        "the value its worker returned; a run that fails this is marked NOT intact. Errors "
        "are exceptions raised out of `optimize` (the worker counts them and goes on). "
        f"The machine has {os.cpu_count()} cores: beyond that, processes share them.",
        "",
        *throughput_table(runs, args.workers),
        "",
        "Every run:",
        "",
        *runs_table(runs),
        "",
        f"### Ask+tell time per trial, one process (ms, median of the {WINDOW} trials ending "
        "at the mark)",
        "",
        "`t = study.ask(); study.tell(t, t.suggest_float('x', -1, 1))`, one study per "
        f"framework and storage, run up to {args.max_trials:,} trials; the two studies of a "
        f"storage take turns in blocks of {WINDOW}. Optuna's studies stop at "
        f"{min(args.optuna_max, args.max_trials):,} trials (`--optuna-max`): its time per "
        "trial grows with the study (its SQLite storage most), so marks above the cap say "
        '"not run" (as in `overhead.py`).',
        "",
        *per_trial_table(groups, marks),
        "",
        "### Targets",
        "",
        "```",
        *targets_lines(runs, groups, kinds),
        "```",
    ]
    if errors:
        lines += ["", "Distinct errors seen in the throughput runs:", ""]
        lines += [f"- `{e}`" for e in errors[:10]]
    crashed = [r for r in runs if r.fatal is not None]
    if crashed:
        lines += ["", "Crashed runs (last lines):", ""]
        for r in crashed:
            tail = " / ".join(r.fatal.strip().splitlines()[-2:])[:300]  # type: ignore[union-attr]
            lines.append(f"- {r.kind} {r.label} {r.workers} x {r.per_worker}: `{tail}`")
    return "\n".join(lines) + "\n"


def _version(package: str) -> str:
    from _report import package_version

    return package_version(package)


def to_json(
    args: argparse.Namespace,
    started: datetime.datetime,
    elapsed: float,
    notes: Sequence[str],
    groups: dict[str, list[Series]],
    runs: Sequence[Run],
) -> dict[str, Any]:
    marks = latency_marks(groups)
    return {
        "date": started.isoformat(),
        "command": command(),
        "quick": args.quick,
        "elapsed_s": elapsed,
        "machine": machine(),
        "notes": list(notes),
        "throughput": [
            {
                **{k: v for k, v in asdict(r).items() if k != "errors"},
                "errors": r.errors[:20],
                "n_errors": len(r.errors),
                "trials_per_s": None if math.isnan(r.trials_per_s) else r.trials_per_s,
                "intact": r.intact,
            }
            for r in runs
        ],
        "latency_ms": [
            {
                "storage": kind,
                "framework": s.framework,
                "trials": len(s.times),
                "marks": {str(m): s.at(m) for m in marks},
            }
            for kind, group in groups.items()
            for s in group
        ],
    }


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: seconds")
    parser.add_argument(
        "--kinds",
        nargs="+",
        type=str.lower,
        choices=[k.lower() for k in KINDS],
        help="storage kinds (default: all; PostgreSQL needs a server)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TUNINGFORK_TEST_POSTGRES"),
        help="PostgreSQL server URL (default $TUNINGFORK_TEST_POSTGRES); two databases are "
        "created on it and dropped at the end",
    )
    parser.add_argument("--workers", type=int, nargs="+", help="process counts (1 4 8 16)")
    parser.add_argument("--seconds", type=float, help="target wall time per run (default 3)")
    parser.add_argument("--min-k", type=int, help="least trials per process (default 10)")
    parser.add_argument("--max-k", type=int, help="most trials per process (default 5000)")
    parser.add_argument("--max-trials", type=int, help="latency: trials per study (10000)")
    parser.add_argument("--optuna-max", type=int, help="latency: cap for Optuna (default 3000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="OUT.md and OUT.json")
    parser.add_argument("--results", type=Path, help="also write a section of this RESULTS.md")
    parser.add_argument("--dir", type=Path, help="keep SQLite/journal files here")
    args = parser.parse_args(argv)
    quick = {
        "workers": [1, 2],
        "seconds": 0.3,
        "min_k": 5,
        "max_k": 200,
        "max_trials": 150,
        "optuna_max": 100,
    }
    full = {
        "workers": [1, 4, 8, 16],
        "seconds": 3.0,
        "min_k": 10,
        "max_k": 5000,
        "max_trials": 10_000,
        "optuna_max": 3_000,
    }
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    names = {k.lower(): k for k in KINDS}
    args.kinds = [names[k] for k in (args.kinds or names)]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    began = time.monotonic()
    load = [os.getloadavg()[0]]
    notes: list[str] = []
    kinds = list(args.kinds)
    pg: Postgres | None = None
    if "PostgreSQL" in kinds:
        if not args.postgres:
            notes.append("PostgreSQL skipped: no server (`--postgres URL` or "
                         "$TUNINGFORK_TEST_POSTGRES)")  # fmt: skip
            kinds.remove("PostgreSQL")
        else:
            try:
                pg = Postgres(args.postgres)
            except Exception as error:  # no server, no driver
                first = str(error).strip().splitlines()[0][:200]
                notes.append(f"PostgreSQL skipped: {type(error).__name__}: {first}")
                kinds.remove("PostgreSQL")
    directory = args.dir or Path(tempfile.mkdtemp(prefix="tuningfork-storage-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        targets = make_targets(kinds, directory, pg)
        groups = measure_latency(targets, args)
        runs = measure_throughput(targets, args, _rate_from_latency(groups))
    finally:
        if pg is not None:
            pg.drop()
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    load.append(os.getloadavg()[0])
    elapsed = time.monotonic() - began
    body = report(args, started, elapsed, load, notes, groups, runs)
    print(body)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(body)
    data = to_json(args, started, elapsed, notes, groups, runs)
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    _progress(f"wrote {args.out.with_suffix('.md')} and .json")
    if args.results is not None:
        write_section(args.results, body, BEGIN, END)
        _progress(f"wrote {args.results}")
    ours = [r for r in runs if r.framework == "tuningfork"]
    return 0 if ours and all(r.intact for r in ours) else 1


if __name__ == "__main__":
    sys.exit(main())
