"""An inverse-Wishart prior on each component's covariance (MAP-EM).

Real measurements have tied and duplicated values. Maximum likelihood lets a
component shrink onto a few of them: its covariance falls to ``reg_covar``
and its likelihood grows without bound, so no penalty on the weights can
remove it. A conjugate prior on the covariances keeps every component's
covariance at the scale of the data unless its samples say otherwise, and
keeps the M-step in closed form (Fraley and Raftery 2007, R's mclust
``priorControl``; the maths is in ``docs/maths.rst``, section "Priors on the
covariances and the automatic sparsity").

With scale ``Psi`` and degrees of freedom ``nu``, the prior adds to the
objective, per component and per unit of sample weight,

    R(Sigma) = (a (log|Sigma| - log|Sigma*|) + tr(Psi Sigma^-1) - a D) / (2 N)

with ``a = nu + D + 1``, ``Sigma* = Psi / a`` (the prior's mode, where
``R = 0``; ``R >= 0`` everywhere, so removing a component never raises the
penalty) and ``N`` the total sample weight. The M-step that minimises the
expected complete-data objective is then ``Sigma_j = (Psi + S_j) / (n_j + a)``,
``S_j`` the weighted scatter about the component's mean, projected onto the
covariance type (its diagonal for 'diag', its mean variance for
'spherical', one shared matrix for 'tied').
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._gaussian import log_det_precision_cholesky


@dataclass(frozen=True)
class CovariancePrior:
    """An inverse-Wishart prior ``IW(Psi, nu)`` on every covariance.

    Parameters
    ----------
    scale : torch.Tensor of shape (n_features, n_features), float64
        ``Psi``, symmetric positive definite.
    degrees_of_freedom : float
        ``nu > D - 1``.
    total_weight : float
        ``N``, the total sample weight: the prior counts like ``nu``
        samples, so its share of the objective shrinks as ``1 / N``.
    """

    scale: torch.Tensor
    degrees_of_freedom: float
    total_weight: float

    @property
    def n_features(self) -> int:
        return self.scale.shape[0]

    @property
    def strength(self) -> float:
        """``a = nu + D + 1``: the prior's weight in the MAP covariance."""
        return self.degrees_of_freedom + self.n_features + 1

    def projected_scale(self, covariance_type):
        """``Psi`` in the shape of the covariance type's covariances.

        Returns
        -------
        torch.Tensor
            (D, D) for 'full' and 'tied', (D,) for 'diag', a scalar (the mean
            of the diagonal) for 'spherical'.
        """
        if covariance_type in ("full", "tied"):
            return self.scale
        diagonal = torch.diagonal(self.scale)
        if covariance_type == "diag":
            return diagonal
        return diagonal.mean()

    def map_covariances(self, nk, scatter, covariance_type):
        """``(Psi + S_j) / (n_j + a)``, the covariances that minimise the M-step.

        Parameters
        ----------
        nk : torch.Tensor of shape (n_components,)
        scatter : torch.Tensor
            Weighted scatter about each mean: (n_components, D, D) for 'full',
            (D, D) summed over components for 'tied', (n_components, D) for
            'diag', (n_components,) for 'spherical' (the mean over features).

        Returns
        -------
        torch.Tensor
            Covariances of the type's shape, before ``reg_covar``.
        """
        psi = self.projected_scale(covariance_type).to(scatter)
        a = self.strength
        if covariance_type == "full":
            return (psi + scatter) / (nk + a)[:, None, None]
        if covariance_type == "tied":
            return (psi + scatter) / (nk.sum() + a)
        if covariance_type == "diag":
            return (psi + scatter) / (nk + a)[:, None]
        return (psi + scatter) / (nk + a)

    def penalty(self, precisions_cholesky, covariance_type):
        """The prior's share of the objective, ``sum_j R(Sigma_j)``.

        Differentiable in ``precisions_cholesky`` (the gradient solvers
        minimise it too).

        Parameters
        ----------
        precisions_cholesky : torch.Tensor
            The components' precision factors, in scikit-learn's shapes.
        covariance_type : str

        Returns
        -------
        torch.Tensor
            A scalar, in nats per unit of sample weight.
        """
        n_features = self.n_features
        a = self.strength
        factor = precisions_cholesky.to(torch.float64)
        psi, log_det_mode = self._mode_terms(covariance_type, factor.device)
        # log|Sigma| = -2 log|U|; tr(Psi Sigma^-1) = ||L^T U||^2 with Psi = L L^T.
        log_det_covariance = -2 * log_det_precision_cholesky(
            factor, covariance_type, n_features
        )
        if covariance_type in ("full", "tied"):
            trace = (psi @ factor).square().sum((-2, -1))
        elif covariance_type == "diag":
            trace = (psi * factor.square()).sum(-1)
        else:
            trace = n_features * psi * factor.square()
        per_component = a * (log_det_covariance - log_det_mode) + trace - a * n_features
        return per_component.sum() / (2 * self.total_weight)

    def _mode_terms(self, covariance_type, device):
        """``(Psi, or L^T where Psi = L L^T, log|Psi / a|)``, computed once.

        The penalty is evaluated with every E-step; ``Psi`` never changes,
        and its Cholesky factor and log-determinant were a third of the
        penalty's cost on small data.
        """
        key = (covariance_type, str(device))
        cache = self.__dict__.setdefault("_mode_cache", {})
        if key not in cache:
            psi = self.projected_scale(covariance_type).to(
                dtype=torch.float64, device=device
            )
            if covariance_type in ("full", "tied"):
                root = torch.linalg.cholesky(psi)
                psi, log_det = root.mT, 2 * torch.log(torch.diagonal(root)).sum()
            elif covariance_type == "diag":
                log_det = torch.log(psi).sum()
            else:
                log_det = self.n_features * torch.log(psi)
            cache[key] = (psi, log_det - self.n_features * math.log(self.strength))
        return cache[key]


def _auto_scale(X, sample_weight, n_components):
    """mclust's default scale: the data's covariance over ``K^(2/D)``.

    The weighted covariance of the features keeps their correlations (a
    diagonal scale would pull every component's correlations towards zero).
    A thousandth of the mean variance on the diagonal keeps ``Psi``
    positive definite for constant or collinear features.
    """
    # Written with operations that Dask arrays and tensors share, so that a
    # Dask X is reduced on its workers and a tensor on its device; only the
    # D x D result comes to the host.
    weight = sample_weight / sample_weight.sum()
    mean = weight @ X
    centred = X - mean
    covariance = (centred * weight[:, None]).T @ centred
    if isinstance(covariance, torch.Tensor):
        covariance = covariance.cpu()
    covariance = np.asarray(covariance, np.float64)
    n_features = X.shape[1]
    mean_variance = np.trace(covariance) / n_features
    floor = 1e-3 * mean_variance if mean_variance > 0 else 1.0
    covariance = covariance + floor * np.eye(n_features)
    return covariance / n_components ** (2.0 / n_features)


def resolve_covariance_prior(spec, X, sample_weight, n_components, total_weight=None):
    """The prior for the estimator's ``covariance_prior`` parameter.

    Parameters
    ----------
    spec : {'auto'}, float, array-like of shape (n_features, n_features) or None
        'auto' is mclust's default: ``nu = D + 2`` and ``Psi`` the data's
        covariance over ``n_components^(2/D)``. A float ``v`` is ``Psi = v I``
        and an array is ``Psi`` itself, both with ``nu = D + 2``. None is no
        prior (maximum likelihood).
    X : numpy.ndarray, torch.Tensor or dask.array.Array of shape \
            (n_samples, n_features)
        The training data, or a sample of its rows.
    sample_weight : numpy.ndarray, torch.Tensor or dask.array.Array of shape \
            (n_samples,)
    n_components : int
    total_weight : float, optional
        The training data's total sample weight, when ``X`` is only a sample
        of it (Dask); ``sample_weight.sum()`` by default.

    Returns
    -------
    CovariancePrior or None

    Raises
    ------
    ValueError
        If a given scale is not of shape (n_features, n_features), symmetric
        and positive definite.
    """
    if spec is None:
        return None
    n_features = X.shape[1]
    if total_weight is None:
        total_weight = sample_weight.sum()
    if isinstance(spec, str):
        if isinstance(X, torch.Tensor):
            X, sample_weight = X.double(), sample_weight.double()
        else:
            X, sample_weight = X.astype(np.float64), sample_weight.astype(np.float64)
        scale = _auto_scale(X, sample_weight, n_components)
    elif np.ndim(spec) == 0:
        scale = float(spec) * np.eye(n_features)
    else:
        scale = np.asarray(spec, dtype=np.float64)
        if scale.shape != (n_features, n_features):
            raise ValueError(
                f"covariance_prior must have shape ({n_features}, {n_features}) "
                f"for data with {n_features} features, got {scale.shape}."
            )
        if not np.allclose(scale, scale.T) or np.any(np.linalg.eigvalsh(scale) <= 0):
            raise ValueError(
                "covariance_prior must be symmetric positive definite: it is "
                "the inverse-Wishart scale Psi."
            )
    return CovariancePrior(
        torch.as_tensor(scale, dtype=torch.float64),
        degrees_of_freedom=n_features + 2.0,
        total_weight=float(total_weight),
    )
