"""The study-file schema: pydantic models of every section, and `StudyConfig`, the
validated file with the methods that build what a run needs."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, Strict, field_validator

from tuningfork.config.components import build_component
from tuningfork.config.problems import Problems
from tuningfork.samplers import Sampler
from tuningfork.schedulers import Scheduler
from tuningfork.space import Space
from tuningfork.storage import DEFAULT_URL

if TYPE_CHECKING:
    from tuningfork.command import CommandObjective
    from tuningfork.study import Study

Direction = Literal["minimize", "maximize"]
_StrictInt = Annotated[int, Strict()]
_StrictFloat = Annotated[float, Strict()]  # ints are fine, bools and text are not


class _Section(BaseModel):
    """Base of the study-file models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ResultConfig(_Section):
    """The ``result`` section: where a trial's result is read."""

    source: Literal["stdout", "file", "regex"] = Field(default="stdout", alias="from")
    path: str | None = None
    pattern: str | None = None

    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"from": value} if isinstance(value, str) else value


class LimitsConfig(_Section):
    """The ``limits`` section: how many trials, how long, retries."""

    n_trials: Annotated[_StrictInt | None, Field(gt=0)] = None
    timeout: Annotated[_StrictFloat | None, Field(gt=0)] = None
    trial_timeout: Annotated[_StrictFloat | None, Field(gt=0)] = None
    max_retries: Annotated[_StrictInt, Field(ge=0)] = 0
    grace_period: Annotated[_StrictFloat, Field(ge=0)] = 10.0


class SlurmConfig(_Section):
    """The ``resources.slurm`` section: `launch_slurm`'s options, by the same names."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_limit_min: Annotated[_StrictInt, Field(gt=0)] = 60
    gpus_per_task: Annotated[_StrictInt | None, Field(ge=0)] = None
    cpus_per_task: Annotated[_StrictInt, Field(gt=0)] = 1
    mem_gb: Annotated[_StrictFloat | None, Field(gt=0)] = None
    additional_sbatch: dict[str, Any] = Field(default_factory=dict)
    signal_before_s: Annotated[_StrictInt, Field(ge=0)] = 60
    log_dir: str = "tuningfork_slurm/%j"
    requeue: bool = True
    job_name: str | None = None
    n_workers: Annotated[_StrictInt | None, Field(gt=0)] = None
    n_jobs: Annotated[_StrictInt, Field(gt=0)] = 1
    heartbeat_interval: Annotated[_StrictFloat | None, Field(gt=0)] = None


class ResourcesConfig(_Section):
    """The ``resources`` section: local workers and SLURM options."""

    workers: Annotated[_StrictInt, Field(gt=0)] = 1
    slurm: SlurmConfig | None = None


def _as_text(value: Any) -> Any:
    """Numbers (not bools) -> their text, so ``[--epochs, 10]`` and ``{N: 1}`` are fine."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


class StudyConfig(_Section):
    """A validated study file. Build it with `load_config` or `parse_config`.

    The fields mirror the file's keys (``space`` is `space_spec`, ``result.from`` is
    `ResultConfig.source`); the methods build the objects a run needs.
    """

    study: Annotated[str, Field(min_length=1)]
    storage: str | None = None
    direction: Direction | None = None
    directions: Annotated[list[Direction] | None, Field(min_length=1)] = None
    metric: Annotated[str | None, Field(min_length=1)] = None
    metrics: Annotated[list[Annotated[str, Field(min_length=1)]] | None, Field(min_length=1)] = None
    seed: _StrictInt | None = None
    space_spec: dict[str, Any] = Field(alias="space")
    sampler: Any = None
    scheduler: Any = None
    command: Annotated[list[str], Field(min_length=1)]
    env: dict[str, str] = Field(default_factory=dict)
    workdir: Annotated[str | None, Field(min_length=1)] = None
    result: ResultConfig = Field(default_factory=ResultConfig)
    report_metric: Annotated[str | None, Field(min_length=1)] = None
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)

    _source: str = PrivateAttr(default="<string>")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @field_validator("command", mode="before")
    @classmethod
    def _command_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(shell_string_message(value))
        if isinstance(value, list):
            return [_as_text(item) for item in value]
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _env_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: _as_text(item) for key, item in value.items()}
        return value

    @field_validator("result", mode="before")
    @classmethod
    def _result_shorthand(cls, value: Any) -> Any:
        return ResultConfig._shorthand(value)

    # -- derived values ---------------------------------------------------------------------

    @property
    def source(self) -> str:
        """The name of the file (or text) this configuration was read from."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """The directory relative storage paths are resolved against (the file's)."""
        return self._base_dir

    @property
    def resolved_directions(self) -> list[str]:
        """The study's directions: ``directions``, else ``[direction]``, else minimize."""
        if self.directions:
            return list(self.directions)
        return [self.direction or "minimize"]

    @property
    def resolved_metrics(self) -> list[str]:
        """The result keys, one per direction: ``metrics``, else ``[metric]``, else value."""
        if self.metrics:
            return list(self.metrics)
        return [self.metric or "value"]

    @property
    def resolved_report_metric(self) -> str:
        """The report key passed to the scheduler (default: the first metric)."""
        return self.report_metric or self.resolved_metrics[0]

    def storage_url(self) -> str:
        """The storage URL, with a relative SQLite / journal path made absolute against the
        study file's directory (docs/study-files.md); $TUNINGFORK_STORAGE is used as is."""
        if self.storage is None:
            env = os.environ.get("TUNINGFORK_STORAGE")
            if env:
                return env
            return resolve_url(DEFAULT_URL, self._base_dir)
        return resolve_url(self.storage, self._base_dir)

    # -- objects ----------------------------------------------------------------------------

    def space(self) -> Space:
        """The search space (a `Space`)."""
        return Space.from_dict(self.space_spec)

    def make_sampler(self) -> Sampler:
        """A new sampler as the file asks (default `AutoSampler`), seeded with ``seed``
        unless its options give one."""
        problems = Problems()
        sampler = build_component(
            "sampler", self.sampler, ("sampler",), problems, space=self.space(), seed=self.seed
        )
        problems.raise_if_any(self._source, None)
        assert sampler is not None
        return sampler

    def make_scheduler(self) -> Scheduler | None:
        """A new scheduler as the file asks, or None for ``none`` (the study's default)."""
        problems = Problems()
        scheduler = build_component("scheduler", self.scheduler, ("scheduler",), problems)
        problems.raise_if_any(self._source, None)
        return scheduler

    def create_study(self, load_if_exists: bool = True) -> Study:
        """Create the study in its storage (or load it, with ``load_if_exists``), with the
        file's directions, seed, sampler, scheduler and ``limits.max_retries``."""
        from tuningfork.study import create_study

        return create_study(
            self.study,
            self.storage_url(),
            directions=self.resolved_directions,
            sampler=self.make_sampler(),
            scheduler=self.make_scheduler(),
            load_if_exists=load_if_exists,
            seed=self.seed,
            max_retries=self.limits.max_retries,
        )

    def command_objective(self) -> CommandObjective:
        """The objective that runs ``command`` for each trial (`tuningfork.command`)."""
        from tuningfork.command import CommandObjective, ResultSpec

        result = ResultSpec(
            source=self.result.source,
            path=self.result.path,
            pattern=self.result.pattern,
            metrics=tuple(self.resolved_metrics),
        )
        return CommandObjective(
            list(self.command),
            env=dict(self.env) or None,
            cwd=self.workdir,
            result=result,
            timeout=self.limits.trial_timeout,
            grace_period=self.limits.grace_period,
            report_metric=self.resolved_report_metric,
            space=self.space(),
        )

    def slurm_options(self) -> dict[str, Any]:
        """Keyword arguments for `launch_slurm` from ``resources.slurm`` and ``limits``
        (all but the study name, storage URL and objective reference); {} without slurm."""
        slurm = self.resources.slurm
        if slurm is None:
            return {}
        options = slurm.model_dump(exclude={"n_workers"})
        options["n_workers"] = slurm.n_workers or self.resources.workers
        options["timeout"] = self.limits.timeout
        options["max_retries"] = self.limits.max_retries
        return options


def resolve_url(url: str, base_dir: Path) -> str:
    """A relative ``sqlite:///path`` or ``journal://path`` made absolute against base_dir."""
    for scheme in ("sqlite:///", "journal://"):
        if not url.startswith(scheme):
            continue
        path, sep, query = url[len(scheme) :].partition("?")
        if path in ("", ":memory:") or path.startswith(("/", "~")) or os.path.isabs(path):
            return url
        absolute = os.path.abspath(os.path.join(base_dir, path))
        prefix = "sqlite:///" if scheme == "sqlite:///" else "journal://"
        return f"{prefix}{absolute}{sep}{query}"
    return url


def shell_string_message(command: str) -> str:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    suggestion = "[" + ", ".join(_flow_item(word) for word in words) + "]"
    return (
        "must be a list of arguments, not a shell string: no shell runs the command, so "
        "quoting, pipes and $VARIABLES would not work and placeholders are substituted per "
        f"argument; write it as a list (shlex.split of yours): command: {suggestion}"
    )


def _flow_item(word: str) -> str:
    """A YAML flow-sequence item for `word`, quoted when it would not read back as text."""
    plain = re.fullmatch(r"[A-Za-z0-9_./=-][A-Za-z0-9_./=+-]*", word)
    if plain and yaml.safe_load(word) == word:
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
