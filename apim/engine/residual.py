"""Residual covariance within a dyad and its whitening.

The residuals of a dyad are ordered by session and role. :class:`Residual` describes
``Cov(e_irt, e_ir's) = s_r s_r' c_rr' phi^|t - s|`` with ``c_rr = 1`` and
``c_rr' = rho`` for the two members at the same session:

============== ================== ============ =====
name           variances          rho          phi
============== ================== ============ =====
independent    equal              0            0
diagonal       role-specific      0            0
cs             equal              estimated    0
un             role-specific      estimated    0
ar1            role-specific      0            estimated (within person)
un-ar1         role-specific      estimated    estimated (``UN x AR(1)``)
ar1-equal      equal              0            estimated (within person)
cs-ar1         equal              estimated    estimated (``CS x AR(1)``)
============== ================== ============ =====

The unconstrained parameters are ``(log s_0[, log s_1][, atanh rho][, atanh phi])``.
Residuals are whitened (``R^-1 = W'W``) by a stencil: a whitened row combines the row,
the partner's row at the same session and both rows of the previous session, with
coefficients that depend only on the row's *type* (role, partner present, earlier session
present, session gap), so the likelihood needs only per-dyad cross products by type,
computed once per fit (:mod:`apim.engine.moments`). For ``UN x AR(1)`` (``R = C(phi) x
Sigma``, ``W = A x B``) this holds in dyads where both members rated every session; other
dyads are whitened by a dense Cholesky factor (:mod:`apim.engine.dense_residual`).

Examples
--------
>>> Residual.named("un").n_params
3
>>> params = Residual.named("un-ar1").records(np.array([0.0, np.log(2.0), 0.0, 0.0]))
>>> [(p.label, p.estimate) for p in params]
[('sigma(0)', 1.0), ('sigma(1)', 2.0), ('rho', 0.0), ('phi', 0.0)]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apim.engine.parameters import VarianceParameter
from apim.errors import SpecError

__all__ = ["Residual", "ResidualLayout", "RESIDUAL_NAMES", "index_dtype"]

RESIDUAL_NAMES = {
    "independent": (True, False, False),
    "diagonal": (False, False, False),
    "cs": (True, True, False),
    "un": (False, True, False),
    "ar1": (False, False, True),
    "un-ar1": (False, True, True),
    "ar1-equal": (True, False, True),
    "cs-ar1": (True, True, True),
}


def index_dtype(n: int) -> type[np.signedinteger]:
    """The integer type of row indices for ``n`` rows: int32 when they fit (half the
    memory of int64), else int64."""
    return np.int32 if n < 2 ** 31 - 1 else np.int64


def _narrow(values: np.ndarray, kind: type[np.signedinteger]) -> np.ndarray:
    """Whole numbers as ``kind`` when every value fits, else int64."""
    values = np.asarray(values)
    if values.dtype.kind not in "iub":
        values = values.astype(np.int64)
    info = np.iinfo(kind)
    if len(values) and (values.min() < info.min or values.max() > info.max):
        return values.astype(np.int64, copy=False)
    return values.astype(kind, copy=False)


@dataclass(frozen=True)
class ResidualLayout:
    """Index arrays describing where each observation sits (rows sorted by dyad, session,
    role).

    Attributes
    ----------
    dyad : int64 array
        Dyad of each row, numbered 0..D-1 in row order (int64, so products such as
        ``dyad * n_types`` cannot overflow).
    role : int array, 0 or 1
    session : int array
    dyad_start : int array
        First row of each dyad.
    pair : int array
        For a role-1 row, the row of the role-0 member at the same session, else -1.
    previous : int array
        The same person's previous row (by session), else -1.
    gap : int array (computed when asked for, not stored)
        Session difference to ``previous`` (1 where there is none).

    Row indices (``dyad_start``, ``pair``, ``previous``), roles, sessions and gaps are
    int32 when the number of rows allows (:func:`index_dtype`).

    Examples
    --------
    >>> lay = ResidualLayout.build(np.array([7, 7, 7, 9]), np.array([1, 1, 2, 1]),
    ...                            np.array([0, 1, 1, 0]))
    >>> lay.dyad.tolist(), lay.pair.tolist(), lay.previous.tolist(), lay.gap.tolist()
    ([0, 0, 0, 1], [-1, 0, -1, -1], [-1, -1, 1, -1], [1, 1, 1, 1])
    """

    dyad: np.ndarray
    role: np.ndarray
    session: np.ndarray
    dyad_start: np.ndarray
    pair: np.ndarray
    previous: np.ndarray

    @classmethod
    def build(cls, dyad: np.ndarray, session: np.ndarray, role: np.ndarray) -> ResidualLayout:
        """Rows must be sorted by dyad, session and role (any dyad labels)."""
        n = len(dyad)
        kind = index_dtype(n)
        role, session = _narrow(role, kind), _narrow(session, kind)
        new = np.empty(n, bool)
        new[:1] = True
        np.not_equal(dyad[1:], dyad[:-1], out=new[1:])
        start = np.flatnonzero(new).astype(kind)
        dyad = np.cumsum(new, dtype=np.int64) - 1
        rows = np.arange(n, dtype=kind)
        same_session = np.r_[False, (~new[1:]) & (session[1:] == session[:-1])]
        pair = np.where(same_session & (role == 1), rows - 1, -1).astype(kind, copy=False)
        del new, same_session
        # a person's rows are in session order within the dyad: the previous row of the
        # same person is the previous row with the same role, if in the same dyad
        previous = np.full(n, -1, dtype=kind)
        for value in np.unique(role):
            mine = rows[role == value]
            before = mine[:-1]
            same = dyad[mine[1:]] == dyad[before]
            previous[mine[1:][same]] = before[same]
        return cls(dyad=dyad, role=role, session=session, dyad_start=start,
                   pair=pair, previous=previous)

    @property
    def gap(self) -> np.ndarray:
        """Session difference to ``previous`` (1 where there is none)."""
        gap = np.ones(len(self.session), dtype=self.session.dtype)
        has = self.previous >= 0
        gap[has] = self.session[has] - self.session[self.previous[has]]
        return gap

    @property
    def sizes(self) -> np.ndarray:
        """Rows per dyad."""
        return np.bincount(self.dyad)


@dataclass(frozen=True)
class Residual:
    """A residual structure (see the module docstring for the names)."""

    equal_variances: bool = False
    correlated: bool = True
    ar1: bool = False

    @classmethod
    def named(cls, name: str) -> Residual:
        """The structure called ``name``: one of ``RESIDUAL_NAMES``."""
        if name not in RESIDUAL_NAMES:
            raise SpecError(f"residual structure {name!r} is not one of "
                              f"{', '.join(RESIDUAL_NAMES)}")
        return cls(*RESIDUAL_NAMES[name])

    @property
    def name(self) -> str:
        flags = (self.equal_variances, self.correlated, self.ar1)
        return next(name for name, value in RESIDUAL_NAMES.items() if value == flags)

    @property
    def n_params(self) -> int:
        return (1 if self.equal_variances else 2) + self.correlated + self.ar1

    @property
    def kronecker(self) -> bool:
        """``UN x AR(1)``-type structures: a stencil only where both members rated every
        session of the dyad, a dense factor elsewhere."""
        return self.correlated and self.ar1

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, float, float]:
        """``(sigma per role, rho, phi)`` from unconstrained parameters."""
        k = 1 if self.equal_variances else 2
        sigma = np.exp(np.repeat(theta[0], 2) if k == 1 else theta[:2])
        rho = float(np.tanh(theta[k])) if self.correlated else 0.0
        phi = float(np.tanh(theta[-1])) if self.ar1 else 0.0
        return sigma, rho, phi

    def records(self, theta: np.ndarray) -> list[VarianceParameter]:
        """The natural parameters as records: residual SD per role (one pooled SD with
        equal variances), the same-session correlation, the AR(1) phi."""
        sigma, rho, phi = self.unpack(theta)
        if self.equal_variances:
            out = [VarianceParameter("residual", "sd", roles=(0, 1), pooled=True,
                                     estimate=float(sigma[0]))]
        else:
            out = [VarianceParameter("residual", "sd", roles=(r,), estimate=float(sigma[r]))
                   for r in (0, 1)]
        if self.correlated:
            out.append(VarianceParameter("residual", "cor", roles=(0, 1), pooled=True,
                                         estimate=rho))
        if self.ar1:
            out.append(VarianceParameter("residual", "phi", roles=(0, 1), pooled=True,
                                         estimate=phi))
        return out

    def rescale(self, theta: np.ndarray, factor: float) -> np.ndarray:
        """Parameters of the same structure with every residual SD times ``factor``."""
        theta = np.array(theta, float)
        theta[:1 if self.equal_variances else 2] += np.log(factor)
        return theta

    @property
    def pooled(self) -> Residual:
        """The counterpart with equal variances (for indistinguishable dyads)."""
        return Residual(True, self.correlated, self.ar1)

    def start(self, variances: np.ndarray, rho: float, phi: float) -> np.ndarray:
        """Unconstrained start from role variances and moment correlations."""
        logs = 0.5 * np.log(np.maximum(variances, 1e-8))
        parts = [np.array([logs.mean()]) if self.equal_variances else logs]
        if self.correlated:
            parts.append(np.array([np.arctanh(np.clip(rho, -0.9, 0.9))]))
        if self.ar1:
            parts.append(np.array([np.arctanh(np.clip(phi, -0.9, 0.9))]))
        return np.concatenate(parts)

    # ------------------------------------------------------------------ whitening
    def row_types(self, layout: ResidualLayout) -> RowTypes:
        """Classify rows by what their whitening coefficients depend on (see
        :class:`RowTypes`). For ``UN x AR(1)`` every session must have both members
        (the Kronecker stencil); other dyads are whitened densely."""
        n = len(layout.role)
        kind = index_dtype(n)
        links = {"self": np.arange(n, dtype=kind)}
        if self.correlated:
            links["pair"] = layout.pair
        if self.ar1:
            links["prev"] = layout.previous
        if self.correlated and self.ar1:
            prev = np.maximum(layout.previous, 0)
            links["prev_pair"] = np.where(layout.previous >= 0, layout.pair[prev],
                                          -1).astype(kind, copy=False)
        paired = layout.pair >= 0
        has_prev = (layout.previous >= 0) & self.ar1
        gap = np.where(has_prev, layout.gap, 1).astype(np.int64)
        code = layout.role + 2 * paired + 4 * has_prev + 8 * gap
        del paired, has_prev, gap
        if len(code) and code.min() >= 0 and code.max() < 4 * len(code) + 64:
            # few small codes: their ranks by a look-up table (what np.unique's inverse
            # gives, without sorting N values)
            present = np.bincount(code) > 0
            keys = np.flatnonzero(present)
            lookup = np.cumsum(present) - 1
            index = lookup[code]
        else:
            keys, index = np.unique(code, return_inverse=True)
        del code
        return RowTypes(index=index.ravel().astype(kind), slots=tuple(links),
                        links=np.array([a.astype(kind, copy=False) for a in links.values()]),
                        role=keys % 2,
                        paired=(keys // 2 % 2).astype(bool),
                        has_prev=(keys // 4 % 2).astype(bool), gap=keys // 8)

    def coefficients(self, theta: np.ndarray, types: RowTypes
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Whitening ``(W u)_row = sum_slots c_slot u_link(slot)`` per row type, ``c``
        (slots, types), and its derivatives (parameters, slots, types).

        ``c = time factor x role factor``: with ``f = phi^gap`` and ``a = 1/sqrt(1 - f^2)``
        the time factors are ``a`` (this session) and ``-f a`` (the previous one); the role
        factors are the inverse Cholesky factor of the 2 x 2 residual covariance,
        ``1/s0`` for the reference role, ``1/(s1 g)`` and ``-rho/(s0 g)`` (partner) for the
        other, ``g = sqrt(1 - rho^2)`` (1 without a same-session partner).
        """
        sigma, rho, phi = self.unpack(theta)
        role, paired = types.role, types.paired & self.correlated
        n, k = len(role), self.n_params
        k_sigma = 1 if self.equal_variances else 2
        g = np.where(paired, np.sqrt(1 - rho ** 2), 1.0)
        own = 1 / (sigma[role] * g)                        # diagonal role factor
        cross = np.where(paired, -rho / (sigma[0] * g), 0.0)  # partner role factor
        d_own, d_cross = np.zeros((k, n)), np.zeros((k, n))
        for j in range(k_sigma):  # log sigma
            mine = np.ones(n, bool) if self.equal_variances else role == j
            d_own[j] = np.where(mine, -own, 0.0)
            d_cross[j] = -cross if (self.equal_variances or j == 0) else 0.0
        if self.correlated:  # atanh rho
            d = 1 - rho ** 2
            d_own[k_sigma] = np.where(paired, own * rho / g ** 2, 0.0) * d
            d_cross[k_sigma] = np.where(paired, -1 / (sigma[0] * g ** 3), 0.0) * d
        f = np.where(types.has_prev, phi ** types.gap, 0.0)
        a = 1 / np.sqrt(1 - f ** 2)
        now, before = a, -f * a                            # time factors
        d_now, d_before = np.zeros((k, n)), np.zeros((k, n))
        if self.ar1:  # atanh phi
            df = np.where(types.has_prev, types.gap * phi ** (types.gap - 1), 0.0) \
                * (1 - phi ** 2)
            d_now[-1] = f * a ** 3 * df
            d_before[-1] = -a ** 3 * df
        parts = {"self": (now, own, d_now, d_own), "pair": (now, cross, d_now, d_cross),
                 "prev": (before, own, d_before, d_own),
                 "prev_pair": (before, cross, d_before, d_cross)}
        c = np.array([parts[s][0] * parts[s][1] for s in types.slots])
        dc = np.stack([parts[s][2] * parts[s][1] + parts[s][0] * parts[s][3]
                       for s in types.slots], axis=1)
        return c, dc


@dataclass(frozen=True)
class RowTypes:
    """Rows grouped by what their whitening coefficients depend on: role, whether the
    partner rated the same session, whether the person has an earlier session (AR(1)
    structures) and the session gap to it.

    Attributes
    ----------
    index : (N,) type of each row
    slots : names of the rows a whitened row combines (``self``, ``pair``, ``prev``,
        ``prev_pair``)
    links : (slots, N) the row each slot refers to, or -1
    role, paired, has_prev, gap : (n_types,) description of each type
    """

    index: np.ndarray
    slots: tuple[str, ...]
    links: np.ndarray
    role: np.ndarray
    paired: np.ndarray
    has_prev: np.ndarray
    gap: np.ndarray
