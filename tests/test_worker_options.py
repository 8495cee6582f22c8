"""`WorkerOptions`: checked on construction, built once from the command line or a study
file, and handed unchanged to `run_worker`, `launch_slurm` and its SLURM workers; the older
loose keywords and flags still work, with a deprecation warning naming the new name."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import pytest

import tuningfork as tf
from tuningfork.cli import main
from tuningfork.exceptions import OptionError
from tuningfork.execution import WorkerOptions
from tuningfork.execution import slurm as slurm_module
from tuningfork.execution import worker as worker_module
from tuningfork.trial import TrialState

# -- the object -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("n_trials", -1),
        ("n_trials", 2.5),
        ("max_trials", 0),
        ("max_retries", -1),
        ("max_retries", True),
        ("timeout", 0),
        ("timeout", float("inf")),
        ("timeout", "10"),
        ("heartbeat_interval", 0.0),
        ("grace_period", -1.0),
        ("n_jobs", 0),
        ("retry_failed_exceptions", "yes"),
        ("show_progress_bar", 1),
        ("catch", (ValueError, "KeyError")),
        ("preempt_signals", ("SIGNOPE",)),
        ("space", [1, 2]),
    ],
)
def test_a_bad_value_is_an_option_error_naming_the_option(option: str, value: Any) -> None:
    with pytest.raises(OptionError) as caught:
        WorkerOptions(**{option: value})
    assert caught.value.option == option and caught.value.owner == "WorkerOptions"
    assert str(caught.value).startswith(option)
    assert isinstance(caught.value, ValueError)


def test_values_are_normalised_and_frozen() -> None:
    options = WorkerOptions(
        catch=KeyError,
        preempt_signals="SIGUSR1",
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        timeout=5,
        artifact_root=Path("/tmp/artefacts"),
    )
    assert options.catch == (KeyError,)
    assert options.preempt_signals == ("SIGUSR1",)
    assert options.timeout == 5.0 and isinstance(options.timeout, float)
    assert options.artifact_root == "/tmp/artefacts"
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.n_trials = 3  # type: ignore[misc]
    with pytest.raises(OptionError, match="n_jobs"):
        options.replace(n_jobs=0)  # a copy is checked too
    assert WorkerOptions().preempt_signals == ("SIGTERM",)


# -- from the command line ---------------------------------------------------------------------


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    tf.create_study("w", storage=url)
    return url


@pytest.fixture
def worker_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def fake(*args: Any, **kwargs: Any) -> int:
        calls.append((*args, kwargs))
        return 0

    monkeypatch.setattr(worker_module, "run_worker", fake)
    return calls


def test_worker_flags_become_one_options_object(url, worker_calls) -> None:
    code = main(["worker", "w", "--storage", url, "--objective", "m:f", "--n-trials", "3",
                 "--max-trials", "9", "--timeout", "30", "--n-jobs", "2", "--max-retries", "1",
                 "--retry-failed-exceptions", "--heartbeat-interval", "0.5",
                 "--grace-period", "4", "--preempt-signal", "SIGUSR1"])  # fmt: skip
    assert code == 0
    (call,) = worker_calls
    assert call[:3] == ("w", url, "m:f") and call[4] == {}
    assert call[3] == WorkerOptions(
        n_trials=3,
        max_trials=9,
        timeout=30.0,
        n_jobs=2,
        max_retries=1,
        retry_failed_exceptions=True,
        heartbeat_interval=0.5,
        grace_period=4.0,
        preempt_signals=("SIGTERM", "SIGUSR1"),
    )


def test_a_bad_flag_value_is_a_one_line_error(url, worker_calls, capsys) -> None:
    argv = ["worker", "w", "--storage", url, "--objective", "m:f", "--heartbeat-interval", "0"]
    assert main(argv) == 2
    assert "heartbeat_interval must be finite and > 0" in capsys.readouterr().err
    assert worker_calls == []


def test_the_old_signal_flag_warns_and_still_works(url, worker_calls, capsys) -> None:
    argv = ["worker", "w", "--storage", url, "--objective", "m:f", "--signal", "SIGUSR1"]
    assert main(argv) == 0
    assert worker_calls[0][3].preempt_signals == ("SIGTERM", "SIGUSR1")
    err = capsys.readouterr().err
    assert "tuningfork: warning: --signal is deprecated; use --preempt-signal" in err


def test_the_old_launch_flags_warn_and_still_work(url, monkeypatch, capsys) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(slurm_module, "launch_slurm", lambda *a, **k: calls.append(k) or [])
    argv = ["launch", "--slurm", "w", "--storage", url, "--objective", "m:f", "--workers", "3",
            "--time", "20", "--n-trials", "2", "--retry-failed-exceptions"]  # fmt: skip
    assert main(argv) == 0
    (kwargs,) = calls
    assert kwargs["n_workers"] == 3 and kwargs["time_limit_min"] == 20
    assert kwargs["options"].n_trials == 2
    assert kwargs["options"].retry_failed_exceptions is True
    err = capsys.readouterr().err
    assert "--workers is deprecated; use --n-workers" in err
    assert "--time is deprecated; use --time-limit-min" in err

    assert main([*argv[:7], "--n-workers", "3", "--time-limit-min", "20"]) == 0
    assert calls[1]["n_workers"] == 3 and calls[1]["time_limit_min"] == 20
    assert "deprecated" not in capsys.readouterr().err
    assert main(argv[:7]) == 2  # a number of workers is required
    assert "--n-workers" in capsys.readouterr().err


# -- from a study file ---------------------------------------------------------------------------

STUDY_FILE = """\
study: s
storage: sqlite:///s.db
space: {x: {type: int, low: 1, high: 9}}
command: [PYTHON, -c, 'import sys; print(dict(value=int(sys.argv[1])))', "{x}"]
result: {from: regex, pattern: "(\\\\d+)"}
limits: {n_trials: 6, timeout: 300, max_retries: 2}
resources:
  workers: 2
  slurm: {partition: gpu, time_limit_min: 30, n_jobs: 3, heartbeat_interval: 5.0}
"""


@pytest.fixture
def study_file(tmp_path: Path) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(STUDY_FILE.replace("PYTHON", sys.executable))
    return path


def test_a_study_files_settings_reach_launch_slurm_as_options(study_file, monkeypatch) -> None:
    from tuningfork.execution.study_file import run_study_file

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(slurm_module, "launch_slurm", lambda *a, **k: calls.append((a, k)) or [])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # our own path uses no alias
        assert run_study_file(study_file, slurm=True, out=io.StringIO()) == 0
    ((args, kwargs),) = calls
    options = kwargs.pop("options")
    assert options == WorkerOptions(
        n_trials=None,
        max_trials=6,
        timeout=300.0,
        n_jobs=3,
        max_retries=2,
        heartbeat_interval=5.0,
        space=options.space,
    )
    assert list(options.space) == ["x"]
    assert args[2] == str(study_file.resolve())
    assert kwargs["n_workers"] == 2 and kwargs["partition"] == "gpu"
    assert kwargs["time_limit_min"] == 30
    assert not set(kwargs) & {"timeout", "max_retries", "n_jobs", "heartbeat_interval"}


def test_a_study_files_options_reach_the_worker(study_file, monkeypatch) -> None:
    """What a SLURM task of a study file runs: `run_worker` with the file's options, the
    SLURM signal added and the trial runs already done taken off."""
    from tuningfork.config import load_config

    seen: list[WorkerOptions] = []
    monkeypatch.setattr(slurm_module, "run_worker", lambda *a: seen.append(a[3]) or 0)
    options = WorkerOptions.from_study_file(load_config(study_file), n_trials=5)
    worker = slurm_module.SlurmWorker("s", "sqlite://", str(study_file), options)
    worker.runs_done = 2
    assert worker() == 0
    (received,) = seen
    assert received.n_trials == 3 and received.timeout is not None
    assert received.max_retries == 2 and received.n_jobs == 3
    assert received.heartbeat_interval == 5.0
    assert received.preempt_signals[0] == "SIGTERM" and len(received.preempt_signals) == 2
    assert list(received.space) == ["x"]


# -- SLURM ------------------------------------------------------------------------------------


class _FakeExecutor:
    """submitit's AutoExecutor as `launch_slurm` uses it, keeping what was submitted."""

    submitted: list[Any] = []

    def __init__(self, folder: str, cluster: str) -> None:
        self.parameters: dict[str, Any] = {}

    def update_parameters(self, **parameters: Any) -> None:
        self.parameters.update(parameters)

    @contextlib.contextmanager
    def batch(self) -> Any:
        yield

    def submit(self, function: Any) -> Any:
        self.submitted.append(function)
        return types.SimpleNamespace(job_id=f"7_{len(self.submitted) - 1}")


@pytest.fixture
def fake_submitit(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    module = types.ModuleType("submitit")
    module.AutoExecutor = _FakeExecutor  # type: ignore[attr-defined]
    module.helpers = types.SimpleNamespace(DelayedSubmission=lambda f: f)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "submitit", module)
    monkeypatch.setattr(slurm_module, "_which", lambda program: True)
    _FakeExecutor.submitted = []
    return _FakeExecutor.submitted


FAILS_FIRST = """\
def objective(trial):
    x = trial.suggest_float("x", 0, 1)
    if trial.number == 0:
        raise RuntimeError("first")
    return x
"""


@pytest.mark.filterwarnings("ignore:trial 0 failed")
def test_slurm_workers_get_retry_failed_exceptions(fake_submitit, url, tmp_path) -> None:
    (tmp_path / "fails_first.py").write_text(FAILS_FIRST)
    options = WorkerOptions(n_trials=2, max_retries=1, retry_failed_exceptions=True)
    ref = f"{tmp_path / 'fails_first.py'}:objective"
    ids = slurm_module.launch_slurm("w", url, ref, n_workers=2, options=options, quiet=True)
    assert ids == ["7_0", "7_1"]
    assert [w.options for w in fake_submitit] == [options, options]
    assert fake_submitit[0]() == 0  # what the array task runs, here
    first, retry = tf.load_study("w", storage=url).trials
    assert first.state is TrialState.FAIL and first.system_attrs["retried_by"] == 1
    assert retry.state is TrialState.COMPLETE and retry.params == first.params


def test_launch_slurm_old_keywords_warn_and_still_work(fake_submitit, url) -> None:
    with pytest.warns(DeprecationWarning, match=r"options=WorkerOptions\(n_trials=\.\.\."):
        slurm_module.launch_slurm(
            "w", url, "m:f", n_workers=1, n_trials_per_worker=4, grace_period=3.0, quiet=True
        )
    (worker,) = fake_submitit
    assert worker.options == WorkerOptions(n_trials=4, grace_period=3.0)
    with pytest.raises(OptionError) as caught:
        slurm_module.launch_slurm("w", url, "m:f", n_workers=0, quiet=True)
    assert caught.value.option == "n_workers"


def test_a_slurm_worker_whose_time_is_used_up_runs_nothing(url, tmp_path) -> None:
    """A requeued task with no time left ends cleanly instead of asking for a 0 s run."""
    worker = slurm_module.SlurmWorker("w", url, "m:f", WorkerOptions(timeout=5))
    worker.seconds_used = 6.0
    assert worker() == 0
    assert tf.load_study("w", storage=url).trials == []


# -- the older Python forms -------------------------------------------------------------------


def test_run_worker_old_keywords_and_positionals_warn_and_still_work(monkeypatch, url) -> None:
    seen: list[WorkerOptions] = []
    monkeypatch.setattr(worker_module.WorkerOptions, "open_study", _recording(seen))
    with pytest.warns(DeprecationWarning, match=r"run_worker\(n_trials=, timeout=\)"):
        worker_module.run_worker("w", url, lambda trial: 1.0, 2, 30.0)
    with pytest.warns(DeprecationWarning, match=r"WorkerOptions\(max_retries=\.\.\.\)"):
        worker_module.run_worker("w", url, lambda trial: 1.0, WorkerOptions(n_trials=1),
                                 max_retries=1)  # fmt: skip
    assert (seen[0].n_trials, seen[0].timeout) == (2, 30.0)
    assert (seen[1].n_trials, seen[1].max_retries) == (1, 1)
    with pytest.raises(TypeError, match="nonsense"):
        worker_module.run_worker("w", url, "m:f", nonsense=1)


def _recording(seen: list[WorkerOptions]) -> Any:
    original = WorkerOptions.open_study

    def open_study(self: WorkerOptions, *args: Any, **kwargs: Any) -> Any:
        seen.append(self)
        return original(self, *args, **kwargs)

    return open_study
