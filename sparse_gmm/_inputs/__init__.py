"""One interface for every kind of input: NumPy, torch and Dask.

:func:`input_for` picks, from the types of ``X`` and ``sample_weight``, the
:class:`Input` that checks them, builds the engine, draws the rows the
initialisation starts from, reduces a weighted mean and returns results, by
this rule:

1. **Dask** (:class:`DaskInput`) if ``X`` or ``sample_weight`` is a Dask
   collection: the fit runs on the blocks where they are, per-sample results
   are lazy Dask arrays. Dask is imported only then.
2. **torch** (:class:`TorchInput`) if ``X`` is a ``torch.Tensor``, on any
   device: the tensor goes to the engine as it is, and ``device='auto'``
   computes on its device. Results are tensors on that device under
   ``sklearn.config_context(array_api_dispatch=True)``, NumPy arrays
   otherwise.
3. **NumPy** (:class:`NumpyInput`) for everything else that scikit-learn's
   ``validate_data`` takes (NumPy arrays, memmaps, lists, pandas data
   frames).

The estimator calls the chosen input's methods and never branches on the
kind itself, as geomloss picks its backend once from the input and
scikit-learn's array API code asks ``get_namespace`` for its namespace.
"""

from __future__ import annotations

import torch

from ._base import Input, array_api_dispatch
from ._dask import DaskInput, is_dask_collection
from ._numpy import NumpyInput
from ._torch import TorchInput, host_array

__all__ = [
    "DaskInput",
    "Input",
    "NumpyInput",
    "TorchInput",
    "array_api_dispatch",
    "host_array",
    "in_memory_input_for",
    "input_for",
]

_NUMPY, _TORCH, _DASK = NumpyInput(), TorchInput(), DaskInput()


def input_for(X, sample_weight=None) -> Input:
    """The :class:`Input` that handles ``X`` (the rule in the module docstring).

    Parameters
    ----------
    X : array-like, torch.Tensor or dask.array.Array
    sample_weight : array-like, torch.Tensor, dask.array.Array or None

    Returns
    -------
    Input
    """
    if is_dask_collection(X) or is_dask_collection(sample_weight):
        return _DASK
    if isinstance(X, torch.Tensor):
        return _TORCH
    return _NUMPY


def in_memory_input_for(X) -> Input:
    """The :class:`Input` for ``X`` where the data must be in memory.

    As :func:`input_for`, except that a Dask array is the NumPy input's:
    ``validate_data`` computes it into a NumPy array (cross-validation
    indexes folds of rows).

    Returns
    -------
    Input
    """
    return _TORCH if isinstance(X, torch.Tensor) else _NUMPY
