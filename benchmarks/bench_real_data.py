"""Automatic number of components on real data that scikit-learn ships.

What is measured
----------------
Each data set is cut into 5 folds (``KFold``, shuffled, seed 0). On each fold
the training part is standardised (``StandardScaler`` fitted on it; for
``digits-pca10`` a ``PCA`` to 10 dimensions is fitted on the standardised
training part first and its scores standardised again), every method is fitted
on it, and the mean log-likelihood per sample of the held-out part is
recorded with the number of components ``K`` and the fit time. The table gives,
per method, the mean over folds of the held-out score, the mean ``K`` and its
per-fold values, and the total fit time over folds.

Data sets (``--datasets``, comma-separated; all by default)
    ``iris``, ``wine``, ``breast_cancer``, ``diabetes`` (X only), ``digits``
    (64 pixels) and ``digits-pca10``: the six that issue 12 names. Extras,
    also offline: ``iris-petal`` (petal length and width only, 2-D),
    ``breast_cancer-mean`` (the 10 "mean" features), and ``china-rgb`` and
    ``flower-rgb``: 2,000 pixels (fixed seed) of scikit-learn's two sample
    photographs as RGB triples, integer-valued with many ties. Add a set by
    adding an entry to ``DATASETS``.

Methods (``--methods``, comma-separated; all by default)
    ``SGM``: ``SparseGaussianMixture()`` at its defaults (``--sgm-params``
    JSON overrides its keyword arguments). ``SGM-CV``:
    ``SparseGaussianMixtureCV()`` at its defaults (``--cv-params``).
    ``GM-BIC``: ``GaussianMixture(k)``, full covariances, for k = 1..20, the
    lowest training BIC kept (a k with fewer training rows than k is skipped;
    a fit that raises ValueError is counted as failed). ``BGM``:
    ``BayesianGaussianMixture(20, max_iter=500)``, ``K`` = components above 1%
    weight. ``FJ``: Figueiredo and Jain (2002) from 20 components, in
    ``figueiredo_jain.py`` next to this file.

``GM-BIC`` and ``BGM`` are fitted by ``_references.py``, as in
``compare.py``.

Every fit runs in this process with one thread (``_harness.set_threads(1)``:
BLAS, OpenMP and torch), so times compare work. Every fit's warnings
are counted and an exception is recorded as a failed fit (held-out NaN).

Output: a table on stdout and in ``bench_real_data.txt``, one CSV row per
(data set, method, fold) in ``bench_real_data.csv``, and the figure
``bench_real_data.png``, in ``benchmarks/results`` for the full default run
and otherwise in ``--out`` (a new temporary directory if not given), so that
a partial or overridden run never replaces the committed results. The text
opens with ``_harness``'s provenance (git commit read before the first fit,
command, machine, load average, library versions) and ends with the load
average after the last fit.

Run from the repository root with ``PYTHONPATH=$PWD`` when sparse_gmm is
installed from another checkout (the header names the copy imported)::

    python benchmarks/bench_real_data.py                # ~10 min on 1 busy core
    python benchmarks/bench_real_data.py --quick        # iris and wine, 2 folds, K<=5
    python benchmarks/bench_real_data.py --self-check   # FJ on a clear 3-mixture
    python benchmarks/bench_real_data.py --methods SGM,FJ --datasets iris \\
        --sgm-params '{"sparsity": 2.0}'
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import _harness
import numpy as np
import torch  # noqa: F401  (imported first, so that set_threads sizes its pool)
from _references import fit_bayesian, fit_bic_sweep
from figueiredo_jain import FigueiredoJainMixture
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_sample_image,
    load_wine,
)
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

import sparse_gmm
from sparse_gmm import SparseGaussianMixture, SparseGaussianMixtureCV

STEM = "bench_real_data"
METHODS = ("SGM", "SGM-CV", "GM-BIC", "BGM", "FJ")
REFERENCES = ("GM-BIC", "BGM", "FJ")
NAMED = ("iris", "wine", "breast_cancer", "diabetes", "digits", "digits-pca10")
WITHIN_NATS = 0.1
FAR_NATS = 1.0
CLIP_NATS = 3.0
N_PIXELS = 2000


# ------------------------------------------------------------------ data


def image_pixels(name):
    """``N_PIXELS`` random RGB pixels of a scikit-learn sample image."""
    pixels = load_sample_image(name).reshape(-1, 3).astype(np.float64)
    rng = np.random.default_rng(0)
    return pixels[rng.choice(len(pixels), N_PIXELS, replace=False)]


@dataclass(frozen=True)
class Dataset:
    """A real data set: how to load its rows, and an optional PCA size."""

    load: object
    pca_components: int | None = None


DATASETS = {
    "iris": Dataset(lambda: load_iris().data),
    "wine": Dataset(lambda: load_wine().data),
    "breast_cancer": Dataset(lambda: load_breast_cancer().data),
    "diabetes": Dataset(lambda: load_diabetes(scaled=False).data),
    "digits": Dataset(lambda: load_digits().data),
    "digits-pca10": Dataset(lambda: load_digits().data, pca_components=10),
    "iris-petal": Dataset(lambda: load_iris().data[:, 2:]),
    "breast_cancer-mean": Dataset(lambda: load_breast_cancer().data[:, :10]),
    "china-rgb": Dataset(lambda: image_pixels("china.jpg")),
    "flower-rgb": Dataset(lambda: image_pixels("flower.jpg")),
}


def standardised_fold(dataset, X, train, test):
    """Training and held-out rows, transformed by what the training rows fit."""
    X_train, X_test = X[train], X[test]
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    if dataset.pca_components is not None:
        pca = PCA(dataset.pca_components).fit(X_train)
        scaler = StandardScaler().fit(pca.transform(X_train))
        X_train = scaler.transform(pca.transform(X_train))
        X_test = scaler.transform(pca.transform(X_test))
    return X_train, X_test


# ------------------------------------------------------------------ methods


def fit_sgm(X, seed, config):
    params = {"random_state": seed, **config["sgm_params"]}
    model = SparseGaussianMixture(**params).fit(X)
    return model, model.n_components_, ""


def fit_sgm_cv(X, seed, config):
    params = {"random_state": seed, **config["cv_params"]}
    model = SparseGaussianMixtureCV(**params).fit(X)
    return model, model.n_components_, ""


def fit_gm_bic(X, seed, config):
    sweep = fit_bic_sweep(X, config["max_components"], seed)
    return sweep.model, sweep.model.n_components, sweep.note


def fit_bgm(X, seed, config):
    n_components, model = fit_bayesian(X, config["max_components"], seed)
    return model, n_components, ""


def fit_fj(X, seed, config):
    params = {"random_state": seed, **config["fj_params"]}
    model = FigueiredoJainMixture(config["max_components"], **params).fit(X)
    return model, model.n_components_, f"message_length={model.message_length_:.6g}"


FITTERS = {
    "SGM": fit_sgm,
    "SGM-CV": fit_sgm_cv,
    "GM-BIC": fit_gm_bic,
    "BGM": fit_bgm,
    "FJ": fit_fj,
}


def run_fit(method, X_train, X_test, seed, config):
    """One fit: a dict with K, the held-out score, time, warnings, error."""
    row = {"n_components": np.nan, "heldout": np.nan, "fit_seconds": np.nan}
    row.update(error="", note="")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            model, n_components, note = FITTERS[method](X_train, seed, config)
            row["fit_seconds"] = time.perf_counter() - start
            row.update(n_components=n_components, note=note)
            row["heldout"] = float(model.score(X_test))
        except Exception as error:  # a failed fit is a result, not a crash
            if np.isnan(row["fit_seconds"]):
                row["fit_seconds"] = time.perf_counter() - start
            row["error"] = f"{type(error).__name__}: {error}"
            traceback.print_exc(limit=2)
    row["n_warnings"] = len(caught)
    row["first_warning"] = (
        f"{caught[0].category.__name__}: {str(caught[0].message)[:120]}"
        if caught
        else ""
    )
    return row


# ------------------------------------------------------------------ running


def run(config, log):
    rows = []
    for name in config["datasets"]:
        dataset = DATASETS[name]
        X = np.asarray(dataset.load(), dtype=np.float64)
        folds = KFold(config["folds"], shuffle=True, random_state=config["seed"])
        for fold, (train, test) in enumerate(folds.split(X)):
            X_train, X_test = standardised_fold(dataset, X, train, test)
            seed = config["seed"] + fold
            for method in config["methods"]:
                row = {
                    "dataset": name,
                    "method": method,
                    "fold": fold,
                    "seed": seed,
                    "n_train": X_train.shape[0],
                    "n_test": X_test.shape[0],
                    "n_features": X_train.shape[1],
                    **run_fit(method, X_train, X_test, seed, config),
                }
                rows.append(row)
                log(
                    f"  {name:<18} fold {fold} {method:<6} K={row['n_components']:<4} "
                    f"held-out {row['heldout']:10.4g}  {row['fit_seconds']:7.2f} s"
                    + (f"  ERROR {row['error'][:80]}" if row["error"] else "")
                )
    return rows


# ------------------------------------------------------------------ tables


def summarise(rows, config):
    """Per (data set, method): mean held-out, K per fold, time, failures."""
    table = {}
    for name in config["datasets"]:
        for method in config["methods"]:
            mine = [r for r in rows if r["dataset"] == name and r["method"] == method]
            if not mine:
                continue
            heldout = np.array([r["heldout"] for r in mine], dtype=float)
            ks = [r["n_components"] for r in mine]
            table[name, method] = {
                "heldout": float(heldout.mean())
                if np.isfinite(heldout).all()
                else np.nan,
                "ks": ks,
                "k_mean": float(np.nanmean(ks)) if np.isfinite(ks).any() else np.nan,
                "seconds": sum(r["fit_seconds"] for r in mine),
                "errors": sum(bool(r["error"]) for r in mine),
                "warnings": sum(r["n_warnings"] for r in mine),
                "shape": (mine[0]["n_train"], mine[0]["n_features"]),
            }
    for name in config["datasets"]:
        scores = [v["heldout"] for (d, _), v in table.items() if d == name]
        best = np.nanmax(scores) if np.isfinite(scores).any() else np.nan
        for (d, _), v in table.items():
            if d == name:
                v["below_best"] = v["heldout"] - best
    return table


def format_k(ks):
    return "[" + ",".join("-" if not np.isfinite(k) else str(int(k)) for k in ks) + "]"


def long_table(table, config):
    lines = [
        f"{'data (train x D)':<26} {'method':<7} {'K mean':>6}  {'K per fold':<22} "
        f"{'held-out':>10} {'vs best':>9} {'time s':>8} {'warn':>5} {'fail':>4}"
    ]
    for name in config["datasets"]:
        for method in config["methods"]:
            if (name, method) not in table:
                continue
            v = table[name, method]
            shape = f"{name} {v['shape'][0]}x{v['shape'][1]}"
            lines.append(
                f"{shape:<26} {method:<7} {v['k_mean']:6.1f}  {format_k(v['ks']):<22} "
                f"{v['heldout']:10.4g} {v['below_best']:9.3g} {v['seconds']:8.2f} "
                f"{v['warnings']:5d} {v['errors']:4d}"
            )
        lines.append("")
    return lines


def bic_failures(rows):
    """One line per fold whose BIC sweep skipped or lost a fit."""
    lines = []
    for row in rows:
        if row["method"] == "GM-BIC" and row["note"]:
            lines.append(f"  {row['dataset']} fold {row['fold']}: {row['note']}")
    head = (
        "GaussianMixture fits in the BIC sweep that raised ValueError or were skipped"
    )
    return [f"{head}:", *lines] if lines else [f"{head}: none"]


def markdown_table(table, config):
    """The issue's layout: one row per data set, ``K / held-out`` per method."""
    methods = config["methods"]
    lines = [
        "| data (train rows x D) | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for name in config["datasets"]:
        cells = []
        best = max(
            (table[name, m]["heldout"] for m in methods if (name, m) in table),
            key=lambda s: -np.inf if np.isnan(s) else s,
        )
        shape = next(v["shape"] for (d, _), v in table.items() if d == name)
        for method in methods:
            v = table.get((name, method))
            if v is None:
                cells.append("")
                continue
            if v["errors"]:
                cells.append(f"failed on {v['errors']} of {len(v['ks'])} folds")
                continue
            score = f"{v['heldout']:.3g}"
            if v["heldout"] == best:
                score = f"**{score}**"
            cells.append(f"{v['k_mean']:.3g} / {score}")
        lines.append(f"| {name} {shape[0]}x{shape[1]} | " + " | ".join(cells) + " |")
    return lines


def issue_summary(table, config, method):
    """Issue 12's targets for ``method`` on the six named data sets."""
    references = [m for m in REFERENCES if m in config["methods"]]
    named = [d for d in NAMED if d in config["datasets"]]
    if method not in config["methods"] or not references or not named:
        return []
    within, far, k_ok, lines = 0, 0, 0, []
    for name in named:
        v = table[name, method]
        best_ref = np.nanmax([table[name, m]["heldout"] for m in references])
        gap = v["heldout"] - best_ref
        within += bool(gap >= -WITHIN_NATS)
        far += bool(not gap >= -FAR_NATS)  # NaN (a failed fit) counts as far
        k_limit = None
        if "GM-BIC" in config["methods"]:
            k_limit = 2 * table[name, "GM-BIC"]["k_mean"] + 2
            k_ok += bool(v["k_mean"] <= k_limit)
        lines.append(
            f"  {name:<14} {method} - best reference = {gap:9.4g} nats; "
            f"K {v['k_mean']:.1f}"
            + (f" (limit 2 K_BIC + 2 = {k_limit:.1f})" if k_limit is not None else "")
        )
    head = [
        f"{method} against the best of {{{', '.join(references)}}} on the named sets:",
        f"  within {WITHIN_NATS} nats on {within} of {len(named)} "
        "(target: at least 4 of 6)",
        f"  more than {FAR_NATS} nat below on {far} of {len(named)} (target: none)",
    ]
    if "GM-BIC" in config["methods"]:
        head.append(
            f"  K <= 2 K_BIC + 2 (fold means) on {k_ok} of {len(named)} (target: all)"
        )
    return head + lines


# ------------------------------------------------------------------ figure


def plot(table, config, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, methods = config["datasets"], config["methods"]
    width = 0.8 / len(methods)
    x = np.arange(len(names))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8, 1.3 * len(names)), 8))
    for i, method in enumerate(methods):
        offsets = x + (i - (len(methods) - 1) / 2) * width
        gaps = np.array([table[n, method]["below_best"] for n in names])
        ks = np.array([table[n, method]["k_mean"] for n in names])
        shown = np.clip(gaps, -CLIP_NATS, 0.0)
        bars = top.bar(offsets, shown, width, label=method)
        for offset, gap in zip(offsets, gaps, strict=True):
            label = None
            if np.isnan(gap):
                label = "failed"
            elif gap == 0.0:
                label = "best"
            elif gap < -CLIP_NATS:
                label = f"{gap:.3g}"
            if label is not None:
                top.text(
                    offset,
                    -0.05,
                    label,
                    rotation=90,
                    ha="center",
                    va="top",
                    fontsize=7,
                )
        k_lists = [np.asarray(table[n, method]["ks"], dtype=float) for n in names]
        spread = np.array(
            [
                [k - np.nanmin(fold_ks), np.nanmax(fold_ks) - k]
                if np.isfinite(fold_ks).any()
                else [0.0, 0.0]
                for k, fold_ks in zip(ks, k_lists, strict=True)
            ]
        ).T
        bottom.bar(
            offsets,
            ks,
            width,
            yerr=np.nan_to_num(spread),
            color=bars.patches[0].get_facecolor(),
            error_kw={"elinewidth": 0.8, "capsize": 1.5},
        )
    top.axhline(-WITHIN_NATS, color="grey", lw=0.8, ls="--")
    n_named = sum(name in NAMED for name in names)
    if 0 < n_named < len(names) and all(name in NAMED for name in names[:n_named]):
        for axis in (top, bottom):  # the issue's six sets, then the extras
            axis.axvline(n_named - 0.5, color="black", lw=0.8, ls=":")
    top.set_ylim(-CLIP_NATS * 1.02, 0.05)
    top.set_ylabel("held-out nats per sample\nbelow the best method")
    top.set_title(
        f"{config['folds']}-fold held-out log-likelihood, clipped at -{CLIP_NATS:g} "
        f"(the clipped values written at the top; dashed: -{WITHIN_NATS:g})",
        fontsize=9,
    )
    fig.legend(*top.get_legend_handles_labels(), ncol=len(methods), loc="upper center")
    bottom.set_ylabel("components K\n(mean over folds, bars: fold range)")
    for axis in (top, bottom):
        axis.set_xticks(x)
        axis.set_xticklabels(names, rotation=20, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------ self-check


def self_check(log):
    """FJ on three separated 2-D Gaussians: it must find 3, at GM's likelihood."""
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [3.0, 6.0]])
    for seed in range(5):
        rng = np.random.default_rng(seed)
        X = np.vstack(
            [
                rng.normal(centre, 1.0, size=(n, 2))
                for centre, n in zip(centres, (400, 350, 250), strict=True)
            ]
        )
        fj = FigueiredoJainMixture(20, random_state=seed).fit(X)
        # At the true size the kept fit is a likelihood maximum, so it must
        # match scikit-learn's EM at K=3 (an independent implementation).
        reference = GaussianMixture(3, n_init=3, random_state=seed).fit(X).score(X)
        log(
            f"self-check draw {seed}: FJ kept K={fj.n_components_} of the path "
            f"{[k for k, _, _ in fj.path_]}, training score {fj.score(X):.5f}, "
            f"GaussianMixture(3) {reference:.5f}, {fj.n_iter_} sweeps"
        )
        assert fj.n_components_ == 3, f"FJ found {fj.n_components_} components, not 3"
        assert abs(fj.score(X) - reference) < 1e-3, "FJ's 3-component fit is not GM's"
        lengths = [length for _, length, _ in fj.path_]
        assert fj.message_length_ == min(lengths), "FJ did not keep its shortest fit"
    log("self-check passed")


# ------------------------------------------------------------------ main


def header_lines(config, note):
    """The provenance of ``_harness`` (read now), then this run's settings."""
    title = (
        f"{STEM}: {config['folds']}-fold held-out log-likelihood per sample, "
        f"components K and fit time on real data{' (--quick)' * config['quick']}"
    )
    return [
        *_harness.header_lines(title, note),
        f"sparse_gmm {sparse_gmm.__version__} from {Path(sparse_gmm.__file__).parent}"
        "; every fit on 1 thread",
        f"max components {config['max_components']}; "
        f"SGM params {json.dumps(config['sgm_params'])}; "
        f"SGM-CV params {json.dumps(config['cv_params'])}; "
        f"FJ params {json.dumps(config['fj_params'])}; KFold seed {config['seed']}, "
        "fold f fits with random_state seed+f",
    ]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _harness.add_common_arguments(parser, "iris and wine, 2 folds, K<=5")
    parser.add_argument("--self-check", action="store_true", help="check FJ and exit")
    parser.add_argument(
        "--methods", help=f"comma-separated subset of {','.join(METHODS)}"
    )
    parser.add_argument(
        "--datasets", help=f"comma-separated subset of {','.join(DATASETS)}"
    )
    parser.add_argument(
        "--sgm-params", default="{}", help="JSON keyword arguments for SGM"
    )
    parser.add_argument(
        "--cv-params", default="{}", help="JSON keyword arguments for SGM-CV"
    )
    parser.add_argument(
        "--fj-params", default="{}", help="JSON keyword arguments for FJ"
    )
    parser.add_argument("--folds", type=int)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def make_config(args):
    def subset(text, allowed, default):
        if text is None:
            return list(default)
        chosen = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in chosen if item not in allowed]
        if unknown or not chosen:
            raise SystemExit(
                f"unknown or empty choice {unknown}; choose from {list(allowed)}"
            )
        return chosen

    def keywords(option, text):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise SystemExit(
                f"{option} is not valid JSON ({error}): {text!r}"
            ) from None
        if not isinstance(value, dict):
            raise SystemExit(f"{option} must be a JSON object, got {text!r}")
        return value

    max_components = 5 if args.quick else 20
    config = {
        "quick": args.quick,
        "methods": subset(args.methods, METHODS, METHODS),
        "datasets": subset(
            args.datasets, DATASETS, ("iris", "wine") if args.quick else DATASETS
        ),
        "folds": args.folds or (2 if args.quick else 5),
        "seed": args.seed,
        "max_components": max_components,
        "sgm_params": {
            "n_components": max_components,
            **keywords("--sgm-params", args.sgm_params),
        },
        "cv_params": {
            "n_components": max_components,
            **keywords("--cv-params", args.cv_params),
        },
        "fj_params": keywords("--fj-params", args.fj_params),
    }
    is_default = (
        not args.quick
        and args.methods is None
        and args.datasets is None
        and args.sgm_params == "{}"
        and args.cv_params == "{}"
        and args.fj_params == "{}"
        and args.folds is None
        and args.seed == 0
    )
    config["out"] = _harness.output_dir(args, STEM, partial=not is_default)
    return config


def main(argv=None):
    args = parse_args(argv)
    _harness.set_threads(1)

    def log(text):
        print(text, flush=True)

    if args.self_check or args.quick:
        self_check(log)
    if args.self_check:
        return
    config = make_config(args)
    # Read before fitting: the tree may change while a long run goes on.
    header = header_lines(config, args.note)
    rows = run(config, log)
    table = summarise(rows, config)
    lines = [*header, "", *long_table(table, config)]
    if "GM-BIC" in config["methods"]:
        lines += [*bic_failures(rows), ""]
    lines += ["Markdown, K (mean over folds) / held-out (best in bold):", ""]
    lines += [*markdown_table(table, config), ""]
    for method in ("SGM", "SGM-CV"):
        lines += [*issue_summary(table, config, method), ""]
    lines += _harness.end_lines()
    print("\n".join(lines))
    out = config["out"]
    _harness.write_lines(out / f"{STEM}.txt", lines)
    _harness.write_records(out / f"{STEM}.csv", rows)
    plot(table, config, out / f"{STEM}.png")
    print(f"written to {out / STEM}.png", flush=True)


if __name__ == "__main__":
    main()
