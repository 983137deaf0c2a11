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


TAKE_LOCK = textwrap.dedent(
    """
    import os, sys, time
    from sparse_gmm.engines._keops import _first_compile_lock, _keops

    role, flag = sys.argv[1], sys.argv[2]
    _keops()  # pay pykeops' import (and its test compile) before timing
    if role == "second":
        open(flag, "w").close()  # about to ask for the lock
    with _first_compile_lock(("a formula",)):
        print("in", time.time(), flush=True)
        if role == "first":
            while not os.path.exists(flag):
                time.sleep(0.05)
            time.sleep(1.0)  # the second process is now blocked, or not
        print("out", time.time(), flush=True)
    """
)


def test_first_compile_lock_excludes_other_processes(tmp_path):
    """Two processes compiling the same formula take turns in KeOps' folder."""
    env = dict(os.environ, KEOPS_CACHE_FOLDER=str(tmp_path / "keops-cache"))
    flag = str(tmp_path / "second-is-waiting")

    def start(role):
        return subprocess.Popen(
            [sys.executable, "-c", TAKE_LOCK, role, flag],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start("first")
    entered = first.stdout.readline().split()
    assert entered and entered[0] == "in", first.stderr.read()[-3000:]
    second = start("second")
    second_out, second_err = second.communicate(timeout=600)
    first_rest, _ = first.communicate(timeout=600)
    assert second.returncode == 0, second_err[-3000:]
    first_released = float(first_rest.split()[1])
    second_entered = float(second_out.split()[1])
    assert second_entered >= first_released
