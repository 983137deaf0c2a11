"""Checks of user-supplied arrays beyond what scikit-learn's validation does."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_array


def check_enough_samples(n_samples, n_components):
    """A mixture of ``n_components`` needs at least as many samples."""
    if n_samples < n_components:
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = "
            f"{n_components}, n_samples = {n_samples}: lower n_components."
        )


def check_weights_init(weights, n_components):
    """``weights_init``: shape (n_components,), in [0, 1], summing to one."""
    weights = check_array(weights, dtype=np.float64, ensure_2d=False)
    if weights.shape != (n_components,):
        raise ValueError(
            f"weights_init must have shape ({n_components},), got {weights.shape}."
        )
    if np.any(weights < 0) or np.any(weights > 1):
        raise ValueError(
            "weights_init must lie in [0, 1], got min "
            f"{weights.min():.5f} and max {weights.max():.5f}."
        )
    if not np.allclose(weights.sum(), 1.0, rtol=0, atol=1e-6):
        raise ValueError(f"weights_init must sum to 1, got {weights.sum():.8f}.")
    return weights


def check_means_init(means, n_components, n_features):
    """``means_init``: shape (n_components, n_features), finite."""
    means = check_array(means, dtype=np.float64)
    if means.shape != (n_components, n_features):
        raise ValueError(
            f"means_init must have shape ({n_components}, {n_features}), "
            f"got {means.shape}."
        )
    return means


def check_precisions_init(precisions, covariance_type, n_components, n_features):
    """``precisions_init``: the shape of its type, symmetric positive definite."""
    precisions = check_array(
        precisions, dtype=np.float64, ensure_2d=False, allow_nd=True
    )
    shape = {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]
    if precisions.shape != shape:
        raise ValueError(
            f"precisions_init for covariance_type={covariance_type!r} must have "
            f"shape {shape}, got {precisions.shape}."
        )
    if covariance_type in ("full", "tied"):
        matrices = precisions.reshape(-1, n_features, n_features)
        if not np.allclose(matrices, np.swapaxes(matrices, 1, 2)):
            raise ValueError("precisions_init must hold symmetric matrices.")
        if np.any(np.linalg.eigvalsh(matrices) <= 0):
            raise ValueError("precisions_init must hold positive-definite matrices.")
    elif np.any(precisions <= 0):
        raise ValueError("precisions_init must be positive.")
    return precisions
