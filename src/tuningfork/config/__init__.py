"""YAML study files: a whole study in one file, so that any program can be tuned without
writing Python, checked whole before anything runs. Every key, the placeholders and the
validation are documented in docs/study-files.md."""

from __future__ import annotations

from tuningfork.command import BUILTIN_PLACEHOLDERS
from tuningfork.config.example import EXAMPLE_STUDY_FILE
from tuningfork.config.files import load_config, parse_config, redact_study_file, validate_summary
from tuningfork.config.schema import (
    LimitsConfig,
    ResourcesConfig,
    ResultConfig,
    SlurmConfig,
    StudyConfig,
)
from tuningfork.exceptions import ConfigError

__all__ = [
    "BUILTIN_PLACEHOLDERS",
    "EXAMPLE_STUDY_FILE",
    "ConfigError",
    "LimitsConfig",
    "ResourcesConfig",
    "ResultConfig",
    "SlurmConfig",
    "StudyConfig",
    "load_config",
    "parse_config",
    "redact_study_file",
    "validate_summary",
]
