"""Whole-fit time: the defaults against the fits a user would otherwise run.

What is measured
----------------
What a user waits for is the whole fit, initialisation included, not one EM
iteration (``bench_speed.py`` measures those). On mixtures of ``K = 6``
Gaussians in ``D`` in {2, 4, 8} dimensions with ``N`` in {1e4, 1e5, 2e5, 1e6}
training samples (made by ``_mixtures.py``: ``sep = 5`` "separated", and at
``D = 4`` also ``sep = 2.5`` "overlapping"), every method below is fitted in
this one process, with one thread (torch, BLAS and OpenMP), one after the
other on the same data:

``SGM``
    ``SparseGaussianMixture()`` at its defaults (20 components pruned to K).
``GM(K)``
    ``sklearn.mixture.GaussianMixture(K)``, told the true K: the floor that a
    method which must find K can only approach.
``BIC-10/50k``
    What an experienced user does on large data: ``GaussianMixture(k)`` for k
    = 1..10 on a uniform sample of 50,000 rows (all rows when there are
    fewer), the lowest BIC kept, then ``GaussianMixture(k)`` refitted on all
    rows. Its time includes all eleven fits.
``BIC-20``
    ``GaussianMixture(k)`` for k = 1..20 on all rows, the lowest BIC kept
    (``_references.fit_bic_sweep``, as in compare.py); up to N = 1e5.
``BGM``
    ``BayesianGaussianMixture(20)`` (``_references.fit_bayesian``); up to
    N = 1e5. The last two are left out above, where each takes minutes per
    data set.

For each it records the wall time, the number of components found (for BGM,
those above 1% weight) and the held-out mean log-likelihood (5,000 fresh
samples) minus that of ``GM(K)``: 0 is the maximum-likelihood fit at the true
K, and a method that finds K should reach it. The table gives each time as a
multiple of ``GM(K)``'s, measured side by side, and the load average at each
row, since the machine may be shared.

Usage
-----
``python benchmarks/bench_end_to_end.py`` runs the grid (about 20 minutes
on an idle 2-core machine); ``--quick`` fits two tiny data sets, a check
that the script works whose figures mean nothing. The table goes to stdout
and ``bench_end_to_end.txt``, one row per fit to ``bench_end_to_end.csv``,
the figure to ``bench_end_to_end.png``, in ``benchmarks/results/`` (``--out
DIR`` elsewhere; ``--quick`` writes to a new temporary folder unless
``--out`` is given). Every result file names the commit it came from.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import _harness
import _references
import numpy as np
from _mixtures import dataset
from sklearn.mixture import GaussianMixture

from sparse_gmm import SparseGaussianMixture

STEM = "bench_end_to_end"
N_COMPONENTS = 6
SAMPLE_ROWS = 50_000
#: The largest N at which the sweep over all rows and BGM run.
FULL_SWEEP_MAX_N = 100_000
GRIDS = {
    "full": {
        "N": (10_000, 100_000, 200_000, 1_000_000),
        "D": (2, 4, 8),
        "overlapping_D": (4,),
    },
    "quick": {"N": (2_000,), "D": (2,), "overlapping_D": (2,)},
}
METHODS = ("GM(K)", "SGM", "BIC-10/50k", "BIC-20", "BGM")


def _bic_on_sample(X, max_components, random_state):
    """Sweep k = 1..max_components on a row sample by BIC, refit on all rows."""
    rng = np.random.default_rng(random_state)
    sample = X
    if len(X) > SAMPLE_ROWS:
        sample = X[rng.choice(len(X), SAMPLE_ROWS, replace=False)]
    best = _references.fit_bic_sweep(sample, max_components, random_state).model
    if sample is X:
        return best
    return GaussianMixture(best.n_components, random_state=random_state).fit(X)


def _fit(method, X, random_state):
    """The fitted model and the number of components it keeps."""
    if method == "GM(K)":
        model = GaussianMixture(N_COMPONENTS, random_state=random_state).fit(X)
        return model, model.n_components
    if method == "SGM":
        model = SparseGaussianMixture(random_state=random_state).fit(X)
        return model, model.n_components_
    if method == "BIC-10/50k":
        model = _bic_on_sample(X, 10, random_state)
        return model, model.n_components
    if method == "BIC-20":
        model = _references.fit_bic_sweep(X, 20, random_state).model
        return model, model.n_components
    n_found, model = _references.fit_bayesian(X, 20, random_state)
    return model, n_found


def _keys(quick):
    grid = GRIDS["quick" if quick else "full"]
    keys = []
    for N in grid["N"]:
        keys += [(N_COMPONENTS, D, "separated", N, 0) for D in grid["D"]]
        keys += [(N_COMPONENTS, D, "overlapping", N, 0) for D in grid["overlapping_D"]]
    return keys


def run(keys, log):
    """One record per (data set, method): time, K found, held-out gap."""
    records = []
    commit = _harness.git_commit()
    for key in keys:
        _, D, sep, N, seed = key
        X, X_test, _ = dataset(*key)
        methods = [
            m for m in METHODS if N <= FULL_SWEEP_MAX_N or m not in ("BIC-20", "BGM")
        ]
        reference = None
        for method in methods:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model, n_found = _fit(method, X, seed)
            seconds = time.perf_counter() - start
            held_out = float(model.score(X_test))
            if method == "GM(K)":
                reference = held_out
            record = {
                "N": N,
                "D": D,
                "sep": sep,
                "method": method,
                "seconds": seconds,
                "n_found": n_found,
                "n_iter": int(model.n_iter_),
                "gap": held_out - reference,
                "load": os.getloadavg()[0],
                "commit": commit,
            }
            records.append(record)
            log(
                f"N={N:>9,} D={D} {sep:11s} {method:10s} {seconds:8.2f} s "
                f"K={n_found:2d} n_iter={record['n_iter']:4d} "
                f"gap={record['gap']:+.4f} load {record['load']:.1f}"
            )
    return records


def summary_table(records):
    """Per data set: each method's time as a multiple of GM(K)'s, K, gap."""
    rows = []
    cells = sorted(
        {(r["N"], r["D"], r["sep"]) for r in records},
        key=lambda c: (c[0], c[1], c[2]),
    )
    for N, D, sep in cells:
        by_method = {
            r["method"]: r for r in records if (r["N"], r["D"], r["sep"]) == (N, D, sep)
        }
        base = by_method["GM(K)"]["seconds"]
        row = [f"{N:,}", D, sep, f"{base:.2f}"]
        for method in METHODS[1:]:
            r = by_method.get(method)
            row.append(
                "-"
                if r is None
                else f"{r['seconds'] / base:5.1f}x K={r['n_found']} {r['gap']:+.3f}"
            )
        row.append(f"{by_method['SGM']['load']:.1f}")
        rows.append(row)
    header = ["N", "D", "data", "GM(K) s", *METHODS[1:], "load"]
    return _harness.table(header, rows)


def plot(records, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for method, marker in zip(METHODS[1:], "osd^", strict=True):
        for D, style in zip((2, 4, 8), ("-", "--", ":"), strict=False):
            points = sorted(
                (r["N"], r["seconds"] / _gm_seconds(records, r))
                for r in records
                if r["method"] == method and r["D"] == D and r["sep"] == "separated"
            )
            if points:
                N, ratio = zip(*points, strict=True)
                axes[0].plot(
                    N, ratio, marker=marker, linestyle=style, label=f"{method}, D={D}"
                )
    axes[0].axhline(1.5, color="grey", linewidth=0.8)
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel="training samples N",
        ylabel="whole-fit time / GaussianMixture(true K)",
        title="Separated mixtures, K = 6 (grey: 1.5x)",
    )
    axes[0].legend(fontsize=6, ncol=2)
    sgm = [r for r in records if r["method"] == "SGM"]
    axes[1].scatter(
        [r["N"] for r in sgm],
        [r["gap"] for r in sgm],
        c=[r["D"] for r in sgm],
        marker="o",
    )
    axes[1].axhline(0.0, color="grey", linewidth=0.8)
    axes[1].set(
        xscale="log",
        xlabel="training samples N",
        ylabel="held-out log-likelihood - GM(true K)'s",
        title="SparseGaussianMixture() (colour: D)",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _gm_seconds(records, record):
    return next(
        r["seconds"]
        for r in records
        if r["method"] == "GM(K)"
        and (r["N"], r["D"], r["sep"]) == (record["N"], record["D"], record["sep"])
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _harness.add_common_arguments(
        parser, "two tiny data sets: checks that the script runs"
    )
    args = parser.parse_args(argv)
    _harness.set_threads(1)
    header = _harness.header_lines(
        "bench_end_to_end: whole-fit seconds of the defaults against "
        "GaussianMixture(true K), BIC sweeps and BayesianGaussianMixture; "
        "one thread",
        args.note,
    )
    records = run(_keys(args.quick), lambda text: print(text, flush=True))
    lines = [
        *header,
        "",
        "time as a multiple of GM(K)'s (same data, same process), components "
        "found, held-out log-likelihood minus GM(K)'s (nats per sample)",
        "",
        summary_table(records),
        "",
        *_harness.end_lines(),
    ]
    print("\n".join(lines))
    out = _harness.output_dir(args, STEM)
    _harness.write_lines(out / f"{STEM}.txt", lines)
    _harness.write_records(out / f"{STEM}.csv", records)
    plot(records, out / f"{STEM}.png")
    print(f"written to {out / STEM}.png", flush=True)


if __name__ == "__main__":
    main()
