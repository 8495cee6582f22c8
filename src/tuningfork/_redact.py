"""Keeping secrets out of what tuningfork stores and prints: passwords in URLs and the
values of a study file's environment variables."""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@host -> the password part (up to the last '@' before the host)
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)[^\s/]*(?=@)")


def redact_urls(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL in it
    replaced by ``***`` (the user, host and the rest are kept)."""
    return _URL_PASSWORD.sub(lambda match: match.group("head") + MASK, text)
