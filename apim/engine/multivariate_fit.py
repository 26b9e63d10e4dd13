"""Fitting the multivariate two-level model by ML or REML (:mod:`apim.engine.multivariate`).

Optimisation is over unconstrained parameters (log-Cholesky factors of ``Sigma_W`` and
``Sigma_B``, ``atanh(phi)``) with the analytic gradient: BFGS from moment-based start
values, then Newton steps with the Hessian from central differences of the analytic
gradient. Standard errors come from the **observed information on the natural scale**
(means, the lower triangles of ``Sigma_W`` and ``Sigma_B``, ``phi``): the Hessian of the
log-likelihood from central differences of its analytic gradient, inverted. Under ML the
means are parameters (the full Hessian, as lavaan's observed information); under REML the
covariance parameters' information comes from the REML criterion and the means' covariance
is ``(X'V^-1 X)^-1``. Functions of the parameters (e.g. regression coefficients) get their
standard errors by the delta method (:meth:`MultivariateFit.delta`).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(2)
>>> b = rng.normal(size=(30, 2)); cluster = np.repeat(np.arange(30), 5)
>>> y = b[cluster] + rng.normal(size=(150, 2))
>>> fit = fit_multivariate(y, cluster, np.tile(np.arange(1, 6), 30), names=("a", "b"))
>>> fit.converged, fit.sigma_w.shape
(True, (2, 2))
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from apim.engine.multivariate import MultivariateData, evaluate, prepare
from apim.errors import SpecError

__all__ = ["MultivariateFit", "fit_multivariate", "natural_names", "start_values"]

Method = Literal["ML", "REML"]


def natural_names(names: Sequence[str], ar1: bool) -> list[str]:
    """Names of the natural parameters: ``mean(v)``, ``within(v,w)``, ``between(v,w)``,
    ``phi``."""
    k = len(names)
    rows, cols = np.tril_indices(k)
    out = [f"mean({n})" for n in names]
    for level in ("within", "between"):
        out += [f"{level}({names[int(c)]},{names[int(r)]})" for r, c in zip(rows, cols)]
    return out + (["phi"] if ar1 else [])


@functools.lru_cache(maxsize=32)
def _tril(k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tril_indices(k)


def _vech(m: np.ndarray) -> np.ndarray:
    return m[_tril(len(m))]


def _unvech(v: np.ndarray, k: int) -> np.ndarray:
    rows, cols = _tril(k)
    m = np.zeros((k, k))
    m[rows, cols] = v
    m[cols, rows] = v
    return m


def _grad_vech(g: np.ndarray) -> np.ndarray:
    """Gradient with respect to the lower triangle of a symmetric matrix."""
    full = 2 * g - np.diag(np.diag(g))
    return _vech(full)


@dataclass(frozen=True, eq=False)
class MultivariateFit:
    """A fitted multivariate two-level model.

    Attributes
    ----------
    names : tuple of str
        The K variables.
    method : {"ML", "REML"}
    mu, sigma_w, sigma_b : estimated means, within and between covariance
    phi : float or None
        AR(1) parameter (None without AR(1)).
    loglik : float
    n_obs, n_clusters : observed values and clusters
    estimate, cov : natural parameter vector and its covariance (observed information)
    converged, message, iterations, seconds
    boundary : tuple of str
        Covariance estimates at the edge of the parameter space.
    """

    names: tuple[str, ...]
    method: str
    mu: np.ndarray
    sigma_w: np.ndarray
    sigma_b: np.ndarray
    phi: float | None
    loglik: float
    n_obs: int
    n_clusters: int
    estimate: np.ndarray = field(repr=False)
    cov: np.ndarray = field(repr=False)
    converged: bool = True
    message: str = ""
    iterations: int = 0
    seconds: float = 0.0
    boundary: tuple[str, ...] = ()
    blups: np.ndarray | None = field(default=None, repr=False)

    @property
    def parameter_names(self) -> list[str]:
        return natural_names(self.names, self.phi is not None)

    @property
    def n_params(self) -> int:
        return len(self.estimate)

    def unpack(self, nat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                 float | None]:
        """Natural vector -> (mu, Sigma_W, Sigma_B, phi)."""
        k = len(self.names)
        h = k * (k + 1) // 2
        phi = float(nat[k + 2 * h]) if self.phi is not None else None
        return nat[:k], _unvech(nat[k:k + h], k), _unvech(nat[k + h:k + 2 * h], k), phi

    def delta(self, func: Callable[[np.ndarray, np.ndarray, np.ndarray, float | None],
                                   np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Estimate and covariance of ``func(mu, Sigma_W, Sigma_B, phi)`` by the delta
        method (numerical Jacobian by central differences)."""
        value = np.atleast_1d(np.asarray(func(*self.unpack(self.estimate)), float))
        jac = np.zeros((len(value), self.n_params))
        for j in range(self.n_params):
            step = 1e-6 * max(1.0, abs(self.estimate[j]))
            e = np.zeros(self.n_params)
            e[j] = step
            up = np.atleast_1d(func(*self.unpack(self.estimate + e)))
            down = np.atleast_1d(func(*self.unpack(self.estimate - e)))
            jac[:, j] = (up - down) / (2 * step)
        return value, jac @ self.cov @ jac.T


def start_values(data: MultivariateData, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Moment estimates of ``Sigma_W`` (pooled within covariance, pairwise) and
    ``Sigma_B`` (covariance of cluster means minus ``Sigma_W / n``), made positive
    definite; ``ddof=0`` gives the ML and ``ddof=1`` the REML estimates in balanced
    complete data."""
    y, cl = data.y, data.cluster
    k = data.k
    obs = ~np.isnan(y)
    counts = np.zeros((data.n_clusters, k))
    np.add.at(counts, cl, obs)
    sums = np.zeros((data.n_clusters, k))
    np.add.at(sums, cl, np.where(obs, y, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    dev = y - means[cl]
    sw = np.zeros((k, k))
    for a in range(k):
        for b in range(a + 1):
            both = obs[:, a] & obs[:, b]
            denom = max(both.sum() - data.n_clusters, 1)
            sw[a, b] = sw[b, a] = np.sum(dev[both, a] * dev[both, b]) / denom
    frame_means = np.ma.masked_invalid(means)
    sb = np.ma.cov(frame_means, rowvar=False, allow_masked=True, ddof=ddof).filled(0.0)
    sb = np.atleast_2d(sb) - sw / max(float(np.nanmean(counts)), 1.0)
    return _positive(sw, 1e-2), _positive(sb, 0.05)


def _positive(m: np.ndarray, floor: float) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    top = max(vals.max(), 1e-8)
    return (vecs * np.maximum(vals, floor * top)) @ vecs.T


def _theta_of(sw: np.ndarray, sb: np.ndarray, phi: float | None) -> np.ndarray:
    parts = []
    for m in (sw, sb):
        lower = np.linalg.cholesky(m)
        lower[np.diag_indices(len(m))] = np.log(np.diag(lower))
        parts.append(lower[np.tril_indices(len(m))])
    if phi is not None:
        parts.append(np.array([np.arctanh(phi)]))
    return np.concatenate(parts)


def fit_multivariate(y: np.ndarray, cluster: np.ndarray, occasion: np.ndarray,
                     names: Sequence[str] | None = None, method: Method = "ML",
                     ar1: bool = False, max_newton: int = 10) -> MultivariateFit:
    """Fit the multivariate two-level model (module :mod:`apim.engine.multivariate`).

    Parameters
    ----------
    y : (n, K) array
        One row per cluster x occasion, one column per variable, NaN for a missing value.
    cluster, occasion : (n,) arrays
        Cluster labels and occasion numbers (integers; AR(1) uses their differences).
    names : sequence of str, optional
    method : {"ML", "REML"}
    ar1 : bool
        AR(1) over occasion numbers for the within part.
    max_newton : int
        Newton steps after BFGS.

    Returns
    -------
    MultivariateFit
    """
    if method not in ("ML", "REML"):
        raise SpecError(f"method={method!r} must be 'ML' or 'REML'")
    clock = time.perf_counter()
    data = prepare(y, cluster, occasion)
    k = data.k
    names = tuple(names) if names is not None else tuple(f"v{j}" for j in range(k))
    reml = method == "REML"
    h = k * (k + 1) // 2

    calls = [0]
    rows, cols = np.tril_indices(k)
    diag = rows == cols

    def chain(grad: np.ndarray, sigma_factor: np.ndarray) -> np.ndarray:
        """d loglik / d log-Cholesky parameters from d loglik / d Sigma (symmetric)."""
        d_lower = (2 * grad @ sigma_factor)[rows, cols]
        return np.where(diag, d_lower * sigma_factor[rows, cols], d_lower)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        calls[0] += 1
        lw, lb = _factor(theta[:h], k), _factor(theta[h:2 * h], k)
        phi = float(np.tanh(theta[2 * h])) if ar1 else None
        ev = evaluate(data, lw @ lw.T, lb @ lb.T, phi, reml=reml)
        if not np.isfinite(ev.loglik):
            return np.inf, np.zeros_like(theta)
        grad = np.concatenate([chain(ev.grad_w, lw),
                               chain(ev.grad_b, lb),
                               [ev.grad_phi * (1 - phi ** 2)] if phi is not None else []])
        return -ev.loglik, -grad

    sw0, sb0 = start_values(data, ddof=1 if reml else 0)
    phi0 = 0.2 if ar1 else None
    # Newton on the natural scale from the moment estimates (exact ML/REML in balanced
    # complete data), with the differenced Hessian that also gives the observed information
    mu0 = evaluate(data, sw0, sb0, phi0, reml=reml).mu
    nat, hess, converged = _newton(data, _pack(mu0, sw0, sb0, phi0, reml), ar1, reml)
    calls[0] += len(nat) + 2
    messages = ["Newton from moment estimates"]
    if not converged:  # far start or boundary: quasi-Newton first, then Newton steps
        from scipy import optimize  # not on import: ``import apim`` stays light

        result = optimize.minimize(objective, _theta_of(sw0, sb0, phi0), jac=True,
                                   method="BFGS",
                                   options={"gtol": 1e-5 * max(1.0, data.n_obs / 1e3),
                                            "maxiter": 3000})
        messages = [f"BFGS: {result.message}"]
        lw, lb = _factor(result.x[:h], k), _factor(result.x[h:2 * h], k)
        phi1 = float(np.tanh(result.x[2 * h])) if ar1 else None
        mu1 = evaluate(data, lw @ lw.T, lb @ lb.T, phi1, reml=reml).mu
        bfgs = _pack(mu1, lw @ lw.T, lb @ lb.T, phi1, reml)
        nat, hess, converged = _newton(data, bfgs, ar1, reml, rounds=max_newton)
        calls[0] += 2 * len(nat) + 1
        if not converged:  # at the boundary of the parameter space: the BFGS optimum
            grad_theta = objective(result.x)[1]
            converged = bool(np.max(np.abs(grad_theta)) < 1e-3 * max(1.0, data.n_obs / 1e3))
            nat = bfgs
            hess = _fd_hessian(lambda x: natural_gradient(data, x, ar1, reml), nat)
            messages.append("estimates at the boundary: SEs from the unconstrained "
                            "information are approximate")
    try:
        cov = np.linalg.inv(-hess)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(-hess)
    mu, sw, sb, phi = _unpack(nat, k, ar1, reml)
    ev = evaluate(data, sw, sb, phi, mu=None, reml=reml)
    if reml:
        full = np.zeros((len(nat) + k, len(nat) + k))
        full[:k, :k] = np.linalg.inv(ev.xvx)
        full[k:, k:] = cov
        cov, nat = full, np.concatenate([ev.mu, nat])
    if not converged:
        messages.append("the Newton phase did not converge")
    return MultivariateFit(
        names=names, method=method, mu=ev.mu, sigma_w=sw, sigma_b=sb, phi=phi,
        loglik=ev.loglik, n_obs=data.n_obs, n_clusters=data.n_clusters, estimate=nat,
        cov=cov, converged=converged, message="; ".join(messages), iterations=calls[0],
        seconds=time.perf_counter() - clock, boundary=_boundary(sw, sb, phi),
        blups=ev.blups)


def _newton(data: MultivariateData, nat: np.ndarray, ar1: bool, reml: bool,
            rounds: int = 3, steps: int = 40) -> tuple[np.ndarray, np.ndarray, bool]:
    """Newton iterations on the natural scale, reusing each differenced Hessian for
    several steps (chord method); the Hessian returned was taken within 1e-6 (relative)
    of the returned point. Returns (point, Hessian, converged)."""
    def gradient(x: np.ndarray) -> np.ndarray:
        return natural_gradient(data, x, ar1, reml)

    hess = np.zeros((len(nat), len(nat)))
    for _ in range(rounds):
        anchor = nat.copy()
        hess = _fd_hessian(gradient, nat, gradient(nat))
        if not np.all(np.isfinite(hess)) or np.linalg.eigvalsh(hess).max() >= 0:
            return nat, hess, False
        done = False
        for _ in range(steps):
            grad = gradient(nat)
            step = -np.linalg.solve(hess, grad)
            if np.max(np.abs(step) / np.maximum(1.0, np.abs(nat))) < 1e-10:
                done = True
                break
            base = _loglik_at(data, nat, ar1, reml)
            for shrink in (1.0, 0.5, 0.25, 0.125):
                trial = nat + shrink * step
                if not _admissible(trial, data.k, ar1, reml):
                    continue
                if _loglik_at(data, trial, ar1, reml) >= base - 1e-12 * abs(base):
                    nat = trial
                    break
            else:
                return nat, hess, False
        moved = np.max(np.abs(nat - anchor) / np.maximum(1.0, np.abs(anchor)))
        if done and moved < 1e-6:
            return nat, hess, True
    return nat, hess, False


def _admissible(nat: np.ndarray, k: int, ar1: bool, reml: bool) -> bool:
    """Sigma_W positive definite, Sigma_B positive semi-definite, |phi| < 1."""
    _, sw, sb, phi = _unpack(nat, k, ar1, reml)
    scale = max(float(np.abs(np.diag(sw)).max()), 1e-300)
    if np.linalg.eigvalsh(sw).min() <= 0 or np.linalg.eigvalsh(sb).min() < -1e-10 * scale:
        return False
    return phi is None or abs(phi) < 1


def _factor(theta: np.ndarray, k: int) -> np.ndarray:
    lower = np.zeros((k, k))
    lower[_tril(k)] = theta
    idx = np.arange(k)
    lower[idx, idx] = np.exp(lower[idx, idx])
    return lower


def _pack(mu: np.ndarray, sw: np.ndarray, sb: np.ndarray, phi: float | None,
          reml: bool) -> np.ndarray:
    parts = ([] if reml else [mu]) + [_vech(sw), _vech(sb)]
    return np.concatenate(parts + ([np.array([phi])] if phi is not None else []))


def _unpack(nat: np.ndarray, k: int, ar1: bool, reml: bool
            ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, float | None]:
    h = k * (k + 1) // 2
    off = 0 if reml else k
    mu = None if reml else nat[:k]
    phi = float(nat[off + 2 * h]) if ar1 else None
    return mu, _unvech(nat[off:off + h], k), _unvech(nat[off + h:off + 2 * h], k), phi


def _loglik_at(data: MultivariateData, nat: np.ndarray, ar1: bool, reml: bool) -> float:
    mu, sw, sb, phi = _unpack(nat, data.k, ar1, reml)
    return evaluate(data, sw, sb, phi, mu=mu, reml=reml).loglik


def _fd_hessian(gradient: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                at_x: np.ndarray | None = None) -> np.ndarray:
    """Hessian from differences of the analytic gradient: central, or forward from
    ``at_x`` (the gradient at ``x``) with a smaller step."""
    n = len(x)
    hess = np.zeros((n, n))
    for j in range(n):
        e = np.zeros(n)
        if at_x is None:
            e[j] = step = 1e-5 * max(1.0, abs(x[j]))
            hess[:, j] = (gradient(x + e) - gradient(x - e)) / (2 * step)
        else:
            e[j] = step = 1e-7 * max(1.0, abs(x[j]))
            hess[:, j] = (gradient(x + e) - at_x) / step
    return (hess + hess.T) / 2


def natural_gradient(data: MultivariateData, nat: np.ndarray, ar1: bool,
                     reml: bool) -> np.ndarray:
    """Gradient of the log-likelihood with respect to the natural parameters (ML: means
    included; REML: covariance parameters only, ``nat`` without the means)."""
    mu, sw, sb, phi = _unpack(nat, data.k, ar1, reml)
    ev = evaluate(data, sw, sb, phi, mu=mu, reml=reml)
    if not np.isfinite(ev.loglik):
        return np.full(len(nat), np.nan)
    parts = [] if reml else [ev.grad_mu]
    parts += [_grad_vech(ev.grad_w), _grad_vech(ev.grad_b)]
    if ar1:
        parts.append(np.array([ev.grad_phi]))
    return np.concatenate(parts)


def _boundary(sw: np.ndarray, sb: np.ndarray, phi: float | None) -> tuple[str, ...]:
    flags = []
    for label, m in (("within", sw), ("between", sb)):
        sd = np.sqrt(np.clip(np.diag(m), 0, None))
        if np.any(sd < 1e-4 * sd.max()):
            flags.append(f"a {label} variance is at zero")
        vals = np.linalg.eigvalsh(m / np.outer(sd, sd)) if np.all(sd > 0) else [0.0]
        if min(vals) < 1e-6:
            flags.append(f"the {label} covariance matrix is singular")
    if phi is not None and abs(phi) > 0.9999:
        flags.append(f"phi is at {np.sign(phi):+.0f}")
    return tuple(flags)
