"""tuningfork.client, the program's side of the report protocol: defaults outside
tuningfork, the report and control files inside it, SIGTERM handling, and that the file
stays a standalone standard-library module."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tuningfork import client

VARS = (
    "TUNINGFORK_PARAMS",
    "TUNINGFORK_TRIAL_ID",
    "TUNINGFORK_BUDGET",
    "TUNINGFORK_LAST_STEP",
    "TUNINGFORK_RESUMED",
    "TUNINGFORK_CHECKPOINT_DIR",
    "TUNINGFORK_SEED",
    "TUNINGFORK_REPORT_FILE",
    "TUNINGFORK_CONTROL_FILE",
    "TUNINGFORK_STUDY",
)


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for name in VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(client, "_last_action", "continue")


@pytest.fixture
def inside(tmp_path, monkeypatch):
    """The environment tuningfork gives a resumed trial's program."""
    env = {
        "TUNINGFORK_PARAMS": json.dumps({"lr": 0.01, "opt": "sgd"}),
        "TUNINGFORK_TRIAL_ID": "7",
        "TUNINGFORK_BUDGET": "9",
        "TUNINGFORK_LAST_STEP": "3",
        "TUNINGFORK_RESUMED": "1",
        "TUNINGFORK_CHECKPOINT_DIR": str(tmp_path / "ckpt"),
        "TUNINGFORK_SEED": "12345",
        "TUNINGFORK_REPORT_FILE": str(tmp_path / "reports.jsonl"),
        "TUNINGFORK_CONTROL_FILE": str(tmp_path / "control.json"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "control.json").write_text('{"action": "continue"}')
    return tmp_path


def answer_later(path: Path, answer: dict, delay: float) -> threading.Thread:
    def write() -> None:
        time.sleep(delay)
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(answer))
        os.replace(temp, path)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_outside_tuningfork_defaults(capsys):
    assert client.params() == {}
    assert client.trial_id() is None
    assert client.budget() is None
    assert client.last_step() is None
    assert client.resumed() is False
    assert client.checkpoint_dir() is None
    assert client.seed() is None
    assert client.report(loss=0.5, step=2) == "continue"
    assert client.should_stop() is False
    client.result(loss=0.25, acc=0.9)
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"tuningfork": {"step": 2, "loss": 0.5}},
        {"loss": 0.25, "acc": 0.9},
    ]


def test_inside_tuningfork_values(inside):
    assert client.params() == {"lr": 0.01, "opt": "sgd"}
    assert client.trial_id() == 7
    assert client.budget() == 9.0
    assert client.last_step() == 3
    assert client.resumed() is True
    assert client.checkpoint_dir() == str(inside / "ckpt")
    assert client.seed() == 12345


def test_report_appends_and_waits_for_the_answer_to_its_step(inside, capsys):
    control = inside / "control.json"
    writer = answer_later(control, {"action": "continue", "step": 4}, 0.1)
    start = time.monotonic()
    assert client.report(loss=0.5, step=4) == "continue"
    assert 0.05 < time.monotonic() - start < 1.5  # it waited for the step-4 answer
    writer.join()
    assert client.should_stop() is False

    writer = answer_later(control, {"action": "pause", "step": 5}, 0.1)
    assert client.report(loss=0.4, step=5) == "pause"
    writer.join()
    assert client.should_stop() is True
    lines = (inside / "reports.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"tuningfork": {"step": 4, "loss": 0.5}},
        {"tuningfork": {"step": 5, "loss": 0.4}},
    ]
    assert capsys.readouterr().out == ""  # reports went to the file, not stdout


def test_report_without_an_answer_continues_after_the_timeout(inside, monkeypatch):
    monkeypatch.setattr(client, "ANSWER_TIMEOUT", 0.2)
    start = time.monotonic()
    assert client.report(loss=1.0, step=1) == "continue"
    assert time.monotonic() - start >= 0.2


def test_report_prints_when_there_is_no_report_file(inside, monkeypatch, capsys):
    monkeypatch.delenv("TUNINGFORK_REPORT_FILE")
    (inside / "control.json").write_text('{"action": "stop", "step": 2}')
    assert client.report(loss=1.0, step=2) == "stop"
    assert json.loads(capsys.readouterr().out) == {"tuningfork": {"step": 2, "loss": 1.0}}


def test_should_stop_sees_a_later_pause(inside):
    assert client.should_stop() is False
    (inside / "control.json").write_text('{"action": "pause"}')  # a preempted worker
    assert client.should_stop() is True


def test_on_terminate_calls_back_and_exits_zero(tmp_path):
    marker = tmp_path / "saved"
    code = f"""
import sys, time
sys.path.insert(0, {str(Path(client.__file__).parent)!r})
import client
client.on_terminate(lambda: open({str(marker)!r}, "w").write("ckpt"))
print("ready", flush=True)
time.sleep(30)
sys.exit(5)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        proc.wait()
    assert marker.read_text() == "ckpt"


def test_client_is_standalone_and_python38_compatible():
    source = Path(client.__file__).read_text()
    tree = ast.parse(source, feature_version=(3, 8))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    # importable on its own, without the tuningfork package
    code = "import sys; sys.modules.pop('tuningfork', None); import client; print(client.params())"
    out = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(Path(client.__file__).parent)!r}); {code}",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={},
    )
    assert out.stdout.strip() == "{}"


def test_the_step_comes_last_as_in_trial_report(monkeypatch):
    monkeypatch.delenv("TUNINGFORK_REPORT_FILE", raising=False)
    monkeypatch.delenv("TUNINGFORK_CONTROL_FILE", raising=False)
    with pytest.warns(DeprecationWarning, match="step=N"):
        assert client.report(3, loss=0.5) == "continue"  # the old order still works
    with pytest.raises(TypeError, match="step"):
        client.report(loss=0.5)
    with pytest.raises(TypeError, match="twice"):
        client.report(3, loss=0.5, step=3)


def test_a_report_at_the_budget_waits_for_its_answer_past_the_timeout(inside, monkeypatch):
    """At the budget a population-based scheduler snapshots the checkpoint directory
    before it answers: the program must still be waiting, however long that takes."""
    monkeypatch.setattr(client, "ANSWER_TIMEOUT", 0.1)
    writer = answer_later(inside / "control.json", {"action": "pause", "step": 9}, 0.6)
    start = time.monotonic()
    assert client.report(loss=0.5, step=9) == "pause"  # TUNINGFORK_BUDGET is 9
    assert time.monotonic() - start >= 0.55
    writer.join()
    # a step that is not an int gets no answer from tuningfork: the timeout applies
    (inside / "control.json").write_text('{"action": "continue"}')
    monkeypatch.setattr(client, "_last_action", "continue")
    start = time.monotonic()
    assert client.report(loss=0.5, step=9.5) == "continue"  # type: ignore[arg-type]
    assert time.monotonic() - start < 0.5


def test_a_report_at_the_budget_stops_waiting_when_tuningfork_is_gone(tmp_path):
    """A program whose worker died (it is re-parented) goes on rather than wait forever."""
    marker = tmp_path / "answer"
    child = f"""
import os, sys
sys.path.insert(0, {str(Path(client.__file__).parent)!r})
os.environ.update(TUNINGFORK_BUDGET="3", TUNINGFORK_CONTROL_FILE={str(tmp_path / "c.json")!r},
                  TUNINGFORK_REPORT_FILE={str(tmp_path / "r.jsonl")!r})
import client
answer = client.report(loss=1.0, step=3)
open({str(marker)!r}, "w").write(answer)
"""
    parent = f"""
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", {child!r}])
time.sleep(1.0)  # the child is waiting for its answer; then this parent dies
"""
    subprocess.run([sys.executable, "-c", parent], check=True, timeout=30)
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "continue"
