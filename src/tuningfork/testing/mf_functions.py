"""Multi-fidelity test problems and the cost accounting of a multi-fidelity benchmark.

The synthetic problems are those of Kandasamy et al., "Multi-fidelity Bayesian optimisation
with continuous approximations" (BOCA, ICML 2017): Hartmann 3-d and 6-d and Branin, biased
at a scalar fidelity z in (0, 1] by terms that vanish at z = 1, where they are the ordinary
functions of `tuningfork.testing.functions`. `load_lcbench` adds LCBench (Zimmer et al.,
2021) through the YAHPO Gym surrogate (Pfisterer et al., 2022), where onnxruntime and the
surrogate's files are at hand. A `Meter` charges what a user would pay to evaluate them
step by step (cost proportional to z) and keeps the incumbent and its regret.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tuningfork.exceptions import BudgetSpent
from tuningfork.space import Float, Int, Space
from tuningfork.testing.functions import (
    _H3_A,
    _H3_P,
    _H6_A,
    _H6_P,
    _H_ALPHA,
    PROBLEMS,
)

__all__ = [
    "LCBENCH_PROBLEMS",
    "MF_PROBLEMS",
    "BudgetSpent",
    "MFProblem",
    "Meter",
    "load_lcbench",
    "mf_branin",
    "mf_hartmann3",
    "mf_hartmann6",
]


@dataclass(frozen=True)
class MFProblem:
    """A multi-fidelity minimisation problem: ``evaluate(params, z)`` over ``space`` at a
    fidelity z in (0, 1]; z = 1 is the true function, whose global minimum is ``optimum``."""

    name: str
    space: Space
    evaluate: Callable[[Mapping[str, Any], float], float]
    optimum: float
    note: str = ""  # where the optimum comes from, when it is not a known global minimum

    def regret(self, params: Mapping[str, Any]) -> float:
        """How far the true value (z = 1) of ``params`` is above the global minimum, clipped at
        0 (a value a rounding error below a published optimum is no regret)."""
        return max(float(self.evaluate(params, 1.0)) - self.optimum, 0.0)


def _check_fidelity(z: float) -> float:
    z = float(z)
    if not 0.0 < z <= 1.0:
        raise ValueError(f"the fidelity z must be in (0, 1], got {z!r}")
    return z


def _vector(params: Mapping[str, Any], d: int) -> np.ndarray:
    return np.array([params[f"x{i}"] for i in range(d)], dtype=float)


def _mf_hartmann(x: np.ndarray, z: float, a: np.ndarray, p: np.ndarray) -> float:
    alpha = _H_ALPHA - 0.1 * (1.0 - z)
    return float(-np.sum(alpha * np.exp(-np.sum(a * (x - p) ** 2, axis=1))))


def mf_hartmann3(params: Mapping[str, Any], z: float) -> float:
    """Hartmann 3-d on [0, 1]^3 with alpha'(z) = alpha - 0.1 (1 - z); minimum -3.86278 at
    z = 1. Lower fidelities are higher by 0.1 (1 - z) sum_i exp(-...): at most 0.4 (1 - z)."""
    return _mf_hartmann(_vector(params, 3), _check_fidelity(z), _H3_A, _H3_P)


def mf_hartmann6(params: Mapping[str, Any], z: float) -> float:
    """Hartmann 6-d on [0, 1]^6 with alpha'(z) = alpha - 0.1 (1 - z); minimum -3.32237 at
    z = 1."""
    return _mf_hartmann(_vector(params, 6), _check_fidelity(z), _H6_A, _H6_P)


def mf_branin(params: Mapping[str, Any], z: float) -> float:
    """Branin on x0 in [-5, 10], x1 in [0, 15] with b(z) = 5.1 / (4 pi^2) - 0.01 (1 - z),
    c(z) = 5 / pi - 0.1 (1 - z), t(z) = 1 / (8 pi) + 0.05 (1 - z); minimum 0.397887 at
    z = 1 (three minimisers)."""
    z = _check_fidelity(z)
    x0, x1 = float(params["x0"]), float(params["x1"])
    b = 5.1 / (4 * math.pi**2) - 0.01 * (1.0 - z)
    c = 5 / math.pi - 0.1 * (1.0 - z)
    t = 1 / (8 * math.pi) + 0.05 * (1.0 - z)
    r, s = 6.0, 10.0
    return (x1 - b * x0**2 + c * x0 - r) ** 2 + s * (1 - t) * math.cos(x0) + s


def _same_space(name: str, evaluate: Callable[[Mapping[str, Any], float], float]) -> MFProblem:
    """The multi-fidelity version of the ordinary problem ``name``: same space, same optimum."""
    ordinary = PROBLEMS[name]
    return MFProblem(f"mf_{name}", ordinary.space, evaluate, ordinary.optimum)


MF_PROBLEMS: dict[str, MFProblem] = {
    "mf_branin": _same_space("branin", mf_branin),
    "mf_hartmann3": _same_space("hartmann3", mf_hartmann3),
    "mf_hartmann6": _same_space("hartmann6", mf_hartmann6),
}
"""The synthetic multi-fidelity problems (BOCA's), by name."""


# -- LCBench (YAHPO Gym surrogate) ------------------------------------------------------------

LCBENCH_EPOCHS = 52
LCBENCH_PROBLEMS: dict[str, str] = {
    f"lcbench_{task}": task for task in ("167168", "189873", "189906")
}
"""LCBench problems by name -> OpenML task id: the lcbench entries of YAHPO-SO (YAHPO's
single-objective suite, target val_accuracy)."""
_LCBENCH_SPACE = Space(
    batch_size=Int(16, 512, log=True),
    learning_rate=Float(1e-4, 1e-1, log=True),
    momentum=Float(0.1, 0.99),
    weight_decay=Float(1e-5, 1e-1),
    num_layers=Int(1, 5),
    max_units=Int(64, 1024, log=True),
    max_dropout=Float(0.0, 1.0),
)
# The surrogate's continuous input, in its column order (the epoch first).
_LCBENCH_COLUMNS = (
    "batch_size",
    "learning_rate",
    "momentum",
    "weight_decay",
    "num_layers",
    "max_units",
    "max_dropout",
)
_VAL_ACCURACY = 1  # output columns: time, val_accuracy, val_cross_entropy, ...


def yahpo_data_path() -> Path:
    """The YAHPO Gym data folder: ``$TUNINGFORK_YAHPO_DATA``, else the first
    ``shared/benchdata/yahpo`` above the working directory or this file."""
    if os.environ.get("TUNINGFORK_YAHPO_DATA"):
        return Path(os.environ["TUNINGFORK_YAHPO_DATA"])
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            candidate = folder / "shared" / "benchdata" / "yahpo"
            if (candidate / "lcbench" / "model.onnx").exists():
                return candidate
    raise FileNotFoundError(
        "no YAHPO Gym data (shared/benchdata/yahpo/lcbench/model.onnx) above the working "
        "directory; set TUNINGFORK_YAHPO_DATA to the folder"
    )


class _LCBenchSurrogate:
    """100 - validation accuracy (percent) of one OpenML task's configuration after
    ``max(1, round(52 z))`` epochs, from the surrogate's ONNX model (no yahpo-gym needed)."""

    def __init__(self, folder: Path, task: str) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("LCBench needs onnxruntime: pip install onnxruntime") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(folder / "lcbench" / "model.onnx"),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        codes = json.loads((folder / "lcbench" / "encoding.json").read_text())
        self._task = np.array([[codes["OpenML_task_id"][task]]], dtype=np.int32)

    def __call__(self, params: Mapping[str, Any], z: float) -> float:
        epoch = max(1, round(LCBENCH_EPOCHS * _check_fidelity(z)))
        row = [epoch, *(params[name] for name in _LCBENCH_COLUMNS)]
        inputs = {"x_cat": self._task, "x_cont": np.array([row], dtype=np.float32)}
        accuracy = float(self._session.run(None, inputs)[0][0, _VAL_ACCURACY])
        return 100.0 - accuracy


def _best_val_accuracy(folder: Path, task: str) -> float:
    """The largest val_accuracy of YAHPO's global statistics (0.5 M random evaluations)."""
    table = folder / "global_statistics" / "instance_target_statistics.csv"
    for line in table.read_text().splitlines():
        metric, statistic, value, scenario, instance = line.split(",")
        if (metric, statistic, scenario, instance) == ("val_accuracy", "max", "lcbench", task):
            return float(value)
    raise KeyError(f"no val_accuracy maximum for lcbench task {task} in {table}")


@functools.cache
def load_lcbench(name: str, data_path: str | None = None) -> MFProblem:
    """The LCBench problem ``name`` (a key of `LCBENCH_PROBLEMS`): minimise 100 -
    val_accuracy over LCBench's 7 hyperparameters; fidelity z gives epoch
    ``max(1, round(52 z))`` of 52, so z = 1 is the full training. Its "optimum" is 100 - the
    best val_accuracy in YAHPO's global statistics (regret below it is clipped at 0). Needs
    onnxruntime and the YAHPO data (``data_path``, else `yahpo_data_path`)."""
    if name not in LCBENCH_PROBLEMS:
        raise KeyError(f"unknown LCBench problem {name!r}; known: {', '.join(LCBENCH_PROBLEMS)}")
    task = LCBENCH_PROBLEMS[name]
    folder = Path(data_path) if data_path is not None else yahpo_data_path()
    surrogate = _LCBenchSurrogate(folder, task)
    best = _best_val_accuracy(folder, task)
    note = f"100 - the best val_accuracy ({best:g}) in YAHPO's global statistics"
    return MFProblem(name, _LCBENCH_SPACE, surrogate, 100.0 - best, note)


# -- cost accounting --------------------------------------------------------------------------


@dataclass
class Meter:
    """Charges the cost of a simulated multi-fidelity run and keeps its incumbent.

    A trial trains in steps 1..``max_step``; the value at step s is
    ``problem.evaluate(params, s / max_step)`` and each step costs ``1 / max_step`` units
    (one unit = one evaluation at full fidelity). Runners pay as a user would:

    - `charge` once per newly computed step of a trial that trains step by step: a trial
      that continues, or resumes from its checkpoint, pays only its added steps;
    - `charge_fresh` for an evaluation from scratch at budget b (b steps at once), e.g.
      random search at full budget or DEHB, which retrains every configuration it promotes.

    The incumbent is the configuration with the best value reported at the highest step any
    trial has reached so far (ties: the earliest); its regret is its true value (z = 1)
    minus the optimum. The regret in force when the cumulative cost first reaches each of
    ``marks`` is kept in `at_marks`; once the cost reaches ``budget``, the charge that got
    there raises `BudgetSpent` (after recording it), so a run ends at the budget or one
    evaluation over it.
    """

    problem: MFProblem
    max_step: int = 81
    budget: float = 100.0
    marks: Sequence[float] = (10.0, 30.0, 100.0)
    spent_steps: int = 0
    evaluations: int = 0  # calls of charge + charge_fresh
    fresh_evaluations: int = 0  # calls of charge_fresh
    repaid_steps: int = 0  # steps paid again by trials restarted from step 1
    top_step: int = 0
    incumbent_value: float = math.inf
    incumbent_params: dict[str, Any] | None = None
    regret: float = math.inf
    curve: list[tuple[float, float]] = field(default_factory=list)  # (cost, regret) changes
    at_marks: dict[float, float] = field(default_factory=dict)
    _last_step: dict[Hashable, int] = field(default_factory=dict, repr=False)
    _budget_steps: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_step < 1:
            raise ValueError(f"max_step must be >= 1, got {self.max_step!r}")
        self._budget_steps = math.ceil(self.budget * self.max_step - 1e-9)

    @property
    def cost(self) -> float:
        """Units spent so far (one unit = one evaluation at full fidelity)."""
        return self.spent_steps / self.max_step

    @property
    def spent(self) -> bool:
        return self.spent_steps >= self._budget_steps

    def step_of(self, key: Hashable) -> int:
        """The last step charged for ``key`` (0 if none): where its checkpoint stands."""
        return self._last_step.get(key, 0)

    def charge(self, key: Hashable, params: Mapping[str, Any], step: int, value: float) -> None:
        """Pay one step (1 / max_step units) of the trial ``key`` (anything that identifies
        a configuration and its checkpoint, e.g. a trial number), which has just computed
        ``value`` at ``step``. Steps of a key must come in order: the step after its last
        one, or step 1 again for a trial retrained from scratch (its steps are paid again).
        Raises `BudgetSpent` when this charge spends the budget."""
        step = self._check_step(step)
        last = self._last_step.get(key, 0)
        if step == 1:
            self.repaid_steps += last
        elif step != last + 1:
            raise ValueError(
                f"trial {key!r} is charged for step {step} after step {last}: charge every "
                "computed step in order (a resumed trial continues after its last step), or "
                "use charge_fresh for an evaluation from scratch"
            )
        self._last_step[key] = step
        self._pay(1, params, step, value)

    def charge_fresh(self, params: Mapping[str, Any], step: int, value: float) -> None:
        """Pay an evaluation from scratch at budget ``step`` (step / max_step units) that
        gave ``value``. Raises `BudgetSpent` when this charge spends the budget."""
        step = self._check_step(step)
        self.fresh_evaluations += 1
        self._pay(step, params, step, value)

    @property
    def trials(self) -> int:
        """Trials charged step by step (distinct keys) plus fresh evaluations."""
        return len(self._last_step) + self.fresh_evaluations

    def result(self) -> dict[str, Any]:
        """The run's record, JSON-able: cost, marks, regret curve, incumbent."""
        return {
            "cost": self.cost,
            "evaluations": self.evaluations,
            "trials": self.trials,
            "repaid_steps": self.repaid_steps,
            "top_step": self.top_step,
            "regret": self.regret,
            "at_marks": {f"{mark:g}": regret for mark, regret in self.at_marks.items()},
            "curve": [list(point) for point in self.curve],
            "incumbent": self.incumbent_params,
            "incumbent_value": self.incumbent_value,
        }

    def close(self) -> None:
        """End of a run that stopped before the budget: the regret in force at the end is
        the regret at every mark not reached."""
        for mark in self.marks:
            self.at_marks.setdefault(mark, self.regret)

    def _check_step(self, step: int) -> int:
        if int(step) != step or not 1 <= step <= self.max_step:
            raise ValueError(f"a step must be an integer in 1..{self.max_step}, got {step!r}")
        if self.spent:
            raise BudgetSpent(f"charged after the budget ({self.budget:g} units) was spent")
        return int(step)

    def _pay(self, steps: int, params: Mapping[str, Any], step: int, value: float) -> None:
        self.spent_steps += steps
        self.evaluations += 1
        value = float(value)
        if step > self.top_step or (step == self.top_step and value < self.incumbent_value):
            self.top_step = step
            changed = self.incumbent_params is None or params != self.incumbent_params
            self.incumbent_value = value
            if changed:
                self.incumbent_params = dict(params)
                regret = self.problem.regret(params)
                if regret != self.regret:
                    self.regret = regret
                    self.curve.append((self.cost, regret))
        for mark in self.marks:
            if mark not in self.at_marks and self.spent_steps >= mark * self.max_step - 1e-9:
                self.at_marks[mark] = self.regret
        if self.spent:
            raise BudgetSpent(f"{self.cost:g} units spent (budget {self.budget:g})")
