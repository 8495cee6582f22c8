"""Shared fixtures: every test runs in its own directory, so default storages don't collide."""

from __future__ import annotations

import pytest

from tuningfork.testing import SamplerContract, SchedulerContract, StorageContract


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


# The contracts' multi-process and multi-thread tests (SQLite under 4 threads takes 10 to
# 50 s per scheduler). The contracts ship in the package, which registers no
# pytest marks for its users, so they are marked slow here, where the mark is registered.
SLOW_CONTRACT_TESTS = {
    SamplerContract: {"test_concurrent_processes"},
    SchedulerContract: {"test_processes_share_a_study", "test_threads_share_a_study"},
    StorageContract: {"test_processes_share_a_study"},
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function) or item.cls is None:
            continue
        for contract, slow in SLOW_CONTRACT_TESTS.items():
            if issubclass(item.cls, contract) and item.originalname in slow:
                item.add_marker(pytest.mark.slow)
