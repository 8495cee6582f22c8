"""YAML study files: a whole study in one file, so that any program can be tuned without
writing Python, and the validation that checks such a file before anything runs.

A study file is a YAML mapping with these keys (only ``study``, ``space`` and ``command``
are required)::

    study: mlp-digits            # the study's name (required)
    storage: sqlite:///hpo.db    # where the study lives (see "Storage" below)
    direction: maximize          # minimize (default) | maximize; or
                                 #   directions: [minimize, maximize] (one per metric)
    metric: val_acc              # the result key to optimise (default "value"); or
                                 #   metrics: [loss, latency] (one per direction)
    seed: 0                      # seeds the sampler and is recorded in the study
    space:                       # the search space: exactly `Space.from_dict`'s format
      lr: {type: float, low: 1.0e-4, high: 0.1, log: true}
      layers: {type: int, low: 1, high: 4}          # also step: 2, log: true
      optimizer: [sgd, adam]                         # a list is a categorical
      momentum: {type: float, low: 0.0, high: 0.99, when: {optimizer: sgd}}
    sampler: tpe                 # or {name: tpe, n_startup_trials: 10, ...}
    scheduler: none              # or {name: asha, min_budget: 1, max_budget: 27, eta: 3}
                                 #   or {any_of: [median, {name: patience, patience: 5}]}
    command: [python, train.py, --lr, "{lr}", --layers, "{layers}"]
    env: {OMP_NUM_THREADS: "1"}  # extra environment variables (values may use {placeholders})
    workdir: runs/{trial_id}     # the trial's working directory (default: the current one)
    result: {from: stdout}       # where the result comes from (see "Results" below)
    report_metric: val_acc       # which key of report lines goes to the scheduler
    limits: {n_trials: 50, timeout: 3600, trial_timeout: 600, max_retries: 1,
             grace_period: 10}
    resources:
      workers: 2                 # trials run in parallel by local workers
      slurm: {partition: gpu, account: proj, time_limit_min: 120, gpus_per_task: 1}

Keys
----
``study``
    The study's name, unique within the storage (required).
``storage``
    A storage URL: ``sqlite:///path.db``, ``journal:///path.log`` (a journal file on a
    shared file system), ``postgresql+psycopg://user@host/db`` or ``memory``. Default:
    ``$TUNINGFORK_STORAGE`` if set, else ``sqlite:///tuningfork.db``. **A relative SQLite
    or journal path (``sqlite:///hpo.db``, ``journal://hpo.log``) is resolved against the
    directory of the study file**, not the current directory, so every worker started
    from anywhere (a SLURM job, another shell) opens the same database; the built-in default
    ``sqlite:///tuningfork.db`` is likewise put beside the study file. A path in
    ``$TUNINGFORK_STORAGE`` is left to resolve against the current directory.
``direction`` / ``directions``
    ``minimize`` or ``maximize``, or a list of them for a multi-objective study (give one
    of the two keys, not both). Default ``minimize``.
``metric`` / ``metrics``
    The name of the result value to optimise, or a list of names, one per direction
    (default ``value``; a multi-objective study must name its metrics).
``seed``
    An integer; seeds the sampler (unless its options give their own ``seed``) and is
    recorded in the study. Default: one is drawn and recorded.
``space``
    Parameter name -> spec, in the format of `tuningfork.space.Space.from_dict`: a mapping
    ``{type: float|int|categorical, low, high, log, step, choices, when}`` or a list of
    choices. ``when: {parent: value}`` (or ``{parent: [values]}``) makes a parameter
    conditional. Note: PyYAML reads ``1e-4`` as text under YAML 1.1; study files accept
    it as a number anyway.
``sampler``
    A name, or a mapping ``{name: NAME, OPTION: VALUE, ...}`` whose options are the keyword
    arguments of the class: ``auto`` (`AutoSampler`, the default), ``random``
    (`RandomSampler`), ``grid`` (`GridSampler` over the space), ``qmc`` (`QMCSampler`),
    ``tpe`` (`TPESampler`), ``gp`` (`GPSampler`). The class names work too.
``scheduler``
    A name, a mapping ``{name: NAME, OPTION: VALUE, ...}``, or ``{any_of: [SCHEDULER, ...]}``
    (`AnyOf`: stop when any member says stop). Names: ``none`` (the default), ``median``
    (`MedianStopping`), ``percentile`` (`PercentileStopping`), ``threshold``
    (`ThresholdStopping`), ``time`` (`TimeStopping`), ``rank`` (`RankStopping`),
    ``patience`` (`PatienceStopping`), ``sha`` (`SHA`), ``asha`` (`ASHA`), ``hyperband``
    (`Hyperband`), ``bohb`` (`BOHB`), ``dehb`` (`DEHB`); options are the class's keyword
    arguments, and are checked by building the scheduler during validation.
``command``
    The program to run for each trial, as a list of arguments (never a shell string: no
    shell runs it, so there is nothing to quote or escape). Each argument may hold
    ``{placeholders}`` (see below).
``env``
    Extra environment variables for the command, name -> value (values may hold
    placeholders); the rest of the environment is inherited.
``workdir``
    A template for the directory the command runs in (e.g. ``runs/{trial_id}``); default:
    the current directory. Relative paths in ``command`` and ``workdir`` are relative to
    the directory the study is run from (as on any command line), unlike ``storage``.
``result``
    Where the trial's result is read: ``{from: stdout}`` (default; the last line of
    standard output that is a JSON object with every metric, e.g. ``{"val_acc": 0.93}``),
    ``{from: file, path: "{checkpoint_dir}/result.json"}`` (a JSON or YAML mapping written
    by the program), or
    ``{from: regex, pattern: "acc=(?P<val_acc>[0-9.]+)"}`` (the last match in standard
    output: named groups give the metrics by name; without named groups, group 1 is the
    single metric, or the whole match if the pattern has no group, and groups 1..n are the
    metrics in order when there are several). A relative ``path`` is relative to the
    trial's working directory. ``result: stdout`` is short for ``{from: stdout}``.
``report_metric``
    Which key of the program's intermediate report lines is passed to the scheduler
    (default: the first metric).
``limits``
    ``n_trials`` (trials to run), ``timeout`` (seconds for the whole study),
    ``trial_timeout`` (seconds per trial, after which the command is stopped),
    ``max_retries`` (re-runs of a trial whose worker vanished; default 0),
    ``grace_period`` (seconds between asking a command to stop and killing it; default 10).
``resources``
    ``workers``: how many trials run at once on this machine (default 1). ``slurm``: the
    options of `tuningfork.execution.slurm.launch_slurm`, by the same names:
    ``partition``, ``account``, ``qos``, ``time_limit_min``, ``gpus_per_task``,
    ``cpus_per_task``, ``mem_gb``, ``additional_sbatch`` (other sbatch options, e.g.
    ``{constraint: a100}``), ``signal_before_s``, ``log_dir``, ``requeue``, ``job_name``,
    ``n_workers`` (array tasks; default ``workers``), ``n_jobs`` (trials at once per task)
    and ``heartbeat_interval``.

Placeholders
------------
``{name}`` in ``command``, ``env`` values, ``workdir`` and ``result.path`` is replaced by
the trial's value of parameter ``name`` (the Python ``str.format`` syntax, so ``{lr:.3g}``
works and ``{{`` / ``}}`` are literal braces), or by a built-in: ``trial_id``, ``study``,
``checkpoint_dir``, ``budget`` and ``seed``. Any other name is an error.

Validation
----------
`load_config` / `parse_config` check the whole file before anything runs, and raise one
`ConfigError` listing every problem, one per line, as ``FILE:LINE: FIELD: message``::

    study.yaml:7: unknown key 'scheduller'; did you mean 'scheduler'? allowed keys: ...
    study.yaml:12: scheduler.eta: eta must be a number > 1 (3 is the usual choice), got 1

Besides the structure and types of every key, it checks the space (each parameter's error
at the parameter's line), sampler and scheduler names and options (by building them),
placeholders, the counts of directions and metrics, and the regular expression.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import shlex
import string
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    field_validator,
)

from tuningfork._redact import redact_urls
from tuningfork.command import BUILTIN_PLACEHOLDERS
from tuningfork.exceptions import (
    ConfigError,
    SpaceError,
    StorageURLError,
    StudyNameError,
    TuningforkError,
)
from tuningfork.samplers import (
    AutoSampler,
    GPSampler,
    GridSampler,
    QMCSampler,
    RandomSampler,
    Sampler,
    TPESampler,
)
from tuningfork.schedulers import (
    ASHA,
    BOHB,
    DEHB,
    SHA,
    AnyOf,
    Hyperband,
    MedianStopping,
    PatienceStopping,
    PercentileStopping,
    RankStopping,
    Scheduler,
    ThresholdStopping,
    TimeStopping,
)
from tuningfork.space import Space
from tuningfork.storage import DEFAULT_URL, check_study_name, check_url

if TYPE_CHECKING:
    from tuningfork.command import CommandObjective
    from tuningfork.study import Study

__all__ = [
    "BUILTIN_PLACEHOLDERS",
    "EXAMPLE_STUDY_FILE",
    "SAMPLERS",
    "SCHEDULERS",
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

SAMPLERS: dict[str, type[Sampler]] = {
    "auto": AutoSampler,
    "random": RandomSampler,
    "grid": GridSampler,
    "qmc": QMCSampler,
    "tpe": TPESampler,
    "gp": GPSampler,
}
"""Sampler names of the ``sampler`` key -> classes."""

SCHEDULERS: dict[str, type[Scheduler] | None] = {
    "none": None,
    "median": MedianStopping,
    "percentile": PercentileStopping,
    "threshold": ThresholdStopping,
    "time": TimeStopping,
    "rank": RankStopping,
    "patience": PatienceStopping,
    "sha": SHA,
    "asha": ASHA,
    "hyperband": Hyperband,
    "bohb": BOHB,
    "dehb": DEHB,
}
"""Scheduler names of the ``scheduler`` key -> classes (``none``: no scheduler)."""

# constructor arguments that a study file cannot set (the space is the file's own)
_HIDDEN_OPTIONS = frozenset({"self", "space_or_values"})
_BUDGET_SCHEDULERS = frozenset({"sha", "asha", "hyperband", "bohb", "dehb"})

_REQUIRED_HINTS = {
    "study": "give the study a name, e.g. study: my-study",
    "space": "declare the parameters to tune, e.g. space: {lr: {type: float, low: 0.001, "
    "high: 0.1, log: true}}",
    "command": 'give the program to run as a list, e.g. command: [python, train.py, --lr, "{lr}"]',
}

Direction = Literal["minimize", "maximize"]
_StrictInt = Annotated[int, Strict()]
_StrictFloat = Annotated[float, Strict()]  # ints are fine, bools and text are not

Loc = tuple[str | int, ...]


# --------------------------------------------------------------------------- YAML loading


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads exponent floats without a dot (``1e-4``) as numbers."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


# --------------------------------------------------------------------------- models


class _Section(BaseModel):
    """Base of the study-file models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ResultConfig(_Section):
    """The ``result`` section: where a trial's result is read."""

    source: Literal["stdout", "file", "regex"] = Field("stdout", alias="from")
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
            raise ValueError(_shell_string_message(value))
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
        study file's directory (see the module docstring); $TUNINGFORK_STORAGE is used as is."""
        if self.storage is None:
            env = os.environ.get("TUNINGFORK_STORAGE")
            if env:
                return env
            return _resolve_url(DEFAULT_URL, self._base_dir)
        return _resolve_url(self.storage, self._base_dir)

    # -- objects ----------------------------------------------------------------------------

    def space(self) -> Space:
        """The search space (a `Space`)."""
        return Space.from_dict(self.space_spec)

    def make_sampler(self) -> Sampler:
        """A new sampler as the file asks (default `AutoSampler`), seeded with ``seed``
        unless its options give one."""
        problems = _Problems()
        sampler = _build_sampler(self.sampler, ("sampler",), problems, self.space(), self.seed)
        problems.raise_if_any(self._source, None)
        assert sampler is not None
        return sampler

    def make_scheduler(self) -> Scheduler | None:
        """A new scheduler as the file asks, or None for ``none`` (the study's default)."""
        problems = _Problems()
        scheduler = _build_scheduler(self.scheduler, ("scheduler",), problems)
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


def _resolve_url(url: str, base_dir: Path) -> str:
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


# --------------------------------------------------------------------------- public API


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
    root, data = _compose(text, source)
    if root is None or data is None:
        raise ConfigError(
            f"{source}:1: the study file is empty; it must be a mapping with at least the "
            "keys 'study', 'space' and 'command' (run 'tuningfork init' for an example)"
        )
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise ConfigError(
            f"{source}:{root.start_mark.line + 1}: the top level of a study file must be a "
            f"mapping of keys (study, space, command, ...), got {_kind(data)}"
        )
    problems = _Problems()
    _check_duplicates(root, (), problems)
    config: StudyConfig | None = None
    try:
        config = StudyConfig.model_validate(data)
    except ValidationError as error:
        for item in error.errors():
            _add_pydantic_error(item, problems)
    _check_semantics(data, problems)
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
        root, _ = _compose(text, "<study file>")
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
    params = ", ".join(f"{name}: {_describe_parameter(space, name)}" for name in space)
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
        f"sampler:    {_describe_component(config.sampler, 'auto')}",
        f"scheduler:  {_describe_component(config.scheduler, 'none') if scheduler else 'none'}",
        f"command:    {shlex.join(_short(arg) for arg in config.command)}",
        f"result:     from {config.result.source}",
        f"limits:     {limit_text or 'none'}",
        f"workers:    {config.resources.workers}"
        + (" (SLURM options given)" if config.resources.slurm else ""),
    ]
    return "\n".join(lines)


def _describe_parameter(space: Space, name: str) -> str:
    dist = space[name]
    text = dist.describe()
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


def _describe_component(raw: Any, default: str) -> str:
    if raw is None:
        return default
    if isinstance(raw, str):
        return raw
    if isinstance(raw, dict) and "any_of" in raw:
        members = raw["any_of"] if isinstance(raw["any_of"], list) else []
        return "any_of(" + ", ".join(_describe_component(m, default) for m in members) + ")"
    if isinstance(raw, dict):
        options = ", ".join(f"{k}={v!r}" for k, v in raw.items() if k != "name")
        return f"{raw.get('name')}({options})" if options else str(raw.get("name"))
    return repr(raw)


# --------------------------------------------------------------------------- problems


class _Problems:
    """Problems found so far: (location path, message, whether `loc` ends with a key that
    may be missing from the file)."""

    def __init__(self) -> None:
        self.items: list[tuple[Loc, str, bool]] = []

    def add(self, loc: Loc, message: str, *, show_field: bool = True) -> None:
        self.items.append((tuple(loc), message, show_field))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, source: str, root: yaml.Node | None) -> None:
        """Raise one ConfigError listing every problem, sorted by line."""
        if not self.items:
            return
        lines: list[tuple[int, int, str]] = []
        for index, (loc, message, show_field) in enumerate(self.items):
            line = _line_of(root, loc) if root is not None else None
            where = f"{source}:{line}" if line is not None else source
            field = _field_path(loc) if show_field and loc else ""
            text = f"{where}: {field}: {message}" if field else f"{where}: {message}"
            lines.append((line or 0, index, text))
        texts = [text for _, _, text in sorted(lines)]
        unique = list(dict.fromkeys(texts))
        raise ConfigError("\n".join(unique), unique)


def _field_path(loc: Loc) -> str:
    """('scheduler', 'any_of', 0, 'eta') -> 'scheduler.any_of[0].eta'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _line_of(root: yaml.Node, loc: Loc) -> int:
    """1-based line of the deepest node of `loc` present in the YAML tree: the line of the
    key for a mapping entry, of the item for a list entry."""
    node = root
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in reversed(node.value):  # the last duplicate wins
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _compose(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """The YAML node tree and the data it constructs; ConfigError on a syntax error."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        detail = error.problem or str(error)
        context = error.context_mark
        if error.context and context is not None:
            detail += f" ({error.context} at line {context.line + 1})"
        raise ConfigError(f"{where}: YAML syntax error: {detail}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: YAML syntax error: {error}") from None
    finally:
        loader.dispose()
    return root, data


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"{type(value).__name__} {value!r}"


def _check_duplicates(node: yaml.Node, loc: Loc, problems: _Problems) -> None:
    """Duplicate mapping keys (YAML would silently keep the last one)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    line = key_node.start_mark.line + 1
                    problems.add(
                        (*loc, key_node.value),
                        f"duplicate key {key_node.value!r} (line {line}); give each key once",
                    )
                seen.add(key_node.value)
                _check_duplicates(value_node, (*loc, key_node.value), problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicates(item, (*loc, index), problems)


def _did_you_mean(word: object, options: Sequence[str]) -> str:
    """ "; did you mean 'x'?" for the closest option, or ""."""
    matches = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def _unknown(what: str, word: object, options: Sequence[str], label: str) -> str:
    """ "unknown WHAT 'w'; did you mean 'x'? LABEL: a, b" (or "...'w'; LABEL: a, b")."""
    suggestion = _did_you_mean(word, options)
    joint = f"{suggestion} " if suggestion else "; "
    return f"unknown {what} {word!r}{joint}{label}: {', '.join(options) or 'none'}"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation (Optional, Annotated, ...), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys allowed in the mapping at `loc` (a path of model fields)."""
    model: type[BaseModel] | None = StudyConfig
    for part in loc:
        assert model is not None
        field = next(
            (f for name, f in model.model_fields.items() if (f.alias or name) == part), None
        )
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
    assert model is not None
    return [f.alias or name for name, f in model.model_fields.items()]


def _add_pydantic_error(error: Mapping[str, Any], problems: _Problems) -> None:
    """Translate one pydantic error into a problem with a plain-words message."""
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        key = loc[-1]
        where = f"{_field_path(loc[:-1])}: " if loc[:-1] else ""
        problems.add(loc, where + _unknown("key", key, allowed, "allowed keys"), show_field=False)
        return
    if kind == "missing":
        hint = _REQUIRED_HINTS.get(str(loc[-1])) if len(loc) == 1 else None
        problems.add(loc, "required key is missing" + (f"; {hint}" if hint else ""))
        return
    problems.add(loc, _plain_message(kind, error.get("msg", ""), ctx, value))


def _number_text(value: Any) -> str:
    """0.0 -> '0', 2.5 -> '2.5' (bounds in messages)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _plain_message(kind: str, msg: str, ctx: Mapping[str, Any], value: Any) -> str:
    got = f", got {value!r}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<"}
    bounds["less_than_equal"] = "<="
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"must be {bounds[kind]} {_number_text(limit)}{got}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        options = re.findall(r"'([^']*)'", expected)
        return f"must be one of {expected}{got}{_did_you_mean(value, options)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer{got}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number{got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false{got}"
    if kind == "finite_number":
        return f"must be a finite number{got}"
    if kind == "string_type":
        return f"must be text (quote it){got}"
    if kind == "too_short":
        return f"must not be empty{got}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "list_type":
        return f"must be a list{got}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping (key: value){got}"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    return (msg[:1].lower() + msg[1:]) + got


# --------------------------------------------------------------------------- semantic checks


def _check_semantics(data: dict[str, Any], problems: _Problems) -> None:
    """Checks beyond types: space, sampler, scheduler, placeholders, counts, regex, URL."""
    space = _check_space(data.get("space"), problems)
    if isinstance(data.get("sampler"), (str, dict)):
        seed = data.get("seed") if isinstance(data.get("seed"), int) else None
        _build_sampler(data["sampler"], ("sampler",), problems, space, seed)
    elif data.get("sampler") is not None:
        problems.add(("sampler",), _component_shape("sampler", data["sampler"]))
    if isinstance(data.get("scheduler"), (str, dict)):
        _build_scheduler(data["scheduler"], ("scheduler",), problems)
    elif data.get("scheduler") is not None:
        problems.add(("scheduler",), _component_shape("scheduler", data["scheduler"]))
    metrics = _check_objectives(data, problems)
    _check_result(data.get("result"), metrics, problems)
    names = list(data["space"]) if isinstance(data.get("space"), dict) else []
    _check_placeholders(data, [str(n) for n in names], problems)
    storage = data.get("storage")
    if isinstance(storage, str) and storage not in ("memory", ":memory:"):
        try:
            check_url(storage)
        except StorageURLError as error:
            problems.add(("storage",), str(error))
    if isinstance(data.get("study"), str):
        try:
            check_study_name(data["study"])
        except StudyNameError as error:
            problems.add(("study",), str(error))


def _check_space(raw: Any, problems: _Problems) -> Space | None:
    """The Space, or None after adding each parameter's error at the parameter's line."""
    if not isinstance(raw, dict):
        return None  # missing or not a mapping: reported by the model
    if not raw:
        problems.add(("space",), "the space is empty; declare at least one parameter")
        return None
    bad = set()
    for name, spec in raw.items():
        try:
            Space.from_dict({name: _without_parents(spec, None)})
        except SpaceError as error:
            problems.add(("space", name), _strip_parameter(str(error), name))
            bad.add(name)
    # each parameter's conditions, among the good parameters, whatever is wrong elsewhere
    good = {name: _without_parents(spec, bad) for name, spec in raw.items() if name not in bad}
    plain = {name: _without_parents(spec, None) for name, spec in good.items()}
    for name, spec in good.items():
        if spec is not plain[name] and not _space_error({**plain, name: spec}, raw, problems):
            bad.add(name)
    if bad:
        return None
    try:
        return Space.from_dict(good)
    except SpaceError as error:  # e.g. a cycle of conditions
        _space_error(good, raw, problems, error)
        return None


def _space_error(
    spec: dict[str, Any], raw: dict[str, Any], problems: _Problems, error: SpaceError | None = None
) -> bool:
    """Add the error of Space.from_dict(spec) (or ``error``) at the parameter it names;
    True if there is none."""
    if error is None:
        try:
            Space.from_dict(spec)
            return True
        except SpaceError as raised:
            error = raised
    message = str(error)
    match = re.match(r"parameter (['\"])(.+?)\1: ", message)
    if match and match.group(2) in raw:
        name = match.group(2)
        loc: Loc = ("space", name, "when") if isinstance(raw[name], dict) else ("space", name)
        problems.add(loc, message[match.end() :])
    else:
        problems.add(("space",), message)
    return False


def _without_parents(spec: Any, parents: set[str] | None) -> Any:
    """A parameter's spec without its conditions on ``parents`` (None: on any parameter);
    conditions on bad parameters are checked once those are fixed."""
    when = spec.get("when") if isinstance(spec, dict) else None
    if not isinstance(when, dict) or (parents is not None and not parents & set(when)):
        return spec
    kept = {p: value for p, value in when.items() if parents is not None and p not in parents}
    return {**{k: v for k, v in spec.items() if k != "when"}, **({"when": kept} if kept else {})}


def _strip_parameter(message: str, name: str) -> str:
    prefix = f"parameter {name!r}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _component_shape(kind: str, raw: Any) -> str:
    example = "tpe" if kind == "sampler" else "asha"
    return (
        f"must be a {kind} name such as {example!r} or a mapping "
        f"{{name: {example}, OPTION: VALUE}}, got {_kind(raw)}"
    )


def _lookup(
    kind: str, raw_name: Any, loc: Loc, registry: Mapping[str, Any], problems: _Problems
) -> str | None:
    """The registry key for a name (case-insensitive; class names too), or None."""
    if not isinstance(raw_name, str) or not raw_name:
        problems.add(loc, f"the {kind} name must be text such as {next(iter(registry))!r}")
        return None
    lowered = raw_name.lower()
    if lowered in registry:
        return lowered
    for key, cls in registry.items():
        if cls is not None and cls.__name__.lower() == lowered:
            return key
    problems.add(loc, _unknown(kind, raw_name, list(registry), "allowed"))
    return None


def _split(
    kind: str, raw: Any, loc: Loc, problems: _Problems
) -> tuple[Any, Loc, dict[str, Any]] | None:
    """(name, location of the name, options) of a component given as text or mapping."""
    if isinstance(raw, str):
        return raw, loc, {}
    if "name" not in raw:
        example = (
            "{name: tpe, n_startup_trials: 10}"
            if kind == "sampler"
            else ("{name: asha, max_budget: 27} or {any_of: [median, ...]}")
        )
        problems.add(loc, f"a {kind} mapping needs the key 'name', e.g. {example}")
        return None
    options = {str(k): v for k, v in raw.items() if k != "name"}
    return raw["name"], (*loc, "name"), options


def _check_options(
    kind: str, name: str, cls: type, options: Mapping[str, Any], loc: Loc, problems: _Problems
) -> bool:
    """Unknown and missing options against the constructor's signature; True if fine."""
    parameters = {
        key: p
        for key, p in inspect.signature(cls).parameters.items()
        if key not in _HIDDEN_OPTIONS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    fine = True
    for key in options:
        if key not in parameters:
            problems.add(
                (*loc, key),
                _unknown(f"{kind} option", key, list(parameters), f"{cls.__name__} takes"),
            )
            fine = False
    for key, p in parameters.items():
        if p.default is p.empty and key not in options:
            problems.add(loc, f"{kind} {name!r} needs the option {key!r}")
            fine = False
    return fine


def _construct(
    cls: type, options: Mapping[str, Any], loc: Loc, problems: _Problems, positional: tuple = ()
) -> Any:
    """cls(*positional, **options), or None after adding its errors, each at the option it
    is about (`_option_errors`: every bad option, not only the first one found)."""
    try:
        return cls(*positional, **options)
    except (TuningforkError, TypeError, ValueError):
        for key, message in _option_errors(cls, options, positional):
            problems.add(loc if key is None else (*loc, key), message)
        return None


def _option_errors(
    cls: type, options: Mapping[str, Any], positional: tuple
) -> list[tuple[str | None, str]]:
    """Each error of cls(**options) with the option it is about (None: several, or none).

    A constructor stops at its first error, so after an error about given options (those
    its message names), they go back to their defaults and the class is built again, until
    it builds or an error names no option it was given."""
    parameters = inspect.signature(cls).parameters
    remaining = dict(options)
    found: list[tuple[str | None, str]] = []
    while True:
        try:
            cls(*positional, **remaining)
            return found
        except (TuningforkError, TypeError, ValueError) as error:
            message = str(error)
        named = _options_named(message, remaining)
        if not named and found:
            return found  # may follow from a default standing in for a bad option
        found.append((named[0] if len(named) == 1 else None, message))
        if not named or any(parameters[key].default is inspect.Parameter.empty for key in named):
            return found
        for key in named:
            del remaining[key]


def _options_named(message: str, options: Mapping[str, Any]) -> list[str]:
    """The options an error message is about: the one it starts with, else those it quotes
    as ``name=...``."""
    for key in options:
        if re.match(rf"{re.escape(key)}\b", message):
            return [key]
    return [key for key in options if re.search(rf"\b{re.escape(key)}=", message)]


def _build_sampler(
    raw: Any, loc: Loc, problems: _Problems, space: Space | None, seed: int | None
) -> Sampler | None:
    """The sampler of a ``sampler`` value (None: AutoSampler), or None after problems."""
    if raw is None:
        return AutoSampler(seed=seed)
    if not isinstance(raw, (str, dict)):
        problems.add(loc, _component_shape("sampler", raw))
        return None
    parts = _split("sampler", raw, loc, problems)
    if parts is None:
        return None
    raw_name, name_loc, options = parts
    name = _lookup("sampler", raw_name, name_loc, SAMPLERS, problems)
    if name is None:
        return None
    cls = SAMPLERS[name]
    if not _check_options("sampler", name, cls, options, loc, problems):
        return None
    if seed is not None and "seed" not in options:
        options = {**options, "seed": seed}
    if cls is GridSampler:
        return _construct(cls, options, loc, problems, (space,) if space is not None else ())
    return _construct(cls, options, loc, problems)


def _build_scheduler(raw: Any, loc: Loc, problems: _Problems) -> Scheduler | None:
    """The scheduler of a ``scheduler`` value (None for ``none``); problems are added."""
    if raw is None:
        return None
    if not isinstance(raw, (str, dict)):
        problems.add(loc, _component_shape("scheduler", raw))
        return None
    if isinstance(raw, dict) and "any_of" in raw:
        return _build_any_of(raw, loc, problems)
    parts = _split("scheduler", raw, loc, problems)
    if parts is None:
        return None
    raw_name, name_loc, options = parts
    name = _lookup("scheduler", raw_name, name_loc, SCHEDULERS, problems)
    if name is None:
        return None
    cls = SCHEDULERS[name]
    if cls is None:
        if options:
            problems.add((*loc, next(iter(options))), "scheduler 'none' takes no options")
        return None
    if not _check_options("scheduler", name, cls, options, loc, problems):
        return None
    return _construct(cls, options, loc, problems)


def _build_any_of(raw: dict[str, Any], loc: Loc, problems: _Problems) -> Scheduler | None:
    extra = [key for key in raw if key != "any_of"]
    if extra:
        problems.add(
            (*loc, extra[0]), "a scheduler with 'any_of' takes no other key; list the members"
        )
        return None
    members_raw = raw["any_of"]
    if not isinstance(members_raw, list) or not members_raw:
        problems.add((*loc, "any_of"), "must be a non-empty list of schedulers")
        return None
    before = len(problems.items)
    members = []
    for index, member in enumerate(members_raw):
        built = _build_scheduler(member, (*loc, "any_of", index), problems)
        if built is None and len(problems.items) == before:
            problems.add((*loc, "any_of", index), "'none' cannot be a member of any_of")
        members.append(built)
    if len(problems.items) > before:
        return None
    return _construct(AnyOf, {}, (*loc, "any_of"), problems, tuple(members))


def _check_objectives(data: dict[str, Any], problems: _Problems) -> list[str]:
    """Directions and metrics: one of each pair of keys, equal counts; returns the metrics."""
    if data.get("direction") is not None and data.get("directions") is not None:
        problems.add(("directions",), "give either 'direction' or 'directions', not both")
    if data.get("metric") is not None and data.get("metrics") is not None:
        problems.add(("metrics",), "give either 'metric' or 'metrics', not both")
    directions = data.get("directions")
    n_directions = len(directions) if isinstance(directions, list) and directions else 1
    metrics_raw = data.get("metrics")
    if isinstance(metrics_raw, list) and metrics_raw:
        metrics = [str(m) for m in metrics_raw]
        if len(metrics) != n_directions:
            problems.add(
                ("metrics",),
                f"{len(metrics)} metric{'s' if len(metrics) != 1 else ''} for {n_directions} "
                f"direction{'s' if n_directions != 1 else ''}; give one metric per direction "
                "(metrics: [...] in the order of directions: [...])",
            )
        duplicates = sorted({m for m in metrics if metrics.count(m) > 1})
        if duplicates:
            problems.add(("metrics",), f"metric {duplicates[0]!r} is listed twice")
        return metrics
    metric = data.get("metric")
    if n_directions > 1:
        problems.add(
            ("directions",),
            f"{n_directions} directions need 'metrics', one result key per direction, "
            "e.g. metrics: [loss, latency]",
        )
        return []
    return [metric if isinstance(metric, str) else "value"]


def _check_result(raw: Any, metrics: list[str], problems: _Problems) -> None:
    """Each result source has the keys it needs; a regex compiles and has its groups."""
    raw = ResultConfig._shorthand(raw)
    if not isinstance(raw, dict):
        return
    source = raw.get("from", "stdout")
    path, pattern = raw.get("path"), raw.get("pattern")
    if source == "file" and path is None:
        problems.add(
            ("result",),
            "from: file needs 'path', e.g. {from: file, path: \"{checkpoint_dir}/result.json\"}",
        )
    if source == "regex" and pattern is None:
        problems.add(
            ("result",),
            "from: regex needs 'pattern', e.g. {from: regex, pattern: \"acc=(?P<value>[0-9.]+)\"}",
        )
    if source in ("stdout", "regex") and path is not None:
        problems.add(("result", "path"), f"'path' is only used with from: file, not {source}")
    if source in ("stdout", "file") and pattern is not None:
        problems.add(
            ("result", "pattern"), f"'pattern' is only used with from: regex, not {source}"
        )
    if source != "regex" or not isinstance(pattern, str):
        return
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        problems.add(("result", "pattern"), f"invalid regular expression: {error}")
        return
    named = compiled.groupindex
    if named:
        missing = [m for m in metrics if m not in named]
        if missing:
            problems.add(
                ("result", "pattern"),
                f"no named group for metric {missing[0]!r}; the pattern needs one group "
                f"(?P<name>...) per metric ({', '.join(metrics)}), it has "
                f"{', '.join(named)}",
            )
    elif len(metrics) > 1 and compiled.groups < len(metrics):
        problems.add(
            ("result", "pattern"),
            f"the pattern has {compiled.groups} group{'s' if compiled.groups != 1 else ''} "
            f"for {len(metrics)} metric{'s' if len(metrics) != 1 else ''}; use one named "
            f"group per metric, e.g. (?P<{metrics[0] if metrics else 'value'}>[0-9.eE+-]+)",
        )


def _templates(data: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    """Every text of the file that may hold placeholders, with its location."""
    command = data.get("command")
    if isinstance(command, list):
        for index, item in enumerate(command):
            if isinstance(item, str):
                yield ("command", index), item
    env = data.get("env")
    if isinstance(env, dict):
        for key, value in env.items():
            if isinstance(value, str):
                yield ("env", str(key)), value
    if isinstance(data.get("workdir"), str):
        yield ("workdir",), data["workdir"]
    result = data.get("result")
    if isinstance(result, dict) and isinstance(result.get("path"), str):
        yield ("result", "path"), result["path"]


def _check_placeholders(data: dict[str, Any], params: list[str], problems: _Problems) -> None:
    """Every {placeholder} names a parameter or a built-in; the braces are well formed."""
    known = [*params, *BUILTIN_PLACEHOLDERS]
    for loc, template in _templates(data):
        try:
            fields = [field for _, field, _, _ in string.Formatter().parse(template) if field]
        except ValueError as error:
            problems.add(
                loc,
                f"bad placeholder syntax in {template!r}: {error}; write {{name}} for a "
                "value and {{ or }} for a literal brace",
            )
            continue
        for field in fields:
            name = field  # looked up whole, as tuningfork.command does ({opt.lr})
            if name.isdigit() or not name:
                problems.add(
                    loc,
                    f"placeholder {{{field}}} has no name; use {{PARAMETER}} or one of "
                    f"{', '.join(BUILTIN_PLACEHOLDERS)}",
                )
            elif name not in known:
                problems.add(
                    loc,
                    _unknown("placeholder", name, known, "allowed")
                    + " (the space's parameters and the built-ins)",
                )


def _shell_string_message(command: str) -> str:
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


# --------------------------------------------------------------------------- the example


EXAMPLE_STUDY_FILE = """\
# A tuningfork study file. Check it with `tuningfork validate study.yaml`, run it with
# `tuningfork run study.yaml`. Every key is documented in `tuningfork.config`.

# The study's name, unique within its storage (required).
study: example-quadratic

# Where the study lives. A relative SQLite path is relative to THIS file's directory, so
# every worker finds the same database. Others: journal:///shared/study.log (a file on a
# shared file system), postgresql+psycopg://user@host/db, or leave it out for
# $TUNINGFORK_STORAGE or sqlite:///tuningfork.db.
storage: sqlite:///tuningfork.db

# minimize or maximize the metric read from each trial's result. For several objectives:
#   directions: [minimize, maximize]
#   metrics: [loss, latency]
direction: minimize
metric: value

# Seeds the sampler; the same seed proposes the same configurations.
seed: 0

# The search space: name -> distribution.
#   {type: float, low, high, log: true|false, step}   real numbers
#   {type: int, low, high, log, step}                 integers
#   [a, b, c]                                         a categorical (any scalars)
# `when: {parent: value}` makes a parameter conditional, e.g.
#   momentum: {type: float, low: 0.0, high: 0.99, when: {optimizer: sgd}}
space:
  x: {type: float, low: -5.0, high: 5.0}
  y: {type: float, low: -5.0, high: 5.0}

# How configurations are proposed: auto (the default), random, grid, qmc, tpe or gp, or a
# mapping with the class's options, e.g. {name: tpe, n_startup_trials: 10}.
sampler: {name: tpe, n_startup_trials: 5}

# Early stopping from intermediate reports: none (the default), median, percentile,
# threshold, time, rank, patience, sha, asha, hyperband, bohb, dehb, e.g.
#   scheduler: {name: asha, min_budget: 1, max_budget: 27, eta: 3}
#   scheduler: {any_of: [median, {name: patience, patience: 5}]}
scheduler: none

# The program run for each trial, as a list of arguments (no shell is involved).
# {x} and {y} are replaced by the trial's values; other placeholders: {trial_id},
# {study}, {checkpoint_dir}, {budget}, {seed}. Write {{ and }} for literal braces.
# This one computes a quadratic inline and prints its result as a JSON object.
command:
  - python
  - -c
  - |
    import json, sys
    x, y = float(sys.argv[1]), float(sys.argv[2])
    print(json.dumps(dict(value=(x - 1.0) ** 2 + (y + 2.0) ** 2)))
  - "{x}"
  - "{y}"

# Extra environment variables for the command (values may use placeholders).
env:
  OMP_NUM_THREADS: "1"

# The directory each trial runs in (default: the current directory), e.g.
#   workdir: runs/{trial_id}

# Where the result comes from:
#   {from: stdout}                                       the last JSON object line printed
#   {from: file, path: "{checkpoint_dir}/result.json"}   a JSON file the program writes
#   {from: regex, pattern: "loss=(?P<value>[0-9.eE+-]+)"}  a match in the output
result: {from: stdout}

# Which key of the program's intermediate reports goes to the scheduler (default: the
# first metric).
# report_metric: value

# When to stop: trials in all, seconds in all, seconds per trial, retries of a trial
# whose worker vanished, seconds between asking a command to stop and killing it.
limits:
  n_trials: 20
  timeout: 600
  trial_timeout: 60
  max_retries: 0
  grace_period: 10

# Where trials run: `workers` at once on this machine; `slurm` (optional) holds the
# options of a SLURM launch (partition, account, qos, time_limit_min, gpus_per_task,
# cpus_per_task, mem_gb, additional_sbatch, ...), e.g.
#   slurm: {partition: gpu, account: myproject, time_limit_min: 120, gpus_per_task: 1}
resources:
  workers: 2
"""
"""A commented study file that tunes a tiny inline Python script (written by
``tuningfork init``); it validates as it is."""
