"""Checks of user-supplied arrays beyond what scikit-learn's validation does."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils import check_array

from .exceptions import TooFewSamplesWarning

_FLOAT_DTYPES = (np.float64, np.float32)


def check_enough_samples(n_samples, n_components):
    """A mixture of ``n_components`` needs at least as many samples."""
    if n_samples < n_components:
        raise ValueError(
            "Expected n_samples >= n_components "
            f"but got n_components = {n_components}, "
            f"n_samples = {n_samples}"
        )


def starting_component_count(count_distinct, n_samples, n_components, upper_bound):
    """How many components a fit on ``X`` starts with.

    Parameters
    ----------
    count_distinct : callable
        ``count_distinct(enough)``: the number of distinct rows of ``X`` of
        positive weight, or ``enough`` if there are at least that many
        (``Input.distinct_rows``).
    n_samples : int
        Rows of ``X``.
    n_components : int
    upper_bound : bool
        Whether ``n_components`` only bounds the fitted count (the fit can
        remove components). If not, the fit is GaussianMixture's, and so is
        the error for fewer samples than components.

    Returns
    -------
    int
        ``n_components``, or as an upper bound, at most the number of
        distinct rows of positive weight, with a ``TooFewSamplesWarning``:
        further components could only duplicate them.
    """
    if not upper_bound:
        check_enough_samples(n_samples, n_components)
        return n_components
    n_distinct = count_distinct(n_components)
    if 0 < n_distinct < n_components:
        warnings.warn(
            f"X has {n_distinct} distinct samples of positive weight, fewer "
            f"than n_components={n_components}: the fit starts with "
            f"{n_distinct} components.",
            TooFewSamplesWarning,
            # Past the estimator's helper, _fit, fit and its decorator.
            stacklevel=6,
        )
        return n_distinct
    return n_components


def _check_shape(array, shape, name):
    if array.shape != shape:
        raise ValueError(
            f"The parameter '{name}' should have the shape of {shape}, "
            f"but got {array.shape}"
        )


def check_weights_init(weights, n_components):
    """``weights_init``: shape (n_components,), in [0, 1], summing to one.

    Checked as GaussianMixture checks it, with its messages; the sum to
    within 1e-6 in float32, 1e-8 otherwise.
    """
    weights = check_array(weights, dtype=_FLOAT_DTYPES, ensure_2d=False)
    _check_shape(weights, (n_components,), "weights")
    if np.any(weights < 0) or np.any(weights > 1):
        # scikit-learn's message names the minimum "max value" and the
        # maximum "min value"; kept so that what matches its text matches.
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got "
            f"max value {weights.min():.5f}, min value {weights.max():.5f}"
        )
    atol = 1e-6 if weights.dtype == np.float32 else 1e-8
    if not np.allclose(abs(1.0 - weights.sum()), 0.0, atol=atol):
        raise ValueError(
            "The parameter 'weights' should be normalized, but got "
            f"sum(weights) = {weights.sum():.5f}"
        )
    return weights.astype(np.float64)


def check_means_init(means, n_components, n_features):
    """``means_init``: shape (n_components, n_features), finite."""
    means = check_array(means, dtype=np.float64, ensure_2d=False)
    _check_shape(means, (n_components, n_features), "means")
    return means


def check_precisions_init(precisions, covariance_type, n_components, n_features):
    """``precisions_init``: the shape of its type, symmetric positive definite.

    Checked as GaussianMixture checks it, with its messages.
    """
    precisions = check_array(
        precisions,
        dtype=np.float64,
        ensure_2d=False,
        allow_nd=covariance_type == "full",
    )
    shape = {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]
    _check_shape(precisions, shape, f"{covariance_type} precision")
    if covariance_type in ("full", "tied"):
        matrices = precisions.reshape(-1, n_features, n_features)
        if not (
            np.allclose(matrices, np.swapaxes(matrices, 1, 2))
            and np.all(np.linalg.eigvalsh(matrices) > 0)
        ):
            raise ValueError(
                f"'{covariance_type} precision' should be symmetric, positive-definite"
            )
    elif np.any(precisions <= 0):
        raise ValueError(f"'{covariance_type} precision' should be positive")
    return precisions
