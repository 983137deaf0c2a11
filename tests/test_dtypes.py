"""Float32 in, float32 out; float32 statistics stay accurate far from the origin."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sparse_gmm import SparseGaussianMixture

from .conftest import gaussian_mixture_sample

ARRAY_ATTRIBUTES = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(covariance_type, dtype):
    X = gaussian_mixture_sample(n_samples=600, n_components=3)[0].astype(dtype)
    model = SparseGaussianMixture(
        6, covariance_type=covariance_type, random_state=0
    ).fit(X)
    for name in ARRAY_ATTRIBUTES:
        assert getattr(model, name).dtype == dtype, name
    assert model.score_samples(X).dtype == dtype
    assert model.predict_proba(X).dtype == dtype
    assert model.sample(10)[0].dtype == dtype
    assert np.issubdtype(model.predict(X).dtype, np.integer)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_integer_input_is_fitted_as_float64(covariance_type):
    X = np.round(gaussian_mixture_sample(n_samples=600, n_components=3)[0] * 10)
    model = SparseGaussianMixture(4, covariance_type=covariance_type, random_state=0)
    model.fit(X.astype(np.int64))
    assert model.means_.dtype == np.float64


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_float32_fit_scores_like_float64(offset):
    X, _ = gaussian_mixture_sample(n_samples=4000, n_components=4, seed=7)
    X = X + offset
    X32 = X.astype(np.float32)
    # Both fits see the same (float32-representable) data and start.
    common = dict(n_components=12, sparsity=2.0, random_state=0, tol=1e-7)
    fit64 = SparseGaussianMixture(**common).fit(X32.astype(np.float64))
    fit32 = SparseGaussianMixture(**common).fit(X32)
    assert fit32.n_components_ == fit64.n_components_
    assert abs(fit32.score(X32) - fit64.score(X32.astype(np.float64))) < 1e-3
    assert_allclose(
        fit32.score_samples(X32),
        fit64.score_samples(X32.astype(np.float64)),
        atol=5e-2,
    )
    # float32 rounding ends the fit a few iterations earlier on a flat optimum.
    assert_allclose(fit32.means_, fit64.means_, rtol=1e-6, atol=1e-2)
