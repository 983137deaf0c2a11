"""With sparsity=0, MM-EM is scikit-learn's EM: same start, same iterates."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from sparse_gmm import SparseGaussianMixture

from .conftest import gaussian_mixture_sample

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _start(X, covariance_type, n_components=6):
    """A start that is not a fixed point: one EM step from a k-means start."""
    gm = GaussianMixture(
        n_components, covariance_type=covariance_type, max_iter=1, random_state=1
    )
    with pytest.warns(Warning):
        gm.fit(X)
    return {
        "weights_init": gm.weights_,
        "means_init": gm.means_,
        "precisions_init": gm.precisions_,
    }


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("n_iter", [1, 7, 25])
def test_iterates_match_sklearn(covariance_type, n_iter):
    # Overlapping components and a surplus of them: EM is still moving after
    # 25 iterations (checked below), so the comparison is not of fixed points.
    X, _ = gaussian_mixture_sample(
        n_samples=1200, n_components=4, n_features=3, separation=3.0, seed=2
    )
    X_test, _ = gaussian_mixture_sample(
        n_samples=300, n_components=4, n_features=3, separation=3.0, seed=2
    )
    start = _start(X, covariance_type)
    common = dict(
        covariance_type=covariance_type, max_iter=n_iter, tol=0.0, reg_covar=1e-5
    )
    reference = GaussianMixture(6, **common, **start)
    ours = SparseGaussianMixture(
        6, sparsity=0.0, covariance_prior=None, **common, **start
    )
    with pytest.warns(Warning, match="did not converge"):
        reference.fit(X)
    with pytest.warns(Warning, match="did not converge"):
        ours.fit(X)

    assert ours.n_iter_ == reference.n_iter_ == n_iter
    assert not ours.converged_ and not reference.converged_
    assert_allclose(ours.lower_bounds_, reference.lower_bounds_, rtol=1e-12)
    assert_allclose(ours.lower_bound_, reference.lower_bound_, rtol=1e-12)
    assert ours.n_components_ == 6
    if n_iter > 1:
        assert np.diff(ours.loss_curve_[-2:]).item() < -1e-6
    assert_allclose(ours.means_, reference.means_, atol=1e-6, rtol=0)
    assert_allclose(ours.weights_, reference.weights_, atol=1e-8, rtol=0)
    assert_allclose(ours.covariances_, reference.covariances_, atol=1e-8, rtol=1e-8)
    assert_allclose(
        ours.precisions_cholesky_, reference.precisions_cholesky_, rtol=1e-7
    )
    assert_allclose(ours.precisions_, reference.precisions_, rtol=1e-7)
    for data in (X, X_test):
        assert_allclose(
            ours.score_samples(data), reference.score_samples(data), atol=1e-8
        )
        assert_allclose(ours.score(data), reference.score(data), atol=1e-8, rtol=0)
        assert_allclose(
            ours.predict_proba(data), reference.predict_proba(data), atol=1e-8
        )
        assert_allclose(ours.bic(data), reference.bic(data), atol=1e-8, rtol=1e-12)
        assert_allclose(ours.aic(data), reference.aic(data), atol=1e-8, rtol=1e-12)
        np.testing.assert_array_equal(ours.predict(data), reference.predict(data))


def _assert_same_fit(ours, reference, X, atol=1e-8):
    """The whole fit is GaussianMixture's: its stopping point and its model."""
    assert ours.n_iter_ == reference.n_iter_
    assert ours.converged_ == reference.converged_
    assert_allclose(ours.lower_bounds_, reference.lower_bounds_, rtol=1e-12)
    assert_allclose(ours.lower_bound_, reference.lower_bound_, rtol=1e-12)
    assert_allclose(ours.weights_, reference.weights_, atol=atol, rtol=0)
    assert_allclose(ours.means_, reference.means_, atol=atol, rtol=0)
    assert_allclose(ours.covariances_, reference.covariances_, atol=atol, rtol=1e-8)
    assert_allclose(ours.score_samples(X), reference.score_samples(X), atol=atol)


def _maximum_likelihood(n_components, **parameters):
    """SparseGaussianMixture set to fit as GaussianMixture does."""
    return SparseGaussianMixture(
        n_components,
        sparsity=0.0,
        covariance_prior=None,
        prune_threshold=0.0,
        relax=False,
        **parameters,
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_whole_fit_stops_where_sklearn_stops(covariance_type):
    """Same start, GaussianMixture's tol: same iterations, bounds and model.

    scikit-learn tests the change of the lower bound before each M-step and
    still takes that M-step; one iteration fewer, or one more, would show in
    n_iter_ and lower_bounds_ and move the parameters by far more than 1e-8.
    """
    X, _ = gaussian_mixture_sample(
        n_samples=1200, n_components=4, n_features=3, separation=3.0, seed=2
    )
    start = _start(X, covariance_type)
    common = dict(covariance_type=covariance_type, tol=1e-3, max_iter=100, **start)
    reference = GaussianMixture(6, **common).fit(X)
    ours = _maximum_likelihood(6, **common).fit(X)
    assert reference.converged_ and reference.n_iter_ > 2
    _assert_same_fit(ours, reference, X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_draws_as_sklearn(covariance_type):
    """Same parameters and random_state: the same samples, in the same order."""
    X, _ = gaussian_mixture_sample(n_samples=400, n_components=3, seed=3)
    common = dict(covariance_type=covariance_type, tol=1e-3, random_state=0)
    reference = GaussianMixture(3, **common).fit(X)
    ours = _maximum_likelihood(3, **common).fit(X)
    assert_allclose(ours.covariances_, reference.covariances_, rtol=1e-10)
    ours_X, ours_y = ours.sample(200)
    reference_X, reference_y = reference.sample(200)
    np.testing.assert_array_equal(ours_y, reference_y)
    assert_allclose(ours_X, reference_X, rtol=1e-8, atol=1e-8)


def test_tight_tol_on_a_real_data_set_matches_sklearn():
    """The iris measurements at tol=1e-12, from the same k-means start."""
    X = load_iris().data
    common = dict(tol=1e-12, max_iter=2000, random_state=0)
    reference = GaussianMixture(3, **common).fit(X)
    ours = _maximum_likelihood(3, **common).fit(X)
    assert reference.converged_
    _assert_same_fit(ours, reference, X, atol=1e-9)


def test_warm_starts_converge_where_sklearn_does():
    """Each warm fit compares its first lower bound with the previous fit's."""
    X, _ = gaussian_mixture_sample(n_samples=600, n_components=3, seed=1)
    common = dict(warm_start=True, max_iter=1, tol=1e-4, random_state=0)
    reference = GaussianMixture(4, **common)
    ours = _maximum_likelihood(4, **common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(40):
            reference.fit(X)
            ours.fit(X)
            _assert_same_fit(ours, reference, X)
            if reference.converged_:
                break
    assert reference.converged_


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data"])
def test_same_random_state_gives_sklearns_fit(init_params):
    """The initialisations draw exactly as scikit-learn's, so whole fits agree."""
    X, _ = gaussian_mixture_sample(n_samples=800, separation=3.0, seed=4)
    common = dict(
        init_params=init_params, random_state=0, max_iter=15, tol=0.0, n_init=2
    )
    reference = GaussianMixture(5, **common)
    ours = SparseGaussianMixture(5, sparsity=0.0, covariance_prior=None, **common)
    with pytest.warns(Warning):
        reference.fit(X)
    with pytest.warns(Warning):
        ours.fit(X)
    assert_allclose(ours.means_, reference.means_, atol=1e-6)
    assert_allclose(ours.score_samples(X), reference.score_samples(X), atol=1e-8)


def test_score_samples_is_the_exact_log_density():
    """Independent reference: scipy's multivariate normal densities."""
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    X, _ = gaussian_mixture_sample(n_samples=500, n_features=3, seed=5)
    model = SparseGaussianMixture(4, sparsity=0.5, random_state=0).fit(X)
    log_joint = np.column_stack(
        [
            np.log(w) + multivariate_normal(mean, cov).logpdf(X)
            for w, mean, cov in zip(
                model.weights_, model.means_, model.covariances_, strict=True
            )
        ]
    )
    assert_allclose(model.score_samples(X), logsumexp(log_joint, axis=1), atol=1e-10)
