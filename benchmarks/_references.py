"""The scikit-learn fits that compare and bench_real_data set beside SGM.

``GM-BIC`` (:func:`fit_bic_sweep`)
    ``GaussianMixture(k)``, full covariances, for k = 1 to ``max_components``,
    the fit with the lowest training BIC kept: what users do today.
``BGM`` (:func:`fit_bayesian`)
    ``BayesianGaussianMixture(max_components, max_iter=500)``. Its components
    are never removed, so those above :data:`BGM_WEIGHT_FLOOR` weight are
    counted.

Both benchmarks import this module by name (``import _references``), as they
do ``_harness``, so that the two fit these references the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

#: The weight above which a component of ``BayesianGaussianMixture`` counts.
BGM_WEIGHT_FLOOR = 0.01
BGM_MAX_ITER = 500


@dataclass(frozen=True)
class BicSweep:
    """The outcome of :func:`fit_bic_sweep`.

    Attributes
    ----------
    model : GaussianMixture
        The fit with the lowest BIC (the smallest ``k`` among equals).
    n_failed : int
        Sizes whose fit raised ValueError.
    n_skipped : int
        Sizes with more components than training rows.
    """

    model: GaussianMixture
    n_failed: int
    n_skipped: int

    @property
    def note(self):
        """What the sweep lost, as ``'bic_failed=F bic_skipped=S'``, or ``''``."""
        if not (self.n_failed or self.n_skipped):
            return ""
        return f"bic_failed={self.n_failed} bic_skipped={self.n_skipped}"


def fit_bic_sweep(X, max_components, random_state):
    """Fit ``GaussianMixture(k)`` for k = 1..``max_components``; keep the lowest BIC.

    A size with more components than rows in ``X`` is skipped and one whose
    fit raises ValueError is counted as failed, so that a small data set
    still gets the sizes it can hold.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data; the BIC is computed on it.
    max_components : int
        The largest size tried.
    random_state : int
        Seed of every fit.

    Returns
    -------
    BicSweep

    Raises
    ------
    ValueError
        If every size failed or was skipped.
    """
    best, best_bic, failed, skipped = None, np.inf, 0, 0
    for k in range(1, max_components + 1):
        if len(X) < k:
            skipped += 1
            continue
        try:
            model = GaussianMixture(
                k, covariance_type="full", random_state=random_state
            ).fit(X)
        except ValueError:
            failed += 1
            continue
        bic = model.bic(X)
        if bic < best_bic:
            best, best_bic = model, bic
    if best is None:
        raise ValueError(f"every GaussianMixture fit failed ({failed}) or was skipped")
    return BicSweep(best, failed, skipped)


def fit_bayesian(X, max_components, random_state):
    """Fit ``BayesianGaussianMixture(max_components)`` and count its components.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    max_components : int
        Its ``n_components``.
    random_state : int

    Returns
    -------
    n_components : int
        Components above :data:`BGM_WEIGHT_FLOOR` weight.
    model : BayesianGaussianMixture
    """
    model = BayesianGaussianMixture(
        n_components=max_components, max_iter=BGM_MAX_ITER, random_state=random_state
    ).fit(X)
    return int(np.sum(model.weights_ > BGM_WEIGHT_FLOOR)), model
