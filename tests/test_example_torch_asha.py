"""The multi-fidelity example: ASHA pauses trials at rungs and two worker processes resume
them from their checkpoints; the study's record shows every trial's epochs exactly once."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import tuningfork
from tuningfork import TrialState
from tuningfork.repro import derive_seed

pytestmark = pytest.mark.slow  # every test shares one run of the example (~30 s)

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "torch_asha.py"
TIMEOUT_S = 120


def load_example():
    spec = importlib.util.spec_from_file_location("torch_asha_example", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Run ``torch_asha.py --quick`` once, as a user would, in its own directory."""
    where = tmp_path_factory.mktemp("torch_asha")
    url = f"sqlite:///{where / 'study.db'}"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--workers", "2", "--storage", url],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, (
        f"exit {completed.returncode}\n--- stdout\n{completed.stdout}\n"
        f"--- stderr\n{completed.stderr}"
    )
    return completed.stdout, tuningfork.load_study("torch-asha", url)


def test_prints_states_best_trial_and_a_resumed_trial(quick_run):
    stdout, _ = quick_run
    assert "COMPLETE" in stdout and "PAUSED" in stdout
    assert "Best: trial" in stdout
    assert "paused and resumed from their checkpoints" in stdout
    assert " | paused | " in stdout


def test_paused_trials_resume_where_they_stopped(quick_run):
    _, study = quick_run
    example = load_example()
    trials = study.get_trials()
    assert trials
    assert all(t.state in (TrialState.PAUSED, TrialState.COMPLETE) for t in trials), [
        (t.number, t.state, t.reason) for t in trials
    ]
    budgets = {1, 3, example.QUICK_MAX_EPOCHS}
    for t in trials:
        steps = sorted(t.intermediate_values)
        assert steps == list(range(1, steps[-1] + 1)), (t.number, steps)  # no gap, no repeat
        assert steps[-1] in budgets, (t.number, steps)  # it stopped at a rung
        runs = t.user_attrs["runs"]
        assert t.user_attrs["resumed"] == len(runs) - 1
        # Each run started right after the epoch where the previous one paused, so no two
        # workers resumed the trial from the same checkpoint.
        assert runs[0]["first"] == 1
        for before, after in zip(runs, runs[1:]):
            assert after["first"] == before["budget"] + 1, (t.number, runs)
        assert runs[-1]["budget"] == steps[-1], (t.number, runs, steps)

    resumed = [t for t in trials if t.user_attrs["resumed"] >= 1]
    assert resumed, "no paused trial was resumed"
    assert any(t.last_step > t.user_attrs["runs"][0]["budget"] for t in resumed)

    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert any(t.last_step == example.QUICK_MAX_EPOCHS for t in complete)
    for t in complete:
        assert t.value == t.intermediate_values[t.last_step]
    assert study.best_trial.last_step == example.QUICK_MAX_EPOCHS

    pids = {run["pid"] for t in trials for run in t.user_attrs["runs"]}
    names = {run["worker"] for t in trials for run in t.user_attrs["runs"]}
    assert len(pids) == 2 and names == {"A", "B"}  # both worker processes ran trials
    for t in trials:  # the trial's worker is the process that ran it last
        assert t.worker.endswith(f":{t.user_attrs['runs'][-1]['pid']}"), (t.number, t.worker)


def test_checkpoints_hold_the_last_reported_epoch(quick_run):
    _, study = quick_run
    for t in study.get_trials():
        path = study.artifact_dir / f"trial_{t.number}" / "checkpoint.pt"
        assert path.is_file(), path
        state = torch.load(path, weights_only=True)
        assert state["epoch"] == t.last_step
        assert set(state) == {"epoch", "model", "optimizer"}


def test_a_resumed_trial_trains_as_if_never_paused(quick_run):
    """Retrain the best trial without pauses: the same accuracies, epoch by epoch."""
    _, study = quick_run
    example = load_example()
    best = study.best_trial
    assert best.user_attrs["resumed"] >= 1
    seed = derive_seed(int(study.system_attrs["seed"]), best.number)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: the same reductions, the same floats
    try:
        model, optimizer = example.build(best.params, seed)
        accuracies = {
            epoch: example.train_epoch(model, optimizer, best.params, seed, epoch)
            for epoch in range(1, best.last_step + 1)
        }
    finally:
        torch.set_num_threads(threads)
    assert accuracies == best.intermediate_values
