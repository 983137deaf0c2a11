"""Choosing the components on a sample of the rows, then refitting on all."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sparse_gmm import SparseGaussianMixture
from sparse_gmm._model_size import auto_sparsity

from .conftest import gaussian_mixture_sample


@pytest.fixture(scope="module")
def data():
    X, _ = gaussian_mixture_sample(n_samples=3000, n_components=4, seed=6)
    return X


def test_the_fit_is_the_samples_choice_refitted_on_all_rows(data):
    X = data
    model = SparseGaussianMixture(selection_samples=1000, random_state=0).fit(X)
    # The same draws by hand: 1000 rows, then the fit's own k-means start,
    # from one random stream; then maximum likelihood on every row from the
    # sample's components.
    random_state = np.random.RandomState(0)
    rows = np.sort(random_state.choice(len(X), 1000, replace=False))
    chosen = SparseGaussianMixture(
        selection_samples=None, relax=False, random_state=random_state
    ).fit(X[rows])
    refit = SparseGaussianMixture(
        chosen.n_components_,
        sparsity=0.0,
        covariance_prior=None,
        weights_init=chosen.weights_,
        means_init=chosen.means_,
        precisions_init=chosen.precisions_,
    ).fit(X)
    assert model.n_components_ == chosen.n_components_ == 4
    assert_allclose(model.means_, refit.means_, rtol=1e-6, atol=1e-8)
    assert_allclose(model.weights_, refit.weights_, rtol=1e-6)
    assert model.score(X) == pytest.approx(refit.score(X), rel=1e-9)
    # The sample chose: its automatic sparsity is the one reported.
    assert model.sparsity_ == pytest.approx(auto_sparsity(1000, 2, 20, "full"))


def test_without_relax_the_penalised_fit_runs_on_all_rows(data, capsys):
    X = data
    model = SparseGaussianMixture(
        selection_samples=1000, relax=False, verbose=1, random_state=0
    ).fit(X)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Choosing the components on 1000 of 3000 samples")
    assert out[-1].startswith("Refit on all samples converged after")
    assert model.n_components_ == 4
    assert model.sparsity_ == pytest.approx(auto_sparsity(len(X), 2, 20, "full"))


def test_fewer_rows_than_the_sample_choose_on_all_of_them(data):
    X = data[:800]
    sampled = SparseGaussianMixture(selection_samples=1000, random_state=0).fit(X)
    everything = SparseGaussianMixture(selection_samples=None, random_state=0).fit(X)
    assert_allclose(sampled.means_, everything.means_)
    assert sampled.n_iter_ == everything.n_iter_


def test_a_sample_smaller_than_the_start_is_refused(data):
    model = SparseGaussianMixture(20, selection_samples=10)
    with pytest.raises(ValueError, match="selection_samples=10 is below"):
        model.fit(data)
    assert not hasattr(model, "weights_")
