"""``tuningfork pbt-replay``: the hyperparameter schedule and the lineage behind one member
of a PBT or PB2 study, as JSON, or as YAML that runs the replay (`PBTReplay`) as a study
file's scheduler."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from tuningfork import _export
from tuningfork.cli._common import (
    EXIT_OK,
    AddCommand,
    _is_study_file,
    _print_json,
    _study_and_storage,
)
from tuningfork.exceptions import OptionError, TrialStateError
from tuningfork.study import Study, load_study
from tuningfork.trial import FrozenTrial, TrialState

_OWNER = "tuningfork pbt-replay"


def add_commands(command: AddCommand) -> None:
    """``pbt-replay``."""
    text = (
        "the hyperparameter schedule and lineage that produced a PBT/PB2 trial's model, as "
        "JSON, or as YAML that retrains it (scheduler pbt_replay)"
    )
    replay = command("pbt-replay", _cmd_pbt_replay, text)
    replay.add_argument("trial", metavar="TRIAL", type=int, help="the trial's number")
    replay.add_argument(
        "--format", choices=("json", "yaml"), default="json",
        help="json (default): schedule, lineage and the replay scheduler; yaml: the "
        "scheduler entry of a study file that replays it (a whole study file when STUDY "
        "is one: the same study renamed NAME-replay-TRIAL)",
    )  # fmt: skip
    replay.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")


def _cmd_pbt_replay(args: argparse.Namespace) -> int:
    if args.json and args.format == "yaml":
        raise OptionError(
            "--json and --format yaml ask for two formats; give one",
            option="format",
            owner=_OWNER,
        )
    study = load_study(*_study_and_storage(args))
    trial = _member(study, args.trial)
    doc = replay_document(study, trial)
    if args.format == "json":
        text = None
    elif _is_study_file(args.study):
        text = _dump_yaml(_replay_study_file(args.study, args.out, study.name, doc))
    else:
        text = _snippet(study.name, doc)
    if args.out is None:
        if text is None:
            _print_json(doc)
        else:
            sys.stdout.write(text)
        return EXIT_OK
    if text is None:
        text = json.dumps(_export.strict_json(doc), indent=2) + "\n"
    Path(args.out).write_text(text)
    print(f"wrote {args.out}", file=sys.stderr)
    return EXIT_OK


def _member(study: Study, number: int) -> FrozenTrial:
    """Trial ``number``, which must be a finished or paused member of a PBT population."""
    trial = study.reader.trial(number)  # TrialNotFound names the trials there are
    info = trial.system_attrs.get("pbt")
    if not isinstance(info, dict):
        scheduler = (study.system_attrs.get("scheduler") or {}).get("name", "none")
        raise OptionError(
            f"trial {number} of study {study.name!r} is not a member of a PBT or PB2 "
            f"population (the study's scheduler is {scheduler}): there is no schedule to "
            "replay",
            option="trial",
            owner=_OWNER,
        )
    if trial.state not in (TrialState.COMPLETE, TrialState.PAUSED) or trial.last_step is None:
        raise TrialStateError(
            f"trial {number} of study {study.name!r} is {trial.state.value}"
            f"{'' if trial.last_step is None else f' at step {trial.last_step}'}: only a "
            "complete member (or a paused one, up to its last step) has a model to replay"
        )
    return trial


def replay_document(study: Study, trial: FrozenTrial) -> dict[str, Any]:
    """What ``pbt-replay`` prints: the trial, its schedule and lineage, and the scheduler
    record that retrains its model (`PBTReplay` up to the trial's last step)."""
    from tuningfork.schedulers.pbt import lineage, replay_schedule

    assert trial.last_step is not None
    max_budget = trial.last_step
    schedule: list[list[Any]] = [
        [step, params] for step, params in replay_schedule(study, trial.number) if step < max_budget
    ]
    return {
        "study": study.name,
        "trial": trial.number,
        "state": trial.state.value,
        "value": trial.value,
        "member": trial.system_attrs["pbt"].get("member"),
        "schedule": schedule,
        "lineage": lineage(study, trial.number),
        "scheduler": {"name": "pbt_replay", "schedule": schedule, "max_budget": max_budget},
    }


def _snippet(name: str, doc: dict[str, Any]) -> str:
    header = (
        f"# PBT replay of trial {doc['trial']} of study {name!r} (value {doc['value']}):\n"
        "# put this scheduler in a study file with the same space and command, under a new\n"
        "# study name, and run it: `tuningfork run replay.yaml`\n"
    )
    return header + _dump_yaml({"scheduler": doc["scheduler"]})


def _replay_study_file(
    path: str, out: str | None, name: str, doc: dict[str, Any]
) -> dict[str, Any]:
    """The study file at ``path`` made to replay ``doc``'s trial: renamed, with the
    replay scheduler, one trial, and its storage still the original's wherever the new
    file is written."""
    import yaml

    from tuningfork.config import load_config

    with open(path) as handle:
        raw = dict(yaml.safe_load(handle))
    raw["study"] = f"{name}-replay-{doc['trial']}"
    raw["scheduler"] = doc["scheduler"]
    raw.pop("sampler", None)  # the schedule gives every value: nothing is sampled
    limits = dict(raw.get("limits") or {})
    limits["n_trials"] = 1
    raw["limits"] = limits
    url = load_config(path).storage_url()
    same_folder = out is not None and _folder(out) == _folder(path)
    if not same_folder and url.startswith(("sqlite:", "journal:")):
        raw["storage"] = url  # a relative path is beside the study file: make it absolute
    return raw


def _folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _dump_yaml(data: dict[str, Any]) -> str:
    """``data`` as block YAML, with each schedule entry on one line: ``- [4, {lr: 0.01}]``."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def entry(dumper: yaml.SafeDumper, value: _Entry) -> yaml.Node:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)

    Dumper.add_representer(_Entry, entry)
    scheduler = data.get("scheduler")
    if isinstance(scheduler, dict) and "schedule" in scheduler:
        schedule = [_Entry(item) for item in scheduler["schedule"]]
        data = {**data, "scheduler": {**scheduler, "schedule": schedule}}
    return str(yaml.dump(data, Dumper=Dumper, sort_keys=False, default_flow_style=None))


class _Entry(list[Any]):
    """A schedule entry, written in flow style."""
