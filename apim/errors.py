"""Errors and warnings: one root for everything apim raises.

- :class:`ApimError` is the root. :class:`DataError` (bad data) and :class:`SpecError` (an
  option or specification that is out of range or does not fit the data) are also
  ``ValueError``; :class:`FitError` (numerical failure) is also ``RuntimeError``.
- Warnings derive from :class:`ApimWarning`: :class:`BoundaryWarning`,
  :class:`ConvergenceWarning`, :class:`SmallSampleWarning`, :class:`DataWarning`.

Messages name the column, the offending value and the first offending rows, and say how
to fix it. The command line prints an ``ApimError`` on one line and exits with code 2.
Third-party exceptions are translated into these where they arise.

Examples
--------
>>> from apim.errors import ApimError, DataError, MissingColumnError, SpecError
>>> issubclass(MissingColumnError, DataError) and issubclass(DataError, ValueError)
True
>>> issubclass(SpecError, ApimError)
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "ApimError",
    "DataError",
    "SpecError",
    "FitError",
    "ApimWarning",
    "BoundaryWarning",
    "ConvergenceWarning",
    "SmallSampleWarning",
    "DataWarning",
    "EmptyDataError",
    "MissingColumnError",
    "RoleCountError",
    "UnknownRoleError",
    "RolesArgumentError",
    "DuplicateRowError",
    "TherapistChangeError",
    "NonNumericError",
    "NonFiniteError",
    "SessionNotIntegerError",
    "MissingKeyError",
    "ConstantVariableError",
    "AllMissingError",
    "PartnerMismatchError",
    "UnsupportedFileError",
    "OutputExistsError",
    "FolderInUseError",
    "TooLargeError",
    "RankDeficientError",
    "format_rows",
]


def format_rows(rows: Iterable[int], limit: int = 5) -> str:
    """Describe data rows (1-based positions in the input) briefly.

    Examples
    --------
    >>> format_rows([3, 7, 9, 10, 11, 12, 40])
    'rows 3, 7, 9, 10, 11 and 2 more'
    """
    rows = sorted(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    word = "row" if len(rows) == 1 else "rows"
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{word} {shown}{more}"


def _plain(value: object) -> object:
    """NumPy scalars as Python scalars, so messages show ``1`` not ``np.int64(1)``."""
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "ndim", None) == 0 else value


def _first_values(values: Sequence[object], limit: int = 3) -> str:
    return ", ".join(repr(_plain(v)) for v in list(values)[:limit])


class ApimError(Exception):
    """Root of every error apim raises on purpose."""


class DataError(ApimError, ValueError):
    """The data are unusable as given (column, value and rows named in the message)."""


class SpecError(ApimError, ValueError):
    """An option or specification is invalid, or does not fit the data."""


class FitError(ApimError, RuntimeError):
    """The estimation failed numerically (the message says what to try)."""


class ApimWarning(UserWarning):
    """Root of apim's warnings."""


class BoundaryWarning(ApimWarning):
    """A variance parameter is estimated at (or next to) the boundary of its space."""


class ConvergenceWarning(ApimWarning):
    """The optimizer stopped before the convergence criteria were met."""


class SmallSampleWarning(ApimWarning):
    """Few dyads, or more covariance parameters than the design supports well."""


class DataWarning(ApimWarning):
    """Something in the data deserves a look (suspicious values, near-duplicate ids ...)."""


class EmptyDataError(DataError):
    """The input holds no data rows."""

    def __init__(self, source: str) -> None:
        super().__init__(f"{source} holds no data rows; check the file and its header line")


class MissingColumnError(DataError):
    """A mapped column is not in the data; suggests the closest name."""

    def __init__(self, role: str, column: str, available: Sequence[str]) -> None:
        import difflib

        close = difflib.get_close_matches(column, list(available), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else (
            f"; the data has columns {_first_values(available, 8)}")
        super().__init__(f"{role} column {column!r} is not in the data{hint}")


class RoleCountError(DataError):
    """The role column does not hold exactly two distinct values."""

    def __init__(self, column: str, values: Sequence[object]) -> None:
        n = len(values)
        super().__init__(
            f"column {column!r} must hold exactly two roles but holds {n}"
            f"{': ' + _first_values(values, 5) if n else ''}; map the column that tells the "
            "two members of a dyad apart, or select the two roles you want first")


class UnknownRoleError(DataError):
    """A role value in the data is not one of ``roles``."""

    def __init__(self, column: str, value: object, rows: Sequence[int],
                 roles: Sequence[object]) -> None:
        super().__init__(
            f"column {column!r} holds role {_plain(value)!r} ({format_rows(rows)}) which is "
            f"not one of roles={tuple(roles)!r}; correct the value or pass roles that match "
            "the data")


class RolesArgumentError(DataError):
    """The ``roles`` argument is not two distinct values."""

    def __init__(self, roles: object) -> None:
        super().__init__(
            f"roles={roles!r} must name two distinct roles, the reference first, "
            "e.g. roles=('patient', 'therapist')")


class DuplicateRowError(DataError):
    """Two or more rows share dyad, session and role."""

    def __init__(self, dyad: object, session: object, role: object, rows: Sequence[int],
                 columns: Sequence[str]) -> None:
        d, s, r = columns
        super().__init__(
            f"{format_rows(rows)} repeat {d}={_plain(dyad)!r}, {s}={_plain(session)!r}, "
            f"{r}={_plain(role)!r}; "
            "each member may have one row per session: remove or merge the duplicates")


class TherapistChangeError(DataError):
    """The therapist column changes within a dyad."""

    def __init__(self, column: str, dyad: object, values: Sequence[object],
                 rows: Sequence[int]) -> None:
        super().__init__(
            f"column {column!r} changes within dyad {_plain(dyad)!r} ({_first_values(values)}; "
            f"{format_rows(rows)}); a dyad must keep one therapist: split it into two dyads "
            "or correct the therapist ids")


class NonNumericError(DataError):
    """A variable that must be numeric holds text."""

    def __init__(self, column: str, value: object, rows: Sequence[int]) -> None:
        super().__init__(
            f"column {column!r} holds the non-numeric value {_plain(value)!r} "
            f"({format_rows(rows)}); recode it as a number, or leave the cell empty for a "
            "missing rating")


class NonFiniteError(DataError):
    """A numeric variable holds an infinite value."""

    def __init__(self, column: str, value: float, rows: Sequence[int]) -> None:
        super().__init__(
            f"column {column!r} holds {_plain(value)!r} ({format_rows(rows)}); infinite values "
            "are not ratings: correct them or leave the cells empty")


class SessionNotIntegerError(DataError):
    """Session numbers are not whole numbers."""

    def __init__(self, column: str, value: object, rows: Sequence[int]) -> None:
        super().__init__(
            f"session column {column!r} holds {_plain(value)!r} ({format_rows(rows)}); session "
            "numbers must be whole numbers (1, 2, 3, ...)")


class MissingKeyError(DataError):
    """An identifying column (dyad, session, role, therapist) has empty cells."""

    def __init__(self, column: str, rows: Sequence[int]) -> None:
        super().__init__(
            f"identifying column {column!r} is empty in {format_rows(rows)}; every row needs "
            "a dyad, a session and a role: fill the cells or remove the rows")


class ConstantVariableError(DataError):
    """A predictor takes a single value, so it cannot predict anything."""

    def __init__(self, column: str, value: float, scope: str = "") -> None:
        where = f" {scope}" if scope else ""
        super().__init__(
            f"predictor {column!r} is constant{where} (every non-missing value is "
            f"{_plain(value)!r}); it carries no information: drop it or check the column mapping")


class AllMissingError(DataError):
    """A variable has no non-missing value."""

    def __init__(self, column: str, scope: str = "") -> None:
        where = f" {scope}" if scope else ""
        super().__init__(
            f"column {column!r} is missing in every row{where}; check the column mapping "
            "or the file's missing-value codes")


class PartnerMismatchError(DataError):
    """Pairwise partner columns disagree with the other member's actor columns."""

    def __init__(self, column: str, value: object, expected: object,
                 rows: Sequence[int]) -> None:
        super().__init__(
            f"partner column {column!r} holds {_plain(value)!r} but the partner's own row holds "
            f"{_plain(expected)!r} ({format_rows(rows)}); the pairwise file is inconsistent: "
            "rebuild its partner columns from the actor columns")


class UnsupportedFileError(DataError):
    """The file cannot be read (unknown type, missing file, missing optional reader)."""


class OutputExistsError(SpecError):
    """An output file exists and ``--force`` was not given (apim never overwrites
    silently)."""


class FolderInUseError(ApimError):
    """Another apim run holds the lock on the output folder."""


class TooLargeError(SpecError):
    """The work asked for needs more memory (or time) than the machine can give; the
    message says how much it would need."""


class RankDeficientError(SpecError):
    """The fixed-effects design matrix is not of full column rank."""

    def __init__(self, columns: Sequence[str]) -> None:
        super().__init__(
            f"the design is rank deficient: column(s) {_first_values(columns, 5)} are linear "
            "combinations of the others; remove them or the predictors they duplicate")
