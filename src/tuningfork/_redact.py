"""Keeping secrets out of what tuningfork stores and prints: passwords in URLs (and, in
`tuningfork.config.redact_study_file`, the values of a study file's environment)."""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@host: the password runs to the last "@" before the host (better
# to mask too much of a URL than part of a password holding an unescaped "@")
_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)[^\s/]*(?=@)")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)[^&\s]*", re.IGNORECASE)


def redact_urls(text: str) -> str:
    """``text`` (a URL, or any text holding URLs) with the password of every
    ``scheme://user:password@host`` URL, and every ``password=`` query parameter, shown as
    ``***``; the rest is kept. ``postgresql://u:secret@h/db`` gives ``postgresql://u:***@h/db``."""
    text = _PASSWORD.sub(lambda match: match.group("head") + MASK, text)
    return _QUERY_PASSWORD.sub(lambda match: match.group("head") + MASK, text)
