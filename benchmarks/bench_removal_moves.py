"""Do MM-EM's removal moves pay? The same fits with the moves on and off.

What is measured
----------------
``SparseGaussianMixture(removal_moves=True)`` (MM-EM only; off by default)
runs, after convergence, a removal move: remove the lightest component, run
MM-EM again, and keep the removal if the objective ``F`` ends lower,
repeating until a removal fails. This script fits the same data sets with
``removal_moves=False`` and ``True``, in one process.

The data sets are those of the ``sweep`` stage of ``bench_defaults.py``
(``_mixtures.sweep_keys``, so they are the same arrays): mixtures of ``K`` in
{1, 2, 3, 5, 8} components in ``D`` in {2, 5, 8} dimensions, separated and
overlapping, with N=2,000 (two seeds), and K in {2, 5, 8}, D in {2, 5} with
N=20,000 (one seed); 72 data sets. Each is fitted with
``SparseGaussianMixture(n_components=20, prune_threshold=1e-3, tol=1e-4,
max_iter=300)`` at sparsity 4, 8 and 16, once with the moves off and once on.
The two fits of a pair run back to back, in alternating order, so that load on
the machine affects both alike.

For each setting the tables give the recovery rate (``n_components_ == K``)
and the % of fits with more (over) or fewer (under) components than ``K``, the
mean held-out gap (held-out mean log-likelihood minus that of the true
mixture, on 5,000 fresh points; 0 is perfect), the median ``n_iter_`` (a
trial's iterations count) and the median wall time. The paired table gives,
per sparsity, how many fits the moves changed, the recoveries they gained and
lost, the objective difference ``objective_(on) - objective_(off)`` (never
positive if the moves only accept a lower ``F``; the first descent of both
fits is the same computation, so it is compared too) and the change of the
held-out gap. The health lines count errors, warnings, non-monotone
``loss_curve_`` (any ``np.diff > 0``; increases above 1e-9 are listed), and
fits whose ``objective_`` or ``n_components_`` disagree with the last entry of
``loss_curve_`` or ``n_components_curve_``.

Everything runs with one thread (torch, BLAS and OpenMP), as in
``bench_defaults.py``. Two files are written: ``bench_removal_moves.txt``
(the tables) and ``bench_removal_moves_fits.csv`` (one row per fit, with its
commit: everything the tables are computed from), in
``benchmarks/results/`` (``--out DIR`` elsewhere). ``--quick`` fits the
quick sweep grid (6 data sets) at sparsity 8 only, a smoke test of seconds,
and writes to a new temporary folder unless ``--out`` is given;
``--from-raw FILE [FILE ...]`` tabulates such CSV files without fitting.

Run::

    python benchmarks/bench_removal_moves.py [--quick] [--sparsities 4,8,16]
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from pathlib import Path

import _harness
import numpy as np
import torch  # noqa: F401  (imported first, so that set_threads sizes its pool)
from _harness import mean_or_dash, median_or_dash, pct, table
from _mixtures import N_LARGE, N_SMALL, fit_record, sweep_keys
from _mixtures import SWEEP_SETTINGS as BASE

from sparse_gmm import SparseGaussianMixture

SPARSITIES = (4.0, 8.0, 16.0)
QUICK_SPARSITIES = (8.0,)
INCREASE_TOL = 1e-9
MODES = ("off", "on")


def ok(records):
    return [r for r in records if "error" not in r]


def fit_one(key, sparsity, moves):
    """Fit one model with the moves on or off; a flat record (never raises)."""
    model = SparseGaussianMixture(
        **BASE,
        sparsity=sparsity,
        removal_moves=moves,
        random_state=key[4],
        device="cpu",
    )
    record = fit_record(model, key)
    record.update(sparsity=sparsity, moves="on" if moves else "off")
    if "error" in record:
        return record
    loss = np.asarray(model.loss_curve_, dtype=float)
    record.update(
        objective=float(model.objective_),
        end_consistent=bool(
            len(loss) == model.n_iter_
            and (len(loss) == 0 or loss[-1] == model.objective_)
            and (len(loss) == 0 or model.n_components_curve_[-1] == model.n_components_)
        ),
        loss_curve=loss.tolist(),
    )
    return record


def run(keys, sparsities, log):
    records = []
    pair = 0
    for key in keys:
        for s in sparsities:
            order = (False, True) if pair % 2 == 0 else (True, False)
            pair += 1
            for moves in order:
                r = fit_one(key, s, moves)
                records.append(r)
                log(
                    f"K={r['K']} D={r['D']} {r['sep'][:3]} N={r['N']} "
                    f"seed={r['seed']} s={s:g} moves={r['moves']:3s} -> "
                    f"{r.get('n_found', 'ERR')} it={r.get('n_iter', '-')} "
                    f"F={r.get('objective', math.nan):.6f} {r['time']:.2f}s"
                )
    return records


# ------------------------------------------------------------------ tables


def recovered(r):
    return r["n_found"] == r["K"]


def dataset_key(r):
    return (r["K"], r["D"], r["sep"], r["N"], r["seed"], r["sparsity"])


def pairs_of(records):
    """``(off, on)`` record pairs of the same data set and sparsity."""
    by_mode = {
        m: {dataset_key(r): r for r in records if r["moves"] == m} for m in MODES
    }
    return [
        (off, by_mode["on"][k])
        for k, off in by_mode["off"].items()
        if k in by_mode["on"] and "error" not in off and "error" not in by_mode["on"][k]
    ]


def main_table(records, sparsities):
    rows = []
    for s in sparsities:
        for mode in MODES:
            at = ok([r for r in records if r["sparsity"] == s and r["moves"] == mode])
            if not at:
                continue
            rows.append(
                [
                    f"{s:g}",
                    mode,
                    len(at),
                    pct(recovered(r) for r in at),
                    pct(r["n_found"] > r["K"] for r in at),
                    pct(r["n_found"] < r["K"] for r in at),
                    pct(recovered(r) for r in at if r["sep"] == "separated"),
                    pct(recovered(r) for r in at if r["sep"] == "overlapping"),
                    pct(recovered(r) for r in at if r["N"] == N_LARGE),
                    mean_or_dash(r["gap"] for r in at),
                    median_or_dash(r["n_iter"] for r in at),
                    median_or_dash(
                        [r["time"] for r in at if r["N"] == N_SMALL], "{:6.3f}"
                    ),
                    median_or_dash(
                        [r["time"] for r in at if r["N"] == N_LARGE], "{:6.3f}"
                    ),
                    f"{sum(r['time'] for r in at):.1f}",
                ]
            )
    header = [
        "sparsity",
        "moves",
        "fits",
        "rec",
        "over",
        "under",
        "rec sep",
        "rec ovl",
        "rec 20k",
        "mean gap",
        "med iter",
        "med t 2k (s)",
        "med t 20k (s)",
        "total t (s)",
    ]
    return [
        "Removal moves off and on: recovery (% of fits with n_components_ == K), "
        "over/under: % with more/fewer than K; sep/ovl: separated/overlapping; "
        "gap: held-out mean log-likelihood minus the true mixture's (nats).",
        table(header, rows),
    ]


def k_table(records, sparsities):
    ks = sorted({r["K"] for r in records})
    rows = []
    for s in sparsities:
        for mode in MODES:
            at = ok([r for r in records if r["sparsity"] == s and r["moves"] == mode])
            if at:
                rows.append(
                    [f"{s:g}", mode]
                    + [pct(recovered(r) for r in at if r["K"] == k) for k in ks]
                    + [
                        mean_or_dash(r["gap"] for r in at if r["sep"] == "separated"),
                        mean_or_dash(r["gap"] for r in at if r["sep"] == "overlapping"),
                        mean_or_dash(r["gap"] for r in at if r["N"] == N_LARGE),
                    ]
                )
    header = ["sparsity", "moves", *(f"K={k}" for k in ks)]
    header += ["gap sep", "gap ovl", "gap 20k"]
    return [
        "\nRecovery by true K, and mean held-out gap by subset.",
        table(header, rows),
    ]


def paired_table(records, sparsities):
    rows = []
    for s in sparsities:
        at = [(a, b) for a, b in pairs_of(records) if a["sparsity"] == s]
        if not at:
            continue
        changed = [(a, b) for a, b in at if a["n_found"] != b["n_found"]]
        delta_f = [b["objective"] - a["objective"] for a, b in at]
        rows.append(
            [
                f"{s:g}",
                len(at),
                len(changed),
                sum(a["n_found"] - b["n_found"] for a, b in at),
                sum(not recovered(a) and recovered(b) for a, b in at),
                sum(recovered(a) and not recovered(b) for a, b in at),
                f"{np.mean(delta_f):.2e}",
                f"{np.min(delta_f):.2e}",
                f"{np.max(delta_f):.2e}",
                sum(d > 0 for d in delta_f),
                mean_or_dash(b["gap"] - a["gap"] for a, b in at),
                mean_or_dash((b["gap"] - a["gap"] for a, b in changed), "{:7.4f}"),
                median_or_dash((b["n_iter"] - a["n_iter"] for a, b in at), "{:5.0f}"),
                median_or_dash((b["time"] / a["time"] for a, b in at), "{:5.2f}"),
            ]
        )
    header = [
        "sparsity",
        "pairs",
        "changed",
        "comps removed",
        "rec gained",
        "rec lost",
        "mean dF",
        "min dF",
        "max dF",
        "dF>0",
        "mean dgap",
        "dgap changed",
        "med +iter",
        "med t on/off",
    ]
    return [
        "\nPaired (same data set and sparsity): 'changed' fits end with fewer "
        "components with the moves on; dF = objective_(on) - objective_(off) "
        "(must be <= 0); dgap = gap(on) - gap(off) (> 0: the moves improved the "
        "held-out likelihood), over all pairs and over the changed ones; "
        "+iter: extra iterations, t on/off: time ratio.",
        table(header, rows),
    ]


def health_lines(records):
    out = []
    for mode in MODES:
        fits = [r for r in records if r["moves"] == mode]
        fitted = ok(fits)
        errors = Counter(r["error"][:120] for r in fits if "error" in r)
        warned = Counter(w for r in fits for w in r["warnings"])
        nonmono = [r for r in fitted if r["max_increase"] > 0]
        large = [r for r in fitted if r["max_increase"] > INCREASE_TOL]
        out.append(
            f"\nHealth, moves {mode}, {len(fits)} fits: {sum(errors.values())} "
            f"errors, {len(nonmono)} with np.diff(loss_curve_) > 0 anywhere "
            f"({len(large)} above {INCREASE_TOL:g}), "
            f"{sum(not r['end_consistent'] for r in fitted)} with objective_ / "
            "n_components_ / n_iter_ not matching the curves' last entries, "
            f"{sum(not r['converged'] for r in fitted)} not converged."
        )
        out += [f"  error x{n}: {e}" for e, n in errors.most_common()]
        out += [f"  warning x{n}: {w}" for w, n in warned.most_common()]
        for r in sorted(nonmono, key=lambda r: -r["max_increase"])[:10]:
            out.append(
                f"  increase {r['max_increase']:.3g}: K={r['K']} D={r['D']} "
                f"{r['sep']} N={r['N']} seed={r['seed']} s={r['sparsity']:g}"
            )
    pairs = pairs_of(records)
    worse = [(a, b) for a, b in pairs if b["objective"] > a["objective"]]
    prefix = [
        (a, b)
        for a, b in pairs
        if b["loss_curve"][: len(a["loss_curve"])] != a["loss_curve"]
    ]
    out.append(
        f"\nPairs: {len(worse)} of {len(pairs)} with objective_ higher with the "
        f"moves on; {len(prefix)} whose loss_curve_ with the moves on does not "
        "start with the whole curve of the fit without them (the first descent "
        "should be the same computation)."
    )
    for a, b in (worse + prefix)[:10]:
        out.append(
            f"  K={a['K']} D={a['D']} {a['sep']} N={a['N']} seed={a['seed']} "
            f"s={a['sparsity']:g}: F off {a['objective']:.9f} on "
            f"{b['objective']:.9f}, iter {a['n_iter']} / {b['n_iter']}"
        )
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _harness.add_common_arguments(
        parser, "the quick sweep grid at sparsity 8, a smoke test (seconds)"
    )
    parser.add_argument(
        "--sparsities",
        default=None,
        help="comma-separated sparsities (default: 4,8,16; 8 with --quick)",
    )
    parser.add_argument(
        "--from-raw",
        type=Path,
        nargs="+",
        default=None,
        help="tabulate these bench_removal_moves_fits.csv files instead of fitting",
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.sparsities:
        sparsities = tuple(float(v) for v in args.sparsities.split(","))
    else:
        sparsities = QUICK_SPARSITIES if args.quick else SPARSITIES
    header = _harness.header_lines(
        "bench_removal_moves: " + ("quick grid" if args.quick else "full grid"),
        args.note,
    )
    print("\n".join(header), flush=True)

    keys = sweep_keys(args.quick)
    records, origin = _harness.fit_or_read_records(
        lambda: run(keys, sparsities, print), args.from_raw, args.threads
    )
    lines = [
        *header,
        f"{len(keys)} data sets: {origin}.",
        f"SparseGaussianMixture(n_components={BASE['n_components']}, "
        f"prune_threshold={BASE['prune_threshold']:g}, tol={BASE['tol']:g}, "
        f"max_iter={BASE['max_iter']}), device='cpu'.",
        "",
        *main_table(records, sparsities),
        *k_table(records, sparsities),
        *paired_table(records, sparsities),
        *health_lines(records),
        "",
        *_harness.end_lines(),
    ]
    print("\n" + "\n".join(lines[len(header) :]))
    out = _harness.output_dir(args, "bench_removal_moves")
    _harness.write_records(out / "bench_removal_moves_fits.csv", records)
    _harness.write_lines(out / "bench_removal_moves.txt", lines)


if __name__ == "__main__":
    main()
