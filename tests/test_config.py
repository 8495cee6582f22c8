"""YAML study files: parsing into objects, and validation errors with file:line: field."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path

import pytest
import yaml

from tuningfork.config import (
    EXAMPLE_STUDY_FILE,
    StudyConfig,
    load_config,
    parse_config,
    redact_study_file,
    validate_summary,
)
from tuningfork.exceptions import ConfigError, TuningforkError
from tuningfork.samplers import AutoSampler, GridSampler, TPESampler
from tuningfork.schedulers import ASHA, AnyOf, MedianStopping, PatienceStopping
from tuningfork.space import Categorical, Float, Int

FULL = """\
study: mlp-digits
storage: sqlite:///hpo.db
direction: maximize
metric: val_acc
seed: 7
space:
  lr: {type: float, low: 1e-4, high: 1e-1, log: true}
  layers: {type: int, low: 1, high: 4}
  optimizer: [sgd, adam]
  momentum: {type: float, low: 0.0, high: 0.99, when: {optimizer: sgd}}
sampler: {name: tpe, n_startup_trials: 4}
scheduler: {name: asha, min_budget: 1, max_budget: 27, eta: 3}
command: [python, train.py, --lr, "{lr}", --layers, "{layers}", --epochs, 10]
env: {OMP_NUM_THREADS: 1, RUN: "{study}-{trial_id}"}
workdir: runs/{trial_id}
result: {from: file, path: "{checkpoint_dir}/result.json"}
report_metric: acc
limits: {n_trials: 50, timeout: 3600, trial_timeout: 600, max_retries: 1, grace_period: 5}
resources:
  workers: 2
  slurm:
    partition: gpu
    account: proj
    time_limit_min: 120
    gpus_per_task: 1
    mem_gb: 32
    additional_sbatch: {constraint: a100}
"""

MINIMAL = """\
study: s
space:
  x: {type: float, low: 0.0, high: 1.0}
command: [prog, "{x}"]
"""


def errors_of(text: str, source: str = "study.yaml") -> list[str]:
    """The problem lines of the ConfigError that `text` raises."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, source)
    message = str(info.value)
    assert message.splitlines() == info.value.problems
    return info.value.problems


def single_error(text: str) -> str:
    problems = errors_of(text)
    assert len(problems) == 1, problems
    return problems[0]


def with_line(text: str, number: int, line: str) -> str:
    """`text` with its 1-based line `number` replaced."""
    lines = text.splitlines()
    lines[number - 1] = line
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- round trip


def test_full_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(FULL)
    config = load_config(path)
    assert isinstance(config, StudyConfig)
    assert config.study == "mlp-digits"
    assert config.resolved_directions == ["maximize"]
    assert config.resolved_metrics == ["val_acc"]
    assert config.resolved_report_metric == "acc"
    assert config.seed == 7
    assert config.source == str(path)

    space = config.space()
    assert space.names == ("lr", "layers", "optimizer", "momentum")
    assert space["lr"] == Float(1e-4, 0.1, log=True)
    assert space["layers"] == Int(1, 4)
    assert space["optimizer"] == Categorical(["sgd", "adam"])
    assert space["momentum"] == Float(0.0, 0.99, when={"optimizer": "sgd"})

    sampler = config.make_sampler()
    assert isinstance(sampler, TPESampler)
    assert sampler.n_startup_trials == 4
    assert sampler.seed == 7  # the file's seed
    scheduler = config.make_scheduler()
    assert isinstance(scheduler, ASHA)
    assert (scheduler.min_budget, scheduler.max_budget, scheduler.eta) == (1, 27, 3)

    # numbers in the argument list and env become text
    assert config.command == [
        "python", "train.py", "--lr", "{lr}", "--layers", "{layers}", "--epochs", "10",
    ]  # fmt: skip
    assert config.env == {"OMP_NUM_THREADS": "1", "RUN": "{study}-{trial_id}"}
    assert config.workdir == "runs/{trial_id}"
    assert config.result.source == "file"
    assert config.result.path == "{checkpoint_dir}/result.json"
    assert config.limits.n_trials == 50
    assert config.limits.timeout == 3600.0
    assert config.limits.trial_timeout == 600.0
    assert config.limits.max_retries == 1
    assert config.limits.grace_period == 5.0
    assert config.resources.workers == 2
    slurm = config.slurm_options()
    assert slurm["partition"] == "gpu"
    assert slurm["account"] == "proj"
    assert slurm["time_limit_min"] == 120
    assert slurm["gpus_per_task"] == 1
    assert slurm["mem_gb"] == 32.0
    assert slurm["additional_sbatch"] == {"constraint": "a100"}
    assert slurm["n_workers"] == 2  # default: resources.workers
    assert slurm["timeout"] == 3600.0


def test_slurm_options_are_launch_slurm_keywords() -> None:
    import inspect

    from tuningfork.execution.slurm import launch_slurm

    accepted = set(inspect.signature(launch_slurm).parameters)
    options = parse_config(FULL).slurm_options()
    assert set(options) <= accepted
    assert parse_config(MINIMAL).slurm_options() == {}


def test_defaults_of_a_minimal_file() -> None:
    config = parse_config(MINIMAL)
    assert config.resolved_directions == ["minimize"]
    assert config.resolved_metrics == ["value"]
    assert config.resolved_report_metric == "value"
    assert isinstance(config.make_sampler(), AutoSampler)
    assert config.make_scheduler() is None
    assert config.result.source == "stdout"
    assert config.env == {}
    assert config.limits.n_trials is None
    assert config.limits.max_retries == 0
    assert config.resources.workers == 1
    assert config.resources.slurm is None


def test_sampler_and_scheduler_forms() -> None:
    config = parse_config(MINIMAL + "sampler: grid\nscheduler: median\nseed: 3\n")
    sampler = config.make_sampler()
    assert isinstance(sampler, GridSampler)
    assert sampler.seed == 3
    assert isinstance(config.make_scheduler(), MedianStopping)

    config = parse_config(
        MINIMAL + "sampler: TPESampler\n"
        "scheduler:\n  any_of:\n    - median\n    - {name: patience, patience: 3}\n"
    )
    assert isinstance(config.make_sampler(), TPESampler)
    scheduler = config.make_scheduler()
    assert isinstance(scheduler, AnyOf)
    assert [type(s) for s in scheduler.schedulers] == [MedianStopping, PatienceStopping]
    assert scheduler.schedulers[1].patience == 3


def test_multi_objective_and_result_forms() -> None:
    config = parse_config(
        MINIMAL
        + "directions: [minimize, maximize]\nmetrics: [loss, acc]\n"
        + 'result: {from: regex, pattern: "loss=(?P<loss>[0-9.]+) acc=(?P<acc>[0-9.]+)"}\n'
    )
    assert config.resolved_directions == ["minimize", "maximize"]
    assert config.resolved_metrics == ["loss", "acc"]
    assert config.resolved_report_metric == "loss"
    assert config.result.source == "regex"
    assert parse_config(MINIMAL + "result: stdout\n").result.source == "stdout"


def test_create_study_uses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(MINIMAL + "storage: sqlite:///db/hpo.db\ndirection: maximize\nseed: 5\n")
    (tmp_path / "db").mkdir()
    config = load_config(path)
    study = config.create_study()
    assert study.name == "s"
    assert study.directions == ("maximize",)
    assert study.system_attrs["seed"] == 5
    assert study.system_attrs["sampler"]["name"] == "AutoSampler"
    assert (tmp_path / "db" / "hpo.db").exists()
    again = config.create_study()  # load_if_exists=True by default
    assert again.name == "s"


# --------------------------------------------------------------------------- storage paths


def test_relative_sqlite_path_resolves_against_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "study.yaml"
    path.write_text(MINIMAL + "storage: sqlite:///hpo.db\n")
    assert load_config(path).storage_url() == f"sqlite:///{folder / 'hpo.db'}"

    path.write_text(MINIMAL + "storage: sqlite:///../data/hpo.db?timeout=5\n")
    assert load_config(path).storage_url() == f"sqlite:///{tmp_path / 'data' / 'hpo.db'}?timeout=5"

    path.write_text(MINIMAL + "storage: journal://study.log\n")
    assert load_config(path).storage_url() == f"journal://{folder / 'study.log'}"


def test_absolute_and_other_urls_are_kept(tmp_path: Path, monkeypatch) -> None:
    for url in (
        "sqlite:////abs/hpo.db",
        "journal:///scratch/s.log",
        "postgresql+psycopg://u@h/db",
        "memory",
    ):
        config = parse_config(MINIMAL + f"storage: {url}\n", base_dir=tmp_path)
        assert config.storage_url() == url


def test_default_storage_beside_the_file_or_from_the_environment(
    tmp_path: Path, monkeypatch
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(MINIMAL)
    assert load_config(path).storage_url() == f"sqlite:///{tmp_path / 'tuningfork.db'}"
    monkeypatch.setenv("TUNINGFORK_STORAGE", "sqlite:///elsewhere.db")
    assert load_config(path).storage_url() == "sqlite:///elsewhere.db"


# --------------------------------------------------------------------------- bad files


def test_unknown_top_level_key_with_suggestion() -> None:
    message = single_error(MINIMAL + "scheduller: asha\n")
    assert message.startswith(
        "study.yaml:5: unknown key 'scheduller'; did you mean 'scheduler'? allowed keys: "
    )
    assert "study, storage" in message and "resources" in message


def test_unknown_nested_key() -> None:
    message = single_error(MINIMAL + "limits:\n  n_trials: 5\n  time_out: 60\n")
    assert message.startswith(
        "study.yaml:7: limits: unknown key 'time_out'; did you mean 'timeout'? allowed keys: "
        "n_trials, timeout, trial_timeout, max_retries, grace_period"
    )
    message = single_error(MINIMAL + "resources:\n  slurm:\n    partiton: gpu\n")
    assert message.startswith(
        "study.yaml:7: resources.slurm: unknown key 'partiton'; did you mean 'partition'?"
    )


def test_wrong_type() -> None:
    message = single_error(MINIMAL + "limits:\n  n_trials: many\n")
    assert message == "study.yaml:6: limits.n_trials: must be an integer, got 'many'"
    message = single_error(MINIMAL + "resources: {workers: 0}\n")
    assert message == "study.yaml:5: resources.workers: must be > 0, got 0"
    message = single_error(MINIMAL + "limits: {timeout: true}\n")
    assert message == "study.yaml:5: limits.timeout: must be a number, got True"
    message = single_error(MINIMAL + "env: [A, B]\n")
    assert message.startswith("study.yaml:5: env: must be a mapping")


def test_bad_direction() -> None:
    message = single_error(MINIMAL + "direction: maximise\n")
    assert message == (
        "study.yaml:5: direction: must be one of 'minimize' or 'maximize', got 'maximise'; "
        "did you mean 'maximize'?"
    )
    message = single_error(MINIMAL + "directions:\n  - minimize\n  - up\nmetrics: [a, b]\n")
    assert message.startswith("study.yaml:7: directions[1]: must be one of")


def test_metric_direction_count_mismatch() -> None:
    message = single_error(MINIMAL + "directions: [minimize, maximize]\nmetrics: [loss]\n")
    assert message.startswith("study.yaml:6: metrics: 1 metric for 2 directions")
    message = single_error(MINIMAL + "directions: [minimize, maximize]\n")
    assert message.startswith("study.yaml:5: directions: 2 directions need 'metrics'")
    message = single_error(MINIMAL + "direction: minimize\ndirections: [minimize]\n")
    assert message == (
        "study.yaml:6: directions: give either 'direction' or 'directions', not both"
    )


def test_unknown_sampler_name_with_suggestion() -> None:
    message = single_error(MINIMAL + "sampler: tpee\n")
    assert message.startswith(  # samplers registered later follow
        "study.yaml:5: sampler: unknown sampler 'tpee'; did you mean 'tpe'? "
        "allowed: auto, random, grid, qmc, tpe, gp"
    )
    message = single_error(MINIMAL + "sampler:\n  name: rnadom\n")
    assert message.startswith(
        "study.yaml:6: sampler.name: unknown sampler 'rnadom'; did you mean 'random'?"
    )


def test_bad_sampler_option_name() -> None:
    message = single_error(MINIMAL + "sampler:\n  name: tpe\n  n_startup: 5\n")
    assert message.startswith(
        "study.yaml:7: sampler.n_startup: unknown sampler option 'n_startup'; "
        "did you mean 'n_startup_trials'? TPESampler takes: n_startup_trials, "
    )


def test_sampler_option_value_error_from_the_class() -> None:
    message = single_error(MINIMAL + "sampler: {name: qmc, qmc_type: sobel}\n")
    assert message.startswith("study.yaml:5: sampler.qmc_type: qmc_type must be one of")


def test_invalid_scheduler_option_value() -> None:
    text = MINIMAL + "scheduler:\n  name: asha\n  max_budget: 27\n  eta: 1\n"
    message = single_error(text)
    assert message.startswith("study.yaml:8: scheduler.eta: eta must be a number > 1")
    assert message.endswith("got 1")


def test_scheduler_errors_without_an_option_point_at_the_scheduler() -> None:
    message = single_error(MINIMAL + "scheduler: threshold\n")
    assert message.startswith("study.yaml:5: scheduler: lower or upper must be given")
    # an error the class pins on an option given in the file (OptionError.option) is
    # reported there, even one about two options
    message = single_error(MINIMAL + "scheduler: {name: sha, min_budget: 9, max_budget: 3}\n")
    assert message.startswith("study.yaml:5: scheduler.max_budget: budgets must satisfy")
    message = single_error(MINIMAL + "scheduler: patience\n")
    assert message == "study.yaml:5: scheduler: scheduler 'patience' needs the option 'patience'"
    message = single_error(MINIMAL + "scheduler: {name: median, warmup: 3}\n")
    assert message.startswith("study.yaml:5: scheduler.warmup: unknown scheduler option 'warmup'")


def test_any_of_member_errors_have_their_path() -> None:
    text = MINIMAL + "scheduler:\n  any_of:\n    - median\n    - {name: patience, patience: 0}\n"
    message = single_error(text)
    assert message.startswith("study.yaml:8: scheduler.any_of[1].patience: patience must be")


def test_invalid_space_spec_has_the_parameter_line() -> None:
    text = (
        "study: s\nspace:\n  x: {type: float, low: 0.0, high: 1.0}\n"
        "  n: {type: int, low: 5, high: 1}\n"
        "  lr: {type: float, low: 0.0, high: 1.0, log: true}\ncommand: [prog]\n"
    )
    problems = errors_of(text)
    assert problems == [
        "study.yaml:4: space.n: low must be <= high, got low=5, high=1; swap them (low == "
        "high fixes the parameter at that value)",
        "study.yaml:5: space.lr: log=True needs low > 0, got low=0.0; use a positive low "
        "or log=False",
    ]


def test_bad_condition_points_at_when() -> None:
    text = (
        "study: s\nspace:\n  opt: [sgd, adam]\n"
        "  momentum:\n    type: float\n    low: 0.0\n    high: 0.9\n    when: {optimiser: sgd}\n"
        "command: [prog]\n"
    )
    message = single_error(text)
    assert message.startswith(
        "study.yaml:8: space.momentum.when: condition on unknown parameter 'optimiser'"
    )


def test_unknown_placeholder() -> None:
    text = MINIMAL.replace('"{x}"', '"{xx}"') + "workdir: runs/{trail_id}\n"
    problems = errors_of(text)
    assert problems[0].startswith(
        "study.yaml:4: command[1]: unknown placeholder 'xx'; did you mean 'x'? allowed: x, "
        "trial_id, study, checkpoint_dir, budget, seed"
    )
    assert problems[1].startswith(
        "study.yaml:5: workdir: unknown placeholder 'trail_id'; did you mean 'trial_id'?"
    )
    assert len(problems) == 2


def test_placeholders_in_env_and_result_path_and_braces() -> None:
    message = single_error(MINIMAL + "env: {A: '{budgt}'}\n")
    assert message.startswith("study.yaml:5: env.A: unknown placeholder 'budgt'")
    message = single_error(MINIMAL + "result: {from: file, path: '{ckpt}/r.json'}\n")
    assert message.startswith("study.yaml:5: result.path: unknown placeholder 'ckpt'")
    message = single_error(MINIMAL + "env: {A: 'x}'}\n")
    assert message.startswith("study.yaml:5: env.A: bad placeholder syntax")
    # a field is looked up whole, as tuningfork.command does
    message = single_error(MINIMAL + "env: {A: '{x.real}'}\n")
    assert message.startswith("study.yaml:5: env.A: unknown placeholder 'x.real'")
    # format specs and escaped braces are fine
    parse_config(MINIMAL + "env: {A: '{x:.3f}', B: '{{literal}}', C: '{budget}'}\n")


def test_shell_string_command() -> None:
    text = 'study: s\nspace: {lr: [0.1, 0.01]}\ncommand: python train.py --lr {lr} --name "a b"\n'
    message = single_error(text)
    assert message.startswith("study.yaml:3: command: must be a list of arguments, not a shell")
    assert message.endswith('command: [python, train.py, --lr, "{lr}", --name, "a b"]')


def test_yaml_syntax_error_has_line_and_column() -> None:
    text = "study: s\nspace:\n  x: [1, 2\ncommand: [prog]\n"
    message = single_error(text)
    assert message.startswith("study.yaml:4:")
    assert "YAML syntax error" in message
    message = single_error("study: s\n  bad: indentation\n")
    assert message.startswith("study.yaml:2:") and "YAML syntax error" in message


def test_empty_file_and_non_mapping() -> None:
    assert single_error("").startswith("study.yaml:1: the study file is empty")
    assert single_error("# only a comment\n").startswith("study.yaml:1: the study file is empty")
    assert single_error("- a\n- b\n").startswith(
        "study.yaml:1: the top level of a study file must be a mapping"
    )


def test_missing_required_keys() -> None:
    problems = errors_of("study: s\nseed: 1\n")
    assert problems[0].startswith("study.yaml:1: space: required key is missing")
    assert problems[1].startswith("study.yaml:1: command: required key is missing")
    assert len(problems) == 2
    message = single_error("space: {x: [1]}\ncommand: [prog]\n")
    assert message.startswith("study.yaml:1: study: required key is missing")


def test_regex_result_checks() -> None:
    base = MINIMAL + "metric: acc\n"
    message = single_error(base + "result: {from: regex, pattern: 'acc=([0-9.]+'}\n")
    assert message.startswith("study.yaml:6: result.pattern: invalid regular expression")
    message = single_error(base + "result: {from: regex, pattern: 'loss=(?P<loss>[0-9.]+)'}\n")
    assert message.startswith("study.yaml:6: result.pattern: no named group for metric 'acc'")
    message = single_error(base + "result: {from: regex}\n")
    assert message.startswith("study.yaml:6: result: from: regex needs 'pattern'")
    message = single_error(base + "result: {from: file}\n")
    assert message.startswith("study.yaml:6: result: from: file needs 'path'")
    message = single_error(base + "result: {from: stdin}\n")
    assert message.startswith("study.yaml:6: result.from: must be one of")
    parse_config(base + "result: {from: regex, pattern: 'acc=([0-9.]+)'}\n")
    parse_config(base + "result: {from: regex, pattern: 'acc=[0-9.]+'}\n")  # whole match
    two = MINIMAL + "directions: [minimize, maximize]\nmetrics: [loss, acc]\n"
    message = single_error(two + "result: {from: regex, pattern: 'loss=([0-9.]+)'}\n")
    assert message.startswith("study.yaml:7: result.pattern: the pattern has 1 group for 2")
    parse_config(two + "result: {from: regex, pattern: '([0-9.]+) ([0-9.]+)'}\n")


def test_duplicate_key_and_bad_storage_url() -> None:
    message = single_error(MINIMAL + "study: t\n")
    assert message.startswith("study.yaml:5: study: duplicate key 'study'")
    message = single_error(MINIMAL + "storage: hpo.db\n")
    assert message.startswith("study.yaml:5: storage: 'hpo.db' is not a storage URL")


def test_several_errors_listed_together_in_line_order() -> None:
    text = textwrap.dedent(
        """\
        study: s
        direction: maximise
        space:
          x: {type: float, low: 1.0, high: 0.0}
        sampler: {name: tpe, n_startup: 3}
        scheduler: {name: asha, eta: 1}
        command: [prog, "{y}"]
        limitz: {}
        """
    )
    problems = errors_of(text)
    assert [p.split(":")[1] for p in problems] == ["2", "4", "5", "6", "7", "8"]
    assert problems[0].startswith("study.yaml:2: direction:")
    assert problems[1].startswith("study.yaml:4: space.x: low must be <= high")
    assert problems[2].startswith("study.yaml:5: sampler.n_startup: unknown sampler option")
    assert problems[3].startswith("study.yaml:6: scheduler.eta:")
    assert problems[4].startswith("study.yaml:7: command[1]: unknown placeholder 'y'")
    assert problems[5].startswith("study.yaml:8: unknown key 'limitz'; did you mean 'limits'?")


def test_config_error_is_a_tuningfork_error_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL + "sampler: nope\n")
    with pytest.raises(TuningforkError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:5: sampler: unknown sampler 'nope'")
    with pytest.raises(ConfigError, match="cannot read the study file"):
        load_config(tmp_path / "missing.yaml")


# --------------------------------------------------------------------------- example, summary


def test_example_study_file_validates(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(EXAMPLE_STUDY_FILE)
    config = load_config(path)
    assert config.space().names == ("x", "y")
    assert config.command[:2] == ["python", "-c"]
    assert config.command[-2:] == ["{x}", "{y}"]
    assert isinstance(config.make_sampler(), TPESampler)
    assert config.make_scheduler() is None
    assert config.storage_url() == f"sqlite:///{tmp_path / 'tuningfork.db'}"
    # every section is explained in a comment
    for key in ("storage", "space", "sampler", "scheduler", "command", "result", "limits"):
        assert f"\n{key}:" in EXAMPLE_STUDY_FILE
    assert EXAMPLE_STUDY_FILE.count("\n#") > 20


def test_example_script_runs_and_prints_a_json_result() -> None:
    import json
    import subprocess

    config = parse_config(EXAMPLE_STUDY_FILE)
    argv = [sys.executable, *config.command[1:-2], "3.0", "-2.0"]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert json.loads(output.strip().splitlines()[-1]) == {"value": 4.0}


def test_validate_summary() -> None:
    summary = validate_summary(parse_config(FULL, base_dir="/project"))
    lines = summary.splitlines()
    assert lines[0] == "study:      mlp-digits"
    assert lines[1] == "storage:    sqlite:////project/hpo.db"
    assert "maximize val_acc" in summary
    assert "4 parameters" in summary and "momentum: Float(0.0, 0.99) if optimizer='sgd'" in summary
    assert "sampler:    tpe(n_startup_trials=4)" in summary
    assert "scheduler:  asha(min_budget=1, max_budget=27, eta=3)" in summary
    assert "command:    python train.py --lr '{lr}'" in summary


# --------------------------------------------------------------------------- command objective


def test_command_objective_arguments(monkeypatch) -> None:
    """`command_objective` hands the file's settings to tuningfork.command (a stand-in
    module here, with the agreed signatures)."""
    module = types.ModuleType("tuningfork.command")

    class ResultSpec:
        def __init__(self, source="stdout", path=None, pattern=None, metrics=("value",)):
            self.source, self.path, self.pattern, self.metrics = source, path, pattern, metrics

    class CommandObjective:
        def __init__(
            self,
            argv,
            *,
            env=None,
            cwd=None,
            result=None,
            timeout=None,
            grace_period=10.0,
            report_metric=None,
            keep_log_lines=20,
            space=None,
        ):
            self.argv, self.env, self.cwd, self.result = argv, env, cwd, result
            self.space = space
            self.timeout, self.grace_period, self.report_metric = (
                timeout,
                grace_period,
                report_metric,
            )

    module.ResultSpec = ResultSpec  # type: ignore[attr-defined]
    module.CommandObjective = CommandObjective  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tuningfork.command", module)

    objective = parse_config(FULL).command_objective()
    assert isinstance(objective, CommandObjective)
    assert objective.argv[:4] == ["python", "train.py", "--lr", "{lr}"]
    assert objective.env == {"OMP_NUM_THREADS": "1", "RUN": "{study}-{trial_id}"}
    assert objective.cwd == "runs/{trial_id}"
    assert objective.timeout == 600.0
    assert objective.grace_period == 5.0
    assert objective.report_metric == "acc"
    assert list(objective.space.names) == list(parse_config(FULL).space().names)
    result = objective.result
    assert (result.source, result.path, result.pattern) == (
        "file",
        "{checkpoint_dir}/result.json",
        None,
    )
    assert result.metrics == ("val_acc",)

    minimal = parse_config(MINIMAL).command_objective()
    assert minimal.env is None and minimal.cwd is None and minimal.timeout is None
    assert minimal.report_metric == "value"
    assert minimal.result.metrics == ("value",)


def test_command_objective_with_the_real_module() -> None:
    """The real classes accept the arguments the file gives."""
    from tuningfork import command

    objective = parse_config(FULL).command_objective()
    assert isinstance(objective, command.CommandObjective)
    assert objective.result.metrics == ("val_acc",)
    assert objective.report_metric == "acc"


def test_example_study_runs_end_to_end(tmp_path: Path) -> None:
    """The example file's study runs with the real command objective (a few trials)."""
    pytest.importorskip("tuningfork.command")
    text = EXAMPLE_STUDY_FILE.replace("  - python\n", f"  - {sys.executable}\n")
    config = parse_config(text, base_dir=tmp_path)
    study = config.create_study()
    study.optimize(config.command_objective(), n_trials=3, space=config.space())
    trials = study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    for trial in trials:
        x, y = trial.params["x"], trial.params["y"]
        assert trial.values[0] == pytest.approx((x - 1.0) ** 2 + (y + 2.0) ** 2)
    assert (tmp_path / "tuningfork.db").exists()


def test_redact_study_file_masks_env_values_and_url_passwords() -> None:
    text = textwrap.dedent(
        """\
        study: s   # a comment stays
        storage: postgresql+psycopg://me:hunter2@db:5432/hpo
        env:
          WANDB_API_KEY: abc123
          EMPTY:
          BLOCK: |
            line one
          FLOW: {lr}
        command: [prog, --db, "mysql://u:pw@h/x"]
        resources: {workers: 2}
        """
    )
    masked = redact_study_file(text)
    assert "hunter2" not in masked and "abc123" not in masked and "line one" not in masked
    assert ":pw@" not in masked
    assert masked.splitlines()[0] == "study: s   # a comment stays"
    assert yaml.safe_load(masked) == {
        "study": "s",
        "storage": "postgresql+psycopg://me:***@db:5432/hpo",
        "env": {"WANDB_API_KEY": "***", "EMPTY": None, "BLOCK": "***", "FLOW": "***"},
        "command": ["prog", "--db", "mysql://u:***@h/x"],
        "resources": {"workers": 2},
    }
    flow = redact_study_file('env: {A: s1, B: "s2"}\n')
    assert yaml.safe_load(flow) == {"env": {"A": "***", "B": "***"}}
    assert redact_study_file("study: [unclosed\n") == "study: [unclosed\n"  # not YAML: as is


def test_every_bad_scheduler_option_is_listed_at_once() -> None:
    text = (
        "study: s\nspace: {x: [a, b]}\ncommand: [prog]\n"
        "scheduler:\n  name: asha\n  min_budget: 0\n  eta: 1\n  mode: fast\n"
    )
    problems = errors_of(text)
    assert [p.split(": ")[1] for p in problems] == [
        "scheduler.min_budget",
        "scheduler.eta",
        "scheduler.mode",
    ]
    assert [p.split(":")[1] for p in problems] == ["6", "7", "8"]  # each at its line


def test_conditions_are_checked_whatever_else_is_wrong_in_the_space() -> None:
    text = textwrap.dedent(
        """\
        study: s
        space:
          x: {type: float, low: 1, high: 0}
          m: {type: float, low: 0, high: 1, when: {optimiser: sgd}}
          n: {type: float, low: 0, high: 1, when: {x: 0.5}}
          o: [sgd, adam]
          p: {type: int, low: 0, high: 3, when: {o: sdg}}
        command: [prog]
        """
    )
    problems = errors_of(text)
    assert len(problems) == 3
    assert problems[0].startswith("study.yaml:3: space.x: low must be <= high")
    assert problems[1].startswith("study.yaml:4: space.m.when: condition on unknown parameter")
    assert "'optimiser'" in problems[1]
    assert problems[2].startswith("study.yaml:7: space.p.when: condition value 'sdg'")


def test_validate_checks_the_study_name_and_storage_url_as_run_would(tmp_path) -> None:
    from tuningfork.cli import main

    text = (
        'study: "a/b"\nstorage: mysql://me:pw@db/hpo\nspace: {x: [a, b]}\ncommand: [prog]\n'
        "scheduler: {name: asha, eta: 1}\n"
    )
    problems = errors_of(text)
    assert problems[0].startswith("study.yaml:1: study: study name 'a/b' may not contain")
    assert problems[1].startswith("study.yaml:2: storage: storage URL 'mysql://me:***@db/hpo'")
    assert "does not support 'mysql'" in problems[1] and "pw" not in problems[1]
    assert problems[2].startswith("study.yaml:5: scheduler.eta:")
    path = tmp_path / "study.yaml"
    path.write_text(text.replace("mysql://me:pw@db/hpo", "sqlite:///hpo.db"))
    assert main(["validate", str(path)]) == 2
    assert main(["run", str(path)]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]  # nothing created
