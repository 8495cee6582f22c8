"""The one name registry of samplers and schedulers: study files, study records and
plug-in packages (entry-point groups ``tuningfork.samplers`` / ``tuningfork.schedulers``)
all find a class here. See docs/plugins.md."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Any, Literal, TypeVar, overload

from tuningfork._names import unknown
from tuningfork.exceptions import OptionError

Kind = Literal["sampler", "scheduler"]
KINDS: tuple[Kind, ...] = ("sampler", "scheduler")
ENTRY_POINT_GROUPS: dict[Kind, str] = {
    "sampler": "tuningfork.samplers",
    "scheduler": "tuningfork.schedulers",
}

C = TypeVar("C", bound=type)

_lock = threading.RLock()
# kind -> short name -> class, in registration order (the order names() lists)
_by_name: dict[str, dict[str, type]] = {kind: {} for kind in KINDS}
_plugins_loaded: set[str] = set()


@overload
def register(cls: C, *, name: str | None = None, kind: Kind | None = None) -> C: ...
@overload
def register(
    cls: None = None, *, name: str | None = None, kind: Kind | None = None
) -> Callable[[C], C]: ...
def register(cls: Any = None, *, name: str | None = None, kind: Kind | None = None) -> Any:
    """Make a sampler or scheduler class known by ``name`` (default: its class name in
    lower case), so that study files can name it and `load_study` can re-create it from
    the study's record. Usable as ``@register`` or ``@register(name="mine")``.

    ``kind`` ("sampler" or "scheduler") is inferred from the base class (`Sampler` or
    `Scheduler`). Names are case-insensitive; the class name is accepted too. Returns
    the class. Registering a name again for another class replaces it.
    """
    if cls is None:
        return lambda decorated: register(decorated, name=name, kind=kind)
    kind = _kind_of(cls, kind)
    key = (name or cls.__name__).lower()
    with _lock:
        _by_name[kind][key] = cls
    return cls


def lookup(kind: Kind, name: str) -> type:
    """The class registered as ``name`` (its short name or its class name, in any case).

    Plug-ins of the entry-point group are loaded the first time a name is not found.
    Raises `OptionError` naming the known names (with a "did you mean") when none is.
    """
    _check_kind(kind)
    _builtins()
    found = _find(kind, name)
    if found is None and _load_plugins(kind):
        found = _find(kind, name)
    if found is None:
        message = unknown(kind, name, names(kind), "allowed")
        raise OptionError(message, option="name", owner=kind)
    return found


def names(kind: Kind) -> list[str]:
    """The short names of the registered classes of ``kind``, plug-ins included."""
    _check_kind(kind)
    _builtins()
    _load_plugins(kind)
    with _lock:
        return list(_by_name[kind])


def name_of(cls: type) -> str | None:
    """The short name ``cls`` is registered under (None: not registered)."""
    _builtins()
    with _lock:
        for table in _by_name.values():
            for key, registered in table.items():
                if registered is cls:
                    return key
    return None


def _find(kind: str, name: str) -> type | None:
    lowered = str(name).lower()
    with _lock:
        table = _by_name[kind]
        if lowered in table:
            return table[lowered]
        for cls in table.values():
            if cls.__name__.lower() == lowered:
                return cls
    return None


def _kind_of(cls: Any, kind: str | None) -> Kind:
    from tuningfork.samplers.base import Sampler
    from tuningfork.schedulers.base import Scheduler

    inferred: Kind | None = None
    if isinstance(cls, type) and issubclass(cls, Sampler):
        inferred = "sampler"
    elif isinstance(cls, type) and issubclass(cls, Scheduler):
        inferred = "scheduler"
    if kind is None and inferred is None:
        raise OptionError(
            f"cannot register {cls!r}: it is neither a Sampler nor a Scheduler subclass; "
            "derive it from tuningfork.samplers.Sampler or tuningfork.schedulers.Scheduler",
            option="cls",
            owner="register",
        )
    if kind is not None:
        _check_kind(kind)
        if inferred is not None and kind != inferred:
            raise OptionError(
                f"cannot register {cls.__name__} as a {kind}: it is a {inferred}; "
                f"leave kind out or pass kind={inferred!r}",
                option="kind",
                owner="register",
            )
    return kind or inferred  # type: ignore[return-value]


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise OptionError(
            f"kind must be one of {list(KINDS)}, got {kind!r}", option="kind", owner="registry"
        )


def _builtins() -> None:
    """Register the built-ins: importing the packages registers them."""
    import tuningfork.samplers  # noqa: F401
    import tuningfork.schedulers  # noqa: F401


def _load_plugins(kind: Kind) -> bool:
    """Register the entry points of ``kind``'s group, once; True if this call loaded them.

    A plug-in that fails to import is reported with a warning, not an error, so that one
    broken package does not stop every study."""
    with _lock:
        if kind in _plugins_loaded:
            return False
        _plugins_loaded.add(kind)
    group = ENTRY_POINT_GROUPS[kind]
    for entry in metadata.entry_points(group=group):
        try:
            cls = entry.load()
            register(cls, name=entry.name, kind=kind)
        except Exception as error:  # any failure of a third-party import
            warnings.warn(
                f"tuningfork: the {group} entry point {entry.name!r} ({entry.value}) could "
                f"not be loaded: {type(error).__name__}: {error}; fix or uninstall the "
                "package that provides it",
                stacklevel=3,
            )
    return True
