"""plotly figures: traces, axis types and labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tuningfork as tf
from tuningfork import viz
from tuningfork.trial import TrialState


def complete(study):
    return study.get_trials(states=[TrialState.COMPLETE])


def test_history(study: tf.Study) -> None:
    fig = viz.plot_history(study, backend="plotly")
    done = complete(study)
    assert [t.name for t in fig.data] == ["value", "best so far"]
    assert list(fig.data[0].y) == [t.value for t in done]
    assert list(fig.data[0].x) == [t.number for t in done]
    np.testing.assert_allclose(fig.data[1].y, np.minimum.accumulate([t.value for t in done]))
    assert fig.layout.xaxis.title.text == "trial" and fig.layout.yaxis.title.text == "value"
    assert "study 'demo'" in fig.layout.title.text


def test_history_maximize(max_study: tf.Study) -> None:
    fig = viz.plot(max_study, "history", backend="plotly", target_name="acc", by="time")
    assert list(fig.data[1].y) == [1, 3, 3, 5, 5]
    assert fig.layout.xaxis.title.text == "wall-clock time (s)"
    assert fig.layout.yaxis.title.text == "acc"


def test_parallel(study: tf.Study) -> None:
    fig = viz.plot_parallel_coordinates(study, params=["lr", "opt"], backend="plotly")
    (trace,) = fig.data
    dims = trace.dimensions
    assert [d.label for d in dims] == ["lr", "opt", "value"]
    lr = [t.params["lr"] for t in complete(study)]
    np.testing.assert_allclose(dims[0].values, np.log10(lr))  # log axis: log10 values
    assert all(text in {"0.0001", "0.001", "0.01", "0.1"} for text in dims[0].ticktext)
    assert list(dims[1].ticktext) == ["sgd", "adam", "rmsprop"]
    assert list(dims[2].values) == [t.value for t in complete(study)]


def test_slice(study: tf.Study) -> None:
    fig = viz.plot_slice(study, backend="plotly")
    assert [t.name for t in fig.data] == ["lr", "units", "opt", "beta"]
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.title.text == "lr"
    assert list(fig.layout.xaxis3.ticktext) == ["sgd", "adam", "rmsprop"]
    n_adam = sum(t.params["opt"] == "adam" for t in complete(study))
    assert len(fig.data[3].x) == n_adam
    assert fig.layout.yaxis.title.text == "value"


def test_contour(study: tf.Study) -> None:
    fig = viz.plot_contour(study, params=["lr", "units"], backend="plotly", target_name="loss")
    contour, points = fig.data
    assert contour.type == "contour" and points.type == "scatter"
    assert len(points.x) == len(complete(study))
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.title.text == "lr"
    assert fig.layout.yaxis.title.text == "units"
    assert contour.colorbar.title.text == "loss"
    assert len(contour.x) == 50 and len(contour.z) == 50


def test_contour_grid(study: tf.Study) -> None:
    fig = viz.plot_contour(study, params=["lr", "units", "opt"], backend="plotly")
    assert sum(t.type == "scatter" for t in fig.data) == 6


def test_edf(study: tf.Study, max_study: tf.Study) -> None:
    fig = viz.plot_edf([study, max_study], backend="plotly")
    assert [t.name for t in fig.data] == ["demo", "maxi"]
    assert list(fig.data[1].y) == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert fig.layout.yaxis.title.text == "cumulative probability"


def test_intermediate(study: tf.Study) -> None:
    fig = viz.plot_intermediate_values(study, backend="plotly", log_y=True)
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == ["COMPLETE", "PRUNED", "RUNNING"]
    pruned = [t for t in fig.data if t.name == "PRUNED"]
    assert len(pruned) == 4 and {t.line.color for t in pruned} == {viz.STATE_COLORS["PRUNED"]}
    assert fig.layout.yaxis.type == "log"


def test_timeline(threaded_study: tf.Study) -> None:
    fig = viz.plot_timeline(threaded_study, backend="plotly")
    data = viz.plot_data(threaded_study, "timeline")
    assert [t.name for t in fig.data] == ["COMPLETE", "FAIL"]
    assert sum(len(t.x) for t in fig.data) == 8
    assert set(fig.data[0].y) <= set(data.rows)
    assert "utilisation" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "wall-clock time (s)"


def test_rungs(asha_study: tf.Study) -> None:
    fig = viz.plot_rungs(asha_study, backend="plotly")
    (bars,) = fig.data
    assert list(bars.x) == ["1", "3", "9"]
    assert list(bars.y) == viz.plot_data(asha_study, "rungs").brackets[0].reached.tolist()


def test_pareto(mo_study: tf.Study, mo3_study: tf.Study) -> None:
    fig = viz.plot_pareto_front(mo_study, backend="plotly")
    assert [t.name for t in fig.data] == ["trial (dominated)", "Pareto front"]
    assert list(fig.data[1].x) == [1, 2, 2.5, 4] and list(fig.data[1].y) == [5, 3, 2.5, 1]
    fig3 = viz.plot_pareto_front(mo3_study, backend="plotly")
    assert {t.type for t in fig3.data} == {"scatter3d"}
    assert fig3.layout.scene.zaxis.title.text == "objective 2 (min)"


def test_figures_serialise_to_json(study: tf.Study) -> None:
    for kind in ("history", "slice", "contour", "intermediate", "timeline", "rungs"):
        fig = viz.plot(study, kind, backend="plotly")
        assert json.loads(fig.to_json())["data"]


def test_real_importance(study: tf.Study) -> None:
    pytest.importorskip("tuningfork.importance")
    data = viz.plot_data(study, "importance")
    assert set(data.names) <= {"lr", "units", "opt", "beta"} and len(data.names) >= 3
    assert np.all(np.diff(data.importances) <= 0)  # most important first
    fig = viz.plot_importance(study, backend="plotly")
    assert list(fig.data[0].y) == data.names[::-1]
    fig = viz.plot_importance(study)
    assert len(fig.axes[0].patches) == len(data.names)


def test_names_with_tags_show_as_typed() -> None:
    study = tf.create_study("a <i>study", storage="memory", sampler=tf.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("<b>x", 0, 1), n_trials=3)
    fig = viz.plot(study, "history", backend="plotly")
    assert "&lt;i&gt;study" in fig.layout.title.text
    assert "<i>" not in fig.layout.title.text
    fig = viz.plot(study, "slice", backend="plotly")
    assert "&lt;b&gt;x" in fig.to_json()
