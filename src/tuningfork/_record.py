"""Records of samplers and schedulers derived from their ``__init__`` signature (as
scikit-learn's ``get_params``): what a study keeps so that a later worker re-creates the
same component, as JSON data, never a pickle."""

from __future__ import annotations

import enum
import inspect
from collections.abc import Mapping
from typing import Any, TypeVar

R = TypeVar("R", bound="Recorded")


class Recorded:
    """Base of `Sampler` and `Scheduler`: `describe` and `from_record` from ``__init__``.

    The record is ``{"name": CLASS NAME, OPTION: VALUE, ...}`` with one entry per
    parameter of ``type(self).__init__``, read from the attribute of the same name (so
    keep each option as an attribute of its parameter's name; one without such an
    attribute is left out of the record and comes back as its default). Values are made
    JSON-ready: tuples become lists, samplers and schedulers their records, a function its
    ``module.qualname`` (a name only: opening a study never runs its code).

    The one hook, for a class whose record cannot be derived that way (e.g. `GridSampler`,
    whose first argument is a space or a mapping of values): override `_record_options`
    to add or rename entries, and `from_record` to read them back.
    """

    def describe(self) -> dict[str, Any]:
        """A JSON record of this object's class and options, kept in the study's record."""
        return {"name": type(self).__name__, **self._record_options()}

    def _record_options(self) -> dict[str, Any]:
        """The options to record, by name (the hook; see the class docstring)."""
        options: dict[str, Any] = {}
        for name, parameter in _parameters(type(self)).items():
            if parameter.kind is not parameter.VAR_KEYWORD and hasattr(self, name):
                options[name] = json_ready(getattr(self, name))
        return options

    @classmethod
    def from_record(cls: type[R], record: Mapping[str, Any]) -> R:
        """The object a record describes: ``cls`` called with the record's entries that
        are parameters of its ``__init__`` (others, e.g. ``name``, are ignored); nested
        records (e.g. `AnyOf`'s members) are re-created through the registry."""
        args: list[Any] = []
        options: dict[str, Any] = {}
        for name, parameter in _parameters(cls).items():
            if name not in record or parameter.kind is parameter.VAR_KEYWORD:
                continue
            if parameter.kind is parameter.VAR_POSITIONAL:
                args = [from_json(value) for value in record[name]]
            else:
                options[name] = from_json(record[name])
        return cls(*args, **options)


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    parameters = dict(inspect.signature(cls.__init__).parameters)  # type: ignore[misc]
    parameters.pop("self", None)
    return parameters


def json_ready(value: Any) -> Any:
    """``value`` as plain JSON data (see `Recorded`)."""
    if isinstance(value, Recorded):
        return value.describe()
    if isinstance(value, enum.Enum):
        return json_ready(value.value)
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # a NumPy scalar
        return value.item()
    if callable(value) and not isinstance(value, type):
        module = getattr(value, "__module__", "?")
        return f"{module}.{getattr(value, '__qualname__', value)}"
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):  # e.g. a Space
        return to_dict()
    return value


def from_json(value: Any) -> Any:
    """A recorded value back as an option: a nested record of a registered sampler or
    scheduler becomes that object; anything else is kept as it is."""
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        from tuningfork import registry
        from tuningfork.exceptions import OptionError

        for kind in registry.KINDS:
            try:
                cls = registry.lookup(kind, value["name"])
            except OptionError:
                continue
            return cls.from_record(value)  # type: ignore[attr-defined]
    if isinstance(value, list):
        return [from_json(item) for item in value]
    return value
