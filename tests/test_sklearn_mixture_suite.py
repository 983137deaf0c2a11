"""scikit-learn's own mixture tests, run against a drop-in GaussianMixture.

The tests are imported from the installed scikit-learn, not copied: each one
runs its own code with the name ``GaussianMixture`` bound to
:class:`GaussianMixture` below, a subclass of SparseGaussianMixture that only
sets GaussianMixture's defaults (one component, no sparsity, no covariance
prior, no pruning, no relaxed refit). With those, the fit is scikit-learn's EM,
stopping rule included.

Tests of scikit-learn's private helpers or private estimator methods are out of
scope and listed in ``OUT_OF_SCOPE`` with the reason; ``test_every_test_is_run``
checks that no test of scikit-learn's modules is left out silently.

The array-API tests run only with ``SCIPY_ARRAY_API=1`` (scikit-learn skips
them otherwise): ``tests/test_array_api.py`` runs them, NumPy and torch
cases, in a subprocess that sets it. The whole module costs about 10
CPU-seconds.
"""

import inspect
import types

import numpy as np
import pytest

pytest.register_assert_rewrite("sklearn.mixture.tests")

from sklearn.mixture.tests import test_gaussian_mixture, test_mixture  # noqa: E402

from sparse_gmm import SparseGaussianMixture  # noqa: E402


class GaussianMixture(SparseGaussianMixture):
    """SparseGaussianMixture with GaussianMixture's signature and defaults.

    Named as scikit-learn's class because its tests match messages that
    name the class (``This GaussianMixture instance is not fitted yet``).
    """

    # Fixed, not parameters: GaussianMixture has none of them.
    sparsity = 0.0
    covariance_prior = None
    prune_threshold = 0.0
    relax = False
    solver = "em"
    prior = "sqrt"
    learning_rate = 0.1
    acceleration = "squarem"
    merge_moves = True
    selection_samples = 20_000
    criterion = "bic"
    removal_moves = False
    engine = "auto"
    device = "auto"

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval


SKLEARN_MODULES = (test_gaussian_mixture, test_mixture)

_PRIVATE_HELPER = "tests scikit-learn's private helper {}, no estimator"

OUT_OF_SCOPE = {
    "test_suffstat_sk_full": _PRIVATE_HELPER.format(
        "_estimate_gaussian_covariances_full"
    ),
    "test_suffstat_sk_tied": _PRIVATE_HELPER.format(
        "_estimate_gaussian_covariances_tied"
    ),
    "test_suffstat_sk_diag": _PRIVATE_HELPER.format(
        "_estimate_gaussian_covariances_diag"
    ),
    "test_gaussian_suffstat_sk_spherical": _PRIVATE_HELPER.format(
        "_estimate_gaussian_covariances_spherical"
    ),
    "test_compute_log_det_cholesky": _PRIVATE_HELPER.format(
        "_compute_log_det_cholesky"
    ),
    "test_gaussian_mixture_log_probabilities": _PRIVATE_HELPER.format(
        "_estimate_log_gaussian_prob"
    ),
    "test_gaussian_mixture_precisions_init": (
        "calls GaussianMixture's private methods _set_parameters and _initialize"
    ),
    "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters": (
        "counts the calls of scikit-learn's private _estimate_gaussian_parameters"
    ),
    # Not a behaviour to copy: GaussianMixture cannot start from k-means under
    # array_api_dispatch; SparseGaussianMixture's k-means start runs on the
    # host whatever the input's namespace.
    "test_gaussian_mixture_raises_where_array_api_not_implemented": (
        "asserts GaussianMixture's NotImplementedError for a k-means start under "
        "array_api_dispatch, a limitation SparseGaussianMixture does not have"
    ),
}


def _bound_to_drop_in(test):
    """``test``'s own code, with ``GaussianMixture`` meaning the drop-in.

    A new function over the same code object, so scikit-learn's module is
    left untouched; its marks (parametrisations) are kept.
    """
    module_globals = dict(test.__globals__, GaussianMixture=GaussianMixture)
    bound = types.FunctionType(
        test.__code__, module_globals, test.__name__, test.__defaults__
    )
    bound.__doc__ = test.__doc__
    bound.pytestmark = [_collected(mark) for mark in getattr(test, "pytestmark", [])]
    return bound


def _collected(mark):
    """``mark`` with a parametrisation's values in a list.

    scikit-learn parametrises its array-API tests with a generator, which
    pytest reads only once (and deprecates).
    """
    if mark.name != "parametrize" or isinstance(mark.args[1], (list, tuple)):
        return mark
    names, values = mark.args[0], list(mark.args[1])
    return pytest.mark.parametrize(names, values, **mark.kwargs).mark


def _with_estimator_drop_in(test):
    """A test of test_mixture.py, parametrised with the drop-in alone.

    Those tests take GaussianMixture and BayesianGaussianMixture instances
    built when scikit-learn's module was imported.
    """
    bound = _bound_to_drop_in(test)
    bound.pytestmark = [
        mark
        for mark in bound.pytestmark
        if not (mark.name == "parametrize" and mark.args[0] == "estimator")
    ] + [pytest.mark.parametrize("estimator", [GaussianMixture()])]
    return bound


def _sklearn_tests(module):
    return {
        name: test
        for name, test in vars(module).items()
        if name.startswith("test_") and inspect.isfunction(test)
    }


for _name, _test in _sklearn_tests(test_gaussian_mixture).items():
    if _name not in OUT_OF_SCOPE:
        globals()[_name] = _bound_to_drop_in(_test)
for _name, _test in _sklearn_tests(test_mixture).items():
    if _name not in OUT_OF_SCOPE:
        globals()[_name] = _with_estimator_drop_in(_test)


@pytest.fixture
def global_random_seed():
    """scikit-learn's default seed for its seed-parametrised tests."""
    return 42


@pytest.fixture(params=[np.float64, np.float32], ids=["float64", "float32"])
def global_dtype(request):
    """Both dtypes, as scikit-learn runs them with SKLEARN_RUN_FLOAT32_TESTS=1."""
    return request.param


def test_every_test_is_run():
    """Each of scikit-learn's mixture tests runs here or is out of scope."""
    for module in SKLEARN_MODULES:
        for name in _sklearn_tests(module):
            assert name in OUT_OF_SCOPE or globals()[name].__code__ is (
                _sklearn_tests(module)[name].__code__
            )
