"""The overhead benchmark runs end to end (smoke mode) and writes only its own section."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "overhead.py"


def _load_overhead():
    pytest.importorskip("optuna")
    if str(SCRIPT.parent) not in sys.path:  # overhead.py imports its sibling _report.py
        sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("overhead", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_run_prints_tables_and_writes_results(tmp_path):
    pytest.importorskip("optuna")
    results = tmp_path / "RESULTS.md"
    completed = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--results",
            str(results),
            "--dir",
            str(tmp_path / "db"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    for header in (
        "### Ask+tell time per trial",
        "| storage | framework, sampler | trial 100 |",
        "processes on one SQLite study",
        "| framework | run | processes x trials |",
        "### Targets",
    ):
        assert header in out
    assert "tuningfork RandomSampler" in out and "Optuna RandomSampler" in out
    assert "lost/duplicated" in out
    assert "## Sampling time per trial" in out
    assert "| family | framework, sampler | trial 20 | trial 50 | trial 100 |" in out
    assert "| TPE | Optuna TPESampler (default: multivariate) |" in out
    text = results.read_text()
    assert text.count("<!-- begin overhead.py") == 1
    assert text.count("<!-- begin overhead-sampling") == 1
    # the sampling section follows the framework section
    assert text.index("<!-- end overhead.py") < text.index("<!-- begin overhead-sampling")
    assert "optuna: " in text and "command: " in text


def test_write_section_replaces_only_its_own_section(tmp_path):
    overhead = _load_overhead()
    path = tmp_path / "RESULTS.md"
    overhead.write_section(path, "first", overhead.BEGIN, overhead.END)
    assert path.read_text().startswith("# Benchmark results")
    path.write_text(path.read_text() + "\n## Quality\n\nkept\n")
    overhead.write_section(path, "second", overhead.BEGIN, overhead.END)
    text = path.read_text()
    assert "second" in text and "first" not in text
    assert text.count(overhead.BEGIN) == 1 and text.endswith("kept\n")


QUALITY = SCRIPT.parent / "quality.py"


@pytest.mark.slow
def test_quality_quick_run_prints_tables_and_writes_results(tmp_path):
    pytest.importorskip("optuna")
    pytest.importorskip("hyperopt")
    pytest.importorskip("sklearn")
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Benchmark results\n\n<!-- begin overhead.py -->\nkept\n<!-- end overhead.py -->\n"
    )
    completed = subprocess.run(
        [
            sys.executable,
            str(QUALITY),
            "--quick",
            "--results",
            str(results),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    for header in (
        "## Optimisation quality",
        "### branin (2 parameters, global minimum 0.397887)",
        "### mixed (6 parameters",
        "| sampler | regret at 5: median [25%, 75%] | at 10 | at 20 |",
        "### Average rank",
        "| position | sampler | average rank",
        "### Targets",
        "### Where we lose",
    ):
        assert header in out, header
    for label in ("tuningfork random", "Optuna TPE (default: multivariate)", "hyperopt TPE"):
        assert f"| {label} |" in out, label
    text = results.read_text()
    assert text.count("<!-- begin quality.py") == 1 and text.count("<!-- end quality.py") == 1
    assert "kept" in text  # the other scripts' sections are left alone
    assert "optuna 5" in text and "command: " in text
    assert (
        len(list((tmp_path / "cache").glob("*.json"))) == 2 * 3 * 2
    )  # problems x samplers x seeds


def test_speedup_quick_run(tmp_path):
    out = tmp_path / "speedup.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(SCRIPT.parent / "speedup.py"),
            "--quick",
            "--seeds", "1",
            "--ref-time", "10",
            "--problems", "mf_branin",
            "--schedulers", "asha-stopping", "hyperband-sync",
            "--workers", "4",
            "--processes", "1",
            "--out", str(out),
        ],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "4 workers" in completed.stdout
    assert out.with_suffix(".md").exists()


@pytest.mark.slow
def test_storage_quick_run_sqlite_and_journal(tmp_path):
    pytest.importorskip("optuna")
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Benchmark results\n\n<!-- begin overhead.py -->\nkept\n<!-- end overhead.py -->\n"
    )
    completed = subprocess.run(
        [
            sys.executable,
            str(SCRIPT.parent / "storage.py"),
            "--quick",
            "--kinds", "sqlite", "journal",
            "--workers", "1", "2",
            "--out", str(tmp_path / "storage"),
            "--results", str(results),
            "--dir", str(tmp_path / "files"),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    for header in (
        "### Throughput (trials/s, all processes together)",
        "| storage | framework | 1 process | 2 processes |",
        "| SQLite | ratio tuningfork / Optuna |",
        "| journal | ratio tuningfork / Optuna |",
        "### Ask+tell time per trial, one process",
        "### Targets",
    ):
        assert header in out, header
    assert "(NOT intact)" not in out and "| crashed" not in out
    assert "PASS  tuningfork: no lost or duplicated trial in any run: 4/4 runs intact" in out
    assert "PostgreSQL" not in out.split("### Throughput")[1]
    data = json.loads((tmp_path / "storage.json").read_text())
    assert {(r["kind"], r["framework"]) for r in data["throughput"]} == {
        (kind, framework)
        for kind in ("SQLite", "journal")
        for framework in ("tuningfork", "optuna")
    }
    assert all(r["intact"] for r in data["throughput"])
    text = results.read_text()
    assert text.count("<!-- begin storage.py") == 1 and "kept" in text


@pytest.mark.slow
def test_gp_threads_quick_run_writes_its_section_after_the_sampling_section(tmp_path):
    pytest.importorskip("optuna")  # the runs time the GP with overhead.py's code
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Benchmark results\n\n<!-- begin overhead-sampling -->\nkept\n"
        "<!-- end overhead-sampling -->\n\n<!-- begin quality.py -->\nalso kept\n"
        "<!-- end quality.py -->\n"
    )
    completed = subprocess.run(
        [
            sys.executable,
            str(SCRIPT.parent / "gp_threads.py"),
            "--quick",
            "--busy",
            "1",
            "--results",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    for line in (
        "| run | repeat 1 | median |",
        "| user's environment: ms/trial at trial 20 |",
        "| threads = 1 before start-up (reference): ms/trial at trial 20 |",
        "| ratio user / reference |",
        "SKIP (quick smoke run, no verdict)  GP sampling time at trial 20",
    ):
        assert line in out, line
    text = results.read_text()
    assert text.count("<!-- begin gp_threads.py") == 1 and "also kept" in text
    assert (
        text.index("<!-- end overhead-sampling")
        < text.index("<!-- begin gp_threads.py")
        < text.index("<!-- begin quality.py")
    )
