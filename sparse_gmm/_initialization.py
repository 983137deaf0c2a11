"""Starting parameters, as scikit-learn's GaussianMixture computes them.

The same ``random_state`` gives the same start as ``GaussianMixture``; with
sample weights, each method accounts for them (weighted k-means, weighted
seeding, rows drawn in proportion to their weight). The starting moments are
summed on the fit's device; k-means runs there too (``_kmeans_on_host``).
"""

from __future__ import annotations

import numpy as np
import torch

from ._gaussian import (
    MixtureParameters,
    covariances_from_cholesky,
    precision_cholesky_from_precisions,
)
from ._kmeans import kmeans_labels, kmeans_plusplus
from ._m_step import gaussian_components
from ._moments import moment_features, n_moment_features
from .engines import SufficientStatistics
from .engines._base import as_shared_tensor

_CHUNK = 65536


def _kmeans_on_host(device):
    """Whether ``init_params='kmeans'`` runs scikit-learn's KMeans.

    On the CPU it does: its fused Cython loop took 0.50-0.82 of the torch
    version's time on 20,000 rows and 20 clusters, with one thread or two
    (benchmarks/bench_kmeans.py, the same labels in every case). On an
    accelerator the torch version runs where the rows already are
    (``_kmeans.kmeans_labels``: the same algorithm and the same draws, so
    the same clustering up to rounding).
    """
    return torch.device(device).type == "cpu"


def _labels(X, sample_weight, n_components, init_params, random_state):
    """Hard assignments, with -1 for samples that belong to no component.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        On the fit's device, in the data's dtype.
    sample_weight : torch.Tensor of shape (n_samples,)
    n_components : int
    init_params : {'kmeans', 'k-means++', 'random_from_data'}
    random_state : numpy.random.RandomState

    Returns
    -------
    torch.Tensor of shape (n_samples,), int64, on ``X``'s device
    """
    if init_params == "kmeans":
        if _kmeans_on_host(X.device):
            # sklearn.cluster costs 0.4 s to import: paid by the first fit,
            # not by ``from sparse_gmm import SparseGaussianMixture``.
            from sklearn.cluster import KMeans

            labels = (
                KMeans(n_clusters=n_components, n_init=1, random_state=random_state)
                .fit(X.numpy(), sample_weight=sample_weight.numpy())
                .labels_
            )
            return torch.from_numpy(labels.astype(np.int64))
        return kmeans_labels(X, sample_weight, n_components, random_state)
    if init_params == "k-means++":
        indices = kmeans_plusplus(X, sample_weight, n_components, random_state)
    else:
        weight = sample_weight.double().cpu().numpy()
        uniform = np.all(weight == weight[0])
        probabilities = None if uniform else weight / weight.sum()
        if np.count_nonzero(weight) < n_components:
            raise ValueError(
                "init_params='random_from_data' needs at least n_components "
                "samples with a positive weight."
            )
        indices = random_state.choice(
            X.shape[0], size=n_components, replace=False, p=probabilities
        )
    labels = torch.full((X.shape[0],), -1, dtype=torch.int64, device=X.device)
    labels[torch.as_tensor(indices, device=X.device)] = torch.arange(
        n_components, device=X.device
    )
    return labels


def _moments(
    X, sample_weight, n_components, init_params, random_state, covariance_type, device
):
    """Summed ``w_i r_ij phi(x_i - center)`` for the initial responsibilities."""
    X = as_shared_tensor(X).to(device)
    Xt = X.to(torch.float64)
    weight = as_shared_tensor(sample_weight).to(device=device, dtype=torch.float64)
    center = (weight @ Xt) / weight.sum()
    width = n_moment_features(covariance_type, X.shape[1])
    moments = torch.zeros((n_components, width), dtype=torch.float64, device=device)
    if init_params == "random":
        # Drawn chunk by chunk: the same stream as one (n_samples, n_components) draw.
        for start in range(0, X.shape[0], _CHUNK):
            rows = slice(start, start + _CHUNK)
            resp = torch.as_tensor(
                random_state.uniform(size=(Xt[rows].shape[0], n_components)),
                device=device,
            )
            resp *= (weight[rows] / resp.sum(1))[:, None]
            moments += resp.T @ moment_features(Xt[rows] - center, covariance_type)
    else:
        labels = _labels(X, weight.to(X.dtype), n_components, init_params, random_state)
        for start in range(0, X.shape[0], _CHUNK):
            rows = slice(start, start + _CHUNK)
            assigned = labels[rows] >= 0
            phi = moment_features(Xt[rows][assigned] - center, covariance_type)
            moments.index_add_(
                0, labels[rows][assigned], weight[rows][assigned, None] * phi
            )
    return SufficientStatistics(moments, center, 0.0, float(weight.sum()))


def initial_parameters(
    X,
    sample_weight,
    *,
    n_components,
    covariance_type,
    init_params,
    reg_covar,
    random_state,
    weights_init=None,
    means_init=None,
    precisions_init=None,
    device="cpu",
    covariance_prior=None,
):
    """The parameters a fit starts from.

    Parameters
    ----------
    X : numpy.ndarray of shape (n_samples, n_features)
    sample_weight : numpy.ndarray of shape (n_samples,)
    n_components : int
    covariance_type : str
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}
    reg_covar : float
    random_state : numpy.random.RandomState
    weights_init, means_init, precisions_init : numpy.ndarray or None
        Validated user values; they replace the computed ones.
    device : torch.device
    covariance_prior : CovariancePrior, optional
        The starting covariances are its MAP estimates, as in every M-step.

    Returns
    -------
    MixtureParameters
        Components with zero starting weight are left out; ``active`` says
        which of the ``n_components`` remain.
    """
    weights = means = covariances = precisions_cholesky = None
    if weights_init is None or means_init is None or precisions_init is None:
        statistics = _moments(
            X,
            sample_weight,
            n_components,
            init_params,
            random_state,
            covariance_type,
            device,
        )
        means, covariances, precisions_cholesky = gaussian_components(
            statistics, covariance_type, reg_covar, covariance_prior=covariance_prior
        )
        nk = statistics.moments[:, 0]
        weights = nk / nk.sum()
    if weights_init is not None:
        weights = as_shared_tensor(weights_init).to(torch.float64)
    if means_init is not None:
        means = as_shared_tensor(means_init).to(torch.float64)
    if precisions_init is not None:
        precisions_cholesky = precision_cholesky_from_precisions(
            as_shared_tensor(precisions_init).to(torch.float64), covariance_type
        )
        covariances = covariances_from_cholesky(precisions_cholesky, covariance_type)
    start = MixtureParameters(
        weights=weights.to(device),
        means=means.to(device),
        covariances=covariances.to(device),
        precisions_cholesky=precisions_cholesky.to(device),
        covariance_type=covariance_type,
        active=np.arange(n_components),
    )
    # A component that starts with zero weight (an empty k-means cluster when
    # the data have fewer distinct points than components, or a zero in
    # weights_init) is pruned before the first iteration: its log-weight is
    # -inf, which the gradient solvers would turn into NaN gradients.
    has_mass = (start.weights > 0).cpu().numpy()
    return start if has_mass.all() else start.subset(has_mass)
