"""`tuningfork run | validate | init` on real study files and real commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

import tuningfork as tf
from tuningfork.cli import main
from tuningfork.config import EXAMPLE_STUDY_FILE
from tuningfork.trial import TrialState

# A program that reports a value per step through tuningfork.client and checkpoints its
# step, so that a paused run goes on where it stopped.
STEPPER = textwrap.dedent(
    """
    import json, os, sys, time
    from tuningfork import client

    x = float(sys.argv[1])
    delay = float(sys.argv[2])
    state = os.path.join(client.checkpoint_dir(), "state.json")
    start = 0
    if client.resumed():
        with open(state) as f:
            start = json.load(f)["step"] + 1
        print("resumed from", start - 1, file=sys.stderr)
    stop = False

    def save(step):
        with open(state, "w") as f:
            json.dump({"step": step}, f)

    client.on_terminate(lambda: None)  # exit 0 on SIGTERM, the checkpoint is saved per step
    for step in range(start, 6):
        time.sleep(delay)
        save(step)
        if client.report(step=step, value=(x - 0.3) ** 2 + 1.0 / (step + 1)) != "continue":
            sys.exit(0)
    client.result(value=(x - 0.3) ** 2)
    """
)


def _study_file(tmp_path: Path, **overrides: object) -> Path:
    program = tmp_path / "stepper.py"
    program.write_text(STEPPER)
    doc: dict[str, object] = {
        "study": "cli",
        "storage": "sqlite:///cli.db",
        "seed": 0,
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "sampler": "random",
        "command": [sys.executable, str(program), "{x}", "0.01"],
        "limits": {"n_trials": 4, "trial_timeout": 60, "grace_period": 5},
        "resources": {"workers": 2},
    }
    doc.update(overrides)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _trials(path: Path) -> list[tf.FrozenTrial]:
    return tf.load_study("cli", f"sqlite:///{path.parent / 'cli.db'}").trials


def test_init_writes_a_valid_file_that_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    text = (tmp_path / "study.yaml").read_text()
    assert text == EXAMPLE_STUDY_FILE
    assert main(["init"]) == 2  # no silent overwrite
    assert "--force" in capsys.readouterr().err
    assert main(["validate", "study.yaml"]) == 0
    assert "study.yaml: valid" in capsys.readouterr().out
    doc = yaml.safe_load(text)
    doc["command"][0] = sys.executable
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(doc))
    assert main(["run", "study.yaml", "--n-trials", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count(" COMPLETE ") == 3
    assert "best: trial" in out
    study = tf.load_study(doc["study"], f"sqlite:///{tmp_path / 'tuningfork.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    assert study.user_attrs["study_file"]["text"].startswith("command:")  # the file, recorded


def test_run_reports_progress_and_refuses_to_mix_studies(tmp_path, capsys):
    path = _study_file(tmp_path)
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in lines] == ["[1", "[2", "[3", "[4"]
    assert all("| trials " in line and "/4 |" in line for line in lines)
    trials = _trials(path)
    assert len(trials) == 4 and all(t.state is TrialState.COMPLETE for t in trials)
    assert all(sorted(t.intermediate_values) == list(range(6)) for t in trials)
    # the same file again: an error naming --resume; nothing runs
    assert main(["run", str(path)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert len(_trials(path)) == 4
    # --resume with the target reached: nothing to do; a larger target runs the difference
    assert main(["run", str(path), "--resume"]) == 0
    assert "already has 4 trials; done" in capsys.readouterr().out
    assert main(["run", str(path), "--resume", "--n-trials", "6", "--workers", "1"]) == 0
    assert len(_trials(path)) == 6


def test_a_failing_command_fails_its_trial_shows_its_log_and_the_study_goes_on(tmp_path, capsys):
    program = tmp_path / "flaky.py"
    program.write_text(
        textwrap.dedent(
            """
            import json, sys
            x = float(sys.argv[1])
            if x > 0.5:
                print("diverged: loss is nan at step 3", file=sys.stderr)
                sys.exit(3)
            print(json.dumps({"value": x}))
            """
        )
    )
    path = _study_file(
        tmp_path,
        command=[sys.executable, str(program), "{x}"],
        limits={"n_trials": 8},
        resources={"workers": 1},
    )
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    trials = _trials(path)
    failed = [t for t in trials if t.state is TrialState.FAIL]
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(trials) == 8 and failed and complete
    assert all(t.params["x"] > 0.5 for t in failed)
    assert all("exit code 3" in t.reason and "diverged" in t.reason for t in failed)
    assert out.count("diverged: loss is nan at step 3") == len(failed)  # the log's tail
    log = Path(failed[0].user_attrs["stderr_log"])
    assert "diverged" in log.read_text()


@pytest.mark.filterwarnings("ignore:max_trials=1 is below")
def test_run_prints_the_rung_budgets_it_will_use(tmp_path, capsys):
    scheduler = {"name": "asha", "min_budget": 1, "max_budget": 4.0, "eta": 2,
                 "mode": "promotion", "rungs": "up"}  # fmt: skip
    path = _study_file(tmp_path, scheduler=scheduler, limits={"n_trials": 1})
    assert main(["run", str(path), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "tuningfork: ASHA rungs (steps): 1, 2, 4 (counting up from min_budget=1 by eta=2," in out
    study = tf.load_study("cli", f"sqlite:///{tmp_path / 'cli.db'}")
    assert study.scheduler.describe()["rungs"] == "up"


def test_a_capped_promotion_run_trains_its_best_trial_to_max_budget(tmp_path, capsys):
    """Issue 13, item 5: with 3 trials, ASHA's rule (eta 2) takes one to budget 2 and none
    to 4; at the cap the best paused trial of the highest rung is promoted to the end."""
    scheduler = {"name": "asha", "min_budget": 1, "max_budget": 4, "eta": 2, "mode": "promotion"}
    path = _study_file(tmp_path, scheduler=scheduler, limits={"n_trials": 3})
    assert main(["run", str(path)]) == 0
    captured = capsys.readouterr()
    assert "tuningfork: warning: max_trials=3 is below the 4 trials" in captured.err
    trials = _trials(path)
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(trials) == 3 and len(complete) == 1
    assert complete[0].last_step == 5 and complete[0].system_attrs["promoted_at_cap"]
    assert "best: trial" in captured.out


def test_validate_reports_every_problem_with_file_and_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            study: bad
            space:
              x: {type: float, low: 0, high: 1}
            sampler: tpee
            command: [python, run.py, "{y}"]
            limits: {n_trial: 3}
            """
        )
    )
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:4: sampler" in err and "'tpe'" in err
    assert "bad.yaml:5: command[2]: unknown placeholder 'y'" in err
    assert "bad.yaml:6:" in err and "did you mean 'n_trials'" in err
    assert main(["run", str(path)]) == 2  # nothing runs
    assert not (tmp_path / "tuningfork.db").exists()


def test_slurm_without_a_slurm_section_is_an_error(tmp_path, capsys):
    path = _study_file(tmp_path)
    assert main(["run", str(path), "--slurm"]) == 2
    assert "resources.slurm" in capsys.readouterr().err


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.slow
def test_ctrl_c_pauses_running_trials_and_resume_continues_them(tmp_path):
    path = _study_file(
        tmp_path,
        command=[sys.executable, str(tmp_path / "stepper.py"), "{x}", "0.4"],
        limits={"n_trials": 2, "grace_period": 10},
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "tuningfork.cli", "run", str(path)]
    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = tmp_path / "cli.db"

    def both_reported() -> bool:
        if not db.exists():
            return False
        try:
            trials = _trials(path)
        except tf.TuningforkError:
            return False
        return len(trials) == 2 and all(t.intermediate_values for t in trials)

    try:
        _wait_for(both_reported, 60, "both trials to report a step")
        run.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 130, err.decode()
    assert b"--resume" in out
    paused = _trials(path)
    assert [t.state for t in paused] == [TrialState.PAUSED] * 2
    assert all(t.reason == "preempted" for t in paused)
    steps = {t.number: max(t.intermediate_values) for t in paused}
    assert all(step < 5 for step in steps.values())
    # --resume: both go on from their checkpoints and complete; no new trial is needed
    done = subprocess.run(
        [*command, "--resume"], env=env, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    trials = _trials(path)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for trial in trials:
        assert sorted(trial.intermediate_values) == list(range(6))  # no step lost or redone
        log = Path(trial.user_attrs["stderr_log"]).read_text()
        assert f"resumed from {steps[trial.number]}" in log
        artifact_dir = Path(trial.user_attrs["stderr_log"]).parents[2]  # .../logs/trial_<n>/
        state = json.loads((artifact_dir / f"trial_{trial.number}" / "state.json").read_text())
        assert state == {"step": 5}


def test_no_secret_of_a_study_file_reaches_storage_export_or_dashboard(tmp_path, capsys):
    path = _study_file(
        tmp_path,
        env={"WANDB_API_KEY": "s3cret-token", "OMP_NUM_THREADS": 1},
        command=[
            sys.executable,
            str(tmp_path / "stepper.py"),
            "{x}",
            "0.0",
            "--db",
            "postgresql://me:hunter2@db.example:5432/hpo",
        ],
        limits={"n_trials": 2},
        resources={"workers": 1},
    )
    secrets = ("s3cret-token", "hunter2")
    assert main(["run", str(path)]) == 0
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    study = tf.load_study("cli", url)
    recorded = study.user_attrs["study_file"]["text"]
    assert "WANDB_API_KEY" in recorded and "postgresql://me:***@db.example" in recorded
    assert study.trials[0].user_attrs["command"][-1] == "postgresql://me:***@db.example:5432/hpo"
    # the storage's every byte, the JSON export and the dashboard's API
    stored = b"".join(file.read_bytes() for file in tmp_path.glob("cli.db*"))  # and its WAL
    capsys.readouterr()
    assert main(["export", "cli", "--storage", url, "--format", "json"]) == 0
    exported = capsys.readouterr().out
    from tuningfork.dashboard.data import DashboardData

    data = DashboardData(url)
    served = json.dumps([data.study_detail("cli"), data.trial_detail("cli", 0)])
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret not in exported and secret not in served
    assert "WANDB_API_KEY" in served
