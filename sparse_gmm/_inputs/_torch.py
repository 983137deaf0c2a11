"""Torch tensors, on the CPU or a GPU, handed to the engines as they are.

A tensor is never copied through NumPy on its way to the engine: it is
checked where it is (one reduction for its finiteness), cast only if its
dtype is neither float32 nor float64, and ``device='auto'`` computes on its
device, so a CUDA tensor runs on the GPU engine. The initialisation and the
automatic covariance prior run there too (on the CPU, scikit-learn's k-means
sees a NumPy view of the tensor's own memory).

Results follow scikit-learn's array API convention. Under
``sklearn.config_context(array_api_dispatch=True)`` the per-sample results,
``sample``'s draws and every fitted array (``weights_``, ``means_``, ...,
``active_components_`` and the curves) are tensors on the input's device, as
GaussianMixture returns them; without it they are NumPy arrays, as
scikit-learn returns for any input when dispatch is off. A
CUDA tensor is accepted either way: without dispatch it is fitted on its GPU
and the results come back to the host as NumPy arrays (scikit-learn's own
estimators refuse it there, since NumPy cannot read GPU memory).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch
from sklearn.utils.validation import _check_feature_names, _check_n_features

from ..engines import make_engine
from ._base import (
    NON_FINITE_X,
    ZERO_TOTAL_WEIGHT,
    Input,
    array_api_dispatch,
    check_sample_matrix,
)

_FLOAT_DTYPES = (torch.float64, torch.float32)


def host_array(value):
    """A tensor as a NumPy array on the host (a view of CPU memory); else ``value``.

    For the user-supplied starting parameters and the fitted attributes,
    which are small and checked and used on the host.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value


def _numpy_dtype(dtype):
    return torch.empty(0, dtype=dtype).numpy().dtype


class TorchInput(Input):
    """Torch tensors in; tensors or NumPy arrays out (module docstring)."""

    name = "torch"

    def check_samples(self, estimator, X, *, reset, ensure_min_samples=1):
        if X.layout != torch.strided:
            raise ValueError(
                f"X is a sparse tensor ({X.layout}); pass X.to_dense(). The "
                "mixture's covariances make every sample dense anyway."
            )
        check_sample_matrix(X, "tensor", ensure_min_samples)
        if X.is_complex():
            raise ValueError(f"Complex data not supported (X has dtype {X.dtype}).")
        _check_feature_names(estimator, X, reset=reset)
        _check_n_features(estimator, X, reset=reset)
        X = X.detach()
        if X.dtype not in _FLOAT_DTYPES:
            # As check_array casts what is neither float32 nor float64.
            X = X.to(torch.float64)
        if not bool(torch.isfinite(X).all()):
            raise ValueError(NON_FINITE_X)
        return X

    def check_sample_weight(self, sample_weight, X):
        n_samples = X.shape[0]
        if sample_weight is None:
            return torch.ones(n_samples, dtype=X.dtype, device=X.device)
        if isinstance(sample_weight, Real):
            if not (math.isfinite(sample_weight) and sample_weight >= 0):
                raise ValueError(
                    "sample_weight must be finite and non-negative, got "
                    f"{sample_weight}."
                )
            return torch.full(
                (n_samples,), float(sample_weight), dtype=X.dtype, device=X.device
            )
        if isinstance(sample_weight, torch.Tensor):
            weight = sample_weight.detach()
        else:
            weight = torch.as_tensor(np.asarray(sample_weight, dtype=np.float64))
        if weight.shape != (n_samples,):
            raise ValueError(
                f"sample_weight.shape == {tuple(weight.shape)}, expected "
                f"({n_samples},)."
            )
        if weight.is_complex():
            raise ValueError(
                f"sample_weight has dtype {weight.dtype}; expected real numbers."
            )
        weight = weight.to(device=X.device, dtype=X.dtype)
        if not bool(torch.isfinite(weight).all()):
            raise ValueError("Input sample_weight contains NaN or infinity.")
        if bool((weight < 0).any()):
            raise ValueError("Negative values in data passed to `sample_weight`.")
        return weight

    def _take_rows(self, array, rows):
        return array[torch.as_tensor(rows, device=array.device)]

    def _unique_row_count(self, X):
        return torch.unique(X, dim=0).shape[0]

    def make_engine(self, estimator, X, verbose=0):
        # 'auto' computes where the tensor is, as geomloss and scikit-learn's
        # array API do; a named device moves the tensor there.
        device = X.device if estimator.device == "auto" else estimator.device
        return make_engine(estimator.engine, device, verbose=verbose)

    def initialisation_sample(
        self, X, sample_weight, *, n_components, random_state, needs_rows
    ):
        if X.device.type == "cpu":
            # A view: NumPy and tensor input then start identically.
            return host_array(X), host_array(sample_weight)
        return X, sample_weight

    def weighted_mean(self, values, sample_weight):
        weight = sample_weight.to(device=values.device, dtype=torch.float64)
        total = weight.sum()
        if not bool(total > 0):
            raise ValueError(ZERO_TOTAL_WEIGHT)
        return float(weight @ values.to(torch.float64) / total)

    def as_output(self, result, like):
        if array_api_dispatch():
            return torch.as_tensor(result, device=like.device)
        return host_array(result)

    def numpy_dtype(self, X):
        return _numpy_dtype(X.dtype)
