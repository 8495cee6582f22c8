"""PBT replay from Python: `PBTReplay` along `replay_schedule` retrains a member's model
(its final value to 1e-9 on a deterministic objective), and `lineage` names the copies."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

import tuningfork as tf
from tuningfork.schedulers.pbt import lineage, replay_schedule
from tuningfork.trial import schedule_of

MAX_BUDGET = 12


def toy(trial: tf.Trial) -> float:
    """Jaderberg et al. (2017)'s toy: gradient steps on Q_hat(theta | h), scored by
    Q(theta) = 1.2 - |theta|^2; the state (theta) lives in the checkpoint."""
    h0 = trial.suggest_float("h0", 0.0, 1.0)
    h1 = trial.suggest_float("h1", 0.0, 1.0)
    path = trial.checkpoint_dir / "theta.json"
    theta = json.loads(path.read_text()) if trial.resumed else [0.9, 0.9]
    step = trial.last_step or 0
    q = 0.0
    while step < trial.budget:
        step += 1
        theta = [theta[0] * (1 - 0.1 * h0), theta[1] * (1 - 0.1 * h1)]
        q = 1.2 - (theta[0] ** 2 + theta[1] ** 2)
        if step % 2 == 0 or step == trial.budget:
            path.write_text(json.dumps(theta))  # before the report, which commits it
            trial.report(q, step)
            if trial.should_stop():
                raise tf.TrialPruned()
    return q


def segment(trial: tf.Trial) -> float:
    """theta += h per step up to step 4, then -= 2h: a large h is best at step 4 and worst
    at step 8. Reports only at the budget (one report per run)."""
    h = trial.suggest_float("h", 0.0, 1.0)
    path = trial.checkpoint_dir / "theta.json"
    theta = json.loads(path.read_text()) if trial.resumed else 0.0
    step = trial.last_step or 0
    while step < trial.budget:
        step += 1
        theta += h if step <= 4 else -2 * h
    path.write_text(json.dumps(theta))
    trial.report(theta, step)
    return theta


def replay(
    study: tf.Study, number: int, objective: Callable[[tf.Trial], float] = toy
) -> tf.FrozenTrial:
    schedule = replay_schedule(study, number)
    again = tf.create_study(
        direction=study.direction, scheduler=tf.PBTReplay(schedule, max_budget=MAX_BUDGET)
    )
    again.optimize(objective, show_progress_bar=False)
    (trial,) = again.trials
    assert trial.state is tf.TrialState.COMPLETE and trial.last_step == MAX_BUDGET
    assert schedule_of(trial) == schedule  # the replay records what it ran
    return trial


@pytest.mark.parametrize("synchronous", [False, True])
def test_replay_retrains_every_members_model(synchronous):
    scheduler = tf.PBT(4, 4, MAX_BUDGET, synchronous=synchronous, seed=2)
    study = tf.create_study(direction="maximize", scheduler=scheduler, seed=5)
    study.optimize(toy, show_progress_bar=False)
    trials = study.trials
    assert [t.state for t in trials] == [tf.TrialState.COMPLETE] * 4
    copies = [t for t in trials if len(replay_schedule(study, t.number)) > 1]
    assert copies, "no member copied another: the schedule would not be tested"
    for trial in trials:
        assert replay(study, trial.number).value == pytest.approx(trial.value, abs=1e-9)
        # one lineage entry per change of the schedule after step 0
        steps = sorted(entry["step"] for entry in lineage(study, trial.number))
        assert steps == [step for step, _ in replay_schedule(study, trial.number)[1:]]


def test_a_replay_with_the_wrong_schedule_differs():
    """The check above has teeth: changing one value of the schedule changes the model."""
    study = tf.create_study(direction="maximize", scheduler=tf.PBT(4, 4, MAX_BUDGET, seed=2))
    study.optimize(toy, show_progress_bar=False)
    best = study.best_trial
    schedule = replay_schedule(study, best.number)
    schedule[0][1]["h0"] = schedule[0][1]["h0"] / 2
    again = tf.create_study(
        direction="maximize", scheduler=tf.PBTReplay(schedule, max_budget=MAX_BUDGET)
    )
    again.optimize(toy, show_progress_bar=False)
    assert abs(again.trials[0].value - best.value) > 1e-6


def _run(study: tf.Study, trial: tf.Trial) -> None:
    study.tell(trial, segment(trial))


def _asynchronous_study(seed: int, quantile: float, values: tuple[float, ...]) -> tf.Study:
    study = tf.create_study(
        direction="maximize",
        scheduler=tf.PBT(4, 4, MAX_BUDGET, quantile_fraction=quantile, seed=seed),
        seed=0,
    )
    for h in values:
        study.enqueue_trial({"h": h})
    return study


def test_replay_of_a_copy_of_a_donor_that_exploited_later():
    """Workers 1-3 run members 0-2 ahead while member 3 is slow (asynchronous mode):
    member 0 (h=0.9) is best at step 4 and worst at step 8, where it copies member 1
    (h=0.5). Then member 3 reaches step 4, worst there, and copies member 0's checkpoint
    of step 4, trained with h=0.9 -- its schedule must start with h=0.9, not 0.5."""
    study = _asynchronous_study(0, 0.25, (0.9, 0.5, 0.3, 0.1))
    members = [study.ask() for _ in range(4)]
    for trial in members[:3]:
        _run(study, trial)
    while not study.trials[0].system_attrs["pbt"].get("exploits"):
        _run(study, study.ask())  # the three go on to step 8; member 0 copies there
    _run(study, members[3])
    study.optimize(segment, show_progress_bar=False)
    copy = study.trials[3].system_attrs["pbt"]["exploits"][0]
    assert (copy["step"], copy["donor"]) == (4, 0)
    assert copy["donor_params"] == {"h": 0.9}  # what trained member 0 up to step 4
    assert replay(study, 3, segment).value == pytest.approx(study.trials[3].value, abs=1e-9)


def test_lineage_ignores_a_donors_copy_at_the_same_step():
    """Member 0 reaches step 4 after member 1 only and copies it there (ranked against
    two); members 2 and 3 reach step 4 later and member 3 copies member 0's checkpoint of
    step 4: its lineage is member 0 at step 4, and nothing before (member 0's own copy at
    step 4 replaced its weights after that checkpoint)."""
    study = _asynchronous_study(1, 0.5, (0.5, 0.9, 0.3, 0.1))
    members = [study.ask() for _ in range(4)]
    _run(study, members[1])
    _run(study, members[0])
    _run(study, study.ask())  # member 0 at step 4: copies member 1, trains to 8
    _run(study, members[2])
    _run(study, members[3])
    study.optimize(segment, show_progress_bar=False)
    exploits = study.trials[0].system_attrs["pbt"]["exploits"]
    assert (exploits[0]["step"], exploits[0]["donor"]) == (4, 1)
    chain = [(e["recipient"], e["donor"], e["step"]) for e in lineage(study, 3)]
    assert chain[0] == (3, 0, 4)
    assert chain == [(3, 0, 4)]
