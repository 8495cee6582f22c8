"""The live web dashboard (`tuningfork.dashboard`): its JSON API, read through Starlette's
TestClient, and its page, driven in a real headless Chromium with Playwright while a worker
runs the study.

The browser test needs Playwright and a Chromium (Debian's ``/usr/bin/chromium``; ``playwright
install`` is not used). Without them it is skipped, but where ``CI`` is set it fails. Set
``TUNINGFORK_ARTIFACTS`` to also keep its screenshots in ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import logging
import os
import shutil
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tuningfork as tf
from tuningfork.exceptions import MissingExtra
from tuningfork.trial import TrialState

REQUIRED = bool(os.environ.get("CI"))
REPO = Path(__file__).resolve().parents[1]
HTML_VALUE = "<img src=x onerror=window.__xss=1><b>bold</b>"

pytestmark = pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient")


def need(module: str, why: str) -> Any:
    """Import ``module``, or skip (fail where CI is set) naming what is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        problem = f"{why} needs {module!r} ({error}); pip install -e '.[dev]'"
        if REQUIRED:
            pytest.fail(f"{problem}; CI is set, so this fails", False)
        pytest.skip(problem)


# -- a study with complete, pruned and failed trials and log files --------------------------


def objective(trial: tf.Trial) -> float:
    """Trial 1, 6, 11... pruned; 2, 9, 16... failed; the others complete."""
    x = trial.suggest_float("x", -1.0, 1.0)
    trial.suggest_int("n", 1, 9)
    trial.suggest_categorical("kind", [HTML_VALUE, "plain"])
    for step in range(3):
        trial.report(x + step, step)
    if trial.number % 5 == 1:
        raise tf.TrialPruned()
    if trial.number % 7 == 2:
        raise ValueError("this trial fails")
    return x * x


@pytest.fixture
def study(tmp_path: Path) -> tf.Study:
    """A SQLite study of 8 trials; trial 0 has logs (one inside, one outside the artefacts)."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = tf.create_study(name="demo <b>", storage=url, seed=3)
    with pytest.warns(UserWarning):  # the failed trials
        study.optimize(objective, n_trials=8, catch=(ValueError,))
    logs = study.artifact_dir / "trial_0"
    logs.mkdir(parents=True)
    (logs / "stdout.log").write_text("".join(f"line {i}\n" for i in range(300)))
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve me\n")
    (logs / "escape.log").symlink_to(secret)
    return study


def set_logs(study: tf.Study, number: int, **attrs: str) -> None:
    """Write user attributes on a finished trial, as its worker would have."""
    with study._log.lock:  # a finished trial: no public door writes to it any more
        study._log.append([{"op": "attrs", "n": number, "user": attrs}], sync=True)


def client(study: tf.Study) -> Any:
    need("httpx", "the API tests")
    testclient = need("starlette.testclient", "the API tests")
    from tuningfork.dashboard import create_app

    return testclient.TestClient(create_app(study.storage.url))


def db_path(study: tf.Study) -> Path:
    return Path(study.storage.url[len("sqlite:///") :])


# -- the JSON API ---------------------------------------------------------------------------


def test_studies_lists_counts_best_value_and_activity(study: tf.Study) -> None:
    doc = client(study).get("/api/studies").json()
    (summary,) = doc["studies"]
    assert summary["name"] == "demo <b>"
    assert summary["directions"] == ["minimize"]
    assert summary["n_trials"] == 8
    counts = summary["counts"]
    assert (counts["COMPLETE"], counts["PRUNED"], counts["FAIL"]) == (5, 2, 1)
    assert summary["best_value"] == pytest.approx(study.best_value)
    last = max(t.datetime_complete for t in study.trials)
    assert summary["last_activity"] == pytest.approx(last)


def test_study_detail_has_best_trial_and_workers(study: tf.Study) -> None:
    doc = client(study).get("/api/studies/demo <b>").json()
    assert [t["number"] for t in doc["best_trials"]] == [study.best_trial.number]
    assert doc["workers"][0]["id"] == study.trials[0].worker
    assert doc["seed"] == 3
    assert client(study).get("/api/studies/nope").status_code == 404


def test_trials_since_a_version_returns_only_changed_rows(study: tf.Study) -> None:
    api = client(study)
    first = api.get("/api/studies/demo <b>/trials").json()
    assert [row["number"] for row in first["trials"]] == list(range(8))
    row = first["trials"][0]
    assert set(row["params"]) == {"x", "n", "kind"}
    assert row["state"] == "COMPLETE" and row["duration"] is not None and row["worker"]
    states = {row["number"]: row["state"] for row in first["trials"]}
    assert states[1] == "PRUNED" and states[2] == "FAIL"
    version = first["version"]
    again = api.get(f"/api/studies/demo <b>/trials?since={version}").json()
    assert again["trials"] == [] and again["version"] == version and again["n_trials"] == 8

    study.optimize(objective, n_trials=1)  # trial 8 completes
    set_logs(study, 3, note="changed")  # an older trial changes too
    later = api.get(f"/api/studies/demo <b>/trials?since={version}").json()
    assert sorted(row["number"] for row in later["trials"]) == [3, 8]
    assert later["version"] > version and later["n_trials"] == 9
    assert api.get("/api/studies/demo <b>/trials?since=x").status_code == 400


def test_trial_detail(study: tf.Study) -> None:
    set_logs(study, 0, stdout_log=str(study.artifact_dir / "trial_0" / "stdout.log"))
    doc = client(study).get("/api/studies/demo <b>/trials/0").json()
    trial = study.trials[0]
    assert doc["params"] == trial.params
    assert doc["values"] == list(trial.values)
    x = trial.params["x"]
    assert doc["intermediate_values"] == {str(step): pytest.approx(x + step) for step in range(3)}
    assert doc["reproducibility"] == study.reproducibility(0)
    assert doc["logs"] == ["stdout_log"]
    failed = client(study).get("/api/studies/demo <b>/trials/2").json()
    assert failed["state"] == "FAIL" and "this trial fails" in failed["reason"]
    assert client(study).get("/api/studies/demo <b>/trials/99").status_code == 404


def test_logs_are_served_only_from_the_artefact_directory(study: tf.Study, tmp_path: Path) -> None:
    logs = study.artifact_dir / "trial_0"
    api = client(study)
    url = "/api/studies/demo <b>/trials/0/logs/"

    set_logs(study, 0, stdout_log=str(logs / "stdout.log"), stderr_log=str(tmp_path / "secret.txt"))
    tail = api.get(url + "stdout_log").json()
    assert tail["lines"][-1] == "line 299" and len(tail["lines"]) == 200 and tail["truncated"]
    refused = api.get(url + "stderr_log")
    assert refused.status_code == 403 and "outside" in refused.json()["error"]
    assert "do not serve me" not in refused.text

    for sneaky in ("trial_0/../../../secret.txt", str(logs / "escape.log"), "/etc/passwd"):
        set_logs(study, 0, stdout_log=sneaky)
        answer = api.get(url + "stdout_log")
        assert answer.status_code == 403, sneaky
        assert "do not serve me" not in answer.text and "root:" not in answer.text

    set_logs(study, 0, stdout_log="trial_0/stdout.log")  # relative to the artefact directory
    assert api.get(url + "stdout_log").json()["lines"][0] == "line 100"
    set_logs(study, 0, stdout_log=str(logs / "gone.log"))
    assert api.get(url + "stdout_log").status_code == 404
    assert api.get(url + "other_log").status_code == 404
    assert api.get("/api/studies/demo <b>/trials/1/logs/stdout_log").status_code == 404


READ_ROUTES = (
    "/",
    "/api/plots",
    "/api/studies",
    "/api/studies/demo <b>",
    "/api/studies/demo <b>/trials",
    "/api/studies/demo <b>/trials?since=3",
    "/api/studies/demo <b>/trials/0",
    "/api/studies/demo <b>/trials/0/logs/stdout_log",
    "/api/studies/demo <b>/plots/history",
)


def test_reading_never_writes_to_the_database(study: tf.Study) -> None:
    path = db_path(study)
    study.storage.close()  # checkpoint the workers' writes into the file
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    api = client(study)
    for _ in range(20):
        for route in READ_ROUTES:
            assert api.get(route).status_code in (200, 404)
    for method in ("post", "put", "patch", "delete"):
        assert getattr(api, method)("/api/studies/demo <b>").status_code == 405
    study.storage.close()
    after = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    assert after == before


def test_missing_or_foreign_database_is_an_error_not_a_new_file(tmp_path: Path) -> None:
    need("httpx", "the API tests")
    testclient = need("starlette.testclient", "the API tests")
    from tuningfork.dashboard import create_app

    missing = tmp_path / "missing.db"
    api = testclient.TestClient(create_app(f"sqlite:///{missing}"))
    answer = api.get("/api/studies")
    assert answer.status_code == 503 and "no tuningfork storage at" in answer.json()["error"]
    assert api.get("/").status_code == 200  # the page loads and shows the error
    assert not missing.exists()

    foreign = tmp_path / "foreign.db"
    with contextlib.closing(sqlite3.connect(foreign)) as connection:
        connection.execute("CREATE TABLE things (id INTEGER)")
        connection.commit()
    before = foreign.read_bytes()
    answer = testclient.TestClient(create_app(f"sqlite:///{foreign}")).get("/api/studies")
    assert answer.status_code == 503 and "no tuningfork storage at" in answer.json()["error"]
    assert foreign.read_bytes() == before

    journal = tmp_path / "missing.log"
    answer = testclient.TestClient(create_app(f"journal://{journal}")).get("/api/studies")
    assert answer.status_code == 503 and not journal.exists()


def test_static_assets_and_headers(study: tf.Study) -> None:
    api = client(study)
    page = api.get("/")
    assert "/static/app.js" in page.text and "/static/plotly.min.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert api.get("/static/app.js").status_code == 200
    assert api.get("/static/style.css").status_code == 200
    plotly = api.get("/static/plotly.min.js")
    if importlib.util.find_spec("plotly") is not None:
        assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert api.get("/static/../data.py").status_code == 404


def test_plots_with_viz(study: tf.Study) -> None:
    viz = pytest.importorskip("tuningfork.viz")
    api = client(study)
    kinds = api.get("/api/plots").json()
    assert kinds["available"] and kinds["kinds"] == list(viz.KINDS)
    history = api.get("/api/studies/demo <b>/plots/history")
    assert history.status_code == 200 and history.json()["data"]
    for kind in viz.KINDS:  # each one is drawn or says why not; never a server error
        answer = api.get(f"/api/studies/demo <b>/plots/{kind}")
        assert answer.status_code in (200, 404), (kind, answer.text)
        assert "data" in answer.json() if answer.status_code == 200 else answer.json()["error"]
    assert api.get("/api/studies/demo <b>/plots/nonsense").status_code == 404


def test_plots_without_viz_answer_501(study: tf.Study, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tuningfork.viz", None)  # import raises ImportError
    api = client(study)
    answer = api.get("/api/studies/demo <b>/plots/history")
    assert answer.status_code == 501 and "tuningfork[viz]" in answer.json()["error"]
    assert api.get("/api/plots").json()["available"] is False


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from tuningfork import dashboard

    monkeypatch.setitem(sys.modules, "starlette", None)
    with pytest.raises(MissingExtra, match=r"pip install 'tuningfork\[dashboard\]'"):
        dashboard.create_app("sqlite:///x.db")
    with pytest.raises(MissingExtra, match=r"pip install 'tuningfork\[dashboard\]'"):
        dashboard.serve("sqlite:///x.db")


def test_serve_warns_when_not_on_loopback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    need("starlette", "serve")
    uvicorn = need("uvicorn", "serve")
    from tuningfork import dashboard

    served: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.append(kwargs))
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with caplog.at_level(logging.WARNING, logger="tuningfork.dashboard"):
        dashboard.serve(url, host="127.0.0.1", port=8123)
        assert not caplog.records
        dashboard.serve(url, host="0.0.0.0", port=8124)
    assert "no authentication" in caplog.text
    assert [(kwargs["host"], kwargs["port"]) for kwargs in served] == [
        ("127.0.0.1", 8123),
        ("0.0.0.0", 8124),
    ]
    assert dashboard.is_loopback("localhost") and dashboard.is_loopback("::1")
    assert not dashboard.is_loopback("192.168.1.4")


# -- the page, in a real browser ------------------------------------------------------------


class Stop(Exception):
    """Raised by the worker's callback to end `optimize` at the end of the test."""


@contextlib.contextmanager
def worker(study: tf.Study, pause_s: float) -> Iterator[threading.Thread]:
    """Run ``study.optimize`` in a thread, ``pause_s`` per trial, until the block exits."""
    stop = threading.Event()

    def slow(trial: tf.Trial) -> float:
        time.sleep(pause_s)
        return objective(trial)

    def stopper(_study: tf.Study, _trial: Any) -> None:
        if stop.is_set():
            raise Stop

    def run() -> None:
        with contextlib.suppress(Stop), pytest.warns(UserWarning):
            study.optimize(slow, n_trials=500, catch=(ValueError,), callbacks=[stopper])

    thread = threading.Thread(target=run, name="dashboard-test-worker", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(10)


@contextlib.contextmanager
def dashboard_server(storage_url: str) -> Iterator[str]:
    """Serve the dashboard with uvicorn in a thread on a free port; yields its base URL."""
    uvicorn = need("uvicorn", "the browser test")
    from tuningfork.dashboard import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(storage_url, allowed_hosts=["127.0.0.1", "localhost"])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="dashboard-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def chromium_path() -> str:
    """Debian's Chromium, or skip (fail under CI) when it is not installed."""
    path = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )
    if path is None:
        problem = "the browser test needs Chromium at /usr/bin/chromium (apt-get install chromium)"
        if REQUIRED:
            pytest.fail(f"{problem}; CI is set, so this fails", False)
        pytest.skip(problem)
    return path


class Shots:
    """Saves screenshots to ``tmp_path`` and, with TUNINGFORK_ARTIFACTS, to the repo."""

    def __init__(self, page: Any, tmp_path: Path) -> None:
        self.page = page
        self.dirs = [tmp_path / "screenshots"]
        if os.environ.get("TUNINGFORK_ARTIFACTS"):
            self.dirs.append(REPO / "test-artifacts" / "dashboard")
        for directory in self.dirs:
            directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str) -> None:
        data = self.page.screenshot(full_page=True)
        for directory in self.dirs:
            (directory / f"{name}.png").write_bytes(data)


def column(page: Any, key: str) -> list[str]:
    """The visible cells of a trials-table column, top to bottom."""
    return page.eval_on_selector_all(
        f'#trials-table tbody tr:not([hidden]) td[data-key="{key}"]',
        "cells => cells.map(c => c.textContent)",
    )


def as_numbers(cells: list[str]) -> list[float]:
    return [float(cell) for cell in cells if cell != "-"]


@pytest.mark.slow
def test_browser_live_table_sort_filter_detail_and_plot(tmp_path: Path) -> None:
    sync_api = need("playwright.sync_api", "the browser test")
    executable = chromium_path()
    url = f"sqlite:///{tmp_path / 'live.db'}"
    study = tf.create_study(name="live <i>study", storage=url, seed=5)
    with pytest.warns(UserWarning):
        study.optimize(objective, n_trials=4, catch=(ValueError,))
    has_viz = importlib.util.find_spec("tuningfork.viz") is not None
    problems: list[str] = []

    with (
        dashboard_server(url) as base,
        worker(study, pause_s=0.15),
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "response",
                lambda answer: (
                    problems.append(f"{answer.status} {answer.url}")
                    if answer.status >= 400
                    else None
                ),
            )
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            shots = Shots(page, tmp_path)
            page.set_default_timeout(10_000)
            page.goto(base + "/")
            link = page.get_by_role("link", name="live <i>study")
            link.wait_for()
            shots("1-studies")
            marker = page.evaluate("[window.__tfLoadId, performance.timeOrigin]")
            link.click()

            # live: the count grows without a reload, and the table follows it
            page.wait_for_selector("#trials-table tbody tr")
            first = int(page.text_content("#trial-count"))
            page.wait_for_function(
                "n => Number(document.getElementById('trial-count').textContent) >= n",
                arg=first + 3,
            )
            page.wait_for_function(
                "() => document.querySelectorAll('#trials-table tbody tr').length"
                " === Number(document.getElementById('trial-count').textContent)"
            )
            assert page.evaluate("[window.__tfLoadId, performance.timeOrigin]") == marker
            assert page.text_content("#study-name") == "live <i>study"

            # parameter values are text, never markup
            assert HTML_VALUE in column(page, "param:kind")
            assert page.evaluate("document.querySelectorAll('main img, main b').length") == 0
            assert page.evaluate("window.__xss") is None
            shots("2-study-live")

            # sort by clicking a column header: ascending, then descending
            page.click('#trials-table th[data-key="param:x"]')
            values = as_numbers(column(page, "param:x"))
            assert len(values) > 3 and values == sorted(values)
            page.click('#trials-table th[data-key="param:x"]')
            values = as_numbers(column(page, "param:x"))
            assert values == sorted(values, reverse=True)
            page.click('#trials-table th[data-key="number"]')
            numbers = as_numbers(column(page, "number"))
            assert numbers == sorted(numbers)

            # filter by state: only COMPLETE rows stay visible
            for state in ("PRUNED", "FAIL", "RUNNING", "WAITING", "PAUSED"):
                page.uncheck(f'#state-filter label[data-state="{state}"] input')
            visible = page.eval_on_selector_all(
                "#trials-table tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.state)"
            )
            assert visible and set(visible) == {"COMPLETE"}
            hidden = page.eval_on_selector_all(
                "#trials-table tbody tr[hidden]", "rows => rows.map(r => r.dataset.state)"
            )
            assert {"PRUNED", "FAIL"} <= set(hidden)
            shots("3-filtered-complete")
            for state in ("PRUNED", "FAIL", "RUNNING", "WAITING", "PAUSED"):
                page.check(f'#state-filter label[data-state="{state}"] input')

            # open a trial: its parameters, intermediate values and reproducibility record
            page.click('#trials-table tbody tr[data-number="0"]')
            page.wait_for_selector('#detail-body[data-number="0"] #detail-params')
            params = page.text_content("#detail-params")
            trial = study.trials[0]
            assert "x" in params and "kind" in params and HTML_VALUE in params
            assert str(trial.params["n"]) in params
            assert page.locator("#detail-body svg.chart circle").count() == 3
            assert "trial_seed" in page.text_content("#detail-body")
            assert page.evaluate("[window.__tfLoadId, performance.timeOrigin]") == marker
            shots("4-trial-detail")

            if has_viz:  # a plot tab draws an interactive plotly graph
                page.click('#plot-tabs button[data-kind="history"]')
                page.wait_for_selector("#plot.js-plotly-plot .main-svg")
                shots("5-plot-history")
            assert page.evaluate("[window.__tfLoadId, performance.timeOrigin]") == marker
        finally:
            browser.close()
    assert not problems, problems
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) > 3


# -- a population-based study (PBT) ----------------------------------------------------------


def pbt_objective(trial: tf.Trial) -> float:
    """Adds ``lr`` per step to a weight kept in the checkpoint: members exploit each other."""
    lr = trial.suggest_float("lr", 1e-3, 1.0, log=True)
    path = trial.checkpoint_dir / "w.txt"
    w = float(path.read_text()) if trial.resumed else 0.0
    for step in range((trial.last_step or 0) + 1, trial.budget + 1):
        w += lr
        path.write_text(str(w))  # before the report that commits it
        trial.report(w, step)
    if trial.should_stop():
        raise tf.TrialPruned()
    return w


def make_pbt_study(tmp_path: Path) -> tf.Study:
    """PBT, population 4, exploit every 2 steps up to step 8, in SQLite."""
    scheduler = tf.PBT(population_size=4, perturbation_interval=2, max_budget=8, seed=0)
    url = f"sqlite:///{tmp_path / 'pbt.db'}"
    study = tf.create_study(
        name="pbt", storage=url, direction="maximize", scheduler=scheduler, seed=1
    )
    study.optimize(pbt_objective)
    assert any(t.system_attrs["pbt"].get("exploits") for t in study.trials)
    return study


def test_population_summary_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("tuningfork.viz")
    pytest.importorskip("plotly")
    study = make_pbt_study(tmp_path)
    api = client(study)
    doc = api.get("/api/studies/pbt").json()
    members = {str(t.system_attrs["pbt"]["member"]): [t.number] for t in study.trials}
    n_exploits = sum(len(t.system_attrs["pbt"].get("exploits", ())) for t in study.trials)
    assert doc["population"] == {"members": members, "n_members": 4, "exploits": n_exploits}

    figure = api.get("/api/studies/pbt/plots/population").json()
    names = [trace["name"] for trace in figure["data"]]
    assert names == [f"member {m}" for m in range(4)] + ["exploit: donor -> recipient"]
    hover = " ".join(figure["data"][-1]["hovertext"])
    for trial in study.trials:
        for record in trial.system_attrs["pbt"].get("exploits", ()):
            assert f"trial {trial.number} (member" in hover
            assert f"copied trial {record['donor']} " in hover

    every = api.get("/api/studies/pbt/plots/schedule").json()
    assert {trace["name"] for trace in every["data"]} == {f"member {m}" for m in range(4)}
    assert every["layout"]["yaxis"]["type"] == "log"  # lr
    one = api.get("/api/studies/pbt/plots/schedule?trial=2").json()
    assert {trace["name"] for trace in one["data"]} == {"trial 2"}


def test_population_errors(study: tf.Study, tmp_path: Path) -> None:
    pytest.importorskip("tuningfork.viz")
    pytest.importorskip("plotly")
    api = client(study)
    assert api.get("/api/studies/demo <b>").json()["population"] is None
    answer = api.get("/api/studies/demo <b>/plots/population")
    assert answer.status_code == 404 and "no population member" in answer.json()["error"]
    for query, message in (
        ("schedule?trial=99", "no trial 99"),
        ("schedule?trial=one", "trial must be an integer"),
        ("schedule?color=red", "takes no option 'color'"),
        ("history?trial=1", "takes no option 'trial'"),
    ):
        answer = api.get(f"/api/studies/demo <b>/plots/{query}")
        assert answer.status_code == 400, (query, answer.text)
        assert message in answer.json()["error"]


@pytest.mark.slow
def test_browser_population_card(tmp_path: Path) -> None:
    sync_api = need("playwright.sync_api", "the browser test")
    pytest.importorskip("tuningfork.viz")
    pytest.importorskip("plotly")
    executable = chromium_path()
    study = make_pbt_study(tmp_path)
    demo = tf.create_study(name="plain", storage=study.storage.url, seed=0)
    demo.optimize(objective, n_trials=2)
    problems: list[str] = []
    with dashboard_server(study.storage.url) as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.set_default_timeout(10_000)
            shots = Shots(page, tmp_path)
            page.goto(base + "/")
            page.get_by_role("link", name="pbt").click()
            page.wait_for_selector("#population-card:not([hidden])")
            page.wait_for_selector("#population-plot.js-plotly-plot .main-svg")
            page.wait_for_selector("#schedule-plot.js-plotly-plot .main-svg")
            assert "4 members" in page.text_content("#population-meta")
            traces = "id => document.getElementById(id).data.map(t => t.name)"
            assert page.evaluate(traces, "population-plot")[:4] == [f"member {m}" for m in range(4)]
            tabs = page.eval_on_selector_all("#plot-tabs button", "b => b.map(x => x.dataset.kind)")
            assert "history" in tabs and "population" not in tabs and "schedule" not in tabs
            shots("pbt-1-population")
            page.select_option("#schedule-of", "2")
            page.wait_for_function(
                "() => document.getElementById('schedule-plot').data"
                ".every(t => t.name === 'trial 2')"
            )
            shots("pbt-2-schedule-of-trial-2")
            page.goto(base + "/")
            page.get_by_role("link", name="plain").click()
            page.wait_for_selector("#trials-table tbody tr")
            assert page.is_hidden("#population-card")
        finally:
            browser.close()
    assert not problems, problems
