"""Shared fixtures: every test runs in its own directory, so default storages don't collide."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUNINGFORK_STORAGE", raising=False)
    yield


@pytest.fixture(params=["memory", "sqlite"])
def storage_url(request, tmp_path) -> str:
    """Each storage backend in turn, as a URL."""
    if request.param == "memory":
        return "memory"
    return f"sqlite:///{tmp_path / 'study.db'}"
