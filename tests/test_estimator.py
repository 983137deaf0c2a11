"""The estimator's contract beyond scikit-learn's generic checks."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.mixture import GaussianMixture

from sparse_gmm import SparseGaussianMixture

from .conftest import explicit_start, gaussian_mixture_sample


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_sample_weight_equals_repeated_rows(covariance_type):
    X, _ = gaussian_mixture_sample(n_samples=500, n_components=3, seed=1)
    counts = np.random.default_rng(0).integers(0, 4, len(X))
    start = explicit_start(X, 8, covariance_type)
    common = dict(covariance_type=covariance_type, sparsity=1.0, **start)
    # Iterate by iterate without the walk down: its re-convergences start
    # next to fixed points, where the last iteration's tiny change is
    # rounding, so the two fits may stop one iteration apart there.
    weighted = SparseGaussianMixture(8, criterion=None, **common).fit(
        X, sample_weight=counts
    )
    repeated = SparseGaussianMixture(8, criterion=None, **common).fit(
        np.repeat(X, counts, axis=0)
    )
    assert weighted.n_iter_ == repeated.n_iter_
    assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-10)
    assert_allclose(weighted.means_, repeated.means_, rtol=1e-9, atol=1e-9)
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-9)
    assert_allclose(
        weighted.score(X, sample_weight=counts),
        repeated.score(np.repeat(X, counts, axis=0)),
        rtol=1e-10,
    )
    # With it, the same size and (to the stopping tolerance) the same model.
    weighted = SparseGaussianMixture(8, **common).fit(X, sample_weight=counts)
    repeated = SparseGaussianMixture(8, **common).fit(np.repeat(X, counts, axis=0))
    assert weighted.n_components_ == repeated.n_components_
    assert_allclose(weighted.means_, repeated.means_, atol=1e-3)
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-3)


def test_fit_predict_matches_predict(blobs):
    model = SparseGaussianMixture(10, random_state=0)
    labels = model.fit_predict(blobs)
    np.testing.assert_array_equal(labels, model.predict(blobs))
    np.testing.assert_array_equal(labels, model.predict_proba(blobs).argmax(1))


def test_score_is_the_weighted_mean_log_density(blobs):
    model = SparseGaussianMixture(10, random_state=0).fit(blobs)
    weights = np.linspace(0, 1, len(blobs))
    assert_allclose(model.score(blobs), model.score_samples(blobs).mean())
    assert_allclose(
        model.score(blobs, sample_weight=weights),
        np.sum(weights * model.score_samples(blobs)) / weights.sum(),
    )
    # With the relaxed refit the final objective is unpenalised: minus the
    # training data's mean log-likelihood at the fitted parameters.
    assert_allclose(model.objective_, -model.score(blobs), rtol=1e-12)


def test_bic_and_aic_count_only_surviving_components(blobs):
    model = SparseGaussianMixture(20, sparsity=4.0, random_state=0).fit(blobs)
    assert model.n_components_ == 5
    # GaussianMixture with the survivors as its parameters has the same criteria.
    reference = GaussianMixture(5, max_iter=1)
    reference.weights_ = model.weights_
    reference.means_ = model.means_
    reference.covariances_ = model.covariances_
    reference.precisions_cholesky_ = model.precisions_cholesky_
    assert_allclose(model.bic(blobs), reference.bic(blobs), rtol=1e-12)
    assert_allclose(model.aic(blobs), reference.aic(blobs), rtol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_sample_draws_from_the_fitted_mixture(blobs, covariance_type):
    # criterion=None: the sparse fit's size, which a refit on the samples
    # reaches again; BIC's walks can differ by a component between the two
    # data sets where two components overlap.
    common = dict(sparsity=4.0, criterion=None, random_state=0)
    model = SparseGaussianMixture(10, covariance_type=covariance_type, **common).fit(
        blobs
    )
    X, y = model.sample(20000)
    assert X.shape == (20000, 2) and y.shape == (20000,)
    assert_allclose(np.bincount(y) / 20000, model.weights_, atol=0.015)
    for j in range(model.n_components_):
        assert_allclose(X[y == j].mean(0), model.means_[j], atol=0.1)
    refit = SparseGaussianMixture(10, covariance_type=covariance_type, **common).fit(X)
    assert abs(refit.score(X) - model.score(X)) < 0.02
    with pytest.raises(ValueError, match="at least one sample"):
        model.sample(0)


def test_n_init_keeps_the_lowest_objective(blobs):
    singles = [
        # n_init compares the sparse fits, before the relaxed refit.
        SparseGaussianMixture(10, init_params="random", relax=False, random_state=seed)
        for seed in range(3)
    ]
    best = SparseGaussianMixture(
        10, init_params="random", n_init=3, relax=False, random_state=0
    )
    best.fit(blobs)
    rng = np.random.RandomState(0)
    objectives = []
    for _ in range(3):
        # The n_init runs share one RandomState, drawn in sequence.
        model = clone(singles[0]).set_params(random_state=rng)
        objectives.append(model.fit(blobs).objective_)
    assert_allclose(best.objective_, min(objectives))


def test_warm_start_continues_from_the_survivors(blobs):
    # relax=False, criterion=None: the warm start continues the sparse fit's
    # own path.
    model = SparseGaussianMixture(
        20,
        sparsity=4.0,
        max_iter=3,
        warm_start=True,
        relax=False,
        criterion=None,
        random_state=0,
    )
    with pytest.warns(Warning, match="did not converge"):
        model.fit(blobs)
    first_curve = model.loss_curve_.copy()
    survivors = model.active_components_.copy()
    model.set_params(max_iter=300)
    model.fit(blobs)
    assert set(model.active_components_) <= set(survivors)
    assert model.loss_curve_[0] <= first_curve[-1]
    assert model.n_components_ == 5
    cold = SparseGaussianMixture(
        20, sparsity=4.0, relax=False, criterion=None, random_state=0
    )
    assert_allclose(model.objective_, cold.fit(blobs).objective_, rtol=1e-3)


def test_verbose_reports_start_end_and_progress(blobs, capsys):
    fitted = SparseGaussianMixture(10, verbose=1, random_state=0).fit(blobs)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Initialization 0: 10 components")
    assert "converged after" in out[1] and "components" in out[1]
    # One line per size the walk down tried, then the size it kept; the
    # walk up's sizes (if one scored better); which of the two starts at
    # the chosen size the fit kept.
    chosen = [i for i, line in enumerate(out) if line.startswith("Walk down kept")]
    assert len(chosen) == 1
    walk = out[2 : chosen[0]]
    assert walk and all(line.startswith("  Walk down:") for line in walk)
    assert all(" BIC " in line for line in walk + out[chosen[0] + 1 : -2])
    assert all(
        line.startswith(("  Walk up:", "Walk up kept"))
        for line in out[chosen[0] + 1 : -2]
    )
    assert f"kept {fitted.n_components_} components (lowest BIC)" in " ".join(
        out[chosen[0] : -2]
    )
    assert out[-2].startswith(("Kept the walk's fit", "Kept the fresh start's fit"))
    assert out[-1].startswith("Relaxed refit converged after")
    model = SparseGaussianMixture(
        10,
        verbose=2,
        verbose_interval=5,
        tol=0,
        max_iter=20,
        relax=False,
        criterion=None,
        # Merges would converge these 20 iterations early.
        merge_moves=False,
        random_state=0,
    )
    with pytest.warns(Warning):
        model.fit(blobs)
    lines = capsys.readouterr().out.splitlines()
    progress = [line for line in lines if "Iteration" in line]
    assert [int(line.split()[1].rstrip(":")) for line in progress] == [5, 10, 15, 20]
    assert all("objective" in line and "active components" in line for line in progress)
    assert all(line.rstrip().endswith(" s") for line in progress)


def test_max_iter_zero_returns_the_start(blobs):
    model = SparseGaussianMixture(6, max_iter=0, random_state=0).fit(blobs)
    assert model.n_iter_ == 0 and model.loss_curve_.shape == (0,)
    assert model.n_components_ == 6 and not model.converged_


def test_clone_and_get_params_round_trip():
    model = SparseGaussianMixture(7, sparsity=3.0, covariance_type="diag")
    params = clone(model).get_params()
    assert params["n_components"] == 7 and params["sparsity"] == 3.0
    with pytest.raises(TypeError):
        SparseGaussianMixture(7, 3.0)  # keyword-only after n_components


def test_a_warm_start_needs_rows_for_its_survivors_not_for_n_components(blobs):
    model = SparseGaussianMixture(20, warm_start=True, random_state=0).fit(blobs)
    survivors = model.n_components_
    assert survivors == 5
    # Fewer rows than n_components, more than the survivors it continues.
    model.fit(blobs[:12])
    assert model.n_components_ <= survivors
    again = SparseGaussianMixture(20, warm_start=True, random_state=0).fit(blobs)
    with pytest.raises(ValueError, match="Expected n_samples >= n_components"):
        again.fit(blobs[:4])
