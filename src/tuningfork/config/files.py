"""Reading a study file: load and check it whole (`ConfigError` lists every problem),
mask its secrets for the study's record, and summarise it for ``tuningfork validate``."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tuningfork._redact import redact_urls
from tuningfork.config.checks import add_pydantic_error, check_semantics
from tuningfork.config.problems import Problems, check_duplicates, compose, kind_text
from tuningfork.config.schema import StudyConfig
from tuningfork.exceptions import ConfigError
from tuningfork.space import Space


def load_config(path: str | os.PathLike[str]) -> StudyConfig:
    """Read and validate a YAML study file; `ConfigError` lists every problem found.

    Relative storage paths in the file are resolved against the file's directory.
    """
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"{source}: cannot read the study file: {reason}") from error
    return parse_config(text, source, base_dir=Path(source).resolve().parent)


def parse_config(
    text: str, source: str = "<string>", *, base_dir: str | os.PathLike[str] | None = None
) -> StudyConfig:
    """Validate YAML study-file text; `ConfigError` lists every problem found.

    ``source`` names the text in messages (``source:line: field: ...``); ``base_dir`` is
    the directory relative storage paths are resolved against (default: the current one).
    """
    root, data = compose(text, source)
    if root is None or data is None:
        raise ConfigError(
            f"{source}:1: the study file is empty; it must be a mapping with at least the "
            "keys 'study', 'space' and 'command' (run 'tuningfork init' for an example)"
        )
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise ConfigError(
            f"{source}:{root.start_mark.line + 1}: the top level of a study file must be a "
            f"mapping of keys (study, space, command, ...), got {kind_text(data)}"
        )
    problems = Problems()
    check_duplicates(root, (), problems)
    config: StudyConfig | None = None
    try:
        config = StudyConfig.model_validate(data)
    except ValidationError as error:
        for item in error.errors():
            add_pydantic_error(item, problems)
    check_semantics(data, problems)
    problems.raise_if_any(source, root)
    assert config is not None
    config._source = source
    config._base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    return config


def redact_study_file(text: str) -> str:
    """The text of a study file with its secrets masked, as a study records it: the value
    of every ``env`` entry becomes ``"***"`` (the names are kept), and so does the password
    of every URL in the file (``postgresql://user:***@host/db``). Comments and layout are
    kept."""
    spans = []
    try:
        root, _ = compose(text, "<study file>")
    except ConfigError:
        root = None
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "env" and isinstance(value, yaml.MappingNode):
                marks = [(item.start_mark.index, item.end_mark.index) for _, item in value.value]
                spans += [(start, end) for start, end in marks if end > start]  # not empty
    for start, end in sorted(spans, reverse=True):
        tail = text[start:end][len(text[start:end].rstrip()) :]  # a block scalar's newlines
        text = text[:start] + '"***"' + tail + text[end:]
    return redact_urls(text)


def validate_summary(config: StudyConfig) -> str:
    """A short human-readable summary of a valid configuration (for ``tuningfork validate``)."""
    space = config.space()
    directions = config.resolved_directions
    metrics = config.resolved_metrics
    objective = ", ".join(f"{d} {m}" for d, m in zip(directions, metrics))
    params = ", ".join(f"{name}: {_parameter_text(space, name)}" for name in space)
    scheduler = config.make_scheduler()
    limits = config.limits
    limit_text = ", ".join(
        text
        for text in (
            f"n_trials={limits.n_trials}" if limits.n_trials else "",
            f"timeout={limits.timeout:g}s" if limits.timeout else "",
            f"trial_timeout={limits.trial_timeout:g}s" if limits.trial_timeout else "",
            f"max_retries={limits.max_retries}" if limits.max_retries else "",
        )
        if text
    )
    lines = [
        f"study:      {config.study}",
        f"storage:    {config.storage_url()}",
        f"objective:  {objective}",
        f"space:      {len(space)} parameter{'s' if len(space) != 1 else ''} ({params})",
        f"sampler:    {_component_text(config.sampler, 'auto')}",
        f"scheduler:  {_component_text(config.scheduler, 'none') if scheduler else 'none'}",
        f"command:    {shlex.join(_short(arg) for arg in config.command)}",
        f"result:     from {config.result.source}",
        f"limits:     {limit_text or 'none'}",
        f"workers:    {config.resources.workers}"
        + (" (SLURM options given)" if config.resources.slurm else ""),
    ]
    return "\n".join(lines)


def _parameter_text(space: Space, name: str) -> str:
    dist = space[name]
    text = dist.label()
    if dist.when:
        conditions = " and ".join(
            f"{parent} in {list(values)!r}" if len(values) > 1 else f"{parent}={values[0]!r}"
            for parent, values in dist.when.items()
        )
        text += f" if {conditions}"
    return text


def _short(arg: str, width: int = 40) -> str:
    """An argument on one line, cut to `width` characters."""
    flat = " ".join(arg.split()) if "\n" in arg else arg
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _component_text(raw: Any, default: str) -> str:
    if raw is None:
        return default
    if isinstance(raw, str):
        return raw
    if isinstance(raw, dict) and "any_of" in raw:
        members = raw["any_of"] if isinstance(raw["any_of"], list) else []
        return "any_of(" + ", ".join(_component_text(m, default) for m in members) + ")"
    if isinstance(raw, dict):
        options = ", ".join(f"{k}={v!r}" for k, v in raw.items() if k != "name")
        return f"{raw.get('name')}({options})" if options else str(raw.get("name"))
    return repr(raw)
