"""Scorers for model selection: information criteria, greater is better."""

from __future__ import annotations

__all__ = ["aic_scorer", "bic_scorer"]


def bic_scorer(estimator, X, y=None):
    """Minus the BIC of a fitted mixture on ``X`` (greater is better).

    Use as ``GridSearchCV(..., scoring=bic_scorer)``; the BIC counts only the
    surviving components.

    Parameters
    ----------
    estimator : fitted SparseGaussianMixture (or a Pipeline ending in one)
    X : array-like of shape (n_samples, n_features)
    y : Ignored

    Returns
    -------
    float
    """
    mixture, transformed = _final_step(estimator, X)
    return -mixture.bic(transformed)


def aic_scorer(estimator, X, y=None):
    """Minus the AIC of a fitted mixture on ``X`` (greater is better).

    Parameters
    ----------
    estimator : fitted SparseGaussianMixture (or a Pipeline ending in one)
    X : array-like of shape (n_samples, n_features)
    y : Ignored

    Returns
    -------
    float
    """
    mixture, transformed = _final_step(estimator, X)
    return -mixture.aic(transformed)


def _final_step(estimator, X):
    """The mixture and ``X`` as it sees it, for a bare model or a Pipeline."""
    if hasattr(estimator, "steps"):
        for _, step in estimator.steps[:-1]:
            if step is not None and step != "passthrough":
                X = step.transform(X)
        estimator = estimator.steps[-1][1]
    return estimator, X
