"""Dask arrays: recognised without importing dask, checked and sampled lazily.

Dask is an optional dependency (``pip install sparse_gmm[dask]``), and
``import sparse_gmm`` must not pay for it, so nothing here imports dask at
module level: a Dask collection is recognised by the module its class comes
from, and dask itself is imported only once such a collection has arrived
(at which point the user has it installed). This module and the engine that
computes on the blocks (:mod:`sparse_gmm.engines._dask`) are the only ones
that use ``dask`` and ``distributed``.

Checks are made without pulling the data to the client. Shapes, dtypes and
chunks are checked from the array's metadata. The values (finite samples,
finite non-negative weights) need a pass over the data: the fit makes it
once, as a few reductions computed together, before anything else; the
per-sample methods check each block on its worker instead, so that their
results stay lazy.

The initialisations (k-means and the others, :mod:`sparse_gmm._initialization`)
need the samples in memory. On a Dask array they run on a uniform random
sample of rows, carrying their weights, pulled to the client: at most
``INIT_SAMPLE_ROWS`` rows and ``INIT_SAMPLE_BYTES`` bytes. An array that fits
in that is taken whole and in order, without a random draw, so that the start
is then exactly the in-memory fit's with the same ``random_state``.
"""

from __future__ import annotations

import math
from numbers import Real
from types import SimpleNamespace

import numpy as np
from sklearn.utils.validation import (
    _check_feature_names,
    _check_n_features,
    _check_sample_weight,
)

from ._base import NON_FINITE_X, ZERO_TOTAL_WEIGHT, Input, check_sample_matrix

_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
INIT_SAMPLE_ROWS = 100_000
INIT_SAMPLE_BYTES = 64 * 2**20

_INSTALL_HINT = (
    "Dask input needs the 'dask' extra: pip install 'sparse_gmm[dask]' "
    "(dask[array] and distributed)."
)


def _dask_classes(obj):
    """The classes in ``type(obj).__mro__`` that Dask defines."""
    return [
        cls
        for cls in type(obj).__mro__
        if cls.__module__.split(".")[0] in ("dask", "dask_expr", "dask_cudf")
    ]


def is_dask_collection(obj) -> bool:
    """Whether ``obj`` is any Dask collection (array, data frame, delayed...)."""
    return bool(_dask_classes(obj))


def is_dask_array(obj) -> bool:
    """Whether ``obj`` is a ``dask.array.Array``."""
    return any(
        cls.__module__.startswith("dask.array") and cls.__name__ == "Array"
        for cls in _dask_classes(obj)
    )


def import_dask():
    """``dask`` and ``dask.array``, imported now.

    Returns
    -------
    types.SimpleNamespace
        With attributes ``dask`` and ``array``.

    Raises
    ------
    ImportError
        Naming the extra to install, if dask[array] is missing.
    """
    try:
        import dask
        import dask.array
    except ImportError as error:
        raise ImportError(f"{_INSTALL_HINT} ({error})") from error
    return SimpleNamespace(dask=dask, array=dask.array)


def distributed_client():
    """The ``distributed.Client`` that ``dask.compute`` would use now, or None.

    None when distributed is not installed, or when the scheduler in use is
    another one (dask's threads or processes, or one set with
    ``dask.config.set(scheduler=...)``): only a client that will run the
    computation can hold data scattered for it.
    """
    dask = import_dask().dask
    scheduler = dask.base.get_scheduler()
    client = getattr(scheduler, "__self__", None)
    if client is None or not type(client).__module__.startswith("distributed"):
        return None
    return client


def init_sample_size(n_samples, n_features, n_components, itemsize):
    """How many rows the initialisation gets.

    At most ``INIT_SAMPLE_ROWS`` rows and ``INIT_SAMPLE_BYTES`` bytes of
    samples, but never fewer than ``n_components`` (k-means needs as many).

    Returns
    -------
    int
    """
    by_memory = INIT_SAMPLE_BYTES // (n_features * itemsize)
    return min(n_samples, max(n_components, min(INIT_SAMPLE_ROWS, by_memory)))


def distinct_sorted_indices(n_samples, size, random_state):
    """``size`` distinct row indices drawn uniformly, in increasing order.

    Memory is O(size), not O(n_samples): indices are drawn with replacement
    and the duplicates drawn again. Every subset of ``size`` rows is equally
    likely, since nothing in the procedure tells the rows apart.

    Parameters
    ----------
    n_samples : int
    size : int
        At most ``n_samples``.
    random_state : numpy.random.RandomState

    Returns
    -------
    numpy.ndarray of shape (size,), int64
    """
    chosen = np.empty(0, dtype=np.int64)
    while chosen.size < size:
        draws = random_state.randint(
            0, n_samples, size=size - chosen.size, dtype=np.int64
        )
        chosen = np.union1d(chosen, draws)
    return chosen


def sample_rows(X, sample_weight, n_components, random_state):
    """A uniform sample of rows and their weights, as NumPy arrays.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
    sample_weight : dask.array.Array of shape (n_samples,)
    n_components : int
    random_state : numpy.random.RandomState
        Drawn from only when the sample is smaller than X.

    Returns
    -------
    rows : numpy.ndarray of shape (size, n_features)
    weights : numpy.ndarray of shape (size,)

    Raises
    ------
    ValueError
        If every sampled row has weight zero.
    """
    dask = import_dask().dask
    n_samples, n_features = X.shape
    size = init_sample_size(n_samples, n_features, n_components, X.dtype.itemsize)
    if size < n_samples:
        indices = distinct_sorted_indices(n_samples, size, random_state)
        X, sample_weight = X[indices], sample_weight[indices]
    rows, weights = dask.compute(X, sample_weight)
    if not np.any(weights > 0):
        raise ValueError(
            f"The {size} rows sampled for the initialisation all have weight "
            "zero; give weights to more samples, or pass means_init, "
            "weights_init and precisions_init."
        )
    return rows, weights


class DaskInput(Input):
    """Dask arrays: fitted where their blocks are; per-sample results stay lazy.

    The engine is a :class:`~sparse_gmm.engines._dask.DaskEngine`, whose
    workers each build the engine that the estimator's ``engine`` names on the
    device its ``device`` names (resolved on the worker). Fitted attributes
    are NumPy arrays; per-sample results are lazy Dask arrays chunked like
    X's rows, as dask-ml returns them.
    """

    name = "dask"

    def check_samples(self, estimator, X, *, reset, ensure_min_samples=1):
        """A Dask array of samples as the engines take it, checked from its metadata.

        Returns
        -------
        dask.array.Array of shape (n_samples, n_features)
            float32 kept, other numbers cast to float64 (as scikit-learn
            does), with the features in one chunk so that a block holds
            whole rows.

        Raises
        ------
        ValueError
            If X is not a Dask array (a Dask data frame, or X in memory with
            Dask weights), is not 2-D, has unknown chunk sizes, holds no
            numbers, or has too few samples or the wrong feature count.
        """
        if not is_dask_collection(X):
            raise ValueError(
                "sample_weight is a Dask array but X is not: pass X as a Dask "
                "array chunked like sample_weight, or sample_weight in memory."
            )
        if not is_dask_array(X):
            raise ValueError(
                f"Expected a Dask array, got {type(X).__module__}."
                f"{type(X).__name__}. Convert a Dask DataFrame with "
                "X.to_dask_array(lengths=True)."
            )
        if any(math.isnan(size) for size in X.shape):
            raise ValueError(
                f"X has unknown chunk sizes (shape {X.shape}), as after boolean "
                "indexing; call X.compute_chunk_sizes() first."
            )
        check_sample_matrix(X, "Dask array", ensure_min_samples)
        if X.dtype.kind == "c":
            raise ValueError(f"Complex data not supported (X has dtype {X.dtype}).")
        if X.dtype.kind not in "biuf":
            raise ValueError(
                f"X has dtype {X.dtype}; expected numbers (float32 or float64, or "
                "integers, which are cast to float64)."
            )
        _check_feature_names(estimator, X, reset=reset)
        _check_n_features(estimator, X, reset=reset)
        if X.dtype not in _FLOAT_DTYPES:
            X = X.astype(np.float64)
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        return X

    def check_sample_weight(self, sample_weight, X):
        """Sample weights as a Dask array chunked like the rows of ``X``.

        Parameters
        ----------
        sample_weight : None, float, array-like or dask.array.Array
            None means weight one for every sample; a NumPy array is checked
            now and split like X; a Dask array must have shape (n_samples,)
            and is rechunked to X's row chunks if its chunks differ. Its
            values are checked by :meth:`training_data` in ``fit``,
            and when ``score`` computes.
        X : dask.array.Array of shape (n_samples, n_features)
            As returned by :meth:`check_samples`.

        Returns
        -------
        dask.array.Array of shape (n_samples,), in X's dtype

        Raises
        ------
        ValueError
            If the shape is wrong, or the values of a non-Dask
            ``sample_weight`` are not finite and non-negative.
        """
        da = import_dask().array
        n_samples = X.shape[0]
        row_chunks = (X.chunks[0],)
        if sample_weight is None:
            return da.ones(n_samples, dtype=X.dtype, chunks=row_chunks)
        if not is_dask_collection(sample_weight):
            if isinstance(sample_weight, Real) and not (
                math.isfinite(sample_weight) and sample_weight >= 0
            ):
                raise ValueError(
                    "sample_weight must be finite and non-negative, got "
                    f"{sample_weight}."
                )
            checked = _check_sample_weight(
                sample_weight, X, dtype=X.dtype, ensure_non_negative=True
            )
            return da.from_array(checked, chunks=row_chunks)
        if not is_dask_array(sample_weight):
            raise ValueError(
                "sample_weight must be a Dask array (or a NumPy array), got "
                f"{type(sample_weight).__module__}.{type(sample_weight).__name__}."
            )
        if sample_weight.ndim != 1 or sample_weight.shape[0] != n_samples:
            raise ValueError(
                f"sample_weight.shape == {sample_weight.shape}, expected "
                f"({n_samples},)."
            )
        if sample_weight.dtype.kind not in "biuf":
            raise ValueError(
                f"sample_weight has dtype {sample_weight.dtype}; expected numbers."
            )
        sample_weight = sample_weight.astype(X.dtype)
        if sample_weight.chunks != row_chunks:
            sample_weight = sample_weight.rechunk(row_chunks)
        return sample_weight

    def training_data(self, estimator, X, sample_weight, *, reset):
        """Checked as in memory, the values in one pass over the blocks.

        Raises
        ------
        ValueError
            As :meth:`check_samples` and :meth:`check_sample_weight` do, and
            if X holds NaN or infinity, or the weights are not finite, are
            negative or sum to zero.
        """
        X, sample_weight = super().training_data(
            estimator, X, sample_weight, reset=reset
        )
        dask, da = import_dask().dask, import_dask().array
        finite_X, finite_weights, smallest_weight, total_weight = dask.compute(
            da.isfinite(X).all(),
            da.isfinite(sample_weight).all(),
            sample_weight.min(),
            sample_weight.sum(dtype=np.float64),
        )
        if not finite_X:
            raise ValueError(NON_FINITE_X)
        if not finite_weights:
            raise ValueError("Input sample_weight contains NaN or infinity.")
        if smallest_weight < 0:
            raise ValueError("Negative values in data passed to `sample_weight`.")
        if not total_weight > 0:
            raise ValueError(ZERO_TOTAL_WEIGHT)
        return X, sample_weight

    def selection_rows(self, X, sample_weight, n_rows, random_state):
        # All rows: the Dask engine computes on the blocks where they are,
        # and a sample chosen in memory would need another engine.
        return X, sample_weight

    def distinct_rows(self, X, sample_weight, enough):
        # Rows, not distinct rows: telling ties apart would read every block
        # before the fit does. Few rows are the case worth catching here.
        return min(enough, X.shape[0])

    def make_engine(self, estimator, X, verbose=0):
        # Imported here: the engine module imports this one.
        from ..engines._dask import DaskEngine

        return DaskEngine(estimator.engine, estimator.device, verbose)

    def initialisation_sample(
        self, X, sample_weight, *, n_components, random_state, needs_rows
    ):
        """A uniform sample of the rows, pulled to the client, if it is needed.

        Without it (a warm start, or all three starting parameters given) the
        data-scaled priors reduce the whole array on the workers instead.
        """
        if not needs_rows:
            return None, None
        return sample_rows(X, sample_weight, n_components, random_state)

    def weighted_mean(self, values, sample_weight):
        """Computed on the workers."""
        weights = sample_weight.astype(np.float64)
        total, weighted = import_dask().dask.compute(
            weights.sum(), (weights * values.astype(np.float64)).sum()
        )
        if not total > 0:
            raise ValueError(ZERO_TOTAL_WEIGHT)
        return float(weighted / total)

    def as_output(self, result, like):
        """A lazy Dask array stays one."""
        return result
