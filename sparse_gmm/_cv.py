"""SparseGaussianMixtureCV: the sparsity chosen by cross-validation along a path."""

from __future__ import annotations

import copy
import time
from numbers import Integral
from typing import ClassVar

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, DensityMixin, _fit_context, clone
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import KFold, check_cv
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._estimator import SparseGaussianMixture

_SHARED_PARAMETERS = (
    "n_components",
    "covariance_type",
    "tol",
    "reg_covar",
    "max_iter",
    "init_params",
    "prune_threshold",
    "solver",
    "prior",
    "removal_moves",
    "engine",
    "device",
    "random_state",
)
_FITTED = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
    "n_components_",
    "active_components_",
    "converged_",
    "n_iter_",
    "lower_bound_",
    "objective_",
)


def _relaxed(model, X, sample_weight):
    """The model's survivors refitted without the penalty, from where they are.

    The prior selects the components but also shrinks the weights of the
    light ones; the relaxed fit (plain EM, warm-started) estimates the
    weights of the selected components as maximum likelihood does, like the
    relaxed lasso.
    """
    relaxed = copy.deepcopy(model).set_params(sparsity=0.0, warm_start=True)
    return relaxed.fit(X, sample_weight=sample_weight)


def _fold_path(estimator, X, sample_weight, train, test, sparsities, scorer, relax):
    """Fit one fold along increasing sparsities, each fit warm-started.

    Once a fit keeps a single component, every larger sparsity gives the same
    fit (one component has weight 1 and a constant penalty), so the path ends
    there and its last score is repeated.

    Parameters
    ----------
    estimator : SparseGaussianMixture
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None
    train, test : ndarray of int
    sparsities : ndarray of shape (n_sparsities,), increasing
    scorer : callable
    relax : bool

    Returns
    -------
    scores, n_components, fit_times : ndarray of shape (n_sparsities,)
    """
    model = clone(estimator).set_params(warm_start=True)
    weight = None if sample_weight is None else sample_weight[train]
    scores = np.empty(len(sparsities))
    n_components = np.empty(len(sparsities), dtype=np.int64)
    fit_times = np.zeros(len(sparsities))
    for k, sparsity in enumerate(sparsities):
        if k and n_components[k - 1] == 1:
            scores[k:], n_components[k:] = scores[k - 1], 1
            break
        started = time.perf_counter()
        model.set_params(sparsity=sparsity).fit(X[train], sample_weight=weight)
        fit_times[k] = time.perf_counter() - started
        scored = _relaxed(model, X[train], weight) if relax else model
        scores[k] = scorer(scored, X[test])
        n_components[k] = model.n_components_
    return scores, n_components, fit_times


class SparseGaussianMixtureCV(DensityMixin, BaseEstimator):
    """Sparse Gaussian mixture with the sparsity chosen by cross-validation.

    In the manner of scikit-learn's ``LassoCV``: each fold is fitted along a
    grid of increasing sparsities, every fit starting from the previous
    one's survivors (the first fit does the work; the others take a few
    iterations), the sparsity with the best held-out score is kept, and a
    model is refitted on all the data along the same path up to it.

    Parameters
    ----------
    n_components : int, default=20
        Starting number of components of every path.
    sparsities : array-like of float, default=None
        The grid. By default ``n_sparsities`` values geometrically spaced
        from ``0.02 * n_components`` to ``2 * n_components``: the penalty acts
        through ``sparsity / n_components`` (nats per square-root weight), and
        that range runs from almost no pruning to well past the values that
        recovered mixtures best (0.2 to 0.8, ``benchmarks/bench_defaults.py``).
        The data decide where each path ends: once a fold keeps a single
        component, larger sparsities are not fitted.
    n_sparsities : int, default=10
    cv : int, cross-validation generator or iterable, default=5
        An integer means ``KFold`` with shuffling, seeded by ``random_state``
        (data sorted by component would otherwise lose whole components in
        a fold).
    scoring : str, callable or None, default=None
        None uses the model's ``score``, the held-out mean log-likelihood;
        :func:`sparse_gmm.bic_scorer` selects by BIC instead.
    selection : {'best', 'one_standard_error'}, default='best'
        'best' keeps the sparsity with the best mean score, as ``LassoCV``
        does. 'one_standard_error' keeps the largest sparsity whose mean
        score is within one standard error of the best (glmnet's
        ``lambda.1se``): sparser models, at some cost in held-out
        log-likelihood; on the mixtures of ``benchmarks/compare.py`` it
        recovered the true size no more often than 'best'.
    relax : bool, default=True
        Score, and return, each path model's surviving components refitted
        without the penalty (``sparsity=0``, warm-started), as the relaxed
        lasso does: the prior picks the components, maximum likelihood
        estimates them. Without it, the prior's shrinkage of the light
        weights lowers the held-out score of the sparser models, and the
        selection drifts to smaller sparsities with spurious components.
    covariance_type, tol, reg_covar, max_iter, init_params, prune_threshold, \
            solver, prior, removal_moves, engine, device, random_state :
        As in :class:`SparseGaussianMixture`.
    n_jobs : int, default=None
        Folds fitted in parallel (joblib, process workers).
    verbose : int, default=0
        Passed to joblib; 1 or more also prints the chosen sparsity.

    Attributes
    ----------
    sparsity_ : float
        The chosen sparsity.
    sparsities_ : ndarray of shape (n_sparsities,)
    cv_results_ : dict of ndarrays
        Per sparsity: ``param_sparsity``, ``mean_test_score``,
        ``std_test_score``, ``split{k}_test_score``, ``rank_test_score``,
        ``mean_n_components``, ``std_n_components``, ``mean_fit_time``.
    best_index_ : int
        Index of ``sparsity_`` in ``sparsities_``.
    best_estimator_ : SparseGaussianMixture
        Fitted on all the data along the path up to ``sparsity_`` (then
        relaxed: its ``sparsity`` parameter is then 0).
    weights_, means_, covariances_, precisions_, precisions_cholesky_, \
            n_components_, active_components_, converged_, n_iter_, \
            lower_bound_, objective_ :
        Those of ``best_estimator_``.
    n_features_in_ : int

    See Also
    --------
    SparseGaussianMixture : One fit at a given sparsity.
    sklearn.linear_model.LassoCV : The same scheme for the lasso.

    Examples
    --------
    >>> from sparse_gmm import SparseGaussianMixtureCV
    >>> from sparse_gmm.datasets import make_mixture
    >>> X, _ = make_mixture(n_components=3, n_samples=600, random_state=0)
    >>> model = SparseGaussianMixtureCV(10, n_sparsities=5, cv=3, random_state=0)
    >>> model.fit(X).n_components_
    3
    """

    _parameter_constraints: ClassVar[dict] = {
        **{
            name: SparseGaussianMixture._parameter_constraints[name]
            for name in _SHARED_PARAMETERS
        },
        "sparsities": ["array-like", None],
        "n_sparsities": [Interval(Integral, 1, None, closed="left")],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "selection": [StrOptions({"one_standard_error", "best"})],
        "relax": ["boolean"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=20,
        *,
        sparsities=None,
        n_sparsities=10,
        cv=5,
        scoring=None,
        selection="best",
        relax=True,
        covariance_type="full",
        tol=1e-4,
        reg_covar=1e-6,
        max_iter=300,
        init_params="kmeans",
        prune_threshold=1e-3,
        solver="em",
        prior="sqrt",
        removal_moves=False,
        engine="auto",
        device="auto",
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.sparsities = sparsities
        self.n_sparsities = n_sparsities
        self.cv = cv
        self.scoring = scoring
        self.selection = selection
        self.relax = relax
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.init_params = init_params
        self.prune_threshold = prune_threshold
        self.solver = solver
        self.prior = prior
        self.removal_moves = removal_moves
        self.engine = engine
        self.device = device
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _base_estimator(self, random_state):
        return SparseGaussianMixture(
            **{name: getattr(self, name) for name in _SHARED_PARAMETERS},
        ).set_params(random_state=random_state)

    def _grid(self):
        if self.sparsities is None:
            return np.geomspace(0.02, 2.0, self.n_sparsities) * self.n_components
        grid = np.sort(np.asarray(self.sparsities, dtype=np.float64).ravel())
        if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
            raise ValueError(
                "sparsities must be a non-empty list of finite values >= 0; got "
                f"{self.sparsities!r}."
            )
        return grid

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Cross-validate the sparsity, then refit on all of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the training samples of each fold and of the refit;
            held-out scores are unweighted.

        Returns
        -------
        self : SparseGaussianMixtureCV
        """
        X = validate_data(self, X, dtype=(np.float64, np.float32), ensure_min_samples=2)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=X.dtype, ensure_non_negative=True
            )
        sparsities = self._grid()
        # One seed for every fold and the refit, drawn once: the folds then
        # differ by their data only, as in GridSearchCV with a fixed seed.
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        estimator = self._base_estimator(seed)
        cv = self.cv
        if isinstance(cv, Integral):
            cv = KFold(cv, shuffle=True, random_state=seed)
        folds = list(check_cv(cv).split(X))
        scorer = check_scoring(estimator, scoring=self.scoring)
        paths = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)(
            delayed(_fold_path)(
                estimator, X, sample_weight, train, test, sparsities, scorer, self.relax
            )
            for train, test in folds
        )
        scores, n_components, fit_times = (
            np.array(part) for part in zip(*paths, strict=True)
        )
        best = _select(scores, self.selection)
        best_estimator = _refit_along_path(
            estimator, X, sample_weight, sparsities[: best + 1], self.relax
        )
        if self.verbose:
            print(
                f"SparseGaussianMixtureCV: sparsity {sparsities[best]:.4g} "
                f"({best_estimator.n_components_} components)"
            )

        self.sparsities_ = sparsities
        self.sparsity_ = float(sparsities[best])
        self.best_index_ = best
        self.cv_results_ = _cv_results(sparsities, scores, n_components, fit_times)
        self.best_estimator_ = best_estimator
        for name in _FITTED:
            setattr(self, name, getattr(best_estimator, name))
        return self

    def _fitted(self):
        check_is_fitted(self)
        return self.best_estimator_

    def score_samples(self, X):
        """Log-density of each sample under the refitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self._fitted().score_samples(X)

    def score(self, X, y=None, sample_weight=None):
        """Mean log-likelihood of ``X`` under the refitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        return self._fitted().score(X, sample_weight=sample_weight)

    def predict(self, X):
        """Most likely surviving component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self._fitted().predict(X)

    def predict_proba(self, X):
        """Posterior probability of each surviving component.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components_)
        """
        return self._fitted().predict_proba(X)

    def sample(self, n_samples=1):
        """Draw samples from the refitted model.

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
        """
        return self._fitted().sample(n_samples)

    def bic(self, X):
        """BIC of the refitted model, counting surviving components.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        float
        """
        return self._fitted().bic(X)

    def aic(self, X):
        """AIC of the refitted model, counting surviving components.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        float
        """
        return self._fitted().aic(X)


def _select(scores, selection):
    """Index of the chosen sparsity.

    Parameters
    ----------
    scores : ndarray of shape (n_folds, n_sparsities)
    selection : {'one_standard_error', 'best'}

    Returns
    -------
    int
    """
    mean = scores.mean(axis=0)
    best = int(np.argmax(mean))
    if selection == "best" or scores.shape[0] < 2:
        return best
    standard_error = scores[:, best].std(ddof=1) / np.sqrt(scores.shape[0])
    return int(np.flatnonzero(mean >= mean[best] - standard_error).max())


def _refit_along_path(estimator, X, sample_weight, sparsities, relax):
    """The fit on all the data along ``sparsities``, as each fold was fitted."""
    model = clone(estimator).set_params(warm_start=True)
    for sparsity in sparsities:
        model.set_params(sparsity=sparsity).fit(X, sample_weight=sample_weight)
        if model.n_components_ == 1:
            break
    if relax:
        model = _relaxed(model, X, sample_weight)
    return model.set_params(warm_start=False)


def _cv_results(sparsities, scores, n_components, fit_times):
    """``cv_results_`` in GridSearchCV's layout, one row per sparsity.

    Parameters
    ----------
    sparsities : ndarray of shape (n_sparsities,)
    scores, n_components, fit_times : ndarray of shape (n_folds, n_sparsities)

    Returns
    -------
    dict
    """
    mean = scores.mean(axis=0)
    results = {
        "param_sparsity": sparsities,
        "params": [{"sparsity": float(sparsity)} for sparsity in sparsities],
        "mean_test_score": mean,
        "std_test_score": scores.std(axis=0),
        "rank_test_score": rankdata(-mean, method="min").astype(np.int32),
        "mean_n_components": n_components.mean(axis=0),
        "std_n_components": n_components.std(axis=0),
        "mean_fit_time": fit_times.mean(axis=0),
    }
    for k, fold_scores in enumerate(scores):
        results[f"split{k}_test_score"] = fold_scores
    return results
