"""Studies: create/load/delete, ask-and-tell, optimize, enqueue, failures and export."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

import tuningfork as tf
from tuningfork import TrialState


def quadratic(trial: tf.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    n = trial.suggest_int("n", 1, 4)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    return (x - 1.0) ** 2 + n + (0.5 if kind == "b" else 0.0)


def test_optimize_records_trials_and_best(storage_url):
    study = tf.create_study(storage=storage_url, seed=3)
    study.optimize(quadratic, n_trials=30)
    trials = study.trials
    assert [t.number for t in trials] == list(range(30))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    best = min(trials, key=lambda t: t.value)
    assert study.best_trial.number == best.number
    assert study.best_value == best.value
    assert study.best_params == best.params
    assert set(best.params) == {"x", "n", "kind"}
    assert isinstance(best.distributions["x"], tf.Float)
    assert best.datetime_start <= best.datetime_complete
    assert best.worker is not None


def test_maximize_picks_largest(storage_url):
    study = tf.create_study(storage=storage_url, direction="maximize", seed=1)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=20)
    assert study.best_value == max(t.value for t in study.trials)


def test_same_seed_same_configurations(storage_url, tmp_path):
    def params(name):
        study = tf.create_study(name, storage=storage_url, seed=42)
        study.optimize(quadratic, n_trials=10)
        return [t.params for t in study.trials]

    assert params("a") == params("b")
    other = tf.create_study("c", storage=storage_url, seed=43)
    other.optimize(quadratic, n_trials=10)
    assert [t.params for t in other.trials] != params("d")


def test_ask_and_tell_with_declared_space(storage_url):
    space = tf.Space(
        opt=tf.Categorical(["sgd", "adam"]),
        momentum=tf.Float(0.0, 0.99, when={"opt": "sgd"}),
        lr=tf.Float(1e-5, 1e-1, log=True),
    )
    study = tf.create_study(storage=storage_url, seed=0)
    for _ in range(20):
        trial = study.ask(space)
        params = trial.params
        space.validate(params)
        assert ("momentum" in params) == (params["opt"] == "sgd")
        study.tell(trial, params["lr"])
    assert len(study.get_trials(states=[TrialState.COMPLETE])) == 20
    recorded = study.trials[0]
    assert set(recorded.distributions) == set(recorded.params)


def test_tell_by_number_and_states(storage_url):
    study = tf.create_study(storage=storage_url)
    a, b, c = study.ask(), study.ask(), study.ask()
    a.suggest_float("x", 0, 1)
    study.tell(a.number, 1.5)
    study.tell(b, state="PRUNED")
    study.tell(c, state=TrialState.FAIL, reason="out of memory")
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    assert study.trials[2].reason == "out of memory"
    with pytest.raises(tf.TrialStateError, match="already COMPLETE"):
        study.tell(a, 2.0)
    with pytest.raises(tf.TrialNotFound):
        study.tell(99, 1.0)
    assert len(study.get_trials(states=["PRUNED", "FAIL"])) == 2


@pytest.mark.parametrize(
    "good", [0.5, [0.5], (0.5,), np.float32(0.5), np.array(0.5), np.array([0.5])]
)
def test_a_value_or_a_one_element_sequence_or_array_completes_the_trial(good):
    study = tf.create_study(storage="memory")
    trial = study.ask()
    assert study.tell(trial, good).values == (0.5,)


def test_several_objectives_from_an_array():
    study = tf.create_study(storage="memory", directions=["minimize", "maximize"])
    assert study.tell(study.ask(), np.array([1.0, 2.0])).values == (1.0, 2.0)
    trial = study.ask()
    with pytest.warns(UserWarning, match="returned 3 value"):
        assert study.tell(trial, np.array([1.0, 2.0, 3.0])).state is TrialState.FAIL


def test_a_second_report_at_a_step_is_ignored_with_a_warning(storage_url):
    study = tf.create_study(storage=storage_url)
    trial = study.ask()
    trial.report(0.5, 1)
    with pytest.warns(UserWarning, match="already reported step 1 .*ignored"):
        trial.report(0.9, 1)
    trial.report(np.float64(0.4), np.int64(2))  # numpy numbers are numbers
    study.tell(trial, 0.4)
    assert study.trials[0].intermediate_values == {1: 0.5, 2: 0.4}


def test_a_nan_report_is_recorded_with_a_warning_once_and_ranked_worst():
    study = tf.create_study(storage="memory", scheduler=tf.MedianStopping(n_startup_trials=2))
    for value in (1.0, 2.0):
        done = study.ask()
        done.report(value, 0)
        study.tell(done, value)
    trial = study.ask()
    with pytest.warns(UserWarning, match="reported nan at step 0; it is recorded") as caught:
        trial.report(math.nan, 0)
    assert trial.should_stop()  # below every number: the median rule stops it
    with pytest.warns(UserWarning) as more:
        trial.report(math.inf, 1)
        warnings.warn("the only other warning", UserWarning, stacklevel=1)
    assert len(caught) == 1 and [str(w.message) for w in more] == ["the only other warning"]
    assert math.isnan(study.trials[2].intermediate_values[0])


@pytest.mark.parametrize("step", [1.0, -1, True, "3"])
def test_report_steps_must_be_counts(step):
    trial = tf.create_study(storage="memory").ask()
    with pytest.raises(tf.TrialStateError, match="step must be a non-negative int"):
        trial.report(0.5, step)


def test_suggest_after_tell_is_an_error():
    study = tf.create_study(storage="memory")
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    study.tell(trial, 1.0)
    for name in ("x", "y"):  # a known name or a new one
        with pytest.raises(tf.TrialStateError, match="already been told"):
            trial.suggest_float(name, 0, 1)
    assert list(study.trials[0].params) == ["x"]
    with pytest.raises(tf.TrialStateError):
        trial.report(1.0, 3)


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, "0.5", [1.0, 2.0], object()])
def test_bad_objective_values_fail_the_trial_and_the_study_goes_on(storage_url, bad):
    study = tf.create_study(storage=storage_url)
    calls = []

    def objective(trial):
        calls.append(trial.number)
        trial.suggest_float("x", 0, 1)
        return bad if trial.number == 0 else 1.0

    with pytest.warns(UserWarning, match="trial 0 failed"):
        study.optimize(objective, n_trials=3)
    trials = study.trials
    assert trials[0].state is TrialState.FAIL
    assert trials[0].reason
    assert [t.state for t in trials[1:]] == [TrialState.COMPLETE] * 2


def test_objective_exception_caught_or_raised(storage_url):
    study = tf.create_study(storage=storage_url)

    def objective(trial):
        if trial.number % 2 == 0:
            raise ValueError("diverged")
        return 1.0

    with pytest.warns(UserWarning, match="diverged"):
        study.optimize(objective, n_trials=4, catch=(ValueError,))
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE] * 2
    assert "ValueError: diverged" in study.trials[0].reason

    with pytest.raises(ValueError, match="diverged"):
        study.optimize(objective, n_trials=4)
    assert study.trials[-1].state is TrialState.FAIL
    assert not any(t.state is TrialState.RUNNING for t in study.trials)


def test_keyboard_interrupt_leaves_storage_consistent(storage_url):
    study = tf.create_study(storage=storage_url)

    def objective(trial):
        trial.suggest_float("x", 0, 1)
        if trial.number == 2:
            raise KeyboardInterrupt
        return 0.0

    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=10)
    trials = tf.load_study(study.name, storage=study.storage).trials
    assert len(trials) == 3
    assert trials[2].state is TrialState.FAIL
    assert "interrupted" in trials[2].reason
    assert trials[2].params.keys() == {"x"}  # the suggestion was written with the failure


def test_trial_pruned_exception_and_median_stopping(storage_url):
    # the first five trials complete with curves 0..4; then a trial that is worse than the
    # median at step 1 must be stopped there, and a better one must run to the end
    study = tf.create_study(storage=storage_url, scheduler=tf.MedianStopping(n_startup_trials=5))
    levels = [0, 1, 2, 3, 4, 10, -1]

    def objective(trial):
        level = levels[trial.number]
        for step in range(5):
            trial.report(level + step * 0.1, step)
            if trial.should_stop():
                raise tf.TrialPruned(f"stopped at step {step}")
        return level

    study.optimize(objective, n_trials=len(levels))
    trials = study.trials
    assert [t.state for t in trials[:5]] == [TrialState.COMPLETE] * 5
    assert trials[5].state is TrialState.PRUNED
    assert trials[5].last_step == 0
    assert trials[5].reason == "stopped at step 0"
    assert trials[6].state is TrialState.COMPLETE
    assert len(trials[6].intermediate_values) == 5


def test_enqueued_trials_run_first_exactly_once(storage_url):
    study = tf.create_study(storage=storage_url)
    study.enqueue_trial({"x": 0.25, "n": 2, "kind": "b"})
    study.enqueue_trial({"x": -1.0})
    assert study.enqueue_trial({"x": -1.0}, skip_if_exists=True) is None
    study.optimize(quadratic, n_trials=4, n_jobs=2)
    trials = study.trials
    assert trials[0].params == {"x": 0.25, "n": 2, "kind": "b"}
    assert trials[1].params["x"] == -1.0
    assert len(trials) == 4
    assert all(t.state is TrialState.COMPLETE for t in trials)


def test_enqueued_value_outside_the_range_is_an_error(storage_url):
    study = tf.create_study(storage=storage_url)
    study.enqueue_trial({"x": 7.0})
    with pytest.raises(tf.SpaceError, match="'x'"):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)


def test_define_by_run_conflict_is_an_error(storage_url):
    study = tf.create_study(storage=storage_url)
    trial = study.ask()
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    assert trial.suggest_float("lr", 1e-4, 1e-1, log=True) == trial.params["lr"]
    with pytest.raises(tf.ParameterConflict, match="'lr'"):
        trial.suggest_float("lr", 1e-4, 1.0)


@pytest.mark.slow
def test_threads_share_a_study(storage_url):
    study = tf.create_study(storage=storage_url, seed=5)
    study.optimize(quadratic, n_trials=40, n_jobs=4)
    trials = study.trials
    assert len(trials) == 40
    assert sorted(t.number for t in trials) == list(range(40))
    assert all(t.state is TrialState.COMPLETE for t in trials)


def test_timeout_stops_optimize(storage_url):
    import time

    study = tf.create_study(storage=storage_url)
    start = time.monotonic()
    study.optimize(lambda t: time.sleep(0.05) or 1.0, timeout=0.3)
    assert time.monotonic() - start < 2.0
    assert 2 <= len(study.trials) <= 10


def test_callbacks_see_each_finished_trial(storage_url):
    seen = []
    study = tf.create_study(storage=storage_url)
    study.optimize(quadratic, n_trials=5, callbacks=[lambda s, t: seen.append(t.number)])
    assert sorted(seen) == [0, 1, 2, 3, 4]


def test_user_attrs_checkpoint_dir_and_reports(storage_url):
    study = tf.create_study("attrs", storage=storage_url)
    trial = study.ask()
    trial.set_user_attr("note", {"a": [1, 2]})
    trial.report(0.5, 0)
    trial.report(0.25, 3)
    path = trial.checkpoint_dir
    assert path.is_dir() and path.name == f"trial_{trial.number}"
    assert path.parent == study.artifact_dir and path.parent.name.startswith("attrs-")
    study.tell(trial, 0.25)
    record = study.trials[0]
    assert record.user_attrs == {"note": {"a": [1, 2]}}
    assert record.intermediate_values == {0: 0.5, 3: 0.25}
    with pytest.raises(tf.TuningforkError, match="JSON"):
        study.ask().set_user_attr("bad", object())


def test_create_load_delete_list(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = tf.create_study("one", storage=url, direction="maximize", seed=7)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    with pytest.raises(tf.DuplicatedStudyError, match="load_if_exists"):
        tf.create_study("one", storage=url)
    again = tf.create_study("one", storage=url, direction="maximize", load_if_exists=True)
    assert len(again.trials) == 3
    with pytest.raises(tf.TuningforkError, match="directions"):
        tf.create_study("one", storage=url, load_if_exists=True)
    tf.create_study("two", storage=url)
    summaries = {s.name: s for s in tf.list_studies(url)}
    assert summaries["one"].n_trials == 3
    assert summaries["one"].counts == {"COMPLETE": 3}
    assert summaries["two"].n_trials == 0
    assert tf.load_study("one", storage=url).system_attrs["seed"] == 7
    with pytest.raises(tf.StudyNotFound, match="did you mean 'one'"):
        tf.load_study("onee", storage=url)
    with pytest.raises(tf.StudyNotFound, match="name the one to load"):
        tf.load_study(storage=url)
    tf.delete_study("two", storage=url)
    assert [s.name for s in tf.list_studies(url)] == ["one"]
    assert tf.load_study(storage=url).name == "one"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"direction": "minimise"}, "minimize"),
        ({"directions": []}, "at least one"),
        ({"direction": "minimize", "directions": ["minimize"]}, "not both"),
        ({"name": "a/b"}, "may not contain"),
    ],
)
def test_bad_study_arguments(kwargs, match):
    with pytest.raises(tf.TuningforkError, match=match):
        tf.create_study(storage="memory", **kwargs)


def test_bad_storage_urls(tmp_path):
    with pytest.raises(tf.StorageError, match="not a storage URL"):
        tf.create_study(storage="study.db")
    with pytest.raises(tf.StorageError, match="in-memory SQLite"):
        tf.create_study(storage="sqlite://")
    with pytest.raises(tf.StorageError, match="does not exist"):
        tf.create_study(storage=f"sqlite:///{tmp_path}/missing/dir/s.db")


def test_default_storage_is_sqlite_in_the_current_directory(tmp_path):
    study = tf.create_study("default")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert (tmp_path / "tuningfork.db").exists()
    assert len(tf.load_study("default").trials) == 2


def test_multi_objective_best_trials(storage_url):
    study = tf.create_study(storage=storage_url, directions=["minimize", "maximize"])
    for a, b in [(1, 1), (2, 3), (3, 2), (0, 0), (1, 0.5)]:
        study.tell(study.ask(), values=[a, b])
    front = {t.values for t in study.best_trials}
    assert front == {(1.0, 1.0), (2.0, 3.0), (0.0, 0.0)}
    with pytest.raises(tf.TuningforkError, match="objectives"):
        _ = study.best_trial
    trial = study.ask()
    with pytest.warns(UserWarning, match="2 direction"):
        study.tell(trial, 1.0)
    assert study.trials[-1].state is TrialState.FAIL


def test_export_csv_and_json(storage_url, tmp_path):
    study = tf.create_study(storage=storage_url, seed=1)
    study.optimize(quadratic, n_trials=5)
    csv_path = study.export(tmp_path / "t.csv")
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",")[:3] == ["number", "state", "value"]
    assert "params_x" in lines[0] and len(lines) == 6
    data = json.loads(study.export(tmp_path / "t.json").read_text())
    assert len(data["trials"]) == 5 and data["trials"][0]["params"].keys() == {"x", "n", "kind"}
    with pytest.raises(tf.TuningforkError, match="csv"):
        study.export(tmp_path / "t.xlsx")
    frame = study.to_dataframe()
    assert list(frame["number"]) == [0, 1, 2, 3, 4]
    assert frame["params_kind"].isin(["a", "b"]).all()


def test_study_record_has_reproducibility_facts(storage_url):
    study = tf.create_study(storage=storage_url, seed=11)
    study.optimize(quadratic, n_trials=1)
    attrs = study.system_attrs
    assert attrs["seed"] == 11
    assert attrs["sampler"]["name"] == "AutoSampler"
    assert attrs["sampler"]["seed"] == 11
    env = attrs["environment"]
    assert env["python"] and "numpy" in env["packages"]
    worker = study.trials[0].worker
    assert worker in study.workers
    assert study.workers[worker]["pid"] > 0


def test_another_process_reads_and_resumes(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    study = tf.create_study("resume", storage=url, seed=9)
    study.optimize(quadratic, n_trials=5)
    script = textwrap.dedent(
        f"""
        import tuningfork as tf
        study = tf.load_study("resume", storage={url!r})
        assert len(study.trials) == 5, len(study.trials)
        study.optimize(lambda t: t.suggest_float("x", -5, 5) ** 2, n_trials=5)
        print(len(study.trials))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "10"
    trials = tf.load_study("resume", storage=url).trials
    assert [t.number for t in trials] == list(range(10))


def test_stale_trial_is_reaped(tmp_path):
    url = f"sqlite:///{tmp_path / 'stale.db'}"
    dead = tf.create_study("s", storage=url)
    unmonitored = dead.ask()  # ask-and-tell without optimize(): no heartbeat promised
    dead._call.monitored = True  # as inside optimize(): its trials promise heartbeats
    orphan = dead.ask()
    now = [time.time()]
    alive = tf.load_study("s", storage=url, clock=lambda: now[0])
    alive.grace_period = 0.2
    now[0] += 0.3  # the trial's start counts as a beat too: 0.3 s without one
    alive.ask()  # asking reaps, every quarter grace period
    record = alive.trials[orphan.number]
    assert record.state is TrialState.FAIL
    assert record.reason.startswith("stale: no heartbeat")
    assert alive.trials[unmonitored.number].state is TrialState.RUNNING


def test_worker_killed_mid_trial_is_reaped_without_any_heartbeat(tmp_path):
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    tf.create_study("k", storage=url)
    script = textwrap.dedent(
        f"""
        import os, signal, tuningfork as tf
        study = tf.load_study("k", storage={url!r})
        def objective(trial):
            trial.suggest_float("x", 0, 1)
            os.kill(os.getpid(), signal.SIGKILL)
        study.optimize(objective, n_trials=1)
        """
    )
    subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    study = tf.load_study("k", storage=url)
    assert study.trials[0].state is TrialState.RUNNING
    study.grace_period = 0.5
    study.reap_stale(now=time.time() + 0.6)
    assert study.trials[0].state is TrialState.FAIL
    assert study.trials[0].reason.startswith("stale")


def test_progress_line_counts_trials():
    import io

    from tuningfork._progress import Progress

    study = tf.create_study(storage="memory")
    stream = io.StringIO()
    progress = Progress(study, 3, None, True, stream=stream)
    study.optimize(lambda t: 2.0, n_trials=1)
    progress.update(study.trials[0])
    assert "[1/3 trials] best=2" in stream.getvalue()


@pytest.mark.slow
def test_thread_safe_ask_tell_under_contention(storage_url):
    study = tf.create_study(storage=storage_url)
    errors = []

    def work():
        try:
            for _ in range(25):
                trial = study.ask()
                study.tell(trial, trial.suggest_float("x", 0, 1))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(study.trials) == 100


def test_load_study_goes_on_with_the_recorded_sampler(tmp_path):
    url = f"sqlite:///{tmp_path / 'samplers.db'}"
    tf.create_study("qmc", storage=url, sampler=tf.QMCSampler(qmc_type="halton", seed=3))
    loaded = tf.load_study("qmc", storage=url).sampler
    assert isinstance(loaded, tf.QMCSampler)
    assert (loaded.qmc_type, loaded.seed) == ("halton", 3)

    grid = {"a": [1, 2, 3], "b": ["x", "y"]}
    first = tf.create_study("grid", storage=url, sampler=tf.GridSampler(grid, seed=5))
    first.optimize(
        lambda t: t.suggest_int("a", 1, 3) + len(t.suggest_categorical("b", ["x", "y"])), n_trials=2
    )
    again = tf.load_study("grid", storage=url)
    assert isinstance(again.sampler, tf.GridSampler) and again.sampler.grid_size == 6
    again.optimize(lambda t: t.suggest_int("a", 1, 3) + len(t.suggest_categorical("b", ["x", "y"])))
    points = sorted((t.params["a"], t.params["b"]) for t in again.trials)
    assert points == [(a, b) for a in (1, 2, 3) for b in ("x", "y")]


def test_load_study_warns_when_the_sampler_cannot_be_rebuilt(tmp_path):
    class Mine(tf.RandomSampler):
        pass

    url = f"sqlite:///{tmp_path / 'mine.db'}"
    tf.create_study("mine", storage=url, sampler=Mine(seed=1))
    with pytest.warns(UserWarning, match="'Mine'.*Pass sampler="):
        study = tf.load_study("mine", storage=url)
    assert type(study.sampler) is tf.RandomSampler and study.sampler.seed == 1
    assert type(tf.load_study("mine", storage=url, sampler=Mine(seed=1)).sampler) is Mine


def test_failing_declared_space_does_not_orphan_the_trial(storage_url):
    study = tf.create_study(storage=storage_url)
    study.enqueue_trial({"x": 7.0})
    with pytest.raises(tf.SpaceError, match="'x'"):
        study.ask(tf.Space(x=tf.Float(0.0, 1.0)))
    assert study.trials[0].state is TrialState.FAIL
    assert study.reader.numbers("RUNNING") == ()  # nothing left running


def test_user_attrs_are_copied_in_every_storage(storage_url):
    study = tf.create_study(storage=storage_url)
    trial = study.ask()
    note = {"a": [1, 2]}
    trial.set_user_attr("note", note)
    note["a"].append(3)
    study.tell(trial, 1.0)
    assert study.trials[0].user_attrs == {"note": {"a": [1, 2]}}


@pytest.mark.parametrize("declared", [False, True])
def test_samplers_that_model_running_trials_see_their_suggestions(storage_url, declared):
    class Liar(tf.RandomSampler):
        flush_suggestions = True

    study = tf.create_study(storage=storage_url, sampler=Liar(seed=0))
    other = tf.load_study(study.name, storage=study.storage, sampler=Liar(seed=0))
    trial = study.ask(tf.Space(x=tf.Float(0, 1))) if declared else study.ask()
    if not declared:
        trial.suggest_float("x", 0, 1)
    running = other.get_trials(states=[TrialState.RUNNING])
    assert [t.params for t in running] == [trial.params]
    plain = tf.create_study(storage=storage_url, sampler=tf.RandomSampler(seed=0))
    plain.ask().suggest_float("x", 0, 1)
    assert plain.get_trials()[0].params == {}  # written with the next report or the result


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_real_ctrl_c_marks_running_trials_failed(tmp_path, n_jobs):
    import signal

    url = f"sqlite:///{tmp_path / 'sigint.db'}"
    tf.create_study("c", storage=url)
    script = textwrap.dedent(
        f"""
        import time, tuningfork as tf
        study = tf.load_study("c", storage={url!r})
        def objective(trial):
            trial.suggest_float("x", 0, 1)
            print("started\\n", end="", flush=True)  # one write: threads do not interleave
            time.sleep(30)
            return 0.0
        study.optimize(objective, n_trials=4, n_jobs={n_jobs})
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().startswith("started")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    trials = tf.load_study("c", storage=url).trials
    assert 1 <= len(trials) <= n_jobs
    assert all(t.state is TrialState.FAIL and "interrupted" in t.reason for t in trials)
    assert all(t.params.keys() == {"x"} for t in trials)


# -- one durable write per trial: a tell rides with the next ask ------------------------------


def _count_appends(study: tf.Study) -> list[list[dict]]:
    batches: list[list[dict]] = []
    storage = study.storage
    append_and_read = storage.append_and_read

    def counting(study_id, events, after):
        batches.append(events)
        return append_and_read(study_id, events, after)

    storage.append_and_read = counting  # type: ignore[method-assign]
    return batches


def test_optimize_writes_one_batch_per_trial_and_leaves_nothing_running(tmp_path):
    study = tf.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    batches = _count_appends(study)
    seen = []

    def callback(study: tf.Study, frozen: tf.FrozenTrial) -> None:  # the trial is told
        seen.append(study.trials[frozen.number].state)

    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=20, callbacks=[callback])
    assert len(study.trials) == 20
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    assert seen == [TrialState.COMPLETE] * 20
    # the first ask, then per trial one batch: its params and finish with the next creation
    assert len(batches) == 21
    merged = [b for b in batches if {"finish", "trial"} <= {e["op"] for e in b}]
    assert len(merged) == 19
    for batch in merged:  # the finish comes before the next trial's creation
        ops = [e["op"] for e in batch]
        assert ops.index("finish") < ops.index("trial")


def test_the_next_ask_reads_the_log_only_when_the_view_is_stale(tmp_path, monkeypatch):
    """After a trial shorter than FRESH_VIEW_S the next ask uses the view read with the
    tell's write; after a longer one it reads the log first, and sees other workers'
    trials."""
    monkeypatch.setattr("tuningfork.study._log.FRESH_VIEW_S", 0.05)
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = tf.create_study("s", storage=url)  # its default sampler reads the trials
    other = tf.load_study("s", storage=url)
    reads = []
    read = study.storage.read

    def counting(study_id, after):
        reads.append(after)
        return read(study_id, after)

    monkeypatch.setattr(study.storage, "read", counting)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_float("y", 0, 1), n_trials=10)
    assert len(reads) <= 2  # the first ask and sample: every later one had a fresh view
    before = len(reads)
    assert study.best_trial.number in range(10)  # a user's read reads the log
    assert len(reads) == before + 1
    reads.clear()
    seen = []

    def slow(trial: tf.Trial) -> float:
        seen.append(len(study.reader))
        other.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)  # another worker
        time.sleep(0.06)
        return trial.suggest_float("x", 0, 1)

    study.optimize(slow, n_trials=3)
    assert len(reads) >= 2  # the asks after the two slow trials read the log
    assert seen[1] == seen[0] + 2 and seen[2] == seen[1] + 2  # and saw the other's trial


@pytest.mark.parametrize("case", ["grid", "max_trials", "queue"])
def test_an_ask_that_claims_reads_the_log_first(tmp_path, monkeypatch, case):
    """A grid point, a place under max_trials or a queued trial may have been claimed by
    another worker since the last read: such asks read first, however fresh the view."""
    monkeypatch.setattr("tuningfork.study._log.FRESH_VIEW_S", 60.0)
    url = f"sqlite:///{tmp_path / 's.db'}"
    sampler = tf.GridSampler({"x": list(range(20))}) if case == "grid" else tf.RandomSampler(seed=0)
    study = tf.create_study("s", storage=url, sampler=sampler)
    if case == "queue":
        for x in range(20):
            study.enqueue_trial({"x": x})
    reads = []
    read = study.storage.read
    monkeypatch.setattr(study.storage, "read", lambda *a: reads.append(a) or read(*a))
    kwargs = {"max_trials": 10} if case == "max_trials" else {"n_trials": 10}
    study.optimize(lambda t: float(t.suggest_int("x", 0, 19)), **kwargs)
    assert len(study.trials) >= 10
    assert len(reads) >= 9  # one before each ask that follows a tell


def test_the_last_tell_goes_alone_when_the_sampler_is_exhausted():
    study = tf.create_study(storage="memory", sampler=tf.GridSampler({"x": [0, 1, 2, 3]}))
    study.optimize(lambda t: float(t.suggest_int("x", 0, 3)), n_trials=None)
    assert sorted(t.value for t in study.trials) == [0.0, 1.0, 2.0, 3.0]
    assert all(t.state is TrialState.COMPLETE for t in study.trials)


def test_a_merged_ask_loses_a_claimed_grid_point_and_asks_again(tmp_path):
    """Two processes' worth of handles on one grid: claims in merged batches are settled
    by log order like any other, so every point runs exactly once."""
    url = f"sqlite:///{tmp_path / 'g.db'}"
    tf.create_study("g", storage=url, sampler=tf.GridSampler({"x": list(range(12))}))
    first = tf.load_study("g", storage=url)
    second = tf.load_study("g", storage=url)

    def objective(trial: tf.Trial) -> float:
        x = trial.suggest_int("x", 0, 11)
        if trial.number % 3 == 0:  # let the other handle claim in between
            second.optimize(lambda t: float(t.suggest_int("x", 0, 11)), n_trials=1)
        return float(x)

    first.optimize(objective, n_trials=None)
    trials = tf.load_study("g", storage=url).trials
    done = [t for t in trials if t.state is TrialState.COMPLETE]
    assert sorted(t.value for t in done) == [float(x) for x in range(12)]
    assert not [t for t in trials if t.state is TrialState.RUNNING]


def test_with_an_assigning_scheduler_the_tell_goes_first(tmp_path):
    study = tf.create_study(
        storage=f"sqlite:///{tmp_path / 's.db'}",
        scheduler=tf.ASHA(min_budget=1, max_budget=3, eta=3, mode="stopping"),
    )
    batches = _count_appends(study)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    assert not [b for b in batches if {"finish", "trial"} <= {e["op"] for e in b}]
    assert len(study.trials) == 5


# -- max_trials: a cap on the study's trials, shared by every worker --------------------------


def _study_worker(url: str, seed: int) -> int:
    study = tf.load_study("cap", storage=url, sampler=tf.RandomSampler(seed=seed))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_jobs=2, max_trials=30)
    return len(study.trials)


@pytest.mark.slow
def test_max_trials_is_exact_across_processes_and_threads(tmp_path):
    from tuningfork.testing.storages import run_in_processes

    url = f"sqlite:///{tmp_path / 'cap.db'}"
    tf.create_study("cap", storage=url)
    run_in_processes(_study_worker, [(url, seed) for seed in range(4)])
    trials = tf.load_study("cap", storage=url).trials
    assert len(trials) == 30
    assert all(t.state is TrialState.COMPLETE for t in trials)
    # a study that already has its trials starts none
    study = tf.load_study("cap", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), max_trials=30)
    assert len(study.trials) == 30
    with pytest.raises(tf.TuningforkError, match="max_trials"):
        study.optimize(lambda t: 0.0, max_trials=0)


def test_max_trials_lets_promotions_go_on():
    study = tf.create_study(
        storage="memory", scheduler=tf.ASHA(min_budget=1, max_budget=9, eta=3, mode="promotion")
    )

    def objective(trial: tf.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        x = 1.0 / (trial.number + 1)  # later trials are better: the last is promoted
        start = trial.last_step + 1 if trial.resumed else 1
        for step in range(start, int(trial.budget) + 1):
            trial.report(x + 1.0 / step, step)
            if trial.should_stop():
                raise tf.TrialPruned()
        return x

    study.optimize(objective, max_trials=9)
    trials = study.trials
    assert len(trials) == 9
    # after the 9th trial was created, asks went on resuming paused trials
    last_created = trials[8].datetime_start
    assert any(t.system_attrs.get("resumed_at", 0.0) > last_created for t in trials)
    assert max(t.last_step for t in trials) >= 3
