"""The rows of a Dask array that a fit's initialisation starts from.

The initialisations (k-means and the others, :mod:`sparse_gmm._initialization`)
need the samples in memory. On a Dask array they run on a uniform random
sample of rows, carrying their weights, pulled to the client: at most
``INIT_SAMPLE_ROWS`` rows and ``INIT_SAMPLE_BYTES`` bytes. An array that fits
in that is taken whole and in order, without a random draw, so that the start
is then exactly the in-memory fit's with the same ``random_state``.
"""

from __future__ import annotations

import numpy as np

from ._dask import import_dask

INIT_SAMPLE_ROWS = 100_000
INIT_SAMPLE_BYTES = 64 * 2**20


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
