"""Saving and loading fitted models without pickle, in skops' format.

:func:`save` writes a fitted :class:`~sparse_gmm.SparseGaussianMixture`, a
:class:`~sparse_gmm.SparseGaussianMixtureCV`, or a scikit-learn
:class:`~sklearn.pipeline.Pipeline` that holds either (after a
``StandardScaler`` or a ``PCA``, say) to a file that :func:`load` reads back
into an equal object: every attribute, fitted ones included, bit for bit, so
the same ``score_samples``, ``predict``, ``predict_proba``, ``score``,
``sample`` and ``cv_results_`` (a model fitted on torch tensors under
``array_api_dispatch`` is stored with NumPy arrays in their place, and its
loaded copy still takes tensors). Unlike pickle or joblib, loading runs no code
that the file carries: a file from an untrusted source can at worst be
refused.

Why skops
---------
The format is `skops <https://skops.readthedocs.io>`_' (``skops.io``), the
scikit-learn ecosystem's safe format (scikit-learn's documentation and the
Hugging Face Hub recommend it), rather than the hand-written ``.npz`` format
of sparse_gmm 0.1.0 (format version 1):

* What users hold is a Pipeline or a CV model, whose other steps
  (scalers, projections, splitters) are scikit-learn's. skops already stores
  every scikit-learn estimator safely; a hand-written format would have had
  to store each of them too, or refuse them.
* Safety is the same by construction: skops reads JSON and ``.npy`` arrays
  (``allow_pickle=False``), and builds only objects of types it trusts:
  scikit-learn's estimators, NumPy and built-in types, and the few listed in
  ``TRUSTED_TYPES`` here (this package's estimators and priors, its scorers,
  scikit-learn's splitters, ``torch.device``). Any other type in a file
  (a custom prior, a function, ``os.system``) is refused unless the caller
  names it in ``load(..., trusted=[...])``.
* Less code for more: sparse_gmm owns only the checks below, not a format.
  At the change this module went from 684 lines (465 of code) storing one
  estimator to 617 (391 of code) storing the CV model and Pipelines too; a
  hand-written format for those would have grown instead.

File format
-----------
A skops file (a ZIP of ``schema.json`` and ``.npy`` members, which
``skops.io.load`` also reads) with one more member, ``sparse_gmm.json``:
``{"sparse_gmm_version": "0.1.0"}``, the version that saved it. ``.skops``
is the customary extension.

:func:`load` then checks every SparseGaussianMixture and
SparseGaussianMixtureCV in what it read, before returning it: the attributes
and nothing else (``FITTED_ATTRIBUTES`` and the parameters), parameters that
the estimator accepts, each fitted attribute's type and shape, finite values,
weights that sum to one, positive-definite covariances, precisions that
match their Cholesky factors, and, for the CV, a refitted model whose
attributes are the CV's and results of one row per sparsity. Any failure, a
truncated, altered or pickle file included, is a ValueError that says what is
wrong. Members must be stored, not compressed (as :func:`save` writes them),
so that what skops reads is no larger than the file. A file written by
another sparse_gmm version loads with a :class:`ModelVersionWarning` naming
both versions. Files in format version 1
(``.npz``, sparse_gmm 0.1.0 before skops) are refused with a message saying
so: load them with that release and save them again.

skops is an optional dependency: ``pip install 'sparse_gmm[persist]'``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import tempfile
import warnings
import zipfile
from numbers import Integral, Real

import numpy as np
import torch
from sklearn import model_selection
from sklearn.base import BaseEstimator

from ._cv import SparseGaussianMixtureCV
from ._estimator import SparseGaussianMixture
from ._fitted import FITTED_ATTRIBUTES
from ._scoring import aic_scorer, bic_scorer
from .penalties import LogPrior, SqrtPrior

__all__ = ["TRUSTED_TYPES", "ModelVersionWarning", "load", "save"]

# The member that names the sparse_gmm version; skops ignores it.
VERSION_MEMBER = "sparse_gmm.json"
# Types that load() builds beyond skops' defaults (scikit-learn's estimators,
# NumPy, built-ins): plain data once built, whose classes run no code from
# the file. scikit-learn's splitters are the CV's ``cv`` parameter. Named
# from the objects, so that a module renamed stays trusted.
TRUSTED_TYPES = tuple(
    f"{trusted.__module__}.{trusted.__qualname__}"
    for trusted in (
        SparseGaussianMixture,
        SparseGaussianMixtureCV,
        SqrtPrior,
        LogPrior,
        aic_scorer,
        bic_scorer,
        torch.device,
        model_selection.KFold,
        model_selection.RepeatedKFold,
        model_selection.ShuffleSplit,
        model_selection.LeaveOneOut,
        model_selection.LeavePOut,
        model_selection.PredefinedSplit,
        model_selection.TimeSeriesSplit,
    )
)
_INSTALL_HINT = (
    "Saving and loading models needs skops: pip install 'sparse_gmm[persist]'."
)
# Set by scikit-learn's validate_data, not by the fit itself.
_INPUT_ATTRIBUTES = ("n_features_in_", "feature_names_in_")
_ENGINES = ("torch", "keops", "dask")


class ModelVersionWarning(UserWarning):
    """A model file was written by another version of sparse_gmm."""


def _package_version():
    # Imported when called: the package imports this module while it loads.
    from . import __version__

    return __version__


def skops_io():
    """``skops.io``, or an ImportError naming the extra to install."""
    try:
        import skops.io
    except ImportError as error:
        raise ImportError(f"{_INSTALL_HINT} ({error})") from error
    return skops.io


def _our_models(obj):
    """The SparseGaussianMixture(CV)s in ``obj``: itself, or a Pipeline's steps."""
    from sklearn.pipeline import Pipeline

    if isinstance(obj, SparseGaussianMixture | SparseGaussianMixtureCV):
        return [obj]
    if isinstance(obj, Pipeline) and isinstance(obj.steps, list):
        return [
            model
            for step in obj.steps
            if isinstance(step, tuple) and len(step) == 2
            for model in _our_models(step[1])
        ]
    return []


# ---------------------------------------------------------------------- save


def save(model, path):
    """Save a fitted model, or a Pipeline that holds one, without pickle.

    The file is in skops' format with the sparse_gmm version added; the
    module :mod:`sparse_gmm._persistence` documents it. It is written to a
    temporary name and renamed, so an interrupted save never leaves a
    truncated file at ``path``.

    Parameters
    ----------
    model : SparseGaussianMixture, SparseGaussianMixtureCV or Pipeline
        Fitted; a :class:`~sklearn.pipeline.Pipeline` must hold at least one
        of the two estimators among its steps.
    path : str or os.PathLike
        Where to write; ``.skops`` is the customary extension (none is added).

    Raises
    ------
    TypeError
        If ``model`` is none of the above.
    sklearn.exceptions.NotFittedError
        If ``model``, or a sparse_gmm estimator in it, is not fitted.
    ImportError
        If skops is not installed.

    See Also
    --------
    load : Read the file back.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> import sparse_gmm
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> model = sparse_gmm.SparseGaussianMixture(3, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skops")
    >>> sparse_gmm.save(model, path)
    >>> loaded = sparse_gmm.load(path)
    >>> bool(np.array_equal(loaded.score_samples(X), model.score_samples(X)))
    True
    """
    from sklearn.utils.validation import check_is_fitted

    models = _our_models(model)
    if not models:
        raise TypeError(
            "save() takes a SparseGaussianMixture, a SparseGaussianMixtureCV or "
            f"a Pipeline that holds one, got {type(model).__name__}."
        )
    for found in {id(found): found for found in [model, *models]}.values():
        check_is_fitted(found)
    buffer = io.BytesIO(skops_io().dumps(_with_host_arrays(model)))
    with zipfile.ZipFile(buffer, "a") as archive:
        version = {"sparse_gmm_version": _package_version()}
        archive.writestr(VERSION_MEMBER, json.dumps(version))
    _write_atomically(os.fspath(path), buffer.getvalue())


def _with_host_arrays(model):
    """``model``, or a copy of it in which every torch tensor is a NumPy array.

    Fitted under ``array_api_dispatch`` on tensors, a model (and any
    scikit-learn step beside it) holds its fitted arrays as tensors, which
    skops cannot store. The file holds them as NumPy arrays, as a fit on
    NumPy input would have left them; the loaded model still takes tensors.
    """

    def tensors_in(obj):
        if isinstance(obj, torch.Tensor):
            return True
        if isinstance(obj, list | tuple):
            return any(tensors_in(item) for item in obj)
        if isinstance(obj, BaseEstimator):
            return any(tensors_in(value) for value in vars(obj).values())
        return False

    def to_host(obj):
        if isinstance(obj, torch.Tensor):
            return obj.detach().cpu().numpy()
        if isinstance(obj, list | tuple):
            return type(obj)(to_host(item) for item in obj)
        if isinstance(obj, BaseEstimator):
            for name, value in vars(obj).items():
                setattr(obj, name, to_host(value))
        return obj

    return to_host(copy.deepcopy(model)) if tensors_in(model) else model


def _write_atomically(path, content):
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(
        prefix=".sparse_gmm-", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# ---------------------------------------------------------------------- load


class _Refused(ValueError):
    """A model file that :func:`load` will not read, and why."""


def _require(condition, message):
    if not condition:
        raise _Refused(message)


def parameter_shape(name, covariance_type, n_components, n_features):
    """The shape of fitted parameter ``name`` (a ``"parameter"`` kind).

    Parameters
    ----------
    name : {'weights_', 'means_', 'covariances_', 'precisions_', \
            'precisions_cholesky_'}
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    n_components, n_features : int

    Returns
    -------
    tuple of int
    """
    if name == "weights_":
        return (n_components,)
    if name == "means_":
        return (n_components, n_features)
    return {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]


def _is_integer(value):
    return isinstance(value, Integral) and not isinstance(value, bool | np.bool_)


def _is_number(value):
    return isinstance(value, Real) and not isinstance(value, bool | np.bool_)


def _check_kinds(model, where):
    """Each fitted attribute is of its kind (``_fitted.py``) and shape."""
    n_features = model.n_features_in_
    _require(
        _is_integer(n_features) and n_features >= 1,
        f"{where}n_features_in_={n_features!r} is not a positive integer",
    )
    for name in ("n_components_", "n_iter_"):
        value = getattr(model, name)
        _require(
            _is_integer(value) and value >= 0,
            f"{where}{name}={value!r} is not a non-negative integer",
        )
    k, n_iter = model.n_components_, model.n_iter_
    _require(
        1 <= k <= model.n_components,
        f"{where}n_components_={k} is not in [1, n_components={model.n_components}]",
    )
    dtype = np.asarray(model.means_).dtype
    _require(
        dtype in (np.float32, np.float64),
        f"{where}means_ has dtype {dtype}, not float32 or float64",
    )
    for name, kind in FITTED_ATTRIBUTES.items():
        value = getattr(model, name)
        if kind == "parameter":
            shape = parameter_shape(name, model.covariance_type, k, n_features)
            _require(
                isinstance(value, np.ndarray)
                and value.dtype == dtype
                and value.shape == shape,
                f"{where}{name} is not a {dtype} array of shape {shape}",
            )
        elif kind == "indices":
            _require(
                isinstance(value, np.ndarray)
                and value.dtype.kind in "iu"
                and value.shape == (k,),
                f"{where}{name} is not an integer array of shape ({k},)",
            )
        elif kind == "curve":
            curve = np.asarray(value) if isinstance(value, np.ndarray | list) else None
            _require(
                curve is not None
                and curve.dtype.kind in "iuf"
                and curve.shape == (n_iter,),
                f"{where}{name} is not a real array of shape ({n_iter},)",
            )
        elif kind == "count":
            pass  # checked above, with their ranges
        elif kind == "number":
            _require(
                _is_number(value) and math.isfinite(value),
                f"{where}{name}={value!r} is not a finite number",
            )
        elif kind == "flag":
            _require(
                isinstance(value, bool | np.bool_), f"{where}{name} is not a boolean"
            )
        else:  # "name"
            _require(isinstance(value, str), f"{where}{name} is not a string")
    if hasattr(model, "feature_names_in_"):
        names = model.feature_names_in_
        _require(
            isinstance(names, np.ndarray)
            and names.shape == (n_features,)
            and all(isinstance(name, str) for name in names),
            f"{where}feature_names_in_ is not {n_features} strings",
        )


def _check_values(model, where):
    """Refuse values that no fit produces (a NaN model, an indefinite one...)."""
    for name, kind in FITTED_ATTRIBUTES.items():
        if kind in ("parameter", "curve"):
            _require(
                np.all(np.isfinite(np.asarray(getattr(model, name)))),
                f"{where}{name} is not finite",
            )
    _require(
        model.engine_ in _ENGINES,
        f"{where}engine_={model.engine_!r} is not one of {_ENGINES}",
    )
    _require(model.sparsity_ >= 0, f"{where}sparsity_ is negative")
    k = model.n_components_
    weights = model.weights_.astype(np.float64)
    tolerance = 1e-5 if model.means_.dtype == np.float32 else 1e-10
    _require(
        np.all(weights > 0) and abs(weights.sum() - 1.0) <= tolerance,
        f"{where}weights_ are not positive weights summing to one",
    )
    active = model.active_components_
    _require(
        np.all(np.diff(active) > 0)
        and active[0] >= 0
        and active[-1] < model.n_components,
        f"{where}active_components_ are not increasing indices below "
        f"{model.n_components}",
    )
    curve = np.asarray(model.n_components_curve_)
    _require(
        np.all((curve >= 1) & (curve <= model.n_components)),
        f"{where}n_components_curve_ is out of [1, {model.n_components}]",
    )
    factor = model.precisions_cholesky_.astype(np.float64)
    covariances = model.covariances_.astype(np.float64)
    if model.covariance_type in ("full", "tied"):
        diagonal = np.diagonal(factor, axis1=-2, axis2=-1)
        _require(
            np.all(diagonal > 0) and np.all(np.tril(factor, -1) == 0),
            f"{where}precisions_cholesky_ are not upper-triangular with a "
            "positive diagonal",
        )
        implied = factor @ np.swapaxes(factor, -1, -2)
        try:
            np.linalg.cholesky(covariances)
        except np.linalg.LinAlgError:
            raise _Refused(f"{where}covariances_ are not positive definite") from None
    else:
        _require(np.all(factor > 0), f"{where}precisions_cholesky_ are not positive")
        _require(np.all(covariances > 0), f"{where}covariances_ are not positive")
        implied = factor**2
    precisions = model.precisions_.astype(np.float64)
    _require(
        np.allclose(
            precisions,
            implied,
            rtol=100 * tolerance,
            atol=tolerance * np.abs(implied).max(),
        ),
        f"{where}precisions_ do not match precisions_cholesky_",
    )
    _require(k == len(weights), f"{where}n_components_ is not len(weights_)")


def _check_attributes(model, fitted, where):
    """The parameters, ``fitted`` and nothing else; valid parameters."""
    params = set(model._get_param_names())
    found = set(vars(model))
    allowed = params | set(fitted) | set(_INPUT_ATTRIBUTES)
    _require(
        found <= allowed,
        f"{where}unexpected attributes {sorted(found - allowed)}",
    )
    missing = (params | set(fitted) | {"n_features_in_"}) - found
    _require(not missing, f"{where}missing attributes {sorted(missing)}")
    try:
        model._validate_params()
    except ValueError as error:
        raise _Refused(f"{where}a parameter is invalid: {error}") from None


def _check_estimator(model, where):
    _check_attributes(model, FITTED_ATTRIBUTES, where)
    _check_kinds(model, where)
    _check_values(model, where)


_CV_FITTED = ("best_estimator_", "sparsities_", "best_index_", "cv_results_")


def _check_cv(model, where):
    _check_attributes(model, (*_CV_FITTED, *FITTED_ATTRIBUTES), where)
    refit = model.best_estimator_
    _require(
        isinstance(refit, SparseGaussianMixture),
        f"{where}best_estimator_ is not a SparseGaussianMixture",
    )
    _check_estimator(refit, f"{where}best_estimator_.")
    for name in (*FITTED_ATTRIBUTES, "n_features_in_"):
        if name == "sparsity_":
            continue
        mine, its = getattr(model, name), getattr(refit, name)
        same = (
            np.array_equal(mine, its)
            if isinstance(its, np.ndarray)
            else type(mine) is type(its) and mine == its
        )
        _require(same, f"{where}{name} is not best_estimator_'s")
    sparsities = model.sparsities_
    _require(
        isinstance(sparsities, np.ndarray)
        and sparsities.ndim == 1
        and sparsities.size >= 1
        and sparsities.dtype.kind == "f"
        and np.all(np.isfinite(sparsities))
        and np.all(sparsities >= 0)
        and np.all(np.diff(sparsities) > 0),
        f"{where}sparsities_ are not increasing finite sparsities",
    )
    best = model.best_index_
    _require(
        _is_integer(best) and 0 <= best < sparsities.size,
        f"{where}best_index_={best!r} is not an index into sparsities_",
    )
    _require(
        model.sparsity_ == sparsities[best],
        f"{where}sparsity_ is not sparsities_[best_index_]",
    )
    results = model.cv_results_
    _require(
        isinstance(results, dict)
        and all(
            isinstance(value, np.ndarray | list) and len(value) == sparsities.size
            for value in results.values()
        )
        and np.array_equal(results.get("param_sparsity"), sparsities),
        f"{where}cv_results_ is not one row per sparsity of sparsities_",
    )


def _check_loaded(obj):
    models = _our_models(obj)
    _require(
        models,
        f"it holds a {type(obj).__name__}, not a SparseGaussianMixture, a "
        "SparseGaussianMixtureCV or a Pipeline that holds one",
    )
    for model in models:
        where = "" if model is obj else f"the {type(model).__name__} step's "
        if isinstance(model, SparseGaussianMixtureCV):
            _check_cv(model, where)
        else:
            _check_estimator(model, where)


def _saved_by(archive):
    """The sparse_gmm version in the file's own member, or None.

    Compressed members are refused first: stored ones take on disk the bytes
    that skops then reads, so a small file cannot unpack into a large one.
    """
    names = archive.namelist()
    compressed = [
        info.filename
        for info in archive.infolist()
        if info.compress_type != zipfile.ZIP_STORED
    ]
    _require(
        not compressed,
        f"members {compressed[:3]} are compressed; sparse_gmm writes stored "
        "members only",
    )
    if "schema.json" not in names and "header.npy" in names:
        raise _Refused(
            "it is in sparse_gmm's format version 1 (.npz), which sparse_gmm "
            "no longer reads since it saves in skops' format: load it with "
            "sparse_gmm 0.1.0 as released before that change, and save it again"
        )
    if VERSION_MEMBER not in names:
        return None
    try:
        version = json.loads(archive.read(VERSION_MEMBER).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _Refused(f"{VERSION_MEMBER} is not JSON ({error})") from None
    _require(
        isinstance(version, dict)
        and set(version) == {"sparse_gmm_version"}
        and isinstance(version["sparse_gmm_version"], str),
        f"{VERSION_MEMBER} is not {{'sparse_gmm_version': str}}",
    )
    return version["sparse_gmm_version"]


def load(path, *, trusted=()):
    """Load what :func:`save` wrote, running no code from the file.

    Parameters
    ----------
    path : str or os.PathLike
    trusted : sequence of str, default=()
        Further types to build, by the names that the error for an untrusted
        type lists (a custom prior's class, say): name only types whose code
        you trust, from a file whose source you trust.

    Returns
    -------
    SparseGaussianMixture, SparseGaussianMixtureCV or Pipeline
        Fitted, equal to the saved object.

    Raises
    ------
    ValueError
        If the file is not a complete, consistent model file (truncated,
        altered, a pickle, holding an untrusted type, a model that no fit
        produces...); the message says what is wrong.
    OSError
        If the file cannot be opened (missing, a directory, no permission).
    ImportError
        If skops is not installed.

    Warns
    -----
    ModelVersionWarning
        If another version of sparse_gmm saved the model; the warning names
        both versions.

    See Also
    --------
    save : Write a model.
    """
    reader = skops_io()
    from skops.io.exceptions import UntrustedTypesFoundException

    path = os.fspath(path)
    # Read first, so that a missing file stays a FileNotFoundError.
    with open(path, "rb") as file:
        content = file.read()
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            saved_by = _saved_by(archive)
        obj = reader.loads(content, trusted=[*TRUSTED_TYPES, *trusted])
        _check_loaded(obj)
    except _Refused as error:
        raise ValueError(
            f"{path} is not a valid sparse_gmm model file: {error}."
        ) from None
    except UntrustedTypesFoundException as error:
        raise ValueError(
            f"{path} holds types that sparse_gmm.load does not build: {error} "
            "Pass their names as load(..., trusted=[...]) only if you trust "
            "both the file's source and those types' code."
        ) from None
    except Exception as error:
        # A truncated or altered file: the ZIP, JSON, .npy and skops readers
        # fail in many ways, all of which mean the same thing to the caller.
        raise ValueError(
            f"{path} is not a valid sparse_gmm model file: it is truncated "
            f"or altered ({type(error).__name__}: {error})."
        ) from None
    current = _package_version()
    if saved_by is not None and saved_by != current:
        warnings.warn(
            f"This model was saved by sparse_gmm {saved_by} and is loaded by "
            f"sparse_gmm {current}. Its file format is supported; check its "
            "results before relying on them.",
            ModelVersionWarning,
            stacklevel=2,
        )
    return obj
