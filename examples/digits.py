"""Tune a linear classifier on scikit-learn's digits, with two worker processes.

The two workers share one study through a SQLite file; a median-stopping scheduler stops
configurations whose validation accuracy falls behind. Run it again to add trials to the
same study. Needs scikit-learn (``pip install 'tuningfork[sklearn]'``).

    python digits.py [--trials 40] [--workers 2] [--study digits-sgd] [--storage URL]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import multiprocessing
import shlex
import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import tuningfork
from tuningfork.storage import redact_url

EPOCHS = 15
SEED = 42
CLASSES = np.arange(10)


@functools.cache
def load_data() -> dict[str, np.ndarray]:
    """The digits split 60/20/20 into train, validation and test, standardised on train."""
    x, y = load_digits(return_X_y=True)
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, y, test_size=0.4, stratify=y, random_state=SEED
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=SEED
    )
    scaler = StandardScaler().fit(x_train)
    return {
        "x_train": scaler.transform(x_train),
        "y_train": y_train,
        "x_val": scaler.transform(x_val),
        "y_val": y_val,
        "x_test": scaler.transform(x_test),
        "y_test": y_test,
    }


def make_classifier(params: dict) -> SGDClassifier:
    """An untrained classifier with the given hyperparameters."""
    return SGDClassifier(
        loss=params["loss"],
        penalty=params["penalty"],
        alpha=params["alpha"],
        l1_ratio=params.get("l1_ratio", 0.15),
        learning_rate=params["learning_rate"],
        eta0=params.get("eta0", 0.01),
        random_state=SEED,
    )


def objective(trial: tuningfork.Trial) -> float:
    """Train for up to EPOCHS epochs; return the validation accuracy.

    It lives at module level so that worker processes started with 'spawn' can import it.
    """
    # Define-by-run: parameters are suggested as the code needs them, so eta0 and
    # l1_ratio exist only in the configurations that use them.
    params = {
        "loss": trial.suggest_categorical("loss", ["hinge", "log_loss", "modified_huber"]),
        "alpha": trial.suggest_float("alpha", 1e-6, 1e-1, log=True),
        "penalty": trial.suggest_categorical("penalty", ["l2", "l1", "elasticnet"]),
        "learning_rate": trial.suggest_categorical(
            "learning_rate", ["optimal", "constant", "invscaling", "adaptive"]
        ),
    }
    if params["penalty"] == "elasticnet":
        params["l1_ratio"] = trial.suggest_float("l1_ratio", 0.0, 1.0)
    if params["learning_rate"] != "optimal":  # "optimal" derives its own step size
        params["eta0"] = trial.suggest_float("eta0", 1e-4, 1e-1, log=True)

    data = load_data()
    model = make_classifier(params)
    accuracy = 0.0
    for epoch in range(EPOCHS):
        model.partial_fit(data["x_train"], data["y_train"], classes=CLASSES)
        accuracy = model.score(data["x_val"], data["y_val"])
        trial.report(accuracy, epoch)
        if trial.should_stop():
            raise tuningfork.TrialPruned(
                f"accuracy {accuracy:.3f} below the median at epoch {epoch + 1}"
            )
    return accuracy


def make_scheduler() -> tuningfork.MedianStopping:
    # Let 5 trials complete, and every trial train 3 epochs, before stopping any.
    return tuningfork.MedianStopping(n_startup_trials=5, n_warmup_steps=3)


def print_trial(study: tuningfork.Study, trial: tuningfork.FrozenTrial) -> None:
    """Print one line per finished trial (an `optimize` callback)."""
    step = trial.last_step
    accuracy = f"{trial.intermediate_values[step]:.3f}" if step is not None else "  -  "
    epochs = step + 1 if step is not None else 0
    print(
        f"  trial {trial.number:3d}  {trial.state.value:8s}  accuracy {accuracy} after "
        f"{epochs:2d} epochs  (worker {trial.worker})",
        flush=True,
    )


def run_worker(study_name: str, storage: str | None, n_trials: int) -> None:
    """One worker process: open the shared study and run ``n_trials`` trials."""
    study = tuningfork.load_study(study_name, storage, scheduler=make_scheduler())
    # On Ctrl-C, optimize marks the running trial FAIL ("interrupted") and re-raises.
    with contextlib.suppress(KeyboardInterrupt):
        study.optimize(
            objective, n_trials=n_trials, callbacks=[print_trial], show_progress_bar=False
        )


def run_workers(study_name: str, storage: str | None, n_trials: int, n_workers: int) -> None:
    """Start ``n_workers`` processes that share the trials, and wait for them."""
    # Each worker is a separate process that loads the study from the storage; they
    # coordinate only through it. 'spawn' starts clean processes, as on macOS and Windows.
    context = multiprocessing.get_context("spawn")
    shares = [n_trials // n_workers + (i < n_trials % n_workers) for i in range(n_workers)]
    workers = [
        context.Process(target=run_worker, args=(study_name, storage, n)) for n in shares if n
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


def report(study: tuningfork.Study) -> None:
    """Print the best configuration, its test accuracy, the study's trial counts and the
    commands that show the study, runnable from any directory."""
    trials = study.get_trials()
    counts = {state: sum(t.state is state for t in trials) for state in tuningfork.TrialState}
    if not counts[tuningfork.TrialState.COMPLETE]:
        print("No trial completed; nothing to report.")
        return

    best = study.best_trial
    print(f"\nBest configuration (trial {best.number}, validation accuracy {best.value:.3f}):")
    for name, value in best.params.items():
        print(f"  {name:14s} {value:.3g}" if isinstance(value, float) else f"  {name:14s} {value}")

    # Retrain the best configuration on train + validation and score it once on test.
    data = load_data()
    x = np.concatenate([data["x_train"], data["x_val"]])
    y = np.concatenate([data["y_train"], data["y_val"]])
    model = make_classifier(best.params)
    for _ in range(EPOCHS):
        model.partial_fit(x, y, classes=CLASSES)
    test_accuracy = model.score(data["x_test"], data["y_test"])
    print(f"Test accuracy, retrained on train + validation: {test_accuracy:.3f}")

    print(
        f"\nThe study has {len(trials)} trials: "
        f"{counts[tuningfork.TrialState.COMPLETE]} complete, "
        f"{counts[tuningfork.TrialState.PRUNED]} pruned, "
        f"{counts[tuningfork.TrialState.FAIL]} failed."
    )
    # the storage's absolute URL, so that the commands work from any directory
    storage = shlex.quote(redact_url(study.storage.url))
    print("See it with:")
    print(f"  tuningfork status {shlex.quote(study.name)} --storage {storage}")
    print(f"  tuningfork dashboard --storage {storage}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40, help="trials to run (default 40)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--study", default="digits-sgd", help="study name (default digits-sgd)")
    parser.add_argument(
        "--storage",
        default=None,
        help="storage URL (default: $TUNINGFORK_STORAGE or sqlite:///tuningfork.db)",
    )
    args = parser.parse_args()
    if args.trials < 0 or args.workers < 1:
        parser.error("--trials must be >= 0 and --workers >= 1")

    study = tuningfork.create_study(
        args.study,
        args.storage,
        direction="maximize",
        scheduler=make_scheduler(),
        seed=SEED,
        load_if_exists=True,  # a second run adds trials to the same study
    )
    print(
        f"Study {study.name!r} in {study.storage.url}: {args.trials} trials, "
        f"{args.workers} worker process(es), up to {EPOCHS} epochs each"
    )

    run_workers(study.name, args.storage, args.trials, args.workers)
    report(study)


if __name__ == "__main__":
    main()
