"""Up-front checks of data against an APIM specification, before anything is built.

:func:`check_design` raises for designs that cannot be fitted as meant (a moderator that
changes within a dyad, a lag that leaves nothing to fit) and warns about designs that can
be fitted but deserve a look: few dyads or more covariance parameters than dyads
(:class:`~apim.errors.SmallSampleWarning`), and values far outside the rest of their column
such as undeclared missing-value codes (:class:`~apim.errors.DataWarning`).

Examples
--------
>>> import warnings
>>> from apim import APIMSpec, load_alliance
>>> with warnings.catch_warnings():
...     warnings.simplefilter("error")
...     check_design(load_alliance(), APIMSpec("outcome", ("alliance",)))
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pandas as pd

from apim.data.hints import current, option
from apim.data.report import FEW_DYADS
from apim.data.session import SessionData
from apim.data.validate import ROW, is_constant, require_columns, suspicious_values
from apim.errors import DataError, DataWarning, SmallSampleWarning, SpecError, format_rows
from apim.model.spec import APIMSpec

__all__ = ["check_design", "check_sample", "ModeratorChangeError", "LagError"]


class ModeratorChangeError(DataError):
    """A dyad-level moderator takes different values within one dyad."""


class LagError(SpecError):
    """A lag leaves no row with a lagged predictor."""


def _moderators_constant(data: SessionData, frame: pd.DataFrame,
                         moderators: Sequence[str]) -> None:
    for m in moderators:
        require_columns(frame, {"moderator": m})
        counts = frame.groupby("dyad", sort=False)[m].nunique()
        changing = counts.index[counts > 1]
        if len(changing):
            d = changing[0]
            d = d.item() if hasattr(d, "item") else d
            rows = frame.loc[frame["dyad"] == d]
            firsts = rows.dropna(subset=[m]).drop_duplicates(m)
            values = ", ".join(repr(v) for v in firsts[m].tolist()[:3])
            raise ModeratorChangeError(
                f"moderator {m!r} changes within dyad {d!r} ({values}; "
                f"{format_rows(firsts[ROW].tolist())}); a moderator describes the whole dyad "
                f"(e.g. its treatment arm): correct the values, or use {m!r} as a covariate "
                f"({option('covariate', m)})")


def _lag_leaves_rows(data: SessionData, frame: pd.DataFrame, predictors: Sequence[str],
                     lag: int, by: str) -> None:
    person = [frame["dyad"], frame["role"]]
    for x in predictors:
        if x not in frame.columns:
            return  # the design reports the missing column
        rated = frame.loc[data.numeric(x).notna(), ["dyad", "role", "session"]]
        if by == "order":
            per_person = rated.groupby(["dyad", "role"]).size()
            ok = bool((per_person > lag).any())
            most = int(per_person.max()) if len(per_person) else 0
            detail = f"no person rated {x!r} in more than {lag} sessions (at most {most})"
        else:
            shifted = rated.assign(session=rated["session"] + lag)
            hits = frame[["dyad", "role", "session"]].merge(shifted, how="inner")
            ok = len(hits) > 0
            span = frame.groupby(person)["session"].agg(lambda s: s.max() - s.min())
            detail = (f"no session has a rating of {x!r} from {lag} session numbers earlier "
                      f"(the longest span of sessions of a person is {int(span.max())})")
        if not ok:
            raise LagError(f"lag={lag} leaves nothing to fit: {detail}; use a smaller lag "
                           f"({option('lag', '1', '1')})")


def _outcome_varies(data: SessionData, frame: pd.DataFrame, outcome: str,
                    distinguishable: bool) -> None:
    """The outcome must vary (within each role when roles get their own intercepts); its
    scale does not matter (the engine standardises)."""
    y = data.numeric(outcome)
    groups = [(f" for role {r!r}", y[frame["role"] == r]) for r in data.roles] \
        if distinguishable else [("", y)]
    for where, values in groups:
        present = values.dropna()
        if present.empty:
            raise DataError(f"outcome {outcome!r} is missing in every row{where}; check the "
                            "column mapping or the file's missing-value codes")
        if is_constant(present):
            raise DataError(f"outcome {outcome!r} is constant{where} (every value is "
                            f"{present.iloc[0]:g}): there is nothing to explain; check the "
                            "column mapping")


def check_design(data: SessionData, spec: APIMSpec) -> None:
    """Check ``data`` against ``spec`` before a fit.

    Raises
    ------
    ModeratorChangeError
        A moderator changes within a dyad (DataError).
    LagError
        The lag leaves no row with a lagged predictor (SpecError).

    Warns
    -----
    SmallSampleWarning
        Fewer than 30 dyads, or more covariance parameters than dyads.
    DataWarning
        A variable of the model holds values far outside the rest of its column.
    """
    frame = data.frame
    predictors = list(spec.predictors)
    if spec.covariance.therapist_level and not data.has_therapist:
        flag = "--therapist-level" if current() == "cli" else "therapist_level=True"
        raise SpecError(f"{flag} needs a therapist column: map the therapist ids with "
                        f"{option('therapist', 'COL')}")
    outcome = spec.outcome
    if outcome in frame.columns:
        _outcome_varies(data, frame, outcome, spec.distinguishable)
    moderators = list(spec.moderators)
    if moderators:
        _moderators_constant(data, frame, moderators)
    for v in dict.fromkeys([*predictors, *spec.covariates]):
        if v in frame.columns:
            data.numeric(v)  # bad values are errors before any warning
    decomposition = spec.decomposition
    if decomposition.lag > 0:
        _lag_leaves_rows(data, frame, predictors, decomposition.lag, decomposition.lag_by)
    variables = [spec.outcome, *predictors, *spec.covariates, *moderators]
    for v in dict.fromkeys(v for v in variables if v):
        if v in frame.columns and pd.api.types.is_numeric_dtype(frame[v]) \
                and not pd.api.types.is_bool_dtype(frame[v]):
            message = suspicious_values(frame[v].astype(float), frame[ROW], v)
            if message:
                warnings.warn(DataWarning(message), stacklevel=3)


def check_sample(n_params: int, n_dyads: int) -> None:
    """Warn when the dyads are few for the model's covariance parameters.

    Warns
    -----
    SmallSampleWarning
        More covariance parameters than dyads, or fewer than 30 dyads.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_sample(n_params=6, n_dyads=4)
    >>> "6 covariance parameters" in str(caught[0].message)
    True
    """
    if n_params > n_dyads:
        warnings.warn(SmallSampleWarning(
            f"the model has {n_params} covariance parameters but the data only {n_dyads} "
            "dyads; the variance estimates will be unstable: use a simpler random part or "
            "residual structure, or more dyads"), stacklevel=3)
    elif n_dyads < FEW_DYADS:
        warnings.warn(SmallSampleWarning(
            f"only {n_dyads} dyads: variance components and dyad-level effects will be "
            "imprecise"), stacklevel=3)
