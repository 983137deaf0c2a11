"""A fit on 50,000,000 rows that never exist in one process: Dask against memory.

What is measured
----------------
A Dask array of ``N = 50,000,000`` float32 samples in ``D = 2`` dimensions,
drawn from a fixed 5-component Gaussian mixture block by block on the
workers (each block of 2,000,000 rows from its own seed, so the array never
exists in one process), is fitted by ``SparseGaussianMixture(10,
max_iter=ITER, tol=0, engine="torch")`` on a ``LocalCluster`` of 2 worker
processes with 1 thread each. With ``--persist`` (the default) the blocks are
kept in the workers' memory between iterations (``X.persist()``, what an
iterative fit on a real cluster should do; each worker then holds about half
of the 400 MB array); with ``--stream`` every pass draws the blocks again, as data read
from files block by block would be, and nothing is kept.

While it runs, a thread polls the resident memory (RSS, psutil) of the client
process (which also runs LocalCluster's scheduler and the workers' nannies)
and of each worker every 50 ms; at the end each process's kernel high-water
mark (``VmHWM``, which no sampling can miss) is read as well. The target is
every process under 1.5 GB (read as 1,500 MiB) throughout.

Then, after the cluster is closed, the same fit (same starting parameters,
same ``max_iter``, torch engine) runs on the first 5,000,000 rows in
memory, once with 1 torch thread and once with 2, so that the scaling shows:
ten times the rows on the same two cores should take about ten times as long
per iteration as the 2-thread fit if the distribution costs nothing, or five
times as long as the 1-thread fit (two workers of one thread each).

Both fits start from the same parameters: those of a Dask fit with
``max_iter=0`` (k-means on the 100,000-row sample that the Dask
initialisation draws). The time per iteration is from ``time_curve_`` (the
differences between consecutive iterations, so the initialisation and the
first evaluation are not in it); the median and the minimum are printed.

Usage
-----
``python benchmarks/bench_dask.py`` (several minutes; ``--iterations`` sets
``max_iter``, default 6), ``--stream`` to draw the blocks anew every pass,
``--quick`` for 400,000 rows in blocks of 100,000 on Dask against 100,000 in
memory, 2 iterations (a smoke test, seconds once the workers have started).
``--mmap-threshold BYTES`` starts the workers with glibc's
``MALLOC_MMAP_THRESHOLD_`` set (through distributed's
``distributed.nanny.pre-spawn-environ``): distributed starts workers with
``MALLOC_TRIM_THRESHOLD_=65536``, which also pins glibc's mmap threshold at
128 KiB, so every large temporary of the torch engine is a fresh mmap whose
pages fault in; measured here, a 2,000,000-row block took 74,000 page faults
and 35-50% more CPU time than in a process without it, and 33554432 (32 MiB)
brought both back. Results are printed and written to
``benchmarks/results/bench_dask.txt`` (``_stream`` and ``_mmap`` added to the
name for those runs; ``--out DIR`` elsewhere; ``--quick`` writes to a new
temporary folder unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import _harness
import numpy as np

N_FULL, N_MEMORY_FULL = 50_000_000, 5_000_000
N_QUICK, N_MEMORY_QUICK = 400_000, 100_000
BLOCK_ROWS, BLOCK_ROWS_QUICK = 2_000_000, 100_000
N_FEATURES = 2
N_COMPONENTS = 10
# Named, not 'auto': the rule for 'auto' would pick KeOps on the CPU at this
# size, and this benchmark measures the distribution, not the engines.
ENGINE = "torch"
SEED = 0
LIMIT_MIB = 1500
MIB = 2**20


# The passes timed are MM-EM's iterations over the blocks: no relaxed refit
# after them, and no covariance prior (whose automatic scale would take one
# more pass over the whole array when the start is given).
FIT = {"covariance_prior": None, "relax": False}


def true_mixture():
    """The mixture the samples come from: 5 components in 2-D.

    Returns
    -------
    weights : ndarray of shape (5,)
    means : ndarray of shape (5, 2)
    factors : ndarray of shape (5, 2, 2)
        Cholesky factors of the covariances.
    """
    rng = np.random.default_rng(SEED)
    weights = rng.dirichlet(np.full(5, 5.0))
    means = rng.uniform(-10, 10, (5, N_FEATURES))
    factors = np.linalg.cholesky(
        [
            a @ a.T + 0.2 * np.eye(N_FEATURES)
            for a in rng.normal(0, 0.7, (5, N_FEATURES, N_FEATURES))
        ]
    )
    return weights, means, factors


def mixture_block(block_index, n_rows):
    """Rows of block ``block_index`` of the data set, drawn from its own seed.

    Returns
    -------
    ndarray of shape (n_rows, N_FEATURES), float32
    """
    weights, means, factors = true_mixture()
    rng = np.random.default_rng([SEED, block_index])
    counts = rng.multinomial(n_rows, weights)
    block = np.empty((n_rows, N_FEATURES), dtype=np.float32)
    start = 0
    for count, mean, factor in zip(counts, means, factors, strict=True):
        noise = rng.standard_normal((count, N_FEATURES), dtype=np.float32)
        block[start : start + count] = noise @ factor.T.astype(np.float32) + mean
        start += count
    return block


def _dask_block(block_info=None):
    """``mixture_block`` as ``map_blocks`` calls it, with the block's location."""
    location = block_info[None]
    return mixture_block(location["chunk-location"][0], location["chunk-shape"][0])


def dask_samples(n_samples, block_rows):
    """The data set as a lazy Dask array, in blocks of ``block_rows`` rows.

    Returns
    -------
    dask.array.Array of shape (n_samples, N_FEATURES), float32
    """
    import dask.array as da

    n_full, rest = divmod(n_samples, block_rows)
    row_chunks = (block_rows,) * n_full + ((rest,) if rest else ())
    return da.map_blocks(
        _dask_block,
        chunks=(row_chunks, (N_FEATURES,)),
        dtype=np.float32,
        meta=np.empty((0, 0), dtype=np.float32),
    )


def memory_samples(n_samples, block_rows):
    """The first ``n_samples`` rows of the same data set, in memory."""
    blocks, start = [], 0
    while start < n_samples:
        rows = min(block_rows, n_samples - start)
        blocks.append(mixture_block(start // block_rows, rows))
        start += rows
    return np.concatenate(blocks)


def _cpu_seconds(process):
    """User plus system CPU seconds that a psutil process has used so far."""
    times = process.cpu_times()
    return times.user + times.system


def per_iteration(model):
    """Median and minimum seconds per iteration, from ``time_curve_``."""
    steps = np.diff(model.time_curve_)
    return float(np.median(steps)), float(np.min(steps))


def run_dask(n_samples, block_rows, iterations, persist, mmap_threshold):
    """The Dask fit on a fresh LocalCluster; returns what the report prints."""
    import dask
    from distributed import Client, LocalCluster

    from sparse_gmm import SparseGaussianMixture

    if mmap_threshold:
        # Read by glibc when a worker process starts, so it must be in the
        # environment the nanny spawns the worker with.
        key = "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_"
        dask.config.set({key: mmap_threshold})
    timings, result = {}, {}
    started = time.perf_counter()
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            # No dashboard, and the scheduler's HTTP routes on a free port.
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
        ) as cluster,
        Client(cluster) as client,
    ):
        import psutil

        worker_pids = client.run(os.getpid)
        addresses = sorted(worker_pids)
        # LocalCluster runs the scheduler and the workers' nannies in this
        # process: the workers are its children.
        pids = {"client+scheduler": os.getpid()}
        for number, address in enumerate(addresses, 1):
            assert psutil.Process(worker_pids[address]).ppid() == os.getpid()
            pids[f"worker {number}"] = worker_pids[address]
        # Workers import torch and sparse_gmm before the clock starts.
        client.run(lambda: __import__("sparse_gmm.engines._dask") and None)
        result["worker malloc"] = sorted(
            set(
                client.run(
                    lambda: " ".join(
                        f"{name}={os.environ.get(name)}"
                        for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")
                    )
                ).values()
            )
        )
        timings["cluster start"] = time.perf_counter() - started
        sampler = _harness.RssSampler(
            {name: _harness.process_rss_reader(pid) for name, pid in pids.items()},
            interval=0.05,
        )
        sampler.start()

        X = dask_samples(n_samples, block_rows)
        if persist:
            tick = time.perf_counter()
            X = X.persist()
            from distributed import wait

            wait(X)
            timings["draw and persist"] = time.perf_counter() - tick
        tick = time.perf_counter()
        start = SparseGaussianMixture(
            N_COMPONENTS, max_iter=0, engine=ENGINE, random_state=0
        ).fit(X)
        timings["initialisation (sample, k-means, one pass)"] = (
            time.perf_counter() - tick
        )
        result["start"] = {
            "weights_init": start.weights_.astype(np.float64),
            "means_init": start.means_.astype(np.float64),
            "precisions_init": start.precisions_.astype(np.float64),
        }
        model = SparseGaussianMixture(
            N_COMPONENTS,
            max_iter=iterations,
            tol=0.0,
            engine=ENGINE,
            **FIT,
            **result["start"],
        )
        processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        cpu_before = {name: _cpu_seconds(p) for name, p in processes.items()}
        tick = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # did not converge: max_iter is the point
            model.fit(X)
        timings["fit"] = time.perf_counter() - tick
        result["fit cpu"] = {
            name: _cpu_seconds(p) - cpu_before[name] for name, p in processes.items()
        }
        sampled_peaks = sampler.stop()
        hwm = client.run(_harness.peak_rss_mib)
        result["worker hwm"] = [hwm[address] for address in addresses]
        result["model"] = model
        result["sampled peaks"] = sampled_peaks
        result["n blocks"] = X.numblocks[0]
    result["client hwm"] = _harness.peak_rss_mib()
    result["timings"] = timings
    return result


def run_memory(n_samples, block_rows, iterations, start, threads):
    """The same fit in memory, in this process (after the cluster is gone).

    Returns
    -------
    dict of int to (SparseGaussianMixture, float, float)
        For each torch thread count, the fitted model, the fit's wall-clock
        seconds and its CPU seconds.
    """
    import torch

    from sparse_gmm import SparseGaussianMixture

    X = memory_samples(n_samples, block_rows)
    fits = {}
    for count in threads:
        torch.set_num_threads(count)
        model = SparseGaussianMixture(
            N_COMPONENTS, max_iter=iterations, tol=0.0, engine=ENGINE, **FIT, **start
        )
        tick, cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
        fits[count] = (model, time.perf_counter() - tick, time.process_time() - cpu)
    return fits


def report(args, n_dask, n_memory, dask_result, memory_fits):
    """The results as text lines."""
    model = dask_result["model"]
    median_dask, min_dask = per_iteration(model)
    mode = "persisted on the workers" if args.persist else "drawn anew every pass"
    lines = [
        *args.header,
        f"data: Dask array of {n_dask:,} x {N_FEATURES} float32 rows from a "
        f"5-component mixture, {dask_result['n blocks']} blocks of "
        f"{args.block_rows:,} rows drawn on the workers ({mode}); in memory: the "
        f"first {n_memory:,} rows",
        f"fit: SparseGaussianMixture({N_COMPONENTS}, max_iter={args.iterations}, "
        f"tol=0, covariance_prior=None, relax=False), engine {ENGINE}, both from "
        "the same start (a Dask fit with "
        "max_iter=0: k-means on a 100,000-row sample)",
        "workers: 2 processes x 1 thread each, started with "
        f"{', '.join(dask_result['worker malloc'])}; in memory: this process with "
        f"{' and '.join(str(count) for count in memory_fits)} torch thread(s)",
        "",
        "time per iteration (from time_curve_; per million rows in brackets):",
        f"  Dask, {n_dask:,} rows, 2 workers: median {median_dask:.3f} s "
        f"({1e6 * median_dask / n_dask:.4f}), min {min_dask:.3f} s",
    ]
    for count, (memory_model, _, _) in memory_fits.items():
        median_memory, min_memory = per_iteration(memory_model)
        lines.append(
            f"  memory, {n_memory:,} rows, {count} thread(s): median "
            f"{median_memory:.3f} s ({1e6 * median_memory / n_memory:.4f}), "
            f"min {min_memory:.3f} s; Dask takes {median_dask / median_memory:.1f}x "
            f"the time for {n_dask / n_memory:.0f}x the rows"
        )
    lines.append(
        "  components after each iteration: Dask "
        f"{[int(count) for count in model.n_components_curve_]}, memory "
        f"{[int(count) for count in memory_model.n_components_curve_]}"
    )
    # A fit makes one pass to evaluate its start, then one per iteration.
    passes = model.n_iter_ + 1
    fit_cpu = dask_result["fit cpu"]
    workers_cpu = sum(value for name, value in fit_cpu.items() if "worker" in name)
    lines += [
        "",
        "CPU seconds per pass over the data (user + system; unlike the times "
        "above, barely affected by other work on the machine):",
        f"  Dask, {n_dask:,} rows: workers {workers_cpu / passes:.2f} "
        f"({1e6 * workers_cpu / passes / n_dask:.4f} per million rows; "
        + ", ".join(f"{name} {value / passes:.2f}" for name, value in fit_cpu.items())
        + ")",
    ]
    for count, (memory_model, _, cpu) in memory_fits.items():
        memory_passes = memory_model.n_iter_ + 1
        lines.append(
            f"  memory, {n_memory:,} rows, {count} thread(s): "
            f"{cpu / memory_passes:.2f} "
            f"({1e6 * cpu / memory_passes / n_memory:.4f} per million rows)"
        )
    lines += ["", "wall-clock seconds:"]
    for name, seconds in dask_result["timings"].items():
        lines.append(f"  Dask {name}: {seconds:.1f}")
    for count, (_, seconds, _) in memory_fits.items():
        lines.append(f"  memory fit, {count} thread(s): {seconds:.1f}")
    lines += ["", "peak resident memory (MiB = 2**20 bytes):"]
    lines.append(f"  {'process':<18} {'sampled (50 ms)':>16} {'VmHWM':>8}")
    peaks = dask_result["sampled peaks"]
    hwm = {"client+scheduler": dask_result["client hwm"]}
    for number, value in enumerate(dask_result["worker hwm"], 1):
        hwm[f"worker {number}"] = value
    for name, peak in peaks.items():
        mark = f"{hwm[name]:8.0f}" if name in hwm else f"{'-':>8}"
        lines.append(f"  {name:<18} {peak:16.0f} {mark}")
    worst = max(max(peaks.values()), max(hwm.values()))
    verdict = "yes" if worst < LIMIT_MIB else "NO"
    lines.append(
        f"  every process under {LIMIT_MIB} MiB throughout: {verdict} "
        f"(largest {worst:.0f} MiB)"
    )
    lines.append(
        "  (LocalCluster's scheduler and nannies run in the client process. Its "
        f"VmHWM covers the whole run, the in-memory fits of {n_memory:,} rows "
        "included; the sampled figures cover the Dask part.)"
    )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _harness.add_common_arguments(
        parser,
        f"{N_QUICK:,} rows in blocks of {BLOCK_ROWS_QUICK:,} against "
        f"{N_MEMORY_QUICK:,} in memory, 2 iterations: a smoke test",
    )
    parser.add_argument("--iterations", type=int, default=None, help="default 6")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--persist", dest="persist", action="store_true", default=True)
    mode.add_argument("--stream", dest="persist", action="store_false")
    parser.add_argument("--mmap-threshold", type=int, default=0, metavar="BYTES")
    args = parser.parse_args()
    if args.iterations is None:
        args.iterations = 2 if args.quick else 6
    args.header = _harness.header_lines(
        "bench_dask: a Dask fit on a 2-worker LocalCluster against the same fit "
        "in memory",
        args.note,
    )
    n_dask, n_memory, args.block_rows = (
        (N_QUICK, N_MEMORY_QUICK, BLOCK_ROWS_QUICK)
        if args.quick
        else (N_FULL, N_MEMORY_FULL, BLOCK_ROWS)
    )
    dask_result = run_dask(
        n_dask, args.block_rows, args.iterations, args.persist, args.mmap_threshold
    )
    memory_fits = run_memory(
        n_memory, args.block_rows, args.iterations, dask_result["start"], (1, 2)
    )
    lines = report(args, n_dask, n_memory, dask_result, memory_fits)
    lines += ["", *_harness.end_lines()]
    print("\n".join(lines))
    suffix = ("" if args.persist else "_stream") + (
        "_mmap" if args.mmap_threshold else ""
    )
    out = _harness.output_dir(args, "bench_dask")
    _harness.write_lines(out / f"bench_dask{suffix}.txt", lines)


if __name__ == "__main__":
    main()
