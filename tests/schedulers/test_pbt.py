"""PBT and PB2: boundaries, exploit by committed checkpoints (bytes checked by hash,
with workers racing), explore inside every distribution, synchronous generations that
never deadlock, failures replaced, and a run rebuilt from the log after every worker was
killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tuningfork as tf
from tuningfork.exceptions import SchedulerError, WaitForTrials
from tuningfork.schedulers._explore import explore, perturb, resample
from tuningfork.schedulers.pbt import lineage, replay_schedule
from tuningfork.space import Categorical, Distribution, Float, Int
from tuningfork.study import directory_hash
from tuningfork.testing import SchedulerContract
from tuningfork.trial import Trial, TrialState

SRC = str(Path(tf.__file__).resolve().parents[1])


def toy(trial: Trial, every: int = 1) -> float:
    """The PBT paper's toy (Jaderberg et al. 2017, Fig. 2): gradient ascent on
    Qhat = 1.2 - (h0 t0^2 + h1 t1^2), reporting Q = 1.2 - |t|^2; theta checkpointed."""
    h = [trial.suggest_float("h0", 0.0, 1.0), trial.suggest_float("h1", 0.0, 1.0)]
    path = trial.checkpoint_dir / "theta.json"
    theta = json.loads(path.read_text()) if trial.resumed else [0.9, 0.9]
    step = trial.last_step or 0
    assert trial.budget is not None
    q = 1.2 - (theta[0] ** 2 + theta[1] ** 2)
    while step < trial.budget:
        step += 1
        theta = [t - 0.02 * hi * t for t, hi in zip(theta, h)]
        q = 1.2 - (theta[0] ** 2 + theta[1] ** 2)
        if step % every == 0 or step == trial.budget:
            path.write_text(json.dumps(theta))
            trial.report(q, step)
            if trial.should_stop():
                raise tf.TrialPruned()
    return q


def pbt_study(scheduler: tf.Scheduler, storage: str = "memory", **options: Any) -> tf.Study:
    return tf.create_study(direction="maximize", scheduler=scheduler, storage=storage, **options)


# -- the schedule of pauses ------------------------------------------------------------------


def test_members_pause_at_every_boundary_and_all_complete_at_max_budget() -> None:
    study = pbt_study(tf.PBT(4, perturbation_interval=5, max_budget=23, seed=1), seed=1)
    study.optimize(toy)
    members = [t for t in study.trials if "pbt" in t.system_attrs]
    assert len(members) == 4 and all(t.state is TrialState.COMPLETE for t in members)
    assert all(t.last_step == 23 for t in members)
    for t in members:  # committed at each boundary: 5, 10, 15, 20 (and 23, the end)
        assert sorted(int(s) for s in t.system_attrs["checkpoints"]) == [5, 10, 15, 20, 23]
    assert any(t.system_attrs["pbt"].get("exploits") for t in members)


def test_burn_in_moves_the_first_boundary_and_no_exploit_comes_before_it() -> None:
    scheduler = tf.PBT(4, perturbation_interval=4, max_budget=30, burn_in=10, seed=2)
    assert scheduler.first_boundary() == 12
    assert [scheduler.next_budget(s) for s in (0, 11, 12, 27, 28)] == [12, 12, 16, 28, 30]
    study = pbt_study(scheduler, seed=2)
    study.optimize(toy)
    steps = [e["step"] for t in study.trials for e in t.system_attrs["pbt"].get("exploits", ())]
    assert steps and min(steps) >= 12


def test_bad_options_are_refused_with_the_option_named() -> None:
    cases = [
        ({"population_size": 1}, "population_size"),
        ({"quantile_fraction": 0.7}, "quantile_fraction"),
        ({"perturbation_factors": (1.0,)}, "perturbation_factors"),
        ({"explore": "mutate"}, "explore"),
        ({"hyperparams": "lr"}, "hyperparams"),
        ({"perturbation_interval": 100, "max_budget": 100}, "perturbation_interval"),
    ]
    for options, name in cases:
        with pytest.raises(SchedulerError) as raised:
            tf.PBT(**options)
        assert raised.value.option == name


def test_a_multi_objective_study_is_refused() -> None:
    study = tf.create_study(directions=["minimize", "minimize"], scheduler=tf.PBT(2, 2, 6))
    with pytest.raises(SchedulerError, match="one objective"):
        study.ask()


# -- exploit: ranking, comparable steps, generations ------------------------------------------


def _run_to(study: tf.Study, trial: Trial, value: float) -> None:
    """Train ``trial`` to its budget by hand: save a checkpoint, report, tell."""
    assert trial.budget is not None
    trial.suggest_float("h0", 0.0, 1.0)
    (trial.checkpoint_dir / "w.txt").write_text(f"{trial.number}@{trial.budget}")
    trial.report(value, int(trial.budget))
    study.tell(trial, value)


def test_asynchronous_ranks_a_member_against_members_at_the_same_step_only() -> None:
    study = pbt_study(tf.PBT(4, perturbation_interval=2, max_budget=6, seed=0), seed=0)
    trials = [study.ask() for _ in range(4)]
    _run_to(study, trials[0], 0.1)  # the worse of the two at step 2
    _run_to(study, trials[1], 0.9)
    resumed = study.ask()  # members 2 and 3 are still training: not ranked
    assert resumed.number == 0 and resumed.budget == 4
    exploit = resumed.frozen().system_attrs["pbt"]["exploits"][-1]
    assert (exploit["donor"], exploit["step"]) == (1, 2)
    assert (resumed.checkpoint_dir / "w.txt").read_text() == "1@2"  # the donor's bytes
    assert resumed.params == exploit["after"] and resumed.schedule[-1] == (2, exploit["after"])
    assert resumed.schedule[0] == (0, study.trials[1].params)  # the donor's values before


def test_synchronous_waits_for_the_generation_then_ranks_all_members() -> None:
    study = pbt_study(tf.PBT(4, 2, 6, synchronous=True, quantile_fraction=0.25, seed=0), seed=0)
    trials = [study.ask() for _ in range(4)]
    _run_to(study, trials[0], 0.5)
    _run_to(study, trials[1], 0.9)
    with pytest.raises(WaitForTrials):
        study.ask()  # members 2 and 3 have not reached step 2
    _run_to(study, trials[2], 0.1)  # the worst of the generation
    _run_to(study, trials[3], 0.7)
    order = [study.ask() for _ in range(4)]
    exploited = {t.number: t.frozen().system_attrs["pbt"].get("exploits") for t in order}
    assert [n for n, e in exploited.items() if e] == [2]  # bottom 1 of 4 copies the top 1
    assert exploited[2][-1]["donor"] == 1


def test_a_member_that_committed_nothing_is_never_a_donor() -> None:
    study = pbt_study(tf.PBT(2, 2, 6, seed=0), seed=0)
    a, b = study.ask(), study.ask()
    a.suggest_float("h0", 0.0, 1.0)
    b.suggest_float("h0", 0.0, 1.0)
    with pytest.warns(UserWarning, match="no checkpoint was committed"):
        b.report(0.9, 2)  # the best, but its checkpoint directory is empty
    study.tell(b, 0.9)
    _run_to(study, a, 0.1)
    resumed = study.ask()
    assert resumed.number == 0 and not resumed.frozen().system_attrs["pbt"].get("exploits")
    assert (resumed.checkpoint_dir / "w.txt").read_text() == "0@2"  # its own checkpoint


def test_a_checkpoint_not_saved_again_before_the_report_is_not_committed() -> None:
    study = pbt_study(tf.PBT(2, 2, 8, seed=0), seed=0)
    trial = study.ask()
    trial.suggest_float("h0", 0.0, 1.0)
    path = trial.checkpoint_dir / "w.txt"
    path.write_text("first")
    os.utime(path, (time.time() - 60, time.time() - 60))  # as if saved a while ago
    trial.report(0.5, 2)
    study.tell(trial, 0.5)
    other = study.ask()
    _run_to(study, other, 0.4)
    again = study.ask()
    assert again.number == 0
    with pytest.warns(UserWarning, match="same files as at an earlier report"):
        again.report(0.6, 4)  # the files of step 2: an older checkpoint
    assert list(again.frozen().system_attrs["checkpoints"]) == ["2"]


def test_the_copy_is_verified_by_its_hash() -> None:
    study = pbt_study(tf.PBT(2, 2, 6, seed=0), seed=0)
    a, b = study.ask(), study.ask()
    _run_to(study, a, 0.1)
    _run_to(study, b, 0.9)
    commit = study.trials[1].system_attrs["checkpoints"]["2"]
    snapshot = study.artifact_dir / "committed" / commit["path"]
    assert directory_hash(snapshot) == commit["sha256"]
    (snapshot / "w.txt").write_text("tampered")
    with pytest.warns(UserWarning, match="could not copy its starting checkpoint"):
        trial = study.ask()  # the copy fails its hash: member 0 fails and is replaced
    assert study.trials[0].state is TrialState.FAIL
    assert "hash" in (study.trials[0].reason or "")
    assert trial.number == 2 and trial.frozen().system_attrs["pbt"]["replaces"] == 0


# -- explore stays inside every distribution --------------------------------------------------

DISTRIBUTIONS = [
    Float(0.0, 1.0),
    Float(-2.0, 3.0),
    Float(1e-5, 1.0, log=True),
    Float(0.0, 1.0, step=0.1),
    Float(-1.0, 1.0, step=0.25),
    Float(2.5, 2.5),
    Int(0, 10),
    Int(-5, 5, step=5),
    Int(1, 1024, log=True),
    Int(3, 3),
    Categorical(["a", "b", "c"]),
    Categorical([True, False]),
    Categorical([1, 2.5, None]),
]


@settings(max_examples=400, deadline=None)
@given(
    which=st.integers(0, len(DISTRIBUTIONS) - 1),
    u=st.floats(0.0, 1.0),
    factors=st.lists(
        st.floats(0.01, 100.0).filter(lambda f: abs(f - 1) > 1e-9), min_size=1, max_size=3
    ),
    p=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_perturbed_values_are_always_in_the_distribution(
    which: int, u: float, factors: list[float], p: float, seed: int
) -> None:
    dist = DISTRIBUTIONS[which]
    value = dist.from_unit(u)
    rng = np.random.default_rng(seed)
    for _ in range(5):  # perturb what a perturbation gave, as generations do
        value = perturb(value, dist, rng, factors, p)
        assert dist.contains(value), (dist, value)


def test_perturb_multiplies_by_the_factors_and_moves_ints_and_choices() -> None:
    rng = np.random.default_rng(0)
    seen = {perturb(0.5, Float(0.0, 1.0), rng, (0.8, 1.2), 0.0) for _ in range(50)}
    assert seen == {0.4, 0.6}
    assert {perturb(1, Int(0, 10), rng, (0.8, 1.2), 0.0) for _ in range(50)} == {0, 2}
    dist = Categorical(["a", "b", "c"])
    assert {perturb("b", dist, rng, (0.8, 1.2), 0.0) for _ in range(50)} == {"a", "c"}
    assert perturb(1.0, Float(0.0, 1.0), np.random.default_rng(1), (1.2,), 0.0) == 1.0  # clip
    draws = [resample(Float(1e-4, 1.0, log=True), rng) for _ in range(2000)]
    assert 0.4 < np.mean(np.log10(draws) < -2) < 0.6  # log-uniform: half below 1e-2


def test_explore_keeps_the_names_it_is_not_given() -> None:
    dists: dict[str, Distribution] = {"lr": Float(1e-4, 1.0, log=True), "layers": Int(1, 4)}
    params = {"lr": 0.01, "layers": 3}
    rng = np.random.default_rng(3)
    new = explore(
        params, dists, ["lr"], rng, mode="resample", factors=(0.8, 1.2), resample_probability=0
    )
    assert new["layers"] == 3 and new["lr"] != 0.01


def test_exploited_values_in_a_study_are_inside_their_distributions() -> None:
    def objective(trial: Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        width = trial.suggest_int("width", 8, 64, step=8)
        act = trial.suggest_categorical("act", ["relu", "tanh", "gelu"])
        drop = trial.suggest_float("drop", 0.0, 0.5, step=0.05)
        (trial.checkpoint_dir / "w").write_text(str(trial.last_step))
        value = -abs(np.log10(lr) + 2) - abs(width - 32) / 32 - drop + (act == "gelu")
        trial.report(value + 0.01 * (trial.budget or 0), int(trial.budget or 0))
        return value

    study = pbt_study(tf.PBT(6, 1, 12, resample_probability=0.3, seed=5), seed=5)
    study.optimize(objective)
    exploits = [e for t in study.trials for e in t.system_attrs["pbt"].get("exploits", ())]
    assert len(exploits) > 10
    for trial in study.trials:
        for name, value in trial.params.items():
            assert trial.distributions[name].contains(value), (name, value)
        for exploit in trial.system_attrs["pbt"].get("exploits", ()):
            for name, value in exploit["after"].items():
                assert trial.distributions[name].contains(value), (name, value)


# -- workers racing: the bytes copied are the donor's, at the step named ---------------------

RACE_OBJECTIVE = textwrap.dedent(
    """
    import json, os, time
    from pathlib import Path
    import tuningfork as tf

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        ledger = Path(os.environ["PBT_LEDGER"])
        path = trial.checkpoint_dir / "weights.bin"
        step = trial.last_step or 0
        if trial.resumed:
            data = path.read_bytes()
            exploits = trial.frozen().system_attrs["pbt"].get("exploits", [])
            source = trial.number
            if exploits and exploits[-1]["step"] == step and trial.params == exploits[-1]["after"]:
                source = exploits[-1]["donor"]
            expected = (ledger / f"{source}-{step}.bin").read_bytes()
            if data != expected:
                (ledger / f"MISMATCH-{trial.number}-{step}").write_text(str(source))
        value = 0.0
        while step < trial.budget:
            while (ledger / "HOLD").exists():  # a test holds every run mid-interval
                time.sleep(0.05)
            step += 1
            time.sleep(0.002)
            value = x * step + (trial.number % 3) * 0.1
        data = os.urandom(256) + f"{trial.number}-{step}".encode()
        path.write_bytes(data)
        (ledger / f"{trial.number}-{step}.bin").write_bytes(data)
        trial.report(value, step)
        if trial.should_stop():
            raise tf.TrialPruned()
        return value
    """
)


def _write_race_objective(tmp_path: Path) -> Path:
    module = tmp_path / "race_objective.py"
    module.write_text(RACE_OBJECTIVE)
    (tmp_path / "ledger").mkdir()
    return module


def _check_ledger(study: tf.Study, ledger: Path, shared: Counter[tuple[int, int]]) -> int:
    """No resumed member read bytes other than those it should: the donor's at the
    exploit's step, or its own last ones; the number of exploits checked. ``shared``
    counts the recipients of each (donor, step)."""
    assert not list(ledger.glob("MISMATCH-*")), [p.name for p in ledger.glob("MISMATCH-*")]
    exploits = 0
    for trial in study.trials:
        for exploit in trial.system_attrs["pbt"].get("exploits", ()):
            exploits += 1
            shared[(exploit["donor"], exploit["step"])] += 1
            donor = study.trials[exploit["donor"]]
            commit = donor.system_attrs["checkpoints"][str(exploit["step"])]
            assert commit["sha256"] == exploit["sha256"]
            snapshot = study.artifact_dir / "committed" / commit["path"]
            expected = ledger / f"{donor.number}-{exploit['step']}.bin"
            assert (snapshot / "weights.bin").read_bytes() == expected.read_bytes()
    return exploits


def test_threads_racing_copy_exactly_the_donors_committed_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _write_race_objective(tmp_path)
    monkeypatch.setenv("PBT_LEDGER", str(tmp_path / "ledger"))
    monkeypatch.syspath_prepend(str(tmp_path))
    objective = __import__(module.stem).objective
    url = f"sqlite:///{tmp_path / 'race.db'}"
    study = pbt_study(
        tf.PBT(8, 2, 20, quantile_fraction=0.5, seed=3, keep_checkpoints=True), storage=url, seed=3
    )
    study.optimize(objective, n_jobs=4)
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    shared: Counter[tuple[int, int]] = Counter()
    assert _check_ledger(study, tmp_path / "ledger", shared) > 10
    assert max(shared.values()) >= 2  # two recipients copied one commit, each its own way


WORKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    import tuningfork as tf
    from race_objective import objective
    study = tf.load_study("race", storage=sys.argv[1])
    study.heartbeat_interval = 0.2
    study.grace_period = float(sys.argv[2])
    study.optimize(objective, n_jobs=2)
    """
)


def _workers(url: str, tmp_path: Path, n: int, grace: float = 30.0) -> list[subprocess.Popen]:
    env = {**os.environ, "PBT_LEDGER": str(tmp_path / "ledger"), "PYTHONPATH": SRC}
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    return [
        subprocess.Popen(
            [sys.executable, str(script), url, str(grace), str(tmp_path)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]


@pytest.mark.slow
def test_processes_racing_copy_exactly_the_donors_committed_bytes(tmp_path: Path) -> None:
    _write_race_objective(tmp_path)
    url = f"sqlite:///{tmp_path / 'race.db'}"
    pbt_study(
        tf.PBT(8, 2, 16, quantile_fraction=0.5, seed=4, keep_checkpoints=True),
        storage=url,
        name="race",
    )
    workers = _workers(url, tmp_path, 4)
    for worker in workers:
        assert worker.wait(timeout=240) == 0
    study = tf.load_study("race", storage=url)
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    assert _check_ledger(study, tmp_path / "ledger", Counter()) > 5


@pytest.mark.slow
@pytest.mark.parametrize("synchronous", [False, True])
def test_every_worker_killed_mid_interval_then_a_restart_finishes_the_run(
    tmp_path: Path, synchronous: bool
) -> None:
    _write_race_objective(tmp_path)
    url = f"sqlite:///{tmp_path / 'race.db'}"
    scheduler = tf.PBT(6, 4, 40, synchronous=synchronous, seed=5, keep_checkpoints=True)
    pbt_study(scheduler, storage=url, name="race")
    workers = _workers(url, tmp_path, 2)
    study = tf.load_study("race", storage=url)
    hold = tmp_path / "ledger" / "HOLD"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # once members have copied others, hold the runs
        time.sleep(0.1)
        if any(t.system_attrs.get("pbt", {}).get("exploits") for t in study.trials):
            hold.touch()
            break
    while time.monotonic() < deadline:  # a run that starts now stops before its next step
        time.sleep(0.2)
        if any(t.state is TrialState.RUNNING for t in study.trials):
            break
    for worker in workers:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    hold.unlink()
    running = [
        t.number for t in tf.load_study("race", storage=url).trials if t.state.value == "RUNNING"
    ]
    assert running, "the workers were killed with no member mid-interval"
    time.sleep(1.0)  # their heartbeats (0.2 s) are now older than the grace period below
    for worker in _workers(url, tmp_path, 1, grace=0.8):
        assert worker.wait(timeout=240) == 0
    study = tf.load_study("race", storage=url)
    for number in running:
        assert study.trials[number].state is TrialState.FAIL  # reaped...
    replaced = {t.system_attrs["pbt"].get("replaces") for t in study.trials}
    assert set(running) <= replaced  # ...and replaced, member for member
    current: dict[int, Any] = {}
    for trial in study.trials:
        current[trial.system_attrs["pbt"]["member"]] = trial
    assert len(current) == 6
    assert all(t.state is TrialState.COMPLETE and t.last_step == 40 for t in current.values())
    _check_ledger(study, tmp_path / "ledger", Counter())


# -- failures ---------------------------------------------------------------------------------


def _failing_toy(fail: set[tuple[int, int]]) -> Any:
    """The toy, but trial n raises when it starts a run at step s, for (n, s) in ``fail``."""

    def objective(trial: Trial) -> float:
        if (trial.number, trial.last_step or 0) in fail:
            raise RuntimeError("the node went away")
        return toy(trial)

    return objective


@pytest.mark.parametrize("synchronous", [False, True])
@pytest.mark.parametrize("algorithm", [tf.PBT, tf.PB2])
def test_failed_members_are_replaced_and_the_run_does_not_stall(
    synchronous: bool, algorithm: type
) -> None:
    scheduler = algorithm(4, 3, 18, synchronous=synchronous, burn_in=5, seed=6)
    study = pbt_study(scheduler, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(_failing_toy({(1, 0), (2, 9), (3, 12)}), n_jobs=3, catch=(RuntimeError,))
    failed = [t.number for t in study.trials if t.state is TrialState.FAIL]
    assert failed == [1, 2, 3]
    replacements = {t.system_attrs["pbt"].get("replaces"): t for t in study.trials}
    assert set(failed) <= set(replacements)
    # a member that failed before any boundary starts afresh; later ones copy a top member
    assert min(replacements[1].intermediate_values) == 1
    for failed_trial, step in ((2, 9), (3, 12)):  # the boundary it had reached
        replacement = replacements[failed_trial]
        # there, or lower when no other member had reported that step yet (threads)
        copied = replacement.system_attrs["pbt"]["exploits"][0]["step"]
        assert copied in (step, step - 3) or (copied >= 6 and (step - copied) % 3 == 0)
        assert min(replacement.intermediate_values) == copied + 1
    current = {t.system_attrs["pbt"]["member"]: t for t in study.trials}
    assert all(t.state is TrialState.COMPLETE and t.last_step == 18 for t in current.values())


def test_an_objective_that_always_fails_ends_after_max_failures() -> None:
    def broken(trial: Trial) -> float:
        raise RuntimeError("bug")

    study = pbt_study(tf.PBT(3, 2, 6, max_failures=4), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(broken, catch=(RuntimeError,))
    assert len(study.trials) == 3 + 4


def test_a_cap_below_the_population_trains_the_members_there_to_the_end() -> None:
    study = pbt_study(tf.PBT(6, 2, 8, seed=1), seed=1)
    with pytest.warns(UserWarning, match="below population_size"):
        study.optimize(toy, max_trials=3)
    assert len(study.trials) == 3
    assert all(t.state is TrialState.COMPLETE and t.last_step == 8 for t in study.trials)


# -- lineage, replay, PB2 ---------------------------------------------------------------------


def test_lineage_and_schedule_follow_the_copies_back() -> None:
    study = pbt_study(tf.PBT(4, 3, 24, quantile_fraction=0.5, seed=9), seed=9)
    study.optimize(toy)
    best = max(
        study.trials,
        key=lambda t: len(lineage(study, t.number)),
    )
    chain = lineage(study, best.number)
    assert len(chain) >= 2
    assert chain[0]["recipient"] == best.number
    for newer, older in zip(chain, chain[1:]):  # each copy's donor is the next recipient
        assert older["recipient"] == newer["donor"] and older["step"] <= newer["step"]
    schedule = replay_schedule(study, best.number)
    assert schedule[0][0] == 0 and [s for s, _ in schedule] == sorted({s for s, _ in schedule})
    assert schedule[-1][1] == best.params


def test_replay_retrains_the_same_model_from_scratch() -> None:
    study = pbt_study(tf.PBT(4, 3, 21, quantile_fraction=0.5, seed=2), seed=2)
    study.optimize(toy)
    best = study.best_trial
    assert len(replay_schedule(study, best.number)) > 1
    replay = pbt_study(tf.PBTReplay(replay_schedule(study, best.number), max_budget=21))
    replay.optimize(toy)
    (trial,) = replay.trials
    assert trial.value == pytest.approx(best.value, abs=1e-12)
    assert replay_schedule(replay, 0) == replay_schedule(study, best.number)


def test_pb2_explores_by_its_gp_not_by_pbt_factors() -> None:
    study = pbt_study(tf.PB2(4, 3, 30, seed=4), seed=4)
    study.optimize(toy)
    exploits = [e for t in study.trials for e in t.system_attrs["pbt"].get("exploits", ())]
    assert exploits
    # the GP's proposals are not PBT's 0.8 / 1.2 multiples of the donor's values
    ratios = {
        round(e["after"][n] / e["donor_params"][n], 6)
        for e in exploits
        if "donor_params" in e
        for n in ("h0", "h1")
        if e["donor_params"][n]
    }
    assert ratios and not ratios <= {0.8, 1.2}
    assert all(t.state is TrialState.COMPLETE for t in study.trials)


class TestPBTContract(SchedulerContract):
    max_budget = 27
    n_runs = 40
    max_trials = 4

    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.PBT(6, 9, 27, seed=seed)


class TestPB2Contract(SchedulerContract):
    max_budget = 27
    n_runs = 40
    max_trials = 4

    def make_scheduler(self, seed: int) -> tf.Scheduler:
        return tf.PB2(4, 9, 27, synchronous=True, seed=seed)


def test_commits_no_member_can_copy_any_more_are_deleted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gc.db'}"
    study = pbt_study(tf.PBT(4, 2, 12, seed=3), storage=url, seed=3)
    study.optimize(toy)
    root = study.artifact_dir / "committed"
    kept = {p.relative_to(root).as_posix() for p in root.glob("trial_*/step_*")}
    last = {
        max(t.system_attrs["checkpoints"].items(), key=lambda kv: int(kv[0]))[1]["path"]
        for t in study.trials
    }
    assert kept == last  # every member ended at 12: only each one's last commit is left
    keep = pbt_study(tf.PBT(4, 2, 12, seed=3, keep_checkpoints=True), seed=3)
    keep.optimize(toy)
    commits = sum(len(t.system_attrs["checkpoints"]) for t in keep.trials)
    assert len(list((keep.artifact_dir / "committed").glob("trial_*/step_*"))) == commits


def test_a_commit_a_paused_member_may_still_copy_is_kept() -> None:
    study = pbt_study(tf.PBT(3, 2, 8, seed=0), seed=0)
    trials = [study.ask() for _ in range(3)]
    for trial, value in zip(trials, (0.1, 0.5, 0.9)):
        _run_to(study, trial, value)
    for _ in range(2):  # members 0 and 1 go on to step 4; member 2 stays paused at 2
        resumed = study.ask()
        _run_to(study, resumed, 1.0)
    study.ask()
    root = study.artifact_dir / "committed"
    for trial in study.trials:
        commit = trial.system_attrs["checkpoints"]["2"]
        assert (root / commit["path"]).is_dir()  # member 2 may still copy at step 2


def test_a_checkpoint_saved_again_with_the_same_bytes_is_committed() -> None:
    """Training that leaves the state as it was (a learning rate of 0) saves the same
    bytes again before its report: a new commit, not a stale one."""
    study = pbt_study(tf.PBT(2, 2, 6, seed=0), seed=0)
    a, b = study.ask(), study.ask()
    for trial in (a, b):
        trial.suggest_float("h0", 0.0, 1.0)
        (trial.checkpoint_dir / "w.txt").write_text("unchanged")
        trial.report(0.5, 2)
        study.tell(trial, 0.5)
    again = study.ask()
    (again.checkpoint_dir / "w.txt").write_text("unchanged")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again.report(0.5, 4)
    assert sorted(again.frozen().system_attrs["checkpoints"]) == ["2", "4"]


def test_a_run_commits_once_at_its_budget_even_if_it_reports_past_it() -> None:
    study = pbt_study(tf.PBT(2, 2, 8, seed=0), seed=0)
    trial = study.ask()
    trial.suggest_float("h0", 0.0, 1.0)
    for step in (1, 2, 3):  # reports on past its budget (2) before it sees the pause
        (trial.checkpoint_dir / "w.txt").write_text(str(step))
        trial.report(0.1 * step, step)
    assert list(trial.frozen().system_attrs["checkpoints"]) == ["2"]


def test_an_objective_that_never_saves_is_warned_once_and_never_copied() -> None:
    def forgetful(trial: Trial) -> float:
        x = trial.suggest_float("h0", 0.0, 1.0)
        assert trial.budget is not None
        trial.report(x * trial.budget, int(trial.budget))
        return x * trial.budget

    study = pbt_study(tf.PBT(4, 2, 10, seed=0), seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(forgetful)
    told = [w for w in caught if "no checkpoint was committed" in str(w.message)]
    assert len(told) == 1
    assert all(t.state is TrialState.COMPLETE and t.last_step == 10 for t in study.trials)
    assert not any(t.system_attrs["pbt"].get("exploits") for t in study.trials)


def test_a_replacement_copies_from_a_lower_boundary_when_no_other_member_is_there_yet() -> None:
    study = pbt_study(tf.PBT(3, 2, 10, seed=0), seed=0)
    trials = [study.ask() for _ in range(3)]
    for trial, value in zip(trials, (0.1, 0.5, 0.9)):
        _run_to(study, trial, value)  # all three at step 2
    ahead = study.ask()  # member 0 (the worst) copies member 2 and trains to 4, alone
    assert ahead.number == 0
    _run_to(study, ahead, 1.0)
    running = [study.ask(), study.ask()]  # members 1 and 2 go on from step 2
    assert sorted(t.number for t in running) == [1, 2]
    crashed = study.ask()  # member 0, alone at step 4
    assert crashed.number == 0
    study.tell(crashed, state="FAIL")
    replacement = study.ask()  # nobody else has reported step 4: copy a top member at 2
    info = replacement.frozen().system_attrs["pbt"]
    assert info["replaces"] == 0
    assert (info["exploits"][0]["step"], info["exploits"][0]["donor"]) == (2, 2)
    assert replacement.last_step == 2 and replacement.budget == 4
