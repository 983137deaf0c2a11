"""What importing sparse_gmm and fitting in memory import: no optional engine."""

import subprocess
import sys

import numpy as np

import sparse_gmm

from .conftest import gaussian_mixture_sample


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
    )
    assert result.returncode == 0, result.stderr[-3000:]
    path, modules = result.stdout.splitlines()
    assert path == sparse_gmm.__file__  # this checkout, not another install
    assert modules == "[]"
