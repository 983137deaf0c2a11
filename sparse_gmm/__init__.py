"""Sparse Gaussian mixtures that choose their number of components.

The public names are imported on first use (PEP 562), so ``import sparse_gmm``
and the command line's ``--help`` and ``--version`` do not pay for torch and
scikit-learn; ``from sparse_gmm import SparseGaussianMixture`` imports them.
"""

import importlib

__version__ = "0.1.0"

# Public name -> the private module that defines it.
_LAZY_NAMES = {
    "DegenerateComponentWarning": ".exceptions",
    "ModelVersionWarning": "._persistence",
    "SparseGaussianMixture": "._estimator",
    "SparseGaussianMixtureCV": "._cv",
    "TooFewSamplesWarning": ".exceptions",
    "aic_scorer": "._scoring",
    "bic_scorer": "._scoring",
    "load": "._persistence",
    "save": "._persistence",
}

# Public submodules, also imported on first use (``sparse_gmm.penalties``
# worked without an import while the package imported everything eagerly).
_LAZY_SUBMODULES = ("datasets", "exceptions", "penalties")

__all__ = [
    "DegenerateComponentWarning",
    "ModelVersionWarning",
    "SparseGaussianMixture",
    "SparseGaussianMixtureCV",
    "TooFewSamplesWarning",
    "__version__",
    "aic_scorer",
    "bic_scorer",
    "load",
    "save",
]


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        # Importing a submodule binds it in this namespace itself.
        return importlib.import_module(f".{name}", __name__)
    try:
        module_name = _LAZY_NAMES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name, __name__), name)
    # Cached in the module's namespace: __getattr__ runs once per name.
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_LAZY_SUBMODULES))
