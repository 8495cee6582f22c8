"""DaskExecutor: a study's trials as Dask futures on a LocalCluster of two processes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

import tuningfork as tf  # noqa: E402
from tuningfork.exceptions import MissingExtra, TuningforkError  # noqa: E402
from tuningfork.execution.dask import DaskExecutor  # noqa: E402
from tuningfork.trial import TrialState  # noqa: E402

# the worker processes cannot import this test module: ship its functions by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    with distributed.Client(cluster) as dask_client:
        dask_client.wait_for_workers(2, timeout=60)
        yield dask_client
    cluster.close()


def new_study(tmp_path: Path, **kwargs) -> tf.Study:
    return tf.create_study(
        "dask", storage=f"sqlite:///{tmp_path / 'study.db'}", sampler=tf.RandomSampler(seed=0),
        **kwargs,
    )  # fmt: skip


def quadratic(trial: tf.Trial) -> float:
    x = trial.suggest_float("x", -1.0, 1.0)
    time.sleep(0.05)  # long enough for both workers to get tasks
    return x * x


def test_trials_run_on_several_dask_workers(client, tmp_path):
    study = new_study(tmp_path)
    seen = []
    study.optimize(
        quadratic,
        n_trials=12,
        executor=DaskExecutor(client),
        callbacks=[lambda s, t: seen.append((s is study, t.number, t.state))],
    )
    trials = study.trials
    assert len(trials) == 12
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == list(range(12))
    addresses = set(client.nthreads())
    used = [t.system_attrs["dask_worker"] for t in trials]
    assert set(used) <= addresses and len(set(used)) >= 2
    # callbacks ran here, with this study handle, once per trial
    assert sorted(n for _, n, _ in seen) == list(range(12))
    assert all(same and state is TrialState.COMPLETE for same, _, state in seen)


def asha_objective(trial: tf.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    runs = trial.user_attrs.get("runs", [])
    trial.set_user_attr("runs", [*runs, distributed.get_worker().address])
    for step in range((trial.last_step or 0) + 1, int(trial.budget) + 1):
        time.sleep(0.005)
        trial.report(x / step, step)
        if trial.should_stop():
            raise tf.TrialPruned()
    return x / trial.budget


def test_asha_promotion_pauses_and_resumes_across_dask_workers(client, tmp_path):
    study = new_study(tmp_path, scheduler=tf.ASHA(1, 9, 3, mode="promotion"))
    runs = []
    study.optimize(
        asha_objective, n_trials=24, executor=DaskExecutor(client),
        callbacks=[lambda s, t: runs.append(t.number)],
    )  # fmt: skip
    trials = study.trials
    assert len(runs) == 24  # a resumption is a run, not a new trial
    resumed = [t for t in trials if "resumed_at" in t.system_attrs]
    assert resumed, "no paused trial was promoted"
    assert len(trials) < 24
    assert sum(len(t.user_attrs["runs"]) for t in trials) == 24
    for trial in trials:
        assert trial.state is not TrialState.RUNNING
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(1, len(steps) + 1)), (trial.number, steps)
    assert any(t.state is TrialState.COMPLETE for t in trials)


def flaky(trial: tf.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    if trial.number % 3 == 0:
        raise ValueError("bad configuration")
    return x


def test_caught_exceptions_fail_their_trials_and_the_study_goes_on(client, tmp_path):
    study = new_study(tmp_path)
    study.optimize(flaky, n_trials=9, catch=(ValueError,), executor=DaskExecutor(client))
    states = [t.state for t in study.trials]
    assert len(states) == 9
    assert states.count(TrialState.FAIL) == 3 and states.count(TrialState.COMPLETE) == 6
    failed = study.get_trials(states=[TrialState.FAIL])
    assert all("ValueError: bad configuration" in t.reason for t in failed)


def broken(trial: tf.Trial) -> float:
    trial.suggest_float("x", 0.0, 1.0)
    raise RuntimeError("objective is broken")


def test_uncaught_exception_is_raised_here(client, tmp_path):
    study = new_study(tmp_path)
    with pytest.raises(RuntimeError, match="objective is broken"):
        study.optimize(broken, n_trials=6, executor=DaskExecutor(client, n_workers=1))
    assert study.trials[0].state is TrialState.FAIL
    assert len(study.trials) < 6  # the rest were cancelled


def test_timeout_stops_starting_trials(client, tmp_path):
    study = new_study(tmp_path)

    def slow(trial: tf.Trial) -> float:
        time.sleep(0.3)
        return trial.suggest_float("x", 0.0, 1.0)

    start = time.monotonic()
    study.optimize(slow, timeout=1.0, executor=DaskExecutor(client))
    assert time.monotonic() - start < 3.0
    assert 2 <= len(study.trials) <= 12
    assert all(t.state is TrialState.COMPLETE for t in study.trials)


def test_memory_storage_is_refused(client):
    study = tf.create_study(storage="memory")
    with pytest.raises(TuningforkError, match="SQLite file"):
        study.optimize(quadratic, n_trials=1, executor=DaskExecutor(client))
    assert study.trials == []


def test_n_jobs_with_an_executor_is_refused(client, tmp_path):
    with pytest.raises(TuningforkError, match="n_jobs"):
        new_study(tmp_path).optimize(quadratic, 1, n_jobs=2, executor=DaskExecutor(client))


def test_missing_distributed_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingExtra, match=r"tuningfork\[dask\]"):
        DaskExecutor(object())


def dies_once(trial: tf.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    marker = Path(trial.study.artifact_dir) / "died"
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        time.sleep(0.05)
        return x
    time.sleep(0.3)  # a few heartbeats, then the worker process vanishes mid-trial
    os._exit(1)


def test_killed_worker_leaves_no_trial_running(client, tmp_path):
    study = new_study(tmp_path)
    study.heartbeat_interval = 0.1
    study.grace_period = 1.0
    study.optimize(dies_once, n_trials=6, executor=DaskExecutor(client))
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the dead one
    time.sleep(study.grace_period + 0.2)
    study.optimize(quadratic, n_trials=1)  # any later ask reaps stale trials
    trials = study.trials
    assert not [t for t in trials if t.state is TrialState.RUNNING]
    stale = [t for t in trials if t.state is TrialState.FAIL]
    assert len(stale) == 1 and stale[0].reason.startswith("stale")
    assert stale[0].system_attrs["dask_worker"].startswith("tcp://")
    # Dask re-ran the killed task: 6 runs completed besides the stale one (+1 local)
    assert len([t for t in trials if t.state is TrialState.COMPLETE]) == 7
