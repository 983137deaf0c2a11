"""The moment feature map that makes a Gaussian mixture's E-step two matmuls.

With ``phi(x) = (1, x, second-order terms of x)``, every component's joint
log-density ``log W_j + log N(x | mu_j, Sigma_j)`` is the linear form
``phi(x) . theta_j``, and every EM statistic (``n_j``, first and second moments)
is ``sum_i w_i r_ij phi(x_i)``. The second-order terms depend on the covariance
type: the upper triangle of ``x x^T`` ('full', 'tied'), the squares ``x_d^2``
('diag') or ``|x|^2`` ('spherical').

The expanded quadratic form loses about ``eps * (spread / scale)^2`` to
cancellation, so callers shift samples by a centre near the data (the mixture's
mean) before calling :func:`moment_features`; that makes offsets harmless.
"""

from __future__ import annotations

import functools

import torch

from ._gaussian import MixtureParameters, component_precisions, log_normalisers


def n_moment_features(covariance_type, n_features):
    """Length of ``phi(x)`` for a covariance type and dimension."""
    second_order = {
        "full": n_features * (n_features + 1) // 2,
        "tied": n_features * (n_features + 1) // 2,
        "diag": n_features,
        "spherical": 1,
    }[covariance_type]
    return 1 + n_features + second_order


@functools.lru_cache(maxsize=64)
def _triu(n_features, device):
    # Cached: three calls per EM iteration otherwise allocate the same
    # indices. Callers only read them.
    return torch.triu_indices(n_features, n_features, device=device)


@functools.lru_cache(maxsize=64)
def _symmetric_positions(n_features, device):
    """For each entry ``(r, c)`` of a D x D matrix, its place in ``phi``'s triangle.

    One gather then unpacks the triangle into the symmetric matrix.
    """
    rows, cols = _triu(n_features, device)
    positions = torch.empty((n_features, n_features), dtype=torch.int64, device=device)
    order = torch.arange(rows.shape[0], device=device)
    positions[rows, cols] = order
    positions[cols, rows] = order
    return positions.flatten()


@functools.lru_cache(maxsize=64)
def _quadratic_scale(n_features, device):
    """-1/2 for the diagonal's entries of ``phi``, -1 for the others (float64).

    Off-diagonal products appear once in ``phi`` but twice in ``x^T P x``.
    """
    rows, cols = _triu(n_features, device)
    return torch.where(rows == cols, -0.5, -1.0).to(torch.float64)


def moment_features(X, covariance_type):
    """``phi(x)`` for every row.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        Samples, already shifted by the centre.
    covariance_type : str

    Returns
    -------
    phi : torch.Tensor of shape (n_samples, n_moment_features)
    """
    if covariance_type in ("full", "tied"):
        rows, cols = _triu(X.shape[1], X.device)
        second = X[:, rows] * X[:, cols]
    elif covariance_type == "diag":
        second = X * X
    else:
        second = (X * X).sum(1, keepdim=True)
    return torch.cat((torch.ones_like(X[:, :1]), X, second), dim=1)


def log_density_coefficients(parameters: MixtureParameters, center):
    """``theta`` such that ``phi(x - center) @ theta`` is ``log W_j N_j(x)``.

    Parameters
    ----------
    parameters : MixtureParameters
    center : torch.Tensor of shape (n_features,)

    Returns
    -------
    theta : torch.Tensor of shape (n_moment_features, n_components), float64
    """
    covariance_type = parameters.covariance_type
    means = parameters.means - center
    precisions = component_precisions(parameters)
    if covariance_type in ("full", "tied"):
        linear = (precisions @ means[:, :, None])[:, :, 0]
        rows, cols = _triu(parameters.n_features, means.device)
        second = precisions[:, rows, cols] * _quadratic_scale(
            parameters.n_features, means.device
        )
    elif covariance_type == "diag":
        linear = precisions * means
        second = -0.5 * precisions
    else:
        linear = precisions[:, None] * means
        second = -0.5 * precisions[:, None]
    constant = log_normalisers(parameters) - 0.5 * (linear * means).sum(1)
    return torch.cat((constant[:, None], linear, second), dim=1).T.contiguous()


def split_moments(moments, covariance_type, n_features):
    """Split summed ``r_ij phi(x_i)`` into ``n_j``, first and second moments.

    Parameters
    ----------
    moments : torch.Tensor of shape (n_components, n_moment_features)
    covariance_type : str
    n_features : int

    Returns
    -------
    nk : torch.Tensor of shape (n_components,)
    first : torch.Tensor of shape (n_components, n_features)
    second : torch.Tensor
        (n_components, D, D) for 'full' and 'tied' (symmetric),
        (n_components, D) for 'diag', (n_components,) for 'spherical'.
    """
    nk = moments[:, 0]
    first = moments[:, 1 : 1 + n_features]
    packed = moments[:, 1 + n_features :]
    if covariance_type in ("full", "tied"):
        second = packed[:, _symmetric_positions(n_features, moments.device)].view(
            -1, n_features, n_features
        )
    elif covariance_type == "diag":
        second = packed
    else:
        second = packed[:, 0]
    return nk, first, second
