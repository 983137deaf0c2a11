"""What ``import sparse_gmm`` and its public names pull in.

Properties of the import graph, checked in a fresh interpreter (this one has
imported everything already), not timings: they hold on any machine, and each
module named here costs a measurable part of a second to import.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sparse_gmm

from .conftest import gaussian_mixture_sample, modules_after

# Optional or heavy modules that no import of sparse_gmm may pull in: they are
# imported when a figure is drawn, a Dask array arrives or KeOps runs.
OPTIONAL = ("matplotlib", "dask", "distributed", "pykeops", "keopscore")


def test_import_sparse_gmm_imports_neither_torch_nor_scikit_learn():
    # What ``sparse-gmm --help`` and ``--version`` pay.
    modules = modules_after("import sparse_gmm")
    for name in ("torch", "sklearn", "scipy", "scipy.stats", *OPTIONAL):
        assert name not in modules, name
    assert "sparse_gmm" in modules


def test_public_names_import_no_optional_module():
    modules = modules_after(
        "from sparse_gmm import *\n"
        "import sparse_gmm.datasets\n"
        "for name in sparse_gmm.__all__: getattr(sparse_gmm, name)"
    )
    assert "sparse_gmm._estimator" in modules
    assert "sparse_gmm._cv" in modules
    for name in OPTIONAL:
        assert name not in modules, name


def test_estimator_import_leaves_clustering_and_model_selection_to_first_use():
    # sklearn.cluster (k-means) and sklearn.model_selection are imported by
    # the first fit and by SparseGaussianMixtureCV, not by the estimator.
    modules = modules_after("from sparse_gmm import SparseGaussianMixture")
    assert "torch" in modules
    for name in ("sklearn.cluster", "sklearn.model_selection", *OPTIONAL):
        assert name not in modules, name


@pytest.mark.parametrize("name", sparse_gmm.__all__)
def test_every_public_name_resolves(name):
    assert getattr(sparse_gmm, name) is not None
    assert name in dir(sparse_gmm)


def test_public_submodules_resolve_without_an_import():
    # They did while the package imported everything eagerly.
    modules = modules_after(
        "import sparse_gmm\n"
        "sparse_gmm.penalties.SqrtPrior\n"
        "sparse_gmm.datasets.make_spiral"
    )
    assert {"sparse_gmm.penalties", "sparse_gmm.datasets"} <= modules


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        sparse_gmm.no_such_name  # noqa: B018


def test_fitting_in_memory_imports_neither_pykeops_nor_dask(tmp_path):
    """pykeops and dask are imported only when asked for (engine='keops', a Dask
    array): a broken KeOps install or cache can then never break the import,
    and in-memory users pay for neither."""
    X, _ = gaussian_mixture_sample(n_samples=300, n_components=3, seed=1)
    np.save(tmp_path / "X.npy", X)
    script = (
        "import sys, numpy as np, sparse_gmm\n"
        "X = np.load(sys.argv[1])\n"
        "model = sparse_gmm.SparseGaussianMixture(4, random_state=0).fit(X)\n"
        "model.predict(X)\n"
        "print(sparse_gmm.__file__)\n"
        "print(sorted(m for m in sys.modules\n"
        "            if m.split('.')[0] in ('pykeops', 'keopscore', 'dask',\n"
        "                                   'distributed')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "X.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(sparse_gmm.__file__).parents[1],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    path, modules = result.stdout.splitlines()
    assert path == sparse_gmm.__file__  # this checkout, not another install
    assert modules == "[]"
