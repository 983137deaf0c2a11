"""Seconds per EM iteration: sparse_gmm's torch engine against scikit-learn.

What is measured
----------------
The wall time of one EM iteration (one E-step and one M-step over all
samples) of ``SparseGaussianMixture(engine='torch', device='cpu')`` and of
:class:`sklearn.mixture.GaussianMixture`, both with ``covariance_type='full'``
and ``M = 100`` components, on the same float64 data (ten Gaussian blobs).
The headline is ``N = 200,000`` samples in ``D = 4`` dimensions, where
sparse_gmm should be at least 30 times faster; a sweep over
``N in (1e4, 1e5, 2e5)`` and ``D in (2, 4, 8)`` feeds the plot.

Both estimators do the same work: ``sparsity=0`` (maximum likelihood) and
``prune_threshold=0`` (``sparsity=0`` alone still prunes components whose
weight falls below ``prune_threshold``), ``tol=0`` so that neither stops
early, and the same ``weights_init``, ``means_init`` and ``precisions_init``,
so no k-means runs and the iterates agree; the table's ``|dmu|`` column is the
largest difference between the two fits' means, which checks that.

How
---
Everything runs in one process, with torch and the BLAS/OpenMP pools of numpy
and scikit-learn (through threadpoolctl) set to the same thread count
(``--threads``, default 2). A fit with ``max_iter=k`` costs the
initialisation, ``k`` iterations and an extra E-step in both libraries, so the
time per iteration is ``(t(k1) - t(k0)) / (k1 - k0)`` with ``k0 = 1``, which
cancels everything but the iterations; ``k1 - k0`` is 2 from
``N = 100,000`` on and up to 20 for small ``N``, so that the difference is
not lost in the noise of a whole fit. The fits of the two libraries are
interleaved (their order alternates between repeats), and each library's
``(min t(k1) - min t(k0)) / (k1 - k0)`` over the repeats is reported, with
``sklearn / sparse_gmm`` per row: on a shared machine load only ever adds
time, so the minima are the steadiest figures (a median of two repeats, used
before, could even go negative when a burst of load hit a short fit). The
``(range)`` column gives the lowest and highest per-repeat ratio.

The arithmetic floor of one iteration is printed next to it: the two matmuls
of the moment formulation (``phi(x) @ theta`` in the E-step and
``resp^T @ phi`` for the statistics) take ``4 N M F`` flop, with ``F = 1 + D +
D (D + 1) / 2`` the number of moment features, at the rate measured on a large
square float64 matmul, plus ``N M`` exponentials (one per sample
and component) at the rate measured for
``torch.exp`` on a large float64 array. ``sparse/floor`` shows how far the
engine is from it.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, when set, slow numpy's BLAS; they are
left as they are and printed in the header, as is the load average, since the
machine may be shared.

Usage
-----
``python benchmarks/bench_speed.py`` runs the headline (three repeats) and
the sweep (two repeats; about five minutes on a two-core machine);
``--quick`` runs two tiny sizes with one repeat and ``k = 2``, a check that
the script works (seconds; its figures mean nothing). The table is printed
and written to ``bench_speed.txt``, the plot to ``bench_speed.png``, in
``benchmarks/results/`` (``--out DIR`` elsewhere; ``--quick`` writes to a new
temporary folder unless ``--out`` is given); ``--threads T`` other than 2 adds
``_threadsT`` to the names. Every result file starts with the git commit, the
command, the machine, its load average and the library versions
(``_harness.header_lines``); ``--note`` adds a remark such as "machine shared".

On a shared machine, multi-threaded timings suffer most: when other processes
keep the cores busy, each parallel call (many small ones in scikit-learn's
per-component loops, every elementwise op in torch) can wait a scheduler
time slice for a descheduled worker. A warning is printed when the load
average suggests this; ``--threads 1`` then gives steadier figures.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import _harness
import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from sparse_gmm import SparseGaussianMixture

N_COMPONENTS = 100
HEADLINE = (200_000, 4)
TARGET_SPEEDUP = 30.0


def make_model(library, max_iter, inits):
    if library == "sparse_gmm":
        return SparseGaussianMixture(
            n_components=N_COMPONENTS,
            sparsity=0.0,
            covariance_prior=None,
            prune_threshold=0.0,
            tol=0.0,
            max_iter=max_iter,
            engine="torch",
            device="cpu",
            random_state=0,
            **inits,
        )
    # random_from_data is the cheapest way through scikit-learn's
    # initialisation, whose result the given inits then replace.
    return GaussianMixture(
        n_components=N_COMPONENTS,
        tol=0.0,
        max_iter=max_iter,
        init_params="random_from_data",
        random_state=0,
        **inits,
    )


def timed_fit(library, X, max_iter, inits):
    model = make_model(library, max_iter, inits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0
        start = time.perf_counter()
        model.fit(X)
        seconds = time.perf_counter() - start
    if model.n_iter_ != max_iter:
        raise RuntimeError(f"{library} ran {model.n_iter_} != {max_iter} iterations")
    if library == "sparse_gmm" and model.n_components_ != N_COMPONENTS:
        raise RuntimeError("sparse_gmm pruned a component: not the same work")
    return seconds, model


def iteration_span(n_samples, quick=False):
    """``k1 - k0``: more iterations for small ``N``, where one takes milliseconds.

    2 for ``--quick``, whose figures only show that the code runs.
    """
    if quick:
        return 2
    return int(np.clip(round(200_000 / n_samples), 2, 20))


def seconds_per_iteration(X, repeats, span, k0=1):
    """``(min t(k1) - min t(k0)) / (k1 - k0)`` over the repeats, per library."""
    k1 = k0 + span
    inits = _harness.shared_precision_inits(X, N_COMPONENTS)
    times = {"sparse_gmm": ([], []), "sklearn": ([], [])}
    per_iteration = {"sparse_gmm": [], "sklearn": []}
    models = {}
    for repeat in range(repeats):
        order = ("sparse_gmm", "sklearn")
        for library in order if repeat % 2 == 0 else order[::-1]:
            short, _ = timed_fit(library, X, k0, inits)
            long, models[library] = timed_fit(library, X, k1, inits)
            times[library][0].append(short)
            times[library][1].append(long)
            per_iteration[library].append((long - short) / (k1 - k0))
    drift = float(
        np.max(np.abs(models["sparse_gmm"].means_ - models["sklearn"].means_))
    )
    estimates = {
        library: (min(longs) - min(shorts)) / (k1 - k0)
        for library, (shorts, longs) in times.items()
    }
    ratios = [
        slow / fast
        for slow, fast in zip(
            per_iteration["sklearn"], per_iteration["sparse_gmm"], strict=True
        )
    ]
    return estimates | {"ratio_range": (min(ratios), max(ratios))}, drift


def suspect_rows(rows):
    """Warnings for rows that load on the machine has visibly corrupted.

    No engine runs below the arithmetic floor, and no repeat's ratio can be
    negative unless a burst of load hit its shorter fit: such a row measures
    the other jobs, not the code.
    """
    return [
        f"WARNING: N={row['n']:,} D={row['d']}: "
        + (
            "sparse_gmm below the arithmetic floor"
            if row["sparse_gmm"] < row["floor"]
            else "a repeat's ratio is not positive"
        )
        + "; load corrupted this row, rerun it on an idle machine"
        for row in rows
        if row["sparse_gmm"] < row["floor"] or min(row["ratio_range"]) <= 0
    ]


def header(threads, rates, note):
    flops, exps = rates
    env = {
        name: os.environ.get(name, "(unset)")
        for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")
    }
    return [
        *_harness.header_lines(
            "bench_speed: seconds per EM iteration, covariance_type='full', "
            f"M={N_COMPONENTS}, float64",
            note,
        ),
        f"threads: torch {torch.get_num_threads()}, numpy/sklearn pools "
        f"{_harness.thread_pools()} (requested {threads})",
        "env: " + ", ".join(f"{k}={v}" for k, v in env.items()),
        f"measured rates: float64 matmul {flops / 1e9:.1f} GFLOP/s, "
        f"torch.exp {exps / 1e6:.0f} M/s",
        "floor = 4 N M F / matmul rate + N M / exp rate, "
        "F = 1 + D + D(D+1)/2 moment features",
        "s/iter = (min t(max_iter=1+k) - min t(max_iter=1)) / k over the repeats, "
        "k = clip(200,000 / N, 2, 20);",
        "(range) = lowest and highest ratio over the repeats; "
        "|dmu| = max |means sparse_gmm - means sklearn|",
        *_harness.busy_warning(threads),
    ]


def table(rows):
    columns = (
        f"{'N':>8} {'D':>2} {'F':>3} {'k':>2} {'sklearn s/it':>12} {'sparse s/it':>11} "
        f"{'sklearn/sparse':>14} {'(range)':>13} {'floor s/it':>10} "
        f"{'sparse/floor':>12} {'|dmu|':>8}"
    )
    lines = [columns, "-" * len(columns)]
    for row in rows:
        lines.append(
            f"{row['n']:>8,} {row['d']:>2} {_harness.n_moment_features(row['d']):>3} "
            f"{row['k']:>2} "
            f"{row['sklearn']:>12.4f} {row['sparse_gmm']:>11.4f} "
            f"{row['sklearn'] / row['sparse_gmm']:>13.1f}x "
            f"{'({:.1f}-{:.1f})'.format(*row['ratio_range']):>13} "
            f"{row['floor']:>10.4f} {row['sparse_gmm'] / row['floor']:>11.1f}x "
            f"{row['drift']:>8.1e}"
        )
    return lines


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for index, d in enumerate(sorted({row["d"] for row in rows})):
        subset = sorted((row for row in rows if row["d"] == d), key=lambda r: r["n"])
        n = [row["n"] for row in subset]
        color = f"C{index}"
        left.loglog(n, [r["sparse_gmm"] for r in subset], "o-", color=color)
        left.loglog(n, [r["sklearn"] for r in subset], "s--", color=color)
        left.loglog(n, [r["floor"] for r in subset], ":", color=color)
        right.semilogx(
            n,
            [r["sklearn"] / r["sparse_gmm"] for r in subset],
            "o-",
            color=color,
            label=f"D={d}",
        )
        left.plot([], [], "-", color=color, label=f"D={d}")
    left.plot([], [], "ko-", label="sparse_gmm (torch)")
    left.plot([], [], "ks--", label="scikit-learn")
    left.plot([], [], "k:", label="arithmetic floor")
    left.set(xlabel="n_samples", ylabel="seconds per iteration")
    left.set_title(f"EM iteration, M={N_COMPONENTS}, full covariances")
    left.legend(fontsize=8)
    right.axhline(TARGET_SPEEDUP, color="grey", lw=0.8, ls="--")
    right.set(xlabel="n_samples", ylabel="sklearn / sparse_gmm", ylim=(0, None))
    right.set_title(f"speed-up (threads: {torch.get_num_threads()})")
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _harness.add_common_arguments(parser, "two tiny sizes, one repeat (seconds)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    _harness.set_threads(args.threads)
    if args.quick:
        grid, repeats, headline_repeats = [(1_000, 2), (2_000, 4)], 1, 1
        rates = _harness.machine_rates("float64", size=512, n_exp=2**20)
    else:
        grid = [(n, d) for d in (2, 4, 8) for n in (10_000, 100_000, 200_000)]
        repeats, headline_repeats = 2, 3
        rates = _harness.machine_rates("float64")
    lines = header(args.threads, rates, args.note)
    print("\n".join(lines), flush=True)
    print("\n".join(table([])), flush=True)
    rows = []
    # The headline first (more repeats), then the rest of the sweep.
    for n, d in sorted(grid, key=lambda nd: nd != HEADLINE):
        X = _harness.blobs(n, d)
        span = iteration_span(n, args.quick)
        estimates, drift = seconds_per_iteration(
            X, headline_repeats if (n, d) == HEADLINE else repeats, span
        )
        floor = _harness.floor_seconds(n, N_COMPONENTS, d, rates)
        rows.append(
            {"n": n, "d": d, "k": span, "drift": drift, "floor": floor} | estimates
        )
        print(table(rows[-1:])[-1], flush=True)
    rows.sort(key=lambda row: (row["d"], row["n"]))
    report = [*lines, "", *table(rows), ""]
    for row in rows:
        if (row["n"], row["d"]) == HEADLINE:
            speedup = row["sklearn"] / row["sparse_gmm"]
            verdict = "yes" if speedup >= TARGET_SPEEDUP else "NO"
            report.append(
                f"headline N={row['n']:,} D={row['d']}: sklearn/sparse_gmm = "
                f"{speedup:.1f}x (target >= {TARGET_SPEEDUP:.0f}x: {verdict})"
            )
    report += suspect_rows(rows)
    report += _harness.end_lines()
    report += _harness.busy_warning(args.threads)
    print("\n".join(report[len(lines) :]))
    out = _harness.output_dir(args, "bench_speed")
    stem = "bench_speed" + ("" if args.threads == 2 else f"_threads{args.threads}")
    _harness.write_lines(out / f"{stem}.txt", report)
    plot(rows, out / f"{stem}.png")
    print(f"written to {out / stem}.png")


if __name__ == "__main__":
    main()
