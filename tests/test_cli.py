"""The command line: each command in text and --json form, error paths, the console script."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import tuningfork as tf
from tuningfork.cli import main


def quadratic(trial: tf.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    n = trial.suggest_int("n", 1, 4)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    return (x - 1.0) ** 2 + n + (0.5 if kind == "b" else 0.0)


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite storage with 'demo' (6 complete, 1 pruned, 1 failed, 1 running trial) and
    'pareto' (two objectives, 8 complete trials)."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    demo = tf.create_study("demo", url, seed=3)
    demo.optimize(quadratic, n_trials=6, show_progress_bar=False)
    pruned = demo.ask()
    pruned.suggest_float("x", -5.0, 5.0)
    pruned.report(3.0, 1)
    demo.tell(pruned, state="PRUNED")
    demo.tell(demo.ask(), state="FAIL", reason="boom")
    running = demo.ask()
    running.suggest_float("x", -5.0, 5.0)
    running.report(0.5, 2)
    pareto = tf.create_study("pareto", url, directions=["minimize", "maximize"], seed=1)
    pareto.optimize(
        lambda t: (t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)),
        n_trials=8,
        show_progress_bar=False,
    )
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


# -- studies --------------------------------------------------------------------------------


def test_studies_table(capsys, url):
    code, out, err = run(capsys, "studies", "--storage", url)
    assert code == 0 and err == ""
    header, demo, pareto = out.splitlines()
    assert header.split() == [
        "NAME",
        "DIRECTIONS",
        "TRIALS",
        "COMPLETE",
        "PRUNED",
        "FAIL",
        "RUNNING",
        "BEST",
        "CREATED",
    ]
    best = tf.load_study("demo", url).best_value
    assert demo.split()[:8] == ["demo", "minimize", "9", "6", "1", "1", "1", f"{best:.6g}"]
    assert pareto.split()[:8] == ["pareto", "minimize,maximize", "8", "8", "0", "0", "0", "-"]
    assert header.index("CREATED") == demo.index(demo.split()[-2])  # aligned columns


def test_studies_json(capsys, url):
    doc = run_json(capsys, "studies", "--storage", url)
    assert doc["storage"] == url
    demo, pareto = doc["studies"]
    assert demo["name"] == "demo" and demo["directions"] == ["minimize"]
    assert demo["n_trials"] == 9
    assert demo["counts"] == {
        "COMPLETE": 6,
        "PRUNED": 1,
        "FAIL": 1,
        "RUNNING": 1,
        "WAITING": 0,
        "PAUSED": 0,
    }
    assert demo["best_value"] == tf.load_study("demo", url).best_value
    assert pareto["best_value"] is None and pareto["counts"]["COMPLETE"] == 8
    assert isinstance(demo["created"], float) and demo["created_local"][:2] == "20"


def test_studies_on_empty_storage(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    tf.get_storage(url)  # creates the file with tuningfork's tables, but no study
    code, out, _ = run(capsys, "studies", "--storage", url)
    assert code == 0
    assert "no studies" in out and "create_study" in out
    assert run_json(capsys, "studies", "--storage", url)["studies"] == []


def test_default_storage_is_the_current_directory_or_the_environment(capsys, tmp_path, monkeypatch):
    # an absolute URL: get_storage caches a relative one across chdir (see test_study)
    tf.create_study("here", f"sqlite:///{tmp_path / 'tuningfork.db'}")
    assert [s["name"] for s in run_json(capsys, "studies")["studies"]] == ["here"]
    other = f"sqlite:///{tmp_path / 'other.db'}"
    tf.create_study("elsewhere", other)
    monkeypatch.setenv("TUNINGFORK_STORAGE", other)
    assert [s["name"] for s in run_json(capsys, "studies")["studies"]] == ["elsewhere"]


# -- status ---------------------------------------------------------------------------------


def test_status_text(capsys, url):
    study = tf.load_study("demo", url)
    code, out, err = run(capsys, "status", "demo", "--storage", url)
    assert code == 0 and err == ""
    fields = dict(line.split(None, 1) for line in out.split("\n\n")[0].splitlines())
    assert fields["study"] == "demo (minimize)"
    assert fields["seed"] == "3"
    assert fields["sampler"] == "AutoSampler(seed=3, gp_max_trials=200, gp_max_dims=16)"
    assert fields["trials"] == "9 (6 complete, 1 pruned, 1 fail, 1 running)"
    assert fields["workers"].startswith("1: ")
    assert fields["best"].startswith(f"trial {study.best_trial.number}: {study.best_value:.6g}")
    assert "last finished  trial 7 FAIL at " in out
    running = out.split("running trials\n")[1].splitlines()
    assert running[0].split() == ["NUMBER", "WORKER", "ELAPSED", "LAST", "STEP"]
    number, _worker, elapsed, unit, step = running[1].split()
    assert (number, unit, step) == ("8", "s", "2") and float(elapsed) >= 0


def test_status_json(capsys, url):
    study = tf.load_study("demo", url)
    doc = run_json(capsys, "status", "demo", "--storage", url)
    assert doc["study"] == "demo" and doc["n_trials"] == 9
    assert doc["counts"]["COMPLETE"] == 6 and doc["counts"]["RUNNING"] == 1
    assert [t["number"] for t in doc["best_trials"]] == [study.best_trial.number]
    assert doc["best_trials"][0]["value"] == study.best_value
    assert doc["best_trials"][0]["params"] == study.best_params
    assert doc["workers"] == [study.trials[0].worker]
    (running,) = doc["running"]
    assert running["number"] == 8 and running["last_step"] == 2 and running["elapsed"] >= 0
    assert doc["last_finished"]["number"] == 7
    assert doc["last_finished"]["reason"] == "boom"
    assert doc["seed"] == 3
    assert doc["sampler"]["name"] == "AutoSampler"
    assert doc["scheduler"]["name"] == "NoScheduler"


def test_status_multi_objective(capsys, url):
    study = tf.load_study("pareto", url)
    front = sorted(t.number for t in study.best_trials)
    doc = run_json(capsys, "status", "pareto", "--storage", url)
    assert sorted(t["number"] for t in doc["best_trials"]) == front
    code, out, _ = run(capsys, "status", "pareto", "--storage", url)
    assert code == 0 and f"Pareto front of {len(front)}" in out


# -- best -----------------------------------------------------------------------------------


def test_best_text(capsys, url):
    best = tf.load_study("demo", url).best_trial
    code, out, err = run(capsys, "best", "demo", "--storage", url)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert f"trial     {best.number}" in lines
    assert f"value     {best.value:.6g}" in lines
    assert f"worker    {best.worker}" in lines
    params = lines[lines.index("params") + 1 :]
    assert {line.split()[0]: line.split()[1] for line in params} == {
        "x": f"{best.params['x']:.6g}",
        "n": str(best.params["n"]),
        "kind": best.params["kind"],
    }


def test_best_json(capsys, url):
    best = tf.load_study("demo", url).best_trial
    doc = run_json(capsys, "best", "demo", "--storage", url)
    (entry,) = doc["best_trials"]
    assert entry["number"] == best.number
    assert entry["value"] == best.value and entry["values"] == [best.value]
    assert entry["params"] == best.params
    assert entry["duration"] == pytest.approx(best.duration)
    assert entry["worker"] == best.worker


def test_best_multi_objective_is_the_pareto_front(capsys, url):
    front = tf.load_study("pareto", url).best_trials
    doc = run_json(capsys, "best", "pareto", "--storage", url)
    assert [e["number"] for e in doc["best_trials"]] == [t.number for t in front]
    assert [e["values"] for e in doc["best_trials"]] == [list(t.values) for t in front]
    code, out, _ = run(capsys, "best", "pareto", "--storage", url)
    assert code == 0
    assert f"Pareto front of study 'pareto' (minimize, maximize): {len(front)} trials" in out
    assert out.count("\nparams\n") == len(front)


def test_best_without_completed_trial_exits_1(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    study = tf.create_study("fresh", url)
    study.tell(study.ask(), state="FAIL")
    code, out, err = run(capsys, "best", "fresh", "--storage", url)
    assert code == 1 and out == ""
    assert "no completed trial yet (1 fail)" in err and "Traceback" not in err
    code, out, err = run(capsys, "best", "fresh", "--storage", url, "--json")
    assert code == 1 and json.loads(out)["best_trials"] == []


# -- export ---------------------------------------------------------------------------------


def test_export_csv_to_stdout_matches_study_export(capsys, url, tmp_path):
    study = tf.load_study("demo", url)
    code, out, _ = run(capsys, "export", "demo", "--storage", url, "--format", "csv")
    assert code == 0
    study.export(tmp_path / "api.csv")
    with open(tmp_path / "api.csv", newline="") as handle:
        expected = list(csv.reader(handle))
    assert list(csv.reader(io.StringIO(out, newline=""))) == expected
    assert len(expected) == 1 + len(study.trials)


def test_export_json_to_stdout(capsys, url):
    study = tf.load_study("demo", url)
    for argv in (["--format", "json"], ["--json"]):
        code, out, _ = run(capsys, "export", "demo", "--storage", url, *argv)
        assert code == 0
        doc = json.loads(out)
        assert doc["study"] == "demo"
        assert [t["number"] for t in doc["trials"]] == [t.number for t in study.trials]


def test_export_to_file(capsys, url, tmp_path):
    target = tmp_path / "out.json"
    code, out, _ = run(capsys, "export", "demo", "--storage", url, "--out", str(target))
    assert code == 0 and "wrote 9 trials" in out and "(json)" in out  # format from suffix
    assert len(json.loads(target.read_text())["trials"]) == 9
    doc = run_json(capsys, "export", "demo", "--storage", url, "--out", "t.csv")
    assert doc == {"study": "demo", "format": "csv", "path": "t.csv", "n_trials": 9}
    assert Path("t.csv").read_text().startswith("number,state,value,")


def test_export_json_flag_conflicts_with_csv_on_stdout(capsys, url):
    code, out, err = run(capsys, "export", "demo", "--storage", url, "--format", "csv", "--json")
    assert code == 2 and out == "" and err.startswith("tuningfork: error: --json")


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "best", "export"])
def test_unknown_study_suggests_a_name(capsys, url, command):
    code, out, err = run(capsys, command, "dmeo", "--storage", url)
    assert code == 2 and out == ""
    assert err.startswith("tuningfork: error: no study named 'dmeo'")
    assert "did you mean 'demo'?" in err
    assert err.count("\n") == 1 and "Traceback" not in err


READ_ONLY = [
    ["studies"],
    ["status", "demo"],
    ["best", "demo"],
    ["export", "demo"],
    ["plot", "demo", "history", "--out", "plot.png"],
    ["importance", "demo"],
    ["dashboard", "--port", "1"],
    ["compact"],  # rewrites a journal, but never creates one
]


def _with_storage(argv: list[str], url: str) -> list[str]:
    if argv == ["compact"]:
        return ["compact", url]
    return [*argv, "--storage", url]


@pytest.mark.parametrize("argv", READ_ONLY, ids=lambda argv: argv[0])
def test_a_missing_storage_is_an_error_and_is_not_created(capsys, tmp_path, argv):
    for name, url in [
        ("absent.db", f"sqlite:///{tmp_path / 'absent.db'}"),
        ("mistyped.log", f"journal://{tmp_path / 'mistyped.log'}"),
    ]:
        if argv == ["compact"] and name.endswith(".db"):
            continue
        code, out, err = run(capsys, *_with_storage(argv, url))
        assert code == 2 and out == ""
        assert err == (
            f"tuningfork: error: no tuningfork storage at {tmp_path / name} (no such file); "
            "check the storage URL, or create a study there first\n"
        )
        assert sorted(tmp_path.iterdir()) == []  # no file, no lock file
    if argv != ["compact"]:
        code, _, err = run(capsys, *argv)  # the default, sqlite:///tuningfork.db, is missing
        assert code == 2 and "no tuningfork storage at" in err
        assert not Path("tuningfork.db").exists()


@pytest.mark.parametrize("argv", READ_ONLY, ids=lambda argv: argv[0])
def test_a_foreign_file_is_refused_and_left_as_it_was(capsys, tmp_path, argv):
    database = tmp_path / "other.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE things (id INTEGER)")
        connection.execute("INSERT INTO things VALUES (1)")
    connection.close()
    text = tmp_path / "notes.log"
    text.write_text("not a journal\n")
    before = {path: path.read_bytes() for path in (database, text)}
    for path, url in [(database, f"sqlite:///{database}"), (text, f"journal://{text}")]:
        if argv == ["compact"] and path == database:
            continue
        code, out, err = run(capsys, *_with_storage(argv, url))
        assert code == 2 and out == ""
        assert err.startswith(f"tuningfork: error: no tuningfork storage at {path}: ")
        assert err.count("\n") == 1
    assert {path: path.read_bytes() for path in before} == before
    assert sorted(tmp_path.iterdir()) == sorted(before)  # no -wal, -shm or .lock beside them
    with sqlite3.connect(database) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master").fetchall()
    connection.close()
    assert tables == [("things",)]


def test_copy_reads_its_source_without_creating_it(capsys, tmp_path):
    target = tmp_path / "target.log"
    code, out, err = run(
        capsys, "copy", "demo", "--from", f"journal://{tmp_path / 'typo.log'}",
        "--to", f"journal://{target}",
    )  # fmt: skip
    assert code == 2 and out == ""
    assert err.startswith(f"tuningfork: error: no tuningfork storage at {tmp_path / 'typo.log'}")
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("storage", ["bogus://nowhere", "not-a-url", "sqlite://"])
def test_bad_storage_url_is_one_line(capsys, storage):
    code, out, err = run(capsys, "studies", "--storage", storage)
    assert code == 2 and out == ""
    assert err.startswith("tuningfork: error: ") and err.count("\n") == 1


def test_usage_errors_and_version(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err
    assert main(["export", "demo", "--format", "xml"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"tuningfork {tf.__version__}\n"


# -- the installed console script -----------------------------------------------------------


def test_console_script_runs(url):
    script = shutil.which("tuningfork", path=os.path.dirname(sys.executable))
    command = [script] if script else [sys.executable, "-m", "tuningfork.cli"]
    env = {**os.environ, "TUNINGFORK_STORAGE": url}
    done = subprocess.run(
        [*command, "studies", "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert [s["name"] for s in json.loads(done.stdout)["studies"]] == ["demo", "pareto"]


def test_copy_moves_a_study_between_storages(tmp_path) -> None:
    import tuningfork as tf
    from tuningfork.cli import main

    source = f"sqlite:///{tmp_path / 'a.db'}"
    target = f"journal://{tmp_path / 'b.log'}"
    study = tf.create_study("moved", storage=source, seed=0)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    assert main(["copy", "moved", "--from", source, "--to", target]) == 0
    copied = tf.load_study("moved", storage=target)
    assert [t.to_json() for t in copied.trials] == [t.to_json() for t in study.trials]
    assert main(["copy", "moved", "--from", source, "--to", target]) == 2  # name taken
    assert main(["compact", target]) == 0
    assert main(["compact", source]) == 2
    assert len(tf.load_study("moved", storage=target).trials) == 5


def test_worker_runs_trials_of_an_objective_file(tmp_path) -> None:
    import tuningfork as tf
    from tuningfork.cli import main

    url = f"sqlite:///{tmp_path / 'w.db'}"
    tf.create_study("w", storage=url, seed=0)
    objective = tmp_path / "objective.py"
    objective.write_text("def f(trial):\n    return trial.suggest_float('x', 0, 1) ** 2\n")
    assert main(["worker", "w", "--storage", url, "--objective", f"{objective}:f",
                 "--n-trials", "4"]) == 0  # fmt: skip
    assert len(tf.load_study("w", storage=url).get_trials(["COMPLETE"])) == 4
    assert main(["worker", "w", "--storage", url, "--objective", "no_such_module:f"]) == 2


@pytest.mark.parametrize("new_name", ["a/b", ".."])
def test_copy_refuses_a_bad_new_name_and_creates_nothing(capsys, url, tmp_path, new_name):
    target = tmp_path / "copy.log"
    to = f"journal://{target}"
    code, out, err = run(capsys, "copy", "demo", "--from", url, "--to", to, "--new-name", new_name)
    assert code == 2 and out == ""
    assert err.startswith(f"tuningfork: error: study name {new_name!r} may not contain '/'")
    assert not target.exists()


# -- storage URLs in messages ---------------------------------------------------------------


def _study_file(tmp_path: Path, storage: str) -> Path:
    from tuningfork.config import EXAMPLE_STUDY_FILE

    path = tmp_path / "study.yaml"
    text = EXAMPLE_STUDY_FILE.replace("storage: sqlite:///tuningfork.db", f"storage: {storage}")
    assert text != EXAMPLE_STUDY_FILE
    path.write_text(text)
    return path


def test_run_with_an_unsupported_storage_names_the_files_url(capsys, tmp_path):
    path = _study_file(tmp_path, "mysql://me:secret@localhost/hpo")
    code, out, err = run(capsys, "run", str(path))
    assert code == 2
    assert "'mysql://me:***@localhost/hpo'" in err and "does not support 'mysql'" in err
    assert "tuningfork.db" not in err.split("use ")[0] and "secret" not in out + err
    assert not (tmp_path / "tuningfork.db").exists()


def test_a_database_error_names_the_storage_in_use_without_its_password(
    capsys, tmp_path, monkeypatch
):
    import sqlalchemy as sa

    def fail(*args, **kwargs):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr("tuningfork.execution.study_file.run_study_file", fail)
    path = _study_file(tmp_path, "postgresql://me:secret@db.example/hpo")
    code, _, err = run(capsys, "run", str(path))
    assert code == 2
    assert err.startswith(
        "tuningfork: error: cannot use storage 'postgresql://me:***@db.example/hpo': "
    )
    assert "secret" not in err


def test_storage_urls_are_shown_without_their_password(capsys):
    code, out, err = run(capsys, "studies", "--storage", "mysql://me:secret@localhost/hpo")
    assert code == 2 and out == ""
    assert "'mysql://me:***@localhost/hpo'" in err and "secret" not in err


# -- delete ---------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    """A stdin that is a terminal, with the user's answer typed in."""

    def isatty(self) -> bool:
        return True


def _names(url: str) -> list[str]:
    return [summary.name for summary in tf.list_studies(url)]


def test_delete_with_yes(capsys, url):
    code, out, err = run(capsys, "delete", "demo", "--storage", url, "--yes")
    assert code == 0 and err == ""
    assert out == f"deleted study 'demo' from {url}\n"
    assert _names(url) == ["pareto"]
    doc = run_json(capsys, "delete", "pareto", "--storage", url, "--yes")
    assert doc == {
        "study": "pareto",
        "storage": url,
        "deleted": True,
        "artifacts": None,
        "artifacts_kept": False,
    }
    assert _names(url) == []


def test_delete_removes_the_artefacts_or_keeps_them(capsys, url):
    for name in ("demo", "pareto"):
        study = tf.load_study(name, url)
        trial = study.ask()
        (trial.checkpoint_dir / "model.pt").write_text("weights")
        study.tell(trial, [1.0] * len(study.directions))
    demo, pareto = tf.load_study("demo", url), tf.load_study("pareto", url)
    code, out, _ = run(capsys, "delete", "demo", "--storage", url, "--yes")
    assert code == 0 and out.splitlines()[1] == f"removed its artefacts at {demo.artifact_dir}"
    assert not demo.artifact_dir.exists()
    doc = run_json(capsys, "delete", "pareto", "--storage", url, "--yes", "--keep-artifacts")
    assert doc["artifacts"] == str(pareto.artifact_dir) and doc["artifacts_kept"] is True
    assert len(list(pareto.artifact_dir.glob("trial_*/model.pt"))) == 1


def test_delete_asks_on_a_terminal(capsys, url, monkeypatch):
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    code, out, err = run(capsys, "delete", "demo", "--storage", url)
    assert code == 1 and out == ""
    assert err == (
        f"delete study 'demo' and all its trials from {url}? [y/N] "
        "tuningfork: study 'demo' was not deleted\n"
    )
    assert _names(url) == ["demo", "pareto"]
    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    code, out, _ = run(capsys, "delete", "demo", "--storage", url)
    assert code == 0 and out.startswith("deleted study 'demo'")
    assert _names(url) == ["pareto"]


def test_delete_without_a_terminal_needs_yes(capsys, url, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # piped: not an answer
    code, out, err = run(capsys, "delete", "demo", "--storage", url)
    assert code == 2 and out == ""
    assert err == (
        "tuningfork: error: not deleting study 'demo' without confirmation (stdin is not a "
        "terminal); pass --yes to delete it\n"
    )
    assert _names(url) == ["demo", "pareto"]


def test_delete_of_a_missing_study_or_storage_is_an_error(capsys, url, tmp_path):
    code, _, err = run(capsys, "delete", "dmeo", "--storage", url, "--yes")
    assert code == 2 and "did you mean 'demo'?" in err
    missing = tmp_path / "typo.log"
    code, _, err = run(capsys, "delete", "demo", "--storage", f"journal://{missing}", "--yes")
    assert code == 2 and f"no tuningfork storage at {missing}" in err
    assert not missing.exists() and _names(url) == ["demo", "pareto"]


# -- a study file in place of NAME --storage URL --------------------------------------------


@pytest.fixture
def study_file(url, tmp_path) -> Path:
    """A study file beside the fixture's database, naming 'demo' and, relative to the
    file's folder, its storage; the tests run from another directory."""
    from tuningfork.config import EXAMPLE_STUDY_FILE

    path = tmp_path / "demo.yaml"
    text = EXAMPLE_STUDY_FILE.replace("study: example-quadratic", "study: demo")
    path.write_text(text.replace("sqlite:///tuningfork.db", "sqlite:///studies.db"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    return path


@pytest.mark.parametrize(
    "argv", [["status"], ["best"], ["export", "--format", "json"], ["importance"]]
)
def test_a_study_file_names_the_study_and_its_storage(capsys, url, study_file, argv):
    command, *options = argv
    by_name = run(capsys, command, "demo", *options, "--storage", url)
    by_file = run(capsys, command, str(study_file), *options)
    assert by_file[0] == by_name[0] == 0, by_file[2]
    if command == "status":  # the running trial's elapsed time differs between the two
        assert by_file[1].split("\n\n")[0] == by_name[1].split("\n\n")[0]
    else:
        assert by_file == by_name
    assert not Path("tuningfork.db").exists()  # the current directory's storage is not used


def test_plot_and_delete_with_a_study_file(capsys, url, study_file):
    code, out, _ = run(capsys, "plot", str(study_file), "history", "--out", "h.json")
    assert code == 0 and out == "wrote h.json\n" and Path("h.json").is_file()
    code, out, _ = run(capsys, "delete", str(study_file), "--yes")
    assert code == 0 and out == f"deleted study 'demo' from {url}\n"
    assert _names(url) == ["pareto"]


def test_a_study_file_with_storage_is_ambiguous(capsys, url, study_file):
    code, out, err = run(capsys, "status", str(study_file), "--storage", url)
    assert code == 2 and out == ""
    assert err == (
        f"tuningfork: error: {study_file} names its study's storage; drop --storage {url}, "
        "or give the study's name instead of the file\n"
    )


def test_dashboard_serves_a_study_files_storage(capsys, url, study_file, monkeypatch):
    served = []
    monkeypatch.setattr("tuningfork.dashboard.serve", lambda url, **kw: served.append(url))
    assert run(capsys, "dashboard", str(study_file))[0] == 0
    assert run(capsys, "dashboard", "--storage", url)[0] == 0
    assert served == [url, url]
    code, _, err = run(capsys, "dashboard", str(study_file), "--storage", url)
    assert code == 2 and "drop --storage" in err


@pytest.mark.slow
def test_the_digits_demo_prints_commands_that_work_from_anywhere(capsys, tmp_path):
    pytest.importorskip("sklearn")
    demo = Path(__file__).resolve().parent.parent / "examples" / "digits.py"
    where = tmp_path / "examples"  # `make demo` runs it in examples/, with the default storage
    where.mkdir()
    argv = [sys.executable, str(demo), "--trials", "2", "--workers", "1", "--study", "d"]
    done = subprocess.run(argv, cwd=where, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    commands = done.stdout.split("See it with:\n")[1].splitlines()
    storage = f"sqlite:///{where / 'tuningfork.db'}"
    assert commands == [
        f"  tuningfork status d --storage {storage}",
        f"  tuningfork dashboard --storage {storage}",
    ]
    code, out, err = run(capsys, *commands[0].split()[1:])  # from tmp_path, not examples/
    assert code == 0, err
    fields = dict(line.split(None, 1) for line in out.split("\n\n")[0].splitlines())
    assert fields["study"] == "d (maximize)" and fields["trials"].startswith("2 (")


def test_a_warning_is_one_line_on_stderr(capsys, tmp_path):
    path = tmp_path / "s.log"
    tf.create_study("s", storage=f"journal://{path}")
    offset = path.stat().st_size
    with open(path, "ab") as journal:
        journal.write(b"garbage\n")
    tf.storage._open.clear()  # a fresh process would read the journal anew
    code, out, err = run(capsys, "studies", "--storage", f"journal://{path}")
    assert code == 0 and out.startswith("NAME")
    assert err == (
        f"tuningfork: warning: {path}: skipped 1 line(s) that are not valid journal records, "
        f"the first at byte offset {offset} (a writer that crashed mid-line, or bytes written "
        f"by something else); `tuningfork compact journal://{path}` drops them\n"
    )
