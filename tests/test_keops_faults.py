"""KeOps faults: the package imports and 'auto' fits whatever KeOps does."""

import os
import re
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("pykeops")

_COMPILER = re.compile(r"(^|-)(g\+\+|gcc|c\+\+|cc|clang.*|cpp)(-[\d.]+)?$")


def _path_without_compilers(folder):
    """A PATH folder with every executable of the current PATH but compilers."""
    folder.mkdir()
    for directory in os.get_exec_path():
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            source = os.path.join(directory, name)
            target = folder / name
            if _COMPILER.search(name) or target.exists():
                continue
            if os.access(source, os.X_OK):
                target.symlink_to(source)
    return str(folder)


SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from sparse_gmm import SparseGaussianMixture
    from sparse_gmm.engines._keops import KeOpsUnavailableError

    X = np.random.default_rng(0).normal(size=(300, 2))
    model = SparseGaussianMixture(3, engine="keops")
    try:
        model.fit(X)
    except KeOpsUnavailableError as error:
        print("KEOPS-ERROR", error)
    assert not hasattr(model, "weights_")
    auto = SparseGaussianMixture(3, engine="auto").fit(X)
    print("AUTO", np.isfinite(auto.score(X)))
    """
)


def test_no_compiler_gives_a_clear_error_and_auto_still_fits(tmp_path):
    env = dict(
        os.environ,
        PATH=_path_without_compilers(tmp_path / "bin"),
        KEOPS_CACHE_FOLDER=str(tmp_path / "keops-cache"),
        LOKY_MAX_CPU_COUNT="2",
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    error = next(
        line for line in result.stdout.splitlines() if line.startswith("KEOPS-ERROR")
    )
    assert "KeOps" in error and "compiler" in error and "engine='torch'" in error
    assert "AUTO True" in result.stdout


def test_importing_sparse_gmm_does_not_import_pykeops():
    """A broken KeOps install or cache can then never break the import."""
    code = (
        "import sys, sparse_gmm; "
        "from sparse_gmm import SparseGaussianMixture; "
        "print('pykeops' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.stdout.strip() == "False", result.stderr
