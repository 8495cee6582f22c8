"""The one "did you mean" of tuningfork: the closest known name to a misspelt one, for
error messages (space keys, study-file keys, sampler and scheduler names, study names)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: object, options: Iterable[str]) -> str:
    """ "did you mean 'x'?" for the option closest to ``word``, or "" when none is close."""
    matches = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f"did you mean {matches[0]!r}?" if matches else ""


def unknown(what: str, word: object, options: Iterable[str], label: str) -> str:
    """ "unknown WHAT 'w'; did you mean 'x'? LABEL: a, b" (or "...'w'; LABEL: a, b")."""
    options = list(options)
    suggestion = did_you_mean(word, options)
    joint = f"; {suggestion} " if suggestion else "; "
    return f"unknown {what} {word!r}{joint}{label}: {', '.join(options) or 'none'}"
