"""Compute engines and the rule that picks one.

``engine='auto'`` resolves to ``'torch'``. On this project's CPU machines the
dense chunked engine beat every KeOps formula per iteration (DESIGN.md,
section 6) and KeOps adds a compile of seconds per formula; KeOps' case is the
GPU, where it has not been measured yet, so 'auto' does not pick it until it
is. ``engine='keops'`` uses it on request.
``device='auto'`` is CUDA when ``torch.cuda.is_available()``, else the CPU.
"""

from __future__ import annotations

import torch

from ._base import Engine, SufficientStatistics
from ._torch import TorchEngine

__all__ = [
    "Engine",
    "SufficientStatistics",
    "TorchEngine",
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


def make_engine(engine, device, verbose=0) -> Engine:
    """The engine named by the estimator's ``engine`` parameter, on ``device``.

    ``verbose >= 2`` lets KeOps print its compilations.
    """
    device = resolve_device(device)
    if engine in ("auto", "torch"):
        return TorchEngine(device)
    if engine == "keops":
        # Imported here: the module imports pykeops lazily, but keeping it out
        # of `import sparse_gmm` costs nothing.
        from ._keops import KeOpsEngine

        return KeOpsEngine(device, verbose=verbose >= 2)
    raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}.")
