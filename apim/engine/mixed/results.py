"""The result of a mixed-model fit: :class:`MixedFit`, the natural-scale variance
parameters with their SEs, the boundary findings and the fitted values.

Examples
--------
>>> import numpy as np
>>> from apim.engine import MixedModel, Residual, Unstructured, estimate_mixed
>>> rng = np.random.default_rng(1)
>>> dyad = np.repeat(np.arange(30), 8); role = np.tile([0, 1], 120)
>>> session = np.tile(np.repeat([1, 2, 3, 4], 2), 30)
>>> X = np.column_stack([1 - role, role]).astype(float)
>>> y = X @ [1.0, 2.0] + rng.normal(size=(30, 2))[dyad, role] + rng.normal(size=240)
>>> fit = estimate_mixed(MixedModel(y=y, X=X, dyad=dyad, role=role, session=session,
...                                 Z=X, random=Unstructured(2),
...                                 residual=Residual.named("un")))
>>> list(fit.variance.index)
['sd(z0)', 'sd(z1)', 'cor(z0,z1)', 'sigma(0)', 'sigma(1)', 'rho']
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from apim.engine.control import FitControl
from apim.engine.mixed.df import satterthwaite_df, sorted_containment_df
from apim.engine.mixed.likelihood import Evaluation, split_theta
from apim.engine.mixed.model import MixedModel, Prepared, row_blocks
from apim.engine.mixed.scaling import Scaling
from apim.engine.parameters import VarianceParameter, parameter_table
from apim.errors import BoundaryWarning

__all__ = ["MixedFit", "BOUNDARY_NOTE", "fit_result", "variance_records", "dyad_sd_at_zero"]


def criteria(loglik: float, n_params: int, n_obs: int, p: int, method: str
             ) -> tuple[float, float]:
    """AIC and BIC as nlme computes them (BIC with ``N - p`` observations under REML)."""
    n = n_obs - (p if method == "REML" else 0)
    return -2 * loglik + 2 * n_params, -2 * loglik + n_params * float(np.log(n))


@dataclass(frozen=True, eq=False)
class MixedFit:
    """Result of :func:`estimate_mixed`. Arrays of rows are in the model's input order.

    Attributes
    ----------
    model : MixedModel
        The (unchanged) model that was fitted.
    method : {"REML", "ML"}
    theta : unconstrained covariance parameters at the optimum
    loglik : log-likelihood in nlme's convention
    coef : pandas.Series of fixed effects
    cov_coef : pandas.DataFrame, ``(X'V^-1 X)^-1``
    df_satterthwaite, df_containment : pandas.Series of denominator df per coefficient
    parameters : tuple of VarianceParameter
        Natural-scale variance parameters as typed records (level, kind, effects, roles,
        estimate, SE, at-boundary flag); select them by their fields.
    variance : pandas.DataFrame of the same, indexed by each record's ``label``, with
        columns ``estimate``, ``se``, ``at_boundary``
    G, T : random-effect covariance matrices at the dyad and therapist level (or None)
    converged, message, n_evaluations : optimizer diagnostics (``n_evaluations``
        counts every likelihood evaluation, those of the Hessians' difference columns
        included; the exact random-effect block of a Hessian calls no evaluation)
    boundary : one line per boundary finding (zero SD, correlation at +-1, singular G or
        therapist matrix, singular information)
    fitted, fitted_population, residuals : arrays in input row order
    random_effects, therapist_effects : predicted random effects (DataFrames)
    hessian : Hessian of ``-loglik`` in ``theta``
    cov_theta : its (pseudo-)inverse, the covariance of ``theta``
    d_xvx : derivatives of ``X'V^-1 X`` with respect to ``theta`` (for Satterthwaite df)
    fit_seconds : wall time of the estimation
    control : the FitControl used
    """

    model: MixedModel
    method: str
    theta: np.ndarray
    loglik: float
    coef: pd.Series
    cov_coef: pd.DataFrame
    df_satterthwaite: pd.Series
    df_containment: pd.Series
    parameters: tuple[VarianceParameter, ...]
    variance: pd.DataFrame
    G: np.ndarray | None
    T: np.ndarray | None
    converged: bool
    message: str
    n_evaluations: int
    boundary: tuple[str, ...]
    fitted: np.ndarray
    fitted_population: np.ndarray
    residuals: np.ndarray
    random_effects: pd.DataFrame
    therapist_effects: pd.DataFrame
    hessian: np.ndarray
    cov_theta: np.ndarray
    d_xvx: np.ndarray
    fit_seconds: float
    n_obs: int
    n_dyads: int
    control: FitControl = field(default_factory=FitControl)

    @property
    def n_params(self) -> int:
        """Parameters counted by nlme's AIC/BIC: fixed effects plus covariance parameters."""
        return len(self.coef) + len(self.theta)

    @property
    def aic(self) -> float:
        return criteria(self.loglik, self.n_params, self.n_obs, len(self.coef), self.method)[0]

    @property
    def bic(self) -> float:
        return criteria(self.loglik, self.n_params, self.n_obs, len(self.coef), self.method)[1]

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov_coef)), index=self.coef.index)


def _names(model: MixedModel) -> tuple[list[str], list[str], list[str]]:
    p = np.asarray(model.X).reshape(len(model.y), -1).shape[1]
    x = list(model.x_names) or [f"x{j}" for j in range(p)]
    z = list(model.z_names) or [f"z{j}" for j in range(model.q)]
    t = list(model.therapist_names) or [f"therapist{j}" for j in range(model.q_therapist)]
    return x, z, t


def variance_records(model: MixedModel, theta: np.ndarray) -> list[VarianceParameter]:
    """Natural-scale variance parameters of ``model`` at ``theta`` (no SEs yet)."""
    _, z_names, t_names = _names(model)
    t_g, t_t, t_r = split_theta(model, theta)
    out: list[VarianceParameter] = []
    if model.random is not None:
        out += model.random.records(t_g, z_names, "dyad")
    if model.therapist_random is not None:
        out += model.therapist_random.records(t_t, t_names, "therapist")
    out += model.residual.records(t_r)
    return out


def _natural(model: MixedModel, theta: np.ndarray) -> np.ndarray:
    return np.array([p.estimate for p in variance_records(model, theta)])


def _natural_table(model: MixedModel, theta: np.ndarray, cov_theta: np.ndarray
                   ) -> list[VarianceParameter]:
    """Records with delta-method SEs from the covariance of ``theta``."""
    records = variance_records(model, theta)
    jac = np.zeros((len(records), len(theta)))
    for j in range(len(theta)):
        step = 1e-6 * max(1.0, abs(theta[j]))
        e = np.zeros(len(theta))
        e[j] = step
        jac[:, j] = (_natural(model, theta + e) - _natural(model, theta - e)) / (2 * step)
    cov = jac @ cov_theta @ jac.T
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    return [p.with_values(p.estimate, s) for p, s in zip(records, se)]


def _singular(level: str, g: np.ndarray | None, tolerance: float) -> str | None:
    """A line when ``g`` (of standardised columns) is singular by its relative
    eigenvalues; None otherwise."""
    if g is None or len(g) < 2:
        return None
    values = np.linalg.eigvalsh((g + g.T) / 2)
    top = max(float(values[-1]), 0.0)
    if top > 0 and values[0] < tolerance * top:
        return (f"the {level}-level random-effect covariance matrix is singular (smallest "
                f"eigenvalue {max(values[0], 0.0) / top:.1e} of the largest): some random "
                "effects are (nearly) linear combinations of others")
    return None


def _boundary(inner: MixedModel, inner_theta: np.ndarray, records: list[VarianceParameter],
              hessian: np.ndarray, control: FitControl
              ) -> tuple[list[VarianceParameter], tuple[str, ...]]:
    """Flag boundary estimates on the standardised model (so the decision does not depend
    on units): an SD at zero, a correlation at +-1, a singular G or therapist matrix by
    relative eigenvalues, a singular information matrix. Returns the records with
    ``at_boundary`` set and one line per finding."""
    scaled = variance_records(inner, inner_theta)
    residual_sd = max((p.estimate for p in scaled if p.level == "residual"
                       and p.kind == "sd"), default=1.0)
    flags: list[str] = []
    marked = []
    for p, q in zip(records, scaled):
        hit = False
        if p.kind == "sd" and q.estimate < control.zero_sd_tolerance * residual_sd:
            flags.append(f"{p.level} {p.label} is at zero")
            hit = True
        elif p.kind in ("cor", "phi") and abs(q.estimate) > 1 - control.correlation_tolerance:
            flags.append(f"{p.level} {p.label} is at {np.sign(q.estimate):+.0f}")
            hit = True
        marked.append(p.with_values(p.estimate, p.se, hit))
    t_g, t_t, _ = split_theta(inner, inner_theta)
    for level, structure, t in (("dyad", inner.random, t_g),
                                ("therapist", inner.therapist_random, t_t)):
        if structure is None:
            continue
        line = _singular(level, structure.matrix(t), control.singular_tolerance)
        if line is not None and not any(p.at_boundary for p in marked if p.level == level):
            flags.append(line)
        if line is not None:
            marked = [p.with_values(p.estimate, p.se, True) if p.level == level else p
                      for p in marked]
    if not flags and len(hessian) and np.linalg.eigvalsh(hessian).min() <= 0:
        flags.append("the information matrix of the covariance parameters is singular: "
                     "some of them are not identified")
    return marked, tuple(flags)


BOUNDARY_NOTE = ("Satterthwaite df and the SEs of the variance parameters are unreliable "
                 "there; consider a simpler random part")


def dyad_sd_at_zero(model: MixedModel, theta: np.ndarray, control: FitControl) -> bool:
    """Whether a dyad-level random-effect SD of the standardised ``model`` is at zero (as
    :func:`_boundary` decides)."""
    records = variance_records(model, theta)
    residual_sd = max((p.estimate for p in records if p.level == "residual"
                       and p.kind == "sd"), default=1.0)
    return any(p.level == "dyad" and p.kind == "sd"
               and p.estimate < control.zero_sd_tolerance * residual_sd for p in records)



def _fitted(prep: Prepared, beta: np.ndarray, b: np.ndarray, v: np.ndarray, y_scale: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """Conditional and population fitted values in the input row order and the original
    units, block by block of sorted rows (no full-size temporaries)."""
    qt, q, p = prep.q_t, prep.q, prep.p
    raw, order, dyad = prep.raw, prep.order, prep.layout.dyad
    fitted, population = np.empty(prep.n), np.empty(prep.n)
    for rows in row_blocks(prep.n):
        xb = raw[rows, qt + q:qt + q + p] @ beta
        here = dyad[rows]
        block = xb + np.einsum("nk,nk->n", raw[rows, qt:qt + q], b[here])
        if qt:
            block = block + np.einsum("nk,nk->n", raw[rows, :qt], v[prep.cluster[here]])
        fitted[order[rows]] = block * y_scale
        population[order[rows]] = xb * y_scale
    return fitted, population


def fit_result(scaling: Scaling, prep: Prepared, method: str, inner_theta: np.ndarray,
            ev: Evaluation, inner_hess: np.ndarray, control: FitControl, converged: bool,
            message: str, n_eval: int, clock: float) -> MixedFit:
    model, inner = scaling.original, scaling.model
    reml = method == "REML"
    theta, jac = scaling.outer_theta(inner_theta)
    hess = inner_hess * np.outer(jac, jac)  # of -logLik in the original parameters
    inner_cov = np.linalg.pinv(inner_hess)  # inverse observed information
    cov_theta = inner_cov / np.outer(jac, jac)
    records = _natural_table(model, theta, cov_theta)
    records, boundary = _boundary(inner, inner_theta, records, inner_hess, control)
    if boundary:
        warnings.warn("boundary estimate: " + "; ".join(boundary) + ". " + BOUNDARY_NOTE,
                      BoundaryWarning, stacklevel=4)
    x_names, z_names, t_names = _names(model)
    t_g, t_t, _ = split_theta(model, theta)
    lay = prep.layout
    qt, q = prep.q_t, prep.q
    labels = np.asarray(model.dyad)[prep.order[lay.dyad_start]]
    b = np.zeros((len(labels), q))
    for s in range(prep.n_slots if q else 0):
        rows = np.flatnonzero(prep.slot == s)
        b[rows] = ev.blups[prep.cluster[rows], qt + s * q: qt + (s + 1) * q]
    therapist_effects = pd.DataFrame(columns=t_names)
    v = ev.blups[:, :qt]
    if qt:
        first_dyad = np.flatnonzero(prep.slot == 0)
        t_labels = np.asarray(model.therapist)[prep.order[lay.dyad_start[first_dyad]]]
        therapist_effects = pd.DataFrame(v[prep.cluster[first_dyad]] * scaling.y / scaling.zt,
                                         index=t_labels, columns=t_names)
    fitted, population = _fitted(prep, ev.beta, b, v, scaling.y)
    y = np.asarray(model.y, float)
    beta = scaling.beta(ev.beta)
    cov_beta = scaling.cov_beta(ev.cov_beta)
    inner_d = ev.d_xvx if ev.d_xvx is not None else np.zeros((0, prep.p, prep.p))
    d_xvx = scaling.d_xvx(inner_d, 1 / jac)
    starts = [lay.dyad_start]  # the rows of each group (sorted order), outermost first
    if model.therapist is not None:
        starts.insert(0, lay.dyad_start[prep.slot == 0])
    return MixedFit(
        model=model, method=method, theta=theta,
        loglik=float(scaling.loglik(float(ev.loglik), reml)),
        coef=pd.Series(beta, index=x_names),
        cov_coef=pd.DataFrame(cov_beta, index=x_names, columns=x_names),
        df_satterthwaite=pd.Series(satterthwaite_df(ev.cov_beta, inner_d, inner_cov,
                                                    np.eye(len(x_names))), index=x_names),
        df_containment=pd.Series(sorted_containment_df(np.asarray(model.X, float), prep.order,
                                                       starts), index=x_names),
        parameters=tuple(records), variance=parameter_table(records),
        G=model.random.matrix(t_g) if model.random is not None else None,
        T=model.therapist_random.matrix(t_t) if model.therapist_random is not None else None,
        converged=converged, message=message, n_evaluations=n_eval, boundary=boundary,
        fitted=fitted, fitted_population=population, residuals=np.subtract(y, fitted),
        random_effects=pd.DataFrame(b * scaling.y / scaling.z, index=labels,
                                    columns=z_names),
        therapist_effects=therapist_effects, hessian=hess, cov_theta=cov_theta,
        d_xvx=d_xvx, fit_seconds=time.perf_counter() - clock,
        n_obs=prep.n, n_dyads=len(labels), control=control)

