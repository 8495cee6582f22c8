"""The ``tuningfork`` command line: list studies, show a study's status and best trial, export.

A thin layer over the Python API (`list_studies`, `load_study`, `Study.best_trial(s)`,
`Study.export`, `delete_study`). Every command takes ``--storage URL`` and ``--json`` (one
JSON document on stdout). Exit codes: 0 success, 1 no result yet (no completed trial; a
deletion declined), 2 error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuningfork import __version__, _export
from tuningfork.exceptions import ConfigError, OptionError, StorageError, TuningforkError
from tuningfork.storage import Storage, copy_study, default_url, get_storage, redact_url
from tuningfork.study import Study, StudySummary, delete_study, list_studies, load_study
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.config import StudyConfig
    from tuningfork.execution import WorkerOptions

EXIT_OK = 0
EXIT_NO_RESULT = 1
EXIT_ERROR = 2

_STATES = _export.STATES
_TABLE_STATES = _STATES[:4]
_best_trials = _export.best_trials
_trial_json = _export.trial_json
_counts = _export.state_counts


def _is_user_error(error: BaseException) -> bool:
    """Whether ``error`` becomes one line on stderr; anything else is a bug and keeps its
    traceback."""
    return isinstance(error, (TuningforkError, ImportError, OSError)) or _is_database_error(error)


def _is_database_error(error: BaseException) -> bool:
    sqlalchemy = sys.modules.get("sqlalchemy")  # not imported: no SQLAlchemy error either
    return sqlalchemy is not None and isinstance(error, sqlalchemy.exc.SQLAlchemyError)


Handler = Callable[[argparse.Namespace], int]

_STUDY_HELP = (
    "the study's name, or a YAML study file (STUDY.yaml), whose study and storage are used "
    "(then without --storage)"
)


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as done:  # --help, --version and usage errors
        return done.code if isinstance(done.code, int) else EXIT_ERROR
    handler: Handler = args.handler
    try:
        with warnings.catch_warnings():  # restores the hook after the command
            warnings.showwarning = _show_warning
            warnings.filterwarnings("always", r"--\S+ is deprecated", DeprecationWarning)
            _warn_deprecated(args)
            return handler(args)
    except BrokenPipeError:  # e.g. `tuningfork export s | head`
        _silence_stdout()
        return EXIT_NO_RESULT
    except Exception as error:
        if not _is_user_error(error):
            raise
        print(f"tuningfork: error: {_describe_error(error, args)}", file=sys.stderr)
        return EXIT_ERROR


def _show_warning(message: Warning | str, *_: Any, **__: Any) -> None:
    """A warning as one line on stderr, like an error: the user did not write the code
    that a warning's usual file and line would point into."""
    print(f"tuningfork: warning: {message}", file=sys.stderr)


# -- arguments ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--storage",
        metavar="URL",
        help="storage URL (default: $TUNINGFORK_STORAGE, else sqlite:///tuningfork.db)",
    )
    common.add_argument("--json", action="store_true", help="print one JSON document")
    parser = argparse.ArgumentParser(
        prog="tuningfork",
        description="Run tuningfork studies from YAML files; inspect, export, copy and delete "
        "them.",
    )
    parser.add_argument("--version", action="version", version=f"tuningfork {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(handler=handler)
        if name in ("worker", "launch"):
            sub.add_argument("study", metavar="STUDY", help="the study's name")
        elif name != "studies":
            sub.add_argument("study", metavar="STUDY", help=_STUDY_HELP)
        return sub

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
    text = "run trials of a study with an objective given as module:function"
    worker = command("worker", _cmd_worker, text)
    worker.add_argument(
        "--objective", metavar="REF", required=True,
        help="module:function or path/to/file.py:function; takes a trial, returns a value",
    )  # fmt: skip
    _add_worker_options(worker, "this worker's")
    worker.add_argument(
        "--signal", dest="preempt_signals", metavar="NAME", action=_Deprecated,
        new="--preempt-signal", append=True, help="deprecated: --preempt-signal",
    )  # fmt: skip
    text = "submit workers of a study as one SLURM job array (submitit)"
    launch = command("launch", _cmd_launch, text)
    launch.add_argument(
        "--slurm", action="store_true", required=True,
        help="launch on SLURM (the only launcher for now)",
    )  # fmt: skip
    launch.add_argument(
        "--objective", metavar="REF", required=True,
        help="module:function or path/to/file.py:function, importable on the nodes",
    )  # fmt: skip
    workers = launch.add_mutually_exclusive_group(required=True)
    workers.add_argument("--n-workers", type=int, metavar="N", help="array tasks (workers)")
    workers.add_argument(
        "--workers", dest="n_workers", type=int, metavar="N", action=_Deprecated,
        new="--n-workers", help="deprecated: --n-workers",
    )  # fmt: skip
    _add_worker_options(launch, "each worker's")
    launch.add_argument("--partition", metavar="P", help="sbatch --partition")
    launch.add_argument("--account", metavar="A", help="sbatch --account")
    launch.add_argument("--qos", metavar="Q", help="sbatch --qos")
    launch.add_argument(
        "--time-limit-min", type=int, default=60, metavar="MIN",
        help="sbatch --time of each task, minutes (default 60)",
    )  # fmt: skip
    launch.add_argument(
        "--time", dest="time_limit_min", type=int, metavar="MIN", action=_Deprecated,
        new="--time-limit-min", help="deprecated: --time-limit-min",
    )  # fmt: skip
    launch.add_argument(
        "--gpus-per-task", type=int, metavar="G",
        help="default: no GPU request; 1 = one GPU per trial",
    )  # fmt: skip
    launch.add_argument("--cpus-per-task", type=int, default=1, metavar="C", help="default 1")
    launch.add_argument("--mem-gb", type=float, metavar="M", help="sbatch --mem, in GB")
    launch.add_argument(
        "--sbatch", action="append", default=[], metavar="KEY=VALUE",
        help="another sbatch option, e.g. constraint=v100-32g or exclusive (repeatable)",
    )  # fmt: skip
    launch.add_argument(
        "--signal-before", type=int, default=60, metavar="S",
        help="signal the workers S seconds before the time limit (default 60)",
    )  # fmt: skip
    launch.add_argument(
        "--no-requeue", dest="requeue", action="store_false",
        help="do not requeue a signalled or preempted task",
    )  # fmt: skip
    launch.add_argument(
        "--log-dir", default="tuningfork_slurm/%j", metavar="DIR",
        help="submitit folder for scripts and logs (default tuningfork_slurm/%%j)",
    )  # fmt: skip
    launch.add_argument("--wait", action="store_true", help="wait for the jobs to end")
    text = "draw a plot of a study to a file (PNG/SVG/PDF: matplotlib; HTML/JSON: plotly)"
    plot = command("plot", _cmd_plot, text)
    plot.add_argument(
        "kind", metavar="KIND",
        help="history, parallel, slice, contour, edf, intermediate, importance, timeline, "
        "rungs or pareto",
    )  # fmt: skip
    plot.add_argument("--out", metavar="FILE", required=True, help="its suffix picks the format")
    plot.add_argument("--params", nargs="+", metavar="NAME", help="only these parameters")
    plot.add_argument(
        "--by", choices=("trial", "time"), help="history: x axis by trial number or by time"
    )
    plot.add_argument("--width", type=int, metavar="PX", help="pixels (default 800)")
    plot.add_argument("--height", type=int, metavar="PX", help="pixels (default 600)")
    text = "hyperparameter importance of a study's complete trials"
    importance = command("importance", _cmd_importance, text)
    importance.add_argument(
        "--evaluator", choices=("ped-anova", "fanova"), default=None,
        help="PED-ANOVA (the default: no model) or fANOVA (random forest; needs scikit-learn)",
    )  # fmt: skip
    importance.add_argument("--params", nargs="+", metavar="NAME", help="only these parameters")
    importance.add_argument(
        "--objective", type=int, default=0, metavar="I",
        help="which objective of a multi-objective study (default 0)",
    )  # fmt: skip
    text = "serve the live web dashboard (read-only) for a storage"
    dashboard = commands.add_parser("dashboard", help=text, description=text)
    dashboard.set_defaults(handler=_cmd_dashboard)
    dashboard.add_argument(
        "file", metavar="STUDY.yaml", nargs="?",
        help="serve the storage of this study file (instead of --storage)",
    )  # fmt: skip
    dashboard.add_argument(
        "--storage", metavar="URL",
        help="storage URL (default: $TUNINGFORK_STORAGE, else sqlite:///tuningfork.db)",
    )  # fmt: skip
    dashboard.add_argument("--port", type=int, default=8080, metavar="P", help="default 8080")
    dashboard.add_argument(
        "--host", default="127.0.0.1", metavar="H",
        help="address to bind (default 127.0.0.1; anything else exposes the dashboard, which "
        "has no authentication, to the network)",
    )  # fmt: skip
    text = "run the study of a YAML study file (see `tuningfork init`)"
    run = commands.add_parser("run", help=text, description=text)
    run.set_defaults(handler=_cmd_run)
    run.add_argument("file", metavar="STUDY.yaml", help="the study file")
    run.add_argument(
        "--workers", type=int, metavar="N",
        help="trials at once (default: resources.workers); with --slurm, SLURM workers",
    )  # fmt: skip
    run.add_argument(
        "--n-trials", type=int, metavar="N",
        help="trials the study should have, earlier ones included (default: limits.n_trials)",
    )  # fmt: skip
    run.add_argument(
        "--resume", action="store_true",
        help="continue a study that already has trials (paused trials are resumed first)",
    )  # fmt: skip
    run.add_argument("--slurm", action="store_true", help="submit SLURM workers (resources.slurm)")
    run.add_argument("--wait", action="store_true", help="with --slurm: wait for the jobs")
    text = "check a YAML study file without running anything"
    validate = commands.add_parser("validate", help=text, description=text)
    validate.set_defaults(handler=_cmd_validate)
    validate.add_argument("file", metavar="STUDY.yaml", help="the study file")
    validate.add_argument("--json", action="store_true", help="print one JSON document")
    text = "write a commented example study file"
    init = commands.add_parser("init", help=text, description=text)
    init.set_defaults(handler=_cmd_init)
    init.add_argument(
        "file", metavar="STUDY.yaml", nargs="?", default="study.yaml",
        help="where to write it (default: study.yaml)",
    )  # fmt: skip
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    text = "rewrite a journal file without its deleted studies and torn lines"
    compact = commands.add_parser("compact", help=text, description=text)
    compact.set_defaults(handler=_cmd_compact)
    compact.add_argument("storage", metavar="URL", help="a journal:// storage")
    compact.add_argument("--json", action="store_true", help="print one JSON document")
    return parser


def _add_worker_options(parser: argparse.ArgumentParser, whose: str) -> None:
    """The flags of `WorkerOptions`, one per field and by the same name."""
    parser.add_argument("--n-trials", type=int, metavar="N", help=f"{whose} trial runs")
    parser.add_argument(
        "--max-trials", type=int, metavar="N",
        help="stop once the study has N trials, every worker's counted",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, metavar="S", help=f"{whose} seconds to start trials in"
    )
    parser.add_argument(
        "--n-jobs", type=int, default=1, metavar="N", help=f"{whose} threads (default 1)"
    )
    parser.add_argument("--max-retries", type=int, metavar="N", help="override the study's")
    parser.add_argument(
        "--retry-failed-exceptions", action=argparse.BooleanOptionalAction, default=None,
        help="also retry trials whose objective raised (default: the study's rule)",
    )  # fmt: skip
    parser.add_argument(
        "--heartbeat-interval", type=float, metavar="S", help="seconds between heartbeats"
    )
    parser.add_argument(
        "--grace-period", type=float, metavar="S",
        help="seconds of silence after which a trial is stale (default 60)",
    )  # fmt: skip
    parser.add_argument(
        "--preempt-signal", dest="preempt_signals", action="append", metavar="NAME",
        help="also checkpoint and stop on this signal (e.g. SIGUSR1 for sbatch "
        "--signal=USR1@60); SIGTERM always does",
    )  # fmt: skip


class _Deprecated(argparse.Action):
    """An older spelling of a flag: sets the new flag's value and notes a deprecation,
    which `main` shows as a warning naming the new flag."""

    def __init__(self, *args: Any, new: str, append: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new = new
        self.append = append

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if self.append:
            values = [*(getattr(namespace, self.dest, None) or []), values]
        setattr(namespace, self.dest, values)
        notes = [*getattr(namespace, "deprecated", []), (option_string, self.new)]
        namespace.deprecated = notes


def _warn_deprecated(args: argparse.Namespace) -> None:
    for old, new in getattr(args, "deprecated", []):
        warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=2)


def _worker_options(args: argparse.Namespace) -> WorkerOptions:
    """The `WorkerOptions` of ``tuningfork worker`` or ``launch``, from their flags."""
    from tuningfork.execution import WorkerOptions

    return WorkerOptions(
        n_trials=args.n_trials,
        max_trials=args.max_trials,
        timeout=args.timeout,
        n_jobs=args.n_jobs,
        max_retries=args.max_retries,
        retry_failed_exceptions=args.retry_failed_exceptions,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        preempt_signals=("SIGTERM", *(args.preempt_signals or ())),
    )


# -- commands -------------------------------------------------------------------------------


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
    source, target = redact_url(source.url), redact_url(args.target)
    doc = {"study": args.study, "from": source, "to": target, "copied_as": info.name}
    if args.json:
        _print_json(doc)
    else:
        print(f"copied study {args.study!r} from {source} to {target} as {info.name!r}")
    return EXIT_OK


def _cmd_worker(args: argparse.Namespace) -> int:
    from tuningfork.execution.worker import run_worker

    options = _worker_options(args)
    return run_worker(args.study, _open(args, args.storage).url, args.objective, options)


def _cmd_launch(args: argparse.Namespace) -> int:
    from tuningfork.execution.slurm import launch_slurm, wait_slurm

    extra: dict[str, Any] = {}
    for item in args.sbatch:
        key, sep, value = item.partition("=")
        if not key.strip():
            raise OptionError(
                f"--sbatch {item!r} must look like KEY=VALUE or KEY",
                option="sbatch",
                owner="tuningfork launch",
            )
        extra[key.strip().lstrip("-")] = value if sep else True
    options = _worker_options(args)
    url = _open(args, args.storage).url
    load_study(args.study, url)  # fail here, not in every job, when the study is missing
    ids = launch_slurm(
        args.study, url, args.objective, n_workers=args.n_workers, options=options,
        partition=args.partition, account=args.account, qos=args.qos,
        time_limit_min=args.time_limit_min, gpus_per_task=args.gpus_per_task,
        cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb, additional_sbatch=extra,
        signal_before_s=args.signal_before, log_dir=args.log_dir, requeue=args.requeue,
        quiet=args.json,
    )  # fmt: skip
    states = wait_slurm(ids) if args.wait else {}
    if args.json:
        doc = {"study": args.study, "storage": redact_url(url), "job_ids": ids, "states": states}
        _print_json(doc)
    elif states:
        print(" ".join(f"{job}:{state}" for job, state in states.items()))
    return EXIT_OK if all(s == "COMPLETED" for s in states.values()) else EXIT_ERROR


def _cmd_plot(args: argparse.Namespace) -> int:
    from tuningfork import viz

    study = load_study(*_study_and_storage(args))
    options: dict[str, Any] = {}
    if args.params:
        options["params"] = args.params
    for name in ("by", "width", "height"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    path = viz.save(study, args.kind, args.out, **options)
    if args.json:
        _print_json({"study": study.name, "kind": args.kind, "file": str(path)})
    else:
        print(f"wrote {path}")
    return EXIT_OK


def _cmd_importance(args: argparse.Namespace) -> int:
    from tuningfork import importance

    study = load_study(*_study_and_storage(args))
    evaluator = None
    if args.evaluator == "fanova":
        evaluator = importance.FanovaEvaluator(seed=0)
    elif args.evaluator == "ped-anova":
        evaluator = importance.PedAnovaEvaluator()
    target = None
    if len(study.directions) > 1:
        index = args.objective
        if not 0 <= index < len(study.directions):
            raise OptionError(
                f"--objective must be in 0..{len(study.directions) - 1}, got {index}",
                option="objective",
                owner="tuningfork importance",
            )
        target = lambda trial: trial.values[index]  # noqa: E731
    result = importance.get_param_importances(
        study, evaluator=evaluator, params=args.params, target=target
    )
    if args.json:
        _print_json({"study": study.name, "importances": result})
    else:
        print(importance.format_importances(result))
    return EXIT_OK


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from tuningfork.dashboard import serve

    url = args.storage if args.file is None else _study_file(args.file, args.storage).storage_url()
    serve(_open(args, url).url, host=args.host, port=args.port)
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from tuningfork.execution.study_file import run_study_file

    return run_study_file(
        args.file,
        workers=args.workers,
        n_trials=args.n_trials,
        slurm=args.slurm,
        resume=args.resume,
        wait=args.wait,
    )


def _cmd_validate(args: argparse.Namespace) -> int:
    from tuningfork.config import load_config, validate_summary

    config = load_config(args.file)
    if args.json:
        _print_json({"file": config.source, "valid": True, "study": config.study})
    else:
        print(f"{config.source}: valid")
        print(validate_summary(config))
    return EXIT_OK


def _cmd_init(args: argparse.Namespace) -> int:
    from tuningfork.config import EXAMPLE_STUDY_FILE

    path = Path(args.file)
    if path.exists() and not args.force:
        raise OptionError(
            f"{path} exists; pass --force to overwrite it, or name another file",
            option="file",
            owner="tuningfork init",
        )
    path.write_text(EXAMPLE_STUDY_FILE)
    print(f"wrote {path}; check it with `tuningfork validate {path}`, run it with "
          f"`tuningfork run {path}`")  # fmt: skip
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


# -- storage --------------------------------------------------------------------------------


def _open(args: argparse.Namespace, url: str | None) -> Storage:
    """The existing storage at ``url`` (None: the default), opened without creating or
    altering anything: `StorageNotFound` when there is none. Errors then name it."""
    args.storage_in_use = url if url is not None else default_url()
    return get_storage(args.storage_in_use, create=False)


def _study_and_storage(args: argparse.Namespace) -> tuple[str, Storage]:
    """The study's name and its existing storage: STUDY and --storage, or, when STUDY is a
    YAML study file, the study and storage that the file names."""
    if not _is_study_file(args.study):
        return args.study, _open(args, args.storage)
    config = _study_file(args.study, args.storage)
    return config.study, _open(args, config.storage_url())


def _is_study_file(argument: str) -> bool:
    return argument.lower().endswith((".yaml", ".yml")) and os.path.isfile(argument)


def _study_file(path: str, storage: str | None) -> StudyConfig:
    """The study file at ``path``; with --storage too, which storage to read is ambiguous."""
    from tuningfork.config import load_config

    if storage is not None:
        raise OptionError(
            f"{path} names its study's storage; drop --storage {redact_url(storage)}, or give "
            "the study's name instead of the file",
            option="storage",
            owner="tuningfork",
        )
    return load_config(path)


# -- data for both output forms -------------------------------------------------------------


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


# -- human output ---------------------------------------------------------------------------


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


# -- export ---------------------------------------------------------------------------------


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


# -- formatting -----------------------------------------------------------------------------


def _print_json(doc: dict[str, Any]) -> None:
    print(json.dumps(_export.strict_json(doc), indent=2))


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


def _describe_error(error: BaseException, args: argparse.Namespace) -> str:
    if isinstance(error, ConfigError):  # one line per problem in the file
        return str(error).strip()
    if (_is_database_error(error) or isinstance(error, ImportError)) and not isinstance(
        error, TuningforkError
    ):
        return f"cannot use storage {redact_url(_storage_in_use(args))!r}: {_one_line(error)}"
    return _one_line(error)


def _storage_in_use(args: argparse.Namespace) -> str:
    """The storage URL the command worked on, for an error message: the one it opened last,
    the study file's for `run`, else --storage or the default."""
    if getattr(args, "storage_in_use", None) is not None:
        return str(args.storage_in_use)
    if args.handler is _cmd_run:
        from tuningfork.config import load_config

        with contextlib.suppress(ConfigError):
            return load_config(args.file).storage_url()
    storage = getattr(args, "storage", None)
    return storage if storage is not None else default_url()


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _silence_stdout() -> None:
    # the reader went away; point stdout at /dev/null so the final flush does not fail
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
