"""Sparse Gaussian mixtures that choose their number of components."""

from ._estimator import SparseGaussianMixture

__version__ = "0.1.0"

__all__ = ["SparseGaussianMixture", "__version__"]
