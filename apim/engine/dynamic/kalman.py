"""The exact log-likelihood of the dynamic (VAR(1) with random intercepts) model by a
Kalman filter run over sessions for all dyads at once.

The model, per dyad ``i`` and session ``t`` on the study's session grid ``t0, t0+1, ...``::

    z_it = mu + u_i + w_it,      u_i ~ N(0, Sigma_B)
    w_it = Phi w_i,t-1 + e_it,   e_it ~ N(0, Sigma_W),   w_i,t0 ~ N(0, P0)

(``u`` independent of ``w``). The filter's state is ``w_it`` alone (dimension K): the
random intercepts and the means enter as regressors (the augmented filter of de Jong,
1991). The filter runs on the data column and on the K columns of the identity at once;
per dyad it returns ``log|F|`` summed over sessions and the cross products
``Q = sum_t E_t' F_t^-1 E_t`` of the innovations ``E_t = [v_t, V_t]`` of data and
regressors. With ``b = mu + u`` the dyad's ``-2 log L`` given ``b`` is
``n log 2 pi + sum log|F_t| + c - 2 s'b + b'Sb`` (``c, s, S`` the blocks of ``Q``);
integrating ``u`` out with ``Sigma_B = L L'`` and ``M = I + L'SL`` adds ``log|M|`` and
subtracts ``h' M^-1 h``, ``h = L'(s - S mu)``. The means enter quadratically, so they are
profiled out in closed form (GLS). A missing rating (or a session without rows) is a
row of the observation that is masked: its innovation is zeroed and its row and column
of ``F`` replaced by the identity's, which leaves the filter and ``log|F|`` as if the
row had never been there; the process runs on through it.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> y = rng.normal(size=(5, 4, 2))
>>> data = prepare_dynamic(y)
>>> ev = evaluate(data, 0.3 * np.eye(2), np.eye(2), 0.5 * np.eye(2), np.eye(2))
>>> bool(np.isfinite(ev.loglik)), ev.mu.shape
(True, (2,))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["DynamicData", "DynamicEvaluation", "prepare_dynamic", "evaluate",
           "evaluate_many",
           "stationary_covariance", "spectral_radius"]

LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True, eq=False)
class DynamicData:
    """Ratings on the session grid, dyads ordered by their last rated session (latest
    first, so the dyads still in the study at a session are a leading slice):
    ``y`` (dyads, sessions, K) with zeros where missing, ``observed`` the mask,
    ``codes`` each dyad's pattern of observed variables per session as a bit mask,
    ``active`` the number of dyads with a rating at or after each session, ``order``
    the original position of each dyad, ``groups`` the group of dyads with the same
    pattern over the whole grid and ``group_first`` each group's first dyad."""

    y: np.ndarray
    observed: np.ndarray
    codes: np.ndarray
    active: np.ndarray
    order: np.ndarray
    n_obs: int
    groups: np.ndarray
    group_first: np.ndarray

    @property
    def k(self) -> int:
        return int(self.y.shape[2])

    @property
    def n_dyads(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_sessions(self) -> int:
        return int(self.y.shape[1])


def prepare_dynamic(y: np.ndarray) -> DynamicData:
    """Ratings as an array (dyads, sessions of the grid, K) with NaN where missing."""
    y = np.asarray(y, float)
    observed = ~np.isnan(y)
    any_rating = observed.any(axis=2)
    last = np.where(any_rating.any(axis=1),
                    y.shape[1] - 1 - np.argmax(any_rating[:, ::-1], axis=1), -1)
    order = np.argsort(-last, kind="stable")
    observed, last = observed[order], last[order]
    codes = (observed * (1 << np.arange(y.shape[2]))).sum(axis=2)
    active = (last[None, :] >= np.arange(y.shape[1])[:, None]).sum(axis=1)
    _, group_first, groups = np.unique(codes, axis=0, return_index=True, return_inverse=True)
    return DynamicData(np.where(observed, y[order], 0.0), observed, codes, active, order,
                       int(observed.sum()), groups.ravel(), group_first)


class DynamicEvaluation(NamedTuple):
    """The log-likelihood at given parameters, the means used (given or profiled) and the
    GLS information of the means ``sum_i X_i' V_i^-1 X_i`` (their covariance given the
    covariance parameters is its inverse)."""

    loglik: float
    mu: np.ndarray
    information: np.ndarray


def spectral_radius(phi: np.ndarray) -> float:
    """Largest modulus of the eigenvalues of ``phi``."""
    return float(np.max(np.abs(np.linalg.eigvals(phi))))


def stationary_covariance(phi: np.ndarray, sigma_w: np.ndarray) -> np.ndarray:
    """The stationary covariance ``P`` of ``w_t = Phi w_t-1 + e_t``: ``P = Phi P Phi' +
    Sigma_W`` (solved as ``vec P = (I - Phi (x) Phi)^-1 vec Sigma_W``).

    Examples
    --------
    >>> float(stationary_covariance(np.array([[0.5]]), np.array([[0.75]]))[0, 0])
    1.0
    """
    k = len(phi)
    vec = np.linalg.solve(np.eye(k * k) - np.kron(phi, phi), sigma_w.reshape(-1))
    p = vec.reshape(k, k)
    return (p + p.T) / 2


def _filter(data: DynamicData, phi: np.ndarray, sigma_w: np.ndarray, p0: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The filter for ``m`` parameter sets at once (``phi``, ``sigma_w``, ``p0`` of shape
    (m, K, K)). Per dyad and set: ``sum_t log|F_t|`` (n, m) and the blocks of ``Q``: ``c``
    (n, m), ``s`` (n, m, K); ``S`` (G, m, K, K) per group of dyads with the same pattern
    of ratings over the whole grid (:attr:`DynamicData.groups`).

    The state covariance and the regressors' part of the state depend on a dyad's
    pattern of observed ratings only, not on its values: dyads with the same history
    share them (``history``; a fully observed session leaves the filtered covariance at
    zero and the regressors' filtered state at the identity whatever came before, so
    histories merge there), and that algebra is done once per history and session. Per
    dyad only the data's own column is carried. Arrays run over dyads (or histories)
    first, parameter sets second."""
    n, n_t, k = data.y.shape
    m = phi.shape[0]
    full = (1 << k) - 1
    bits = (np.arange(1 << k)[:, None] >> np.arange(k)) & 1        # code -> mask
    eye = np.eye(k)
    phi_t = np.swapaxes(phi, 1, 2)
    a = np.zeros((n, m, k))                       # predicted state of the data column
    ax = np.zeros((1, m, k, k))                   # ... of the regressors, per history
    cov = p0[None]                                # predicted covariance, per history
    history = np.zeros(n, np.int64)
    logdet, c, s = np.zeros((n, m)), np.zeros((n, m)), np.zeros((n, m, k))
    first_of_group = data.group_first
    big_s = np.zeros((len(first_of_group), m, k, k))
    for t in range(n_t):
        na = int(data.active[t])
        if na == 0:
            break
        code = data.codes[:na, t]
        key = history[:na] * (full + 1) + code
        _, first, inv = np.unique(key, return_index=True, return_inverse=True)
        inv = inv.ravel()
        d = bits[code[first]].astype(float)                     # (U, K)
        old = history[:na][first]
        p = cov[old]                                            # (U, m, K, K)
        both = (d[:, :, None] * d[:, None, :])[:, None]
        f = p * both + ((1 - d)[:, :, None] * eye)[:, None]
        sign, ld = np.linalg.slogdet(f)
        f_inv = np.linalg.inv(f) * both                         # zero on missing rows
        ex = (eye - ax[old]) * d[:, None, :, None]              # regressors' innovation
        f_ex = f_inv @ ex
        # per dyad: the data's innovation and its products
        e = (data.y[:na, t, None, :] - a[:na]) * d[inv][:, None, :]
        f_e = np.einsum("nmij,nmj->nmi", f_inv[inv], e)
        c[:na] += np.einsum("nmi,nmi->nm", e, f_e)
        s[:na] += np.einsum("nmi,nmij->nmj", e, f_ex[inv])
        logdet[:na] += np.where(sign > 0, ld, -np.inf)[inv]
        # S per group: the increment of the history of the group's first dyad
        started = first_of_group < na
        big_s[started] += (np.swapaxes(ex, 2, 3) @ f_ex)[inv[first_of_group[started]]]
        filtered = a[:na] + np.einsum("nmij,nmj->nmi", p[inv], f_e)
        a[:na] = (filtered[..., None, :] @ phi_t)[..., 0, :]
        updated_x = ax[old] + p @ f_ex
        updated = p - p @ f_inv @ p
        # after a fully observed session: one history (filtered covariance zero, the
        # regressors' filtered state the identity)
        complete = code[first] == full
        if complete.any():
            merged = np.cumsum(~complete)
            merged[complete] = 0
            keep = np.concatenate([[0], np.flatnonzero(~complete)])
            updated, updated_x = updated[keep], updated_x[keep]
            updated[0], updated_x[0] = 0.0, eye
            inv = merged[inv]
        ax = phi @ updated_x
        cov = phi @ updated @ phi_t + sigma_w
        history[:na] = inv
    return logdet, c, s, big_s


def evaluate_many(data: DynamicData, phi: np.ndarray, sigma_w: np.ndarray,
                  sigma_b: np.ndarray, p0: np.ndarray, mu: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-likelihoods of ``m`` parameter sets at once (matrices of shape (m, K, K);
    ``mu`` (m, K), or None: profiled out by GLS).

    ``Sigma_B`` enters through ``(Sigma_B^-1 + S)^-1 = (I + Sigma_B S)^-1 Sigma_B``, so it
    may be singular (a boundary) or, as SEM programs allow, indefinite as long as every
    dyad's covariance stays positive definite. Dyads with the same pattern of ratings
    over the whole grid share ``S`` and so that algebra.

    Returns the log-likelihoods (m,), the means (m, K) and the GLS information of the
    means ``sum_i X_i' V_i^-1 X_i`` (m, K, K); ``-inf`` where a covariance is not
    admissible."""
    k = data.k
    group = data.groups
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        logdet, c, s, shared = _filter(data, phi, sigma_w, p0)
        m_mat = np.eye(k) + sigma_b @ shared                           # I + Sigma_B S
        sign, log_m = np.linalg.slogdet(m_mat)
        p_mat = np.linalg.solve(m_mat, np.broadcast_to(sigma_b, m_mat.shape))
        sp = shared @ p_mat                                           # S P
        sp_s = (sp[group] @ s[..., None])[..., 0]                      # S P s (n, m, K)
        p_s = (p_mat[group] @ s[..., None])[..., 0]
        s_p_s = (s * p_s).sum(axis=2)
        counts = np.bincount(group, minlength=len(shared)).astype(float)
        info = np.tensordot(counts, shared - sp @ shared, axes=1)      # (m, K, K)
        v = s - sp_s
        if mu is None:
            mu = np.linalg.solve(info, v.sum(axis=0)[..., None])[..., 0]
        quad = (c - s_p_s).sum(axis=0) - 2 * (v.sum(axis=0) * mu).sum(axis=1) \
            + np.einsum("mj,mjk,mk->m", mu, info, mu)
        total = data.n_obs * LOG_2PI + logdet.sum(axis=0) + counts @ log_m + quad
    bad = np.any(sign <= 0, axis=0) | ~np.isfinite(total)
    return np.where(bad, -np.inf, -total / 2), mu, info


def evaluate(data: DynamicData, phi: np.ndarray, sigma_w: np.ndarray, sigma_b: np.ndarray,
             p0: np.ndarray, mu: np.ndarray | None = None) -> DynamicEvaluation:
    """The ML log-likelihood at the given matrices (``mu`` profiled out when None);
    ``-inf`` where a covariance is not admissible (see :func:`evaluate_many`)."""
    k = data.k
    if not np.all(np.isfinite(p0)):
        return DynamicEvaluation(-np.inf, np.full(k, np.nan), np.full((k, k), np.nan))
    loglik, mus, info = evaluate_many(
        data, phi[None], sigma_w[None], sigma_b[None], p0[None],
        None if mu is None else np.asarray(mu, float)[None])
    return DynamicEvaluation(float(loglik[0]), np.asarray(mus[0], float), info[0])
