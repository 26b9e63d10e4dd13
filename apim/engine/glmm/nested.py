"""The Laplace log-likelihood of a dyadic GLMM with a therapist level, and its analytic
gradient: dyads nested in therapists, Laplace over each therapist's whole block.

Therapist ``t`` has the intercept ``sigma a0`` and each of its dyads ``i`` the two
intercepts ``L a_i`` (``a0``, ``a_i`` standard normal): ``eta_j = x_j' beta + sigma a0 +
(L a_i)_r``. Its block ``(a0, a_1, ..., a_n)`` has the log density

    h(a) = sum_j log P(y_j | eta_j) - a0^2/2 - sum_i |a_i|^2/2

whose negative Hessian is arrowhead-shaped: with the members' summed weights ``w_ir =
-sum_j d2_j`` (``d2`` the second derivative of ``log P`` in ``eta``),

    H00 = 1 + sigma^2 sum_ir w_ir,   H0i = b_i = sigma L' w_i,   Hii = D_i = I + L' W_i L

and every other block zero. Newton steps, ``log|H| = sum_i log|D_i| + log S`` and ``H^-1``
come from the Schur complement ``S = H00 - sum_i b_i' D_i^-1 b_i``: O(dyads) per
therapist. The Laplace value is ``sum_t h_t(a^) - log|H_t| / 2``.

The gradient (each observation's row of ``J = d eta / d a`` is ``j_ir = (sigma, L_r)`` on
its therapist's and dyad's columns; ``P = H^-1``):

    d value = d_theta h(a^) - tr(P dH) / 2,   da^ = P d_theta grad_a h(a^)
    tr(P dH) = sum_ir dw_ir c_ir + 2 sum_ir w_ir j_ir P dj_ir',  c_ir = j_ir P j_ir'

with ``dw_ir`` the total derivative of the weights (the modes move; third derivatives of
``log P``) and ``dj`` the derivative of ``J`` in a covariance parameter. Checked against
differences and a brute-force Laplace (a generic optimiser's mode over all random effects,
a numerical Hessian) in tests/engine/test_glmm_engine.py.

Examples
--------
>>> import numpy as np
>>> from apim.engine.glmm.model import GLMMModel, prepare
>>> rng = np.random.default_rng(1)
>>> dyad = np.repeat(np.arange(12), 8); role = np.tile([0, 1], 48)
>>> y = (rng.random(96) < 0.4).astype(int)
>>> model = GLMMModel(category=y, X=np.column_stack([1 - role, role]).astype(float),
...                   dyad=dyad, role=role, therapist=dyad // 3)
>>> value, grad, state, _ = loglik_gradient(prepare(model), np.zeros(6))
>>> grad.shape, state.shape  # 6 parameters; 12 dyads x 2 + 4 therapists
((6,), (28,))
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from apim.engine.glmm.gradient import (
    cov_derivatives,
    fixed_envelope,
    fixed_parts,
    threshold_jacobians,
)
from apim.engine.glmm.model import Prepared
from apim.engine.glmm.quadrature import _curvature, _solve2
from apim.engine.glmm.response import interval, interval_terms

__all__ = ["Therapists", "NestedModes", "nested_modes", "nested_loglik",
           "loglik_gradient"]


@dataclass(frozen=True, eq=False)
class Therapists:
    """Each dyad's therapist code (dyads grouped by therapist) and sums over a therapist's
    dyads."""

    of_dyad: np.ndarray
    n: int

    @cached_property
    def indicator(self) -> Any:
        from scipy.sparse import csr_matrix

        d = len(self.of_dyad)
        return csr_matrix((np.ones(d), (self.of_dyad, np.arange(d))), shape=(self.n, d))

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Sums over each therapist's dyads of ``values`` (dyads along the first axis)."""
        flat = np.asarray(self.indicator @ values.reshape(len(values), -1))
        return flat.reshape((self.n,) + values.shape[1:])


def therapists_of(prepared: Prepared) -> Therapists:
    if prepared.therapist_of is None or prepared.therapists is None:
        raise ValueError("the model has no therapist level")
    return Therapists(prepared.therapist_of, len(prepared.therapists))


@dataclass(frozen=True, eq=False)
class NestedModes:
    """The modes of every therapist's block: dyads' ``a`` (n, 2) and therapists' ``a0``
    (T,); ``h`` (T,) at the mode; the Schur pieces at the mode (``D`` (n, 2, 2), ``b``
    (n, 2), ``Dinv_b`` (n, 2), ``S`` (T,)); whether every block's Newton steps settled."""

    a: np.ndarray
    a0: np.ndarray
    h: np.ndarray
    D: np.ndarray
    b: np.ndarray
    Dinv_b: np.ndarray
    S: np.ndarray
    converged: bool

    @property
    def state(self) -> np.ndarray:
        """The modes as one vector (dyads' a, then therapists' a0)."""
        return np.concatenate([self.a.ravel(), self.a0])

    def log_det(self, th: Therapists) -> np.ndarray:
        """log|H| per therapist."""
        det = self.D[:, 0, 0] * self.D[:, 1, 1] - self.D[:, 0, 1] * self.D[:, 1, 0]
        return np.log(self.S) + th.sums(np.log(det))


def _parts(prepared: Prepared, th: Therapists, offset: np.ndarray, upper: np.ndarray,
           lower: np.ndarray, L: np.ndarray, sigma: float, a: np.ndarray, a0: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """h per therapist at (a, a0), its gradient in a (n, 2) and a0 (T,), and the
    weights w (n, 2)."""
    cl = prepared.clusters
    link = prepared.model.link_function
    shift = sigma * a0[th.of_dyad]  # the therapist's intercept, per dyad
    u = a @ L.T + shift[:, None]
    eta = offset + cl.gather(u)
    logp, d1, d2 = interval(link, upper, lower, eta)
    per_dyad = np.bincount(cl.dyad, weights=logp, minlength=cl.n) \
        - 0.5 * np.einsum("ij,ij->i", a, a)
    h = th.sums(per_dyad) - 0.5 * a0 * a0
    g = cl.per_role(d1)
    return h, g @ L - a, sigma * th.sums(g.sum(axis=1)) - a0, -cl.per_role(d2)


def _blocks(th: Therapists, L: np.ndarray, sigma: float, w: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The arrowhead pieces D (n, 2, 2), b (n, 2), D^-1 b and the Schur complement S."""
    D = _curvature(L, w)
    b = sigma * (w @ L)  # L' w_i
    Dinv_b = _solve2(D, b)
    S = 1 + sigma * sigma * th.sums(w.sum(axis=1)) \
        - th.sums(np.einsum("nc,nc->n", b, Dinv_b))
    return D, b, Dinv_b, S


def _inverse2(D: np.ndarray) -> np.ndarray:
    """The inverses of a stack of symmetric 2x2 matrices."""
    det = D[:, 0, 0] * D[:, 1, 1] - D[:, 0, 1] * D[:, 1, 0]
    out = np.empty_like(D)
    out[:, 0, 0], out[:, 1, 1] = D[:, 1, 1] / det, D[:, 0, 0] / det
    out[:, 0, 1], out[:, 1, 0] = -D[:, 0, 1] / det, -D[:, 1, 0] / det
    return out


def _solve(th: Therapists, D: np.ndarray, b: np.ndarray, Dinv_b: np.ndarray,
           S: np.ndarray, r0: np.ndarray, ri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """H^-1 (r0, ri) for right-hand sides r0 (T, ...) and ri (n, 2, ...) by the Schur
    complement."""
    flat = ri.reshape(len(ri), 2, -1)
    if flat.shape[2] == 1:
        Dinv_r = _solve2(D, flat[:, :, 0])[:, :, None]
    else:
        Dinv_r = np.einsum("nab,nbq->naq", _inverse2(D), flat)
    d0 = (r0.reshape(len(r0), -1)
          - th.sums(np.einsum("nc,ncq->nq", b, Dinv_r))) / S[:, None]
    di = Dinv_r - Dinv_b[:, :, None] * d0[th.of_dyad][:, None, :]
    return d0.reshape(r0.shape), di.reshape(ri.shape)


def nested_modes(prepared: Prepared, offset: np.ndarray, upper: np.ndarray,
                 lower: np.ndarray, L: np.ndarray, sigma: float,
                 start: np.ndarray | None = None, tolerance: float = 1e-11,
                 max_steps: int = 60) -> NestedModes:
    """Every therapist block's mode by batched Newton steps (halved per therapist where
    ``h`` would fall), from ``start`` (a :attr:`NestedModes.state`; default 0). ``h`` is
    concave; at least one step is taken, so the modes are exact to round-off."""
    th = therapists_of(prepared)
    n = prepared.clusters.n
    if start is None:
        a, a0 = np.zeros((n, 2)), np.zeros(th.n)
    else:
        a, a0 = start[:2 * n].reshape(n, 2).copy(), start[2 * n:].copy()
    h, gi, g0, w = _parts(prepared, th, offset, upper, lower, L, sigma, a, a0)
    converged = False
    for iteration in range(max_steps):
        blocks = _blocks(th, L, sigma, w)
        d0, di = _solve(th, *blocks, g0, gi)
        size = max(np.max(np.abs(d0), initial=0.0), np.max(np.abs(di), initial=0.0))
        if iteration and size < tolerance:
            converged = True  # the blocks are those at the mode
            break
        scale = np.ones(th.n)
        for _half in range(30):
            s_dyad = scale[th.of_dyad]
            trial, trial0 = a + s_dyad[:, None] * di, a0 + scale * d0
            h_new, gi_new, g0_new, w_new = _parts(prepared, th, offset, upper, lower, L,
                                                  sigma, trial, trial0)
            worse = ~(h_new >= h - 1e-12 * np.abs(h))
            if not worse.any():
                break
            scale = np.where(worse, scale / 2, scale)
        a, a0, h, gi, g0, w = trial, trial0, h_new, gi_new, g0_new, w_new
    if not converged:
        blocks = _blocks(th, L, sigma, w)
    return NestedModes(a, a0, h, *blocks, converged)


def _unpack(prepared: Prepared, x: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    model = prepared.model
    beta, theta, c = model.split(x)
    upper, lower = prepared.bounds(theta)
    return prepared.X @ beta, upper, lower, model.cholesky(c), model.therapist_sd(x)


def nested_loglik(prepared: Prepared, x: np.ndarray, start: np.ndarray | None = None
                  ) -> tuple[np.ndarray, NestedModes]:
    """Each therapist's Laplace log-likelihood at ``x`` and the modes."""
    offset, upper, lower, L, sigma = _unpack(prepared, x)
    found = nested_modes(prepared, offset, upper, lower, L, sigma, start)
    return found.h - 0.5 * found.log_det(therapists_of(prepared)), found


def loglik_gradient(prepared: Prepared, x: np.ndarray, start: np.ndarray | None = None
                    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The Laplace log-likelihood at ``x``, its gradient, the modes (a
    :attr:`NestedModes.state`) and their derivative in ``x`` (2n + T, P)."""
    model = prepared.model
    cl = prepared.clusters
    th = therapists_of(prepared)
    offset, upper, lower, L, sigma = _unpack(prepared, x)
    p, m = prepared.X.shape[1], model.n_thresholds
    dLs = cov_derivatives(prepared, model.split(x)[2])
    found = nested_modes(prepared, offset, upper, lower, L, sigma, start)
    a, a0 = found.a, found.a0
    shift = sigma * a0[th.of_dyad]  # d eta / d log sigma, per dyad
    eta = offset + cl.gather(a @ L.T + shift[:, None])
    T = interval_terms(model.link_function, upper, lower, eta)
    g, w, v = cl.per_role(T.d1), -cl.per_role(T.d2), -cl.per_role(T.d3)
    Jup, Jlow = threshold_jacobians(prepared, x[p:p + m])
    # d_theta grad_a h (dyads (n, 2, P), therapists (T, P)) and d_theta w (n, 2, P) at
    # fixed a: beta and thresholds, then each covariance parameter, then log sigma
    dgrad_u, dw_fixed = fixed_parts(prepared, T, Jup, Jlow)
    gi = [np.einsum("rc,nrq->ncq", L, dgrad_u)]
    g0 = [sigma * th.sums(dgrad_u.sum(axis=1))]
    dw = [dw_fixed]
    for dL in dLs:
        dLa = a @ dL.T
        gi.append((g @ dL - (w * dLa) @ L)[:, :, None])
        g0.append(-sigma * th.sums((w * dLa).sum(axis=1))[:, None])
        dw.append((v * dLa)[:, :, None])
    ws = w * shift[:, None]
    gi.append((-ws @ L)[:, :, None])
    g0.append((sigma * th.sums(g.sum(axis=1)) - sigma * th.sums(ws.sum(axis=1)))[:, None])
    dw.append((v * shift[:, None])[:, :, None])
    dgrad_i, dgrad_0 = np.concatenate(gi, axis=2), np.concatenate(g0, axis=1)
    da0, da = _solve(th, found.D, found.b, found.Dinv_b, found.S, dgrad_0, dgrad_i)
    dw_total = np.concatenate(dw, axis=2) + v[:, :, None] * (
        np.einsum("rc,ncq->nrq", L, da) + sigma * da0[th.of_dyad][:, None, :])
    # the blocks of P = H^-1 that tr(P dH) needs
    inv_S = (1 / found.S)[th.of_dyad]
    P00 = inv_S
    P0i = -found.Dinv_b * inv_S[:, None]  # (n, 2)
    Pii = _inverse2(found.D) + np.einsum("na,nb->nab", found.Dinv_b, found.Dinv_b) \
        * inv_S[:, None, None]
    c = sigma * sigma * P00[:, None] + 2 * sigma * (P0i @ L.T) \
        + np.einsum("rc,ncd,rd->nr", L, Pii, L)
    trace = np.einsum("nr,nrq->q", c, dw_total)
    start_cov = p + m
    for q, dL in enumerate(dLs):
        term = sigma * (P0i @ dL.T) + np.einsum("rc,ncd,rd->nr", L, Pii, dL)
        trace[start_cov + q] += 2 * np.sum(w * term)
    term = sigma * (sigma * P00[:, None] + P0i @ L.T)
    trace[-1] += 2 * np.sum(w * term)
    d_beta, d_thr = fixed_envelope(prepared, T, Jup, Jlow)
    d_cov = [np.sum(g * (a @ dL.T)) for dL in dLs]
    envelope = np.concatenate([d_beta, d_thr, d_cov, [np.sum(g.sum(axis=1) * shift)]])
    value = float(np.sum(found.h - 0.5 * found.log_det(th)))
    derivative = np.concatenate([da.reshape(2 * cl.n, -1), da0], axis=0)
    return value, envelope - 0.5 * trace, found.state, derivative
