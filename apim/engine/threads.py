"""BLAS threads during a fit.

The engine's linear algebra is many small matrices (per dyad or per cluster) and
memory-bound sums, where a second BLAS thread does not help; on a busy machine, spinning
BLAS threads make a fit several times slower. So a fit runs with one BLAS thread when
``threadpoolctl`` is installed (otherwise as configured, e.g. by ``OPENBLAS_NUM_THREADS``),
and restores the setting afterwards.

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
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["one_blas_thread"]

F = TypeVar("F", bound=Callable[..., Any])


_CONTROLLER: list[Any] = []  # found once: looking up the loaded libraries takes ~15 ms


def _limits() -> contextlib.AbstractContextManager[Any]:
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
