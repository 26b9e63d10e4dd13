"""Checks of a binary or ordinal outcome before a generalized APIM is fitted.

- :func:`outcome_categories`: a binary outcome must be coded 0/1 (1/2, yes/no and the like
  are named with the recode to use); an ordinal outcome's categories are its sorted
  distinct numeric values, none declared but empty, and with thresholds per role each role
  must use every category.
- :func:`check_separation`: complete or quasi-complete separation (a combination of
  fixed effects that predicts the outcome perfectly, so its maximum likelihood estimate
  is infinite) found by a linear programme before fitting, and named.
- :func:`check_events`: a warning for fewer than 10 events (of the rarer outcome) per
  fixed effect.

Examples
--------
>>> import numpy as np
>>> X = np.column_stack([np.ones(6), [0, 0, 0, 1, 1, 1.0]])
>>> check_separation(X, np.array([0, 1, 0, 1, 1, 1]), ["intercept", "treatment"], 2)
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
apim.errors.DataError: the outcome is separated (quasi-complete separation): ... treatment ...
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from apim.data.session import SessionData
from apim.errors import DataError, SmallSampleWarning, format_rows

__all__ = ["outcome_categories", "check_separation", "check_events", "EVENTS_PER_PARAMETER"]

EVENTS_PER_PARAMETER = 10


def _rows_with(data: SessionData, column: str, mask: np.ndarray) -> str:
    return format_rows(data.frame.loc[mask, "row"].tolist())


def outcome_categories(data: SessionData, outcome: str, family: str,
                       per_role: bool) -> np.ndarray:
    """The categories of ``outcome`` in order (``[0, 1]`` for a binary outcome).

    Raises
    ------
    DataError
        A binary outcome not coded 0/1 (or with more than two values); an ordinal outcome
        that is not numeric, has a declared category no row uses, or (``per_role``) a
        category one role never uses.
    """
    frame = data.frame
    column = data.resolve(outcome)
    values = frame[column]
    present = values.dropna()
    if family == "binomial":
        distinct = sorted(pd.unique(present), key=str)
        if pd.api.types.is_bool_dtype(values) or set(distinct) <= {0, 1}:
            return np.array([0.0, 1.0])
        shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in distinct[:5])
        if len(distinct) == 2:
            high = distinct[1].item() if hasattr(distinct[1], "item") else distinct[1]
            bad = values.notna().to_numpy() & ~values.isin([0, 1]).to_numpy()
            raise DataError(
                f"binary outcome {outcome!r} is coded {shown} ({_rows_with(data, column, bad)}),"
                f" not 0/1: recode it so that 1 is the event, e.g. in pandas "
                f"frame[{outcome!r}] = (frame[{outcome!r}] == {high!r}).astype(int)")
        numeric = pd.api.types.is_numeric_dtype(present)
        whole = numeric and bool(np.all(np.mod(present.to_numpy(float), 1) == 0))
        advice = ("for ordered categories use family 'ordinal' (--family ordinal)" if whole
                  or not numeric else "for a continuous outcome fit the Gaussian APIM "
                  "(drop family, --family), or make the event explicit, e.g. "
                  f"frame['event'] = (frame[{outcome!r}] < CUTOFF).astype(int)")
        raise DataError(f"binary outcome {outcome!r} takes {len(distinct)} values ({shown}"
                        f"{', ...' if len(distinct) > 5 else ''}); a binomial outcome is 0/1: "
                        f"{advice}")
    if isinstance(values.dtype, pd.CategoricalDtype):
        unused = [c for c in values.cat.categories if not (values == c).any()]
        if unused:
            raise DataError(f"ordinal outcome {outcome!r} declares categor"
                            f"{'y' if len(unused) == 1 else 'ies'} "
                            f"{', '.join(map(repr, unused))} that no row uses: its threshold "
                            "cannot be estimated; drop the unused categories "
                            "(frame[col].cat.remove_unused_categories()) or merge them")
        values = values.astype(float) if pd.api.types.is_numeric_dtype(
            values.cat.categories) else values
    numeric = data.numeric(outcome)  # non-numeric values are named there
    categories = np.sort(numeric.dropna().unique())
    if len(categories) < 2:
        raise DataError(f"ordinal outcome {outcome!r} takes one value; nothing to model")
    if per_role:
        for role in data.roles:
            mine = numeric[frame["role"] == role].dropna().unique()
            missing = [c for c in categories if c not in set(mine)]
            if missing:
                raise DataError(
                    f"ordinal outcome {outcome!r}: role {role!r} never uses categor"
                    f"{'y' if len(missing) == 1 else 'ies'} "
                    f"{', '.join(f'{c:g}' for c in missing)}, so its thresholds there "
                    "cannot be estimated; merge that category with its neighbour, or use "
                    "thresholds shared by both roles (thresholds='shared', --thresholds "
                    "shared)")
    return categories


def check_separation(X: np.ndarray, category: np.ndarray, names: Sequence[str],
                     n_categories: int, sets: np.ndarray | None = None) -> None:
    """Refuse complete or quasi-complete separation, naming the terms involved.

    For each cut of the outcome (``Y > k`` against ``Y <= k``), a linear programme looks
    for a direction ``d`` of the fixed effects (with the thresholds' intercepts) with
    ``s_j x_j' d >= 0`` for every row (``s_j = +1`` above the cut, ``-1`` below) and a
    positive total; one exists exactly when the outcome is separated at that cut
    (Albert & Anderson, 1984; Konis, 2007).

    Raises
    ------
    DataError
    """
    from scipy.optimize import linprog

    X = np.asarray(X, float)
    scale = np.maximum(np.abs(X).max(axis=0), 1e-12)
    Xs = X / scale
    extra = [] if sets is None else [(sets == s).astype(float) for s in np.unique(sets)]
    for k in range(n_categories - 1):
        design = np.column_stack([Xs, *extra]) if extra else Xs
        s = np.where(category > k, 1.0, -1.0)
        A = s[:, None] * design
        result = linprog(-A.sum(axis=0), A_ub=-A, b_ub=np.zeros(len(A)),
                         bounds=[(-1, 1)] * design.shape[1], method="highs")
        if result.status != 0 or -result.fun <= 1e-7 * len(A):
            continue
        d = result.x[:X.shape[1]]
        involved = [n for n, v in zip(names, d) if abs(v) > 1e-6]
        margin = A @ result.x
        kind = "complete" if np.all(margin > 1e-9) else "quasi-complete"
        terms = ", ".join(involved) if involved else "the thresholds"
        raise DataError(f"the outcome is separated ({kind} separation): a combination of "
                        f"{terms} predicts it perfectly in some rows, so its maximum "
                        "likelihood estimate is infinite; drop or combine the terms involved "
                        "(e.g. a moderator level or category with no events) or collect "
                        "more data")


def check_events(category: np.ndarray, n_categories: int, n_fixed: int) -> None:
    """Warn when the rarer outcome (per cut of an ordinal one) has fewer than
    :data:`EVENTS_PER_PARAMETER` events per fixed effect."""
    counts = np.bincount(category, minlength=n_categories)
    cum = np.cumsum(counts)[:-1]
    events = int(np.minimum(cum, len(category) - cum).min())
    if events < EVENTS_PER_PARAMETER * n_fixed:
        warnings.warn(SmallSampleWarning(
            f"only {events} events of the rarer outcome for {n_fixed} fixed effects (fewer "
            f"than {EVENTS_PER_PARAMETER} per effect): estimates may be biased and unstable; "
            "use fewer terms or more data"), stacklevel=3)
