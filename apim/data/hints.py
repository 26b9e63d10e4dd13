"""Hints in the user's interface: ``--sep ';'`` on the command line, ``sep=';'`` in Python.

The command line sets the interface for the duration of a command; messages built with
:func:`option` then name the flag the user can type.

Examples
--------
>>> option("encoding", "cp1252")
"encoding='cp1252'"
>>> with interface("cli"):
...     option("encoding", "cp1252")
'--encoding cp1252'
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

__all__ = ["option", "interface", "current"]

Interface = Literal["python", "cli"]
_CURRENT: ContextVar[str] = ContextVar("apim_interface", default="python")


def current() -> str:
    """``"cli"`` inside the command line, else ``"python"``."""
    return _CURRENT.get()


@contextmanager
def interface(name: Interface) -> Iterator[None]:
    """Within the block, hints name the options of interface ``name``."""
    token = _CURRENT.set(name)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def option(name: str, value: str, python: str | None = None, flag: str | None = None) -> str:
    """How the user sets option ``name`` to ``value`` in the current interface
    (``python``: the keyword's value as Python code, default ``repr(value)``; ``flag``:
    the command line's option where its name differs, e.g. ``--bootstrap`` for
    ``n_boot``)."""
    if current() == "cli":
        return f"{flag or '--' + name.replace('_', '-')} {value}"
    return f"{name}={value!r}" if python is None else f"{name}={python}"
