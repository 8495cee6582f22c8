"""The storage contract (tuningfork.testing.StorageContract) applied to every backend."""

from __future__ import annotations

from pathlib import Path

import tuningfork as tf
from tuningfork.testing import StorageContract


class TestInMemoryStorage(StorageContract):
    def make_storage(self, tmp_path: Path) -> tf.Storage:
        return tf.InMemoryStorage()


class TestSQLiteStorage(StorageContract):
    processes = True

    def make_storage(self, tmp_path: Path) -> tf.Storage:
        return tf.SQLStorage(f"sqlite:///{tmp_path / 'contract.db'}")
