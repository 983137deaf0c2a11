"""Working memory of prediction on 10,000,000 rows, one method and dtype at a time.

What is measured
----------------
A fitted ``SparseGaussianMixture`` with ``M = 20`` components in ``D = 2``
dimensions (fitted with ``sparsity=0`` on 20,000 rows of 20 blobs, so all 20
survive) predicts on ``N = 10,000,000`` rows of the same blobs, in float32 and
in float64. For each method and dtype the figure of record is

    extra = peak RSS during the call - RSS before the call - output size

that is, the memory the call needs beyond its input (already resident before
the call) and its output array (``N`` values for ``score_samples`` and
``predict``, ``N x M`` for ``predict_proba``). The target is an extra under
1 GB (1000 MiB, to be safe) for every method.

How
---
Every (method, dtype) runs in its own fresh child process (``sys.executable``
running this file with ``--child``), so that one call's allocations cannot
lower or raise another's. The child imports sparse_gmm, fits the small model,
generates the rows directly in the measured dtype into one preallocated array
(no temporary copy), calls the method once on 1,000 rows (torch's first call
sets up its thread pool and kernels: start-up, not per-call memory), then:

* ``before``: its current RSS (/proc/self/statm);
* resets the kernel's RSS high-water mark (``echo 5 > /proc/self/clear_refs``,
  Linux 4.0 and later) so that ``VmHWM`` afterwards is the call's own peak;
* calls the method on all rows, while a thread samples the RSS every 2 ms;
* ``peak``: ``VmHWM`` after the call where the reset worked, otherwise the
  sampled maximum (which can miss short spikes; the table says which).

Sizes are in MiB (2**20 bytes). ``--quick`` runs N=100,000, each method
once (float32, float64, float32), as a smoke test. The table is printed and
written to ``benchmarks/results/bench_predict_memory.txt`` (``--out DIR``
elsewhere; ``--quick`` writes to a new temporary folder unless ``--out`` is
given).
"""

from __future__ import annotations

import argparse
import time

import _harness

N_FULL = 10_000_000
N_QUICK = 100_000
N_COMPONENTS = 20
N_FEATURES = 2
N_FIT = 20_000
METHODS = ("score_samples", "predict_proba", "predict")
DTYPES = ("float32", "float64")
TARGET_MIB = 1000.0
MIB = 2**20


def make_data(n_samples, dtype, seed=0, chunk=1_000_000):
    """Rows of 20 separated blobs, written chunk by chunk into one array.

    Returns
    -------
    X : numpy.ndarray of shape (n_samples, N_FEATURES), of ``dtype``
    """
    import numpy as np

    layout = np.random.default_rng(1234)
    centers = layout.uniform(-40.0, 40.0, size=(N_COMPONENTS, N_FEATURES))
    scales = layout.uniform(0.5, 1.5, size=(N_COMPONENTS, 1))
    rng = np.random.default_rng(seed)
    X = np.empty((n_samples, N_FEATURES), dtype=dtype)
    for start in range(0, n_samples, chunk):
        rows = slice(start, min(start + chunk, n_samples))
        count = rows.stop - rows.start
        labels = rng.integers(0, N_COMPONENTS, size=count)
        block = rng.standard_normal((count, N_FEATURES)) * scales[labels]
        X[rows] = block + centers[labels]
    return X


def run_child(method, dtype, n_samples, threads):
    """Body of a child process: fit, make rows, measure one call, print JSON."""
    import warnings

    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from sparse_gmm import SparseGaussianMixture

    threadpool_limits(threads)
    torch.set_num_threads(threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning is no concern here
        model = SparseGaussianMixture(
            N_COMPONENTS,
            sparsity=0.0,
            covariance_prior=None,
            max_iter=20,
            device="cpu",
            random_state=0,
        ).fit(make_data(N_FIT, dtype, seed=1))
    X = make_data(n_samples, dtype)
    call = getattr(model, method)
    call(X[:1000])

    before = _harness.current_rss_mib()
    reset = _harness.reset_peak_rss()
    sampler = _harness.RssSampler({"self": _harness.current_rss_mib}, interval=0.002)
    sampler.start()
    start = time.perf_counter()
    output = call(X)
    seconds = time.perf_counter() - start
    sampled = max(sampler.stop()["self"], _harness.current_rss_mib())
    peak = max(_harness.peak_rss_mib(), sampled) if reset else sampled
    output_mib = np.asarray(output).nbytes / MIB
    result = {
        "method": method,
        "dtype": dtype,
        "n_samples": n_samples,
        "n_components": int(model.n_components_),
        "input": X.nbytes / MIB,
        "output": output_mib,
        "output_dtype": str(np.asarray(output).dtype),
        "before": before,
        "peak": peak,
        "sampled": sampled,
        "peak_source": "VmHWM" if reset else "sampled",
        "extra": peak - before - output_mib,
        "seconds": seconds,
    }
    _harness.emit_result(result)


def measure(method, dtype, n_samples, threads):
    """Run one call in a fresh child process; return its report."""
    arguments = ["--child", method, "--dtype", dtype, "--n-samples", n_samples]
    return _harness.run_child(__file__, [*arguments, "--threads", threads])


def header(n_samples, threads, note):
    return [
        *_harness.header_lines(
            "bench_predict_memory: working memory of one prediction call, each in "
            "a fresh process",
            note,
        ),
        f"rows: N={n_samples:,} D={N_FEATURES}, 20 blobs; model: M={N_COMPONENTS} "
        f"components (sparsity=0, fitted on {N_FIT:,} rows), engine='torch', "
        f"device='cpu'; threads: {threads}",
        "MiB = 2**20 bytes; before = RSS before the call (imports, model, input); "
        "peak = the call's RSS high-water mark;",
        "extra = peak - before - output: what the call needs beyond its input "
        f"and output arrays (target < {TARGET_MIB:.0f} MiB)",
    ]


def table(results):
    columns = (
        f"{'method':<14} {'dtype':<8} {'input':>7} {'output':>7} {'before':>7} "
        f"{'peak':>7} {'extra':>7} {'peak from':>9} {'seconds':>8}"
    )
    lines = [columns, "-" * len(columns)]
    for r in results:
        lines.append(
            f"{r['method']:<14} {r['dtype']:<8} {r['input']:>7.0f} "
            f"{r['output']:>7.0f} {r['before']:>7.0f} {r['peak']:>7.0f} "
            f"{r['extra']:>7.0f} {r['peak_source']:>9} {r['seconds']:>8.2f}"
        )
    worst = max(results, key=lambda r: r["extra"])
    verdict = "yes" if worst["extra"] < TARGET_MIB else "NO"
    lines += [
        "",
        f"largest extra: {worst['extra']:.0f} MiB ({worst['method']}, "
        f"{worst['dtype']}); target (every extra < {TARGET_MIB:.0f} MiB): {verdict}",
    ]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _harness.add_common_arguments(
        parser, f"N={N_QUICK:,}, each method once (one dtype each), a smoke test"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=METHODS)
    parser.add_argument("--dtype", choices=DTYPES)
    parser.add_argument("--n-samples", type=int)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child, args.dtype, args.n_samples, args.threads)
        return
    n_samples = N_QUICK if args.quick else N_FULL
    lines = header(n_samples, args.threads, args.note)
    print("\n".join(lines), flush=True)
    if args.quick:
        cases = [
            (dtype, method) for method, dtype in zip(METHODS, DTYPES * 2, strict=False)
        ]
    else:
        cases = [(dtype, method) for dtype in DTYPES for method in METHODS]
    results = []
    for dtype, method in cases:
        print(f"... {method}, {dtype}", flush=True)
        results.append(measure(method, dtype, n_samples, args.threads))
    report = [*lines, "", *table(results), *_harness.end_lines()]
    print("\n".join(report[len(lines) :]))
    out = _harness.output_dir(args, "bench_predict_memory")
    _harness.write_lines(out / "bench_predict_memory.txt", report)


if __name__ == "__main__":
    main()
