"""The door to Dask: recognise its collections without importing it; import it later.

Dask is an optional dependency (``pip install sparse_gmm[dask]``), and
``import sparse_gmm`` must not pay for it, so nothing here imports dask at
module level: a Dask collection is recognised by the module its class comes
from, and dask itself is imported only once such a collection has arrived
(at which point the user has it installed). This is the only module that
imports ``dask`` and ``distributed``.
"""

from __future__ import annotations

from types import SimpleNamespace

_INSTALL_HINT = (
    "Dask input needs the 'dask' extra: pip install 'sparse_gmm[dask]' "
    "(dask[array] and distributed)."
)


def _dask_classes(obj):
    """The classes in ``type(obj).__mro__`` that Dask defines."""
    return [
        cls
        for cls in type(obj).__mro__
        if cls.__module__.split(".")[0] in ("dask", "dask_expr", "dask_cudf")
    ]


def is_dask_collection(obj) -> bool:
    """Whether ``obj`` is any Dask collection (array, data frame, delayed...)."""
    return bool(_dask_classes(obj))


def is_dask_array(obj) -> bool:
    """Whether ``obj`` is a ``dask.array.Array``."""
    return any(
        cls.__module__.startswith("dask.array") and cls.__name__ == "Array"
        for cls in _dask_classes(obj)
    )


def import_dask():
    """``dask`` and ``dask.array``, imported now.

    Returns
    -------
    types.SimpleNamespace
        With attributes ``dask`` and ``array``.

    Raises
    ------
    ImportError
        Naming the extra to install, if dask[array] is missing.
    """
    try:
        import dask
        import dask.array
    except ImportError as error:
        raise ImportError(f"{_INSTALL_HINT} ({error})") from error
    return SimpleNamespace(dask=dask, array=dask.array)


def distributed_client():
    """The ``distributed.Client`` that ``dask.compute`` would use now, or None.

    None when distributed is not installed, or when the scheduler in use is
    another one (dask's threads or processes, or one set with
    ``dask.config.set(scheduler=...)``): only a client that will run the
    computation can hold data scattered for it.
    """
    dask = import_dask().dask
    scheduler = dask.base.get_scheduler()
    client = getattr(scheduler, "__self__", None)
    if client is None or not type(client).__module__.startswith("distributed"):
        return None
    return client
