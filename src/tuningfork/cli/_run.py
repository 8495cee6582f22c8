"""The commands that run trials: ``run``, ``validate`` and ``init`` for YAML study files,
``worker`` and ``launch`` (SLURM) for a study and an objective, with their worker flags."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuningfork.cli._common import EXIT_ERROR, EXIT_OK, AddCommand, _open, _print_json
from tuningfork.exceptions import OptionError
from tuningfork.storage import redact_url
from tuningfork.study import load_study

if TYPE_CHECKING:
    from tuningfork.execution import WorkerOptions


def add_worker_commands(command: AddCommand) -> None:
    """``worker`` and ``launch``."""
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


def add_file_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``run``, ``validate`` and ``init``."""
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


# -- commands ------------------------------------------------------------------------------


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
