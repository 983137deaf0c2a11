"""The command line, the spiral demo and the synthetic data sets."""

import os
import re
import runpy
import subprocess
import sys

import numpy as np
import pytest
import torch

from sparse_gmm._cli import main
from sparse_gmm.datasets import make_mixture, make_spiral

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def three_clusters():
    """A clear 3-component mixture, small enough to fit in well under a second."""
    X, _ = make_mixture(n_components=3, n_samples=300, random_state=0)
    return X


def _component_rows(output):
    """The rows of the printed components table (they start with an index)."""
    return [line for line in output.splitlines() if re.match(r"^\s*\d+\s+0\.", line)]


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
