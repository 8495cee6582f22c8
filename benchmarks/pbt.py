"""Population-based training: PBT and PB2 against grid search, random search and ASHA with
the same compute, on the toy problem of Jaderberg et al. (2017, Fig. 2) and on a small
PyTorch MLP trained on scikit-learn's digits (issue 15).

Toy: maximise Q(theta) = 1.2 - (theta0^2 + theta1^2) by gradient ascent on the surrogate
Qhat(theta | h) = 1.2 - (h0 theta0^2 + h1 theta1^2), from theta = (0.9, 0.9), h in [0, 1]^2;
every method gets members x steps of compute. Reports the best member's Q at the last
step and the first step at which it exceeds a threshold (median and worst over seeds).
Digits: an MLP, learning rate and weight decay (log scales), epoch steps, 4 worker
threads in one process; PBT, PB2, promotion-type ASHA (capped at the same total epochs)
and random search; the validation accuracy of the selected model and its test accuracy.

    .venv/bin/python benchmarks/pbt.py            # 10 seeds each (about 5 minutes on 2 cores)
    .venv/bin/python benchmarks/pbt.py --quick    # smoke run (about a minute)
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _report import command, machine_lines, package_version, write_section

import tuningfork as tf

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "RESULTS.md"
SECTION = "pbt.py"
BEGIN = f"<!-- begin {SECTION} (generated; edit the script, not this section) -->"
END = f"<!-- end {SECTION} -->"

# The toy: gradient step size and start, as in Jaderberg et al.'s Fig. 2 set-up.
TOY_ETA = 0.02
TOY_START = (0.9, 0.9)
TOY_THRESHOLD = 1.19
TOY_INTERVAL = 4  # steps between exploits
PAPER_INIT = ({"h0": 1.0, "h1": 0.0}, {"h0": 0.0, "h1": 1.0})  # the paper's two members


def pb2_available() -> bool:
    """Whether PB2's GP module is importable (it is written apart from PBT)."""
    try:
        import tuningfork.schedulers._pb2_gp  # noqa: F401
    except ImportError:
        return False
    return True


# -- the toy problem ----------------------------------------------------------------------


def toy_objective(steps: int) -> Callable[[tf.Trial], float]:
    """The toy as a tuningfork objective: one gradient step per step, Q reported at each
    step, theta checkpointed (JSON) at the end of each run."""

    def objective(trial: tf.Trial) -> float:
        h0 = float(trial.suggest_float("h0", 0.0, 1.0))
        h1 = float(trial.suggest_float("h1", 0.0, 1.0))
        path = trial.checkpoint_dir / "theta.json"
        theta = json.loads(path.read_text()) if trial.resumed else list(TOY_START)
        step = trial.last_step or 0
        budget = int(trial.budget or steps)  # no scheduler: train to the end
        q = 1.2 - (theta[0] ** 2 + theta[1] ** 2)
        while step < budget:
            step += 1
            # ascent on Qhat: d/dtheta_i = -2 h_i theta_i
            theta = [theta[0] * (1 - 2 * TOY_ETA * h0), theta[1] * (1 - 2 * TOY_ETA * h1)]
            q = 1.2 - (theta[0] ** 2 + theta[1] ** 2)
            if step == budget:
                path.write_text(json.dumps(theta))  # before the report that commits it
            trial.report(q, step)
            if trial.should_stop():
                raise tf.TrialPruned()
        return q

    return objective


def grid_points(n: int) -> list[dict[str, float]]:
    """n configurations on a k0 x k1 grid of cell midpoints (k0 * k1 = n, as square as
    possible), so that no point sits on the optimum h = (1, 1) by construction."""
    k0 = max(k for k in range(1, int(math.isqrt(n)) + 1) if n % k == 0)
    k1 = n // k0
    return [{"h0": (i + 0.5) / k0, "h1": (j + 0.5) / k1} for i in range(k0) for j in range(k1)]


def toy_run(method: str, n: int, seed: int, steps: int, init: str) -> dict[str, Any]:
    """One run; ``init``: "random" (the members' first h from RandomSampler(seed), the
    same draws as random search) or "paper" (h = (1, 0) and (0, 1))."""
    scheduler: tf.Scheduler | None = None
    if method == "pbt":
        scheduler = tf.PBT(n, TOY_INTERVAL, steps, seed=seed)
    elif method == "pb2":
        scheduler = tf.PB2(n, TOY_INTERVAL, steps, seed=seed)
    folder = tempfile.TemporaryDirectory()  # checkpoints: not in the working directory
    study = tf.create_study(
        direction="maximize",
        storage="memory",
        sampler=tf.RandomSampler(seed=seed),
        scheduler=scheduler,
        seed=seed,
        artifact_root=folder.name,
    )
    queued = list(PAPER_INIT) if init == "paper" else []
    if method == "grid" and init != "paper":
        queued = grid_points(n)
    for params in queued:
        study.enqueue_trial(params)
    started = time.perf_counter()
    optimize_kwargs: dict[str, Any] = {"n_jobs": 1, "show_progress_bar": False}
    if scheduler is None:
        optimize_kwargs["n_trials"] = n
    with warnings.catch_warnings(record=True) as caught:  # one worker: no other thread
        warnings.simplefilter("always", UserWarning)
        study.optimize(toy_objective(steps), **optimize_kwargs)
    # a member whose h is (0, 0) saves the same theta again, which the study refuses to
    # commit as a stale checkpoint (see RESULTS.md): counted, not hidden
    uncommitted = sum("no checkpoint was committed" in str(w.message) for w in caught)
    seconds = time.perf_counter() - started
    folder.cleanup()
    best = [
        max(t.intermediate_values[s] for t in study.trials if s in t.intermediate_values)
        for s in range(1, steps + 1)
    ]
    reached = next((s for s, q in enumerate(best, 1) if q > TOY_THRESHOLD), None)
    return {
        "q": best[-1],
        "step": reached,
        "seconds": seconds,
        "trials": len(study.trials),
        "uncommitted": uncommitted,
    }


def toy_plan(quick: bool) -> list[tuple[str, int, str]]:
    """(method, members, init) of every toy configuration."""
    methods = ["pbt", "pb2", "grid", "random"]
    sizes = (2, 4) if quick else (2, 4, 8)
    plan = [(m, 2, "paper") for m in ("pbt", "pb2", "grid")]
    plan += [(m, n, "random") for n in sizes for m in methods]
    return plan


def run_toy(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for method, n, init in toy_plan(args.quick):
        if method == "pb2" and not pb2_available():
            rows.append({"method": method, "n": n, "init": init, "runs": None})
            continue
        runs = [toy_run(method, n, seed, args.toy_steps, init) for seed in range(args.toy_seeds)]
        rows.append({"method": method, "n": n, "init": init, "runs": runs})
        print(f"toy {method} n={n} {init}: {_summary_q(runs)}", file=sys.stderr)
    return rows


# -- digits -------------------------------------------------------------------------------


class Digits:
    """scikit-learn's digits, split once (seed 0) into train / validation / test, as
    float32 tensors scaled to [0, 1]."""

    def __init__(self) -> None:
        import numpy as np
        import torch
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        order = np.random.default_rng(0).permutation(len(y))
        x, y = x[order] / 16.0, y[order]
        cut1, cut2 = 300, 700  # a small training set: the hyperparameters matter
        self.train = (torch.tensor(x[:cut1], dtype=torch.float32), torch.tensor(y[:cut1]))
        self.val = (torch.tensor(x[cut1:cut2], dtype=torch.float32), torch.tensor(y[cut1:cut2]))
        self.test = (torch.tensor(x[cut2:], dtype=torch.float32), torch.tensor(y[cut2:]))


class EpochMeter:
    """Counts the epochs a study trains (all workers), for same-budget comparisons."""

    def __init__(self) -> None:
        self.epochs = 0
        self._lock = threading.Lock()

    def add(self, epochs: int) -> None:
        with self._lock:
            self.epochs += epochs


def digits_objective(
    data: Digits, max_epochs: int, meter: EpochMeter
) -> Callable[[tf.Trial], float]:
    """An MLP (64-128-10, ReLU) trained by SGD with momentum 0.9, batch 50; one step = one
    epoch; validation accuracy reported after each epoch; model and optimizer state saved
    in ``trial.checkpoint_dir`` before the report that ends a run."""
    import torch

    def build(trial: tf.Trial) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        generator = torch.Generator().manual_seed(trial.seed % 2**63)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
        )
        with torch.no_grad():  # seeded per trial: the global RNG is shared by threads
            for p in model.parameters():
                p.uniform_(-1.0, 1.0, generator=generator).mul_(p.shape[-1] ** -0.5)
        return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def objective(trial: tf.Trial) -> float:
        lr = float(trial.suggest_float("lr", 1e-3, 1.0, log=True))
        weight_decay = float(trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True))
        model, optimizer = build(trial)
        path = trial.checkpoint_dir / "state.pt"
        if trial.resumed:
            state = torch.load(path)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        # after a load too: the optimizer's state dict holds the old values, and an
        # exploit may have changed them
        for group in optimizer.param_groups:
            group["lr"], group["weight_decay"] = lr, weight_decay
        step = trial.last_step or 0
        budget = int(trial.budget or max_epochs)
        x, y = data.train
        accuracy = 0.0
        while step < budget:
            step += 1
            order = torch.randperm(
                len(y), generator=torch.Generator().manual_seed((trial.seed + step) % 2**63)
            )
            model.train()
            for start in range(0, len(y), 50):
                batch = order[start : start + 50]
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
                loss.backward()
                optimizer.step()
            meter.add(1)
            accuracy = evaluate(model, data.val)
            if step == budget:
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
                torch.save(state, path)
                # kept for the report only; selection reads validation accuracy
                trial.set_user_attr("test", evaluate(model, data.test))
            trial.report(accuracy, step)
            if trial.should_stop():
                raise tf.TrialPruned()
        return accuracy

    return objective


def evaluate(model: Any, split: tuple[Any, Any]) -> float:
    """Accuracy of ``model`` on ``split``; a diverged model (NaN outputs) scores 0.1 or so."""
    import torch

    model.eval()
    with torch.no_grad():
        predicted = model(split[0]).argmax(dim=1)
    return float((predicted == split[1]).float().mean())


def digits_run(
    method: str, n: int, seed: int, epochs: int, workers: int, data: Digits
) -> dict[str, Any]:
    """One run of ``method``; every method trains at most about n x epochs epochs."""
    meter = EpochMeter()
    objective = digits_objective(data, epochs, meter)
    scheduler: tf.Scheduler | None = None
    interval = max(1, epochs // 8)
    if method == "pbt":
        scheduler = tf.PBT(n, interval, epochs, seed=seed)
    elif method == "pb2":
        scheduler = tf.PB2(n, interval, epochs, seed=seed)
    elif method == "asha":
        scheduler = tf.ASHA(1, epochs, 3, mode="promotion")
    with tempfile.TemporaryDirectory() as folder:
        study = tf.create_study(
            direction="maximize",
            storage=f"sqlite:///{folder}/study.db",
            artifact_root=folder,
            sampler=tf.RandomSampler(seed=seed),
            scheduler=scheduler,
            seed=seed,
        )
        started = time.perf_counter()
        if method == "asha":
            # no stop-at-budget option: run in rounds of `workers` runs until the epochs
            # are spent (the last round may overshoot by a few runs; the table says how much)
            while meter.epochs < n * epochs:
                study.optimize(objective, n_trials=workers, n_jobs=workers, show_progress_bar=False)
        elif method == "random":
            study.optimize(objective, n_trials=n, n_jobs=workers, show_progress_bar=False)
        else:
            study.optimize(objective, n_jobs=workers, show_progress_bar=False)
        seconds = time.perf_counter() - started
        chosen = select(study)
        return {
            "val": chosen.intermediate_values[chosen.last_step or 0],
            "test": chosen.user_attrs["test"],
            "step": chosen.last_step,
            "epochs": meter.epochs,
            "seconds": seconds,
            "trials": len(study.trials),
        }


def select(study: tf.Study) -> tf.FrozenTrial:
    """The model a user would keep: the best validation accuracy among the trials trained
    furthest (ASHA's promoted ones; every member for PBT)."""
    trained = [t for t in study.trials if t.last_step is not None]
    furthest = max(t.last_step or 0 for t in trained)
    top = [t for t in trained if t.last_step == furthest]
    return max(top, key=lambda t: t.intermediate_values[furthest])


def digits_plan(quick: bool) -> list[tuple[str, int]]:
    """(method, members) of every digits configuration: population 8 for the main
    comparison, 4 for PB2 against PBT with a small population."""
    if quick:
        return [("pbt", 4), ("pb2", 4), ("asha", 4), ("random", 4)]
    return [("pbt", 8), ("pb2", 8), ("asha", 8), ("random", 8), ("pbt", 4), ("pb2", 4)]


def run_digits(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    torch.set_num_threads(1)  # 4 worker threads on 2 cores: no intra-op threads on top
    data = Digits()
    rows = []
    for method, n in digits_plan(args.quick):
        if method == "pb2" and not pb2_available():
            rows.append({"method": method, "n": n, "runs": None})
            continue
        runs = [
            digits_run(method, n, seed, args.epochs, args.workers, data)
            for seed in range(args.digits_seeds)
        ]
        rows.append({"method": method, "n": n, "runs": runs})
        print(f"digits {method} n={n}: {_summary_val(runs)}", file=sys.stderr)
    return rows


# -- report -------------------------------------------------------------------------------

LABELS = {
    "pbt": "PBT",
    "pb2": "PB2",
    "grid": "grid search",
    "random": "random search",
    "asha": "ASHA (promotion)",
}


def _summary_q(runs: list[dict[str, Any]]) -> str:
    qs = [r["q"] for r in runs]
    return f"Q median {statistics.median(qs):.4f}, worst {min(qs):.4f}"


def _summary_val(runs: list[dict[str, Any]]) -> str:
    vals = [r["val"] for r in runs]
    return f"val median {statistics.median(vals):.4f}, worst {min(vals):.4f}"


def _steps(runs: list[dict[str, Any]], limit: int) -> tuple[str, str, int]:
    """Median and worst first step above the threshold ("never" counts as beyond the
    last step) and how many runs got there."""
    steps = [r["step"] if r["step"] is not None else limit + 1 for r in runs]

    def show(value: float) -> str:
        return "never" if value > limit else f"{value:g}"

    return show(statistics.median(steps)), show(max(steps)), sum(s <= limit for s in steps)


def toy_table(rows: list[dict[str, Any]], steps: int) -> list[str]:
    lines = [
        f"| start h | members | method | Q at step {steps}: median | worst | first step Q > "
        f"{TOY_THRESHOLD}: median | worst | runs reaching it | seconds per run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        start = "(1, 0), (0, 1)" if row["init"] == "paper" else "random"
        head = f"| {start} | {row['n']} | {LABELS[row['method']]}"
        runs = row["runs"]
        if runs is None:
            lines.append(head + " | not run: PB2's GP module is missing | | | | | |")
            continue
        qs = [r["q"] for r in runs]
        median_step, worst_step, reaching = _steps(runs, steps)
        seconds = statistics.median(r["seconds"] for r in runs)
        lines.append(
            f"{head} | {statistics.median(qs):.4f} | {min(qs):.4f} | {median_step} | "
            f"{worst_step} | {reaching}/{len(runs)} | {seconds:.2f} |"
        )
    return lines


def uncommitted_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Where the study refused a checkpoint identical to an earlier one (a member with
    h = (0, 0) does not move), so that no other member could copy it at that step."""
    found = [
        f"{LABELS[row['method']]} ({row['n']} members, {row['init']} start): "
        f"{sum(r['uncommitted'] for r in row['runs'])} in "
        f"{sum(r['uncommitted'] > 0 for r in row['runs'])} of {len(row['runs'])} runs"
        for row in rows
        if row["runs"] and any(r["uncommitted"] for r in row["runs"])
    ]
    if not found:
        return []
    return [
        "Boundaries where a member's checkpoint was not committed because its files were "
        "identical to an earlier commit of that member (h = (0, 0) leaves theta unchanged; "
        "see the note below): " + "; ".join(found) + ".",
        "",
    ]


def digits_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| method | members | validation accuracy: median | worst | test accuracy: median | "
        "worst | epochs trained: median | wall time per run: median (s) | trials per run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        head = f"| {LABELS[row['method']]} | {row['n']}"
        runs = row["runs"]
        if runs is None:
            lines.append(head + " | not run: PB2's GP module is missing | | | | | | |")
            continue
        vals, tests = [r["val"] for r in runs], [r["test"] for r in runs]
        epochs = statistics.median(r["epochs"] for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        trials = statistics.median(r["trials"] for r in runs)
        lines.append(
            f"{head} | {statistics.median(vals):.4f} | {min(vals):.4f} | "
            f"{statistics.median(tests):.4f} | {min(tests):.4f} | {epochs:g} | {seconds:.1f} | "
            f"{trials:g} |"
        )
    return lines


def report(
    args: argparse.Namespace,
    toy: list[dict[str, Any]],
    digits: list[dict[str, Any]],
    started: datetime.datetime,
    load: list[float],
    seconds: float,
) -> str:
    versions = ", ".join(
        f"{p} {package_version(p)}" for p in ("tuningfork", "numpy", "torch", "scikit-learn")
    )
    body = [
        f"## Population-based training (`benchmarks/{Path(__file__).name}`)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC"
        + (" (quick smoke run: figures are not meaningful)" if args.quick else ""),
        *(f"- {key}: {value}" for key, value in machine_lines().items()),
        f"- versions: {versions}",
        f"- command: `{command()}`",
        f"- wall time of the whole script: {seconds / 60:.1f} min; load average "
        f"{load[0]:.1f} at the start and {load[1]:.1f} at the end on {os.cpu_count()} cores",
        "",
        "### Toy problem (Jaderberg et al. 2017, Fig. 2)",
        "",
        "Maximise Q(theta) = 1.2 - (theta0^2 + theta1^2) by gradient ascent on "
        "Qhat(theta | h) = 1.2 - (h0 theta0^2 + h1 theta1^2) with step size "
        f"{TOY_ETA}, from theta = {TOY_START}, h in [0, 1]^2; {args.toy_steps} steps per "
        f"member, Q reported at every step; PBT and PB2 exploit every {TOY_INTERVAL} steps "
        "(quantile 0.25: with 2 members the worse copies the better at every boundary), "
        "asynchronous, in memory, one worker. Every method has members x steps of compute: "
        "random search draws as many h from `RandomSampler(seed)` as PBT's population "
        "(the same draws that start PBT's members), grid search uses the midpoints of a "
        "k0 x k1 grid (k0 k1 = members), and the rows with start h (1, 0), (0, 1) are the "
        "paper's set-up (grid search there is those two fixed h). The figure is the best "
        f"member's Q at each step; {args.toy_seeds} seeds (0..{args.toy_seeds - 1}), "
        "median and worst seed.",
        "",
        *toy_table(toy, args.toy_steps),
        "",
        *uncommitted_lines(toy),
        "### Digits: an MLP on scikit-learn's digits",
        "",
        "An MLP 64-128-10 (ReLU) trained by SGD (momentum 0.9, batch 50) on 300 of the "
        "1,797 digits (a small training set, so that the hyperparameters matter: with 1,000 "
        "every method reached the same 98.5% median), validation accuracy on 400 after each "
        "epoch (the value every method optimises and selects by), test accuracy on the "
        "other 1,097 (reported only). "
        "Hyperparameters: learning rate in [1e-3, 1] and weight decay in [1e-6, 1e-1], both "
        f"log scales. Budget {args.epochs} epochs per member; PBT and PB2 exploit every "
        f"{max(1, args.epochs // 8)} epochs (asynchronous); random search trains as many "
        f"configurations as the population to {args.epochs} epochs; ASHA (promotion, "
        f"min 1, max {args.epochs}, eta 3) runs in rounds of {args.workers} runs until it has "
        "trained members x epochs epochs (its last round may overshoot: see the epochs "
        "column). The objective checkpoints model and optimizer state before the report "
        "that ends a run and, after loading, sets the optimizer's learning rate and weight "
        f"decay from `trial.params`. {args.workers} worker threads in one process "
        "(`study.optimize(n_jobs=...)`), `torch.set_num_threads(1)`, a SQLite study in a "
        f"temporary folder; {args.digits_seeds} seeds. The selected model is the trial "
        "with the best validation accuracy among those trained furthest.",
        "",
        *digits_table(digits),
    ]
    return "\n".join(body) + "\n"


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (about a minute)")
    parser.add_argument("--toy-seeds", type=int, help="toy seeds (default 10)")
    parser.add_argument("--toy-steps", type=int, help="toy steps per member (default 100)")
    parser.add_argument("--digits-seeds", type=int, help="digits seeds (default 10)")
    parser.add_argument("--epochs", type=int, help="digits epochs per member (default 32)")
    parser.add_argument("--workers", type=int, default=4, help="digits worker threads")
    parser.add_argument("--only", choices=("toy", "digits"), help="run one part")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="RESULTS.md path")
    parser.add_argument("--json", type=Path, help="write every run's figures there")
    args = parser.parse_args(argv)
    quick = {"toy_seeds": 2, "toy_steps": 40, "digits_seeds": 1, "epochs": 8}
    full = {"toy_seeds": 10, "toy_steps": 100, "digits_seeds": 10, "epochs": 32}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.perf_counter()
    load = [os.getloadavg()[0]]
    toy = run_toy(args) if args.only != "digits" else []
    digits = run_digits(args) if args.only != "toy" else []
    load.append(os.getloadavg()[0])
    body = report(args, toy, digits, started, load, time.perf_counter() - clock)
    print(body)
    if args.json is not None:
        args.json.write_text(json.dumps({"toy": toy, "digits": digits}, indent=1))
    write_section(args.results, body, BEGIN, END)
    print(f"wrote {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
