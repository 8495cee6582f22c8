"""The ``tuningfork`` command line: list studies, show a study's status and best trial, export.

A thin layer over the Python API (`list_studies`, `load_study`, `Study.best_trial(s)`,
`Study.export`, `delete_study`). Every command takes ``--storage URL`` and ``--json`` (one
JSON document on stdout). Exit codes: 0 success, 1 no result yet (no completed trial; a
deletion declined), 2 error.
"""

from __future__ import annotations

from tuningfork.cli._common import EXIT_ERROR, EXIT_NO_RESULT, EXIT_OK
from tuningfork.cli._main import main

__all__ = ["EXIT_ERROR", "EXIT_NO_RESULT", "EXIT_OK", "main"]
