"""The overhead benchmark runs end to end (smoke mode) and writes only its own section."""

from __future__ import annotations

import importlib.util
import json
import math
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


def _quality_module():
    if str(QUALITY.parent) not in sys.path:  # quality.py imports its sibling _problems.py
        sys.path.insert(0, str(QUALITY.parent))
    spec = importlib.util.spec_from_file_location("quality_for_tests", QUALITY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("key", ["ng-cma", "ng-ngopt", "ng-emna"])
@pytest.mark.parametrize("problem", ["branin", "mixed"])
def test_quality_nevergrad_anchor_runs_every_trial_inside_the_space(key, problem):
    pytest.importorskip("nevergrad")
    quality = _quality_module()
    task = quality.ALL_PROBLEMS[problem]
    seen = []
    clock = quality.Clock(lambda params: seen.append(params) or task.function(params))
    quality.run_nevergrad(key, task, 0, 12, clock)
    assert len(clock.values) == 12
    for params in seen:
        for name in task.space.names:
            assert task.space[name].contains(params[name]), (name, params[name])


@pytest.mark.parametrize("problem", ["branin", "mixed", "cell"])
def test_quality_pymoo_ga_runs_every_trial_inside_the_space(problem):
    # 130 trials: the 100 random members, then a generation cut at the budget
    pytest.importorskip("pymoo")
    quality = _quality_module()
    task = quality.ALL_PROBLEMS[problem]
    runs = []
    for _ in range(2):
        seen = []
        clock = quality.Clock(
            lambda params, seen=seen: seen.append(params) or task.function(params)
        )
        quality.run_pymoo("pymoo-ga", task, 3, 130, clock)
        assert len(clock.values) == 130
        runs.append(seen)
    assert runs[0] == runs[1]  # seeded
    for params in runs[0]:
        for name in task.space.names:
            assert task.space[name].contains(params[name]), (name, params[name])
    for name in task.space.names:  # every integer and choice is reachable
        distribution = task.space[name]
        if isinstance(distribution, quality.Categorical):
            assert {p[name] for p in runs[0]} == set(distribution.choices)


def test_quality_pymoo_mapping_rounds_integers_and_codes_choices():
    quality = _quality_module()
    from tuningfork.space import Categorical, Float, Int

    units = Int(16, 1024, log=True)
    low, high = quality.pymoo_bounds(units)
    assert (low, high) == pytest.approx((math.log(15.5), math.log(1024.5)))
    assert quality.from_pymoo(units, low) == 16 and quality.from_pymoo(units, high) == 1024
    assert quality.from_pymoo(Int(1, 8), 3.4) == 3 and quality.from_pymoo(Int(1, 8), 8.5) == 8
    choice = Categorical(["adam", "sgd", "rmsprop"])
    assert quality.pymoo_bounds(choice) == (-0.5, 2.5)
    assert [quality.from_pymoo(choice, x) for x in (-0.5, 0.6, 2.5)] == ["adam", "sgd", "rmsprop"]
    lr = Float(1e-5, 0.1, log=True)
    assert quality.from_pymoo(lr, math.log(1e-3)) == pytest.approx(1e-3)
    assert quality.from_pymoo(Float(0.0, 1.0, step=0.25), 0.3) == 0.25


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


COMPARE = SCRIPT.parent / "compare.py"
ROOT = SCRIPT.parents[1]


def _load_compare():
    spec = importlib.util.spec_from_file_location("compare", COMPARE)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("compare", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_compare_quick_run_of_a_tree_with_itself(tmp_path):
    pytest.importorskip("optuna")  # the trees' overhead.py imports it
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Benchmark results\n\n<!-- begin overhead.py -->\nkept\n<!-- end overhead.py -->\n"
    )
    completed = subprocess.run(
        [
            sys.executable, str(COMPARE), "--before", str(ROOT), "--after", str(ROOT), "--quick",
            "--results", str(results), "--json", str(tmp_path / "compare.json"),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    for header in (
        "### Verdicts",
        "| storage, sampler | trial | before | after | after/before [lowest, highest] |",
        "| memory, default sampler | 100 |",
        "| SQLite, RandomSampler | 50 |",
        "| tree | runs (trials/s) | median trials/s | intact runs |",
        "| GP | 20 |",
        "| problem | method | trials | before: median | worst seed | after: median |",
        "| mixed | auto (default) | 20 |",
        "| mf_branin | ASHA (mode=promotion) + TPE | 10 |",
        "identical source in both trees",
    ):
        assert header in out, header
    # the same code twice: every seed's regret, and every run throughout, is the same
    assert "PASS  quality: 18/18 figures identical for every seed" in out
    assert "12/12 runs identical throughout" in out
    assert "PASS  mf: 10/10 figures identical for every seed" in out
    assert "10/10 runs identical throughout" in out
    data = json.loads((tmp_path / "compare.json").read_text())
    runs = data["parts"]["overhead"]["throughput"]
    assert {name: [r["intact"] for r in rs] for name, rs in runs.items()} == {
        "before": [True],
        "after": [True],
    }
    assert (
        len(data["parts"]["quality"]["results"]["after"]) == 2 * 3 * 2
    )  # problems x samplers x seeds
    text = results.read_text()
    assert text.count("<!-- begin compare.py") == 1 and text.count("<!-- end compare.py") == 1
    assert "kept" in text


def test_compare_tells_identical_regrets_from_better_and_worse_ones():
    compare = _load_compare()
    jobs = [{"problem": "p", "sampler": "tpe", "seed": seed} for seed in range(3)]
    groups, keys = [(("p", "tpe"), "TPE")], ("problem", "sampler")

    def table(before, after):
        runs = {
            name: [{"regret": {"10": r}, "digest": repr(r)} for r in regrets]
            for name, regrets in (("before", before), ("after", after))
        }
        return compare.regret_table(jobs, runs, groups, keys, ["10"], "trials")

    lines, ok, text, failed = table([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert ok and failed == 0 and lines[-1].endswith("| identical |")
    assert text.startswith("1/1 figures identical") and "3/3 runs identical" in text
    lines, ok, text, _ = table([1.0, 2.0, 3.0], [0.5, 1.0, 9.0])  # better median, worse seed
    assert ok and "differs for 3 of 3 seeds" in lines[-1] and "9 (seed 2)" in lines[-1]
    lines, ok, text, _ = table([1.0, 2.0, 3.0], [1.0, 2.5, 3.0])
    assert not ok and "1 worse (p TPE at 10 trials: 2 -> 2.5)" in text


def test_compare_time_verdict_needs_every_figure_within_ten_percent():
    compare = _load_compare()
    ok, text = compare.time_verdict([("a", 1.0), ("b", 1.1)])
    assert ok and text.startswith("2/2 figures")
    ok, text = compare.time_verdict([("a", 0.9), ("b", 1.2)])
    assert not ok and "highest 1.200 (b)" in text
    ok, _ = compare.time_verdict([("a", 1.0), ("b", None)])  # a figure not measured
    assert not ok


def test_compare_pairs_the_repeats_of_the_two_trees():
    compare = _load_compare()
    # the ratio within each repeat (1.1, 0.9), not of the medians; a missing figure is left out
    assert compare.paired_ratio([1.0, 2.0, None], [1.1, 1.8, 3.0]) == pytest.approx((1.0, 0.9, 1.1))
    assert compare.paired_ratio([None], [1.0]) == (None, None, None)


MULTIOBJECTIVE = SCRIPT.parent / "multiobjective.py"


def _multiobjective_module():
    if str(MULTIOBJECTIVE.parent) not in sys.path:  # it imports quality.py and _report.py
        sys.path.insert(0, str(MULTIOBJECTIVE.parent))
    spec = importlib.util.spec_from_file_location("multiobjective_for_tests", MULTIOBJECTIVE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_multiobjective_pymoo_anchor_cuts_its_last_generation_at_the_budget():
    pytest.importorskip("pymoo")
    bench = _multiobjective_module()
    problem = bench.PROBLEMS["zdt1_n5"]
    clock = bench.VectorClock(problem.evaluate)
    chosen = bench.run_pymoo("pymoo-nsga2", problem, 0, 130, clock)  # 100, then 30 of 100
    assert chosen == "NSGA2 pop_size 100"
    assert len(clock.values) == 130 and len(clock.framework_s) == 130
    again = bench.VectorClock(problem.evaluate)
    bench.run_pymoo("pymoo-nsga2", problem, 0, 130, again)
    assert again.values == clock.values  # seeded
    assert all(len(v) == 2 and 0.0 <= v[0] <= 1.0 for v in clock.values)


@pytest.mark.slow
def test_multiobjective_quick_run_prints_tables_and_writes_results(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Benchmark results\n\n<!-- begin quality.py -->\nkept\n<!-- end quality.py -->\n"
    )
    completed = subprocess.run(
        [
            sys.executable,
            str(MULTIOBJECTIVE),
            "--quick",
            "--results",
            str(results),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    for header in (
        "## Multi-objective quality",
        "### zdt1_n5 (5 variables, 2 objectives)",
        "### dtlz2 (12 variables, 3 objectives)",
        "| sampler | hypervolume at 20: median [worst seed] | hypervolume at 40: median [worst "
        "seed] | ms/trial outside the objective: to 20 | over the run | trials run | seeds |",
        "### Targets",
    ):
        assert header in out, header
    expected = ["tuningfork NSGA-II", "tuningfork random"]
    expected += ["Optuna NSGAIISampler"] if importlib.util.find_spec("optuna") else []
    expected += ["pymoo NSGA2"] if importlib.util.find_spec("pymoo") else []
    for label in expected:
        assert f"| {label} | " in out, label
    if importlib.util.find_spec("pymoo") is None:
        assert "pymoo NSGA2 (`pymoo-nsga2`): pymoo is not installed" in out
    target = "tuningfork NSGA-II no worse than Optuna NSGAIISampler at 40 trials on >= 2 of 2"
    assert target in out or importlib.util.find_spec("optuna") is None
    text = results.read_text()
    assert text.count("<!-- begin multiobjective.py") == 1 and "kept" in text
    assert "pymoo " in text and "command: " in text
    cached = list((tmp_path / "cache").glob("*.json"))
    assert len(cached) == 2 * len(expected) * 2  # problems x samplers x seeds
    first = json.loads(cached[0].read_text())
    assert set(first["hypervolume"]) == {"20", "40"}
    assert all(0.0 <= v <= 1.0 for v in first["hypervolume"].values())
