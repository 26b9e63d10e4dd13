"""What every frozen specification shares: typed fields, ``to_dict``/``from_dict``, a hash.

A specification is a frozen dataclass whose fields are checked against their type hints
on construction: ``interaction="False"`` is an error (not true), ``lag=True`` is an error
(not 1), lists become tuples, and a ``Literal`` field accepts only its choices. Specs
round-trip through plain JSON-ready dictionaries (for plan files and stored results) and
have a stable hash of that dictionary (for resumable runs).

Examples
--------
>>> from apim import APIMSpec, DecompositionSpec
>>> APIMSpec("outcome", ["alliance"]).predictors
('alliance',)
>>> spec = APIMSpec("outcome", ("alliance",), decomposition=DecompositionSpec(lag=1))
>>> APIMSpec.from_dict(spec.to_dict()) == spec
True
>>> spec.digest() == APIMSpec.from_dict(spec.to_dict()).digest()
True
>>> DecompositionSpec(lag=True)
Traceback (most recent call last):
...
apim.errors.SpecError: lag=True must be a whole number
>>> DecompositionSpec(center="latent")
Traceback (most recent call last):
...
apim.errors.SpecError: center='latent' is not one of 'person', 'therapist', 'grand', 'none'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union

from apim.errors import SpecError

__all__ = ["Spec", "type_hints"]

S = TypeVar("S", bound="Spec")


_HINTS: dict[type, dict[str, Any]] = {}


def type_hints(cls: type) -> dict[str, Any]:
    """The resolved type hints of a spec class (resolved once per class: resolving them
    takes about a millisecond, which a plan of thousands of analyses would pay per spec)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if origin is tuple:
        return "a list"
    if hint is type(None):
        return "None"
    return {bool: "true or false", int: "a whole number", float: "a number",
            str: "text"}.get(hint, getattr(hint, "__name__", str(hint)))


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` asks for, or a :class:`SpecError`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin is typing.Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        raise SpecError(f"{name}={value!r} is not one of {', '.join(repr(a) for a in args)}")
    if origin in (Union, types.UnionType):
        others = [a for a in args if a is not type(None)]
        if value is not None and len(others) == 1:  # optional field: the real type's message
            return _coerce(name, value, others[0])
        for option in args:
            try:
                return _coerce(name, value, option)
            except SpecError:
                continue
        raise SpecError(f"{name}={value!r} must be {_describe(hint)}")
    if hint is type(None):
        if value is None:
            return None
        raise SpecError(f"{name}={value!r} must be None")
    if origin is tuple:
        if isinstance(value, Mapping) and len(args) == 2 and args[1] is Ellipsis \
                and typing.get_origin(args[0]) is tuple:
            value = list(value.items())  # {column: level} for a tuple of pairs
        if isinstance(value, (str, bytes)) and args[:1] == (str,):
            value = (value,)  # one column name for a tuple of names
        if not isinstance(value, (tuple, list)):
            raise SpecError(f"{name}={value!r} must be {_describe(hint)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(name, v, args[0]) for v in value)
        if len(value) != len(args):
            raise SpecError(f"{name}={value!r} must have {len(args)} values")
        return tuple(_coerce(name, v, a) for v, a in zip(value, args))
    if isinstance(hint, type) and issubclass(hint, Spec):
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            return hint.from_dict(value)
        raise SpecError(f"{name}={value!r} must be a {hint.__name__}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise SpecError(f"{name}={value!r} must be true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu":
            return int(value)
        raise SpecError(f"{name}={value!r} must be a whole number")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iuf":
            return float(value)
        raise SpecError(f"{name}={value!r} must be a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise SpecError(f"{name}={value!r} must be text")
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Spec):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


class Spec:
    """Mixin for frozen dataclass specifications (see the module docstring)."""

    def __post_init__(self) -> None:
        hints = type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name in hints and f.init:
                value = _coerce(f.name, getattr(self, f.name), hints[f.name])
                object.__setattr__(self, f.name, value)
        self.check()

    def check(self) -> None:
        """Checks across fields (override); fields are already typed when it runs."""

    def replace(self: S, **changes: Any) -> S:
        """A copy with some fields changed (checked like a new spec)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dictionary of every field (nested specs as dictionaries)."""
        return {f.name: _plain(getattr(self, f.name))
                for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[S], values: Mapping[str, Any]) -> S:
        """The spec described by ``values`` (as written by :meth:`to_dict`)."""
        names = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
        unknown = sorted(set(values) - names)
        if unknown:
            raise SpecError(f"{cls.__name__} has no field {unknown[0]!r}; its fields are "
                            f"{', '.join(sorted(names))}")
        return cls(**dict(values))

    def digest(self) -> str:
        """Stable SHA-256 of :meth:`to_dict` (the same spec gives the same digest in any
        session and on any machine)."""
        text = json.dumps({"type": type(self).__name__, **self.to_dict()}, sort_keys=True,
                          separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
