"""Population-based training of a PyTorch MLP on scikit-learn's digits (PBT or PB2).

A population of MLPs trains in parallel; every few epochs each member pauses, and the
worst members copy the weights of the best (the study copies the checkpoint and checks its
hash) and carry on with perturbed learning rate and weight decay. The result is a
hyperparameter *schedule* per member, which this script prints for the best member with
its lineage (who copied whom, when). Needs torch and scikit-learn
(``pip install 'tuningfork[torch,sklearn]'``).

    python pbt_digits.py [--algo pbt|pb2] [--workers 2] [--storage URL] [--quick]

Replay the best model's schedule from scratch afterwards with the command it prints
(``tuningfork pbt-replay STUDY TRIAL --storage URL``).
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import tuningfork
from tuningfork.repro import derive_seed
from tuningfork.schedulers.pbt import lineage, replay_schedule

SEED = 42
CHECKPOINT = "checkpoint.pt"
FULL = {"population": 8, "interval": 4, "epochs": 40}
QUICK = {"population": 4, "interval": 2, "epochs": 8}


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


def build(lr: float, weight_decay: float) -> tuple[nn.Module, torch.optim.Optimizer]:
    """A fresh MLP (the same initial weights for every member) and its optimizer."""
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    return model, optimizer


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int) -> float:
    """One epoch of minibatches (shuffled by the epoch number alone, so a replay of the
    schedule sees the same batches); the validation accuracy after it."""
    data = load_data()
    torch.manual_seed(derive_seed(SEED, "epoch", epoch))
    model.train()
    order = torch.randperm(len(data["y_train"]))
    for start in range(0, len(order), 32):
        batch = order[start : start + 32]
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(data["x_train"][batch]), data["y_train"][batch])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(data["x_val"]).argmax(dim=1)
    return (predicted == data["y_val"]).float().mean().item()


def objective(trial: tuningfork.Trial) -> float:
    """Train one member from its checkpoint up to ``trial.budget`` (the next perturbation
    boundary); return its validation accuracy."""
    # Read the hyperparameters on every run: after an exploit they are new values.
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
    model, optimizer = build(lr, weight_decay)
    path = trial.checkpoint_dir / CHECKPOINT
    if trial.resumed:
        # Possibly another member's checkpoint: the study copied the donor's committed one
        # here and checked its SHA-256 before this run started.
        state = torch.load(path, weights_only=True)
        assert state["epoch"] == trial.last_step, (state["epoch"], trial.last_step)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        # The optimizer's state dict brought back the values it was saved with (the
        # donor's): overwrite them with this run's, or the explore step is silently lost
        # (Ray issue #36660).
        for group in optimizer.param_groups:
            group["lr"] = lr
            group["weight_decay"] = weight_decay
    accuracy = 0.0
    epoch = trial.last_step or 0
    while epoch < trial.budget:
        epoch += 1
        accuracy = train_epoch(model, optimizer, epoch)
        if epoch == trial.budget:
            # Save BEFORE the report: the report at the budget commits the checkpoint
            # (snapshot + hash) that other members may copy.
            save(path, model, optimizer, epoch)
        trial.report(accuracy, epoch)
        if trial.should_stop():  # the member pauses at the boundary
            raise tuningfork.TrialPruned()
    return accuracy


def save(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int) -> None:
    state = {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()}
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    os.replace(partial, path)  # a worker killed mid-write leaves no torn checkpoint


def make_scheduler(algo: str, setting: dict[str, int]) -> tuningfork.PBT:
    kind = tuningfork.PB2 if algo == "pb2" else tuningfork.PBT
    return kind(
        population_size=setting["population"],
        perturbation_interval=setting["interval"],
        max_budget=setting["epochs"],
        seed=SEED,
    )


def summarise(study: tuningfork.Study, storage: str) -> None:
    best = study.best_trial
    print(f"\nbest member: trial {best.number}, validation accuracy {best.value:.4f}")
    print("its schedule (in force from just after each epoch):")
    for epoch, params in replay_schedule(study, best.number):
        print(
            f"  epoch {epoch:3d}: lr={params['lr']:.3g}, weight_decay={params['weight_decay']:.3g}"
        )
    copies = lineage(study, best.number)
    print(f"its lineage ({len(copies)} copies, newest first):")
    for copy in copies:
        print(
            f"  epoch {copy['step']:3d}: trial {copy['recipient']} copied trial "
            f"{copy['donor']} (accuracy {copy['donor_value']:.4f}, checkpoint "
            f"{copy['sha256'][:12]})"
        )
    if not copies:
        print("  (none: this member trained on its own checkpoints throughout)")
    exploits = sum(len(t.system_attrs["pbt"].get("exploits", ())) for t in study.trials)
    print(f"{exploits} exploits in the population of {len(study.trials)}")
    print(f"replay it: tuningfork pbt-replay {study.name} {best.number} --storage {storage}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=("pbt", "pb2"), default="pbt", help="default pbt")
    parser.add_argument("--workers", type=int, default=2, help="threads (default 2)")
    parser.add_argument(
        "--storage", default=None, help="storage URL (default: a SQLite file in a new temp dir)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="population 4, 8 epochs (under a minute)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # one core per worker thread
    setting = QUICK if args.quick else FULL
    storage = args.storage
    if storage is None:
        storage = f"sqlite:///{Path(tempfile.mkdtemp(prefix='pbt_digits-')) / 'study.db'}"
    study = tuningfork.create_study(
        f"digits-{args.algo}",
        storage,
        direction="maximize",
        scheduler=make_scheduler(args.algo, setting),
        seed=SEED,
    )
    print(
        f"{args.algo.upper()}: population {setting['population']}, exploit every "
        f"{setting['interval']} epochs up to {setting['epochs']}, {args.workers} workers; "
        f"study {study.name!r} in {storage}"
    )
    # No n_trials: PBT ends the study when every member has trained to the last epoch.
    study.optimize(objective, n_jobs=args.workers, show_progress_bar=False)
    summarise(study, storage)


if __name__ == "__main__":
    main()
