"""SPSS variable-name rules, checked before a ``.sav`` file is written.

Examples
--------
>>> check_spss_names(["dyad", "alliance_p"], "out.sav")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from apim.errors import DataError

__all__ = ["check_spss_names"]


SPSS_RESERVED = frozenset({"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR",
                           "TO", "WITH"})
SPSS_NAME_BYTES = 64


def _spss_problem(name: str) -> str | None:
    """Why ``name`` cannot be an SPSS variable name, or None."""
    if not name:
        return "it is empty"
    if not name[0].isalpha():
        return f"it begins with {name[0]!r}, not a letter"
    bad = [c for c in name if not (c.isalnum() or c in "._$#@")]
    if bad:
        return "it holds a space" if bad[0].isspace() else f"it holds {bad[0]!r}"
    if name.endswith("."):
        return "it ends with a period"
    if name.upper() in SPSS_RESERVED:
        return "it is a reserved word"
    if len(name.encode("utf-8")) > SPSS_NAME_BYTES:
        return f"it is {len(name.encode('utf-8'))} bytes long"
    return None


def check_spss_names(columns: Sequence[object], path: str | Path) -> None:
    """Check column names against SPSS's rules before a ``.sav`` file is written.

    SPSS variable names begin with a letter, hold only letters, digits and ``. _ $ # @``,
    do not end with a period, are at most 64 bytes (UTF-8), are not one of the reserved
    words (ALL, AND, BY, EQ, GE, GT, LE, LT, NE, NOT, OR, TO, WITH) and differ from each
    other in more than letter case.

    Raises
    ------
    DataError
        Naming the first column that breaks a rule, the rule and the fix.

    Examples
    --------
    >>> check_spss_names(["dyad", "alliance.t1", "Qualität"], "out.sav")
    >>> check_spss_names(["dyad", "my score"], "out.sav")
    Traceback (most recent call last):
    ...
    apim.errors.DataError: cannot write 'out.sav': column 'my score' is not a valid SPSS ...
    """
    rules = ("SPSS names begin with a letter, hold only letters, digits and . _ $ # @, at "
             f"most {SPSS_NAME_BYTES} bytes, and are not ALL, AND, BY, EQ, GE, GT, LE, LT, "
             "NE, NOT, OR, TO or WITH")
    seen: dict[str, str] = {}
    for column in columns:
        name = str(column)
        problem = _spss_problem(name)
        if problem is None and name.upper() in seen:
            problem = f"SPSS does not tell it from {seen[name.upper()]!r} (letter case)"
        if problem:
            raise DataError(
                f"cannot write {str(path)!r}: column {name!r} is not a valid SPSS variable "
                f"name ({problem}); {rules}: rename the column, or write .csv, .dta or "
                ".parquet")
        seen[name.upper()] = name
