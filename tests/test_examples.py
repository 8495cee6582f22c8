"""The main example and the README's quick-start snippet run end to end, as users run them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import tuningfork

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 120


def run_python(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, (
        f"exit {completed.returncode}\n--- stdout\n{completed.stdout}\n"
        f"--- stderr\n{completed.stderr}"
    )
    return completed


@pytest.mark.slow
def test_digits_example_runs_two_worker_processes(tmp_path):
    pytest.importorskip("sklearn")
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    script = ROOT / "examples" / "digits.py"
    args = [str(script), "--trials", "8", "--workers", "2", "--study", "digits", "--storage", url]

    completed = run_python(args, cwd=tmp_path)

    assert "Best configuration" in completed.stdout
    assert "Test accuracy" in completed.stdout
    trials = tuningfork.load_study("digits", url).get_trials()
    assert len(trials) == 8
    assert all(t.state.is_finished for t in trials)
    assert any(t.state is tuningfork.TrialState.COMPLETE for t in trials)
    assert len({t.worker for t in trials}) == 2  # two processes, each with its own id


def readme_quick_start() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert match is not None, "README.md has no ```python block"
    return match.group(1)


def test_readme_quick_start_snippet_runs(tmp_path):
    script = tmp_path / "quick_start.py"
    script.write_text(readme_quick_start(), encoding="utf-8")

    completed = run_python([str(script)], cwd=tmp_path)

    assert completed.stdout.strip(), "the snippet should print the best value and parameters"
    assert (tmp_path / "tuningfork.db").exists()  # the default storage, in the cwd
