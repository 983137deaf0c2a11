"""The KeOps engine computes what the torch engine computes.

KeOps compiles each formula (covariance family, dimension, dtype, reduction)
on first use, in about 5 CPU-seconds: the default tier uses the three
formulas of 'full' covariances in 2-D float64 (log-sum-exp, moments,
argmax), which every test here in that tier shares; the slow tier covers the
other dimensions, dtypes and families, and the gradients.
"""

import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from sparse_gmm import SparseGaussianMixture
from sparse_gmm.engines import make_engine
from sparse_gmm.solvers._gradient import _mixture, _unconstrained

from .conftest import gaussian_mixture_sample

pytest.importorskip("pykeops")

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _fit(X, engine, covariance_type, device="cpu"):
    model = SparseGaussianMixture(
        6,
        sparsity=2.0,
        covariance_type=covariance_type,
        engine=engine,
        random_state=0,
        max_iter=15,
        tol=0.0,
        device=device,
        # Iterate by iterate: the walk down's re-convergences stop where F's
        # change is rounding, which can differ by an iteration between engines,
        # and an extrapolation magnifies the engines' float32 rounding.
        criterion=None,
        acceleration=None,
        # Merges end the fit at its fixed point within max_iter, where the
        # stop on a rounding-level rise of F can differ by an iteration.
        merge_moves=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


def _cases():
    """Every covariance type and dimension; 'full' and 'tied' in 2-D share the
    default tier's formulas."""
    for n_features in (1, 2, 3, 5):
        for covariance_type in COVARIANCE_TYPES:
            shared = n_features == 2 and covariance_type in ("full", "tied")
            marks = () if shared else pytest.mark.slow
            yield pytest.param(n_features, covariance_type, marks=marks)


@pytest.mark.parametrize(("n_features", "covariance_type"), list(_cases()))
def test_keops_fit_and_predictions_match_torch(covariance_type, n_features):
    X, _ = gaussian_mixture_sample(
        n_samples=600, n_components=3, n_features=n_features, seed=n_features
    )
    dense = _fit(X, "torch", covariance_type)
    symbolic = _fit(X, "keops", covariance_type)
    assert symbolic.n_iter_ == dense.n_iter_
    assert_allclose(symbolic.loss_curve_, dense.loss_curve_, rtol=1e-10)
    assert_allclose(symbolic.means_, dense.means_, atol=1e-8)
    assert_allclose(symbolic.covariances_, dense.covariances_, atol=1e-8)
    assert_allclose(symbolic.score_samples(X), dense.score_samples(X), atol=1e-8)
    assert_allclose(symbolic.predict_proba(X), dense.predict_proba(X), atol=1e-8)
    np.testing.assert_array_equal(symbolic.predict(X), dense.predict(X))


@pytest.mark.slow
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_keops_gradients_match_torch(covariance_type):
    X, _ = gaussian_mixture_sample(n_samples=300, n_components=3, n_features=2)
    start = _fit(X, "torch", covariance_type)
    parameters = start._fitted_parameters(torch.device("cpu"))
    X_t = torch.as_tensor(X)
    weight = torch.linspace(0.5, 1.5, len(X), dtype=torch.float64)
    gradients = {}
    for name in ("torch", "keops"):
        variables = _unconstrained(parameters)
        mixture = _mixture(variables, covariance_type, parameters.active)
        value = make_engine(name, "cpu").log_likelihood(X_t, weight, mixture)
        value.backward()
        grads = {key: tensor.grad for key, tensor in variables.items()}
        gradients[name] = (float(value.detach()), grads)
    assert_allclose(gradients["keops"][0], gradients["torch"][0], rtol=1e-12)
    for key, grad in gradients["torch"][1].items():
        assert_allclose(gradients["keops"][1][key], grad, rtol=1e-8, atol=1e-8)


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_keops_on_cuda_matches_torch_on_cuda():
    X, _ = gaussian_mixture_sample(n_samples=5000, n_components=4, n_features=3)
    dense = _fit(X, "torch", "full", device="cuda")
    symbolic = _fit(X, "keops", "full", device="cuda")
    assert_allclose(symbolic.score_samples(X), dense.score_samples(X), atol=1e-8)


@pytest.mark.parametrize(
    "dtype", [pytest.param(np.float32, marks=pytest.mark.slow), np.float64]
)
def test_keops_scores_far_samples_as_torch_does(dtype):
    X, _ = gaussian_mixture_sample(n_samples=300, n_components=3, n_features=2)
    X = X.astype(dtype)
    far = np.array([[1e19, 1e19], [50.0, -50.0], [3e37, 0.0]], dtype=dtype)
    if dtype == np.float64:
        far = np.vstack([far, [[1e200, 0.0], [0.0, -1e160]]])
    symbolic, dense = _fit(X, "keops", "full"), _fit(X, "torch", "full")
    scores = symbolic.score_samples(far)
    assert not np.any(np.isnan(scores))
    assert_allclose(scores, dense.score_samples(far), rtol=1e-5)


def test_keops_labels_samples_beyond_the_range_as_torch_does():
    """Far away, the widest component is the most likely, whatever comes first."""
    rng = np.random.default_rng(0)
    X = np.vstack(
        [rng.normal(size=(200, 2)) * 3 + [10, 0], rng.normal(size=(200, 2)) * 0.3]
    )
    far = np.array([[1e200, 0.0], [0.0, -1e200], [1.0, 1.0]])
    models = {
        engine: SparseGaussianMixture(
            2, sparsity=0.0, engine=engine, random_state=0
        ).fit(X)
        for engine in ("torch", "keops")
    }
    wide = int(np.argmax(models["torch"].covariances_[:, 0, 0]))
    assert models["torch"].predict(far)[:2].tolist() == [wide, wide]
    np.testing.assert_array_equal(
        models["keops"].predict(far), models["torch"].predict(far)
    )
