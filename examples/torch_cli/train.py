"""Train a small PyTorch MLP on scikit-learn's digits: a plain script that tuningfork tunes.

The hyperparameters come from command-line flags, so the script runs on its own::

    python train.py --lr 0.01 --hidden 64 --dropout 0.1 --optimizer sgd --momentum 0.9
    python train.py --lr 0.003 --hidden 128 --optimizer adam --epochs 9

and `study.yaml` beside it tunes it (``cd examples/torch_cli && tuningfork run
study.yaml``). Under tuningfork the script talks to it through `tuningfork.client` (see
docs/protocol.md):

- it trains up to ``client.budget()`` epochs (``TUNINGFORK_BUDGET``, the rung ASHA gives
  this run; 27 epochs when run by hand), and reports the validation accuracy after every
  epoch with ``client.report(step=epoch, val_acc=...)``;
- when the answer is "pause" (ASHA in promotion mode pauses a trial at each rung) or
  "stop", or when tuningfork sends SIGTERM (Ctrl-C on ``tuningfork run``, a SLURM
  preemption), it saves a checkpoint (model, optimizer, epoch) in
  ``client.checkpoint_dir()`` and exits with code 0;
- a later run of a paused trial (``client.resumed()``) loads that checkpoint and goes on
  from the next epoch, so the trial's reports run 1, 2, 3, ... without a gap or a repeat;
- at the end it saves the checkpoint too and prints ``{"val_acc": ...}`` with
  ``client.result``, the line the study reads as the trial's result.

Every epoch's shuffling and dropout are seeded by (seed, epoch), so a trial that was paused
and resumed trains exactly as one that ran straight through.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from tuningfork import client

DEFAULT_EPOCHS = 27  # when run by hand (no TUNINGFORK_BUDGET)
BATCH_SIZE = 64
CHECKPOINT = "checkpoint.pt"
DATA_SEED = 0  # the train/validation split never changes

_terminated = False  # set by SIGTERM; acted on at the end of the current epoch


def _on_sigterm(signum: int, frame: object) -> None:
    # Deferred on purpose: saving from inside the handler could catch the model halfway
    # through an optimizer step, or store an epoch whose report was never written. The
    # loop finishes the epoch (well under a second), reports it, saves and exits 0, long
    # before tuningfork's grace period (limits.grace_period, default 10 s) ends in SIGKILL.
    global _terminated
    _terminated = True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, required=True, help="learning rate")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units (default 64)")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout (default 0)")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty (default 0)")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="adam")
    parser.add_argument(
        "--momentum", type=float, default=None, help="SGD momentum (sgd only; default 0.9)"
    )
    budget = client.budget()
    parser.add_argument(
        "--epochs",
        type=int,
        default=int(budget) if budget is not None else DEFAULT_EPOCHS,
        help=f"train up to this epoch (default: $TUNINGFORK_BUDGET, else {DEFAULT_EPOCHS})",
    )
    parser.add_argument(
        "--checkpoint-dir",
        default=client.checkpoint_dir(),
        help="where to save and load checkpoints (default: $TUNINGFORK_CHECKPOINT_DIR; "
        "none when run by hand)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        default=client.resumed(),
        help="go on from the checkpoint (default: $TUNINGFORK_RESUMED)",
    )
    seed = client.seed()
    parser.add_argument(
        "--seed", type=int, default=seed if seed is not None else 0, help="random seed"
    )
    args = parser.parse_args(argv)
    if args.optimizer == "sgd" and args.momentum is None:
        args.momentum = 0.9
    elif args.optimizer != "sgd" and args.momentum is not None:
        parser.error("--momentum applies only to --optimizer sgd")
    if args.resume and not args.checkpoint_dir:
        parser.error("--resume needs --checkpoint-dir")
    if args.epochs < 1 or args.hidden < 1 or not 0.0 <= args.dropout < 1.0:
        parser.error("need --epochs >= 1, --hidden >= 1 and 0 <= --dropout < 1")
    return args


def load_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits (1797 8x8 images, bundled with scikit-learn) scaled to [0, 1], split 75/25."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(DATA_SEED).permutation(len(y))
    n_train = int(0.75 * len(y))
    train, val = order[:n_train], order[n_train:]
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    return x[train], y[train], x[val], y[val]


def build(args: argparse.Namespace) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(args.seed)
    model = nn.Sequential(
        nn.Linear(64, args.hidden),
        nn.ReLU(),
        nn.Dropout(args.dropout),
        nn.Linear(args.hidden, 10),
    )
    optimizer: torch.optim.Optimizer
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=args.lr,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
        )
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    return model, optimizer


def train_epoch(model, optimizer, x, y, seed: int, epoch: int) -> None:  # type: ignore[no-untyped-def]
    # seeded by (seed, epoch): the same shuffling and dropout whether or not a pause came
    torch.manual_seed((seed * 1_000_003 + epoch) % 2**63)
    model.train()
    order = torch.randperm(len(y))
    for start in range(0, len(order), BATCH_SIZE):
        batch = order[start : start + BATCH_SIZE]
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


def save_checkpoint(
    directory: str | None,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    runs: list[dict],
) -> None:
    """Write the checkpoint atomically (a kill mid-write leaves the previous one)."""
    if not directory:
        return  # run by hand without --checkpoint-dir
    path = Path(directory) / CHECKPOINT
    partial = path.with_name(path.name + ".partial")
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "runs": runs,  # one entry per run of this trial: where it started and stopped
    }
    torch.save(state, partial)
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    torch.set_num_threads(1)  # a tiny model: threads cost more than they bring
    args = parse_args(argv)
    x_train, y_train, x_val, y_val = load_data()
    model, optimizer = build(args)

    done, runs = 0, []
    path = Path(args.checkpoint_dir or ".") / CHECKPOINT
    if args.resume and not path.exists() and client.last_step() is None:
        # stopped (Ctrl-C, preemption) before it finished its first epoch: nothing to load
        print("resumed before any epoch was reported: starting from scratch", flush=True)
    elif args.resume:
        state = torch.load(path, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        done, runs = state["epoch"], state["runs"]
        last = client.last_step()
        if last is not None and last != done:  # the checkpoint must match the reports
            print(f"checkpoint at epoch {done}, but tuningfork says step {last}", file=sys.stderr)
            return 1
        print(f"resumed from {CHECKPOINT} at epoch {done}", flush=True)
    runs.append({"first": done + 1, "budget": args.epochs, "pid": os.getpid()})

    def pause_or_stop(epoch: int, answer: str) -> int:
        runs[-1]["last"], runs[-1]["end"] = epoch, answer if answer != "continue" else "sigterm"
        save_checkpoint(args.checkpoint_dir, model, optimizer, epoch, runs)
        print(f"{answer} at epoch {epoch}: val_acc={val_acc:.4f}; checkpoint saved", flush=True)
        return 0

    val_acc = accuracy(model, x_val, y_val)
    if args.resume and done >= args.epochs:
        # Nothing left to train: the last run was stopped (Ctrl-C, preemption) right at its
        # budget, before tuningfork recorded the scheduler's answer to that epoch. Report the
        # epoch again so the scheduler decides now (ASHA pauses it at its rung) instead of the
        # trial ending as if it had reached its full budget.
        answer = client.report(step=done, val_acc=val_acc)
        if answer != "continue" or _terminated:
            return pause_or_stop(done, answer)
    for epoch in range(done + 1, args.epochs + 1):
        train_epoch(model, optimizer, x_train, y_train, args.seed, epoch)
        val_acc = accuracy(model, x_val, y_val)
        answer = client.report(step=epoch, val_acc=val_acc)
        if answer != "continue" or _terminated or client.should_stop():
            return pause_or_stop(epoch, answer)
        done = epoch
    runs[-1]["last"], runs[-1]["end"] = done, "done"
    save_checkpoint(args.checkpoint_dir, model, optimizer, done, runs)
    client.result(val_acc=val_acc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
