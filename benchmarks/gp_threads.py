"""GP sampling time with the thread pools a user's process has, against one BLAS thread set
before start-up: a check that the GP's own one-thread limit covers every BLAS (issue 13).

Each run is a fresh process that loads nothing but tuningfork before the GP runs (scipy and
its own OpenBLAS are loaded by the GP itself, as in a user's script) and times tuningfork's
GPSampler with overhead.py's sampling code. A run as the user has it (no thread limits set
by this script) and a reference run with OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
MKL_NUM_THREADS = 1 take turns, repeat after repeat, so machine load affects both alike,
while one process per core spins: surplus BLAS threads cost little on an idle machine and
much on a busy one (issue 13 was measured on a busy 2-core machine). FAIL (exit status 1)
when the user's run is more than 1.5 times slower at the mark. Prints a table and writes
its section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/gp_threads.py          # trial 100, 5 runs of each (1-3 minutes)
    .venv/bin/python benchmarks/gp_threads.py --quick  # smoke run (seconds, no verdict)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import overhead  # its sampling code times the GP; it loads no scipy
from _report import command, machine_lines, package_version, write_section

import tuningfork as tf

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "RESULTS.md"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MAX_RATIO = 1.5  # user's environment / one thread set before start-up, at the mark
USER, REFERENCE = "user's environment", "threads = 1 before start-up (reference)"
SECTION = "gp_threads.py"
BEGIN = f"<!-- begin {SECTION} (generated; edit the script, not this section) -->"
END = f"<!-- end {SECTION} -->"
SPIN = "while True: pass"  # a process that keeps one core busy
FOLLOWS = "<!-- end overhead-sampling -->"  # the section goes after overhead.py's sampling


# -- one run, in its own process ----------------------------------------------------------------


def child(trials: int, seed: int) -> None:
    """Run tuningfork's GPSampler for ``trials`` trials; print the times (seconds) and the
    thread pools' sizes (outside a proposal) as one JSON line."""
    if "scipy" in sys.modules:  # the check would miss a BLAS loaded after the limit
        raise SystemExit("scipy was loaded before the GP ran: the run is not a user's process")
    step = overhead._ask_tell_step(
        lambda: tf.create_study(storage="memory", sampler=tf.GPSampler(seed=seed), seed=seed),
        "tuningfork",
    )
    times = step(trials)
    from threadpoolctl import threadpool_info

    pools = [f"{Path(i['filepath']).name}: {i['num_threads']}" for i in threadpool_info()]
    print(json.dumps({"times": times, "pools": pools}))


def run(trials: int, seed: int, reference: bool) -> dict:
    """One child process: the user's environment, or one with the thread variables at 1."""
    env = dict(os.environ)
    if reference:
        env.update({name: "1" for name in THREAD_VARIABLES})
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--trials", str(trials)]
    done = subprocess.run(
        [*argv, "--seed", str(seed)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def at_mark(times: list[float], mark: int) -> float:
    """Milliseconds per trial at ``mark`` as overhead.py reads them (median of its window)."""
    sampling = overhead.Sampling("tuningfork GPSampler", "GP", "tuningfork", mark, None)
    sampling.times = times
    value = sampling.at(mark)
    assert value is not None, f"{len(times)} trials do not reach trial {mark}"
    return value


# -- the report ---------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, list[dict]]:
    """The two kinds of run in turns (the order flips every repeat), ``args.busy`` processes
    spinning meanwhile."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)]
    try:
        return measure_in_turns(args)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def measure_in_turns(args: argparse.Namespace) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {USER: [], REFERENCE: []}
    for repeat in range(args.repeats):
        order = (USER, REFERENCE) if repeat % 2 == 0 else (REFERENCE, USER)
        for label in order:
            outcome = run(args.trials, args.seed, reference=label == REFERENCE)
            outcome["ms"] = at_mark(outcome["times"], args.trials)
            runs[label].append(outcome)
            print(f"  repeat {repeat + 1}, {label}: {outcome['ms']:.1f} ms", file=sys.stderr)
    return runs


def table(runs: dict[str, list[dict]], mark: int) -> tuple[list[str], float]:
    """The table's lines and the ratio: median over repeats of user / reference."""
    repeats = len(runs[USER])
    head = "| run | " + " | ".join(f"repeat {i + 1}" for i in range(repeats)) + " | median |"
    lines = [head, "|" + "---|" * (repeats + 2)]
    for label, outcomes in runs.items():
        values = [o["ms"] for o in outcomes]
        cells = " | ".join(f"{v:.1f}" for v in values)
        lines.append(
            f"| {label}: ms/trial at trial {mark} | {cells} | {statistics.median(values):.1f} |"
        )
    ratios = [u["ms"] / r["ms"] for u, r in zip(runs[USER], runs[REFERENCE], strict=True)]
    cells = " | ".join(f"{r:.2f}" for r in ratios)
    lines.append(f"| ratio user / reference | {cells} | {statistics.median(ratios):.2f} |")
    return lines, statistics.median(ratios)


def report(
    args: argparse.Namespace,
    runs: dict[str, list[dict]],
    started: datetime.datetime,
    load: list[float],
) -> tuple[str, bool]:
    """The section's text, and whether it passed (a quick run always does)."""
    lines, ratio = table(runs, args.trials)
    passed = ratio <= MAX_RATIO
    verdict = "PASS" if passed else "FAIL"
    if args.quick:
        verdict = "SKIP (quick smoke run, no verdict)"
    inherited = ", ".join(f"{name}={os.environ.get(name, 'unset')}" for name in THREAD_VARIABLES)
    versions = ", ".join(
        f"{p} {package_version(p)}" for p in ("tuningfork", "numpy", "scipy", "threadpoolctl")
    )
    body = [
        f"## GP sampling time and BLAS threads (`benchmarks/{Path(__file__).name}`)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC"
        + (" (quick smoke run: figures are not meaningful)" if args.quick else ""),
        *(f"- {key}: {value}" for key, value in machine_lines().items()),
        f"- versions: {versions}",
        f"- command: `{command()}`",
        "",
        f"tuningfork `GPSampler(seed={args.seed})` on overhead.py's sampling problem "
        f"(`{overhead.SAMPLING_PROBLEM}`), in memory, timed as `overhead.py --only sampling` "
        f"times it: milliseconds per trial at trial {args.trials}, the median of the "
        f"{overhead.SAMPLING_WINDOW} trials ending there. Each run is a fresh process that "
        "loads no scipy before the GP does, as a user's script. The user's environment is "
        f"this command's, with no thread limit set by the benchmark ({inherited}; threads per "
        f"pool outside a proposal: {', '.join(runs[USER][-1]['pools'])}); the reference sets "
        f"{', '.join(THREAD_VARIABLES)} = 1 before start-up. The two take turns, "
        f"{args.repeats} time(s) each, the order flipping each repeat; the ratio is the median "
        "over repeats of the ratio within a repeat. Meanwhile "
        f"{args.busy} process(es) spin (`while True: pass`, `--busy`), so the runs see a busy "
        "machine, where surplus BLAS threads wait for cores (on an idle machine they cost "
        "little, and the check cannot tell). The machine is shared: load average "
        f"{load[0]:.1f} at the start and {load[1]:.1f} at the end on {os.cpu_count()} cores, "
        "the spinning processes included.",
        "",
        *lines,
        "",
        "### Targets",
        "",
        "```",
        f"{verdict}  GP sampling time at trial {args.trials} in the user's environment <= "
        f"{MAX_RATIO} x the reference's: ratio {ratio:.2f}",
        "```",
    ]
    return "\n".join(body) + "\n", passed or args.quick


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: trial 20, one repeat")
    parser.add_argument("--trials", type=int, help="the mark: trials per run (default 100)")
    parser.add_argument("--repeats", type=int, help="runs of each kind (default 5)")
    parser.add_argument(
        "--busy", type=int, help="processes spinning during the runs (default: one per core)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="RESULTS.md path")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = {"trials": 20, "repeats": 1, "busy": 0}
    full = {"trials": 100, "repeats": 5, "busy": os.cpu_count() or 1}
    defaults = quick if args.quick else full
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args.trials, args.seed)
        return 0
    started = datetime.datetime.now(datetime.timezone.utc)
    load = [os.getloadavg()[0]]
    runs = measure(args)
    load.append(os.getloadavg()[0])
    body, passed = report(args, runs, started, load)
    print(body)
    write_section(args.results, body, BEGIN, END, follows=FOLLOWS)
    print(f"wrote {args.results}", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
