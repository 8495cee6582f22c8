"""NSGAIIISampler: the Das-Dennis reference points, normalisation, association and
niching on hand-made fronts, spread and quality on DTLZ2 against NSGA-II and random
search, constraints, and proposals that follow from the log alone."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

import tuningfork as tf
from tuningfork.exceptions import OptionError, SamplerError
from tuningfork.samplers.nsga3 import (
    associate,
    das_dennis,
    niche_select,
    normalize,
    survivors,
)
from tuningfork.testing import SamplerContract
from tuningfork.trial import FrozenTrial, TrialState

THREE = ("minimize", "minimize", "minimize")
UNIT7 = tf.Space(**{f"x{i}": tf.Float(0.0, 1.0) for i in range(7)})


class TestNSGAIIIContract(SamplerContract):
    # single objective (the contract's studies); several objectives are tested below. A
    # population of 10 leaves the log-scale check (32 trials) enough random draws: with 6,
    # the children of 26 trials crowd round the contract objective's optimum
    def make_sampler(self, seed: int, space: tf.Space) -> tf.Sampler:
        return tf.NSGAIIISampler(population_size=10, seed=seed)


# -- helpers --------------------------------------------------------------------------------


def dtlz2(trial: tf.Trial) -> tuple[float, float, float]:
    """DTLZ2 (Deb, Thiele, Laumanns & Zitzler, 2002) with 3 objectives and 7 variables
    (k = 5): the front is the unit sphere's positive octant, reached where x2..x6 = 0.5."""
    x = [float(trial.params[f"x{i}"]) for i in range(7)]  # type: ignore[arg-type]
    radius = 1.0 + sum((v - 0.5) ** 2 for v in x[2:])
    a, b = x[0] * math.pi / 2, x[1] * math.pi / 2
    return (
        radius * math.cos(a) * math.cos(b),
        radius * math.cos(a) * math.sin(b),
        radius * math.sin(a),
    )


def run(
    sampler: tf.Sampler,
    objective: Callable[[tf.Trial], object],
    n_trials: int,
    directions: Sequence[str] = THREE,
    space: tf.Space = UNIT7,
) -> tf.Study:
    study = tf.create_study(storage="memory", sampler=sampler, directions=list(directions))
    study.optimize(objective, n_trials=n_trials, space=space, show_progress_bar=False)  # type: ignore[arg-type]
    return study


def population(sampler: tf.Sampler, study: tf.Study, size: int) -> np.ndarray:
    """The losses of the sampler's survivors after the last trial (its final population)."""
    complete = [t for t in study.trials if t.state is TrialState.COMPLETE]
    ranked = sampler._rank(study.reader, sampler._states[study.reader], complete)  # type: ignore[attr-defined]
    return np.array([t.values for t in ranked[:size]])


def igd(points: np.ndarray) -> float:
    """Inverted generational distance to DTLZ2's front: the mean distance from 91 points
    spread on the unit sphere's octant to the nearest of ``points``."""
    truth = das_dennis(3, 12)
    truth /= np.linalg.norm(truth, axis=1, keepdims=True)
    return float(np.linalg.norm(truth[:, None] - points[None], axis=2).min(axis=1).mean())


def hypervolume(points: np.ndarray, reference: float = 1.2) -> float:
    """The volume that ``points`` dominate inside [0, reference]^3, by Monte Carlo with a
    fixed sample (the same for every call, so comparisons are exact)."""
    sample = np.random.default_rng(0).random((20000, 3)) * reference
    covered = np.zeros(len(sample), dtype=bool)
    for point in points:
        covered |= np.all(sample >= point, axis=1)
    return float(covered.mean()) * reference**3


def niches(points: np.ndarray) -> int:
    """How many of the 91 reference directions (3 objectives, 12 divisions) the points
    are associated with (DTLZ2's front already spans [0, 1] on each axis)."""
    niche, _ = associate(points, das_dennis(3, 12))
    return len(set(niche.tolist()))


def row(points: np.ndarray, wanted: Sequence[float]) -> int:
    return int(np.flatnonzero(np.all(np.isclose(points, wanted), axis=1))[0])


# -- reference points -----------------------------------------------------------------------


def test_das_dennis_points_for_three_objectives_and_twelve_divisions() -> None:
    points = das_dennis(3, 12)
    assert points.shape == (91, 3)  # C(14, 2)
    assert np.allclose(points.sum(axis=1), 1.0) and np.all(points >= 0.0)
    assert np.allclose(points * 12, np.round(points * 12))  # a lattice of step 1/12
    assert len({tuple(p) for p in np.round(points * 12).astype(int).tolist()}) == 91
    for corner in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
        row(points, corner)
    assert das_dennis(5, 6).shape == (210, 5)
    assert das_dennis(2, 4).tolist() == [[0, 1], [0.25, 0.75], [0.5, 0.5], [0.75, 0.25], [1, 0]]


@pytest.mark.parametrize(
    ("objectives", "points", "size", "interior"),
    # Deb & Jain (2014), Table I: H reference points and population N. Points with every
    # coordinate > 0: C(p - 1, M - 1) for one layer of p divisions (55 for p = 12, 5 for
    # p = 6); from 8 objectives, where p < M leaves none, the inner layer's (2 or 1
    # divisions) are
    [
        (3, 91, 92, 55),
        (5, 210, 212, 5),
        (8, 156, 156, 36),
        (10, 275, 276, 55),
        (15, 135, 136, 15),
    ],
)
def test_default_reference_points_and_population_follow_the_paper(
    objectives: int, points: int, size: int, interior: int
) -> None:
    sampler = tf.NSGAIIISampler(seed=0)
    references = sampler.references(objectives)
    assert references.shape == (points, objectives)
    assert np.allclose(references.sum(axis=1), 1.0) and np.all(references >= 0.0)
    study = tf.create_study(storage="memory", directions=["minimize"] * objectives)
    assert sampler._size(study.reader) == size
    assert np.sum(np.all(references > 0.0, axis=1)) == interior
    assert len(np.unique(references.round(12), axis=0)) == points


# -- normalisation, association, niching ----------------------------------------------------


def test_normalisation_maps_a_scaled_front_onto_the_simplex() -> None:
    """Points on the plane f1/2 + f2/4 + f3/1 = 1, moved by (1, 1, 1): the extreme points
    are the plane's corners, so normalisation must land every point on the unit simplex."""
    on_plane = das_dennis(3, 4) * np.array([2.0, 4.0, 1.0])
    losses = on_plane + 1.0
    normalised = normalize(losses, np.ones(len(losses), dtype=bool))
    assert np.allclose(normalised.sum(axis=1), 1.0)
    assert np.allclose(normalised, das_dennis(3, 4))
    # a dominated point behind the front keeps the same scale
    behind = normalize(np.vstack([losses, [3.0, 5.0, 2.0]]), np.arange(16) < 15)
    assert np.allclose(behind[-1], [1.0, 1.0, 1.0])


def test_a_degenerate_hyperplane_falls_back_to_the_nadir_of_the_first_front() -> None:
    """All points at f3 = 0 and one extreme point midway between the others: no plane
    through them, so the intercepts are the first front's worst values, (1, 1) (not the
    dominated point's (2, 2)), and the flat third objective is left as it is."""
    losses = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [2.0, 2.0, 0.0]])
    normalised = normalize(losses, np.array([True, True, True, False]))
    assert np.allclose(normalised, losses)
    # the same front, scaled by 10 on the first objective, is normalised back
    scaled = normalize(losses * [10.0, 1.0, 1.0], np.array([True, True, True, False]))
    assert np.allclose(scaled, losses)


def test_association_finds_the_nearest_reference_line() -> None:
    references = das_dennis(3, 2)  # corners and edge midpoints
    points = np.array([[0.9, 0.1, 0.0], [0.5, 0.45, 0.05], [0.0, 0.1, 2.0], [0.1, 0.5, 0.45]])
    niche, distance = associate(points, references)
    expected = [(1, 0, 0), (0.5, 0.5, 0), (0, 0, 1), (0, 0.5, 0.5)]
    assert niche.tolist() == [row(references, r) for r in expected]
    # perpendicular distances: to the axis (1, 0, 0) the rest, (0, 0.1, 0); to the line
    # through (1, 1, 0) half the difference of the first two coordinates, and the third
    assert distance[0] == pytest.approx(0.1) and distance[2] == pytest.approx(0.1)
    assert distance[1] == pytest.approx(math.hypot(0.05 / math.sqrt(2), 0.05))


def test_niching_fills_empty_reference_directions_first() -> None:
    # three reference lines; the chosen fronts hold one member on line 0 already
    niche = np.array([0, 0, 1, 1, 0])
    distance = np.array([0.3, 0.1, 0.4, 0.2, 0.0])
    counts = np.array([1, 0, 0])
    for seed in range(20):
        rng = np.random.default_rng(seed)
        # line 1 has no member yet: it gets its member nearest the line (index 3); line 2
        # has no last-front member and never counts
        assert niche_select(1, niche, distance, counts, rng).tolist() == [3]
        two = niche_select(2, niche, distance, counts, np.random.default_rng(seed))
        # then lines 0 and 1 tie at one member each: either gets a random member
        assert two[0] == 3 and two[1] in (0, 1, 2, 4)
        everyone = niche_select(5, niche, distance, counts, np.random.default_rng(seed))
        assert sorted(everyone.tolist()) == [0, 1, 2, 3, 4]
    # with nobody chosen yet, each line's nearest member comes first
    first = niche_select(2, niche, distance, np.zeros(3, dtype=int), np.random.default_rng(0))
    assert sorted(first.tolist()) == [3, 4]


def test_survivors_are_whole_fronts_then_a_niched_part_of_the_last() -> None:
    # front 0: three points on the simplex's edges and centre; front 1: points near the
    # same directions, one of them (index 6) alone on the direction (0, 0, 1)
    losses = np.array(
        [
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.5, 0.5, 0.1],
            [1.1, 0.1, 0.1],
            [0.1, 1.1, 0.1],
            [0.6, 0.6, 0.2],
            [0.1, 0.1, 1.0],
        ]
    )
    rank = np.array([0, 0, 0, 1, 1, 1, 1])
    kept = survivors(losses, rank, das_dennis(3, 2), 4, np.random.default_rng(0))
    assert kept.tolist() == [True, True, True, False, False, False, True]
    assert survivors(losses, rank, das_dennis(3, 2), 3, np.random.default_rng(0)).sum() == 3
    assert survivors(losses, rank, das_dennis(3, 2), 9, np.random.default_rng(0)).all()


# -- quality on DTLZ2 -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dtlz2_runs() -> dict[str, list[np.ndarray]]:
    """For 3 seeds and 500 trials: each sampler's final population (40 members, for both
    genetic samplers) and the Pareto front of all its trials."""
    found: dict[str, list[np.ndarray]] = {}
    for seed in range(3):
        nsga3 = tf.NSGAIIISampler(population_size=40, seed=seed)
        nsga2 = tf.NSGAIISampler(population_size=40, seed=seed)
        for name, sampler in (("nsga3", nsga3), ("nsga2", nsga2), ("random", None)):
            study = run(sampler or tf.RandomSampler(seed=seed), dtlz2, 500)
            found.setdefault(f"{name} front", []).append(
                np.array([t.values for t in study.best_trials])
            )
            if sampler is not None:
                found.setdefault(name, []).append(population(sampler, study, 40))
    return found


def test_nsga3_spreads_over_more_reference_directions_than_nsga2(
    dtlz2_runs: dict[str, list[np.ndarray]],
) -> None:
    # measured: NSGA-III's 40 survivors sit in 36-38 of the 91 directions, NSGA-II's in
    # 28-30 (crowding distance does not keep the spread in 3 objectives)
    ours = [niches(p) for p in dtlz2_runs["nsga3"]]
    theirs = [niches(p) for p in dtlz2_runs["nsga2"]]
    assert all(a > b + 3 for a, b in zip(ours, theirs)), (ours, theirs)
    assert min(ours) >= 34


def test_nsga3_gets_closer_to_dtlz2s_front_than_random_search(
    dtlz2_runs: dict[str, list[np.ndarray]],
) -> None:
    # measured: IGD 0.09-0.10 against 0.18-0.21; the final population alone (40 points,
    # 0.12-0.14) is closer too than all of random search's non-dominated trials
    ours = [igd(f) for f in dtlz2_runs["nsga3 front"]]
    survivors_only = [igd(p) for p in dtlz2_runs["nsga3"]]
    rand = [igd(f) for f in dtlz2_runs["random front"]]
    assert max(ours) < min(rand) and max(survivors_only) < min(rand), (ours, rand)
    volumes = [hypervolume(f) for f in dtlz2_runs["nsga3 front"]]
    random_volumes = [hypervolume(f) for f in dtlz2_runs["random front"]]
    assert all(a > b for a, b in zip(volumes, random_volumes)), (volumes, random_volumes)


# -- one and two objectives -----------------------------------------------------------------


def zdt1(trial: tf.Trial) -> tuple[float, float]:
    x = [float(trial.params[f"x{i}"]) for i in range(5)]  # type: ignore[arg-type]
    g = 1.0 + 9.0 * sum(x[1:]) / 4.0
    return x[0], g * (1.0 - (x[0] / g) ** 0.5)


def test_one_and_two_objectives_work() -> None:
    unit5 = tf.Space(**{f"x{i}": tf.Float(0.0, 1.0) for i in range(5)})

    def sphere(trial: tf.Trial) -> float:
        return sum((float(trial.params[f"x{i}"]) - 0.3) ** 2 for i in range(5))  # type: ignore[arg-type]

    for seed in range(2):
        ours = run(
            tf.NSGAIIISampler(population_size=16, seed=seed), sphere, 200, ["minimize"], unit5
        )
        rand = run(tf.RandomSampler(seed=seed), sphere, 200, ["minimize"], unit5)
        assert ours.best_value < rand.best_value
        pair = ("minimize", "minimize")
        ours = run(tf.NSGAIIISampler(population_size=16, seed=seed), zdt1, 200, pair, unit5)
        rand = run(tf.RandomSampler(seed=seed), zdt1, 200, pair, unit5)
        # ZDT1's front is f2 = 1 - sqrt(f1): how far the best trials are above it
        gap = [t.values[1] - (1 - t.values[0] ** 0.5) for t in ours.best_trials]  # type: ignore[index]
        random_gap = [t.values[1] - (1 - t.values[0] ** 0.5) for t in rand.best_trials]  # type: ignore[index]
        assert statistics.median(gap) < statistics.median(random_gap)


# -- constraints ----------------------------------------------------------------------------


def test_constraints_keep_late_trials_out_of_the_infeasible_region() -> None:
    """x2 >= 0.8 against DTLZ2's pull towards x2 = 0.5."""

    def objective(trial: tf.Trial) -> tuple[float, float, float]:
        trial.set_user_attr("c", 0.8 - float(trial.params["x2"]))  # type: ignore[arg-type]
        return dtlz2(trial)

    def constraints(trial: FrozenTrial) -> list[float]:
        return [trial.user_attrs["c"]]

    def late_feasible(sampler: tf.Sampler) -> float:
        study = run(sampler, objective, 160)
        late = study.trials[80:]
        return sum(t.user_attrs["c"] <= 0 for t in late) / len(late)

    for seed in range(2):
        kept = late_feasible(
            tf.NSGAIIISampler(population_size=20, constraints_func=constraints, seed=seed)
        )
        free = late_feasible(tf.NSGAIIISampler(population_size=20, seed=seed))
        rand = late_feasible(tf.RandomSampler(seed=seed))
        assert kept > 0.8 and kept > rand + 0.4 and kept > free + 0.4, (kept, rand, free)


# -- proposals follow from the log ----------------------------------------------------------


def test_a_reloaded_study_gets_the_same_proposals(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'again.db'}"
    study = tf.create_study(
        "s", storage=url, sampler=tf.NSGAIIISampler(population_size=8, seed=4), directions=THREE
    )
    study.optimize(dtlz2, n_trials=30, space=UNIT7, show_progress_bar=False)
    reloaded = tf.load_study("s", storage=url, sampler=tf.NSGAIIISampler(population_size=8, seed=4))
    again = tf.load_study("s", storage=url)  # the sampler re-created from the study's record
    children = []
    for number in (30, 31, 32):
        pending = FrozenTrial(number=number, state=TrialState.RUNNING)
        child = reloaded.sampler.sample_space(reloaded.reader, pending, UNIT7)
        assert child == again.sampler.sample_space(again.reader, pending, UNIT7)
        assert child == study.sampler.sample_space(study.reader, pending, UNIT7)
        children.append(child)
    # concurrent trials get different children
    assert children[0] != children[1] != children[2]


def test_nsga3_resumes_after_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'resume.db'}"

    def make() -> tf.Sampler:
        return tf.NSGAIIISampler(population_size=6, seed=2)

    whole = tf.create_study("whole", storage=url, sampler=make(), directions=THREE)
    whole.optimize(dtlz2, n_trials=24, space=UNIT7, show_progress_bar=False)
    part = tf.create_study("part", storage=url, sampler=make(), directions=THREE)
    part.optimize(dtlz2, n_trials=11, space=UNIT7, show_progress_bar=False)
    del part
    resumed = tf.load_study("part", storage=url, sampler=make())
    resumed.optimize(dtlz2, n_trials=13, space=UNIT7, show_progress_bar=False)
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]


# -- options and records --------------------------------------------------------------------


def my_constraints(trial: FrozenTrial) -> list[float]:
    return [0.0]


def test_the_record_round_trips() -> None:
    corners = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    sampler = tf.NSGAIIISampler(reference_points=np.array(corners), eta_c=10.0, seed=5)
    record = json.loads(json.dumps(sampler.describe()))
    assert record["reference_points"] == corners and record["population_size"] is None
    again = tf.NSGAIIISampler.from_record(record)
    assert again.describe() == record
    assert np.array_equal(again.references(3), corners)
    with pytest.warns(UserWarning, match="my_constraints"):
        tf.NSGAIIISampler.from_record(
            tf.NSGAIIISampler(constraints_func=my_constraints, seed=1).describe()
        )


def test_registered_as_nsga3() -> None:
    sampler = tf.samplers.sampler_from_record({"name": "nsga3", "dividing_parameter": 6})
    assert isinstance(sampler, tf.NSGAIIISampler)
    assert sampler.references(3).shape == (28, 3)  # C(8, 2)


def test_user_reference_points_must_match_the_objectives() -> None:
    sampler = tf.NSGAIIISampler(population_size=4, reference_points=[[1.0, 1.0]], seed=0)
    with pytest.raises(SamplerError, match="2 coordinates"):
        run(sampler, dtlz2, 6)


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"population_size": 1}, "population_size"),
        ({"dividing_parameter": 0}, "dividing_parameter"),
        ({"dividing_parameter": 2.5}, "dividing_parameter"),
        ({"dividing_parameter": 4, "reference_points": [[1.0, 0.0]]}, "dividing_parameter"),
        ({"reference_points": [1.0, 0.0]}, "reference_points"),
        ({"reference_points": [[1.0, -0.1]]}, "reference_points"),
        ({"reference_points": [[0.0, 0.0]]}, "reference_points"),
        ({"reference_points": [[math.nan, 1.0]]}, "reference_points"),
        ({"reference_points": "corners"}, "reference_points"),
        ({"crossover_prob": 1.5}, "crossover_prob"),
        ({"constraints_func": "not a function"}, "constraints_func"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], option: str) -> None:
    with pytest.raises(OptionError) as raised:
        tf.NSGAIIISampler(**options)  # type: ignore[arg-type]
    assert raised.value.option == option
    assert raised.value.owner == "NSGAIIISampler"
