"""benchmarks/pbt.py: the toy problem's runs at small size against their closed form, and
the quick run end to end (tables and its RESULTS.md section)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "pbt.py"


def _load() -> ModuleType:
    if str(SCRIPT.parent) not in sys.path:  # pbt.py imports its sibling _report.py
        sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("pbt_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grid_points_are_cell_midpoints() -> None:
    bench = _load()
    assert bench.grid_points(4) == [
        {"h0": 0.25, "h1": 0.25},
        {"h0": 0.25, "h1": 0.75},
        {"h0": 0.75, "h1": 0.25},
        {"h0": 0.75, "h1": 0.75},
    ]
    points = bench.grid_points(8)
    assert len(points) == 8 and len({(p["h0"], p["h1"]) for p in points}) == 8
    assert all(0 < p["h0"] < 1 and 0 < p["h1"] < 1 for p in points)


def test_toy_grid_with_the_papers_start_matches_the_closed_form() -> None:
    # h = (1, 0) only moves theta0: Q(t) = 1.2 - 0.81 (1 - 2 eta)^(2t) - 0.81
    bench = _load()
    run = bench.toy_run("grid", 2, 0, 50, "paper")
    expected = 1.2 - 0.81 * (1 - 2 * bench.TOY_ETA) ** 100 - 0.81
    assert run["q"] == pytest.approx(expected, abs=1e-12)
    assert run["step"] is None and run["trials"] == 2


def test_toy_pbt_leaves_the_papers_fixed_start_behind() -> None:
    # the paper's point: the fixed h (1, 0) and (0, 1) stall at Q < 0.4, while PBT's
    # members copy theta and move h; 100 steps, 2 members (seed 0 is the slowest of 10)
    bench = _load()
    grid = bench.toy_run("grid", 2, 0, 100, "paper")
    pbt = bench.toy_run("pbt", 2, 0, 100, "paper")
    assert grid["q"] < 0.4 < 1.15 < pbt["q"]
    assert pbt["trials"] == 2  # two members, each one trial paused and resumed


@pytest.mark.slow
def test_quick_run_prints_both_tables_and_writes_its_section(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n<!-- begin other -->\nkept\n<!-- end other -->\n")
    raw = tmp_path / "runs.json"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--results", str(results), "--json", str(raw)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    for header in (
        "## Population-based training",
        "### Toy problem (Jaderberg et al. 2017, Fig. 2)",
        "| start h | members | method | Q at step 40: median |",
        "### Digits: an MLP on scikit-learn's digits",
        "| method | members | validation accuracy: median |",
    ):
        assert header in out, header
    for row in ("| (1, 0), (0, 1) | 2 | PBT |", "| random | 4 | random search |"):
        assert row in out, row
    for label in ("PBT", "PB2", "ASHA (promotion)", "random search"):
        assert f"| {label} | 4 |" in out, label
    runs = json.loads(raw.read_text())
    for row in runs["digits"]:
        for run in row["runs"]:
            assert 0.0 <= run["val"] <= 1.0 and 0.0 <= run["test"] <= 1.0
            # same compute: population x epochs (ASHA may overshoot by its last round)
            assert run["epochs"] >= 4 * 8 and (row["method"] == "asha" or run["epochs"] == 32)
    text = results.read_text()
    assert text.count("<!-- begin pbt.py") == 1 and "kept" in text
    assert "torch " in text and "command: " in text
