"""The torch k-means against scikit-learn's, which it must reproduce."""

import numpy as np
import pytest
import torch
from sklearn import datasets
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.metrics import adjusted_rand_score

from sparse_gmm import _initialization
from sparse_gmm._covariance_prior import resolve_covariance_prior
from sparse_gmm._initialization import initial_parameters
from sparse_gmm._kmeans import _lloyd_centers, kmeans_labels
from sparse_gmm._kmeans import kmeans_plusplus as torch_kmeans_plusplus


def _blobs(n=3000, d=4, seed=0):
    return datasets.make_blobs(n, d, centers=6, random_state=seed)[0]


def _kmeans_start(X, weight, n_components, covariance_prior=None):
    return initial_parameters(
        X,
        weight,
        n_components=n_components,
        covariance_type="full",
        init_params="kmeans",
        reg_covar=1e-6,
        random_state=np.random.RandomState(0),
        covariance_prior=covariance_prior,
    )


def _real(name):
    # Measurements on a grid (wine's two decimals, iris' 0.1 cm) can put a
    # sample exactly halfway between two centres, where the rounding of each
    # library's distances decides, and rounding differs between CPUs (AVX2
    # and AVX-512 kernels). A jitter far below the grid's step breaks such
    # ties without moving any sample to another cluster.
    X = getattr(datasets, f"load_{name}")().data
    rng = np.random.default_rng(0)
    return X + 1e-7 * X.std(0) * rng.standard_normal(X.shape)


@pytest.mark.parametrize(
    "X",
    [_blobs(), _blobs(2000, 8, 1), _real("wine"), _real("breast_cancer")],
    ids=["blobs-4d", "blobs-8d", "wine", "breast_cancer"],
)
@pytest.mark.parametrize("n_clusters", [2, 7, 20])
@pytest.mark.parametrize("weighted", [False, True])
def test_labels_are_scikit_learns(X, n_clusters, weighted):
    rng = np.random.default_rng(n_clusters)
    weight = rng.integers(0, 3, len(X)).astype(float) if weighted else np.ones(len(X))
    for seed in range(2):
        expected = KMeans(
            n_clusters, n_init=1, random_state=np.random.RandomState(seed)
        ).fit(X, sample_weight=weight)
        labels = kmeans_labels(
            torch.as_tensor(X),
            torch.as_tensor(weight),
            n_clusters,
            np.random.RandomState(seed),
        )
        np.testing.assert_array_equal(labels.numpy(), expected.labels_)


@pytest.mark.parametrize("weighted", [False, True])
def test_seeding_is_scikit_learns(weighted):
    X = _real("iris")
    weight = np.linspace(0.5, 2.0, len(X)) if weighted else np.ones(len(X))
    for n_clusters in (3, 20):
        _, expected = kmeans_plusplus(
            X, n_clusters, random_state=np.random.RandomState(3), sample_weight=weight
        )
        indices = torch_kmeans_plusplus(
            torch.as_tensor(X),
            torch.as_tensor(weight),
            n_clusters,
            np.random.RandomState(3),
        )
        np.testing.assert_array_equal(indices, expected)


def test_float32_ends_at_a_lloyd_fixed_point_as_good_as_scikit_learns():
    # float32 sums round differently in each library, and over tens of Lloyd
    # iterations the two can end at different fixed points: the property
    # that holds on every platform is a fixed point of equal quality.
    X = _blobs(5000, 4).astype(np.float32)
    weight = np.ones(len(X), dtype=np.float32)
    labels = kmeans_labels(
        torch.as_tensor(X), torch.as_tensor(weight), 12, np.random.RandomState(0)
    ).numpy()
    X64 = X.astype(np.float64)
    centers = np.stack([X64[labels == k].mean(0) for k in range(12)])
    distances = ((X64[:, None, :] - centers[None]) ** 2).sum(-1)
    inertia = distances[np.arange(len(X)), labels].sum()
    assert inertia <= distances.min(1).sum() * (1 + 1e-5)
    expected = KMeans(12, n_init=1, random_state=np.random.RandomState(0)).fit(X)
    assert inertia <= expected.inertia_ * 1.05


def test_fewer_distinct_points_than_clusters_gives_their_partition():
    points = np.random.default_rng(0).normal(size=(5, 2))
    X = np.repeat(points, 10, axis=0)
    labels = kmeans_labels(
        torch.as_tensor(X),
        torch.ones(len(X), dtype=torch.float64),
        8,
        np.random.RandomState(0),
    ).numpy()
    assert labels.min() >= 0 and labels.max() < 8
    assert adjusted_rand_score(labels, np.repeat(np.arange(5), 10)) == 1.0


def test_an_empty_cluster_takes_the_farthest_sample():
    X = torch.tensor([[0.0], [1.0], [2.0], [10.0]], dtype=torch.float64)
    weight = torch.tensor([1.0, 1.0, 2.0, 1.0], dtype=torch.float64)
    centers = torch.tensor([[1.0], [5.0], [-50.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1])
    new = _lloyd_centers(X, weight, X * weight[:, None], labels, centers)
    # Cluster 2 is empty; the farthest sample from its centre is x=10
    # (distance 25 from 5), which leaves cluster 1 empty-handed at zero.
    np.testing.assert_allclose(new[:, 0].numpy(), [5.0 / 4.0, 0.0, 10.0])


def test_too_few_samples_is_a_value_error():
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=4"):
        kmeans_labels(
            torch.zeros((3, 2), dtype=torch.float64),
            torch.ones(3, dtype=torch.float64),
            4,
            np.random.RandomState(0),
        )


def test_an_accelerators_start_is_the_hosts(monkeypatch):
    # Without a GPU here, the accelerator's path is forced on the CPU: the
    # whole start (moments, MAP covariances) must be GaussianMixture's.
    X = _blobs(4000, 3)
    weight = np.ones(len(X))
    host = _kmeans_start(X, weight, 9)
    monkeypatch.setattr(_initialization, "_kmeans_on_host", lambda device: False)
    calls = []

    def spy(*args):
        calls.append(args)
        return kmeans_labels(*args)

    monkeypatch.setattr(_initialization, "kmeans_labels", spy)
    accelerator = _kmeans_start(X, weight, 9)
    assert len(calls) == 1
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        torch.testing.assert_close(
            getattr(accelerator, name), getattr(host, name), rtol=1e-12, atol=1e-12
        )


def test_a_device_tensors_start_is_numpys(monkeypatch):
    # On an accelerator the start's rows stay tensors on the device (the
    # CPU hands a NumPy view to scikit-learn): the moments, the k-means and
    # the automatic covariance prior's scale must not depend on which.
    X = _blobs(3000, 3)
    weight = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    monkeypatch.setattr(_initialization, "_kmeans_on_host", lambda device: False)
    priors, starts = [], []
    for rows, weights in ((X, weight), (torch.as_tensor(X), torch.as_tensor(weight))):
        prior = resolve_covariance_prior("auto", rows, weights, 8)
        priors.append(prior.scale)
        starts.append(_kmeans_start(rows, weights, 8, prior))
    torch.testing.assert_close(priors[1], priors[0], rtol=1e-12, atol=0)
    for name in ("weights", "means", "covariances"):
        torch.testing.assert_close(
            getattr(starts[1], name), getattr(starts[0], name), rtol=1e-10, atol=1e-12
        )
