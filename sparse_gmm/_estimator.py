"""The scikit-learn estimator: parameters, validation, fitted attributes. No maths."""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._covariance_prior import resolve_covariance_prior
from ._fitted import FITTED_ATTRIBUTES
from ._gaussian import (
    COVARIANCE_TYPES,
    MixtureParameters,
    at_covariance_floor,
    n_parameters,
    precisions_from_cholesky,
)
from ._initialization import initial_parameters
from ._inputs import host_array, input_for
from ._model_size import auto_sparsity, min_component_count
from ._objective import SparseObjective
from ._size_selection import (
    CRITERIA,
    WALK_UP_ITERATIONS,
    fewer_than,
    walk_down,
    walk_up,
)
from ._validation import (
    check_enough_samples,
    check_means_init,
    check_precisions_init,
    check_weights_init,
    starting_component_count,
)
from .engines._base import as_shared_tensor
from .exceptions import DegenerateComponentWarning
from .penalties import check_mm_prior, resolve_prior
from .solvers import SOLVERS, ProgressReport, make_solver


class SparseGaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture that chooses its number of components.

    Minimises the negative mean log-likelihood plus a sparsity prior on the
    mixture weights, ``(sparsity / n_components) * sum_j sqrt(W_j)``, and an
    inverse-Wishart prior on the covariances. The sparsity prior drives the
    weights of unneeded components to zero; components whose weight falls
    below ``prune_threshold``, or whose expected sample count is too small to
    estimate them, are removed during the fit. The size this proposes is
    then walked down, one component at a time, and the size with the best
    BIC kept (``criterion``), so one fit started with generously many
    components keeps the ones the data need; the survivors are then
    refitted by maximum likelihood (``relax``).
    ``sparsity=0, covariance_prior=None`` is maximum likelihood, and then the
    iterates are those of :class:`sklearn.mixture.GaussianMixture` started
    from the same parameters.

    Parameters
    ----------
    n_components : int, default=20
        Number of components the fit starts with: an upper bound on the
        number kept. On data with fewer distinct samples (of positive
        weight) the fit starts with one component per distinct sample, with
        a :class:`~sparse_gmm.exceptions.TooFewSamplesWarning`, unless the
        fit is GaussianMixture's (``sparsity=0``, ``covariance_prior=None``,
        ``prune_threshold=0``) or its start is given (``*_init``, a warm
        start): then fewer samples than components is an error, as in
        GaussianMixture. A Dask array is not counted (it would take a pass
        to count): fewer rows than components is an error.
    sparsity : float or 'auto', default='auto'
        Strength ``s`` of the prior, in nats per sample per square-root
        weight. 'auto' charges a component what BIC charges for its
        parameters, ``s = M^(3/2) (p + 1) ln(N) / (2 N)`` with ``p`` the
        parameters of one component and ``N`` the total sample weight
        (``docs/maths.rst``, section 10.3): strong on small data in many
        dimensions, weak on large data. The value used is ``sparsity_``.
        Larger values keep fewer components; tune a number with
        ``GridSearchCV`` or :class:`SparseGaussianMixtureCV` (``score`` is the
        held-out log-likelihood).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        As in :class:`sklearn.mixture.GaussianMixture`.
    covariance_prior : 'auto', float, array-like of shape (n_features, \
            n_features) or None, default='auto'
        An inverse-Wishart prior on every covariance while the components are
        chosen (``docs/maths.rst``, section 10.1): it keeps components from
        collapsing onto tied or duplicated samples, whose likelihood would
        otherwise outweigh any sparsity. 'auto' is R mclust's default scale,
        the data's covariance over ``n_components^(2/D)`` with ``D + 2``
        degrees of freedom; a float ``v`` is the scale ``v I``, an array the
        scale matrix itself. None is maximum likelihood (with
        ``sparsity=0``, scikit-learn's EM iterates exactly). With ``relax``
        the final model is refitted without it.
    tol : float, default=1e-4
        As in GaussianMixture: the fit has converged when the lower bound
        (minus the objective at an iteration's E-step) changes by less than
        ``tol`` from one iteration to the next; that iteration's M-step is
        still taken. With a penalty (``sparsity > 0`` or a covariance prior)
        the change counts only over iterations that pruned nothing and
        moved no weight by more than ``10 * tol`` of itself (a weak penalty
        lets a component die slowly: a fit that stopped on the objective
        alone would keep it), and an M-step that would raise the objective
        is not taken (``docs/maths.rst``, section 3.3).
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance.
    max_iter : int, default=1000
        Iterations per initialisation, and again for the relaxed refit. The
        automatic sparsity is weak on large samples, and a redundant
        component can take hundreds of iterations to die: the quick start's
        5-component mixture of 5,000 samples pruned its last spurious
        component at iteration 308.
    n_init : int, default=1
        Number of initialisations; the one with the largest ``lower_bound_``
        is kept, as in GaussianMixture.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
            default='kmeans'
        How the starting responsibilities are chosen, as in GaussianMixture.
    weights_init : array-like of shape (n_components,), default=None
    means_init : array-like of shape (n_components, n_features), default=None
    precisions_init : array-like, default=None
        User-supplied starting parameters (shapes as in GaussianMixture).
    prune_threshold : float, default=1e-3
        Components whose weight falls below this are removed during the fit,
        which makes later iterations cheaper. A removal that would raise the
        objective is undone, and that component kept, unless it is
        degenerate (too few samples, or its variance at the ``reg_covar``
        floor). Independently, a component whose expected sample count falls
        below what its covariance needs (``D + 1`` for 'full') or a quarter
        of its parameter count is annihilated (after Figueiredo and Jain,
        ``docs/maths.rst`` section 10.2) whenever a sparsity or a covariance
        prior is in force.
    solver : {'em', 'adam', 'lbfgs'}, default='em'
        'em' is MM-EM: EM with the prior majorised by its tangent, so the
        objective never increases.
        'adam' (the KeOps tutorial's method) and 'lbfgs' minimise the same
        objective by autograd over free parameters (weight logits, means,
        triangular precision factors); they take any differentiable prior but
        are slower (``benchmarks/bench_solvers.py``: Adam took 9 times MM-EM's
        time on the tutorial's spiral) and ignore ``reg_covar``. L-BFGS drives
        weights to zero slowly through the softmax (the square root's pull
        vanishes in logit space) and often stops with extra components.
    prior : {'sqrt', 'log'} or object, default='sqrt'
        The sparsity prior ``phi``: 'sqrt' is ``sum_j sqrt(W_j)``, 'log' is
        ``sum_j log(1 + W_j / 1e-3)``, or an object with ``value(weights)`` and
        ``derivative(weights)`` (see :mod:`sparse_gmm.penalties` for how to
        write one). MM-EM needs it concave and increasing, and checks.
    learning_rate : float, default=0.1
        Adam's step size (the tutorial's); unused by the other solvers.
    acceleration : {'squarem'} or None, default='squarem'
        MM-EM only, while a sparsity or a covariance prior is in force:
        after every two iterations, SQUAREM's extrapolation from the three
        iterates (Varadhan and Roland 2008; ``docs/maths.rst`` section 3.4),
        taken where it lowers the objective, so the objective still never
        increases. A redundant component dies at a geometric rate close to
        one, which the extrapolation shortens: 2-5 times fewer iterations
        (``benchmarks/bench_end_to_end.py``). None is plain MM-EM. Maximum
        likelihood (``sparsity=0`` without a covariance prior, and the
        relaxed refit) is always plain EM, scikit-learn's iterates.
    merge_moves : bool, default=True
        MM-EM only, while a sparsity is in force: at the start of every
        SQUAREM cycle, the two most overlapping components are merged into
        one with their pooled weight, mean and covariance, where that lowers
        the objective (so it still never increases; ``docs/maths.rst``
        section 3.5). Started with many components, the fit splits each
        cluster between several, and the penalty alone lets the spare ones
        die over hundreds of iterations; merged, they go at once. Not for
        ``covariance_type='tied'``.
    selection_samples : int or None, default=20_000
        With more rows than this (and a sparsity or a covariance prior in
        force), the components are chosen on this many rows drawn uniformly
        (the sparse fit, the walk down), and the chosen mixture is then
        refitted on all rows: by maximum likelihood with ``relax``, else
        under the penalties at all rows' automatic sparsity. Choosing costs
        what a fit of this many rows costs, however many rows there are:
        on a million rows, less than ``GaussianMixture`` told the true size
        (``benchmarks/bench_end_to_end.py``). A component carried by fewer
        than about ``max(D + 1, p / 4)`` of the sampled rows cannot be
        chosen; raise it to resolve rarer ones, or None to choose on all
        rows (slow: a redundant component dies slowly under the weak
        automatic sparsity of many rows). Dask input and warm starts
        (which continue from the fitted components) use all rows. Must be
        at least ``n_components``.
    relax : bool, default=True
        After the components are chosen, refit the survivors by maximum
        likelihood from the chosen fit (MM-EM without the
        sparsity penalty and the covariance prior, annihilation still in
        force), as the relaxed lasso does: the priors choose the components
        but also shrink the survivors. Its iterations follow the sparse fit's
        in ``loss_curve_``. Should the maximum-likelihood covariances not be
        positive definite in the data's precision, the penalised fit is kept
        with a ``DegenerateComponentWarning``.
    criterion : {'bic'} or None, default='bic'
        How the number of components is chosen once the sparse fit has
        proposed one (with a sparsity in force): 'bic' refits without the
        sparsity, then removes the lightest component and refits, scoring
        each size by BIC on its fit under the covariance prior (as R's
        mclust scores its models), until two sizes in a row score worse than
        the best; the best is kept (``docs/maths.rst`` section 10.4). The
        walk goes down from the sparse fit's size; then a walk up tries one
        component more, from a fresh ``init_params`` start, and keeps it
        while BIC improves. The chosen size is then also fitted from a fresh
        start, as ``n_init`` does, and that fit replaces the walk's where it
        ends better by more than ``tol``. None keeps the sparse fit's size.
    removal_moves : bool, default=False
        MM-EM only: after convergence, remove the lightest component, run
        MM-EM again and keep the removal when the objective ends lower;
        repeat until a removal does not pay. It reaches lower objectives
        (on the tutorial's spiral, lower than Adam's: see
        ``benchmarks/bench_solvers.py``), but a lower objective is not a better
        model: at a fixed sparsity it can merge real components
        (``benchmarks/bench_removal_moves.py`` measures how often), hence off
        by default. Turn it on to minimise the objective itself, or with a
        sparsity tuned for it.
    engine : {'auto', 'torch', 'keops'}, default='auto'
        Compute engine. 'torch' computes dense blocks of samples, in chunks so
        that memory does not grow with ``n_samples``; 'keops' uses KeOps'
        symbolic reductions (needs pykeops and a C++ compiler or CUDA; each
        new formula compiles once, in seconds); 'auto' picks by the rule
        documented in :mod:`sparse_gmm.engines`: KeOps on a CUDA device,
        torch on the CPU (where it was faster in every size and dtype
        measured). When KeOps cannot run, 'auto' falls back to torch with one
        ``EngineFallbackWarning``.
    device : {'auto', 'cpu', 'cuda'} or str, default='auto'
        Torch device ('cuda:1' works too); 'auto' is CUDA when available,
        and a torch tensor's own device for tensor input (a CUDA tensor is
        fitted on its GPU). For Dask input it is the workers' device,
        resolved on each worker ('auto': a worker's GPU if it has one); the
        client needs no GPU.
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
        Start the next ``fit`` from the current surviving components.
    verbose : int, default=0
        1 prints the start and end of each initialisation; 2 also prints the
        objective, the active components and the elapsed time every
        ``verbose_interval`` iterations.
    verbose_interval : int, default=10

    Attributes
    ----------
    weights_ : ndarray or torch.Tensor of shape (n_components_,)
    means_ : ndarray or torch.Tensor of shape (n_components_, n_features)
    covariances_ : ndarray or torch.Tensor
    precisions_ : ndarray or torch.Tensor
    precisions_cholesky_ : ndarray or torch.Tensor
        Same conventions and shapes as GaussianMixture's, over the surviving
        components, in the dtype of the training data. These and the other
        fitted arrays are tensors on the training data's device when a
        tensor was fitted under scikit-learn's ``array_api_dispatch``
        (Notes), NumPy arrays otherwise.
    n_components_ : int
        Number of surviving components.
    active_components_ : ndarray of shape (n_components_,)
        Indices of the survivors among the ``n_components`` starting ones.
    converged_ : bool
        Whether the last run (the relaxed refit, if any) met ``tol``.
    n_iter_ : int
        Iterations (E-step and M-step) of the kept initialisation, the
        relaxed refit's included.
    lower_bound_ : float
        ``lower_bounds_[-1]``: minus the objective at the parameters before
        the last M-step. With ``sparsity=0`` and ``covariance_prior=None``,
        or after the relaxed refit, the objective is unpenalised and this is
        those parameters' mean log-likelihood, GaussianMixture's
        ``lower_bound_``. Minus infinity when ``max_iter=0``.
    lower_bounds_ : ndarray of shape (n_iter_,)
        Each iteration's lower bound (float64), as GaussianMixture's.
    objective_ : float
        The objective at the fitted model: the relaxed (unpenalised) one,
        minus the mean log-likelihood, when ``relax`` refitted it; without
        ``relax`` and with ``criterion``, the walk's (no sparsity term) at
        the chosen size.
    sparsity_ : float
        The sparsity the fit used (the value of 'auto').
    loss_curve_ : ndarray of shape (n_iter_,)
        The objective after each iteration (float64), the walk down's
        iterations included, at sizes it rejected too; ``lower_bounds_`` has
        it before each iteration. It rises only where a component goes, or
        where the relaxed refit returns to the chosen size.
    n_components_curve_ : ndarray of shape (n_iter_,)
        The number of components after each iteration.
    time_curve_ : ndarray of shape (n_iter_,)
        Seconds since the solver started, after each iteration.
    engine_ : {'torch', 'keops', 'dask'}
        The engine that computed the fit: what 'auto' chose, or 'torch' where
        KeOps could not run; 'dask' for a Dask array, whose workers each build
        the engine that ``engine`` names ('auto' deciding by the whole
        array's size).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has feature names that are all strings.

    See Also
    --------
    sklearn.mixture.GaussianMixture : Maximum likelihood, fixed size.
    sklearn.mixture.BayesianGaussianMixture : Weights shrink, components stay.

    Notes
    -----
    ``fit``, ``score_samples``, ``score``, ``predict`` and ``predict_proba``
    also take a ``dask.array.Array`` (``pip install sparse_gmm[dask]``; dask is
    imported only when one arrives). The fit computes each block's E-step on
    the worker that holds it and the M-step here, with the same iterates as
    in memory, with every solver; the per-sample methods return lazy Dask
    arrays. The fitted attributes are NumPy arrays either way.

    They also take a ``torch.Tensor``, on the CPU or a GPU, which goes to the
    engine without a copy (cast to float64 only if it is neither float32 nor
    float64); ``device='auto'`` computes on its device. As in
    :class:`sklearn.mixture.GaussianMixture`, under
    ``sklearn.config_context(array_api_dispatch=True)`` (which needs the
    environment variable ``SCIPY_ARRAY_API=1`` before scipy is imported) the
    per-sample results, ``sample``'s draws and every fitted array
    (``weights_``, ``means_``, ``covariances_``, ``precisions_``,
    ``precisions_cholesky_``, ``active_components_`` and the curves) are
    tensors on the input's device, while ``score``, ``bic`` and ``aic`` are
    Python floats. Without dispatch the results
    are NumPy arrays, as scikit-learn returns them; a CUDA tensor is still
    fitted on its GPU (where scikit-learn's own estimators refuse it). Only
    the initialisation sees the samples as a NumPy array: a view of a CPU
    tensor, a copy on the host of a GPU one.

    Examples
    --------
    >>> import numpy as np
    >>> from sparse_gmm import SparseGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(c, 0.3, (300, 2)) for c in (-3, 0, 3)])
    >>> model = SparseGaussianMixture(random_state=0).fit(X)
    >>> model.n_components_
    3
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "sparsity": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "covariance_prior": [
            StrOptions({"auto"}),
            Interval(Real, 0, None, closed="neither"),
            "array-like",
            None,
        ],
        "relax": ["boolean"],
        "criterion": [StrOptions(set(CRITERIA)), None],
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [
            StrOptions({"kmeans", "k-means++", "random", "random_from_data"})
        ],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "prune_threshold": [Interval(Real, 0, 1, closed="left")],
        "solver": [StrOptions(set(SOLVERS))],
        "prior": [StrOptions({"sqrt", "log"}), HasMethods(["value", "derivative"])],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "acceleration": [StrOptions({"squarem"}), None],
        "merge_moves": ["boolean"],
        "selection_samples": [Interval(Integral, 2, None, closed="left"), None],
        "removal_moves": ["boolean"],
        "engine": [StrOptions({"auto", "torch", "keops"})],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_components=20,
        *,
        sparsity="auto",
        covariance_type="full",
        covariance_prior="auto",
        tol=1e-4,
        reg_covar=1e-6,
        max_iter=1000,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        prune_threshold=1e-3,
        solver="em",
        prior="sqrt",
        learning_rate=0.1,
        acceleration="squarem",
        merge_moves=True,
        selection_samples=20_000,
        removal_moves=False,
        relax=True,
        criterion="bic",
        engine="auto",
        device="auto",
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
    ):
        self.n_components = n_components
        self.sparsity = sparsity
        self.covariance_type = covariance_type
        self.covariance_prior = covariance_prior
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.prune_threshold = prune_threshold
        self.solver = solver
        self.prior = prior
        self.learning_rate = learning_rate
        self.acceleration = acceleration
        self.merge_moves = merge_moves
        self.selection_samples = selection_samples
        self.removal_moves = removal_moves
        self.relax = relax
        self.criterion = criterion
        self.engine = engine
        self.device = device
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the mixture, pruning the components the data do not need.

        Parameters
        ----------
        X : array-like, torch.Tensor or dask.array.Array of shape \
                (n_samples, n_features)
            A tensor is fitted on its device, without a copy (Notes). A
            Dask array is fitted where its blocks are: each iteration
            computes every block's E-step sums on its worker (with ``engine``
            on ``device``, resolved by each worker) and the M-step runs here,
            so the iterates are the in-memory ones. The initialisation runs
            on a uniform sample of at most 100,000 rows (the whole array if
            it is smaller, and then the start is the in-memory one); explicit
            ``weights_init``, ``means_init`` and ``precisions_init`` need no
            sample. Persist X first (``X.persist()``) unless its blocks are
            cheap to recompute: every iteration reads all of them.
        y : Ignored
        sample_weight : array-like, torch.Tensor or dask.array.Array of \
                shape (n_samples,), default=None
            Non-negative weights; weight 2 counts a sample twice. With a Dask
            X, a Dask array chunked like X's rows (it is rechunked otherwise)
            or an in-memory array.

        Returns
        -------
        self : SparseGaussianMixture
        """
        previous_state = self.__dict__.copy()
        try:
            self._fit(X, sample_weight)
        except BaseException:
            # A failed fit leaves the estimator exactly as it was.
            self.__dict__.clear()
            self.__dict__.update(previous_state)
            raise
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the most likely component of each training sample.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like or dask.array.Array of shape (n_samples,), \
                default=None

        Returns
        -------
        labels : ndarray or dask.array.Array of shape (n_samples,)
            Indices into the surviving components (``0 .. n_components_-1``);
            lazy for a Dask X.
        """
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _fit(self, X, sample_weight):
        warm = self.warm_start and hasattr(self, "converged_")
        data = input_for(X, sample_weight)
        X, sample_weight = data.training_data(self, X, sample_weight, reset=not warm)
        n_components = self._starting_component_count(data, X, sample_weight, warm)
        engine = data.make_engine(self, X, verbose=self.verbose)
        prior = resolve_prior(self.prior)
        random_state = check_random_state(self.random_state)
        # The components are chosen on at most selection_samples rows, then
        # refitted on all of them (docs/maths.rst, section 10.7).
        all_X, all_weight = X, sample_weight
        if self._penalised() and not warm and self.selection_samples is not None:
            if self.selection_samples < n_components:
                raise ValueError(
                    f"selection_samples={self.selection_samples} is below "
                    f"n_components={n_components}: the components are "
                    "chosen on that many rows. Raise it, or pass None."
                )
            X, sample_weight = data.selection_rows(
                X, sample_weight, self.selection_samples, random_state
            )
        on_sample = X is not all_X
        report = ProgressReport(self.verbose, self.verbose_interval)
        if on_sample:
            report.selection_sample(X.shape[0], all_X.shape[0])
        X_device = engine.as_tensor(X)
        weight_device = engine.as_tensor(sample_weight)
        user_init = self._checked_user_init(X.shape[1])
        init_X, init_weight = data.initialisation_sample(
            X,
            sample_weight,
            n_components=n_components,
            random_state=random_state,
            needs_rows=not warm and any(value is None for value in user_init.values()),
        )
        objective = self._objective(
            X, sample_weight, init_X, init_weight, prior, n_components
        )
        if self.solver == "em" and objective.sparsity > 0:
            check_mm_prior(prior)
        solver = make_solver(
            self.solver,
            max_iter=self.max_iter,
            tol=self.tol,
            reg_covar=self.reg_covar,
            prune_threshold=self.prune_threshold,
            learning_rate=self.learning_rate,
            removal_moves=self.removal_moves,
            acceleration=self.acceleration,
            merge_moves=self.merge_moves,
        )

        def start_at(size, **init):
            # Every start of this fit: the initialisations, and the fresh
            # starts of the size choice.
            return initial_parameters(
                init_X,
                init_weight,
                n_components=size,
                covariance_type=self.covariance_type,
                init_params=self.init_params,
                reg_covar=self.reg_covar,
                random_state=random_state,
                device=engine.device,
                covariance_prior=objective.covariance_prior,
                **init,
            )

        best = None
        for init in range(1 if warm else self.n_init):
            if warm:
                start = self._fitted_parameters(engine.device)
            else:
                start = start_at(n_components, **user_init)
            report.begin(init, start.n_components, X.shape[0])
            result = solver.solve(
                X_device,
                weight_device,
                start,
                engine,
                objective,
                report,
                previous_lower_bound=self.lower_bound_ if warm else -np.inf,
            )
            report.end(init, result)
            # GaussianMixture's choice: the largest lower bound, and the last
            # initialisation when none ran an iteration (max_iter=0).
            if (
                best is None
                or result.lower_bound > best.lower_bound
                or best.lower_bound == -np.inf
            ):
                best = result
        if self.criterion is not None and objective.sparsity > 0 and self.max_iter > 0:
            best = self._choose_size(
                best,
                X_device,
                weight_device,
                engine,
                objective,
                report,
                # A warm start, or the user's initial parameters (which are
                # for the largest size), allow no fresh start.
                fresh_start=(
                    None
                    if warm or any(value is not None for value in user_init.values())
                    else start_at
                ),
                max_components=n_components,
            )
        if on_sample and self.max_iter > 0:
            X_device = engine.as_tensor(all_X)
            weight_device = engine.as_tensor(all_weight)
            if not self.relax:
                # The penalised fit on all rows, at their own 'auto' sparsity,
                # from the components the sample chose.
                objective = self._objective(
                    all_X, all_weight, init_X, init_weight, prior, n_components
                )
                refit = solver.solve(
                    X_device, weight_device, best.parameters, engine, objective, report
                )
                report.refitted(refit)
                best = best.followed_by(refit)
        relaxed_objective = objective.relaxed()
        if self.relax and relaxed_objective != objective and self.max_iter > 0:
            best = self._relaxed_refit(
                best, X_device, weight_device, engine, relaxed_objective, report
            )

        if not best.converged and self.max_iter > 0:
            # GaussianMixture's text, so that filters written for it match.
            warnings.warn(
                "Best performing initialization did not converge. "
                "Try different init parameters, or increase max_iter, "
                "tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._set_fitted(best, data.numpy_dtype(X), objective.sparsity, engine.name)
        data.place_fitted(self, X)
        self._warn_degenerate(best.parameters)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Tensors in, tensors out under array_api_dispatch (Notes).
        tags.array_api_support = True
        return tags

    def _mm_em(self, max_iter=None):
        """MM-EM with this estimator's settings: the walk's and the refit's solver.

        Whatever ``solver`` fitted the sparse model, what follows it is
        MM-EM, without removal moves. ``max_iter``: a smaller budget than
        the estimator's.
        """
        return make_solver(
            "em",
            max_iter=self.max_iter
            if max_iter is None
            else min(max_iter, self.max_iter),
            tol=self.tol,
            reg_covar=self.reg_covar,
            prune_threshold=self.prune_threshold,
            learning_rate=self.learning_rate,
            removal_moves=False,
            acceleration=self.acceleration,
        )

    def _choose_size(
        self,
        best,
        X,
        sample_weight,
        engine,
        objective,
        report,
        fresh_start,
        max_components,
    ):
        """The size and fit that the criterion chooses, from the sparse fit.

        The walk down from the sparse fit's size; where it kept that size,
        the walk up; then the better of the chosen fit and a fresh start at
        its size (``docs/maths.rst`` section 10.4). Without fresh starts
        (a warm start, or the user's initial parameters, which are for the
        largest size), the walk down alone.

        Parameters
        ----------
        fresh_start : callable or None
            ``fresh_start(n_components)``: a start of that size, the fit's
            own (``init_params``); None where fresh starts are not allowed.
        max_components : int
            The largest size the walk up may reach.
        """
        proposed = best.parameters.n_components
        # Each size is fitted by MM-EM under the covariance prior without the
        # sparsity, whose shrunk weights would bias the criterion
        # (``docs/maths.rst``, section 10.4).
        walk_objective = objective.without_sparsity()
        criterion = CRITERIA[self.criterion]()
        best = walk_down(
            self._mm_em(),
            X,
            sample_weight,
            best,
            engine,
            walk_objective,
            criterion,
            report,
        )
        if fresh_start is None:
            return best
        # Below the proposal, the walk down has scored the next size up
        # already, and worse.
        if best.parameters.n_components >= proposed:
            best = walk_up(
                self._mm_em(max_iter=WALK_UP_ITERATIONS),
                X,
                sample_weight,
                best,
                engine,
                walk_objective,
                criterion,
                report,
                fresh_start,
                max_components=max_components,
            )
        return self._better_start(
            best,
            fresh_start(best.parameters.n_components),
            X,
            sample_weight,
            engine,
            objective,
            report,
        )

    def _better_start(self, walked, fresh, X, sample_weight, engine, objective, report):
        """The walk's fit or one from a fresh start at its size, whichever ends better.

        The walk reaches its size by removing components from a larger fit,
        which can leave it in a poorer local optimum than the usual start
        at that size (breast_cancer: 0.42 nats per sample below k-means'
        0.45-0.50 in one of five folds, and 8 nats per sample worse held
        out). So, as ``n_init`` does, a second fit runs from
        ``init_params`` at the chosen size, and the one whose final model
        is better by more than ``tol`` is kept: both are judged by the
        objective that the fit ends with (the relaxed one, when ``relax``),
        since the covariance prior's objective can prefer the optimum that
        is worse without it.
        A fresh fit that loses components to annihilation is not a
        candidate.
        """
        solver = self._mm_em()
        walk_objective = objective.without_sparsity()
        restarted = solver.solve(
            X,
            sample_weight,
            fresh,
            engine,
            walk_objective,
            report,
            stop=fewer_than(walked.parameters.n_components),
        )
        if restarted.parameters.n_components != walked.parameters.n_components:
            report.start_chosen("walk", walked)
            return walked
        candidates = {"walk": walked, "fresh start": walked.followed_by(restarted)}
        judge = objective.relaxed() if self.relax else walk_objective
        if judge != walk_objective:
            try:
                candidates = {
                    name: fit.followed_by(
                        solver.solve(
                            X, sample_weight, fit.parameters, engine, judge, report
                        )
                    )
                    for name, fit in candidates.items()
                }
            except ValueError:
                # A covariance that is not positive definite without the
                # prior: the relaxed refit will warn; judge with the prior.
                pass
        # Within tol the two are one optimum as far as the stopping rule can
        # tell, and the walk's fit (and its order of components) is kept.
        better = candidates["fresh start"].objective < (
            candidates["walk"].objective - self.tol
        )
        name = "fresh start" if better else "walk"
        report.start_chosen(name, candidates[name])
        return candidates[name]

    def _relaxed_refit(self, best, X, sample_weight, engine, objective, report):
        """Maximum likelihood over the chosen components, from the sparse fit.

        The priors chose the components; they also shrank the survivors'
        weights and likelihoods. Unpenalised MM-EM from the sparse fit's end
        estimates them without that bias, as the relaxed lasso does. Where
        the survivors' maximum-likelihood covariances are not positive
        definite in the working precision (a float32 component on a
        discrete feature), the penalised fit is kept, with a warning.
        """
        try:
            relaxed = self._mm_em().solve(
                X, sample_weight, best.parameters, engine, objective, report
            )
            report.relaxed(relaxed)
        except ValueError as error:
            warnings.warn(
                "The relaxed refit (maximum likelihood over the chosen "
                f"components) failed, so the penalised fit is kept: {error}",
                DegenerateComponentWarning,
                stacklevel=5,
            )
            return best
        return best.followed_by(relaxed)

    def _objective(self, X, sample_weight, init_X, init_weight, prior, n_components):
        """The objective with its data-scaled terms resolved.

        ``sparsity='auto'`` and the annihilation count depend on the total
        sample weight and the parameters per component; the automatic
        covariance prior on the data's variances (estimated on the
        initialisation sample for Dask input).
        """
        # float() computes a Dask sum on the workers.
        n_samples = float(sample_weight.sum())
        n_features = X.shape[1]
        sparsity = self.sparsity
        if isinstance(sparsity, str):
            sparsity = auto_sparsity(
                n_samples, n_features, n_components, self.covariance_type
            )
        covariance_prior = None
        if self.covariance_prior is not None:
            # The initialisation's rows where there are any (all of them in
            # memory); a Dask fit from explicit starting parameters reduces
            # the whole array instead.
            scale_X, scale_weight = (
                (X, sample_weight) if init_X is None else (init_X, init_weight)
            )
            covariance_prior = resolve_covariance_prior(
                self.covariance_prior,
                scale_X,
                scale_weight,
                n_components,
                total_weight=n_samples,
            )
        min_count = 0.0
        if self.covariance_prior is not None or float(sparsity) > 0:
            min_count = min_component_count(n_features, self.covariance_type)
        return SparseObjective(
            float(sparsity),
            prior,
            n_components,
            covariance_prior=covariance_prior,
            min_count=min_count,
        )

    def _warn_degenerate(self, parameters):
        """Warn of surviving components that collapsed onto the covariance floor."""
        collapsed = np.flatnonzero(at_covariance_floor(parameters, self.reg_covar))
        if collapsed.size:
            warnings.warn(
                f"{collapsed.size} of {self.n_components_} components "
                f"(indices {collapsed.tolist()} of the fitted ones) ended with "
                f"a variance at the reg_covar floor ({self.reg_covar!r}): they "
                "sit on tied or duplicated samples, or in a subspace of the "
                "data. Use covariance_prior='auto', a larger reg_covar, or "
                "scale the data.",
                DegenerateComponentWarning,
                stacklevel=4,
            )

    def _penalised(self):
        """Whether a prior is in force: then components are chosen, not given."""
        return self.sparsity != 0 or self.covariance_prior is not None

    def _starting_component_count(self, data, X, sample_weight, warm):
        """``n_components``, or fewer where the data hold fewer distinct samples.

        ``n_components`` is an upper bound unless the fit is GaussianMixture's
        (no sparsity, no covariance prior, no pruning), or its start fixes
        the count (given starting parameters, a warm start: that of the
        survivors of a fit that could remove components).
        """
        given_start = warm or any(
            getattr(self, name) is not None
            for name in ("weights_init", "means_init", "precisions_init")
        )
        can_remove = self._penalised() or self.prune_threshold > 0
        if warm and can_remove:
            # The start is the fitted survivors, which need that many rows;
            # n_components still scales the penalty, as in the first fit.
            check_enough_samples(X.shape[0], self.n_components_)
            return self.n_components
        return starting_component_count(
            lambda enough: data.distinct_rows(X, sample_weight, enough),
            X.shape[0],
            self.n_components,
            can_remove and not given_start,
        )

    def _checked_user_init(self, n_features):
        checks = {
            "weights_init": lambda v: check_weights_init(v, self.n_components),
            "means_init": lambda v: check_means_init(v, self.n_components, n_features),
            "precisions_init": lambda v: check_precisions_init(
                v, self.covariance_type, self.n_components, n_features
            ),
        }
        # Tensors (as array API users pass them) are checked on the host.
        return {
            name: None
            if getattr(self, name) is None
            else check(host_array(getattr(self, name)))
            for name, check in checks.items()
        }

    def _set_fitted(self, result, dtype, sparsity, engine_name):
        """Set every attribute of ``FITTED_ATTRIBUTES``, and only those."""
        parameters = result.parameters

        def as_numpy(tensor):
            return tensor.detach().cpu().numpy().astype(dtype, copy=False)

        values = {
            "weights_": as_numpy(parameters.weights),
            "means_": as_numpy(parameters.means),
            "covariances_": as_numpy(parameters.covariances),
            "precisions_cholesky_": as_numpy(parameters.precisions_cholesky),
            "precisions_": as_numpy(
                precisions_from_cholesky(
                    parameters.precisions_cholesky, parameters.covariance_type
                )
            ),
            "n_components_": parameters.n_components,
            "active_components_": parameters.active.copy(),
            "converged_": result.converged,
            "n_iter_": result.n_iter,
            "lower_bound_": result.lower_bound,
            "lower_bounds_": result.lower_bounds,
            "objective_": result.objective,
            "sparsity_": sparsity,
            "loss_curve_": result.loss_curve,
            "n_components_curve_": result.n_components_curve,
            "time_curve_": result.time_curve,
            "engine_": engine_name,
        }
        # One list, which the CV and persistence read too: a value set here
        # but not listed there would be lost by both.
        if values.keys() != FITTED_ATTRIBUTES.keys():
            raise RuntimeError(
                "_set_fitted and FITTED_ATTRIBUTES disagree on "
                f"{sorted(values.keys() ^ FITTED_ATTRIBUTES.keys())}."
            )
        for name in FITTED_ATTRIBUTES:
            setattr(self, name, values[name])

    def _fitted_parameters(self, device):
        """The fitted attributes as the float64 tensors that engines take."""

        def as_tensor(array):
            return as_shared_tensor(array).to(device=device, dtype=torch.float64)

        return MixtureParameters(
            weights=as_tensor(self.weights_),
            means=as_tensor(self.means_),
            covariances=as_tensor(self.covariances_),
            precisions_cholesky=as_tensor(self.precisions_cholesky_),
            covariance_type=self.covariance_type,
            active=host_array(self.active_components_),
        )

    # ---------------------------------------------------------- inference

    def _engine_inputs(self, X):
        """Checked ``X``, the engine for it, and what it computes with.

        Returns
        -------
        data : Input
            The kind of ``X`` (:func:`sparse_gmm._inputs.input_for`).
        engine : Engine
        X_engine : array of shape (n_samples, n_features)
            ``X`` as the engine takes it (a Dask array stays one).
        parameters : MixtureParameters
            The fitted mixture on the engine's device.
        """
        check_is_fitted(self)
        data = input_for(X)
        X = data.check_samples(self, X, reset=False)
        engine = data.make_engine(self, X)
        return data, engine, engine.as_tensor(X), self._fitted_parameters(engine.device)

    def score_samples(self, X):
        """Log-density of each sample under the fitted mixture.

        Parameters
        ----------
        X : array-like, torch.Tensor or dask.array.Array of shape \
                (n_samples, n_features)

        Returns
        -------
        log_density : ndarray, torch.Tensor or dask.array.Array of shape \
                (n_samples,)
            The exact ``log p(x)``, normalising constants included. A tensor
            on X's device for a tensor X under scikit-learn's
            ``array_api_dispatch``. For a Dask X, a lazy Dask array chunked
            like X's rows (as dask-ml returns them); a block with NaN or
            infinity raises a ValueError when it is computed.
        """
        data, engine, X_engine, parameters = self._engine_inputs(X)
        return data.as_output(engine.score_samples(X_engine, parameters), X)

    def score(self, X, y=None, sample_weight=None):
        """Weighted mean log-likelihood of ``X`` (what GridSearchCV maximises).

        Parameters
        ----------
        X : array-like, torch.Tensor or dask.array.Array of shape \
                (n_samples, n_features)
        y : Ignored
        sample_weight : array-like, torch.Tensor or dask.array.Array of \
                shape (n_samples,), default=None

        Returns
        -------
        float
            Computed on the workers for a Dask X, on X's device for a tensor.
        """
        check_is_fitted(self)
        data = input_for(X, sample_weight)
        X = data.check_samples(self, X, reset=False)
        sample_weight = data.check_sample_weight(sample_weight, X)
        engine = data.make_engine(self, X)
        log_density = engine.score_samples(
            engine.as_tensor(X), self._fitted_parameters(engine.device)
        )
        return data.weighted_mean(log_density, sample_weight)

    def predict_proba(self, X):
        """Posterior probability of each surviving component for each sample.

        Parameters
        ----------
        X : array-like, torch.Tensor or dask.array.Array of shape \
                (n_samples, n_features)

        Returns
        -------
        ndarray, torch.Tensor or dask.array.Array of shape \
                (n_samples, n_components_)
            As :meth:`score_samples` returns them.
        """
        data, engine, X_engine, parameters = self._engine_inputs(X)
        return data.as_output(engine.responsibilities(X_engine, parameters), X)

    def predict(self, X):
        """Most likely surviving component of each sample.

        Parameters
        ----------
        X : array-like, torch.Tensor or dask.array.Array of shape \
                (n_samples, n_features)

        Returns
        -------
        labels : ndarray, torch.Tensor or dask.array.Array of shape \
                (n_samples,)
            int64, as :meth:`score_samples` returns them.
        """
        data, engine, X_engine, parameters = self._engine_inputs(X)
        return data.as_output(engine.most_likely_component(X_engine, parameters), X)

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray or torch.Tensor of shape (n_samples, n_features)
            In the fitted parameters' dtype.
        y : ndarray or torch.Tensor of shape (n_samples,)
            The component each sample was drawn from. Both are tensors on
            ``means_``'s device when the fit made ``means_`` a tensor and
            scikit-learn's ``array_api_dispatch`` is on, as in
            GaussianMixture.
        """
        check_is_fitted(self)
        if n_samples < 1:
            # GaussianMixture's text (which shows n_components there instead).
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples} . The sampling "
                "requires at least one sample."
            )
        # GaussianMixture's draws, in its order: the same random_state gives
        # the same samples from the same parameters.
        weights, means, covariances = (
            host_array(attribute).astype(np.float64)
            for attribute in (self.weights_, self.means_, self.covariances_)
        )
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, weights)
        if self.covariance_type == "full":
            samples = [
                rng.multivariate_normal(mean, covariance, count)
                for mean, covariance, count in zip(
                    means, covariances, counts, strict=True
                )
            ]
        elif self.covariance_type == "tied":
            samples = [
                rng.multivariate_normal(mean, covariances, count)
                for mean, count in zip(means, counts, strict=True)
            ]
        else:
            # Diagonal and spherical: independent coordinates.
            samples = [
                mean
                + rng.standard_normal(size=(count, means.shape[1])) * np.sqrt(variance)
                for mean, variance, count in zip(
                    means, covariances, counts, strict=True
                )
            ]
        X = np.vstack(samples).astype(host_array(self.means_).dtype, copy=False)
        y = np.repeat(np.arange(self.n_components_), counts)
        # The draws follow the fitted attributes' kind, as GaussianMixture's do.
        data = input_for(self.means_)
        return data.as_output(X, self.means_), data.as_output(y, self.means_)

    def _n_parameters(self):
        return n_parameters(
            self.covariance_type, self.n_components_, self.means_.shape[1]
        )

    def bic(self, X):
        """Bayesian information criterion, counting only surviving components.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        float
            Lower is better.
        """
        n_samples = np.shape(X)[0]
        return float(
            -2 * self.score(X) * n_samples + self._n_parameters() * np.log(n_samples)
        )

    def aic(self, X):
        """Akaike information criterion, counting only surviving components.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        float
            Lower is better.
        """
        return float(-2 * self.score(X) * np.shape(X)[0] + 2 * self._n_parameters())
