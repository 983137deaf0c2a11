"""Command line: ``sparse-gmm demo`` and ``sparse-gmm fit FILE``.

Also reachable as ``python -m sparse_gmm``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ._estimator import SparseGaussianMixture
from ._gaussian import COVARIANCE_TYPES
from ._io import DataError, load_data

__all__ = ["main"]

PROG = "sparse-gmm"
EXIT_USAGE = 2


# ------------------------------------------------------------- commands


def _standard_deviations(model):
    """Per-feature standard deviation of each component, any covariance type."""
    covariances = model.covariances_.astype(np.float64)
    n_components, n_features = model.means_.shape
    if model.covariance_type == "full":
        variances = np.diagonal(covariances, axis1=1, axis2=2)
    elif model.covariance_type == "tied":
        variances = np.broadcast_to(np.diag(covariances), (n_components, n_features))
    elif model.covariance_type == "diag":
        variances = covariances
    else:
        variances = np.broadcast_to(covariances[:, None], (n_components, n_features))
    return np.sqrt(variances)


def format_components(model, names=None):
    """The fitted components as a text table: index, weight, means, std's.

    Parameters
    ----------
    model : fitted SparseGaussianMixture
    names : list of str, optional
        Feature names for the column headings; ``x0, x1, ...`` by default.

    Returns
    -------
    str
    """
    n_features = model.means_.shape[1]
    if names is None:
        names = [f"x{d}" for d in range(n_features)]
    headings = (
        ["component", "weight"]
        + [f"mean[{name}]" for name in names]
        + [f"std[{name}]" for name in names]
    )
    stds = _standard_deviations(model)
    rows = [
        [str(j), f"{model.weights_[j]:.4f}"]
        + [f"{value:.6g}" for value in model.means_[j]]
        + [f"{value:.6g}" for value in stds[j]]
        for j in range(model.n_components_)
    ]
    widths = [
        max(len(heading), *(len(row[k]) for row in rows))
        for k, heading in enumerate(headings)
    ]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in [headings, *rows]
    )


def _fit_command(args):
    X, names = load_data(args.file)
    model = SparseGaussianMixture(
        n_components=args.n_components,
        sparsity=args.sparsity,
        covariance_type=args.covariance_type,
        max_iter=args.max_iter,
        random_state=args.random_state,
        verbose=args.verbose,
    )
    model.fit(X)
    print(
        f"Fitted {args.file}: {X.shape[0]} samples, {X.shape[1]} features, "
        f"{args.covariance_type} covariances, sparsity {args.sparsity:g}; "
        f"kept {model.n_components_} of {args.n_components} components."
    )
    print(format_components(model, names))
    print(f"n_components_ = {model.n_components_}")
    print(f"lower_bound_ = {model.lower_bound_:.6f}  (mean log-likelihood)")
    print(f"converged_ = {model.converged_}  (after {model.n_iter_} iterations)")
    return 0


def _demo_command(args):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise DataError(
            "the demo needs matplotlib: pip install 'sparse_gmm[demo]'."
        ) from None
    from ._demo import run_demo

    run_demo(
        args.out,
        n_components=args.n_components,
        sparsity=args.sparsity,
        random_state=args.random_state,
    )
    return 0


def _parser():
    from ._demo import DEMO_SPARSITY

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Gaussian mixtures that choose their number of components.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="fit the KeOps tutorial's spiral and write figures",
        description="Fit the KeOps tutorial's spiral, compare with "
        "GaussianMixture, and write spiral_density.png and "
        "spiral_convergence.png.",
    )
    demo.add_argument(
        "--out",
        default="sparse_gmm_demo",
        metavar="DIR",
        help="folder for the figures (default: %(default)s)",
    )
    demo.add_argument(
        "--n-components",
        type=int,
        default=30,
        metavar="N",
        help="starting number of components (default: %(default)s)",
    )
    demo.add_argument(
        "--sparsity",
        type=float,
        default=DEMO_SPARSITY,
        metavar="S",
        help="strength of the sparsity prior (default: %(default)s)",
    )
    demo.add_argument(
        "--random-state",
        type=int,
        default=0,
        metavar="SEED",
        help="seed of the initialisation (default: %(default)s)",
    )
    demo.set_defaults(handler=_demo_command)

    fit = commands.add_parser(
        "fit",
        help="fit a data file and print the components",
        description="Fit a SparseGaussianMixture to FILE (.npy, or CSV/text "
        "with an optional header row) and print the surviving components.",
    )
    fit.add_argument("file", metavar="FILE", help=".npy or CSV file")
    defaults = SparseGaussianMixture()
    fit.add_argument(
        "--n-components",
        type=int,
        default=defaults.n_components,
        metavar="N",
        help="starting number of components (default: %(default)s)",
    )
    fit.add_argument(
        "--sparsity",
        type=float,
        default=defaults.sparsity,
        metavar="S",
        help="strength of the sparsity prior (default: %(default)s)",
    )
    fit.add_argument(
        "--covariance-type",
        choices=COVARIANCE_TYPES,
        default=defaults.covariance_type,
        help="covariance structure, as in GaussianMixture (default: %(default)s)",
    )
    fit.add_argument(
        "--max-iter",
        type=int,
        default=defaults.max_iter,
        metavar="N",
        help="maximum number of iterations (default: %(default)s)",
    )
    fit.add_argument(
        "--random-state",
        type=int,
        default=None,
        metavar="SEED",
        help="seed of the initialisation (default: random)",
    )
    fit.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="print progress (twice: every few iterations)",
    )
    fit.set_defaults(handler=_fit_command)
    return parser


def main(argv=None):
    """Run the ``sparse-gmm`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status: 0 on success, 2 for a bad input file or parameter
        (with a one-line message on stderr). Malformed command lines make
        argparse exit with status 2 itself.
    """
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except (DataError, ValueError) as error:
        # One line: scikit-learn's messages sometimes span several.
        message = " ".join(str(error).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
