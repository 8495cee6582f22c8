"""PBT and PB2 on a command tuned from a study file (`tuningfork run`): each run gets the
member's current parameters, saves its checkpoint before reporting at the budget (the
report commits it) and, after an exploit, loads the donor's committed bytes."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

import tuningfork as tf
from tuningfork.cli import main
from tuningfork.config import load_config
from tuningfork.trial import TrialState

pytestmark = pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")

# The toy of Jaderberg et al. (2017, Fig. 2): theta climbs Q(theta) = 1.2 - |theta|^2 by
# gradient steps on a surrogate weighted by the hyperparameters h0, h1. The checkpoint is
# one JSON file; each run appends what it was given and what it loaded to a side file.
TOY = textwrap.dedent(
    """
    import json, os, sys
    from tuningfork import client

    h0, h1, budget, ckpt, side = sys.argv[1:6]
    h0, h1, budget = float(h0), float(h1), int(budget)
    path = os.path.join(ckpt, "theta.json")
    run = {"trial": client.trial_id(), "argv": {"h0": h0, "h1": h1}, "env": client.params(),
           "last_step": client.last_step(), "budget": budget, "files": sorted(os.listdir(ckpt))}
    state = {"theta": [0.9, 0.9], "step": 0}
    if client.resumed():
        with open(path, "rb") as f:
            run["loaded"] = f.read().decode()
        state = json.loads(run["loaded"])
    with open(side, "a") as f:
        f.write(json.dumps(run) + "\\n")
    theta, step = state["theta"], state["step"]
    while step < budget:
        step += 1
        theta = [theta[0] * (1 - 0.2 * h0), theta[1] * (1 - 0.2 * h1)]
        q = 1.2 - (theta[0] ** 2 + theta[1] ** 2)
    with open(path, "w") as f:  # BEFORE the report at the budget: the report commits it
        json.dump({"theta": theta, "step": step, "trial": client.trial_id()}, f)
    if client.report(q=q, step=step) == "continue":
        client.result(q=q)
    """
)


def _study_file(tmp_path: Path, scheduler: str) -> Path:
    program = tmp_path / "toy.py"
    program.write_text(TOY)
    doc: dict[str, Any] = {
        "study": "pbt",
        "storage": "sqlite:///pbt.db",
        "seed": 3,
        "direction": "maximize",
        "metric": "q",
        "space": {
            "h0": {"type": "float", "low": 0.0, "high": 1.0},
            "h1": {"type": "float", "low": 0.0, "high": 1.0},
        },
        "sampler": "random",
        "scheduler": {
            "name": scheduler,
            "population_size": 4,
            "perturbation_interval": 2,
            "max_budget": 8,
            "keep_checkpoints": True,
        },  # fmt: skip
        "command": [
            sys.executable,
            str(program),
            "{h0}",
            "{h1}",
            "{budget}",
            "{checkpoint_dir}",
            str(tmp_path / "runs.jsonl"),
        ],  # fmt: skip
        "limits": {"trial_timeout": 60, "grace_period": 5},
        "resources": {"workers": 2},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _hash_of_one_file(name: str, data: bytes) -> str:
    """`directory_hash` of a folder holding only ``name`` with ``data``."""
    digest = hashlib.sha256()
    digest.update(len(name.encode()).to_bytes(8, "big"))
    digest.update(name.encode())
    digest.update(data)
    return digest.hexdigest()


def _params_at(trial: tf.FrozenTrial, last_step: int) -> dict[str, float]:
    """The parameters ``trial`` ran with after ``last_step``: its first ones, changed by
    each exploit at or before that step."""
    exploits = trial.system_attrs["pbt"].get("exploits", [])
    params = dict(exploits[0]["before"]) if exploits else dict(trial.params)
    for exploit in exploits:
        if exploit["step"] <= last_step:
            params = dict(exploit["after"])
    return params


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["pbt", "pb2"])
def test_population_based_training_of_a_command(tmp_path, capsys, scheduler):
    path = _study_file(tmp_path, scheduler)
    assert main(["run", str(path)]) == 0
    assert "population 4, asynchronous, exploit every 2 steps" in capsys.readouterr().out
    study = tf.load_study("pbt", f"sqlite:///{tmp_path / 'pbt.db'}")
    trials = {t.number: t for t in study.trials}
    # every member trained to max_budget, with a committed checkpoint at each boundary
    assert sorted(t.system_attrs["pbt"]["member"] for t in trials.values()) == [0, 1, 2, 3]
    for t in trials.values():
        assert t.state is TrialState.COMPLETE and t.last_step == 8
        assert sorted(t.intermediate_values) == [2, 4, 6, 8]
        commits = t.system_attrs["checkpoints"]
        assert sorted(commits, key=int) == ["2", "4", "6", "8"]
        assert all(c["files"] == 1 for c in commits.values())  # the checkpoint, no logs
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert len(runs) == 16  # 4 runs per member: to 2, 4, 6 and 8
    exploits = {
        (t.number, e["step"]): e
        for t in trials.values()
        for e in t.system_attrs["pbt"].get("exploits", [])
    }
    assert exploits, "no member exploited another"
    for run in runs:
        trial = trials[run["trial"]]
        last = run["last_step"] or 0
        assert run["budget"] == last + 2
        # the command line and TUNINGFORK_PARAMS carry the values of this run, new after
        # an exploit
        assert run["argv"] == run["env"] == _params_at(trial, last)
        if last == 0:
            assert "loaded" not in run and run["files"] == []
            continue
        assert run["files"] == ["theta.json"]  # only the checkpoint: logs are kept apart
        loaded = json.loads(run["loaded"])
        assert loaded["step"] == last
        exploit = exploits.get((trial.number, last))
        if exploit is None:  # went on from its own checkpoint of that step
            assert loaded["trial"] == trial.number
            continue
        # the donor's committed bytes, exactly: its snapshot and the hash in the log
        donor = trials[exploit["donor"]]
        commit = donor.system_attrs["checkpoints"][str(last)]
        assert loaded["trial"] == donor.number and exploit["sha256"] == commit["sha256"]
        assert _hash_of_one_file("theta.json", run["loaded"].encode()) == commit["sha256"]
        snapshot = study.artifact_dir / "committed" / commit["path"] / "theta.json"
        assert snapshot.read_text() == run["loaded"]
        assert run["argv"] == exploit["after"] != exploit["before"]
    # a member that copied another keeps its own logs (the copy replaced only the checkpoint)
    for number, _ in exploits:
        log = Path(trials[number].user_attrs["stdout_log"]).read_text()
        headers = [line for line in log.splitlines() if line.startswith("==> tuningfork:")]
        assert len(headers) == 4 and all(f"trial {number} run" in h for h in headers)


@pytest.mark.parametrize(("name", "cls"), [("pbt", tf.PBT), ("pb2", tf.PB2)])
def test_validate_accepts_population_based_schedulers(tmp_path, capsys, name, cls):
    path = _study_file(tmp_path, name)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"scheduler:  {name}(population_size=4, perturbation_interval=2, max_budget=8" in out
    scheduler = load_config(path).make_scheduler()
    assert type(scheduler) is cls
    assert (scheduler.population_size, scheduler.perturbation_interval) == (4, 2)
    assert scheduler.max_budget == 8 and scheduler.keep_checkpoints is True


BAD_OPTIONS = [
    ("population_size", 1, "population_size must be an int >= 2, got 1"),
    ("perturbation_interval", 8, "the first perturbation boundary (8"),
    ("populaton_size", 4, "unknown scheduler option 'populaton_size'; did you mean 'popu"),
    ("quantile_fraction", 0.9, "quantile_fraction must be a number in (0, 0.5], got 0.9"),
    ("checkpoint_store", "s3://b", "PB2's option 'checkpoint_store' takes a Python object"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_OPTIONS)
def test_validate_names_a_bad_population_option_at_its_line(tmp_path, capsys, key, value, message):
    path = _study_file(tmp_path, "pb2")
    doc = yaml.safe_load(path.read_text())
    doc["scheduler"] = {"name": "pb2", "max_budget": 8, key: value}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    lines = path.read_text().splitlines()
    line = 1 + next(i for i, text in enumerate(lines) if text.startswith(f"  {key}:"))
    assert main(["validate", str(path)]) == 2
    assert f"study.yaml:{line}: scheduler.{key}: {message}" in capsys.readouterr().err
    assert main(["run", str(path)]) == 2  # nothing runs
    assert not (tmp_path / "pbt.db").exists()
