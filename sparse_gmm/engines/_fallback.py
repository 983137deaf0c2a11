"""KeOps chosen by ``engine='auto'``, with the torch engine behind it.

KeOps can fail where torch cannot: pykeops missing or broken (a truncated
cache file makes its import raise), no C++ compiler, a compile that stops
half-way. A user who asked for 'auto' should get a fit regardless, so the
first :class:`KeOpsUnavailableError` switches this engine to torch, warns
once, and redoes the call; every engine primitive is a pure function of its
arguments, so redoing it is exact. The failure is remembered for the rest of
the process, so that 'auto' stops choosing KeOps and warns only once.
"""

from __future__ import annotations

import threading
import warnings

from ._base import Engine
from ._keops import KeOpsUnavailableError

_FAILURE_LOCK = threading.Lock()
_keops_failure = None


class EngineFallbackWarning(UserWarning):
    """``engine='auto'`` chose KeOps, which cannot run here; torch ran instead."""


def keops_failed() -> bool:
    """Whether KeOps has already failed in this process."""
    return _keops_failure is not None


def _record_failure(error) -> bool:
    """Remember KeOps' first failure; True for the call that should warn."""
    global _keops_failure
    with _FAILURE_LOCK:
        first = _keops_failure is None
        if first:
            _keops_failure = error
        return first


class FallbackEngine(Engine):
    """Runs ``preferred`` until it raises KeOpsUnavailableError, then ``fallback``.

    Parameters
    ----------
    preferred : Engine
        The KeOps engine.
    fallback : Engine
        The torch engine, on the same device.
    """

    def __init__(self, preferred: Engine, fallback: Engine):
        super().__init__(preferred.device)
        self.preferred = preferred
        self.fallback = fallback
        self._active = fallback if keops_failed() else preferred

    @property
    def name(self):
        """The name of the engine that runs now."""
        return self._active.name

    def _run(self, primitive, *args):
        if self._active is self.preferred:
            try:
                return getattr(self.preferred, primitive)(*args)
            except KeOpsUnavailableError as error:
                self._active = self.fallback
                if _record_failure(error):
                    warnings.warn(
                        f"engine='auto' chose KeOps, which cannot run here, and "
                        f"fell back to engine='torch' for the rest of this "
                        f"process. Cause: {error}",
                        EngineFallbackWarning,
                        stacklevel=2,
                    )
        return getattr(self.fallback, primitive)(*args)

    def score_samples(self, X, parameters):
        return self._run("score_samples", X, parameters)

    def log_responsibilities(self, X, parameters):
        return self._run("log_responsibilities", X, parameters)

    def most_likely_component(self, X, parameters):
        return self._run("most_likely_component", X, parameters)

    def statistics(self, X, sample_weight, parameters):
        return self._run("statistics", X, sample_weight, parameters)
