"""NumPy arrays and everything scikit-learn turns into one (lists, pandas, memmaps)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import _check_sample_weight, validate_data

from ..engines import make_engine
from ._base import ZERO_TOTAL_WEIGHT, Input

FLOAT_DTYPES = (np.float64, np.float32)


class NumpyInput(Input):
    """In-memory input that scikit-learn's ``validate_data`` takes.

    The engines share the checked array's memory (``as_shared_tensor``); the
    results come back as NumPy arrays.
    """

    name = "numpy"

    def check_samples(self, estimator, X, *, reset, ensure_min_samples=1):
        return validate_data(
            estimator,
            X,
            dtype=FLOAT_DTYPES,
            ensure_min_samples=ensure_min_samples,
            reset=reset,
        )

    def check_sample_weight(self, sample_weight, X):
        return _check_sample_weight(
            sample_weight, X, dtype=X.dtype, ensure_non_negative=True
        )

    def make_engine(self, estimator, X, verbose=0):
        return make_engine(estimator.engine, estimator.device, verbose=verbose)

    def initialisation_sample(
        self, X, sample_weight, *, n_components, random_state, needs_rows
    ):
        return X, sample_weight

    def weighted_mean(self, values, sample_weight):
        if not np.sum(sample_weight, dtype=np.float64) > 0:
            raise ValueError(ZERO_TOTAL_WEIGHT)
        values = self.as_output(values, None).astype(np.float64, copy=False)
        return float(np.average(values, weights=sample_weight))

    def as_output(self, result, like):
        if isinstance(result, torch.Tensor):
            # A view of a CPU result: no copy.
            return result.detach().cpu().numpy()
        return np.asarray(result)
