"""The scikit-learn adapter's hyperparameters beyond the float range are ValueErrors, as xmlp's
own are."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import (
    HUGE_INT,
)


@pytest.mark.parametrize("param", ["learning_rate_init", "alpha", "power_t", "tol", "epsilon",
                                   "max_iter", "batch_size", "hidden_layer_sizes"])
def test_sklearn_hyperparameters_beyond_the_float_range_are_value_errors(param):
    sk = pytest.importorskip("xmlp.sklearn", reason="the adapter needs scikit-learn")
    value = (HUGE_INT,) if param == "hidden_layer_sizes" else HUGE_INT
    kwargs = {"max_iter": 2, param: value}
    x = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ValueError):
        sk.MLPRegressor(**kwargs).fit(x, x[:, 0])
