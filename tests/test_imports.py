"""What `import tuningfork` loads: scipy and SQLAlchemy are slow to import and only some
studies need them, so they are imported on first use."""

from __future__ import annotations

import subprocess
import sys

import tuningfork as tf


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_import_tuningfork_loads_neither_scipy_nor_sqlalchemy():
    loaded = _modules_after("import tuningfork, tuningfork.cli")
    assert "tuningfork.cli" in loaded
    assert not {"scipy", "sqlalchemy"} & loaded


def test_they_are_loaded_when_a_study_needs_them(tmp_path):
    loaded = _modules_after(
        "import tuningfork as tf\n"
        f"s = tf.create_study(storage='sqlite:///{tmp_path / 's.db'}', sampler=tf.TPESampler())\n"
        "s.optimize(lambda t: t.suggest_float('x', 0, 1), n_trials=15)"
    )
    assert {"scipy.special", "sqlalchemy"} <= loaded
    assert tf.SQLStorage is tf.storage.SQLStorage
    assert tf.SQLStorage.__module__ == "tuningfork.storage.sql"
