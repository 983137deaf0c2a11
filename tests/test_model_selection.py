"""Pipelines, GridSearchCV over sparsity, and the information-criterion scorers."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn import config_context
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sparse_gmm import (
    SparseGaussianMixture,
    SparseGaussianMixtureCV,
    aic_scorer,
    bic_scorer,
)

from .conftest import gaussian_mixture_sample


def held_out_scores(estimator, param, values, X, cv):
    """Mean held-out ``score`` of ``estimator`` with ``param`` set to each value,
    fitted fold by fold here: what GridSearchCV must find."""
    means = []
    for value in values:
        scores = [
            clone(estimator).set_params(**{param: value}).fit(X[train]).score(X[test])
            for train, test in cv.split(X)
        ]
        means.append(np.mean(scores))
    return np.array(means)


@pytest.mark.slow
def test_grid_search_over_sparsity_in_a_pipeline_with_process_workers():
    """GridSearchCV in two worker processes scores each sparsity as the folds
    fitted here do, and picks the best one."""
    X, _ = gaussian_mixture_sample(n_samples=1200, n_components=4, seed=6)
    pipeline = make_pipeline(
        StandardScaler(), SparseGaussianMixture(12, random_state=0)
    )
    param, grid = "sparsegaussianmixture__sparsity", [0.5, 4.0, 16.0]
    cv = KFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(pipeline, {param: grid}, cv=cv, n_jobs=2).fit(X)
    expected = held_out_scores(pipeline, param, grid, X, cv)
    assert_allclose(search.cv_results_["mean_test_score"], expected, rtol=1e-10)
    assert search.best_params_[param] == grid[np.argmax(expected)]
    assert search.best_estimator_[-1].n_components_ <= 12


def test_bic_scorer_selects_the_true_size():
    X, _ = gaussian_mixture_sample(n_samples=2000, n_components=4, seed=7)
    search = GridSearchCV(
        SparseGaussianMixture(sparsity=0.0, random_state=0),
        {"n_components": [1, 2, 3, 4, 5, 6, 7]},
        scoring=bic_scorer,
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(X)
    assert search.best_params_["n_components"] == 4
    model = search.best_estimator_
    assert bic_scorer(model, X) == -model.bic(X)
    assert aic_scorer(model, X) == -model.aic(X)


def test_scorers_see_through_a_pipeline():
    X, _ = gaussian_mixture_sample(n_samples=600, n_components=3, seed=8)
    pipeline = make_pipeline(StandardScaler(), SparseGaussianMixture(6, random_state=0))
    pipeline.fit(X)
    scaled = pipeline[0].transform(X)
    assert bic_scorer(pipeline, X) == -pipeline[-1].bic(scaled)


@pytest.mark.parametrize(
    "estimator",
    [
        SparseGaussianMixture(6, sparsity=1.0, random_state=0),
        SparseGaussianMixtureCV(6, sparsities=[1.0], cv=2, random_state=0),
    ],
    ids=["SparseGaussianMixture", "SparseGaussianMixtureCV"],
)
def test_sample_weight_is_routed_to_fit_and_score(estimator):
    """With metadata routing on, set_fit_request and set_score_request send
    sample_weight through GridSearchCV to each fold's fit and score."""
    X, _ = gaussian_mixture_sample(n_samples=600, n_components=3, seed=8)
    weights = np.random.default_rng(0).uniform(0.2, 3.0, len(X))
    cv = KFold(2, shuffle=True, random_state=0)
    with config_context(enable_metadata_routing=True):
        routed = clone(estimator).set_fit_request(sample_weight=True)
        routed.set_score_request(sample_weight=True)
        search = GridSearchCV(routed, {"random_state": [0]}, cv=cv)
        search.fit(X, sample_weight=weights)
    expected = [
        clone(estimator)
        .fit(X[train], sample_weight=weights[train])
        .score(X[test], sample_weight=weights[test])
        for train, test in cv.split(X)
    ]
    scores = [search.cv_results_[f"split{k}_test_score"][0] for k in range(2)]
    assert_allclose(scores, expected, rtol=1e-12)
    # Unweighted, the folds score otherwise: the weights did arrive.
    assert not np.allclose(
        scores, [clone(estimator).fit(X[tr]).score(X[te]) for tr, te in cv.split(X)]
    )
    refit = clone(estimator).fit(X, sample_weight=weights)
    assert_allclose(search.best_estimator_.means_, refit.means_)
