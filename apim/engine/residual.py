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
Structures without both ``rho`` and ``phi`` are whitened (``R^-1 = W'W``) by a two-term
stencil, ``(W u)_row = a u_row + c u_link``, whose coefficients depend only on the row's
*type* (role, whether it is linked to an earlier row, the session gap): the likelihood
then needs only per-dyad cross products by type, computed once per fit
(:mod:`apim.engine.moments`). ``un-ar1`` is whitened by a dense Cholesky factor per dyad
(:mod:`apim.engine.dense_residual`).

Examples
--------
>>> Residual.named("un").n_params
3
>>> Residual.named("un-ar1").natural(np.array([0.0, np.log(2.0), 0.0, 0.0]))
{'sigma(0)': 1.0, 'sigma(1)': 2.0, 'rho': 0.0, 'phi': 0.0}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apim.errors import OptionError

__all__ = ["Residual", "ResidualLayout", "RESIDUAL_NAMES"]

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


@dataclass(frozen=True)
class ResidualLayout:
    """Index arrays describing where each observation sits (rows sorted by dyad, session,
    role).

    Attributes
    ----------
    role : int array, 0 or 1
    session : int array
    dyad_start : int array
        First row of each dyad.
    pair : int array
        For a role-1 row, the row of the role-0 member at the same session, else -1.
    previous : int array
        The same person's previous row (by session), else -1.
    gap : int array
        Session difference to ``previous`` (1 where there is none).
    """

    role: np.ndarray
    session: np.ndarray
    dyad_start: np.ndarray
    pair: np.ndarray
    previous: np.ndarray
    gap: np.ndarray

    @classmethod
    def build(cls, dyad: np.ndarray, session: np.ndarray, role: np.ndarray) -> "ResidualLayout":
        """Rows must be sorted by dyad, session and role (codes 0..n-1 for dyads)."""
        n = len(dyad)
        start = np.flatnonzero(np.r_[True, dyad[1:] != dyad[:-1]])
        same_session = np.r_[False, (dyad[1:] == dyad[:-1]) & (session[1:] == session[:-1])]
        pair = np.where(same_session & (role == 1), np.arange(n) - 1, -1)
        order = np.lexsort((session, role, dyad))
        prev_sorted = np.full(n, -1)
        same_person = np.r_[False, (dyad[order][1:] == dyad[order][:-1])
                            & (role[order][1:] == role[order][:-1])]
        prev_sorted[same_person] = order[np.flatnonzero(same_person) - 1]
        previous = np.full(n, -1)
        previous[order] = prev_sorted
        gap = np.where(previous >= 0, session - session[np.maximum(previous, 0)], 1)
        return cls(role=role.astype(int), session=session.astype(int), dyad_start=start,
                   pair=pair, previous=previous, gap=gap)


@dataclass(frozen=True)
class Residual:
    """A residual structure (see the module docstring for the names)."""

    equal_variances: bool = False
    correlated: bool = True
    ar1: bool = False

    @classmethod
    def named(cls, name: str) -> "Residual":
        """The structure called ``name``: one of ``RESIDUAL_NAMES``."""
        if name not in RESIDUAL_NAMES:
            raise OptionError(f"residual structure {name!r} is not one of "
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
    def dense(self) -> bool:
        """Whether whitening needs a dense factor per dyad."""
        return self.correlated and self.ar1

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, float, float]:
        """``(sigma per role, rho, phi)`` from unconstrained parameters."""
        k = 1 if self.equal_variances else 2
        sigma = np.exp(np.repeat(theta[0], 2) if k == 1 else theta[:2])
        rho = float(np.tanh(theta[k])) if self.correlated else 0.0
        phi = float(np.tanh(theta[-1])) if self.ar1 else 0.0
        return sigma, rho, phi

    def natural(self, theta: np.ndarray) -> dict[str, float]:
        """Residual SDs per role (0, 1), same-session correlation and AR(1) phi."""
        sigma, rho, phi = self.unpack(theta)
        out = {"sigma(0)": float(sigma[0]), "sigma(1)": float(sigma[1])}
        if self.correlated:
            out["rho"] = rho
        if self.ar1:
            out["phi"] = phi
        return out

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
    def row_types(self, layout: ResidualLayout) -> "RowTypes":
        """Classify rows by what their whitening coefficients depend on (see
        :class:`RowTypes`); needs a structure that is not :attr:`dense`."""
        if self.correlated:
            link = layout.pair
        elif self.ar1:
            link = layout.previous
        else:
            link = np.full(len(layout.role), -1)
        linked = link >= 0
        gap = np.where(linked & self.ar1, layout.gap, 1)
        code = layout.role + 2 * linked + 4 * gap.astype(np.int64)
        keys, index = np.unique(code, return_inverse=True)
        return RowTypes(index=index.ravel(), link=link, role=keys % 2,
                        linked=(keys // 2 % 2).astype(bool), gap=keys // 4)

    def coefficients(self, theta: np.ndarray, types: "RowTypes"
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Whitening ``(W u)_row = a u_row + c u_link(row)`` per row type, and derivatives
        ``da, dc`` (k, n_types) with respect to the unconstrained parameters."""
        sigma, rho, phi = self.unpack(theta)
        role, has = types.role, types.linked
        n = len(role)
        k_sigma = 1 if self.equal_variances else 2
        s = sigma[role]
        if self.correlated:
            g = np.where(has, np.sqrt(1 - rho ** 2), 1.0)
            a = 1 / (s * g)
            c = np.where(has, -rho / (sigma[0] * g), 0.0)
        elif self.ar1:
            f = np.where(has, phi ** types.gap, 0.0)
            g = np.sqrt(1 - f ** 2)
            a = 1 / (s * g)
            c = -f * a
        else:
            a, c = 1 / s, np.zeros(n)
        da = np.zeros((self.n_params, n))
        dc = np.zeros((self.n_params, n))
        for k in range(k_sigma):  # log sigma: a ~ 1/s_own, c ~ 1/s of the linked row
            own = np.ones(n, bool) if self.equal_variances else role == k
            da[k] = np.where(own, -a, 0.0)
            if self.correlated:
                dc[k] = -c if (self.equal_variances or k == 0) else 0.0
            else:
                dc[k] = np.where(own, -c, 0.0)
        if self.correlated:
            d = 1 - rho ** 2  # d rho / d atanh(rho)
            da[k_sigma] = np.where(has, a * rho / g ** 2, 0.0) * d
            dc[k_sigma] = np.where(has, -1 / (sigma[0] * g ** 3), 0.0) * d
        if self.ar1:
            df = np.where(has, types.gap * phi ** (types.gap - 1), 0.0) * (1 - phi ** 2)
            da[-1] = a * f / g ** 2 * df
            dc[-1] = -a / g ** 2 * df
        return a, c, da, dc


@dataclass(frozen=True)
class RowTypes:
    """Rows grouped by the values their whitening coefficients depend on: role, whether
    they are linked to an earlier row (the partner at the same session, or the person's
    previous session under AR(1)) and the session gap to it.

    Attributes
    ----------
    index : (N,) type of each row
    link : (N,) linked row or -1
    role, linked, gap : (n_types,) description of each type
    """

    index: np.ndarray
    link: np.ndarray
    role: np.ndarray
    linked: np.ndarray
    gap: np.ndarray
