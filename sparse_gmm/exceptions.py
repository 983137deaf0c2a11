"""Warnings that sparse_gmm's estimators issue about their fits."""

from __future__ import annotations

__all__ = ["DegenerateComponentWarning", "TooFewSamplesWarning"]


class DegenerateComponentWarning(UserWarning):
    """A fitted component collapsed onto the covariance floor.

    Its smallest variance is ``reg_covar``: it sits on tied or duplicated
    samples, or in a subspace of the data, and its log-density there is
    limited only by ``reg_covar``. Such a fit is not to be trusted; the
    warning names the components.
    """


class TooFewSamplesWarning(UserWarning):
    """The data hold fewer distinct samples than ``n_components``.

    Where ``n_components`` is an upper bound (the fit can remove
    components), the fit then starts with one component per distinct
    sample of positive weight instead of refusing the data; more could only
    duplicate one another.
    """
