"""What the data can pay for: the automatic sparsity and the annihilation count.

Both are measured in the data's own units, the number of samples ``N`` and
the number of free parameters ``p`` of one component, so that one default
behaves alike on 150 rows in 4 dimensions and on a million rows in 2. The
derivation is in ``docs/maths.rst``, section "Priors on the covariances and
the automatic sparsity".
"""

from __future__ import annotations

import math

from ._gaussian import n_parameters


def parameters_per_component(covariance_type, n_features):
    """Free parameters of one component: its mean, its covariance, its weight.

    What one more component adds to the mixture's count (BIC's); a tied
    covariance is shared, so it costs a component only its mean and weight.

    Parameters
    ----------
    covariance_type : str
    n_features : int

    Returns
    -------
    int
    """
    return n_parameters(covariance_type, 2, n_features) - n_parameters(
        covariance_type, 1, n_features
    )


def auto_sparsity(n_samples, n_features, n_components, covariance_type):
    """The sparsity at which a component costs what BIC charges for it.

    BIC charges each component ``(p / 2) ln N`` nats, that is
    ``p ln(N) / (2 N)`` nats per sample. The prior charges a component of
    weight ``W`` ``(s / M) sqrt(W)`` nats per sample; the two agree for a
    component of the starting weight ``W = 1 / M`` when

        s = M^(3/2) p ln(N) / (2 N).

    Lighter components are charged more than BIC does per unit of weight
    (the square root's slope), which is what prunes them; heavier ones less.

    Parameters
    ----------
    n_samples : float
        ``N``, the total sample weight.
    n_features : int
    n_components : int
        ``M``, the number of starting components.
    covariance_type : str

    Returns
    -------
    float
    """
    p = parameters_per_component(covariance_type, n_features)
    n_samples = max(float(n_samples), 2.0)
    return n_components**1.5 * p * math.log(n_samples) / (2.0 * n_samples)


def min_component_count(n_features, covariance_type):
    """The expected sample count below which a component is annihilated.

    The larger of two counts. What a covariance of the type needs to be
    estimable at all: ``D + 1`` samples for a full covariance, 2 for a
    diagonal or spherical one, 1 for a tied one (it is shared). And a
    quarter of the component's parameter count ``p``: half of Figueiredo
    and Jain's (2002) ``p / 2``, theirs being the count at which a component
    pays for its parameters in message length. Their rule also decides the
    number of components; here the criterion of the walk down does
    (:mod:`sparse_gmm._size_selection`), and annihilation only clears
    components too small to estimate. Measured (``docs/maths.rst``, section
    10.2): at ``p / 2`` the two 228-sample clusters of breast_cancer (30
    features, ``p / 2 = 248``) die; at ``D + 1`` alone, 64-pixel digits
    keeps 13 components whose maximum-likelihood refit collapses.

    Parameters
    ----------
    n_features : int
    covariance_type : str

    Returns
    -------
    float
    """
    support = {"full": n_features + 1, "tied": 1, "diag": 2, "spherical": 2}
    p = parameters_per_component(covariance_type, n_features) - 1
    return float(max(support[covariance_type], 0.25 * p))
