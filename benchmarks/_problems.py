"""The real problem of the quality benchmark: an RBF/poly/sigmoid SVC after PCA on the
digits data set that ships with scikit-learn (no download), scored by validation error.

Its optimum is unknown; `quality.py` measures regret against the best validation error
seen across all samplers and seeds of the run.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping
from typing import Any

from tuningfork.space import Categorical, Float, Int, Space
from tuningfork.testing.functions import Problem

__all__ = ["REAL_PROBLEMS", "digits_svc"]

# libsvm iterations per binary problem: without a cap a poly kernel with large C and gamma
# can run for minutes; with it, the slowest configuration takes ~0.15 s on one core and the
# best configurations found are unchanged.
SVC_MAX_ITER = 10_000


@functools.cache
def _digits_split() -> tuple[Any, Any, Any, Any]:
    """A fixed, stratified 50/50 train/validation split of the 1,797 digits (pixels / 16)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return tuple(train_test_split(x / 16.0, y, test_size=0.5, random_state=0, stratify=y))


def digits_svc(params: Mapping[str, Any]) -> float:
    """Validation error (1 - accuracy on 899 held-out digits) of PCA + SVC; ~0.03 s."""
    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    x_train, x_valid, y_train, y_valid = _digits_split()
    model = make_pipeline(
        PCA(n_components=params["pca_components"], whiten=params["whiten"], random_state=0),
        SVC(
            C=params["C"],
            gamma=params["gamma"],
            kernel=params["kernel"],
            degree=params["degree"],
            coef0=params["coef0"],
            max_iter=SVC_MAX_ITER,
        ),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    return float(1.0 - model.score(x_valid, y_valid))


REAL_PROBLEMS: dict[str, Problem] = {
    "digits_svc": Problem(
        "digits_svc",
        Space(
            pca_components=Int(4, 64, log=True),
            whiten=Categorical([False, True]),
            kernel=Categorical(["rbf", "poly", "sigmoid"]),
            C=Float(1e-2, 1e4, log=True),
            gamma=Float(1e-4, 10.0, log=True),
            degree=Int(2, 5),  # used by the poly kernel only
            coef0=Float(-1.0, 1.0),  # used by poly and sigmoid only
        ),
        digits_svc,
        math.nan,  # unknown: regret is taken against the best value seen in the run
    ),
}
"""Problems on real data, by name; their ``optimum`` is NaN (unknown)."""
