"""Warnings that sparse_gmm's estimators issue about their fits."""

from __future__ import annotations

__all__ = ["DegenerateComponentWarning"]


class DegenerateComponentWarning(UserWarning):
    """A fitted component collapsed onto the covariance floor.

    Its smallest variance is ``reg_covar``: it sits on tied or duplicated
    samples, or in a subspace of the data, and its log-density there is
    limited only by ``reg_covar``. Such a fit is not to be trusted; the
    warning names the components.
    """
