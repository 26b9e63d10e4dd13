"""Formula designs (patsy) and the response-surface (polynomial congruence) APIM.

A :class:`~apim.model.spec.FormulaSpec` is fitted by :func:`apim.fit` like an APIM. In
formulas every numeric column ``x`` of the session data also has ``x_partner``: the
other member's value at the same session. Kashy's interaction-approach APIM, for example::

    apim.fit(data, FormulaSpec("satisf ~ genderE * (conflict + conflict_partner)",
                               random="0 + man + woman + conflict + conflict_partner"))

The response surface of Edwards (2002) for the two members' ratings ``P`` (reference role)
and ``T`` (other role) of one predictor, per outcome role::

    y = b0 + b1 P + b2 T + b3 P^2 + b4 P T + b5 T^2     (terms P, T, P2, PxT, T2)
    a1 = b1 + b2 (slope along the line of congruence P = T),
    a2 = b3 + b4 + b5 (its curvature), a3 = b1 - b2 (slope along incongruence P = -T),
    a4 = b3 - b4 + b5 (its curvature).

Examples
--------
>>> import apim
>>> spec = apim.FormulaSpec("outcome ~ alliance + alliance_partner")
>>> result = apim.fit(apim.load_alliance(), spec)
>>> list(result.effects.index)
['Intercept', 'alliance', 'alliance_partner']
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy

from apim.data.formats import partner_values
from apim.data.session import SessionData
from apim.engine.mixed.estimate import estimate_mixed as fit_engine
from apim.errors import SpecError
from apim.model.design import APIMDesign, Term, assemble_design
from apim.model.result import DF, APIMResult
from apim.model.spec import APIMSpec, CovarianceSpec, FormulaSpec, Method

__all__ = ["formula_design", "response_surface"]


def _with_partner_columns(data: SessionData) -> pd.DataFrame:
    frame = data.frame
    numeric = [v for v in data.variables if pd.api.types.is_numeric_dtype(frame[v])]
    partner = partner_values(data, numeric).add_suffix("_partner")
    return pd.concat([frame, partner], axis=1)


def formula_design(data: SessionData, spec: FormulaSpec) -> APIMDesign:
    """The design of a :class:`~apim.model.spec.FormulaSpec` (fitted by :func:`apim.fit`).

    Its effects table has one row per formula column (``effect`` is ``"term"``).
    """
    frame = _with_partner_columns(data)
    try:
        y, X = patsy.dmatrices(spec.formula, frame, NA_action=patsy.NAAction(NA_types=[]),
                               return_type="dataframe")
        Z = None if spec.random is None else patsy.dmatrix(
            spec.random, frame, NA_action=patsy.NAAction(NA_types=[]),
            return_type="dataframe")
    except patsy.PatsyError as error:
        raise SpecError(f"cannot build the formula: {' '.join(str(error).split())}") from None
    used = [c for c in frame.columns if isinstance(c, str) and c != "row"
            and (c in spec.formula or (spec.random is not None and c in spec.random))]
    terms = tuple(Term("", "term", "", name) for name in X.columns)
    return assemble_design(data, spec, y.iloc[:, 0], X, Z, terms, frame[used])


def response_surface(data: SessionData, outcome: str, predictor: str,
                     covariance: CovarianceSpec | None = None, method: Method = "REML",
                     center: float | None = None, df: DF = "satterthwaite") -> APIMResult:
    """Polynomial response-surface APIM of ``outcome`` on both members' ``predictor``.

    ``P`` and ``T`` are the two roles' ratings at the session, both centred on ``center``
    (default: the grand mean of all ratings, one constant so that ``P = T`` stays the line
    of congruence). Use :func:`apim.inference.surface.surface_parameters` for a1-a4.
    ``covariance`` may ask for random role intercepts (default) or none, not slopes.
    """
    covariance = covariance or CovarianceSpec(residual="un")
    if covariance.random == "slopes":
        raise SpecError("a response surface takes random='intercepts' or 'none', not slopes")
    frame = data.frame
    x = data.numeric(predictor)
    y = data.numeric(outcome)
    c = float(x.mean()) if center is None else center
    partner = partner_values(data, [predictor])[predictor]
    first = (frame["role"] == data.roles[0]).to_numpy()
    p = pd.Series(np.where(first, x, partner), index=frame.index) - c
    t = pd.Series(np.where(first, partner, x), index=frame.index) - c
    columns, terms, z = {}, [], {}
    for r in data.roles:
        d = (frame["role"] == r).astype(float)
        for label, values in (("intercept", d), ("P", d * p), ("T", d * t), ("P2", d * p * p),
                              ("PxT", d * p * t), ("T2", d * t * t)):
            term = Term(r, "intercept", "none", "") if label == "intercept" else \
                Term(r, "surface", "none", label)
            columns[term.name] = values
            terms.append(term)
        z[r] = d
    spec = APIMSpec(outcome=outcome, predictors=(predictor,), covariance=covariance,
                    method=method)
    Z = None if covariance.random == "none" else pd.DataFrame(z)
    sources = pd.DataFrame({outcome: y, predictor: x, f"{predictor}_partner": partner})
    design = assemble_design(data, spec, y, pd.DataFrame(columns), Z, tuple(terms), sources)
    return APIMResult(design=design, engine=fit_engine(design.model, spec.method), df=df)
