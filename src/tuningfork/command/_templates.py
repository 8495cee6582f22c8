"""Argument templates of a command objective: ``str.format``-style fields looked up whole,
values formatted exactly, and an inactive parameter's argument dropped."""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from typing import Any

from tuningfork.exceptions import OptionError

BUILTIN_PLACEHOLDERS: tuple[str, ...] = ("trial_id", "study", "checkpoint_dir", "budget", "seed")
"""Placeholders every template may use besides the parameters (a parameter of the same name
takes precedence)."""

INACTIVE = object()  # what a template renders to when a field names an absent value


class Template:
    """A ``str.format``-style template whose fields are looked up whole (so a parameter named
    ``opt.lr`` works) and formatted by `format_value` unless they carry a format spec."""

    def __init__(self, text: str, what: str) -> None:
        if not isinstance(text, str):
            raise OptionError(
                f"{what} must be a string, got {text!r}",
                option="template",
                owner="CommandObjective",
            )
        self.text = text
        self.parts: list[tuple[str, str | None, str, str | None]] = []
        try:
            for literal, field, spec, conversion in string.Formatter().parse(text):
                if field is not None and (not field or field.isdigit()):
                    raise OptionError(
                        f"{what} {text!r}: positional placeholder {{{field}}}; name a "
                        "parameter or a built-in such as {trial_id}",
                        option="template",
                        owner="CommandObjective",
                    )
                self.parts.append((literal, field, spec or "", conversion))
        except ValueError as error:
            raise OptionError(
                f"{what} {text!r} is not a valid template ({error}); write {{{{ and }}}} "
                "for literal braces",
                option="template",
                owner="CommandObjective",
            ) from None
        self.fields = {field for _, field, _, _ in self.parts if field is not None}

    def render(self, values: Mapping[str, Any]) -> str | object:
        """The rendered text, or `INACTIVE` if a field names an absent value."""
        out = []
        for literal, field, spec, conversion in self.parts:
            out.append(literal)
            if field is None:
                continue
            if field not in values or values[field] is None:
                return INACTIVE
            value = values[field]
            if conversion == "r":
                value = repr(value)
            elif conversion == "s":
                value = str(value)
            elif conversion == "a":
                value = ascii(value)
            out.append(format(value, spec) if spec or conversion else format_value(value))
        return "".join(out)


def format_value(value: Any) -> str:
    """Booleans as ``true``/``false``, floats with ``repr`` (exact round trip; an integral
    budget as an int), everything else with ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def budget_text(budget: float | None) -> str | None:
    if budget is None:
        return None
    if isinstance(budget, float) and math.isfinite(budget) and budget.is_integer():
        return str(int(budget))
    return format_value(budget)


def is_flag(text: str) -> bool:
    if not text.startswith("-") or text == "-":
        return False
    try:
        float(text)
    except ValueError:
        return True
    return False  # a negative number is a value, not a flag
