"""Closed-form updates from sufficient statistics.

Shared by the MM-EM solver and the initialisation, which both turn summed
responsibilities into parameters.
"""

from __future__ import annotations

import numpy as np
import torch

from ._gaussian import (
    covariances_from_moments,
    precision_cholesky_from_covariances,
)
from ._moments import split_moments
from .engines import SufficientStatistics


def gaussian_components(
    statistics: SufficientStatistics,
    covariance_type,
    reg_covar,
    keep=None,
    covariance_prior=None,
):
    """Means, covariances and precision factors from the E-step's sums.

    Parameters
    ----------
    statistics : SufficientStatistics
    covariance_type : str
    reg_covar : float
        Added to the diagonal of every covariance.
    keep : numpy.ndarray of bool, shape (n_components,), optional
        Only these components are estimated (the pruned ones are skipped, so
        that an empty component never makes the covariance ill-defined).
    covariance_prior : CovariancePrior, optional
        MAP covariances under this prior; maximum likelihood without.

    Returns
    -------
    means : torch.Tensor of shape (n_kept, n_features)
    covariances, precisions_cholesky : torch.Tensor

    Raises
    ------
    ValueError
        If a covariance is not positive definite (telling to raise reg_covar).
    """
    n_features = statistics.center.shape[0]
    moments = statistics.moments
    if keep is not None and not keep.all():
        moments = moments[torch.as_tensor(np.flatnonzero(keep), device=moments.device)]
    nk, first, second = split_moments(moments, covariance_type, n_features)
    # As scikit-learn: a floor of 10 eps keeps an empty component finite.
    nk = nk + 10 * torch.finfo(torch.float64).eps
    shifted_means = first / nk[:, None]
    covariances = covariances_from_moments(
        nk, shifted_means, second, covariance_type, reg_covar, covariance_prior
    )
    precisions_cholesky = precision_cholesky_from_covariances(
        covariances, covariance_type, reg_covar
    )
    return shifted_means + statistics.center, covariances, precisions_cholesky


def mm_weights(responsibility_mass, tangent_slopes, tol=1e-15, max_iter=200):
    """Minimise ``-sum a_j log W_j + sum c_j W_j`` over the probability simplex.

    The minimiser is ``W_j = a_j / (lam + c_j)`` with the one ``lam > -min c_j``
    where the weights sum to one (the sum is decreasing in ``lam``). ``lam`` is
    found by Newton's method from the left, where the sum is convex, with a
    bisection safeguard.

    Parameters
    ----------
    responsibility_mass : numpy.ndarray of shape (n_components,)
        ``a_j = n_j / sum_i w_i``, non-negative, summing to one.
    tangent_slopes : numpy.ndarray of shape (n_components,)
        ``c_j >= 0``, the slope of the penalty's tangent at the current weights;
        ``inf`` forces ``W_j = 0``.

    Returns
    -------
    weights : numpy.ndarray of shape (n_components,)
    """
    a = np.asarray(responsibility_mass, dtype=np.float64)
    c = np.asarray(tangent_slopes, dtype=np.float64)
    alive = (a > 0) & np.isfinite(c)
    weights = np.zeros_like(a)
    if not alive.any():
        raise ValueError("No mixture component has any responsibility left.")
    a_alive, c_alive = a[alive] / a[alive].sum(), c[alive]
    if np.all(c_alive == c_alive[0]):
        # A common slope leaves the weights at the responsibility masses,
        # exactly (plain EM for sparsity=0).
        weights[alive] = a_alive
        return weights

    # ndarray.sum, not np.sum: this loop runs in every MM-EM iteration, and
    # np.sum's dispatch costs more than the sum of 20 numbers.
    def excess(lam):
        return (a_alive / (lam + c_alive)).sum() - 1.0

    j = np.argmin(c_alive)
    # excess(low) >= 0: the smallest-slope term alone reaches one there, and
    # so does the whole sum at 1 - max c. excess(high) <= 0 at 1 - min c.
    low = max(a_alive[j] - c_alive[j], 1.0 - c_alive.max())
    high = 1.0 - c_alive[j]
    lam = low
    for _ in range(max_iter):
        value = excess(lam)
        if abs(value) <= tol:
            break
        if value > 0:
            low = lam
        else:
            high = lam
        # Near a pole (lam + c_j tiny, for a tiny mass a_j) the slope
        # overflows to inf, or its square underflows to 0: the Newton step is
        # then lam itself, and bisection takes over.
        with np.errstate(over="ignore", divide="ignore"):
            slope = (a_alive / (lam + c_alive) ** 2).sum()
        step = lam + value / slope
        lam = step if low < step < high else 0.5 * (low + high)
        if high - low <= tol * max(1.0, abs(lam)):
            break
    new = a_alive / (lam + c_alive)
    weights[alive] = new / new.sum()
    return weights
