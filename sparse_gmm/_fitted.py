"""The one list of the attributes that a fit sets, and what each one is.

``SparseGaussianMixture._set_fitted`` sets exactly these,
:class:`~sparse_gmm.SparseGaussianMixtureCV` copies them from its refitted
model, and :func:`sparse_gmm.load` requires and checks them by their kind, so
a new fitted attribute is one line here (and its value in ``_set_fitted``).
``n_features_in_`` and ``feature_names_in_`` are not listed: scikit-learn's
``validate_data`` sets them, on the CV as on the estimator.

Kinds, as :func:`sparse_gmm.load` checks them:

``"parameter"``
    A float array in the training data's dtype, with scikit-learn's shape for
    the covariance type (``_persistence.parameter_shape``).
``"indices"``
    An integer array of shape ``(n_components_,)``.
``"curve"``
    A finite, real 1-d array (or list) with one entry per iteration,
    ``(n_iter_,)``.
``"count"``
    A non-negative Python or NumPy integer.
``"number"``
    A finite real number.
``"flag"``
    A boolean.
``"name"``
    A string.
"""

FITTED_ATTRIBUTES = {
    "weights_": "parameter",
    "means_": "parameter",
    "covariances_": "parameter",
    "precisions_": "parameter",
    "precisions_cholesky_": "parameter",
    "n_components_": "count",
    "active_components_": "indices",
    "converged_": "flag",
    "n_iter_": "count",
    "lower_bound_": "number",
    "lower_bounds_": "curve",
    "objective_": "number",
    "sparsity_": "number",
    "loss_curve_": "curve",
    "n_components_curve_": "curve",
    "time_curve_": "curve",
    "engine_": "name",
}
