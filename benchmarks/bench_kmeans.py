"""The start's k-means: the torch version against scikit-learn's KMeans.

What is measured
----------------
``init_params='kmeans'`` (the default start) clusters the rows the
components are chosen on: at most ``selection_samples = 20,000`` of them in
a default fit, all of them when the sparsity is zero. It must give the
clustering ``GaussianMixture`` starts from, ``KMeans(K, n_init=1,
random_state=rs)``. ``sparse_gmm._kmeans.kmeans_labels`` is that algorithm
in torch, so that on a GPU the rows never leave it; ``_kmeans_on_host``
decides which one a fit runs. This script measures the rule's basis: on
blobs (``_harness.blobs``, 10 blobs) of N rows in D = 4 and 8 dimensions,
for K = 6 and 20 clusters, both run from the same ``RandomState`` in this
process, one after the other, with 1 thread and with 2, float64. For each it
prints the best of three times, their ratio (torch / scikit-learn: above 1
means scikit-learn is faster) and whether the labels are identical. Where
CUDA is available, the torch version also runs there, on the same rows.

Usage
-----
``python benchmarks/bench_kmeans.py`` (about a minute); ``--quick`` runs
one small case, a check that the script works. The table goes to stdout and
to ``bench_kmeans.txt`` in ``benchmarks/results/`` (``--out DIR``
elsewhere; ``--quick`` writes to a new temporary folder unless ``--out`` is
given). Every result file names the commit it came from.
"""

from __future__ import annotations

import argparse

import _harness
import numpy as np
import torch
from sklearn.cluster import KMeans

from sparse_gmm._kmeans import kmeans_labels

STEM = "bench_kmeans"
GRIDS = {
    "full": {"N": (2_000, 20_000, 200_000), "D": (4, 8), "K": (6, 20)},
    "quick": {"N": (500,), "D": (2,), "K": (3,)},
}


def _cases(quick):
    grid = GRIDS["quick" if quick else "full"]
    return [(N, D, K) for N in grid["N"] for D in grid["D"] for K in grid["K"]]


def _sklearn(X, weight, K):
    return KMeans(K, n_init=1, random_state=np.random.RandomState(0)).fit(
        X, sample_weight=weight
    )


def _torch(X, weight, K):
    labels = kmeans_labels(X, weight, K, np.random.RandomState(0))
    if X.is_cuda:
        torch.cuda.synchronize()
    return labels


def run(cases, threads):
    rows = []
    for N, D, K in cases:
        X = _harness.blobs(N, D)
        weight = np.ones(N)
        reference = _sklearn(X, weight, K)
        sklearn_s = _harness.best_of(lambda X=X, w=weight, K=K: _sklearn(X, w, K))
        X_t, weight_t = torch.as_tensor(X), torch.as_tensor(weight)
        labels = _torch(X_t, weight_t, K).numpy()
        torch_s = _harness.best_of(lambda X=X_t, w=weight_t, K=K: _torch(X, w, K))
        row = [
            threads,
            f"{N:,}",
            D,
            K,
            reference.n_iter_,
            f"{sklearn_s * 1e3:.1f}",
            f"{torch_s * 1e3:.1f}",
            f"{torch_s / sklearn_s:.2f}",
            "yes" if np.array_equal(labels, reference.labels_) else "NO",
        ]
        if torch.cuda.is_available():
            X_c, weight_c = X_t.cuda(), weight_t.cuda()
            cuda_s = _harness.best_of(lambda X=X_c, w=weight_c, K=K: _torch(X, w, K))
            same = np.array_equal(_torch(X_c, weight_c, K).cpu().numpy(), labels)
            row += [f"{cuda_s * 1e3:.1f}", f"{cuda_s / sklearn_s:.2f}", same]
        rows.append(row)
        print("  ".join(str(cell) for cell in row), flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _harness.add_common_arguments(parser, "one small case: checks that the script runs")
    args = parser.parse_args(argv)
    header = _harness.header_lines(
        "bench_kmeans: the start's k-means, torch against scikit-learn's KMeans "
        "(same draws), float64",
        args.note,
    )
    rows = []
    for threads in (1, 2):
        _harness.set_threads(threads)
        rows += run(_cases(args.quick), threads)
    columns = ["threads", "N", "D", "K", "Lloyd its", "sklearn ms", "torch ms"]
    columns += ["torch/sklearn", "same labels"]
    if torch.cuda.is_available():
        columns += ["cuda ms", "cuda/sklearn", "same on cuda"]
    lines = [
        *header,
        "",
        "best of 3 after a warm-up; ratio above 1: scikit-learn is faster",
        "",
        _harness.table(columns, rows),
        "",
        *_harness.end_lines(),
    ]
    print("\n".join(lines))
    _harness.write_lines(_harness.output_dir(args, STEM) / f"{STEM}.txt", lines)


if __name__ == "__main__":
    main()
