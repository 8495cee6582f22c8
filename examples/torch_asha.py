"""Tune a PyTorch MLP on scikit-learn's digits with ASHA, pausing and resuming trials.

ASHA in promotion mode gives every new configuration 1 epoch; a trial pauses at each rung
(1, 3, 9, 27 epochs) after saving a checkpoint, and a later ask by either worker process
resumes it from that checkpoint at the next rung if it is in the top third of its rung.
The two workers share one SQLite study; by default it lives in a fresh temporary
directory, with the checkpoints beside it. Needs torch and scikit-learn
(``pip install 'tuningfork[torch,sklearn]'``).

    python torch_asha.py [--trials 60] [--workers 2] [--storage URL] [--quick]

``--trials`` counts runs: a new configuration or the resumption of a paused one.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import multiprocessing
import os
import sys
import tempfile
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import tuningfork
from tuningfork.repro import derive_seed

STUDY = "torch-asha"
SEED = 42
ETA = 3
MAX_EPOCHS = 27  # rungs at 1, 3, 9 and 27 epochs
QUICK_MAX_EPOCHS = 9  # rungs at 1, 3 and 9 epochs
CHECKPOINT = "checkpoint.pt"
WORKER_NAMES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_worker_name = "main"  # set in each worker process


@functools.cache
def load_data() -> dict[str, torch.Tensor]:
    """The digits split 75/25 into train and validation (stratified, fixed), scaled to [0, 1]."""
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x / 16.0, y, test_size=0.25, stratify=y, random_state=SEED
    )
    return {
        "x_train": torch.tensor(x_train, dtype=torch.float32),
        "y_train": torch.tensor(y_train, dtype=torch.long),
        "x_val": torch.tensor(x_val, dtype=torch.float32),
        "y_val": torch.tensor(y_val, dtype=torch.long),
    }


def suggest(trial: tuningfork.Trial) -> dict:
    """The hyperparameters (a resumed trial gets back the values it had)."""
    return {
        "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
        "hidden": trial.suggest_int("hidden", 16, 256, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64, 128]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }


def build(params: dict, seed: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    """A freshly initialised MLP and its optimizer."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(64, params["hidden"]),
        nn.ReLU(),
        nn.Dropout(params["dropout"]),
        nn.Linear(params["hidden"], 10),
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"]
    )
    return model, optimizer


def train_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, params: dict, seed: int, epoch: int
) -> float:
    """Train one epoch and return the validation accuracy.

    The shuffling and dropout of each epoch are seeded by (trial seed, epoch), so a trial
    paused and resumed from its checkpoint trains exactly as it would have without a pause.
    """
    data = load_data()
    torch.manual_seed(derive_seed(seed, "epoch", epoch))
    model.train()
    order = torch.randperm(len(data["y_train"]))
    for start in range(0, len(order), params["batch_size"]):
        batch = order[start : start + params["batch_size"]]
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(data["x_train"][batch]), data["y_train"][batch])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(data["x_val"]).argmax(dim=1)
    return (predicted == data["y_val"]).float().mean().item()


def save_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int
) -> None:
    """Write the checkpoint atomically: a worker killed mid-write leaves the previous one."""
    state = {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()}
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def objective(trial: tuningfork.Trial) -> float:
    """Train from where the trial stopped up to its budget; return the validation accuracy.

    It lives at module level so that worker processes started with 'spawn' can import it.
    """
    params = suggest(trial)
    model, optimizer = build(params, trial.seed)
    path = trial.checkpoint_dir / CHECKPOINT
    if trial.resumed:
        state = torch.load(path, weights_only=True)
        if state["epoch"] != trial.last_step:  # the checkpoint must match the reports
            raise RuntimeError(
                f"trial {trial.number}: checkpoint at epoch {state['epoch']}, "
                f"but the study says it stopped at {trial.last_step}"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])

    # Which worker ran which stretch of epochs, kept on the trial for the summary.
    first = (trial.last_step or 0) + 1
    last = int(trial.budget) if trial.budget is not None else MAX_EPOCHS
    earlier = trial.user_attrs.get("runs", []) if trial.resumed else []
    run = {"worker": _worker_name, "pid": os.getpid(), "first": first, "budget": last}
    runs = [*earlier, run]
    trial.set_user_attr("runs", runs)
    trial.set_user_attr("resumed", len(runs) - 1)

    accuracy = 0.0
    for epoch in range(first, last + 1):
        accuracy = train_epoch(model, optimizer, params, trial.seed, epoch)
        save_checkpoint(path, model, optimizer, epoch)
        trial.report(accuracy, epoch)
        if trial.should_stop():  # paused at a rung (or stopped): the checkpoint is saved
            raise tuningfork.TrialPruned()
    return accuracy


def make_scheduler(max_epochs: int) -> tuningfork.ASHA:
    return tuningfork.ASHA(min_budget=1, max_budget=max_epochs, eta=ETA, mode="promotion")


def run_worker(name: str, storage: str, n_runs: int, max_epochs: int) -> None:
    """One worker process: open the shared study and do ``n_runs`` runs."""
    global _worker_name
    _worker_name = name
    torch.set_num_threads(1)
    study = tuningfork.load_study(STUDY, storage, scheduler=make_scheduler(max_epochs))
    # On Ctrl-C, optimize marks the running trial FAIL ("interrupted") and re-raises.
    with contextlib.suppress(KeyboardInterrupt):
        study.optimize(objective, n_trials=n_runs, show_progress_bar=False)


def run_workers(storage: str, n_runs: int, n_workers: int, max_epochs: int) -> None:
    """Start ``n_workers`` processes that share the runs, and wait for them."""
    context = multiprocessing.get_context("spawn")
    shares = [n_runs // n_workers + (i < n_runs % n_workers) for i in range(n_workers)]
    workers = [
        context.Process(target=run_worker, args=(WORKER_NAMES[i], storage, n, max_epochs))
        for i, n in enumerate(shares)
        if n
    ]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    except KeyboardInterrupt:  # Ctrl-C reaches the workers too; let them record it
        for worker in workers:
            worker.join()
        sys.exit("\nInterrupted; the running trials are marked FAIL. Run again to go on.")
    if any(worker.exitcode != 0 for worker in workers):
        sys.exit("A worker process failed; its traceback is above.")


def history(trial: tuningfork.FrozenTrial) -> str:
    """E.g. "epochs 1 (A) | paused | 2-3 (B) | paused | 4-9 (A) -> COMPLETE"."""
    runs = trial.user_attrs.get("runs", [])
    steps = sorted(trial.intermediate_values)
    parts = []
    for i, run in enumerate(runs):
        end = runs[i + 1]["first"] - 1 if i + 1 < len(runs) else (steps[-1] if steps else 0)
        span = f"{run['first']}" if end == run["first"] else f"{run['first']}-{end}"
        parts.append(f"{span} (worker {run['worker']}, pid {run['pid']})")
    return "epochs " + " | paused | ".join(parts) + f" -> {trial.state.value}"


def summarise(study: tuningfork.Study) -> None:
    """Print the trials by state, the best trial and the story of a resumed trial."""
    trials = study.get_trials()
    counts = {state: sum(t.state is state for t in trials) for state in tuningfork.TrialState}
    print(
        f"\n{len(trials)} trials: "
        + ", ".join(f"{n} {state.value}" for state, n in counts.items() if n)
    )
    if counts[tuningfork.TrialState.COMPLETE]:
        best = study.best_trial
        print(
            f"Best: trial {best.number}, validation accuracy {best.value:.4f} after "
            f"{best.last_step} epochs"
        )
        for name, value in best.params.items():
            shown = f"{value:.3g}" if isinstance(value, float) else value
            print(f"  {name:13s} {shown}")
    else:
        print("No trial reached the full budget; run more trials.")

    resumed = [t for t in trials if t.user_attrs.get("resumed", 0) > 0]
    if not resumed:
        print("No trial was resumed; run more trials.")
        return

    # Prefer trials that moved between workers, then those that went furthest.
    def moved(t: tuningfork.FrozenTrial) -> bool:
        return len({run["worker"] for run in t.user_attrs["runs"]}) > 1

    resumed.sort(key=lambda t: (not moved(t), -(t.last_step or 0), t.number))
    n_moved = sum(moved(t) for t in resumed)
    print(
        f"\n{len(resumed)} trials were paused and resumed from their checkpoints, "
        f"{n_moved} of them by a different worker process. For example:"
    )
    for t in resumed[:3]:
        print(f"  trial {t.number}: {history(t)}")
        reports = " ".join(f"{s}:{v:.3f}" for s, v in sorted(t.intermediate_values.items()))
        print(f"    validation accuracy by epoch: {reports}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trials", type=int, default=None, help="runs (new or resumed; default 60, quick 24)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--storage", default=None, help="storage URL (default: a SQLite file in a new temp dir)"
    )
    parser.add_argument("--quick", action="store_true", help=f"up to {QUICK_MAX_EPOCHS} epochs")
    args = parser.parse_args(argv)
    n_runs = args.trials if args.trials is not None else (24 if args.quick else 60)
    if n_runs < 0 or args.workers < 1 or args.workers > len(WORKER_NAMES):
        parser.error(f"--trials must be >= 0 and --workers in [1, {len(WORKER_NAMES)}]")
    max_epochs = QUICK_MAX_EPOCHS if args.quick else MAX_EPOCHS
    storage = args.storage
    if storage is None:
        storage = f"sqlite:///{Path(tempfile.mkdtemp(prefix='torch_asha-')) / 'study.db'}"

    study = tuningfork.create_study(
        STUDY,
        storage,
        direction="maximize",
        sampler=tuningfork.TPESampler(seed=SEED),
        scheduler=make_scheduler(max_epochs),
        seed=SEED,
        load_if_exists=True,  # a second run with the same --storage goes on with the study
    )
    print(
        f"Study {study.name!r} in {study.storage.url}: {n_runs} runs, {args.workers} worker "
        f"process(es), ASHA rungs up to {max_epochs} epochs; checkpoints in {study.artifact_dir}"
    )
    run_workers(storage, n_runs, args.workers, max_epochs)
    summarise(study)


if __name__ == "__main__":
    main()
