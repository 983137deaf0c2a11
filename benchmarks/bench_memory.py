"""Peak resident memory of one large fit: sparse_gmm against scikit-learn.

What is measured
----------------
The peak resident set size (RSS) of a process that fits a Gaussian mixture
with ``n_components=100`` starting components and ``max_iter=5`` to
``N = 2,000,000`` float32 samples in ``D = 2`` dimensions (ten Gaussian blobs),
once with

* ``SparseGaussianMixture(n_components=100, engine=..., device='cpu',
  max_iter=5, init_params=..., random_state=0)``, with ``engine='torch'``
  (the default) or ``engine='keops'`` (``--engine keops``), and once with
* ``sklearn.mixture.GaussianMixture(n_components=100, max_iter=5,
  init_params=..., random_state=0)``,

on the same data. The target is a sparse_gmm peak under 1 GB in total, with
either engine; scikit-learn materialises several dense ``(N, n_components)``
arrays and needs several GB. ``--skip-sklearn`` leaves scikit-learn's fit out
(it does not depend on the engine and takes minutes).

How
---
Every fit runs in its own fresh child process (``sys.executable`` running this
file with ``--child``), so that the peaks of the two libraries cannot mix. The
child imports only the library it measures (sparse_gmm imports torch and
scikit-learn; the scikit-learn child never imports torch), generates the data
from a fixed seed (directly in float32, so no float64 copy is ever made),
records its RSS, fits, and reports as one JSON line:

* ``baseline``: the child's current RSS after imports and data creation;
* ``peak``: the child's RSS high-water mark after the fit (``VmHWM`` from
  /proc/self/status, which the kernel keeps per address space and therefore
  starts from zero at ``exec``; ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
  where there is no /proc);
* ``pre-fit peak``: the same high-water mark read just before the fit (so one
  can check that the peak is set by the fit, not by the imports or the data);
* ``fit cost``: ``peak - baseline``, what the fit itself adds.

The parent also samples the child's RSS with psutil every 5 ms as a cross-check
(``sampled``); it can miss short spikes, so ``peak`` is the figure of record.
Sizes are in MiB (2**20 bytes); "1 GB" is read as 1000 MiB to be safe.

Usage
-----
``python benchmarks/bench_memory.py`` runs the full size with
``init_params='random_from_data'``; ``--init kmeans`` uses the default k-means
initialisation of both libraries instead, ``--init both`` runs both;
``--threads`` sets the thread pools of the children (default 2; memory barely
depends on it). scikit-learn's fit dominates the run time: about 1.5 minutes
per fit on an idle two-core machine, several minutes when the machine is shared,
and its k-means initialisation (``--init kmeans``) adds a k-means fit to both
libraries. ``--quick`` runs ``N = 20,000`` as a smoke test (seconds).
``--engine keops`` measures sparse_gmm with the KeOps engine (its
formulas compile on first use, or load from ``~/.cache/keops*``; the compile
runs in g++ child processes, outside the measured process's RSS). The table is
printed and written to ``benchmarks/results/bench_memory.txt`` (``--out DIR``
elsewhere; ``--quick`` writes to a new temporary folder unless ``--out`` is
given), with ``_keops`` for ``--engine keops`` and
``_nosklearn`` for ``--skip-sklearn`` added to the name (so that
``python benchmarks/bench_memory.py --engine keops --skip-sklearn`` writes
``bench_memory_keops_nosklearn.txt``).
"""

from __future__ import annotations

import argparse
import time
import warnings

import _harness

N_FULL = 2_000_000
N_QUICK = 20_000
N_COMPONENTS = 100
N_FEATURES = 2
N_BLOBS = 10
MAX_ITER = 5
TARGET_MIB = 1000.0
MIB = 2**20


def make_data(n_samples, n_features=N_FEATURES, n_blobs=N_BLOBS, seed=0):
    """Ten well separated Gaussian blobs, generated directly in float32.

    Returns
    -------
    X : numpy.ndarray of shape (n_samples, n_features), float32
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.uniform(-20.0, 20.0, size=(n_blobs, n_features)).astype(np.float32)
    scales = rng.uniform(0.5, 2.0, size=(n_blobs, 1)).astype(np.float32)
    labels = rng.integers(0, n_blobs, size=n_samples, dtype=np.int32)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    X *= scales[labels]
    X += centers[labels]
    return X


def run_child(library, n_samples, init_params, threads, engine="torch"):
    """Body of the child process: import, make data, fit, print one JSON line."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    if library == "sparse_gmm":
        import torch

        from sparse_gmm import SparseGaussianMixture

        torch.set_num_threads(threads)
        model = SparseGaussianMixture(
            n_components=N_COMPONENTS,
            engine=engine,
            device="cpu",
            max_iter=MAX_ITER,
            init_params=init_params,
            random_state=0,
        )
    else:
        from sklearn.mixture import GaussianMixture

        model = GaussianMixture(
            n_components=N_COMPONENTS,
            max_iter=MAX_ITER,
            init_params=init_params,
            random_state=0,
        )
    X = make_data(n_samples)
    baseline = _harness.current_rss_mib()
    pre_fit_peak = _harness.peak_rss_mib()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning after 5 iterations
        model.fit(X)
    seconds = time.perf_counter() - start
    result = {
        "library": library,
        "engine": engine if library == "sparse_gmm" else "-",
        "init": init_params,
        "n_samples": n_samples,
        "dtype": str(X.dtype),
        "baseline": baseline,
        "pre_fit_peak": pre_fit_peak,
        "peak": _harness.peak_rss_mib(),
        "after": _harness.current_rss_mib(),
        "seconds": seconds,
        "n_iter": int(model.n_iter_),
        "n_components": int(getattr(model, "n_components_", model.n_components)),
    }
    _harness.emit_result(result)


def measure(library, n_samples, init_params, threads, engine, interval=0.005):
    """Run one fit in a fresh child; return its report plus the sampled peak."""
    arguments = ["--child", library, "--n-samples", n_samples, "--init", init_params]
    arguments += ["--threads", threads, "--engine", engine]
    return _harness.run_child(__file__, arguments, sample_interval=interval)


def header(n_samples, threads, engine, note):
    return [
        *_harness.header_lines(
            "bench_memory: peak resident memory of one fit, each in a fresh process",
            note,
        ),
        f"data: N={n_samples:,} D={N_FEATURES} float32, {N_BLOBS} blobs (seed 0); "
        f"n_components={N_COMPONENTS}, max_iter={MAX_ITER}, random_state=0",
        f"threads: {threads} (torch.set_num_threads and threadpoolctl, in each child)",
        f"sparse_gmm engine: {engine!r}, device='cpu'",
        "MiB = 2**20 bytes; peak = child's VmHWM after the fit; "
        "baseline = child's RSS after imports and data;",
        "sampled = parent's psutil sampling every 5 ms (cross-check)",
    ]


def table(results):
    columns = (
        f"{'library':<16} {'init':<17} {'baseline':>9} {'pre-fit':>8} "
        f"{'peak':>8} {'fit cost':>9} {'sampled':>8} {'fit s':>7} "
        f"{'iter':>4} {'comps':>5}"
    )
    lines = [columns, "-" * len(columns)]
    for r in results:
        lines.append(
            f"{label(r):<16} {r['init']:<17} {r['baseline']:>9.0f} "
            f"{r['pre_fit_peak']:>8.0f} {r['peak']:>8.0f} "
            f"{r['peak'] - r['baseline']:>9.0f} {r['sampled']:>8.0f} "
            f"{r['seconds']:>7.1f} {r['n_iter']:>4d} {r['n_components']:>5d}"
        )
    return lines


def label(result):
    """``sparse_gmm/<engine>`` or ``sklearn``."""
    if result["library"] == "sparse_gmm":
        return f"sparse_gmm/{result.get('engine', 'torch')}"
    return result["library"]


def summary(results, n_samples):
    lines = []
    by_key = {(r["library"], r["init"]): r for r in results}
    for init in dict.fromkeys(r["init"] for r in results):
        ours, theirs = by_key[("sparse_gmm", init)], by_key.get(("sklearn", init))
        verdict = "yes" if ours["peak"] < TARGET_MIB else "NO"
        if theirs is None:
            lines.append(
                f"init={init}: {label(ours)} peak {ours['peak']:.0f} MiB, fit cost "
                f"{ours['peak'] - ours['baseline']:.0f} MiB (scikit-learn not run)"
            )
        else:
            ratio = theirs["peak"] / ours["peak"]
            cost_ratio = (theirs["peak"] - theirs["baseline"]) / max(
                ours["peak"] - ours["baseline"], 1.0
            )
            lines.append(
                f"init={init}: {label(ours)} peak {ours['peak']:.0f} MiB, "
                f"sklearn peak {theirs['peak']:.0f} MiB -> sklearn/sparse_gmm = "
                f"{ratio:.1f}x in total, {cost_ratio:.1f}x in fit cost"
            )
        if n_samples == N_FULL:
            lines.append(
                f"  target (sparse_gmm peak < {TARGET_MIB:.0f} MiB): {verdict}"
            )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _harness.add_common_arguments(parser, f"N={N_QUICK:,}, a smoke test")
    parser.add_argument(
        "--init",
        choices=("random_from_data", "kmeans", "both"),
        default="random_from_data",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--engine",
        choices=("torch", "keops"),
        default="torch",
        help="sparse_gmm's engine (default torch)",
    )
    parser.add_argument(
        "--skip-sklearn", action="store_true", help="measure sparse_gmm only"
    )
    parser.add_argument("--child", choices=("sparse_gmm", "sklearn"))
    parser.add_argument("--n-samples", type=int)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child, args.n_samples, args.init, args.threads, args.engine)
        return
    n_samples = N_QUICK if args.quick else N_FULL
    inits = ("random_from_data", "kmeans") if args.init == "both" else (args.init,)
    lines = header(n_samples, args.threads, args.engine, args.note)
    for line in lines:
        print(line, flush=True)
    results = []
    for init in inits:
        libraries = ("sparse_gmm",) if args.skip_sklearn else ("sparse_gmm", "sklearn")
        for library in libraries:
            print(f"... {library}, init={init}", flush=True)
            results.append(measure(library, n_samples, init, args.threads, args.engine))
    report = [*lines, "", *table(results), "", *summary(results, n_samples)]
    report += _harness.end_lines()
    print()
    print("\n".join(report[len(lines) + 1 :]))
    name = "bench_memory" + ("" if args.engine == "torch" else f"_{args.engine}")
    name += "_nosklearn.txt" if args.skip_sklearn else ".txt"
    _harness.write_lines(_harness.output_dir(args, "bench_memory") / name, report)


if __name__ == "__main__":
    main()
