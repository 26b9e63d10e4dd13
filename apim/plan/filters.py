"""Subset expressions of plan files, parsed with :mod:`ast` and evaluated without ``eval``.

Allowed: column names, numbers, text in quotes, ``true``/``false``, lists of those,
comparisons (``== != < <= > >=``, ``in``, ``not in``, chains like ``3 <= session <= 10``),
``and``, ``or``, ``not`` and parentheses. Anything else (calls, attributes, arithmetic,
subscripts) is refused with a :class:`~apim.errors.SpecError` before any data are read.
A comparison with a missing value is false.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"arm": ["CBT", "AFT", "CBT"], "session": [1, 5, 12]})
>>> expr = Filter.parse("arm == 'CBT' and session <= 10")
>>> expr.columns
('arm', 'session')
>>> expr.mask(frame).tolist()
[True, False, False]
>>> Filter.parse("session in [5, 12]").mask(frame).tolist()
[False, True, True]
>>> Filter.parse("__import__('os')")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
apim.errors.SpecError: subset "__import__('os')": a call is not allowed; ...
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from apim.errors import SpecError

__all__ = ["Filter"]

_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
            ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
_NAMES = {"true": True, "false": False, "True": True, "False": False}
_KIND = {ast.Call: "a call", ast.Attribute: "an attribute", ast.BinOp: "arithmetic",
         ast.Subscript: "a subscript", ast.Lambda: "a lambda", ast.Dict: "a dictionary",
         ast.JoinedStr: "an f-string", ast.NamedExpr: "an assignment"}


def _refuse(text: str, node: ast.AST) -> SpecError:
    kind = _KIND.get(type(node), type(node).__name__)
    return SpecError(f"subset {text!r}: {kind} is not allowed; use column names, values, "
                     "comparisons, and/or/not")


def _check(text: str, node: ast.AST, columns: list[str]) -> None:
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(text, v, columns)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(text, node.operand, columns)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
            and isinstance(node.operand, ast.Constant):
        return
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE and not isinstance(op, (ast.In, ast.NotIn)):
                raise _refuse(text, op)
        for part in [node.left, *node.comparators]:
            _check(text, part, columns)
    elif isinstance(node, ast.Name):
        if node.id not in _NAMES and node.id not in columns:
            columns.append(node.id)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (str, int, float, bool)) or node.value is None:
            raise SpecError(f"subset {text!r}: the value {node.value!r} is not allowed")
    elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        for e in node.elts:
            if isinstance(e, ast.Name) and e.id not in _NAMES:
                raise SpecError(f"subset {text!r}: list items must be values, not the "
                                f"column {e.id!r}")
            _check(text, e, columns)
    else:
        raise _refuse(text, node)


@dataclass(frozen=True)
class Filter:
    """A parsed subset expression; :meth:`mask` evaluates it on a table."""

    text: str
    columns: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Filter:
        """Parse and check ``text`` (no data needed)."""
        if not isinstance(text, str) or not text.strip():
            raise SpecError(f"subset {text!r} must be a non-empty expression such as "
                            "\"treatment == 'CBT'\"")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as error:
            raise SpecError(f"subset {text!r} is not a valid expression ({error.msg}); "
                            "write e.g. \"treatment == 'CBT' and session <= 10\"") from None
        columns: list[str] = []
        _check(text, tree.body, columns)
        return cls(text=text, columns=tuple(columns))

    def mask(self, frame: pd.DataFrame, names: Mapping[str, str] | None = None) -> pd.Series:
        """Boolean mask of the rows of ``frame`` the expression keeps.

        ``names`` maps the user's column names to the names in ``frame`` (e.g. the
        identifying columns of session data, stored as ``dyad``, ``session`` ...).
        """
        names = dict(names or {})
        missing = [c for c in self.columns if names.get(c, c) not in frame.columns]
        if missing:
            known = sorted({*[c for c in frame.columns if c != "row"], *names})
            raise SpecError(f"subset {self.text!r}: no column {missing[0]!r}; the data have "
                            f"{', '.join(map(str, known))}")
        tree = ast.parse(self.text.strip(), mode="eval")
        value = self._eval(tree.body, frame, names)
        if not isinstance(value, pd.Series):
            return pd.Series(bool(value), index=frame.index)
        return value.fillna(False).astype(bool)

    def _eval(self, node: ast.AST, frame: pd.DataFrame, names: dict[str, str]) -> Any:
        if isinstance(node, ast.BoolOp):
            parts = [self._eval(v, frame, names) for v in node.values]
            combined = parts[0]
            for p in parts[1:]:
                combined = (combined & p) if isinstance(node.op, ast.And) else (combined | p)
            return combined
        if isinstance(node, ast.UnaryOp):
            inner = self._eval(node.operand, frame, names)
            return -inner if isinstance(node.op, ast.USub) else ~_as_bool(inner, frame)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, frame, names)
            out: Any = True
            for op, right_node in zip(node.ops, node.comparators):
                right = self._eval(right_node, frame, names)
                out = out & _compare(op, left, right, self.text)
                left = right
            return out
        if isinstance(node, ast.Name):
            if node.id in _NAMES and node.id not in frame.columns:
                return _NAMES[node.id]
            return _values(frame[names.get(node.id, node.id)])
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return [self._eval(e, frame, names) for e in node.elts]
        raise _refuse(self.text, node)  # unreachable after parse()


def _values(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.astype(object)
    return column


def _as_bool(value: Any, frame: pd.DataFrame) -> pd.Series:
    if isinstance(value, pd.Series):
        return value.fillna(False).astype(bool)
    return pd.Series(bool(value), index=frame.index)


def _compare(op: ast.cmpop, left: Any, right: Any, text: str) -> Any:
    if isinstance(op, (ast.In, ast.NotIn)):
        if not isinstance(right, list):
            raise SpecError(f"subset {text!r}: 'in' needs a list on its right, "
                            "e.g. dyad in [1, 2, 3]")
        if not isinstance(left, pd.Series):
            return (left in right) != isinstance(op, ast.NotIn)
        hit = left.isin(right)
        return (~hit if isinstance(op, ast.NotIn) else hit) & left.notna()
    try:
        result = _COMPARE[type(op)](left, right)
    except TypeError:
        raise SpecError(f"subset {text!r}: cannot compare {left!r:.40} with {right!r:.40} "
                        "(text with numbers?)") from None
    if isinstance(result, pd.Series):
        missing = left.isna() if isinstance(left, pd.Series) else np.zeros(len(result), bool)
        return result & ~missing
    return result
