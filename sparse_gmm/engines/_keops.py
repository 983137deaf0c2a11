"""The KeOps engine: every pass over the samples as a symbolic reduction.

KeOps (pykeops) compiles each formula to C++ (CPU, OpenMP) or CUDA on first
use and never materialises the ``n_samples x n_components`` matrix: the
per-sample log-density is a log-sum-exp over components, the E-step's
statistics a sum over samples, the most likely component an argmax.

This is the only module that imports pykeops, and it does so lazily, on the
first call, with KeOps' messages silenced. The first call of each formula
(per dimension, dtype and device) holds a file lock in KeOps' build folder,
because pykeops 2.3 writes compiled modules in place without one, and several
processes compiling the same formula at once can corrupt its cache.
"""

from __future__ import annotations

import contextlib
import os
import threading

import torch

from .._gaussian import MixtureParameters, far_sample_posteriors, log_normalisers
from ._base import Engine, SufficientStatistics, mixture_center
from ._torch import TorchEngine

_IMPORT_LOCK = threading.Lock()
_COMPILED = set()


class KeOpsUnavailableError(RuntimeError):
    """KeOps cannot be imported or cannot compile its formulas here."""


def _keops(verbose=None):
    """``(LazyTensor, build_folder)``, importing pykeops on first use.

    KeOps prints what it compiles; that is silenced unless ``verbose`` (None
    leaves the setting as it is).
    """
    with _IMPORT_LOCK:
        os.environ.setdefault("KEOPS_VERBOSE", "0")
        os.environ.setdefault("PYKEOPS_VERBOSE", "0")
        try:
            import pykeops
            from pykeops.torch import LazyTensor
        except ModuleNotFoundError as error:
            raise KeOpsUnavailableError(
                f"KeOps (pykeops) is not installed ({error}). Install it with "
                "`pip install pykeops`, or use engine='torch'."
            ) from error
        except Exception as error:
            # pykeops unpickles its cache index on import: a truncated file
            # there makes the import itself raise.
            raise KeOpsUnavailableError(
                f"KeOps (pykeops) cannot be imported: {error!r}. Its cache may "
                "be damaged: delete KeOps' cache folder (KEOPS_CACHE_FOLDER, by "
                "default ~/.cache/keops*), or use engine='torch'."
            ) from error
        if verbose is not None:
            pykeops.set_verbose(bool(verbose))
        return LazyTensor, pykeops.get_build_folder()


@contextlib.contextmanager
def _first_compile_lock(key):
    """Hold an exclusive file lock in KeOps' build folder around a first call."""
    if key in _COMPILED:
        yield
        return
    _, build_folder = _keops()
    os.makedirs(build_folder, exist_ok=True)
    import fcntl

    with open(os.path.join(build_folder, "sparse_gmm.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        except KeOpsUnavailableError:
            raise
        except Exception as error:
            raise KeOpsUnavailableError(
                f"KeOps could not compile or run its formula ({type(error).__name__}: "
                f"{error}). It needs a C++ compiler (g++) on the CPU, or CUDA's "
                "nvrtc on a GPU; a module left damaged by a compile that stopped "
                f"half-way stays in its cache folder ({build_folder}) until "
                "`pykeops.clean_pykeops()` clears it. Use engine='torch' otherwise."
            ) from error
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    _COMPILED.add(key)


class KeOpsEngine(Engine):
    """Symbolic-reduction engine (pykeops), on CPU or CUDA.

    Parameters
    ----------
    device : torch.device
    verbose : bool, default=False
        Let KeOps print its compilations.
    """

    name = "keops"

    def __init__(self, device="cpu", verbose=False):
        super().__init__(device)
        self.verbose = verbose
        self._dense = TorchEngine(device)

    @staticmethod
    def _factors(parameters: MixtureParameters, dtype):
        """Per-component whitening factors, in the samples' dtype.

        Returns
        -------
        factors : torch.Tensor
            (n_components, D * D): ``U_j^T`` row-major, for 'full' and 'tied';
            (n_components, D): the precisions' square roots, for 'diag' and
            'spherical'.
        """
        factor = parameters.precisions_cholesky
        n_components, n_features = parameters.n_components, parameters.n_features
        if parameters.covariance_type == "tied":
            factor = factor.expand(n_components, n_features, n_features)
        if parameters.covariance_type in ("full", "tied"):
            return factor.mT.reshape(n_components, n_features * n_features).to(dtype)
        if parameters.covariance_type == "spherical":
            factor = factor[:, None].expand(n_components, n_features)
        return factor.contiguous().to(dtype)

    def _log_joint(self, X, parameters):
        """``log W_j + log N(x_i | mu_j, Sigma_j)`` as a symbolic (i, j) LazyTensor.

        Also returns the key that identifies its compiled formula.
        """
        LazyTensor, _ = _keops(self.verbose)
        dtype = X.dtype
        x = LazyTensor(X[:, None, :])
        means = LazyTensor(parameters.means.to(dtype)[None, :, :])
        factors = LazyTensor(self._factors(parameters, dtype)[None, :, :])
        constants = LazyTensor(log_normalisers(parameters).to(dtype)[None, :, None])
        if parameters.covariance_type in ("full", "tied"):
            # The whitened form U^T (x - mu): measured the fastest accurate
            # formula on the CPU (docs/maths.rst, section 7).
            whitened = factors.matvecmult(x - means)
        else:
            whitened = factors * (x - means)
        family = "full" if parameters.covariance_type in ("full", "tied") else "diag"
        key = (family, X.shape[1], str(dtype), X.device.type)
        return constants - 0.5 * whitened.sqnorm2(), key

    def _reduce(self, key, reduction):
        with _first_compile_lock(key):
            return reduction()

    def _log_density(self, X, parameters):
        log_joint, key = self._log_joint(X, parameters)
        return self._reduce((*key, "logsumexp"), lambda: log_joint.logsumexp(dim=1))[
            :, 0
        ]

    def score_samples(self, X, parameters):
        with torch.no_grad():
            log_density = self._log_density(X, parameters)
        far = ~torch.isfinite(log_density)
        if far.any():
            # Far from every component the whitened distances overflow and
            # the log-sum-exp of -inf terms is NaN; such rows take the exact
            # path, as in the torch engine.
            log_density[far] = far_sample_posteriors(X[far], parameters)[0].to(
                log_density.dtype
            )
        return log_density

    def log_responsibilities(self, X, parameters):
        # The result is n_samples x n_components itself: the dense engine
        # computes it chunk by chunk.
        return self._dense.log_responsibilities(X, parameters)

    def most_likely_component(self, X, parameters):
        log_joint, key = self._log_joint(X, parameters)
        with torch.no_grad():
            peak, labels = self._reduce(
                (*key, "max_argmax"), lambda: log_joint.max_argmax(dim=1)
            )
        labels = labels[:, 0].long()
        far = ~torch.isfinite(peak[:, 0])
        if far.any():
            # Past the dtype's range every term is -inf or NaN and the argmax
            # is arbitrary; the exact path knows the limit.
            labels[far] = far_sample_posteriors(X[far], parameters)[2]
        return labels

    def statistics(self, X, sample_weight, parameters):
        LazyTensor, _ = _keops(self.verbose)
        covariance_type = parameters.covariance_type
        n_features = parameters.n_features
        center = mixture_center(parameters, X.dtype)
        with torch.no_grad():
            log_density = self._log_density(X, parameters)
            log_joint, key = self._log_joint(X, parameters)
            shifted = X - center.to(X.dtype)
            xc = LazyTensor(shifted[:, None, :])
            ones = LazyTensor(torch.ones_like(X[:, :1])[:, None, :])
            second = (
                xc.tensorprod(xc) if covariance_type in ("full", "tied") else xc * xc
            )
            features = ones.concat(xc).concat(second)
            weight = LazyTensor((sample_weight / 1.0)[:, None, None])
            responsibility = (log_joint - LazyTensor(log_density[:, None, None])).exp()
            moments = self._reduce(
                (*key, "moments"),
                lambda: (responsibility * weight * features).sum(dim=0),
            ).to(torch.float64)
            log_likelihood = (sample_weight * log_density).sum(dtype=torch.float64)
        return SufficientStatistics(
            moments=_pack(moments, covariance_type, n_features),
            center=center,
            log_likelihood=float(log_likelihood),
            total_weight=float(sample_weight.sum(dtype=torch.float64)),
        )


def _pack(moments, covariance_type, n_features):
    """KeOps' ``(1, x, x x^T or x^2)`` sums in the torch engine's packed layout.

    Parameters
    ----------
    moments : torch.Tensor of shape (n_components, 1 + D + D*D) or (.., 1 + 2D)

    Returns
    -------
    torch.Tensor of shape (n_components, n_moment_features)
    """
    head = moments[:, : 1 + n_features]
    second = moments[:, 1 + n_features :]
    if covariance_type in ("full", "tied"):
        rows, cols = torch.triu_indices(n_features, n_features, device=moments.device)
        second = second.reshape(-1, n_features, n_features)[:, rows, cols]
    elif covariance_type == "spherical":
        second = second.sum(dim=1, keepdim=True)
    return torch.cat((head, second), dim=1)
