"""Torch tensors in and out, and scikit-learn's array API contract.

Without ``array_api_dispatch`` a tensor is fitted where it is and the results
are NumPy arrays. Under ``sklearn.config_context(array_api_dispatch=True)``
results and fitted arrays are tensors on the input's device, as
GaussianMixture returns them. Dispatch needs ``SCIPY_ARRAY_API=1`` before
scipy is imported, which this process cannot change afterwards: the tests of
:class:`TestUnderDispatch` run in a subprocess that sets it
(``test_dispatch_tests_pass_under_scipy_array_api``), and directly when the
suite itself runs with it. CUDA cases are skipped without a GPU.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import sklearn
import torch
from numpy.testing import assert_allclose, assert_array_equal

import sparse_gmm
from sparse_gmm import SparseGaussianMixture, SparseGaussianMixtureCV
from sparse_gmm.engines import TorchEngine

from .conftest import gaussian_mixture_sample

SCIPY_ARRAY_API = os.environ.get("SCIPY_ARRAY_API") == "1"
CUDA = pytest.param(
    "cuda",
    marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
)
DEVICES = ["cpu", CUDA]
# The parameters a fit stores as arrays: under dispatch, all of them follow X.
FITTED_ARRAYS = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
    "active_components_",
    "loss_curve_",
    "n_components_curve_",
)


@pytest.fixture(scope="module")
def data():
    """Three clusters, and positive weights."""
    X, _ = gaussian_mixture_sample(n_samples=600, n_components=3, seed=2)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    return X, weights


def _model(**params):
    # Five components for three clusters: the default priors prune two.
    return SparseGaussianMixture(5, random_state=0, **params)


def _host(array):
    return array.cpu().numpy() if isinstance(array, torch.Tensor) else array


# ------------------------------------------------------------ without dispatch


def test_a_cpu_tensor_gives_numpy_results_equal_to_numpy_input(data):
    X, weights = data
    reference = _model().fit(X, sample_weight=weights)
    model = _model().fit(torch.as_tensor(X), sample_weight=torch.as_tensor(weights))
    X_tensor = torch.as_tensor(X)
    assert reference.n_components_ == model.n_components_ == 3
    for name in FITTED_ARRAYS:
        assert isinstance(getattr(model, name), np.ndarray), name
        assert_array_equal(getattr(model, name), getattr(reference, name))
    for method in ("score_samples", "predict", "predict_proba"):
        result = getattr(model, method)(X_tensor)
        assert isinstance(result, np.ndarray), method
        assert_array_equal(result, getattr(reference, method)(X))
    # Torch and NumPy reduce the mean in different orders.
    assert model.score(X_tensor) == pytest.approx(reference.score(X), rel=1e-14)
    assert model.score(
        X_tensor, sample_weight=torch.as_tensor(weights)
    ) == pytest.approx(reference.score(X, sample_weight=weights), rel=1e-14)
    assert model.bic(X_tensor) == pytest.approx(reference.bic(X), rel=1e-14)


def test_a_cpu_tensor_reaches_the_engine_without_a_copy(data, monkeypatch):
    X, _ = data
    X_tensor = torch.as_tensor(X)
    seen = []
    for name in ("statistics", "score_samples"):
        original = getattr(TorchEngine, name)

        def recording(self, X, *args, original=original):
            seen.append(X.data_ptr())
            return original(self, X, *args)

        monkeypatch.setattr(TorchEngine, name, recording)

    def no_numpy_conversion(self, *args, **kwargs):
        raise AssertionError("the tensor was converted with np.asarray")

    # scikit-learn's validate_data would convert it so.
    monkeypatch.setattr(torch.Tensor, "__array__", no_numpy_conversion)
    model = _model(engine="torch").fit(X_tensor)
    model.score_samples(X_tensor)
    assert len(seen) > model.n_iter_
    assert set(seen) == {X_tensor.data_ptr()}


def test_dtypes_as_scikit_learn_casts_them(data):
    X, _ = data
    single = _model(max_iter=5).fit(torch.as_tensor(X, dtype=torch.float32))
    assert single.means_.dtype == np.float32
    assert single.score_samples(torch.as_tensor(X[:5], dtype=torch.float32)).dtype == (
        np.float32
    )
    integers = torch.as_tensor(np.round(X * 10), dtype=torch.int64)
    from_integers = _model(max_iter=5).fit(integers)
    reference = _model(max_iter=5).fit(np.round(X * 10).astype(np.int64))
    assert from_integers.means_.dtype == np.float64
    assert_array_equal(from_integers.means_, reference.means_)
    # A tensor that requires a gradient is fitted on its values.
    graph = torch.as_tensor(X).requires_grad_()
    assert_array_equal(
        _model(max_iter=5).fit(graph).means_, _model(max_iter=5).fit(X).means_
    )


def _bad_tensors(X):
    X = torch.as_tensor(X)
    with_nan = X.clone()
    with_nan[7, 1] = float("nan")
    return {
        "1-D": (X[:, 0], None, "2-D"),
        "one sample": (X[:1], None, "minimum of 2"),
        "no feature": (X[:, :0], None, "0 feature"),
        "complex": (X.to(torch.complex128), None, "Complex"),
        "sparse": (X.to_sparse(), None, "sparse"),
        "NaN": (with_nan, None, "NaN or infinity"),
        "negative weight": (X, -torch.ones(len(X)), "Negative values"),
        "NaN weight": (X, torch.full((len(X),), float("nan")), "NaN"),
        "short weights": (X, torch.ones(len(X) - 1), "shape"),
        "2-D weights": (X, torch.ones(len(X), 1), "shape"),
    }


@pytest.mark.parametrize("case", list(_bad_tensors(np.zeros((10, 2)))))
def test_bad_tensors_raise_and_leave_the_estimator_unfitted(data, case):
    X, _ = data
    bad_X, bad_weight, message = _bad_tensors(X)[case]
    model = _model()
    with pytest.raises(ValueError, match=message):
        model.fit(bad_X, sample_weight=bad_weight)
    assert not hasattr(model, "weights_") and not hasattr(model, "n_features_in_")


def test_bad_tensors_at_prediction(data):
    X, _ = data
    model = _model(max_iter=5).fit(X)
    with pytest.raises(ValueError, match="3 features"):
        model.predict(torch.ones(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.score_samples(torch.tensor([[0.0, float("inf")]]))
    with pytest.raises(ValueError, match="sums to zero"):
        model.score(torch.as_tensor(X), sample_weight=torch.zeros(len(X)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_tensor_is_fitted_on_its_gpu_without_dispatch(data, monkeypatch):
    X, _ = data
    devices = []
    original = TorchEngine.statistics

    def recording(self, X, *args):
        devices.append(X.device.type)
        return original(self, X, *args)

    monkeypatch.setattr(TorchEngine, "statistics", recording)
    model = _model(engine="torch").fit(torch.as_tensor(X, device="cuda"))
    assert set(devices) == {"cuda"}
    assert isinstance(model.means_, np.ndarray)
    reference = _model(engine="torch", device="cpu").fit(X)
    assert model.n_components_ == reference.n_components_
    assert_allclose(model.means_, reference.means_, atol=1e-6)
    labels = model.predict(torch.as_tensor(X, device="cuda"))
    assert isinstance(labels, np.ndarray)
    assert_array_equal(labels, reference.predict(X))


# --------------------------------------------------------------- under dispatch


@pytest.mark.skipif(
    not SCIPY_ARRAY_API,
    reason="needs SCIPY_ARRAY_API=1 before scipy's import; "
    "test_dispatch_tests_pass_under_scipy_array_api runs these in a subprocess",
)
class TestUnderDispatch:
    """Tensors in, tensors out, as GaussianMixture under array_api_dispatch."""

    @pytest.mark.parametrize("device", DEVICES)
    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    @pytest.mark.parametrize("covariance_type", ["full", "diag"])
    def test_results_and_fitted_arrays_are_tensors_equal_to_numpy_ones(
        self, data, device, dtype, covariance_type
    ):
        X, weights = data
        X = X.astype(torch.empty(0, dtype=dtype).numpy().dtype)
        on_cpu = device == "cpu"
        # The CPU computes the same operations on the same memory; a GPU
        # sums in another order.
        tolerance = dict(rtol=1e-12 if on_cpu else 1e-5, atol=0 if on_cpu else 1e-5)
        reference = _model(covariance_type=covariance_type).fit(
            X, sample_weight=weights
        )
        X_tensor = torch.as_tensor(X, device=device)
        weight_tensor = torch.as_tensor(weights, device=device)
        with sklearn.config_context(array_api_dispatch=True):
            model = _model(covariance_type=covariance_type)
            model.fit(X_tensor, sample_weight=weight_tensor)
            results = {
                "score_samples": model.score_samples(X_tensor),
                "predict_proba": model.predict_proba(X_tensor),
                "predict": model.predict(X_tensor),
                "sample": model.sample(20),
            }
            scores = {
                "score": model.score(X_tensor),
                "weighted score": model.score(X_tensor, sample_weight=weight_tensor),
                "bic": model.bic(X_tensor),
                "aic": model.aic(X_tensor),
            }
        assert model.n_components_ == reference.n_components_
        for name in FITTED_ARRAYS:
            attribute = getattr(model, name)
            assert isinstance(attribute, torch.Tensor), name
            assert attribute.device.type == device, name
            assert_allclose(_host(attribute), getattr(reference, name), **tolerance)
        assert model.means_.dtype == model.covariances_.dtype == dtype
        sample_X, sample_y = results.pop("sample")
        reference_X, reference_y = reference.sample(20)
        for result in [*results.values(), sample_X]:
            assert isinstance(result, torch.Tensor) and result.device.type == device
        assert_allclose(_host(sample_X), reference_X, **tolerance)
        assert_array_equal(_host(sample_y), reference_y)
        assert sample_y.dtype == torch.int64 and sample_y.device.type == device
        for name, result in results.items():
            assert_allclose(_host(result), getattr(reference, name)(X), **tolerance)
        expected = {
            "score": reference.score(X),
            "weighted score": reference.score(X, sample_weight=weights),
            "bic": reference.bic(X),
            "aic": reference.aic(X),
        }
        for name, score in scores.items():
            assert type(score) is float, name
            assert score == pytest.approx(expected[name], rel=tolerance["rtol"])

    @pytest.mark.parametrize("device", DEVICES)
    def test_numpy_input_gives_numpy_results_from_a_tensor_fit(self, data, device):
        X, _ = data
        with sklearn.config_context(array_api_dispatch=True):
            model = _model(max_iter=20).fit(torch.as_tensor(X, device=device))
            labels = model.predict(X)
            numpy_fit = _model(max_iter=20).fit(X)
        assert isinstance(labels, np.ndarray)
        assert isinstance(numpy_fit.means_, np.ndarray)
        assert_array_equal(labels, numpy_fit.predict(X))

    @pytest.mark.parametrize("device", DEVICES)
    def test_warm_start_continues_from_tensor_attributes(self, data, device):
        X, _ = data
        X_tensor = torch.as_tensor(X, device=device)
        params = dict(warm_start=True, max_iter=3)
        with sklearn.config_context(array_api_dispatch=True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
                on_tensors = _model(**params).fit(X_tensor).fit(X_tensor)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
            on_arrays = _model(**params).fit(X).fit(X)
        assert on_tensors.means_.device.type == device
        assert_allclose(_host(on_tensors.means_), on_arrays.means_, rtol=1e-6)

    @pytest.mark.parametrize("device", DEVICES)
    def test_cross_validation_on_tensors(self, data, device):
        X, _ = data
        params = dict(n_components=4, n_sparsities=3, cv=3, random_state=0)
        reference = SparseGaussianMixtureCV(**params).fit(X)
        X_tensor = torch.as_tensor(X, device=device)
        with sklearn.config_context(array_api_dispatch=True):
            model = SparseGaussianMixtureCV(**params).fit(X_tensor)
            labels = model.predict(X_tensor)
            score = model.score(X_tensor)
        assert model.sparsity_ == reference.sparsity_
        assert isinstance(model.means_, torch.Tensor)
        assert model.means_.device.type == device
        assert_allclose(_host(model.means_), reference.means_, rtol=1e-6)
        assert labels.device.type == device
        assert score == pytest.approx(reference.score(X), rel=1e-6)

    @pytest.mark.parametrize("device", DEVICES)
    def test_a_tensor_fit_saves_and_loads(self, data, device, tmp_path):
        pytest.importorskip("skops")
        X, _ = data
        X_tensor = torch.as_tensor(X, device=device)
        path = tmp_path / "model.skops"
        with sklearn.config_context(array_api_dispatch=True):
            model = _model(max_iter=20).fit(X_tensor)
            sparse_gmm.save(model, path)
            loaded = sparse_gmm.load(path)
            expected, computed = (
                model.score_samples(X_tensor),
                loaded.score_samples(X_tensor),
            )
        # The file holds NumPy arrays; the fitted model keeps its tensors.
        assert isinstance(loaded.means_, np.ndarray)
        assert isinstance(model.means_, torch.Tensor)
        assert_array_equal(loaded.means_, _host(model.means_))
        assert computed.device.type == device
        assert torch.equal(computed, expected)

    @pytest.mark.parametrize("device", DEVICES)
    @pytest.mark.parametrize("dtype_name", ["float64", "float32"])
    def test_scikit_learn_array_api_input_check(self, device, dtype_name):
        from sklearn.utils.estimator_checks import check_array_api_input

        check_array_api_input(
            "SparseGaussianMixture",
            SparseGaussianMixture(2, random_state=0),
            array_namespace="torch",
            device_name=device,
            dtype_name=dtype_name,
        )


# A fresh interpreter that runs about 110 tests: 14 CPU-seconds, slow tier.
@pytest.mark.slow
@pytest.mark.skipif(SCIPY_ARRAY_API, reason="this run has SCIPY_ARRAY_API=1 already")
def test_dispatch_tests_pass_under_scipy_array_api():
    """The dispatch tests here and scikit-learn's, with SCIPY_ARRAY_API=1."""
    root = Path(__file__).parents[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            f"{Path(__file__).relative_to(root)}::TestUnderDispatch",
            # scikit-learn's own array API mixture tests, torch cases
            # included, on the drop-in (they skip without SCIPY_ARRAY_API).
            "tests/test_sklearn_mixture_suite.py",
            "-k",
            "TestUnderDispatch or array_api",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=root,
        env={**os.environ, "SCIPY_ARRAY_API": "1"},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout.splitlines()[-1]
