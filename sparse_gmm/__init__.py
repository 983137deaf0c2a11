"""Sparse Gaussian mixtures that choose their number of components."""

from ._cv import SparseGaussianMixtureCV
from ._estimator import SparseGaussianMixture
from ._persistence import ModelVersionWarning, load, save
from ._scoring import aic_scorer, bic_scorer
from .exceptions import DegenerateComponentWarning

__version__ = "0.1.0"

__all__ = [
    "DegenerateComponentWarning",
    "ModelVersionWarning",
    "SparseGaussianMixture",
    "SparseGaussianMixtureCV",
    "__version__",
    "aic_scorer",
    "bic_scorer",
    "load",
    "save",
]
