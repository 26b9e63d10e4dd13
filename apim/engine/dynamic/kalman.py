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
row had never been there; the process runs on through it. The covariance algebra runs
once per node of dyads with the same history of observed ratings and the same variables
observed at the session (:mod:`apim.engine.dynamic.patterns`), the data's own state per
dyad.

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

from typing import NamedTuple

import numpy as np

from apim.engine.dynamic.patterns import DynamicData, prepare_dynamic

__all__ = ["DynamicData", "DynamicEvaluation", "Totals", "Stored", "Integrated", "Design",
           "dyad_means",
           "TherapistLevel", "Reduced", "prepare_dynamic", "therapist_level",
           "run_filter", "integrate", "integrate_nested", "reduce_dyads", "matrix_vector",
           "evaluate", "evaluate_many", "stationary_covariance", "spectral_radius"]

LOG_2PI = float(np.log(2 * np.pi))


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


class Totals(NamedTuple):
    """The filter's sums for ``m`` parameter sets: ``sum log|F|`` and ``c`` summed over
    dyads and sessions (m,), per set and dyad ``s`` (m, n, K); ``S`` (G, m, K, K) per
    group of dyads with the same pattern over the whole grid."""

    logdet: np.ndarray
    c: np.ndarray
    s: np.ndarray
    big_s: np.ndarray


class Stored(NamedTuple):
    """What the adjoint needs of one session: per node the predicted covariance ``P``,
    ``G = D F^-1 D``, the regressors' innovation ``E``, ``G E``, ``P G``; per history
    after the session the filtered regressors' state and covariance; per set and dyad
    the data's innovation ``e``, ``G e`` and the filtered state."""

    p: np.ndarray
    g: np.ndarray
    big_e: np.ndarray
    g_big_e: np.ndarray
    p_g: np.ndarray
    x_up: np.ndarray
    p_up: np.ndarray
    e: np.ndarray
    g_e: np.ndarray
    a_up: np.ndarray


def matrix_vector(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Matrix times vector over the leading axes (broadcast)."""
    return (m @ v[..., None])[..., 0]


def run_filter(data: DynamicData, phi: np.ndarray, sigma_w: np.ndarray, p0: np.ndarray,
               keep: bool = False) -> tuple[Totals, list[Stored]]:
    """The filter for ``m`` parameter sets at once (``phi``, ``sigma_w``, ``p0`` of shape
    (m, K, K)) on the schedule of :attr:`DynamicData.steps`: the covariance algebra once
    per node (dyads with the same history and the same variables observed now; arrays
    (nodes, m, K, K)), per dyad only the data's own column (arrays (m, dyads, K)). With
    ``keep`` each session's quantities are kept for the adjoint
    (:mod:`apim.engine.dynamic.gradient`)."""
    n, _, k = data.y.shape
    m = phi.shape[0]
    eye = np.eye(k)
    phi_t = phi.mT
    a = np.zeros((m, n, k))                       # predicted state of the data column
    x_pred = np.zeros((1, m, k, k))               # ... of the regressors, per history
    p_pred = p0[None]                             # predicted covariance, per history
    logdet, c, s = np.zeros(m), np.zeros(m), np.zeros((m, n, k))
    big_s = np.zeros((len(data.group_first), m, k, k))
    stored = []
    for t, st in enumerate(data.steps):
        na = st.na
        p, x = (p_pred, x_pred) if st.same_parent else (p_pred[st.parent],
                                                         x_pred[st.parent])
        f = p * st.both + st.off
        sign, ld = np.linalg.slogdet(f)
        g = np.linalg.inv(f) * st.both                          # zero on missing rows
        big_e = (eye - x) * st.rows                             # regressors' innovation
        g_big_e = g @ big_e
        p_g = p @ g
        # per dyad: the data's innovation and its products
        e = (data.y[:na, t] - a[:, :na]) * st.dyad_mask
        g_e = st.apply(g, e)
        c += (e * g_e).sum(axis=(1, 2))
        s[:, :na] += st.apply(g_big_e.mT, e)
        logdet += np.where(sign > 0, ld, -np.inf).T @ st.counts[:, 0, 0, 0]
        big_s[st.group_rows] += (big_e.mT @ g_big_e)[st.group_nodes]
        a_up = a[:, :na] + st.apply(p, g_e)
        a[:, :na] = a_up @ phi_t
        if st.all_complete:     # one history: filtered X the identity, P zero
            x_up, p_up = eye[None, None], np.zeros((1, 1, k, k))
            x_pred, p_pred = phi[None], sigma_w[None]
        else:
            x_up = (x + p @ g_big_e)[st.keep]
            p_up = (p - p_g @ p)[st.keep]
            if st.reset:    # the fully observed nodes: one history, whatever came before
                x_up[0], p_up[0] = eye, 0.0
            x_pred = phi @ x_up
            p_pred = phi @ p_up @ phi_t + sigma_w
        if keep:
            stored.append(Stored(p, g, big_e, g_big_e, p_g, x_up, p_up, e, g_e, a_up))
    return Totals(logdet, c, s, big_s), stored


class Integrated(NamedTuple):
    """``-2 log L`` per parameter set with the random intercepts integrated out and the
    means given or profiled, and what its adjoint needs: ``M = I + Sigma S`` and
    ``(I + Sigma S)^-1 Sigma`` per unit of the top level (groups of dyads; therapists
    with a therapist level, ``Sigma = Sigma_T``), ``r = s - S mu`` and ``q = M^-1 Sigma
    r`` per dyad or therapist (n, m, K), the GLS information of the means,
    admissibility."""

    total: np.ndarray
    mu: np.ndarray
    information: np.ndarray
    m_mat: np.ndarray
    p_mat: np.ndarray
    r: np.ndarray
    q: np.ndarray
    ok: np.ndarray


class TherapistLevel(NamedTuple):
    """Dyads nested in therapists: ``codes`` the therapist of each dyad in the order of
    :class:`DynamicData` (0 .. J-1) and ``counts`` (J, G) the dyads of each group of
    :attr:`DynamicData.groups` per therapist."""

    codes: np.ndarray
    counts: np.ndarray

    @property
    def n_therapists(self) -> int:
        return int(self.counts.shape[0])


def therapist_level(data: DynamicData, therapist: np.ndarray) -> TherapistLevel:
    """The therapist of each dyad (``therapist`` in the dyads' original order, any
    labels) in the order of ``data``.

    Examples
    --------
    >>> data = prepare_dynamic(np.ones((3, 2, 2)))
    >>> therapist_level(data, np.array(["a", "b", "a"])).counts.tolist()
    [[2.0], [1.0]]
    """
    _, codes = np.unique(np.asarray(therapist)[data.order], return_inverse=True)
    codes = codes.ravel()
    counts = np.zeros((int(codes.max()) + 1, len(data.group_first)))
    np.add.at(counts, (codes, data.groups), 1.0)
    return TherapistLevel(codes, counts)


class Design(NamedTuple):
    """The means as regressions on dyad-level covariates (``mu_i = B' x_i``, ``beta``
    the K x q entries of ``B`` as ``B[variable, covariate]``) seen from one level of
    :func:`_level`: per row ``C = S X`` summed over the row's dyads (rows, m, K, Kq),
    and over all dyads ``H = sum X' S X`` (m, Kq, Kq) and ``L = sum X' s`` (m, Kq, field ``lin``),
    with ``X_i = I_K (x) x_i'`` and ``S``, ``s`` each dyad's own matrix and vector."""

    c: np.ndarray
    h: np.ndarray
    lin: np.ndarray


def dyad_means(beta: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Each dyad's means ``B' x_i`` (dyads, m, K) of coefficients ``beta`` (m, K q)."""
    m, q = len(beta), design.shape[1]
    return np.einsum("mja,na->nmj", beta.reshape(m, -1, q), design)


def _design(design: np.ndarray, big_s: np.ndarray, s: np.ndarray, groups: np.ndarray,
            n_groups: int, rows: np.ndarray | None, n_rows: int) -> Design:
    """:class:`Design` of dyads' matrices ``big_s`` (G, m, K, K, per group ``groups``
    of each dyad) and vectors ``s`` (n, m, K); ``rows`` the row of each dyad at the
    level (None: each dyad its own row)."""
    q = design.shape[1]
    g_, m, k, _ = big_s.shape
    xx = np.zeros((n_groups, q, q))
    np.add.at(xx, groups, design[:, :, None] * design[:, None, :])
    h = np.einsum("gmjl,gab->mjalb", big_s, xx).reshape(m, k * q, k * q)
    lin = np.einsum("nmj,na->mja", s, design).reshape(m, k * q)
    if rows is None:
        c = np.einsum("nmjl,na->nmjla", big_s[groups], design)
    else:
        xs = np.zeros((n_rows, n_groups, q))
        np.add.at(xs, (rows, groups), design)
        c = np.einsum("rga,gmjl->rmjla", xs, big_s)
    return Design(c.reshape(c.shape[0], m, k, k * q), h, lin)


def _level(big_s: np.ndarray, s: np.ndarray, unit: np.ndarray, counts: np.ndarray,
           sigma: np.ndarray, mu: np.ndarray | None, design: Design | None = None
           ) -> Integrated:
    """One level of random intercepts integrated out: ``sum -2 s'mu + mu'S mu + log|M|
    - r'(I + Sigma S)^-1 Sigma r`` over the rows of ``s`` (n, m, K), ``r = s - S mu``,
    ``S`` (U, m, K, K) shared by the rows of each unit (``unit`` the unit of each row,
    ``counts`` the rows per unit); ``mu`` None: profiled out by GLS. The total leaves
    out the filter's own sums. With a ``design`` the means are regressions on dyad-level
    covariates (``mu`` their coefficients): ``-2 L'beta + beta'H beta`` and ``r = s - C
    beta``, profiled by the GLS ``(H - sum C'PC) beta = L - sum C'P s``."""
    k = big_s.shape[-1]
    m_mat = np.eye(k) + sigma @ big_s                              # I + Sigma S
    sign, log_m = np.linalg.slogdet(m_mat)
    p_mat = np.linalg.solve(m_mat, np.broadcast_to(sigma, m_mat.shape))
    if design is None:
        sp = big_s @ p_mat                                        # S P
        info = np.tensordot(counts, big_s - sp @ big_s, axes=1)   # (m, K, K)
        if mu is None:
            v = s - matrix_vector(sp[unit], s)
            mu = np.linalg.solve(info, v.sum(axis=0)[..., None])[..., 0]
        r = s - matrix_vector(big_s[unit], mu)
        linear = (- 2 * (s.sum(axis=0) * mu).sum(axis=1)
                  + np.einsum("g,mj,gmjk,mk->m", counts, mu, big_s, mu))
    else:
        pc = p_mat[unit] @ design.c                               # P C per row
        info = design.h - np.einsum("rmjp,rmjq->mpq", design.c, pc)
        if mu is None:
            rhs = design.lin - np.einsum("rmjp,rmj->mp", pc, s)
            mu = np.linalg.solve(info, rhs[..., None])[..., 0]
        r = s - matrix_vector(design.c, mu)
        linear = (- 2 * (design.lin * mu).sum(axis=1)
                  + np.einsum("mp,mpq,mq->m", mu, design.h, mu))
    q = matrix_vector(p_mat[unit], r)
    total = linear + counts @ log_m - (r * q).sum(axis=(0, 2))
    ok = np.all(sign > 0, axis=0) & np.isfinite(total)
    return Integrated(total, mu, info, m_mat, p_mat, r, q, ok)


class Reduced(NamedTuple):
    """Each dyad's sums with its random intercepts integrated out (``Sigma_B``), for
    the therapist level: per group ``M = I + Sigma_B S`` and ``A = M^-T S`` (``A =
    D'V^-1 D`` of the dyad's stacked covariance ``V``), per dyad ``v = M^-T s``
    (``D'V^-1 y``), ``q = M^-1 Sigma_B s``; the sums over therapists of ``A`` and
    ``v``; ``-2 log L`` at zero means and no therapist level (m,)."""

    m_mat: np.ndarray
    a: np.ndarray
    v: np.ndarray
    q: np.ndarray
    a_t: np.ndarray
    v_t: np.ndarray
    base: np.ndarray
    ok: np.ndarray


def reduce_dyads(data: DynamicData, totals: Totals, sigma_b: np.ndarray,
                 level: TherapistLevel) -> Reduced:
    """The dyads' sums of :class:`Reduced` (``sigma_b`` (m, K, K))."""
    group, big_s, s = data.groups, totals.big_s, np.swapaxes(totals.s, 0, 1)
    m_mat = np.eye(data.k) + sigma_b @ big_s
    sign, log_m = np.linalg.slogdet(m_mat)
    m_t = m_mat.mT
    a = np.linalg.solve(m_t, big_s)
    v = np.linalg.solve(m_t[group], s[..., None])[..., 0]
    q = np.linalg.solve(m_mat[group], matrix_vector(sigma_b, s)[..., None])[..., 0]
    counts = data.group_counts.astype(float)
    base = (data.n_obs * LOG_2PI + totals.logdet + totals.c + counts @ log_m
            - (s * q).sum(axis=(0, 2)))
    a_t = np.tensordot(level.counts, a, axes=1)
    v_t = np.zeros((level.n_therapists,) + v.shape[1:])
    np.add.at(v_t, level.codes, v)
    return Reduced(m_mat, a, v, q, a_t, v_t, base, np.all(sign > 0, axis=0))


def integrate(data: DynamicData, totals: Totals, sigma_b: np.ndarray,
              mu: np.ndarray | None, level: TherapistLevel | None = None,
              sigma_t: np.ndarray | None = None) -> Integrated:
    """The random intercepts integrated out of the filter's sums (``sigma_b`` (m, K, K);
    ``mu`` (m, K), or None: profiled out by GLS). ``Sigma_B`` enters through
    ``(Sigma_B^-1 + S)^-1 = (I + Sigma_B S)^-1 Sigma_B``, so it may be singular (a
    boundary) or, as SEM programs allow, indefinite as long as every dyad's covariance
    stays positive definite. Dyads with the same pattern over the whole grid share
    ``S`` and so that algebra.

    With a therapist ``level`` (``sigma_t`` (m, K, K)) each dyad's likelihood is a
    Gaussian in its means with information ``A_i`` and score ``v_i - A_i mu``
    (:func:`reduce_dyads`); the therapists' intercepts ``v_j ~ N(0, Sigma_T)`` are
    integrated out of their dyads' sums ``A_j``, ``v_j`` by the same algebra one level
    up (``log|I + Sigma_T A_j| - b_j' (I + Sigma_T A_j)^-1 Sigma_T b_j``, ``b_j = v_j -
    A_j mu``; singular ``Sigma_T`` allowed), and the means profiled by the GLS of that
    level (``sum_j A_j - A_j (I + Sigma_T A_j)^-1 Sigma_T A_j``)."""
    if level is None:
        s = np.swapaxes(totals.s, 0, 1)
        design = None if data.design is None else _design(
            data.design, totals.big_s, s, data.groups, len(data.group_first), None, 0)
        out = _level(totals.big_s, s, data.groups, data.group_counts.astype(float),
                     sigma_b, mu, design)
        total = data.n_obs * LOG_2PI + totals.logdet + totals.c + out.total
        return out._replace(total=total, ok=out.ok & np.isfinite(total))
    assert sigma_t is not None
    return integrate_nested(data, totals, sigma_b, mu, level, sigma_t)[0]


def integrate_nested(data: DynamicData, totals: Totals, sigma_b: np.ndarray,
                     mu: np.ndarray | None, level: TherapistLevel, sigma_t: np.ndarray
                     ) -> tuple[Integrated, Reduced]:
    """:func:`integrate` with a therapist level, and the dyads' sums it used."""
    red = reduce_dyads(data, totals, sigma_b, level)
    j = level.n_therapists
    design = None if data.design is None else _design(
        data.design, red.a, red.v, data.groups, len(data.group_first), level.codes, j)
    out = _level(red.a_t, red.v_t, np.arange(j), np.ones(j), sigma_t, mu, design)
    total = red.base + out.total
    return out._replace(total=total, ok=out.ok & red.ok & np.isfinite(total)), red


def evaluate_many(data: DynamicData, phi: np.ndarray, sigma_w: np.ndarray,
                  sigma_b: np.ndarray, p0: np.ndarray, mu: np.ndarray | None = None,
                  level: TherapistLevel | None = None, sigma_t: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-likelihoods of ``m`` parameter sets at once (matrices of shape (m, K, K);
    ``mu`` (m, K), or None: profiled out by GLS; a therapist ``level`` with
    ``sigma_t`` (m, K, K); see :func:`integrate`).

    Returns the log-likelihoods (m,), the means (m, K) and the GLS information of the
    means ``sum_i X_i' V_i^-1 X_i`` (m, K, K); ``-inf`` where a covariance is not
    admissible."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        totals, _ = run_filter(data, phi, sigma_w, p0)
        out = integrate(data, totals, sigma_b, mu, level, sigma_t)
    return np.where(out.ok, -out.total / 2, -np.inf), out.mu, out.information


def evaluate(data: DynamicData, phi: np.ndarray, sigma_w: np.ndarray, sigma_b: np.ndarray,
             p0: np.ndarray, mu: np.ndarray | None = None,
             level: TherapistLevel | None = None, sigma_t: np.ndarray | None = None
             ) -> DynamicEvaluation:
    """The ML log-likelihood at the given matrices (``mu`` profiled out when None);
    ``-inf`` where a covariance is not admissible (see :func:`evaluate_many`)."""
    k = data.k
    if not np.all(np.isfinite(p0)):
        return DynamicEvaluation(-np.inf, np.full(k, np.nan), np.full((k, k), np.nan))
    loglik, mus, info = evaluate_many(
        data, phi[None], sigma_w[None], sigma_b[None], p0[None],
        None if mu is None else np.asarray(mu, float)[None], level,
        None if sigma_t is None else np.asarray(sigma_t, float)[None])
    return DynamicEvaluation(float(loglik[0]), np.asarray(mus[0], float), info[0])
