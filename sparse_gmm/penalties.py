"""Sparsity priors on the mixture weights.

The objective is ``F = -mean log-likelihood + (sparsity / M) * sum_j phi(W_j)``
with ``M`` the initial number of components. A prior is a small object with
two methods:

``value(weights)``
    ``sum_j phi(W_j)``, with ``phi(0) = 0`` so that a pruned component and a
    zero weight cost the same. It receives a NumPy array or a torch tensor and must
    return a scalar of the same kind, written with operations that torch can
    differentiate (``weights ** 0.5``, ``torch.log``...): the gradient solvers
    ('adam', 'lbfgs') differentiate it.
``derivative(weights)``
    ``phi'(W_j)`` for each component, on a NumPy array (``inf`` allowed at 0).

MM-EM ('em') replaces ``phi`` by its tangent at the current weights, which
bounds the objective from above only if ``phi`` is concave; the prior must
also be increasing to favour sparsity. :func:`check_mm_prior` checks both.
The gradient solvers accept any differentiable prior.

Example: a power prior ``phi(W) = W ** p`` with ``0 < p < 1``::

    class PowerPrior:
        def __init__(self, power=0.3):
            self.power = power

        def value(self, weights):
            return (weights**self.power).sum()

        def derivative(self, weights):
            return self.power * weights ** (self.power - 1)

    SparseGaussianMixture(prior=PowerPrior(0.3))
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["LogPrior", "SqrtPrior", "check_mm_prior", "resolve_prior"]


def _log(values):
    return torch.log(values) if isinstance(values, torch.Tensor) else np.log(values)


class SqrtPrior:
    """``phi(W) = sqrt(W)``, the KeOps tutorial's prior (the default).

    Its slope is infinite at zero, so small weights shrink super-linearly
    under MM-EM (``W_new`` is about ``W^1.5``).
    """

    def value(self, weights):
        """``sum_j sqrt(W_j)`` (NumPy or torch, differentiable)."""
        return (weights**0.5).sum()

    def derivative(self, weights):
        """``1 / (2 sqrt(W_j))``, inf at zero weight."""
        with np.errstate(divide="ignore"):
            return 0.5 / np.sqrt(weights)

    def __repr__(self):
        return "SqrtPrior()"


class LogPrior:
    """``phi(W) = log(1 + W / eps)``: a log penalty, finite slope ``1 / eps`` at zero.

    This is ``log(W + eps)`` shifted by the constant ``-log(eps)`` so that a
    zero weight costs nothing: removing a component then never changes the
    penalty by more than its weight's share.

    Parameters
    ----------
    eps : float, default=1e-3
        Smaller values make the prior closer to counting components.
    """

    def __init__(self, eps=1e-3):
        self.eps = eps

    def value(self, weights):
        """``sum_j log(1 + W_j / eps)`` (NumPy or torch, differentiable)."""
        return _log(1 + weights / self.eps).sum()

    def derivative(self, weights):
        """``1 / (W_j + eps)``."""
        return 1.0 / (np.asarray(weights, dtype=np.float64) + self.eps)

    def __repr__(self):
        return f"LogPrior(eps={self.eps!r})"


PRIORS = {"sqrt": SqrtPrior, "log": LogPrior}


def resolve_prior(prior):
    """The prior object for the estimator's ``prior`` parameter.

    Parameters
    ----------
    prior : {'sqrt', 'log'} or object with ``value`` and ``derivative``

    Returns
    -------
    object
    """
    if isinstance(prior, str):
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {sorted(PRIORS)}, got {prior!r}.")
        return PRIORS[prior]()
    missing = [
        name
        for name in ("value", "derivative")
        if not callable(getattr(prior, name, None))
    ]
    if missing:
        raise ValueError(
            f"A custom prior needs methods value(weights) and derivative(weights); "
            f"{type(prior).__name__} lacks {', '.join(missing)}."
        )
    return prior


def check_mm_prior(prior):
    """Check that MM-EM can use ``prior``: concave, increasing, consistent.

    Evaluated on a grid of weights in (0, 1]: the derivative must be finite,
    non-negative and non-increasing, and agree with finite differences of
    ``value``.

    Raises
    ------
    ValueError
        Saying which property fails and that the gradient solvers take it.
    """
    if type(prior) in (SqrtPrior, LogPrior):
        # Concave and increasing by construction; the check below costs 200
        # calls of value(), a few milliseconds in every fit of a CV path.
        return
    grid = np.geomspace(1e-6, 1.0, 200)
    advice = (
        "MM-EM (solver='em') majorises the prior by its tangent, which needs a "
        "concave, increasing prior; use solver='adam' or 'lbfgs' for this one."
    )
    slopes = np.asarray(prior.derivative(grid), dtype=np.float64)
    if slopes.shape != grid.shape or not np.all(np.isfinite(slopes)):
        raise ValueError(
            f"The prior's derivative must return one finite value per weight. {advice}"
        )
    if np.any(slopes < 0):
        raise ValueError(f"The prior is decreasing somewhere in (0, 1]. {advice}")
    if np.any(np.diff(slopes) > 1e-9 * np.abs(slopes[:-1]) + 1e-12):
        raise ValueError(f"The prior is not concave on (0, 1]. {advice}")
    if float(prior.value(np.zeros(1))) != 0:
        raise ValueError(
            "The prior must cost nothing at zero weight (value(0) == 0), or "
            "pruning a component would change the objective by a constant."
        )
    values = np.array([float(prior.value(np.array([w]))) for w in grid])
    midpoints = np.sqrt(grid[1:] * grid[:-1])
    secants = np.diff(values) / np.diff(grid)
    expected = np.asarray(prior.derivative(midpoints), dtype=np.float64)
    if not np.allclose(secants, expected, rtol=1e-2, atol=1e-6):
        raise ValueError(
            "The prior's derivative does not match finite differences of its value."
        )
