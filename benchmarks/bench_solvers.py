"""MM-EM against the KeOps tutorial's Adam (and L-BFGS) on the tutorial's spiral.

What is measured
----------------
The KeOps GMM tutorial fits 30 components with the sparsity prior
``(s / M) * sum_j sqrt(W_j)``, ``s = 20``, to its spiral (``make_spiral()``,
N = 10,000 points in the unit square) by 501 steps of Adam with learning rate
0.1, starting from means drawn uniformly in the unit square, precisions
``225 I`` (the tutorial's factor ``A = 15 I``, ``P = A A^T``) and equal
weights. ``SparseGaussianMixture`` minimises the same objective

    F = -mean log-likelihood + (s / M) * sum_j sqrt(W_j)

with any of its solvers, so the final ``F`` (``objective_``) of each is
directly comparable. For each seed (0 to 4) this script fits, with
``n_components=30, sparsity=20``:

- ``adam (tutorial)``: ``solver='adam', learning_rate=0.1, max_iter=501,
  tol=0`` from the tutorial's initialisation (``tol=0`` never stops early,
  so it takes the tutorial's 501 steps; it therefore always ends with a
  ConvergenceWarning, which is expected and not reported);
- ``mm-em (default)``: ``solver='em'`` with every other parameter at its
  default (k-means initialisation, ``random_state=seed``);
- ``mm-em (tutorial init)``: ``solver='em'`` from the tutorial's
  initialisation, as Adam;
- ``mm-em (removal moves)``: the default MM-EM with ``removal_moves=True``
  (after convergence, try removing the lightest component and keep the
  removal when ``F`` ends lower), which minimises ``F`` further;
- ``lbfgs (tutorial init)``: ``solver='lbfgs'`` with its defaults
  (``tol=1e-4``, ``max_iter=300``) from the tutorial's initialisation;
- ``lbfgs (tol=0, 1000 it)``: the same run carried on to 1000 iterations,
  a diagnostic of where L-BFGS stops with its default ``tol``.

The tutorial's initialisation for seed ``k`` is
``np.random.default_rng(k).uniform(size=(30, 2))`` for the means (the
tutorial draws ``torch.rand(30, 2)``), ``weights_init = 1/30`` and
``precisions_init = 225 I``. The data are float64 (the tutorial's float32
points, converted).

Per fit the table gives the final objective ``F``, the number of components
kept, the iterations, the wall time of ``fit()`` (``time.perf_counter``
around the call, so it includes the k-means initialisation of the default
MM-EM) and the solver's own time (the last entry of ``time_curve_``), then
the median of each over the seeds. Adam and both MM-EM fits are timed
``--repeats`` times (default 3; the fits are deterministic, and a repeat
whose ``F`` differed would be reported) and the median time is kept; the
L-BFGS fits, slower and only a comparison, run once. The headline compares
the median ``F`` of MM-EM (default) with that of Adam (MM-EM must be at least
as low) and gives the median over seeds of the per-seed wall-time ratio
Adam / MM-EM (default), which must be at least 5. It also gives the
solver time at which MM-EM's path first reaches Adam's final ``F``.

How
---
One process; torch and the BLAS/OpenMP pools (through threadpoolctl) use
``--threads`` threads (default 1: the machine this was written on has two
cores shared with other jobs, where multi-threaded timings are erratic). The
fits are interleaved: every seed runs all methods, in an order rotated by one
position from seed to seed, so that a burst of load from elsewhere does not
fall on one method only. Before timing, one tiny fit of each solver runs
untimed: the first torch optimiser built in a process imports
``torch._dynamo`` (about 4 s, once), which would otherwise be charged to
whichever gradient fit came first.

The figure plots ``loss_curve_`` against ``time_curve_`` (seconds since the
solver started, after each iteration) for seed 0; ``time_curve_`` does not
include the initialisation, so each curve ends with a marker at the whole
``fit()`` wall time.

Usage
-----
``python benchmarks/bench_solvers.py`` runs seeds 0 to 4 (about five minutes
on one thread) and writes ``benchmarks/results/bench_solvers.txt`` and
``bench_solvers.png`` (``--out DIR`` elsewhere); ``--quick`` runs seed 0
once on 1,000 points of the spiral with Adam and L-BFGS cut to a tenth of
their iterations, a smoke test whose figures mean nothing,
and writes to a new temporary folder unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import time
import warnings

import _harness
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from sparse_gmm import SparseGaussianMixture
from sparse_gmm.datasets import make_spiral

N_COMPONENTS = 30
SPARSITY = 20.0
TARGET_SPEEDUP = 5.0
N_QUICK = 1_000

METHODS = (
    "adam (tutorial)",
    "mm-em (default)",
    "mm-em (tutorial init)",
    "mm-em (removal moves)",
    "lbfgs (tutorial init)",
    "lbfgs (tol=0, 1000 it)",
)
ADAM, EM, EM_TUTORIAL, EM_REMOVAL, LBFGS, LBFGS_LONG = METHODS
#: The methods timed ``--repeats`` times (the others run once).
REPEATED = (ADAM, EM, EM_TUTORIAL, EM_REMOVAL)
COLOURS = dict(zip(METHODS, ("C3", "C0", "C9", "C4", "C2", "C8"), strict=True))


def tutorial_init(seed, n_components=N_COMPONENTS, n_features=2):
    """The tutorial's starting point: uniform means, precisions 225 I."""
    rng = np.random.default_rng(seed)
    return {
        "weights_init": np.full(n_components, 1.0 / n_components),
        "means_init": rng.uniform(size=(n_components, n_features)),
        "precisions_init": np.repeat(225.0 * np.eye(n_features)[None], n_components, 0),
    }


def make_estimator(method, seed, quick=False):
    """The estimator of one method; ``quick`` cuts the gradient solvers short."""
    # The tutorial's objective: the sparsity prior alone, and the fit each
    # solver ends at (no covariance prior, no relaxed refit).
    common = {
        "n_components": N_COMPONENTS,
        "sparsity": SPARSITY,
        "covariance_prior": None,
        "relax": False,
    }
    if method == ADAM:
        return SparseGaussianMixture(
            **common,
            solver="adam",
            learning_rate=0.1,
            max_iter=51 if quick else 501,
            tol=0,
            **tutorial_init(seed),
        )
    if method == EM:
        return SparseGaussianMixture(**common, solver="em", random_state=seed)
    if method == EM_REMOVAL:
        return SparseGaussianMixture(
            **common, solver="em", removal_moves=True, random_state=seed
        )
    if method == EM_TUTORIAL:
        return SparseGaussianMixture(**common, solver="em", **tutorial_init(seed))
    if method == LBFGS:
        return SparseGaussianMixture(
            **common,
            solver="lbfgs",
            max_iter=30 if quick else 300,
            **tutorial_init(seed),
        )
    return SparseGaussianMixture(
        **common,
        solver="lbfgs",
        tol=0,
        max_iter=60 if quick else 1000,
        **tutorial_init(seed),
    )


def timed_fit(method, seed, X, quick=False):
    """Fit one method; return its row (with curves) and the warnings raised."""
    estimator = make_estimator(method, seed, quick)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            estimator.fit(X)
        except Exception as error:  # a failed fit is a result, not the end
            return failed_row(method, seed, time.perf_counter() - start), [
                f"fit failed: {type(error).__name__}: {str(error)[:120]}"
            ]
        seconds = time.perf_counter() - start
    messages = sorted(
        {
            describe(w)
            for w in caught
            # tol=0 never converges by design: expected.
            if not (
                method in (ADAM, LBFGS_LONG)
                and issubclass(w.category, ConvergenceWarning)
            )
        }
    )
    row = {
        "seed": seed,
        "method": method,
        "objective": float(estimator.objective_),
        "components": int(estimator.n_components_),
        "n_iter": int(estimator.n_iter_),
        "converged": bool(estimator.converged_),
        "seconds": seconds,
        "solver_seconds": float(estimator.time_curve_[-1]),
        "failed": False,
        "finite": bool(np.all(np.isfinite(estimator.loss_curve_))),
        "loss_curve": estimator.loss_curve_,
        "time_curve": estimator.time_curve_,
        "best_in_curve": float(np.min(estimator.loss_curve_)),
    }
    return row, messages


def failed_row(method, seed, seconds):
    return {
        "seed": seed,
        "method": method,
        "objective": np.nan,
        "components": 0,
        "n_iter": 0,
        "converged": False,
        "failed": True,
        "seconds": seconds,
        "solver_seconds": np.nan,
        "finite": True,
        "loss_curve": np.array([np.nan]),
        "time_curve": np.array([np.nan]),
        "best_in_curve": np.nan,
    }


def median(values):
    """Median of the values that are not NaN (NaN when none is)."""
    values = np.asarray(list(values), dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(np.median(values)) if len(values) else np.nan


def describe(warning):
    return f"{warning.category.__name__}: {str(warning.message).splitlines()[0][:90]}"


def warm_up():
    """Untimed tiny fits: imports (torch._dynamo for the optimisers), caches.

    Returns the warnings they raised other than ConvergenceWarning: torch
    warns only once per process, so a warning of the gradient solvers shows
    up here and not in the timed fits.
    """
    X = make_spiral(500, random_state=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for solver in ("em", "adam", "lbfgs"):
            SparseGaussianMixture(
                5, sparsity=SPARSITY, solver=solver, max_iter=3, random_state=0
            ).fit(X)
    return sorted(
        {describe(w) for w in caught if not issubclass(w.category, ConvergenceWarning)}
    )


def header(threads, seeds, n_samples, repeats, note):
    return [
        *_harness.header_lines(
            "bench_solvers: MM-EM vs the KeOps tutorial's Adam (and L-BFGS)", note
        ),
        f"data: make_spiral(), N={n_samples:,}, float64; M={N_COMPONENTS}, "
        f"sparsity={SPARSITY:g}; seeds {', '.join(map(str, seeds))}; "
        f"threads {threads}",
        "F = objective_; time = wall time of fit() in seconds (median of "
        f"{repeats} for {', '.join(REPEATED)}); solver = last time_curve_ entry; "
        "iter = n_iter_; conv = converged_",
    ]


def format_row(label, row, conv=""):
    return (
        f"{label:>6}  {row['method']:<22}  {row['objective']:>10.5f}  "
        f"{row['components']:>10}  {row['n_iter']:>5}  {row['seconds']:>8.2f}  "
        f"{row['solver_seconds']:>10.2f}  {conv:>4}"
    )


def table_header():
    return (
        f"{'seed':>6}  {'method':<22}  {'F':>10}  {'components':>10}  "
        f"{'iter':>5}  {'time (s)':>8}  {'solver (s)':>10}  {'conv':>4}"
    )


def conv(row):
    if row.get("failed"):
        return "FAIL"
    return "yes" if row["converged"] else "no"


def median_rows(rows):
    lines = []
    for method in METHODS:
        # Over the fits that did not fail.
        subset = [row for row in rows if row["method"] == method and not row["failed"]]
        medians = {"method": method}
        for key in ("objective", "seconds", "solver_seconds"):
            medians[key] = median(row[key] for row in subset)
        for key in ("components", "n_iter"):
            medians[key] = f"{median(row[key] for row in subset):g}"
        failed = sum(row["method"] == method and row["failed"] for row in rows)
        note = f"{failed} failed" if failed else ""
        lines.append(format_row("median", medians, note))
    return lines


def headline(rows, seeds):
    by = {(row["seed"], row["method"]): row for row in rows}
    median_f = {
        method: median(by[seed, method]["objective"] for seed in seeds)
        for method in METHODS
    }
    ratios = [by[seed, ADAM]["seconds"] / by[seed, EM]["seconds"] for seed in seeds]
    ratio = median(ratios)
    removal_ratio = median(
        by[seed, ADAM]["seconds"] / by[seed, EM_REMOVAL]["seconds"] for seed in seeds
    )
    lower = median_f[EM] <= median_f[ADAM]
    adam_gap = median(
        by[seed, ADAM]["objective"] - by[seed, ADAM]["best_in_curve"] for seed in seeds
    )
    # Solver time at which MM-EM's path first reaches Adam's final F.
    reach = []
    for seed in seeds:
        em, adam = by[seed, EM], by[seed, ADAM]
        below = np.flatnonzero(em["loss_curve"] <= adam["objective"])
        reach.append(em["time_curve"][below[0]] if len(below) else np.nan)
    lines = [
        f"median F: mm-em (default) {median_f[EM]:.5f}, "
        f"mm-em (tutorial init) {median_f[EM_TUTORIAL]:.5f}, "
        f"mm-em (removal moves) {median_f[EM_REMOVAL]:.5f}, "
        f"adam (tutorial) {median_f[ADAM]:.5f} -> mm-em at least as low: "
        f"{'yes' if lower else 'NO'} (difference {median_f[ADAM] - median_f[EM]:.5f})",
        "wall-time ratio adam / mm-em (default) per seed: "
        + ", ".join(f"{r:.1f}" for r in ratios)
        + f"; median {ratio:.1f}x (target >= {TARGET_SPEEDUP:.0f}x: "
        f"{'yes' if ratio >= TARGET_SPEEDUP else 'NO'}); "
        f"adam / mm-em (removal moves): median {removal_ratio:.1f}x",
        "adam's last iterate minus the lowest F on its own path (median): "
        f"{adam_gap:.5f}",
        "mm-em (default) reaches adam's final F after (solver s) "
        + ", ".join(f"{t:.2f}" for t in reach)
        + f"; median {median(reach):.2f} s, against adam's solver median "
        f"{median(by[seed, ADAM]['solver_seconds'] for seed in seeds):.2f}"
        " s",
    ]
    return lines


def plot(rows, path, seed):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 4.8))
    FigureCanvasAgg(figure)
    full, zoom = figure.subplots(1, 2)
    subset = [row for row in rows if row["seed"] == seed and not row["failed"]]
    best = min(row["best_in_curve"] for row in subset)
    for row in subset:
        colour = COLOURS[row["method"]]
        label = (
            f"{row['method']}: F={row['objective']:.4f}, "
            f"{row['components']} comp., {row['seconds']:.1f} s"
        )
        style = ":" if row["method"] == LBFGS_LONG else "-"
        for axes, values in (
            (full, row["loss_curve"]),
            (zoom, row["loss_curve"] - best + 1e-5),
        ):
            axes.plot(row["time_curve"], values, style, color=colour, lw=1.2)
            # The whole fit() (initialisation included) ends here.
            axes.plot(row["seconds"], values[-1], "x", color=colour, ms=7, mew=1.5)
        full.plot([], [], style, color=colour, label=label)
    full.plot([], [], "kx", ls="none", label="end of fit() (median wall time)")
    full.set(xscale="log", xlabel="seconds since the solver started", ylabel="F")
    full.set_ylim(best - 0.1, 1.5)
    full.set_title(f"Objective on the spiral, M={N_COMPONENTS}, s={SPARSITY:g}")
    full.legend(fontsize=7.5, loc="upper right")
    zoom.set(
        xscale="log",
        yscale="log",
        xlabel="seconds since the solver started",
        ylabel="F - lowest F of all paths (+1e-5)",
    )
    zoom.set_title(f"Distance to the lowest F reached (seed {seed})")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _harness.add_common_arguments(
        parser,
        f"seed 0, one repeat, {N_QUICK:,} points, short gradient fits: a smoke test",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=None, help="default 3")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    _harness.set_threads(args.threads)
    seeds = (0,) if args.quick else (0, 1, 2, 3, 4)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3

    X = make_spiral(N_QUICK) if args.quick else make_spiral()
    lines = header(args.threads, seeds, len(X), args.repeats, args.note)
    print("\n".join(lines), flush=True)
    problems = [f"warm-up (torch warns once per process): {m}" for m in warm_up()]
    print(table_header(), flush=True)
    rows = []
    for seed in seeds:
        shift = seed % len(METHODS)
        order = METHODS[shift:] + METHODS[:shift]
        fits = {}
        for repeat in range(args.repeats):
            for method in order:
                if repeat > 0 and method not in REPEATED:
                    continue
                row, messages = timed_fit(method, seed, X, args.quick)
                problems += [f"seed {seed}, {method}: {m}" for m in messages]
                if not row["finite"]:
                    problems.append(f"seed {seed}, {method}: non-finite objective")
                fits.setdefault(method, []).append(row)
        for method in METHODS:
            row = fits[method][0]
            objectives = {other["objective"] for other in fits[method]}
            if not row["failed"] and len(objectives) > 1:
                problems.append(f"seed {seed}, {method}: F differs between repeats")
            for key in ("seconds", "solver_seconds"):
                row[key] = median(other[key] for other in fits[method])
            rows.append(row)
            print(format_row(seed, row, conv(row)), flush=True)
    table = [table_header()]
    table += [format_row(row["seed"], row, conv(row)) for row in rows]
    table += median_rows(rows)
    report = [*lines, "", *table, "", *headline(rows, seeds)]
    report += _harness.end_lines()
    report.append("warnings and problems:" if problems else "warnings: none")
    report += [f"  {problem}" for problem in sorted(set(problems))]
    # The table was printed row by row above.
    print("\n".join(report[len(lines) + len(table) + 1 :]))

    out = _harness.output_dir(args, "bench_solvers")
    stem = "bench_solvers" + ("" if args.threads == 1 else f"_threads{args.threads}")
    _harness.write_lines(out / f"{stem}.txt", report)
    plot(rows, out / f"{stem}.png", seeds[0])
    print(f"written to {out / stem}.png")


if __name__ == "__main__":
    main()
