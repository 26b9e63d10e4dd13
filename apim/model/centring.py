"""Within/between decomposition of time-varying predictors (DESIGN.md §4).

For a predictor ``x`` rated by role ``r`` in dyad ``i`` at session ``t``:

- person mean ``m_ir`` = mean of ``x`` over the sessions that person rated;
- **between** ``x_between = m_ir - c_r``, where the centre ``c_r`` is the mean of the role's
  person means (``reference="means"``), of the role's observations
  (``reference="observations"``), or of all observations of both roles
  (``reference="grand"``: "person mean of the grand-mean-centred variable", the convention
  of Bolger & Laurenceau, 2013);
- **within** ``x_within = x - m_ir`` (after removing the person's linear trend over sessions
  with ``detrend=True``; the trend is then returned as ``x_trend``).

With ``center="therapist"`` (three levels, dyads nested in therapists), the role's mean in
therapist ``j``'s caseload ``m_jr`` (over all their dyads' observations) splits the between
part into ``x_between_therapist = m_jr - c_r`` and ``x_between_dyad = m_ir - m_jr``.
``center="grand"`` gives ``x_centered = x - c_r`` and ``center="none"`` the raw value as ``x_raw``.
The default (``center=None``) is the person-mean split for data over time and raw values
for cross-sectional data (every member rated once: there is no within-person part).

With ``pooled=True`` (indistinguishable dyads, whose members have no role) every centre
is taken over both roles together: ``c`` is the mean of all person means (or of all
observations), so nothing depends on which member carries which label.

Partner columns (suffix ``_partner``) hold the same quantity of the other member of the
dyad: at the same session for time-varying parts, the partner's person-level value for
between parts. With ``lag=k`` the time-varying parts are taken at session ``t-k`` (by
session number: a skipped session gives a missing value; or by order of the person's
rows) and named with a ``_lag{k}`` suffix.

Examples
--------
>>> import pandas as pd
>>> from apim.data.session import SessionData
>>> df = pd.DataFrame({"d": [1] * 4 + [2] * 4, "t": [1, 1, 2, 2] * 2,
...                    "r": ["P", "T"] * 4, "x": [1., 2., 3., 4., 5., 6., 7., 8.]})
>>> data = SessionData.from_long(df, dyad="d", session="t", role="r")
>>> parts = decompose(data, ["x"]).components
>>> parts.loc[0, ["x_within", "x_between", "x_within_partner", "x_between_partner"]].tolist()
[-1.0, -2.0, -1.0, -2.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from apim.data.formats import partner_values
from apim.data.hints import current, option
from apim.data.session import RowKeys, SessionData
from apim.data.validate import informative, within_variation
from apim.errors import SpecError
from apim.specbase import Spec

__all__ = ["DecompositionSpec", "Decomposition", "decompose", "is_cross_sectional",
           "default_center"]

Center = Literal["person", "therapist", "grand", "none"]
Reference = Literal["means", "observations", "grand"]


@dataclass(frozen=True)
class DecompositionSpec(Spec):
    """How to split predictors.

    Parameters
    ----------
    center : {"person", "therapist", "grand", "none"}, optional
        Person-mean split (two levels), three-level split with therapists, grand-mean
        centring without a split, or raw values. Default (None): :func:`default_center`,
        the person-mean split for data over time, raw values for cross-sectional data.
    reference : {"means", "observations", "grand"}
        What the between parts (and grand-mean centring) are centred on, per role: the mean
        of the unit means, of the observations, or of all observations of both roles.
    lag : int
        Use time-varying parts from ``lag`` sessions earlier (0: same session).
    lag_by : {"session", "order"}
        Count ``lag`` in session numbers (a skipped session gives a missing lag) or in the
        person's rows.
    detrend : bool
        Remove each person's linear trend over sessions before the split
        (Falkenström et al., 2017); the trend is returned as ``x_trend``.
    partner : bool
        Also return the partner's components.
    """

    center: Center | None = None
    reference: Reference = "means"
    lag: int = 0
    lag_by: Literal["session", "order"] = "session"
    detrend: bool = False
    partner: bool = True

    def check(self) -> None:
        if self.lag < 0:
            raise SpecError(f"lag={self.lag!r} must be a whole number >= 0")
        if self.detrend and self.center in ("grand", "none"):
            flag = "--detrend" if current() == "cli" else "detrend=True"
            raise SpecError(f"{flag} needs {option('center', 'person')} or "
                            f"{option('center', 'therapist')} (a trend is removed before a "
                            "within/between split)")


@dataclass(frozen=True)
class Decomposition:
    """Result of :func:`decompose`.

    Attributes
    ----------
    spec : DecompositionSpec
    components : pandas.DataFrame
        One row per row of ``data.frame`` (same index), one column per component.
    centres : pandas.DataFrame
        The centre ``c_r`` per variable (rows) and role (columns).
    parts : dict
        For each variable, the names of its own components by kind
        (``within``, ``between``, ``between_dyad``, ``between_therapist``, ``centered``,
        ``raw``, ``trend``); partner columns add ``_partner``.
    pooled : bool
        Whether the centres were taken over both roles together.
    """

    spec: DecompositionSpec
    components: pd.DataFrame = field(repr=False)
    centres: pd.DataFrame = field(repr=False)
    parts: dict[str, dict[str, str]]
    pooled: bool = False

    def apply(self, data: SessionData) -> Decomposition:
        """The same split of other data (new sessions, new dyads, a grid for predictions),
        keeping the centres ``c_r`` fitted here; person (and therapist) means are those of
        ``data``.

        Examples
        --------
        >>> from apim.datasets import load_alliance
        >>> data = load_alliance()
        >>> first = data.replace(data.frame[data.frame["dyad"].isin([1, 2, 3])])
        >>> fitted = decompose(data, ["alliance"])
        >>> again = fitted.apply(first)
        >>> bool((again.centres == fitted.centres).all().all())
        True
        """
        return _decompose(data, list(self.parts), self.spec, self.pooled, self.centres)


def is_cross_sectional(data: SessionData) -> bool:
    """Whether every member of every dyad has at most one row (cross-sectional data, or
    no session column)."""
    keys = data.keys
    if keys is not None:
        return bool(np.bincount(keys.person).max() <= 1)
    frame = data.frame
    return bool(not frame.duplicated(["dyad", "role"]).any())


def default_center(data: SessionData) -> Center:
    """The decomposition used when none is asked for: ``"none"`` (raw predictors) for
    cross-sectional data, else ``"person"``."""
    return "none" if is_cross_sectional(data) else "person"


def group_mean(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of the non-missing ``values`` of each group ``0..n_groups-1`` (NaN for a group
    without any): pandas' group mean on integer codes, which is fast (the slow part of a
    group-by is factorising text keys) and sums exactly as before.

    Examples
    --------
    >>> group_mean(np.array([1.0, 2.0, np.nan, 4.0]), np.array([0, 1, 1, 0]), 3).tolist()
    [2.5, 2.0, nan]
    """
    means = pd.Series(np.asarray(values, float)).groupby(codes).mean()
    return means.reindex(range(n_groups)).to_numpy(float)


def _codes_of(keys: RowKeys, frame: pd.DataFrame, unit: str) -> np.ndarray:
    """Codes of (unit, role) per row: the person (``unit="dyad"``), or a therapist's
    caseload in a role (``unit="therapist"``)."""
    if unit == "dyad":
        return keys.person
    return 2 * pd.factorize(frame[unit])[0].astype(np.int64) + keys.role


def _mean_by(x: pd.Series, keys: RowKeys | None, frame: pd.DataFrame,
             unit: str) -> pd.Series:
    """Mean of ``x`` per ``unit`` and role on every row, as
    ``x.groupby([frame[unit], frame["role"]]).transform("mean")``."""
    if keys is None:
        return x.groupby([frame[unit], frame["role"]]).transform("mean")
    codes = _codes_of(keys, frame, unit)
    means = group_mean(x.to_numpy(float), codes, int(codes.max()) + 1)
    return pd.Series(means[codes], index=x.index)


def _centre(values: pd.Series, unit_mean: pd.Series, role: pd.Series, units: pd.Series,
            reference: Reference, pooled: bool = False, keys: RowKeys | None = None,
            unit_codes: np.ndarray | None = None) -> pd.Series:
    """Per-row centre c_r according to ``reference`` (over both roles when ``pooled``);
    with the rows' ``keys`` and the (unit, role) codes the same without pandas'
    group-bys."""
    if reference == "grand":
        return pd.Series(values.mean(), index=values.index)
    if keys is not None and unit_codes is not None:
        group = np.zeros(len(values), np.int64) if pooled else keys.role.astype(np.int64)
        if reference == "observations":
            means = group_mean(values.to_numpy(float), group, 2)
        else:  # the first row of each unit, where its mean is not missing, in row order
            level = unit_mean.to_numpy(float)
            first = np.unique(unit_codes, return_index=True)[1]
            first = np.sort(first[~np.isnan(level[first])])
            means = group_mean(level[first], group[first], 2)  # a few rows per unit
        return pd.Series(means[group], index=values.index)
    group = pd.Series(0, index=role.index) if pooled else role
    if reference == "observations":
        return values.groupby(group).transform("mean")
    first = ~pd.DataFrame({"u": units, "r": role}).duplicated()
    means = unit_mean[first & unit_mean.notna()].groupby(group[first]).mean()
    return group.map(means).astype(float)


def _trend(x: pd.Series, session: pd.Series, person: list[pd.Series]) -> pd.Series:
    """Each person's least-squares linear trend over sessions, centred at their mean session."""
    ok = x.notna()
    s = session.astype(float).where(ok)
    grouped = pd.DataFrame({"x": x, "s": s}).groupby(person)
    s_dev = s - grouped["s"].transform("mean")
    x_dev = x - grouped["x"].transform("mean")
    sxx = (s_dev ** 2).groupby(person).transform("sum")
    sxy = (s_dev * x_dev).groupby(person).transform("sum")
    slope = (sxy / sxx.where(sxx > 0)).fillna(0.0)
    session_dev = session.astype(float) - grouped["s"].transform("mean")
    return (slope * session_dev).where(ok)


def _lagged(values: pd.DataFrame, frame: pd.DataFrame, spec: DecompositionSpec) -> pd.DataFrame:
    """Time-varying components shifted ``spec.lag`` sessions back within each person."""
    if spec.lag == 0:
        return values
    if spec.lag_by == "order":
        return values.groupby([frame["dyad"], frame["role"]]).shift(spec.lag)
    keys = frame[["dyad", "role", "session"]]
    source = pd.concat([keys.assign(session=keys["session"] + spec.lag), values], axis=1)
    merged = keys.merge(source, on=["dyad", "role", "session"], how="left")
    merged.index = values.index
    return merged[values.columns]


def decompose(data: SessionData, variables: Sequence[str],
              spec: DecompositionSpec | None = None, pooled: bool = False,
              centres: pd.DataFrame | None = None) -> Decomposition:
    """Split predictors into within- and between-person parts for both members.

    Parameters
    ----------
    data : SessionData
    variables : sequence of str
        Numeric, time-varying predictors (e.g. ``["alliance"]``).
    spec : DecompositionSpec, optional
        Options; default person-mean split with partner columns (raw values for
        cross-sectional data).
    pooled : bool
        Centre on both roles together (indistinguishable dyads).
    centres : DataFrame, optional
        The centres to use instead of this data's own: one row per variable, one column
        per role (as :attr:`Decomposition.centres`), e.g. those of a whole data set read
        in blocks of dyads (:mod:`apim.model.out_of_core`). The checks that each predictor
        is informative (not all missing or constant for a role, rated at two sessions by
        someone) are then the caller's, on the whole data: a block may lack what the
        whole has.

    Returns
    -------
    Decomposition

    Raises
    ------
    SpecError
        For ``center="therapist"`` without a therapist column.
    NonNumericError, NonFiniteError, AllMissingError, ConstantVariableError
        For a predictor that cannot be split.

    Examples
    --------
    >>> from apim.datasets import load_alliance
    >>> parts = decompose(load_alliance(), ["alliance"]).components
    >>> sorted(parts.columns)[:3]
    ['alliance_between', 'alliance_between_partner', 'alliance_within']
    """
    return _decompose(data, variables, spec or DecompositionSpec(), pooled, centres,
                      checks=centres is None)


def _decompose(data: SessionData, variables: Sequence[str], spec: DecompositionSpec,
               pooled: bool, fixed: pd.DataFrame | None, checks: bool = True
               ) -> Decomposition:
    """:func:`decompose`, with the centres per variable and role taken from ``fixed`` when
    given (re-applying a fitted decomposition)."""
    if spec.center is None:
        spec = spec.replace(center=default_center(data))
    if spec.center == "therapist" and not data.has_therapist:
        raise SpecError(f"{option('center', 'therapist')} needs a therapist column: map "
                        f"it with {option('therapist', 'COL', '...')}")
    frame = data.frame
    person = [frame["dyad"], frame["role"]]
    keys = data.keys
    persons = None if keys is None else keys.person
    suffix = f"_lag{spec.lag}" if spec.lag else ""
    out: dict[str, pd.Series] = {}
    parts: dict[str, dict[str, str]] = {}
    centres = {}
    for v in variables:
        x = data.numeric(v)
        for k, role in enumerate(data.roles):
            mine = frame["role"] == role if keys is None else keys.role == k
            if checks:
                informative(x[mine], v, f"for role {role!r}")
        names: dict[str, str] = {}
        timevarying: dict[str, pd.Series] = {}
        static: dict[str, pd.Series] = {}
        if spec.center in ("grand", "none"):
            person_mean = _mean_by(x, keys, frame, "dyad")
            centre = _centre(x, person_mean, frame["role"], frame["dyad"], spec.reference,
                             pooled, keys, persons)
            kind = "centered" if spec.center == "grand" else "raw"
            timevarying[kind] = x - centre if kind == "centered" else x
        else:
            if checks and not (keys is not None and _rated_twice(x, keys)):
                within_variation(frame, x, v)  # its message (or its pandas form)
            trend = _trend(x, frame["session"], person) if spec.detrend else None
            person_mean = _mean_by(x, keys, frame, "dyad")
            timevarying["within"] = x - person_mean - (0 if trend is None else trend)
            if trend is not None:
                timevarying["trend"] = trend
            if spec.center == "person":
                centre = _centre(x, person_mean, frame["role"], frame["dyad"],
                                 spec.reference, pooled, keys, persons)
                static["between"] = person_mean - centre
            else:
                units = frame["therapist"].astype(str)
                therapist_mean = _mean_by(x, keys, frame, "therapist")
                centre = _centre(x, therapist_mean, frame["role"], units, spec.reference,
                                 pooled, keys,
                                 None if keys is None else _codes_of(keys, frame,
                                                                     "therapist"))
                static["between_therapist"] = therapist_mean - centre
                static["between_dyad"] = person_mean - therapist_mean
        if fixed is not None:  # the fitted centres replace this data's own
            own = centre
            if keys is None:
                centre = frame["role"].map(fixed.loc[v]).astype(float)
            else:  # by the role codes: no mapping of text labels row by row
                per_role = fixed.loc[v].reindex(list(data.roles)).to_numpy(float)
                centre = pd.Series(per_role[keys.role.astype(np.int64)], index=frame.index)
            for kind in ("centered", "between", "between_therapist"):
                if kind in timevarying:
                    timevarying[kind] = timevarying[kind] + own - centre
                if kind in static:
                    static[kind] = static[kind] + own - centre
        shifted = _lagged(pd.DataFrame(timevarying), frame, spec)
        for kind in timevarying:
            names[kind] = f"{v}_{kind}{suffix}"
            out[names[kind]] = shifted[kind]
        for kind, values in static.items():
            names[kind] = f"{v}_{kind}"
            out[names[kind]] = values
        centres[v] = _role_centres(centre, frame, data.roles, keys)
        parts[v] = names
    components = pd.DataFrame(out, index=frame.index)
    if spec.partner:
        components = pd.concat([components, _partner_parts(data, components, parts)], axis=1)
    return Decomposition(spec=spec, components=components,
                         centres=pd.DataFrame(centres).T, parts=parts, pooled=pooled)


def _rated_twice(x: pd.Series, keys: RowKeys) -> bool:
    """Whether some person rated ``x`` at two sessions (rows): the check of
    :func:`apim.data.validate.within_variation` by the rows' person codes."""
    rated = x.notna().to_numpy()
    return bool(rated.any()) and int(np.bincount(keys.person, rated).max()) >= 2


def _role_centres(centre: pd.Series, frame: pd.DataFrame, roles: tuple[str, str],
                  keys: RowKeys | None) -> pd.Series:
    """The centre of each role: its first non-missing value among the role's rows."""
    if keys is None:
        return centre.groupby(frame["role"]).first().reindex(list(roles))
    values = centre.to_numpy(float)
    out = []
    for k in (0, 1):
        mine = values[keys.role == k]
        mine = mine[~np.isnan(mine)]
        out.append(mine[0] if len(mine) else np.nan)
    return pd.Series(out, index=pd.Index(list(roles), name="role"))


def _partner_parts(data: SessionData, components: pd.DataFrame,
                   parts: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Partner's components: same session for time-varying parts, person level otherwise."""
    frame = data.frame
    person_level = {"between", "between_dyad", "between_therapist"}
    timevarying = [n for names in parts.values() for k, n in names.items()
                   if k not in person_level]
    static = [n for names in parts.values() for k, n in names.items() if k in person_level]
    keys = data.keys
    if keys is not None:  # by row positions: the partner's row, the partner's first row
        found = keys.partner >= 0
        other = keys.first[keys.person ^ 1]
        has = other >= 0
        out: dict[str, np.ndarray] = {}
        for names, rows, ok in ((timevarying, keys.partner, found), (static, other, has)):
            for name in names:
                values = components[name].to_numpy(float)
                out[f"{name}_partner"] = np.where(ok, values[np.where(ok, rows, 0)], np.nan)
        return pd.DataFrame(out, index=frame.index)
    result = partner_values(data.replace(frame.assign(**components[timevarying])),
                            timevarying) if timevarying else pd.DataFrame(index=frame.index)
    if static:
        per_person = components[static].groupby([frame["dyad"], frame["role"]]).first()
        other_role = frame["role"].map({data.roles[0]: data.roles[1],
                                        data.roles[1]: data.roles[0]})
        index = pd.MultiIndex.from_arrays([frame["dyad"], other_role])
        looked_up = per_person.reindex(index)
        looked_up.index = frame.index
        result = pd.concat([result, looked_up], axis=1)
    return result.rename(columns=lambda c: f"{c}_partner")
