"""MM-EM: the weight update, monotone descent and pruning."""

import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from sparse_gmm import SparseGaussianMixture
from sparse_gmm._initialization import initial_parameters
from sparse_gmm._m_step import mm_weights
from sparse_gmm._objective import SparseObjective
from sparse_gmm._size_selection import fewer_than
from sparse_gmm.engines import TorchEngine
from sparse_gmm.penalties import SqrtPrior
from sparse_gmm.solvers import ProgressReport, make_solver

from .conftest import gaussian_mixture_sample


def _surrogate(weights, a, c):
    return -np.sum(a * np.log(weights)) + np.sum(c * weights)


@pytest.mark.parametrize("seed", range(5))
def test_mm_weights_minimise_the_surrogate_on_the_simplex(seed):
    rng = np.random.default_rng(seed)
    a = rng.dirichlet(np.ones(8))
    c = rng.uniform(0, 5, 8) / np.sqrt(rng.dirichlet(np.ones(8)))
    weights = mm_weights(a, c)
    assert_allclose(weights.sum(), 1.0, rtol=0, atol=1e-14)
    # Independent reference: SLSQP on the simplex.
    reference = minimize(
        _surrogate,
        np.full(8, 1 / 8),
        args=(a, c),
        method="SLSQP",
        bounds=[(1e-12, 1)] * 8,
        constraints={"type": "eq", "fun": lambda w: w.sum() - 1},
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert _surrogate(weights, a, c) <= reference.fun + 1e-10
    assert_allclose(weights, reference.x, atol=1e-5)


def test_mm_weights_with_a_dying_component_raise_no_floating_point_warning():
    # A component at weight ~1e-300 has a tangent slope ~1e155, whose square
    # overflows in Newton's derivative (seen in compare.py's fits).
    a = np.array([0.06, 0.145, 0.017, 1e-302, 6e-308, 0.4619])
    a = a / a.sum()
    c = np.array([36.8, 14.6, 91.6, 4.3e128, 5.1e155, 1.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        weights = mm_weights(a, c)
    assert np.all(np.isfinite(weights))
    assert_allclose(weights.sum(), 1.0, rtol=0, atol=1e-14)
    assert np.all(weights[3:5] < 1e-250)
    # The dying components change nothing for the others.
    kept = [0, 1, 2, 5]
    assert_allclose(weights[kept], mm_weights(a[kept] / a[kept].sum(), c[kept]))


def test_mm_weights_without_penalty_are_the_responsibility_masses():
    a = np.array([0.5, 0.3, 0.2])
    assert_allclose(mm_weights(a, np.zeros(3)), a, rtol=0, atol=0)


def test_mm_weights_zero_mass_or_infinite_slope_gives_zero_weight():
    weights = mm_weights(np.array([0.6, 0.4, 0.0]), np.array([1.0, np.inf, 2.0]))
    assert_allclose(weights, [1.0, 0.0, 0.0])


def _descent_cases():
    """Every covariance type at one sparsity and seed; the rest of the grid slow."""
    for seed in (0, 1):
        for sparsity in (0.0, 0.5, 2.0, 10.0):
            for covariance_type in ("full", "tied", "diag", "spherical"):
                marks = () if (seed, sparsity) == (0, 2.0) else pytest.mark.slow
                yield pytest.param(covariance_type, sparsity, seed, marks=marks)


@pytest.mark.parametrize(
    ("covariance_type", "sparsity", "seed"), list(_descent_cases())
)
def test_objective_never_increases(covariance_type, sparsity, seed):
    X, _ = gaussian_mixture_sample(
        n_samples=1000, n_components=4, n_features=3, separation=4.0, seed=seed
    )
    model = SparseGaussianMixture(
        15,
        sparsity=sparsity,
        covariance_type=covariance_type,
        tol=1e-8,
        max_iter=150,
        random_state=seed,
        init_params="random_from_data",
        reg_covar=1e-4,
        covariance_prior=None,
        relax=False,
        criterion=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    # An annihilated component (too few samples for its parameters) is
    # removed whatever it costs: F may rise there, and only there.
    kept_count = np.diff(model.n_components_curve_) == 0
    assert np.all(np.diff(model.loss_curve_)[kept_count] <= 0.0)
    assert model.loss_curve_.shape == (model.n_iter_,)
    assert_allclose(model.loss_curve_[-1], model.objective_)
    penalty = sparsity / 15 * np.sqrt(model.weights_).sum()
    assert_allclose(model.objective_, -model.score(X) + penalty, rtol=1e-10)


def test_sparsity_prunes_to_the_true_size_and_attributes_hold_survivors():
    X, _ = gaussian_mixture_sample(n_samples=3000, n_components=5, seed=0)
    # criterion=None: the sparsity alone prunes, so the count never rises.
    model = SparseGaussianMixture(25, sparsity=4.0, criterion=None, random_state=0).fit(
        X
    )
    k = model.n_components_
    assert k == 5
    assert model.weights_.shape == (k,)
    assert_allclose(model.weights_.sum(), 1.0)
    assert model.means_.shape == (k, 2)
    assert model.covariances_.shape == (k, 2, 2)
    assert model.precisions_.shape == (k, 2, 2)
    assert model.precisions_cholesky_.shape == (k, 2, 2)
    assert model.predict_proba(X).shape == (len(X), k)
    assert set(np.unique(model.predict(X))) == set(range(k))
    assert model.active_components_.shape == (k,)
    assert len(set(model.active_components_)) == k
    assert np.all((model.active_components_ >= 0) & (model.active_components_ < 25))
    curve = model.n_components_curve_
    assert curve[0] <= 25 and curve[-1] == k and np.all(np.diff(curve) <= 0)
    # The unpenalised fit keeps every component.
    dense = SparseGaussianMixture(25, sparsity=0.0, random_state=0, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense.fit(X)
    assert dense.n_components_ == 25


def test_pruned_components_are_the_light_ones():
    """Survivors are identified by their index among the starting components."""
    X, _ = gaussian_mixture_sample(n_samples=2000, n_components=3, seed=3)
    start = SparseGaussianMixture(12, sparsity=0.0, max_iter=0, random_state=0)
    start.fit(X)
    model = SparseGaussianMixture(
        12,
        sparsity=3.0,
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
    ).fit(X)
    assert model.n_components_ == 3
    # Each survivor sits near the starting component it came from.
    for j, origin in enumerate(model.active_components_):
        distances = np.linalg.norm(start.means_ - model.means_[j], axis=1)
        assert distances[origin] <= np.sort(distances)[1]


@pytest.mark.parametrize(
    ("relax", "removal_moves"), [(False, False), (True, False), (False, True)]
)
def test_curves_and_counts_describe_the_same_iterations(relax, removal_moves):
    """One entry per iteration; the bound before an iteration is -F after the last.

    Within one run, iteration t starts from the parameters iteration t-1
    ended with, so its lower bound is minus the objective recorded after
    t-1 (the removal moves record the incumbent's values while a trial
    loses, and the relaxed refit changes the objective, so only the plain
    run is checked entry by entry).
    """
    X, _ = gaussian_mixture_sample(n_samples=800, n_components=3, seed=5)
    # criterion=None: the walk down ends at its best size, not at the last it
    # tried (tests/test_size_selection.py).
    model = SparseGaussianMixture(
        8,
        sparsity=1.0,
        relax=relax,
        removal_moves=removal_moves,
        criterion=None,
        random_state=0,
    ).fit(X)
    shape = (model.n_iter_,)
    assert model.loss_curve_.shape == model.lower_bounds_.shape == shape
    assert model.n_components_curve_.shape == model.time_curve_.shape == shape
    assert model.lower_bound_ == model.lower_bounds_[-1]
    assert model.objective_ == model.loss_curve_[-1]
    assert model.n_components_curve_[-1] == model.n_components_
    if not relax and not removal_moves:
        np.testing.assert_array_equal(-model.lower_bounds_[1:], model.loss_curve_[:-1])


def test_a_fit_stops_where_its_stop_says():
    # The size choice discards a fit of a given size that loses a component;
    # its stop ends the fit there instead of letting it converge.
    X, _ = gaussian_mixture_sample(n_samples=600, n_components=2, n_features=2)
    start = initial_parameters(
        X,
        np.ones(len(X)),
        n_components=6,
        covariance_type="full",
        init_params="kmeans",
        reg_covar=1e-6,
        random_state=np.random.RandomState(0),
    )
    X_t, weight = torch.as_tensor(X), torch.ones(len(X), dtype=torch.float64)
    objective = SparseObjective(2.0, SqrtPrior(), 6, min_count=6.0)
    solver = make_solver(
        "em",
        max_iter=500,
        tol=1e-6,
        reg_covar=1e-6,
        prune_threshold=1e-3,
        learning_rate=0.1,
        removal_moves=False,
    )
    engine, report = TorchEngine("cpu"), ProgressReport(0, 10)
    full = solver.solve(X_t, weight, start, engine, objective, report)
    stopped = solver.solve(
        X_t, weight, start, engine, objective, report, stop=fewer_than(6)
    )
    counts = list(full.n_components_curve)
    assert counts[-1] < 6 and full.converged
    first_loss = next(i for i, count in enumerate(counts) if count < 6)
    # The same iterates up to the first loss, then nothing more.
    assert list(stopped.n_components_curve) == counts[: first_loss + 1]
    np.testing.assert_array_equal(stopped.loss_curve, full.loss_curve[: first_loss + 1])
    assert stopped.parameters.n_components == counts[first_loss] < 6
    assert not stopped.converged
