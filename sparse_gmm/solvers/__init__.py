"""Solvers: the loops that minimise the sparse objective through an engine.

A solver calls engine primitives only and never branches on the engine.
"""

from ._base import FitResult, ProgressReport
from ._em import MMEMSolver
from ._gradient import GradientSolver

__all__ = ["SOLVERS", "FitResult", "GradientSolver", "MMEMSolver", "ProgressReport"]

SOLVERS = ("em", "adam", "lbfgs")


def make_solver(
    solver,
    *,
    max_iter,
    tol,
    reg_covar,
    prune_threshold,
    learning_rate,
    removal_moves,
    acceleration=None,
    merge_moves=False,
):
    """The solver named by the estimator's ``solver`` parameter.

    ``reg_covar``, ``acceleration``, ``merge_moves`` and ``removal_moves``
    only concern MM-EM, ``learning_rate`` only Adam.
    """
    if solver == "em":
        return MMEMSolver(
            max_iter=max_iter,
            tol=tol,
            reg_covar=reg_covar,
            prune_threshold=prune_threshold,
            acceleration=acceleration,
            merge_moves=merge_moves,
            removal_moves=removal_moves,
        )
    return GradientSolver(
        optimizer=solver,
        learning_rate=learning_rate,
        max_iter=max_iter,
        tol=tol,
        prune_threshold=prune_threshold,
    )
