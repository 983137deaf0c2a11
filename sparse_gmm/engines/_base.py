"""What every compute engine provides: the passes over the samples that solvers need."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from .._gaussian import MixtureParameters
from .._moments import log_density_coefficients


@dataclass(frozen=True)
class SufficientStatistics:
    """The E-step's sums over samples, in a frame shifted by ``center``.

    Attributes
    ----------
    moments : torch.Tensor of shape (n_components, n_moment_features), float64
        ``sum_i w_i r_ij phi(x_i - center)``, see :mod:`sparse_gmm._moments`.
    center : torch.Tensor of shape (n_features,), float64
    log_likelihood : float
        ``sum_i w_i log p(x_i)``.
    total_weight : float
        ``sum_i w_i``.
    """

    moments: torch.Tensor
    center: torch.Tensor
    log_likelihood: float
    total_weight: float

    @property
    def mean_log_likelihood(self) -> float:
        return self.log_likelihood / self.total_weight


def as_shared_tensor(array) -> torch.Tensor:
    """A CPU tensor on ``array``'s memory, writable or not, without a warning.

    A read-only array (a memmap, say) is shared rather than copied: engines
    never write into their inputs. ``torch.as_tensor`` would warn that it is
    not writable, and silencing that with ``warnings.catch_warnings`` is not
    thread-safe: it swaps the process's warning filters and ``showwarning``,
    so a fit in another thread could lose its warnings or record them in the
    wrong place. DLPack shares read-only memory without the warning.

    Parameters
    ----------
    array : array-like or torch.Tensor
        A tensor is returned as it is; anything else is copied only if it is
        not a C-contiguous NumPy array.

    Returns
    -------
    torch.Tensor
        Same shape and dtype.
    """
    if isinstance(array, torch.Tensor):
        return array
    array = np.ascontiguousarray(array)
    if array.flags.writeable:
        return torch.from_numpy(array)
    try:
        return torch.from_dlpack(array)
    except (BufferError, TypeError, RuntimeError):
        # NumPy before 2.1 exports no read-only memory through DLPack; torch
        # then warns, once per process, that the tensor must not be written.
        return torch.from_numpy(array)


def mixture_center(parameters: MixtureParameters, dtype: torch.dtype) -> torch.Tensor:
    """A shift close to the data: the mixture's mean, representable in ``dtype``.

    Rounding it to the samples' dtype first means that ``x - center`` is what
    the float64 coefficients assume, whatever the precision of ``x``.

    Parameters
    ----------
    parameters : MixtureParameters
    dtype : torch.dtype or numpy.dtype
        The samples' dtype (a Dask engine's samples carry a NumPy one).

    Returns
    -------
    torch.Tensor of shape (n_features,), float64
    """
    if not isinstance(dtype, torch.dtype):
        dtype = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
    center = parameters.weights.detach() @ parameters.means.detach()
    return center.to(dtype).to(torch.float64)


class _WeightedLogLikelihood(torch.autograd.Function):
    """``sum_i w_i log p(x_i)`` as a function of the coefficients ``theta``.

    Its gradient with respect to ``theta[:, j]`` is ``sum_i w_i r_ij phi(x_i)``,
    which is exactly the E-step's moments: the backward pass is the statistics
    pass that every engine already has, so no engine keeps a per-chunk graph
    or compiles a gradient formula.
    """

    @staticmethod
    def forward(ctx, theta, statistics):
        ctx.save_for_backward(statistics.moments)
        return torch.tensor(
            statistics.log_likelihood, dtype=torch.float64, device=theta.device
        )

    @staticmethod
    def backward(ctx, grad_output):
        (moments,) = ctx.saved_tensors
        return grad_output * moments.T, None


class Engine(ABC):
    """The primitives over all samples that the solvers and the estimator call.

    Samples are torch tensors of shape (n_samples, n_features) on the
    engine's device, float32 or float64; results come in the samples' dtype,
    except the statistics, which are float64 sums.

    Parameters
    ----------
    device : torch.device
    """

    name = "abstract"

    def __init__(self, device):
        self.device = torch.device(device)

    def as_tensor(self, array) -> torch.Tensor:
        """The array on this engine's device, without a copy where possible."""
        if isinstance(array, torch.Tensor):
            return array.to(self.device)
        return as_shared_tensor(array).to(self.device)

    def total_weight(self, sample_weight) -> float:
        """``sum_i w_i`` of samples as :meth:`as_tensor` returned them."""
        return float(sample_weight.sum(dtype=torch.float64))

    @abstractmethod
    def score_samples(self, X, parameters: MixtureParameters) -> torch.Tensor:
        """Log-density ``log p(x_i)`` of each sample, shape (n_samples,)."""

    @abstractmethod
    def log_responsibilities(self, X, parameters: MixtureParameters) -> torch.Tensor:
        """``log r_ij``, shape (n_samples, n_components)."""

    def responsibilities(self, X, parameters: MixtureParameters) -> torch.Tensor:
        """``r_ij``, shape (n_samples, n_components)."""
        # In place: the (n_samples, n_components) result is the one large
        # array, and a second one would double the memory of the call
        # (benchmarks/bench_predict_memory.py).
        return self.log_responsibilities(X, parameters).exp_()

    @abstractmethod
    def most_likely_component(self, X, parameters: MixtureParameters) -> torch.Tensor:
        """``argmax_j r_ij``, shape (n_samples,), int64."""

    def log_likelihood(self, X, sample_weight, parameters: MixtureParameters):
        """``sum_i w_i log p(x_i)``, differentiable in the parameters' tensors.

        The gradient flows through the log-density coefficients ``theta``
        (see :mod:`sparse_gmm._moments`); its value is the E-step's moments.

        Returns
        -------
        torch.Tensor
            A float64 scalar with a gradient for autograd.
        """
        with torch.no_grad():
            statistics = self.statistics(X, sample_weight, parameters)
        # theta in the frame of the moments, whichever centre the engine chose.
        theta = log_density_coefficients(parameters, statistics.center)
        return _WeightedLogLikelihood.apply(theta, statistics)

    @abstractmethod
    def statistics(
        self, X, sample_weight, parameters: MixtureParameters
    ) -> SufficientStatistics:
        """The E-step: responsibilities summed into :class:`SufficientStatistics`.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
        sample_weight : torch.Tensor of shape (n_samples,), same dtype as X
        parameters : MixtureParameters
        """
