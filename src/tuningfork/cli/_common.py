"""What every command shares: exit codes, opening the storage or study file a command
names, and printing one JSON document."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tuningfork import _export
from tuningfork.exceptions import OptionError
from tuningfork.storage import Storage, default_url, get_storage, redact_url

if TYPE_CHECKING:
    from tuningfork.config import StudyConfig

EXIT_OK = 0
EXIT_NO_RESULT = 1
EXIT_ERROR = 2

Handler = Callable[[argparse.Namespace], int]
# adds a subcommand (name, handler, help text) with --storage, --json and STUDY
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]

_STUDY_HELP = (
    "the study's name, or a YAML study file (STUDY.yaml), whose study and storage are used "
    "(then without --storage)"
)


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


def _print_json(doc: dict[str, Any]) -> None:
    print(json.dumps(_export.strict_json(doc), indent=2))
