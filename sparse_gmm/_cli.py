"""Command line: ``sparse-gmm demo`` and ``sparse-gmm fit FILE``.

Also reachable as ``python -m sparse_gmm``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from ._estimator import SparseGaussianMixture
from ._gaussian import COVARIANCE_TYPES

__all__ = ["main"]

PROG = "sparse-gmm"
EXIT_USAGE = 2


class DataError(Exception):
    """The input file cannot be turned into a 2-D numeric array."""


# --------------------------------------------------------------- loading


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _data_lines(text):
    """Non-blank lines that are not ``#`` comments, with their line numbers."""
    return [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _split(line, delimiter):
    if delimiter is None:
        return line.split()
    # csv handles quoted header names such as "height, cm".
    return [field.strip() for field in next(csv.reader([line], delimiter=delimiter))]


def _guess_delimiter(line):
    for delimiter in (",", ";", "\t"):
        if delimiter in line:
            return delimiter
    return None  # whitespace-separated


def _load_text(path):
    """Read a delimited text file; a first row that is not all numbers is a header.

    Returns
    -------
    X : ndarray of shape (n_rows, n_columns)
    names : list of str or None
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not a UTF-8 text file ({error.reason}).") from None
    lines = _data_lines(text)
    if not lines:
        raise DataError(f"{path} contains no data.")
    delimiter = _guess_delimiter(lines[0][1])
    names = None
    first = _split(lines[0][1], delimiter)
    if not all(_is_number(field) for field in first):
        names = first
        lines = lines[1:]
        if not lines:
            raise DataError(f"{path} has a header row but no data rows.")
    n_columns = len(names) if names is not None else len(first)
    rows = []
    for number, line in lines:
        fields = _split(line, delimiter)
        if len(fields) != n_columns:
            raise DataError(
                f"{path}, line {number}: expected {n_columns} columns, "
                f"found {len(fields)}."
            )
        try:
            rows.append([float(field) for field in fields])
        except ValueError:
            bad = next(field for field in fields if not _is_number(field))
            raise DataError(
                f"{path}, line {number}: {bad!r} is not a number."
            ) from None
    return np.array(rows, dtype=np.float64), names


def _load_npy(path):
    # numpy reports a file without its magic string as "pickled data", which
    # misleads; check the magic first.
    with path.open("rb") as file:
        if file.read(6) != b"\x93NUMPY":
            raise DataError(f"{path} is not a .npy file (no NumPy header).")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{path} is not a readable .npy file ({error}).") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path} does not hold a single array.")
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
    ):
        raise DataError(f"{path} holds {array.dtype} values; expected numbers.")
    return array.astype(np.float64, copy=False), None


def load_data(path):
    """Load a 2-D numeric array from a ``.npy`` or a delimited text (CSV) file.

    Text files may be separated by commas, semicolons, tabs or whitespace;
    blank lines and lines starting with ``#`` are skipped, and a first row
    that is not all numbers is taken as the column names.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        float64.
    names : list of str or None
        Column names from a header row, if there was one.

    Raises
    ------
    DataError
        If the file is missing or unreadable, is not numeric, or is not 2-D.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file.")
    if not path.is_file():
        raise DataError(f"{path} is not a file.")
    try:
        if path.suffix.lower() == ".npy":
            X, names = _load_npy(path)
        else:
            X, names = _load_text(path)
    except PermissionError:
        raise DataError(f"{path}: permission denied.") from None
    except OSError as error:
        raise DataError(f"{path} cannot be read ({error.strerror}).") from None
    if X.ndim != 2:
        hint = (
            " Save it as a column (X.reshape(-1, 1)) for 1 feature."
            if X.ndim == 1
            else ""
        )
        raise DataError(
            f"{path} holds a {X.ndim}-D array; expected 2-D data of shape "
            f"(n_samples, n_features).{hint}"
        )
    if X.size == 0:
        raise DataError(f"{path} holds an empty array of shape {X.shape}.")
    return X, names


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
