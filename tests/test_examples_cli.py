"""The study-file examples (examples/torch_cli, examples/solver) run end to end through the
``tuningfork`` command line, as users run them: each in a copy of its directory (so no
database lands in the repository), with ``python`` in its command replaced by this
interpreter."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import tuningfork
from tuningfork import TrialState

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 120


def copy_example(name: str, tmp_path: Path) -> Path:
    """Copy examples/<name> into tmp_path and point its command at this interpreter."""
    where = tmp_path / name
    shutil.copytree(EXAMPLES / name, where, ignore=shutil.ignore_patterns("*.db", "__pycache__"))
    path = where / "study.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert config["command"][0] == "python", config["command"]
    config["command"][0] = sys.executable
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return where


def tuningfork_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuningfork.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def output_of(completed: subprocess.CompletedProcess[str]) -> str:
    out, err = completed.stdout, completed.stderr
    return f"exit {completed.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"


@pytest.mark.parametrize("name", ["torch_cli", "solver"])
def test_the_study_files_are_valid(name):
    completed = tuningfork_cli("validate", str(EXAMPLES / name / "study.yaml"), cwd=ROOT)
    assert completed.returncode == 0, output_of(completed)
    assert "valid" in completed.stdout


# -- the solver: no ML, the result read with a regular expression -------------------------


@pytest.mark.slow
def test_solver_finds_the_theoretical_omega(tmp_path):
    pytest.importorskip("numpy")
    where = copy_example("solver", tmp_path)
    command = yaml.safe_load((where / "study.yaml").read_text())["command"]
    n = int(command[command.index("--n") + 1])

    completed = tuningfork_cli("run", "study.yaml", "--n-trials", "16", cwd=where)

    assert completed.returncode == 0, output_of(completed)
    assert (where / "solver.db").is_file()  # the relative storage lands beside the file
    study = tuningfork.load_study("sor-omega", f"sqlite:///{where / 'solver.db'}")
    trials = study.get_trials()
    assert len(trials) == 16
    assert all(t.state is TrialState.COMPLETE for t in trials), [
        (t.number, t.reason) for t in trials
    ]
    best = study.best_trial
    optimum = 2.0 / (1.0 + math.sin(math.pi / (n + 1)))  # 1.9078
    assert abs(best.params["omega"] - optimum) < 0.1, (best.params, optimum)

    # the regex read the count sor.py printed, and the best beats Gauss-Seidel by far
    log = Path(best.user_attrs["stdout_log"]).read_text()
    printed = re.findall(r"iterations=(\d+)", log)
    assert printed and int(printed[-1]) == best.value
    gauss_seidel = subprocess.run(
        [sys.executable, "sor.py", "--omega", "1.0", "--n", str(n), "--tol", "1e-6"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=True,
    )
    match = re.search(r"iterations=(\d+) .*converged=true", gauss_seidel.stdout)
    assert match is not None, gauss_seidel.stdout
    assert best.value * 10 < int(match.group(1)), (best.value, match.group(1))


def test_solver_cuts_a_bad_omega_off_at_the_cap(tmp_path):
    pytest.importorskip("numpy")
    where = copy_example("solver", tmp_path)
    completed = subprocess.run(
        [sys.executable, "sor.py", "--omega", "1.0", "--n", "64", "--max-iter", "50"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=True,
    )
    assert completed.stdout.startswith("iterations=50 ")
    assert "converged=false" in completed.stdout


# -- torch: ASHA pauses trials at rungs, Ctrl-C pauses running ones, --resume goes on ------


RUN_HEADER = "==> tuningfork: trial "  # the line each run of a trial starts its log with


def run_count(study: tuningfork.Study, number: int) -> int:
    log = study.trials[number].user_attrs.get("stdout_log")
    return Path(log).read_text().count(RUN_HEADER) if log else 0


def checkpoint(study: tuningfork.Study, number: int) -> dict:
    torch = pytest.importorskip("torch")
    path = study.artifact_dir / f"trial_{number}" / "checkpoint.pt"
    return torch.load(path, weights_only=True)


@pytest.mark.slow
def test_torch_example_pauses_and_resumes_across_runs(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    where = copy_example("torch_cli", tmp_path)
    url = f"sqlite:///{where / 'torch_cli.db'}"

    # 1. Run the study as a user would and press Ctrl-C after a few trial runs.
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuningfork.cli", "run", "study.yaml"],
        cwd=where,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        # after the 4th result both workers have just started a run: the signal finds
        # them mid-epoch (after the 3rd, the second worker may be at its rung already,
        # and a trial paused at its rung stays a rung pause, not a preemption)
        if line.startswith("[4]"):
            time.sleep(1.0)  # both workers are into their next run (an epoch takes seconds)
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=TIMEOUT_S)
    first_output = "".join(seen) + rest
    assert proc.returncode == 130, first_output
    assert "trial(s) paused" in first_output and "--resume" in first_output
    study = tuningfork.load_study("torch-cli", url)
    assert all(t.state is TrialState.PAUSED for t in study.trials), first_output
    interrupted = [t.number for t in study.trials if t.reason == "preempted"]
    assert interrupted, first_output
    runs_before = {n: run_count(study, n) for n in interrupted}

    # 2. Without --resume the study is not touched; with it, it goes on.
    refused = tuningfork_cli("run", "study.yaml", cwd=where)
    assert refused.returncode == 2 and "--resume" in refused.stderr, output_of(refused)
    completed = tuningfork_cli("run", "study.yaml", "--resume", "--n-trials", "12", cwd=where)
    assert completed.returncode == 0, output_of(completed)

    study = tuningfork.load_study("torch-cli", url)
    trials = study.get_trials()
    states = {t.number: (t.state.value, t.last_step, t.reason) for t in trials}
    assert all(t.state in (TrialState.COMPLETE, TrialState.PAUSED) for t in trials), states
    assert any(t.state is TrialState.PAUSED for t in trials), states
    # the interrupted trials were run again by the second `tuningfork run`
    for n in interrupted:
        log = Path(study.trials[n].user_attrs["stdout_log"]).read_text()
        assert log.count(RUN_HEADER) > runs_before.get(n, 0), (n, log)

    resumed_from_checkpoint = 0
    for t in trials:
        steps = sorted(t.intermediate_values)
        assert steps == list(range(1, steps[-1] + 1)), (t.number, steps)  # no gap, no repeat
        if t.state is TrialState.COMPLETE:
            assert steps[-1] == 9 and t.value == t.intermediate_values[9]
        elif t.number not in interrupted:
            assert steps[-1] in (1, 3), (t.number, steps)  # ASHA paused it at a rung
        # the checkpoint is where the reports end, and each run began after the last one
        state = checkpoint(study, t.number)
        assert state["epoch"] == t.last_step, (t.number, state["epoch"], t.last_step)
        runs = state["runs"]
        assert runs[0]["first"] == 1
        for before, after in zip(runs, runs[1:]):
            assert after["first"] == before["last"] + 1, (t.number, runs)
        assert runs[-1]["last"] == t.last_step
        log = Path(t.user_attrs["stdout_log"]).read_text()
        loads = re.findall(r"resumed from checkpoint\.pt at epoch (\d+)", log)
        assert [int(e) for e in loads] == [r["first"] - 1 for r in runs[1:]], (t.number, log)
        resumed_from_checkpoint += len(loads)
    assert resumed_from_checkpoint >= 1, states

    best = study.best_trial
    assert best.value > 0.85, (best.value, best.params)
    assert ("momentum" in best.params) == (best.params["optimizer"] == "sgd")


@pytest.mark.slow
def test_torch_script_runs_by_hand_and_checkpoints_on_sigterm(tmp_path):
    """Outside tuningfork: flags only; SIGTERM ends the epoch, saves it and exits 0."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    where = copy_example("torch_cli", tmp_path)
    args = ["--lr", "0.01", "--hidden", "32", "--optimizer", "sgd", "--momentum", "0.9"]
    proc = subprocess.Popen(
        [sys.executable, "train.py", *args, "--epochs", "100000", "--checkpoint-dir", "."],
        cwd=where,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    steps = []
    for line in proc.stdout:
        report = json.loads(line)["tuningfork"]
        steps.append(report["step"])
        if len(steps) == 3:
            proc.send_signal(signal.SIGTERM)
            break
    rest, errors = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, errors
    steps += [json.loads(line)["tuningfork"]["step"] for line in rest.splitlines()[:-1]]
    assert rest.splitlines()[-1].startswith("continue at epoch")  # the last line
    state = torch.load(where / "checkpoint.pt", weights_only=True)
    assert steps == list(range(1, state["epoch"] + 1))  # saved at the last reported epoch
    assert state["runs"][-1]["end"] == "sigterm"

    # --resume goes on from it, and a short run by hand prints its result
    resumed = subprocess.run(
        [sys.executable, "train.py", *args, "--epochs", str(state["epoch"] + 2), "--resume",
         "--checkpoint-dir", "."],
        cwd=where, capture_output=True, text=True, timeout=TIMEOUT_S, check=True,
    )  # fmt: skip
    lines = resumed.stdout.splitlines()
    assert lines[0] == f"resumed from checkpoint.pt at epoch {state['epoch']}"
    assert [json.loads(x)["tuningfork"]["step"] for x in lines[1:3]] == [
        state["epoch"] + 1,
        state["epoch"] + 2,
    ]
    assert 0.0 <= json.loads(lines[3])["val_acc"] <= 1.0


def test_torch_script_momentum_is_for_sgd_only(capsys):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location(
        "torch_cli_train", EXAMPLES / "torch_cli" / "train.py"
    )
    assert spec is not None and spec.loader is not None
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    assert train.parse_args(["--lr", "0.1", "--optimizer", "sgd"]).momentum == 0.9
    assert train.parse_args(["--lr", "0.1", "--optimizer", "adam"]).momentum is None
    with pytest.raises(SystemExit):
        train.parse_args(["--lr", "0.1", "--optimizer", "adam", "--momentum", "0.9"])
    assert "--momentum applies only to --optimizer sgd" in capsys.readouterr().err
