"""Command line: ``sparse-gmm demo`` and ``sparse-gmm fit FILE``.

Also reachable as ``python -m sparse_gmm``. The parser imports neither torch
nor the estimator (seconds of imports), so ``--help`` and ``--version``
answer at once; the commands import them when they run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import __version__
from ._demo import DEMO_FIGURES, DEMO_SPARSITY
from ._io import DataError, load_data

__all__ = ["main"]

PROG = "sparse-gmm"
EXIT_USAGE = 2

#: SparseGaussianMixture's defaults for the options of ``fit``, quoted by
#: ``--help`` (tests/test_cli.py checks them against the estimator's). The
#: options default to None, so an option not given leaves the estimator's own
#: default in force.
FIT_DEFAULTS = {
    "n_components": 20,
    "sparsity": "auto",
    "covariance_type": "full",
    "max_iter": 1000,
}


def _sparsity(text):
    """``--sparsity``: 'auto' or a number."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or 'auto', got {text!r}"
        ) from None


#: The estimator's covariance types (``_gaussian.COVARIANCE_TYPES``).
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

#: ``--delimiter`` words for delimiters awkward to type in a shell.
_DELIMITER_WORDS = {"tab": "\t", "\\t": "\t", "whitespace": "whitespace"}


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


def _check_output_folder(path, option):
    """Refuse an output path whose folder is missing before a long fit."""
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise DataError(f"{option} {path}: the folder {folder} does not exist.")


def _write_labels(path, labels):
    """One label per line, or a .npy array if ``path`` ends in ``.npy``."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        np.save(path, labels.astype(np.int64))
    else:
        path.write_text("".join(f"{label}\n" for label in labels.tolist()))


def _fit_command(args):
    for path, option in ((args.labels, "--labels"), (args.save, "--save")):
        if path is not None:
            _check_output_folder(path, option)
    if args.save is not None:
        # Before a long fit, as the folders are.
        from ._persistence import skops_io

        try:
            skops_io()
        except ImportError as error:
            raise DataError(f"--save {args.save}: {error}") from None
    X, names = load_data(args.file, delimiter=args.delimiter)
    from ._estimator import SparseGaussianMixture

    given = {
        name: getattr(args, name)
        for name in FIT_DEFAULTS
        if getattr(args, name) is not None
    }
    model = SparseGaussianMixture(
        **given, random_state=args.random_state, verbose=args.verbose
    )
    model.fit(X)
    print(
        f"Fitted {args.file}: {X.shape[0]} samples, {X.shape[1]} features, "
        f"{model.covariance_type} covariances, sparsity {model.sparsity_:g}; "
        f"kept {model.n_components_} of {model.n_components} components."
    )
    print(format_components(model, names))
    print(f"n_components_ = {model.n_components_}")
    print(
        f"lower_bound_ = {model.lower_bound_:.6f}  (minus the objective before "
        "the last iteration's M-step)"
    )
    print(f"converged_ = {model.converged_}  (after {model.n_iter_} iterations)")
    try:
        if args.labels is not None:
            _write_labels(args.labels, model.predict(X))
            print(f"Labels written to {args.labels}")
        if args.save is not None:
            from ._persistence import save

            save(model, args.save)
            print(f"Model saved to {args.save}")
    except OSError as error:
        raise DataError(
            f"cannot write {error.filename or 'the output'} ({error.strerror})."
        ) from None
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


def _delimiter(text):
    """``--delimiter``'s type: one character, ``tab`` or ``whitespace``."""
    delimiter = _DELIMITER_WORDS.get(text.lower(), text)
    if delimiter != "whitespace" and len(delimiter) != 1:
        raise argparse.ArgumentTypeError(
            f"expected one character, 'tab' or 'whitespace', got {text!r}"
        )
    return delimiter


def _parser():
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Gaussian mixtures that choose their number of components.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="fit the KeOps tutorial's spiral and write figures",
        description="Fit the KeOps tutorial's spiral, compare with "
        "GaussianMixture and print a table, and write three figures into DIR: "
        + "; ".join(f"{name} ({what})" for name, what in DEMO_FIGURES.items())
        + ".",
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
        type=_sparsity,
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
        "with an optional header row) and print the surviving components; "
        "optionally write each row's component and the fitted model.",
    )
    fit.add_argument("file", metavar="FILE", help=".npy or CSV file")
    fit.add_argument(
        "--delimiter",
        type=_delimiter,
        default=None,
        metavar="D",
        help="the text file's delimiter: one character, 'tab' or 'whitespace' "
        "(default: of ',', ';', tab and whitespace, the first that splits the "
        "first data row into the most numbers)",
    )
    fit.add_argument(
        "--n-components",
        type=int,
        metavar="N",
        help=f"starting number of components (default: {FIT_DEFAULTS['n_components']})",
    )
    fit.add_argument(
        "--sparsity",
        type=_sparsity,
        metavar="S",
        help=(
            "strength of the sparsity prior, a number or 'auto' "
            f"(default: {FIT_DEFAULTS['sparsity']})"
        ),
    )
    fit.add_argument(
        "--covariance-type",
        choices=COVARIANCE_TYPES,
        help="covariance structure, as in GaussianMixture "
        f"(default: {FIT_DEFAULTS['covariance_type']})",
    )
    fit.add_argument(
        "--max-iter",
        type=int,
        metavar="N",
        help=f"maximum number of iterations (default: {FIT_DEFAULTS['max_iter']})",
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
    fit.add_argument(
        "--labels",
        metavar="FILE",
        help="write each row's component (the index in the printed table) to "
        "FILE: a .npy array if FILE ends in .npy, else one label per line",
    )
    fit.add_argument(
        "--save",
        metavar="MODEL",
        help="save the fitted model to MODEL with sparse_gmm.save, in skops' "
        "format (read it back with sparse_gmm.load; .skops is the customary "
        "extension; needs the 'persist' extra)",
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
