"""The command line, the spiral demo and the synthetic data sets."""

import os
import re
import runpy
import subprocess
import sys

import numpy as np
import pytest
import torch

import sparse_gmm
from sparse_gmm import SparseGaussianMixture
from sparse_gmm._cli import COVARIANCE_TYPES, FIT_DEFAULTS, main
from sparse_gmm._gaussian import COVARIANCE_TYPES as ESTIMATOR_COVARIANCE_TYPES
from sparse_gmm._io import load_data
from sparse_gmm.datasets import make_mixture, make_spiral

from .conftest import modules_after

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def three_clusters():
    """A clear 3-component mixture, small enough to fit in well under a second."""
    X, _ = make_mixture(n_components=3, n_samples=300, random_state=0)
    return X


def _component_rows(output):
    """The rows of the printed components table (they start with an index)."""
    return [line for line in output.splitlines() if re.match(r"^\s*\d+\s+0\.", line)]


# ----------------------------------------------------------- the parser


def test_version(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["--version"])
    assert excinfo.value.code == 0
    assert capsys.readouterr().out.strip() == f"sparse-gmm {sparse_gmm.__version__}"


def test_help_imports_neither_torch_nor_the_estimator():
    # --help must answer at once: torch and scikit-learn take seconds to import.
    modules = modules_after(
        "import contextlib, io\n"
        "from sparse_gmm._cli import main\n"
        "for argv in ([], ['fit'], ['demo']):\n"
        "    with contextlib.suppress(SystemExit), "
        "contextlib.redirect_stdout(io.StringIO()):\n"
        "        main([*argv, '--help'])"
    )
    assert "sparse_gmm._cli" in modules
    for name in ("torch", "sklearn", "sparse_gmm._estimator", "matplotlib"):
        assert name not in modules, name


def test_demo_help_names_the_three_figures(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in ("spiral_density.png", "spiral_convergence.png", "spiral_solvers.png"):
        assert name in out


def test_fit_help_quotes_the_estimators_defaults():
    # The parser may not import the estimator, so it quotes its defaults.
    defaults = SparseGaussianMixture().get_params()
    assert {name: defaults[name] for name in FIT_DEFAULTS} == FIT_DEFAULTS
    assert COVARIANCE_TYPES == ESTIMATOR_COVARIANCE_TYPES


# ------------------------------------------------------------------ demo


@pytest.mark.slow
def test_demo_writes_figures_and_table(tmp_path):
    # Through the interpreter, as a user runs it: checks __main__ as well.
    out = tmp_path / "demo"
    # One thread: on a small shared machine (tests running in parallel),
    # torch's and OpenMP's spinning worker threads made this 5-10 times slower.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "sparse_gmm", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr
    for name in ("spiral_density.png", "spiral_convergence.png", "spiral_solvers.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC

    sparse = re.search(
        r"^SparseGaussianMixture\(.*\)\s+(\d+)\s+(-?\d+\.\d+)\s+(\d+\.\d+)$",
        completed.stdout,
        flags=re.MULTILINE,
    )
    assert sparse is not None, completed.stdout
    kept = int(sparse.group(1))
    assert 1 <= kept < 30
    mixtures = re.findall(
        r"^GaussianMixture\(n_components=(\d+)\)\s+\d+\s+-?\d+\.\d+\s+\d+\.\d+$",
        completed.stdout,
        flags=re.MULTILINE,
    )
    assert sorted(int(n) for n in mixtures) == sorted([kept, 30])
    # The solver comparison: the tutorial's problem by MM-EM and by Adam.
    solvers = re.findall(
        r"^SparseGaussianMixture\(n_components=30, sparsity=20, "
        r"solver='(em|adam)'(?:, removal_moves=True)?\)\s+(\d+)\s+-?\d+\.\d+"
        r"\s+\d+\.\d+$",
        completed.stdout,
        flags=re.MULTILINE,
    )
    assert sorted(solver for solver, _ in solvers) == ["adam", "em", "em"], (
        completed.stdout
    )
    assert all(1 <= int(components) < 30 for _, components in solvers)


def test_density_figure_labels_the_density_and_marks_the_components():
    pytest.importorskip("matplotlib")
    from sklearn.mixture import GaussianMixture

    from sparse_gmm._demo import density_figure

    X = make_spiral(n_samples=600, random_state=0).astype(np.float64)
    # Any fitted 2-D mixture: scikit-learn's is quick and independent.
    model = GaussianMixture(n_components=3, random_state=0).fit(X)
    figure = density_figure(model, X, "three components")

    axes, colour_bar_axes = figure.axes
    assert "log-density" in colour_bar_axes.get_ylabel()
    assert axes.get_title() == "three components"
    assert axes.get_xlabel() and axes.get_ylabel()
    # The colour scale is the log-density's: its top is the highest value on
    # the plotted grid, which no point of the square can exceed.
    (image,) = axes.get_images()
    top = image.get_clim()[1]
    ticks = np.linspace(0.0025, 0.9975, 200)
    grid = np.column_stack([a.ravel() for a in np.meshgrid(ticks, ticks)])
    assert top == pytest.approx(model.score_samples(grid).max())

    lines = {line.get_label(): line for line in axes.get_lines()}
    markers = lines["component mean"]
    np.testing.assert_allclose(
        np.column_stack(markers.get_data()), model.means_, rtol=1e-12
    )
    # One closed curve per component, every point 2 standard deviations from
    # its mean in the component's own metric.
    ellipses = [
        line
        for line in axes.get_lines()
        if line is not markers and len(line.get_xdata()) > 2
    ]
    assert len(ellipses) == 3
    for line, mean, precision in zip(
        ellipses, model.means_, model.precisions_, strict=True
    ):
        offsets = np.column_stack(line.get_data()) - mean
        mahalanobis = np.einsum("nd,de,ne->n", offsets, precision, offsets)
        np.testing.assert_allclose(mahalanobis, 4.0, rtol=1e-9)
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert "component mean" in legend
    assert "2-sigma ellipse" in legend


# ------------------------------------------------------------------- fit


@pytest.mark.parametrize("kind", ["csv", "npy"])
def test_fit_prints_the_three_components(tmp_path, capsys, three_clusters, kind):
    X = three_clusters
    if kind == "csv":
        path = tmp_path / "data.csv"
        rows = "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in X)
        path.write_text(f"height,width\n{rows}\n")
    else:
        path = tmp_path / "data.npy"
        np.save(path, X)

    status = main(
        [
            "fit",
            str(path),
            "--n-components",
            "10",
            "--sparsity",
            "10",
            "--random-state",
            "0",
        ]
    )

    assert status == 0
    out = capsys.readouterr().out
    assert "n_components_ = 3" in out
    assert "lower_bound_ = " in out
    assert "converged_ = True" in out
    rows = _component_rows(out)
    assert len(rows) == 3
    weights = [float(row.split()[1]) for row in rows]
    assert sum(weights) == pytest.approx(1.0, abs=1e-3)
    if kind == "csv":
        # The header row names the columns instead of being read as data.
        assert "mean[height]" in out
        assert "std[width]" in out


FIT_ARGS = ["--n-components", "10", "--sparsity", "10", "--random-state", "0"]


def _reference_fit(X):
    """The fit FIT_ARGS ask for, in this process."""
    return SparseGaussianMixture(n_components=10, sparsity=10, random_state=0).fit(X)


@pytest.mark.parametrize("name", ["labels.txt", "labels.npy"])
def test_fit_writes_labels(tmp_path, capsys, three_clusters, name):
    data = tmp_path / "data.npy"
    np.save(data, three_clusters)
    labels_path = tmp_path / name
    assert main(["fit", str(data), "--labels", str(labels_path), *FIT_ARGS]) == 0
    assert f"Labels written to {labels_path}" in capsys.readouterr().out
    if name.endswith(".npy"):
        labels = np.load(labels_path)
        assert np.issubdtype(labels.dtype, np.integer)
    else:
        lines = labels_path.read_text().splitlines()
        assert all(re.fullmatch(r"\d+", line) for line in lines)
        labels = np.array([int(line) for line in lines])
    expected = _reference_fit(three_clusters).predict(three_clusters)
    np.testing.assert_array_equal(labels, expected)
    assert sorted(set(labels.tolist())) == [0, 1, 2]


def test_fit_saves_the_model(tmp_path, capsys, three_clusters):
    data = tmp_path / "data.npy"
    np.save(data, three_clusters)
    model_path = tmp_path / "model.skops"
    assert main(["fit", str(data), "--save", str(model_path), *FIT_ARGS]) == 0
    assert f"Model saved to {model_path}" in capsys.readouterr().out
    loaded = sparse_gmm.load(model_path)
    reference = _reference_fit(three_clusters)
    assert loaded.n_components_ == reference.n_components_ == 3
    np.testing.assert_array_equal(
        loaded.score_samples(three_clusters), reference.score_samples(three_clusters)
    )


def test_save_without_skops_is_refused_before_fitting(
    tmp_path, capsys, three_clusters, monkeypatch
):
    monkeypatch.setitem(sys.modules, "skops.io", None)
    data = tmp_path / "data.npy"
    np.save(data, three_clusters)
    assert main(["fit", str(data), "--save", str(tmp_path / "m.skops")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before the fit printed anything
    assert "sparse_gmm[persist]" in captured.err


@pytest.mark.parametrize("option", ["--labels", "--save"])
def test_fit_refuses_an_output_in_a_missing_folder_before_fitting(
    tmp_path, capsys, three_clusters, option
):
    data = tmp_path / "data.npy"
    np.save(data, three_clusters)
    target = tmp_path / "no_such_folder" / "out.npy"
    assert main(["fit", str(data), option, str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before the fit printed anything
    assert "does not exist" in captured.err
    assert option in captured.err


def _write_table(path, X, delimiter, header):
    lines = [header] if header is not None else []
    lines += [delimiter.join(repr(float(value)) for value in row) for row in X]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("delimiter", "header"),
    [
        (",", "height,width"),
        (";", "height;width"),
        # A comma in a name misled the old guess (a comma anywhere on the
        # first line meant comma-separated): a one-column header, then an error.
        (";", "height, cm;width, cm"),
        ("\t", "height\twidth"),
        ("   ", "height   width"),
        (",", None),
        (";", None),
        (" ", None),
    ],
)
def test_load_data_detects_the_delimiter(tmp_path, three_clusters, delimiter, header):
    path = tmp_path / "data.txt"
    _write_table(path, three_clusters, delimiter, header)
    X, names = load_data(path)
    np.testing.assert_array_equal(X, three_clusters)
    if header is None:
        assert names is None
    else:
        assert len(names) == 2
        assert names[0].startswith("height")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("a|b\n1.0|2.0\n3.0|4.0\n", "pipe"),
        ("1.0|2.0\n3.0|4.0\n", "pipe"),
        # Decimal commas: neither ',' nor ';' gives numbers.
        ("1,5;2,5\n3,5;4,5\n", "decimal commas"),
    ],
)
def test_fit_unreadable_delimiter_is_a_clear_error(tmp_path, capsys, text, kind):
    path = tmp_path / "data.csv"
    path.write_text(text)
    assert main(["fit", str(path), "--n-components", "2"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert "cannot split line" in line
    assert "--delimiter" in line


@pytest.mark.parametrize(
    ("delimiter", "option"),
    [("|", "|"), ("\t", "tab"), ("\t", "\\t"), (" ", "whitespace")],
)
def test_fit_delimiter_option(tmp_path, capsys, three_clusters, delimiter, option):
    path = tmp_path / "data.txt"
    _write_table(path, three_clusters, delimiter, header=f"a{delimiter}b")
    labels_path = tmp_path / "labels.npy"
    argv = ["fit", str(path), "--delimiter", option, "--labels", str(labels_path)]
    assert main([*argv, *FIT_ARGS]) == 0
    assert "mean[a]" in capsys.readouterr().out
    expected = _reference_fit(three_clusters).predict(three_clusters)
    np.testing.assert_array_equal(np.load(labels_path), expected)


def test_fit_delimiter_option_rejects_a_long_delimiter(tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["fit", str(tmp_path / "x.csv"), "--delimiter", "::"])
    assert excinfo.value.code == 2
    assert "one character" in capsys.readouterr().err


def test_fit_other_covariance_type_prints_standard_deviations(
    tmp_path, capsys, three_clusters
):
    path = tmp_path / "data.npy"
    np.save(path, three_clusters)
    status = main(
        [
            "fit",
            str(path),
            "--covariance-type",
            "spherical",
            "--n-components",
            "3",
            "--sparsity",
            "0",
            "--random-state",
            "0",
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    rows = _component_rows(out)
    assert len(rows) == 3
    # Spherical: the same standard deviation along both features.
    for row in rows:
        std_x, std_y = row.split()[-2:]
        assert std_x == std_y


def _write_bad_file(tmp_path, kind):
    if kind == "missing":
        return tmp_path / "missing.csv"
    if kind == "one_dimensional":
        path = tmp_path / "values.npy"
        np.save(path, np.arange(10.0))
    elif kind == "non_numeric":
        path = tmp_path / "words.csv"
        path.write_text("a,b\n1.0,2.0\n3.0,oops\n")
    elif kind == "ragged":
        path = tmp_path / "ragged.csv"
        path.write_text("1.0,2.0\n3.0\n")
    elif kind == "binary":
        path = tmp_path / "binary.csv"
        path.write_bytes(b"\xff\xfe\x00\x81\x82")
    elif kind == "not_npy":
        path = tmp_path / "text.npy"
        path.write_text("1,2\n3,4\n")
    elif kind == "strings_npy":
        path = tmp_path / "strings.npy"
        np.save(path, np.array([["a", "b"], ["c", "d"]]))
    elif kind == "empty":
        path = tmp_path / "empty.csv"
        path.write_text("\n# only a comment\n")
    elif kind == "header_only":
        path = tmp_path / "header.csv"
        path.write_text("x,y\n")
    elif kind == "nan":
        path = tmp_path / "nan.csv"
        path.write_text("1,2\nnan,3\n4,5\n6,7\n")
    return path


@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "one_dimensional",
        "non_numeric",
        "ragged",
        "binary",
        "not_npy",
        "strings_npy",
        "empty",
        "header_only",
        "nan",
    ],
)
def test_fit_bad_file_exits_2_with_one_line(tmp_path, capsys, kind):
    path = _write_bad_file(tmp_path, kind)
    status = main(["fit", str(path), "--n-components", "2"])
    assert status == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("sparse-gmm: error: ")
    assert "Traceback" not in captured.err


def test_module_entry_point_exits_with_mains_status(tmp_path, monkeypatch, capsys):
    # What ``python -m sparse_gmm`` runs, in-process: a second interpreter
    # would cost seconds of imports for what the demo test already covers.
    path = _write_bad_file(tmp_path, "one_dimensional")
    monkeypatch.setattr(sys, "argv", ["sparse_gmm", "fit", str(path)])
    with pytest.raises(SystemExit) as excinfo:
        runpy.run_module("sparse_gmm", run_name="__main__", alter_sys=True)
    assert excinfo.value.code == 2
    assert "1-D" in capsys.readouterr().err


def test_fit_invalid_parameter_exits_2(tmp_path, capsys, three_clusters):
    path = tmp_path / "data.npy"
    np.save(path, three_clusters)
    assert main(["fit", str(path), "--sparsity", "-1"]) == 2
    assert "sparsity" in capsys.readouterr().err


def test_missing_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main([])
    assert excinfo.value.code == 2


# ------------------------------------------------------------- datasets


def test_make_spiral_defaults_reproduce_the_tutorial():
    with torch.random.fork_rng():
        # The tutorial's lines, verbatim.
        torch.manual_seed(0)
        N = 10000
        t = torch.linspace(0, 2 * np.pi, N + 1)[:-1]
        x = torch.stack((0.5 + 0.4 * (t / 7) * t.cos(), 0.5 + 0.3 * t.sin()), 1)
        x = x + 0.02 * torch.randn(x.shape)
    expected = x.numpy()

    X = make_spiral()
    assert X.shape == (10000, 2)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, expected.astype(np.float64))
    np.testing.assert_array_equal(make_spiral(dtype=np.float32), expected)


def test_make_spiral_leaves_the_global_torch_rng_alone():
    with torch.random.fork_rng():
        torch.manual_seed(123)
        expected = torch.rand(3)
        torch.manual_seed(123)
        make_spiral(n_samples=100, random_state=7)
        np.testing.assert_array_equal(torch.rand(3), expected)


def test_make_spiral_random_state():
    np.testing.assert_array_equal(
        make_spiral(200, random_state=3), make_spiral(200, random_state=3)
    )
    assert not np.array_equal(
        make_spiral(200, random_state=3), make_spiral(200, random_state=4)
    )
    X = make_spiral(50, noise=0.0)
    # Without noise the points lie exactly on the curve.
    t = np.linspace(0, 2 * np.pi, 51, dtype=np.float32)[:-1]
    np.testing.assert_allclose(X[:, 1], 0.5 + 0.3 * np.sin(t), atol=1e-6)


def test_make_mixture():
    X, y = make_mixture(
        n_components=4,
        n_features=3,
        n_samples=1001,
        weights=[1, 1, 2, 0.5],
        random_state=0,
    )
    assert X.shape == (1001, 3)
    assert y.shape == (1001,)
    # Exact counts (largest remainder), not multinomial draws.
    np.testing.assert_array_equal(np.bincount(y), [223, 222, 445, 111])
    X_again, y_again = make_mixture(
        n_components=4,
        n_features=3,
        n_samples=1001,
        weights=[1, 1, 2, 0.5],
        random_state=0,
    )
    np.testing.assert_array_equal(X, X_again)
    np.testing.assert_array_equal(y, y_again)
    # Means at least `separation` apart: cluster centres stay far apart.
    centres = np.array([X[y == j].mean(axis=0) for j in range(4)])
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    assert distances[np.triu_indices(4, 1)].min() > 4.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_components": 0},
        {"n_samples": 2, "n_components": 3},
        {"separation": -1.0},
        {"weights": [1.0, 2.0]},
        {"weights": [1.0, -1.0, 1.0, 1.0, 1.0]},
    ],
)
def test_make_mixture_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        make_mixture(**kwargs)
