"""Files written by save(), missing extras, and the core import staying light."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest

import tuningfork as tf
from tuningfork import viz
from tuningfork.exceptions import MissingExtra, NothingToPlot


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf", ".html", ".json"])
def test_save_each_format(study: tf.Study, tmp_path, suffix: str) -> None:
    path = viz.save(study, "history", tmp_path / "out" / f"history{suffix}")
    assert path.exists() and path.stat().st_size > 0
    head = path.read_bytes()[:200]
    if suffix == ".svg":
        assert b"<svg" in path.read_bytes()
    elif suffix == ".pdf":
        assert head.startswith(b"%PDF")
    elif suffix == ".html":
        text = path.read_text()
        assert "plotly" in text.lower() and "best so far" in text
    elif suffix == ".json":
        fig = json.loads(path.read_text())
        assert [t["name"] for t in fig["data"]] == ["value", "best so far"]


def test_png_has_the_requested_size(study: tf.Study, tmp_path) -> None:
    path = viz.save(study, "slice", tmp_path / "slice.png", width=640, height=360)
    assert png_size(path) == (640, 360)
    path = viz.save(study, "history", tmp_path / "h.png", width=300, height=200, dpi=50)
    assert png_size(path) == (300, 200)
    assert png_size(viz.save(study, "timeline", tmp_path / "t.png", width=500, height=400)) == (
        500,
        400,
    )


def test_save_options_and_errors(study: tf.Study, tmp_path) -> None:
    path = viz.save(study, "slice", tmp_path / "s.json", params=["lr"], target_name="loss")
    fig = json.loads(path.read_text())
    assert [t["name"] for t in fig["data"]] == ["lr"]
    with pytest.raises(viz.PlotOptionError, match="suffix '.gif'"):
        viz.save(study, "history", tmp_path / "x.gif")
    with pytest.raises(viz.PlotOptionError, match="written with matplotlib"):
        viz.save(study, "history", tmp_path / "x.png", backend="plotly")
    empty = tf.create_study(name="nothing", storage="memory")
    with pytest.raises(NothingToPlot, match="'nothing' has no complete trial"):
        viz.save(empty, "history", tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()


def test_missing_matplotlib_names_the_extra(study: tf.Study, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtra, match=r"pip install 'tuningfork\[viz\]'"):
        viz.plot(study, "history")
    with pytest.raises(MissingExtra, match="matplotlib"):
        viz.save(study, "slice", "x.png")
    assert viz.plot(study, "history", backend="plotly") is not None  # the other still works
    assert viz.plot_data(study, "history").y.size  # data needs neither


def test_missing_plotly_names_the_extra(study: tf.Study, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtra, match=r"plotly.*pip install 'tuningfork\[viz\]'"):
        viz.plot(study, "history", backend="plotly")


def test_core_import_does_not_import_plotting_libraries() -> None:
    code = (
        "import sys, tuningfork, tuningfork.viz\n"
        "bad = [m for m in ('matplotlib', 'plotly') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
