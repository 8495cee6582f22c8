"""The replayed view: races are settled by log order, and replay is incremental."""

from __future__ import annotations

from tuningfork import TrialState
from tuningfork.storage.view import StudyView


def replay(*batches):
    view = StudyView(("minimize",))
    view.apply([(seq, events) for seq, events in enumerate(batches, start=1)])
    return view


def test_first_claim_wins_and_the_loser_never_exists():
    view = replay(
        [{"op": "trial", "state": "RUNNING", "claim": "grid:3"}],
        [{"op": "trial", "state": "RUNNING", "claim": "grid:3"}],
        [{"op": "trial", "state": "RUNNING", "claim": "grid:4"}],
    )
    assert len(view.records) == 2
    assert view.number_by_seq == {1: 0, 3: 1}
    assert view.claims == {"grid:3": 1, "grid:4": 3}


def test_first_start_of_a_waiting_trial_wins():
    view = replay(
        [{"op": "trial", "state": "WAITING", "params": {"x": 1}}],
        [{"op": "start", "n": 0, "worker": "a", "token": "ta"}],
        [{"op": "start", "n": 0, "worker": "b", "token": "tb"}],
    )
    record = view.records[0]
    assert record.state is TrialState.RUNNING
    assert (record.worker, record.token) == ("a", "ta")
    assert not view.waiting and list(view.running) == [0]


def test_first_finish_wins_and_late_reports_are_ignored():
    view = replay(
        [{"op": "trial", "state": "RUNNING"}],
        [{"op": "finish", "n": 0, "state": "FAIL", "reason": "stale"}],
        [{"op": "report", "n": 0, "step": 1, "value": 0.5}],
        [{"op": "finish", "n": 0, "state": "COMPLETE", "values": [1.0]}],
    )
    record = view.records[0]
    assert record.state is TrialState.FAIL and record.reason == "stale"
    assert record.values is None and record.intermediate_values == {}
    assert view.best_number is None and not view.running


def test_unknown_ops_from_newer_versions_are_skipped():
    view = replay([{"op": "trial", "state": "RUNNING"}, {"op": "from-the-future", "n": 0}])
    assert len(view.records) == 1


def test_incremental_replay_equals_full_replay_and_tracks_the_best():
    batches = [[{"op": "trial", "state": "RUNNING"}] for _ in range(5)]
    values = [3.0, 1.0, 2.0, 0.5, 4.0]
    batches += [
        [{"op": "finish", "n": n, "state": "COMPLETE", "values": [v]}] for n, v in enumerate(values)
    ]
    numbered = list(enumerate(batches, start=1))
    full = StudyView(("minimize",))
    full.apply(numbered)
    step = StudyView(("minimize",))
    for item in numbered:
        step.apply([item])
        step.apply([item])  # re-reading an already applied batch changes nothing
    assert [r.frozen() for r in full.records] == [r.frozen() for r in step.records]
    assert full.best_number == step.best_number == 3
    assert full.n_complete == 5 and full.last_seq == len(batches)


def test_frozen_snapshot_is_cached_until_the_trial_changes():
    view = replay([{"op": "trial", "state": "RUNNING"}])
    first = view.records[0].frozen()
    assert view.records[0].frozen() is first
    view.apply([(2, [{"op": "report", "n": 0, "step": 0, "value": 1.0}])])
    second = view.records[0].frozen()
    assert second is not first and second.intermediate_values == {0: 1.0}
    assert first.intermediate_values == {}  # an earlier snapshot never changes


def test_the_preempted_trials_are_the_paused_ones_flagged_preempted():
    view = StudyView(("minimize",))
    steps = [
        ([{"op": "trial", "state": "RUNNING"}, {"op": "trial", "state": "RUNNING"}], []),
        ([{"op": "pause", "n": 0, "sys": {"preempted": True}}], [0]),
        ([{"op": "pause", "n": 1, "sys": {"preempted": False}}], [0]),  # paused at a rung
        ([{"op": "attrs", "n": 1, "sys": {"preempted": True}}], [0, 1]),
        ([{"op": "resume", "n": 0, "sys": {"preempted": False}}], [1]),
        ([{"op": "pause", "n": 0, "sys": {"preempted": True}}], [1, 0]),
        ([{"op": "finish", "n": 1, "state": "PRUNED", "if_state": "PAUSED"}], [0]),
        ([{"op": "attrs", "n": 0, "sys": {"preempted": False}}], []),
    ]
    for seq, (events, preempted) in enumerate(steps, start=1):
        view.apply([(seq, events)])
        assert list(view.preempted) == preempted, events
        assert all(view.records[n].state is TrialState.PAUSED for n in view.preempted)
