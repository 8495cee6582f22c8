"""Storage URLs: the schemes get_storage opens, one specific error for any other, and
passwords masked wherever a URL is shown (`redact_url`)."""

from __future__ import annotations

import pytest

import tuningfork as tf
from tuningfork.exceptions import StorageURLError
from tuningfork.storage import get_storage, redact_url


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://u:secret@h/db", "postgresql://u:***@h/db"),
        ("postgresql+psycopg://u:s3cr%40t@h:5432/db", "postgresql+psycopg://u:***@h:5432/db"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # an unescaped "@"
        (
            "postgresql://h/db?user=u&password=secret&sslmode=require",
            "postgresql://h/db?user=u&password=***&sslmode=require",
        ),  # fmt: skip
        ("postgresql://u@h:5432/db", "postgresql://u@h:5432/db"),  # a port is no password
        ("sqlite:////data/a:b@c.db", "sqlite:////data/a:b@c.db"),
        ("journal:///scratch/x:y@z.log", "journal:///scratch/x:y@z.log"),
        ("memory", "memory"),
    ],
)
def test_redact_url_masks_only_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url", ["mysql://u:secret@localhost/db", "oracle://u:secret@h/x", "bogus://nowhere"]
)
def test_an_unsupported_scheme_is_one_error_naming_the_url_and_the_forms(url: str) -> None:
    with pytest.raises(StorageURLError) as caught:
        get_storage(url)
    message = str(caught.value)
    assert redact_url(url) in message and "secret" not in message
    assert f"does not support {url.split('://')[0]!r} storages" in message
    for form in ("sqlite:///", "postgresql+psycopg://", "journal:///", "memory"):
        assert form in message
    assert isinstance(caught.value, tf.StorageError) and isinstance(caught.value, ValueError)
    with pytest.raises(StorageURLError):  # the same through the study API
        tf.create_study("s", storage=url)


def test_a_path_is_not_a_url() -> None:
    with pytest.raises(StorageURLError, match="'study.db' is not a storage URL; use sqlite"):
        get_storage("study.db")
