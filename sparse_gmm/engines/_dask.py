"""The distributed engine: every pass over the samples, block by block, on Dask workers.

Samples are a Dask array whose blocks hold whole rows. Each block is computed
on the worker that holds it by an ordinary engine ('torch' or 'keops', on the
worker's CPU or GPU), built there from the estimator's ``engine`` and
``device`` settings, so that ``device='auto'`` means each worker's own GPU.

- The E-step statistics and the log-likelihood are sums over samples, so
  summing the blocks' sums is exact: one task per block, then Dask's tree
  reduction, and only the ``n_components x n_moment_features`` total comes
  back to the client, where the solvers' M-step (weights, pruning) runs. This
  is how Spark MLlib distributes its GaussianMixture (docs/maths.rst, section 8).
- The gradient of the log-likelihood with respect to the log-density
  coefficients ``theta`` is those same summed moments, so the gradient
  solvers work too, at one pass over the blocks per evaluation.
- The per-sample methods return lazy Dask arrays, one block per block of X,
  built with ``map_blocks`` given ``meta=``, ``dtype`` and ``chunks``:
  without ``meta`` Dask would call them on the client with empty arrays to
  find out.

The mixture travels to the workers with each task. Below ``SCATTER_BYTES``
(1 MiB: about 50 full components in 50 dimensions) it is an argument of every
task, which costs less than a round trip. Above, a fit's pass sends it once
per worker with ``Client.scatter(broadcast=True)``; without a distributed
client (dask's local schedulers share the client's memory) it is one key of
the graph that the tasks depend on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._gaussian import MixtureParameters
from .._inputs._base import NON_FINITE_X
from .._inputs._dask import distributed_client, import_dask, is_dask_collection
from .._moments import n_moment_features
from . import make_engine
from ._base import (
    Engine,
    SufficientStatistics,
    mixture_center,
)

SCATTER_BYTES = 2**20


@dataclass(frozen=True)
class BlockTask:
    """What a block's task needs: the mixture, and the engine to build on the worker.

    Attributes
    ----------
    weights : numpy.ndarray of shape (n_components,), float64
    means : numpy.ndarray of shape (n_components, n_features), float64
    precisions_cholesky : numpy.ndarray, float64
        Shape as in :class:`sparse_gmm._gaussian.MixtureParameters`.
    covariance_type : str
    engine : {'auto', 'torch', 'keops'}
    device : str
        The estimator's ``device``, resolved on the worker.
    verbose : int
    """

    weights: np.ndarray
    means: np.ndarray
    precisions_cholesky: np.ndarray
    covariance_type: str
    engine: str
    device: str
    verbose: int

    @classmethod
    def from_mixture(cls, parameters: MixtureParameters, engine, device, verbose):
        """The task for ``parameters`` (detached, on the CPU)."""

        def as_numpy(tensor):
            return tensor.detach().to("cpu", torch.float64).numpy()

        return cls(
            weights=as_numpy(parameters.weights),
            means=as_numpy(parameters.means),
            precisions_cholesky=as_numpy(parameters.precisions_cholesky),
            covariance_type=parameters.covariance_type,
            engine=engine,
            device=device,
            verbose=verbose,
        )

    @property
    def nbytes(self) -> int:
        """Bytes of the mixture's arrays: what decides how the task travels."""
        return self.weights.nbytes + self.means.nbytes + self.precisions_cholesky.nbytes

    def block_engine(self) -> Engine:
        """The engine that computes this worker's blocks."""
        return make_engine(self.engine, self.device, verbose=self.verbose)

    def mixture(self, device) -> MixtureParameters:
        """The mixture as the engines take it, on ``device``."""

        def as_tensor(array):
            return torch.as_tensor(array, dtype=torch.float64, device=device)

        return MixtureParameters(
            weights=as_tensor(self.weights),
            means=as_tensor(self.means),
            covariances=None,
            precisions_cholesky=as_tensor(self.precisions_cholesky),
            covariance_type=self.covariance_type,
            active=np.arange(self.weights.shape[0]),
        )


def _prepared(X_block, task, check_finite):
    """``(engine, X, parameters)`` for one block, on the worker.

    Parameters
    ----------
    X_block : numpy.ndarray of shape (block_rows, n_features)
    task : BlockTask
    check_finite : bool
        The per-sample methods check their blocks here, lazily; a fit checks
        all of X before its first pass.
    """
    if check_finite and not np.isfinite(X_block).all():
        raise ValueError(NON_FINITE_X)
    engine = task.block_engine()
    return engine, engine.as_tensor(X_block), task.mixture(engine.device)


def _block_statistics(X_block, weight_block, task):
    """One block's E-step sums, packed in a row.

    Parameters
    ----------
    X_block : numpy.ndarray of shape (block_rows, n_features)
    weight_block : numpy.ndarray of shape (block_rows,)
    task : BlockTask

    Returns
    -------
    numpy.ndarray of shape (1, n_components * n_moment_features + 2), float64
        The moments row by row, then ``sum_i w_i log p(x_i)`` and ``sum_i w_i``.
    """
    engine, X, parameters = _prepared(X_block, task, check_finite=False)
    statistics = engine.statistics(X, engine.as_tensor(weight_block), parameters)
    moments = statistics.moments.detach().cpu().numpy().ravel()
    totals = [statistics.log_likelihood, statistics.total_weight]
    return np.concatenate((moments, totals))[None, :]


def _block_score_samples(X_block, task):
    """``log p(x_i)`` of one block's rows, shape (block_rows,)."""
    engine, X, parameters = _prepared(X_block, task, check_finite=True)
    return engine.score_samples(X, parameters).cpu().numpy()


def _block_log_responsibilities(X_block, task):
    """``log r_ij`` of one block's rows, shape (block_rows, n_components)."""
    engine, X, parameters = _prepared(X_block, task, check_finite=True)
    return engine.log_responsibilities(X, parameters).cpu().numpy()


def _block_most_likely_component(X_block, task):
    """``argmax_j r_ij`` of one block's rows, shape (block_rows,), int64."""
    engine, X, parameters = _prepared(X_block, task, check_finite=True)
    return engine.most_likely_component(X, parameters).cpu().numpy()


def check_device_name(device):
    """Check the spelling of a ``device`` that the workers will resolve.

    The client may have no GPU where the workers have one, so only the name
    is checked here; a worker without the device raises when its task runs.

    Raises
    ------
    ValueError
        If ``device`` is not 'auto' or a torch device name.
    """
    if device == "auto":
        return
    try:
        torch.device(device)
    except RuntimeError as error:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or a torch device such as "
            f"'cuda:1'; got {device!r} ({error})."
        ) from None


class DaskEngine(Engine):
    """Engine over the blocks of Dask arrays, each block computed on a worker.

    The client's side is on the CPU (``device``): the parameters and the
    summed statistics are small, and the client needs no GPU. Samples and
    weights are Dask arrays (blocks of whole rows, weights chunked like the
    rows); the statistics come back as float64 torch tensors on the client,
    the per-sample primitives as lazy Dask arrays of NumPy blocks.

    Parameters
    ----------
    block_engine : {'auto', 'torch', 'keops'}, default='auto'
        The engine each worker builds for its blocks.
    block_device : str or torch.device, default='auto'
        The workers' device, resolved on each worker ('auto': its GPU if it
        has one).
    verbose : int, default=0
        ``verbose >= 2`` lets KeOps print its compilations on the workers.
    """

    name = "dask"

    def __init__(self, block_engine="auto", block_device="auto", verbose=0):
        super().__init__("cpu")
        check_device_name(block_device)
        self.block_engine = block_engine
        self.block_device = str(block_device)
        self.verbose = verbose

    def as_tensor(self, array):
        """A Dask array as it is (its blocks stay on the workers)."""
        if is_dask_collection(array):
            return array
        return super().as_tensor(array)

    def total_weight(self, sample_weight) -> float:
        """``sum_i w_i``, computed on the workers."""
        return float(sample_weight.sum(dtype=np.float64).compute())

    def _task(self, parameters, lazy):
        """The block task for ``parameters``, as the tasks should receive it.

        Parameters
        ----------
        parameters : MixtureParameters
        lazy : bool
            True when the result is handed to the user uncomputed: then a
            large task is a key of the graph rather than scattered data, so
            that the result does not depend on this client staying open.

        Returns
        -------
        BlockTask, or a distributed Future or a Delayed holding one
        """
        task = BlockTask.from_mixture(
            parameters, self.block_engine, self.block_device, self.verbose
        )
        if task.nbytes < SCATTER_BYTES:
            return task
        client = None if lazy else distributed_client()
        if client is not None:
            return client.scatter(task, broadcast=True, hash=False)
        return import_dask().dask.delayed(task, pure=True)

    def statistics(self, X, sample_weight, parameters):
        da = import_dask().array
        n_components = parameters.n_components
        n_features = X.shape[1]
        n_moments = n_moment_features(parameters.covariance_type, n_features)
        packed = da.blockwise(
            _block_statistics,
            "ik",
            X,
            "ij",
            sample_weight,
            "i",
            self._task(parameters, lazy=False),
            None,
            new_axes={"k": n_components * n_moments + 2},
            adjust_chunks={"i": 1},
            concatenate=True,
            dtype=np.float64,
            meta=np.empty((0, 0), dtype=np.float64),
        )
        totals = torch.as_tensor(packed.sum(axis=0).compute())
        return SufficientStatistics(
            moments=totals[:-2].reshape(n_components, n_moments),
            center=mixture_center(parameters, X.dtype),
            log_likelihood=float(totals[-2]),
            total_weight=float(totals[-1]),
        )

    def score_samples(self, X, parameters):
        return X.map_blocks(
            _block_score_samples,
            self._task(parameters, lazy=True),
            drop_axis=1,
            chunks=(X.chunks[0],),
            dtype=X.dtype,
            meta=np.empty((0,), dtype=X.dtype),
        )

    def log_responsibilities(self, X, parameters):
        return X.map_blocks(
            _block_log_responsibilities,
            self._task(parameters, lazy=True),
            chunks=(X.chunks[0], (parameters.n_components,)),
            dtype=X.dtype,
            meta=np.empty((0, 0), dtype=X.dtype),
        )

    def responsibilities(self, X, parameters):
        # NumPy's exp on a Dask array is Dask's: lazy, block by block.
        return np.exp(self.log_responsibilities(X, parameters))

    def most_likely_component(self, X, parameters):
        return X.map_blocks(
            _block_most_likely_component,
            self._task(parameters, lazy=True),
            drop_axis=1,
            chunks=(X.chunks[0],),
            dtype=np.int64,
            meta=np.empty((0,), dtype=np.int64),
        )
