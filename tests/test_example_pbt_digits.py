"""The PBT example: ``pbt_digits.py --quick`` (PBT and PB2) runs as a user runs it, and its
objective trains every epoch with the member's current learning rate and weight decay,
not the ones its copied optimizer state brought back."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import tuningfork as tf
from tuningfork.schedulers.pbt import lineage

pytestmark = pytest.mark.slow  # two runs of the example, ~15 s each

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "pbt_digits.py"
TIMEOUT_S = 120


def load_example():
    spec = importlib.util.spec_from_file_location("pbt_digits_example", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("algo", ["pbt", "pb2"])
def test_quick_run_prints_the_best_members_schedule_and_lineage(tmp_path, algo):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--algo", algo, "--storage", url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "no checkpoint was committed" not in completed.stderr  # saved before each report
    out = completed.stdout
    study = tf.load_study(f"digits-{algo}", url)
    trials = study.trials
    assert [(t.state, t.last_step) for t in trials] == [(tf.TrialState.COMPLETE, 8)] * 4
    assert study.system_attrs["scheduler"]["name"] == algo.upper()
    assert any(t.system_attrs["pbt"].get("exploits") for t in trials)
    best = study.best_trial
    assert f"best member: trial {best.number}, validation accuracy {best.value:.4f}" in out
    assert best.value > 0.8  # digits: an MLP is far above chance (0.1) after 8 epochs
    assert "its schedule" in out and "epoch   0: lr=" in out
    assert f"its lineage ({len(lineage(study, best.number))} copies" in out
    assert f"tuningfork pbt-replay digits-{algo} {best.number} --storage {url}" in out


def test_each_epoch_trains_with_the_members_current_hyperparameters(monkeypatch):
    example = load_example()
    seen: list[tuple[dict, float, float]] = []
    current: list[tf.Trial] = []

    def fake_epoch(model, optimizer, epoch):
        group = optimizer.param_groups[0]
        seen.append((dict(current[-1].params), group["lr"], group["weight_decay"]))
        return group["lr"]  # the larger lr "wins": the others copy and change theirs

    def objective(trial):
        current.append(trial)
        return example.objective(trial)

    monkeypatch.setattr(example, "train_epoch", fake_epoch)
    scheduler = tf.PBT(population_size=4, perturbation_interval=2, max_budget=6, seed=0)
    study = tf.create_study(direction="maximize", scheduler=scheduler, seed=1)
    study.optimize(objective, show_progress_bar=False)
    copies = [e for t in study.trials for e in t.system_attrs["pbt"].get("exploits", ())]
    assert copies and any(e["after"]["lr"] != e["before"]["lr"] for e in copies)
    assert len(seen) == 4 * 6
    for params, lr, weight_decay in seen:
        assert lr == params["lr"] and weight_decay == params["weight_decay"]
