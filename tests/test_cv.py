"""SparseGaussianMixtureCV: the path, the selection rule and the refit."""

import copy
import inspect

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold

from sparse_gmm import SparseGaussianMixture, SparseGaussianMixtureCV, _cv, bic_scorer
from sparse_gmm._cv import _select
from sparse_gmm._fitted import FITTED_ATTRIBUTES

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
    assert fitted.aic(four_blobs) == refit.aic(four_blobs)
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
    assert results["mean_n_components"][-1] <= 4


class _Clock:
    """A perf_counter that advances by one second at each reading."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1.0
        return self.now


def test_mean_fit_time_is_each_folds_fit_timed_once(four_blobs, monkeypatch):
    """Read on a clock that ticks once per reading, every fold's fit (with its
    relaxed refit) lasts exactly one second: a fit timed across more or fewer
    readings, or times summed over the folds instead of averaged, shows."""
    clock = _Clock()
    monkeypatch.setattr(_cv, "time", clock)
    model = SparseGaussianMixtureCV(6, sparsities=[1.0, 4.0], cv=3, random_state=0)
    model.fit(four_blobs)
    assert_array_equal(model.cv_results_["mean_fit_time"], [1.0, 1.0])
    assert clock.now == 2 * 3 * 2  # two readings per fold and sparsity


def test_early_stopping_fits_a_suffix_of_the_same_path(four_blobs, fitted):
    fitted = clone(fitted).set_params(path="restart").fit(four_blobs)
    full = clone(fitted).set_params(early_stopping=False).fit(four_blobs)
    grid = _expected_grid(four_blobs, 8, 3, 5)
    assert_allclose(full.sparsities_, grid)
    # Restarted fits do not depend on the order: the early-stopped path is
    # the full path's largest sparsities, with the same scores.
    n = len(fitted.sparsities_)
    assert n < len(grid)
    assert_allclose(fitted.sparsities_, grid[-n:])
    for key in ("mean_test_score", "mean_n_components"):
        assert_allclose(fitted.cv_results_[key], full.cv_results_[key][-n:])
    # It stopped at the first sparsity, going down, whose mean score fell
    # below the best so far, or did not beat it although the folds kept more
    # components; no earlier sparsity met that rule.
    scores = fitted.cv_results_["mean_test_score"][::-1]
    sizes = fitted.cv_results_["mean_n_components"][::-1]
    assert _walk_stop(scores, sizes, fitted.path_tol) == n - 1
    assert (
        _walk_stop(
            full.cv_results_["mean_test_score"][::-1],
            full.cv_results_["mean_n_components"][::-1],
            fitted.path_tol,
        )
        == n - 1
    )
    assert fitted.n_components_ == full.n_components_ == 4


def _expected_grid(X, n_components, n_folds, n_sparsities):
    """Tenth to ten times the automatic sparsity of a fold's training rows."""
    n_train = len(X) * (n_folds - 1) / n_folds
    p = X.shape[1] + X.shape[1] * (X.shape[1] + 1) / 2 + 1
    center = n_components**1.5 * p * np.log(n_train) / (2 * n_train)
    return np.geomspace(0.1, 10.0, n_sparsities) * center


def _walk_stop(scores, sizes, tol):
    """Where early stopping ends a walk down the grid, or None."""
    best, size = -np.inf, None
    for k, (score, n) in enumerate(zip(scores, sizes, strict=True)):
        grew = size is not None and n > size
        if score < best - tol or (grew and score <= best + tol):
            return k
        best, size = max(best, score), n
    return None


def test_a_default_grid_is_extended_upwards_exactly_while_its_top_scores_best():
    # Two close, heavy-tailed clusters in 4 dimensions.
    rng = np.random.default_rng(0)
    X = rng.standard_t(3, size=(150, 4))
    model = SparseGaussianMixtureCV(
        8, n_sparsities=4, cv=3, path="restart", random_state=0
    )
    model.fit(X)
    grid = _expected_grid(X, 8, 3, 4)
    extension = model.sparsities_[model.sparsities_ > grid[-1] * (1 + 1e-9)]
    ratio = grid[-1] / grid[-2]
    assert_allclose(extension, grid[-1] * ratio ** np.arange(1, len(extension) + 1))
    results = model.cv_results_
    scores, sizes = results["mean_test_score"], results["mean_n_components"]
    # Every extension was asked for: the top scored best when it was made,
    # with several components in some fold; the last top did not.
    grid_top = int(np.flatnonzero(np.isclose(model.sparsities_, grid[-1]))[0])
    for k in range(grid_top, len(model.sparsities_)):
        top = np.flatnonzero(model.sparsities_ <= model.sparsities_[k])
        asked = scores[k] > scores[top[:-1]].max() + model.path_tol and sizes[k] > 1
        assert asked == (k < len(model.sparsities_) - 1)
    # A grid given by the user is fitted as given.
    given = clone(model).set_params(sparsities=grid, early_stopping=False).fit(X)
    assert_allclose(given.sparsities_, grid)


def test_warm_path_only_loses_components(four_blobs):
    model = SparseGaussianMixtureCV(8, n_sparsities=4, cv=3, path="warm")
    model.set_params(random_state=0).fit(four_blobs)
    assert np.all(np.diff(model.cv_results_["mean_n_components"]) <= 0)
    assert model.best_estimator_.get_params()["warm_start"] is False


def test_warm_path_stops_once_one_component_is_left():
    X = np.random.default_rng(0).normal(size=(300, 2))
    model = SparseGaussianMixtureCV(
        4,
        sparsities=[0.5, 2.0, 8.0, 32.0, 128.0, 512.0],
        cv=2,
        path="warm",
        early_stopping=False,
        # Merges take this single Gaussian to one component at the smallest
        # sparsity already; the path must reach one part-way.
        merge_moves=False,
        random_state=0,
    ).fit(X)
    counts = model.cv_results_["mean_n_components"]
    assert 1 < len(counts) < 6
    assert counts[-1] == 1 and np.all(counts[:-1] > 1)
    assert model.n_components_ == 1


@pytest.mark.parametrize(
    ("scores", "n_components", "expected"),
    [
        # The best mean wins when nothing else is within tol.
        ([[-2.0, -1.0, -1.5], [-2.0, -1.0, -1.5]], [[9, 5, 2], [9, 5, 2]], 1),
        # Within tol: the fewest mean components, not the higher score.
        ([[-1.0, -1.00005, -3.0], [-1.0, -1.00005, -3.0]], [[6, 4, 1], [6, 4, 1]], 1),
        # Equal sizes too: the larger sparsity.
        ([[-1.0, -1.00005, -3.0], [-1.0, -1.0, -3.0]], [[4, 4, 1], [4, 4, 1]], 1),
    ],
)
def test_ties_within_tol_go_to_the_smaller_model(scores, n_components, expected):
    scores, n_components = np.array(scores), np.array(n_components)
    assert _select(scores, n_components, "best", 1e-4) == expected
    assert _select(scores, n_components, "best", 0.0) == int(
        np.argmax(scores.mean(axis=0))
    )


def test_best_rule_and_one_standard_error_rule(four_blobs, fitted):
    results = fitted.cv_results_
    splits = np.array([results[f"split{k}_test_score"] for k in range(3)])
    mean = splits.mean(axis=0)
    ties = np.flatnonzero(mean >= mean.max() - fitted.tol)
    sizes = results["mean_n_components"][ties]
    assert fitted.best_index_ in ties[sizes == sizes.min()]

    parsimonious = clone(fitted).set_params(selection="one_standard_error")
    parsimonious.fit(four_blobs)
    assert_allclose(parsimonious.cv_results_["mean_test_score"], mean)
    best = np.argmax(mean)
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
    expected.set_params(sparsity=0.0, warm_start=True, tol=relaxed.tol)
    expected.fit(four_blobs)
    assert_allclose(relaxed.means_, expected.means_)
    assert_allclose(relaxed.weights_, expected.weights_)
    # Relaxing never loses likelihood on the data it is fitted to.
    assert relaxed.score(four_blobs) >= penalised.score(four_blobs)
    assert (
        relaxed.cv_results_["mean_test_score"][0]
        != penalised.cv_results_["mean_test_score"][0]
    )


@pytest.mark.slow
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
    # A fixed grid and no covariance prior: the automatic sparsity and the
    # prior count sample weights as frequencies, so tripling them is three
    # times the data to those.
    kwargs = dict(sparsities=[2.0, 6.0], covariance_prior=None, cv=3, random_state=2)
    plain = SparseGaussianMixtureCV(6, **kwargs).fit(four_blobs)
    weighted = SparseGaussianMixtureCV(6, **kwargs).fit(
        four_blobs, sample_weight=np.full(len(four_blobs), 3.0)
    )
    assert_allclose(
        weighted.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"]
    )
    assert_allclose(weighted.means_, plain.means_)


def test_bic_scoring(four_blobs):
    """With ``scoring=bic_scorer`` every split score is minus the held-out BIC,
    ``2 n score - p ln n``, with ``p`` counted by scikit-learn's GaussianMixture
    holding the fold model's parameters."""
    calls = []

    def recording_bic(estimator, X):
        calls.append((copy.deepcopy(estimator), X))
        return bic_scorer(estimator, X)

    model = SparseGaussianMixtureCV(
        8, n_sparsities=4, cv=3, scoring=recording_bic, random_state=0
    ).fit(four_blobs)
    assert model.n_components_ == 4
    expected = []
    for fold_model, X_test in calls:
        reference = GaussianMixture(fold_model.n_components_, covariance_type="full")
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            setattr(reference, name, getattr(fold_model, name))
        n = len(X_test)
        log_likelihood = reference.score(X_test) * n
        expected.append(2 * log_likelihood - reference._n_parameters() * np.log(n))
    results = model.cv_results_
    splits = np.array([results[f"split{k}_test_score"] for k in range(3)])
    # One scorer call per fold and sparsity, each giving one split score.
    assert len(calls) == splits.size
    assert_allclose(np.sort(splits.ravel()), np.sort(expected), rtol=1e-12)


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


def test_every_estimator_parameter_is_forwarded_or_controlled_by_the_cv():
    """A new SparseGaussianMixture parameter fails here until the CV either
    forwards it (in its signature, with the same default) or lists it in
    _CV_CONTROLLED with its reason."""
    estimator = inspect.signature(SparseGaussianMixture).parameters
    cv = inspect.signature(SparseGaussianMixtureCV).parameters
    assert set(_cv._CV_CONTROLLED) <= set(estimator)
    forwarded = set(estimator) - set(_cv._CV_CONTROLLED)
    assert forwarded == set(_cv._FORWARDED)
    for name in forwarded:
        assert name in cv, f"{name} is neither forwarded nor CV-controlled"
        assert cv[name].default == estimator[name].default, name
        assert name in SparseGaussianMixtureCV._parameter_constraints, name
        # What the CV holds is what every fit gets, by identity.
        value = object()
        model = SparseGaussianMixtureCV().set_params(**{name: value})
        assert model._base_estimator(0).get_params()[name] is value, name


def test_verbose_above_two_passes_on_to_the_fits():
    for verbose, expected in ((0, 0), (2, 0), (3, 1), (4, 2)):
        model = SparseGaussianMixtureCV(verbose=verbose)
        assert model._base_estimator(0).verbose == expected


def test_every_fitted_attribute_of_the_estimator_is_on_the_cv(fitted, four_blobs):
    refit = fitted.best_estimator_
    public = {name for name in vars(refit) if name.endswith("_")}
    # The list is complete: the estimator sets nothing else but scikit-learn's.
    assert public - {"n_features_in_", "feature_names_in_"} == set(FITTED_ATTRIBUTES)
    for name in FITTED_ATTRIBUTES:
        expected = getattr(refit, name)
        if name == "sparsity_":
            # The relaxed refit's is 0; the CV's is the one it chose.
            assert expected == 0.0
            assert fitted.sparsity_ == fitted.sparsities_[fitted.best_index_] > 0
        elif isinstance(expected, np.ndarray):
            assert_array_equal(getattr(fitted, name), expected, err_msg=name)
        else:
            assert getattr(fitted, name) == expected, name
    assert fitted.n_features_in_ == refit.n_features_in_ == four_blobs.shape[1]


def test_n_init_picks_each_paths_start(four_blobs):
    """n_init reaches the path's start (the best of several) and is the
    refit's parameter again; the fits from that start need one."""
    model = SparseGaussianMixtureCV(
        6, sparsities=[2.0], cv=2, n_init=3, init_params="random", random_state=0
    )
    estimator = model._base_estimator(0)
    start = _cv._path_start(estimator, four_blobs, None, "restart")
    assert start["n_init"] == 1
    objectives = [
        clone(estimator)
        .set_params(max_iter=0, n_init=1, random_state=seed)
        .fit(four_blobs)
        .objective_
        for seed in range(5)
    ]
    best = clone(estimator).set_params(max_iter=0).fit(four_blobs)
    # Three random starts keep the lowest: below the typical single one.
    assert best.objective_ <= np.median(objectives)
    assert_array_equal(start["means_init"], best.means_)
    model.fit(four_blobs)
    assert model.best_estimator_.get_params()["n_init"] == 3


def test_path_tol_converges_the_folds_and_tol_the_refit(four_blobs):
    # Without merges, whose early convergence would leave the folds' scores
    # equal at both tolerances.
    kwargs = dict(
        sparsities=[2.0, 6.0],
        cv=3,
        early_stopping=False,
        merge_moves=False,
        random_state=0,
    )
    loose = SparseGaussianMixtureCV(6, tol=1e-8, path_tol=0.5, **kwargs)
    tight = SparseGaussianMixtureCV(6, tol=1e-8, path_tol=1e-8, **kwargs)
    loose.fit(four_blobs)
    tight.fit(four_blobs)
    scores = [m.cv_results_["mean_test_score"] for m in (loose, tight)]
    assert not np.allclose(*scores, rtol=0, atol=1e-6)
    for model in (loose, tight):
        refit = model.best_estimator_
        assert refit.get_params()["tol"] == 1e-8
        # The refit ran to tol: its last step changed the objective by less.
        assert abs(refit.loss_curve_[-1] - refit.loss_curve_[-2]) < 1e-8


def test_verbose_reports_every_sparsity_and_the_choice(four_blobs, capsys):
    model = SparseGaussianMixtureCV(6, n_sparsities=3, cv=2, verbose=1)
    model.set_params(random_state=0).fit(four_blobs)
    lines = capsys.readouterr().out.splitlines()
    walked = [line for line in lines if line.strip().startswith("sparsity ")]
    assert len(walked) == len(model.sparsities_)
    assert (
        f"sparsity {model.sparsity_:.4g} ({model.n_components_} components)"
        in (lines[-1])
    )


def test_a_one_point_default_grid_is_the_automatic_sparsity(four_blobs):
    model = SparseGaussianMixtureCV(10, n_sparsities=1, cv=2, random_state=0)
    model.fit(four_blobs)
    center = _expected_grid(four_blobs, 10, 2, 3)[1]
    assert_allclose(model.sparsities_, [center])
    assert model.sparsity_ == model.sparsities_[0]


def test_a_restart_path_starts_with_no_more_components_than_a_fold_holds():
    # 16 rows, 5 folds: about 13 training rows per fold against 20 components.
    X = np.random.default_rng(0).normal(size=(16, 2))
    model = SparseGaussianMixtureCV(path="restart", random_state=0)
    with pytest.warns(UserWarning, match="distinct samples"):
        model.fit(X)
    assert 1 <= model.n_components_ <= 13


@pytest.mark.parametrize(
    ("sparsities", "best", "fold_counts", "expected"),
    [
        # All the data at sparsity 0 keep the 8 starting components where
        # the folds kept 4: the refit goes on up the path to 0.5, which keeps 4.
        ([0.0, 0.5], 0, [4, 4], (4, 0.5)),
        # At 0.5 all the data keep 4 where every fold kept 8: the refit is the
        # path's fit at 0.0, which kept 8.
        ([0.0, 0.5, 2.0], 1, [8, 8], (8, 0.0)),
        # Within the folds' range the chosen sparsity's fit stays.
        ([0.0, 0.5, 2.0], 1, [3, 5], (4, 0.5)),
    ],
)
def test_the_refit_keeps_a_count_within_the_folds_range(
    sparsities, best, fold_counts, expected
):
    X, _ = gaussian_mixture_sample(n_samples=600, n_components=4, seed=0)
    model = SparseGaussianMixtureCV(10, relax=False, random_state=0)
    refit = model._refit(
        model._base_estimator(0),
        X,
        None,
        np.array(sparsities),
        best,
        np.array(fold_counts),
    )
    assert (refit.n_components_, refit.sparsity) == expected
