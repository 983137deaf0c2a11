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


def _path_models(estimator, X, sample_weight, sparsities, path):
    """Yield the fit at each of the increasing ``sparsities``, in order.

    ``path='restart'`` starts every fit from one initialisation of the
    components (k-means, say), computed once; ``path='warm'`` starts each fit
    from the previous one's survivors. The path ends after a fit that keeps a
    single component: one component has weight 1 and a constant penalty, so
    every larger sparsity gives that fit again.

    Parameters
    ----------
    estimator : SparseGaussianMixture
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None
    sparsities : ndarray of shape (n_sparsities,)
    path : {'restart', 'warm'}

    Yields
    ------
    SparseGaussianMixture
        Fitted; with ``path='warm'`` the same object is refitted next.
    """
    if path == "warm":
        model = clone(estimator).set_params(warm_start=True)
    else:
        start = clone(estimator).set_params(max_iter=0)
        start.fit(X, sample_weight=sample_weight)
        initialisation = {
            "weights_init": start.weights_,
            "means_init": start.means_,
            "precisions_init": start.precisions_,
        }
    for sparsity in sparsities:
        if path == "restart":
            model = clone(estimator).set_params(**initialisation)
        model.set_params(sparsity=sparsity).fit(X, sample_weight=sample_weight)
        yield model
        if model.n_components_ == 1:
            return


def _fold_path(estimator, X, sample_weight, train, test, sparsities, options):
    """Scores of one fold's path; see :func:`_path_models`.

    Parameters
    ----------
    estimator : SparseGaussianMixture
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None
    train, test : ndarray of int
    sparsities : ndarray of shape (n_sparsities,), increasing
    options : dict
        ``scorer``, ``path`` and ``relax``.

    Returns
    -------
    scores, n_components, fit_times : ndarray of shape (n_sparsities,)
        Past the end of a path, the last values are repeated (times are 0).
    """
    weight = None if sample_weight is None else sample_weight[train]
    scores = np.empty(len(sparsities))
    n_components = np.empty(len(sparsities), dtype=np.int64)
    fit_times = np.zeros(len(sparsities))
    models = _path_models(estimator, X[train], weight, sparsities, options["path"])
    started = time.perf_counter()
    for k, model in enumerate(models):
        scored = _relaxed(model, X[train], weight) if options["relax"] else model
        fit_times[k] = time.perf_counter() - started
        scores[k:] = options["scorer"](scored, X[test])
        n_components[k:] = model.n_components_
        started = time.perf_counter()
    return scores, n_components, fit_times


class SparseGaussianMixtureCV(DensityMixin, BaseEstimator):
    """Sparse Gaussian mixture with the sparsity chosen by cross-validation.

    In the manner of scikit-learn's ``LassoCV``: each fold is fitted along a
    grid of increasing sparsities, every fit of a fold starting from the
    fold's one initialisation (k-means is run once per fold, not per fit),
    each fit's survivors are scored on the held-out part after a relaxed
    refit (below), the sparsity with the best mean score is kept, and a model
    is refitted on all the data at that sparsity.

    Parameters
    ----------
    n_components : int, default=20
        Starting number of components of every path.
    sparsities : array-like of float, default=None
        The grid. By default ``n_sparsities`` values geometrically spaced
        from ``0.1 * n_components`` to ``3 * n_components``: the penalty acts
        through ``sparsity / n_components`` (nats per square-root weight), and
        that range runs from little pruning to well past the values that
        recovered mixtures best (0.2 to 0.8, ``benchmarks/bench_defaults.py``).
        Below 0.1 the fits kept nearly every component and cost the most
        iterations.
        The data decide where each path ends: once a fold keeps a single
        component, larger sparsities are not fitted.
    n_sparsities : int, default=6
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
    path : {'restart', 'warm'}, default='restart'
        'restart' fits every sparsity from the fold's initialisation. 'warm'
        starts each fit from the previous sparsity's survivors, as
        ``LassoCV`` does: cheaper, but a converged mixture keeps its
        components as the sparsity grows (in 5 dimensions the warm path kept
        18-20 of 20 components up to ``sparsity = 2 * n_components``, where a
        fresh start keeps the true 4 or 5), so its choices are worse.
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
        Fitted on all the data at ``sparsity_`` (along the path up to it with
        ``path='warm'``), then relaxed: its ``sparsity`` parameter is then 0.
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
        "path": [StrOptions({"restart", "warm"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=20,
        *,
        sparsities=None,
        n_sparsities=6,
        cv=5,
        scoring=None,
        selection="best",
        relax=True,
        path="restart",
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
        self.path = path
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
            return np.geomspace(0.1, 3.0, self.n_sparsities) * self.n_components
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
        options = {
            "scorer": check_scoring(estimator, scoring=self.scoring),
            "path": self.path,
            "relax": self.relax,
        }
        paths = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)(
            delayed(_fold_path)(
                estimator, X, sample_weight, train, test, sparsities, options
            )
            for train, test in folds
        )
        scores, n_components, fit_times = (
            np.array(part) for part in zip(*paths, strict=True)
        )
        best = _select(scores, self.selection)
        # The refit follows the folds' path to the chosen sparsity.
        prefix = sparsities[: best + 1] if self.path == "warm" else [sparsities[best]]
        *_, best_estimator = _path_models(
            estimator, X, sample_weight, prefix, self.path
        )
        if self.relax:
            best_estimator = _relaxed(best_estimator, X, sample_weight)
        best_estimator.set_params(
            warm_start=False, weights_init=None, means_init=None, precisions_init=None
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
