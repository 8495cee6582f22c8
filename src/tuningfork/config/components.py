"""The ``sampler`` and ``scheduler`` of a study file built through the registry
(`tuningfork.registry`): one pipeline for both, each problem at the option it is about."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from tuningfork import registry
from tuningfork._names import unknown
from tuningfork.config.problems import Loc, Problems, kind_text
from tuningfork.exceptions import OptionError, TuningforkError
from tuningfork.samplers import AutoSampler
from tuningfork.schedulers import AnyOf, NoScheduler
from tuningfork.space import Space

# the sampler argument that a study file cannot set: the space is the file's own, and is
# passed to a sampler that takes it (GridSampler)
_SPACE_ARGUMENT = "space_or_values"
# options that take a live Python object, which a study file cannot give, and why
_OBJECT_OPTIONS = {
    "checkpoint_store": "takes a Python object (a tuningfork.study.CheckpointStore, e.g. "
    "an object store), which a study file cannot give; leave it out (committed "
    "checkpoints go under the study's artefact folder) or pass it in Python",
}
_EXAMPLES = {
    "sampler": "{name: tpe, n_startup_trials: 10}",
    "scheduler": "{name: asha, max_budget: 27} or {any_of: [median, ...]}",
}


def build_component(
    kind: registry.Kind,
    raw: Any,
    loc: Loc,
    problems: Problems,
    *,
    space: Space | None = None,
    seed: int | None = None,
) -> Any:
    """The sampler or scheduler of a ``sampler`` / ``scheduler`` value, or None after
    adding its problems. Defaults: `AutoSampler` (seeded with ``seed``), no scheduler
    (None). A sampler gets ``seed`` unless its options give one."""
    if raw is None:
        return AutoSampler(seed=seed) if kind == "sampler" else None
    if not isinstance(raw, (str, dict)):
        problems.add(loc, component_shape(kind, raw))
        return None
    if kind == "scheduler" and isinstance(raw, dict) and "any_of" in raw:
        return _build_any_of(raw, loc, problems)
    parts = _split(kind, raw, loc, problems)
    if parts is None:
        return None
    raw_name, name_loc, options = parts
    cls = _lookup(kind, raw_name, name_loc, problems)
    if cls is None:
        return None
    name = registry.name_of(cls) or cls.__name__
    if cls is NoScheduler:  # "none": the study's default, recorded as no scheduler
        if options:
            problems.add((*loc, next(iter(options))), "scheduler 'none' takes no options")
        return None
    parameters = inspect.signature(cls).parameters
    if not _check_options(kind, name, cls, options, loc, problems):
        return None
    if kind == "sampler" and seed is not None and "seed" in parameters:
        options = {"seed": seed, **options}
    positional = (space,) if _SPACE_ARGUMENT in parameters and space is not None else ()
    return _construct(cls, options, loc, problems, positional)


def component_shape(kind: str, raw: Any) -> str:
    example = "tpe" if kind == "sampler" else "asha"
    return (
        f"must be a {kind} name such as {example!r} or a mapping "
        f"{{name: {example}, OPTION: VALUE}}, got {kind_text(raw)}"
    )


def _lookup(kind: registry.Kind, raw_name: Any, loc: Loc, problems: Problems) -> type | None:
    """The registered class of a name (case-insensitive; class names too), or None."""
    if not isinstance(raw_name, str) or not raw_name:
        example = registry.names(kind)[0]
        problems.add(loc, f"the {kind} name must be text such as {example!r}")
        return None
    try:
        return registry.lookup(kind, raw_name)
    except OptionError as error:
        problems.add(loc, str(error))
        return None


def _split(
    kind: str, raw: Any, loc: Loc, problems: Problems
) -> tuple[Any, Loc, dict[str, Any]] | None:
    """(name, location of the name, options) of a component given as text or mapping."""
    if isinstance(raw, str):
        return raw, loc, {}
    if "name" not in raw:
        problems.add(loc, f"a {kind} mapping needs the key 'name', e.g. {_EXAMPLES[kind]}")
        return None
    options = {str(k): v for k, v in raw.items() if k != "name"}
    return raw["name"], (*loc, "name"), options


def _check_options(
    kind: str, name: str, cls: type, options: Mapping[str, Any], loc: Loc, problems: Problems
) -> bool:
    """Unknown and missing options against the constructor's signature; True if fine."""
    parameters = {
        key: p
        for key, p in inspect.signature(cls).parameters.items()
        if key != _SPACE_ARGUMENT
        and key not in _OBJECT_OPTIONS
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    fine = True
    for key in options:
        if key in _OBJECT_OPTIONS and key in inspect.signature(cls).parameters:
            problems.add((*loc, key), f"{cls.__name__}'s option {key!r} {_OBJECT_OPTIONS[key]}")
            fine = False
        elif key not in parameters:
            problems.add(
                (*loc, key),
                unknown(f"{kind} option", key, list(parameters), f"{cls.__name__} takes"),
            )
            fine = False
    for key, p in parameters.items():
        if p.default is p.empty and key not in options:
            problems.add(loc, f"{kind} {name!r} needs the option {key!r}")
            fine = False
    return fine


def _construct(
    cls: type, options: Mapping[str, Any], loc: Loc, problems: Problems, positional: tuple = ()
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
    """Each error of cls(**options) with the option it is about (None: not one given).

    A constructor stops at its first error, so after an error about a given option (its
    `OptionError.option`), that option goes back to its default and the class is built
    again, until it builds or an error names no option it was given."""
    parameters = inspect.signature(cls).parameters
    remaining = dict(options)
    found: list[tuple[str | None, str]] = []
    while True:
        try:
            cls(*positional, **remaining)
            return found
        except (TuningforkError, TypeError, ValueError) as error:
            option = error.option if isinstance(error, OptionError) else None
            message = str(error)
        named = option if option in remaining else None
        if named is None and found:
            return found  # may follow from a default standing in for a bad option
        found.append((named, message))
        if named is None or parameters[named].default is inspect.Parameter.empty:
            return found
        del remaining[named]


def _build_any_of(raw: dict[str, Any], loc: Loc, problems: Problems) -> Any:
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
        built = build_component("scheduler", member, (*loc, "any_of", index), problems)
        if built is None and len(problems.items) == before:
            problems.add((*loc, "any_of", index), "'none' cannot be a member of any_of")
        members.append(built)
    if len(problems.items) > before:
        return None
    return _construct(AnyOf, {}, (*loc, "any_of"), problems, tuple(members))
