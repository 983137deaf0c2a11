"""SparseGaussianMixtureCV: the path, the selection rule and the refit."""

import copy

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import KFold

from sparse_gmm import SparseGaussianMixture, SparseGaussianMixtureCV, bic_scorer

from .conftest import gaussian_mixture_sample


@pytest.fixture(scope="module")
def four_blobs():
    X, _ = gaussian_mixture_sample(n_samples=800, n_components=4, seed=3)
    return X


@pytest.fixture(scope="module")
def fitted(four_blobs):
    model = SparseGaussianMixtureCV(
        8, n_sparsities=5, cv=KFold(3, shuffle=True, random_state=0), random_state=0
    )
    return model.fit(four_blobs)


def test_recovers_a_clear_mixture_and_exposes_the_refit(fitted, four_blobs):
    assert fitted.n_components_ == 4
    assert fitted.sparsity_ == fitted.sparsities_[fitted.best_index_]
    refit = fitted.best_estimator_
    # Relaxed: the chosen survivors refitted by maximum likelihood.
    assert refit.get_params()["sparsity"] == 0.0
    assert_array_equal(fitted.means_, refit.means_)
    assert_allclose(fitted.score_samples(four_blobs), refit.score_samples(four_blobs))
    assert_array_equal(fitted.predict(four_blobs), refit.predict(four_blobs))
    assert fitted.predict_proba(four_blobs).shape == (len(four_blobs), 4)
    assert fitted.score(four_blobs) == refit.score(four_blobs)
    assert fitted.bic(four_blobs) == refit.bic(four_blobs)
    X_new, y_new = fitted.sample(50)
    assert X_new.shape == (50, 2) and y_new.shape == (50,)


def test_cv_results_follow_grid_search_layout(fitted):
    results = fitted.cv_results_
    n = len(fitted.sparsities_)
    assert_array_equal(results["param_sparsity"], fitted.sparsities_)
    assert np.all(np.diff(fitted.sparsities_) > 0)
    splits = np.array([results[f"split{k}_test_score"] for k in range(3)])
    assert splits.shape == (3, n)
    assert_allclose(results["mean_test_score"], splits.mean(axis=0))
    assert_allclose(results["std_test_score"], splits.std(axis=0))
    assert results["rank_test_score"][np.argmax(results["mean_test_score"])] == 1
    assert results["mean_n_components"][0] > 4
    assert results["mean_n_components"][-1] <= 4


def test_warm_path_only_loses_components(four_blobs):
    model = SparseGaussianMixtureCV(8, n_sparsities=4, cv=3, path="warm")
    model.set_params(random_state=0).fit(four_blobs)
    assert np.all(np.diff(model.cv_results_["mean_n_components"]) <= 0)
    assert model.best_estimator_.get_params()["warm_start"] is False


def test_best_rule_and_one_standard_error_rule(four_blobs, fitted):
    splits = np.array([fitted.cv_results_[f"split{k}_test_score"] for k in range(3)])
    mean = splits.mean(axis=0)
    best = np.argmax(mean)
    assert fitted.best_index_ == best

    parsimonious = clone(fitted).set_params(selection="one_standard_error")
    parsimonious.fit(four_blobs)
    assert_allclose(parsimonious.cv_results_["mean_test_score"], mean)
    margin = splits[:, best].std(ddof=1) / np.sqrt(3)
    expected = max(i for i in range(len(mean)) if mean[i] >= mean[best] - margin)
    assert parsimonious.best_index_ == expected
    assert parsimonious.sparsity_ >= fitted.sparsity_


def test_relaxed_refit_is_the_penalised_refit_fitted_without_penalty(four_blobs):
    kwargs = dict(sparsities=[3.0], cv=2, random_state=4)
    penalised = SparseGaussianMixtureCV(6, relax=False, **kwargs).fit(four_blobs)
    assert penalised.best_estimator_.get_params()["sparsity"] == 3.0
    relaxed = SparseGaussianMixtureCV(6, **kwargs).fit(four_blobs)
    expected = copy.deepcopy(penalised.best_estimator_)
    expected.set_params(sparsity=0.0, warm_start=True).fit(four_blobs)
    assert_allclose(relaxed.means_, expected.means_)
    assert_allclose(relaxed.weights_, expected.weights_)
    # Relaxing never loses likelihood on the data it is fitted to.
    assert relaxed.score(four_blobs) >= penalised.score(four_blobs)
    assert (
        relaxed.cv_results_["mean_test_score"][0]
        != penalised.cv_results_["mean_test_score"][0]
    )


def test_path_stops_once_one_component_is_left():
    X = np.random.default_rng(0).normal(size=(300, 2))
    model = SparseGaussianMixtureCV(
        4, sparsities=[1.0, 4.0, 16.0, 64.0, 256.0], cv=2, random_state=0
    ).fit(X)
    counts = model.cv_results_["mean_n_components"]
    assert counts[-1] == 1
    first_single = int(np.argmax(counts == 1))
    assert first_single < 4
    scores = model.cv_results_["mean_test_score"]
    assert np.all(scores[first_single:] == scores[first_single])
    assert np.all(model.cv_results_["mean_fit_time"][first_single + 1 :] == 0)
    assert model.n_components_ == 1


def test_folds_in_parallel_give_the_same_results(four_blobs):
    kwargs = dict(n_sparsities=3, cv=3, random_state=1)
    serial = SparseGaussianMixtureCV(6, **kwargs).fit(four_blobs)
    parallel = SparseGaussianMixtureCV(6, n_jobs=2, **kwargs).fit(four_blobs)
    assert_allclose(
        parallel.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
    assert parallel.sparsity_ == serial.sparsity_
    assert_allclose(parallel.means_, serial.means_)


def test_uniform_sample_weights_change_nothing(four_blobs):
    kwargs = dict(n_sparsities=3, cv=3, random_state=2)
    plain = SparseGaussianMixtureCV(6, **kwargs).fit(four_blobs)
    weighted = SparseGaussianMixtureCV(6, **kwargs).fit(
        four_blobs, sample_weight=np.full(len(four_blobs), 3.0)
    )
    assert_allclose(
        weighted.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"]
    )
    assert_allclose(weighted.means_, plain.means_)


def test_bic_scoring(four_blobs):
    model = SparseGaussianMixtureCV(
        8, n_sparsities=4, cv=3, scoring=bic_scorer, random_state=0
    ).fit(four_blobs)
    assert model.n_components_ == 4
    assert np.all(model.cv_results_["mean_test_score"] < 0)


@pytest.mark.parametrize(
    "sparsities", [[], [1.0, -1.0], [np.nan, 1.0], [[1.0, np.inf]]]
)
def test_bad_grids_are_refused(sparsities, four_blobs):
    model = SparseGaussianMixtureCV(4, sparsities=sparsities, cv=2)
    with pytest.raises(ValueError, match="sparsities"):
        model.fit(four_blobs)
    assert not hasattr(model, "best_estimator_")


def test_unfitted_model_refuses_to_predict(four_blobs):
    with pytest.raises(NotFittedError):
        SparseGaussianMixtureCV().predict(four_blobs)


def test_parameters_are_those_of_the_estimator():
    shared = set(SparseGaussianMixture().get_params()) & set(
        SparseGaussianMixtureCV().get_params()
    )
    model = SparseGaussianMixtureCV(covariance_type="diag", reg_covar=1e-3)
    estimator = model._base_estimator(0)
    for name in shared - {"random_state", "verbose"}:
        assert estimator.get_params()[name] == model.get_params()[name], name
