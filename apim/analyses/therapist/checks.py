"""Checks made before any model is fitted: a therapist column, therapist levels the data
can identify, and covariates (text columns dummy coded against their first level).

Every refusal is a :class:`~apim.errors.SpecError` or :class:`~apim.errors.DataError`
naming the column, the value and the rows, raised before the first fit, so that no
bootstrap runs for minutes before a bad option shows.

Examples
--------
>>> import apim
>>> coding = code_covariates(apim.load_alliance(), ("treatment", "session"))
>>> coding.text  # a pandas Categorical: its categories' order
(('treatment', ('CBT', 'AFT')),)
>>> print(coding.notes[0])
covariate 'treatment' is text: dummy coded against its first level 'CBT' (column treatment[T.AFT])
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from apim.data.session import SessionData
from apim.data.validate import require_columns
from apim.errors import SmallSampleWarning, SpecError, format_rows

__all__ = ["require_therapists", "check_caseloads", "CovariateCoding", "code_covariates",
           "dyad_covariates"]


def require_therapists(data: SessionData, what: str) -> None:
    """Refuse data without a therapist column."""
    if not data.has_therapist:
        raise SpecError(f"{what} needs a therapist column: map it when reading the data "
                        "(therapist='COL', or --therapist COL)")


def _plain(value: object) -> object:
    """NumPy scalars as Python ones, so messages show ``7``, not ``np.int64(7)``."""
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "ndim", None) == 0 else value


def _rows_of(frame: pd.DataFrame, mask: pd.Series) -> str:
    return format_rows(frame.loc[mask, "row"].tolist())


def check_caseloads(data: SessionData, what: str, frame: pd.DataFrame | None = None) -> None:
    """Refuse therapist levels the data cannot identify; warn when they barely can.

    One therapist leaves no variance between therapists. When every therapist serves one
    dyad, the therapist and dyad levels are the same units: their variances (and the
    within-therapist and therapist-level associations) cannot be told apart. When more
    than half of the therapists serve one dyad, a :class:`~apim.errors.SmallSampleWarning`
    says that the split rests on the others.

    Parameters
    ----------
    data : SessionData
        With a therapist column (else nothing is checked).
    what : str
        The analysis, for the message.
    frame : DataFrame, optional
        The rows the analysis uses (default: all rows of ``data``).
    """
    if not data.has_therapist:
        return
    frame = data.frame if frame is None else frame
    column = data.columns.therapist
    therapists = pd.unique(frame["therapist"])
    if len(therapists) == 1:
        value = _plain(therapists[0])
        raise SpecError(
            f"{what}: therapist column {column!r} holds one therapist, {value!r} "
            f"({_rows_of(frame, frame['therapist'] == value)}), so nothing varies between "
            "therapists; give data with several therapists, or read the data without a "
            "therapist column (dyad and session levels only)")
    caseload = frame.groupby("therapist")["dyad"].nunique()
    single = caseload[caseload == 1]
    if len(single) == len(caseload):
        value = _plain(caseload.index[0])
        raise SpecError(
            f"{what}: every therapist in column {column!r} serves one dyad (e.g. therapist "
            f"{value!r}, {_rows_of(frame, frame['therapist'] == value)}), so the therapist "
            "and dyad levels are the same units and cannot be told apart; give data with "
            "several dyads per therapist, or read the data without a therapist column")
    if 2 * len(single) > len(caseload):
        warnings.warn(
            f"{len(single)} of {len(caseload)} therapists in column {column!r} serve "
            f"one dyad (e.g. {', '.join(repr(_plain(v)) for v in single.index[:3])}); "
            "therapist "
            "and dyad levels are told apart by the other therapists alone, so the "
            "therapist-level estimates are imprecise", SmallSampleWarning, stacklevel=3)


@dataclass(frozen=True)
class CovariateCoding:
    """How covariates enter the models.

    Attributes
    ----------
    names : tuple of str
        The covariates as given.
    text : tuple of (str, tuple)
        The text covariates and their levels in coding order; the first is the reference
        (patsy's treatment coding: the first category of a pandas Categorical, else the
        first value in sorted order).
    """

    names: tuple[str, ...]
    text: tuple[tuple[str, tuple[object, ...]], ...] = ()

    @property
    def notes(self) -> tuple[str, ...]:
        """One line per text covariate: its reference level and its 0/1 columns."""
        return tuple(f"covariate {name!r} is text: dummy coded against its first level "
                     f"{levels[0]!r} (column{'s' if len(levels) > 2 else ''} "
                     f"{', '.join(_dummy(name, v) for v in levels[1:])})"
                     for name, levels in self.text)

    def numeric(self, data: SessionData) -> tuple[SessionData, tuple[str, ...]]:
        """``data`` with a 0/1 column per non-reference level of each text covariate
        (missing where the covariate is missing) and the covariate columns to use."""
        levels = dict(self.text)
        if not levels:
            return data, self.names
        frame = data.frame
        names: list[str] = []
        for name in self.names:
            if name not in levels:
                names.append(name)
                continue
            values = frame[name]
            for level in levels[name][1:]:
                column = _dummy(name, level)
                if column in frame.columns:
                    raise SpecError(f"the data already has a column {column!r}, the 0/1 "
                                    f"column of covariate {name!r}; rename it")
                frame[column] = (values == level).astype(float).where(values.notna())
                names.append(column)
        return data.replace(frame), tuple(names)


def _dummy(name: str, level: object) -> str:
    return f"{name}[T.{level}]"


def _is_text(values: pd.Series) -> bool:
    """Text (to be dummy coded) rather than numbers with a stray non-numeric entry."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    given = values.dropna()
    numbers = pd.to_numeric(given.astype(str), errors="coerce").notna()
    return not (len(given) and 2 * int(numbers.sum()) > len(given))


def code_covariates(data: SessionData, covariates: Sequence[str]) -> CovariateCoding:
    """Check the covariates and decide their coding (before any fit).

    Numeric columns enter as they are (checked for non-numeric and infinite values); text
    columns (e.g. a treatment arm ``CBT``/``AFT``) are dummy coded against their first
    level (the first category of a pandas Categorical, else the first value in sorted
    order). A column that is mostly numbers with a few text entries is a
    numeric column with bad values and raises
    :class:`~apim.errors.NonNumericError`.

    Raises
    ------
    MissingColumnError, NonNumericError, NonFiniteError
        For a covariate that is not in the data, or a numeric one with bad values.
    SpecError
        For a covariate with a single value: it adjusts nothing.
    """
    frame = data.frame
    text: list[tuple[str, tuple[object, ...]]] = []
    for name in covariates:
        require_columns(frame, {"covariate": name})
        values = frame[name]
        if not _is_text(values):
            values = data.numeric(name)
            levels: list[object] = list(pd.unique(values.dropna()))
        elif isinstance(values.dtype, pd.CategoricalDtype):
            levels = [c for c in values.cat.categories if (values == c).any()]
        else:
            levels = sorted(pd.unique(values.dropna()), key=str)
        if len(levels) < 2:
            shown = repr(_plain(levels[0])) if levels else "no value"
            raise SpecError(
                f"covariate {name!r} takes {shown} in every row ({format_rows(frame['row'])}"
                "): it cannot adjust anything; drop it")
        if _is_text(frame[name]):
            text.append((name, tuple(levels)))
    return CovariateCoding(tuple(covariates), tuple(text))


def dyad_covariates(data: SessionData, covariates: Sequence[str]) -> pd.DataFrame:
    """One row per dyad with its covariate values; refuses covariates that change within
    a dyad (the dyad-level split needs dyad-level covariates)."""
    frame = data.frame
    out = pd.DataFrame(index=pd.Index(pd.unique(frame["dyad"]), name="dyad"))
    for name in covariates:
        require_columns(frame, {"covariate": name})
        per = frame.groupby("dyad", sort=False)[name]
        counts = per.nunique(dropna=True)
        if (counts > 1).any():
            bad = counts[counts > 1].index
            first = frame.loc[frame["dyad"] == bad[0], name].dropna().unique()[:2]
            raise SpecError(
                f"covariate {name!r} changes within dyads {bad.tolist()[:5]} (dyad "
                f"{_plain(bad[0])!r}: {', '.join(repr(_plain(v)) for v in first)}; "
                f"{_rows_of(frame, frame['dyad'] == bad[0])}): the dyad-level split needs "
                "dyad-level covariates (e.g. treatment); leave it out of the split, or give "
                "the dyad's mean as a column of its own")
        out[name] = per.first()
    return out
