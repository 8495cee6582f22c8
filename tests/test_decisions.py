"""A scheduler's decisions are events in the log, beside the report they answer, and the
final state of a trial follows them (not flags on a handle)."""

from __future__ import annotations

import tuningfork as tf
from tuningfork import Decision, TrialState


class StopAt(tf.Scheduler):
    def __init__(self, step: int, answer: Decision) -> None:
        self.step = step
        self.answer = answer

    def decide(self, study, trial, step, value):
        return self.answer if step >= self.step else Decision.CONTINUE


def _events(study: tf.Study) -> list[dict]:
    study_id = study.storage.get_study(study.name).study_id
    return [e for _, batch in study.storage.read(study_id, 0) for e in batch]


def test_a_stop_is_recorded_with_the_report_and_seen_by_every_handle(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    study = tf.create_study("d", storage=url, scheduler=StopAt(2, Decision.STOP))
    trial = study.ask()
    trial.report(1.0, 1)
    assert trial.decision is Decision.CONTINUE and not trial.should_stop()
    trial.report(1.0, 2)
    decides = [e for e in _events(study) if e["op"] == "decide"]
    assert decides == [{"op": "decide", "n": 0, "decision": "stop", "step": 2}]
    other = tf.load_study("d", storage=url)
    assert other.reader.trial(0).state is TrialState.RUNNING
    assert trial.decision is Decision.STOP and trial.should_stop()


def test_the_final_state_follows_the_last_decision():
    study = tf.create_study(storage="memory", scheduler=StopAt(1, Decision.STOP))
    trial = study.ask()
    trial.report(1.0, 1)  # the objective never asks should_stop and returns a value
    assert study.tell(trial, 0.5).state is TrialState.PRUNED
    study = tf.create_study(storage="memory", scheduler=StopAt(1, Decision.PAUSE))
    trial = study.ask()
    trial.report(1.0, 1)
    assert trial.paused
    assert study.tell(trial, state="PRUNED").state is TrialState.PAUSED


def test_a_trial_can_pause_itself_with_a_reason():
    study = tf.create_study(storage="memory")
    trial = study.ask()
    trial.report(1.0, 1)
    trial.pause("preempted")
    assert trial.paused and trial.decision is Decision.PAUSE
    told = study.tell(trial, state="PRUNED")
    assert told.state is TrialState.PAUSED and told.reason == "preempted"
    resumed = study.ask()  # a trial paused as preempted is resumed first, at its budget
    assert resumed.number == trial.number and resumed.resumed
    assert resumed.decision is Decision.CONTINUE  # a resumed run starts undecided


def test_continue_answers_are_not_written():
    study = tf.create_study(storage="memory", scheduler=tf.MedianStopping(n_startup_trials=99))

    def objective(trial):
        for step in range(1, 4):
            trial.report(1.0, step)
        return 1.0

    study.optimize(objective, n_trials=2)
    assert not [e for e in _events(study) if e["op"] == "decide"]


def test_a_signal_just_after_a_rung_pause_does_not_make_it_a_preemption():
    """The scheduler paused the trial at its rung; a signal then marks the handle
    preempted before the tell. The log says why it paused: at the rung, so it is promoted
    as usual later, not resumed at the same budget as a preempted trial would be."""
    study = tf.create_study(storage="memory", scheduler=StopAt(1, Decision.PAUSE))
    trial = study.ask()
    trial.report(1.0, 1)
    assert trial.should_stop()
    trial.preempted = True  # what optimize()'s signal handler does to running trials
    told = study.tell(trial, state="PRUNED")
    assert told.state is TrialState.PAUSED and told.reason is None
    assert "preempted" not in told.system_attrs
