"""Saving and loading fitted models without pickle.

:func:`save` writes a fitted :class:`~sparse_gmm.SparseGaussianMixture` to a
file that :func:`load` reads back into an equal model (same parameters, same
fitted arrays bit for bit, so the same ``score_samples``, ``predict``,
``predict_proba`` and ``sample``). Unlike pickle or joblib, loading runs no
code that the file carries: a file from an untrusted source can at worst be
refused.

File format, version 1
----------------------
A NumPy ``.npz`` archive: an uncompressed ZIP whose members are ``.npy``
arrays of plain dtypes (no object arrays, so none is ever unpickled; the
loader reads each with ``allow_pickle=False``):

``header.npy``
    uint8, the UTF-8 bytes of a JSON object::

        {"format": "sparse_gmm.SparseGaussianMixture",
         "format_version": 1,
         "sparse_gmm_version": "0.1.0",
         "params": {...},        # get_params(), see below
         "fitted": {"dtype": "float64", "n_features_in_": 2,
                    "n_components_": 3, "n_iter_": 12, "converged_": true,
                    "lower_bound_": -2.9, "objective_": -2.7,
                    "has_feature_names": false}}

    ``params`` holds every constructor parameter: numbers, strings,
    booleans and null as themselves; ``device`` as its string; ``prior`` as
    ``"sqrt"``, ``"log"``, ``{"class": "SqrtPrior"}`` or
    ``{"class": "LogPrior", "eps": 0.001}``; ``random_state`` as null, an
    integer, or ``{"class": "RandomState", "pos": ..., "has_gauss": ...,
    "cached_gaussian": ...}`` with its 624 keys in ``random_state_keys.npy``;
    ``weights_init``, ``means_init`` and ``precisions_init``, when given, as
    ``{"array": "param_weights_init"}`` naming a float64 member.
``weights_.npy``, ``means_.npy``, ``covariances_.npy``, ``precisions_.npy``, \
``precisions_cholesky_.npy``
    The fitted arrays, in ``fitted["dtype"]`` (the training data's float
    dtype), with scikit-learn's shapes for the covariance type.
``active_components_.npy``, ``n_components_curve_.npy``
    int64.
``loss_curve_.npy``, ``time_curve_.npy``
    float64, of length ``n_iter_``.
``feature_names_in_.npy``
    Unicode strings; present when ``has_feature_names`` is true.

:func:`load` checks everything before it builds the model: the members and
nothing else, each member's dtype and shape (read from its ``.npy`` header
before any data, so a forged shape cannot allocate memory), finite values,
weights that sum to one, positive-definite covariances, precisions that match
their Cholesky factors, and parameters that the estimator accepts. Any
failure, a truncated or altered file included, is a ValueError that says what
is wrong. A file written by a newer format version is refused; one written by
another sparse_gmm version loads with a :class:`ModelVersionWarning` naming
both versions.

Not saved: a custom prior object (it is code; pickle the model instead, from
a source you trust), and the estimator's private state (none survives a fit).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import warnings
import zipfile
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._estimator import SparseGaussianMixture
from .penalties import LogPrior, SqrtPrior

__all__ = ["FORMAT_VERSION", "ModelVersionWarning", "load", "save"]

FORMAT_NAME = "sparse_gmm.SparseGaussianMixture"
FORMAT_VERSION = 1

# A header is a few kilobytes; a larger one is not ours.
_MAX_HEADER_BYTES = 1 << 20
_ARRAY_PARAMETERS = ("weights_init", "means_init", "precisions_init")
_HEADER_KEYS = {"format", "format_version", "sparse_gmm_version", "params", "fitted"}
_FITTED_KEYS = {
    "dtype",
    "n_features_in_",
    "n_components_",
    "n_iter_",
    "converged_",
    "lower_bound_",
    "objective_",
    "has_feature_names",
}
_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


class ModelVersionWarning(UserWarning):
    """A model file was written by another version of sparse_gmm."""


def _package_version():
    # Imported when called: the package imports this module while it loads.
    from . import __version__

    return __version__


# ---------------------------------------------------------------------- save


def _json_scalar(name, value):
    """A parameter value as a JSON scalar, or a ValueError naming it."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    raise ValueError(
        f"Parameter {name}={value!r} cannot be saved without pickle; "
        "use pickle or joblib for this model."
    )


def _encode_parameters(params):
    """``(params as JSON, parameter arrays)`` for the header and the members."""
    encoded, arrays = {}, {}
    for name, value in params.items():
        if name in _ARRAY_PARAMETERS and value is not None:
            member = f"param_{name}"
            arrays[member] = np.asarray(value, dtype=np.float64)
            encoded[name] = {"array": member}
        elif name == "prior":
            encoded[name] = _encode_prior(value)
        elif name == "random_state":
            encoded[name], keys = _encode_random_state(value)
            if keys is not None:
                arrays["random_state_keys"] = keys
        elif name == "device" and isinstance(value, torch.device):
            encoded[name] = str(value)
        else:
            encoded[name] = _json_scalar(name, value)
    return encoded, arrays


def _encode_prior(prior):
    if isinstance(prior, str):
        return prior
    # Exact types only: a subclass may carry code that the file cannot.
    if type(prior) is SqrtPrior:
        return {"class": "SqrtPrior"}
    if type(prior) is LogPrior:
        return {"class": "LogPrior", "eps": _json_scalar("prior.eps", prior.eps)}
    raise ValueError(
        f"The model's prior is a custom object ({type(prior).__name__}): it is "
        "code, which this format does not store. Save models with prior='sqrt', "
        "'log', SqrtPrior() or LogPrior(eps), or pickle this one (and load the "
        "pickle only from a source you trust)."
    )


def _encode_random_state(random_state):
    """``(JSON value, keys array or None)`` for ``random_state``."""
    if isinstance(random_state, np.random.RandomState):
        _, keys, pos, has_gauss, cached = random_state.get_state(legacy=True)
        state = {
            "class": "RandomState",
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        }
        return state, np.asarray(keys, dtype=np.uint32)
    return _json_scalar("random_state", random_state), None


def _fitted_members(model, dtype):
    """The fitted arrays, by member name, in the dtypes the format fixes."""
    members = {
        name: np.ascontiguousarray(getattr(model, name), dtype=dtype)
        for name in (
            "weights_",
            "means_",
            "covariances_",
            "precisions_",
            "precisions_cholesky_",
        )
    }
    for name in ("active_components_", "n_components_curve_"):
        members[name] = np.ascontiguousarray(getattr(model, name), dtype=np.int64)
    for name in ("loss_curve_", "time_curve_"):
        members[name] = np.ascontiguousarray(getattr(model, name), dtype=np.float64)
    if hasattr(model, "feature_names_in_"):
        members["feature_names_in_"] = np.asarray(model.feature_names_in_, dtype=str)
    return members


def save(model, path):
    """Save a fitted model to ``path`` without pickle.

    The file is a NumPy ``.npz`` archive of plain arrays and a JSON header;
    the module :mod:`sparse_gmm._persistence` documents its format. The file
    is written to a temporary name and renamed, so an interrupted save never
    leaves a truncated file at ``path``.

    Parameters
    ----------
    model : SparseGaussianMixture
        A fitted model.
    path : str or os.PathLike
        Where to write; ``.npz`` is the customary extension (none is added).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``model`` is not fitted (a ValueError).
    ValueError
        If a parameter cannot be stored without pickle: a custom prior object.

    See Also
    --------
    load : Read the file back.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> import sparse_gmm
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> model = sparse_gmm.SparseGaussianMixture(3, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> sparse_gmm.save(model, path)
    >>> loaded = sparse_gmm.load(path)
    >>> bool(np.array_equal(loaded.score_samples(X), model.score_samples(X)))
    True
    """
    if not isinstance(model, SparseGaussianMixture):
        raise TypeError(
            f"save() takes a SparseGaussianMixture, got {type(model).__name__}."
        )
    check_is_fitted(model)
    dtype = np.dtype(model.means_.dtype)
    if dtype.name not in _FLOAT_DTYPES:
        raise ValueError(f"Fitted arrays must be float32 or float64, got {dtype}.")
    params, param_arrays = _encode_parameters(model.get_params(deep=False))
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "sparse_gmm_version": _package_version(),
        "params": params,
        "fitted": {
            "dtype": dtype.name,
            "n_features_in_": int(model.n_features_in_),
            "n_components_": int(model.n_components_),
            "n_iter_": int(model.n_iter_),
            "converged_": bool(model.converged_),
            "lower_bound_": float(model.lower_bound_),
            "objective_": float(model.objective_),
            "has_feature_names": hasattr(model, "feature_names_in_"),
        },
    }
    header_bytes = json.dumps(header, indent=1, sort_keys=True).encode("utf-8")
    members = {"header": np.frombuffer(header_bytes, dtype=np.uint8)}
    members.update(_fitted_members(model, dtype))
    members.update(param_arrays)
    _write_archive(os.fspath(path), members)


def _write_archive(path, members):
    """Write ``members`` as an uncompressed ``.npz``, atomically."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(
        prefix=".sparse_gmm-", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(handle, "wb") as file:
            with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
                for name, array in members.items():
                    with archive.open(f"{name}.npy", "w") as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
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


def _read_member(archive, name, dtype, shape):
    """Member ``name`` after checking its dtype and shape, before its data.

    Parameters
    ----------
    archive : zipfile.ZipFile
    name : str
        Without ``.npy``.
    dtype : numpy.dtype or None
        None accepts any Unicode string dtype (feature names).
    shape : tuple of int or None
        None accepts any 1-d length up to ``_MAX_HEADER_BYTES`` (the header).

    Returns
    -------
    numpy.ndarray
    """
    info = archive.getinfo(f"{name}.npy")
    # Stored, not deflated: the sizes in the ZIP directory are then the bytes
    # on disk, and a small file cannot unpack into a large one.
    _require(
        info.compress_type == zipfile.ZIP_STORED,
        f"member {name!r} is compressed; sparse_gmm writes stored members only",
    )
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        _require(read_header is not None, f"member {name!r} has .npy version {version}")
        found_shape, fortran_order, found_dtype = read_header(member)
    _require(not found_dtype.hasobject, f"member {name!r} holds Python objects")
    _require(not fortran_order, f"member {name!r} is in Fortran order")
    if dtype is None:
        _require(found_dtype.kind == "U", f"member {name!r} is not text")
    else:
        _require(
            found_dtype == dtype,
            f"member {name!r} has dtype {found_dtype}, expected {np.dtype(dtype)}",
        )
    if shape is None:
        _require(
            len(found_shape) == 1 and found_shape[0] <= _MAX_HEADER_BYTES,
            f"member {name!r} has shape {found_shape}",
        )
    else:
        _require(
            found_shape == tuple(shape),
            f"member {name!r} has shape {found_shape}, expected {tuple(shape)}",
        )
    with archive.open(info) as member:
        array = np.lib.format.read_array(member, allow_pickle=False)
    # Read from a stream, the array is a read-only view of a bytes object;
    # a fitted attribute is an ordinary array.
    return array if array.flags.writeable else array.copy()


def _read_header(archive):
    raw = _read_member(archive, "header", np.uint8, None)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise _Refused(f"the header is not JSON ({type(error).__name__})") from None
    _require(isinstance(header, dict), "the header is not a JSON object")
    _require(
        header.get("format") == FORMAT_NAME,
        f"the header's format is {header.get('format')!r}, not {FORMAT_NAME!r}",
    )
    format_version = header.get("format_version")
    saved_by = header.get("sparse_gmm_version")
    _require(
        isinstance(format_version, int) and not isinstance(format_version, bool),
        f"the header's format_version is {format_version!r}",
    )
    _require(isinstance(saved_by, str), f"the header's version is {saved_by!r}")
    if format_version > FORMAT_VERSION:
        raise _Refused(
            f"it was written in format version {format_version} by sparse_gmm "
            f"{saved_by}; this sparse_gmm ({_package_version()}) reads format "
            f"versions up to {FORMAT_VERSION}: upgrade sparse_gmm to load it"
        )
    _require(format_version >= 1, f"the format version {format_version} is unknown")
    _require(
        set(header) == _HEADER_KEYS,
        f"the header has keys {sorted(header)}, expected {sorted(_HEADER_KEYS)}",
    )
    _require(isinstance(header["params"], dict), "the header's params is not an object")
    fitted = header["fitted"]
    _require(
        isinstance(fitted, dict) and set(fitted) == _FITTED_KEYS,
        f"the header's fitted entry must have the keys {sorted(_FITTED_KEYS)}",
    )
    return header


def _header_int(fitted, name, low, high):
    value = fitted[name]
    _require(
        isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
        f"{name}={value!r} in the header is not an integer in [{low}, {high}]",
    )
    return value


def _decode_parameters(params, archive):
    """The constructor's keyword arguments, from the header and the members."""
    expected = set(SparseGaussianMixture().get_params(deep=False))
    _require(
        set(params) == expected,
        f"the header's params {sorted(params)} are not the estimator's "
        f"{sorted(expected)}",
    )
    n_components = params["n_components"]
    _require(
        isinstance(n_components, int)
        and not isinstance(n_components, bool)
        and 1 <= n_components <= 2**31,
        f"n_components={n_components!r} in the header",
    )
    decoded = {}
    for name, value in params.items():
        if name == "prior" and isinstance(value, dict):
            decoded[name] = _decode_prior(value)
        elif name == "random_state" and isinstance(value, dict):
            decoded[name] = _decode_random_state(value, archive)
        elif name in _ARRAY_PARAMETERS and isinstance(value, dict):
            _require(
                value == {"array": f"param_{name}"},
                f"parameter {name} names {value!r}",
            )
            decoded[name] = value["array"]  # read once the shapes are known
        else:
            _require(
                value is None or isinstance(value, bool | int | float | str),
                f"parameter {name}={value!r} is not a number, string or null",
            )
            decoded[name] = value
    return decoded


def _decode_prior(value):
    if value == {"class": "SqrtPrior"}:
        return SqrtPrior()
    eps = value.get("eps")
    _require(
        set(value) == {"class", "eps"}
        and value["class"] == "LogPrior"
        and isinstance(eps, int | float)
        and not isinstance(eps, bool)
        and math.isfinite(eps)
        and eps > 0,
        f"the prior {value!r} is not SqrtPrior or LogPrior(eps > 0)",
    )
    return LogPrior(eps=float(eps))


def _decode_random_state(value, archive):
    _require(
        set(value) == {"class", "pos", "has_gauss", "cached_gaussian"}
        and value["class"] == "RandomState"
        and isinstance(value["pos"], int)
        and 0 <= value["pos"] <= 624
        and value["has_gauss"] in (0, 1)
        and isinstance(value["cached_gaussian"], int | float),
        f"the random_state {value!r} is not a RandomState's state",
    )
    keys = _read_member(archive, "random_state_keys", np.uint32, (624,))
    random_state = np.random.RandomState()
    random_state.set_state(
        ("MT19937", keys, value["pos"], value["has_gauss"], value["cached_gaussian"])
    )
    return random_state


def _covariance_shape(covariance_type, n_components, n_features):
    return {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]


def _check_fitted_values(arrays, covariance_type, n_components, dtype):
    """Refuse arrays that no fit produces (a NaN model, an indefinite one...)."""
    floats = ("weights_", "means_", "covariances_", "precisions_")
    for name in (*floats, "precisions_cholesky_", "loss_curve_", "time_curve_"):
        _require(np.all(np.isfinite(arrays[name])), f"{name} is not finite")
    weights = arrays["weights_"].astype(np.float64)
    tolerance = 1e-5 if dtype == np.float32 else 1e-10
    _require(
        np.all(weights > 0) and abs(weights.sum() - 1.0) <= tolerance,
        "weights_ are not positive weights summing to one",
    )
    active = arrays["active_components_"]
    _require(
        np.all(np.diff(active) > 0) and active[0] >= 0 and active[-1] < n_components,
        f"active_components_ are not increasing indices below {n_components}",
    )
    curve = arrays["n_components_curve_"]
    _require(
        np.all((curve >= 1) & (curve <= n_components)),
        "n_components_curve_ is out of range",
    )
    factor = arrays["precisions_cholesky_"].astype(np.float64)
    covariances = arrays["covariances_"].astype(np.float64)
    if covariance_type in ("full", "tied"):
        diagonal = np.diagonal(factor, axis1=-2, axis2=-1)
        _require(
            np.all(diagonal > 0) and np.all(np.tril(factor, -1) == 0),
            "precisions_cholesky_ are not upper-triangular with a positive diagonal",
        )
        implied = factor @ np.swapaxes(factor, -1, -2)
        try:
            np.linalg.cholesky(covariances)
        except np.linalg.LinAlgError:
            raise _Refused("covariances_ are not positive definite") from None
    else:
        _require(np.all(factor > 0), "precisions_cholesky_ are not positive")
        _require(np.all(covariances > 0), "covariances_ are not positive")
        implied = factor**2
    precisions = arrays["precisions_"].astype(np.float64)
    scale = np.abs(implied).max()
    _require(
        np.allclose(precisions, implied, rtol=100 * tolerance, atol=tolerance * scale),
        "precisions_ do not match precisions_cholesky_",
    )


def _read_model(archive):
    """The model that ``archive`` holds, and the version that saved it."""
    header = _read_header(archive)
    params = _decode_parameters(header["params"], archive)
    fitted = header["fitted"]
    _require(
        fitted["dtype"] in _FLOAT_DTYPES,
        f"the fitted dtype {fitted['dtype']!r} is not float32 or float64",
    )
    dtype = np.dtype(_FLOAT_DTYPES[fitted["dtype"]])
    n_components = params["n_components"]
    n_features = _header_int(fitted, "n_features_in_", 1, 2**31)
    k = _header_int(fitted, "n_components_", 1, n_components)
    n_iter = _header_int(fitted, "n_iter_", 0, 2**31)
    for name in ("lower_bound_", "objective_"):
        value = fitted[name]
        _require(
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value),
            f"{name}={value!r} in the header is not a finite number",
        )
    _require(isinstance(fitted["converged_"], bool), "converged_ is not a boolean")
    _require(
        isinstance(fitted["has_feature_names"], bool),
        "has_feature_names is not a boolean",
    )
    covariance_type = params["covariance_type"]
    _require(
        isinstance(covariance_type, str)
        and covariance_type in ("full", "tied", "diag", "spherical"),
        f"covariance_type={covariance_type!r} in the header",
    )
    covariance_shape = _covariance_shape(covariance_type, k, n_features)
    specs = {
        "weights_": (dtype, (k,)),
        "means_": (dtype, (k, n_features)),
        "covariances_": (dtype, covariance_shape),
        "precisions_": (dtype, covariance_shape),
        "precisions_cholesky_": (dtype, covariance_shape),
        "active_components_": (np.dtype(np.int64), (k,)),
        "n_components_curve_": (np.dtype(np.int64), (n_iter,)),
        "loss_curve_": (np.dtype(np.float64), (n_iter,)),
        "time_curve_": (np.dtype(np.float64), (n_iter,)),
    }
    if fitted["has_feature_names"]:
        specs["feature_names_in_"] = (None, (n_features,))
    parameter_shapes = {
        "weights_init": (n_components,),
        "means_init": (n_components, n_features),
        "precisions_init": _covariance_shape(covariance_type, n_components, n_features),
    }
    for name in _ARRAY_PARAMETERS:
        if isinstance(params[name], str):
            specs[params[name]] = (np.dtype(np.float64), parameter_shapes[name])
    expected_members = {"header", *specs}
    if isinstance(header["params"]["random_state"], dict):
        expected_members.add("random_state_keys")
    names = archive.namelist()
    _require(len(names) == len(set(names)), "the archive repeats a member")
    found = {name.removesuffix(".npy") for name in names}
    _require(
        all(name.endswith(".npy") for name in names) and found == expected_members,
        f"the archive holds {sorted(found)}, expected {sorted(expected_members)}",
    )
    arrays = {
        name: _read_member(archive, name, member_dtype, shape)
        for name, (member_dtype, shape) in specs.items()
    }
    _check_fitted_values(arrays, covariance_type, n_components, dtype)
    for name in _ARRAY_PARAMETERS:
        if isinstance(params[name], str):
            params[name] = arrays.pop(params[name])
            _require(np.all(np.isfinite(params[name])), f"{name} is not finite")

    model = SparseGaussianMixture(**params)
    try:
        model._validate_params()
    except ValueError as error:
        raise _Refused(f"a parameter is invalid: {error}") from None
    for name, array in arrays.items():
        setattr(model, name, array)
    if fitted["has_feature_names"]:
        model.feature_names_in_ = arrays["feature_names_in_"].astype(object)
    for name in ("n_features_in_", "n_components_", "n_iter_", "converged_"):
        setattr(model, name, fitted[name])
    for name in ("lower_bound_", "objective_"):
        setattr(model, name, float(fitted[name]))
    return model, header["sparse_gmm_version"]


def load(path):
    """Load a model that :func:`save` wrote, running no code from the file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    SparseGaussianMixture
        Fitted, equal to the saved model.

    Raises
    ------
    ValueError
        If the file is not a complete, consistent sparse_gmm model file
        (truncated, altered, a pickle, written by a newer format version...);
        the message says what is wrong.
    OSError
        If the file cannot be opened (missing, a directory, no permission).

    Warns
    -----
    ModelVersionWarning
        If another version of sparse_gmm saved the model; the warning names
        both versions.

    See Also
    --------
    save : Write a model.
    """
    path = os.fspath(path)
    # Opened first, so that a missing file stays a FileNotFoundError.
    with open(path, "rb") as file:
        try:
            with zipfile.ZipFile(file) as archive:
                model, saved_by = _read_model(archive)
        except _Refused as error:
            raise ValueError(
                f"{path} is not a valid sparse_gmm model file: {error}."
            ) from None
        except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as error:
            # A truncated or altered archive: the ZIP and .npy readers fail in
            # many ways, all of which mean the same thing to the caller.
            raise ValueError(
                f"{path} is not a valid sparse_gmm model file: it is truncated "
                f"or altered ({type(error).__name__}: {error})."
            ) from None
    current = _package_version()
    if saved_by != current:
        warnings.warn(
            f"This model was saved by sparse_gmm {saved_by} and is loaded by "
            f"sparse_gmm {current}. Its file format is supported; check its "
            "results before relying on them.",
            ModelVersionWarning,
            stacklevel=2,
        )
    return model
