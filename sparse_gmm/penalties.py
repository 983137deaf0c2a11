"""Sparsity penalties on the mixture weights.

The objective is ``F = -mean log-likelihood + (sparsity / M) * sum_j phi(W_j)``
with ``M`` the initial number of components. MM-EM majorises a concave,
increasing ``phi`` by its tangent, so a penalty provides its value and its
derivative.
"""

from __future__ import annotations

import numpy as np


class SqrtPenalty:
    """``phi(W) = sqrt(W)``, the KeOps tutorial's prior.

    Its slope is infinite at zero, so small weights shrink super-linearly
    under MM-EM (``W_new`` is about ``W^1.5``) and reach the pruning
    threshold in a few iterations.
    """

    name = "sqrt"

    def value(self, weights):
        """``sum_j sqrt(W_j)``.

        Parameters
        ----------
        weights : numpy.ndarray of shape (n_components,)

        Returns
        -------
        float
        """
        return float(np.sqrt(weights).sum())

    def derivative(self, weights):
        """``1 / (2 sqrt(W_j))`` for each component (inf at zero weight).

        Parameters
        ----------
        weights : numpy.ndarray of shape (n_components,)

        Returns
        -------
        numpy.ndarray of shape (n_components,)
        """
        with np.errstate(divide="ignore"):
            return 0.5 / np.sqrt(weights)
