"""The ``tuningfork`` entry point: the parser (each command group adds its own
subcommands), running the chosen command, and errors and warnings as one line on stderr."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from typing import Any

from tuningfork import __version__
from tuningfork.cli import _pbt, _run, _studies, _viz
from tuningfork.cli._common import _STUDY_HELP, EXIT_ERROR, EXIT_NO_RESULT, Handler
from tuningfork.cli._run import _cmd_run, _warn_deprecated
from tuningfork.exceptions import ConfigError, TuningforkError
from tuningfork.storage import default_url, redact_url


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


def _is_user_error(error: BaseException) -> bool:
    """Whether ``error`` becomes one line on stderr; anything else is a bug and keeps its
    traceback."""
    return isinstance(error, (TuningforkError, ImportError, OSError)) or _is_database_error(error)


def _is_database_error(error: BaseException) -> bool:
    sqlalchemy = sys.modules.get("sqlalchemy")  # not imported: no SQLAlchemy error either
    return sqlalchemy is not None and isinstance(error, sqlalchemy.exc.SQLAlchemyError)


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

    # in this order in --help
    _studies.add_commands(commands, command)
    _run.add_worker_commands(command)
    _viz.add_commands(commands, command)
    _pbt.add_commands(command)
    _run.add_file_commands(commands)
    _studies.add_compact(commands)
    return parser


# -- errors ---------------------------------------------------------------------------------


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
