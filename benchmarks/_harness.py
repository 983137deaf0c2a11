"""What every benchmark needs around its measurement: provenance, processes, output.

The benchmarks import this module by name (``import _harness``): a script run
as ``python benchmarks/x.py`` has its own folder first on ``sys.path``, and so
do the child processes the memory benchmarks start (they run the same file).
It imports neither torch nor scikit-learn at module level: the parents of the
memory benchmarks must stay small, and the scikit-learn children must not
load torch.

What it holds
-------------
* Provenance: :func:`header_lines` and :func:`end_lines` open and close every
  result file with the git commit (``+dirty`` when tracked files differ from
  it), the date, the command, the machine, its load average and the library
  versions.
* Output: :func:`add_common_arguments` gives every benchmark ``--quick``,
  ``--out`` and ``--note``; :func:`output_dir` sends quick runs to a fresh
  temporary folder (never over the committed ``benchmarks/results/``).
* Memory: :func:`current_rss_mib`, :func:`peak_rss_mib`,
  :func:`reset_peak_rss`, :class:`RssSampler`, and :func:`run_child` /
  :func:`emit_result` for a measurement in a fresh child process.
* Timing: :func:`best_of`, :func:`machine_rates` and :func:`floor_seconds`
  (the arithmetic floor of an EM iteration), :func:`set_threads`.
* Data for the speed benchmarks: :func:`blobs`, :func:`shared_precision_inits`.
* Tables: :func:`table`, :func:`pct`, :func:`mean_or_dash`,
  :func:`median_or_dash`; per-fit records as CSV: :func:`write_records`,
  :func:`read_records`, :func:`fit_or_read_records`.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results"
MIB = 2**20
#: Distributions whose versions a result names (those installed).
LIBRARIES = (
    "numpy",
    "scipy",
    "scikit-learn",
    "torch",
    "pykeops",
    "dask",
    "distributed",
    "threadpoolctl",
)
#: Prefix of the one line a child process reports its measurement on.
RESULT_PREFIX = "RESULT "


# --------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------


def git_commit(directory=BENCHMARKS):
    """``git rev-parse HEAD``, plus ``+dirty`` when tracked files have changed.

    Neither untracked files nor ``benchmarks/results/`` count: they are what
    runs write, not the code they ran, and a run that follows another in the
    same checkout must not be marked dirty by its predecessor's results.

    Returns
    -------
    str
        The commit, or a sentence saying why there is none.
    """
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ":(top)",
                f":(top,exclude){RESULTS.relative_to(BENCHMARKS.parent).as_posix()}",
            ],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not run from a git checkout)"
    return commit + ("+dirty" if changes else "")


def library_versions(names=LIBRARIES):
    """``'name version'`` of each installed distribution, without importing it."""
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def load_average():
    """The 1, 5 and 15 minute load averages, as text."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def header_lines(title, note=None):
    """The opening lines of every result file.

    Parameters
    ----------
    title : str
        The benchmark's name and what it measures, on one line.
    note : str, default=None
        A remark on the conditions (``--note``), such as "machine shared
        with other jobs".

    Returns
    -------
    list of str
    """
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        title,
        f"commit {git_commit()}, run {now:%Y-%m-%d %H:%M} UTC",
        "command: python " + shlex.join([_relative(sys.argv[0]), *sys.argv[1:]]),
        f"machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}"
        f"), {memory:.1f} GiB RAM, {platform.system()} {platform.release()}; "
        f"load average (1 / 5 / 15 min) {load_average()} at start",
        f"versions: python {platform.python_version()}, {library_versions()}",
    ]
    if note:
        lines.append(f"note: {note}")
    return lines


def end_lines():
    """The closing line of every result file: the load average at the end."""
    return [f"load average (1 / 5 / 15 min) {load_average()} at the end"]


def _relative(path):
    try:
        return str(Path(path).resolve().relative_to(BENCHMARKS.parent))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------
# Command line and output
# --------------------------------------------------------------------------


def add_common_arguments(parser, quick_help):
    """Add ``--quick``, ``--out`` and ``--note`` to a benchmark's parser."""
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the result files (default: benchmarks/results, or a "
        "new temporary folder with --quick)",
    )
    parser.add_argument(
        "--note",
        default=None,
        help="a remark on the conditions, written in the result's header",
    )
    return parser


def output_dir(args, name, partial=None):
    """Where this run writes: ``--out``, a fresh temporary folder, or results/.

    A run that differs from the committed one (``--quick``, or ``partial``)
    never writes into ``benchmarks/results/`` unless ``--out`` says so, so
    that it cannot replace a committed full result.

    Parameters
    ----------
    args : argparse.Namespace
        With ``quick`` and ``out``, as :func:`add_common_arguments` adds them.
    name : str
        The benchmark's name, which starts the temporary folder's name.
    partial : bool, default=None
        Whether options other than ``--quick`` (a subset of the data or of
        the methods, other settings) make this run differ from the committed
        one; ``None`` means ``args.quick``.
    """
    if partial is None:
        partial = args.quick
    if args.out is not None:
        directory = args.out
    elif partial:
        kind = "quick" if args.quick else "partial"
        directory = Path(tempfile.mkdtemp(prefix=f"{name}_{kind}_"))
    else:
        directory = RESULTS
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def write_lines(path, lines):
    """Write ``lines`` to ``path`` as text and say so."""
    Path(path).write_text("\n".join(lines) + "\n")
    print(f"written to {path}", flush=True)


# --------------------------------------------------------------------------
# Memory of this process
# --------------------------------------------------------------------------


def current_rss_mib():
    """This process's resident set size, from /proc (Linux) or psutil."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / MIB
    except (OSError, ValueError):
        import psutil

        return psutil.Process().memory_info().rss / MIB


def peak_rss_mib():
    """This process's RSS high-water mark.

    ``VmHWM`` from /proc/self/status where there is one: it belongs to the
    address space made by ``exec``, so it starts from zero in a child.
    ``ru_maxrss`` (the fallback) can start at the RSS of the parent at the
    fork, which is why the parents of memory benchmarks import neither torch
    nor scikit-learn.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / MIB
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MIB


def reset_peak_rss():
    """Reset ``VmHWM`` to the current RSS; False where the kernel does not allow it.

    Writing 5 to /proc/self/clear_refs (Linux 4.0 and later) does it.
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return peak_rss_mib() <= current_rss_mib() + 1.0


class RssSampler(threading.Thread):
    """Polls named RSS readers every ``interval`` seconds and keeps each peak.

    Sampling can miss short spikes; it is a cross-check of ``VmHWM``, or the
    only figure where that cannot be read or reset.

    Parameters
    ----------
    readers : dict of str to callable
        Each returns an RSS in MiB; one that raises (its process has ended)
        is no longer polled.
    interval : float, default=0.005
        Seconds between polls.
    """

    def __init__(self, readers, interval=0.005):
        super().__init__(daemon=True)
        self.readers = dict(readers)
        self.peak = dict.fromkeys(self.readers, 0.0)
        self.interval = interval
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            for name, read in list(self.readers.items()):
                try:
                    self.peak[name] = max(self.peak[name], read())
                except Exception:  # the process is gone: its peak is final
                    del self.readers[name]
            self._done.wait(self.interval)

    def stop(self):
        """Stop polling; return the peaks."""
        self._done.set()
        self.join()
        return self.peak


def process_rss_reader(pid):
    """A reader of another process's RSS in MiB, for :class:`RssSampler`."""
    import psutil

    process = psutil.Process(pid)
    return lambda: process.memory_info().rss / MIB


# --------------------------------------------------------------------------
# Measurements in a fresh child process
# --------------------------------------------------------------------------


def emit_result(result):
    """Print a child's measurement as the one line :func:`run_child` reads."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_child(script, arguments, sample_interval=None):
    """Run ``script --child ...`` in a fresh interpreter; return its result.

    Parameters
    ----------
    script : str or Path
        The benchmark file (its ``__file__``).
    arguments : list of str
        The arguments after the script's path (``--child`` included).
    sample_interval : float, default=None
        When given, the parent also samples the child's RSS this often and
        adds the peak as ``result['sampled']`` (MiB).

    Returns
    -------
    dict
        The JSON the child printed with :func:`emit_result`.
    """
    command = [sys.executable, str(Path(script).resolve()), *map(str, arguments)]
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler = None
    if sample_interval is not None:
        sampler = RssSampler(
            {"child": process_rss_reader(child.pid)}, interval=sample_interval
        )
        sampler.start()
    output, errors = child.communicate()
    sampled = sampler.stop()["child"] if sampler else None
    if child.returncode != 0:
        raise RuntimeError(
            f"child {shlex.join(command[1:])} failed with code {child.returncode}:"
            f"\n{errors[-3000:]}"
        )
    line = next(x for x in output.splitlines() if x.startswith(RESULT_PREFIX))
    result = json.loads(line[len(RESULT_PREFIX) :])
    if sampled is not None:
        result["sampled"] = sampled
    return result


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


def set_threads(threads):
    """Size torch's pool (when imported) and the BLAS/OpenMP pools alike."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def thread_pools():
    """``'internal_api=num_threads'`` of every BLAS and OpenMP pool loaded."""
    from threadpoolctl import threadpool_info

    return ", ".join(
        sorted(
            {
                f"{pool['internal_api']}={pool['num_threads']}"
                for pool in threadpool_info()
                if pool["user_api"] in ("blas", "openmp")
            }
        )
    )


def best_of(function, repeats=3):
    """The shortest of ``repeats`` timed calls, after one untimed warm-up call."""
    function()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def machine_rates(dtype_name="float64", size=2048, n_exp=2**23):
    """``(flop/s, exp/s)``: a ``size``-cubed matmul and ``torch.exp`` of ``n_exp``."""
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    out = torch.empty_like(a)
    flops = 2 * size**3 / best_of(lambda: torch.mm(a, b, out=out))
    x = torch.randn(n_exp, dtype=dtype)
    y = torch.empty_like(x)
    exps = x.numel() / best_of(lambda: torch.exp(x, out=y))
    return flops, exps


def n_moment_features(n_features):
    """``F = 1 + D + D (D + 1) / 2``: the moment features of a full covariance."""
    return 1 + n_features + n_features * (n_features + 1) // 2


def floor_seconds(n_samples, n_components, n_features, rates):
    """The arithmetic floor of one EM iteration at the measured ``rates``.

    The two matmuls of the moment formulation (``phi(x) @ theta`` in the
    E-step and ``resp^T @ phi`` for the statistics) take ``4 N M F`` flop;
    the E-step takes ``N M`` exponentials, one per sample and component,
    which give both the log-sum-exp and the responsibilities (the torch
    engine computes no more; the floor counted two up to d34ce37, and the
    engine then ran "below" it).
    """
    flops, exps = rates
    arithmetic = 4 * n_samples * n_components * n_moment_features(n_features)
    return arithmetic / flops + n_samples * n_components / exps


def busy_warning(threads):
    """A warning line when other processes compete for the cores, else none.

    With more runnable threads than cores, every multi-threaded call (BLAS,
    OpenMP) can wait a whole scheduler time slice for a descheduled worker;
    libraries that make many small parallel calls then slow down by factors,
    so such timings measure the scheduler more than the code.
    """
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if threads > 1 and load > cores - threads + 1:
        return [
            f"WARNING: load average {load:.1f} on {cores} cores: with {threads} "
            "threads per pool, parallel calls wait for descheduled workers; "
            "compare with --threads 1 or use an idle machine"
        ]
    return []


# --------------------------------------------------------------------------
# Data for the speed benchmarks
# --------------------------------------------------------------------------


def blobs(n_samples, n_features, dtype="float64", n_blobs=10, seed=0):
    """Samples from ``n_blobs`` Gaussian blobs with random scales.

    Made in float64 and cast, so that the float32 and float64 data of one
    size are the same points.

    Returns
    -------
    X : numpy.ndarray of shape (n_samples, n_features), of ``dtype``
    """
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10.0, 10.0, size=(n_blobs, n_features))
    scales = rng.uniform(0.5, 2.0, size=n_blobs)
    labels = rng.integers(0, n_blobs, size=n_samples)
    X = rng.standard_normal((n_samples, n_features))
    X *= scales[labels, None]
    X += centers[labels]
    return X.astype(dtype, copy=False)


def shared_precision_inits(X, n_components, seed=1):
    """Uniform weights, means at random samples, a shared precision (float64).

    The shared covariance is the data's covariance shrunk by
    ``n_components ** (2 / D)``, the volume each component would cover. Given
    to both libraries, these starting values make k-means unnecessary and
    the iterates comparable.
    """
    rng = np.random.default_rng(seed)
    n_samples, n_features = X.shape
    means = X[rng.choice(n_samples, size=n_components, replace=False)]
    covariance = np.cov(X.T.astype(np.float64)) / n_components ** (2.0 / n_features)
    return {
        "weights_init": np.full(n_components, 1.0 / n_components),
        "means_init": means.astype(np.float64),
        "precisions_init": np.tile(np.linalg.inv(covariance), (n_components, 1, 1)),
    }


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------


def table(header, rows):
    """Right-aligned columns as wide as their widest cell, under a rule."""
    widths = [
        max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)
    ]
    line = "  ".join(f"{{:>{w}}}" for w in widths)
    out = [line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    return "\n".join(out)


def pct(values):
    """The percentage of true values, or a dash for none."""
    values = list(values)
    return f"{100 * np.mean(values):5.1f}" if values else "    -"


def mean_or_dash(values, fmt="{:7.3f}"):
    """The mean of the values that are not None, or a dash for none."""
    values = [v for v in values if v is not None]
    return fmt.format(np.mean(values)) if values else "      -"


def median_or_dash(values, fmt="{:6.0f}"):
    """The median of the values that are not None, or a dash for none."""
    values = [v for v in values if v is not None]
    return fmt.format(np.median(values)) if values else "     -"


def write_records(path, records):
    """Write one CSV row per record (dict), the union of their keys as columns.

    Strings are written as they are; everything else (numbers, booleans,
    lists, dicts) as JSON, so that :func:`read_records` gets the same values
    back. A key a record lacks is an empty cell.
    """
    columns = list(dict.fromkeys(key for record in records for key in record))
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        for record in records:
            writer.writerow(
                {
                    key: value if isinstance(value, str) else json.dumps(value)
                    for key, value in record.items()
                }
            )
    print(f"written to {path}", flush=True)


def read_records(path):
    """The records of a :func:`write_records` file (empty cells left out)."""
    records = []
    with open(path, newline="") as stream:
        for row in csv.DictReader(stream):
            records.append(
                {key: _cell(value) for key, value in row.items() if value != ""}
            )
    return records


def fit_or_read_records(fit, from_raw, threads):
    """Records of fits, made now by ``fit()`` or read from ``from_raw`` files.

    New records are tagged with the commit that made them (``'commit'``), and
    the fits run with ``threads`` threads in every pool.

    Returns
    -------
    records : list of dict
    origin : str
        Where the records come from, and the commits that made them.
    """
    if from_raw:
        records = [record for path in from_raw for record in read_records(path)]
        origin = f"{len(records)} records read from {len(from_raw)} file(s)"
    else:
        commit = git_commit()
        set_threads(threads)
        started = time.perf_counter()
        records = fit()
        for record in records:
            record["commit"] = commit
        origin = (
            f"{len(records)} records fitted with {threads} thread(s) in "
            f"{time.perf_counter() - started:.0f} s"
        )
    commits = sorted({record.get("commit", "?") for record in records})
    return records, f"{origin}, at commit(s) {', '.join(commits)}"


def _cell(text):
    try:
        return json.loads(text)
    except ValueError:
        return text
