"""`tuningfork plot` and `tuningfork importance` on a stored study."""

from __future__ import annotations

import json

import pytest

import tuningfork as tf
from tuningfork.cli import main


@pytest.fixture
def url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = tf.create_study("s", url, sampler=tf.RandomSampler(seed=0))

    def objective(trial: tf.Trial) -> float:
        x = trial.suggest_float("x", -3, 3)
        trial.suggest_float("unused", 1e-3, 1.0, log=True)
        kind = trial.suggest_categorical("kind", ["a", "b"])
        return x * x + (0.3 if kind == "a" else 0.0)

    study.optimize(objective, n_trials=60)
    tf.create_study("empty", url)
    return url


def test_plot_writes_the_figure_in_the_format_of_its_suffix(url, tmp_path, capsys):
    image = pytest.importorskip("matplotlib.image")
    out = tmp_path / "history.png"
    args = ["plot", "s", "history", "--storage", url, "--out", str(out)]
    assert main([*args, "--width", "640", "--height", "480"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert image.imread(out).shape[:2] == (480, 640)
    page = tmp_path / "slice.html"
    assert main(["plot", "s", "slice", "--storage", url, "--out", str(page), "--params", "x"]) == 0
    assert "plotly" in page.read_text().lower()


def test_plot_errors_are_one_clear_line(url, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert main(["plot", "empty", "history", "--storage", url, "--out", out]) == 2
    assert "no complete trial" in capsys.readouterr().err
    assert main(["plot", "s", "pareto", "--storage", url, "--out", out]) == 2
    assert "2 or more objectives" in capsys.readouterr().err
    assert main(["plot", "s", "histogram", "--storage", url, "--out", out]) == 2
    assert "histogram" in capsys.readouterr().err


def test_importance_ranks_the_parameter_that_matters_first(url, capsys):
    pytest.importorskip("sklearn")
    for evaluator in ("ped-anova", "fanova"):
        assert main(["importance", "s", "--storage", url, "--evaluator", evaluator, "--json"]) == 0
        importances = json.loads(capsys.readouterr().out)["importances"]
        assert list(importances)[0] == "x"
        assert sum(importances.values()) == pytest.approx(1.0)
    assert main(["importance", "s", "--storage", url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[0] == "x" and "#" in table[1]
    assert main(["importance", "empty", "--storage", url]) == 2
    assert "at least 2 complete trials" in capsys.readouterr().err


def test_plot_population_and_schedule_of_a_pbt_study(url, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    scheduler = tf.PBT(population_size=3, perturbation_interval=2, max_budget=6, seed=0)
    study = tf.create_study("pbt", url, direction="maximize", scheduler=scheduler, seed=0)

    def objective(trial: tf.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-3, 1.0, log=True)
        path = trial.checkpoint_dir / "w.json"
        w = json.loads(path.read_text()) if trial.resumed else 0.0
        for step in range((trial.last_step or 0) + 1, trial.budget + 1):
            w += lr
            path.write_text(json.dumps(w))
            trial.report(w, step)
        if trial.should_stop():
            raise tf.TrialPruned()
        return w

    study.optimize(objective)
    assert any(t.system_attrs["pbt"].get("exploits") for t in study.trials)
    for kind, extra in (("population", []), ("schedule", ["--trial", "1"])):
        out = tmp_path / f"{kind}.png"
        args = ["plot", "pbt", kind, "--storage", url, "--out", str(out), *extra]
        assert main(args) == 0, capsys.readouterr().err
        assert out.stat().st_size > 1000
    assert main(["plot", "s", "population", "--storage", url, "--out", str(out)]) == 2
    assert "no population member" in capsys.readouterr().err
    bad = ["plot", "pbt", "schedule", "--trial", "99", "--storage", url, "--out", str(out)]
    assert main(bad) == 2
    assert "no trial 99" in capsys.readouterr().err
