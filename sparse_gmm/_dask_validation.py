"""Checks of Dask input, made without pulling the data to the client.

Shapes, dtypes and chunks are checked from the array's metadata. The values
(finite samples, finite non-negative weights) need a pass over the data: the
fit makes it once, as a few reductions computed together, before anything
else; the per-sample methods check each block on its worker instead, so that
their results stay lazy.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
from sklearn.utils.validation import (
    _check_feature_names,
    _check_n_features,
    _check_sample_weight,
)

from ._dask import import_dask, is_dask_array, is_dask_collection

_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))

NON_FINITE_X = (
    "Input X contains NaN or infinity. Remove or impute those rows (for a Dask "
    "array: X[da.isfinite(X).all(axis=1)], then X.compute_chunk_sizes())."
)


def check_dask_array(estimator, X, *, reset, ensure_min_samples=1):
    """A Dask array of samples as the engines take it, checked from its metadata.

    Parameters
    ----------
    estimator : SparseGaussianMixture
        Gets ``n_features_in_`` when ``reset``, else is checked against it.
    X : dask.array.Array of shape (n_samples, n_features)
    reset : bool
        True in ``fit``, False in the methods that use a fit.
    ensure_min_samples : int, default=1

    Returns
    -------
    dask.array.Array of shape (n_samples, n_features)
        float32 kept, other numbers cast to float64 (as scikit-learn does),
        with the features in one chunk so that a block holds whole rows.

    Raises
    ------
    ValueError
        If X is another Dask collection, is not 2-D, has unknown chunk sizes,
        holds no numbers, or has too few samples or the wrong feature count.
    """
    if not is_dask_array(X):
        raise ValueError(
            f"Expected a Dask array, got {type(X).__module__}.{type(X).__name__}. "
            "Convert a Dask DataFrame with X.to_dask_array(lengths=True)."
        )
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D Dask array of shape (n_samples, n_features), got "
            f"{X.ndim}-D with shape {X.shape}. Reshape your data, with "
            "X.reshape(-1, 1) for a single feature."
        )
    if any(math.isnan(size) for size in X.shape):
        raise ValueError(
            f"X has unknown chunk sizes (shape {X.shape}), as after boolean "
            "indexing; call X.compute_chunk_sizes() first."
        )
    n_samples, n_features = X.shape
    if X.dtype.kind == "c":
        raise ValueError(f"Complex data not supported (X has dtype {X.dtype}).")
    if X.dtype.kind not in "biuf":
        raise ValueError(
            f"X has dtype {X.dtype}; expected numbers (float32 or float64, or "
            "integers, which are cast to float64)."
        )
    if n_features < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
            "of 1 is required."
        )
    if n_samples < ensure_min_samples:
        raise ValueError(
            f"Found array with {n_samples} sample(s) (shape={X.shape}) while a "
            f"minimum of {ensure_min_samples} is required."
        )
    _check_feature_names(estimator, X, reset=reset)
    _check_n_features(estimator, X, reset=reset)
    if X.dtype not in _FLOAT_DTYPES:
        X = X.astype(np.float64)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def check_dask_sample_weight(sample_weight, X):
    """Sample weights as a Dask array chunked like the rows of ``X``.

    Parameters
    ----------
    sample_weight : None, float, array-like or dask.array.Array
        None means weight one for every sample; a NumPy array is checked now
        and split like X; a Dask array must have shape (n_samples,) and is
        rechunked to X's row chunks if its chunks differ. Its values are
        checked by :func:`check_dask_values`.
    X : dask.array.Array of shape (n_samples, n_features)
        As returned by :func:`check_dask_array`.

    Returns
    -------
    dask.array.Array of shape (n_samples,), in X's dtype

    Raises
    ------
    ValueError
        If the shape is wrong, the chunk sizes are unknown, or the values
        (of a non-Dask ``sample_weight``) are not finite and non-negative.
    """
    da = import_dask().array
    n_samples = X.shape[0]
    row_chunks = (X.chunks[0],)
    if sample_weight is None:
        return da.ones(n_samples, dtype=X.dtype, chunks=row_chunks)
    if not is_dask_collection(sample_weight):
        if isinstance(sample_weight, Real) and not (
            math.isfinite(sample_weight) and sample_weight >= 0
        ):
            raise ValueError(
                f"sample_weight must be finite and non-negative, got {sample_weight}."
            )
        checked = _check_sample_weight(
            sample_weight, X, dtype=X.dtype, ensure_non_negative=True
        )
        return da.from_array(checked, chunks=row_chunks)
    if not is_dask_array(sample_weight):
        raise ValueError(
            "sample_weight must be a Dask array (or a NumPy array), got "
            f"{type(sample_weight).__module__}.{type(sample_weight).__name__}."
        )
    if sample_weight.ndim != 1 or sample_weight.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight.shape == {sample_weight.shape}, expected ({n_samples},)."
        )
    if sample_weight.dtype.kind not in "biuf":
        raise ValueError(
            f"sample_weight has dtype {sample_weight.dtype}; expected numbers."
        )
    sample_weight = sample_weight.astype(X.dtype)
    if sample_weight.chunks != row_chunks:
        sample_weight = sample_weight.rechunk(row_chunks)
    return sample_weight


def check_dask_values(X, sample_weight):
    """Check that the samples are finite and the weights usable, in one pass.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
    sample_weight : dask.array.Array of shape (n_samples,)

    Raises
    ------
    ValueError
        If X holds NaN or infinity, or the weights are not finite, are
        negative or sum to zero.
    """
    dask = import_dask().dask
    da = import_dask().array
    finite_X, finite_weights, smallest_weight, total_weight = dask.compute(
        da.isfinite(X).all(),
        da.isfinite(sample_weight).all(),
        sample_weight.min(),
        sample_weight.sum(dtype=np.float64),
    )
    if not finite_X:
        raise ValueError(NON_FINITE_X)
    if not finite_weights:
        raise ValueError("Input sample_weight contains NaN or infinity.")
    if smallest_weight < 0:
        raise ValueError("Negative values in data passed to `sample_weight`.")
    if not total_weight > 0:
        raise ValueError("sample_weight sums to zero: no sample would count.")
