"""The commands that read and manage stored studies: ``studies``, ``status``, ``best``,
``delete``, ``export``, ``copy`` and ``compact``, in both output forms (text, JSON)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from tuningfork import _export
from tuningfork.cli._common import (
    EXIT_NO_RESULT,
    EXIT_OK,
    AddCommand,
    _open,
    _print_json,
    _study_and_storage,
)
from tuningfork.exceptions import OptionError, StorageError
from tuningfork.storage import copy_study, redact_url
from tuningfork.study import Study, StudySummary, delete_study, list_studies, load_study
from tuningfork.trial import FrozenTrial, TrialState

_STATES = _export.STATES
_TABLE_STATES = _STATES[:4]
_best_trials = _export.best_trials
_trial_json = _export.trial_json
_counts = _export.state_counts


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], command: AddCommand
) -> None:
    """``studies``, ``status``, ``best``, ``delete``, ``export`` and ``copy``."""
    command("studies", _cmd_studies, "list the studies in the storage")
    command("status", _cmd_status, "trial counts, best value, workers and running trials")
    command("best", _cmd_best, "the best trial (the Pareto front when multi-objective)")
    delete = command("delete", _cmd_delete, "delete a study, its trials and its artefacts")
    delete.add_argument(
        "--yes", action="store_true",
        help="delete without asking (needed when stdin is not a terminal)",
    )  # fmt: skip
    delete.add_argument(
        "--keep-artifacts", action="store_true",
        help="keep the study's artefact folder (checkpoints and logs)",
    )  # fmt: skip
    export = command("export", _cmd_export, "write the trials as CSV or JSON")
    export.add_argument(
        "--format", choices=("csv", "json"), help="default: from --out's suffix, else csv"
    )
    export.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    text = "copy a study, every event of it, from one storage to another"
    copy = commands.add_parser("copy", help=text, description=text)
    copy.set_defaults(handler=_cmd_copy)
    copy.add_argument("study", metavar="STUDY", help="the study's name")
    copy.add_argument("--from", dest="source", metavar="URL", required=True, help="from here")
    copy.add_argument("--to", dest="target", metavar="URL", required=True, help="to here")
    copy.add_argument("--new-name", metavar="NAME", help="its name there (default: the same)")
    copy.add_argument("--json", action="store_true", help="print one JSON document")


def add_compact(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``compact`` (a journal file's maintenance)."""
    text = "rewrite a journal file without its deleted studies and torn lines"
    compact = commands.add_parser("compact", help=text, description=text)
    compact.set_defaults(handler=_cmd_compact)
    compact.add_argument("storage", metavar="URL", help="a journal:// storage")
    compact.add_argument("--json", action="store_true", help="print one JSON document")


# -- commands ------------------------------------------------------------------------------


def _cmd_studies(args: argparse.Namespace) -> int:
    storage = _open(args, args.storage)
    summaries = list_studies(storage)
    url = redact_url(storage.url)
    if args.json:
        _print_json({"storage": url, "studies": [_summary_json(s) for s in summaries]})
    elif not summaries:
        print(
            f"no studies in {url} yet; create one with "
            f"tuningfork.create_study('NAME', storage={url!r}) and run some trials"
        )
    else:
        headers = ["NAME", "DIRECTIONS", "TRIALS", *_TABLE_STATES, "BEST", "CREATED"]
        print(_table(headers, [_summary_row(s) for s in summaries], "<<>>>>>><"))
    return EXIT_OK


def _cmd_copy(args: argparse.Namespace) -> int:
    source = _open(args, args.source)
    args.storage_in_use = args.target
    info = copy_study(args.study, source, args.target, new_name=args.new_name)
    shown, target = redact_url(source.url), redact_url(args.target)
    doc = {"study": args.study, "from": shown, "to": target, "copied_as": info.name}
    if args.json:
        _print_json(doc)
    else:
        print(f"copied study {args.study!r} from {shown} to {target} as {info.name!r}")
    return EXIT_OK


def _cmd_compact(args: argparse.Namespace) -> int:
    if not args.storage.startswith("journal://"):
        raise StorageError(
            "compact works on journal files (journal:///path/to/file.log), not "
            f"{redact_url(args.storage)}"
        )
    storage = _open(args, args.storage)
    storage.compact()  # type: ignore[attr-defined]
    if args.json:
        _print_json({"storage": args.storage, "compacted": True})
    else:
        print(f"compacted {args.storage}")
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    name, storage = _study_and_storage(args)
    doc = _status_json(load_study(name, storage), storage.url)
    if args.json:
        _print_json(doc)
    else:
        _print_status(doc)
    return EXIT_OK


def _cmd_best(args: argparse.Namespace) -> int:
    study = load_study(*_study_and_storage(args))
    best = [_trial_json(t) for t in _best_trials(study)]
    if args.json:
        _print_json(
            {"study": study.name, "directions": list(study.directions), "best_trials": best}
        )
    if not best:
        counts = _describe_counts(_counts(t.state.value for t in study.trials))
        print(
            f"tuningfork: study {study.name!r} has no completed trial yet ({counts}); "
            "run some trials first",
            file=sys.stderr,
        )
        return EXIT_NO_RESULT
    if not args.json:
        _print_best(study, best)
    return EXIT_OK


def _cmd_delete(args: argparse.Namespace) -> int:
    name, storage = _study_and_storage(args)
    storage.get_study(name)  # a missing study is an error before any question
    url = redact_url(storage.url)
    if not args.yes and not _confirm_delete(name, url):
        print(f"tuningfork: study {name!r} was not deleted", file=sys.stderr)
        return EXIT_NO_RESULT
    folder = delete_study(name, storage, keep_artifacts=args.keep_artifacts)
    if args.json:
        artifacts = None if folder is None else str(folder)
        doc = {"study": name, "storage": url, "deleted": True, "artifacts": artifacts}
        _print_json({**doc, "artifacts_kept": folder is not None and args.keep_artifacts})
        return EXIT_OK
    print(f"deleted study {name!r} from {url}")
    if folder is not None:
        print(f"{'kept' if args.keep_artifacts else 'removed'} its artefacts at {folder}")
    return EXIT_OK


def _confirm_delete(name: str, url: str) -> bool:
    """Ask on the terminal whether to delete; True for "y" or "yes". Without a terminal
    nobody can answer: an error that names --yes."""
    if not sys.stdin.isatty():
        raise OptionError(
            f"not deleting study {name!r} without confirmation (stdin is not a terminal); "
            "pass --yes to delete it",
            option="yes",
            owner="tuningfork delete",
        )
    print(f"delete study {name!r} and all its trials from {url}? [y/N] ", end="", file=sys.stderr)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _cmd_export(args: argparse.Namespace) -> int:
    fmt = _export_format(args)
    study = load_study(*_study_and_storage(args))
    if args.out is None:
        _write_export(study, fmt)
        return EXIT_OK
    path = study.export(args.out, fmt)
    n_trials = len(study.trials)
    if args.json:
        _print_json({"study": study.name, "format": fmt, "path": str(path), "n_trials": n_trials})
    else:
        print(f"wrote {n_trials} trials of study {study.name!r} to {path} ({fmt})")
    return EXIT_OK


# -- data for both output forms ------------------------------------------------------------


def _summary_json(summary: StudySummary) -> dict[str, Any]:
    return {
        "name": summary.name,
        "directions": list(summary.directions),
        "n_trials": summary.n_trials,
        "counts": _counts_from(summary.counts),
        "best_value": summary.best_value,
        "created": summary.created,
        "created_local": _local_time(summary.created),
    }


def _status_json(study: Study, url: str) -> dict[str, Any]:
    trials = study.trials
    attrs = study.system_attrs
    now = time.time()
    finished = [t for t in trials if t.state.is_finished]
    last = max(finished, key=lambda t: t.datetime_complete or 0.0, default=None)
    return {
        "study": study.name,
        "directions": list(study.directions),
        "storage": redact_url(url),
        "n_trials": len(trials),
        "counts": _counts(t.state.value for t in trials),
        "best_trials": [_trial_json(t) for t in _best_trials(study)],
        "workers": sorted({t.worker for t in trials if t.worker}),
        "running": [_running_json(t, now) for t in trials if t.state is TrialState.RUNNING],
        "last_finished": _trial_json(last) if last is not None else None,
        "seed": attrs.get("seed"),
        "sampler": attrs.get("sampler"),
        "scheduler": attrs.get("scheduler"),
    }


def _running_json(trial: FrozenTrial, now: float) -> dict[str, Any]:
    start = trial.datetime_start
    return {
        "number": trial.number,
        "worker": trial.worker,
        "datetime_start": start,
        "elapsed": now - start if start is not None else None,
        "last_step": trial.last_step,
        "params": dict(trial.params),
    }


def _counts_from(partial: dict[str, int]) -> dict[str, int]:
    return {**dict.fromkeys(_STATES, 0), **partial}


# -- human output --------------------------------------------------------------------------


def _summary_row(summary: StudySummary) -> list[str]:
    counts = _counts_from(summary.counts)
    return [
        summary.name,
        ",".join(summary.directions),
        str(summary.n_trials),
        *(str(counts[state]) for state in _TABLE_STATES),
        _number(summary.best_value),
        _local_time(summary.created),
    ]


def _print_status(doc: dict[str, Any]) -> None:
    workers = doc["workers"]
    fields = [
        ("study", f"{doc['study']} ({', '.join(doc['directions'])})"),
        ("storage", doc["storage"]),
        ("seed", str(doc["seed"])),
        ("sampler", _component(doc["sampler"])),
        ("scheduler", _component(doc["scheduler"])),
        ("trials", f"{doc['n_trials']} ({_describe_counts(doc['counts'])})"),
        ("workers", f"{len(workers)}" + (f": {', '.join(workers)}" if len(workers) <= 4 else "")),
        ("best", _describe_best(doc["best_trials"])),
        ("last finished", _describe_last(doc["last_finished"])),
    ]
    print(_fields(fields))
    if doc["running"]:
        print("\nrunning trials")
        rows = [_running_row(entry) for entry in doc["running"]]
        print(_table(["NUMBER", "WORKER", "ELAPSED", "LAST STEP"], rows, "><>>"))


def _print_best(study: Study, best: list[dict[str, Any]]) -> None:
    directions = ", ".join(study.directions)
    if len(study.directions) > 1:
        print(f"Pareto front of study {study.name!r} ({directions}): {len(best)} trials")
    else:
        print(f"best trial of study {study.name!r} ({directions})")
    print("\n\n".join(_trial_block(entry) for entry in best))


def _trial_block(entry: dict[str, Any]) -> str:
    values = entry["values"]
    label, shown = ("value", values[0]) if len(values) == 1 else ("values", values)
    fields = [
        ("trial", str(entry["number"])),
        (label, _number(shown)),
        ("duration", _seconds(entry["duration"])),
        ("worker", entry["worker"] or "-"),
        ("params", "" if entry["params"] else "-"),
    ]
    return _fields(fields) + "".join(f"\n{line}" for line in _param_lines(entry["params"]))


def _param_lines(params: dict[str, Any]) -> list[str]:
    width = max((len(name) for name in params), default=0)
    return [f"  {name.ljust(width)}  {_number(value)}" for name, value in params.items()]


def _describe_best(best: list[dict[str, Any]]) -> str:
    if not best:
        return "- (no completed trial yet)"
    if len(best) == 1 and best[0]["value"] is not None:
        params = ", ".join(f"{k}={_number(v)}" for k, v in best[0]["params"].items())
        return f"trial {best[0]['number']}: {_number(best[0]['value'])}  ({params})"
    front = "; ".join(f"trial {e['number']}: {_number(e['values'])}" for e in best)
    return f"Pareto front of {len(best)}: {front}"


def _describe_last(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    shown = _number(entry["value"] if entry["value"] is not None else entry["values"])
    when = _local_time(entry["datetime_complete"])
    result = f"{entry['state']} {shown}" if entry["values"] is not None else entry["state"]
    return f"trial {entry['number']} {result} at {when} (took {_seconds(entry['duration'])})"


def _running_row(entry: dict[str, Any]) -> list[str]:
    step = entry["last_step"]
    return [
        str(entry["number"]),
        entry["worker"] or "-",
        _seconds(entry["elapsed"]),
        "-" if step is None else str(step),
    ]


def _describe_counts(counts: dict[str, int]) -> str:
    parts = [f"{n} {state.lower()}" for state, n in counts.items() if n]
    return ", ".join(parts) or "no trials"


def _component(record: Any) -> str:
    if not isinstance(record, dict):
        return "-" if record is None else str(record)
    options = ", ".join(f"{k}={_number(v)}" for k, v in record.items() if k != "name")
    return f"{record.get('name', '?')}({options})"


# -- export --------------------------------------------------------------------------------


def _export_format(args: argparse.Namespace) -> str:
    # with --out, --json prints a summary of what was written; without, it asks for JSON data
    if args.out is None:
        if args.json and args.format == "csv":
            raise OptionError(
                "--json without --out writes JSON; drop --format csv or add --out",
                option="format",
                owner="tuningfork export",
            )
        return str(args.format or ("json" if args.json else "csv"))
    return str(args.format or ("json" if args.out.lower().endswith(".json") else "csv"))


def _write_export(study: Study, fmt: str) -> None:
    _export.write(study, sys.stdout, fmt)  # the same document as Study.export(path, fmt)


# -- formatting ----------------------------------------------------------------------------


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_number(item) for item in value) + ")"
    return str(value)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.3g} s"
    minutes, seconds = divmod(int(round(value)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds:02d}s"


def _local_time(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    """Columns padded to their widest cell; ``align`` has one '<' or '>' per column."""
    lines = [list(headers), *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]

    def render(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if side == ">" else cell.ljust(width)
            for cell, width, side in zip(cells, widths, align)
        )
        return "  ".join(padded).rstrip()

    return "\n".join(render(line) for line in lines)


def _fields(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(key) for key, _ in pairs)
    return "\n".join(f"{key.ljust(width)}  {value}".rstrip() for key, value in pairs)
