"""Seconds per EM iteration and peak memory of each engine, on the CPU.

What is measured
----------------
For every ``N`` in ``(1e4, 1e5, 1e6)``, ``M`` in ``(10, 100)`` components,
``D`` in ``(2, 8)`` features and dtype float32 and float64 (ten Gaussian blobs,
``covariance_type='full'``), the wall time of one EM iteration (one E-step and
one M-step over all samples) of

* ``sklearn``: :class:`sklearn.mixture.GaussianMixture`. It does not upcast:
  float32 data stays float32 in its E-step arrays (its means and precisions,
  computed from the float64 initial values, mix in float64);
* ``torch``: ``SparseGaussianMixture(engine='torch', device='cpu')``, dense
  matmuls over chunks of samples;
* ``keops``: ``SparseGaussianMixture(engine='keops', device='cpu')``, KeOps
  symbolic reductions compiled to C++/OpenMP;

and, at the largest ``N`` only (``--memory-n`` changes it), the peak resident
memory of one fit of each (``max_iter=2``), each in a fresh child process.

All three do the same work: ``sparsity=0`` (maximum likelihood),
``prune_threshold=0`` (so no component is dropped), ``tol=0`` (so no fit stops
early) and the same explicit ``weights_init``, ``means_init`` and
``precisions_init`` (float64, whatever the data's dtype), so no k-means runs
and the iterates agree. ``|dmu| keops`` and ``|dmu| sk`` are the largest
differences between the means of the keops (scikit-learn) fit and those of the
torch fit of the same data and dtype after one iteration (the ``max_iter=1``
fits), which checks that.

The arithmetic floor of one iteration is printed next to them, per dtype: the
two matmuls of the moment formulation (``phi(x) @ theta`` in the E-step and
``resp^T @ phi`` for the statistics) take ``4 N M F`` flop, ``F = 1 + D +
D (D + 1) / 2`` moment features, at the rate measured on a large square matmul
of that dtype, plus ``N M`` exponentials (one per sample
and component) at the rate of ``torch.exp`` on a
large array of that dtype. ``torch/floor`` and ``keops/floor`` show how far
each engine is from it.

How
---
As in ``bench_speed.py``: everything timed runs in one process, with torch and
the BLAS/OpenMP pools of numpy and scikit-learn (threadpoolctl) set to
``--threads`` (default 2; KeOps' OpenMP uses every core, two here). A fit with
``max_iter=k`` costs the initialisation, ``k`` iterations and one more E-step
in both libraries, so the time per iteration is ``(t(1 + k) - t(1)) / k``,
which cancels everything but the iterations; ``k = clip(200,000 / N, 2, 20)``,
and ``k = 1`` for scikit-learn where ``N M >= 1e8`` (about 10-20 s per
iteration there). Near a fixed point (small ``N``, many iterations)
sparse_gmm's EM can stop before ``max_iter`` even with ``tol=0``, when an
iteration raises its objective by rounding or through ``reg_covar``; the
rejected iteration was computed, so ``k`` is then the iterations actually run,
shown in the ``k`` column and in a note. The engines' fits are interleaved
(their order rotates between repeats), and ``(min t(1 + k) - min t(1)) / k``
over the repeats is reported (load from other processes only ever adds time): 5
repeats up to ``N = 10,000``, 3 up to ``100,000``, 2 above, 1 for scikit-learn
where ``N M >= 1e8``. The load average is printed at the start, per row and at
the end, as the machine may be shared.

Before any timing, a small fit per ``(D, dtype)`` compiles KeOps' formulas
(or loads them from ``~/.cache/keops*``); its seconds are printed as the
"warm-up" lines (a cold compile is several seconds per formula).

Memory: each fit runs in its own child process (``sys.executable`` running
this file with ``--child``) that imports only what it measures (the
scikit-learn child never imports torch), makes the same data, and reports the
``VmHWM`` high-water mark of its RSS after the fit (``peak``), its RSS before
the fit (``base``: interpreter, libraries, data) and ``peak - base``
(``cost``), in MiB (2**20 bytes), as ``bench_memory.py`` does.

Budget: scikit-learn float32 is skipped where ``N M > --sklearn-float32-max-nm``
(default ``1e7``, so at ``N = 1e6, M = 100``), in timing and in memory; it costs
as much as float64 there (one to two minutes per configuration) and the
smaller sizes already show how it compares with float64. Skipped cells print
``-``.

Usage
-----
``python benchmarks/bench_engines.py`` runs the full grid (about 25 minutes on
the shared two-core machine: 19 of timing, scikit-learn at ``N = 1e6, M = 100``
alone about 4, then 6 of memory fits); ``--quick`` runs ``N in (2e3, 5e3)``,
``M = 10``, ``D = 2``, float64, one repeat of ``k = 1`` (a smoke test of
seconds, figures meaningless). ``--n``, ``--m``, ``--d``, ``--dtypes``
and ``--engines`` select sizes (comma-separated, ``1e5`` accepted),
``--memory-n`` the ``N`` of the memory fits (``0`` skips them),
``--memory-only`` skips the timing. The table is written to
``bench_engines.txt``, the plot to ``bench_engines.png`` and the measurements
to ``bench_engines.json`` (``_custom`` when sizes are selected), in
``benchmarks/results/`` (``--out DIR`` elsewhere; ``--quick`` writes to a new
temporary folder unless ``--out`` is given); ``--from-json PATH`` renders the
tableand plot again from such a file without measuring. The text ends with
findings computed from the measurements: the fastest engine per cell and what
that implies for ``engine='auto'`` on the CPU.

Findings (two-core AMD EPYC VM, load average 1-2.4 from other work)
--------------------------------------------------------------------
Numbers from ``benchmarks/results/bench_engines.txt`` (``--threads 1``, both
dtypes measured side by side on a shared machine): the dense torch engine was
the fastest per iteration in all 24 cells, KeOps taking 1.1x to 10x its time
in float64 and 1.3x to 20x in float32; KeOps came closest at ``N = 1e6, M =
10`` (1.1x to 1.8x), where its fits needed 27-45% less memory than torch's.
Hence the rule for ``engine='auto'`` (see ``sparse_gmm.engines``): torch on
the CPU in either dtype; KeOps only on CUDA, by design (no ``chunk x M``
blocks through memory), not by measurement: no GPU was lent to the sessions
that ran this benchmark. An earlier two-thread run (before results named
their commit) had KeOps at 0.6x-1.1x torch's time at ``N = 1e6, M <= 10``,
which one thread per engine did not reproduce.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import _harness
import numpy as np

ENGINES = ("sklearn", "torch", "keops")
DTYPES = ("float32", "float64")
FULL_N = (10_000, 100_000, 1_000_000)
FULL_M = (10, 100)
FULL_D = (2, 8)
MEMORY_MAX_ITER = 2
MIB = 2**20


# --------------------------------------------------------------------------
# Data, initial values, models (no torch at module level: the sklearn child)
# --------------------------------------------------------------------------


def make_model(engine, n_components, max_iter, inits):
    if engine == "sklearn":
        from sklearn.mixture import GaussianMixture

        # random_from_data is the cheapest way through scikit-learn's
        # initialisation, whose result the given inits then replace.
        return GaussianMixture(
            n_components=n_components,
            tol=0.0,
            max_iter=max_iter,
            init_params="random_from_data",
            random_state=0,
            **inits,
        )
    from sparse_gmm import SparseGaussianMixture

    return SparseGaussianMixture(
        n_components=n_components,
        sparsity=0.0,
        covariance_prior=None,
        prune_threshold=0.0,
        tol=0.0,
        max_iter=max_iter,
        engine=engine,
        device="cpu",
        random_state=0,
        **inits,
    )


def timed_fit(engine, X, n_components, max_iter, inits):
    """``(seconds, n_iter, model)`` of one fit."""
    model = make_model(engine, n_components, max_iter, inits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0
        start = time.perf_counter()
        model.fit(X)
        seconds = time.perf_counter() - start
    if engine != "sklearn" and model.n_components_ != n_components:
        raise RuntimeError(f"{engine} pruned a component: not the same work")
    return seconds, int(model.n_iter_), model


# --------------------------------------------------------------------------
# Memory: one fit per fresh child process
# --------------------------------------------------------------------------


def run_child(engine, n_samples, n_components, n_features, dtype, threads):
    """Body of a memory child: import, make data, fit, print one JSON line."""
    if engine != "sklearn":
        import torch  # noqa: F401  (imported before set_threads sets its pool)

        import sparse_gmm  # noqa: F401
    else:
        import sklearn.mixture  # noqa: F401
    _harness.set_threads(threads)
    X = _harness.blobs(n_samples, n_features, dtype)
    inits = _harness.shared_precision_inits(X, n_components)
    base = _harness.current_rss_mib()
    pre_fit_peak = _harness.peak_rss_mib()
    seconds, n_iter, _ = timed_fit(engine, X, n_components, MEMORY_MAX_ITER, inits)
    result = {
        "base": base,
        "pre_fit_peak": pre_fit_peak,
        "peak": _harness.peak_rss_mib(),
        "seconds": seconds,
        "n_iter": n_iter,
        "torch_imported": "torch" in sys.modules,
    }
    _harness.emit_result(result)


def measure_memory(engine, n_samples, n_components, n_features, dtype, threads):
    arguments = ["--child", engine, "--n", n_samples, "--m", n_components]
    arguments += ["--d", n_features, "--dtypes", dtype, "--threads", threads]
    return _harness.run_child(__file__, arguments)


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


def iteration_span(engine, n, m, quick=False):
    """``k``: 1 for ``--quick`` and for scikit-learn at ``N M >= 1e8``, else more."""
    if quick or (engine == "sklearn" and n * m >= 1e8):
        return 1
    return int(np.clip(round(200_000 / n), 2, 20))


def n_repeats(engine, n, m, quick=False):
    """Repeats of each timed fit: 1 where ``k`` is 1, more for small ``N``."""
    if quick or (engine == "sklearn" and n * m >= 1e8):
        return 1
    return 5 if n <= 10_000 else 3 if n <= 100_000 else 2


def time_cell(X, m, engines, quick=False):
    """Seconds per iteration of each engine on ``X``, with ``M = m``.

    ``(min t(1 + k) - min t(1)) / k`` over the repeats: on a shared machine the
    noise only ever adds time, so the minimum of each is the steadiest figure.

    Returns
    -------
    seconds : dict engine -> float
    spans : dict engine -> int (the ``k``: iterations between the two fits)
    means : dict engine -> ndarray (the means after one iteration)
    notes : list of str (fits that stopped early)
    """
    n = X.shape[0]
    inits = _harness.shared_precision_inits(X, m)
    short, long = {e: [] for e in engines}, {e: [] for e in engines}
    work, means, notes = {}, {}, []
    for repeat in range(max(n_repeats(e, n, m, quick) for e in engines)):
        shift = repeat % len(engines)
        for engine in engines[shift:] + engines[:shift]:
            if repeat >= n_repeats(engine, n, m, quick):
                continue
            k = iteration_span(engine, n, m, quick)
            t_short, n_short, model = timed_fit(engine, X, m, 1, inits)
            t_long, n_long, _ = timed_fit(engine, X, m, 1 + k, inits)
            short[engine].append(t_short)
            long[engine].append(t_long)
            # The max_iter=1 fits ran the same iteration in every engine.
            means[engine] = model.means_
            work[engine] = iterations_done(n_long, 1 + k) - iterations_done(n_short, 1)
            if n_long != 1 + k and repeat == 0:
                notes.append(
                    f"note: {engine} N={n:,} M={m} D={X.shape[1]} {X.dtype}: the "
                    f"max_iter={1 + k} fit stopped after n_iter_={n_long}: near "
                    "the fixed point an iteration raised the objective (rounding, "
                    f"reg_covar; tol=0 cannot prevent that stop); k={work[engine]} "
                    "counts the rejected iteration"
                )
    seconds = {e: (min(long[e]) - min(short[e])) / work[e] for e in engines}
    return seconds, work, means, notes


def iterations_done(n_iter, max_iter):
    """Iterations a fit ran, counting one sparse_gmm rejected at the end.

    sparse_gmm's EM evaluates a candidate, and stops without counting it in
    ``n_iter_`` when its objective is higher: near a fixed point rounding or
    ``reg_covar`` can do that even with ``tol=0``. scikit-learn never stops
    early with ``tol=0``.
    """
    return n_iter + (n_iter < max_iter)


def warm_up(d, dtype, engines):
    """Seconds of a first small fit per engine: KeOps compiles or loads here."""
    X = _harness.blobs(2_000, d, dtype, seed=3)
    inits = _harness.shared_precision_inits(X, 10)
    out = {}
    for engine in engines:
        if engine == "sklearn":
            continue
        out[engine] = timed_fit(engine, X, 10, 2, inits)[0]
    return out


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def fmt(value, spec, suffix=""):
    """``value`` formatted with ``spec`` and ``suffix``, or ``-`` when missing."""
    return format(value, spec) + suffix if value is not None else "-"


def ratio(a, b):
    return a / b if a is not None and b is not None else None


def speed_table(rows):
    columns = (
        f"{'N':>9} {'M':>3} {'D':>2} {'dtype':>7} {'k sk/t/ko':>9} "
        f"{'sklearn':>8} {'torch':>8} {'keops':>8} {'floor':>8} "
        f"{'torch/fl':>8} {'keops/fl':>8} {'keops/t':>7} {'sk/torch':>8} "
        f"{'|dmu| keops':>11} {'|dmu| sk':>8} {'load':>4}"
    )
    lines = [columns, "-" * len(columns)]
    for r in rows:
        s = r["seconds"]
        sk, to, ko = s.get("sklearn"), s.get("torch"), s.get("keops")
        spans = "/".join(str(r["spans"].get(e, "-")) for e in ENGINES)
        lines.append(
            f"{r['n']:>9,} {r['m']:>3} {r['d']:>2} {r['dtype']:>7} {spans:>9} "
            f"{fmt(sk, '>8.4f'):>8} {fmt(to, '>8.4f'):>8} {fmt(ko, '>8.4f'):>8} "
            f"{r['floor']:>8.4f} "
            f"{fmt(ratio(to, r['floor']), '.1f', 'x'):>8} "
            f"{fmt(ratio(ko, r['floor']), '.1f', 'x'):>8} "
            f"{fmt(ratio(ko, to), '.1f', 'x'):>7} {fmt(ratio(sk, to), '.1f', 'x'):>8} "
            f"{fmt(r['drift'].get('keops'), '>11.1e'):>11} "
            f"{fmt(r['drift'].get('sklearn'), '>8.1e'):>8} {r['load']:>4.1f}"
        )
    return lines


def memory_table(rows):
    columns = (
        f"{'N':>9} {'M':>3} {'D':>2} {'dtype':>7} {'engine':>7} {'base':>6} "
        f"{'pre-fit':>7} {'peak':>6} {'cost':>6} {'fit s':>6}"
    )
    lines = [columns, "-" * len(columns)]
    for r in rows:
        lines.append(
            f"{r['n']:>9,} {r['m']:>3} {r['d']:>2} {r['dtype']:>7} {r['engine']:>7} "
            f"{r['base']:>6.0f} {r['pre_fit_peak']:>7.0f} {r['peak']:>6.0f} "
            f"{r['peak'] - r['base']:>6.0f} {r['seconds']:>6.1f}"
        )
    return lines


def findings(rows, memory_rows):
    """A paragraph computed from the rows: who is fastest where, by how much."""
    lines = ["findings"]
    cells = [r for r in rows if {"torch", "keops"} <= r["seconds"].keys()]
    if cells:
        keops_wins = [r for r in cells if r["seconds"]["keops"] < r["seconds"]["torch"]]
        kt = [r["seconds"]["keops"] / r["seconds"]["torch"] for r in cells]
        lines.append(
            f"- keops/torch time ratio over {len(cells)} cells: "
            f"{min(kt):.1f}x to {max(kt):.1f}x (median {statistics.median(kt):.1f}x); "
            f"keops faster than torch in {len(keops_wins)} of them"
            + (
                ": "
                + ", ".join(
                    f"N={r['n']:,} M={r['m']} D={r['d']} {r['dtype']}"
                    for r in keops_wins
                )
                if keops_wins
                else "."
            )
        )
        big = max(r["n"] for r in cells)
        for r in (r for r in cells if r["n"] == big):
            s = r["seconds"]
            fastest = min(s, key=s.get)
            others = ", ".join(
                f"{e} {s[e] / s[fastest]:.1f}x"
                for e in ENGINES
                if e in s and e != fastest
            )
            lines.append(
                f"  N={big:,} M={r['m']:>3} D={r['d']} {r['dtype']}: fastest {fastest} "
                f"({s[fastest]:.3f} s/it, {s[fastest] / r['floor']:.1f}x the floor); "
                f"{others}"
            )
    for dtype in DTYPES:
        pairs = [r for r in cells if r["dtype"] == dtype and "sklearn" in r["seconds"]]
        if pairs:
            sk = [r["seconds"]["sklearn"] / r["seconds"]["torch"] for r in pairs]
            ko = [r["seconds"]["sklearn"] / r["seconds"]["keops"] for r in pairs]
            lines.append(
                f"- {dtype}: sklearn/torch {min(sk):.1f}x to {max(sk):.1f}x, "
                f"sklearn/keops {min(ko):.1f}x to {max(ko):.1f}x"
            )
    by32 = {
        (r["n"], r["m"], r["d"]): r["seconds"] for r in cells if r["dtype"] == "float32"
    }
    for engine in ("torch", "keops"):
        gains = [
            r["seconds"][engine] / by32[(r["n"], r["m"], r["d"])][engine]
            for r in cells
            if r["dtype"] == "float64" and (r["n"], r["m"], r["d"]) in by32
        ]
        if gains:
            lines.append(
                f"- {engine}: float64/float32 time {min(gains):.2f}x to "
                f"{max(gains):.2f}x (above 1: float32 faster)"
            )
    if memory_rows:
        for engine in ENGINES:
            peaks = [r["peak"] for r in memory_rows if r["engine"] == engine]
            costs = [
                r["peak"] - r["base"] for r in memory_rows if r["engine"] == engine
            ]
            if peaks:
                lines.append(
                    f"- memory at N={memory_rows[0]['n']:,}, {engine}: peak "
                    f"{min(peaks):.0f}-{max(peaks):.0f} MiB, fit cost "
                    f"{min(costs):.0f}-{max(costs):.0f} MiB"
                )
    if cells:
        lines.append(
            f"- rule for engine='auto' on the CPU: {auto_rule(cells, memory_rows)}."
        )
    lines.append(
        "- no GPU was lent to the session that ran this, so the KeOps GPU engine "
        "against dense torch on the GPU is unmeasured."
    )
    return lines


def auto_rule(cells, memory_rows):
    """What the cells imply for ``engine='auto'`` on the CPU, in one sentence.

    KeOps is chosen where it wins per iteration; the sizes of those cells
    bound the rule. A fit there runs long enough to repay KeOps' compile of
    seconds per new formula (D, dtype), once per machine.
    """
    wins = [r for r in cells if r["seconds"]["keops"] < r["seconds"]["torch"]]
    if not wins:
        return "keep 'torch': KeOps did not win a cell"
    n_min = min(r["n"] for r in wins)
    m_max = max(r["m"] for r in wins)
    d_max = max(r["d"] for r in wins)
    covered = [
        r for r in cells if r["n"] >= n_min and r["m"] <= m_max and r["d"] <= d_max
    ]
    ratios = [r["seconds"]["keops"] / r["seconds"]["torch"] for r in covered]
    rest = [
        r["seconds"]["keops"] / r["seconds"]["torch"] for r in cells if r not in covered
    ]
    memory = ""
    cost = {}
    for r in memory_rows:
        if r["n"] >= n_min and r["m"] <= m_max and r["d"] <= d_max:
            key = (r["n"], r["m"], r["d"], r["dtype"])
            cost.setdefault(key, {})[r["engine"]] = r["peak"] - r["base"]
    shares = [
        c["keops"] / c["torch"]
        for c in cost.values()
        if {"keops", "torch"} <= c.keys() and c["torch"] > 0
    ]
    if shares:
        memory = (
            f", with a fit costing {min(shares):.0%}-{max(shares):.0%} of "
            "torch's memory"
        )
    elsewhere = (
        f"torch was faster in the other {len(rest)} cells, by up to {max(rest):.1f}x"
        if rest
        else "no cell lies outside that range"
    )
    return (
        f"'keops' for N >= {n_min:,}, M <= {m_max} and D <= {d_max}, else "
        f"'torch': there KeOps took {min(ratios):.1f}x-{max(ratios):.1f}x "
        f"torch's time per iteration ({len(wins)} wins in {len(covered)} "
        f"cells){memory}; {elsewhere}"
    )


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["m"], r["d"]) for r in rows})
    columns = min(2, len(panels))
    n_rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(
        n_rows, columns, figsize=(5.5 * columns, 4.2 * n_rows), squeeze=False
    )
    colors = {"sklearn": "C0", "torch": "C1", "keops": "C2"}
    styles = {"float64": ("o", "-"), "float32": ("s", "-.")}
    floor_colors = {"float64": "0.2", "float32": "0.6"}
    for axis, (m, d) in zip(axes.flat, panels, strict=False):
        for dtype in DTYPES:
            subset = sorted(
                (r for r in rows if (r["m"], r["d"], r["dtype"]) == (m, d, dtype)),
                key=lambda r: r["n"],
            )
            if not subset:
                continue
            marker, line = styles[dtype]
            for engine in ENGINES:
                points = [
                    (r["n"], r["seconds"][engine])
                    for r in subset
                    if engine in r["seconds"]
                ]
                if points:
                    axis.loglog(
                        *zip(*points, strict=True),
                        marker=marker,
                        ls=line,
                        color=colors[engine],
                        label=f"{engine} {dtype}",
                    )
            axis.loglog(
                [r["n"] for r in subset],
                [r["floor"] for r in subset],
                "--",
                color=floor_colors[dtype],
                label=f"floor {dtype}",
            )
        axis.set(xlabel="n_samples", ylabel="seconds per EM iteration")
        axis.set_title(f"M={m}, D={d}, full covariances")
        axis.grid(True, which="major", alpha=0.3)
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def header(threads, rates, warm, note):
    import torch

    lines = [
        *_harness.header_lines(
            "bench_engines: seconds per EM iteration and peak memory per engine, "
            "CPU, covariance_type='full'",
            note,
        ),
        f"threads: torch {torch.get_num_threads()}, numpy/sklearn pools "
        f"{_harness.thread_pools()} (requested {threads}); KeOps' OpenMP: all cores",
    ]
    for dtype, (flops, exps) in rates.items():
        lines.append(
            f"measured rates {dtype}: matmul {flops / 1e9:.1f} GFLOP/s, "
            f"torch.exp {exps / 1e6:.0f} M/s"
        )
    for (d, dtype), seconds in warm.items():
        lines.append(
            f"warm-up fit (N=2,000, M=10) D={d} {dtype}: "
            + ", ".join(f"{e} {s:.2f} s" for e, s in seconds.items())
        )
    lines += [
        "s/it = (min t(max_iter=1+k) - min t(max_iter=1)) / k over the repeats; "
        "k per engine (sklearn/torch/keops) in column 'k sk/t/ko'",
        "floor = 4 N M F / matmul rate + N M / exp rate (that dtype), "
        "F = 1 + D + D(D+1)/2",
        "|dmu| = max |means - means of the torch fit| after one iteration, "
        "same data and dtype; "
        "'-' = not run (see the budget note)",
    ]
    return lines


def parse_list(text, kind):
    return tuple(kind(float(x)) if kind is int else kind(x) for x in text.split(","))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _harness.add_common_arguments(
        parser, "N in 2e3, 5e3, M=10, D=2, float64, one repeat: a smoke test"
    )
    parser.add_argument("--n", help="comma-separated N (e.g. 1e4,1e5)")
    parser.add_argument("--m", help="comma-separated M")
    parser.add_argument("--d", help="comma-separated D")
    parser.add_argument("--dtypes", help="float32,float64")
    parser.add_argument("--engines", help="sklearn,torch,keops")
    parser.add_argument(
        "--memory-n", type=float, help="N of the memory fits; 0: none (default max N)"
    )
    parser.add_argument(
        "--memory-only", action="store_true", help="no timing, memory fits only"
    )
    parser.add_argument("--sklearn-float32-max-nm", type=float, default=1e7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--from-json",
        type=Path,
        help="re-render the table and plot from a saved <stem>.json, measure nothing",
    )
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.from_json:
        measured = json.loads(args.from_json.read_text())
        render(measured, args.from_json.parent, args.from_json.stem)
        return
    if args.child:
        run_child(
            args.child, int(args.n), int(args.m), int(args.d), args.dtypes, args.threads
        )
        return

    import torch  # noqa: F401  (so that set_threads sets its pool too)

    _harness.set_threads(args.threads)
    custom = any((args.n, args.m, args.d, args.dtypes, args.engines, args.memory_only))
    ns, ms, ds = (
        ((2_000, 5_000), (10,), (2,)) if args.quick else (FULL_N, FULL_M, FULL_D)
    )
    ns = parse_list(args.n, int) if args.n else ns
    ms = parse_list(args.m, int) if args.m else ms
    ds = parse_list(args.d, int) if args.d else ds
    dtypes = ("float64",) if args.quick else DTYPES
    dtypes = parse_list(args.dtypes, str) if args.dtypes else dtypes
    engines = parse_list(args.engines, str) if args.engines else ENGINES
    memory_n = max(ns) if args.memory_n is None else int(args.memory_n)

    def runs(engine, n, m, dtype):
        return engine in engines and not (
            engine == "sklearn"
            and dtype == "float32"
            and n * m > args.sklearn_float32_max_nm
        )

    size, n_exp = (512, 2**20) if args.quick else (2048, 2**23)
    rates = {dtype: _harness.machine_rates(dtype, size, n_exp) for dtype in dtypes}
    warm = {(d, dtype): warm_up(d, dtype, engines) for d in ds for dtype in dtypes}
    if args.memory_only:
        ns = ()
    lines = header(args.threads, rates, warm, args.note)
    print("\n".join(lines), flush=True)
    print("\n".join(speed_table([])), flush=True)
    rows, notes = [], []
    for n in ns:
        for m in ms:
            for d in ds:
                for dtype in dtypes:
                    X = _harness.blobs(n, d, dtype)
                    cell = tuple(e for e in ENGINES if runs(e, n, m, dtype))
                    seconds, spans, means, cell_notes = time_cell(
                        X, m, cell, args.quick
                    )
                    notes += cell_notes
                    if cell_notes:
                        print("\n".join(cell_notes), flush=True)
                    drift = {
                        e: float(np.max(np.abs(means[e] - means["torch"])))
                        for e in means
                        if e != "torch" and "torch" in means
                    }
                    rows.append(
                        {
                            "n": n,
                            "m": m,
                            "d": d,
                            "dtype": dtype,
                            "seconds": seconds,
                            "spans": spans,
                            "drift": drift,
                            "floor": _harness.floor_seconds(n, m, d, rates[dtype]),
                            "load": os.getloadavg()[0],
                        }
                    )
                    print(speed_table(rows[-1:])[-1], flush=True)
    memory_rows = []
    if memory_n:
        print(f"\nmemory, one fit (max_iter={MEMORY_MAX_ITER}) per fresh process:")
        print("\n".join(memory_table([])), flush=True)
        for m in ms:
            for d in ds:
                for dtype in dtypes:
                    for engine in ENGINES:
                        if not runs(engine, memory_n, m, dtype):
                            continue
                        result = measure_memory(
                            engine, memory_n, m, d, dtype, args.threads
                        )
                        if engine == "sklearn" and result["torch_imported"]:
                            raise RuntimeError("the sklearn child imported torch")
                        memory_rows.append(
                            {
                                "n": memory_n,
                                "m": m,
                                "d": d,
                                "dtype": dtype,
                                "engine": engine,
                            }
                            | result
                        )
                        print(memory_table(memory_rows[-1:])[-1], flush=True)
    skipped = sorted(
        {
            f"N={n:,} M={m}"
            for n in ns
            for m in ms
            if "sklearn" in engines and not runs("sklearn", n, m, "float32")
        }
    )
    budget = (
        [
            "budget: sklearn float32 skipped (timing and memory) at "
            + "; ".join(skipped)
            + f" (N M > {args.sklearn_float32_max_nm:.0e})"
        ]
        if skipped
        else []
    )
    stem = "bench_engines" + ("_custom" if custom else "")
    measured = {
        "header": lines,
        "budget": budget,
        "rows": rows,
        "notes": notes,
        "memory_rows": memory_rows,
        "end_load": os.getloadavg()[0],
        "end": _harness.end_lines(),
    }
    out = _harness.output_dir(args, "bench_engines")
    _harness.write_lines(out / f"{stem}.json", [json.dumps(measured, indent=1)])
    render(measured, out, stem)


def render(measured, out, stem):
    """Print the report and write ``<stem>.txt`` and ``<stem>.png`` in ``out``."""
    rows, memory_rows = measured["rows"], measured["memory_rows"]
    lines = measured["header"]
    report = [
        *lines,
        *measured["budget"],
        "",
        *speed_table(rows),
        *measured["notes"],
    ]
    if memory_rows:
        report += [
            "",
            f"peak resident memory of one fit (max_iter={MEMORY_MAX_ITER}), each in "
            "a fresh child process; MiB; base = RSS after imports and data, "
            "cost = peak - base",
            *memory_table(memory_rows),
        ]
    report += [
        "",
        *measured.get("end", [f"load average {measured['end_load']:.2f} at the end"]),
        "",
        *findings(rows, memory_rows),
    ]
    print("\n".join(report[len(lines) :]))
    _harness.write_lines(out / f"{stem}.txt", report)
    if rows:
        plot(rows, out / f"{stem}.png")
        print(f"written to {out / stem}.png", flush=True)


if __name__ == "__main__":
    main()
