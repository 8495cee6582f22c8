"""``tuningfork pbt-replay``: the schedule and lineage of a PBT member as JSON, the YAML
that replays it, the replay run by ``tuningfork run``, and the errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

import tuningfork as tf
from tuningfork.cli import main
from tuningfork.schedulers.pbt import lineage, replay_schedule
from tuningfork.study import load_study

TOY = '''
"""Jaderberg et al. (2017)'s toy as a program: theta in its checkpoint."""
import json, os, sys
from tuningfork import client

params = client.params()
h0, h1 = float(params["h0"]), float(params["h1"])
path = os.path.join(client.checkpoint_dir(), "theta.json")
resumed = client.resumed() and os.path.exists(path)
theta = json.load(open(path)) if resumed else [0.9, 0.9]
step = client.last_step() if resumed else 0
while step < int(client.budget()):
    step += 1
    theta = [theta[0] * (1 - 0.1 * h0), theta[1] * (1 - 0.1 * h1)]
    q = 1.2 - (theta[0] ** 2 + theta[1] ** 2)
    if step % 2 == 0 or step == int(client.budget()):
        with open(path, "w") as f:
            json.dump(theta, f)  # before the report, which commits it
        if client.report(step, q=q) != "continue":
            sys.exit(0)
client.result(q=q)
'''


def toy(trial: tf.Trial) -> float:
    h0 = trial.suggest_float("h0", 0.0, 1.0)
    h1 = trial.suggest_float("h1", 0.0, 1.0)
    path = trial.checkpoint_dir / "theta.json"
    theta = json.loads(path.read_text()) if trial.resumed else [0.9, 0.9]
    step = trial.last_step or 0
    q = 0.0
    while step < trial.budget:
        step += 1
        theta = [theta[0] * (1 - 0.1 * h0), theta[1] * (1 - 0.1 * h1)]
        q = 1.2 - (theta[0] ** 2 + theta[1] ** 2)
        if step % 2 == 0 or step == trial.budget:
            path.write_text(json.dumps(theta))
            trial.report(q, step)
            if trial.should_stop():
                raise tf.TrialPruned()
    return q


@pytest.fixture
def url(tmp_path: Path) -> str:
    """'pop': a PBT study of 4 members to step 12 (exploits every 4); 'plain': no PBT."""
    url = f"sqlite:///{tmp_path / 'pbt.db'}"
    scheduler = tf.PBT(4, 4, 12, seed=2)
    study = tf.create_study("pop", url, direction="maximize", scheduler=scheduler, seed=5)
    study.optimize(toy, show_progress_bar=False)
    plain = tf.create_study("plain", url, seed=1)
    plain.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, show_progress_bar=False)
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _copied(url: str) -> int:
    """A member whose model has a copy in its past (the test needs one)."""
    study = load_study("pop", url)
    found = [t.number for t in study.trials if len(replay_schedule(study, t.number)) > 1]
    assert found
    return found[0]


def test_json_gives_the_schedule_lineage_and_the_replay_scheduler(capsys, url):
    number = _copied(url)
    code, out, err = run(capsys, "pbt-replay", "pop", str(number), "--storage", url)
    assert code == 0 and err == ""
    doc = json.loads(out)
    study = load_study("pop", url)
    schedule = [[step, params] for step, params in replay_schedule(study, number)]
    assert doc["schedule"] == schedule and len(schedule) > 1
    assert doc["lineage"] == lineage(study, number) and doc["lineage"]
    assert doc["scheduler"] == {"name": "pbt_replay", "schedule": schedule, "max_budget": 12}
    assert doc["value"] == study.trials[number].value and doc["state"] == "COMPLETE"
    # the scheduler record retrains the model
    options = {k: v for k, v in doc["scheduler"].items() if k != "name"}
    again = tf.create_study(direction="maximize", scheduler=tf.PBTReplay(**options))
    again.optimize(toy, show_progress_bar=False)
    assert again.trials[0].value == pytest.approx(doc["value"], abs=1e-9)


def test_yaml_snippet_is_the_scheduler_entry(capsys, url, tmp_path):
    number = _copied(url)
    out_file = tmp_path / "snippet.yaml"
    argv = ["pbt-replay", "pop", str(number), "--storage", url, "--format", "yaml"]
    code, out, err = run(capsys, *argv, "--out", str(out_file))
    assert code == 0 and out == "" and str(out_file) in err
    snippet = yaml.safe_load(out_file.read_text())
    schedule = [[s, p] for s, p in replay_schedule(load_study("pop", url), number)]
    assert snippet == {"scheduler": {"name": "pbt_replay", "schedule": schedule, "max_budget": 12}}
    code, printed, _ = run(capsys, *argv)
    assert code == 0 and printed == out_file.read_text()


def test_a_study_file_replays_through_tuningfork_run(capsys, tmp_path, monkeypatch):
    (tmp_path / "toy.py").write_text(TOY)
    (tmp_path / "study.yaml").write_text(
        yaml.safe_dump(
            {
                "study": "toy",
                "storage": "sqlite:///toy.db",
                "direction": "maximize",
                "metric": "q",
                "seed": 3,
                "space": {
                    "h0": {"type": "float", "low": 0.0, "high": 1.0},
                    "h1": {"type": "float", "low": 0.0, "high": 1.0},
                },
                "scheduler": {
                    "name": "pbt",
                    "population_size": 4,
                    "perturbation_interval": 4,
                    "max_budget": 12,
                    "seed": 1,
                },  # fmt: skip
                "command": [sys.executable, "toy.py"],
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "run", "study.yaml")[0] == 0
    study = load_study("toy", f"sqlite:///{tmp_path / 'toy.db'}")
    number = max(study.trials, key=lambda t: len(replay_schedule(study, t.number))).number
    assert len(replay_schedule(study, number)) > 1
    replay_file = tmp_path / "replays" / "replay.yaml"  # another folder: storage made absolute
    replay_file.parent.mkdir()
    argv = ["pbt-replay", "study.yaml", str(number), "--format", "yaml", "--out"]
    assert run(capsys, *argv, str(replay_file))[0] == 0
    written = yaml.safe_load(replay_file.read_text())
    assert written["study"] == f"toy-replay-{number}"
    assert written["scheduler"]["name"] == "pbt_replay"
    assert written["storage"] == f"sqlite:///{tmp_path / 'toy.db'}"
    assert run(capsys, "validate", str(replay_file))[0] == 0
    code, _, err = run(capsys, "run", str(replay_file))
    assert code == 0, err
    (again,) = load_study(f"toy-replay-{number}", written["storage"]).trials
    assert again.state is tf.TrialState.COMPLETE
    assert again.value == pytest.approx(study.trials[number].value, abs=1e-9)


@pytest.mark.parametrize(
    ("study", "number", "message"),
    [
        ("pop", "9", "has no trial 9"),
        ("plain", "0", "not a member of a PBT or PB2 population"),
        ("nope", "0", "no study named 'nope'"),
    ],
)
def test_errors_are_one_line(capsys, url, study, number, message):
    code, out, err = run(capsys, "pbt-replay", study, number, "--storage", url)
    assert code == 2 and out == ""
    assert err.startswith("tuningfork: error:") and message in err and err.count("\n") == 1


def test_a_running_member_has_no_model_to_replay(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 'pbt.db'}"
    study = tf.create_study("pop", url, direction="maximize", scheduler=tf.PBT(2, 4, 12))
    trial = study.ask()
    trial.suggest_float("h0", 0.0, 1.0)
    code, _, err = run(capsys, "pbt-replay", "pop", "0", "--storage", url)
    assert code == 2 and "is RUNNING" in err
    code, _, err = run(capsys, "pbt-replay", "pop", "0", "--storage", url, "--json",
                       "--format", "yaml")  # fmt: skip
    assert code == 2 and "two formats" in err
