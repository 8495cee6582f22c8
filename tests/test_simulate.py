"""The simulated-time executor (`tuningfork.testing.simulate`): virtual clock, event order,
costs of resumed trials, and schedulers run under it."""

from __future__ import annotations

import collections

import pytest

import tuningfork as tf
from tuningfork.testing.simulate import Simulation, StepRecord, simulate, simulated_study
from tuningfork.trial import TrialState

SPACE = tf.Space(x=tf.Float(0.0, 1.0))


def value(params, step):
    """Improves with the step; configurations with small x are better."""
    return params["x"] + 1.0 / step


def study_with(scheduler=None, seed=0, sampler=None):
    return simulated_study(
        sampler=sampler if sampler is not None else tf.RandomSampler(seed=seed),
        scheduler=scheduler,
        seed=seed,
    )


def steps_by_trial(sim: Simulation) -> dict[int, list[int]]:
    steps = collections.defaultdict(list)
    for record in sim.steps:
        steps[record.trial].append(record.step)
    return steps


def test_one_worker_virtual_time_is_the_total_cost() -> None:
    def cost(params, step):
        return 0.5 + params["x"] + 0.1 * step

    sim = simulate(
        study_with(), SPACE, value, n_workers=1, max_step=7, step_cost=cost, cost_limit=40.0
    )
    assert sim.ended_by == "cost_limit"
    assert len(sim.steps) > 20
    for record in sim.steps:
        assert record.time == pytest.approx(record.cost)
    assert sim.elapsed == pytest.approx(sim.cost)
    assert sim.cost >= 40.0
    assert sim.busy == [pytest.approx(sim.elapsed)]
    assert sim.utilisation == pytest.approx(1.0)
    # the cost is what the steps cost, each paid once
    params = {t.number: t.params for t in sim.study.trials}
    paid = sum(cost(params[r.trial], r.step) for r in sim.steps)
    assert sim.cost == pytest.approx(paid)


@pytest.mark.parametrize("n_workers", [1, 3, 8])
def test_n_workers_complete_n_times_as_many_trials(n_workers: int) -> None:
    # 5 steps of 1 s per trial: by t = 50 each worker has finished exactly 10 trials and
    # has just started its 11th (events at t = 50 itself are processed)
    sim = simulate(
        study_with(tf.NoScheduler()), SPACE, value, n_workers=n_workers, max_step=5,
        time_limit=50.0,
    )  # fmt: skip
    states = collections.Counter(t.state for t in sim.study.trials)
    assert states[TrialState.COMPLETE] == 10 * n_workers
    assert states[TrialState.RUNNING] == n_workers
    assert sim.ended_by == "time_limit"
    assert sim.elapsed == 50.0
    assert sim.cost == 50.0 * n_workers
    assert sim.busy == [50.0] * n_workers
    assert len(sim.steps) == 50 * n_workers
    assert [r.state for r in sim.runs].count("COMPLETE") == 10 * n_workers
    finished = [t for t in sim.study.trials if t.state is TrialState.COMPLETE]
    assert all(sim.params[t.number] == t.params for t in finished)
    assert all(t.intermediate_values == {s: value(t.params, s) for s in range(1, 6)}
               for t in sim.study.trials if t.state is TrialState.COMPLETE)  # fmt: skip


def test_events_are_processed_in_virtual_time_order() -> None:
    study = study_with(tf.NoScheduler())
    study.enqueue_trial({"x": 0.9})  # worker 0: slow steps
    study.enqueue_trial({"x": 0.1})  # worker 1: fast steps

    def cost(params, step):
        return 10.0 * params["x"]

    sim = simulate(study, SPACE, value, n_workers=2, max_step=4, step_cost=cost, time_limit=20.0)
    times = [r.time for r in sim.steps]
    assert times == sorted(times)
    # the cheap worker reports first, and finishes its trial before the slow one's first report
    assert (sim.steps[0].worker, sim.steps[0].trial) == (1, 1)
    assert sim.steps[0].time == pytest.approx(1.0)
    first_slow = next(r for r in sim.steps if r.worker == 0)
    assert first_slow.time == pytest.approx(9.0)
    assert [(r.worker, r.step) for r in sim.steps[:4]] == [(1, 1), (1, 2), (1, 3), (1, 4)]
    assert sim.runs[0].trial == 1 and sim.runs[0].end == pytest.approx(4.0)
    # the cumulative cost counts both workers' finished steps in time order
    slow_steps = sum(1 for r in sim.steps if r.worker == 0)
    assert sim.steps[-1].cost == pytest.approx(
        sum(cost(sim.study.trials[r.trial].params, r.step) for r in sim.steps)
    )
    assert slow_steps == 2  # at 9 and 18
    # in flight at t = 20: worker 0's third step since 18 counts as busy, unpaid
    assert sim.busy[0] == pytest.approx(20.0)


def test_an_asynchronous_scheduler_sees_reports_in_time_order() -> None:
    # ASHA decides at a rung from the values recorded there so far; with the simulator, a
    # worker whose steps are cheap reaches the rung first and sees none of the others
    study = study_with(tf.ASHA(1, 9, 3, mode="stopping"))
    for x in (0.05, 0.1, 0.2, 0.9):
        study.enqueue_trial({"x": x})

    def cost(params, step):
        return 1.0 if params["x"] == 0.9 else 5.0

    sim = simulate(study, SPACE, value, n_workers=4, max_step=9, step_cost=cost, time_limit=6.0)
    # trial 3 (the worst, but the fastest) reaches rung 0 first and, alone there, goes on;
    # at t = 3 it is alone at rung 1 too
    first = sim.steps[0]
    assert (first.trial, first.step, first.time) == (3, 1, 1.0)
    by_trial = steps_by_trial(sim)
    assert by_trial[3] == [1, 2, 3, 4, 5, 6]
    # at t = 5 the others reach rung 0 in worker order and are judged against what is
    # there by then: trial 0 (the best) goes on, trials 1 and 2 are stopped
    assert [(r.trial, r.time) for r in sim.steps if r.time == 5.0 and r.step == 1] == [
        (0, 5.0), (1, 5.0), (2, 5.0)
    ]  # fmt: skip
    states = [t.state for t in study.trials]
    assert states[:4] == [TrialState.RUNNING, TrialState.PRUNED, TrialState.PRUNED,
                          TrialState.RUNNING]  # fmt: skip
    assert [r.trial for r in sim.runs if r.state == "PRUNED"] == [1, 2]


def test_asha_in_stopping_mode_stops_trials_only_at_rung_budgets() -> None:
    budgets = (1, 3, 9, 27)
    sim = simulate(
        study_with(tf.ASHA(1, 27, 3, mode="stopping")), SPACE, value, n_workers=4, max_step=27,
        cost_limit=300.0,
    )  # fmt: skip
    pruned = [r for r in sim.runs if r.state == "PRUNED"]
    complete = [r for r in sim.runs if r.state == "COMPLETE"]
    assert len(pruned) > 20 and complete
    assert {r.last_step for r in pruned} <= set(budgets[:-1])
    assert len({r.last_step for r in pruned}) >= 2
    assert all(r.last_step == 27 for r in complete)
    assert not any(r.state == "PAUSED" or r.resumed for r in sim.runs)
    for trial in sim.study.get_trials([TrialState.PRUNED]):
        assert trial.last_step in budgets
    # stopping mode: every run starts at step 1 and is given the maximum budget
    assert all(r.first_step == 1 and r.budget == 27 for r in sim.runs)


def test_same_seed_gives_the_same_trace_and_another_seed_another() -> None:
    def run(seed: int) -> Simulation:
        def cost(params, step):
            return 0.3 + params["x"]

        return simulate(
            study_with(tf.ASHA(1, 27, 3, mode="promotion"), seed=seed), SPACE, value,
            n_workers=5, max_step=27, step_cost=cost, cost_limit=150.0,
        )  # fmt: skip

    a, b, c = run(1), run(1), run(2)
    assert a.steps == b.steps and a.runs == b.runs and a.busy == b.busy
    assert [t.params for t in a.study.trials] == [t.params for t in b.study.trials]
    assert a.steps != c.steps


def test_promotion_mode_resumes_paused_trials_and_pays_only_the_added_steps() -> None:
    def cost(params, step):
        return float(step)  # later steps cost more: a repaid step would show

    sim = simulate(
        study_with(tf.ASHA(1, 27, 3, mode="promotion")), SPACE, value, n_workers=3,
        max_step=27, step_cost=cost, cost_limit=2000.0,
    )  # fmt: skip
    resumed = [r for r in sim.runs if r.resumed]
    assert len(resumed) >= 5
    assert any(r.state == "PAUSED" for r in sim.runs)
    assert any(r.state == "COMPLETE" for r in sim.runs)
    previous: dict[int, int] = {}
    for run in sim.runs:  # runs in the order they ended, so a trial's runs in order
        # a resumed run starts right after where the trial paused, and goes to its budget
        assert run.first_step == previous.get(run.trial, 0) + 1
        assert run.resumed == (run.trial in previous)
        if run.state in ("PAUSED", "COMPLETE"):
            assert run.last_step == run.budget
        previous[run.trial] = run.last_step
    # each step of each trial is reported, and paid, exactly once
    for steps in steps_by_trial(sim).values():
        assert steps == list(range(1, len(steps) + 1))
    paid = sum(cost(None, r.step) for r in sim.steps)
    assert sim.cost == pytest.approx(paid)
    assert paid == sum(sum(range(r.first_step, r.last_step + 1)) for r in sim.runs)
    retrain = sum(sum(range(1, r.last_step + 1)) for r in sim.runs)
    assert paid < retrain  # what restarting each run from step 1 would have cost


def test_a_worker_retires_when_the_search_is_exhausted() -> None:
    sampler = tf.GridSampler({"x": [0.1, 0.2, 0.3]}, seed=0)
    sim = simulate(
        study_with(tf.NoScheduler(), sampler=sampler), SPACE, value, n_workers=2, max_step=4,
        time_limit=100.0,
    )  # fmt: skip
    assert sim.ended_by == "exhausted"
    assert [t.state for t in sim.study.trials] == [TrialState.COMPLETE] * 3
    assert sim.retired == [8.0, 4.0]  # worker 1 asks at t = 4 (worker 0 took the 3rd)
    assert sim.elapsed == 8.0
    assert sim.busy == [8.0, 4.0]
    assert sim.utilisation == pytest.approx(12.0 / 16.0)


def test_stop_callback_ends_the_run_at_that_report() -> None:
    sim = simulate(
        study_with(), SPACE, value, n_workers=2, max_step=3, time_limit=100.0,
        stop=lambda sim, record: record.time >= 7.0,
    )  # fmt: skip
    assert sim.ended_by == "stop"
    assert sim.steps[-1].time == 7.0 and sim.elapsed == 7.0
    assert sim.steps[-1].worker == 0  # worker 1's report at t = 7 never happened
    assert sim.cost == 13.0


def test_incumbent_is_the_best_at_the_highest_step_reached() -> None:
    sim = Simulation(study_with(), 1)
    sim.steps = [
        StepRecord(1, 1, 0, 0, 1, 5.0),
        StepRecord(2, 2, 0, 1, 1, 4.0),  # better at step 1
        StepRecord(3, 3, 0, 0, 2, 9.0),  # a higher step: incumbent whatever its value
        StepRecord(4, 4, 0, 1, 1, 1.0),  # a lower step: ignored
        StepRecord(5, 5, 0, 2, 2, 9.0),  # a tie at the top step: the earlier stays
        StepRecord(6, 6, 0, 2, 2, 8.0),
    ]
    assert [r.time for r in sim.incumbents()] == [1, 2, 3, 6]
    assert [r.time for r in sim.incumbents("maximize")] == [1, 3]


def test_bad_arguments() -> None:
    study = study_with()
    with pytest.raises(ValueError, match="time_limit or cost_limit"):
        simulate(study, SPACE, value, n_workers=1, max_step=3)
    with pytest.raises(ValueError, match="n_workers"):
        simulate(study, SPACE, value, n_workers=0, max_step=3, time_limit=1)
    with pytest.raises(ValueError, match="positive"):
        simulate(
            study, SPACE, value, n_workers=1, max_step=3, time_limit=1,
            step_cost=lambda params, step: 0.0,
        )  # fmt: skip
