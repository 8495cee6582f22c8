"""Workers launched as one SLURM job array through submitit (`tuningfork.execution.slurm`).

The SLURM tests need a reachable cluster (``sinfo`` answers) whose default partition can run
two 1-CPU jobs at once, with accounting (``sacct``): ``bash .ci/slurm-up.sh`` starts one on
this machine (two fake nodes), and `.ci/run` does. Without one they are skipped, but where
``CI``, ``TUNINGFORK_REQUIRE_SERVERS`` or ``TUNINGFORK_TEST_SLURM`` is set they fail instead.
The study lives in SQLite in ``tmp_path``, which every "node" shares here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import tuningfork as tf
from tuningfork.exceptions import MissingExtra
from tuningfork.execution import WorkerOptions
from tuningfork.trial import TrialState

REQUIRED = bool(
    os.environ.get("CI")
    or os.environ.get("TUNINGFORK_REQUIRE_SERVERS")
    or os.environ.get("TUNINGFORK_TEST_SLURM")
)

OBJECTIVES = textwrap.dedent(
    """
    import json, time
    import tuningfork as tf

    def quick(trial):
        x = trial.suggest_float("x", -1, 1)
        time.sleep(0.15)
        return x * x

    def hangs_first(trial):
        x = trial.suggest_float("x", -1, 1)
        if trial.number == 0:  # the original, not its retry
            trial.report(x, 0)
            time.sleep(120)
        time.sleep(0.15)
        return x * x

    def checkpointed(trial):
        x = trial.suggest_float("x", 0, 1)
        state = trial.checkpoint_dir / "state.json"
        start = 0
        if trial.resumed:
            start = json.loads(state.read_text())["step"] + 1
            trial.set_user_attr("loaded_step", start - 1)
        for step in range(start, 20):
            time.sleep(0.1)
            trial.report(x + step, step)
            state.write_text(json.dumps({"step": step}))
            if trial.should_stop():
                trial.set_user_attr("preempted_at", step)
                raise tf.TrialPruned()
        return x
    """
)


def _slurm_problem() -> str | None:
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "submitit is not installed: pip install 'tuningfork[slurm]'"
    try:  # scontrol ping answers at once when slurmctld is down (sinfo retries for 9 s)
        ping = subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True, timeout=20, check=False
        )
        if ping.returncode != 0:
            return (
                f"SLURM is not reachable (scontrol ping: {ping.stdout.splitlines()[:1]}); "
                "start it with `bash .ci/slurm-up.sh`"
            )
        done = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError) as error:
        return f"SLURM is not reachable ({error}); start it with `bash .ci/slurm-up.sh`"
    if done.returncode != 0:
        return (
            f"SLURM is not reachable (sinfo: {done.stderr.strip() or done.returncode}); "
            "start it with `bash .ci/slurm-up.sh`"
        )
    if not any(state.startswith(("idle", "mix", "alloc")) for state in done.stdout.split()):
        return f"SLURM has no node up (sinfo: {done.stdout.split()})"
    return None


@pytest.fixture(scope="module")
def slurm() -> None:
    problem = _slurm_problem()
    if problem is None:
        return
    if REQUIRED:
        pytest.fail(f"{problem}; CI/TUNINGFORK_REQUIRE_SERVERS is set, so this fails", False)
    pytest.skip(problem)


@pytest.fixture
def objectives(tmp_path):
    path = tmp_path / "objectives.py"
    path.write_text(OBJECTIVES)
    return path


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# -- without SLURM ----------------------------------------------------------------------------


def test_missing_submitit_names_the_extra(monkeypatch, tmp_path):
    from tuningfork.execution import slurm as slurm_module

    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    with pytest.raises(MissingExtra, match=r"pip install 'tuningfork\[slurm\]'"):
        slurm_module.launch_slurm("s", "sqlite://", "m:f", n_workers=1, log_dir=tmp_path)


def test_worker_callable_counts_its_runs_and_checkpoints_itself(objectives, tmp_path):
    pytest.importorskip("submitit")
    from tuningfork.execution.slurm import SlurmWorker

    url = f"sqlite:///{tmp_path / 'local.db'}"
    tf.create_study("s", storage=url)
    worker = SlurmWorker("s", url, f"{objectives}:quick", WorkerOptions(n_trials=3, timeout=60))
    assert worker() == 0
    assert worker.runs_done == 3 and 0 < worker.seconds_used < 60
    assert worker() == 0  # a requeued worker with no runs left does nothing
    assert len(tf.load_study("s", storage=url).trials) == 3
    delayed = worker.checkpoint()  # submitit requeues this (the same worker, state and all)
    assert delayed.function is worker
    assert SlurmWorker("s", url, "m:f", requeue=False).checkpoint() is None
    with pytest.raises(tf.TuningforkError, match="code 2"):
        SlurmWorker("s", url, f"{objectives}:missing")()


def test_worker_callable_runs_a_study_files_command_with_its_space(tmp_path):
    pytest.importorskip("submitit")
    from tuningfork.execution.slurm import SlurmWorker

    (tmp_path / "study.yaml").write_text(
        "study: s\nstorage: sqlite:///local.db\nspace: {x: {type: int, low: 1, high: 9}}\n"
        f"command: [{sys.executable}, -c, 'import sys; print(dict(value=int(sys.argv[1])))'"
        ', "{x}"]\nresult: {from: regex, pattern: "(\\\\d+)"}\n'
    )
    url = f"sqlite:///{tmp_path / 'local.db'}"
    tf.create_study("s", storage=url)
    assert SlurmWorker("s", url, str(tmp_path / "study.yaml"), WorkerOptions(n_trials=2))() == 0
    trials = tf.load_study("s", storage=url).trials
    assert [t.value for t in trials] == [float(t.params["x"]) for t in trials]
    assert len(trials) == 2


# -- with SLURM -------------------------------------------------------------------------------


@pytest.mark.slow
def test_job_array_of_four_workers_runs_the_study(slurm, objectives, tmp_path):
    from tuningfork.execution.slurm import launch_slurm, wait_slurm

    url = f"sqlite:///{tmp_path / 'array.db'}"
    tf.create_study("s", storage=url, seed=3)
    ids = launch_slurm(
        "s",
        url,
        f"{objectives}:quick",
        n_workers=4,
        options=WorkerOptions(n_trials=3),
        time_limit_min=5,
        log_dir=tmp_path / "logs" / "%j",
    )
    array = ids[0].split("_")[0]
    assert ids == [f"{array}_{i}" for i in range(4)]
    assert set(wait_slurm(ids, timeout=90).values()) == {"COMPLETED"}
    study = tf.load_study("s", storage=url)
    trials = study.trials
    assert len(trials) == 12
    assert all(t.state is TrialState.COMPLETE for t in trials)
    tasks = set()
    for trial in trials:
        record = study.workers[trial.worker]["slurm"]
        assert record["array_job_id"] == array
        assert record["job_id"] and record["job_nodelist"] in ("n1", "n2")
        tasks.add(record["array_task_id"])
    assert tasks <= {"0", "1", "2", "3"} and len(tasks) >= 2


@pytest.mark.slow
def test_scancelled_worker_trial_is_reaped_and_retried_by_another(slurm, objectives, tmp_path):
    from tuningfork.execution.slurm import launch_slurm, wait_slurm

    url = f"sqlite:///{tmp_path / 'kill.db'}"
    tf.create_study("s", storage=url, seed=4, max_retries=1)
    ids = launch_slurm(
        "s",
        url,
        f"{objectives}:hangs_first",
        n_workers=2,
        # the survivor asks for trials for 10 s
        options=WorkerOptions(timeout=10, heartbeat_interval=0.1, grace_period=0.5),
        time_limit_min=5,
        log_dir=tmp_path / "logs" / "%j",
        quiet=True,
    )
    study = tf.load_study("s", storage=url)

    def hanging_trial():
        trials = study.trials
        return trials and trials[0].state is TrialState.RUNNING and trials[0].worker

    worker = _wait_for(hanging_trial, 60, "trial 0 to start")
    slurm_ids = study.workers[worker]["slurm"]
    victim = f"{slurm_ids['array_job_id']}_{slurm_ids['array_task_id']}"
    # SIGTERM, which the trial (asleep, never reporting) ignores, then SIGKILL after
    # KillWait (5 s): its heartbeats stop and the survivor reaps it after the grace period
    subprocess.run(["scancel", victim], check=True, timeout=30)
    states = wait_slurm(ids, timeout=90)
    assert states[victim] == "CANCELLED", states
    assert all(state == "COMPLETED" for job, state in states.items() if job != victim), states
    trials = tf.load_study("s", storage=url).trials
    assert not [t.number for t in trials if t.state is TrialState.RUNNING]
    dead = trials[0]
    assert dead.state is TrialState.FAIL and dead.reason.startswith("stale"), dead.reason
    retry = trials[dead.system_attrs["retried_by"]]
    assert retry.system_attrs["retry_of"] == 0
    assert retry.state is TrialState.COMPLETE and retry.params == dead.params
    assert retry.worker != dead.worker
    assert all(t.state is TrialState.COMPLETE for t in trials[1:])


@pytest.mark.slow
def test_signal_before_time_limit_pauses_requeues_and_resumes(slurm, objectives, tmp_path):
    from tuningfork.execution.slurm import launch_slurm, wait_slurm

    url = f"sqlite:///{tmp_path / 'requeue.db'}"
    tf.create_study("s", storage=url, seed=5)
    (job,) = launch_slurm(
        "s",
        url,
        f"{objectives}:checkpointed",
        n_workers=1,
        options=WorkerOptions(n_trials=1),
        time_limit_min=5,
        log_dir=tmp_path / "logs" / "%j",
        quiet=True,
    )
    study = tf.load_study("s", storage=url)
    _wait_for(lambda: study.trials and len(study.trials[0].intermediate_values) >= 3, 60, "steps")
    # what SLURM sends signal_before_s seconds before the time limit (--signal=USR2@60)
    subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)
    # the requeued job waits SLURM's cred_expire (slurm-up.sh: 10 s) before it starts again
    assert wait_slurm([job], timeout=120) == {job: "COMPLETED"}
    study = tf.load_study("s", storage=url)
    (trial,) = study.trials  # one trial, paused and resumed
    assert trial.state is TrialState.COMPLETE
    assert trial.user_attrs["loaded_step"] == trial.user_attrs["preempted_at"]
    assert sorted(trial.intermediate_values) == list(range(20))
    restarts = {(w["slurm"] or {}).get("restart_count") for w in study.workers.values()}
    assert "1" in restarts  # the requeued run of the same job


@pytest.mark.slow
def test_cli_launch_submits_an_array_and_waits(slurm, objectives, tmp_path, capsys):
    from tuningfork.cli import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    tf.create_study("c", storage=url, seed=1)
    code = main(["launch", "--slurm", "c", "--storage", url, "--objective",
                 f"{objectives}:quick", "--n-workers", "2", "--n-trials", "2",
                 "--time-limit-min", "5",
                 "--log-dir", str(tmp_path / "logs" / "%j"), "--wait", "--json"])  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["job_ids"]) == 2 and set(doc["states"].values()) == {"COMPLETED"}
    assert len(tf.load_study("c", storage=url).get_trials(["COMPLETE"])) == 4
    assert main(["launch", "--slurm", "missing", "--storage", url, "--objective",
                 f"{objectives}:quick", "--n-workers", "1"]) == 2  # fmt: skip


@pytest.mark.slow
def test_cli_run_submits_a_study_files_command_to_slurm(slurm, tmp_path, capsys):
    """`tuningfork run STUDY.yaml --slurm --wait`: SLURM workers import the study file and
    run its command for each trial."""
    import yaml

    from tuningfork.cli import main

    program = tmp_path / "square.py"
    program.write_text("import json, sys\nprint(json.dumps({'loss': float(sys.argv[1]) ** 2}))\n")
    path = tmp_path / "study.yaml"
    doc = {
        "study": "file",
        "storage": "sqlite:///file.db",
        "metric": "loss",
        "space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
        "sampler": "random",
        "command": [sys.executable, str(program), "{x}"],
        "limits": {"n_trials": 4, "trial_timeout": 60},
        "resources": {
            "workers": 2,
            "slurm": {"time_limit_min": 5, "log_dir": str(tmp_path / "logs" / "%j")},
        },
    }
    path.write_text(yaml.safe_dump(doc))
    assert main(["run", str(path), "--slurm", "--wait"]) == 0
    out = capsys.readouterr().out
    assert "submitted 2 SLURM worker(s)" in out
    study = tf.load_study("file", storage=f"sqlite:///{tmp_path / 'file.db'}")
    trials = study.trials
    assert len(trials) == 4 and all(t.state is TrialState.COMPLETE for t in trials)
    assert all(t.value == pytest.approx(t.params["x"] ** 2) for t in trials)
    assert all(study.workers[t.worker]["slurm"]["job_id"] for t in trials)
    assert all(Path(t.user_attrs["stdout_log"]).is_file() for t in trials)


@pytest.mark.slow
def test_dask_executor_on_a_dask_jobqueue_slurm_cluster(slurm, tmp_path):
    """The Dask executor on `dask_jobqueue.SLURMCluster`: two SLURM jobs are the Dask
    workers, the trials coordinate through a SQLite file on the shared disk."""
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    from dask.distributed import Client

    from tuningfork.execution.dask import DaskExecutor

    def square(trial: tf.Trial) -> float:  # nested: shipped by value, not by module name
        x = trial.suggest_float("x", -1, 1)
        time.sleep(0.05)
        return x * x

    cluster = dask_jobqueue.SLURMCluster(
        queue="debug", cores=1, processes=1, memory="1GB", walltime="00:10:00",
        scheduler_options={"host": "127.0.0.1", "dashboard_address": None},
        log_directory=str(tmp_path / "dask-logs"),
    )  # fmt: skip
    try:
        client = Client(cluster)
        cluster.scale(jobs=2)
        client.wait_for_workers(2, timeout=120)
        addresses = set(client.scheduler_info()["workers"])
        url = f"sqlite:///{tmp_path / 'dask.db'}"
        study = tf.create_study("d", storage=url, seed=0)
        study.optimize(square, n_trials=10, executor=DaskExecutor(client))
        trials = tf.load_study("d", storage=url).trials
        assert len(trials) == 10 and all(t.state is TrialState.COMPLETE for t in trials)
        used = {t.system_attrs["dask_worker"] for t in trials}
        assert used <= addresses and len(used) == 2
        client.close()
    finally:
        cluster.close()
