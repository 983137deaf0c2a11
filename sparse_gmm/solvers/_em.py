"""MM-EM: expectation-maximisation with a majorised sparsity penalty, and pruning."""

from __future__ import annotations

import math

import numpy as np
import torch

from .._gaussian import MixtureParameters
from .._m_step import gaussian_components, mm_weights
from .._objective import SparseObjective
from ..engines import Engine, SufficientStatistics
from ._base import FitResult, ProgressReport

NON_FINITE_LIKELIHOOD = (
    "The log-likelihood became {value} during the fit: the data overflow the "
    "working precision or a component collapsed. Scale the input data or "
    "increase reg_covar (it is {reg_covar!r})."
)


class MMEMSolver:
    """Minimise the sparse objective by majorisation-minimisation EM.

    Each iteration is an E-step (one pass of the engine) and a closed-form
    M-step; the concave penalty is replaced by its tangent at the current
    weights, so ``F`` never increases (DESIGN.md, section 3.1). Components
    whose weight falls below ``prune_threshold`` are removed; should a removal
    raise ``F`` (possible without sparsity), it is undone and that component is
    never pruned again in this fit. An iteration that would raise ``F`` (the
    covariance update with ``reg_covar`` is not the exact minimiser, and
    rounding near a fixed point) ends the fit at the previous iterate, which
    ``loss_curve_`` then ends with.

    Parameters
    ----------
    max_iter : int
    tol : float
        Convergence when ``F`` changes by less than ``tol`` in an iteration
        that pruned nothing.
    reg_covar : float
    prune_threshold : float
    """

    def __init__(self, *, max_iter, tol, reg_covar, prune_threshold):
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.prune_threshold = prune_threshold

    def _evaluate(self, engine, X, sample_weight, parameters, objective):
        statistics = engine.statistics(X, sample_weight, parameters)
        mean_log_likelihood = statistics.mean_log_likelihood
        if not math.isfinite(mean_log_likelihood):
            raise ValueError(
                NON_FINITE_LIKELIHOOD.format(
                    value=mean_log_likelihood, reg_covar=self.reg_covar
                )
            )
        weights = parameters.weights.cpu().numpy()
        return statistics, objective.value(mean_log_likelihood, weights)

    def _m_step(self, statistics: SufficientStatistics, weights, keep, parameters):
        means, covariances, precisions_cholesky = gaussian_components(
            statistics, parameters.covariance_type, self.reg_covar, keep
        )
        kept = weights[keep]
        return MixtureParameters(
            weights=torch.as_tensor(
                kept / kept.sum(), dtype=torch.float64, device=means.device
            ),
            means=means,
            covariances=covariances,
            precisions_cholesky=precisions_cholesky,
            covariance_type=parameters.covariance_type,
            active=parameters.active[keep],
        )

    def solve(
        self,
        X,
        sample_weight,
        initial: MixtureParameters,
        engine: Engine,
        objective: SparseObjective,
        report: ProgressReport,
    ) -> FitResult:
        """Run MM-EM from ``initial``.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
        sample_weight : torch.Tensor of shape (n_samples,)
        initial : MixtureParameters
        engine : Engine
        objective : SparseObjective
        report : ProgressReport

        Returns
        -------
        FitResult
        """
        parameters = initial
        statistics, value = self._evaluate(
            engine, X, sample_weight, parameters, objective
        )
        never_prune = np.zeros(objective.n_components_initial, dtype=bool)
        loss_curve, n_components_curve = [], []
        converged = False
        for n_iter in range(1, self.max_iter + 1):
            old_weights = parameters.weights.cpu().numpy()
            mass = statistics.moments[:, 0].cpu().numpy()
            weights = mm_weights(
                mass / mass.sum(), objective.tangent_slopes(old_weights)
            )
            keep = (weights >= self.prune_threshold) | never_prune[parameters.active]
            keep[np.argmax(weights)] = True
            candidate = self._m_step(statistics, weights, keep, parameters)
            new_statistics, new_value = self._evaluate(
                engine, X, sample_weight, candidate, objective
            )
            pruned = not keep.all()
            if pruned and new_value > value:
                never_prune[parameters.active[~keep]] = True
                keep[:] = True
                pruned = False
                candidate = self._m_step(statistics, weights, keep, parameters)
                new_statistics, new_value = self._evaluate(
                    engine, X, sample_weight, candidate, objective
                )
            if new_value > value:
                # reg_covar makes the covariance update inexact (as in
                # scikit-learn), so near a fixed point an iteration can raise F
                # by about reg_covar; rounding can too. No progress is left:
                # stop at the better, previous iterate.
                converged = True
                break
            change = value - new_value
            parameters, statistics, value = candidate, new_statistics, new_value
            loss_curve.append(value)
            n_components_curve.append(parameters.n_components)
            report.iteration(n_iter, value, parameters.n_components)
            if not pruned and abs(change) < self.tol:
                converged = True
                break
        return FitResult(
            parameters=parameters,
            objective=value,
            mean_log_likelihood=statistics.mean_log_likelihood,
            n_iter=len(loss_curve),
            converged=converged,
            loss_curve=np.asarray(loss_curve, dtype=np.float64),
            n_components_curve=np.asarray(n_components_curve, dtype=np.int64),
        )
