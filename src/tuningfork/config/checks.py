"""The checks of a study file beyond its schema's types: pydantic's errors in plain words
at the right key, the space (each parameter's error at its line), objectives, the result
source, placeholders, the storage URL and the study name."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from tuningfork._names import did_you_mean, unknown
from tuningfork.command import BUILTIN_PLACEHOLDERS
from tuningfork.config.components import build_component, component_shape
from tuningfork.config.problems import Loc, Problems, field_path
from tuningfork.config.schema import ResultConfig, StudyConfig
from tuningfork.exceptions import SpaceError, StorageURLError, StudyNameError
from tuningfork.space import Space
from tuningfork.storage import check_study_name, check_url

_REQUIRED_HINTS = {
    "study": "give the study a name, e.g. study: my-study",
    "space": "declare the parameters to tune, e.g. space: {lr: {type: float, low: 0.001, "
    "high: 0.1, log: true}}",
    "command": 'give the program to run as a list, e.g. command: [python, train.py, --lr, "{lr}"]',
}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation (Optional, Annotated, ...), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _field_at(loc: Loc) -> Any:
    """The pydantic field at `loc` (a path of model fields; list indexes are skipped), or
    None; the root model for an empty path."""
    model: type[BaseModel] | None = StudyConfig
    field: Any = None
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None:
            return None
        field = next(
            (f for name, f in model.model_fields.items() if (f.alias or name) == part), None
        )
        if field is None:
            return None
        model = _model_in(field.annotation)
    return field


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys allowed in the mapping at `loc` (a path of model fields)."""
    field = _field_at(loc)
    model = StudyConfig if not loc else _model_in(field.annotation) if field else None
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _literal_choices(loc: Loc) -> list[str]:
    """The values of the Literal type of the field at `loc` (e.g. minimize, maximize)."""
    field = _field_at(loc)
    choices: list[str] = []
    stack = [field.annotation] if field is not None else []
    while stack:
        annotation = stack.pop()
        if get_origin(annotation) is Literal:
            choices += [str(arg) for arg in get_args(annotation)]
        else:
            stack += list(get_args(annotation))
    return choices


def add_pydantic_error(error: Mapping[str, Any], problems: Problems) -> None:
    """Translate one pydantic error into a problem with a plain-words message."""
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        key = loc[-1]
        where = f"{field_path(loc[:-1])}: " if loc[:-1] else ""
        problems.add(loc, where + unknown("key", key, allowed, "allowed keys"), show_field=False)
        return
    if kind == "missing":
        hint = _REQUIRED_HINTS.get(str(loc[-1])) if len(loc) == 1 else None
        problems.add(loc, "required key is missing" + (f"; {hint}" if hint else ""))
        return
    choices = _literal_choices(loc) if kind == "literal_error" else []
    problems.add(loc, _plain_message(kind, error.get("msg", ""), ctx, value, choices))


def _number_text(value: Any) -> str:
    """0.0 -> '0', 2.5 -> '2.5' (bounds in messages)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _plain_message(
    kind: str, msg: str, ctx: Mapping[str, Any], value: Any, choices: list[str]
) -> str:
    got = f", got {value!r}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<"}
    bounds["less_than_equal"] = "<="
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"must be {bounds[kind]} {_number_text(limit)}{got}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        suggestion = did_you_mean(value, choices)
        return f"must be one of {expected}{got}{'; ' + suggestion if suggestion else ''}"
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


def check_semantics(data: dict[str, Any], problems: Problems) -> None:
    """Checks beyond types: space, sampler, scheduler, placeholders, counts, regex, URL."""
    space = _check_space(data.get("space"), problems)
    if isinstance(data.get("sampler"), (str, dict)):
        seed = data.get("seed") if isinstance(data.get("seed"), int) else None
        build_component("sampler", data["sampler"], ("sampler",), problems, space=space, seed=seed)
    elif data.get("sampler") is not None:
        problems.add(("sampler",), component_shape("sampler", data["sampler"]))
    if isinstance(data.get("scheduler"), (str, dict)):
        build_component("scheduler", data["scheduler"], ("scheduler",), problems)
    elif data.get("scheduler") is not None:
        problems.add(("scheduler",), component_shape("scheduler", data["scheduler"]))
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


def _check_space(raw: Any, problems: Problems) -> Space | None:
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
    spec: dict[str, Any], raw: dict[str, Any], problems: Problems, error: SpaceError | None = None
) -> bool:
    """Add the error of Space.from_dict(spec) (or ``error``) at the parameter it names;
    True if there is none."""
    if error is None:
        try:
            Space.from_dict(spec)
            return True
        except SpaceError as raised:
            error = raised
    name = error.parameter
    if name is not None and name in raw:
        loc: Loc = ("space", name, "when") if isinstance(raw[name], dict) else ("space", name)
        problems.add(loc, _strip_parameter(str(error), name))
    else:
        problems.add(("space",), str(error))
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


def _check_objectives(data: dict[str, Any], problems: Problems) -> list[str]:
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


def _check_result(raw: Any, metrics: list[str], problems: Problems) -> None:
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


def _check_placeholders(data: dict[str, Any], params: list[str], problems: Problems) -> None:
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
                    unknown("placeholder", name, known, "allowed")
                    + " (the space's parameters and the built-ins)",
                )
