"""Merge moves: two components that model one cluster replaced by one.

Started with many components, the sparse fit splits each cluster between
several. The square-root penalty favours one of them only weakly, so the
others die over hundreds of iterations (compare.py's 3-cluster 2-D mixture
of 20,000 samples: 189 iterations before the first of 20 components died,
300 to reach 3). A merge move replaces the two most overlapping components
by the one Gaussian with their pooled weight, mean and covariance, and is
taken only where it lowers the objective ``F`` (so ``F`` still never rises),
as the merge step of split-and-merge EM (Ueda et al. 2000) does
(``docs/maths.rst``, section 3.5).
"""

from __future__ import annotations

import numpy as np
import torch

from ._gaussian import (
    MixtureParameters,
    component_precisions_cholesky,
    log_det_precision_cholesky,
    precision_cholesky_from_covariances,
)


def _full_covariances(parameters: MixtureParameters):
    """Every component's covariance as a full matrix; shape (M, D, D).

    Tied covariances are not merged (their shared matrix would not be the
    pooled one), so they are not handled here.
    """
    covariances = parameters.covariances
    n_features = parameters.n_features
    if parameters.covariance_type == "full":
        return covariances
    if parameters.covariance_type == "diag":
        return torch.diag_embed(covariances)
    eye = torch.eye(n_features, dtype=covariances.dtype, device=covariances.device)
    return covariances[:, None, None] * eye


def _projected(covariance, covariance_type):
    """A full ``(D, D)`` covariance in the covariance type's shape."""
    if covariance_type == "full":
        return covariance
    diagonal = torch.diagonal(covariance)
    if covariance_type == "diag":
        return diagonal
    return diagonal.mean()


def bhattacharyya_coefficients(means, covariances, pairs, log_det=None):
    """``exp(-D_B)`` of each pair of Gaussians: 1 for equal ones, 0 for disjoint.

    Parameters
    ----------
    means : torch.Tensor of shape (M, D)
    covariances : torch.Tensor of shape (M, D, D)
    pairs : torch.Tensor of shape (n_pairs, 2), int64
    log_det : torch.Tensor of shape (M,), optional
        ``log |covariances|``, where the caller has it.

    Returns
    -------
    torch.Tensor of shape (n_pairs,)
        Minus infinity's exponential (0) where the pooled covariance is not
        positive definite.
    """
    first, second = pairs[:, 0], pairs[:, 1]
    pooled = 0.5 * (covariances[first] + covariances[second])
    difference = means[first] - means[second]
    factor, info = torch.linalg.cholesky_ex(pooled)
    whitened = torch.linalg.solve_triangular(
        factor, difference[..., None], upper=False
    )[..., 0]
    log_det_pooled = 2 * torch.log(torch.diagonal(factor, dim1=-2, dim2=-1)).sum(-1)
    if log_det is None:
        log_det = torch.linalg.slogdet(covariances)[1]
    distance = whitened.square().sum(-1) / 8 + 0.5 * (
        log_det_pooled - 0.5 * (log_det[first] + log_det[second])
    )
    coefficients = torch.exp(-distance)
    return torch.where(info == 0, coefficients, torch.zeros_like(coefficients))


def candidate_pairs(parameters: MixtureParameters):
    """Each component paired with its nearest neighbour.

    Nearest by the squared Mahalanobis distance between the means under the
    first component's precision, symmetrised. Only these ``M`` pairs (fewer
    after removing duplicates) are scored, not all ``M (M - 1) / 2``: the
    pooled covariances of all pairs would take ``M^2 D^2`` numbers.

    Returns
    -------
    torch.Tensor of shape (n_pairs, 2), int64
        ``(j, k)`` with ``j < k``, each pair once, in increasing order.
    """
    means = parameters.means
    factor = component_precisions_cholesky(parameters)
    # Row j of (M, M, D) whitened by component j's precision factor U_j:
    # ||(mu_k - mu_j) U_j||^2 is the squared Mahalanobis distance, with no
    # factorisation of the covariances.
    difference = means[None, :, :] - means[:, None, :]
    if factor.ndim == 3:
        whitened = difference @ factor
    else:
        whitened = difference * factor[:, None, :]
    distance = whitened.square().sum(-1)
    distance = distance + distance.T
    distance.fill_diagonal_(float("inf"))
    nearest = torch.argmin(distance, dim=1).cpu().numpy()
    index = np.arange(parameters.n_components)
    # Each pair coded as j M + k: np.unique of a 2-D array by rows costs
    # more than the rest of this function.
    codes = np.unique(
        np.minimum(index, nearest) * index.size + np.maximum(index, nearest)
    )
    pairs = np.stack(np.divmod(codes, index.size), axis=1)
    return torch.as_tensor(pairs, device=means.device)


def most_overlapping_pair(parameters: MixtureParameters, excluded=()):
    """The candidate pair with the largest Bhattacharyya coefficient.

    Parameters
    ----------
    parameters : MixtureParameters
    excluded : collection of tuple
        Pairs, as ``(active[j], active[k])`` with ``j < k``, not to propose.

    Returns
    -------
    pair : tuple of int or None
        ``(j, k)``, indices into the components; None when none is left.
    coefficient : float
    """
    pairs = candidate_pairs(parameters)
    log_det = -2 * log_det_precision_cholesky(
        parameters.precisions_cholesky,
        parameters.covariance_type,
        parameters.n_features,
    )
    coefficients = bhattacharyya_coefficients(
        parameters.means, _full_covariances(parameters), pairs, log_det
    )
    pairs = pairs.cpu().numpy()
    coefficients = coefficients.cpu().numpy()
    active = parameters.active
    for position in np.argsort(-coefficients, kind="stable"):
        j, k = (int(index) for index in pairs[position])
        if (int(active[j]), int(active[k])) not in excluded:
            return (j, k), float(coefficients[position])
    return None, 0.0


def merged(parameters: MixtureParameters, j, k):
    """Components ``j`` and ``k`` replaced by one with their pooled moments.

    The merged component takes ``j``'s place (and its index among the
    starting components): weight ``W_j + W_k``, the weighted mean of the
    means, and the covariance that matches the pair's second moment,
    projected onto the covariance type.

    Returns
    -------
    MixtureParameters
        With one component fewer.

    Raises
    ------
    ValueError
        If the pooled covariance is not positive definite.
    """
    weights, means = parameters.weights, parameters.means
    covariances = _full_covariances(parameters)
    weight = weights[j] + weights[k]
    mean = (weights[j] * means[j] + weights[k] * means[k]) / weight
    spread_j, spread_k = means[j] - mean, means[k] - mean
    pooled = (
        weights[j] * (covariances[j] + torch.outer(spread_j, spread_j))
        + weights[k] * (covariances[k] + torch.outer(spread_k, spread_k))
    ) / weight
    covariance_type = parameters.covariance_type
    new_weights, new_means = weights.clone(), means.clone()
    new_covariances = parameters.covariances.clone()
    new_weights[j], new_means[j] = weight, mean
    new_covariances[j] = _projected(pooled, covariance_type)
    keep = np.ones(parameters.n_components, dtype=bool)
    keep[k] = False
    index = torch.as_tensor(np.flatnonzero(keep), device=means.device)
    new_covariances = new_covariances[index]
    return MixtureParameters(
        weights=new_weights[index],
        means=new_means[index],
        covariances=new_covariances,
        # reg_covar is only quoted in the error message.
        precisions_cholesky=precision_cholesky_from_covariances(
            new_covariances, covariance_type, reg_covar=0.0
        ),
        covariance_type=covariance_type,
        active=parameters.active[keep],
    )
