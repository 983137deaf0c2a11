"""Merge moves: the pooled component, the overlap that ranks pairs, the BIC guard."""

import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.mixture import GaussianMixture

from sparse_gmm import SparseGaussianMixture
from sparse_gmm._gaussian import MixtureParameters
from sparse_gmm._m_step import gaussian_components
from sparse_gmm._merging import bhattacharyya_coefficients, merged
from sparse_gmm._moments import moment_features
from sparse_gmm.engines import SufficientStatistics, TorchEngine
from sparse_gmm.solvers._em import _bic_allows

from .conftest import gaussian_mixture_sample


def _fitted_from_responsibilities(X, resp, covariance_type):
    """Maximum-likelihood components of ``resp`` (n, M), as an M-step makes them."""
    phi = moment_features(torch.as_tensor(X), covariance_type)
    moments = torch.as_tensor(resp).T @ phi
    statistics = SufficientStatistics(
        moments=moments,
        center=torch.zeros(X.shape[1], dtype=torch.float64),
        log_likelihood=0.0,
        total_weight=float(len(X)),
    )
    means, covariances, factors = gaussian_components(
        statistics, covariance_type, reg_covar=0.0
    )
    weights = moments[:, 0] / moments[:, 0].sum()
    return MixtureParameters(
        weights, means, covariances, factors, covariance_type, np.arange(len(means))
    )


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_a_merge_is_the_m_step_of_the_pooled_responsibilities(covariance_type):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)) @ rng.normal(size=(3, 3))
    resp = rng.dirichlet(np.ones(3), size=400)
    three = _fitted_from_responsibilities(X, resp, covariance_type)
    pooled = np.column_stack((resp[:, 0] + resp[:, 2], resp[:, 1]))
    two = _fitted_from_responsibilities(X, pooled, covariance_type)
    result = merged(three, 0, 2)
    assert_allclose(result.weights, two.weights, rtol=1e-12)
    assert_allclose(result.means, two.means, rtol=1e-10, atol=1e-12)
    if covariance_type == "full":
        assert_allclose(result.covariances, two.covariances, rtol=1e-10, atol=1e-12)
    else:
        # diag and spherical pool the full second moment, then project it:
        # the same as pooling their own moments for the diagonal...
        expected = two.covariances
        if covariance_type == "spherical":
            # ...and for the mean variance.
            expected = _fitted_from_responsibilities(X, pooled, "diag").covariances
            expected = expected.mean(1)
        assert_allclose(result.covariances, expected, rtol=1e-10, atol=1e-12)
    assert list(result.active) == [0, 1]


def test_bhattacharyya_coefficient_integrates_the_geometric_mean_density():
    means = torch.tensor([[0.0, 0.0], [1.2, -0.7]], dtype=torch.float64)
    covariances = torch.tensor(
        [[[1.0, 0.3], [0.3, 0.5]], [[0.6, -0.2], [-0.2, 1.4]]], dtype=torch.float64
    )
    coefficient = bhattacharyya_coefficients(means, covariances, torch.tensor([[0, 1]]))
    grid = np.linspace(-8, 8, 801)
    xx, yy = np.meshgrid(grid, grid)
    points = np.column_stack((xx.ravel(), yy.ravel()))

    def density(mean, covariance):
        inverse = np.linalg.inv(covariance)
        centred = points - mean
        quadratic = np.einsum("nd,de,ne->n", centred, inverse, centred)
        return np.exp(-0.5 * quadratic) / (
            2 * math.pi * math.sqrt(np.linalg.det(covariance))
        )

    overlap = (
        np.sqrt(
            density(means[0].numpy(), covariances[0].numpy())
            * density(means[1].numpy(), covariances[1].numpy())
        ).sum()
        * (grid[1] - grid[0]) ** 2
    )
    assert_allclose(float(coefficient[0]), overlap, rtol=1e-6)


def test_the_bic_guard_agrees_with_scikit_learns_bic():
    # Two clusters that BIC separates, and one that it does not split.
    for separation, expect_merge in ((6.0, False), (0.0, True)):
        X, _ = gaussian_mixture_sample(
            n_samples=800, n_components=2, separation=separation, seed=5
        )
        one = GaussianMixture(1, random_state=0).fit(X)
        two = GaussianMixture(2, random_state=0).fit(X)
        engine = TorchEngine()
        weight = torch.ones(len(X), dtype=torch.float64)

        def parameters(model):
            return MixtureParameters(
                *(
                    torch.as_tensor(a)
                    for a in (
                        model.weights_,
                        model.means_,
                        model.covariances_,
                        model.precisions_cholesky_,
                    )
                ),
                "full",
                np.arange(model.n_components),
            )

        before, after = parameters(two), parameters(one)
        allowed = _bic_allows(
            before,
            engine.statistics(torch.as_tensor(X), weight, before),
            after,
            engine.statistics(torch.as_tensor(X), weight, after),
        )
        assert allowed == (one.bic(X) <= two.bic(X)) == expect_merge


def test_merges_take_spare_components_at_once_and_f_never_rises():
    X, _ = gaussian_mixture_sample(n_samples=4000, n_components=3, seed=1)
    common = dict(criterion=None, relax=False, random_state=0, tol=1e-6)
    merging = SparseGaussianMixture(20, **common).fit(X)
    plain = SparseGaussianMixture(20, merge_moves=False, **common).fit(X)
    assert merging.n_components_ == plain.n_components_ == 3
    # Once a component is spare its merge goes at once, not over hundreds
    # of iterations of decay.
    assert merging.n_iter_ < plain.n_iter_ / 2
    assert np.all(np.diff(merging.loss_curve_) <= 1e-12)
    # The same optimum, up to the stopping rule.
    assert merging.objective_ == pytest.approx(plain.objective_, abs=1e-4)
