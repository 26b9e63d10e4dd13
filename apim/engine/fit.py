"""Fitting: moment-based start values, quasi-Newton then Newton steps, and the results.

Examples
--------
>>> import numpy as np
>>> from apim.engine import MixedModel, Unstructured, Residual
>>> rng = np.random.default_rng(1)
>>> dyad = np.repeat(np.arange(30), 8); role = np.tile([0, 1], 120)
>>> session = np.tile(np.repeat([1, 2, 3, 4], 2), 30)
>>> X = np.column_stack([1 - role, role]).astype(float)
>>> u = rng.normal(size=(30, 2))[dyad, role]
>>> y = X @ [1.0, 2.0] + u + rng.normal(size=240)
>>> result = fit(MixedModel(y=y, X=X, dyad=dyad, role=role, session=session, Z=X,
...                         random=Unstructured(2), residual=Residual.named("un")))
>>> result.converged
True
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from apim.engine.inference import containment_df, satterthwaite_df
from apim.engine.likelihood import Evaluation, evaluate, split_theta
from apim.engine.model import MixedModel, Prepared
from apim.engine.threads import one_blas_thread
from apim.errors import BoundaryWarning, SpecError

__all__ = ["fit", "MixedFit", "start_values"]


Method = Literal["REML", "ML"]


@dataclass(frozen=True, eq=False)
class MixedFit:
    """Result of :func:`fit`. Arrays of rows are in the model's input order.

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
    variance : pandas.DataFrame with columns ``estimate`` and ``se`` (natural scale: SDs,
        correlations, residual SDs per role, rho, phi)
    G, T : random-effect covariance matrices at the dyad and therapist level (or None)
    converged, message, n_evaluations, boundary : optimizer diagnostics (``n_evaluations``
        counts every likelihood evaluation, those of the Hessian included)
    fitted, fitted_population, residuals : arrays in input row order
    random_effects, therapist_effects : predicted random effects (DataFrames)
    hessian : Hessian of ``-loglik`` in ``theta``
    cov_theta : its (pseudo-)inverse, the covariance of ``theta``
    d_xvx : derivatives of ``X'V^-1 X`` with respect to ``theta`` (for Satterthwaite df)
    fit_seconds : wall time of the estimation
    """

    model: MixedModel
    method: str
    theta: np.ndarray
    loglik: float
    coef: pd.Series
    cov_coef: pd.DataFrame
    df_satterthwaite: pd.Series
    df_containment: pd.Series
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

    @property
    def n_params(self) -> int:
        """Parameters counted by nlme's AIC/BIC: fixed effects plus covariance parameters."""
        return len(self.coef) + len(self.theta)

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_params

    @property
    def bic(self) -> float:
        n = self.n_obs - (len(self.coef) if self.method == "REML" else 0)
        return -2 * self.loglik + self.n_params * np.log(n)

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov_coef)), index=self.coef.index)


def _names(model: MixedModel) -> tuple[list[str], list[str], list[str]]:
    p = np.asarray(model.X).reshape(len(model.y), -1).shape[1]
    x = list(model.x_names) or [f"x{j}" for j in range(p)]
    z = list(model.z_names) or [f"z{j}" for j in range(model.q)]
    t = list(model.therapist_names) or [f"therapist{j}" for j in range(model.q_therapist)]
    return x, z, t


def start_values(model: MixedModel, prep: Prepared) -> np.ndarray:
    """Moment-based starting values: OLS residuals split into dyad, person and session
    parts, their variances, the partners' same-session correlation and lag-1 correlation."""
    qt, q, p = prep.q_t, prep.q, prep.p
    raw = prep.raw
    x, y = raw[:, qt + q:qt + q + p], raw[:, -1]
    e = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    lay = prep.layout
    dyad = lay.dyad
    person = dyad * 2 + lay.role
    counts = np.bincount(person, minlength=2 * (dyad.max() + 1))
    means = np.bincount(person, e) / np.maximum(counts, 1)
    w = e - means[person]
    var_r = np.array([np.var(w[lay.role == r]) if np.any(lay.role == r) else np.var(w)
                      for r in (0, 1)])
    var_r = np.where(var_r > 0, var_r, np.var(e) + 1e-8)
    with np.errstate(invalid="ignore", divide="ignore"):  # e.g. one session per person
        has = lay.pair >= 0
        rho = float(np.corrcoef(w[has], w[lay.pair[has]])[0, 1]) if has.sum() > 2 else 0.0
        has = lay.previous >= 0
        phi = float(np.corrcoef(w[has], w[lay.previous[has]])[0, 1]) if has.sum() > 2 \
            else 0.0
    parts = []
    if model.random is not None:
        # per dyad least-squares coefficient of each column; its spread over dyads
        # (weighted by the column's sum of squares) minus the sampling noise
        z = raw[:, qt:qt + q]
        zz = np.add.reduceat(z ** 2, lay.dyad_start)
        ze = np.add.reduceat(z * e[:, None], lay.dyad_start)
        variances = []
        for k in range(q):
            ok = zz[:, k] > 1e-12
            weight, coef = zz[ok, k], ze[ok, k] / np.where(ok, zz[:, k], 1)[ok]
            if weight.size < 2:
                variances.append(var_r.mean())
                continue
            centre = np.sum(weight * coef) / weight.sum()
            spread = np.sum(weight * (coef - centre) ** 2)
            estimate = (spread - weight.size * var_r.mean()) / weight.sum()
            variances.append(max(estimate, 0.05 * spread / weight.sum(), 1e-6 * np.var(e)))
        parts.append(model.random.start(np.array(variances)))
    if model.therapist_random is not None:
        cl = prep.cluster[dyad]
        tm = np.bincount(cl, e) / np.bincount(cl)
        tv = max(0.5 * np.var(tm), 1e-3 * np.var(e))
        parts.append(model.therapist_random.start(np.full(prep.q_t, tv)))
    parts.append(model.residual.start(var_r, np.nan_to_num(rho), np.nan_to_num(phi)))
    return np.concatenate(parts)


def _hessian(model: MixedModel, prep: Prepared, theta: np.ndarray, reml: bool,
             calls: list[int] | None = None) -> np.ndarray:
    """Hessian of ``-loglik``: central differences of the analytic gradient (``2 k``
    evaluations, added to ``calls[0]``)."""
    k = len(theta)
    if calls is not None:
        calls[0] += 2 * k
    h = np.zeros((k, k))
    for j in range(k):
        step = 1e-5 * max(1.0, abs(theta[j]))
        e = np.zeros(k)
        e[j] = step
        gp = evaluate(model, prep, theta + e, reml).gradient
        gm = evaluate(model, prep, theta - e, reml).gradient
        h[:, j] = -(gp - gm) / (2 * step)
    return (h + h.T) / 2


def _natural(model: MixedModel, theta: np.ndarray) -> dict[str, float]:
    _, z_names, t_names = _names(model)
    t_g, t_t, t_r = split_theta(model, theta)
    out: dict[str, float] = {}
    if model.random is not None:
        out.update(model.random.natural(t_g, z_names))
    if model.therapist_random is not None:
        out.update(model.therapist_random.natural(t_t, t_names))
    out.update(model.residual.natural(t_r))
    return out


def _natural_table(model: MixedModel, theta: np.ndarray, cov_theta: np.ndarray
                   ) -> pd.DataFrame:
    est = _natural(model, theta)
    names = list(est)
    jac = np.zeros((len(names), len(theta)))
    for j in range(len(theta)):
        step = 1e-6 * max(1.0, abs(theta[j]))
        e = np.zeros(len(theta))
        e[j] = step
        up, down = _natural(model, theta + e), _natural(model, theta - e)
        jac[:, j] = [(up[n] - down[n]) / (2 * step) for n in names]
    cov = jac @ cov_theta @ jac.T
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    return pd.DataFrame({"estimate": [est[n] for n in names], "se": se}, index=names)


def _boundary(table: pd.DataFrame, hessian: np.ndarray) -> tuple[str, ...]:
    scale = table.loc[[n for n in table.index if n.startswith("sigma(")], "estimate"].max()
    flags = []
    for name, value in table["estimate"].items():
        if name.startswith("sd(") and value < 1e-4 * scale:
            flags.append(f"{name} is at zero")
        if (name.startswith("cor(") or name in ("rho", "phi")) and abs(value) > 0.9999:
            flags.append(f"{name} is at {np.sign(value):+.0f}")
    if not flags and len(hessian) and np.linalg.eigvalsh(hessian).min() <= 0:
        flags.append("the information matrix of the covariance parameters is singular: "
                     "some of them are not identified")
    return tuple(flags)


def _quasi_newton(objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
                  theta: np.ndarray, scale: float) -> tuple[np.ndarray, list[str]]:
    """BFGS, then L-BFGS-B from where it stopped if it did not get close."""
    from scipy import optimize  # not on import: ``import apim`` stays light

    messages = []
    # the round-off in the per-observation gradient grows with the number of observations
    gtol = 1e-7 * max(1.0, np.sqrt(scale / 1e4))
    for solver, options in (("BFGS", {"gtol": gtol, "maxiter": 2000}),
                            ("L-BFGS-B", {"ftol": 1e-13, "gtol": 1e-8, "maxiter": 5000})):
        result = optimize.minimize(objective, theta, jac=True, method=solver,
                                   options=options)
        messages.append(f"{solver}: {result.message}")
        if np.all(np.isfinite(result.x)) and result.fun <= objective(theta)[0]:
            theta = result.x
        if result.success or np.max(np.abs(result.jac), initial=0) * scale < 1e-1:
            break  # Newton steps finish the job
    return theta, messages


def _positive_definite(matrix: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return False
    return True


def _spread(model: MixedModel, theta: np.ndarray, theta0: np.ndarray) -> np.ndarray:
    """``theta`` with the dyad-level G replaced by a diagonal one whose variances are the
    current ones floored at a tenth of the starting ones (correlations reset to zero)."""
    t_g, t_t, t_r = split_theta(model, theta)
    g_now = np.diag(model.random.matrix(t_g))
    g_start = np.diag(model.random.matrix(split_theta(model, theta0)[0]))
    return np.concatenate([model.random.start(np.maximum(g_now, 0.1 * g_start)), t_t, t_r])


@one_blas_thread
def fit(model: MixedModel, method: Method = "REML", start: np.ndarray | None = None,
        max_newton: int = 8) -> MixedFit:
    """Fit ``model`` by REML (default) or ML.

    The optimizer runs BFGS with the analytic gradient from moment-based start values
    (falling back to L-BFGS-B from where BFGS stopped; when it ends where the information
    is singular, a second search starts from a full-rank G and the better optimum is
    kept), then Newton steps with the Hessian
    from differences of the analytic gradient until the expected gain of a further step is
    below 1e-9 in log-likelihood units (or, for very large data, below the round-off of the
    log-likelihood, 1e-11 of its value). Convergence, boundary estimates and the optimizer's
    message are reported; nothing is returned as NaN silently.

    Parameters
    ----------
    model : MixedModel
    method : {"REML", "ML"}
    start : array, optional
        Unconstrained starting values (default: :func:`start_values`).
    max_newton : int
        Newton steps after the quasi-Newton phase.

    Returns
    -------
    MixedFit
    """
    if method not in ("REML", "ML"):
        raise SpecError(f"method={method!r} must be 'REML' or 'ML'")
    clock = time.perf_counter()
    reml = method == "REML"
    prep = Prepared.of(model)
    theta0 = start_values(model, prep) if start is None else np.asarray(start, float)
    if len(theta0) != model.n_params:
        raise SpecError(f"start has {len(theta0)} values; the model has {model.n_params}")
    scale = float(prep.n)
    calls = [0]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        calls[0] += 1
        with np.errstate(all="ignore"):
            ev = evaluate(model, prep, theta, reml)
        if not np.isfinite(ev.loglik) or not np.all(np.isfinite(ev.gradient)):
            return np.inf, np.zeros_like(theta)  # outside the numerically usable region
        return -ev.loglik / scale, -ev.gradient / scale

    theta, messages = _quasi_newton(objective, theta0, scale)
    ev = evaluate(model, prep, theta, reml)
    calls[0] += 1
    hess = _hessian(model, prep, theta, reml, calls)
    if model.random is not None and not _positive_definite(hess):
        # a reduced-rank G can trap the search: restart with its variances spread out
        restart, more = _quasi_newton(objective, _spread(model, theta, theta0), scale)
        again = evaluate(model, prep, restart, reml)
        calls[0] += 1
        if again.loglik > ev.loglik + 1e-8:
            theta, ev = restart, again
            hess = _hessian(model, prep, theta, reml, calls)
            messages += ["restarted from a full-rank G"] + more
    message = "; ".join(messages)
    decrement = np.inf  # expected gain in log-likelihood of a full Newton step
    # round-off in the log-likelihood, a sum over N observations: below it no step is
    # meaningful and no decrease is real
    noise = 1e-10 * max(1.0, abs(ev.loglik))
    tolerance = max(1e-9, 0.1 * noise)
    for iteration in range(max_newton + 1):
        if not _positive_definite(hess):
            break
        step = np.linalg.solve(hess, ev.gradient)
        decrement = float(ev.gradient @ step) / 2
        if decrement < tolerance or iteration == max_newton:
            break
        for _half in range(10):
            trial = evaluate(model, prep, theta + step, reml, gradient=False)
            calls[0] += 1
            if np.isfinite(trial.loglik) and trial.loglik >= ev.loglik - noise:
                break
            step = step / 2
        else:
            break  # no step improves: stay where we are
        theta = theta + step
        ev = evaluate(model, prep, theta, reml)
        calls[0] += 1
        hess = _hessian(model, prep, theta, reml, calls)
    final = ev
    grad_norm = float(np.max(np.abs(final.gradient))) if len(theta) else 0.0
    converged = bool(np.isfinite(final.loglik) and (
        decrement < max(1e-6, 10 * noise) or grad_norm < 1e-3))
    cov_theta = np.linalg.pinv(hess)  # inverse observed information of theta
    table = _natural_table(model, theta, cov_theta)
    boundary = _boundary(table, hess)
    if boundary:
        warnings.warn("boundary estimate: " + "; ".join(boundary), BoundaryWarning,
                      stacklevel=2)
    if not converged:
        message = (f"{message}; largest gradient component {grad_norm:.2e}, "
                   f"Newton decrement {decrement:.2e}")
    seconds = time.perf_counter() - clock
    return _result(model, prep, method, theta, final, hess, cov_theta, table, boundary,
                   converged, message, calls[0], seconds)


def _result(model: MixedModel, prep: Prepared, method: str, theta: np.ndarray,
            ev: Evaluation, hess: np.ndarray, cov_theta: np.ndarray, table: pd.DataFrame,
            boundary: tuple[str, ...], converged: bool, message: str, n_eval: int,
            seconds: float) -> MixedFit:
    x_names, z_names, t_names = _names(model)
    t_g, t_t, _ = split_theta(model, theta)
    lay = prep.layout
    qt, q = prep.q_t, prep.q
    dyad_of_row = lay.dyad
    labels = np.asarray(model.dyad)[prep.order][lay.dyad_start]
    b = np.zeros((len(labels), q))
    for s in range(prep.n_slots if q else 0):
        rows = np.flatnonzero(prep.slot == s)
        b[rows] = ev.blups[prep.cluster[rows], qt + s * q: qt + (s + 1) * q]
    raw = prep.raw
    xb = raw[:, qt + q:qt + q + prep.p] @ ev.beta
    fitted_sorted = xb + np.einsum("nk,nk->n", raw[:, qt:qt + q], b[dyad_of_row])
    therapist_effects = pd.DataFrame(columns=t_names)
    if qt:
        v = ev.blups[:, :qt]
        fitted_sorted = fitted_sorted + np.einsum("nk,nk->n", raw[:, :qt],
                                                  v[prep.cluster[dyad_of_row]])
        first_dyad = np.flatnonzero(prep.slot == 0)
        t_labels = np.asarray(model.therapist)[prep.order][lay.dyad_start][first_dyad]
        therapist_effects = pd.DataFrame(v[prep.cluster[first_dyad]], index=t_labels,
                                         columns=t_names)
    inverse = np.empty_like(prep.order)
    inverse[prep.order] = np.arange(prep.n)
    fitted = fitted_sorted[inverse]
    y = np.asarray(model.y, float)
    cov = pd.DataFrame(ev.cov_beta, index=x_names, columns=x_names)
    levels = [np.asarray(model.dyad)]
    if model.therapist is not None:
        levels.insert(0, np.asarray(model.therapist))
    return MixedFit(
        model=model, method=method, theta=theta, loglik=float(ev.loglik),
        coef=pd.Series(ev.beta, index=x_names), cov_coef=cov,
        df_satterthwaite=pd.Series(satterthwaite_df(ev.cov_beta, ev.d_xvx, cov_theta,
                                                    np.eye(len(x_names))), index=x_names),
        df_containment=pd.Series(containment_df(np.asarray(model.X, float), levels),
                                 index=x_names),
        variance=table,
        G=model.random.matrix(t_g) if model.random is not None else None,
        T=model.therapist_random.matrix(t_t) if model.therapist_random is not None else None,
        converged=converged, message=message, n_evaluations=n_eval, boundary=boundary,
        fitted=fitted, fitted_population=xb[inverse], residuals=y - fitted,
        random_effects=pd.DataFrame(b, index=labels, columns=z_names),
        therapist_effects=therapist_effects, hessian=hess, cov_theta=cov_theta,
        d_xvx=ev.d_xvx, fit_seconds=seconds,
        n_obs=prep.n, n_dyads=len(labels))
