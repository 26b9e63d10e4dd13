"""BLAS threads during a fit.

The engine's linear algebra is many small matrices (per dyad or per cluster) and
memory-bound sums, where a second BLAS thread does not help; on a busy machine, spinning
BLAS threads make a fit several times slower. So a fit runs with one BLAS thread when
``threadpoolctl`` is installed (otherwise as configured, e.g. by ``OPENBLAS_NUM_THREADS``),
and restores the setting afterwards. Where the environment already holds every BLAS to one
thread (``OMP_NUM_THREADS=1`` with no BLAS-specific variable above 1, or
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``BLIS_NUM_THREADS`` all 1, as Dask's
workers set them), threadpoolctl is not loaded at all: finding the loaded libraries costs
about 8 ms, a tenth of a small fit, and the limit would change nothing.

Examples
--------
>>> @one_blas_thread
... def add(a, b):
...     return a + b
>>> add(1, 2)
3
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["one_blas_thread"]

F = TypeVar("F", bound=Callable[..., Any])


_CONTROLLER: list[Any] = []  # found once: looking up the loaded libraries takes ~15 ms


_BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "MKL_NUM_THREADS",
                   "BLIS_NUM_THREADS")


def one_thread_already(environ: Any = os.environ) -> bool:
    """Whether the environment holds every BLAS library to one thread.

    Examples
    --------
    >>> one_thread_already({"OMP_NUM_THREADS": "1"})
    True
    >>> one_thread_already({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "4"})
    False
    >>> one_thread_already({"OPENBLAS_NUM_THREADS": "1"})  # MKL or BLIS could use more
    False
    >>> one_thread_already({"OMP_NUM_THREADS": "1", "MKL_DOMAIN_NUM_THREADS": "MKL_BLAS=2"})
    False
    """
    def one(name: str) -> bool:
        return environ.get(name, "").strip() == "1"

    if environ.get("MKL_DOMAIN_NUM_THREADS", "").strip():  # per-domain MKL settings
        return False
    specific = [environ.get(name, "").strip() for name in _BLAS_VARIABLES]
    if one("OMP_NUM_THREADS"):
        return all(value in ("", "1") for value in specific)
    return all(one(name) for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                      "BLIS_NUM_THREADS"))


def _limits() -> contextlib.AbstractContextManager[Any]:
    if one_thread_already():
        return contextlib.nullcontext()
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: without it, BLAS keeps its own setting
        return contextlib.nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def one_blas_thread(func: F) -> F:
    """Run ``func`` with one BLAS thread (see the module docstring)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _limits():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
