"""The plots' data, computed from studies without drawing anything."""

from __future__ import annotations

import numpy as np
import pytest

import tuningfork as tf
from tuningfork import viz
from tuningfork.exceptions import NothingToPlot
from tuningfork.trial import TrialState

from .conftest import make_study


def complete(study: tf.Study) -> list[tf.FrozenTrial]:
    return study.get_trials(states=[TrialState.COMPLETE])


def test_history_is_complete_values_with_best_so_far(study: tf.Study) -> None:
    data = viz.plot_data(study, "history")
    done = complete(study)
    assert data.numbers.tolist() == [t.number for t in done]
    assert data.y.tolist() == [t.value for t in done]
    assert data.best_y.tolist() == np.minimum.accumulate([t.value for t in done]).tolist()
    assert data.best_y[-1] == study.best_value
    assert data.x_label == "trial" and data.direction == "minimize"
    assert f"{len(done)} of {len(study.trials)} trials complete" in data.title


def test_history_best_follows_maximize(max_study: tf.Study) -> None:
    data = viz.plot_data(max_study, "history")
    assert data.best_y.tolist() == [1.0, 3.0, 3.0, 5.0, 5.0]


def test_history_by_time_is_seconds_since_the_first_start(study: tf.Study) -> None:
    data = viz.plot_data(study, "history", by="time")
    assert data.x_label == "wall-clock time (s)"
    assert np.all(np.diff(data.x) >= 0) and data.x[0] >= 0
    t0 = min(t.datetime_start for t in study.trials if t.datetime_start is not None)
    ends = sorted(t.datetime_complete - t0 for t in complete(study))
    np.testing.assert_allclose(data.x, ends)


def test_history_of_a_multi_objective_study_needs_a_target(mo_study: tf.Study) -> None:
    with pytest.raises(viz.PlotOptionError, match="target="):
        viz.plot_data(mo_study, "history")
    data = viz.plot_data(mo_study, "history", target=lambda t: t.values[1], target_name="b")
    assert data.y.tolist() == [5, 3, 4, 1, 5, 2.5]
    assert data.best_y.size == 0  # no direction for a custom target of 2 objectives
    data = viz.plot_data(mo_study, "history", target=lambda t: t.values[1], direction="minimize")
    assert data.best_y.tolist() == [5, 3, 3, 1, 1, 1]


def test_parallel_leaves_out_trials_without_every_parameter(study: tf.Study) -> None:
    data = viz.plot_data(study, "parallel")
    assert [a.label for a in data.axes] == ["lr", "units", "opt", "beta", "value"]
    assert [a.scale for a in data.axes] == ["log", "linear", "categorical", "linear", "linear"]
    adam = [t for t in complete(study) if t.params["opt"] == "adam"]
    assert data.numbers.tolist() == [t.number for t in adam]
    assert set(data.columns[2].tolist()) == {1.0}  # "adam" is choice 1
    data = viz.plot_data(study, "parallel", params=["lr", "opt"])
    assert len(data.numbers) == len(complete(study))
    assert data.axes[1].categories == ("sgd", "adam", "rmsprop")


def test_slice_uses_only_trials_where_a_parameter_is_active(study: tf.Study) -> None:
    data = viz.plot_data(study, "slice")
    panels = {p.param: p for p in data.panels}
    assert list(panels) == ["lr", "units", "opt", "beta"]
    assert len(panels["lr"].x) == len(complete(study))
    assert len(panels["beta"].x) == sum(t.params["opt"] == "adam" for t in complete(study))
    assert panels["lr"].axis.scale == "log"
    lr = {t.number: t.params["lr"] for t in complete(study)}
    assert panels["lr"].x.tolist() == [lr[n] for n in panels["lr"].numbers]


def test_unknown_parameter_is_a_clear_error(study: tf.Study) -> None:
    with pytest.raises(viz.PlotOptionError, match="'nope'"):
        viz.plot_data(study, "slice", params=["nope"])


def test_contour_grid_of_pairs(study: tf.Study) -> None:
    data = viz.plot_data(study, "contour", params=["lr", "units"])
    assert data.n_rows == 1 and len(data.panels) == 1
    panel = data.panels[0]
    assert (panel.x_param, panel.y_param) == ("lr", "units")
    assert panel.grid_z is not None and panel.grid_z.shape == (50, 50)
    assert panel.grid_x[0] == pytest.approx(panel.x.min())
    assert np.allclose(np.diff(np.log10(panel.grid_x)), np.diff(np.log10(panel.grid_x))[0])
    zs = panel.grid_z[np.isfinite(panel.grid_z)]
    assert zs.min() >= panel.z.min() - 1e-9 and zs.max() <= panel.z.max() + 1e-9
    data = viz.plot_data(study, "contour", params=["lr", "units", "opt"])
    assert data.n_rows == 3 and len(data.panels) == 6
    assert {(p.row, p.col) for p in data.panels} == {
        (r, c) for r in range(3) for c in range(3) if r != c
    }


def test_contour_needs_two_parameters(max_study: tf.Study) -> None:
    with pytest.raises(NothingToPlot, match="a contour plot needs at least 2 parameters"):
        viz.plot_data(max_study, "contour", params=["x"])


def test_edf_compares_studies(study: tf.Study, max_study: tf.Study) -> None:
    data = viz.plot_data([study, max_study], "edf")
    assert [c.name for c in data.curves] == ["demo", "maxi"]
    assert data.curves[1].values.tolist() == [1, 2, 3, 4, 5]
    assert data.curves[1].fraction.tolist() == [0.2, 0.4, 0.6, 0.8, 1.0]


def test_intermediate_keeps_each_trials_state(study: tf.Study) -> None:
    data = viz.plot_data(study, "intermediate")
    by_number = {c.number: c for c in data.curves}
    for t in study.trials:
        if t.intermediate_values:
            assert by_number[t.number].state == t.state.value
            assert by_number[t.number].steps.tolist() == sorted(t.intermediate_values)
    assert {c.state for c in data.curves} == {"COMPLETE", "PRUNED", "RUNNING"}


def test_timeline_rows_and_utilisation(threaded_study: tf.Study) -> None:
    data = viz.plot_data(threaded_study, "timeline")
    assert len(data.bars) == 8
    assert len(data.rows) == 2  # two threads of one process
    assert all(row.endswith(("#1", "#2")) for row in data.rows)
    for row in range(2):
        bars = sorted((b for b in data.bars if b.row == row), key=lambda b: b.start)
        assert all(a.end <= b.start + 1e-9 for a, b in zip(bars, bars[1:]))
    busy = sum(t.duration for t in threaded_study.trials)
    assert data.busy == pytest.approx(busy)
    assert data.utilisation == pytest.approx(busy / (2 * data.span))
    assert 0.3 < data.utilisation <= 1.0
    assert f"utilisation {data.utilisation:.0%}" in data.title
    assert {b.state for b in data.bars} == {"COMPLETE", "FAIL"}


def test_timeline_ends_running_trials_now(study: tf.Study) -> None:
    running = [t for t in study.trials if t.state is TrialState.RUNNING][0]
    data = viz.plot_data(study, "timeline", now=running.datetime_start + 100)
    bar = [b for b in data.bars if b.number == running.number][0]
    assert bar.state == "RUNNING" and bar.end - bar.start == pytest.approx(100)


def test_rungs_count_trials_per_budget(asha_study: tf.Study) -> None:
    data = viz.plot_data(asha_study, "rungs")
    assert data.scheduler == "ASHA" and "eta=3" in data.title
    (bracket,) = data.brackets
    assert bracket.budgets == (1, 3, 9)
    trials = [t for t in asha_study.trials if t.last_step is not None]
    assert bracket.n_trials == len(trials) == 30
    expected = [sum(t.last_step >= b for t in trials) for b in (1, 3, 9)]
    assert bracket.reached.tolist() == expected
    assert expected[0] > expected[1] > expected[2] >= 1  # trials stopped at different rungs
    assert sum(c.sum() for c in bracket.stopped.values()) == 30
    assert bracket.stopped["COMPLETE"][2] == expected[2]


def test_rungs_of_hyperband_brackets() -> None:
    s = tf.create_study(
        storage="memory", sampler=tf.RandomSampler(seed=0), seed=0,
        scheduler=tf.Hyperband(1, 9, 3, mode="stopping", asynchronous=True),
    )  # fmt: skip

    def objective(trial: tf.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(1, 10):
            trial.report(x, step)
            if trial.should_stop():
                raise tf.TrialPruned()
        return x

    s.optimize(objective, n_trials=20)
    data = viz.plot_data(s, "rungs")
    brackets = {b.bracket: b for b in data.brackets}
    recorded = {t.system_attrs["bracket"] for t in s.trials}
    assert set(brackets) == recorded and len(recorded) > 1
    for s_ in recorded:
        assert len(brackets[s_].budgets) == s_ + 1
        assert brackets[s_].n_trials == sum(t.system_attrs["bracket"] == s_ for t in s.trials)


def test_rungs_without_a_halving_scheduler_counts_last_steps(study: tf.Study) -> None:
    data = viz.plot_data(study, "rungs")
    (bracket,) = data.brackets
    assert bracket.bracket is None and bracket.budgets == (0.0, 1.0, 4.0)
    assert bracket.reached.tolist()[-1] == len(complete(study))


def test_pareto_front_matches_best_trials(mo_study: tf.Study) -> None:
    data = viz.plot_data(mo_study, "pareto")
    front = {t.number for t in mo_study.best_trials}
    assert set(data.numbers[data.on_front].tolist()) == front == {0, 1, 3, 5}
    assert data.values[data.front_order, 0].tolist() == [1, 2, 2.5, 4]
    assert data.objective_names == ["objective 0 (min)", "objective 1 (min)"]


def test_pareto_with_three_objectives_and_mixed_directions(mo3_study: tf.Study) -> None:
    data = viz.plot_data(mo3_study, "pareto", objective_names=["a", "b", "c"])
    assert data.values.shape == (4, 3)
    assert set(data.numbers[data.on_front].tolist()) == {t.number for t in mo3_study.best_trials}
    assert data.objective_names == ["a (min)", "b (max)", "c (min)"]
    two = viz.plot_data(mo3_study, "pareto", objectives=[0, 2])
    assert two.values.shape == (4, 2) and set(two.numbers[two.on_front].tolist()) == {0, 2}


def test_pareto_of_a_single_objective_study_is_nothing_to_plot(study: tf.Study) -> None:
    with pytest.raises(NothingToPlot, match="2 or more objectives"):
        viz.plot_data(study, "pareto")


@pytest.mark.parametrize("kind", viz.KINDS)
def test_an_empty_study_is_nothing_to_plot(kind: str, empty_study: tf.Study) -> None:
    if kind == "pareto":
        empty = tf.create_study(name="empty2", storage="memory", directions=["minimize"] * 2)
        with pytest.raises(NothingToPlot, match="study 'empty2' has no complete trial to plot"):
            viz.plot_data(empty, kind)
        return
    with pytest.raises(NothingToPlot, match="study 'empty' has no complete trial to plot; run"):
        viz.plot_data(empty_study, kind)


@pytest.mark.parametrize("kind", viz.KINDS)
def test_a_one_trial_study_plots_or_says_why(kind: str, one_trial_study: tf.Study) -> None:
    try:
        data = viz.plot_data(one_trial_study, kind)
    except NothingToPlot as error:
        assert kind in ("contour", "importance", "pareto", "population", "schedule")
        assert str(error)
    else:
        for backend in viz.BACKENDS:
            assert viz.plot(one_trial_study, kind, backend=backend) is not None
        assert data is not None


def test_failed_and_pruned_only_study_says_no_complete_trial() -> None:
    s = make_study("bad")
    for state in ("FAIL", "PRUNED"):
        t = s.ask()
        t.suggest_float("x", 0.0, 1.0)
        t.report(1.0, 0)
        s.tell(t, state=state)
    for kind in ("history", "parallel", "slice", "contour", "edf"):
        with pytest.raises(NothingToPlot, match="no complete trial"):
            viz.plot_data(s, kind)
    assert len(viz.plot_data(s, "intermediate").curves) == 2
    assert len(viz.plot_data(s, "timeline").bars) == 2


def test_unknown_kind_and_option() -> None:
    s = make_study("opts")
    with pytest.raises(viz.PlotOptionError, match="unknown plot kind 'pie'"):
        viz.plot_data(s, "pie")
    with pytest.raises(viz.PlotOptionError, match="does not take the option"):
        viz.plot_data(s, "timeline", params=["x"])
    with pytest.raises(viz.PlotOptionError, match="unknown backend"):
        viz.plot(s, "history", backend="bokeh")


def test_a_study_read_back_from_sqlite_plots_the_same(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'viz.db'}"
    from .conftest import fill_study

    fill_study(make_study("disk", storage=url), n=8)
    loaded = tf.load_study(name="disk", storage=url)
    data = viz.plot_data(loaded, "history")
    assert data.y.tolist() == [t.value for t in complete(loaded)]
    assert [a.scale for a in viz.plot_data(loaded, "parallel", params=["lr", "opt"]).axes] == [
        "log",
        "categorical",
        "linear",
    ]
