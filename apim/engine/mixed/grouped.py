"""The random-effect part of the likelihood for dyads that share their ``Z'R^-1 Z``, by group.

With stencil cross products (:class:`~apim.engine.mixed.moments.TypeMoments`) a dyad's
random-effect rows are ``sum_c w_c(theta) rows_c,i`` over combinations ``c`` (row type and
pair of stencil slots): ``A_i = sum_c w_c ZZ_c,i`` and ``B_i = sum_c w_c ZU_c,i``
(``U = [X | y]``). Dyads whose raw blocks ``ZZ_c,i`` agree in every combination (with
random intercepts: the same numbers of rows of each type) form a group ``g`` that shares
``A_g``, ``K_g = I + G A_g``, ``log|K_g|`` and ``H_g = K_g^-1 G``. Then::

    sum_(i in g) B_i' H_g B_i = sum_(j, j') w_c(j) w_c(j') H_g[a(j), a(j')] M_g[j, j'],
    M_g[j, j'] = sum_(i in g) ZU_c(j),i[a(j), :]' ZU_c(j'),i[a(j'), :],

over the pairs ``j = (c, a)`` of a combination and a random effect whose rows are not zero
in every dyad. ``M`` is computed once per fit, so an evaluation costs
``O(groups x J^2 x u^2)``, whatever the number of dyads. Derivatives:

* a random-effect parameter: ``d log|K| = tr(K^-1 dG A)``, ``dH = K^-1 dG (I - A H)``;
* a residual parameter: ``dA = sum_c dw_c ZZ_c``, ``d log|K| = tr(H dA)``,
  ``dH = -H dA H``, and the weights move: ``d(w_c w_c') = dw_c w_c' + w_c dw_c'``.

Only models without a therapist level use it, and only when ``M`` is small beside the
per-dyad work (:data:`DYAD_COST`; random slopes on continuous predictors give a group per
dyad): other models keep the per-cluster path of :mod:`apim.engine.mixed.likelihood`.

Examples
--------
>>> import numpy as np
>>> from apim.engine import MixedModel, Unstructured, Residual
>>> from apim.engine.mixed.model import Prepared
>>> rng = np.random.default_rng(1)
>>> dyad = np.repeat(np.arange(20), 6); role = np.tile([0, 1], 60)
>>> session = np.tile(np.repeat([1, 2, 3], 2), 20)
>>> X = np.column_stack([1 - role, role]).astype(float)
>>> model = MixedModel(y=rng.normal(size=120), X=X, dyad=dyad, role=role, session=session,
...                    Z=X, random=Unstructured(2), residual=Residual.named("un"))
>>> grouped = GroupedMoments.of(Prepared.of(model).products)
>>> grouped.n_groups, grouped.size.tolist()
(1, [20])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from apim.engine.mixed.moments import CHUNK_ROWS, TypeMoments, pair_weights
from apim.engine.mixed.residuals import Residual

__all__ = ["GroupedMoments", "RandomTerms"]

MAX_BYTES = 256 * 2 ** 20  # largest M kept
DYAD_COST = 500  # a dyad on the per-dyad path costs about as much as this many entries of M


@dataclass(frozen=True, eq=False)
class RandomTerms:
    """What the likelihood needs from the data and the covariance at one parameter vector.

    Attributes
    ----------
    logdet : float, ``sum_i log|V_i|``
    s : (u, u) ``sum_i U_i' V_i^-1 U_i`` with ``U = [X | y]``
    d_logdet : (k,) derivatives of ``logdet`` or None
    d_s : (k, u, u) derivatives of ``s`` or None
    blups : function of ``v = (-beta, 1)`` giving the predicted random effects per cluster
    residual_adjoint : None, or the derivatives in the residual parameters as a
        vector-Jacobian product: ``d_logdet`` and ``d_s`` then hold the other parameters'
        only, and ``residual_adjoint(w)`` is the vector of ``d logdet + <w, d s>`` over
        the residual parameters for a symmetric ``(u, u)`` matrix ``w``
    """

    logdet: float
    s: np.ndarray
    d_logdet: np.ndarray | None
    d_s: np.ndarray | None
    blups: Callable[[np.ndarray], np.ndarray]
    residual_adjoint: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass(frozen=True, eq=False)
class GroupedMoments:
    """Dyads grouped by their random-effect blocks, with the moments ``M`` per group.

    Attributes
    ----------
    group : (D,) group of each dyad
    size : (n_groups,) dyads per group
    zz : (C, n_groups, r, r) the raw ``Z'Z`` block of each combination in each group
    combo, effect : (J,) the combination and random effect of each kept pair ``j``
    m : (n_groups * J * J, u * u) ``M_g[j, j']`` flattened for one matrix product
    type_counts : (T,) rows of each type over all dyads
    """

    group: np.ndarray
    size: np.ndarray
    zz: np.ndarray
    combo: np.ndarray
    effect: np.ndarray
    m: np.ndarray
    type_counts: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.size)

    @classmethod
    def of(cls, moments: TypeMoments, max_bytes: int = MAX_BYTES) -> GroupedMoments | None:
        """The grouped moments, or None when they do not pay: ``M`` has more than
        :data:`DYAD_COST` entries per dyad (many groups, or many combinations as with
        ``UN x AR(1)``: the per-dyad path is then as fast) or takes more than
        ``max_bytes``."""
        d, r, m_cols = moments.shape
        n_combos, u = len(moments.combos), m_cols - r
        if r == 0 or d == 0:
            return None
        rows = moments.rows.reshape(n_combos, d, r, m_cols)
        key = np.ascontiguousarray(np.moveaxis(rows[..., :r], 1, 0).reshape(d, -1))
        _, first, group, size = np.unique(key, axis=0, return_index=True,
                                          return_inverse=True, return_counts=True)
        group = group.ravel()
        n_groups = len(size)
        nonzero = np.zeros((n_combos, r), bool)
        for c in range(n_combos):
            nonzero[c] = np.any(rows[c, :, :, r:] != 0, axis=(0, 2))
        combo, effect = np.nonzero(nonzero)
        n_pairs = len(combo)
        size_m = n_groups * (n_pairs * u) ** 2
        if size_m > DYAD_COST * d or 8 * size_m > max_bytes:
            return None
        m = np.zeros((n_groups, n_pairs * u, n_pairs * u))
        order = np.argsort(group, kind="stable")
        step = max(1, CHUNK_ROWS // max(1, n_pairs * u))
        for lo in range(0, d, step):
            dyads = order[lo:lo + step]
            # (dyads, J, u): the kept rows of every dyad in the block
            part = np.moveaxis(rows[combo[:, None], dyads[None, :], effect[:, None], r:], 1, 0)
            part = part.reshape(len(dyads), -1)
            grp = group[dyads]  # ascending: runs of one group
            starts = np.flatnonzero(np.r_[True, grp[1:] != grp[:-1]])
            for a, b in zip(starts, np.r_[starts[1:], len(grp)]):
                m[grp[a]] += part[a:b].T @ part[a:b]
        m = m.reshape(n_groups, n_pairs, u, n_pairs, u).transpose(0, 1, 3, 2, 4)
        return cls(group=group, size=size, zz=np.ascontiguousarray(rows[:, first, :, :r]),
                   combo=combo, effect=effect,
                   m=np.ascontiguousarray(m).reshape(n_groups * n_pairs ** 2, u * u),
                   type_counts=moments.counts.sum(0))

    def terms(self, moments: TypeMoments, residual: Residual, theta: np.ndarray,
              g: np.ndarray, dg: np.ndarray, gradient: bool) -> RandomTerms:
        """The likelihood's terms at residual parameters ``theta`` and random-effect
        covariance ``g`` with derivatives ``dg`` (see the module docstring)."""
        c, dc = residual.coefficients(theta, moments.types)
        w, dw = pair_weights(moments.combos, c, dc if gradient else None)
        n_groups, r = len(self.size), g.shape[0]
        u = moments.rest.shape[-1]
        zz = self.zz.reshape(len(w), -1)              # (C, groups * r * r)
        rest = moments.rest.reshape(len(w), -1)       # (C, u * u)
        a = (w @ zz).reshape(n_groups, r, r)
        k_mat = np.eye(r) + g @ a
        k_inv = np.linalg.inv(k_mat)
        h = k_inv @ g
        logdet = float(-2 * self.type_counts @ np.log(c[0])
                       + self.size @ np.linalg.slogdet(k_mat)[1])
        wj = w[self.combo]
        ww = np.outer(wj, wj)
        pairs = (self.effect[:, None], self.effect[None, :])
        h_pairs = h[:, pairs[0], pairs[1]]            # (groups, J, J)
        s = (w @ rest - (ww * h_pairs).reshape(-1) @ self.m).reshape(u, u)

        def blups(v: np.ndarray) -> np.ndarray:
            d, _, m_cols = moments.shape
            b = (w @ moments.rows).reshape(d, r, m_cols)[..., r:] @ v
            return (h[self.group] @ b[..., None])[..., 0]

        if not gradient:
            return RandomTerms(logdet, s, None, None, blups)
        # random-effect parameters: dH = K^-1 dG (I - A H)
        k_g = len(dg)
        dh_g = k_inv[:, None] @ dg[None] @ (np.eye(r) - a @ h)[:, None]  # (groups, k, r, r)
        dlog_g = dg.reshape(k_g, -1) @ (self.size @ (a @ k_inv).reshape(n_groups, -1)
                                        ).reshape(r, r).T.ravel()
        coef_g = np.swapaxes(ww * dh_g[..., pairs[0], pairs[1]], 0, 1)  # (k, groups, J, J)
        # residual parameters: the weights move, dA = sum_c dw_c ZZ_c, dH = -H dA H
        assert dw is not None  # (k_r, C)
        k_r = len(dw)
        da = (dw @ zz).reshape(k_r, n_groups, r, r)
        dlog_r = (-2 * (dc[:, 0] / c[0]) @ self.type_counts
                  + da.reshape(k_r, -1) @ (np.swapaxes(h, 1, 2) * self.size[:, None, None]
                                          ).ravel())
        dh_r = -(h @ da @ h)
        dwj = dw[:, self.combo]
        dww = dwj[:, :, None] * wj[None, None, :] + wj[None, :, None] * dwj[:, None, :]
        coef_r = dww[:, None] * h_pairs[None] + ww * dh_r[..., pairs[0], pairs[1]]
        coef = np.concatenate([coef_g.reshape(k_g, -1), coef_r.reshape(k_r, -1)])
        d_s = -(coef @ self.m)
        d_s[k_g:] += dw @ rest
        return RandomTerms(logdet, s, np.r_[dlog_g, dlog_r], d_s.reshape(-1, u, u), blups)
