"""The dense PyTorch engine: matmuls over chunks of samples.

A chunk's ``chunk x n_components`` block is the only large temporary, and its
size is bounded by ``memory_budget``, so memory does not grow with the number
of samples. Log-densities are ``phi(x) @ theta`` (see :mod:`sparse_gmm._moments`),
so both passes of an EM iteration run at matmul speed.
"""

from __future__ import annotations

import torch

from .._gaussian import MixtureParameters
from .._moments import log_density_coefficients, moment_features, n_moment_features
from ._base import Engine, SufficientStatistics, mixture_center


class TorchEngine(Engine):
    """Dense torch engine, on CPU or CUDA.

    Parameters
    ----------
    device : torch.device
    memory_budget : int, default=64 MiB
        Bytes that one chunk's temporaries may take; sets the chunk length.
    """

    name = "torch"

    def __init__(self, device="cpu", memory_budget=64 * 2**20):
        super().__init__(device)
        self.memory_budget = memory_budget

    def _chunks(self, X, parameters: MixtureParameters):
        """Yield ``(rows, phi, log_joint)`` for consecutive chunks of samples.

        ``log_joint[i, j] = log W_j + log N(x_i | mu_j, Sigma_j)``, of shape
        (chunk, n_components), in the dtype of ``X``.
        """
        center = mixture_center(parameters, X.dtype)
        theta = log_density_coefficients(parameters, center).to(X.dtype)
        shift = center.to(X.dtype)
        width = n_moment_features(parameters.covariance_type, parameters.n_features)
        # phi, the log-joint block and the responsibilities live at once.
        per_row = X.element_size() * (width + 2 * parameters.n_components + 2)
        chunk = max(1, self.memory_budget // per_row)
        for start in range(0, X.shape[0], chunk):
            rows = slice(start, start + chunk)
            phi = moment_features(X[rows] - shift, parameters.covariance_type)
            yield rows, phi, phi @ theta

    def score_samples(self, X, parameters):
        out = X.new_empty(X.shape[0])
        for rows, _, log_joint in self._chunks(X, parameters):
            out[rows] = torch.logsumexp(log_joint, dim=1)
        return out

    def log_responsibilities(self, X, parameters):
        out = X.new_empty((X.shape[0], parameters.n_components))
        for rows, _, log_joint in self._chunks(X, parameters):
            out[rows] = log_joint - torch.logsumexp(log_joint, dim=1, keepdim=True)
        return out

    def most_likely_component(self, X, parameters):
        out = torch.empty(X.shape[0], dtype=torch.int64, device=X.device)
        for rows, _, log_joint in self._chunks(X, parameters):
            out[rows] = log_joint.argmax(dim=1)
        return out

    def statistics(self, X, sample_weight, parameters):
        width = n_moment_features(parameters.covariance_type, parameters.n_features)
        moments = torch.zeros(
            (parameters.n_components, width), dtype=torch.float64, device=X.device
        )
        log_likelihood = torch.zeros((), dtype=torch.float64, device=X.device)
        for rows, phi, log_joint in self._chunks(X, parameters):
            # One exp per pair: the shifted exponentials give both the
            # log-sum-exp and, rescaled, the responsibilities.
            peak = log_joint.amax(dim=1, keepdim=True)
            resp = log_joint.sub_(peak).exp_()
            total = resp.sum(dim=1, keepdim=True)
            weight = sample_weight[rows, None]
            resp.mul_(weight / total)
            moments += (resp.T @ phi).to(torch.float64)
            log_density = peak + torch.log(total)
            log_likelihood += (weight * log_density).sum(dtype=torch.float64)
        return SufficientStatistics(
            moments=moments,
            center=mixture_center(parameters, X.dtype),
            log_likelihood=float(log_likelihood),
            total_weight=float(sample_weight.sum(dtype=torch.float64)),
        )
