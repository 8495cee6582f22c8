"""Hyperparameter importance: which parameters of a study matter, and how much.

Two evaluators:

* `PedAnovaEvaluator` — PED-ANOVA (Watanabe, Bansal & Hutter, IJCAI 2023): Pearson
  divergences between the 1-D densities of each parameter among the best trials and among
  all of them. No model, needs nothing beyond numpy. The default.
* `FanovaEvaluator` — fANOVA (Hutter, Hoos & Leyton-Brown, ICML 2014): the exact
  functional ANOVA decomposition of a random forest fitted to the results. Needs
  scikit-learn (``pip install 'tuningfork[sklearn]'``).

`get_param_importances(study)` runs one on a study's complete trials;
`format_importances` renders the result as a text table with bars.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from tuningfork.exceptions import NotEnoughTrials, OptionError, SpaceError
from tuningfork.importance._base import ImportanceEvaluator, Target, check_direction
from tuningfork.importance._fanova import FanovaEvaluator
from tuningfork.importance._ped_anova import PedAnovaEvaluator
from tuningfork.space import Distribution, Space, distribution_from_json
from tuningfork.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from tuningfork.study import Study

__all__ = [
    "FanovaEvaluator",
    "ImportanceEvaluator",
    "PedAnovaEvaluator",
    "format_importances",
    "get_param_importances",
    "trials_space",
]


def get_param_importances(
    study: Study,
    *,
    evaluator: ImportanceEvaluator | None = None,
    params: Sequence[str] | None = None,
    target: Target | None = None,
    normalize: bool = True,
    direction: str | None = None,
) -> dict[str, float]:
    """How much each parameter matters to the study's results, most important first.

    Uses the COMPLETE trials only. The parameters are those of any complete trial (see
    `trials_space`); a conditional parameter counts as inactive in the trials that lack
    it, and each evaluator says how it handles that (PED-ANOVA rates it on the trials
    where it is active; fANOVA encodes "inactive" as a separate value).

    The default evaluator is `PedAnovaEvaluator()` (importance for reaching the best 10% of
    trials): it fits no model, so it takes milliseconds, gives stable answers with a few
    dozen trials, handles conditional parameters directly, and needs no optional
    dependency, so ``tuningfork importance`` works on any install. Pass
    ``evaluator=FanovaEvaluator(seed=0)`` for fANOVA, the long-established model-based
    reference, which measures the share of the objective's *global* variance each
    parameter explains (needs scikit-learn, ``pip install 'tuningfork[sklearn]'``).

    Args:
        study: the study to analyse.
        evaluator: the method; default `PedAnovaEvaluator()`.
        params: rate only these parameters (default: all of them).
        target: the number to explain, ``target(trial)``; required for a multi-objective
            study (e.g. ``lambda t: t.values[1]``); default: the trial's value.
        normalize: scale the importances to sum to 1 (if any is above 0). Otherwise
            return each evaluator's raw values: the share of variance each parameter
            explains alone (of the forest's prediction for fANOVA; of the "is among the
            best trials" indicator for PED-ANOVA), which sum to at most about 1.
        direction: which end of the target is good, "minimize" or "maximize"; default:
            the study's direction, or "minimize" for a `target` on a multi-objective study.

    Returns:
        ``{name: importance}`` with values >= 0, ordered from most to least important
        (ties keep the space's order). A parameter that took a single value in every
        complete trial gets 0.

    Raises:
        NotEnoughTrials: fewer than 2 complete trials, or no parameter to rate.
        OptionError: a multi-objective study and no ``target``, or a bad ``direction``.
        SpaceError: a name in ``params`` that no complete trial has.
        MissingExtra: `FanovaEvaluator` without scikit-learn.
    """
    directions = tuple(study.directions)
    if len(directions) > 1 and target is None:
        raise OptionError(
            f"study {study.name!r} has {len(directions)} objectives; pass target= to say "
            "which number to explain, e.g. target=lambda t: t.values[0]",
            option="target",
            owner="get_param_importances",
        )
    if direction is None:
        direction = directions[0] if len(directions) == 1 else "minimize"
    check_direction(direction)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    if len(trials) < 2:
        raise NotEnoughTrials(
            f"parameter importance needs at least 2 complete trials, the study "
            f"{study.name!r} has {len(trials)}"
        )
    space = trials_space(trials)
    if params is not None:
        wanted = list(dict.fromkeys(params))
        for name in wanted:
            if name not in space:
                raise SpaceError(
                    f"unknown parameter {name!r}; the complete trials have {list(space)!r}"
                )
        space = Space({name: space[name] for name in wanted})
    if len(space) == 0:
        raise NotEnoughTrials(
            f"parameter importance needs at least one parameter; the complete trials of "
            f"study {study.name!r} have none"
        )
    if evaluator is None:
        evaluator = PedAnovaEvaluator()
    raw = evaluator.evaluate(trials, space, target=target, direction=direction)
    values = {name: max(0.0, float(raw.get(name, 0.0))) for name in space}
    total = sum(values.values())
    if normalize and total > 0.0:
        values = {name: value / total for name, value in values.items()}
    position = {name: i for i, name in enumerate(space)}
    ranked = sorted(values, key=lambda name: (-values[name], position[name]))
    return {name: values[name] for name in ranked}


def trials_space(trials: Sequence[FrozenTrial]) -> Space:
    """The parameters that appear in any of `trials`, as a `Space` without conditions.

    Conditions (``when``) are dropped: which trials have a parameter already says where it
    is active. Where trials recorded different distributions for one name (its range was
    changed between runs), the one recorded by the most trials wins (the latest on ties),
    and values it does not hold count as inactive.
    """
    uses: dict[str, Counter[Distribution]] = {}
    latest: dict[str, dict[Distribution, int]] = {}
    for number, trial in enumerate(trials):
        for name, dist in trial.distributions.items():
            plain = _without_condition(dist)
            uses.setdefault(name, Counter())[plain] += 1
            latest.setdefault(name, {})[plain] = number
    chosen = {
        name: max(counter, key=lambda d: (counter[d], latest[name][d]))
        for name, counter in uses.items()
    }
    return Space(chosen)


def _without_condition(dist: Distribution) -> Distribution:
    if not dist.when:
        return dist
    data = dist.to_json()
    data.pop("when", None)
    return distribution_from_json(data)


def format_importances(importances: Mapping[str, float], *, width: int = 40) -> str:
    """A text table of importances, one row per parameter, with a bar of ``#``.

    Rows keep the mapping's order (`get_param_importances` sorts them); the longest bar,
    ``width`` characters, goes to the largest value. ASCII only, for any terminal::

        parameter  importance
        lr              0.712  ########################################
        layers          0.201  ###########
        dropout         0.087  #####
    """
    if not importances:
        return "no parameters"
    header = "parameter"
    name_width = max(len(header), *(len(str(name)) for name in importances))
    largest = max(max(importances.values()), 0.0)
    lines = [f"{header:<{name_width}}  importance"]
    for name, value in importances.items():
        bar = "#" * round(width * value / largest) if largest > 0 and value > 0 else ""
        lines.append(f"{str(name):<{name_width}}  {value:>10.3f}  {bar}".rstrip())
    return "\n".join(lines)
