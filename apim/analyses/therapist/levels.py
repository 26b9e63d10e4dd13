"""One variable rated by one role, fitted through :func:`apim.fit` as the unconditional
(or covariate-adjusted) three-level model of its variance shares.

The model ``y_jit = mu + v_j + u_ji + e_jit`` (nlme ``lme(y ~ 1, random = ~ 1 |
therapist/dyad)``) is a :class:`~apim.FormulaSpec` on the role's rows: ``random="1"`` (a
random intercept per dyad), ``therapist_level=True`` (a random intercept per therapist)
and ``residual="independent"`` (one residual variance).

Examples
--------
>>> import apim
>>> unit = fit_level(apim.load_alliance(), "alliance", "patient", ())
>>> unit.levels, unit.result.spec.formula
(('therapist', 'dyad', 'session'), 'alliance ~ 1')
>>> bool(abs(unit.shares.sum() - 1) < 1e-12)
True
"""

from __future__ import annotations

import keyword
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from apim.data.session import SessionData
from apim.engine.mixed.estimate import MixedFit
from apim.engine.mixed.model import MixedModel
from apim.errors import FitError, SpecError
from apim.model.registry import fit
from apim.model.result import APIMResult
from apim.model.spec import FormulaSpec, Method

__all__ = ["LevelFit", "fit_level", "level_spec", "components", "term"]


def term(column: str) -> str:
    """``column`` as a patsy term: bare when it is a Python name, else quoted.

    Examples
    --------
    >>> term("alliance"), term("session 2")
    ('alliance', "Q('session 2')")
    """
    if column.isidentifier() and not keyword.iskeyword(column):
        return column
    quote = '"' if "'" in column else "'"
    return f"Q({quote}{column}{quote})"


def level_spec(variable: str, covariates: Sequence[str], dyad: bool, therapist: bool,
               method: Method) -> FormulaSpec:
    """The public spec of one role's variance-shares model.

    Examples
    --------
    >>> level_spec("outcome", ("treatment",), True, True, "REML").formula
    'outcome ~ treatment'
    """
    right = " + ".join(term(c) for c in covariates) or "1"
    return FormulaSpec(f"{term(variable)} ~ {right}", random="1" if dyad else None,
                       residual="independent", therapist_level=therapist, method=method)


def components(model: MixedModel, fitted: MixedFit) -> np.ndarray:
    """Variances top level first: [therapist], [dyad], residual."""
    out = []
    if model.therapist is not None:
        out.append(float(np.asarray(fitted.T)[0, 0]))
    if model.random is not None:
        out.append(float(np.asarray(fitted.G)[0, 0]))
    residual = next(p for p in fitted.parameters
                    if p.level == "residual" and p.kind == "sd")
    out.append(residual.estimate ** 2)
    return np.array(out)


@dataclass(frozen=True, eq=False)
class LevelFit:
    """One role's variable: its fitted model and which levels it has.

    Attributes
    ----------
    variable, role : str
    result : APIMResult
        The fit through :func:`apim.fit`.
    levels : tuple of str
        Top to bottom; the last is the residual.
    balanced_n : int
        Sessions per dyad in a balanced one-way design (no therapist level, no
        covariates, every dyad with the same number of ratings), else 0.
    """

    variable: str
    role: str
    result: APIMResult
    levels: tuple[str, ...]
    balanced_n: int

    @property
    def model(self) -> MixedModel:
        """The engine's model of the fit (its arrays: outcome, design, dyads)."""
        return self.result.design.model

    @property
    def variances(self) -> np.ndarray:
        """The variance at each level, top first."""
        return components(self.model, self.result.engine)

    @property
    def shares(self) -> np.ndarray:
        """Each level's share of the total variance."""
        parts = self.variances
        return parts / parts.sum()


def fit_level(data: SessionData, variable: str, role: str, covariates: Sequence[str],
              method: Method = "REML") -> LevelFit:
    """Fit the variance-shares model of ``variable`` rated by ``role`` (see the module
    docstring) on the role's rows with the variable and every covariate.

    Without a therapist column (or with one therapist among the rows) the model has two
    levels, dyad and session; with one rating per person the dyad is the lowest level.

    Raises
    ------
    SpecError
        When the role has no ratings, or one rating per dyad and no therapist level.
    """
    frame = data.frame
    values = data.numeric(variable)
    keep = (frame["role"] == role) & values.notna()
    if covariates:
        keep &= frame[list(covariates)].notna().all(axis=1)
    ids = ["row", "dyad", "session", "role"] + (["therapist"] if data.has_therapist else [])
    sub = frame.loc[keep, list(dict.fromkeys([*ids, variable, *covariates]))]
    sub[variable] = values[keep]
    if sub.empty:
        raise SpecError(f"column {variable!r} has no values rated by role {role!r}")
    per_dyad = sub.groupby("dyad")["session"].transform("size").to_numpy()
    has_dyad = bool(per_dyad.max() > 1)
    has_therapist = data.has_therapist and sub["therapist"].nunique() > 1
    if not has_dyad and not has_therapist:
        raise SpecError(f"{variable!r} rated by {role!r} has one value per dyad and no "
                        "therapist level: there is no variance to share out")
    spec = level_spec(variable, covariates, has_dyad, has_therapist, method)
    result = fit(data.replace(sub.reset_index(drop=True)), spec)
    if not np.isfinite(result.statistics.loglik):
        raise FitError(f"the fit of {spec.formula!r} for role {role!r} did not reach a "
                       "finite likelihood")
    levels = (("therapist",) if has_therapist else ()) + (
        ("dyad", "session") if has_dyad else ("dyad",))
    sizes = np.unique(per_dyad)
    balanced = not has_therapist and has_dyad and not covariates and len(sizes) == 1
    return LevelFit(variable, role, result, levels, int(sizes[0]) if balanced else 0)
