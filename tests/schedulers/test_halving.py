"""SHA, ASHA and Hyperband: each algorithm's defining behaviour, step by step with
ask-and-tell, plus pause/resume and promotion claims."""

from __future__ import annotations

import collections
import threading

import pytest

import tuningfork as tf
from tuningfork.schedulers import hyperband_brackets
from tuningfork.storage import InMemoryStorage
from tuningfork.study._ask import _resume
from tuningfork.testing.storages import run_in_processes
from tuningfork.trial import TrialState

SPACE = tf.Space(x=tf.Float(0.0, 1.0))

# Li et al. (2018), Table 1 (R = 81, eta = 3), as in DESIGN.md: bracket s -> [(n_i, r_i)]
TABLE = {
    4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
    3: [(27, 3), (9, 9), (3, 27), (1, 81)],
    2: [(9, 9), (3, 27), (1, 81)],
    1: [(6, 27), (2, 81)],
    0: [(5, 81)],
}


def study_with(scheduler: tf.Scheduler, direction: str = "minimize") -> tf.Study:
    return tf.create_study(
        storage="memory", sampler=tf.RandomSampler(seed=0), scheduler=scheduler,
        direction=direction, seed=0,
    )  # fmt: skip


def run_to_budget(study: tf.Study, trial: tf.Trial, value: float) -> TrialState:
    """Report ``value`` at every step from where the trial stands to its budget."""
    for step in range((trial.last_step or 0) + 1, int(trial.budget) + 1):
        trial.report(value, step)
        if trial.should_stop():
            return study.tell(trial, state="PRUNED").state
    return study.tell(trial, value).state


# -- Hyperband's brackets ----------------------------------------------------------------


def test_hyperband_brackets_reproduce_the_table_of_li_et_al() -> None:
    brackets = hyperband_brackets(1, 81, 3)
    assert [b.s for b in brackets] == [4, 3, 2, 1, 0]
    for bracket in brackets:
        assert list(zip(bracket.sizes, bracket.budgets)) == TABLE[bracket.s]
    assert tf.Hyperband(1, 81, 3).bracket_table == brackets


def test_algorithm_one_sizes_are_available_with_ceil() -> None:
    brackets = hyperband_brackets(1, 81, 3, sizes="ceil")
    assert [b.sizes[0] for b in brackets] == [81, 34, 15, 8, 5]
    assert brackets[1].sizes == (34, 11, 3, 1)


def test_budgets_in_other_units_keep_the_ratio() -> None:
    brackets = hyperband_brackets(2, 162, 3)  # e.g. half-epochs: 1 to 81 epochs
    assert brackets[0].budgets == (2, 6, 18, 54, 162)


def test_hyperband_runs_one_iteration_exactly_as_the_table() -> None:
    """One worker, promotion mode: the runs at each budget of each bracket are the table's."""
    study = study_with(tf.Hyperband(1, 81, 3))
    runs: collections.Counter[tuple[int, int]] = collections.Counter()
    total = sum(n for rungs in TABLE.values() for n, _ in rungs)
    for _ in range(total):
        trial = study.ask(SPACE)
        attrs = trial.frozen().system_attrs
        runs[(attrs["bracket"], int(trial.budget))] += 1
        run_to_budget(study, trial, trial.params["x"])
    expected = {(s, r): n for s, rungs in TABLE.items() for n, r in rungs}
    assert dict(runs) == expected
    assert len(study.get_trials([TrialState.COMPLETE])) == 1 + 1 + 1 + 2 + 5
    # the survivors of each bracket are its best configurations
    best = min(t.params["x"] for t in study.trials if t.system_attrs["bracket"] == 4)
    assert study.best_value <= best + 1e-12 or study.best_trial.params["x"] == best


@pytest.mark.parametrize("mode", ["promotion", "stopping"])
def test_invalid_options_are_clear_errors(mode: str) -> None:
    with pytest.raises(tf.SchedulerError, match="min_budget < max_budget"):
        tf.ASHA(10, 5, 3, mode=mode)
    with pytest.raises(tf.SchedulerError, match="eta"):
        tf.Hyperband(1, 81, 1, mode=mode)
    with pytest.raises(tf.SchedulerError, match="mode"):
        tf.SHA(1, 9, 3, mode="sometimes")


def test_multi_objective_studies_are_refused() -> None:
    study = tf.create_study(storage="memory", directions=["minimize", "minimize"],
                            scheduler=tf.ASHA(1, 9, 3))  # fmt: skip
    with pytest.raises(tf.SchedulerError, match="one objective"):
        study.ask(SPACE)


# -- ASHA --------------------------------------------------------------------------------


def test_asha_promotes_exactly_the_top_third() -> None:
    """Li et al. (2020), Algorithm 2: promote the best paused trial in the top floor(n/eta)."""
    study = study_with(tf.ASHA(1, 9, 3, mode="promotion"))
    values = [5.0, 4.0, 3.0]
    for value in values:
        trial = study.ask(SPACE)
        assert trial.budget == 1 and not trial.resumed
        assert run_to_budget(study, trial, value) is TrialState.PAUSED
    promoted = study.ask(SPACE)  # floor(3/3) = 1: the best of the three, trial 2
    assert promoted.number == 2 and promoted.resumed and promoted.budget == 3
    assert promoted.last_step == 1
    assert run_to_budget(study, promoted, 2.5) is TrialState.PAUSED
    fresh = study.ask(SPACE)  # top-1 already promoted; rung 1 has 1 trial: floor(1/3) = 0
    assert fresh.number == 3 and fresh.budget == 1
    run_to_budget(study, fresh, 6.0)
    for value in (7.0, 8.0):
        run_to_budget(study, study.ask(SPACE), value)
    # rung 0 now has 6 values: the top 2 are trials 2 (3.0, already up) and 1 (4.0)
    second = study.ask(SPACE)
    assert second.number == 1 and second.budget == 3
    assert {t.number for t in study.get_trials([TrialState.PAUSED])} == {0, 3, 4, 5, 2}


def test_asha_resumes_from_the_top_rung_first() -> None:
    study = study_with(tf.ASHA(1, 9, 3, mode="promotion"))
    for value in (1.0, 2.0, 3.0):  # rung 0: trials 0..2; trial 0 promoted to rung 1
        run_to_budget(study, study.ask(SPACE), value)
    run_to_budget(study, study.ask(SPACE), 0.5)  # trial 0 at budget 3
    for value in (4.0, 5.0, 6.0):
        run_to_budget(study, study.ask(SPACE), value)
    # rung 1 has one trial (floor(1/3) = 0: none promotable); rung 0's top 2 are 0 and 1
    trial = study.ask(SPACE)
    assert trial.number == 1 and trial.budget == 3
    run_to_budget(study, trial, 0.7)
    for value in (7.0, 8.0):
        run_to_budget(study, study.ask(SPACE), value)
    # rung 0 has 8 values (top 2: trials 0 and 1, both promoted); rung 1 has 2 values
    trial = study.ask(SPACE)
    assert not trial.resumed and trial.number == 8
    run_to_budget(study, trial, 0.1)  # rung 0 has 9: the top 3 now include trial 8
    up = study.ask(SPACE)
    assert up.number == 8 and up.budget == 3
    late = study.ask(SPACE)  # top 3 of rung 0 (8, 0, 1) all promoted: a new trial
    run_to_budget(study, late, 0.05)  # rung 0: top 3 of 10 are 9, 8, 0 -> 9 promotable
    run_to_budget(study, up, 5.0)  # rung 1: 0.5, 0.7, 5.0 -> trial 0 promotable to rung 2
    top = study.ask(SPACE)
    assert (top.number, top.budget) == (0, 9)  # the higher rung goes first
    assert study.trials[0].system_attrs["rung"] == 2
    low = study.ask(SPACE)
    assert (low.number, low.budget) == (9, 3)


def test_asha_stopping_mode_keeps_the_top_third_of_each_rung() -> None:
    """A trial goes on from a rung iff fewer than max(1, floor(n/eta)) values there beat it."""
    study = study_with(tf.ASHA(1, 9, 3, mode="stopping"))
    outcomes = []
    for value in (5.0, 6.0, 4.0, 7.0, 3.0, 3.5):
        trial = study.ask(SPACE)
        assert trial.budget == 9
        trial.report(value, 1)
        stop = trial.should_stop()
        outcomes.append(stop)
        study.tell(trial, state="PRUNED") if stop else study.tell(trial, value)
    # n=1 keep 1: go; n=2 keep 1, 6 is 2nd: stop; n=3 keep 1, 4 is best: go;
    # n=4 keep 1: stop; n=5 keep 1, 3 is best: go; n=6 keep 2, 3.5 is 2nd: go
    assert outcomes == [False, True, False, True, False, False]
    assert all(t.state is not TrialState.PAUSED for t in study.trials)


def test_asha_stopping_mode_decides_only_at_rung_budgets() -> None:
    study = study_with(tf.ASHA(1, 9, 3, mode="stopping"))
    run_to_budget(study, study.ask(SPACE), 1.0)
    trial = study.ask(SPACE)
    trial.report(5.0, 1)
    assert trial.should_stop()  # worse than the only other value at rung 0
    study.tell(trial, state="PRUNED")
    trial = study.ask(SPACE)
    trial.report(0.5, 1)
    assert not trial.should_stop()
    trial.report(100.0, 2)  # between rungs: no decision
    assert not trial.should_stop()
    trial.report(100.0, 3)  # rung 1, worse than trial 0's 1.0: stop
    assert trial.should_stop()


def test_maximize_is_respected() -> None:
    study = study_with(tf.ASHA(1, 9, 3, mode="promotion"), direction="maximize")
    for value in (0.2, 0.9, 0.5):
        run_to_budget(study, study.ask(SPACE), value)
    assert study.ask(SPACE).number == 1


# -- SHA ---------------------------------------------------------------------------------


def test_sha_waits_for_a_full_rung_before_promoting() -> None:
    study = study_with(tf.SHA(1, 9, 3, n_trials=9))
    handles = [study.ask(SPACE) for _ in range(9)]
    assert all(t.budget == 1 for t in handles)
    values = [9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0]
    for trial, value in zip(handles[:8], values):
        run_to_budget(study, trial, value)
    extra = study.ask(SPACE)  # rung 0 not complete (trial 8 still running): a new instance
    assert not extra.resumed and extra.frozen().system_attrs["instance"] == 1
    run_to_budget(study, handles[8], values[8])
    promoted = [study.ask(SPACE) for _ in range(3)]
    assert [t.number for t in promoted] == [1, 3, 5]  # values 1, 2, 3: the top 9/3
    assert all(t.resumed and t.budget == 3 for t in promoted)
    pruned = {t.number for t in study.get_trials([TrialState.PRUNED])}
    assert pruned == {0, 2, 4, 6, 7, 8}
    run_to_budget(study, promoted[0], 0.9)
    run_to_budget(study, promoted[1], 0.1)
    nxt = study.ask(SPACE)  # rung 1 waits for trial 5
    assert not nxt.resumed
    run_to_budget(study, promoted[2], 0.5)
    final = study.ask(SPACE)
    assert final.number == 3 and final.budget == 9
    assert run_to_budget(study, final, 0.05) is TrialState.COMPLETE


def test_sha_stopping_mode_stops_continues_or_waits() -> None:
    """n = 9 at rung 0, 3 go on: stop when 3 are already better, go on when at most 2 can
    be better even if every pending trial beats it, else pause until the rung is full."""
    study = study_with(tf.SHA(1, 9, 3, n_trials=9, mode="stopping"))
    decisions = []
    for value in (1.0, 2.0, 3.0, 4.0):
        trial = study.ask(SPACE)
        trial.report(value, 1)
        decisions.append((trial.should_stop(), trial.paused))
        study.tell(trial, state="PRUNED")
    # 1st: 0 better + 8 pending >= 3: wait. 4th: 3 better: stop.
    assert decisions == [(True, True), (True, True), (True, True), (True, False)]
    for value in (0.1, 0.2, 0.3, 0.4, 0.5):
        trial = study.ask(SPACE)
        trial.report(value, 1)
        trial.should_stop()
        study.tell(trial, state="PRUNED")
    # rung complete: top 3 are trials 4, 5, 6 (0.1, 0.2, 0.3), all waiting; others pruned
    resumed = [study.ask(SPACE) for _ in range(3)]
    assert [t.number for t in resumed] == [4, 5, 6]
    assert all(t.budget == 9 for t in resumed)
    states = {t.number: t.state for t in study.trials[:9]}
    assert [n for n, s in states.items() if s is TrialState.PRUNED] == [0, 1, 2, 3, 7, 8]


# -- pause and resume ---------------------------------------------------------------------


def test_paused_trial_resumes_where_it_stopped_with_its_checkpoint(tmp_path) -> None:
    study = tf.create_study(storage="memory", scheduler=tf.ASHA(1, 9, 3, mode="promotion"),
                            artifact_root=tmp_path, seed=1)  # fmt: skip
    runs = []

    def objective(trial: tf.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        ckpt = trial.checkpoint_dir / "state.txt"
        start = int(ckpt.read_text()) + 1 if trial.resumed else 1
        assert start == (trial.last_step or 0) + 1
        runs.append((trial.number, start, trial.budget))
        for step in range(start, 10):
            ckpt.write_text(str(step))
            trial.report(x + 1 / step, step)
            if trial.should_stop():
                raise tf.TrialPruned()
        return x

    study.optimize(objective, n_trials=30)
    resumed = [r for r in runs if r[1] > 1]
    assert resumed and all(budget in (3, 9) for _, _, budget in resumed)
    for t in study.trials:
        assert sorted(t.intermediate_values) == list(range(1, len(t.intermediate_values) + 1))
    assert study.get_trials([TrialState.COMPLETE])
    assert all(t.last_step == 9 for t in study.get_trials([TrialState.COMPLETE]))


def test_objective_that_returns_at_its_budget_is_paused() -> None:
    study = study_with(tf.ASHA(1, 9, 3, mode="promotion"))
    trial = study.ask(SPACE)
    frozen = study.tell(trial, 0.3)
    assert frozen.state is TrialState.PAUSED and frozen.intermediate_values == {1: 0.3}


def test_tell_paused_directly_and_not_twice() -> None:
    study = study_with(tf.ASHA(1, 9, 3, mode="promotion"))
    trial = study.ask(SPACE)
    trial.report(1.0, 1)
    assert study.tell(trial, state="PAUSED").state is TrialState.PAUSED
    with pytest.raises(tf.TrialStateError, match="PAUSED"):
        study.tell(trial, 1.0)


def test_one_promotion_is_claimed_by_one_worker_only() -> None:
    """Two handles race for one promotable trial: log order gives it to the first."""
    storage = InMemoryStorage()
    scheduler = tf.ASHA(1, 9, 3, mode="promotion")
    first = tf.create_study("race", storage=storage, scheduler=scheduler, seed=0)
    second = tf.load_study("race", storage=storage, scheduler=scheduler)
    for value in (3.0, 2.0, 1.0):
        run_to_budget(first, first.ask(SPACE), value)
    second.get_trials()  # read the log
    decided = second.scheduler.assign(second.reader, SPACE)  # second decides on a stale view...
    won = first.ask(SPACE)  # ...first resumes the trial meanwhile
    assert won.resumed and won.number == 2 and decided.resume == 2
    lost = _resume(second, decided)
    assert lost is None
    nxt = second.ask(SPACE)
    assert not nxt.resumed and nxt.number == 3


def test_many_threads_never_resume_a_trial_twice(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    study = tf.create_study("t", storage=url, scheduler=tf.ASHA(1, 27, 3, mode="promotion"))
    active: set[int] = set()
    lock = threading.Lock()

    def objective(trial: tf.Trial) -> float:
        with lock:
            assert trial.number not in active, f"trial {trial.number} runs twice at once"
            active.add(trial.number)
        try:
            x = trial.suggest_float("x", 0.0, 1.0)
            for step in range((trial.last_step or 0) + 1, 28):
                trial.report(x + 1 / step, step)
                if trial.should_stop():
                    raise tf.TrialPruned()
            return x
        finally:
            with lock:
                active.discard(trial.number)

    study.optimize(objective, n_trials=120, n_jobs=4)
    for t in study.trials:
        assert sorted(t.intermediate_values) == list(range(1, len(t.intermediate_values) + 1))
    assert not study.get_trials([TrialState.RUNNING, TrialState.FAIL])


def _resume_worker(url: str, n_runs: int) -> list[tuple[int, int, int]]:
    study = tf.load_study("p", storage=url, scheduler=tf.ASHA(1, 9, 3, mode="promotion"))
    runs = []

    def objective(trial: tf.Trial) -> float:
        runs.append((trial.number, (trial.last_step or 0) + 1, trial.frozen().worker))
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range((trial.last_step or 0) + 1, 10):
            trial.report(x + 1 / step, step)
            if trial.should_stop():
                raise tf.TrialPruned()
        return x

    study.optimize(objective, n_trials=n_runs)
    return runs


@pytest.mark.slow
def test_processes_resume_each_others_trials(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    tf.create_study("p", storage=url, scheduler=tf.ASHA(1, 9, 3, mode="promotion"))
    results = run_in_processes(_resume_worker, [(url, 25)] * 3)
    runs = [run for result in results for run in result]
    starts = collections.Counter((number, start) for number, start, _ in runs)
    assert max(starts.values()) == 1, "a trial was resumed at the same step twice"
    study = tf.load_study("p", storage=url)
    for t in study.trials:
        assert sorted(t.intermediate_values) == list(range(1, len(t.intermediate_values) + 1))
    resumed = [run for run in runs if run[1] > 1]
    assert resumed


class _Proposing(tf.ASHA):
    """ASHA that proposes x = 2.0 for every new trial (outside [0, 1] in the test below)."""

    def assign(self, study, space):
        import dataclasses

        return dataclasses.replace(super().assign(study, space), params={"x": 2.0, "y": 0.5})


def test_scheduler_proposals_outside_the_range_fall_back_to_the_sampler() -> None:
    study = study_with(_Proposing(1, 9, 3))
    trial = study.ask()
    x = trial.suggest_float("x", 0.0, 1.0)  # the range changed since the proposal was made
    y = trial.suggest_float("y", 0.0, 1.0)
    assert 0.0 <= x <= 1.0 and y == 0.5
    trial = study.ask(tf.Space(x=tf.Float(0.0, 1.0), y=tf.Float(0.0, 1.0)))
    assert 0.0 <= trial.params["x"] <= 1.0 and trial.params["y"] == 0.5


def test_any_of_keeps_promotions_and_adds_a_threshold() -> None:
    study = study_with(
        tf.AnyOf(tf.ASHA(1, 9, 3, mode="promotion"), tf.ThresholdStopping(upper=5.0))
    )
    for value in (3.0, 2.0, 1.0):
        assert run_to_budget(study, study.ask(SPACE), value) is TrialState.PAUSED
    promoted = study.ask(SPACE)
    assert promoted.resumed and promoted.number == 2 and promoted.budget == 3
    assert run_to_budget(study, promoted, 9.0) is TrialState.PRUNED  # above the threshold
