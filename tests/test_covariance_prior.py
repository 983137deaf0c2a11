"""The covariance prior, annihilation, sparsity='auto' and the relaxed refit.

References are computed here from the formulas in NumPy and SciPy, or by
scikit-learn's GaussianMixture, never read off the fit itself.
"""

import math
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from sparse_gmm import DegenerateComponentWarning, SparseGaussianMixture

from .conftest import explicit_start, gaussian_mixture_sample


def _responsibilities(X, weights, means, covariances):
    log_joint = np.column_stack(
        [
            np.log(w) + multivariate_normal(m, c).logpdf(X)
            for w, m, c in zip(weights, means, covariances, strict=True)
        ]
    )
    return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))


def _prior_penalty(covariances, psi, n_samples):
    """sum_j (a (log|S_j| - log|Psi/a|) + tr(Psi S_j^-1) - a D) / (2 N)."""
    n_features = psi.shape[0]
    a = (n_features + 2) + n_features + 1
    _, log_det_mode = np.linalg.slogdet(psi / a)
    total = 0.0
    for covariance in covariances:
        _, log_det = np.linalg.slogdet(covariance)
        trace = np.trace(psi @ np.linalg.inv(covariance))
        total += a * (log_det - log_det_mode) + trace - a * n_features
    return total / (2 * n_samples)


def test_one_map_step_is_the_closed_form():
    X, _ = gaussian_mixture_sample(n_samples=400, n_components=3, n_features=3)
    start = explicit_start(X, 3)
    psi = np.diag([0.5, 1.0, 2.0])
    model = SparseGaussianMixture(
        3,
        sparsity=0.0,
        covariance_prior=psi,
        relax=False,
        max_iter=1,
        tol=0.0,
        reg_covar=0.0,
        **start,
    )
    with pytest.warns(Warning, match="did not converge"):
        model.fit(X)
    covariances = np.linalg.inv(start["precisions_init"])
    resp = _responsibilities(X, start["weights_init"], start["means_init"], covariances)
    nk = resp.sum(0)
    means = resp.T @ X / nk[:, None]
    a = (3 + 2) + 3 + 1
    expected = [
        (psi + (resp[:, j, None] * (X - means[j])).T @ (X - means[j])) / (nk[j] + a)
        for j in range(3)
    ]
    assert_allclose(model.means_, means, rtol=1e-10)
    assert_allclose(model.covariances_, expected, rtol=1e-9)


def test_objective_includes_the_prior_and_never_increases():
    X, _ = gaussian_mixture_sample(n_samples=2000, n_components=3, n_features=2)
    psi = 0.3 * np.eye(2)
    model = SparseGaussianMixture(
        6,
        sparsity=1.0,
        covariance_prior=psi,
        relax=False,
        criterion=None,
        tol=1e-8,
        random_state=0,
    ).fit(X)
    kept_count = np.diff(model.n_components_curve_) == 0
    assert np.all(np.diff(model.loss_curve_)[kept_count] <= 1e-12)
    penalty = 1.0 / 6 * np.sqrt(model.weights_).sum()
    prior = _prior_penalty(model.covariances_, psi, len(X))
    assert prior > 0
    assert_allclose(model.objective_, -model.score(X) + penalty + prior, rtol=1e-9)


def test_prior_penalty_is_zero_at_the_mode_and_positive_elsewhere():
    psi = np.array([[2.0, 0.3], [0.3, 1.0]])
    a = 2 + 2 + 2 + 1
    assert _prior_penalty([psi / a], psi, 1) == pytest.approx(0.0, abs=1e-12)
    assert _prior_penalty([psi / a * 1.5], psi, 1) > 0
    assert _prior_penalty([psi / a * 0.5], psi, 1) > 0


def _standardised_iris():
    return StandardScaler().fit_transform(load_iris().data)


def test_maximum_likelihood_collapses_on_ties_and_warns():
    # Iris is measured to a millimetre: ML components shrink onto tied rows.
    X = _standardised_iris()
    model = SparseGaussianMixture(
        20, sparsity=0.0, covariance_prior=None, random_state=0
    )
    with pytest.warns(DegenerateComponentWarning, match="reg_covar floor"):
        model.fit(X)


def test_defaults_on_iris_keep_few_sound_components():
    X = _standardised_iris()
    bic = [GaussianMixture(k, random_state=0).fit(X).bic(X) for k in range(1, 7)]
    k_bic = int(np.argmin(bic)) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateComponentWarning)
        model = SparseGaussianMixture(random_state=0).fit(X)
    assert 1 <= model.n_components_ <= 2 * k_bic + 2
    # The relaxed refit ends at maximum likelihood: one more EM step of
    # scikit-learn's from the fitted model barely moves it.
    step = GaussianMixture(
        model.n_components_,
        weights_init=model.weights_,
        means_init=model.means_,
        precisions_init=model.precisions_,
        max_iter=1,
        tol=0.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step.fit(X)
    assert abs(step.score(X) - model.score(X)) < 1e-3


def test_a_component_without_enough_samples_is_annihilated():
    # Three far-away points in 3-D: fewer than p / 2 = 4.5 samples.
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0.0, 1.0, (600, 3)), rng.normal(40.0, 1.0, (3, 3))])
    start = {
        "weights_init": np.array([0.995, 0.005]),
        "means_init": np.array([np.zeros(3), np.full(3, 40.0)]),
        "precisions_init": np.array([np.eye(3), np.eye(3)]),
    }
    kept = SparseGaussianMixture(
        2, sparsity=0.0, covariance_prior=None, random_state=0, **start
    ).fit(X)
    assert kept.n_components_ == 2
    annihilated = SparseGaussianMixture(2, random_state=0, **start).fit(X)
    assert annihilated.n_components_ == 1


@pytest.mark.parametrize("n_samples", [500, 5000])
def test_auto_sparsity_is_what_bic_charges(n_samples):
    X, _ = gaussian_mixture_sample(n_samples=n_samples, n_features=2)
    model = SparseGaussianMixture(10, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    p = 2 + 3 + 1
    expected = 10**1.5 * p * math.log(n_samples) / (2 * n_samples)
    assert model.sparsity_ == pytest.approx(expected)
    # (s / M) sqrt(1 / M) nats per sample is BIC's (p / 2) ln N / N.
    per_component = model.sparsity_ / 10 * math.sqrt(1 / 10)
    assert per_component == pytest.approx(p / 2 * math.log(n_samples) / n_samples)


def test_float32_fit_of_tied_data_finishes():
    X = _standardised_iris().astype(np.float32)
    model = SparseGaussianMixture(random_state=0).fit(X)
    assert model.means_.dtype == np.float32
    assert np.all(np.isfinite(model.score_samples(X)))


def test_bad_covariance_prior_is_a_value_error():
    X, _ = gaussian_mixture_sample(n_samples=200, n_features=2)
    with pytest.raises(ValueError, match="shape"):
        SparseGaussianMixture(3, covariance_prior=np.eye(3)).fit(X)
    with pytest.raises(ValueError, match="positive definite"):
        SparseGaussianMixture(3, covariance_prior=-np.eye(2)).fit(X)
