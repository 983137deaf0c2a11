"""The dense PyTorch engine: matmuls over chunks of samples.

Log-densities are ``phi(x) @ theta`` (see :mod:`sparse_gmm._moments`), so
both passes of an EM iteration run at matmul speed. A chunk's ``n_components
x chunk`` blocks are the only temporaries that grow with the number of
components, and ``memory_budget`` bounds them.

Two layout choices, each measured on the CPU (one thread, float64):

* Blocks are component-major, ``theta^T @ phi^T``: the maxima and sums over
  components then run along contiguous rows of samples, vectorised, rather
  than over rows a few components wide, and MKL's matmul with the long
  dimension last is faster. The E-step took 0.5-0.85 times as long as with
  sample-major blocks, the most with few components (N = 200,000, M = 6:
  20 ms against 12).
* On the CPU the default budget keeps a chunk's blocks in the processor's
  caches: the exponentials, maxima and sums between the two matmuls each
  read and write the whole block. At N = 200,000, M = 100, D = 4 blocks of
  64 MiB made an iteration 1.2-1.9 times slower than blocks of 8-16 MiB.

The features ``phi`` of all samples are kept between a fit's iterations,
stored feature-major, where they take at most ``feature_cache_bytes``;
beyond that, and in predictions (one pass, which gain nothing from keeping
them), they are computed chunk by chunk, and memory does not grow with the
number of samples.
"""

from __future__ import annotations

import math

import torch

from .._gaussian import MixtureParameters, far_sample_posteriors
from .._moments import log_density_coefficients, moment_features, n_moment_features
from ._base import Engine, SufficientStatistics, mixture_center


def _shifted_exp(log_joint):
    """``exp(log_joint - max_j log_joint)`` in place, and the maxima per sample.

    Exponents are floored just above the dtype's smallest normal number:
    terms that small do not change a sum whose largest term is one, and
    subnormal numbers slow every later operation several times over.

    Parameters
    ----------
    log_joint : torch.Tensor of shape (n_components, chunk)

    Returns
    -------
    scaled : torch.Tensor of shape (n_components, chunk)
        ``log_joint`` itself, overwritten.
    peak : torch.Tensor of shape (1, chunk)
    """
    peak = log_joint.amax(dim=0, keepdim=True)
    return log_joint.sub_(peak).clamp_(min=_exp_floor(log_joint.dtype)).exp_(), peak


def _exp_floor(dtype):
    """The smallest exponent whose ``exp`` is a normal number of ``dtype``."""
    return math.log(torch.finfo(dtype).tiny) + 1.0


def _logsumexp(log_joint):
    """Log-sum-exp over the components of a block it may overwrite; shape (chunk,)."""
    scaled, peak = _shifted_exp(log_joint)
    return (peak + torch.log(scaled.sum(dim=0, keepdim=True)))[0]


class _CachedFeatures:
    """``phi(X - center)^T`` of one whole sample tensor, and what it is valid for.

    It holds ``X`` itself, so that the memory cannot be freed and reused by
    another tensor of the same address while the cache lives; ``X``'s version
    counter tells whether it was written in place since.
    """

    def __init__(self, X, covariance_type, center, phi):
        # center: float64, representable in X's dtype. phi: feature-major,
        # (n_moment_features, n_samples).
        self.X = X
        self.version = X._version
        self.covariance_type = covariance_type
        self.center = center
        self.phi = phi
        # (A tenth of the root-mean-square distance to the centre) squared.
        self.radius2 = 0.01 * float(torch.mean(torch.sum((X - center) ** 2, dim=1)))

    def matches(self, X, covariance_type):
        return (
            X is self.X
            and X._version == self.version
            and covariance_type == self.covariance_type
        )


class TorchEngine(Engine):
    """Dense torch engine, on CPU or CUDA.

    Parameters
    ----------
    device : torch.device
    memory_budget : int or None, default=None
        Bytes that one chunk's temporaries may take; sets the chunk length.
        None: 16 MiB on the CPU, where a chunk should stay in cache, and
        64 MiB on CUDA, where fewer, larger kernels pay off.
    feature_cache_bytes : int, default=256 MiB
        The largest ``phi`` of all samples that is kept between passes.
    """

    name = "torch"

    def __init__(self, device="cpu", memory_budget=None, feature_cache_bytes=2**28):
        super().__init__(device)
        if memory_budget is None:
            memory_budget = (64 if self.device.type == "cuda" else 16) * 2**20
        self.memory_budget = memory_budget
        self.feature_cache_bytes = feature_cache_bytes
        self._features = None

    def _chunk_length(self, X, n_moment_features, n_components):
        # phi, the log-joint block and the responsibilities live at once.
        per_row = X.element_size() * (n_moment_features + 2 * n_components + 2)
        return max(1, self.memory_budget // per_row)

    def _caches_features(self, X, covariance_type):
        """Whether ``phi`` of all of ``X`` is small enough to keep."""
        n_features = n_moment_features(covariance_type, X.shape[1])
        return X.shape[0] * n_features * X.element_size() <= self.feature_cache_bytes

    def _center(self, X, parameters):
        """The shift of the samples: the mixture's mean, or a cached one near it.

        An iteration moves the mixture's mean a little, and every move would
        recompute ``phi`` for all samples. Where that ``phi`` is small enough
        to keep, it is kept, with its centre, for as long as the mixture's mean
        stays within a tenth of the samples' root-mean-square distance from
        that centre: the expanded quadratic form then loses no more to
        cancellation than it would at the mean itself (module docstring of
        :mod:`sparse_gmm._moments`).
        """
        center = mixture_center(parameters, X.dtype)
        cached = self._features
        if (
            cached is not None
            and cached.matches(X, parameters.covariance_type)
            and float(torch.sum((center - cached.center) ** 2)) <= cached.radius2
        ):
            return cached.center
        return center

    def _phi(self, X, rows, shift, covariance_type, cache):
        """``phi(X[rows] - shift)^T``, from the cache where it was computed.

        ``cache``: whether to compute and keep ``phi`` of all of ``X`` when it
        is not kept yet. A fit's passes do; a prediction, one pass, only
        reads what a fit kept, so that its memory stays a chunk's.

        Returns
        -------
        torch.Tensor of shape (n_moment_features, chunk)
        """
        cached = self._features
        center = shift.to(torch.float64)
        kept = (
            cached is not None
            and cached.matches(X, covariance_type)
            and torch.equal(cached.center, center)
        )
        if not kept and not (cache and self._caches_features(X, covariance_type)):
            return moment_features(X[rows] - shift, covariance_type).T.contiguous()
        if not kept:
            phi = moment_features(X - shift, covariance_type).T.contiguous()
            cached = self._features = _CachedFeatures(X, covariance_type, center, phi)
        return cached.phi[:, rows]

    def _chunks(self, X, theta, center, covariance_type, cache=False):
        """Yield ``(rows, phi, log_joint)`` for consecutive chunks of samples.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
        theta : torch.Tensor of shape (n_moment_features, n_components)
            In the dtype of ``X``.
        center : torch.Tensor of shape (n_features,)
        covariance_type : str
        cache : bool
            Whether to keep ``phi`` of all samples (see :meth:`_phi`).

        Yields
        ------
        rows : slice
        phi : torch.Tensor of shape (n_moment_features, chunk)
        log_joint : torch.Tensor of shape (n_components, chunk)
            ``log W_j + log N(x_i | mu_j, Sigma_j)``, component-major.
        """
        shift = center.to(X.dtype)
        chunk = self._chunk_length(X, theta.shape[0], theta.shape[1])
        coefficients = theta.T.contiguous()
        for start in range(0, X.shape[0], chunk):
            rows = slice(start, start + chunk)
            phi = self._phi(X, rows, shift, covariance_type, cache)
            yield rows, phi, coefficients @ phi

    def _coefficients(self, X, parameters: MixtureParameters):
        """``(theta, center)``: float64 ``theta``, differentiable in the parameters."""
        center = self._center(X, parameters).detach()
        return log_density_coefficients(parameters, center), center

    def _log_joint_chunks(self, X, parameters):
        theta, center = self._coefficients(X, parameters)
        return self._chunks(
            X, theta.detach().to(X.dtype), center, parameters.covariance_type
        )

    @staticmethod
    def _far_rows(X, rows, row_values, parameters):
        """The chunk's rows whose per-row result is not finite, recomputed.

        A non-finite log-density or peak means that the expanded quadratic
        form overflowed (a sample far from every component), which would
        otherwise come out as NaN; such rows take the slow exact path of
        :func:`~sparse_gmm._gaussian.far_sample_posteriors`.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
        rows : slice
            The chunk.
        row_values : torch.Tensor of shape (chunk,)
            The chunk's log-densities or peaks.
        parameters : MixtureParameters

        Returns
        -------
        index : torch.Tensor of shape (n_far,) or None
            Rows of ``X``; None when every row is finite.
        posteriors : tuple or None
            ``far_sample_posteriors`` of those rows (float64).
        """
        far = ~torch.isfinite(row_values)
        if not bool(far.any()):
            return None, None
        index = torch.nonzero(far)[:, 0] + rows.start
        return index, far_sample_posteriors(X[index], parameters)

    def score_samples(self, X, parameters):
        out = X.new_empty(X.shape[0])
        for rows, _, log_joint in self._log_joint_chunks(X, parameters):
            out[rows] = _logsumexp(log_joint)
            index, far = self._far_rows(X, rows, out[rows], parameters)
            if index is not None:
                out[index] = far[0].to(out.dtype)
        return out

    def log_responsibilities(self, X, parameters):
        out = X.new_empty((X.shape[0], parameters.n_components))
        for rows, _, log_joint in self._log_joint_chunks(X, parameters):
            # (log_joint - peak) - log(sum exp(...)), not log_joint - log p(x):
            # far from the data |log p(x)| dwarfs the differences between
            # components, and subtracting it would round them away (rows that
            # then sum to 2).
            peak = log_joint.amax(dim=0, keepdim=True)
            shifted = log_joint.sub_(peak)
            out[rows] = shifted.T
            scaled = shifted.clamp_(min=_exp_floor(shifted.dtype)).exp_()
            out[rows] -= torch.log(scaled.sum(dim=0, keepdim=True)).T
            index, far = self._far_rows(X, rows, peak[0], parameters)
            if index is not None:
                out[index] = far[1].to(out.dtype)
        return out

    def most_likely_component(self, X, parameters):
        out = torch.empty(X.shape[0], dtype=torch.int64, device=X.device)
        for rows, _, log_joint in self._log_joint_chunks(X, parameters):
            peak, out[rows] = log_joint.max(dim=0)
            index, far = self._far_rows(X, rows, peak, parameters)
            if index is not None:
                out[index] = far[2]
        return out

    def _accumulate(self, X, sample_weight, theta, center, covariance_type):
        """E-step sums for float64 ``theta``: ``(moments, sum_i w_i log p(x_i))``."""
        moments = torch.zeros(
            (theta.shape[1], n_moment_features(covariance_type, X.shape[1])),
            dtype=torch.float64,
            device=X.device,
        )
        log_likelihood = torch.zeros((), dtype=torch.float64, device=X.device)
        chunks = self._chunks(X, theta.to(X.dtype), center, covariance_type, cache=True)
        for rows, phi, log_joint in chunks:
            # One exp per pair: the shifted exponentials give both the
            # log-sum-exp and, rescaled, the responsibilities.
            resp, peak = _shifted_exp(log_joint)
            total = resp.sum(dim=0, keepdim=True)
            weight = sample_weight[None, rows]
            resp.mul_(weight / total)
            moments += (resp @ phi.T).to(torch.float64)
            log_density = peak + torch.log(total)
            log_likelihood += (weight * log_density).sum(dtype=torch.float64)
        return moments, log_likelihood

    def statistics(self, X, sample_weight, parameters):
        theta, center = self._coefficients(X, parameters)
        moments, log_likelihood = self._accumulate(
            X, sample_weight, theta.detach(), center, parameters.covariance_type
        )
        return SufficientStatistics(
            moments=moments,
            center=center,
            log_likelihood=float(log_likelihood),
            total_weight=float(sample_weight.sum(dtype=torch.float64)),
        )
