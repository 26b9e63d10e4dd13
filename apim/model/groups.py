"""What the multi-group results (one model per arm: the latent and the dynamic APIM) share:
their arms, boundary estimates, the rows no arm used and the reference arm.

Examples
--------
>>> import apim
>>> fit = apim.fit(apim.load_alliance(), apim.LatentAPIMSpec("outcome", ("alliance",),
...                                                          moderator="treatment"))
>>> isinstance(fit, PerGroupFits), fit.groups, fit.reference_levels()
(True, ['CBT', 'AFT'], {'treatment': 'CBT'})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from apim.model.fitted import FitStatistics, dropped_frame, notebook_html

if TYPE_CHECKING:
    from apim.data.session import SessionData

__all__ = ["PerGroupFits", "NOT_USED"]

NOT_USED = "no rating of the model's variables in this row"


class _Moderated(Protocol):
    @property
    def moderator(self) -> str | None: ...


class _Grouped(Protocol):
    @property
    def fits(self) -> Mapping[str, Any]: ...
    @property
    def spec(self) -> _Moderated: ...
    @property
    def data(self) -> SessionData: ...
    @property
    def used(self) -> np.ndarray: ...
    @property
    def groups(self) -> list[str]: ...
    @property
    def statistics(self) -> FitStatistics: ...
    @property
    def boundary(self) -> tuple[str, ...]: ...
    @property
    def dropped(self) -> pd.DataFrame: ...
    def model_line(self) -> str: ...
    def summary(self, digits: int = 3) -> str: ...


class PerGroupFits:
    """Mixed into a result holding one fit per arm (``fits``, in arm order) of the
    moderator ``spec.moderator`` (one fit named after the outcome without one), and the
    index ``used`` of the data rows some arm used; the result's dataclass has
    ``repr=False``, so ``repr`` is the one here."""

    @property
    def groups(self: _Grouped) -> list[str]:
        return list(self.fits)

    def _group_label(self: _Grouped, group: str) -> str:
        return group if self.spec.moderator is not None else ""

    @property
    def boundary(self: _Grouped) -> tuple[str, ...]:
        return tuple(f"{g}: {b}" if len(self.fits) > 1 else b
                     for g, f in self.fits.items() for b in f.boundary)

    @property
    def dropped(self: _Grouped) -> pd.DataFrame:
        """Rows of the input none of whose model variables was rated."""
        frame = self.data.frame
        rows: Sequence[Any] = frame.loc[~frame.index.isin(self.used), "row"]
        return dropped_frame([(int(r), NOT_USED) for r in rows])

    def reference_levels(self: _Grouped) -> dict[str, str]:
        """The first arm of a multi-group model (arm differences are against it)."""
        moderator = self.spec.moderator
        return {moderator: self.groups[0]} if moderator else {}

    def closing_notes(self: _Grouped) -> list[str]:
        """The last notes of the model's table: no convergence, boundary estimates, rows
        not used."""
        out = []
        s = self.statistics
        if not s.converged:
            out.append(f"The fit did NOT converge: {s.message}.")
        if self.boundary:
            out.append("Boundary estimate: " + "; ".join(self.boundary) + ".")
        if len(self.dropped):
            out.append(f"{len(self.dropped)} rows of the data were not used (no rating of "
                       "the model's variables).")
        return out

    def design_matrix(self) -> None:
        """None: the model has no fixed-effects design matrix (means per variable)."""
        return None

    def fitted_frame(self) -> None:
        """None: the model has no per-row fitted values."""
        return None

    def __str__(self: _Grouped) -> str:
        return self.summary()

    def __repr__(self: _Grouped) -> str:
        s = self.statistics
        return (f"<{type(self).__name__}: {self.model_line()}; {s.n_obs} ratings, "
                f"{s.n_dyads} dyads; logLik {s.loglik:.2f}; "
                f"{'converged' if s.converged else 'NOT converged'}>")

    def _repr_html_(self: _Grouped) -> str:
        return notebook_html(self)  # type: ignore[arg-type]
