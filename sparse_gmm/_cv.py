"""SparseGaussianMixtureCV: the sparsity chosen by cross-validation along a path."""

from __future__ import annotations

import copy
import time
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, DensityMixin, _fit_context, clone
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import KFold, check_cv
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._estimator import SparseGaussianMixture
from ._fitted import FITTED_ATTRIBUTES
from ._inputs import in_memory_input_for
from ._model_size import auto_sparsity

# SparseGaussianMixture's parameters that the CV sets itself, each for the
# reason above it; every other one is forwarded as given (_FORWARDED), and
# tests/test_cv.py fails on a new parameter that is neither.
_CV_CONTROLLED = (
    # Chosen by the cross-validation.
    "sparsity",
    # The path's starts: each fold's own initialisation ('restart') or the
    # previous sparsity's fit ('warm'). A start given here would have been
    # fitted on every fold's held-out rows.
    "weights_init",
    "means_init",
    "precisions_init",
    "warm_start",
    # The CV's own: it relaxes the fits it scores and its refit, while the
    # path continues from the penalised fits.
    "relax",
    # The CV's own: one seed drawn from it for every fold and the refit.
    "random_state",
    # The CV's own progress; levels above 2 pass on to the fits, less 2.
    "verbose",
    # The CV's own: its folds choose the size through the sparsity, where the
    # estimator's default walks down by BIC from the sparse fit.
    "criterion",
)
_FORWARDED = tuple(
    name
    for name in SparseGaussianMixture._get_param_names()
    if name not in _CV_CONTROLLED
)
# Powers of the grid's ratio by which the walk may extend a default grid
# upwards: 10 doublings reach 1000 times its top.
_MAX_EXTENSIONS = 10


def _grid_ratio(sparsities):
    """The ratio of the two largest sparsities, by which a grid is extended
    upwards (2 for a one-point grid)."""
    return sparsities[-1] / sparsities[-2] if len(sparsities) > 1 else 2.0


def _default_grid(n_sparsities, center):
    """``n_sparsities`` values from ``center / 10`` to ``10 * center``.

    Parameters
    ----------
    n_sparsities : int
    center : float
        The automatic sparsity of a fold's training data.

    Returns
    -------
    ndarray of shape (n_sparsities,), increasing
    """
    if n_sparsities == 1:
        return np.array([center])
    return np.geomspace(0.1, 10.0, n_sparsities) * center


def _relaxed(model, X, sample_weight):
    """The model's survivors refitted without the penalty, from where they are.

    The prior selects the components but also shrinks the weights of the
    light ones; the relaxed fit (plain EM, warm-started) estimates the
    weights of the selected components as maximum likelihood does, like the
    relaxed lasso.

    This is the estimator's public warm start, not its ``relax`` option:
    ``relax`` replaces the penalised fit by its relaxed refit inside one
    ``fit``, while the CV needs both (a 'warm' path continues from the
    penalised fit, and scores the relaxed copy).
    """
    relaxed = copy.deepcopy(model).set_params(
        sparsity=0.0, covariance_prior=None, warm_start=True
    )
    return relaxed.fit(X, sample_weight=sample_weight)


def _path_start(estimator, X, sample_weight, path):
    """Where the first fit of a path starts.

    Parameters
    ----------
    estimator : SparseGaussianMixture
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None
    path : {'restart', 'warm'}

    Returns
    -------
    dict
        Parameters for ``estimator.set_params``: with ``path='restart'``, the
        number and components of one initialisation (k-means, say; the best start of
        ``n_init``), computed here once and shared by every sparsity; with
        ``path='warm'``, ``warm_start``.
    """
    if path == "warm":
        return {"warm_start": True}
    # With n_init > 1, the start with the lowest objective; its fits then
    # need one initialisation, which is this one.
    start = clone(estimator).set_params(max_iter=0)
    start.fit(X, sample_weight=sample_weight)
    return {
        # Fewer where the fold holds fewer distinct samples than components
        # (the start is then one component per sample).
        "n_components": start.n_components_,
        "n_init": 1,
        "weights_init": start.weights_,
        "means_init": start.means_,
        "precisions_init": start.precisions_,
    }


def _fit_from(estimator, X, sample_weight, sparsity, start):
    """Fit at ``sparsity`` from ``start``.

    Parameters
    ----------
    estimator : SparseGaussianMixture
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None
    sparsity : float
    start : dict or SparseGaussianMixture
        A :func:`_path_start`, or the previous fit of a warm path, which is
        refitted in place.

    Returns
    -------
    SparseGaussianMixture
    """
    if isinstance(start, SparseGaussianMixture):
        model = start
    else:
        model = clone(estimator).set_params(**start)
    return model.set_params(sparsity=sparsity).fit(X, sample_weight=sample_weight)


def _fold_step(estimator, X, sample_weight, train, test, sparsity, start, options):
    """One fold's fit at one sparsity, scored on the held-out part.

    Parameters
    ----------
    estimator : SparseGaussianMixture
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None
    train, test : ndarray of int
    sparsity : float
    start : dict or SparseGaussianMixture
        See :func:`_fit_from`.
    options : dict
        ``scorer`` and ``relax``.

    Returns
    -------
    score : float
    n_components : int
    fit_time : float
        Seconds, the relaxed refit included.
    model : SparseGaussianMixture
        The penalised fit, where a warm path continues.
    """
    X_train = X[train]
    weight = None if sample_weight is None else sample_weight[train]
    started = time.perf_counter()
    model = _fit_from(estimator, X_train, weight, sparsity, start)
    scored = _relaxed(model, X_train, weight) if options["relax"] else model
    fit_time = time.perf_counter() - started
    return options["scorer"](scored, X[test]), model.n_components_, fit_time, model


class _Path:
    """The folds' fits along the sparsities, stepped in lockstep.

    Parameters
    ----------
    folds : list of (train, test)
    estimator : SparseGaussianMixture
        The fold fits' settings (``tol`` is the CV's ``path_tol``).
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None
    options : dict
        ``scorer`` and ``relax``, for :func:`_fold_step`.
    verbose : int

    Attributes
    ----------
    steps : dict
        Sparsity to ``(scores, n_components, fit_times)``, each of shape
        (n_folds,).
    """

    def __init__(self, folds, estimator, X, sample_weight, options, verbose):
        self.folds = folds
        self.estimator = estimator
        self.X = X
        self.sample_weight = sample_weight
        self.options = options
        self.verbose = verbose
        self.steps = {}
        self._starts = None
        self._warm = False

    def start(self, pool, path):
        """Initialise every fold (see :func:`_path_start`)."""
        self._warm = path == "warm"
        weight = self.sample_weight
        self._starts = pool(
            delayed(_path_start)(
                self.estimator,
                self.X[train],
                None if weight is None else weight[train],
                path,
            )
            for train, _ in self.folds
        )

    def step(self, pool, sparsity):
        """Fit and score every fold at ``sparsity``.

        Returns
        -------
        score : float
            The mean held-out score.
        single : bool
            Whether every fold kept one component.
        """
        results = pool(
            delayed(_fold_step)(
                self.estimator,
                self.X,
                self.sample_weight,
                train,
                test,
                sparsity,
                start,
                self.options,
            )
            for (train, test), start in zip(self.folds, self._starts, strict=True)
        )
        scores, n_components, fit_times, models = zip(*results, strict=True)
        self.steps[sparsity] = (
            np.array(scores),
            np.array(n_components),
            np.array(fit_times),
        )
        if self._warm:
            self._starts = models
        if self.verbose:
            print(
                f"  sparsity {sparsity:.4g}: held-out score {np.mean(scores):.6g}, "
                f"{np.mean(n_components):.3g} components, {np.sum(fit_times):.2f} s",
                flush=True,
            )
        return self.score(sparsity), self.single(sparsity)

    def score(self, sparsity):
        """Mean held-out score at a fitted sparsity."""
        return float(np.mean(self.steps[sparsity][0]))

    def size(self, sparsity):
        """Mean number of components kept at a fitted sparsity."""
        return float(np.mean(self.steps[sparsity][1]))

    def single(self, sparsity):
        """Whether every fold kept one component at a fitted sparsity."""
        return bool(np.all(self.steps[sparsity][1] == 1))


class SparseGaussianMixtureCV(DensityMixin, BaseEstimator):
    """Sparse Gaussian mixture with the sparsity chosen by cross-validation.

    In the manner of scikit-learn's ``LassoCV``: every fold is fitted along a
    grid of sparsities, each fit's survivors are scored on the held-out part
    after a relaxed refit (below), the sparsity with the best mean score is
    kept, and a model is refitted on all the data at that sparsity.

    The folds move through the grid together, from the largest sparsity
    down: every fit of a fold starts from the fold's one initialisation
    (k-means runs once per fold, not per fit), and the walk stops early once
    less sparsity stops paying on held-out data (``early_stopping``), so the
    costly fits with many components are rarely made. A default grid whose
    largest sparsity still scores best is extended upwards until the score
    stops improving or a single component is left.

    Parameters
    ----------
    n_components : int, default=20
        Starting number of components of every path.
    sparsities : array-like of float, default=None
        The grid. By default ``n_sparsities`` values geometrically spaced
        from a tenth to ten times the automatic sparsity of a fold's training
        data (``sparsity='auto'`` of :class:`SparseGaussianMixture`: the
        penalty at which a component costs what BIC charges, see
        ``docs/maths.rst``, section 10.3), extended upwards by the same ratio
        while its largest value scores best by more than ``path_tol`` and a
        fold keeps several components (at most 10 times). A grid given here
        is fitted as given.
    n_sparsities : int, default=6
        Number of values in the default grid; a single value is the
        automatic sparsity itself.
    cv : int, cross-validation generator or iterable, default=5
        An integer means ``KFold`` with shuffling, seeded by ``random_state``
        (data sorted by component would otherwise lose whole components in
        a fold).
    scoring : str, callable or None, default=None
        None uses the model's ``score``, the held-out mean log-likelihood;
        :func:`sparse_gmm.bic_scorer` selects by BIC instead.
    selection : {'best', 'one_standard_error'}, default='best'
        'best' keeps the sparsity with the best mean score, as ``LassoCV``
        does; mean scores within ``path_tol`` of the best are ties, which go
        to the fewest mean components, then to the larger sparsity.
        'one_standard_error' keeps the largest sparsity whose mean score is
        within one standard error of the best (glmnet's ``lambda.1se``):
        sparser models, at some cost in held-out log-likelihood.
    relax : bool, default=True
        Score, and return, each path model's surviving components refitted
        without the priors (``sparsity=0``, ``covariance_prior=None``,
        warm-started), as the relaxed lasso does: the priors pick the
        components, maximum likelihood estimates them. The path itself
        continues from the penalised fits. Without it, the prior's shrinkage
        of the light weights lowers the held-out score of the sparser models,
        and the selection drifts to smaller sparsities with spurious
        components.
    path : {'warm', 'restart'}, default='warm'
        'warm' goes up the grid, each fit starting from the previous
        sparsity's survivors, as ``LassoCV`` does: a larger sparsity can
        only remove components, so along each fold's path more sparsity
        never keeps more components, and the refit follows the same path on
        all the data. 'restart' fits every sparsity from the fold's
        initialisation, from the largest down, whose component counts need
        not be monotone in the sparsity. Measured at this default's change
        (``benchmarks/bench_real_data.py``, ``benchmarks/compare.py``): 'warm'
        scored better held-out on 7 of 10 real sets (breast_cancer -5.77
        against -7.95, digits-PCA -8.66 against -9.51) and on the synthetic
        mixtures (-0.025 against -0.041 nats), found their size in 29 of 32
        against 30, and took 2.2 times as long. A warm path ends once every
        fold keeps one component.
    early_stopping : bool, default=True
        Stop the walk at the first sparsity whose mean held-out score is
        worse than the best so far by more than ``path_tol``, or, going down
        the grid, no better than it by more than ``path_tol`` although the
        folds kept more components. False fits the whole grid.
    path_tol : float, default=1e-3
        Convergence tolerance of the fold fits (the final refit uses
        ``tol``), and the margin below which mean scores are ties. A held-out
        mean log-likelihood carries a sampling error of the log-density's
        spread over ``sqrt(n_test)`` (``sqrt(D / 2)`` for a Gaussian: 0.05
        nats for 400 held-out rows in 2 dimensions), so converging the folds
        further would not change which sparsity wins, only cost iterations.
    covariance_type, covariance_prior, tol, reg_covar, max_iter, init_params, \
            prune_threshold, solver, prior, learning_rate, acceleration, \
            merge_moves, selection_samples, removal_moves, engine, device, \
            verbose_interval :
        As in :class:`SparseGaussianMixture`, for every fit (folds and refit).
    n_init : int, default=1
        Initialisations of each path's start (every fold's, and the
        refit's): the one with the lowest objective is where that path's fits
        start ('restart'), or the first fit of a 'warm' path keeps its best.
    random_state : int, RandomState instance or None, default=None
        Draws one seed, which every fold, the folds' split (an integer
        ``cv``) and the refit use.
    n_jobs : int, default=None
        Folds fitted in parallel (joblib, process workers).
    verbose : int, default=0
        1 prints each sparsity's mean score, components and time as the walk
        goes, and the chosen sparsity; 2 also joblib's progress; 3 and more
        also every fit's own report, at ``SparseGaussianMixture``'s level
        ``verbose - 2``.

    Attributes
    ----------
    sparsity_ : float
        The chosen sparsity.
    sparsities_ : ndarray of shape (n_fitted,)
        The sparsities that the folds were fitted at, increasing: the grid,
        less those below an early stop, plus any extension above it.
    cv_results_ : dict of ndarrays
        Per sparsity: ``param_sparsity``, ``mean_test_score``,
        ``std_test_score``, ``split{k}_test_score``, ``rank_test_score``,
        ``mean_n_components``, ``std_n_components``, ``mean_fit_time``.
    best_index_ : int
        Index of ``sparsity_`` in ``sparsities_``.
    best_estimator_ : SparseGaussianMixture
        Fitted on all the data at ``sparsity_`` (along the path up to it with
        ``path='warm'``), then relaxed: its ``sparsity`` parameter is then 0.
        Where that fit keeps more components than every fold kept at
        ``sparsity_``, or fewer, the path's nearest sparsity whose fit keeps
        a count within the folds' range is used instead, above or below
        (``verbose`` reports it).
    weights_, means_, covariances_, precisions_, precisions_cholesky_, \
            n_components_, active_components_, converged_, n_iter_, \
            lower_bound_, objective_, loss_curve_, n_components_curve_, \
            time_curve_, engine_ :
        Those of ``best_estimator_``: every fitted attribute of
        :class:`SparseGaussianMixture` but ``sparsity_``, which is the
        chosen one here (the relaxed refit's own is 0).
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
            for name in (*_FORWARDED, "random_state")
        },
        "sparsities": ["array-like", None],
        "n_sparsities": [Interval(Integral, 1, None, closed="left")],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "selection": [StrOptions({"one_standard_error", "best"})],
        "relax": ["boolean"],
        "path": [StrOptions({"restart", "warm"})],
        "early_stopping": ["boolean"],
        "path_tol": [Interval(Real, 0, None, closed="left")],
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
        path="warm",
        early_stopping=True,
        path_tol=1e-3,
        covariance_type="full",
        covariance_prior="auto",
        tol=1e-4,
        reg_covar=1e-6,
        max_iter=1000,
        n_init=1,
        init_params="kmeans",
        prune_threshold=1e-3,
        solver="em",
        prior="sqrt",
        learning_rate=0.1,
        acceleration="squarem",
        merge_moves=True,
        selection_samples=20_000,
        removal_moves=False,
        engine="auto",
        device="auto",
        random_state=None,
        n_jobs=None,
        verbose=0,
        verbose_interval=10,
    ):
        self.n_components = n_components
        self.sparsities = sparsities
        self.n_sparsities = n_sparsities
        self.cv = cv
        self.scoring = scoring
        self.selection = selection
        self.relax = relax
        self.path = path
        self.early_stopping = early_stopping
        self.path_tol = path_tol
        self.covariance_type = covariance_type
        self.covariance_prior = covariance_prior
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.prune_threshold = prune_threshold
        self.solver = solver
        self.prior = prior
        self.learning_rate = learning_rate
        self.acceleration = acceleration
        self.merge_moves = merge_moves
        self.selection_samples = selection_samples
        self.removal_moves = removal_moves
        self.engine = engine
        self.device = device
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    def _base_estimator(self, random_state):
        # The path continues from the penalised fits; the CV relaxes the
        # copies it scores (``relax``), and the refit. The folds choose the
        # sparsity, hence the size: no criterion walks it down.
        return SparseGaussianMixture(
            **{name: getattr(self, name) for name in _FORWARDED},
            random_state=random_state,
            relax=False,
            criterion=None,
            verbose=max(self.verbose - 2, 0),
        )

    def _grid(self, n_train, n_features):
        """``(grid, extensible)``: the increasing sparsities, and whether the
        walk may extend them (the default grid only)."""
        if self.sparsities is None:
            center = auto_sparsity(
                n_train, n_features, self.n_components, self.covariance_type
            )
            return _default_grid(self.n_sparsities, center), True
        grid = np.sort(np.asarray(self.sparsities, dtype=np.float64).ravel())
        if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
            raise ValueError(
                "sparsities must be a non-empty list of finite values >= 0; got "
                f"{self.sparsities!r}."
            )
        return np.unique(grid), False

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
        # A tensor stays one (the folds are tensors on its device); anything
        # else, a Dask array included, becomes a NumPy array.
        data = in_memory_input_for(X)
        X = data.check_samples(self, X, reset=True, ensure_min_samples=2)
        if sample_weight is not None:
            sample_weight = data.check_sample_weight(sample_weight, X)
        total_weight = len(X) if sample_weight is None else float(sample_weight.sum())
        # One seed for every fold and the refit, drawn once: the folds then
        # differ by their data only, as in GridSearchCV with a fixed seed.
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        estimator = self._base_estimator(seed)
        path_estimator = clone(estimator).set_params(tol=self.path_tol)
        cv = self.cv
        if isinstance(cv, Integral):
            cv = KFold(cv, shuffle=True, random_state=seed)
        folds = list(check_cv(cv).split(X))
        # The grid is centred on the automatic sparsity of a fold's
        # training part, which the path's fits see.
        train_share = np.mean([len(train) for train, _ in folds]) / len(X)
        grid, extensible = self._grid(train_share * total_weight, X.shape[1])
        path = _Path(
            folds=folds,
            estimator=path_estimator,
            X=X,
            sample_weight=sample_weight,
            options={
                "scorer": check_scoring(estimator, scoring=self.scoring),
                "relax": self.relax,
            },
            verbose=self.verbose,
        )
        with Parallel(n_jobs=self.n_jobs, verbose=max(self.verbose - 1, 0)) as pool:
            path.start(pool, self.path)
            self._walk(pool, path, grid, extensible)
        sparsities = np.array(sorted(path.steps))
        scores, n_components, fit_times = (
            np.array([path.steps[s][part] for s in sparsities]).T for part in range(3)
        )
        best = _select(scores, n_components, self.selection, self.path_tol)
        best_estimator = self._refit(
            estimator, X, sample_weight, sparsities, best, n_components[:, best]
        )
        if self.verbose:
            print(
                f"SparseGaussianMixtureCV: sparsity {sparsities[best]:.4g} "
                f"({best_estimator.n_components_} components)",
                flush=True,
            )

        self.sparsities_ = sparsities
        self.sparsity_ = float(sparsities[best])
        self.best_index_ = best
        self.cv_results_ = _cv_results(sparsities, scores, n_components, fit_times)
        self.best_estimator_ = best_estimator
        # sparsity_ is the chosen sparsity above; the relaxed refit's own is 0.
        for name in FITTED_ATTRIBUTES:
            if name != "sparsity_":
                setattr(self, name, getattr(best_estimator, name))
        return self

    def _walk(self, pool, path, grid, extensible):
        """Fit the folds along ``grid``, in the path's order, until it stops.

        'restart' runs from the largest sparsity down, 'warm' from the
        smallest up (a warm start can only lose components). With early
        stopping, the walk ends at the first sparsity whose mean score is
        worse than the best so far by more than ``path_tol``, or no better
        than it by more than ``path_tol`` while the mean number of components
        grew: components that the held-out data do not pay for. A default grid
        whose largest sparsity scores best, by more than ``path_tol``, while
        some fold keeps several components, is extended upwards by its own
        ratio until that stops being so.
        """
        order = grid if self.path == "warm" else grid[::-1]
        best, size = -np.inf, None
        for sparsity in order:
            score, single = path.step(pool, sparsity)
            if self.path == "warm" and single:
                # One component has weight 1 and a constant penalty: every
                # larger sparsity gives the same fit.
                return
            grew = size is not None and path.size(sparsity) > size
            if self.early_stopping and (
                score < best - self.path_tol or (grew and score <= best + self.path_tol)
            ):
                break
            best, size = max(best, score), path.size(sparsity)
        ratio = _grid_ratio(grid)
        top = grid[-1]
        for _ in range(_MAX_EXTENSIONS if extensible else 0):
            if top not in path.steps or path.single(top):
                return
            below = [path.score(s) for s in path.steps if s < top]
            if not below or path.score(top) <= max(below) + self.path_tol:
                return
            top *= ratio
            path.step(pool, top)

    def _refit(self, estimator, X, sample_weight, sparsities, best, fold_counts):
        """The model at ``sparsities[best]`` on all of ``X``, relaxed if asked.

        A warm path is followed from its first sparsity, as in the folds.
        The refit keeps a component count within the range the folds kept at
        the chosen sparsity: where it keeps more than any fold (more rows
        weaken a given sparsity's pull), the path continues up the
        sparsities (the walk's grid, then the grid's ratio) until it keeps
        no more; where it keeps fewer than every fold, the refit is the
        nearest smaller sparsity's that keeps at least the fewest
        (``best_estimator_.sparsity`` is then where it stopped).

        Parameters
        ----------
        fold_counts : ndarray of shape (n_folds,)
            Each fold's component count at the chosen sparsity.
        """
        warm = self.path == "warm"
        low, high = int(fold_counts.min()), int(fold_counts.max())
        start = _path_start(estimator, X, sample_weight, self.path)

        def fit_at(sparsity, previous=None):
            # A warm path continues from the previous fit, a restart never.
            source = previous if warm and previous is not None else start
            return _fit_from(estimator, X, sample_weight, sparsity, source)

        # A warm path's fits along the way, kept as they were: the fallback
        # when the chosen sparsity keeps too few.
        on_the_way = []
        model = None
        for sparsity in sparsities[: best + 1] if warm else sparsities[best:][:1]:
            if model is not None:
                on_the_way.append(copy.deepcopy(model))
            model = fit_at(sparsity, model)
        if model.n_components_ > high:
            ratio = _grid_ratio(sparsities)
            higher = [
                *sparsities[best + 1 :],
                *(sparsities[-1] * ratio ** (1 + np.arange(_MAX_EXTENSIONS))),
            ]
            for sparsity in higher:
                model = fit_at(sparsity, model)
                if model.n_components_ <= high:
                    break
        elif model.n_components_ < low:
            lower = (
                reversed(on_the_way)
                if warm
                else (fit_at(sparsity) for sparsity in sparsities[:best][::-1])
            )
            model = next((fit for fit in lower if fit.n_components_ >= low), model)
        if self.verbose and model.sparsity != sparsities[best]:
            print(
                f"SparseGaussianMixtureCV: the refit keeps {model.n_components_} "
                f"components at sparsity {model.sparsity:.4g}, where the folds "
                f"kept {low} to {high} at {sparsities[best]:.4g}",
                flush=True,
            )
        if self.relax:
            model = _relaxed(model, X, sample_weight)
        # The user's settings where the path set its own start.
        return model.set_params(
            n_init=self.n_init,
            warm_start=False,
            weights_init=None,
            means_init=None,
            precisions_init=None,
        )

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


def _select(scores, n_components, selection, tol):
    """Index of the chosen sparsity.

    Mean scores within ``tol`` of the best are ties: each fit stops once its
    objective changes by less than ``tol`` per iteration, so closer scores
    say nothing about which model is better. Ties go to the fewest mean
    components, then to the larger sparsity.

    Parameters
    ----------
    scores : ndarray of shape (n_folds, n_sparsities)
    n_components : ndarray of shape (n_folds, n_sparsities)
    selection : {'one_standard_error', 'best'}
    tol : float

    Returns
    -------
    int
    """
    mean = scores.mean(axis=0)
    best = int(np.argmax(mean))
    margin = tol
    if selection == "one_standard_error" and scores.shape[0] >= 2:
        margin = max(tol, scores[:, best].std(ddof=1) / np.sqrt(scores.shape[0]))
    candidates = np.flatnonzero(mean >= mean[best] - margin)
    if selection == "one_standard_error":
        return int(candidates.max())
    size = n_components.mean(axis=0)[candidates]
    return int(candidates[np.lexsort((-candidates, size))[0]])


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
