"""The objective every solver minimises."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SparseObjective:
    """``F = -mean log-likelihood + (s / M) sum_j phi(W_j) + sum_j R(Sigma_j)``.

    Parameters
    ----------
    sparsity : float
        ``s >= 0``; zero (and no covariance prior) is plain maximum likelihood.
    prior : object
        A prior with ``value(weights)`` and ``derivative(weights)``
        (see :mod:`sparse_gmm.penalties`).
    n_components_initial : int
        ``M``, the number of components the fit started with. It stays fixed
        as components are pruned, so pruning never rescales the penalty.
    covariance_prior : CovariancePrior or None, default=None
        The inverse-Wishart prior's penalty ``R`` on the covariances
        (:mod:`sparse_gmm._covariance_prior`); None adds nothing.
    min_count : float, default=0.0
        A component whose expected sample count (its summed, weighted
        responsibilities) falls below this is annihilated: it cannot
        support its parameters (Figueiredo and Jain's rule).
    """

    sparsity: float
    prior: object
    n_components_initial: int
    covariance_prior: object = None
    min_count: float = 0.0

    @property
    def is_maximum_likelihood(self) -> bool:
        """Whether ``F`` is the negative mean log-likelihood, unpenalised."""
        return self.sparsity == 0 and self.covariance_prior is None

    @property
    def scale(self) -> float:
        return self.sparsity / self.n_components_initial

    def penalty(self, weights):
        """``(s / M) * sum_j phi(W_j)``, a torch scalar for torch weights."""
        if self.sparsity == 0:
            return 0.0 * weights.sum()
        return self.scale * self.prior.value(weights)

    def covariance_penalty(self, parameters):
        """``sum_j R(Sigma_j)``: a torch scalar, differentiable, or 0.0."""
        if self.covariance_prior is None:
            return 0.0
        return self.covariance_prior.penalty(
            parameters.precisions_cholesky, parameters.covariance_type
        )

    def value(self, mean_log_likelihood, parameters) -> float:
        """``F`` at ``parameters`` from their mean log-likelihood."""
        weights = parameters.weights.detach().cpu().numpy().astype(np.float64)
        return (
            -mean_log_likelihood
            + float(self.penalty(weights))
            + float(self.covariance_penalty(parameters))
        )

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

    def without_sparsity(self) -> SparseObjective:
        """The same objective with ``s = 0``: the walk down's (section 10.4).

        The covariance prior and the annihilation count stay; the sparsity
        has proposed the size, and its shrinkage of the weights would bias
        the criterion that now chooses it.
        """
        return SparseObjective(
            0.0,
            self.prior,
            self.n_components_initial,
            self.covariance_prior,
            self.min_count,
        )

    def relaxed(self) -> SparseObjective:
        """Maximum likelihood over the survivors: the relaxed refit's objective.

        Both priors have done their job once the components are chosen: the
        sparsity penalty shrinks the survivors' weights and the covariance
        prior their likelihood. The annihilation count stays, so that no
        component the data cannot support is refitted without its prior.
        """
        return SparseObjective(
            0.0,
            self.prior,
            self.n_components_initial,
            None,
            self.min_count,
        )
