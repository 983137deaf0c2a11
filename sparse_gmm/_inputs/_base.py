"""What every kind of input provides to the estimator, and the checks they share."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from sklearn import get_config

from ..engines import Engine

NON_FINITE_X = (
    "Input X contains NaN or infinity. Remove or impute those rows (for a Dask "
    "array: X[da.isfinite(X).all(axis=1)], then X.compute_chunk_sizes())."
)
ZERO_TOTAL_WEIGHT = "sample_weight sums to zero: no sample would count."


def array_api_dispatch() -> bool:
    """Whether ``sklearn.config_context(array_api_dispatch=True)`` is in force."""
    return bool(get_config()["array_api_dispatch"])


def check_sample_matrix(X, what, ensure_min_samples):
    """Check the shape of samples from their metadata, as ``check_array`` does.

    Parameters
    ----------
    X : object with ``ndim`` and ``shape``
        A tensor or a Dask array: nothing is read but its metadata.
    what : str
        What ``X`` is, for the messages ('Dask array', 'tensor').
    ensure_min_samples : int

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, has no feature, or has fewer than
        ``ensure_min_samples`` rows.
    """
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D {what} of shape (n_samples, n_features), got "
            f"{X.ndim}-D with shape {tuple(X.shape)}. Reshape your data, with "
            "X.reshape(-1, 1) for a single feature."
        )
    n_samples, n_features = X.shape
    if n_features < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a "
            "minimum of 1 is required."
        )
    if n_samples < ensure_min_samples:
        raise ValueError(
            f"Found array with {n_samples} sample(s) (shape={tuple(X.shape)}) "
            f"while a minimum of {ensure_min_samples} is required."
        )


class Input(ABC):
    """How the estimator takes one kind of input and returns its results.

    One instance per kind (NumPy and other array-likes, torch tensors, Dask
    arrays), chosen by :func:`sparse_gmm._inputs.input_for` from the input's
    type, as scikit-learn's ``get_namespace`` picks an array namespace. The
    estimator calls these methods and never asks which kind it holds.

    Samples are checked here (setting ``n_features_in_`` and
    ``feature_names_in_`` as ``validate_data`` does) and handed to the engine
    that :meth:`make_engine` builds, which takes them as they come back from
    the checks; engines return torch tensors (Dask arrays for Dask input),
    which :meth:`as_output` turns into what the user gets.
    """

    name = "abstract"

    @abstractmethod
    def check_samples(self, estimator, X, *, reset, ensure_min_samples=1):
        """``X`` as the engines take it, checked.

        Parameters
        ----------
        estimator : SparseGaussianMixture
            Gets ``n_features_in_`` (and ``feature_names_in_``) when
            ``reset``, else is checked against them.
        X : input of this kind, of shape (n_samples, n_features)
        reset : bool
            True in ``fit``, False in the methods that use a fit.
        ensure_min_samples : int, default=1

        Returns
        -------
        X : array of shape (n_samples, n_features)
            float32 kept, other numbers cast to float64.

        Raises
        ------
        ValueError
            If ``X`` is not a matrix of finite numbers of the fitted width.
            (Dask input checks its values in :meth:`training_data`, or block
            by block when a lazy result is computed.)
        """

    @abstractmethod
    def check_sample_weight(self, sample_weight, X):
        """Sample weights of the kind of ``X``, in its dtype.

        Parameters
        ----------
        sample_weight : None, float or array-like of shape (n_samples,)
            None is weight one for every sample.
        X : array of shape (n_samples, n_features)
            As :meth:`check_samples` returned it.

        Returns
        -------
        array of shape (n_samples,)

        Raises
        ------
        ValueError
            If the shape is wrong or a weight is negative, NaN or infinite.
        """

    def training_data(self, estimator, X, sample_weight, *, reset):
        """The samples and weights that ``fit`` works on, checked.

        Returns
        -------
        X : array of shape (n_samples, n_features)
        sample_weight : array of shape (n_samples,)
        """
        X = self.check_samples(estimator, X, reset=reset, ensure_min_samples=2)
        return X, self.check_sample_weight(sample_weight, X)

    def distinct_rows(self, X, sample_weight, enough):
        """The number of distinct rows of positive weight, or ``enough`` if more.

        Counted first among the leading rows, where ordinary data show
        ``enough`` at once; only data with ties are counted in full.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            As :meth:`check_samples` returned it.
        sample_weight : array of shape (n_samples,)
        enough : int

        Returns
        -------
        int
        """
        for rows in (slice(0, 4 * enough), slice(None)):
            n_distinct = self._unique_row_count(X[rows][sample_weight[rows] > 0])
            if n_distinct >= enough:
                return enough
        return n_distinct

    def selection_rows(self, X, sample_weight, n_rows, random_state):
        """At most ``n_rows`` rows of ``X``, drawn uniformly, with their weights.

        The rows on which the components are chosen (the estimator's
        ``selection_samples``). Drawn without replacement and kept in their
        order, each with its own weight, so that the sample's weighted
        moments are unbiased estimates of the whole data's.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            As :meth:`check_samples` returned it.
        sample_weight : array of shape (n_samples,)
        n_rows : int
        random_state : numpy.random.RandomState
            Drawn from only when there are more than ``n_rows`` rows.

        Returns
        -------
        X, sample_weight
            ``X`` and ``sample_weight`` themselves when they have at most
            ``n_rows`` rows; else the sample, of the same kind.
        """
        if X.shape[0] <= n_rows:
            return X, sample_weight
        rows = np.sort(random_state.choice(X.shape[0], n_rows, replace=False))
        return self._take_rows(X, rows), self._take_rows(sample_weight, rows)

    def _take_rows(self, array, rows):
        return array[rows]

    def _unique_row_count(self, X):
        return np.unique(X, axis=0).shape[0]

    @abstractmethod
    def make_engine(self, estimator, X, verbose=0) -> Engine:
        """The engine that computes on ``X`` with the estimator's settings.

        Parameters
        ----------
        estimator : SparseGaussianMixture
            Its ``engine`` and ``device`` parameters.
        X : array of shape (n_samples, n_features)
            As :meth:`check_samples` returned it.
        verbose : int, default=0
        """

    @abstractmethod
    def initialisation_sample(
        self, X, sample_weight, *, n_components, random_state, needs_rows
    ):
        """The rows, in memory, that a fit starts from.

        The initialisations (k-means and the others) and the automatic
        covariance prior are computed on them: NumPy arrays, or tensors on
        their device.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        sample_weight : array of shape (n_samples,)
        n_components : int
        random_state : numpy.random.RandomState
            Drawn from only when the rows are a sample of ``X``.
        needs_rows : bool
            Whether the initialisation runs (not a warm start, and not all
            three starting parameters given).

        Returns
        -------
        rows : numpy.ndarray or torch.Tensor of shape (n_rows, n_features) \
                or None
            All of ``X`` for in-memory input; None where rows would have to
            be drawn and ``needs_rows`` is False (Dask).
        weights : numpy.ndarray or torch.Tensor of shape (n_rows,) or None
        """

    @abstractmethod
    def weighted_mean(self, values, sample_weight) -> float:
        """``sum_i w_i v_i / sum_i w_i``, in float64.

        Parameters
        ----------
        values : result of an engine, of shape (n_samples,)
        sample_weight : array of shape (n_samples,)
            As :meth:`check_sample_weight` returned it.

        Raises
        ------
        ValueError
            If the weights sum to zero.
        """

    @abstractmethod
    def as_output(self, result, like):
        """A result as the user gets it for input ``like``.

        Parameters
        ----------
        result : torch.Tensor or numpy.ndarray (a Dask array for Dask input)
        like : input of this kind
            The input whose namespace and device the result should follow
            where the array API dispatch asks for it.
        """

    def numpy_dtype(self, X):
        """The NumPy dtype of ``X``: the fitted parameters' dtype."""
        return np.dtype(X.dtype)

    def place_fitted(self, estimator, X):
        """Put the fitted arrays where :meth:`as_output` puts results for ``X``.

        Every numeric NumPy attribute of the fitted ``estimator`` (its name
        ending in ``_``) becomes what :meth:`as_output` makes of it: as
        scikit-learn's array API convention asks, all of them follow the
        training data's namespace and device, or none does.
        """
        for name, value in list(vars(estimator).items()):
            if (
                name.endswith("_")
                and isinstance(value, np.ndarray)
                and value.dtype.kind in "biuf"
            ):
                setattr(estimator, name, self.as_output(value, X))
