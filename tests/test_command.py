"""CommandObjective end to end: real programs (small Python scripts) run once per trial
through `Study.optimize`, with the report protocol, schedulers, timeouts and signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import tuningfork
import tuningfork.client
from tuningfork import Categorical, Float, TrialState
from tuningfork.command import CommandFailed, CommandObjective, ResultSpec
from tuningfork.exceptions import TuningforkError
from tuningfork.repro import derive_seed
from tuningfork.study import FileCheckpointStore

pytestmark = [
    pytest.mark.skipif(os.name != "posix", reason="process groups and signals are POSIX"),
    pytest.mark.filterwarnings("ignore:trial .* failed"),
]

GRACE = 0.5


@pytest.fixture
def make_study(tmp_path):
    def make(**kwargs):
        return tuningfork.create_study(
            storage=f"sqlite:///{tmp_path}/s.db", artifact_root=tmp_path / "art", **kwargs
        )

    return make


def script(tmp_path: Path, body: str, name: str = "prog.py") -> str:
    """Write a script that can ``import client`` (a copy of tuningfork/client.py beside it,
    as a user without tuningfork installed would do; it also starts faster)."""
    shutil.copy(tuningfork.client.__file__, tmp_path / "client.py")
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return True
    return stat.read_text().rpartition(")")[2].split()[0] not in ("Z", "X")


def assert_dead(pid: int) -> None:
    """The process is gone: no such pid, or a zombie (an orphan that was killed but not yet
    reaped by init, which in some containers reaps slowly). A SIGKILL sent just before
    takes effect within moments; allow those."""
    end = time.monotonic() + 2.0
    while _running(pid):
        assert time.monotonic() < end, f"process {pid} is still running"
        time.sleep(0.01)


def wait_for(path: Path, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.01)


# -- results --------------------------------------------------------------------------------


def test_value_from_last_json_line_of_stdout(tmp_path, make_study):
    prog = script(
        tmp_path,
        """
        import json, sys
        x = float(sys.argv[1])
        print("starting")
        print(json.dumps({"value": 1000.0}))           # an earlier result line: superseded
        print(json.dumps({"tuningfork": {"step": 1, "value": 5.0}}))
        print(json.dumps({"value": x * x, "extra": 1}))
        print(json.dumps({"other": 3}))                 # no metric key: not a result
        print("bye")
        """,
    )
    study = make_study()
    for x in (0.5, -2.0):
        study.enqueue_trial({"x": x})
    objective = CommandObjective([sys.executable, prog, "{x}"], grace_period=GRACE)
    study.optimize(objective, n_trials=2, space={"x": Float(-3, 3)}, catch=(CommandFailed,))
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert [t.value for t in trials] == [0.25, 4.0]
    assert trials[0].intermediate_values == {1: 5.0}


def test_value_from_json_and_yaml_files(tmp_path, make_study):
    prog = script(
        tmp_path,
        """
        import json, os, sys
        x = float(sys.argv[1])
        with open(os.path.join(sys.argv[2], "result.json"), "w") as f:
            json.dump({"loss": x + 1}, f)
        with open("out.yaml", "w") as f:   # relative to cwd
            f.write("loss: %r\\n" % (x + 2))
        """,
    )
    study = make_study()
    study.enqueue_trial({"x": 0.25})
    by_json = CommandObjective(
        [sys.executable, prog, "{x}", "{checkpoint_dir}"],
        result=ResultSpec(source="file", path="{checkpoint_dir}/result.json", metrics=("loss",)),
    )
    study.optimize(by_json, n_trials=1, space={"x": Float(0, 1)})
    assert study.trials[0].value == 1.25

    study.enqueue_trial({"x": 0.5})
    workdir = tmp_path / "work" / "{trial_id}"
    by_yaml = CommandObjective(
        [sys.executable, prog, "{x}", "{checkpoint_dir}"],
        cwd=str(workdir),
        result=ResultSpec(source="file", path="out.yaml", metrics=("loss",)),
    )
    study.optimize(by_yaml, n_trials=1, space={"x": Float(0, 1)})
    assert study.trials[1].value == 2.5
    assert (tmp_path / "work" / "1" / "out.yaml").exists()  # cwd rendered and created


def test_result_file_not_rewritten_fails(tmp_path, make_study):
    (tmp_path / "stale.json").write_text('{"value": 1.0}')
    prog = script(tmp_path, "print('did nothing')\n")
    study = make_study()
    objective = CommandObjective(
        [sys.executable, prog],
        cwd=str(tmp_path),
        result=ResultSpec(source="file", path="stale.json"),
    )
    study.optimize(objective, n_trials=1, catch=(CommandFailed,))
    trial = study.trials[0]
    assert trial.state is TrialState.FAIL
    assert "was not written by this run" in trial.reason


def test_value_from_regex_last_match_and_named_groups(tmp_path, make_study):
    prog = script(
        tmp_path,
        """
        import sys
        x = float(sys.argv[1])
        for epoch in range(3):
            print(f"epoch {epoch} loss={x + epoch} acc={epoch / 10}")
        """,
    )
    study = make_study()
    study.enqueue_trial({"x": 1.5})
    single = CommandObjective(
        [sys.executable, prog, "{x}"],
        result=ResultSpec(source="regex", pattern=r"loss=([0-9.eE+-]+)"),
    )
    study.optimize(single, n_trials=1, space={"x": Float(0, 2)})
    assert study.trials[0].value == 3.5  # the last epoch's

    multi_study = make_study(name="multi", directions=["minimize", "maximize"])
    multi_study.enqueue_trial({"x": 1.0})
    multi = CommandObjective(
        [sys.executable, prog, "{x}"],
        result=ResultSpec(
            source="regex",
            pattern=r"loss=(?P<loss>[0-9.]+) acc=(?P<acc>[0-9.]+)",
            metrics=("loss", "acc"),
        ),
    )
    multi_study.optimize(multi, n_trials=1, space={"x": Float(0, 2)})
    assert multi_study.trials[0].values == (3.0, 0.2)


def test_multi_objective_from_stdout(tmp_path, make_study):
    prog = script(
        tmp_path,
        """
        import json, sys
        x = float(sys.argv[1])
        print(json.dumps({"acc": 1 - x, "loss": x * 2}))
        """,
    )
    study = make_study(directions=["minimize", "maximize"])
    for x in (0.1, 0.4):
        study.enqueue_trial({"x": x})
    objective = CommandObjective(
        [sys.executable, prog, "{x}"], result=ResultSpec(metrics=("loss", "acc"))
    )
    study.optimize(objective, n_trials=2, space={"x": Float(0, 1)})
    assert [t.values for t in study.trials] == [(0.2, 0.9), (0.8, 0.6)]
    assert len(study.best_trials) == 1 and study.best_trials[0].number == 0


def test_no_metric_found_fails_with_reason(tmp_path, make_study):
    prog = script(tmp_path, "print('hello'); print('{\"loss\": 1}')\n")
    study = make_study()
    objective = CommandObjective([sys.executable, prog])
    study.optimize(objective, n_trials=1, catch=(CommandFailed,))
    trial = study.trials[0]
    assert trial.state is TrialState.FAIL
    assert "no metric 'value' found in stdout (looked for the last JSON object line)" in (
        trial.reason
    )
    assert "hello" in trial.reason  # stderr is empty: the stdout tail is quoted


def test_only_reports_fall_back_to_the_last_report(tmp_path, make_study):
    prog = script(
        tmp_path,
        """
        import client
        for step in (1, 2):
            client.report(value=10.0 / step, step=step)
        """,
    )
    study = make_study()
    study.optimize(CommandObjective([sys.executable, prog]), n_trials=1)
    trial = study.trials[0]
    assert trial.state is TrialState.COMPLETE and trial.value == 5.0
    assert trial.intermediate_values == {1: 10.0, 2: 5.0}


# -- failures -------------------------------------------------------------------------------


def test_crash_fails_the_trial_with_stderr_tail_and_study_goes_on(tmp_path, make_study):
    prog = script(
        tmp_path,
        """
        import json, os, signal, sys
        mode = sys.argv[1]
        if mode == "exit":
            for i in range(30):
                print(f"boom line {i}", file=sys.stderr)
            sys.exit(3)
        if mode == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        print(json.dumps({"value": 1.0}))
        """,
    )
    study = make_study()
    for mode in ("exit", "segv", "ok", "ok"):
        study.enqueue_trial({"mode": mode})
    objective = CommandObjective([sys.executable, prog, "{mode}"], keep_log_lines=5)
    with pytest.warns(UserWarning, match="failed"):
        study.optimize(
            objective,
            n_trials=4,
            space={"mode": Categorical(["exit", "segv", "ok"])},
            catch=(CommandFailed,),
        )
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL] + [
        TrialState.COMPLETE
    ] * 2
    assert "exit code 3" in trials[0].reason
    assert "boom line 29" in trials[0].reason and "boom line 24" not in trials[0].reason
    assert "stderr.log" in trials[0].reason
    assert "killed by signal SIGSEGV" in trials[1].reason


def test_command_failed_fields_and_pickling(tmp_path, make_study):
    import pickle

    prog = script(tmp_path, "import sys; print('bad', file=sys.stderr); sys.exit(2)\n")
    study = make_study()
    trial = study.ask()
    with pytest.raises(CommandFailed) as info:
        CommandObjective([sys.executable, prog])(trial)
    error = info.value
    assert error.reason == "exit code 2" and error.returncode == 2
    assert str(error).startswith("exit code 2\n") and "bad" in str(error)
    again = pickle.loads(pickle.dumps(error))
    assert (again.reason, again.returncode, str(again)) == (error.reason, 2, str(error))
    assert again.stderr_log == error.stderr_log and Path(error.stderr_log).exists()


def test_missing_program_fails(tmp_path, make_study):
    study = make_study()
    study.optimize(
        CommandObjective([str(tmp_path / "no-such-program")]), n_trials=1, catch=(CommandFailed,)
    )
    assert "cannot start" in study.trials[0].reason


def test_hanging_command_times_out_and_is_killed(tmp_path, make_study):
    pidfile = tmp_path / "pid"
    prog = script(
        tmp_path,
        f"""
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)   # stubborn: needs SIGKILL
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        time.sleep(60)
        """,
    )
    study = make_study()
    objective = CommandObjective([sys.executable, prog], timeout=0.5, grace_period=0.3)
    start = time.monotonic()
    study.optimize(objective, n_trials=1, catch=(CommandFailed,))
    assert time.monotonic() - start < 4
    trial = study.trials[0]
    assert trial.state is TrialState.FAIL
    assert "timed out after 0.5 s (per-trial timeout)" in trial.reason
    assert_dead(int(pidfile.read_text()))


def test_leftover_children_are_killed(tmp_path, make_study):
    pidfile = tmp_path / "child"
    prog = script(
        tmp_path,
        f"""
        import json, subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        open({str(pidfile)!r}, "w").write(str(child.pid))
        print(json.dumps({{"value": 2.0}}))
        """,
    )
    study = make_study()
    study.optimize(CommandObjective([sys.executable, prog]), n_trials=1)
    assert study.trials[0].value == 2.0
    assert_dead(int(pidfile.read_text()))  # killed when its parent exited


# -- arguments, environment, logs -----------------------------------------------------------

NASTY = [
    "two words",
    'it\'s "quoted"',
    "a; rm -rf /tmp/nothing",
    "$(rm -rf /)",
    "`id`",
    "*",
    "line1\nline2",
    "{braces}",
    "--looks-like-a-flag",
    "ünïcödé \\ back",
]


def test_parameter_values_reach_the_program_unchanged(tmp_path, make_study):
    out = tmp_path / "argv"
    out.mkdir()
    prog = script(
        tmp_path,
        f"""
        import json, os, sys
        with open(os.path.join({str(out)!r}, os.environ["TUNINGFORK_TRIAL_ID"]), "w") as f:
            json.dump(sys.argv[1:], f)
        print(json.dumps({{"value": 0}}))
        """,
    )
    study = make_study()
    for value in NASTY:
        study.enqueue_trial({"s": value})
    objective = CommandObjective(
        [sys.executable, prog, "--s", "{s}", "--eq={s}", "lit{{x}}", "{trial_id}"]
    )
    study.optimize(objective, n_trials=len(NASTY), space={"s": Categorical(NASTY)})
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    for trial in study.trials:
        seen = json.loads((out / str(trial.number)).read_text())
        value = trial.params["s"]
        assert seen == ["--s", value, f"--eq={value}", "lit{x}", str(trial.number)]
        assert trial.user_attrs["command"][2:] == seen


def test_value_formatting(tmp_path, make_study):
    out = tmp_path / "argv.json"
    prog = script(
        tmp_path,
        f"""
        import json, sys
        json.dump(sys.argv[1:], open({str(out)!r}, "w"))
        print(json.dumps({{"value": 0}}))
        """,
    )
    study = make_study()
    study.enqueue_trial({"lr": 0.1 + 0.2, "flag": True, "n": 7})
    space = {
        "lr": Float(0, 1),
        "flag": Categorical([True, False]),
        "n": tuningfork.Int(1, 10),
    }
    objective = CommandObjective([sys.executable, prog, "{lr}", "{flag}", "{n}", "{lr:.2f}"])
    study.optimize(objective, n_trials=1, space=space)
    assert json.loads(out.read_text()) == [repr(0.1 + 0.2), "true", "7", "0.30"]


def test_inactive_parameters_are_dropped_with_their_flag(tmp_path, make_study):
    out = tmp_path / "argv"
    out.mkdir()
    prog = script(
        tmp_path,
        f"""
        import json, os, sys
        env = {{k: os.environ.get(k) for k in ("MOMENTUM", "OPT")}}
        with open(os.path.join({str(out)!r}, os.environ["TUNINGFORK_TRIAL_ID"]), "w") as f:
            json.dump({{"argv": sys.argv[1:], "env": env}}, f)
        print(json.dumps({{"value": 0}}))
        """,
    )
    space = {
        "opt": Categorical(["sgd", "adam"]),
        "momentum": Float(0, 1, when={"opt": ["sgd"]}),
    }
    study = make_study()
    study.enqueue_trial({"opt": "sgd", "momentum": 0.5})
    study.enqueue_trial({"opt": "adam"})
    objective = CommandObjective(
        [
            sys.executable,
            prog,
            "--opt",
            "{opt}",
            "--momentum",
            "{momentum}",
            "--m={momentum}",
            "--epochs",
            "{budget}",
            "-v",
        ],
        env={"MOMENTUM": "{momentum}", "OPT": "{opt}"},
        space=space,
    )
    study.optimize(objective, n_trials=2, space=space)
    sgd = json.loads((out / "0").read_text())
    adam = json.loads((out / "1").read_text())
    # no scheduler, so no budget: "--epochs {budget}" is dropped as a pair too
    assert sgd["argv"] == ["--opt", "sgd", "--momentum", "0.5", "--m=0.5", "-v"]
    assert adam["argv"] == ["--opt", "adam", "-v"]
    assert sgd["env"] == {"MOMENTUM": "0.5", "OPT": "sgd"}
    assert adam["env"] == {"MOMENTUM": None, "OPT": "adam"}


def test_placeholders_and_template_errors():
    objective = CommandObjective(
        ["prog", "{lr}", "--x={opt.name}", "{trial_id}", "{{literal}}"],
        env={"A": "{seed}-{batch}"},
        cwd="runs/{study}/{trial_id}",
        result=ResultSpec(source="file", path="{checkpoint_dir}/{tag}.json"),
    )
    assert objective.placeholders() == {"lr", "opt.name", "batch", "tag"}
    with pytest.raises(TuningforkError, match=r"\['typo'\]"):
        CommandObjective(["prog", "{lr}", "{typo}"], space={"lr": Float(0, 1)})
    with pytest.raises(TuningforkError, match="positional"):
        CommandObjective(["prog", "{}"])
    with pytest.raises(TuningforkError, match="not a valid template"):
        CommandObjective(["prog", "{lr"])
    with pytest.raises(TuningforkError, match="list of strings"):
        CommandObjective("prog --lr {lr}")  # type: ignore[arg-type]
    with pytest.raises(TuningforkError, match="named group"):
        ResultSpec(source="regex", pattern=r"(?P<a>\d)", metrics=("b",))
    with pytest.raises(TuningforkError, match="needs a path"):
        ResultSpec(source="file")


def test_a_misspelt_placeholder_stops_the_study_instead_of_dropping_its_argument(
    tmp_path, make_study
):
    prog = script(tmp_path, "print('{\"value\": 1}')")
    objective = CommandObjective([sys.executable, prog, "--lr", "{lrr}"])
    study = make_study()
    space = {"lr": Float(0.001, 0.1, log=True)}
    with pytest.raises(TuningforkError, match=r"\['lrr'\].*of the space \(\['lr'\]\)"):
        study.optimize(objective, n_trials=3, space=space, catch=(CommandFailed,))
    assert len(study.trials) == 1  # the first trial failed, and nothing ran after it
    # without a declared space, the trial's parameters (here enqueued ones) are the names
    plain = make_study(name="plain")
    plain.enqueue_trial({"lr": 0.01})
    with pytest.raises(TuningforkError, match=r"\['lrr'\].*of the trial"):
        plain.optimize(objective, n_trials=1, catch=(CommandFailed,))


def test_environment_variables(tmp_path, make_study):
    out = tmp_path / "env.json"
    prog = script(
        tmp_path,
        f"""
        import json, os
        env = {{k: v for k, v in os.environ.items() if k.startswith(("TUNINGFORK_", "MY_"))}}
        json.dump(env, open({str(out)!r}, "w"))
        print(json.dumps({{"value": 0}}))
        """,
    )
    study = make_study(name="envs")
    study.enqueue_trial({"lr": 0.25})
    objective = CommandObjective(
        [sys.executable, prog], env={"MY_LR": "lr={lr}", "MY_TRIAL": "{trial_id}"}
    )
    study.optimize(objective, n_trials=1, space={"lr": Float(0, 1)})
    env = json.loads(out.read_text())
    trial = study.trials[0]
    checkpoint_dir = study.artifact_dir / "trial_0"
    logdir = study.artifact_dir / "logs" / "trial_0"  # not inside the checkpoint directory
    assert env["MY_LR"] == "lr=0.25" and env["MY_TRIAL"] == "0"
    assert env["TUNINGFORK_TRIAL_ID"] == "0"
    assert env["TUNINGFORK_STUDY"] == "envs"
    assert env["TUNINGFORK_CHECKPOINT_DIR"] == str(checkpoint_dir)
    assert env["TUNINGFORK_BUDGET"] == "" and env["TUNINGFORK_LAST_STEP"] == ""
    assert env["TUNINGFORK_RESUMED"] == "0"
    seed = study.reader.seed
    assert env["TUNINGFORK_SEED"] == str(derive_seed(seed, 0))
    assert json.loads(env["TUNINGFORK_PARAMS"]) == {"lr": 0.25} == trial.params
    assert env["TUNINGFORK_REPORT_FILE"] == str(logdir / "reports.jsonl")
    assert env["TUNINGFORK_CONTROL_FILE"] == str(logdir / "control.json")


def test_logs_are_written_and_recorded(tmp_path, make_study):
    prog = script(
        tmp_path,
        """
        import json, sys
        print("to stdout")
        print("to stderr", file=sys.stderr)
        print(json.dumps({"value": 1}))
        """,
    )
    study = make_study()
    study.optimize(CommandObjective([sys.executable, prog]), n_trials=1)
    attrs = study.trials[0].user_attrs
    stdout, stderr = Path(attrs["stdout_log"]), Path(attrs["stderr_log"])
    assert stdout == study.artifact_dir / "logs" / "trial_0" / "stdout.log"
    assert stderr == study.artifact_dir / "logs" / "trial_0" / "stderr.log"
    out_lines = stdout.read_text().splitlines()
    assert out_lines[0].startswith("==> tuningfork: trial 0 run at")
    assert out_lines[1:] == ["to stdout", '{"value": 1}']
    assert stderr.read_text().splitlines()[1:] == ["to stderr"]


# -- the report protocol --------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["file", "stdout"])
def test_scheduler_stops_a_trial_through_the_control_file(tmp_path, make_study, channel):
    seen = tmp_path / "seen.json"
    pidfile = tmp_path / "pid"
    prog = script(
        tmp_path,
        f"""
        import json, os, sys
        import client
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        if {channel!r} == "stdout":
            del os.environ["TUNINGFORK_REPORT_FILE"]     # the client prints the report lines
        answers = []
        for step in range(1, 11):
            answers.append(client.report(value=step / 10, step=step))
            if client.should_stop():
                break
        control = json.load(open(os.environ["TUNINGFORK_CONTROL_FILE"]))
        json.dump({{"answers": answers, "control": control}}, open({str(seen)!r}, "w"))
        client.result(value=answers.count("continue"))
        """,
    )
    study = make_study(scheduler=tuningfork.ThresholdStopping(upper=0.35))
    objective = CommandObjective([sys.executable, prog], grace_period=GRACE)
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state is TrialState.PRUNED
    assert trial.reason == "stopped by the scheduler at step 4"
    assert trial.intermediate_values == {1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4}
    record = json.loads(seen.read_text())
    assert record["answers"] == ["continue"] * 3 + ["stop"]
    assert record["control"] == {"action": "stop", "step": 4}
    assert_dead(int(pidfile.read_text()))


def test_program_that_ignores_stop_is_terminated_then_killed(tmp_path, make_study):
    pidfile = tmp_path / "pid"
    prog = script(
        tmp_path,
        f"""
        import os, signal, time
        import client
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        client.report(value=5.0, step=1)     # answered "stop", ignored
        time.sleep(60)
        """,
    )
    study = make_study(scheduler=tuningfork.ThresholdStopping(upper=1.0))
    objective = CommandObjective([sys.executable, prog], grace_period=0.3)
    start = time.monotonic()
    study.optimize(objective, n_trials=1)
    assert 0.5 < time.monotonic() - start < 4  # two grace periods, then SIGKILL
    trial = study.trials[0]
    assert trial.state is TrialState.PRUNED
    assert "did not exit within 0.3 s; sent SIGTERM then SIGKILL" in trial.reason
    assert_dead(int(pidfile.read_text()))


def test_program_that_ignores_stop_but_obeys_sigterm(tmp_path, make_study):
    marker = tmp_path / "terminated"
    prog = script(
        tmp_path,
        f"""
        import time
        import client
        client.on_terminate(lambda: open({str(marker)!r}, "w").write("checkpoint"))
        client.report(value=5.0, step=1)
        time.sleep(60)
        """,
    )
    study = make_study(scheduler=tuningfork.ThresholdStopping(upper=1.0))
    study.optimize(CommandObjective([sys.executable, prog], grace_period=0.3), n_trials=1)
    trial = study.trials[0]
    assert trial.state is TrialState.PRUNED and trial.reason.endswith("sent SIGTERM)")
    assert marker.read_text() == "checkpoint"


ASHA_PROGRAM = """
import json, os, sys
import client
ckpt = os.path.join(client.checkpoint_dir(), "state.json")
runs = os.path.join(client.checkpoint_dir(), "runs.jsonl")
x = client.params()["x"]
start = 1
if client.resumed():
    state = json.load(open(ckpt))
    assert state["epoch"] == client.last_step()
    start = state["epoch"] + 1
with open(runs, "a") as f:
    f.write(json.dumps({"resumed": os.environ["TUNINGFORK_RESUMED"],
                        "last_step": os.environ["TUNINGFORK_LAST_STEP"],
                        "budget": os.environ["TUNINGFORK_BUDGET"], "argv": sys.argv[1:],
                        "start": start}) + "\\n")
for epoch in range(start, int(client.budget()) + 1):
    answer = client.report(value=x + 1.0 / epoch, step=epoch)
    if answer != "continue":
        json.dump({"epoch": epoch, "answer": answer}, open(ckpt, "w"))
        sys.exit(0)
client.result(value=x + 1.0 / epoch)
"""


def test_asha_pauses_and_resumes_a_trial(tmp_path, make_study):
    prog = script(tmp_path, ASHA_PROGRAM)
    scheduler = tuningfork.ASHA(min_budget=1, max_budget=3, eta=3, mode="promotion")
    study = make_study(scheduler=scheduler)
    for x in (0.1, 0.5, 0.9):
        study.enqueue_trial({"x": x})
    objective = CommandObjective([sys.executable, prog, "--epochs", "{budget}"], grace_period=2)
    study.optimize(objective, n_trials=4, space={"x": Float(0, 1)})
    trials = study.trials
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.PAUSED,
        TrialState.PAUSED,
    ]
    best = trials[0]
    assert best.intermediate_values == {1: 1.1, 2: 0.6, 3: 0.1 + 1 / 3}
    assert best.value == pytest.approx(0.1 + 1 / 3)
    runs = [
        json.loads(line)
        for line in (study.artifact_dir / "trial_0" / "runs.jsonl").read_text().splitlines()
    ]
    assert runs == [
        {"resumed": "0", "last_step": "", "budget": "1", "argv": ["--epochs", "1"], "start": 1},
        {"resumed": "1", "last_step": "1", "budget": "3", "argv": ["--epochs", "3"], "start": 2},
    ]
    assert trials[1].intermediate_values == {1: 1.5}
    state = json.loads((study.artifact_dir / "trial_1" / "state.json").read_text())
    assert state == {"epoch": 1, "answer": "pause"}
    # one header per run in the appended log
    log = (study.artifact_dir / "logs" / "trial_0" / "stdout.log").read_text()
    assert log.count("==> tuningfork: trial 0 run at") == 2 and "resumed after step 1" in log


class SlowStore(FileCheckpointStore):
    """A checkpoint store whose commits take longer than `client.ANSWER_TIMEOUT` (a large
    checkpoint on a slow disk)."""

    def commit(self, source: Path, trial: int, step: int) -> dict[str, Any] | None:
        time.sleep(tuningfork.client.ANSWER_TIMEOUT + 0.5)
        return super().commit(source, trial, step)


def test_pbt_commits_what_the_program_saved_before_reporting_however_long_it_takes(
    tmp_path, make_study
):
    """The program saves its checkpoint every step, before each report, and trains on
    until it is told to pause (it does not read the budget): it must still be waiting in
    ``client.report`` while the study snapshots its checkpoint directory."""
    prog = script(
        tmp_path,
        """
        import json, os, sys
        import client
        path = os.path.join(client.checkpoint_dir(), "state.json")
        step = json.load(open(path))["step"] if client.resumed() else 0
        for step in range(step + 1, 5):
            json.dump({"step": step}, open(path, "w"))
            answer = client.report(value=float(step), step=step)
            print(f"step {step}: {answer}", file=sys.stderr)
            if answer != "continue":
                sys.exit(0)
        client.result(value=float(step))
        """,
    )
    store = SlowStore(tmp_path / "committed")
    pbt = tuningfork.PBT(2, 2, 4, keep_checkpoints=True, checkpoint_store=store)
    study = make_study(scheduler=pbt, direction="maximize")
    objective = CommandObjective([sys.executable, prog], grace_period=2)
    study.optimize(objective, n_jobs=2, space={"x": Float(0, 1)})
    for trial in study.trials:
        assert trial.state is TrialState.COMPLETE and trial.intermediate_values == {
            1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0}  # fmt: skip
        for step, commit in trial.system_attrs["checkpoints"].items():
            snapshot = json.loads((store.root / commit["path"] / "state.json").read_text())
            assert snapshot == {"step": int(step)}  # not a later step's state
        assert "step 2: pause" in Path(trial.user_attrs["stderr_log"]).read_text()


def test_pbt_warns_a_program_that_saves_its_checkpoint_after_the_answer(tmp_path, make_study):
    """The halving pattern (save on "pause") commits nothing under PBT; with the logs kept
    out of the checkpoint directory, the study sees that and says so."""
    prog = script(
        tmp_path,
        """
        import os, sys
        import client
        if client.report(value=1.0, step=1) != "continue":
            open(os.path.join(client.checkpoint_dir(), "state"), "w").write("1")  # too late
            sys.exit(0)
        """,
    )
    study = make_study(scheduler=tuningfork.PBT(2, 1, 2), direction="maximize")
    objective = CommandObjective([sys.executable, prog], grace_period=2)
    with pytest.warns(UserWarning, match=r"with no files in .*save the checkpoint there \*before"):
        study.optimize(objective, n_trials=2, space={"x": Float(0, 1)})
    assert [t.state for t in study.trials] == [TrialState.PAUSED] * 2
    assert all(not t.system_attrs.get("checkpoints") for t in study.trials)


def test_bad_reports_warn_once_and_are_ignored(tmp_path, make_study):
    prog = script(
        tmp_path,
        """
        import json
        print(json.dumps({"tuningfork": {"value": 1.0}}))            # no step
        print(json.dumps({"tuningfork": {"step": "x", "value": 1.0}}))  # bad step
        print(json.dumps({"tuningfork": {"step": 1, "loss": 1.0}}))  # no metric
        print(json.dumps({"tuningfork": {"step": 2, "value": 2.0}}))
        print(json.dumps({"value": 3.0}))
        """,
    )
    study = make_study()
    with pytest.warns(UserWarning) as record:
        study.optimize(CommandObjective([sys.executable, prog]), n_trials=1)
    messages = [str(w.message) for w in record]
    assert sum("integer 'step'" in m for m in messages) == 1
    assert sum("without a number for 'value'" in m for m in messages) == 1
    trial = study.trials[0]
    assert trial.state is TrialState.COMPLETE and trial.value == 3.0
    assert trial.intermediate_values == {2: 2.0}


# -- concurrency, preemption, interrupts ----------------------------------------------------


def test_concurrent_trials(tmp_path, make_study):
    out = tmp_path / "times"
    out.mkdir()
    prog = script(
        tmp_path,
        f"""
        import json, os, sys, time
        import client
        start = time.time()
        for step in (1, 2, 3):
            client.report(value=float(sys.argv[1]) * step, step=step)
            time.sleep(0.1)
        end = time.time()
        name = os.path.join({str(out)!r}, os.environ["TUNINGFORK_TRIAL_ID"])
        json.dump([start, end], open(name, "w"))
        client.result(value=float(sys.argv[1]))
        """,
    )
    study = make_study()
    objective = CommandObjective([sys.executable, prog, "{x}"])
    study.optimize(objective, n_trials=4, n_jobs=2, space={"x": Float(0, 1)})
    trials = study.trials
    assert len(trials) == 4 and all(t.state is TrialState.COMPLETE for t in trials)
    for t in trials:
        x = t.params["x"]
        assert t.value == x
        assert t.intermediate_values == {1: x, 2: x * 2, 3: x * 3}
        assert Path(t.user_attrs["stdout_log"]).parent.name == f"trial_{t.number}"
    spans = sorted(json.loads((out / str(t.number)).read_text()) for t in trials)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # two ran at once


def test_preemption_pauses_the_trial_and_the_next_run_resumes_it(tmp_path, make_study):
    started = tmp_path / "started"
    prog = script(
        tmp_path,
        f"""
        import json, os, time
        import client
        ckpt = os.path.join(client.checkpoint_dir(), "ckpt.json")
        def save():
            json.dump({{"control": json.load(open(os.environ["TUNINGFORK_CONTROL_FILE"]))}},
                      open(ckpt, "w"))
        client.on_terminate(save)
        if client.resumed():
            client.result(value=42.0)
        else:
            client.report(value=1.0, step=1)
            open({str(started)!r}, "w").write("1")
            time.sleep(60)
        """,
    )
    study = make_study()
    objective = CommandObjective([sys.executable, prog], grace_period=2)

    def preempt():
        wait_for(started)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=preempt)
    killer.start()
    study.optimize(objective, n_trials=1)
    killer.join()
    assert study.preempted_by == signal.SIGTERM
    trial = study.trials[0]
    assert trial.state is TrialState.PAUSED
    assert trial.reason == "preempted" and trial.system_attrs["preempted"] is True
    checkpoint = json.loads((study.artifact_dir / "trial_0" / "ckpt.json").read_text())
    assert checkpoint == {"control": {"action": "pause"}}

    study.optimize(objective, n_trials=1)  # a later worker resumes it first
    trial = study.trials[0]
    assert len(study.trials) == 1
    assert trial.state is TrialState.COMPLETE and trial.value == 42.0


def test_keyboard_interrupt_kills_the_program(tmp_path, make_study):
    pidfile = tmp_path / "pid"
    prog = script(
        tmp_path,
        f"""
        import os, time
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        time.sleep(60)
        """,
    )
    study = make_study()

    def interrupt():
        wait_for(pidfile)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt)
    thread.start()
    with pytest.raises(KeyboardInterrupt):
        study.optimize(CommandObjective([sys.executable, prog], grace_period=GRACE), n_trials=1)
    thread.join()
    assert_dead(int(pidfile.read_text()))
    trial = study.trials[0]
    assert trial.state is TrialState.FAIL and "interrupted" in trial.reason


def test_keyboard_interrupt_with_threads_leaves_no_program_running(tmp_path, make_study):
    pids = tmp_path / "pids"
    pids.mkdir()
    prog = script(
        tmp_path,
        f"""
        import os, time
        open(os.path.join({str(pids)!r}, str(os.getpid())), "w").close()
        time.sleep(60)
        """,
    )
    study = make_study()

    def interrupt():
        end = time.monotonic() + 5
        while len(list(pids.iterdir())) < 2 and time.monotonic() < end:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt)
    thread.start()
    objective = CommandObjective([sys.executable, prog], grace_period=GRACE)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=2, n_jobs=2)
    thread.join()
    started = [int(p.name) for p in pids.iterdir()]
    assert len(started) == 2
    for pid in started:  # the worker threads saw their trials end and killed the programs
        assert_dead(pid)
    assert all(t.state is TrialState.FAIL and "interrupted" in t.reason for t in study.trials)
