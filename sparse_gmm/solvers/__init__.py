"""Solvers: the loops that minimise the sparse objective through an engine.

A solver calls engine primitives only and never branches on the engine.
"""

from ._base import FitResult, ProgressReport
from ._em import MMEMSolver

__all__ = ["FitResult", "MMEMSolver", "ProgressReport"]

SOLVERS = {"em": MMEMSolver}
