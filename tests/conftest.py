"""Shared test data: Gaussian mixtures of known size."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import sparse_gmm
from sparse_gmm import SparseGaussianMixture

# The tests fit thousands of small models, and small tensors gain nothing from
# a second thread; on a loaded machine two threads made a 533 x 6 exp 1,000
# times slower (oversubscribed OpenMP). Subprocess tests set their own.
torch.set_num_threads(1)


def gaussian_mixture_sample(
    n_samples=1500, n_components=5, n_features=2, separation=8.0, seed=0
):
    """Samples of a mixture with random full covariances and unequal weights.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    # Rejection sampling keeps the components apart: two true components on
    # top of each other are one component to any estimator.
    means = np.empty((0, n_features))
    while len(means) < n_components:
        candidate = rng.uniform(-separation, separation, n_features)
        if np.all(np.linalg.norm(means - candidate, axis=1) >= separation / 2):
            means = np.vstack([means, candidate])
    counts = rng.multinomial(n_samples, weights)
    X, y = [], []
    for j, count in enumerate(counts):
        factor = rng.normal(size=(n_features, n_features)) * 0.4
        covariance = factor @ factor.T + 0.2 * np.eye(n_features)
        X.append(rng.multivariate_normal(means[j], covariance, count))
        y.append(np.full(count, j))
    return np.concatenate(X), np.concatenate(y)


def explicit_start(X, n_components, covariance_type="full"):
    """Starting values (``weights_init``, ...) that pin a fit's start.

    They are the k-means initialisation itself, read off a fit that stops
    before its first iteration.
    """
    start = SparseGaussianMixture(
        n_components,
        sparsity=0.0,
        max_iter=0,
        covariance_type=covariance_type,
        random_state=0,
    ).fit(X)
    return {
        "weights_init": start.weights_,
        "means_init": start.means_,
        "precisions_init": start.precisions_,
    }


@pytest.fixture
def blobs():
    """A clear mixture of 5 components in 2-D."""
    X, _ = gaussian_mixture_sample()
    return X


def modules_after(statement):
    """The names in ``sys.modules`` after ``statement``, in a new interpreter.

    The child runs in the folder holding the sparse_gmm this process
    imported, so that it imports the same copy (the checkout, not an
    installed one).
    """
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(sparse_gmm.__file__).parents[1],
    )
    return set(json.loads(completed.stdout.splitlines()[-1]))
