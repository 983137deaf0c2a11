"""``python -m sparse_gmm``: the ``sparse-gmm`` command line."""

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
