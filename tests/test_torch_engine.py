"""The torch engine's cached moment features: a speed-up that changes no result."""

import dataclasses
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from sparse_gmm import SparseGaussianMixture
from sparse_gmm._m_step import gaussian_components
from sparse_gmm.engines import TorchEngine
from sparse_gmm.engines._base import mixture_center

from .conftest import gaussian_mixture_sample


@pytest.fixture(scope="module")
def sample_and_parameters():
    X, _ = gaussian_mixture_sample(n_samples=500, n_components=3, n_features=3)
    model = SparseGaussianMixture(4, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    return torch.as_tensor(X), model._fitted_parameters(torch.device("cpu"))


def moved(parameters, offset):
    return dataclasses.replace(parameters, means=parameters.means + offset)


def frame_free(statistics):
    """What the M-step makes of the statistics, which no centre changes."""
    means, covariances, _ = gaussian_components(statistics, "full", 1e-6)
    return statistics.log_likelihood, means.numpy(), covariances.numpy()


def assert_same_statistics(cached, fresh):
    # Different centres round differently, in the last digits.
    for got, expected in zip(frame_free(cached), frame_free(fresh), strict=True):
        assert_allclose(got, expected, rtol=1e-11, atol=1e-11)


def frame_free_error(statistics, reference):
    """Largest deviation of the M-step's output from a float64 reference."""
    return max(
        float(np.max(np.abs(np.subtract(got, expected))))
        for got, expected in zip(
            frame_free(statistics), frame_free(reference), strict=True
        )
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_nearby_mixture_reuses_the_features_with_the_same_result(
    sample_and_parameters, dtype
):
    X, parameters = sample_and_parameters
    X = X.to(dtype)
    weight = torch.ones(len(X), dtype=dtype)
    engine = TorchEngine()
    first = engine.statistics(X, weight, parameters)
    nearby = moved(parameters, 0.01)
    second = engine.statistics(X, weight, nearby)
    # The centre stayed, so phi was not recomputed...
    assert torch.equal(second.center, first.center)
    assert not torch.equal(second.center, mixture_center(nearby, dtype))
    # ...and the E-step is that of an engine that never cached anything.
    fresh = TorchEngine().statistics(X, weight, nearby)
    if dtype == torch.float64:
        assert_same_statistics(second, fresh)
    else:
        # float32 sums lose digits to cancellation whatever the centre; the
        # kept centre loses no more than the mixture's own mean does.
        reference = TorchEngine().statistics(X.double(), weight.double(), nearby)
        fresh_error = frame_free_error(fresh, reference)
        assert frame_free_error(second, reference) <= 2 * fresh_error + 1e-9


def test_a_distant_mixture_moves_the_centre(sample_and_parameters):
    X, parameters = sample_and_parameters
    weight = torch.ones(len(X), dtype=X.dtype)
    engine = TorchEngine()
    engine.statistics(X, weight, parameters)
    distant = moved(parameters, 5.0 * X.std())
    statistics = engine.statistics(X, weight, distant)
    assert torch.equal(statistics.center, mixture_center(distant, X.dtype))
    assert_same_statistics(statistics, TorchEngine().statistics(X, weight, distant))


def test_samples_written_in_place_are_not_served_from_the_cache(
    sample_and_parameters,
):
    X, parameters = sample_and_parameters
    X = X.clone()
    weight = torch.ones(len(X), dtype=X.dtype)
    engine = TorchEngine()
    engine.statistics(X, weight, parameters)
    X.mul_(1.5)
    assert_same_statistics(
        engine.statistics(X, weight, parameters),
        TorchEngine().statistics(X, weight, parameters),
    )
    other = X.clone()
    assert_same_statistics(
        engine.statistics(other, weight, parameters),
        TorchEngine().statistics(other, weight, parameters),
    )


@pytest.mark.parametrize("cached_chunk", [None, 40 * 8 * 30])
def test_statistics_match_a_chunked_engine_that_cannot_cache(
    sample_and_parameters, cached_chunk
):
    X, parameters = sample_and_parameters
    # Whole or in 40-row chunks, phi of all rows is kept...
    cached = TorchEngine(memory_budget=cached_chunk)
    # ...against 40-row chunks that recompute it every pass.
    chunked = TorchEngine(memory_budget=40 * 8 * 30, feature_cache_bytes=0)
    weight = torch.linspace(0.5, 2.0, len(X), dtype=X.dtype)
    for step in range(5):
        along = moved(parameters, 0.02 * step)
        assert_same_statistics(
            cached.statistics(X, weight, along), chunked.statistics(X, weight, along)
        )
    assert cached._features is not None and chunked._features is None


def test_gradients_are_taken_in_the_kept_centres_frame(sample_and_parameters):
    X, parameters = sample_and_parameters
    weight = torch.ones(len(X), dtype=X.dtype)
    cached = TorchEngine()
    cached.statistics(X, weight, parameters)
    nearby = moved(parameters, 0.05)

    def gradient(engine):
        means = nearby.means.clone().requires_grad_(True)
        along = dataclasses.replace(nearby, means=means)
        engine.log_likelihood(X, weight, along).backward()
        return means.grad

    kept = gradient(cached)
    assert not torch.equal(cached._features.center, mixture_center(nearby, X.dtype))
    assert_allclose(kept.numpy(), gradient(TorchEngine()).numpy(), rtol=1e-9)


def test_a_prediction_keeps_no_features(sample_and_parameters):
    # One pass gains nothing from phi of all rows, which would take N x F
    # numbers beyond a chunk's (240 MiB for 1e7 float32 rows in 2-D).
    X, parameters = sample_and_parameters
    engine = TorchEngine(memory_budget=40 * 8 * 30)
    chunked = engine.score_samples(X, parameters)
    assert engine._features is None
    engine.statistics(X, torch.ones(len(X), dtype=X.dtype), parameters)
    assert engine._features is not None
    # After a fit's pass, a prediction on the same rows reads what it kept.
    assert_allclose(engine.score_samples(X, parameters), chunked, rtol=1e-12)
