"""scikit-learn's k-means, in torch, on the device the fit runs on.

``init_params='kmeans'`` must start where ``GaussianMixture`` starts, so this
is ``sklearn.cluster.KMeans(n_clusters, n_init=1, random_state=rs)`` step for
step: the same draws from ``rs`` (greedy k-means++ seeding with
``2 + int(log k)`` local trials), the same Lloyd iterations on data centred
by their unweighted mean, the same stopping rule (labels unchanged, or the
squared centre shifts summing to at most ``1e-4`` times the mean variance),
the same relocation of empty clusters and the same first-minimum tie rule.
What differs is the order of floating-point sums: labels agree with
scikit-learn's except where a sample is equidistant from two centres to
within rounding. It runs chunk by chunk on the tensor's device, so a fit
on a GPU never sends its rows to the host to be clustered, and it skips
the input validation that dominated scikit-learn's cost on small samples.
"""

from __future__ import annotations

import math

import numpy as np
import torch

MAX_ITER = 300
TOL = 1e-4
# Bytes per block of the (clusters, samples) distance matrix.
_BLOCK_BYTES = 4 << 20


def kmeans_plusplus(X, sample_weight, n_clusters, random_state):
    """Greedy k-means++ seeding, as ``sklearn.cluster.kmeans_plusplus``.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        Centred by the caller where it must match ``KMeans``.
    sample_weight : torch.Tensor of shape (n_samples,)
        Non-negative, with a positive sum; same dtype and device as ``X``.
    n_clusters : int
    random_state : numpy.random.RandomState
        Drawn from exactly as scikit-learn draws.

    Returns
    -------
    indices : numpy.ndarray of shape (n_clusters,)
        The rows chosen as centres.
    """
    n_samples = X.shape[0]
    n_local_trials = 2 + int(math.log(n_clusters))
    weight_host = sample_weight.double().cpu().numpy()
    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = random_state.choice(n_samples, p=weight_host / weight_host.sum())
    # Distances in float64 whatever X's dtype: scikit-learn upcasts float32
    # for them too.
    X64 = X.double()
    squared_norms = (X64 * X64).sum(1)
    weight64 = sample_weight.double()
    closest = _squared_distances(X64[indices[:1]], X64, squared_norms)[0]
    potential = float(closest @ weight64)
    for c in range(1, n_clusters):
        targets = random_state.uniform(size=n_local_trials) * potential
        cumulative = torch.cumsum(weight64 * closest, 0)
        candidates = torch.searchsorted(
            cumulative, torch.as_tensor(targets, device=X.device)
        ).clamp_(max=n_samples - 1)
        distances = torch.minimum(
            _squared_distances(X64[candidates], X64, squared_norms), closest
        )
        potentials = distances @ weight64
        best = int(torch.argmin(potentials))
        potential = float(potentials[best])
        closest = distances[best]
        indices[c] = int(candidates[best])
    return indices


def kmeans_labels(X, sample_weight, n_clusters, random_state):
    """Cluster labels of ``KMeans(n_clusters, n_init=1).fit(X, sample_weight)``.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        float32 or float64; the clustering runs in its dtype and on its
        device, as scikit-learn's runs in the array's dtype.
    sample_weight : torch.Tensor of shape (n_samples,)
        Non-negative, with a positive sum.
    n_clusters : int
        At most ``n_samples``.
    random_state : numpy.random.RandomState

    Returns
    -------
    labels : torch.Tensor of shape (n_samples,), int64
        Every label in ``0 .. n_clusters - 1``. Where the data have fewer
        distinct points than clusters, some labels are never used.

    Raises
    ------
    ValueError
        If there are fewer samples than clusters.
    """
    n_samples = X.shape[0]
    if n_samples < n_clusters:
        raise ValueError(f"n_samples={n_samples} should be >= n_clusters={n_clusters}.")
    # scikit-learn centres the data (unweighted) for accurate distances, and
    # scales its tolerance by the features' mean (unweighted) variance.
    X = X - X.mean(0)
    tol = float(X.var(0, unbiased=False).mean()) * TOL
    weight = sample_weight.to(X.dtype)
    centers = X[torch.as_tensor(kmeans_plusplus(X, weight, n_clusters, random_state))]
    X_T = X.T.contiguous()
    weighted = X * weight[:, None]
    previous = None
    for _ in range(MAX_ITER):
        labels = _nearest(X_T, centers)
        new_centers = _lloyd_centers(X, weight, weighted, labels, centers)
        shift = float((new_centers - centers).square().sum())
        centers = new_centers
        if previous is not None and torch.equal(labels, previous):
            return labels
        if shift <= tol:
            break
        previous = labels
    # Without strict convergence, scikit-learn reassigns the samples to the
    # final centres.
    return _nearest(X_T, centers)


def _squared_distances(centers, X, squared_norms):
    """``||x_i - c_k||^2`` for every centre, clipped at zero.

    Parameters
    ----------
    centers : torch.Tensor of shape (n_centers, n_features)
    X : torch.Tensor of shape (n_samples, n_features)
    squared_norms : torch.Tensor of shape (n_samples,)

    Returns
    -------
    torch.Tensor of shape (n_centers, n_samples)
    """
    distances = -2 * (centers @ X.T)
    distances += (centers * centers).sum(1, keepdim=True)
    distances += squared_norms
    return distances.clamp_(min=0)


def _nearest(X_T, centers):
    """Index of each sample's nearest centre, the first one on a tie.

    Parameters
    ----------
    X_T : torch.Tensor of shape (n_features, n_samples)
        The samples, feature-major.
    centers : torch.Tensor of shape (n_clusters, n_features)

    Returns
    -------
    torch.Tensor of shape (n_samples,), int64
    """
    # ||c||^2 - 2 x.c orders the centres as ||x - c||^2 does, as scikit-learn
    # computes it. Component-major blocks: the minimum runs along contiguous
    # samples, twice as fast as along each sample's row on the CPU.
    center_norms = (centers * centers).sum(1, keepdim=True)
    step = max(1, _BLOCK_BYTES // (X_T.element_size() * centers.shape[0]))
    return torch.cat(
        [
            torch.addmm(center_norms, centers, X_T[:, start : start + step], alpha=-2)
            .min(0)
            .indices
            for start in range(0, X_T.shape[1], step)
        ]
    )


def _lloyd_centers(X, weight, weighted, labels, centers):
    """Weighted means of the clusters, with scikit-learn's empty-cluster rule.

    A cluster with no weight takes over the sample farthest from its centre
    (the next farthest for the next empty cluster), which leaves its own
    cluster. Where every sample sits on its centre (fewer distinct points
    than clusters), empty clusters keep their centre.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
    weight : torch.Tensor of shape (n_samples,)
    weighted : torch.Tensor of shape (n_samples, n_features)
        ``X * weight[:, None]``, computed once per clustering.
    labels : torch.Tensor of shape (n_samples,)
    centers : torch.Tensor of shape (n_clusters, n_features)
        The centres ``labels`` were assigned to.

    Returns
    -------
    torch.Tensor of shape (n_clusters, n_features)
    """
    n_clusters = centers.shape[0]
    mass = torch.zeros(n_clusters, dtype=X.dtype, device=X.device)
    mass.index_add_(0, labels, weight)
    sums = torch.zeros_like(centers).index_add_(0, labels, weighted)
    empty = torch.nonzero(mass == 0).flatten().cpu().numpy()
    if empty.size:
        distances = (X - centers[labels]).square().sum(1).cpu().numpy()
        if distances.max() > 0:
            # np.argpartition, not a sort: the farthest samples in the order
            # scikit-learn hands them to the empty clusters.
            far = np.argpartition(distances, -empty.size)[: -empty.size - 1 : -1]
            for cluster, sample in zip(empty, far, strict=True):
                old = labels[sample]
                sums[old] -= weighted[sample]
                sums[cluster] = weighted[sample]
                mass[old] -= weight[sample]
                mass[cluster] = weight[sample]
    # Clusters left empty keep a zero sum, as scikit-learn leaves them.
    return torch.where(
        (mass > 0)[:, None],
        sums / mass.clamp(min=torch.finfo(X.dtype).tiny)[:, None],
        sums,
    )
