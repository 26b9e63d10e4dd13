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
============== ================== ============ =====

``whiten`` returns ``W u`` for ``R^-1 = W'W`` (so whitened residuals are independent with
unit variance), ``log|R|`` per dyad, and the derivatives of both with respect to the
unconstrained parameters ``(log s_0[, log s_1][, atanh rho][, atanh phi])``. Structures
without both ``rho`` and ``phi`` are whitened by a two-term stencil in O(N); ``un-ar1`` by a
dense Cholesky factor per dyad.

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
        for name, value in RESIDUAL_NAMES.items():
            if value == flags:
                return name
        return "equal-ar1" if not self.correlated else "cs-ar1"

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
    def whiten(self, theta: np.ndarray, layout: ResidualLayout, u: np.ndarray,
               derivatives: bool = True
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Whiten the rows of ``u`` (N x m).

        Returns
        -------
        wu : (N, m) ``W u``
        logdet : (n_dyads,) ``log|R_i|``
        dwu : (k, N, m) derivatives of ``W u``, or None
        dlogdet : (k, n_dyads), or None
        """
        if self.dense:
            from apim.engine.dense_residual import whiten_dense

            return whiten_dense(self, theta, layout, u, derivatives)
        a, c, prev, da, dc = self._stencil(theta, layout)
        wu = a[:, None] * u + c[:, None] * u[prev]
        logdet = -2 * np.add.reduceat(np.log(a), layout.dyad_start)
        if not derivatives:
            return wu, logdet, None, None
        dwu = da[:, :, None] * u[None] + dc[:, :, None] * u[prev][None]
        dlogdet = -2 * np.add.reduceat(da / a[None], layout.dyad_start, axis=1)
        return wu, logdet, dwu, dlogdet

    def _stencil(self, theta: np.ndarray, layout: ResidualLayout):
        """Coefficients of ``(W u)_k = a_k u_k + c_k u_prev(k)`` and their derivatives."""
        sigma, rho, phi = self.unpack(theta)
        n = len(layout.role)
        k_sigma = 1 if self.equal_variances else 2
        role = layout.role
        s = sigma[role]
        if self.correlated:
            link = layout.pair
            g = np.where(link >= 0, np.sqrt(1 - rho ** 2), 1.0)
            a = 1 / (s * g)
            c = np.where(link >= 0, -rho / (sigma[0] * g), 0.0)
        elif self.ar1:
            link = layout.previous
            f = np.where(link >= 0, phi ** layout.gap, 0.0)
            g = np.sqrt(1 - f ** 2)
            a = 1 / (s * g)
            c = -f * a
        else:
            link = np.full(n, -1)
            a, c = 1 / s, np.zeros(n)
        prev = np.where(link >= 0, link, np.arange(n))
        da = np.zeros((self.n_params, n))
        dc = np.zeros((self.n_params, n))
        # log-sigma parameters: a scales with 1/s_role, c with 1/s of the linked row's role
        for k in range(k_sigma):
            own = np.ones(n, bool) if self.equal_variances else role == k
            da[k] = np.where(own, -a, 0.0)
            if self.correlated:
                linked = np.ones(n, bool) if self.equal_variances else np.full(n, k == 0)
                dc[k] = np.where(linked, -c, 0.0)
            else:
                dc[k] = np.where(own, -c, 0.0)
        if self.correlated:
            d = 1 - rho ** 2  # d rho / d atanh(rho)
            has = link >= 0
            da[k_sigma] = np.where(has, a * rho / g ** 2, 0.0) * d
            dc[k_sigma] = np.where(has, -1 / (sigma[0] * g ** 3), 0.0) * d
        if self.ar1:
            has = link >= 0
            df = np.where(has, layout.gap * phi ** (layout.gap - 1), 0.0) * (1 - phi ** 2)
            da[-1] = a * f / g ** 2 * df
            dc[-1] = -a / g ** 2 * df
        return a, c, prev, da, dc
