"""SQUAREM-accelerated MM-EM: the same optimum as plain MM-EM, never uphill."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from sparse_gmm import SparseGaussianMixture
from sparse_gmm._gaussian import (
    MixtureParameters,
    precision_cholesky_from_covariances,
)
from sparse_gmm.solvers._em import _extrapolated

from .conftest import gaussian_mixture_sample


def _mixture(weights, means, factor, covariance_type):
    covariances = (
        factor @ factor.mT if covariance_type in ("full", "tied") else factor.square()
    )
    return MixtureParameters(
        weights=weights,
        means=means,
        covariances=covariances,
        precisions_cholesky=precision_cholesky_from_covariances(
            covariances, covariance_type, 0.0
        ),
        covariance_type=covariance_type,
        active=np.arange(len(weights)),
    )


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_extrapolation_lands_on_the_limit_of_a_geometric_sequence(covariance_type):
    # Iterates theta_t = limit + rate^t d (EM's linear convergence, exactly):
    # SQUAREM's S3 step reaches the limit from three of them.
    rng = np.random.default_rng(0)
    shapes = {
        "full": (3, 2, 2),
        "tied": (2, 2),
        "diag": (3, 2),
        "spherical": (3,),
    }
    triangular = covariance_type in ("full", "tied")
    shape = shapes[covariance_type]
    limit_factor = rng.uniform(0.5, 1.0, shape)
    direction_factor = rng.normal(0, 0.05, shape)
    if triangular:
        limit_factor = np.tril(limit_factor) + np.eye(2)
        direction_factor = np.tril(direction_factor)
    limit_factor = torch.as_tensor(limit_factor)
    direction_factor = torch.as_tensor(direction_factor)
    limit = (
        torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64),
        torch.as_tensor(rng.normal(size=(3, 2))),
        limit_factor,
    )
    direction = (
        torch.tensor([-0.1, 0.04, 0.06], dtype=torch.float64),
        torch.as_tensor(rng.normal(size=(3, 2))),
        direction_factor,
    )
    rate = 0.9
    iterates = [
        _mixture(
            *(x + rate**t * d for x, d in zip(limit, direction, strict=True)),
            covariance_type,
        )
        for t in range(3)
    ]
    point = _extrapolated(*iterates, prune_threshold=1e-3, reg_covar=0.0)
    expected = _mixture(*limit, covariance_type)
    assert_allclose(point.weights, expected.weights, atol=1e-12)
    assert_allclose(point.means, expected.means, atol=1e-12)
    assert_allclose(point.covariances, expected.covariances, atol=1e-12)


def test_extrapolation_drops_components_whose_weight_reaches_zero():
    # A weight falling by 0.1 then 0.09 extrapolates below zero: the
    # component is left out, the others renormalised.
    weights = [
        torch.tensor(w, dtype=torch.float64)
        for w in ([0.3, 0.7], [0.2, 0.8], [0.11, 0.89])
    ]
    means = torch.zeros(2, 1, dtype=torch.float64)
    factor = torch.ones(2, dtype=torch.float64)
    iterates = [_mixture(w, means, factor, "spherical") for w in weights]
    point = _extrapolated(*iterates, prune_threshold=1e-3, reg_covar=0.0)
    assert point.n_components == 1
    assert_array_equal(point.active, [1])
    assert_allclose(point.weights, [1.0])


def test_no_extrapolation_where_plain_mm_em_already_steps_as_far():
    # The step length alpha is -1 when the sequence does not slow down.
    weights = torch.tensor([0.5, 0.5], dtype=torch.float64)
    factor = torch.ones(2, dtype=torch.float64)
    iterates = [
        _mixture(
            weights,
            torch.full((2, 1), float(t), dtype=torch.float64),
            factor,
            "spherical",
        )
        for t in (0, 1, 3)
    ]
    assert _extrapolated(*iterates, prune_threshold=1e-3, reg_covar=0.0) is None


@pytest.mark.parametrize(
    ("n_components", "n_features", "separation", "seed"),
    [(3, 2, 6.0, 0), (5, 2, 4.0, 1), (4, 5, 5.0, 2), (6, 3, 3.0, 3)],
)
def test_the_accelerated_fit_reaches_plain_mm_ems_objective(
    n_components, n_features, separation, seed
):
    X, _ = gaussian_mixture_sample(
        n_samples=1500,
        n_components=n_components,
        n_features=n_features,
        separation=separation,
        seed=seed,
    )
    # SQUAREM alone: merges would shorten both fits' early phases.
    common = dict(random_state=seed, relax=False, tol=1e-6, merge_moves=False)
    plain = SparseGaussianMixture(acceleration=None, **common).fit(X)
    fast = SparseGaussianMixture(acceleration="squarem", **common).fit(X)
    assert fast.n_components_ == plain.n_components_
    assert fast.objective_ == pytest.approx(plain.objective_, abs=1e-4)
    assert fast.n_iter_ < plain.n_iter_
    # F never rises, but where a component is annihilated (docs/maths.rst,
    # section 10.2), for the accelerated fit as for the plain one.
    for model in (plain, fast):
        rises = np.diff(model.loss_curve_) > 1e-12
        removals = np.diff(model.n_components_curve_) < 0
        assert not np.any(rises & ~removals)


def test_maximum_likelihood_is_never_accelerated():
    # sparsity=0 without a covariance prior is scikit-learn's EM, iterate for
    # iterate, whatever the acceleration asks.
    X, _ = gaussian_mixture_sample(n_samples=600, n_components=3, seed=4)
    common = dict(sparsity=0.0, covariance_prior=None, random_state=0, tol=1e-6)
    plain = SparseGaussianMixture(5, acceleration=None, **common).fit(X)
    asked = SparseGaussianMixture(5, acceleration="squarem", **common).fit(X)
    assert asked.n_iter_ == plain.n_iter_
    assert_array_equal(asked.loss_curve_, plain.loss_curve_)
    assert_array_equal(asked.means_, plain.means_)
