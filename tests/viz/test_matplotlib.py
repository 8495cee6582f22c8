"""matplotlib figures: what is drawn, not only that something is."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import tuningfork as tf
from tuningfork import viz
from tuningfork.trial import TrialState


@pytest.fixture(autouse=True)
def _no_pyplot_figures():
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before  # nothing went through pyplot's global state


def main_axes(fig):  # the axes that are not colour bars
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.get_visible()]


def complete(study):
    return study.get_trials(states=[TrialState.COMPLETE])


def test_history(study: tf.Study) -> None:
    fig = viz.plot_history(study)
    (ax,) = main_axes(fig)
    done = complete(study)
    assert ax.get_xlabel() == "trial" and ax.get_ylabel() == "value"
    assert "optimisation history of study 'demo'" in ax.get_title()
    points = ax.collections[0].get_offsets()
    assert len(points) == len(done)
    assert points[:, 1].tolist() == [t.value for t in done]
    best = np.minimum.accumulate([t.value for t in done])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), best)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["value", "best so far"]


def test_history_maximize_by_time_log(max_study: tf.Study) -> None:
    fig = viz.plot_history(max_study, by="time", target_name="accuracy", log_y=True)
    (ax,) = main_axes(fig)
    assert ax.get_xlabel() == "wall-clock time (s)" and ax.get_ylabel() == "accuracy"
    assert ax.get_yscale() == "log"
    assert ax.lines[0].get_ydata().tolist() == [1, 3, 3, 5, 5]


def test_parallel_coordinates(study: tf.Study) -> None:
    fig = viz.plot_parallel_coordinates(study, params=["lr", "opt", "units"])
    ax = main_axes(fig)[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["lr", "opt", "units", "value"]
    assert len(ax.lines) == len(complete(study))
    texts = {t.get_text() for t in ax.texts}
    assert {"sgd", "adam", "rmsprop"} <= texts  # the categorical axis' choices
    assert any(ax.get_label() == "<colorbar>" and ax.get_ylabel() == "value" for ax in fig.axes)


def test_slice_axes_log_and_categorical(study: tf.Study) -> None:
    fig = viz.plot_slice(study, target_name="loss")
    axes = main_axes(fig)
    assert [ax.get_xlabel() for ax in axes] == ["lr", "units", "opt", "beta"]
    assert axes[0].get_xscale() == "log" and axes[1].get_xscale() == "linear"
    assert [t.get_text() for t in axes[2].get_xticklabels()] == ["sgd", "adam", "rmsprop"]
    assert all(ax.get_ylabel() == "loss" for ax in axes)
    n_adam = sum(t.params["opt"] == "adam" for t in complete(study))
    assert len(axes[3].collections[0].get_offsets()) == n_adam  # conditional: only where active
    assert len(axes[0].collections[0].get_offsets()) == len(complete(study))


def test_contour_two_params(study: tf.Study) -> None:
    fig = viz.plot_contour(study, params=["lr", "opt"])
    (ax,) = main_axes(fig)
    assert ax.get_xlabel() == "lr" and ax.get_ylabel() == "opt"
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["sgd", "adam", "rmsprop"]
    scatter = [c for c in ax.collections if c.get_label() == "trials"][0]
    assert len(scatter.get_offsets()) == len(complete(study))
    assert len(ax.collections) > 1  # the filled contour


def test_contour_grid(study: tf.Study) -> None:
    fig = viz.plot_contour(study)  # the first 4 parameters
    axes = main_axes(fig)
    assert len(axes) == 12  # 4 x 4 without the diagonal
    assert {(ax.get_xlabel(), ax.get_ylabel()) for ax in axes} == {
        (a, b) for a in ("lr", "units", "opt", "beta") for b in ("lr", "units", "opt", "beta")
        if a != b
    }  # fmt: skip


def test_edf(study: tf.Study, max_study: tf.Study) -> None:
    fig = viz.plot_edf([study, max_study])
    (ax,) = main_axes(fig)
    assert ax.get_xlabel() == "value" and ax.get_ylabel() == "cumulative probability"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["demo", "maxi"]
    assert ax.lines[1].get_xdata().tolist() == [1, 2, 3, 4, 5]
    assert ax.lines[1].get_ydata().tolist() == [0.2, 0.4, 0.6, 0.8, 1.0]


def test_intermediate_colours_by_state(study: tf.Study) -> None:
    fig = viz.plot_intermediate_values(study)
    (ax,) = main_axes(fig)
    reporting = [t for t in study.trials if t.intermediate_values]
    assert len(ax.lines) == len(reporting)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["COMPLETE", "PRUNED", "RUNNING"]
    pruned = [t for t in reporting if t.state is TrialState.PRUNED]
    colours = {line.get_color() for line in ax.lines if len(line.get_xdata()) == 2}
    assert len(pruned) == 4 and colours == {viz.STATE_COLORS["PRUNED"]}
    assert ax.get_xlabel() == "step"


def test_timeline(threaded_study: tf.Study) -> None:
    fig = viz.plot_timeline(threaded_study)
    (ax,) = main_axes(fig)
    data = viz.plot_data(threaded_study, "timeline")
    assert ax.get_xlabel() == "wall-clock time (s)"
    assert f"utilisation {data.utilisation:.0%}" in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()] == data.rows
    assert len(ax.patches) == 8
    widths = sorted(p.get_width() for p in ax.patches)
    assert widths == pytest.approx(sorted(t.duration for t in threaded_study.trials))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["COMPLETE", "FAIL"]


def test_rungs(asha_study: tf.Study) -> None:
    fig = viz.plot_rungs(asha_study)
    (ax,) = main_axes(fig)
    data = viz.plot_data(asha_study, "rungs")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3", "9"]
    assert [p.get_height() for p in ax.patches] == data.brackets[0].reached.tolist()
    assert ax.get_xlabel() == "rung budget (steps)"
    assert ax.get_legend().get_texts()[0].get_text() == "bracket s=2 (30 trials)"


def test_pareto_two_objectives(mo_study: tf.Study) -> None:
    fig = viz.plot_pareto_front(mo_study, objective_names=["latency", "error"])
    (ax,) = main_axes(fig)
    assert ax.get_xlabel() == "latency (min)" and ax.get_ylabel() == "error (min)"
    dominated, front = ax.collections[0], ax.collections[1]
    assert len(front.get_offsets()) == 4 and len(dominated.get_offsets()) == 2
    assert sorted(front.get_offsets()[:, 0].tolist()) == [1, 2, 2.5, 4]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["trial (dominated)", "Pareto front"]


def test_pareto_three_objectives_in_3d(mo3_study: tf.Study) -> None:
    fig = viz.plot_pareto_front(mo3_study)
    (ax,) = main_axes(fig)
    assert ax.name == "3d" and ax.get_zlabel() == "objective 2 (min)"


def test_importance_with_a_stand_in(study: tf.Study, monkeypatch) -> None:
    import types

    calls = {}

    def fake(study, *, evaluator=None, params=None, target=None):
        calls.update(evaluator=evaluator, params=params, target=target)
        return {"units": 0.2, "lr": 0.7, "opt": 0.1}

    monkeypatch.setitem(
        __import__("sys").modules, "tuningfork.importance",
        types.SimpleNamespace(get_param_importances=fake),
    )  # fmt: skip
    fig = viz.plot_importance(study, params=["lr", "units", "opt"], evaluator="ped")
    (ax,) = main_axes(fig)
    assert calls == {"evaluator": "ped", "params": ["lr", "units", "opt"], "target": None}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["opt", "units", "lr"]  # top: lr
    assert [p.get_width() for p in ax.patches] == [0.1, 0.2, 0.7]
    assert ax.get_xlabel() == "importance" and "(ped)" in ax.get_title()
