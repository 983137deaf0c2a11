"""Predictions for samples far from every component: exact, or their limit; never NaN.

The reference is scikit-learn's GaussianMixture holding the same parameters:
it computes the whitened form ``||U^T (x - mu)||^2`` in float64, which stays
finite where sparse_gmm's expanded form overflows in float32.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.mixture import GaussianMixture

from sparse_gmm import SparseGaussianMixture

from .conftest import gaussian_mixture_sample

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _fitted(covariance_type, dtype):
    X = gaussian_mixture_sample(n_samples=600, n_components=3, seed=2)[0]
    return SparseGaussianMixture(
        3, sparsity=0.0, covariance_type=covariance_type, random_state=0
    ).fit(X.astype(dtype))


def _reference(model):
    """GaussianMixture with the model's parameters, in float64."""
    reference = GaussianMixture(
        model.n_components_, covariance_type=model.covariance_type
    )
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        setattr(reference, name, getattr(model, name).astype(np.float64))
    return reference


def _full_precisions(model):
    """Every component's precision as a (D, D) matrix."""
    precisions, n_features = model.precisions_, model.means_.shape[1]
    if model.covariance_type == "full":
        return precisions
    if model.covariance_type == "tied":
        return np.broadcast_to(
            precisions, (model.n_components_, n_features, n_features)
        )
    if model.covariance_type == "diag":
        return np.stack([np.diag(row) for row in precisions])
    return precisions[:, None, None] * np.eye(n_features)


def _far(model, scale, dtype):
    directions = np.random.default_rng(0).normal(size=(6, model.means_.shape[1]))
    return (model.means_.mean(axis=0) + directions * scale).astype(dtype)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("scale", [1e17, 1e20, 1e30])
def test_float32_far_samples_match_the_float64_reference(covariance_type, scale):
    """x x^T overflows float32 beyond 1e19: the exact value, rounded to float32."""
    model = _fitted(covariance_type, np.float32)
    far = _far(model, scale, np.float32)
    reference = _reference(model)
    far64 = far.astype(np.float64)
    log_density = model.score_samples(far)
    assert log_density.dtype == np.float32
    # Below float32's range (-3.4e38) the rounded value is -inf.
    with np.errstate(over="ignore"):
        expected = reference.score_samples(far64).astype(np.float32)
    assert_allclose(log_density, expected, rtol=1e-5)
    proba = model.predict_proba(far)
    assert np.all(np.isfinite(proba))
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    if covariance_type == "tied":
        # One shared precision: the log-joints differ by x^T P (mu_j - mu_k),
        # about 1e-16 of log p(x) here, below rounding in float32 (and
        # scikit-learn's float64 rows sum to 2 or 3). The components are then
        # tied and share the mass evenly.
        assert_allclose(proba, 1.0 / model.n_components_, rtol=1e-6)
        return
    # The precisions differ, so the log-joints differ at the scale of log p(x)
    # itself, and the reference's one-hot rows are exact.
    assert_allclose(proba, reference.predict_proba(far64), atol=1e-6)
    assert_array_equal(model.predict(far), reference.predict(far64))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float64_samples_beyond_the_range_score_minus_inf(covariance_type):
    """At 1e200 the log-density (about -1e400) is below float64: -inf, and the
    responsibilities are their limit along the sample's direction: all mass on
    the component whose precision is smallest in that direction."""
    model = _fitted(covariance_type, np.float64)
    far = _far(model, 1e200, np.float64)
    assert_array_equal(model.score_samples(far), -np.inf)
    # Scaled by the largest entry: a norm of 1e200 values overflows.
    directions = far / np.abs(far).max(axis=1, keepdims=True)
    full = _full_precisions(model)
    curvature = np.einsum("id,jde,ie->ij", directions, full, directions)
    expected = np.argmin(curvature, axis=1)
    assert_array_equal(model.predict(far), expected)
    proba = model.predict_proba(far)
    assert_array_equal(proba, np.eye(model.n_components_)[expected])


def test_far_responsibilities_sum_to_one_when_log_p_dwarfs_their_differences():
    """1e20 away in float64, log p(x) is about -1e46 and the components'
    log-joints agree to every digit; each row still sums to one."""
    X = np.repeat([[0.35], [0.82]], 50, axis=0)
    model = SparseGaussianMixture(2, sparsity=0.0, random_state=0).fit(X)
    proba = model.predict_proba(np.array([[1e20], [-1e20]]))
    assert np.all(np.isfinite(proba))
    assert_allclose(proba.sum(axis=1), 1.0)
