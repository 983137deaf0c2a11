"""Fixed cost on small data: per iteration, per fit, and the defaults' whole fit.

What is measured
----------------
On small data an iteration's arithmetic is tiny, and what a fit costs is
Python: dispatching tensor operations, the M-step's bookkeeping, the weight
solve, and the fits the defaults run to choose the size. Three tables, all
with one thread, every time the best of three after a warm-up, in this one
process:

``per iteration``
    On ``N`` samples of a mixture of four separated Gaussians in ``D = 5``
    dimensions (compare.py's kind, ``_mixtures.dataset``; the issue's N =
    160 and N = 2,000), from the same start (20
    components: k-means' centres, precision ``I``, equal weights): one
    iteration of maximum-likelihood EM, as the difference of fits with 101
    and 1 iterations (``tol=0``) divided by 100, for ``sparse_gmm`` (MM-EM
    at ``sparsity=0``, no covariance prior, no acceleration or merges: the
    plain iteration), for ``bare torch`` (scikit-learn's EM iteration for
    full covariances written as a plain dense torch loop in this file: the
    floor for an iteration written in torch) and for scikit-learn's
    ``GaussianMixture``; and the time of the one-iteration fit, minus one
    iteration: each fit's fixed cost (validation, the start's moments,
    the result's attributes).
``defaults``
    The defaults' whole fit, ``SparseGaussianMixture()``, against
    ``GaussianMixture(K)`` told the size the defaults found, and against
    the sweep a user would otherwise run, ``GaussianMixture(k)`` for k =
    1..10 with the lowest BIC kept, on scikit-learn's small real data sets
    (standardised) and the two cluster sets above.

Usage
-----
``python benchmarks/bench_small.py`` (about a minute); ``--quick`` runs the
smallest case once, a check that the script works. The tables go to stdout
and to ``bench_small.txt``, the figure to ``bench_small.png``, in
``benchmarks/results/`` (``--out DIR``
elsewhere; ``--quick`` writes to a new temporary folder unless ``--out``
is given). Every result file names the commit it came from.
"""

from __future__ import annotations

import argparse
import math
import warnings

import _harness
import _references
import numpy as np
import torch
from _mixtures import dataset
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from sparse_gmm import SparseGaussianMixture

STEM = "bench_small"
N_FEATURES = 5
N_COMPONENTS = 20
ITERATIONS = 100
REAL = ("iris", "wine", "breast_cancer", "diabetes")


def clusters(n_samples):
    """Four separated clusters in 5-D, ``n_samples`` in all: compare.py's kind."""
    return dataset(4, N_FEATURES, "separated", n_samples, 0)[0]


def bare_em_iteration(X, weights, means, precisions_cholesky, reg_covar=1e-6):
    """scikit-learn's EM iteration for full covariances, in plain dense torch.

    Parameters
    ----------
    X : torch.Tensor of shape (N, D)
    weights : torch.Tensor of shape (M,)
    means : torch.Tensor of shape (M, D)
    precisions_cholesky : torch.Tensor of shape (M, D, D)
        Upper-triangular ``U`` with ``U U^T`` the precision.

    Returns
    -------
    weights, means, precisions_cholesky : torch.Tensor
        The next iterate.
    """
    n_samples, n_features = X.shape
    whitened = X[None] @ precisions_cholesky - (means[:, None, :] @ precisions_cholesky)
    log_det = torch.log(torch.diagonal(precisions_cholesky, dim1=-2, dim2=-1)).sum(-1)
    log_joint = (
        -0.5 * (n_features * math.log(2 * math.pi) + whitened.square().sum(-1))
        + (log_det + torch.log(weights))[:, None]
    )
    resp = torch.exp(log_joint - torch.logsumexp(log_joint, 0))
    nk = resp.sum(1) + 10 * torch.finfo(X.dtype).eps
    means = resp @ X / nk[:, None]
    centred = X[None] - means[:, None]
    covariances = ((resp[:, :, None] * centred).mT @ centred) / nk[:, None, None]
    covariances.diagonal(dim1=-2, dim2=-1).add_(reg_covar)
    eye = torch.eye(n_features, dtype=X.dtype).expand_as(covariances)
    factor = torch.linalg.cholesky(covariances)
    precisions_cholesky = torch.linalg.solve_triangular(factor, eye, upper=False).mT
    return nk / n_samples, means, precisions_cholesky


def _start(X):
    """k-means' centres, precision ``I``, equal weights (float64)."""
    from sklearn.cluster import KMeans

    centres = KMeans(N_COMPONENTS, n_init=1, random_state=0).fit(X).cluster_centers_
    return {
        "weights_init": np.full(N_COMPONENTS, 1.0 / N_COMPONENTS),
        "means_init": centres,
        "precisions_init": np.tile(np.eye(X.shape[1]), (N_COMPONENTS, 1, 1)),
    }


def _fit_seconds(make, X, repeats):
    def fit(n_iter):
        return _harness.best_of(lambda: make(n_iter).fit(X), repeats)

    one, many = fit(1), fit(1 + ITERATIONS)
    per_iteration = (many - one) / ITERATIONS
    return per_iteration, one - per_iteration


def _bare_seconds(X, start, repeats):
    X_t = torch.as_tensor(X)
    initial = (
        torch.as_tensor(start["weights_init"]),
        torch.as_tensor(start["means_init"]),
        torch.as_tensor(start["precisions_init"]),
    )

    def run():
        state = initial
        for _ in range(ITERATIONS):
            state = bare_em_iteration(X_t, *state)

    return _harness.best_of(run, repeats) / ITERATIONS


def per_iteration_rows(sizes, repeats):
    """Table rows, and records (seconds per iteration) for the figure."""
    rows, records = [], []
    for n_samples in sizes:
        X = clusters(n_samples)
        start = _start(X)

        def sparse(n_iter, start=start):
            return SparseGaussianMixture(
                N_COMPONENTS,
                sparsity=0.0,
                covariance_prior=None,
                acceleration=None,
                merge_moves=False,
                relax=False,
                criterion=None,
                tol=0.0,
                max_iter=n_iter,
                **start,
            )

        def sklearn(n_iter, start=start):
            return GaussianMixture(N_COMPONENTS, tol=0.0, max_iter=n_iter, **start)

        sparse_iteration, sparse_fixed = _fit_seconds(sparse, X, repeats)
        sklearn_iteration, sklearn_fixed = _fit_seconds(sklearn, X, repeats)
        bare = _bare_seconds(X, start, repeats)
        records.append(
            {
                "N": n_samples,
                "sparse_gmm": sparse_iteration,
                "bare torch": bare,
                "scikit-learn": sklearn_iteration,
            }
        )
        rows.append(
            [
                f"{n_samples:,}",
                f"{sparse_iteration * 1e3:.3f}",
                f"{bare * 1e3:.3f}",
                f"{sklearn_iteration * 1e3:.3f}",
                f"{sparse_iteration / bare:.2f}",
                f"{sparse_fixed * 1e3:.1f}",
                f"{sklearn_fixed * 1e3:.1f}",
            ]
        )
        print("  ".join(rows[-1]), flush=True)
    return rows, records


def _datasets(quick):
    if quick:
        return {"clusters-160": clusters(160)}
    sets = {
        name: StandardScaler().fit_transform(getattr(datasets, f"load_{name}")().data)
        for name in REAL
    }
    sets["clusters-160"] = clusters(160)
    sets["clusters-2000"] = clusters(2000)
    return sets


def defaults_rows(sets, repeats):
    """Table rows, and records (whole-fit seconds) for the figure."""
    rows, records = [], []
    for name, X in sets.items():
        model = SparseGaussianMixture(random_state=0).fit(X)
        K = model.n_components_
        seconds = _harness.best_of(
            lambda X=X: SparseGaussianMixture(random_state=0).fit(X), repeats
        )
        told = _harness.best_of(
            lambda X=X, K=K: GaussianMixture(K, random_state=0).fit(X), repeats
        )
        sweep = _harness.best_of(
            lambda X=X: _references.fit_bic_sweep(X, 10, 0), repeats
        )
        sweep_k = _references.fit_bic_sweep(X, 10, 0).model.n_components
        records.append(
            {
                "data": name,
                "SparseGaussianMixture()": seconds,
                "GaussianMixture(K)": told,
                "BIC sweep 1..10": sweep,
            }
        )
        rows.append(
            [
                name,
                f"{X.shape[0]} x {X.shape[1]}",
                K,
                f"{seconds * 1e3:.0f}",
                f"{seconds / told:.1f}x",
                sweep_k,
                f"{seconds / sweep:.2f}x",
            ]
        )
        print("  ".join(str(cell) for cell in rows[-1]), flush=True)
    return rows, records


def plot(iteration_records, default_records, path):
    """Grouped bars: milliseconds per iteration, and per whole fit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, records, key, title in (
        (axes[0], iteration_records, "N", "one EM iteration, M=20, D=5"),
        (axes[1], default_records, "data", "whole fit (standardised data)"),
    ):
        methods = [name for name in records[0] if name != key]
        width = 0.8 / len(methods)
        for i, method in enumerate(methods):
            axis.bar(
                [j + i * width for j in range(len(records))],
                [record[method] * 1e3 for record in records],
                width,
                label=method,
            )
        axis.set_xticks(
            [j + 0.4 - width / 2 for j in range(len(records))],
            [f"{record[key]:,}" if key == "N" else record[key] for record in records],
            rotation=20 if key == "data" else 0,
        )
        axis.set(yscale="log", ylabel="milliseconds (log scale)", title=title)
        axis.legend(fontsize=7)
    axes[0].set_xlabel("training samples N")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _harness.add_common_arguments(parser, "the smallest case once: checks the script")
    args = parser.parse_args(argv)
    _harness.set_threads(1)
    header = _harness.header_lines(
        "bench_small: fixed cost on small data, per iteration, per fit and the "
        "defaults' whole fit; one thread",
        args.note,
    )
    repeats = 1 if args.quick else 3
    with warnings.catch_warnings():
        # tol=0 never converges, by design; the defaults may warn of data.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        iteration_rows, iteration_records = per_iteration_rows(
            (160,) if args.quick else (160, 2000), repeats
        )
        default_rows, default_records = defaults_rows(_datasets(args.quick), repeats)
    lines = [
        *header,
        "",
        f"per iteration: {N_COMPONENTS} components, D={N_FEATURES}, ms; fixed: a "
        "one-iteration fit minus one iteration, ms",
        "",
        _harness.table(
            [
                "N",
                "sparse_gmm",
                "bare torch",
                "scikit-learn",
                "sparse_gmm / bare",
                "fixed, sparse_gmm",
                "fixed, scikit-learn",
            ],
            iteration_rows,
        ),
        "",
        "defaults: SparseGaussianMixture()'s whole fit, ms, and as a multiple of "
        "GaussianMixture(K found) and of the BIC sweep over k = 1..10",
        "",
        _harness.table(
            ["data", "N x D", "K", "ms", "/ GM(K)", "sweep K", "/ sweep"],
            default_rows,
        ),
        "",
        *_harness.end_lines(),
    ]
    print("\n".join(lines))
    out = _harness.output_dir(args, STEM)
    _harness.write_lines(out / f"{STEM}.txt", lines)
    plot(iteration_records, default_records, out / f"{STEM}.png")
    print(f"written to {out / STEM}.png", flush=True)


if __name__ == "__main__":
    main()
