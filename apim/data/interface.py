"""What the data layer's helpers need of session data: a structural interface.

:class:`~apim.data.session.SessionData` builds on the layout conversions
(:mod:`apim.data.formats`) and the data report (:mod:`apim.data.report`); those take any
object with the attributes below (``SessionData`` has them), so they never import the
class that imports them.

Examples
--------
>>> import apim
>>> isinstance(apim.load_alliance(), SessionLike)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar, runtime_checkable

import pandas as pd

__all__ = ["SessionLike", "ColumnNames"]

T = TypeVar("T", bound="SessionLike")


class ColumnNames(Protocol):
    """The user's names of the identifying columns."""

    @property
    def dyad(self) -> str: ...
    @property
    def session(self) -> str | None: ...
    @property
    def role(self) -> str: ...
    @property
    def therapist(self) -> str | None: ...

    def user(self) -> dict[str, str]:
        """Canonical names -> the user's names."""
        ...


@runtime_checkable
class SessionLike(Protocol):
    """Long session data: one row per dyad x session x role, canonical column names."""

    @property
    def frame(self) -> pd.DataFrame: ...
    @property
    def roles(self) -> tuple[str, str]: ...
    @property
    def columns(self) -> ColumnNames: ...
    @property
    def source(self) -> str: ...
    @property
    def notes(self) -> tuple[str, ...]: ...
    @property
    def has_therapist(self) -> bool: ...
    @property
    def variables(self) -> list[str]: ...

    def numeric(self, column: str) -> pd.Series:
        """A variable as float64 (checked numeric and finite)."""
        ...

    def replace(self: T, frame: pd.DataFrame) -> T:
        """The same description with another frame."""
        ...

    def to_long(self) -> pd.DataFrame:
        """Long data under the user's column names."""
        ...

    def report(self, variables: Sequence[str] | None = None,
               predictors: Sequence[str] = ()) -> object:
        ...
