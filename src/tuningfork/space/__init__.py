"""Search spaces: Float, Int and Categorical distributions, conditions, and `Space`.

Every distribution maps its legal values to and from the unit interval [0, 1], so samplers
can work in a unit cube; a `Space` orders parameters (parents before children), checks
whole configurations and encodes them as vectors (index or one-hot encoding).
"""

from tuningfork.space._distributions import (
    Categorical,
    Distribution,
    Float,
    Int,
    distribution_from_json,
)
from tuningfork.space._space import Space
from tuningfork.space._values import Value

__all__ = [
    "Categorical",
    "Distribution",
    "Float",
    "Int",
    "Space",
    "Value",
    "distribution_from_json",
]
