"""Reading a user's data file (CSV or .npy) into a 2-D float array."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["AUTO_DELIMITERS", "DataError", "delimiter_name", "load_data"]


class DataError(Exception):
    """The input file cannot be turned into a 2-D numeric array."""


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


#: The delimiters tried, in this order, when none is given; "whitespace" is
#: any run of spaces and tabs.
AUTO_DELIMITERS = (",", ";", "\t", "whitespace")

_DELIMITER_NAMES = {"\t": "tab", "whitespace": "whitespace"}


def delimiter_name(delimiter):
    """How a delimiter is written in messages: ``','``, ``tab``, ``whitespace``."""
    return _DELIMITER_NAMES.get(delimiter, repr(delimiter))


def _split(line, delimiter):
    if delimiter == "whitespace":
        return line.split()
    # csv handles quoted header names such as "height, cm".
    return [field.strip() for field in next(csv.reader([line], delimiter=delimiter))]


def _first_rows(lines, delimiter):
    """The header (or None) and the first data row, split by ``delimiter``."""
    first = _split(lines[0][1], delimiter)
    if all(_is_number(field) for field in first):
        return None, first
    if len(lines) < 2:
        return first, None
    return first, _split(lines[1][1], delimiter)


def _guess_delimiter(path, lines):
    """The delimiter that splits the first data row into the most numbers.

    A delimiter qualifies when the first data row (after a header, if the
    first row is not all numbers) splits into numbers only, as many as the
    header has names. Guessing from the first line's characters alone misread
    a ``;``-separated file whose header holds a comma, and a file separated by
    anything else, as a one-column header followed by a bad row.
    """
    best, best_count = None, 0
    for delimiter in AUTO_DELIMITERS:
        header, row = _first_rows(lines, delimiter)
        if row is None:
            # A lone header row: any delimiter will do for the error to come.
            return delimiter
        if not row or not all(_is_number(field) for field in row):
            continue
        if header is not None and len(header) != len(row):
            continue
        if len(row) > best_count:
            best, best_count = delimiter, len(row)
    if best is None:
        number, line = lines[1] if len(lines) > 1 else lines[0]
        shown = line if len(line) <= 60 else line[:57] + "..."
        tried = ", ".join(delimiter_name(d) for d in AUTO_DELIMITERS)
        raise DataError(
            f"{path}: cannot split line {number} ({shown!r}) into numbers with "
            f"any of the delimiters {tried}. Name the file's delimiter with "
            "--delimiter (decimal commas are not supported)."
        )
    return best


def _load_text(path, delimiter=None):
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
    if delimiter is None:
        delimiter = _guess_delimiter(path, lines)
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
                f"found {len(fields)} (delimiter {delimiter_name(delimiter)})."
            )
        try:
            rows.append([float(field) for field in fields])
        except ValueError:
            bad = next(field for field in fields if not _is_number(field))
            raise DataError(
                f"{path}, line {number}: {bad!r} is not a number "
                f"(delimiter {delimiter_name(delimiter)})."
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


def load_data(path, delimiter=None):
    """Load a 2-D numeric array from a ``.npy`` or a delimited text (CSV) file.

    Text files may be separated by commas, semicolons, tabs or whitespace;
    blank lines and lines starting with ``#`` are skipped, and a first row
    that is not all numbers is taken as the column names.

    Parameters
    ----------
    path : path-like
    delimiter : str, optional
        The text file's delimiter: one character, or ``"whitespace"`` for
        runs of spaces and tabs. By default, the first of ``,``, ``;``, tab
        and whitespace that splits the first data row into the most numbers
        (and as many as the header has names); a file that none of them
        splits into numbers is refused. Ignored for ``.npy`` files.

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
    if delimiter is not None and delimiter != "whitespace" and len(delimiter) != 1:
        raise DataError(
            f"the delimiter must be one character or 'whitespace', got {delimiter!r}."
        )
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file.")
    if not path.is_file():
        raise DataError(f"{path} is not a file.")
    try:
        if path.suffix.lower() == ".npy":
            X, names = _load_npy(path)
        else:
            X, names = _load_text(path, delimiter)
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
