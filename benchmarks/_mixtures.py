"""The mixtures of known size that bench_defaults, bench_removal_moves and compare fit.

Gaussian mixtures of ``K`` components in ``D`` dimensions: weights from a
Dirichlet(1) with a floor of 0.05 per component, random full covariances
(eigenvalues log-uniform in [0.25, 1], random rotation, so every standard
deviation is at most 1), and means placed one by one, each at a distance of
``sep`` to ``1.5 sep`` from an earlier mean and at least ``sep`` from all of
them. ``sep = 5`` is the *separated* setting and ``sep = 2.5`` the
*overlapping* one (distances in units of the largest standard deviation).
A data set is named by its key ``(K, D, sep, N, seed)``: ``N`` training
samples and ``N_TEST`` held-out ones, with the held-out mean log-likelihood
of the true mixture, the reference every fit's score is compared with.

The sweep grid (:func:`sweep_keys`) and the fit settings of the sweep
(:data:`SWEEP_SETTINGS`) are here as well: bench_defaults' sparsity sweep and
bench_removal_moves fit the same data sets with the same settings, and record
each fit the same way (:func:`fit_record`).
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, special_ortho_group

SEPARATIONS = {"separated": 5.0, "overlapping": 2.5}
WEIGHT_FLOOR = 0.05
N_TEST = 5000
N_SMALL, N_LARGE = 2000, 20000
#: ``SparseGaussianMixture`` settings of the sweep, other than ``sparsity``.
SWEEP_SETTINGS = {
    "n_components": 20,
    "prune_threshold": 1e-3,
    "tol": 1e-4,
    "max_iter": 300,
}
#: The sweep's data sets: every (K, D, sep, seed) at N_SMALL and some at N_LARGE.
SWEEP_GRIDS = {
    "full": {
        "small": {"K": (1, 2, 3, 5, 8), "D": (2, 5, 8), "seeds": (0, 1)},
        "large": {"K": (2, 5, 8), "D": (2, 5), "seeds": (0,)},
    },
    "quick": {
        "small": {"K": (1, 3), "D": (2,), "seeds": (0,)},
        "large": {"K": (3,), "D": (2,), "seeds": (0,)},
    },
}


def make_mixture(n_components, n_features, separation, rng):
    """Weights, means and covariances of a random mixture (see the docstring)."""
    free = 1.0 - WEIGHT_FLOOR * n_components
    weights = WEIGHT_FLOOR + free * rng.dirichlet(np.ones(n_components))
    covariances = []
    for _ in range(n_components):
        variances = np.exp(rng.uniform(np.log(0.25), 0.0, n_features))
        rotation = special_ortho_group.rvs(n_features, random_state=rng)
        covariances.append((rotation * variances) @ rotation.T)
    means = [np.zeros(n_features)]
    while len(means) < n_components:
        anchor = means[rng.integers(len(means))]
        direction = rng.normal(size=n_features)
        direction /= np.linalg.norm(direction)
        candidate = anchor + direction * separation * rng.uniform(1.0, 1.5)
        if min(np.linalg.norm(candidate - m) for m in means) >= separation:
            means.append(candidate)
    return weights, np.array(means), np.array(covariances)


def sample_mixture(mixture, n_samples, rng):
    weights, means, covariances = mixture
    counts = rng.multinomial(n_samples, weights)
    X = np.vstack(
        [
            rng.multivariate_normal(mean, cov, count)
            for mean, cov, count in zip(means, covariances, counts, strict=True)
        ]
    )
    return X[rng.permutation(n_samples)]


def true_log_likelihood(mixture, X):
    weights, means, covariances = mixture
    log_joint = np.column_stack(
        [
            np.log(w) + multivariate_normal(mean, cov).logpdf(X)
            for w, mean, cov in zip(weights, means, covariances, strict=True)
        ]
    )
    return float(logsumexp(log_joint, axis=1).mean())


_DATA_CACHE = {}


def dataset(K, D, sep, N, seed):
    """``(X_train, X_test, true held-out log-likelihood)``, cached."""
    key = (K, D, sep, N, seed)
    if key not in _DATA_CACHE:
        # The mixture depends on (K, D, sep, seed) only, not on N.
        rng = np.random.default_rng([seed, K, D, int(10 * SEPARATIONS[sep])])
        mixture = make_mixture(K, D, SEPARATIONS[sep], rng)
        sample_rng = np.random.default_rng([seed, K, D, int(10 * SEPARATIONS[sep]), N])
        X = sample_mixture(mixture, N, sample_rng)
        X_test = sample_mixture(mixture, N_TEST, sample_rng)
        _DATA_CACHE.clear()  # one data set at a time is enough (loops are ordered)
        _DATA_CACHE[key] = (X, X_test, true_log_likelihood(mixture, X_test))
    return _DATA_CACHE[key]


def grid(spec, N):
    return [
        (K, D, sep, N, seed)
        for seed in spec["seeds"]
        for D in spec["D"]
        for K in spec["K"]
        for sep in SEPARATIONS
    ]


def sweep_keys(quick):
    """The keys of the sweep's data sets: those at N_SMALL, then N_LARGE."""
    grids = SWEEP_GRIDS["quick" if quick else "full"]
    return grid(grids["small"], N_SMALL) + grid(grids["large"], N_LARGE)


def fit_record(model, key):
    """Fit ``model`` to the data set ``key``; a flat record (never raises).

    The record holds the key, the wall time, every warning, and either the
    error or ``n_found`` (``n_components_``), ``n_iter``, ``converged``,
    ``gap`` (held-out mean log-likelihood minus the true mixture's) and
    ``max_increase`` (the largest rise of ``loss_curve_``; it must not rise).
    """
    K, D, sep, N, seed = key
    X, X_test, true_ll = dataset(*key)
    record = {"K": K, "D": D, "sep": sep, "N": N, "seed": seed}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            model.fit(X)
        except Exception as error:  # recorded and reported, not fatal
            record["error"] = f"{type(error).__name__}: {error}"
        record["time"] = time.perf_counter() - start
    record["warnings"] = sorted(
        {f"{w.category.__name__}: {str(w.message)[:100]}" for w in caught}
    )
    if "error" not in record:
        loss = np.asarray(model.loss_curve_, dtype=float)
        record.update(
            n_found=int(model.n_components_),
            n_iter=int(model.n_iter_),
            converged=bool(model.converged_),
            gap=float(model.score(X_test) - true_ll),
            max_increase=float(np.max(np.diff(loss), initial=-math.inf)),
        )
    return record
