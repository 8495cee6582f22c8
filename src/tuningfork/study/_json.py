"""JSON checks for what users ask the study to record."""

from __future__ import annotations

import json
from typing import Any

from tuningfork.exceptions import OptionError


def json_checked(value: Any, what: str) -> Any:
    """A copy of ``value`` as the storage will return it (tuples become lists), so that
    later changes to the caller's object change nothing, whatever the storage."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError) as error:
        raise OptionError(
            f"{what} must be JSON-serialisable (str, number, bool, None, list, dict): {error}",
            option=what,
        ) from None
