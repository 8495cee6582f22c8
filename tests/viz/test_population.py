"""The population-based training plots: each member's values with its exploits as edges,
and the hyperparameter schedules, on real PBT studies (the toy problem of Jaderberg et al.
2017, Fig. 2: population 4, exploit every 4 steps up to step 20)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tuningfork as tf
from tuningfork import viz
from tuningfork.exceptions import NothingToPlot
from tuningfork.schedulers.pbt import replay_schedule
from tuningfork.trial import FrozenTrial, schedule_of

from .conftest import matplotlib


def toy_objective(crash: int | None = None) -> Any:
    """Gradient ascent on the PBT paper's surrogate Q(theta|h); reports every 2 steps; trial
    ``crash`` raises at step 10 (after it has committed step 8)."""

    def objective(trial: tf.Trial) -> float:
        h0 = trial.suggest_float("h0", 0.0, 1.0)
        h1 = trial.suggest_float("h1", 1e-3, 1.0, log=True)
        opt = trial.suggest_categorical("opt", ["sgd", "adam"])
        path = trial.checkpoint_dir / "theta.json"
        theta = json.loads(path.read_text()) if trial.resumed and path.exists() else [0.9, 0.9]
        step = trial.last_step or 0
        while step < trial.budget:
            step += 1
            if trial.number == crash and step == 10:
                raise ValueError("this member crashes")
            theta = [theta[0] * (1 - 0.02 * h0), theta[1] * (1 - 0.02 * h1)]
            q = 1.2 - (theta[0] ** 2 + theta[1] ** 2) + (0.01 if opt == "adam" else 0.0)
            if step % 2 == 0 or step == trial.budget:
                path.write_text(json.dumps(theta))  # before the report that commits it
                trial.report(q, step)
                if trial.should_stop():
                    raise tf.TrialPruned()
        return q

    return objective


def pbt_study(root: Path, name: str, crash: int | None = None, kind: Any = tf.PBT) -> tf.Study:
    scheduler = kind(population_size=4, perturbation_interval=4, max_budget=20, seed=1)
    study = tf.create_study(
        name=name, storage="memory", direction="maximize", scheduler=scheduler, seed=3,
        artifact_root=root,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the crash's warning
        study.optimize(toy_objective(crash), catch=(ValueError,))
    return study


@pytest.fixture(scope="module")
def pbt(tmp_path_factory: pytest.TempPathFactory) -> tf.Study:
    return pbt_study(tmp_path_factory.mktemp("pbt"), "pbt")


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> tf.Study:
    """Member 2's trial fails at step 10; a new trial replaces it (a copy at step 8)."""
    return pbt_study(tmp_path_factory.mktemp("crash"), "crash", crash=2)


def records(study: tf.Study) -> list[tuple[FrozenTrial, dict[str, Any]]]:
    return [(t, e) for t in study.trials for e in t.system_attrs["pbt"].get("exploits", ())]


def member_of(trial: FrozenTrial) -> int:
    return int(trial.system_attrs["pbt"]["member"])


# -- the population ----------------------------------------------------------------------


def test_one_series_per_member_with_its_reports(pbt: tf.Study) -> None:
    data = viz.plot_data(pbt, "population")
    assert [s.member for s in data.members] == [0, 1, 2, 3]
    for series in data.members:
        (trial,) = [t for t in pbt.trials if member_of(t) == series.member]
        assert series.trials == (trial.number,)
        assert series.steps.tolist() == list(range(2, 21, 2))
        assert series.values.tolist() == [trial.intermediate_values[s] for s in range(2, 21, 2)]
        assert len(series.pieces()) == 1
    assert "4 members" in data.title and f"{len(records(pbt))} exploits" in data.title


def test_exploit_edges_are_the_recorded_exploits(pbt: tf.Study) -> None:
    data = viz.plot_data(pbt, "population")
    recorded = records(pbt)
    assert len(recorded) >= 2  # the toy exploits: the check below is not vacuous
    assert len(data.exploits) == len(recorded)
    for edge, (trial, record) in zip(data.exploits, recorded):
        assert (edge.recipient, edge.member) == (trial.number, member_of(trial))
        assert (edge.donor, edge.step) == (record["donor"], record["step"])
        assert (edge.before, edge.after) == (record["before"], record["after"])
        donor = pbt.trials[edge.donor]
        assert edge.donor_member == member_of(donor)
        # the edge starts at the donor's point and ends at the recipient's next report
        assert edge.donor_value == record["donor_value"] == donor.intermediate_values[edge.step]
        assert edge.to_step == edge.step + 2
        assert edge.to_value == trial.intermediate_values[edge.step + 2]


def test_a_replacement_continues_the_member_line(crashed: tf.Study) -> None:
    failed = crashed.trials[2]
    (replacement,) = [t for t in crashed.trials if t.system_attrs["pbt"].get("replaces") == 2]
    assert failed.state is tf.TrialState.FAIL and member_of(replacement) == 2
    data = viz.plot_data(crashed, "population")
    series = data.members[2]
    assert series.trials == (2, replacement.number)
    assert series.states == ("FAIL", "COMPLETE")
    assert series.steps.tolist() == list(range(2, 21, 2))  # 2..8 then 10..20: one line
    assert series.numbers.tolist() == [2] * 4 + [replacement.number] * 6
    assert len(series.pieces()) == 1
    (copy,) = [e for e in data.exploits if e.recipient == replacement.number]
    assert (copy.step, copy.to_step) == (8, 10)
    assert copy.to_value == replacement.intermediate_values[10]


def test_an_edge_without_a_later_report_ends_at_the_donor(crashed: tf.Study) -> None:
    data = viz.plot_data(crashed, "population")
    for edge in data.exploits:
        trial = crashed.trials[edge.recipient]
        later = [s for s in trial.intermediate_values if s > edge.step]
        assert (edge.to_step is None) == (not later)


def test_pieces_break_where_the_steps_go_back() -> None:
    series = viz.MemberSeries(
        0, (0, 1), np.array([2.0, 4, 6, 2, 4]), np.zeros(5), np.array([0, 0, 0, 1, 1]), ()
    )
    assert series.pieces() == [slice(0, 3), slice(3, 5)]


# -- the schedules -----------------------------------------------------------------------


def test_schedule_per_member_changes_at_its_exploits(pbt: tf.Study) -> None:
    data = viz.plot_data(pbt, "schedule")
    assert [p.param for p in data.panels] == ["h0", "h1", "opt"]
    assert [p.axis.scale for p in data.panels] == ["linear", "log", "categorical"]
    assert data.panels[2].axis.categories == ("sgd", "adam")
    for panel in data.panels:
        assert [line.member for line in panel.lines] == [0, 1, 2, 3]
        for line in panel.lines:
            (trial,) = [t for t in pbt.trials if member_of(t) == line.member]
            exploits = trial.system_attrs["pbt"].get("exploits", [])
            assert line.steps.tolist() == [0, *(e["step"] for e in exploits), 20]
            first = exploits[0]["before"] if exploits else trial.params
            held = [first, *(e["after"] for e in exploits), trial.params]
            encode = {"sgd": 0, "adam": 1}
            expected = [encode.get(p[panel.param], p[panel.param]) for p in held]
            assert line.values.tolist() == pytest.approx(expected)


def test_schedule_of_a_replaced_member_starts_the_copy_at_its_step(crashed: tf.Study) -> None:
    (line,) = [ln for ln in viz.plot_data(crashed, "schedule").panels[0].lines if ln.member == 2]
    replacement = next(t for t in crashed.trials if t.system_attrs["pbt"].get("replaces") == 2)
    assert line.steps.tolist() == [0, 8, 20]
    assert line.numbers.tolist() == [2, replacement.number, replacement.number]
    assert line.values[1] == replacement.params["h0"]


def test_schedule_of_one_trial_is_its_effective_schedule(pbt: tf.Study) -> None:
    number = max(pbt.trials, key=lambda t: len(schedule_of(t))).number
    schedule = replay_schedule(pbt, number)
    assert len(schedule) >= 2  # inherited from its donors: more than its own exploits
    data = viz.plot_data(pbt, "schedule", trial=number, params=["h1"])
    (panel,) = data.panels
    (line,) = panel.lines
    assert data.trial == number and line.label == f"trial {number}"
    assert line.steps.tolist() == [s for s, _ in schedule] + [20]
    assert line.values.tolist() == [p["h1"] for _, p in schedule] + [schedule[-1][1]["h1"]]
    assert panel.axis.is_log


def test_schedule_of_a_trial_outside_a_population(one_trial_study: tf.Study) -> None:
    (line,) = viz.plot_data(one_trial_study, "schedule", trial=0).panels[0].lines
    assert line.member is None
    assert line.steps.tolist() == [0] and line.values.tolist() == [
        one_trial_study.trials[0].params["x"]
    ]


def test_data_from_a_study_reader(pbt: tf.Study) -> None:
    from tuningfork.viz._data import population_data, schedule_data

    on_reader = population_data(pbt.reader)
    on_study = population_data(pbt)
    assert [s.values.tolist() for s in on_reader.members] == [
        s.values.tolist() for s in on_study.members
    ]
    assert len(schedule_data(pbt.reader).panels) == 3


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["population", "schedule"])
def test_a_study_without_members_is_nothing_to_plot(kind: str, study: tf.Study) -> None:
    with pytest.raises(NothingToPlot, match="no population member.*tf.PBT"):
        viz.plot_data(study, kind)


def test_bad_options_are_clear_errors(pbt: tf.Study) -> None:
    with pytest.raises(viz.PlotOptionError, match="no trial 99") as error:
        viz.plot_data(pbt, "schedule", trial=99)
    assert error.value.option == "trial"
    with pytest.raises(viz.PlotOptionError, match="'lr'"):
        viz.plot_data(pbt, "schedule", params=["lr"])
    with pytest.raises(viz.PlotOptionError, match="does not take the option"):
        viz.plot_data(pbt, "population", params=["h0"])


def test_members_without_reports_are_nothing_to_plot() -> None:
    pbt = tf.create_study(
        name="fresh", storage="memory", direction="maximize",
        scheduler=tf.PBT(population_size=2, perturbation_interval=2, max_budget=4, seed=0),
    )  # fmt: skip
    first = pbt.ask()  # member 0, running, no report yet
    first.suggest_float("x", 0.0, 1.0)
    with pytest.raises(NothingToPlot, match="no member of study 'fresh' has reported"):
        viz.plot_data(pbt, "population")
    (line,) = viz.plot_data(pbt, "schedule").panels[0].lines
    assert line.steps.tolist() == [0] and line.member == 0


# -- drawing -------------------------------------------------------------------------------


def test_matplotlib_population_and_schedule(crashed: tf.Study) -> None:
    fig = viz.plot_population(crashed)
    (ax,) = fig.axes
    labels = ax.get_legend_handles_labels()[1]
    assert labels == [f"member {m}" for m in range(4)] + ["exploit: donor -> recipient"]
    arrows = [a for a in ax.texts if a.arrow_patch is not None]
    edges = viz.plot_data(crashed, "population").exploits
    assert len(arrows) == sum(e.to_step is not None for e in edges)
    texts = {a.get_text() for a in ax.texts}
    assert {f"{e.donor}->{e.recipient}" for e in edges if e.to_step is not None} <= texts
    fig.canvas.draw()
    fig = viz.plot_schedule(crashed, params=["h0", "h1"], width=900, height=400)
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_ylabel() for a in axes] == ["h0", "h1"]
    assert [a.get_yscale() for a in axes] == ["linear", "log"]
    fig.canvas.draw()
    assert isinstance(fig, matplotlib.figure.Figure)


def test_plotly_population_names_donor_and_recipient(pbt: tf.Study) -> None:
    fig = viz.plot_population(pbt, backend="plotly")
    members = [t for t in fig.data if t.name.startswith("member ")]
    assert [t.name for t in members] == [f"member {m}" for m in range(4)]
    (edges,) = [t for t in fig.data if t.name.startswith("exploit")]
    data = viz.plot_data(pbt, "population")
    hover = " ".join(edges.hovertext)
    for edge in data.exploits:
        assert f"trial {edge.recipient} (member {edge.member}) copied trial {edge.donor}" in hover
    assert list(edges.x).count(None) == len(data.exploits)
    json.loads(fig.to_json())


def test_plotly_schedule_log_axis_and_one_legend_entry_per_member(pbt: tf.Study) -> None:
    fig = viz.plot_schedule(pbt, backend="plotly")
    assert fig.layout.yaxis2.type == "log"  # h1
    assert list(fig.layout.yaxis3.ticktext) == ["sgd", "adam"]
    shown = [t.name for t in fig.data if t.showlegend]
    assert shown == [f"member {m}" for m in range(4)]
    assert all(t.line.shape == "hv" for t in fig.data)
    one = viz.plot_schedule(pbt, trial=1, backend="plotly")
    assert {t.name for t in one.data} == {"trial 1"}


def test_a_pb2_study_plots_the_same_way(tmp_path: Path) -> None:
    pb2 = pbt_study(tmp_path, "pb2", kind=tf.PB2)
    data = viz.plot_data(pb2, "population")
    assert [s.member for s in data.members] == [0, 1, 2, 3]
    recorded = records(pb2)
    assert recorded and [(e.recipient, e.donor, e.step) for e in data.exploits] == [
        (t.number, r["donor"], r["step"]) for t, r in recorded
    ]
    for backend in viz.BACKENDS:
        assert viz.plot_population(pb2, backend=backend) is not None
        assert viz.plot_schedule(pb2, backend=backend) is not None


@pytest.mark.parametrize("suffix", [".png", ".html"])
@pytest.mark.parametrize("kind", ["population", "schedule"])
def test_save(pbt: tf.Study, tmp_path: Path, kind: str, suffix: str) -> None:
    path = viz.save(pbt, kind, tmp_path / f"{kind}{suffix}")
    assert path.stat().st_size > 1000
