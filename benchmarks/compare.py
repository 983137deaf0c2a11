"""How many components each method finds, and at what held-out likelihood.

What is compared
----------------
On mixtures of known size and on data sets that scikit-learn ships:

``SGM-CV``
    ``SparseGaussianMixtureCV(20)`` at its defaults: 5 folds walked up a
    grid of 6 sparsities with early stopping, fold fits to ``path_tol=1e-3``.
``SGM``
    ``SparseGaussianMixture()`` at its defaults (20 components,
    ``sparsity='auto'``, ``covariance_prior='auto'``, relaxed refit).
``GM-BIC``
    ``sklearn.mixture.GaussianMixture`` with 1 to 20 components, the count
    with the lowest BIC kept (20 fits): what users do today.
``BGM``
    ``sklearn.mixture.BayesianGaussianMixture(20)``, ``max_iter=500``; its
    components are never removed, so those above 1% weight are counted.

``GM-BIC`` and ``BGM`` are fitted by ``_references.py``, as in
``bench_real_data.py``.

The mixtures are those of ``bench_defaults.py`` (made by ``_mixtures.py``:
weights from a Dirichlet(1) with a floor of 0.05, random full covariances,
means ``sep`` apart in units of the largest standard deviation: 5
"separated", 2.5 "overlapping"), with
``K`` in {3, 6} components in ``D`` in {2, 5, 8} dimensions, two seeds, 2,000
training samples (and, with one seed and ``D`` in {2, 5}, 20,000), 5,000
held-out ones; the held-out mean log-likelihood is
reported minus that of the true mixture (0 is perfect). scikit-learn's iris,
wine and breast-cancer data are standardised and split 70/30 (no true size;
their class counts are shown for reference).

Every method runs in this process with one thread (torch, BLAS, OpenMP), so
the times compare work, not parallelism. Run::

    python benchmarks/compare.py            # about 12 minutes on 2 cores
    python benchmarks/compare.py --quick    # one mixture and iris, seconds

Output: a table on stdout and in ``compare.txt``, and the figure
``compare_path.png``: the path of active components and the held-out
log-likelihood against the sparsity, for four mixtures (the one mixture of
``--quick``), in ``benchmarks/results/`` (``--out DIR`` elsewhere;
``--quick`` writes to a new temporary folder unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings

import _harness
import numpy as np
import torch  # noqa: F401  (imported first, so that set_threads sizes its pool)
from _mixtures import dataset
from _references import fit_bayesian, fit_bic_sweep
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sparse_gmm import SparseGaussianMixture, SparseGaussianMixtureCV

METHODS = ("SGM-CV", "SGM", "GM-BIC", "BGM")
MAX_COMPONENTS = 20


def fit_method(name, X, seed):
    """``(n_components, fitted model)`` of one method on ``X``."""
    if name == "SGM-CV":
        model = SparseGaussianMixtureCV(MAX_COMPONENTS, random_state=seed).fit(X)
        return model.n_components_, model
    if name == "SGM":
        model = SparseGaussianMixture(MAX_COMPONENTS, random_state=seed).fit(X)
        return model.n_components_, model
    if name == "GM-BIC":
        model = fit_bic_sweep(X, MAX_COMPONENTS, seed).model
        return model.n_components, model
    return fit_bayesian(X, MAX_COMPONENTS, seed)


def mixture_cases(quick):
    """``(K, D, sep, N, seed)`` of each mixture."""
    if quick:
        return [(3, 2, "overlapping", 2000, 0)]
    small = itertools.product(
        (3, 6), (2, 5, 8), ("separated", "overlapping"), (2000,), (0, 1)
    )
    large = itertools.product(
        (3, 6), (2, 5), ("separated", "overlapping"), (20000,), (0,)
    )
    return [*small, *large]


def sklearn_cases(quick):
    loaders = (
        ("iris", load_iris),
        ("wine", load_wine),
        ("breast_cancer", load_breast_cancer),
    )
    for name, loader in loaders[:1] if quick else loaders:
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
    for data, X, X_test, n_classes in sklearn_cases(quick):
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
    groups = {
        "separated": lambda r: r["sep"] == "separated",
        "overlapping": lambda r: r["sep"] == "overlapping",
        "N=2,000": lambda r: r["N"] == 2000,
        "N=20,000": lambda r: r["N"] == 20000,
        "all": lambda r: True,
    }
    for group, member in groups.items():
        chosen = [r for r in rows if r["K"] is not None and member(r)]
        if not chosen:
            continue
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


FIGURE_DATA = (
    "K=3 D=2 overlapping N=2000 s0",
    "K=6 D=2 overlapping N=2000 s0",
    "K=3 D=8 separated N=2000 s0",
    "K=6 D=5 overlapping N=2000 s0",
)


def plot(cv_models, path):
    """The paths of four mixtures: components, and score relative to the best."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for data in [d for d in FIGURE_DATA if d in cv_models] or list(cv_models):
        model = cv_models[data]
        results = model.cv_results_
        ratio = model.sparsities_ / MAX_COMPONENTS
        line = left.plot(ratio, results["mean_n_components"], "o-", label=data)[0]
        left.plot(
            model.sparsity_ / MAX_COMPONENTS,
            model.n_components_,
            "*",
            ms=16,
            c=line.get_color(),
        )
        score = results["mean_test_score"]
        right.plot(ratio, score - score.max(), "o-", c=line.get_color())
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xticks([0.1, 0.2, 0.5, 1, 2, 3], ["0.1", "0.2", "0.5", "1", "2", "3"])
        axis.set_xlabel("sparsity / n_components")
        axis.grid(alpha=0.3)
    left.set(
        ylabel="active components (mean over 5 folds)",
        title="Active components, walked from the right until the score\n"
        "stops paying (star: chosen, refit on all data)",
    )
    right.set(
        ylabel="held-out log-likelihood minus its best",
        title="Cross-validated score (relaxed fits)",
    )
    left.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def figure_only():
    """Refit the figure's mixtures with SparseGaussianMixtureCV and plot them."""
    models = {}
    for data in FIGURE_DATA:
        K, D, sep, N, seed = data.split()
        X, _, _ = dataset(int(K[2:]), int(D[2:]), sep, int(N[2:]), int(seed[1:]))
        models[data] = fit_method("SGM-CV", X, int(seed[1:]))[1]
    return models


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _harness.add_common_arguments(parser, "one mixture and iris, a smoke test")
    parser.add_argument(
        "--figure-only", action="store_true", help="redraw compare_path.png only"
    )
    args = parser.parse_args(argv)
    _harness.set_threads(1)
    warnings.simplefilter("ignore", ConvergenceWarning)
    out = _harness.output_dir(args, "compare")
    if args.figure_only:
        plot(figure_only(), out / "compare_path.png")
        return
    header = [
        *_harness.header_lines(
            "compare: components found (n), held-out mean log-likelihood (gap to "
            "the true mixture; raw for the scikit-learn data sets) and wall time, "
            "1 thread",
            args.note,
        ),
        f"{'data':<36}" + "".join(f" | {m:<6} n      gap   time" for m in METHODS),
    ]
    print("\n".join(header), flush=True)
    rows, cv_models = run(args.quick)
    lines = header + [format_row(r) for r in rows] + summary(rows)
    lines += ["", *_harness.end_lines()]
    print("\n".join(lines[len(header) + len(rows) :]))
    _harness.write_lines(out / "compare.txt", lines)
    plot(cv_models, out / "compare_path.png")
    print(f"written to {out / 'compare_path.png'}")


if __name__ == "__main__":
    main()
