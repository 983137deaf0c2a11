"""The objective every solver minimises."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SparseObjective:
    """``F = -mean log-likelihood + (sparsity / M) * sum_j phi(W_j)``.

    Parameters
    ----------
    sparsity : float
        ``s >= 0``; zero is plain maximum likelihood.
    prior : object
        A prior with ``value(weights)`` and ``derivative(weights)``
        (see :mod:`sparse_gmm.penalties`).
    n_components_initial : int
        ``M``, the number of components the fit started with. It stays fixed
        as components are pruned, so pruning never rescales the penalty.
    """

    sparsity: float
    prior: object
    n_components_initial: int

    @property
    def scale(self) -> float:
        return self.sparsity / self.n_components_initial

    def penalty(self, weights):
        """``(s / M) * sum_j phi(W_j)``, a torch scalar for torch weights."""
        if self.sparsity == 0:
            return 0.0 * weights.sum()
        return self.scale * self.prior.value(weights)

    def value(self, mean_log_likelihood, weights) -> float:
        """``F`` from the mean log-likelihood and the weights (NumPy)."""
        weights = np.asarray(weights, dtype=np.float64)
        return -mean_log_likelihood + float(self.penalty(weights))

    def tangent_slopes(self, weights):
        """``c_j = (s / M) * phi'(W_j)``: the MM majoriser's linear weights.

        Parameters
        ----------
        weights : numpy.ndarray of shape (n_components,)

        Returns
        -------
        numpy.ndarray of shape (n_components,)
        """
        weights = np.asarray(weights, dtype=np.float64)
        if self.sparsity == 0:
            return np.zeros_like(weights)
        return self.scale * np.asarray(self.prior.derivative(weights), np.float64)
