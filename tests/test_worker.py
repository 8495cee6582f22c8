"""The worker loop: objectives by reference, several worker processes on one study, a
worker killed mid-trial (stale reaping and a linked retry), and SIGTERM preemption."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import tuningfork as tf
from tuningfork.exceptions import TuningforkError
from tuningfork.execution import WorkerOptions
from tuningfork.execution.worker import load_objective, run_worker
from tuningfork.trial import TrialState

OBJECTIVES = textwrap.dedent(
    """
    import json, os, signal, time
    import tuningfork as tf

    def quick(trial):
        x = trial.suggest_float("x", -1, 1)
        time.sleep(0.05)
        return x * x

    def killer(trial):
        x = trial.suggest_float("x", -1, 1)
        trial.report(x, 0)
        print("started", trial.number, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    def checkpointed(trial):
        x = trial.suggest_float("x", 0, 1)
        state = trial.checkpoint_dir / "state.json"
        start = 0
        if trial.resumed:
            start = json.loads(state.read_text())["step"] + 1
            trial.set_user_attr("loaded_step", start - 1)
            assert start == trial.last_step + 1
        for step in range(start, 30):
            time.sleep(0.05)
            trial.report(x + step, step)
            state.write_text(json.dumps({"step": step}))
            print("step", step, flush=True)
            if trial.should_stop():
                trial.set_user_attr("preempted_at", step)
                raise tf.TrialPruned()
        return x
    """
)


@pytest.fixture
def objectives(tmp_path):
    (tmp_path / "objectives.py").write_text(OBJECTIVES)
    return tmp_path / "objectives.py"


def _worker(url, ref, n_trials, env=None, **options) -> subprocess.Popen:
    fields = ", ".join(
        f"{key}={value!r}" for key, value in {"n_trials": n_trials, **options}.items()
    )
    call = f"{'w'!r}, {url!r}, {ref!r}, WorkerOptions({fields})"
    script = (
        "from tuningfork.execution import WorkerOptions, run_worker\n"
        f"raise SystemExit(run_worker({call}))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_load_objective_by_module_or_file(objectives, tmp_path):
    assert load_objective(f"{objectives}:quick").__name__ == "quick"
    assert load_objective("objectives:checkpointed").__name__ == "checkpointed"  # from cwd
    assert load_objective("tuningfork.study:Study.best_trial.fget") is not None  # dotted
    for bad in ("objectives", "objectives:missing", f"{tmp_path}/nope.py:f", ":f"):
        with pytest.raises(TuningforkError):
            load_objective(bad)


def test_run_worker_exit_codes(objectives, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'codes.db'}"
    one = WorkerOptions(n_trials=1)
    assert run_worker("w", url, "objectives:quick", one) == 2  # no such study
    assert "cannot load study" in capsys.readouterr().err
    tf.create_study("w", storage=url)
    assert run_worker("w", url, "objectives:nope", one) == 2
    assert run_worker("w", url, "objectives:quick", WorkerOptions(n_trials=2)) == 0

    def broken(trial):
        raise RuntimeError("boom")

    assert run_worker("w", url, broken, WorkerOptions(n_trials=1, catch=())) == 1
    assert [t.state for t in tf.load_study("w", storage=url).trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.FAIL,
    ]


@pytest.mark.slow
def test_three_workers_run_exactly_their_trials(objectives, tmp_path):
    url = f"sqlite:///{tmp_path / 'three.db'}"
    tf.create_study("w", storage=url, seed=1)
    procs = [
        _worker(url, f"{objectives}:quick", 4, env={"SLURM_JOB_ID": f"77{i}"}) for i in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    study = tf.load_study("w", storage=url)
    trials = study.trials
    assert [t.number for t in trials] == list(range(12))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    workers = {t.worker for t in trials}
    assert len(workers) == 3
    assert {study.workers[w]["slurm"]["job_id"] for w in workers} == {"770", "771", "772"}


@pytest.mark.slow
def test_worker_killed_mid_trial_is_reaped_and_its_retry_completes(objectives, tmp_path):
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    tf.create_study("w", storage=url, max_retries=1)
    victim = _worker(url, f"{objectives}:killer", 1)
    assert victim.stdout.readline().split() == ["started", "0"]
    options = {"heartbeat_interval": 0.1, "grace_period": 0.5}
    survivors = [_worker(url, "objectives:quick", 8, **options) for _ in range(2)]
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    for proc in survivors:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    trials = tf.load_study("w", storage=url).trials
    assert len(trials) == 1 + 2 * 8  # the retry is one of the survivors' runs
    dead = trials[0]
    assert dead.state is TrialState.FAIL and dead.reason.startswith("stale")
    retry = trials[dead.system_attrs["retried_by"]]
    assert retry.system_attrs["retry_of"] == 0 and retry.system_attrs["retry_count"] == 1
    assert retry.state is TrialState.COMPLETE and retry.params == dead.params
    assert [t.number for t in trials if "retry_of" in t.system_attrs] == [retry.number]
    assert all(t.state is TrialState.COMPLETE for t in trials[1:])


@pytest.mark.slow
def test_sigterm_pauses_the_trial_and_the_next_worker_resumes_it(objectives, tmp_path):
    url = f"sqlite:///{tmp_path / 'term.db'}"
    tf.create_study("w", storage=url)
    proc = _worker(url, f"{objectives}:checkpointed", 3)
    for line in proc.stdout:
        if line.split() == ["step", "3"]:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped by signal" in err
    (paused,) = tf.load_study("w", storage=url).trials  # no other trial started
    assert paused.state is TrialState.PAUSED and paused.reason == "preempted"
    stop = paused.user_attrs["preempted_at"]
    assert sorted(paused.intermediate_values) == list(range(stop + 1))

    start = time.monotonic()
    assert run_worker("w", url, f"{objectives}:checkpointed", WorkerOptions(n_trials=1)) == 0
    assert time.monotonic() - start < 30
    (trial,) = tf.load_study("w", storage=url).trials
    assert trial.state is TrialState.COMPLETE
    assert trial.user_attrs["loaded_step"] == stop  # read its checkpoint
    assert sorted(trial.intermediate_values) == list(range(30))  # contiguous
    assert trial.value == paused.params["x"]


STUDY_FILE = textwrap.dedent(
    """
    study: w
    storage: sqlite:///w.db
    seed: 0
    space:
      x: {type: float, low: -2.0, high: 2.0}
      kind: [a, b]
    command:
      - PYTHON
      - -c
      - |
        import json, sys
        x, kind = float(sys.argv[1]), sys.argv[2]
        if x > FAIL_ABOVE:
            sys.exit("diverged")
        print(json.dumps(dict(value=x * x + (kind == "b"))))
      - "{x}"
      - "{kind}"
    """
)


def _study_file(tmp_path, fail_above: float) -> str:
    text = STUDY_FILE.replace("PYTHON", sys.executable).replace("FAIL_ABOVE", str(fail_above))
    (tmp_path / "study.yaml").write_text(text)
    tf.create_study("w", storage=f"sqlite:///{tmp_path / 'w.db'}", seed=0)
    return str(tmp_path / "study.yaml")


def _cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tuningfork.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_worker_runs_a_study_files_command_with_its_parameters(tmp_path):
    path = _study_file(tmp_path, fail_above=10.0)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    done = _cli("worker", "w", "--storage", url, "--objective", path, "--n-trials", "4")
    assert done.returncode == 0, done.stderr
    trials = tf.load_study("w", url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    for trial in trials:
        assert set(trial.params) == {"x", "kind"}
        assert trial.value == pytest.approx(trial.params["x"] ** 2 + (trial.params["kind"] == "b"))
    # stderr is not a terminal: one line per finished trial, then a summary
    lines = [line for line in done.stderr.splitlines() if line.startswith("trial ")]
    assert len(lines) == 4
    assert lines[0].startswith("trial 0 COMPLETE value=") and "run 1/4" in lines[0]
    assert "best value=" in lines[-1]
    assert "ran 4 trial run(s): 4 COMPLETE" in done.stderr


@pytest.mark.slow
def test_a_worker_whose_every_trial_failed_exits_non_zero_with_a_summary(tmp_path):
    path = _study_file(tmp_path, fail_above=-10.0)  # every x diverges
    url = f"sqlite:///{tmp_path / 'w.db'}"
    done = _cli("worker", "w", "--storage", url, "--objective", path, "--n-trials", "3")
    assert done.returncode == 3, done.stderr
    assert "ran 3 trial run(s): 3 FAIL" in done.stderr
    assert "every trial of this worker failed; the first: trial 0: CommandFailed" in done.stderr
    assert [t.state for t in tf.load_study("w", url).trials] == [TrialState.FAIL] * 3


def test_optimize_prints_a_line_per_trial_when_stderr_is_not_a_terminal(capsys):
    study = tf.create_study(storage="memory", seed=0)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("  |")[0].rsplit(" ", 1)[0] for line in lines] == [
        "trial 0 COMPLETE",
        "trial 1 COMPLETE",
        "trial 2 COMPLETE",
    ]
    best = study.best_trial
    assert f"best value={best.value:.6g} (trial {best.number})" in lines[-1]
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1, show_progress_bar=False)
    assert capsys.readouterr().err == ""
