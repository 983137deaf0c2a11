"""sparse_gmm.save and sparse_gmm.load: equal models back, no code run from a file."""

import io
import json
import pickle
import re
import warnings
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import NotFittedError

import sparse_gmm
from sparse_gmm import ModelVersionWarning, SparseGaussianMixture
from sparse_gmm.penalties import LogPrior

from .conftest import gaussian_mixture_sample

FITTED = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
    "active_components_",
    "loss_curve_",
    "n_components_curve_",
    "time_curve_",
)
SCALARS = (
    "n_components_",
    "n_features_in_",
    "converged_",
    "n_iter_",
    "lower_bound_",
    "objective_",
)


@pytest.fixture(scope="module")
def X():
    return gaussian_mixture_sample(n_samples=400, n_components=3, seed=5)[0]


@pytest.fixture(scope="module")
def model(X):
    return SparseGaussianMixture(6, sparsity=2.0, random_state=0).fit(X)


@pytest.fixture
def saved(model, tmp_path):
    path = tmp_path / "model.npz"
    sparse_gmm.save(model, path)
    return path


def _assert_same_model(loaded, model, X):
    """Same parameters, same fitted state, and the same answers, bit for bit."""
    assert type(loaded) is SparseGaussianMixture
    expected_params, loaded_params = model.get_params(), loaded.get_params()
    assert loaded_params.keys() == expected_params.keys()
    for name, value in expected_params.items():
        if isinstance(value, np.ndarray | list):
            assert_array_equal(loaded_params[name], value)
        elif isinstance(value, np.random.RandomState):
            assert repr(loaded_params[name].get_state()) == repr(value.get_state())
        elif name == "prior" and not isinstance(value, str):
            assert type(loaded_params[name]) is type(value)
            assert vars(loaded_params[name]) == vars(value)
        else:
            assert loaded_params[name] == value, name
    for name in FITTED:
        expected = getattr(model, name)
        assert getattr(loaded, name).dtype == expected.dtype, name
        assert getattr(loaded, name).flags.writeable, name
        assert_array_equal(getattr(loaded, name), expected)
    for name in SCALARS:
        assert getattr(loaded, name) == getattr(model, name), name
    X = X.astype(model.means_.dtype)
    assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    assert_array_equal(loaded.predict(X), model.predict(X))
    assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.score(X) == model.score(X)
    assert loaded.bic(X) == model.bic(X)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip(X, tmp_path, covariance_type, dtype):
    model = SparseGaussianMixture(
        6, sparsity=2.0, covariance_type=covariance_type, random_state=3
    ).fit(X.astype(dtype))
    path = tmp_path / "model.npz"
    sparse_gmm.save(model, path)
    loaded = sparse_gmm.load(path)
    _assert_same_model(loaded, model, X)
    # random_state is an int: sample() draws the same samples each call.
    for got, expected in zip(loaded.sample(50), model.sample(50), strict=True):
        assert_array_equal(got, expected)


def test_round_trip_of_every_kind_of_parameter(X, tmp_path):
    """Array inits, a LogPrior object, a RandomState, a torch.device, feature names."""
    import torch

    start = SparseGaussianMixture(4, max_iter=0, random_state=0).fit(X)
    model = SparseGaussianMixture(
        4,
        weights_init=start.weights_,
        means_init=start.means_.tolist(),
        precisions_init=start.precisions_,
        prior=LogPrior(eps=1e-2),
        random_state=np.random.RandomState(7),
        device=torch.device("cpu"),
        solver="em",
        max_iter=50,
    ).fit(X)
    # Set by hand (pandas is not a dependency); predictions below then warn
    # that X has no names, which is beside the point here.
    model.feature_names_in_ = np.array(["width", "height"], dtype=object)
    path = tmp_path / "model.npz"
    sparse_gmm.save(model, path)
    loaded = sparse_gmm.load(path)
    assert loaded.get_params()["device"] == "cpu"
    model.set_params(device="cpu")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "X does not have valid feature names")
        _assert_same_model(loaded, model, X)
    assert loaded.feature_names_in_.dtype == object
    assert_array_equal(loaded.feature_names_in_, ["width", "height"])
    # The RandomState's state was saved: both continue the same stream.
    for got, expected in zip(loaded.sample(20), model.sample(20), strict=True):
        assert_array_equal(got, expected)


def test_pickle_keeps_working(model, X):
    loaded = pickle.loads(pickle.dumps(model))
    _assert_same_model(loaded, model, X)


def test_unfitted_model_is_refused(tmp_path):
    with pytest.raises(NotFittedError):
        sparse_gmm.save(SparseGaussianMixture(), tmp_path / "model.npz")
    assert not (tmp_path / "model.npz").exists()


def test_custom_prior_is_refused_at_save(X, tmp_path):
    class PowerPrior:
        def value(self, weights):
            return (weights**0.3).sum()

        def derivative(self, weights):
            return 0.3 * weights**-0.7

    model = SparseGaussianMixture(3, prior=PowerPrior(), random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"custom object.*PowerPrior.*pickle"):
        sparse_gmm.save(model, tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_model(tmp_path):
    for content in (b"", b"hello", b"PK\x03\x04garbage"):
        path = tmp_path / "bad.npz"
        path.write_bytes(content)
        with pytest.raises(ValueError, match="not a valid sparse_gmm model file"):
            sparse_gmm.load(path)
    with pytest.raises(FileNotFoundError):
        sparse_gmm.load(tmp_path / "missing.npz")


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


def _members(path):
    """Every member of a model file: the header as a dict, the rest as arrays."""
    with zipfile.ZipFile(path) as archive:
        members = {
            name.removesuffix(".npy"): np.lib.format.read_array(
                io.BytesIO(archive.read(name)), allow_pickle=True
            )
            for name in archive.namelist()
        }
    members["header"] = json.loads(members["header"].tobytes())
    return members


def _write(path, members, raw=None):
    """Write a model file by hand; ``raw`` members are bytes written verbatim."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in members.items():
            if name == "header":
                value = np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(value), allow_pickle=True)
            archive.writestr(f"{name}.npy", buffer.getvalue())
        for name, content in (raw or {}).items():
            archive.writestr(name, content)


def _edit(path, edit):
    members = _members(path)
    edit(members)
    _write(path, members)


TAMPERING = {
    "header not json": (
        lambda m: m.update(header=None),
        "header",
    ),
    "unknown format": (
        lambda m: m["header"].update(format="sklearn.GaussianMixture"),
        "format",
    ),
    "unknown parameter": (
        lambda m: m["header"]["params"].update(evil="rm -rf /"),
        "params",
    ),
    "bad parameter value": (
        lambda m: m["header"]["params"].update(covariance_type="eval"),
        "covariance_type",
    ),
    "parameter that is an object": (
        lambda m: m["header"]["params"].update(tol={"__class__": "os.system"}),
        "tol",
    ),
    "prior that names code": (
        lambda m: m["header"]["params"].update(
            prior={"class": "os.system", "eps": "touch /tmp/x"}
        ),
        "prior",
    ),
    "missing array": (lambda m: m.pop("means_"), "means_"),
    "extra member": (lambda m: m.update(extra=np.zeros(3)), "extra"),
    "wrong shape": (lambda m: m.update(means_=m["means_"][:, :1]), "means_"),
    "wrong dtype": (
        lambda m: m.update(weights_=m["weights_"].astype(np.float32)),
        "weights_",
    ),
    "nan mean": (
        lambda m: m["means_"].__setitem__((0, 0), np.nan),
        "means_ is not finite",
    ),
    "weights not summing to one": (
        lambda m: m.update(weights_=m["weights_"] * 2),
        "weights_",
    ),
    "indefinite covariance": (
        lambda m: m.update(covariances_=-m["covariances_"]),
        "covariances_",
    ),
    "precisions not matching their factor": (
        lambda m: m.update(precisions_=m["precisions_"] * 1.5),
        "precisions_",
    ),
    "shape forged to exhaust memory": (
        lambda m: m["header"]["fitted"].update(n_features_in_=2**31),
        "shape",
    ),
    "n_components_ above n_components": (
        lambda m: m["header"]["fitted"].update(n_components_=10**6),
        "n_components_",
    ),
}


@pytest.mark.parametrize("case", TAMPERING, ids=list(TAMPERING))
def test_tampered_files_are_refused(saved, case):
    edit, message = TAMPERING[case]
    _edit(saved, edit)
    with pytest.raises(ValueError, match=message) as raised:
        sparse_gmm.load(saved)
    assert "not a valid sparse_gmm model file" in str(raised.value)


class _CreatesMarker:
    """Unpickling this creates a file: evidence that code from the file ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_payload_is_refused_and_never_runs(saved, tmp_path):
    marker = tmp_path / "pwned"
    payload = np.array([_CreatesMarker(str(marker))], dtype=object)
    original = _members(saved)

    # The payload as a member that the loader reads (an object array, which
    # np.load with allow_pickle=True would unpickle), under a header that
    # asks for something odd.
    members = _members(saved)
    members["weights_"] = payload
    members["header"]["params"]["prior"] = {"class": "builtins.open", "eps": 1}
    _write(saved, members)
    with pytest.raises(ValueError, match="not a valid sparse_gmm model file"):
        sparse_gmm.load(saved)
    assert not marker.exists()

    # The same payload under the original, valid header: refused for the member.
    _write(saved, {**original, "weights_": payload})
    with pytest.raises(ValueError, match=r"weights_.*Python objects"):
        sparse_gmm.load(saved)
    assert not marker.exists()

    # A whole-file pickle named like a model file.
    saved.write_bytes(pickle.dumps(_CreatesMarker(str(marker))))
    with pytest.raises(ValueError, match="not a valid sparse_gmm model file"):
        sparse_gmm.load(saved)
    assert not marker.exists()

    # The payload does create the marker when unpickled: the checks above can fail.
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, payload, allow_pickle=True)
    buffer.seek(0)
    np.lib.format.read_array(buffer, allow_pickle=True)
    assert marker.exists()


def test_newer_format_version_is_refused(saved):
    def newer(members):
        members["header"]["format_version"] = sparse_gmm._persistence.FORMAT_VERSION + 1
        members["header"]["sparse_gmm_version"] = "99.0"

    _edit(saved, newer)
    with pytest.raises(ValueError, match=r"format version 2 by sparse_gmm 99\.0.*up"):
        sparse_gmm.load(saved)


def test_a_model_from_another_version_says_so(saved, model, X):
    _edit(saved, lambda m: m["header"].update(sparse_gmm_version="0.0.1"))
    both = rf"sparse_gmm 0\.0\.1 .*sparse_gmm {re.escape(sparse_gmm.__version__)}"
    with pytest.warns(ModelVersionWarning, match=both):
        loaded = sparse_gmm.load(saved)
    _assert_same_model(loaded, model, X)


def test_same_version_loads_silently(saved):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sparse_gmm.load(saved)


def test_an_interrupted_save_leaves_no_file(model, tmp_path, monkeypatch):
    """The file appears complete or not at all (written, then renamed)."""

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", fail)
    with pytest.raises(OSError, match="disk full"):
        sparse_gmm.save(model, tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []
