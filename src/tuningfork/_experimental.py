"""Marking API as experimental: it works and is tested, but its shape may change in a
minor release. Using it warns once per process with `ExperimentalWarning`."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from tuningfork.exceptions import ExperimentalWarning

T = TypeVar("T")

_warned: set[str] = set()


def experimental(since: str) -> Callable[[T], T]:
    """Mark a function or class as experimental since version ``since``: its docstring
    says so, and its first use (a call, or an instance made) warns once."""

    def mark(obj: T) -> T:
        name = getattr(obj, "__qualname__", repr(obj))
        note = f"\n\n    Experimental (since {since}): its interface may change in a minor release."
        obj.__doc__ = (obj.__doc__ or "").rstrip() + note
        target: Any = obj.__init__ if isinstance(obj, type) else obj  # type: ignore[misc]

        @functools.wraps(target)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if name not in _warned:
                _warned.add(name)
                warnings.warn(
                    f"{name} is experimental (since {since}): its interface may change",
                    ExperimentalWarning,
                    stacklevel=2,
                )
            return target(*args, **kwargs)

        if isinstance(obj, type):
            obj.__init__ = wrapper  # type: ignore[misc]
            return obj
        return wrapper  # type: ignore[return-value]

    return mark


def is_experimental(obj: Any) -> bool:
    """Whether ``obj`` was marked with `experimental`."""
    return "Experimental (since" in (getattr(obj, "__doc__", None) or "")
