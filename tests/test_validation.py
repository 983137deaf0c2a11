"""Bad input is refused with a ValueError that says what is wrong."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sparse_gmm import SparseGaussianMixture, TooFewSamplesWarning

from .conftest import gaussian_mixture_sample


@pytest.fixture
def X():
    return gaussian_mixture_sample(n_samples=300, n_components=3)[0]


@pytest.mark.parametrize(
    ("make_bad", "message"),
    [
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), "NaN"),
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), "inf"),
        (lambda X: X[:, 0], "Expected 2D array"),
        (lambda X: np.array([["a", "b"]] * 10, dtype=object), "could not convert"),
        (lambda X: np.full((10, 2), "x"), "could not convert"),
        (lambda X: X + 1j, "Complex data not supported"),
        (lambda X: np.empty((0, 2)), "0 sample"),
        (lambda X: np.empty((10, 0)), "0 feature"),
        (lambda X: X[:1], "1 sample"),
    ],
    ids=[
        "nan",
        "inf",
        "1-d",
        "objects",
        "strings",
        "complex",
        "empty",
        "no-features",
        "one-sample",
    ],
)
def test_bad_training_data(X, make_bad, message):
    model = SparseGaussianMixture(5)
    with pytest.raises(ValueError, match=message):
        model.fit(make_bad(X))
    assert not hasattr(model, "n_features_in_")
    assert not hasattr(model, "weights_")


def test_fewer_samples_than_components_as_gaussian_mixture_is_an_error(X):
    """No sparsity, prior or pruning, or a given start: the count is exact."""
    maximum_likelihood = SparseGaussianMixture(
        5, sparsity=0.0, covariance_prior=None, prune_threshold=0.0
    )
    given_start = SparseGaussianMixture(5, means_init=X[:5])
    for model in (maximum_likelihood, given_start):
        with pytest.raises(ValueError, match="Expected n_samples >= n_components"):
            model.fit(X[:4])


# Components on repeated points collapse: not what this test is about.
@pytest.mark.filterwarnings("ignore::sparse_gmm.DegenerateComponentWarning")
def test_fit_starts_with_one_component_per_distinct_sample(X):
    """As if n_components were the number of distinct samples of positive weight."""
    distinct = X[:8]
    repeated = np.repeat(distinct, 3, axis=0)
    # Weightless rows count for nothing, whatever their values.
    padded = np.vstack([repeated, X[100:110]])
    weights = np.r_[np.ones(len(repeated)), np.zeros(10)]
    with pytest.warns(TooFewSamplesWarning, match="8 distinct samples") as record:
        model = SparseGaussianMixture(20, random_state=0).fit(
            padded, sample_weight=weights
        )
    [warning] = [w for w in record if w.category is TooFewSamplesWarning]
    assert "n_components=20" in str(warning.message)
    assert warning.filename == __file__
    reference = SparseGaussianMixture(8, random_state=0).fit(
        padded, sample_weight=weights
    )
    assert model.n_components_ == reference.n_components_ <= 8
    np.testing.assert_array_equal(
        model.active_components_, reference.active_components_
    )
    np.testing.assert_allclose(model.means_, reference.means_)
    assert model.sparsity_ == reference.sparsity_


def test_bad_data_at_predict_time(X):
    model = SparseGaussianMixture(3, random_state=0).fit(X)
    for method in ("predict", "predict_proba", "score_samples", "score"):
        with pytest.raises(ValueError, match="3 features, but SparseGaussianMixture"):
            getattr(model, method)(np.column_stack([X, X[:, :1]]))
        with pytest.raises(ValueError, match="NaN"):
            getattr(model, method)(np.full_like(X, np.nan))


def test_not_fitted(X):
    model = SparseGaussianMixture(3)
    for method in ("predict", "predict_proba", "score_samples", "score", "bic"):
        with pytest.raises(NotFittedError):
            getattr(model, method)(X)
    with pytest.raises(NotFittedError):
        model.sample(5)


@pytest.mark.parametrize(
    ("parameter", "value", "message"),
    [
        ("n_components", 0, "n_components"),
        ("sparsity", -1.0, "sparsity"),
        ("covariance_type", "banana", "covariance_type"),
        ("prune_threshold", 1.0, "prune_threshold"),
        ("init_params", "nope", "init_params"),
        ("solver", "sgd", "solver"),
        ("engine", "numba", "engine"),
        ("device", "tpu", "device"),
        (
            "weights_init",
            [0.5, 0.6, -0.1],
            r"The parameter 'weights' should be in the range \[0, 1\]",
        ),
        (
            "weights_init",
            [0.5, 0.4, 0.0],
            "The parameter 'weights' should be normalized",
        ),
        (
            "weights_init",
            [0.5, 0.5],
            r"The parameter 'weights' should have the shape of \(3,\)",
        ),
        (
            "means_init",
            np.zeros((2, 2)),
            r"The parameter 'means' should have the shape of \(3, 2\)",
        ),
        ("precisions_init", -np.ones((3, 2, 2)), "positive-definite"),
        ("precisions_init", np.ones((3, 2)), "'full precision' should have the shape"),
    ],
)
def test_bad_parameters(X, parameter, value, message):
    model = SparseGaussianMixture(3).set_params(**{parameter: value})
    with pytest.raises(ValueError, match=message):
        model.fit(X)
    assert not hasattr(model, "weights_")


def test_cuda_requested_without_cuda(X):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match=r"torch\.cuda\.is_available"):
        SparseGaussianMixture(3, device="cuda").fit(X)


def test_ill_defined_covariance_says_to_raise_reg_covar():
    # Two exact copies of three points: components collapse onto them.
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]]), 20, axis=0)
    model = SparseGaussianMixture(
        3, reg_covar=0.0, covariance_prior=None, random_state=0
    )
    with pytest.raises(ValueError, match="reg_covar"):
        model.fit(X)
    assert not hasattr(model, "weights_")
    SparseGaussianMixture(3, reg_covar=1e-3, random_state=0).fit(X)


def test_failed_fit_leaves_the_previous_fit_untouched(X):
    model = SparseGaussianMixture(3, random_state=0).fit(X)
    before = {k: v for k, v in vars(model).items() if k.endswith("_")}
    bad = np.repeat(X[:3], 10, axis=0)
    model.set_params(reg_covar=0.0, covariance_prior=None)
    with pytest.raises(ValueError, match="reg_covar"):
        model.fit(bad)
    model.set_params(reg_covar=1e-6, covariance_prior="auto")
    with pytest.raises(ValueError):
        model.fit(np.column_stack([X, X]) * np.nan)
    after = {k: v for k, v in vars(model).items() if k.endswith("_")}
    assert before.keys() == after.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value)
    assert model.n_features_in_ == 2
    model.predict(X)


def test_non_finite_likelihood_is_an_error_not_nan():
    X = np.array([[1e300, 1e300], [-1e300, 1e300], [0.0, -1e300]] * 10)
    model = SparseGaussianMixture(2, random_state=0)
    with (
        pytest.raises(ValueError, match="scale the input data"),
        np.errstate(all="ignore"),
    ):
        model.fit(X)
    assert not hasattr(model, "weights_")


def test_negative_or_zero_sample_weight(X):
    with pytest.raises(ValueError, match="Negative values"):
        SparseGaussianMixture(3).fit(X, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match="non-zero"):
        SparseGaussianMixture(3).fit(X, sample_weight=np.zeros(len(X)))
    with pytest.raises(ValueError, match="shape"):
        SparseGaussianMixture(3).fit(X, sample_weight=np.ones(len(X) + 1))
