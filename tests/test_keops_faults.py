"""KeOps faults: the package imports and 'auto' fits whatever KeOps does.

Every test here starts Python processes with an empty KeOps cache of their own,
each compiling its formulas again: they form the slow tier (``-m slow``).
"""

import itertools
import os
import pickle
import re
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("pykeops")

pytestmark = pytest.mark.slow

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
    import warnings

    import numpy as np
    import sparse_gmm.engines
    from sparse_gmm import SparseGaussianMixture
    from sparse_gmm.engines import (
        EngineFallbackWarning, KeOpsUnavailableError, choose_engine, resolve_device
    )

    # Importing sparse_gmm and asking for the rule never touch pykeops.
    print("RULE", choose_engine(resolve_device("cpu")))
    # 'auto' as on a CUDA device, where it picks KeOps: the fallback itself is
    # exercised on the CPU.
    sparse_gmm.engines.choose_engine = lambda device: "keops"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100_000, 2)) + rng.choice([-4.0, 0.0, 4.0], (100_000, 1))
    small = X[:300]
    model = SparseGaussianMixture(3, engine="keops")
    try:
        model.fit(small)
    except KeOpsUnavailableError as error:
        print("KEOPS-ERROR", error)
    assert not hasattr(model, "weights_")

    kwargs = dict(init_params="random_from_data", max_iter=5, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        auto = SparseGaussianMixture(3, engine="auto", **kwargs).fit(X)
        auto.predict(X[:1000])
    fallbacks = [w for w in caught if w.category is EngineFallbackWarning]
    print("WARNINGS", len(fallbacks), fallbacks[0].message if fallbacks else "")
    reference = SparseGaussianMixture(3, engine="torch", **kwargs).fit(X)
    print("ENGINE", auto.engine_)
    print("SAME", np.allclose(auto.means_, reference.means_, atol=1e-10))
    print("AUTO", np.isfinite(auto.score(X)))
    """
)


# A compiler that dies half-way: it leaves a truncated module where KeOps
# expects the compiled one, as a killed or out-of-disk compile does.
HALF_WAY_COMPILER = """#!/bin/sh
while [ $# -gt 0 ]; do
  if [ "$1" = "-o" ]; then printf '\\177ELF truncated' > "$2"; fi
  shift
done
exit 1
"""


def _truncate_keops_cache_index(env):
    """Write the cache index pykeops unpickles on import, cut short."""
    result = subprocess.run(
        [sys.executable, "-c", "import pykeops; print(pykeops.get_build_folder())"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    build_folder = result.stdout.strip().splitlines()[-1]
    whole = pickle.dumps({"formula" * 20: list(range(100))})
    for name in os.listdir(build_folder):
        if name.endswith(".pkl"):
            with open(os.path.join(build_folder, name), "wb") as index:
                index.write(whole[: len(whole) // 3])


def _faulty_environment(fault, tmp_path):
    env = dict(
        os.environ,
        KEOPS_CACHE_FOLDER=str(tmp_path / "keops-cache"),
        LOKY_MAX_CPU_COUNT="2",
    )
    if fault == "no compiler":
        env["PATH"] = _path_without_compilers(tmp_path / "bin")
    elif fault == "truncated cache":
        _truncate_keops_cache_index(env)
    elif fault == "compile dies half-way":
        compiler = tmp_path / "g++"
        compiler.write_text(HALF_WAY_COMPILER)
        compiler.chmod(0o755)
        env["CXX"] = str(compiler)
    return env


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        ("no compiler", "compiler"),
        ("truncated cache", "truncated"),
        ("compile dies half-way", "compiler"),
    ],
)
def test_keops_faults_give_a_clear_error_and_auto_still_fits(fault, cause, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=_faulty_environment(fault, tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["RULE"] == "torch"
    error = lines["KEOPS-ERROR"]
    assert "KeOps" in error and cause in error and "engine='torch'" in error
    assert lines["WARNINGS"].startswith("1 engine='auto' chose KeOps")
    assert lines["ENGINE"] == "torch"
    assert lines["SAME"] == "True"
    assert lines["AUTO"] == "True"


# Lines of /proc/locks for a process blocked on a flock: "1: -> FLOCK  ADVISORY
# WRITE <pid> <major>:<minor>:<inode> 0 EOF".
WAITERS = textwrap.dedent(
    """
    def blocked_on(path):
        # Pids of the processes waiting for a flock on path.
        inode = os.stat(path).st_ino
        with open("/proc/locks") as locks:
            return [
                int(fields[5])
                for fields in (line.split() for line in locks)
                if fields[1] == "->" and fields[6].endswith(f":{inode}")
            ]


    def wait_for_a_waiter(path, timeout=120):
        # The first pid seen blocked on path; None after timeout seconds.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waiters = blocked_on(path)
            if waiters:
                return waiters[0]
            time.sleep(0.01)
        return None
    """
)

needs_proc_locks = pytest.mark.skipif(
    not os.path.exists("/proc/locks"), reason="needs Linux's /proc/locks"
)

TAKE_LOCK = (
    """
import os, sys, time
from sparse_gmm.engines._keops import _first_compile_lock, _keops
"""
    + WAITERS
    + textwrap.dedent(
        """
        role = sys.argv[1]
        _, build_folder = _keops()  # pay pykeops' import before the race
        lock_file = os.path.join(build_folder, "sparse_gmm.lock")
        print("asking", time.time(), flush=True)
        with _first_compile_lock(("a formula",)):
            print("in", time.time(), flush=True)
            if role == "first":
                # Hold the lock until the other process is seen blocked on it:
                # the exclusion is then exercised, not merely possible.
                print("waiter", wait_for_a_waiter(lock_file), flush=True)
            print("out", time.time(), flush=True)
        """
    )
)


@needs_proc_locks
def test_first_compile_lock_excludes_other_processes(tmp_path):
    """Two processes compiling the same formula take turns in KeOps' folder:
    the second blocks while the first holds the lock, and enters after it."""
    env = dict(os.environ, KEOPS_CACHE_FOLDER=str(tmp_path / "keops-cache"))

    def start(role):
        return subprocess.Popen(
            [sys.executable, "-c", TAKE_LOCK, role],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start("first")
    first.stdout.readline()  # asking
    entered = first.stdout.readline().split()
    assert entered and entered[0] == "in", first.stderr.read()[-3000:]
    second = start("second")
    second_out, second_err = second.communicate(timeout=600)
    first_rest, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err[-3000:]
    assert second.returncode == 0, second_err[-3000:]
    first_lines = dict(line.split(" ", 1) for line in first_rest.splitlines())
    second_lines = dict(line.split(" ", 1) for line in second_out.splitlines())
    # /proc/locks showed the second process blocked on the first one's lock...
    assert first_lines["waiter"] == str(second.pid)
    # ...and it entered only once the first had left.
    assert float(second_lines["in"]) >= float(first_lines["out"])


COMPILE_RACE = (
    """
import contextlib, os, sys, time
import numpy as np
from sparse_gmm import SparseGaussianMixture
from sparse_gmm.engines import _keops
"""
    + WAITERS
    + textwrap.dedent(
        """
        index, n_processes, barrier = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
        locked = _keops._first_compile_lock

        @contextlib.contextmanager
        def logged(key):
            first = key not in _keops._COMPILED
            asked = time.time()
            with locked(key):
                entered = time.time()
                name = "-".join(map(str, key))
                if first:
                    # The first process in holds the lock until another is seen
                    # blocked on it, so that the processes do contend.
                    holder = os.path.join(barrier, "holder-" + name)
                    try:
                        os.close(os.open(holder, os.O_CREAT | os.O_EXCL))
                    except FileExistsError:
                        pass
                    else:
                        lock_file = os.path.join(build_folder, "sparse_gmm.lock")
                        print("WAITER", name, wait_for_a_waiter(lock_file))
                yield
                if first:
                    print("SECTION", name, asked, entered, time.time())

        _keops._first_compile_lock = logged
        _, build_folder = _keops._keops()  # import pykeops before the race starts
        open(os.path.join(barrier, str(index)), "w").close()
        while len([n for n in os.listdir(barrier) if n.isdigit()]) < n_processes:
            time.sleep(0.01)
        X = np.random.default_rng(0).normal(size=(500, 3))
        model = SparseGaussianMixture(4, engine="torch", random_state=0, max_iter=5)
        # One formula (the log-density) keeps the race short.
        model.fit(X).set_params(engine="keops")
        print("SCORE", repr(model.score(X)))
        """
    )
)


@needs_proc_locks
def test_four_processes_compiling_into_an_empty_cache_take_turns(tmp_path):
    """Every first compile holds the lock alone, and every process fits.

    The processes contend: the first one in holds the lock until /proc/locks
    shows another blocked on it.
    """
    n_processes = 4
    env = dict(os.environ, KEOPS_CACHE_FOLDER=str(tmp_path / "keops-cache"))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", COMPILE_RACE, str(i), str(n_processes), barrier],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n_processes)
    ]
    outputs = [process.communicate(timeout=900) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]

    sections, scores, waiters = [], set(), []
    for stdout, _ in outputs:
        for line in stdout.splitlines():
            kind, *fields = line.split()
            if kind == "SECTION":
                sections.append(tuple(map(float, fields[1:])))
            elif kind == "SCORE":
                scores.add(fields[0])
            elif kind == "WAITER":
                waiters.append(fields[1])
    assert len(scores) == 1  # the same fit in every process
    assert len(sections) >= n_processes  # each process compiled or loaded
    # Another process was blocked while the first held the lock...
    pids = {str(process.pid) for process in processes}
    assert waiters and all(waiter in pids for waiter in waiters), waiters
    # ...and the lock is one per build folder: no two first calls overlap in time.
    sections.sort(key=lambda section: section[1])
    for before, after in itertools.pairwise(sections):
        assert after[1] >= before[2], (before, after)
