"""Gaussian components: parameters and their covariance-type-specific algebra.

Every function here works on float64 torch tensors and knows the four
covariance types of scikit-learn's ``GaussianMixture``. Shapes, per type:

===========  ==========================  =========================
type         covariances / precisions     precisions_cholesky
===========  ==========================  =========================
'full'       (n_components, D, D)         (n_components, D, D)
'tied'       (D, D)                       (D, D)
'diag'       (n_components, D)            (n_components, D)
'spherical'  (n_components,)              (n_components,)
===========  ==========================  =========================

``precisions_cholesky`` is the upper-triangular ``U`` with ``P = U U^T``,
scikit-learn's convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

# GaussianMixture's text first, so that what matches it matches ours.
ILL_DEFINED_COVARIANCE = (
    "Fitting the mixture model failed because some components have "
    "ill-defined empirical covariance (for instance caused by singleton or "
    "collapsed samples). Try to decrease the number of components, increase "
    "reg_covar, or scale the input data. reg_covar is {reg_covar!r}. A "
    "constant feature also does this, and so does a component far narrower "
    "than its distance from the data's mean, whose covariance is lost to "
    "rounding, above all in float32: pass float64 data."
)


@dataclass(frozen=True)
class MixtureParameters:
    """The parameters of a Gaussian mixture, as float64 torch tensors.

    Attributes
    ----------
    weights : torch.Tensor of shape (n_components,)
        Mixture weights, positive, summing to one.
    means : torch.Tensor of shape (n_components, n_features)
    covariances : torch.Tensor
        Shape depends on ``covariance_type`` (see the module docstring).
    precisions_cholesky : torch.Tensor
        Upper-triangular factors ``U`` with ``inv(covariance) = U U^T``.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    active : numpy.ndarray of shape (n_components,)
        Indices of these components among the components the fit started with.
    """

    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor
    precisions_cholesky: torch.Tensor
    covariance_type: str
    active: np.ndarray

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    def subset(self, keep: np.ndarray) -> MixtureParameters:
        """Keep the components where ``keep`` is True, renormalising the weights.

        Parameters
        ----------
        keep : numpy.ndarray of bool, shape (n_components,)

        Returns
        -------
        MixtureParameters
        """
        index = torch.as_tensor(np.flatnonzero(keep), device=self.means.device)
        weights = self.weights[index]
        per_component = self.covariance_type != "tied"
        return replace(
            self,
            weights=weights / weights.sum(),
            means=self.means[index],
            covariances=(
                self.covariances[index] if per_component else self.covariances
            ),
            precisions_cholesky=(
                self.precisions_cholesky[index]
                if per_component
                else self.precisions_cholesky
            ),
            active=self.active[keep],
        )


def precision_cholesky_from_covariances(covariances, covariance_type, reg_covar):
    """Upper-triangular Cholesky factors of the precisions.

    Parameters
    ----------
    covariances : torch.Tensor
        Shape depends on ``covariance_type``.
    covariance_type : str
    reg_covar : float
        Only quoted in the error message.

    Returns
    -------
    precisions_cholesky : torch.Tensor
        Same shape as ``covariances``.

    Raises
    ------
    ValueError
        If a covariance is not positive definite, telling to raise ``reg_covar``.
    """
    if covariance_type in ("full", "tied"):
        chol, info = torch.linalg.cholesky_ex(covariances)
        # One test, so one wait for the device: a failed factorisation, or
        # a covariance with NaN (which cholesky_ex can pass through).
        if not bool(torch.isfinite(chol).all() & (info == 0).all()):
            raise ValueError(ILL_DEFINED_COVARIANCE.format(reg_covar=reg_covar))
        eye = torch.eye(
            covariances.shape[-1], dtype=covariances.dtype, device=covariances.device
        ).expand_as(covariances)
        # U = L^{-T}: then U U^T = L^{-T} L^{-1} = (L L^T)^{-1}, upper triangular.
        return torch.linalg.solve_triangular(chol, eye, upper=False).mT
    if bool(torch.any(covariances <= 0)) or not bool(torch.isfinite(covariances).all()):
        raise ValueError(ILL_DEFINED_COVARIANCE.format(reg_covar=reg_covar))
    return torch.rsqrt(covariances)


def precision_cholesky_from_precisions(precisions, covariance_type):
    """Upper-triangular ``U`` with ``precisions = U U^T``.

    Parameters
    ----------
    precisions : torch.Tensor
        Positive-definite precisions, shape depending on ``covariance_type``.
    covariance_type : str

    Returns
    -------
    precisions_cholesky : torch.Tensor
    """
    if covariance_type in ("full", "tied"):
        # Reversing rows and columns turns a lower Cholesky factor of the
        # flipped matrix into the upper factor scikit-learn uses.
        flipped = torch.flip(precisions, dims=(-2, -1))
        return torch.flip(torch.linalg.cholesky(flipped), dims=(-2, -1))
    return torch.sqrt(precisions)


def precisions_from_cholesky(precisions_cholesky, covariance_type):
    """Precisions ``U U^T`` from their factors (same shapes)."""
    if covariance_type in ("full", "tied"):
        return precisions_cholesky @ precisions_cholesky.mT
    return precisions_cholesky**2


def covariances_from_cholesky(precisions_cholesky, covariance_type):
    """Covariances ``(U U^T)^{-1}`` from the precision factors (same shapes)."""
    if covariance_type in ("full", "tied"):
        eye = torch.eye(
            precisions_cholesky.shape[-1],
            dtype=precisions_cholesky.dtype,
            device=precisions_cholesky.device,
        ).expand_as(precisions_cholesky)
        inverse = torch.linalg.solve_triangular(precisions_cholesky, eye, upper=True)
        return inverse.mT @ inverse
    return 1.0 / precisions_cholesky**2


def log_det_precision_cholesky(precisions_cholesky, covariance_type, n_features):
    """Log-determinant of each ``U``, that is half the log-det of each precision.

    Parameters
    ----------
    precisions_cholesky : torch.Tensor
    covariance_type : str
    n_features : int

    Returns
    -------
    log_det : torch.Tensor of shape (n_components,) or a 0-d tensor for 'tied'
    """
    if covariance_type in ("full", "tied"):
        return torch.log(torch.diagonal(precisions_cholesky, dim1=-2, dim2=-1)).sum(-1)
    if covariance_type == "diag":
        return torch.log(precisions_cholesky).sum(-1)
    return n_features * torch.log(precisions_cholesky)


def log_normalisers(parameters: MixtureParameters) -> torch.Tensor:
    """``log W_j + log det U_j - D/2 log(2 pi)`` for every component.

    Returns
    -------
    torch.Tensor of shape (n_components,)
    """
    log_det = log_det_precision_cholesky(
        parameters.precisions_cholesky,
        parameters.covariance_type,
        parameters.n_features,
    )
    return (
        torch.log(parameters.weights)
        + log_det
        - 0.5 * parameters.n_features * math.log(2 * math.pi)
    )


def far_sample_posteriors(X, parameters: MixtureParameters):
    """Log-densities, log-responsibilities and labels, safe for any finite ``X``.

    The engines expand the quadratic form into moment features (``x x^T``),
    which overflows for samples far from the data (beyond about 1e19 in
    float32, 1e154 in float64). This computes the whitened form
    ``||U_j^T (x - mu_j)||^2`` in float64 with each row scaled by its largest
    entry first, so no intermediate overflows. Where a log-density is below
    float64's range it is ``-inf``, and the responsibilities are then their
    limit along the sample's direction: all mass on the component whose
    quadratic form grows slowest there. Where components differ by less than
    the rounding of ``log p(x)`` (a shared precision, far away), they share
    the mass evenly. It loops over components and is meant for the few rows
    the fast path cannot represent.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        Finite samples, any float dtype.
    parameters : MixtureParameters

    Returns
    -------
    log_density : torch.Tensor of shape (n_samples,), float64
    log_responsibilities : torch.Tensor of shape (n_samples, n_components), float64
    labels : torch.Tensor of shape (n_samples,), int64
    """
    X = X.to(torch.float64)
    means = parameters.means.to(torch.float64)
    factors = component_precisions_cholesky(parameters)
    # Divided before subtracting, so that x - mu cannot overflow.
    scale = torch.clamp(X.abs().amax(dim=1), min=1.0)[:, None]
    columns = []
    for mean, factor in zip(means, factors, strict=True):
        offset = X / scale - mean / scale
        whitened = offset @ factor if factor.dim() == 2 else offset * factor
        columns.append(torch.linalg.vector_norm(whitened, dim=1))
    # ||U^T (x - mu)|| / s for every component: finite, and what orders the
    # components when s^2 times its square overflows.
    direction_norm = torch.stack(columns, dim=1)
    log_joint = (
        log_normalisers(parameters)[None, :] - 0.5 * (scale * direction_norm).square()
    )
    log_density = torch.logsumexp(log_joint, dim=1)
    # Normalised in the shifted frame (see TorchEngine.log_responsibilities).
    log_resp = torch.log_softmax(log_joint, dim=1)
    labels = log_joint.argmax(dim=1)
    underflow = torch.isneginf(log_density)
    if bool(underflow.any()):
        limit = direction_norm[underflow].argmin(dim=1)
        labels[underflow] = limit
        one_hot = torch.full_like(log_resp[underflow], -math.inf)
        one_hot[torch.arange(len(limit), device=limit.device), limit] = 0.0
        log_resp[underflow] = one_hot
    return log_density, log_resp, labels


def component_precisions_cholesky(parameters: MixtureParameters):
    """Every component's precision factor, in a form that multiplies ``x - mu``.

    Returns
    -------
    torch.Tensor
        'full' and 'tied': (n_components, D, D) upper-triangular ``U_j``;
        'diag': (n_components, D); 'spherical': (n_components, 1), so that
        ``(x - mu_j) @ U_j`` or ``(x - mu_j) * U_j`` is the whitened sample.
    """
    factor = parameters.precisions_cholesky.to(torch.float64)
    if parameters.covariance_type == "tied":
        n_features = parameters.n_features
        return factor.expand(parameters.n_components, n_features, n_features)
    if parameters.covariance_type == "spherical":
        return factor[:, None]
    return factor


def component_precisions(parameters: MixtureParameters) -> torch.Tensor:
    """The precision of every component in the compact form of its type.

    Returns
    -------
    torch.Tensor
        'full' and 'tied': (n_components, D, D); 'diag': (n_components, D);
        'spherical': (n_components,).
    """
    precisions = precisions_from_cholesky(
        parameters.precisions_cholesky, parameters.covariance_type
    )
    if parameters.covariance_type == "tied":
        return precisions.expand(parameters.n_components, -1, -1)
    return precisions


def covariances_from_moments(
    nk, means, second, covariance_type, reg_covar, covariance_prior=None
):
    """The M-step's covariances from second moments about the means.

    Parameters
    ----------
    nk : torch.Tensor of shape (n_components,)
        Summed (weighted) responsibilities.
    means : torch.Tensor of shape (n_components, D)
        Means, in the same shifted frame as ``second``.
    second : torch.Tensor
        Raw second moments ``sum_i w_i r_ij x_i x_i^T`` in a shifted frame:
        (n_components, D, D) for 'full' and 'tied', (n_components, D) for
        'diag', (n_components,) (sum over features) for 'spherical'.
    covariance_type : str
    reg_covar : float
    covariance_prior : CovariancePrior, optional
        With a prior, the MAP covariances ``(Psi + S_j) / (n_j + a)``
        (:mod:`sparse_gmm._covariance_prior`); without, maximum likelihood.

    Returns
    -------
    covariances : torch.Tensor
    """
    if covariance_prior is not None:
        covariances = covariance_prior.map_covariances(
            nk, _scatter(nk, means, second, covariance_type), covariance_type
        )
        if covariance_type in ("full", "tied"):
            covariances.diagonal(dim1=-2, dim2=-1).add_(reg_covar)
            return 0.5 * (covariances + covariances.mT)
        return covariances + reg_covar
    n_features = means.shape[1]
    if covariance_type == "full":
        covariances = second / nk[:, None, None] - means[:, :, None] * means[:, None, :]
        covariances.diagonal(dim1=-2, dim2=-1).add_(reg_covar)
        return 0.5 * (covariances + covariances.mT)
    if covariance_type == "tied":
        covariance = _scatter(nk, means, second, "tied") / nk.sum()
        covariance.diagonal().add_(reg_covar)
        return 0.5 * (covariance + covariance.mT)
    if covariance_type == "diag":
        return second / nk[:, None] - means**2 + reg_covar
    return (second / nk - (means**2).sum(1)) / n_features + reg_covar


def _scatter(nk, means, second, covariance_type):
    """Weighted scatter about the means, in the covariance type's shape.

    Returns
    -------
    torch.Tensor
        (n_components, D, D) for 'full', (D, D) summed over components for
        'tied', (n_components, D) for 'diag', (n_components,) for
        'spherical' (the mean over features).
    """
    if covariance_type == "full":
        return second - nk[:, None, None] * means[:, :, None] * means[:, None, :]
    if covariance_type == "tied":
        return second.sum(0) - (nk[:, None] * means).mT @ means
    if covariance_type == "diag":
        return second - nk[:, None] * means**2
    return (second - nk * (means**2).sum(1)) / means.shape[1]


def smallest_variances(parameters: MixtureParameters) -> torch.Tensor:
    """Each component's smallest covariance eigenvalue.

    Returns
    -------
    torch.Tensor of shape (n_components,), float64
    """
    covariances = parameters.covariances.to(torch.float64)
    covariance_type = parameters.covariance_type
    if covariance_type == "full":
        return torch.linalg.eigvalsh(covariances).amin(-1)
    if covariance_type == "tied":
        return torch.linalg.eigvalsh(covariances).amin().expand(parameters.n_components)
    if covariance_type == "diag":
        return covariances.amin(-1)
    return covariances


def at_covariance_floor(parameters: MixtureParameters, reg_covar):
    """Which components have collapsed onto the ``reg_covar`` floor.

    A component whose smallest variance is within 1% of ``reg_covar`` (or
    zero) lies on tied or duplicated samples, or in a subspace of the data.

    Returns
    -------
    numpy.ndarray of bool, shape (n_components,)
    """
    smallest = smallest_variances(parameters).cpu().numpy()
    return smallest <= 1.01 * reg_covar


def n_parameters(covariance_type, n_components, n_features):
    """Number of free parameters of a mixture (for BIC and AIC).

    Parameters
    ----------
    covariance_type : str
    n_components : int
    n_features : int

    Returns
    -------
    int
    """
    per_matrix = n_features * (n_features + 1) // 2
    covariance_parameters = {
        "full": n_components * per_matrix,
        "tied": per_matrix,
        "diag": n_components * n_features,
        "spherical": n_components,
    }[covariance_type]
    return covariance_parameters + n_components * n_features + n_components - 1
