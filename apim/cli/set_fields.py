"""``--set FIELD=VALUE``: the fields of a data-generating process given on the command line
(``apim simulate`` and ``apim power``, for :class:`~apim.simulation.simulate.SimulationSpec`
and the dynamic APIM's ``DynamicSimulationSpec``), and whole numbers such as ``1e6``.

Examples
--------
>>> settings(["residual_phi=0.3", "partner_within=0.1,0.2"])
{'residual_phi': 0.3, 'partner_within': (0.1, 0.2)}
>>> settings(["residual_phi=high"])
Traceback (most recent call last):
...
apim.errors.SpecError: --set residual_phi=high: 'high' is not a valid residual_phi (a number, ...)
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, Union

from apim.errors import SpecError
from apim.simulation.simulate import SimulationSpec
from apim.specbase import Spec

__all__ = ["settings", "whole", "with_counts"]

_NUMBER = re.compile(r"[+-]?\d+")
_POWER_OF_TEN = re.compile(r"\+?(\d{1,6})[eE]\+?(\d{1,3})")
_HUGE = 10 ** 30  # larger counts are refused by the size checks anyway
_OWN_OPTION = {"family": "--family", "link": "--link", "thresholds": "--thresholds"}


def whole(option: str, text: str | None, lowest: int, what: str) -> int | None:
    """``text`` as a whole number >= ``lowest`` for ``option`` (None stays None); ``1e6``
    is read as 1000000 (and an absurd size such as ``1e12`` reaches the size checks,
    which say what it would need).

    Examples
    --------
    >>> whole("--replicates", "1e3", 1, "the number of replicates")
    1000
    """
    if text is None:
        return None
    text = text.strip()
    short = _POWER_OF_TEN.fullmatch(text)
    if short:
        value = int(short[1]) * 10 ** min(int(short[2]), 60)
        if value >= lowest:
            return min(value, _HUGE)
    elif _NUMBER.fullmatch(text) and len(text) <= 40 and int(text) >= lowest:
        return int(text)
    raise SpecError(f"{option} {text}: give {what} as a whole number >= {lowest}")


def _example(name: str, default: Any) -> str:
    if isinstance(default, tuple) and default and isinstance(default[0], tuple):
        return f"{name}={';'.join(','.join(str(v) for v in row) for row in default)}"
    if isinstance(default, tuple):
        return f"{name}={','.join(str(v) for v in default)}"
    if default is None:
        return {"treatment_labels": "treatment_labels=CBT,AFT", "decimals": "decimals=2",
                "bounds": "bounds=1,7"}.get(name, f"{name}=none")
    return f"{name}={str(default).lower() if isinstance(default, bool) else default}"


def _parse(text: str, hint: Any) -> Any:
    """``text`` as the type ``hint`` of a SimulationSpec field (ValueError if it is not)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if text.strip().lower() == "none" and type(None) in args:
            return None
        return _parse(text, next(a for a in args if a is not type(None)))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:  # numbers or rows
        rows = typing.get_origin(args[0]) is tuple
        return tuple(_parse(v.strip(), args[0]) for v in text.split(";" if rows else ","))
    if origin is tuple:
        items = [v.strip() for v in text.split(",")]
        if len(items) != len(args):
            raise ValueError(f"needs {len(args)} values separated by a comma")
        return tuple(_parse(v, a) for v, a in zip(items, args))
    if hint is bool:
        choices = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
        return choices[text.strip().lower()]
    if hint is int:
        if not _NUMBER.fullmatch(text.strip()):
            raise ValueError("a whole number")
        return int(text)
    if hint is float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("a finite number")
        return value
    if not text:
        raise ValueError("a non-empty text")
    return text


def _kind(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return _kind(next(a for a in args if a is not type(None))) + " or none"
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return ("rows of numbers separated by a comma, rows by ';'"
                if typing.get_origin(args[0]) is tuple else "numbers separated by a comma")
    if origin is tuple:
        return f"{len(args)} values separated by a comma"
    return {bool: "true or false", int: "a whole number", float: "a number"}.get(hint, "text")


def settings(pairs: Sequence[str] | None, kind: type[Spec] = SimulationSpec
             ) -> dict[str, Any]:
    """``FIELD=VALUE`` pairs (``--set``) as fields of the data-generating process ``kind``
    (:class:`SimulationSpec`, or the dynamic APIM's ``DynamicSimulationSpec``), each
    checked on its own."""
    hints = typing.get_type_hints(kind)
    defaults = kind().to_dict()
    valid = [f.name for f in fields(kind)]  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or name not in hints:
            import difflib

            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(f"--set {pair}: use FIELD=VALUE with a field of the simulation"
                            f"{hint}; fields: {', '.join(valid)}")
        if name in _OWN_OPTION and kind is SimulationSpec:
            raise SpecError(f"--set {pair}: {name} has its own option; use "
                            f"{_OWN_OPTION[name]}")
        if name in out:
            raise SpecError(f"--set {pair}: {name} is set twice; give each field once")
        default = defaults[name]
        default = _plain_tuple(default)
        try:
            parsed = _parse(value, hints[name])
        except (ValueError, KeyError, StopIteration):
            raise SpecError(f"--set {pair}: {value!r} is not a valid {name} "
                            f"({_kind(hints[name])}, e.g. {_example(name, default)})") from None
        try:
            kind(**{name: parsed})
        except SpecError as error:
            raise SpecError(f"--set {pair}: {error}") from None
        out[name] = parsed
    return out


def _plain_tuple(value: Any) -> Any:
    """A JSON list (of lists) as the tuple (of tuples) of a spec field."""
    return tuple(_plain_tuple(v) for v in value) if isinstance(value, list) else value


def with_counts(values: dict[str, Any], counts: dict[str, int | None]) -> dict[str, Any]:
    """The ``--set`` fields with the counts given by their own options (``--dyads``,
    ``--sessions``); a count set both ways is refused."""
    for name, count in counts.items():
        if count is None:
            continue
        if name in values:
            option = {"n_dyads": "--dyads", "n_sessions": "--sessions"}[name]
            raise SpecError(f"--set {name}={values[name]} and {option} {count} both set "
                            f"{name}; give it once")
        values[name] = count
    return values
