"""tuningfork's methods of the multi-fidelity benchmark (`multifidelity.py`).

Each runner is ``run(problem, seed, meter)``: one worker, ask-and-tell on an in-memory
study, a trial trains from where it stands (``trial.last_step + 1``) up to its budget,
reporting each step and paying it to the meter; a resumed trial pays only the added steps,
and DEHB's trials, which start fresh at their budget, pay that budget.
"""

from __future__ import annotations

from collections.abc import Callable

import tuningfork as tf
from tuningfork.testing.mf_functions import Meter, MFProblem

ETA = 3
MIN_STEP = 1

Runner = Callable[[MFProblem, int, Meter], None]


def run_study(study: tf.Study, problem: MFProblem, meter: Meter) -> None:
    """Ask, train to the budget step by step, tell; until the meter says the budget is spent."""
    top = meter.max_step
    while True:
        trial = study.ask(problem.space)
        params = trial.params
        end = min(top, int(trial.budget)) if trial.budget is not None else top
        value = float("nan")
        for step in range((trial.last_step or 0) + 1, end + 1):
            value = problem.evaluate(params, step / top)
            meter.charge(trial.number, params, step, value)
            trial.report(value, step)
            if trial.should_stop():
                study.tell(trial, state="PRUNED")  # recorded PAUSED when paused
                break
        else:
            study.tell(trial, value)


def _runner(make_scheduler: Callable[[int, int], tf.Scheduler], sampler: str) -> Runner:
    """A runner; ``make_scheduler(seed, max_step)`` builds the scheduler."""

    def run(problem: MFProblem, seed: int, meter: Meter) -> None:
        samplers = {"tpe": tf.TPESampler, "gp": tf.GPSampler, "random": tf.RandomSampler}
        chosen = samplers[sampler](seed=seed)
        scheduler = make_scheduler(seed, meter.max_step)
        study = tf.create_study(storage="memory", sampler=chosen, scheduler=scheduler, seed=seed)
        run_study(study, problem, meter)

    return run


TUNINGFORK: dict[str, Runner] = {
    "tf-asha-tpe": _runner(lambda s, r: tf.ASHA(MIN_STEP, r, ETA, mode="stopping"), "tpe"),
    "tf-asha-promotion-tpe": _runner(
        lambda s, r: tf.ASHA(MIN_STEP, r, ETA, mode="promotion"), "tpe"
    ),
    "tf-hyperband": _runner(lambda s, r: tf.Hyperband(MIN_STEP, r, ETA), "random"),
    "tf-hyperband-tpe": _runner(lambda s, r: tf.Hyperband(MIN_STEP, r, ETA), "tpe"),
    "tf-hyperband-gp": _runner(lambda s, r: tf.Hyperband(MIN_STEP, r, ETA), "gp"),
    "tf-bohb": _runner(lambda s, r: tf.BOHB(MIN_STEP, r, ETA, seed=s), "random"),
    "tf-dehb": _runner(lambda s, r: tf.DEHB(MIN_STEP, r, ETA, seed=s), "random"),
}
LABELS = {
    "tf-asha-tpe": "tuningfork ASHA (stopping) + TPE",
    "tf-asha-promotion-tpe": "tuningfork ASHA (promotion) + TPE",
    "tf-hyperband": "tuningfork Hyperband (random)",
    "tf-hyperband-tpe": "tuningfork Hyperband + TPE",
    "tf-hyperband-gp": "tuningfork Hyperband + GP",
    "tf-bohb": "tuningfork BOHB",
    "tf-dehb": "tuningfork DEHB",
}
