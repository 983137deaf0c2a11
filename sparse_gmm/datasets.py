"""Synthetic data sets: the KeOps tutorial's spiral and mixtures of known size."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = ["make_mixture", "make_spiral"]


def _torch_generator(random_state):
    """A private CPU generator seeded from ``random_state``.

    Integers seed it directly, so that ``random_state=0`` draws exactly what
    ``torch.manual_seed(0)`` followed by ``torch.randn`` draws; the global
    torch RNG is never touched.
    """
    generator = torch.Generator(device="cpu")
    if random_state is None:
        generator.seed()
    elif isinstance(random_state, Integral) and not isinstance(random_state, bool):
        generator.manual_seed(int(random_state))
    elif isinstance(random_state, np.random.Generator):
        # Draw a seed, so that a shared NumPy RNG still gives reproducible data.
        generator.manual_seed(int(random_state.integers(2**63 - 1)))
    elif isinstance(random_state, np.random.RandomState):
        generator.manual_seed(int(random_state.randint(np.iinfo(np.int32).max)))
    else:
        raise ValueError(
            "random_state must be None, an int, a numpy RandomState or a numpy "
            f"Generator; got {random_state!r}."
        )
    return generator


def _check_positive_int(value, name, minimum=1):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def make_spiral(n_samples=10000, noise=0.02, random_state=0, dtype=np.float64):
    """Points along a noisy spiral in the unit square (the KeOps GMM tutorial).

    With the defaults this is exactly the tutorial's data set::

        torch.manual_seed(0)
        t = torch.linspace(0, 2 * np.pi, N + 1)[:-1]
        x = torch.stack((0.5 + 0.4 * (t / 7) * t.cos(), 0.5 + 0.3 * t.sin()), 1)
        x = x + 0.02 * torch.randn(x.shape)

    computed in float32 as there, then converted to ``dtype``.

    Parameters
    ----------
    n_samples : int, default=10000
        Number of points, evenly spaced in the angle ``t`` over ``[0, 2 pi)``.
    noise : float, default=0.02
        Standard deviation of the Gaussian noise added to both coordinates.
    random_state : int, numpy RandomState or Generator, or None, default=0
        Seed of the noise. An integer seeds a private ``torch.Generator`` just
        as ``torch.manual_seed`` seeds the global one, so ``random_state=0``
        reproduces the tutorial; the global torch RNG is left untouched. A
        NumPy RNG supplies a seed; ``None`` draws a fresh one.
    dtype : numpy dtype, default=np.float64
        dtype of the returned array. The points are always generated in
        float32 (as in the tutorial) and then converted.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
        The points.

    Examples
    --------
    >>> from sparse_gmm.datasets import make_spiral
    >>> X = make_spiral()
    >>> X.shape, X.dtype
    ((10000, 2), dtype('float64'))
    """
    n_samples = _check_positive_int(n_samples, "n_samples")
    if not isinstance(noise, Real) or not noise >= 0:
        raise ValueError(f"noise must be a non-negative number; got {noise!r}.")
    generator = _torch_generator(random_state)
    # The expressions below follow the tutorial's operation order exactly: in
    # float32, any reordering would change the last bits of the data.
    t = torch.linspace(0, 2 * np.pi, n_samples + 1)[:-1]
    x = torch.stack((0.5 + 0.4 * (t / 7) * t.cos(), 0.5 + 0.3 * t.sin()), 1)
    x = x + noise * torch.randn(x.shape, generator=generator)
    return x.numpy().astype(dtype)


def _random_rotation(rng, n_features):
    """A uniformly random orthogonal matrix (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    # Fixing the signs of diag(r) makes q Haar-distributed rather than biased.
    return q * np.sign(np.diag(r))


def _separated_means(rng, n_components, n_features, separation):
    """Means drawn in a box, every pair at least ``separation`` apart.

    The box starts just large enough to hold that many separated points and
    grows whenever rejection sampling stalls, so this always terminates.
    """
    side = max(separation, 1.0) * 2.0 * n_components ** (1.0 / n_features)
    means = []
    failures = 0
    while len(means) < n_components:
        candidate = rng.uniform(-side / 2, side / 2, n_features)
        if all(np.linalg.norm(candidate - m) >= separation for m in means):
            means.append(candidate)
            failures = 0
            continue
        failures += 1
        if failures > 100:
            side *= 1.2
            failures = 0
    return np.array(means)


def make_mixture(
    n_components=5,
    n_features=2,
    n_samples=2000,
    separation=6.0,
    weights=None,
    random_state=None,
):
    """Samples from a random Gaussian mixture with full covariances.

    Each component has a random orientation and standard deviations along its
    principal axes drawn uniformly in ``[0.3, 1]``; the means are at least
    ``separation`` apart, so with the default the components barely overlap
    and the true number of components is well defined. The number of samples
    per component is fixed (``weights * n_samples``, rounded to a total of
    ``n_samples``), not random, and the samples are shuffled.

    Parameters
    ----------
    n_components : int, default=5
        Number of components of the mixture.
    n_features : int, default=2
        Dimension of the samples.
    n_samples : int, default=2000
        Total number of samples; at least ``n_components``.
    separation : float, default=6.0
        Minimum Euclidean distance between two means, in units of the largest
        possible standard deviation (1). Around 3 neighbouring components
        start to merge; 0 places the means anywhere in the box.
    weights : array-like of shape (n_components,), default=None
        Mixture weights (non-negative, normalised to sum to 1); equal weights
        when None.
    random_state : int, RandomState instance or None, default=None
        Seed of the NumPy RNG, as in scikit-learn.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The samples (float64).
    y : ndarray of shape (n_samples,)
        The component each sample was drawn from, in ``0 .. n_components-1``.

    Examples
    --------
    >>> from sparse_gmm.datasets import make_mixture
    >>> X, y = make_mixture(n_components=3, n_samples=300, random_state=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((300, 2), [0, 1, 2])
    """
    n_components = _check_positive_int(n_components, "n_components")
    n_features = _check_positive_int(n_features, "n_features")
    n_samples = _check_positive_int(n_samples, "n_samples", minimum=n_components)
    if not isinstance(separation, Real) or not separation >= 0:
        raise ValueError(
            f"separation must be a non-negative number; got {separation!r}."
        )
    if weights is None:
        weights = np.full(n_components, 1.0 / n_components)
    else:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (n_components,):
            raise ValueError(
                f"weights must have shape ({n_components},); got {weights.shape}."
            )
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("weights must be finite and non-negative.")
        if weights.sum() <= 0:
            raise ValueError("weights must not all be zero.")
        weights = weights / weights.sum()
    rng = check_random_state(random_state)

    means = _separated_means(rng, n_components, n_features, separation)
    scales = rng.uniform(0.3, 1.0, (n_components, n_features))
    covariances = np.empty((n_components, n_features, n_features))
    for j in range(n_components):
        rotation = _random_rotation(rng, n_features)
        covariances[j] = (rotation * scales[j] ** 2) @ rotation.T

    # Largest-remainder rounding: exact counts make small test sets reliable.
    exact = weights * n_samples
    counts = np.floor(exact).astype(int)
    shortfall = n_samples - counts.sum()
    counts[np.argsort(counts - exact, kind="stable")[:shortfall]] += 1

    X = np.concatenate(
        [
            rng.multivariate_normal(means[j], covariances[j], counts[j])
            for j in range(n_components)
        ]
    )
    y = np.repeat(np.arange(n_components), counts)
    order = rng.permutation(n_samples)
    return X[order], y[order]
