"""The framework's own time per trial: tuningfork side by side with Optuna 5, in one run.

Measures (1) the ask+tell round trip of a free objective at trial 100, 1,000, 3,000 and
10,000 with a random sampler, in memory and on SQLite (Optuna's TPE as a reference),
(2) the throughput of several worker processes sharing one SQLite study, checking that no
trial was lost or duplicated, and (3) the sampling time per trial of the model-based
samplers (tuningfork TPE and GP against Optuna's TPE and GPSampler and hyperopt's TPE) at
trial 100, 300 and 1,000. Prints tables and writes two sections of benchmarks/RESULTS.md:
(1) and (2) in one, (3) in the other.

    .venv/bin/python benchmarks/overhead.py                  # full run (several minutes)
    .venv/bin/python benchmarks/overhead.py --only sampling  # (3) only
    .venv/bin/python benchmarks/overhead.py --quick          # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from _report import command, machine_lines, package_version, write_section

import tuningfork as tf
from tuningfork.testing.functions import PROBLEMS

WINDOW = 50  # round trips per mark: the 50 ending at the mark (trials M-50 .. M-1, from 0)
# The studies of one storage take turns in blocks of WINDOW trials, so that they see the
# same machine state while each window runs back to back (a switch between frameworks
# leaves cold caches that slow the next few round trips).
BLOCK = WINDOW
STANDARD_MARKS = (100, 1_000, 10_000)
TUNINGFORK = "tuningfork RandomSampler"
OPTUNA_RANDOM = "Optuna RandomSampler"
OPTUNA_TPE = "Optuna TPESampler (reference)"
OPTUNA_WAL = "Optuna RandomSampler, WAL + synchronous=NORMAL (reference)"
TARGET_MARK = 1_000
SECTION = "overhead.py"
BEGIN = f"<!-- begin {SECTION} (generated; edit the script, not this section) -->"
END = f"<!-- end {SECTION} -->"
DEFAULT_RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

optuna.logging.set_verbosity(optuna.logging.WARNING)


# -- per-trial time ---------------------------------------------------------------------------


def round_trip(study: Any) -> None:
    """One trial of a free objective; the same code drives tuningfork and Optuna."""
    trial = study.ask()
    study.tell(trial, trial.suggest_float("x", -1.0, 1.0))


@dataclass
class Series:
    """One study driven trial after trial, with the time of each ask+tell round trip."""

    storage: str  # "memory" or "SQLite"
    label: str  # e.g. "tuningfork RandomSampler"
    framework: str  # "tuningfork" or "optuna"
    make: Callable[[], Any]
    limit: int
    study: Any = None
    times: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def run(self, n: int) -> None:
        if self.study is None:
            self.study = self.make()
        clock = time.perf_counter
        times = self.times
        began = clock()
        for _ in range(n):
            start = clock()
            round_trip(self.study)
            times.append(clock() - start)
        self.wall_s += clock() - began

    def at(self, mark: int) -> float | None:
        """Median milliseconds of the WINDOW round trips ending at ``mark``, if reached."""
        if len(self.times) < mark or mark < WINDOW:
            return None
        return statistics.median(self.times[mark - WINDOW : mark]) * 1e3


def run_in_turns(group: Sequence[Series], name: str) -> None:
    """Drive the studies of a group in alternating blocks, so they share the machine state."""
    longest = max(s.limit for s in group)
    began = time.perf_counter()
    for index, start in enumerate(range(0, longest, BLOCK)):
        order = group if index % 2 == 0 else list(reversed(group))
        for series in order:
            series.run(max(0, min(BLOCK, series.limit - start)))
        done = start + BLOCK
        if done % 1000 == 0 or done >= longest:
            elapsed = time.perf_counter() - began
            _progress(f"  {name}: {min(done, longest)}/{longest} trials, {elapsed:.0f} s")


def tuningfork_study(url: str, seed: int) -> Callable[[], Any]:
    return lambda: tf.create_study(storage=url, sampler=tf.RandomSampler(seed=seed))


def optuna_study(url: str | None, sampler: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: optuna.create_study(storage=url, sampler=sampler())


def optuna_wal_study(url: str, sampler: Callable[[], Any]) -> Callable[[], Any]:
    """Optuna on SQLite with tuningfork's settings (WAL, synchronous=NORMAL): Optuna's
    default (rollback journal, synchronous=FULL) waits for an fsync at every commit, and
    this reference separates that wait from the framework's own work."""

    def make() -> Any:
        storage = optuna.storages.RDBStorage(url)
        sqlalchemy.event.listen(storage.engine, "connect", _wal_pragmas)
        storage.engine.dispose()  # later connections get the pragmas
        return optuna.create_study(storage=storage, sampler=sampler())

    return make


def _wal_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# -- multi-process throughput -----------------------------------------------------------------


def _worker(
    framework: str,
    url: str,
    name: str,
    seed: int,
    index: int,
    n_trials: int,
    barrier: Any,
    queue: Any,
) -> None:
    """Load the study, wait for the others, then run ``n_trials`` ask+tell trials."""
    try:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if framework == "tuningfork":  # draws depend on (seed, trial number): one seed for all
            study = tf.load_study(name, storage=url, sampler=tf.RandomSampler(seed=seed))
        else:  # a stateful generator per process: one seed each
            sampler = optuna.samplers.RandomSampler(seed=seed + index)
            study = optuna.load_study(study_name=name, storage=url, sampler=sampler)
    except BaseException:
        barrier.abort()
        queue.put({"fatal": traceback.format_exc()})
        return
    barrier.wait(timeout=600)
    told: list[tuple[int, float]] = []
    errors: list[str] = []
    start = time.perf_counter()
    for _ in range(n_trials):
        try:
            trial = study.ask()
            value = trial.suggest_float("x", -1.0, 1.0)
            study.tell(trial, value)
            told.append((trial.number, value))
        except Exception as error:  # Optuna on SQLite may raise "database is locked"
            errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:160]}")
    queue.put({"told": told, "errors": errors, "elapsed": time.perf_counter() - start})


@dataclass
class Throughput:
    framework: str
    run: int
    workers: int
    per_worker: int
    wall_s: float = float("nan")
    told: int = 0
    errors: list[str] = field(default_factory=list)
    stored: int = 0
    unique_numbers: bool = False
    numbers_dense: bool = False
    all_complete: bool = False
    told_unique: bool = False
    values_matched: int = 0
    fatal: str | None = None

    @property
    def expected(self) -> int:
        return self.workers * self.per_worker

    @property
    def trials_per_s(self) -> float:
        return self.told / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def intact(self) -> bool:
        """Every attempted trial stored once, numbered 0..N-1, COMPLETE, with its told value."""
        return (
            self.fatal is None
            and not self.errors
            and self.told == self.expected
            and self.stored == self.expected
            and self.unique_numbers
            and self.numbers_dense
            and self.all_complete
            and self.told_unique
            and self.values_matched == self.expected
        )


def run_throughput(
    framework: str, run: int, directory: Path, workers: int, per_worker: int, seed: int
) -> Throughput:
    result = Throughput(framework, run, workers, per_worker)
    url = f"sqlite:///{directory / f'throughput-{framework}-{run}.db'}"
    name = f"throughput-{framework}"
    if framework == "tuningfork":
        tf.create_study(name, storage=url, sampler=tf.RandomSampler(seed=seed))
    else:
        optuna.create_study(study_name=name, storage=url)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers + 1)
    queue = context.Queue()
    processes = [
        context.Process(
            target=_worker,
            args=(framework, url, name, seed, index, per_worker, barrier, queue),
            daemon=True,
        )
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    reports = []
    try:
        barrier.wait(timeout=600)  # every worker has imported and loaded the study
        start = time.perf_counter()
        reports = [queue.get(timeout=3600) for _ in processes]
        result.wall_s = time.perf_counter() - start
    except threading.BrokenBarrierError:
        reports = [queue.get(timeout=60)]
    finally:
        for process in processes:
            process.join(timeout=60)
    fatal = [r["fatal"] for r in reports if "fatal" in r]
    if fatal:
        result.fatal = fatal[0]
        return result
    told = [pair for report in reports for pair in report["told"]]
    result.told = len(told)
    result.errors = [error for report in reports for error in report["errors"]]
    result.told_unique = len({number for number, _ in told}) == len(told)
    stored = _stored_values(framework, url, name)
    result.stored = len(stored)
    numbers = [number for number, _, _ in stored]
    result.unique_numbers = len(set(numbers)) == len(numbers)
    result.numbers_dense = sorted(numbers) == list(range(result.expected))
    result.all_complete = all(state == "COMPLETE" for _, state, _ in stored)
    by_number = {number: value for number, _, value in stored}
    result.values_matched = sum(1 for number, value in told if by_number.get(number) == value)
    return result


def _stored_values(framework: str, url: str, name: str) -> list[tuple[int, str, float | None]]:
    """(number, state, value) of every stored trial, read afresh from the storage."""
    if framework == "tuningfork":
        trials = tf.load_study(name, storage=url).trials
        return [(t.number, t.state.value, t.values[0] if t.values else None) for t in trials]
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    return [(t.number, t.state.name, t.value) for t in trials]


# -- report -----------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _ms(value: float | None) -> str:
    if value is None:
        return "not run"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "—"
    return f"{a / b:.3f}"


def _mark_name(mark: int) -> str:
    return f"trial {mark:,}"


def per_trial_table(groups: dict[str, list[Series]], marks: Sequence[int]) -> list[str]:
    head = "| storage | framework, sampler | " + " | ".join(_mark_name(m) for m in marks) + " |"
    lines = [head, "|" + "---|" * (2 + len(marks))]
    for storage, group in groups.items():
        ours = [s for s in group if s.framework == "tuningfork"]
        for series in group:
            cells = " | ".join(_ms(series.at(m)) for m in marks)
            lines.append(f"| {storage} | {series.label} | {cells} |")
        for series in group:
            if series.framework == "tuningfork" or not ours:
                continue
            cells = " | ".join(_ratio(ours[0].at(m), series.at(m)) for m in marks)
            lines.append(f"| {storage} | ratio tuningfork / {series.label} | {cells} |")
    return lines


def throughput_table(runs: Sequence[Throughput]) -> list[str]:
    lines = [
        "| framework | run | processes x trials | wall s | trials/s | stored | unique numbers "
        "0..N-1 | all COMPLETE | told values found | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(throughput_row(f"| {r.framework} | {r.run} |", r))
    ours, theirs = _median_rate(runs, "tuningfork"), _median_rate(runs, "optuna")
    if ours is not None and theirs is not None:
        lines.append(
            f"| median | | | | {ours:.0f} vs {theirs:.0f}: ratio {ours / theirs:.1f} | | | | | |"
        )
    return lines


def throughput_row(head: str, r: Throughput) -> str:
    """One row of a throughput table: ``head`` (the first cells), then the run's figures
    and its integrity checks (or the last line of its crash)."""
    if r.fatal is not None:
        first = r.fatal.strip().splitlines()[-1][:160]
        return f"{head} crashed: {first} |" + " |" * 7
    unique = "yes" if r.unique_numbers and r.numbers_dense and r.told_unique else "NO"
    return (
        f"{head} {r.workers} x {r.per_worker} | {r.wall_s:.2f} | {r.trials_per_s:,.0f} | "
        f"{r.stored} | {unique} | {'yes' if r.all_complete else 'NO'} | "
        f"{r.values_matched}/{r.told} | {len(r.errors)} |"
    )


def _median_rate(runs: Sequence[Throughput], framework: str) -> float | None:
    rates = [r.trials_per_s for r in runs if r.framework == framework and r.fatal is None]
    return statistics.median(rates) if rates else None


def targets(
    groups: dict[str, list[Series]], marks: Sequence[int], throughput: Sequence[Throughput]
) -> list[str]:
    mem_tf, sql_tf = _find(groups, "memory", TUNINGFORK), _find(groups, "SQLite", TUNINGFORK)
    mem_optuna = _find(groups, "memory", OPTUNA_RANDOM)
    sql_optuna = _find(groups, "SQLite", OPTUNA_RANDOM)
    sql_tpe = _find(groups, "SQLite", OPTUNA_TPE)
    sql_wal = _find(groups, "SQLite", OPTUNA_WAL)
    lines = [
        _bound(
            "SQLite ask+tell at trial 1,000 <= 1/5 of Optuna (RandomSampler, SQLite RDB)",
            sql_tf,
            sql_optuna,
            5,
            [sql_tpe, sql_wal],
        ),
        _bound(
            "in-memory ask+tell at trial 1,000 <= 1/3 of Optuna (RandomSampler, InMemoryStorage)",
            mem_tf,
            mem_optuna,
            3,
            [_find(groups, "memory", OPTUNA_TPE)],
        ),
    ]
    ours = [r for r in throughput if r.framework == "tuningfork"]
    theirs = [r for r in throughput if r.framework == "optuna"]
    if ours and theirs:
        workers = ours[0].workers
        name = f"{workers}-process SQLite throughput >= 5x Optuna, no lost/duplicated trial"
        a, b = _median_rate(throughput, "tuningfork"), _median_rate(throughput, "optuna")
        if a is None or b is None:
            lines.append(f"FAIL  {name}: a run crashed")
        else:
            intact = all(r.intact for r in ours)
            lines.append(
                f"{_verdict(a >= 5 * b and intact)}  {name}: median {a:.0f} vs {b:.0f} "
                f"trials/s ({a / b:.1f}x); tuningfork {_integrity(ours)}; "
                f"Optuna {_integrity(theirs)}"
            )
    for storage, series in (("memory", mem_tf), ("SQLite", sql_tf)):
        reached = [(m, series.at(m)) for m in marks] if series else []
        reached = [(m, v) for m, v in reached if v is not None]
        name = f"tuningfork {storage} time per trial flat (max/min <= 2) over the marks"
        if len(reached) < 2:
            lines.append(f"SKIP  {name}: fewer than two marks reached")
            continue
        values = [v for _, v in reached]
        spread = max(values) / min(values)
        detail = ", ".join(f"{m:,}: {_ms(v)}" for m, v in reached)
        lines.append(f"{_verdict(spread <= 2)}  {name}: {spread:.2f} ({detail} ms)")
    return lines


def _integrity(runs: Sequence[Throughput]) -> str:
    intact = sum(r.intact for r in runs)
    errors = sum(len(r.errors) for r in runs)
    return f"{intact}/{len(runs)} runs intact, {errors} errors"


def _find(groups: dict[str, list[Series]], storage: str, label: str) -> Series | None:
    return next((s for s in groups.get(storage, []) if s.label == label), None)


def _bound(
    name: str,
    ours: Series | None,
    theirs: Series | None,
    factor: int,
    references: Sequence[Series | None],
) -> str:
    a = ours.at(TARGET_MARK) if ours else None
    b = theirs.at(TARGET_MARK) if theirs else None
    if a is None or b is None:
        return f"SKIP  {name}: trial {TARGET_MARK:,} not reached"
    line = f"{_verdict(a * factor <= b)}  {name}: {_ms(a)} vs {_ms(b)} ms (ratio {a / b:.4f})"
    for reference in references:
        c = reference.at(TARGET_MARK) if reference else None
        if reference is not None and c is not None:
            line += f"; vs {reference.label} {_ms(c)} ms (ratio {a / c:.4f})"
    return line


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def machine() -> dict[str, str]:
    import numpy

    return {
        **machine_lines(),
        "tuningfork": tf.__version__,
        "optuna": optuna.__version__,
        "SQLAlchemy": sqlalchemy.__version__,
        "numpy": numpy.__version__,
        "sqlite3 library": __import__("sqlite3").sqlite_version,
    }


# -- sampling time per trial of the model-based samplers --------------------------------------

SAMPLING_PROBLEM = "mixed"  # tuningfork.testing.functions: 6 parameters, float/log/int/cat
SAMPLING_WINDOW = 10  # a mark M: median of the round trips of trials M-10 .. M-1
SAMPLING_BLOCK = 50  # the series of one family take turns in blocks of this many trials
TPE_MARKS = (100, 300, 1_000)
GP_MARKS = (100, 300)  # Optuna's GPSampler to 1,000 trials would take over an hour
QUICK_TPE_MARKS = (50, 100)
QUICK_GP_MARKS = (20,)
SAMPLING_TARGETS = {"TPE": 1_000, "GP": 300}  # the mark each family's target is read at
SAMPLING_SECTION = "overhead-sampling"
SAMPLING_BEGIN = (
    f"<!-- begin {SAMPLING_SECTION} (written by overhead.py; generated; edit the script, "
    "not this section) -->"
)
SAMPLING_END = f"<!-- end {SAMPLING_SECTION} -->"


def _benchmark_module(name: str) -> Any:
    """A sibling module of benchmarks/ (quality.py's framework translations)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    return __import__(name)


@dataclass
class Sampling:
    """One study of the sampling benchmark, run block after block, timing each trial."""

    label: str
    family: str  # "TPE" or "GP"
    framework: str
    limit: int
    step: Callable[[int], list[float]] | None  # runs n more trials, returns their times
    missing: str | None = None  # why it could not run
    times: list[float] = field(default_factory=list)

    def run(self, n: int) -> None:
        if self.step is not None and n > 0:
            self.times.extend(self.step(n))

    def at(self, mark: int) -> float | None:
        """Median milliseconds of the SAMPLING_WINDOW trials ending at ``mark``, if reached."""
        if len(self.times) < mark or mark < SAMPLING_WINDOW:
            return None
        return statistics.median(self.times[mark - SAMPLING_WINDOW : mark]) * 1e3


def _ask_tell_step(make_study: Callable[[], Any], framework: str) -> Callable[[int], list[float]]:
    """Define-by-run trials: ask, suggest each parameter, evaluate, tell; timed whole.

    tuningfork's steps load nothing beyond tuningfork: quality.py imports scipy, whose BLAS
    the GP must find by itself in a user's process (gp_threads.py measures that)."""
    problem = PROBLEMS[SAMPLING_PROBLEM]
    space, function = problem.space, problem.function
    names = space.names
    holder: list[Any] = []

    def suggest_tuningfork(trial: Any, name: str) -> Any:
        return trial.suggest(name, space[name])

    if framework == "tuningfork":
        suggest = suggest_tuningfork
    else:
        quality = _benchmark_module("quality")

        def suggest(trial: Any, name: str) -> Any:
            return quality.optuna_suggest(trial, name, space[name])

    def step(n: int) -> list[float]:
        if not holder:
            holder.append(make_study())
        study, clock, times = holder[0], time.perf_counter, []
        for _ in range(n):
            start = clock()
            trial = study.ask()
            value = function({name: suggest(trial, name) for name in names})
            study.tell(trial, value)
            times.append(clock() - start)
        return times

    return step


def _hyperopt_step(seed: int) -> Callable[[int], list[float]]:
    """hyperopt's ``fmin`` on one Trials object, resumed block after block. A trial's time
    is the wall time from the end of the previous evaluation to the start of this one:
    everything fmin does per trial (record the result, refresh, suggest with TPE)."""
    import numpy as np
    from hyperopt import Trials, fmin, tpe

    quality = _benchmark_module("quality")
    problem = quality.ALL_PROBLEMS[SAMPLING_PROBLEM]
    space = problem.space
    trials, rstate = Trials(), np.random.default_rng(seed)
    hp_space = quality.hyperopt_space(space)

    def step(n: int) -> list[float]:
        clock = quality.Clock(problem.function)

        def objective(raw: Any) -> float:
            return clock.evaluate({k: quality.from_hyperopt(space[k], raw[k]) for k in raw})

        clock.start()  # the first trial of a block also pays fmin's start: never in a window
        fmin(
            objective,
            hp_space,
            algo=tpe.suggest,
            max_evals=len(trials) + n,
            trials=trials,
            rstate=rstate,
            show_progressbar=False,
            verbose=False,
        )
        return clock.framework_s

    return step


def _tuningfork_sampler(module: str, name: str, seed: int) -> tuple[Any, str | None]:
    """A factory of tuningfork's ``samplers.<module>.<name>``, or the reason it is missing."""
    try:
        cls = getattr(importlib.import_module(f"tuningfork.samplers.{module}"), name)
    except Exception as error:  # not written yet
        return None, f"{type(error).__name__}: {error}"
    return (lambda: cls(seed=seed)), None


def sampling_series(args: argparse.Namespace) -> list[Sampling]:
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    seed = args.seed
    tpe_top = (QUICK_TPE_MARKS if args.quick else TPE_MARKS)[-1]
    gp_top = args.gp_trials
    series = []

    def tuningfork_series(label: str, family: str, module: str, name: str, limit: int) -> None:
        make, missing = _tuningfork_sampler(module, name, seed)
        step = None
        if make is not None:
            step = _ask_tell_step(
                lambda: tf.create_study(storage="memory", sampler=make(), seed=seed),
                "tuningfork",
            )
        series.append(Sampling(label, family, "tuningfork", limit, step, missing))

    def optuna_series(label: str, family: str, make: Callable[[], Any], limit: int) -> None:
        step = _ask_tell_step(lambda: optuna.create_study(sampler=make()), "optuna")
        series.append(Sampling(label, family, "optuna", limit, step))

    tuningfork_series(
        "tuningfork TPESampler (multivariate, default)", "TPE", "tpe", "TPESampler", tpe_top
    )
    optuna_series(
        "Optuna TPESampler (default: multivariate)",
        "TPE",
        lambda: optuna.samplers.TPESampler(seed=seed),
        tpe_top,
    )
    optuna_series(
        "Optuna TPESampler (multivariate=False)",
        "TPE",
        lambda: optuna.samplers.TPESampler(seed=seed, multivariate=False),
        tpe_top,
    )
    try:
        series.append(
            Sampling("hyperopt TPE (fmin)", "TPE", "hyperopt", tpe_top, _hyperopt_step(seed))
        )
    except ImportError as error:
        series.append(
            Sampling(
                "hyperopt TPE (fmin)",
                "TPE",
                "hyperopt",
                tpe_top,
                None,
                f"{type(error).__name__}: {error}",
            )
        )
    tuningfork_series("tuningfork GPSampler", "GP", "gp", "GPSampler", gp_top)
    if importlib.util.find_spec("torch") is None:  # Optuna's GPSampler runs on torch
        reason = "torch is not installed (pip install 'tuningfork[bench]')"
        series.append(Sampling("Optuna GPSampler", "GP", "optuna", gp_top, None, reason))
    else:
        make_gp = lambda: optuna.samplers.GPSampler(seed=seed)  # noqa: E731
        optuna_series("Optuna GPSampler", "GP", make_gp, gp_top)
    return series


def run_sampling(series: Sequence[Sampling]) -> None:
    """Run each family's series in turns, block by block, so machine load is shared."""
    for family in ("TPE", "GP"):
        group = [s for s in series if s.family == family and s.step is not None]
        if not group:
            continue
        longest = max(s.limit for s in group)
        began = time.perf_counter()
        for index, start in enumerate(range(0, longest, SAMPLING_BLOCK)):
            for s in group if index % 2 == 0 else list(reversed(group)):
                s.run(max(0, min(SAMPLING_BLOCK, s.limit - start)))
            done = min(start + SAMPLING_BLOCK, longest)
            if done % 100 == 0 or done == longest:
                elapsed = time.perf_counter() - began
                now = ", ".join(f"{s.label} {_ms(s.at(done))}" for s in group)
                _progress(
                    f"  sampling time, {family}: {done}/{longest} trials, {elapsed:.0f} s "
                    f"(ms/trial: {now})"
                )


def limit_threads(threads: int) -> str:
    """Cap the BLAS / OpenMP and torch thread pools of this process at ``threads`` (0: leave
    the libraries' defaults); says what was done."""
    if threads <= 0:
        return "library defaults"
    done = []
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
        done.append("BLAS/OpenMP (threadpoolctl)")
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(threads)
        done.append("torch")
    except ImportError:
        pass
    return f"{threads} ({', '.join(done) or 'no thread pool found'})"


def sampling_table(series: Sequence[Sampling], marks: Sequence[int]) -> list[str]:
    head = "| family | framework, sampler | " + " | ".join(_mark_name(m) for m in marks) + " |"
    lines = [head, "|" + "---|" * (2 + len(marks))]
    for family in ("TPE", "GP"):
        group = [s for s in series if s.family == family]
        for s in group:
            if s.missing is not None:
                lines.append(
                    f"| {family} | {s.label} | not available: {s.missing} |"
                    + " |" * (len(marks) - 1)
                )
                continue
            cells = " | ".join(_ms(s.at(m)) for m in marks)
            lines.append(f"| {family} | {s.label} | {cells} |")
        ours = [s for s in group if s.framework == "tuningfork" and s.missing is None]
        for s in group:
            if s.framework == "tuningfork" or not ours or s.missing is not None:
                continue
            cells = " | ".join(_ratio(ours[0].at(m), s.at(m)) for m in marks)
            lines.append(f"| {family} | ratio tuningfork / {s.label} | {cells} |")
    return lines


def sampling_targets(series: Sequence[Sampling]) -> list[str]:
    lines = []
    for family, mark in SAMPLING_TARGETS.items():
        name = {
            "TPE": "TPE sampling time at trial 1,000 <= 1/3 of Optuna TPESampler's (the faster "
            "of default (multivariate in Optuna 5) and multivariate=False)",
            "GP": "GP sampling time at trial 300 <= 1/3 of Optuna GPSampler's",
        }[family]
        group = [s for s in series if s.family == family]
        ours = next((s for s in group if s.framework == "tuningfork"), None)
        theirs = [s for s in group if s.framework == "optuna" and s.at(mark) is not None]
        if ours is None or ours.missing is not None:
            why = ours.missing if ours is not None else "not run"
            lines.append(f"SKIP  {name}: tuningfork's sampler not available ({why})")
            continue
        a = ours.at(mark)
        if a is None or not theirs:
            lines.append(f"SKIP  {name}: trial {mark:,} not reached")
            continue
        best = min(theirs, key=lambda s: s.at(mark))  # type: ignore[arg-type, return-value]
        b = best.at(mark)
        assert b is not None
        line = f"{_verdict(a * 3 <= b)}  {name}: {_ms(a)} vs {_ms(b)} ms ({best.label}, ratio "
        line += f"{a / b:.3f})"
        for other in group:
            c = other.at(mark)
            if other is not ours and other is not best and c is not None:
                line += f"; vs {other.label} {_ms(c)} ms (ratio {a / c:.3f})"
        lines.append(line)
    return lines


def sampling_main(args: argparse.Namespace) -> int:
    """Section (3): sampling time per trial of the model-based samplers."""
    started = datetime.datetime.now(datetime.timezone.utc)
    tpe_marks = QUICK_TPE_MARKS if args.quick else TPE_MARKS
    gp_marks = [m for m in (QUICK_GP_MARKS if args.quick else GP_MARKS) if m <= args.gp_trials]
    marks = sorted({*tpe_marks, *gp_marks})
    _progress("sampling time per trial")
    threads = limit_threads(args.threads)
    load = [os.getloadavg()[0]]
    series = sampling_series(args)
    run_sampling(series)
    load.append(os.getloadavg()[0])
    versions = ", ".join(
        f"{p} {package_version(p)}"
        for p in ("tuningfork", "optuna", "hyperopt", "torch", "greenlet", "numpy", "scipy")
    )
    gp_top = args.gp_trials
    lines = [
        f"## Sampling time per trial (`benchmarks/{Path(__file__).name} --only sampling`)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC"
        + (" (quick smoke run: figures are not meaningful)" if args.quick else ""),
        *(
            f"- {key}: {value}"
            for key, value in machine().items()
            if key in ("platform", "CPU", "Python")
        ),
        f"- versions: {versions}",
        f"- command: `{command()}`",
        "",
        f"Milliseconds per trial, median of the {SAMPLING_WINDOW} trials ending at the mark "
        f"(trials M-{SAMPLING_WINDOW} .. M-1, numbered from 0), one study per sampler, seed "
        f"{args.seed}, in memory. Problem: `{SAMPLING_PROBLEM}` from "
        "`tuningfork.testing.functions` (6 parameters: a log float, a float, two ints, one "
        "log, and two categoricals; its function costs microseconds). tuningfork and Optuna: "
        "the wall time of a define-by-run round trip `t = study.ask()`, one `suggest` per "
        "parameter, `study.tell(t, value)`, default options except the one named (Optuna "
        "5's default TPE is multivariate for one objective; tuningfork's too). hyperopt: "
        "`fmin` with "
        "`tpe.suggest` over one `Trials` object, resumed block after block; a trial's time is "
        "the wall time from the end of one evaluation to the start of the next (record, "
        "refresh, suggest), which is the same round trip less the function. The series of a "
        f"family take turns in blocks of {SAMPLING_BLOCK} trials, so they share the machine's "
        f'load. GP samplers stop at trial {gp_top:,} ("not run" after it): Optuna\'s '
        f"GPSampler spends seconds per trial beyond that. Threads: {threads} (`--threads`; "
        "one thread keeps the figures steady on a shared machine, where thread pools that "
        "spin-wait for busy cores slow down many times over; tuningfork's GP with the thread "
        "pools a user's process has is in `gp_threads.py`'s section, below). The "
        f"machine is shared: load average {load[0]:.1f} at the start and {load[1]:.1f} at the "
        f"end on {os.cpu_count()} cores (a load above the core count inflates every figure).",
        "",
        *sampling_table(series, marks),
        "",
        "### Targets",
        "",
        "```",
        *sampling_targets(series),
        "```",
    ]
    body = "\n".join(lines) + "\n"
    print(body)
    write_section(args.results, body, SAMPLING_BEGIN, SAMPLING_END, follows=END)
    _progress(f"wrote {args.results}")
    return 0


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few trials, seconds")
    parser.add_argument("--max-trials", type=int, help="trials per study (default 10000)")
    parser.add_argument(
        "--optuna-sqlite-max", type=int, help="cap for Optuna on SQLite (default 3000)"
    )
    parser.add_argument("--tpe-trials", type=int, help="trials for Optuna TPE (default 1000)")
    parser.add_argument("--workers", type=int, help="processes on one study (default 4)")
    parser.add_argument("--trials-per-worker", type=int, help="default 250")
    parser.add_argument("--repeats", type=int, help="throughput runs per framework (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="RESULTS.md path")
    parser.add_argument("--dir", type=Path, help="where the SQLite files go (default: a temp dir)")
    parser.add_argument(
        "--only",
        choices=("framework", "sampling"),
        help="framework: (1) and (2) only; sampling: (3) only (default: all)",
    )
    parser.add_argument(
        "--gp-trials", type=int, help="trials for the GP samplers in (3) (default 300)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="thread pools (BLAS, OpenMP, torch) in (3); 0: library defaults (default 1)",
    )
    args = parser.parse_args(argv)
    quick = {
        "max_trials": 150,
        "optuna_sqlite_max": 100,
        "tpe_trials": 50,
        "workers": 2,
        "trials_per_worker": 25,
        "repeats": 1,
        "gp_trials": QUICK_GP_MARKS[-1],
    }
    full = {
        "max_trials": 10_000,
        "optuna_sqlite_max": 3_000,
        "tpe_trials": 1_000,
        "workers": 4,
        "trials_per_worker": 250,
        "repeats": 3,
        "gp_trials": GP_MARKS[-1],
    }
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    status = 0
    if args.only != "sampling":
        status = framework_main(args)
    if args.only != "framework":
        status = max(status, sampling_main(args))
    return status


def framework_main(args: argparse.Namespace) -> int:
    """Sections (1) and (2): the framework's own time per trial, and the throughput."""
    directory = args.dir or Path(tempfile.mkdtemp(prefix="tuningfork-overhead-"))
    directory.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        groups, marks, throughput = measure(args, directory)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    optuna_cap = min(args.optuna_sqlite_max, args.max_trials)
    lines = [
        f"## Framework overhead per trial (`benchmarks/{Path(__file__).name}`)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC"
        + (" (quick smoke run: figures are not meaningful)" if args.quick else ""),
        *(f"- {key}: {value}" for key, value in machine().items()),
        f"- command: `{command()}`",
        f"- SQLite files in `{directory}` (removed afterwards unless `--dir` is given)",
        "",
        f"### Ask+tell time per trial (ms, median of the {WINDOW} round trips ending at the mark)",
        "",
        "Free objective `t = study.ask(); study.tell(t, t.suggest_float('x', -1, 1))`, "
        f"seed {args.seed}. A mark M is the median of trials M-{WINDOW} .. M-1 (numbered from "
        f"0) of one study run up to {args.max_trials:,} trials. The studies of one storage run "
        f"in the same process, taking turns in blocks of {BLOCK} trials. Optuna on SQLite is "
        f"capped at {optuna_cap:,} trials and TPE at {args.tpe_trials:,} (its time per "
        'trial grows with the study): marks above a cap say "not run". Each framework uses '
        "its own SQLite settings: tuningfork WAL + synchronous=NORMAL, Optuna a rollback "
        "journal + synchronous=FULL, which waits for an fsync at every commit, so its figures "
        "swing with the disk from window to window; the WAL row runs Optuna with tuningfork's "
        "settings to separate that wait from Optuna's own work.",
        "",
        *per_trial_table(groups, marks),
        "",
        f"### Throughput of {args.workers} processes on one SQLite study",
        "",
        f"{args.repeats} run(s) per framework, alternating, each on a fresh study. "
        f"{args.workers} spawned processes each run {args.trials_per_worker} ask+tell trials "
        "on one shared study (created first, loaded by each worker); the clock starts when "
        "every worker has loaded the study (a Barrier), so start-up and imports are not "
        "counted, and stops when the last worker has reported. Then the stored trials are "
        "checked against the (number, value) pairs the workers told. Errors are exceptions "
        'raised by ask or tell (e.g. "database is locked"), counted, not fatal.',
        "",
        *throughput_table(throughput),
        "",
        "### Targets",
        "",
        "```",
        *targets(groups, marks, throughput),
        "```",
    ]
    errors = sorted({e for r in throughput for e in r.errors})
    if errors:
        lines += ["", "Distinct errors seen in the throughput runs:", ""]
        lines += [f"- `{e}`" for e in errors[:10]]
    body = "\n".join(lines) + "\n"
    print(body)
    write_section(args.results, body, BEGIN, END)
    _progress(f"wrote {args.results}")
    ours = [r for r in throughput if r.framework == "tuningfork"]
    return 0 if ours and all(r.intact for r in ours) else 1


def measure(args: argparse.Namespace, directory: Path):
    seed, top = args.seed, args.max_trials
    optuna_cap, tpe_cap = min(args.optuna_sqlite_max, top), min(args.tpe_trials, top)
    marks = sorted({m for m in (*STANDARD_MARKS, optuna_cap) if m <= top} | {top})

    def random() -> Any:
        return optuna.samplers.RandomSampler(seed=seed)

    def tpe() -> Any:
        return optuna.samplers.TPESampler(seed=seed)

    def sqlite(name: str) -> str:
        return f"sqlite:///{directory / name}"

    def series(storage: str, label: str, make: Callable[[], Any], limit: int) -> Series:
        framework = "tuningfork" if label == TUNINGFORK else "optuna"
        return Series(storage, label, framework, make, limit)

    groups = {
        "memory": [
            series("memory", TUNINGFORK, tuningfork_study("memory", seed), top),
            series("memory", OPTUNA_RANDOM, optuna_study(None, random), top),
            series("memory", OPTUNA_TPE, optuna_study(None, tpe), tpe_cap),
        ],
        "SQLite": [
            series("SQLite", TUNINGFORK, tuningfork_study(sqlite("tuningfork.db"), seed), top),
            series("SQLite", OPTUNA_RANDOM, optuna_study(sqlite("random.db"), random), optuna_cap),
            series("SQLite", OPTUNA_TPE, optuna_study(sqlite("tpe.db"), tpe), tpe_cap),
            series("SQLite", OPTUNA_WAL, optuna_wal_study(sqlite("wal.db"), random), optuna_cap),
        ],
    }
    for storage, group in groups.items():
        _progress(f"per-trial time, {storage}")
        run_in_turns(group, storage)
    throughput = []
    for run in range(1, args.repeats + 1):
        for framework in ("tuningfork", "optuna"):
            _progress(
                f"throughput run {run}, {framework}: {args.workers} x {args.trials_per_worker}"
            )
            throughput.append(
                run_throughput(
                    framework, run, directory, args.workers, args.trials_per_worker, seed
                )
            )
    return groups, marks, throughput


if __name__ == "__main__":
    sys.exit(main())
