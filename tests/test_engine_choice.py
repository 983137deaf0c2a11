"""engine='auto': the documented rule, and the fallback from KeOps to torch."""

import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

import sparse_gmm.engines as engines
from sparse_gmm import SparseGaussianMixture
from sparse_gmm.engines import (
    EngineFallbackWarning,
    KeOpsUnavailableError,
    _fallback,
    _keops,
    choose_engine,
    make_engine,
)

from .conftest import gaussian_mixture_sample

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture(autouse=True)
def _fresh_process_memory(monkeypatch):
    """Each test starts as a process in which KeOps has not failed yet."""
    monkeypatch.setattr(_fallback, "_keops_failure", None)


@pytest.fixture
def keops_installed(monkeypatch):
    monkeypatch.setattr(engines.importlib.util, "find_spec", lambda name: object())


@pytest.fixture
def keops_chosen(keops_installed, monkeypatch):
    """'auto' choosing KeOps on the CPU, as it does on a CUDA device."""
    monkeypatch.setattr(engines, "choose_engine", lambda device: "keops")


@pytest.fixture
def keops_broken(monkeypatch):
    """KeOps as on a machine where it cannot compile: its first use raises."""

    def broken(verbose=None):
        raise KeOpsUnavailableError("KeOps could not compile (no g++ on PATH).")

    monkeypatch.setattr(_keops, "_keops", broken)


@pytest.mark.parametrize(("device", "expected"), [(CPU, "torch"), (CUDA, "keops")])
def test_auto_rule_follows_the_measured_cells(keops_installed, device, expected):
    # benchmarks/results/bench_engines.txt: torch was faster on the CPU in
    # every cell measured, in float32 and float64.
    assert choose_engine(device) == expected
    if device == CPU:
        assert make_engine("auto", device).name == "torch"


def test_auto_picks_torch_without_pykeops(monkeypatch):
    monkeypatch.setattr(engines.importlib.util, "find_spec", lambda name: None)
    assert choose_engine(CUDA) == "torch"
    assert make_engine("auto", "cpu").name == "torch"


def test_auto_stops_choosing_keops_once_it_failed(keops_installed, monkeypatch):
    monkeypatch.setattr(_fallback, "_keops_failure", KeOpsUnavailableError("x"))
    assert choose_engine(CUDA) == "torch"


def _fit(X, engine):
    return SparseGaussianMixture(
        5, sparsity=2.0, engine=engine, random_state=0, max_iter=30
    ).fit(X)


def test_auto_falls_back_to_torch_with_one_warning(keops_chosen, keops_broken):
    X, _ = gaussian_mixture_sample(n_samples=600, n_components=3, n_features=2)
    reference = _fit(X, "torch")

    with pytest.warns(EngineFallbackWarning, match="engine='torch'") as record:
        model = _fit(X, "auto")
    assert len(record) == 1
    assert "g++" in str(record[0].message)
    assert model.engine_ == "torch"
    assert_allclose(model.means_, reference.means_)
    assert_allclose(model.score_samples(X), reference.score_samples(X))

    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineFallbackWarning)
        again = _fit(X, "auto")
        again.predict(X)
    assert_allclose(again.means_, reference.means_)


def test_keops_on_request_raises_and_leaves_the_model_unfitted(keops_broken):
    X, _ = gaussian_mixture_sample(n_samples=300, n_components=3, n_features=2)
    model = SparseGaussianMixture(3, engine="keops")
    with pytest.raises(KeOpsUnavailableError, match="g\\+\\+"):
        model.fit(X)
    assert not hasattr(model, "weights_")


def test_fallback_redoes_each_primitive_exactly(keops_chosen, keops_broken):
    X, _ = gaussian_mixture_sample(n_samples=400, n_components=3, n_features=3)
    model = _fit(X, "torch")
    parameters = model._fitted_parameters(CPU)
    X_t = torch.as_tensor(X)
    weight = torch.ones(len(X), dtype=X_t.dtype)
    torch_engine = make_engine("torch", "cpu")
    auto = make_engine("auto", "cpu")
    assert isinstance(auto, _fallback.FallbackEngine)
    assert auto.name == "keops"
    expected = torch_engine.statistics(X_t, weight, parameters)
    with pytest.warns(EngineFallbackWarning):
        computed = auto.statistics(X_t, weight, parameters)
    assert auto.name == "torch"
    assert_allclose(computed.moments, expected.moments)
    assert computed.log_likelihood == expected.log_likelihood
    np.testing.assert_array_equal(
        auto.most_likely_component(X_t, parameters),
        torch_engine.most_likely_component(X_t, parameters),
    )


@pytest.mark.skipif(
    engines.importlib.util.find_spec("pykeops") is None, reason="needs pykeops"
)
def test_auto_runs_keops_where_the_rule_picks_it(monkeypatch):
    monkeypatch.setattr(engines, "choose_engine", lambda device: "keops")
    X, _ = gaussian_mixture_sample(n_samples=600, n_components=3, n_features=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineFallbackWarning)
        model = _fit(X, "auto")
    assert model.engine_ == "keops"
    reference = _fit(X, "torch")
    assert reference.engine_ == "torch"
    assert_allclose(model.means_, reference.means_, atol=1e-8)
    assert_allclose(model.score_samples(X), reference.score_samples(X), atol=1e-8)
