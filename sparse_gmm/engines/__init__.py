"""Compute engines and the rule that picks one.

``engine='auto'`` picks, for each fit and each prediction, by this rule:

1. ``'torch'`` if KeOps already failed in this process, or pykeops is not
   installed.
2. ``'keops'`` on a CUDA device: KeOps' GPU kernels reduce over components
   without the ``chunk x n_components`` blocks that dense torch streams
   through memory. Not yet measured on a GPU by this project
   (``benchmarks/bench_engines.py`` has only run on CPUs).
3. ``'torch'`` on the CPU. ``benchmarks/bench_engines.py --threads 1``
   measured both dtypes side by side (``benchmarks/results/bench_engines.txt``):
   per EM iteration torch was faster in all 24 cells (N from 1e4 to 1e6, M 10
   and 100, D 2 and 8), by 1.1x to 10x in float64 and 1.3x to 20x in
   float32, and KeOps would also add a compile of about 5 s per new
   formula. KeOps' one advantage there, 27-45% less memory for the fit at
   N = 1e6, M = 10, does not decide it: the torch engine works in chunks, so
   its memory does not grow with ``n_samples`` either. ``engine='keops'``
   still runs KeOps on the CPU.

When 'auto' has chosen KeOps and KeOps cannot import, compile or run, the
call is redone with torch and one :class:`EngineFallbackWarning` is issued
(see :mod:`sparse_gmm.engines._fallback`). ``engine='keops'`` raises
:class:`KeOpsUnavailableError` instead, naming the cause.
``device='auto'`` is CUDA when ``torch.cuda.is_available()``, else the CPU.
"""

from __future__ import annotations

import importlib.util

import torch

from ._base import Engine, SufficientStatistics
from ._fallback import EngineFallbackWarning, FallbackEngine, keops_failed

# _keops imports pykeops only when a KeOps engine first computes.
from ._keops import KeOpsEngine, KeOpsUnavailableError
from ._torch import TorchEngine

__all__ = [
    "Engine",
    "EngineFallbackWarning",
    "KeOpsEngine",
    "KeOpsUnavailableError",
    "SufficientStatistics",
    "TorchEngine",
    "choose_engine",
    "make_engine",
    "resolve_device",
]

ENGINES = ("auto", "torch", "keops")


def resolve_device(device) -> torch.device:
    """The torch device for the estimator's ``device`` parameter.

    Raises
    ------
    ValueError
        If CUDA is asked for and not available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or a torch device such as "
            f"'cuda:1'; got {device!r} ({error})."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} was requested but torch.cuda.is_available() "
            "is False; use device='cpu' or device='auto'."
        )
    return device


def choose_engine(device) -> str:
    """The engine, 'torch' or 'keops', that ``engine='auto'`` picks (rule above).

    Parameters
    ----------
    device : torch.device

    Returns
    -------
    str
    """
    if keops_failed() or importlib.util.find_spec("pykeops") is None:
        return "torch"
    if device.type == "cuda":
        return "keops"
    return "torch"


def make_engine(engine, device, verbose=0) -> Engine:
    """The engine named by the estimator's ``engine`` parameter, on ``device``.

    Parameters
    ----------
    engine : {'auto', 'torch', 'keops'}
    device : str or torch.device
        The estimator's ``device`` parameter.
    verbose : int, default=0
        ``verbose >= 2`` lets KeOps print its compilations.

    Returns
    -------
    Engine
    """
    device = resolve_device(device)
    if engine == "torch":
        return TorchEngine(device)
    if engine == "keops":
        return KeOpsEngine(device, verbose=verbose >= 2)
    if engine == "auto":
        if choose_engine(device) == "torch":
            return TorchEngine(device)
        return FallbackEngine(
            KeOpsEngine(device, verbose=verbose >= 2), TorchEngine(device)
        )
    raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}.")
