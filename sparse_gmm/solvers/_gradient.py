"""Gradient solvers: Adam (the KeOps tutorial's method) and L-BFGS, through autograd."""

from __future__ import annotations

import math

import numpy as np
import torch

from .._gaussian import MixtureParameters, covariances_from_cholesky
from .._objective import SparseObjective
from ..engines import Engine
from ._base import FitPath, FitResult, ProgressReport, Solver


def _unconstrained(parameters: MixtureParameters):
    """Free tensors: weight logits, means, and the precision factors.

    As in the KeOps tutorial, the precision is ``P = A A^T`` with ``A`` free;
    here ``A`` is kept upper triangular ('full', 'tied') or diagonal ('diag',
    'spherical'), which loses nothing (any ``P`` has such a factor) and makes
    ``log det P = 2 sum log|A_dd|`` exact in any dimension. The factor is
    optimised on its own scale, not through a logarithm, so Adam's step size
    means what it means in the tutorial.

    Returns
    -------
    dict of str to torch.Tensor
    """
    variables = {
        "logits": torch.log(parameters.weights),
        "means": parameters.means,
        "factor": parameters.precisions_cholesky,
    }
    return {
        # Contiguous: L-BFGS flattens gradients with view().
        name: tensor.detach().contiguous().clone().requires_grad_(True)
        for name, tensor in variables.items()
    }


def _mixture(variables, covariance_type, active) -> MixtureParameters:
    """The mixture that the free tensors describe (differentiable).

    A factor's sign is free; it is normalised to the positive diagonal of the
    Cholesky convention (flipping a column of ``A`` leaves ``A A^T`` alone).
    """
    factor = variables["factor"]
    if covariance_type in ("full", "tied"):
        factor = torch.triu(factor)
        signs = torch.sign(torch.diagonal(factor, dim1=-2, dim2=-1)).detach()
        factor = factor * signs.unsqueeze(-2)
    else:
        factor = torch.abs(factor)
    return MixtureParameters(
        weights=torch.softmax(variables["logits"], dim=0),
        means=variables["means"],
        covariances=None,
        precisions_cholesky=factor,
        covariance_type=covariance_type,
        active=active,
    )


class GradientSolver(Solver):
    """Minimise the sparse objective by Adam or L-BFGS on free parameters.

    Any differentiable prior works. Components whose weight falls below
    ``prune_threshold`` are removed, with their optimiser state (Adam's
    moments are sliced; L-BFGS restarts its history, which no longer fits).

    Parameters
    ----------
    optimizer : {'adam', 'lbfgs'}
    learning_rate : float
        Adam's step size; L-BFGS uses a strong-Wolfe line search instead.
    max_iter : int
    tol : float
        The fit stops when the objective has changed by less than ``tol`` in
        ``n_iter_no_change`` consecutive iterations (an L-BFGS line search can
        take a tiny step and then move on, so one small change is not enough).
    prune_threshold : float
    n_iter_no_change : int, default=10
    """

    def __init__(
        self,
        *,
        optimizer,
        learning_rate,
        max_iter,
        tol,
        prune_threshold,
        n_iter_no_change=10,
    ):
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.prune_threshold = prune_threshold
        self.n_iter_no_change = n_iter_no_change

    def _make_optimizer(self, tensors):
        if self.optimizer == "adam":
            return torch.optim.Adam(tensors, lr=self.learning_rate)
        # One outer iteration is one L-BFGS step; its line search may take
        # up to 25 evaluations (torch's default max_eval would allow one).
        return torch.optim.LBFGS(
            tensors, lr=1.0, max_iter=1, max_eval=25, line_search_fn="strong_wolfe"
        )

    def _prune(self, variables, optimizer, keep, covariance_type):
        """Drop components where ``keep`` is False, and their optimiser state."""
        index = torch.as_tensor(np.flatnonzero(keep), device=variables["means"].device)
        per_component = covariance_type != "tied"
        new_variables = {}
        for name, tensor in variables.items():
            sliced = per_component or name in ("logits", "means")
            new_variables[name] = (
                (tensor[index] if sliced else tensor).detach().requires_grad_(True)
            )
        new_optimizer = self._make_optimizer(list(new_variables.values()))
        if self.optimizer == "adam":
            for name, tensor in variables.items():
                state = optimizer.state.get(tensor)
                if not state:
                    continue
                sliced = per_component or name in ("logits", "means")
                new_optimizer.state[new_variables[name]] = {
                    key: (
                        value[index]
                        if sliced and torch.is_tensor(value) and value.dim() > 0
                        else value
                    )
                    for key, value in state.items()
                }
        return new_variables, new_optimizer

    def solve(
        self,
        X,
        sample_weight,
        initial: MixtureParameters,
        engine: Engine,
        objective: SparseObjective,
        report: ProgressReport,
        previous_lower_bound: float = -math.inf,
    ) -> FitResult:
        """Run the optimiser from ``initial`` (same contract as MMEMSolver).

        ``previous_lower_bound`` is unused: convergence needs a run of
        ``n_iter_no_change`` small changes within this run.
        """
        covariance_type = initial.covariance_type
        total_weight = engine.total_weight(sample_weight)
        variables = _unconstrained(initial)
        active = initial.active
        optimizer = self._make_optimizer(list(variables.values()))

        def closure():
            optimizer.zero_grad()
            mixture = _mixture(variables, covariance_type, active)
            log_likelihood = engine.log_likelihood(X, sample_weight, mixture)
            value = -log_likelihood / total_weight + objective.penalty(mixture.weights)
            value.backward()
            return value

        value = float(closure().detach())
        self._check_finite(value)
        stalled, converged = 0, False
        path = FitPath(report)
        for _ in range(self.max_iter):
            optimizer.step(closure)
            weights = torch.softmax(variables["logits"].detach(), dim=0).cpu().numpy()
            keep = weights >= self.prune_threshold
            keep[np.argmax(weights)] = True
            if not keep.all():
                variables, optimizer = self._prune(
                    variables, optimizer, keep, covariance_type
                )
                active = active[keep]
            previous, value = value, float(closure().detach())
            self._check_finite(value)
            path.record(-previous, value, len(active))
            # Adam's objective can rise for a while (its first steps are of
            # size learning_rate whatever the gradient): what ends the fit is
            # a run of small changes, not the lack of a new best.
            stalled = (
                stalled + 1 if keep.all() and abs(previous - value) < self.tol else 0
            )
            if stalled >= self.n_iter_no_change:
                converged = True
                break

        with torch.no_grad():
            mixture = _mixture(variables, covariance_type, active)
            factor = mixture.precisions_cholesky.detach()
            parameters = MixtureParameters(
                weights=mixture.weights.detach(),
                means=mixture.means.detach(),
                covariances=covariances_from_cholesky(factor, covariance_type),
                precisions_cholesky=factor,
                covariance_type=covariance_type,
                active=active,
            )
        return path.result(
            parameters,
            value,
            converged,
            # The closure's value is minus it plus the weights' penalty.
            -(value - float(objective.penalty(parameters.weights))),
        )

    @staticmethod
    def _check_finite(value):
        if not np.isfinite(value):
            raise ValueError(
                f"The objective became {value} during the gradient fit: lower "
                "learning_rate, scale the input data, or use solver='em'."
            )
