"""How many components each method finds, and at what held-out likelihood.

What is compared
----------------
On mixtures of known size and on data sets that scikit-learn ships:

``SGM-CV``
    ``SparseGaussianMixtureCV(20)`` at its defaults (5 folds, 6 sparsities).
``SGM``
    ``SparseGaussianMixture()`` at its defaults (20 components, sparsity 8).
``GM-BIC``
    ``sklearn.mixture.GaussianMixture`` with 1 to 20 components, the count
    with the lowest BIC kept (20 fits): what users do today.
``BGM``
    ``sklearn.mixture.BayesianGaussianMixture(20)``, ``max_iter=500``; its
    components are never removed, so those above 1% weight are counted.

The mixtures are those of ``bench_defaults.py`` (weights from a Dirichlet(1)
with a floor of 0.05, random full covariances, means ``sep`` apart in units of
the largest standard deviation: 5 "separated", 2.5 "overlapping"), with
``K`` in {3, 6} components in ``D`` in {2, 5, 8} dimensions, two seeds, 2,000
training samples (and, with one seed and ``D`` in {2, 5}, 20,000), 5,000
held-out ones; the held-out mean log-likelihood is
reported minus that of the true mixture (0 is perfect). scikit-learn's iris,
wine and breast-cancer data are standardised and split 70/30 (no true size;
their class counts are shown for reference).

Every method runs in this process with one thread (torch, BLAS, OpenMP), so
the times compare work, not parallelism. Run::

    python benchmarks/compare.py            # about 15 minutes on 2 cores
    python benchmarks/compare.py --quick    # two mixtures, for a smoke test

Output: a table on stdout and in ``benchmarks/results/compare.txt``, and the
figure ``benchmarks/results/compare_path.png``: the path of active components
and the held-out log-likelihood against the sparsity, for one mixture.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from bench_defaults import dataset
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import sparse_gmm
from sparse_gmm import SparseGaussianMixture, SparseGaussianMixtureCV

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("SGM-CV", "SGM", "GM-BIC", "BGM")
MAX_COMPONENTS = 20
BGM_WEIGHT_FLOOR = 0.01


def fit_method(name, X, seed):
    """``(n_components, fitted model)`` of one method on ``X``."""
    if name == "SGM-CV":
        model = SparseGaussianMixtureCV(MAX_COMPONENTS, random_state=seed).fit(X)
        return model.n_components_, model
    if name == "SGM":
        model = SparseGaussianMixture(MAX_COMPONENTS, random_state=seed).fit(X)
        return model.n_components_, model
    if name == "GM-BIC":
        fits = [
            GaussianMixture(k, random_state=seed).fit(X)
            for k in range(1, MAX_COMPONENTS + 1)
        ]
        model = min(fits, key=lambda fit: fit.bic(X))
        return model.n_components, model
    model = BayesianGaussianMixture(
        n_components=MAX_COMPONENTS, max_iter=500, random_state=seed
    ).fit(X)
    return int(np.sum(model.weights_ > BGM_WEIGHT_FLOOR)), model


def mixture_cases(quick):
    """``(K, D, sep, N, seed)`` of each mixture."""
    if quick:
        return [(3, 2, "separated", 2000, 0), (6, 5, "overlapping", 2000, 0)]
    small = itertools.product(
        (3, 6), (2, 5, 8), ("separated", "overlapping"), (2000,), (0, 1)
    )
    large = itertools.product(
        (3, 6), (2, 5), ("separated", "overlapping"), (20000,), (0,)
    )
    return [*small, *large]


def sklearn_cases():
    for name, loader in (
        ("iris", load_iris),
        ("wine", load_wine),
        ("breast_cancer", load_breast_cancer),
    ):
        X, y = loader(return_X_y=True)
        train, test = train_test_split(X, test_size=0.3, random_state=0, stratify=y)
        scaler = StandardScaler().fit(train)
        yield name, scaler.transform(train), scaler.transform(test), len(set(y))


def run(quick):
    rows, cv_models = [], {}
    for K, D, sep, N, seed in mixture_cases(quick):
        X, X_test, true_ll = dataset(K, D, sep, N, seed)
        row = {"data": f"K={K} D={D} {sep} N={N} s{seed}", "K": K, "sep": sep, "N": N}
        for name in METHODS:
            started = time.perf_counter()
            found, model = fit_method(name, X, seed)
            row[name] = {
                "n": found,
                "gap": model.score(X_test) - true_ll,
                "time": time.perf_counter() - started,
            }
            if name == "SGM-CV":
                cv_models[row["data"]] = model
        rows.append(row)
        print(format_row(row), flush=True)
    for data, X, X_test, n_classes in sklearn_cases():
        row = {"data": f"{data} ({n_classes} cl.)", "K": None, "sep": "sklearn"}
        for name in METHODS:
            started = time.perf_counter()
            found, model = fit_method(name, X, 0)
            row[name] = {
                "n": found,
                "gap": model.score(X_test),
                "time": time.perf_counter() - started,
            }
        rows.append(row)
        print(format_row(row), flush=True)
    return rows, cv_models


def format_row(row):
    cells = "".join(
        f" | {row[m]['n']:>3} {row[m]['gap']:>8.3f} {row[m]['time']:>6.1f}s"
        for m in METHODS
    )
    return f"{row['data']:<36}{cells}"


def summary(rows):
    lines = [
        "",
        "summary over the mixtures of known size (recovery: found == K; "
        "spurious: mean of max(found - K, 0); gap: held-out log-likelihood "
        "minus the true mixture's, mean; time: total seconds)",
        f"{'group':<14}{'method':<8}{'recovery':>9}{'spurious':>9}{'missing':>8}"
        f"{'gap':>9}{'time':>9}",
    ]
    for group in ("separated", "overlapping", "all"):
        chosen = [r for r in rows if r["K"] is not None and group in (r["sep"], "all")]
        for method in METHODS:
            found = np.array([r[method]["n"] for r in chosen])
            true = np.array([r["K"] for r in chosen])
            lines.append(
                f"{group:<14}{method:<8}"
                f"{np.mean(found == true):>9.0%}"
                f"{np.mean(np.maximum(found - true, 0)):>9.2f}"
                f"{np.mean(np.maximum(true - found, 0)):>8.2f}"
                f"{np.mean([r[method]['gap'] for r in chosen]):>9.3f}"
                f"{sum(r[method]['time'] for r in chosen):>9.1f}"
            )
    return lines


def plot(cv_models, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for data, model in cv_models.items():
        results = model.cv_results_
        if not data.endswith("N=2000 s0"):
            continue
        line = left.plot(model.sparsities_, results["mean_n_components"], "o-")[0]
        left.plot(model.sparsity_, model.n_components_, "*", ms=14, c=line.get_color())
        right.plot(model.sparsities_, results["mean_test_score"], "o-", label=data[:-3])
    left.set(
        xscale="log",
        xlabel="sparsity",
        ylabel="active components (mean over folds)",
        title="Path of active components (star: chosen, refit)",
    )
    right.set(
        xscale="log",
        xlabel="sparsity",
        ylabel="held-out mean log-likelihood (relaxed)",
        title="Cross-validated score",
    )
    right.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", ConvergenceWarning)
    header = [
        "compare: components found (n), held-out mean log-likelihood (gap to the "
        "true mixture; raw for the scikit-learn data sets) and wall time",
        f"python {platform.python_version()}, sparse_gmm {sparse_gmm.__version__}, "
        f"scikit-learn {sklearn.__version__}, torch {torch.__version__}, 1 thread",
        f"{'data':<36}" + "".join(f" | {m:<6} n      gap   time" for m in METHODS),
    ]
    print("\n".join(header), flush=True)
    with threadpool_limits(1):
        rows, cv_models = run(args.quick)
    lines = header + [format_row(r) for r in rows] + summary(rows)
    print("\n".join(summary(rows)))
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "compare.txt").write_text("\n".join(lines) + "\n")
        plot(cv_models, RESULTS / "compare_path.png")
        print(f"written to {RESULTS / 'compare.txt'} and compare_path.png")


if __name__ == "__main__":
    main()
