"""sparse_gmm.save and sparse_gmm.load: equal objects back, no code run from a file."""

import copy
import json
import pickle
import re
import sys
import warnings
import zipfile

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sparse_gmm
from sparse_gmm import (
    ModelVersionWarning,
    SparseGaussianMixture,
    SparseGaussianMixtureCV,
    bic_scorer,
)
from sparse_gmm._fitted import FITTED_ATTRIBUTES
from sparse_gmm.penalties import LogPrior

from .conftest import gaussian_mixture_sample

skops_io = pytest.importorskip("skops.io")


class PowerPrior:
    """A custom prior: code that a file may name but load must not trust."""

    def __init__(self, power=0.3):
        self.power = power

    def value(self, weights):
        return (weights**self.power).sum()

    def derivative(self, weights):
        return self.power * weights ** (self.power - 1)


@pytest.fixture(scope="module")
def X():
    return gaussian_mixture_sample(n_samples=400, n_components=3, seed=5)[0]


@pytest.fixture(scope="module")
def model(X):
    return SparseGaussianMixture(6, sparsity=2.0, random_state=0).fit(X)


@pytest.fixture(scope="module")
def cv_model(X):
    return SparseGaussianMixtureCV(
        5,
        n_sparsities=3,
        cv=KFold(2, shuffle=True, random_state=0),
        scoring=bic_scorer,
        random_state=0,
    ).fit(X)


@pytest.fixture
def saved(model, tmp_path):
    path = tmp_path / "model.skops"
    sparse_gmm.save(model, path)
    return path


def _assert_same_state(loaded, expected, where="model"):
    """Every attribute, recursively: same types, same arrays bit for bit."""
    assert type(loaded) is type(expected), where
    if isinstance(expected, np.ndarray):
        assert loaded.dtype == expected.dtype, where
        assert loaded.flags.writeable, where
        assert_array_equal(loaded, expected, err_msg=where)
    elif isinstance(expected, np.random.RandomState):
        assert repr(loaded.get_state()) == repr(expected.get_state()), where
    elif isinstance(expected, dict):
        assert loaded.keys() == expected.keys(), where
        for key in expected:
            _assert_same_state(loaded[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, list | tuple):
        assert len(loaded) == len(expected), where
        for k, (got, value) in enumerate(zip(loaded, expected, strict=True)):
            _assert_same_state(got, value, f"{where}[{k}]")
    elif callable(expected):  # a scorer: the same function, by its name
        assert loaded is expected, where
    elif hasattr(expected, "__dict__"):  # an estimator, a prior, a splitter
        _assert_same_state(vars(loaded), vars(expected), where)
    else:
        assert loaded == expected, where


def _assert_same_answers(loaded, expected, X):
    X = np.asarray(X, dtype=np.float64)
    for method in ("score_samples", "predict", "predict_proba"):
        assert_array_equal(getattr(loaded, method)(X), getattr(expected, method)(X))
    assert loaded.score(X) == expected.score(X)


def _round_trip(obj, tmp_path):
    path = tmp_path / "model.skops"
    sparse_gmm.save(obj, path)
    return sparse_gmm.load(path)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip(X, tmp_path, covariance_type, dtype):
    model = SparseGaussianMixture(
        6, sparsity=2.0, covariance_type=covariance_type, random_state=3
    ).fit(X.astype(dtype))
    loaded = _round_trip(model, tmp_path)
    _assert_same_state(loaded, model)
    _assert_same_answers(loaded, model, X.astype(dtype))
    assert loaded.bic(X) == model.bic(X)
    # random_state is an int: sample() draws the same samples each call.
    for got, expected in zip(loaded.sample(50), model.sample(50), strict=True):
        assert_array_equal(got, expected)


def test_every_fitted_attribute_is_kept(model, tmp_path):
    loaded = _round_trip(model, tmp_path)
    for name in (*FITTED_ATTRIBUTES, "n_features_in_"):
        _assert_same_state(getattr(loaded, name), getattr(model, name), name)
    assert loaded.engine_ == "torch"


def test_round_trip_of_every_kind_of_parameter(X, tmp_path):
    """Array inits, a LogPrior object, a RandomState, a torch.device, feature names."""
    start = SparseGaussianMixture(4, max_iter=0, random_state=0).fit(X)
    model = SparseGaussianMixture(
        4,
        weights_init=start.weights_,
        means_init=start.means_.tolist(),
        precisions_init=start.precisions_,
        covariance_prior=np.eye(2),
        prior=LogPrior(eps=1e-2),
        random_state=np.random.RandomState(7),
        device=torch.device("cpu"),
        max_iter=50,
    ).fit(X)
    # Set by hand (pandas is not a dependency); predictions below then warn
    # that X has no names, which is beside the point here.
    model.feature_names_in_ = np.array(["width", "height"], dtype=object)
    loaded = _round_trip(model, tmp_path)
    _assert_same_state(loaded, model)
    assert loaded.device == torch.device("cpu")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "X does not have valid feature names")
        _assert_same_answers(loaded, model, X)
    # The RandomState's state was saved: both continue the same stream.
    for got, expected in zip(loaded.sample(20), model.sample(20), strict=True):
        assert_array_equal(got, expected)


def test_round_trip_of_the_cv_model(cv_model, X, tmp_path):
    loaded = _round_trip(cv_model, tmp_path)
    # Every attribute: the parameters (the splitter and the scorer included),
    # cv_results_, best_estimator_ and the fitted attributes copied from it.
    _assert_same_state(loaded, cv_model)
    _assert_same_answers(loaded, cv_model, X)
    assert loaded.scoring is bic_scorer
    assert loaded.bic(X) == cv_model.bic(X)
    # The copies are the refit's own arrays again, as after fit.
    assert loaded.means_ is loaded.best_estimator_.means_


@pytest.mark.parametrize(
    "pipeline",
    [
        make_pipeline(StandardScaler(), SparseGaussianMixture(5, random_state=0)),
        make_pipeline(
            PCA(2), SparseGaussianMixtureCV(5, n_sparsities=2, cv=2, random_state=0)
        ),
    ],
    ids=["scaler+estimator", "pca+cv"],
)
def test_round_trip_of_a_pipeline(pipeline, X, tmp_path):
    noise = np.random.default_rng(0).normal(size=len(X))
    X3 = np.column_stack([X, X[:, 0] - 2 * X[:, 1] + noise])
    pipeline = clone(pipeline).fit(X3)
    loaded = _round_trip(pipeline, tmp_path)
    _assert_same_state(loaded, pipeline)
    _assert_same_answers(loaded, pipeline, X3)
    assert_array_equal(loaded[-1].sample(10)[0], pipeline[-1].sample(10)[0])


def test_pickle_keeps_working(model, X):
    loaded = pickle.loads(pickle.dumps(model))
    _assert_same_state(loaded, model)


def test_what_cannot_be_saved(X, tmp_path):
    path = tmp_path / "model.skops"
    for unfitted in (
        SparseGaussianMixture(),
        SparseGaussianMixtureCV(),
        make_pipeline(StandardScaler(), SparseGaussianMixture()),
    ):
        with pytest.raises(NotFittedError):
            sparse_gmm.save(unfitted, path)
    for other in (GaussianMixture(2).fit(X), make_pipeline(StandardScaler()).fit(X)):
        with pytest.raises(TypeError, match="Pipeline that holds one"):
            sparse_gmm.save(other, path)
    assert list(tmp_path.iterdir()) == []


def test_a_custom_prior_loads_only_when_trusted(X, tmp_path):
    model = SparseGaussianMixture(3, prior=PowerPrior(), random_state=0).fit(X)
    path = tmp_path / "model.skops"
    sparse_gmm.save(model, path)
    name = f"{__name__}.PowerPrior"
    with pytest.raises(ValueError, match=rf"does not build.*{re.escape(name)}"):
        sparse_gmm.load(path)
    loaded = sparse_gmm.load(path, trusted=[name])
    _assert_same_state(loaded, model)


def test_a_file_that_is_not_a_model(tmp_path):
    for content in (b"", b"hello", b"PK\x03\x04garbage"):
        path = tmp_path / "bad.skops"
        path.write_bytes(content)
        with pytest.raises(ValueError, match="not a valid sparse_gmm model file"):
            sparse_gmm.load(path)
    with pytest.raises(FileNotFoundError):
        sparse_gmm.load(tmp_path / "missing.skops")


def test_another_estimator_in_the_format_is_refused(X, tmp_path):
    path = tmp_path / "model.skops"
    skops_io.dump(GaussianMixture(2).fit(X), path)
    with pytest.raises(ValueError, match="holds a GaussianMixture, not a"):
        sparse_gmm.load(path)


def test_truncated_files_are_refused(saved):
    content = saved.read_bytes()
    for length in (10, 100, len(content) // 3, len(content) // 2, len(content) - 30):
        saved.write_bytes(content[:length])
        with pytest.raises(ValueError, match="not a valid sparse_gmm model file"):
            sparse_gmm.load(saved)


def test_a_flipped_byte_is_refused(saved, model):
    """The ZIP's CRC covers every member: any altered byte is caught."""
    content = bytearray(saved.read_bytes())
    position = bytes(content).find(model.means_.tobytes())
    assert position > 0
    content[position + 5] ^= 0x01
    saved.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="truncated or altered"):
        sparse_gmm.load(saved)


def test_a_compressed_file_is_refused(saved, model):
    """Stored members only: a small file cannot unpack into a large one."""
    with zipfile.ZipFile(saved) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(saved, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(ValueError, match="compressed; sparse_gmm writes stored"):
        sparse_gmm.load(saved)


def test_a_file_in_the_old_npz_format_says_so(tmp_path):
    path = tmp_path / "model.npz"
    np.savez(path, header=np.frombuffer(b"{}", dtype=np.uint8))
    with pytest.raises(ValueError, match=r"format version 1 \(\.npz\).*save it again"):
        sparse_gmm.load(path)


def _forge(obj, path, version=sparse_gmm.__version__):
    """A file as a forger writes it: skops' own dump of any object."""
    skops_io.dump(obj, path)
    if version is not None:
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(
                "sparse_gmm.json", json.dumps({"sparse_gmm_version": version})
            )


def _tampered(model, edit):
    forged = copy.deepcopy(model)
    edit(forged)
    return forged


def _set(name, value):
    return lambda model: setattr(model, name, value)


TAMPERING = {
    "wrong shape": (
        lambda m: setattr(m, "means_", m.means_[:, :1].copy()),
        r"means_ is not a float64 array of shape \(3, 2\)",
    ),
    "wrong dtype": (
        lambda m: setattr(m, "weights_", m.weights_.astype(np.float32)),
        "weights_ is not a float64 array",
    ),
    "nan mean": (
        lambda m: m.means_.__setitem__((0, 0), np.nan),
        "means_ is not finite",
    ),
    "weights not summing to one": (
        lambda m: setattr(m, "weights_", m.weights_ * 2),
        "weights_ are not positive weights summing to one",
    ),
    "indefinite covariance": (
        lambda m: setattr(m, "covariances_", -m.covariances_),
        "covariances_ are not positive definite",
    ),
    "precisions not matching their factor": (
        lambda m: setattr(m, "precisions_", m.precisions_ * 1.5),
        "precisions_ do not match precisions_cholesky_",
    ),
    "curve of the wrong length": (
        lambda m: setattr(m, "loss_curve_", m.loss_curve_[:-1]),
        r"loss_curve_ is not a real array of shape",
    ),
    "n_components_ above n_components": (
        _set("n_components_", 10**6),
        r"n_components_=1000000 is not in \[1, n_components=6\]",
    ),
    "unknown engine": (_set("engine_", "os.system"), "engine_='os.system'"),
    "invalid parameter": (
        _set("covariance_type", "eval"),
        "a parameter is invalid.*covariance_type",
    ),
    "extra attribute": (
        _set("payload_", "rm -rf /"),
        r"unexpected attributes \['payload_'\]",
    ),
    "missing attribute": (
        lambda m: delattr(m, "time_curve_"),
        r"missing attributes \['time_curve_'\]",
    ),
}


@pytest.mark.parametrize("case", TAMPERING, ids=list(TAMPERING))
def test_tampered_models_are_refused(model, tmp_path, case):
    edit, message = TAMPERING[case]
    path = tmp_path / "model.skops"
    _forge(_tampered(model, edit), path)
    with pytest.raises(ValueError, match=message) as raised:
        sparse_gmm.load(path)
    assert "not a valid sparse_gmm model file" in str(raised.value)


@pytest.mark.parametrize("name", FITTED_ATTRIBUTES)
def test_every_fitted_attribute_is_checked(model, tmp_path, name):
    """A fitted attribute that _fitted.py lists but load does not check fails here."""
    path = tmp_path / "model.skops"
    _forge(_tampered(model, _set(name, None)), path)
    with pytest.raises(ValueError, match=re.escape(name)):
        sparse_gmm.load(path)


CV_TAMPERING = {
    "a copy unlike the refit's": (
        lambda m: setattr(m, "means_", m.means_ + 1.0),
        "means_ is not best_estimator_'s",
    ),
    "a refit that no fit produces": (
        lambda m: setattr(
            m.best_estimator_, "covariances_", -m.best_estimator_.covariances_
        ),
        "best_estimator_.covariances_ are not positive definite",
    ),
    "sparsity_ off the grid": (
        _set("sparsity_", 123.0),
        r"sparsity_ is not sparsities_\[best_index_\]",
    ),
    "results of another grid": (
        lambda m: m.cv_results_.update(mean_test_score=np.zeros(1)),
        "cv_results_ is not one row per sparsity",
    ),
}


@pytest.mark.parametrize("case", CV_TAMPERING, ids=list(CV_TAMPERING))
def test_tampered_cv_models_are_refused(cv_model, tmp_path, case):
    edit, message = CV_TAMPERING[case]
    path = tmp_path / "model.skops"
    _forge(_tampered(cv_model, edit), path)
    with pytest.raises(ValueError, match=message):
        sparse_gmm.load(path)


def test_a_tampered_pipeline_step_is_refused_and_named(model, tmp_path):
    pipeline = make_pipeline(StandardScaler(), copy.deepcopy(model))
    pipeline.steps[-1][1].weights_ = pipeline.steps[-1][1].weights_ * 2
    path = tmp_path / "model.skops"
    _forge(pipeline, path)
    with pytest.raises(ValueError, match="SparseGaussianMixture step's weights_"):
        sparse_gmm.load(path)


def _edit_schema(path, edit):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    edit(schema)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


class _CreatesMarker:
    """Unpickling this creates a file: evidence that code from the file ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_an_unknown_type_is_refused_and_never_built(X, tmp_path):
    model = SparseGaussianMixture(3, prior=LogPrior(eps=1e-2), random_state=0).fit(X)
    path = tmp_path / "model.skops"
    sparse_gmm.save(model, path)

    def rename_prior(schema):
        prior = schema["content"]["content"]["prior"]
        assert prior["__class__"] == "LogPrior"
        prior["__module__"], prior["__class__"] = "subprocess", "Popen"

    _edit_schema(path, rename_prior)
    with pytest.raises(ValueError, match=r"does not build.*subprocess\.Popen"):
        sparse_gmm.load(path)


def test_a_pickle_payload_is_refused_and_never_runs(saved, tmp_path):
    marker = tmp_path / "pwned"
    saved.write_bytes(pickle.dumps(_CreatesMarker(str(marker))))
    with pytest.raises(ValueError, match="not a valid sparse_gmm model file"):
        sparse_gmm.load(saved)
    assert not marker.exists()
    # The payload does create the marker when unpickled: the check can fail.
    pickle.loads(saved.read_bytes())
    assert marker.exists()


def test_a_model_from_another_version_says_so(model, tmp_path):
    path = tmp_path / "model.skops"
    _forge(model, path, version="0.0.1")
    both = rf"sparse_gmm 0\.0\.1 .*sparse_gmm {re.escape(sparse_gmm.__version__)}"
    with pytest.warns(ModelVersionWarning, match=both):
        loaded = sparse_gmm.load(path)
    _assert_same_state(loaded, model)


def test_same_version_and_plain_skops_files_load_silently(saved, model, tmp_path):
    plain = tmp_path / "plain.skops"
    _forge(model, plain, version=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sparse_gmm.load(saved)
        _assert_same_state(sparse_gmm.load(plain), model)


def test_an_interrupted_save_leaves_no_file(model, tmp_path, monkeypatch):
    """The file appears complete or not at all (written, then renamed)."""

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sparse_gmm._persistence.os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        sparse_gmm.save(model, tmp_path / "model.skops")
    assert list(tmp_path.iterdir()) == []


def test_without_skops_the_error_names_the_extra(model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(ImportError, match=r"sparse_gmm\[persist\]"):
        sparse_gmm.save(model, tmp_path / "model.skops")
