"""Measurements behind the defaults of ``SparseGaussianMixture``.

What is measured
----------------
Gaussian mixtures of known size ``K`` in {1, 2, 3, 5, 8} are drawn in ``D`` in
{2, 5, 8} dimensions with ``N`` in {2,000, 20,000} samples: weights from a
Dirichlet(1) with a floor of 0.05 per component, random full covariances
(eigenvalues log-uniform in [0.25, 1], random rotation, so every standard
deviation is at most 1), and means placed one by one, each at a distance of
``sep`` to ``1.5 sep`` from an earlier mean and at least ``sep`` from all of
them. ``sep = 5`` is the *separated* setting and ``sep = 2.5`` the
*overlapping* one (distances in units of the largest standard deviation).

Each data set is fitted by ``SparseGaussianMixture`` with everything at its
default except the parameter under study, and the script records whether
``n_components_ == K`` ("recovery"), the held-out mean log-likelihood minus
that of the true mixture (on a fresh sample of 5,000 points; 0 is perfect,
more negative is worse), ``n_iter_``, ``converged_``, the wall time, every
warning and error, and the largest increase of ``loss_curve_`` (the objective
must not increase; an increase above 1e-9 is counted as non-monotone).

Stages
------
``sweep``
    The sparsity sweep at ``n_components=20`` (the recommended start), with
    ``tol=1e-4``, ``max_iter=300``, ``prune_threshold=1e-3``: every (K, D,
    sep) at N=2,000 with two seeds, and K in {2, 5, 8}, D in {2, 5} at
    N=20,000 with one seed.
``start``
    The same sweep from ``n_components`` 10 and 30 on a subset of the N=2,000
    data sets (K in {2, 5, 8}, D in {2, 5}, seed 0). The penalty is
    ``(sparsity / n_components) * sum_j sqrt(W_j)``, so this shows whether a
    good ``sparsity`` survives a change of ``n_components``.
``prune``
    ``prune_threshold`` 1e-2 and 1e-4 against 1e-3, on the same subset, at
    the larger sparsities.
``tol``
    Long runs (``tol=1e-6``, ``max_iter=2000``) on the same subset. A fit's
    iterates do not depend on ``tol`` or ``max_iter``; only the stopping
    point does. So the iteration at which ``tol`` = 1e-3, 1e-4 or 1e-5 (or
    ``max_iter=300``) would have stopped, and the number of components there,
    are read off ``loss_curve_`` and ``n_components_curve_`` of one long run
    (the solver stops at the first iteration that pruned nothing and changed
    the objective by less than ``tol``). The sweep's own runs give tol=1e-3 the
    same way; ``check`` verifies the read-off against real fits.
``check``
    A few real fits with ``tol=1e-3`` compared with the read-off values.
``bic``
    ``sklearn.mixture.GaussianMixture`` with 1 to 12 components, the count
    chosen by BIC, on the N=2,000 seed-0 data sets and the N=20,000 ones with
    D=2, for reference.

The data sets are made by ``_mixtures.py`` (shared with
``bench_removal_moves.py`` and ``compare.py``). Everything runs in one process
with one thread (torch, BLAS and OpenMP), so that times are comparable between
fits; ``--quick`` runs a small grid, a smoke test of seconds whose figures mean
nothing. Two files are written: ``bench_defaults.txt``, the tables, and
``bench_defaults_fits.csv``, one row per fit with everything the tables are
computed from (and the commit that made the fit), in
``benchmarks/results/`` (``--out DIR`` elsewhere; ``--quick`` writes to a new
temporary folder unless ``--out`` is given). A run of some stages or
sparsities only writes ``bench_defaults_partial.txt`` and
``bench_defaults_partial_fits.csv``.

Run::

    python benchmarks/bench_defaults.py [--quick] [--stages sweep,start,...]

Every fit is deterministic given its data set and seed, so runs can be split
and tabulated together without fitting:
``--from-raw A/bench_defaults_partial_fits.csv B/bench_defaults_partial_fits.csv``
writes the summary and the merged per-fit file, so a committed summary always
sits next to the fits it was computed from.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections import Counter
from pathlib import Path

import _harness
import torch  # noqa: F401  (imported first, so that set_threads sizes its pool)
from _harness import mean_or_dash, median_or_dash, pct, table
from _mixtures import N_LARGE, N_SMALL, dataset, fit_record, grid, sweep_keys
from _mixtures import SWEEP_SETTINGS as BASE
from sklearn.mixture import GaussianMixture

from sparse_gmm import SparseGaussianMixture

INCREASE_TOL = 1e-9
STAGES = ("sweep", "start", "prune", "tol", "check", "bic")

FULL = {
    "sparsities": (0.25, 0.5, 1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0),
    "start_sparsities": (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
    "quick": False,
    "subset": {"K": (2, 5, 8), "D": (2, 5), "seeds": (0,)},
    "starts": (10, 30),
    "prune_thresholds": (1e-2, 1e-4),
    "prune_sparsities": (4.0, 8.0, 16.0),
    "tol_sparsities": (4.0, 8.0, 16.0),
    "check_sparsities": (8.0,),
    "bic_large_D": (2,),
    "bic_sparsities": (4.0, 8.0, 16.0),
    "bic_max_components": 12,
}
QUICK = {
    "sparsities": (4.0, 16.0),
    "start_sparsities": (4.0, 16.0),
    "quick": True,
    "subset": {"K": (3,), "D": (2,), "seeds": (0,)},
    "starts": (10, 30),
    "prune_thresholds": (1e-2, 1e-4),
    "prune_sparsities": (4.0,),
    "tol_sparsities": (4.0,),
    "check_sparsities": (4.0,),
    "bic_large_D": (),
    "bic_sparsities": (4.0, 16.0),
    "bic_max_components": 4,
}


# ------------------------------------------------------------------ fits


def stopping_point(loss_curve, n_components_curve, n_start, tol, max_iter):
    """Where a fit with ``tol`` and ``max_iter`` stops on this trajectory.

    Mirrors the MM-EM solver's test: stop after the first iteration that
    pruned nothing and changed the objective by less than ``tol``. The change
    of the first iteration (from the unrecorded starting objective) is taken to
    be large. Returns ``(n_iter, n_components, converged)``, or None when the
    trajectory ends before the stopping point can be known.
    """
    previous_count = n_start
    for i, count in enumerate(n_components_curve):
        if i + 1 > max_iter:
            return max_iter, int(n_components_curve[max_iter - 1]), False
        pruned = count < previous_count
        change = loss_curve[i - 1] - loss_curve[i] if i else math.inf
        if not pruned and abs(change) < tol:
            return i + 1, int(count), True
        previous_count = count
    return None


def sweep_record(key, params, read_off=()):
    """Fit one model with ``params``; a flat record (and never raise)."""
    model = SparseGaussianMixture(**params, random_state=key[4], device="cpu")
    record = {**fit_record(model, key), **params}
    if "error" in record:
        return record
    loss, counts = model.loss_curve_, model.n_components_curve_
    own = stopping_point(
        loss, counts, params["n_components"], params["tol"], params["max_iter"]
    )
    if own is None and not model.converged_:
        own = (model.n_iter_, model.n_components_, False)
    record["read_off_consistent"] = own == (
        model.n_iter_,
        model.n_components_,
        model.converged_,
    )
    record["read_off"] = {
        f"{tol:g}/{max_iter}": stopping_point(
            loss, counts, params["n_components"], tol, max_iter
        )
        for tol, max_iter in read_off
    }
    return record


def bic_record(key, max_components=12):
    K, D, sep, N, seed = key
    X, X_test, true_ll = dataset(*key)
    start = time.perf_counter()
    best, best_bic, caught_all = None, math.inf, set()
    for k in range(1, max_components + 1):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = GaussianMixture(k, random_state=seed).fit(X)
        caught_all |= {f"{w.category.__name__}: {str(w.message)[:60]}" for w in caught}
        bic = model.bic(X)
        if bic < best_bic:
            best, best_bic = model, bic
    return {
        "K": K,
        "D": D,
        "sep": sep,
        "N": N,
        "seed": seed,
        "max_components": max_components,
        "n_found": best.n_components,
        "gap": best.score(X_test) - true_ll,
        "time": time.perf_counter() - start,
        "warnings": sorted(caught_all),
    }


# ------------------------------------------------------------------ stages


def run_stages(config, stages, log):
    records = []

    def add(stage, record):
        record["stage"] = stage
        records.append(record)
        found = record.get("n_found", "ERR")
        log(
            f"{stage:5s} K={record['K']} D={record['D']} {record['sep'][:3]} "
            f"N={record['N']} seed={record['seed']} "
            f"M={record.get('n_components', '-')} s={record.get('sparsity', '-')} "
            f"p={record.get('prune_threshold', '-')} -> {found} "
            f"it={record.get('n_iter', '-')} {record['time']:.2f}s"
        )

    sparsities = config["sparsities"]
    sweep = sweep_keys(config["quick"])
    small = [key for key in sweep if key[3] == N_SMALL]
    large = [key for key in sweep if key[3] == N_LARGE]
    subset = grid(config["subset"], N_SMALL)
    tol_read_off = ((1e-3, 300),)
    if "sweep" in stages:
        for key in small + large:
            for s in sparsities:
                add("sweep", sweep_record(key, {**BASE, "sparsity": s}, tol_read_off))
    if "start" in stages:
        for key in subset:
            for n_start in config["starts"]:
                for s in config["start_sparsities"]:
                    params = {**BASE, "n_components": n_start, "sparsity": s}
                    add("start", sweep_record(key, params, tol_read_off))
    if "prune" in stages:
        for key in subset:
            for threshold in config["prune_thresholds"]:
                for s in config["prune_sparsities"]:
                    params = {**BASE, "prune_threshold": threshold, "sparsity": s}
                    add("prune", sweep_record(key, params, tol_read_off))
    if "tol" in stages:
        long_run = {**BASE, "tol": 1e-6, "max_iter": 2000}
        read_off = [(t, 2000) for t in (1e-3, 1e-4, 1e-5)] + [(1e-4, 300)]
        for key in subset:
            for s in config["tol_sparsities"]:
                add("tol", sweep_record(key, {**long_run, "sparsity": s}, read_off))
    if "check" in stages:
        for key in subset:
            for s in config["check_sparsities"]:
                params = {**BASE, "tol": 1e-3, "sparsity": s}
                add("check", sweep_record(key, params))
    if "bic" in stages:
        bic_keys = [k for k in small if k[4] == 0] + [
            k for k in large if k[1] in config["bic_large_D"]
        ]
        for key in bic_keys:
            add("bic", bic_record(key, config["bic_max_components"]))
    return records


# ------------------------------------------------------------------ tables


def ok(records):
    return [r for r in records if "error" not in r]


def recovered(r):
    return r["n_found"] == r["K"]


def read_off(r, label):
    """A fit's read-off stopping point, ``(n_iter, n_components, converged)``.

    The solver also stops (with ``converged_=True``) when an iteration would
    raise the objective; that stop does not depend on ``tol``, so a trajectory
    that ends that way before the ``tol`` rule fires ends there for every
    larger ``tol`` too.
    """
    point = r["read_off"][label]
    if point is None and r["converged"]:
        return r["n_iter"], r["n_found"], True
    return point


def sweep_tables(records, sparsities):
    sweep = ok([r for r in records if r["stage"] == "sweep"])
    if not sweep:
        return []
    matched = {(r["K"], r["D"], r["sep"], r["seed"]) for r in sweep if r["N"] > N_SMALL}
    splits = [
        ("all", lambda r: True),
        ("D=2", lambda r: r["D"] == 2),
        ("D=5", lambda r: r["D"] == 5),
        ("D=8", lambda r: r["D"] == 8),
        ("N=2k", lambda r: r["N"] == N_SMALL),
        (
            "N=2k*",
            lambda r: (
                r["N"] == N_SMALL and (r["K"], r["D"], r["sep"], r["seed"]) in matched
            ),
        ),
        ("N=20k", lambda r: r["N"] == N_LARGE),
        ("sep", lambda r: r["sep"] == "separated"),
        ("ovl", lambda r: r["sep"] == "overlapping"),
    ]
    rows, k_rows, health_rows = [], [], []
    ks = sorted({r["K"] for r in sweep})
    for s in sparsities:
        at = [r for r in sweep if r["sparsity"] == s]
        if not at:
            continue
        rows.append(
            [f"{s:g}", len(at)]
            + [pct(recovered(r) for r in at if keep(r)) for _, keep in splits]
            + [
                pct(r["n_found"] > r["K"] for r in at),
                pct(r["n_found"] < r["K"] for r in at),
            ]
        )
        k_rows.append(
            [f"{s:g}"]
            + [pct(recovered(r) for r in at if r["K"] == k) for k in ks]
            + [
                mean_or_dash(r["gap"] for r in at if r["sep"] == "separated"),
                mean_or_dash(r["gap"] for r in at if r["sep"] == "overlapping"),
                median_or_dash([r["n_found"] for r in at], "{:5.1f}"),
            ]
        )
        tol3 = [read_off(r, "0.001/300") for r in at]
        health_rows.append(
            [
                f"{s:g}",
                median_or_dash(r["n_iter"] for r in at),
                median_or_dash(t[0] for t in tol3 if t),
                pct(recovered(r) for r in at),
                pct(t[1] == r["K"] for t, r in zip(tol3, at, strict=True) if t),
                pct(r["converged"] for r in at),
                median_or_dash([r["time"] for r in at if r["N"] == N_SMALL], "{:6.2f}"),
                median_or_dash([r["time"] for r in at if r["N"] == N_LARGE], "{:6.2f}"),
            ]
        )
    out = [
        "Recovery (% of fits with n_components_ == K), n_components=20, "
        "prune_threshold=1e-3, tol=1e-4, max_iter=300.\n"
        "N=2k* is N=2,000 on the (K, D, sep, seed) that also have N=20,000; "
        "sep/ovl: separated/overlapping; over/under: % with more/fewer than K.",
        table(
            ["sparsity", "fits", *[name for name, _ in splits], "over", "under"],
            rows,
        ),
        "\nRecovery by true K, and the mean held-out gap (held-out mean "
        "log-likelihood minus the true mixture's, nats).",
        table(
            [
                "sparsity",
                *[f"K={k}" for k in ks],
                "gap sep",
                "gap ovl",
                "median n_found",
            ],
            k_rows,
        ),
        "\nIterations and time: tol=1e-4 as run, tol=1e-3 read off the same "
        "trajectory (same max_iter=300).",
        table(
            [
                "sparsity",
                "iter 1e-4",
                "iter 1e-3",
                "rec 1e-4",
                "rec 1e-3",
                "% converged",
                "time 2k (s)",
                "time 20k (s)",
            ],
            health_rows,
        ),
    ]
    return out


def start_tables(records, sparsities):
    start = ok([r for r in records if r["stage"] == "start"])
    if not start:
        return []
    keys = {(r["K"], r["D"], r["sep"], r["N"], r["seed"]) for r in start}
    same_data = ok(
        [
            r
            for r in records
            if r["stage"] == "sweep"
            and (r["K"], r["D"], r["sep"], r["N"], r["seed"]) in keys
        ]
    )
    pool = start + same_data
    starts = sorted({r["n_components"] for r in pool})
    rows = []
    for s in sparsities:
        row = [f"{s:g}"]
        for m in starts:
            at = [r for r in pool if r["sparsity"] == s and r["n_components"] == m]
            row += [
                pct(recovered(r) for r in at),
                mean_or_dash((r["gap"] for r in at), "{:6.3f}"),
                median_or_dash(r["n_iter"] for r in at),
            ]
        rows.append(row)
    header = ["sparsity"]
    for m in starts:
        header += [f"rec M={m}", f"gap M={m}", f"iter M={m}"]
    ratio_rows = []
    ratios = sorted({r["sparsity"] / r["n_components"] for r in pool})
    for ratio in ratios:
        row = [f"{ratio:.4g}"]
        for m in starts:
            at = [
                r
                for r in pool
                if r["n_components"] == m
                and math.isclose(r["sparsity"] / m, ratio, rel_tol=1e-9)
            ]
            row.append(pct(recovered(r) for r in at))
        ratio_rows.append(row)
    return [
        f"\nStarting count: the sweep from n_components (M) in {starts} on "
        f"{len(keys)} data sets (N=2,000, K in {sorted({k[0] for k in keys})}, "
        f"D in {sorted({k[1] for k in keys})}, seed 0; M=20 from the sweep).",
        table(header, rows),
        "\nThe same recovery rates indexed by the per-component penalty "
        "scale sparsity / M.",
        table(["s/M", *[f"M={m}" for m in starts]], ratio_rows),
    ]


def sweep_fits(records):
    """The sweep's fits, by ``(K, D, sep, N, seed, sparsity)``."""
    return {
        (r["K"], r["D"], r["sep"], r["N"], r["seed"], r["sparsity"]): r
        for r in ok(records)
        if r["stage"] == "sweep" and r["n_components"] == BASE["n_components"]
    }


def prune_tables(records):
    prune = ok([r for r in records if r["stage"] == "prune"])
    if not prune:
        return []
    reference = sweep_fits(records)
    rows = []
    for threshold in sorted({r["prune_threshold"] for r in prune}, reverse=True):
        at = [r for r in prune if r["prune_threshold"] == threshold]
        pairs = [
            (
                r,
                reference.get(
                    (r["K"], r["D"], r["sep"], r["N"], r["seed"], r["sparsity"])
                ),
            )
            for r in at
        ]
        pairs = [(r, q) for r, q in pairs if q is not None]
        rows.append(
            [
                f"{threshold:g}",
                len(pairs),
                pct(r["n_found"] != q["n_found"] for r, q in pairs),
                pct(recovered(r) for r, _ in pairs),
                pct(recovered(q) for _, q in pairs),
                pct(r["n_found"] < r["K"] for r, _ in pairs),
                pct(q["n_found"] < q["K"] for _, q in pairs),
                median_or_dash(r["n_iter"] for r, _ in pairs),
                median_or_dash(q["n_iter"] for _, q in pairs),
                mean_or_dash(r["gap"] - q["gap"] for r, q in pairs),
            ]
        )
    return [
        "\nPruning threshold against the default 1e-3 (same data, same "
        "sparsity; sparsities "
        f"{sorted({r['sparsity'] for r in prune})}).",
        table(
            [
                "threshold",
                "pairs",
                "% n_found differs",
                "rec",
                "rec 1e-3",
                "under",
                "under 1e-3",
                "iter",
                "iter 1e-3",
                "gap - gap 1e-3",
            ],
            rows,
        ),
    ]


def tol_tables(records):
    long_runs = ok([r for r in records if r["stage"] == "tol"])
    if not long_runs:
        return []
    rows = []
    for s in sorted({r["sparsity"] for r in long_runs}):
        at = [r for r in long_runs if r["sparsity"] == s]
        row = [f"{s:g}", len(at)]
        for label in ("0.001/2000", "0.0001/2000", "1e-05/2000"):
            points = [(read_off(r, label), r) for r in at]
            row += [
                median_or_dash(p[0] for p, _ in points if p),
                pct(p[1] == r["K"] for p, r in points if p),
                pct(p[0] > 300 for p, _ in points if p),
            ]
        capped = [(read_off(r, "0.0001/300"), r) for r in at]
        row += [
            median_or_dash(r["n_iter"] for r in at),
            pct(recovered(r) for r in at),
            pct(r["converged"] for r in at),
            pct(p[1] == r["K"] for p, r in capped if p),
        ]
        rows.append(row)
    header = ["sparsity", "fits"]
    for tol in ("1e-3", "1e-4", "1e-5"):
        header += [f"iter {tol}", f"rec {tol}", f">300 {tol}"]
    header += ["iter 1e-6", "rec 1e-6", "conv 1e-6", "rec 1e-4/300"]
    return [
        "\nTolerance and max_iter: long runs (tol=1e-6, max_iter=2000), with "
        "the stopping points of larger tol read off the trajectory. "
        "'>300': % of fits that need more than 300 iterations at that tol.",
        table(header, rows),
    ]


def check_tables(records):
    check = ok([r for r in records if r["stage"] == "check"])
    if not check:
        return []
    reference = sweep_fits(records)
    agree = total = 0
    for r in check:
        q = reference.get((r["K"], r["D"], r["sep"], r["N"], r["seed"], r["sparsity"]))
        if q is None:
            continue
        total += 1
        point = read_off(q, "0.001/300")
        agree += point is not None and tuple(point) == (
            r["n_iter"],
            r["n_found"],
            r["converged"],
        )
    return [
        f"\nRead-off check: {agree} of {total} real tol=1e-3 fits stopped at the "
        "iteration, with the component count, read off the tol=1e-4 trajectory."
    ]


def bic_tables(records, sparsities):
    bic = ok([r for r in records if r["stage"] == "bic"])
    if not bic:
        return []
    out = []
    for sparsity in sparsities:
        out += bic_table(records, bic, sparsity)
    return out


def bic_table(records, bic, sparsity):
    sweep = {
        (r["K"], r["D"], r["sep"], r["N"], r["seed"]): r
        for r in ok(records)
        if r["stage"] == "sweep" and r["sparsity"] == sparsity
    }
    rows = []
    for name, keep in (
        ("all", lambda r: True),
        ("separated", lambda r: r["sep"] == "separated"),
        ("overlapping", lambda r: r["sep"] == "overlapping"),
        ("N=20k", lambda r: r["N"] == N_LARGE),
    ):
        at = [r for r in bic if keep(r)]
        pairs = [
            (r, sweep.get((r["K"], r["D"], r["sep"], r["N"], r["seed"]))) for r in at
        ]
        pairs = [(r, q) for r, q in pairs if q is not None]
        rows.append(
            [
                name,
                len(pairs),
                pct(recovered(r) for r, _ in pairs),
                pct(recovered(q) for _, q in pairs),
                mean_or_dash(r["gap"] for r, _ in pairs),
                mean_or_dash(q["gap"] for _, q in pairs),
                median_or_dash([r["time"] for r, _ in pairs], "{:6.2f}"),
                median_or_dash([q["time"] for _, q in pairs], "{:6.2f}"),
            ]
        )
    return [
        f"\nReference: GaussianMixture with 1..{max(r['max_components'] for r in bic)} "
        "components chosen by BIC, "
        f"against SparseGaussianMixture(n_components=20, sparsity={sparsity:g}) "
        "on the same data.",
        table(
            [
                "subset",
                "sets",
                "rec BIC",
                "rec sparse",
                "gap BIC",
                "gap sparse",
                "time BIC (s)",
                "time sparse (s)",
            ],
            rows,
        ),
    ]


def health_lines(records):
    fits = [r for r in records if r["stage"] != "bic"]
    errors = Counter(r["error"][:120] for r in fits if "error" in r)
    warned = Counter(w for r in fits for w in r["warnings"])
    bic_warned = Counter(
        w for r in records if r["stage"] == "bic" for w in r["warnings"]
    )
    fitted = ok(fits)
    increasing = [r for r in fitted if r["max_increase"] > INCREASE_TOL]
    on_increase = [r for r in fitted if not r["read_off_consistent"]]
    out = [
        f"\nHealth over {len(fits)} SparseGaussianMixture fits: "
        f"{sum(errors.values())} errors, {len(increasing)} with a non-monotone "
        f"loss_curve_ (increase > {INCREASE_TOL:g}), {len(on_increase)} that "
        "stopped (converged_=True) because the next iteration would have raised "
        "the objective, before the tol rule fired, "
        f"{sum(not r['converged'] for r in fitted)} not converged."
    ]
    out += [f"  error x{n}: {e}" for e, n in errors.most_common()]
    out += [f"  warning x{n}: {w}" for w, n in warned.most_common()]
    out += [f"  GaussianMixture warning x{n}: {w}" for w, n in bic_warned.most_common()]
    for r in sorted(increasing, key=lambda r: -r["max_increase"])[:10]:
        out.append(
            f"  increase {r['max_increase']:.3g}: stage={r['stage']} K={r['K']} "
            f"D={r['D']} {r['sep']} N={r['N']} seed={r['seed']} "
            f"M={r['n_components']} s={r['sparsity']:g} p={r['prune_threshold']:g}"
        )
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _harness.add_common_arguments(parser, "a small grid, a smoke test (seconds)")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument(
        "--sparsities",
        default=None,
        help="comma-separated sparsities for the sweep stage (default: the grid's)",
    )
    parser.add_argument(
        "--from-raw",
        type=Path,
        nargs="+",
        default=None,
        help="tabulate these bench_defaults_fits.csv files instead of fitting",
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    stages = set(args.stages.split(","))
    unknown = stages - set(STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}; choose from {STAGES}")
    config = dict(QUICK if args.quick else FULL)
    if args.sparsities:
        config["sparsities"] = tuple(float(v) for v in args.sparsities.split(","))
    partial = stages != set(STAGES) or args.sparsities is not None
    stem = "bench_defaults" + ("_partial" if partial and not args.from_raw else "")
    header = _harness.header_lines(
        "bench_defaults: " + ("quick grid" if args.quick else "full grid"), args.note
    )
    print("\n".join(header), flush=True)

    records, origin = _harness.fit_or_read_records(
        lambda: run_stages(config, stages, print), args.from_raw, args.threads
    )
    lines = [
        *header,
        f"stages {sorted(stages)}: {origin}; one row per fit in {stem}_fits.csv.",
        "",
        *sweep_tables(records, config["sparsities"]),
        *start_tables(records, config["start_sparsities"]),
        *prune_tables(records),
        *tol_tables(records),
        *check_tables(records),
        *bic_tables(records, config["bic_sparsities"]),
        *health_lines(records),
        "",
        *_harness.end_lines(),
    ]
    print("\n" + "\n".join(lines[len(header) :]))
    out = _harness.output_dir(args, "bench_defaults")
    _harness.write_records(out / f"{stem}_fits.csv", records)
    _harness.write_lines(out / f"{stem}.txt", lines)


if __name__ == "__main__":
    main()
