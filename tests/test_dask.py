"""Dask arrays give what the in-memory fit gives.

The default tier computes the blocks with Dask's synchronous scheduler, in
this process; the slow tier repeats the main checks on a LocalCluster of two
worker processes, and runs those that need one (tasks that must not run on the
client, scattered parameters, devices resolved by the workers).
"""

import importlib
import os
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

import sparse_gmm
from sparse_gmm import SparseGaussianMixture
from sparse_gmm._inputs import _dask as dask_input
from sparse_gmm.engines import _dask as dask_engine

from .conftest import explicit_start, gaussian_mixture_sample

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

N_SAMPLES, BLOCK = 2000, 500
# From 5 components this sparsity prunes to the 3 true ones in about 13
# iterations: every iteration on Dask is a round trip to the workers.
N_COMPONENTS, SPARSITY = 5, 8.0


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes, as on a real cluster."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            # No dashboard; the scheduler's HTTP server (health routes) on a
            # free port, not on 8787, which another cluster may hold.
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # The workers must run this checkout's sparse_gmm, not another install;
        # importing it now also takes torch's import out of the first test.
        paths = client.run(
            lambda: (
                importlib.import_module("sparse_gmm.engines._dask")
                and importlib.import_module("sparse_gmm").__file__
            )
        )
        assert set(paths.values()) == {sparse_gmm.__file__}
        yield client


@pytest.fixture
def synchronous():
    """Dask's synchronous scheduler: every block computed here, in turn."""
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(
    params=["synchronous", pytest.param("processes", marks=pytest.mark.slow)]
)
def scheduler(request):
    """Each scheduler in turn: this process, then the cluster's workers."""
    if request.param == "processes":
        yield request.getfixturevalue("client")
        return
    with dask.config.set(scheduler="synchronous"):
        yield None


@pytest.fixture(scope="module")
def data():
    """A 3-component mixture in memory, and the same rows as 4 Dask blocks."""
    X, _ = gaussian_mixture_sample(n_samples=N_SAMPLES, n_components=3, seed=3)
    weights = np.random.default_rng(0).uniform(0.0, 3.0, N_SAMPLES)
    return X, weights


def _blocks(array):
    return da.from_array(array, chunks=(BLOCK, *array.shape[1:]))


def _assert_same_fit(on_dask, in_memory):
    assert on_dask.n_iter_ == in_memory.n_iter_
    assert_array_equal(on_dask.n_components_curve_, in_memory.n_components_curve_)
    assert_array_equal(on_dask.active_components_, in_memory.active_components_)
    assert_allclose(on_dask.loss_curve_, in_memory.loss_curve_, rtol=1e-10)
    assert_allclose(on_dask.means_, in_memory.means_, atol=1e-6)
    assert_allclose(on_dask.weights_, in_memory.weights_, atol=1e-9)
    assert_allclose(on_dask.covariances_, in_memory.covariances_, atol=1e-9)
    assert_allclose(on_dask.lower_bound_, in_memory.lower_bound_, rtol=1e-10)
    assert on_dask.converged_ == in_memory.converged_


@pytest.mark.parametrize(
    "covariance_type, weighted", [("full", False), ("full", True), ("diag", True)]
)
def test_fit_matches_the_in_memory_fit_from_the_same_start(
    scheduler, data, covariance_type, weighted
):
    X, weights = data
    # criterion=None: iterate by iterate, and the walk down's re-convergences
    # stop where F's change is rounding, an iteration apart between engines.
    params = dict(
        sparsity=SPARSITY,
        criterion=None,
        covariance_type=covariance_type,
        **explicit_start(X, N_COMPONENTS, covariance_type),
    )
    sample_weight = weights if weighted else None
    in_memory = SparseGaussianMixture(N_COMPONENTS, **params).fit(
        X, sample_weight=sample_weight
    )
    on_dask = SparseGaussianMixture(N_COMPONENTS, **params).fit(
        _blocks(X), sample_weight=_blocks(weights) if weighted else None
    )
    # Pruning must have happened, and the same way.
    assert in_memory.n_components_ == 3
    _assert_same_fit(on_dask, in_memory)
    assert isinstance(on_dask.means_, np.ndarray) and on_dask.engine_ == "dask"


def test_float32_fit_stays_float32_and_matches_in_memory(synchronous, data):
    X, weights = data
    X, weights = X.astype(np.float32), weights.astype(np.float32)
    # relax=False: paths that stop an iteration apart would compare a
    # relaxed objective with a penalised one; plain MM-EM, whose last
    # iteration moves the means by less than an extrapolation does.
    params = dict(
        sparsity=SPARSITY,
        relax=False,
        criterion=None,
        acceleration=None,
        # Merges reach the fixed point early, where stops on rounding-level
        # changes of F can differ by an iteration between the engines.
        merge_moves=False,
        covariance_type="diag",
        **explicit_start(X, N_COMPONENTS, "diag"),
    )
    in_memory = SparseGaussianMixture(N_COMPONENTS, **params)
    in_memory.fit(X, sample_weight=weights)
    on_dask = SparseGaussianMixture(N_COMPONENTS, **params)
    on_dask.fit(_blocks(X), sample_weight=_blocks(weights))
    assert on_dask.means_.dtype == on_dask.covariances_.dtype == np.float32
    # Blocks and chunks of other shapes round float32 matmuls differently, so
    # a stopping test that lands within rounding of its threshold can stop
    # one iteration apart; the paths agree up to there.
    assert abs(on_dask.n_iter_ - in_memory.n_iter_) <= 1
    n = min(on_dask.n_iter_, in_memory.n_iter_)
    assert_array_equal(
        on_dask.n_components_curve_[:n], in_memory.n_components_curve_[:n]
    )
    assert_allclose(on_dask.loss_curve_[:n], in_memory.loss_curve_[:n], rtol=1e-5)
    assert_allclose(on_dask.means_, in_memory.means_, atol=1e-5)
    assert_allclose(on_dask.covariances_, in_memory.covariances_, rtol=1e-4)


def test_default_initialisation_of_a_small_array_is_the_in_memory_one(
    synchronous, data
):
    X, _ = data
    in_memory = SparseGaussianMixture(
        N_COMPONENTS, sparsity=SPARSITY, criterion=None, random_state=0
    ).fit(X)
    on_dask = SparseGaussianMixture(
        N_COMPONENTS, sparsity=SPARSITY, criterion=None, random_state=0
    ).fit(_blocks(X))
    _assert_same_fit(on_dask, in_memory)


def test_initialisation_from_a_sample_of_the_rows(synchronous, data, monkeypatch):
    X, weights = data
    monkeypatch.setattr(dask_input, "INIT_SAMPLE_ROWS", 300)
    rows, row_weights = dask_input.sample_rows(
        _blocks(X), _blocks(weights), N_COMPONENTS, np.random.RandomState(0)
    )
    assert rows.shape == (300, 2) and row_weights.shape == (300,)
    # Distinct rows of X, in order, each with its own weight.
    index = np.flatnonzero(np.isin(X[:, 0], rows[:, 0]))
    assert_array_equal(X[index], rows)
    assert_array_equal(weights[index], row_weights)
    again, _ = dask_input.sample_rows(
        _blocks(X), _blocks(weights), N_COMPONENTS, np.random.RandomState(0)
    )
    assert_array_equal(again, rows)

    in_memory = SparseGaussianMixture(
        N_COMPONENTS, sparsity=SPARSITY, criterion=None, random_state=0
    ).fit(X)
    on_dask = SparseGaussianMixture(
        N_COMPONENTS, sparsity=SPARSITY, criterion=None, random_state=0
    ).fit(_blocks(X))
    assert on_dask.n_components_ == in_memory.n_components_ == 3
    assert abs(on_dask.objective_ - in_memory.objective_) < 1e-3


def test_sampled_row_indices_are_uniform_and_distinct():
    rng = np.random.RandomState(0)
    counts = {}
    for _ in range(4000):
        indices = dask_input.distinct_sorted_indices(6, 3, rng)
        assert len(set(indices)) == 3 and np.all(np.diff(indices) > 0)
        counts[tuple(indices)] = counts.get(tuple(indices), 0) + 1
    # All 20 subsets of 3 among 6, each about 200 times (a binomial's sd is 14).
    assert len(counts) == 20
    assert all(130 < count < 270 for count in counts.values())


def test_warm_start_continues_on_dask_as_in_memory(synchronous, data):
    X, _ = data
    # criterion=None: as in test_fit_matches_the_in_memory_fit_from_the_same_start.
    params = dict(sparsity=SPARSITY, warm_start=True, random_state=0, criterion=None)
    models = [SparseGaussianMixture(N_COMPONENTS, max_iter=3, **params) for _ in "ab"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for model in models:
            model.fit(X)
    in_memory, on_dask = models
    in_memory.set_params(max_iter=300).fit(X)
    on_dask.set_params(max_iter=300).fit(_blocks(X))
    _assert_same_fit(on_dask, in_memory)


def test_per_sample_methods_return_lazy_arrays_equal_to_in_memory(scheduler, data):
    X, weights = data
    model = SparseGaussianMixture(N_COMPONENTS, sparsity=SPARSITY, random_state=0).fit(
        X
    )
    X_dask = _blocks(X)

    log_density = model.score_samples(X_dask)
    assert isinstance(log_density, da.Array)
    assert log_density.chunks == (X_dask.chunks[0],)
    assert_allclose(log_density.compute(), model.score_samples(X), atol=1e-10)

    proba = model.predict_proba(X_dask)
    assert isinstance(proba, da.Array)
    assert proba.chunks == (X_dask.chunks[0], (model.n_components_,))
    assert_allclose(proba.compute(), model.predict_proba(X), atol=1e-12)

    labels = model.predict(X_dask)
    assert isinstance(labels, da.Array) and labels.dtype == np.int64
    assert_array_equal(labels.compute(), model.predict(X))

    assert_allclose(model.score(X_dask), model.score(X), rtol=1e-12)
    # Weights chunked like X, chunked otherwise (rechunked), or in memory.
    for sample_weight in (
        _blocks(weights),
        da.from_array(weights, chunks=700),
        weights,
    ):
        assert_allclose(
            model.score(X_dask, sample_weight=sample_weight),
            model.score(X, sample_weight=weights),
            rtol=1e-12,
        )
    assert_allclose(model.bic(X_dask), model.bic(X), rtol=1e-12)

    single = model.score_samples(_blocks(X.astype(np.float32)))
    assert single.dtype == np.float32 and single.compute().dtype == np.float32


@pytest.mark.slow
def test_block_functions_never_run_on_the_client(client, data, monkeypatch):
    X, _ = data
    model = SparseGaussianMixture(N_COMPONENTS, sparsity=SPARSITY, random_state=0).fit(
        X
    )
    client_pid, calls = os.getpid(), []
    for name in (
        "_block_score_samples",
        "_block_log_responsibilities",
        "_block_most_likely_component",
    ):
        original = getattr(dask_engine, name)

        def recording(X_block, task, original=original):
            # Without meta=, map_blocks calls the function here with empty
            # arrays to learn what it returns.
            if os.getpid() == client_pid:
                calls.append(X_block.shape)
            return original(X_block, task)

        monkeypatch.setattr(dask_engine, name, recording)
    lazy = [
        model.score_samples(_blocks(X)),
        model.predict_proba(_blocks(X)),
        model.predict(_blocks(X)),
    ]
    computed = dask.compute(*lazy)
    assert calls == []
    assert_array_equal(computed[2], model.predict(X))


@pytest.mark.parametrize("solver, max_iter", [("adam", 3), ("lbfgs", 2)])
def test_gradient_solvers_match_in_memory(synchronous, data, solver, max_iter):
    X, weights = data
    start = explicit_start(X, N_COMPONENTS, "full")
    params = dict(solver=solver, max_iter=max_iter, tol=0.0, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = SparseGaussianMixture(5, **params).fit(X, sample_weight=weights)
        on_dask = SparseGaussianMixture(5, **params).fit(
            _blocks(X), sample_weight=_blocks(weights)
        )
    assert_allclose(on_dask.loss_curve_, in_memory.loss_curve_, rtol=1e-9)
    assert_allclose(on_dask.means_, in_memory.means_, atol=1e-6)


def test_keops_engine_on_the_blocks(scheduler, data):
    """KeOps on each block; in this process, the default tier's 2-D float64
    formulas, already compiled by tests/test_keops.py."""
    pytest.importorskip("pykeops")
    X, _ = data
    params = dict(
        sparsity=SPARSITY,
        criterion=None,
        max_iter=6,
        tol=0.0,
        **explicit_start(X, N_COMPONENTS, "full"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = SparseGaussianMixture(N_COMPONENTS, engine="torch", **params).fit(X)
        # On the cluster both workers compile the same formulas at once: the
        # compile lock in sparse_gmm.engines._keops makes one wait for the other.
        on_dask = SparseGaussianMixture(N_COMPONENTS, engine="keops", **params).fit(
            _blocks(X)
        )
    _assert_same_fit(on_dask, in_memory)
    assert_allclose(
        on_dask.score_samples(_blocks(X)).compute(),
        in_memory.score_samples(X),
        atol=1e-8,
    )


@pytest.mark.slow
def test_large_parameters_are_scattered_and_give_the_same_fit(
    client, data, monkeypatch
):
    X, _ = data
    monkeypatch.setattr(dask_engine, "SCATTER_BYTES", 0)
    scattered = []
    original_scatter = client.scatter

    def recording_scatter(data, **kwargs):
        scattered.append(type(data).__name__)
        return original_scatter(data, **kwargs)

    monkeypatch.setattr(client, "scatter", recording_scatter)
    # relax=False: the relaxed refit's first evaluation is one more pass; so
    # are the walk down's, and an extrapolation that is not taken.
    params = dict(
        sparsity=SPARSITY,
        max_iter=3,
        tol=0.0,
        relax=False,
        criterion=None,
        acceleration=None,
        # Merges reach the fixed point early, where stops on rounding-level
        # changes of F can differ by an iteration between the engines.
        merge_moves=False,
        **explicit_start(X, N_COMPONENTS, "full"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = SparseGaussianMixture(N_COMPONENTS, **params).fit(X)
        on_dask = SparseGaussianMixture(N_COMPONENTS, **params).fit(_blocks(X))
    _assert_same_fit(on_dask, in_memory)
    # One scatter per pass over the blocks: the start and each iteration.
    assert scattered == ["BlockTask"] * (1 + on_dask.n_iter_)
    # Lazy results carry the mixture in their graph instead.
    log_density = on_dask.score_samples(_blocks(X))
    assert len(scattered) == 1 + on_dask.n_iter_
    assert_allclose(log_density.compute(), in_memory.score_samples(X), atol=1e-10)


def test_without_a_distributed_client(data, monkeypatch):
    X, weights = data
    monkeypatch.setattr(dask_engine, "SCATTER_BYTES", 0)
    # Without merges: with them the sparse fit proposes 3 components and the
    # walk then fits one, whose stop at its fixed point (a single component
    # is exact after one M-step) is rounding-level and can differ by two
    # iterations between the engines.
    params = dict(
        sparsity=SPARSITY,
        merge_moves=False,
        **explicit_start(X, N_COMPONENTS, "full"),
    )
    in_memory = SparseGaussianMixture(N_COMPONENTS, **params).fit(
        X, sample_weight=weights
    )
    with dask.config.set(scheduler="synchronous"):
        on_dask = SparseGaussianMixture(N_COMPONENTS, **params).fit(
            _blocks(X), sample_weight=_blocks(weights)
        )
        log_density = on_dask.score_samples(_blocks(X)).compute()
    _assert_same_fit(on_dask, in_memory)
    assert_allclose(log_density, in_memory.score_samples(X), atol=1e-10)


def _nan_blocks(X):
    X = X.copy()
    X[1234, 1] = np.nan
    return _blocks(X)


def _with_inf(X):
    X = X.copy()
    X[10, 0] = np.inf
    return _blocks(X)


def _bad_fit_inputs(X, weights):
    """``(X, sample_weight, message)`` for each bad Dask input that fit must refuse."""
    X_dask = _blocks(X)
    negative = weights.copy()
    negative[700] = -1.0
    return {
        "1-D": (X_dask[:, 0], None, "2-D"),
        "unknown chunks": (X_dask[X_dask[:, 0] > 0], None, "unknown chunk sizes"),
        "strings": (_blocks(X.astype(str)), None, "dtype"),
        "complex": (_blocks(X.astype(complex)), None, "Complex"),
        "one sample": (X_dask[:1], None, "minimum of 2"),
        "NaN": (_nan_blocks(X), None, "NaN or infinity"),
        "inf": (_with_inf(X), None, "NaN or infinity"),
        "delayed": (dask.delayed(X), None, "Expected a Dask array"),
        "negative weight": (X_dask, _blocks(negative), "Negative values"),
        "NaN weight": (
            X_dask,
            _blocks(np.where(weights > 2.5, np.nan, weights)),
            "NaN",
        ),
        "zero weights": (X_dask, _blocks(np.zeros(N_SAMPLES)), "sums to zero"),
        "weights too short": (X_dask, _blocks(weights[:-1]), r"shape"),
        "2-D weights": (X_dask, _blocks(weights[:, None]), r"shape"),
        "weights without X": (X, _blocks(weights), "X is not"),
    }


@pytest.mark.parametrize(
    "case", list(_bad_fit_inputs(np.zeros((N_SAMPLES, 2)), np.ones(N_SAMPLES)))
)
def test_bad_dask_input_raises_and_leaves_the_estimator_as_it_was(
    synchronous, data, case
):
    X, weights = data
    bad_X, bad_weight, message = _bad_fit_inputs(X, weights)[case]
    fresh = SparseGaussianMixture(N_COMPONENTS, random_state=0)
    with pytest.raises(ValueError, match=message):
        fresh.fit(bad_X, sample_weight=bad_weight)
    assert not hasattr(fresh, "weights_") and not hasattr(fresh, "n_features_in_")


def test_a_failed_dask_fit_keeps_the_previous_fit(synchronous, data):
    X, _ = data
    model = SparseGaussianMixture(N_COMPONENTS, random_state=0).fit(X)
    before = {key: np.copy(value) for key, value in vars(model).items()}
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.fit(_nan_blocks(X))
    assert vars(model).keys() == before.keys()
    for key, value in before.items():
        assert_array_equal(getattr(model, key), value)


def test_bad_dask_input_at_prediction(synchronous, data):
    X, _ = data
    model = SparseGaussianMixture(N_COMPONENTS, random_state=0).fit(X)
    with pytest.raises(ValueError, match="3 features"):
        model.predict(_blocks(np.ones((10, 3))))
    with pytest.raises(ValueError, match="2-D"):
        model.score_samples(_blocks(X)[:, 0])
    # The result stays lazy; the block with the NaN refuses when computed.
    for method in (model.score_samples, model.predict_proba, model.predict):
        lazy = method(_nan_blocks(X))
        with pytest.raises(ValueError, match="NaN or infinity"):
            lazy.compute()
    with pytest.raises(ValueError, match="sums to zero"):
        model.score(_blocks(X), sample_weight=_blocks(np.zeros(N_SAMPLES)))


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs workers without CUDA")
def test_the_device_is_resolved_on_the_workers(client, data):
    X, _ = data
    # The client would refuse 'cuda' itself; here the workers must, as a
    # worker with a GPU would accept it.
    model = SparseGaussianMixture(N_COMPONENTS, device="cuda", random_state=0)
    with pytest.raises(ValueError, match="cuda"):
        model.fit(_blocks(X))
    assert not hasattr(model, "weights_")
    with pytest.raises(ValueError, match="device must be"):
        SparseGaussianMixture(N_COMPONENTS, device="gpu:x").fit(_blocks(X))
