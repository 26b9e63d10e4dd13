"""The family of residual structures ``Cov(e_irt, e_ir's) = s_r s_r' c_rr' phi^|t - s|``.

``c_rr = 1`` and ``c_rr' = rho`` for the two members at the same session. A structure of
the family is a :class:`SessionResidual` subclass that lists which of the natural
parameters it estimates, in the order of its unconstrained vector:

============ =========================================== ==================
parameter    natural value                               unconstrained
============ =========================================== ==================
``sigma``    one residual SD shared by both roles        ``log s``
``sigma(0)`` residual SD of the reference role           ``log s_0``
``sigma(1)`` residual SD of the other role               ``log s_1``
``rho``      the members' same-session correlation       ``atanh rho``
``phi``      AR(1) autocorrelation over session numbers  ``atanh phi``
============ =========================================== ==================

A parameter not listed is fixed (``rho = 0``, ``phi = 0``). Everything else — records,
start values, rescaling, the whitening stencil with its derivatives, the dense matrix —
follows from the list.

Residuals are whitened (``R^-1 = W'W``) by a stencil: a whitened row combines the row,
the partner's row at the same session and both rows of the previous session, with
coefficients that depend only on the row's *type* (role, partner present, earlier session
present, session gap), so the likelihood needs only per-dyad cross products by type,
computed once per fit (:mod:`apim.engine.mixed.moments`). With both ``rho`` and ``phi``
(``R = C(phi) x Sigma``, ``W = A x B``) this holds in dyads where both members rated every
session; other dyads get the complete-grid correction
(:mod:`apim.engine.mixed.missing_ratings`).

Examples
--------
>>> from apim.engine.mixed.residuals import Residual
>>> params = Residual.named("un-ar1").records(np.array([0.0, np.log(2.0), 0.0, 0.0]))
>>> [(p.label, p.estimate) for p in params]
[('sigma(0)', 1.0), ('sigma(1)', 2.0), ('rho', 0.0), ('phi', 0.0)]
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from apim.engine.mixed.residuals.base import Residual, registered
from apim.engine.mixed.residuals.layout import ResidualLayout, RowTypes, index_dtype
from apim.engine.parameters import VarianceParameter
from apim.errors import SpecError

__all__ = ["SessionResidual", "PARAMETERS"]

PARAMETERS = ("sigma", "sigma(0)", "sigma(1)", "rho", "phi")


class SessionResidual(Residual):
    """A structure of the family (see the module docstring); subclasses set ``name`` and
    ``parameters``."""

    parameters: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        sigmas = [p for p in cls.parameters if p.startswith("sigma")]
        if (set(cls.parameters) - set(PARAMETERS)
                or sigmas not in (["sigma"], ["sigma(0)", "sigma(1)"])
                or list(cls.parameters) != sorted(cls.parameters, key=PARAMETERS.index)):
            raise TypeError(f"{cls.__name__}.parameters={cls.parameters!r}: the SDs ('sigma', "
                            "or 'sigma(0)' and 'sigma(1)'), then 'rho' and 'phi' if estimated")

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # ------------------------------------------------------------ parameters
    @property
    def n_params(self) -> int:
        return len(self.parameters)

    @property
    def equal_variances(self) -> bool:
        return "sigma" in self.parameters

    @property
    def correlated(self) -> bool:
        """The members' same-session residuals are correlated (``rho`` estimated)."""
        return "rho" in self.parameters

    @property
    def ar1(self) -> bool:
        """AR(1) over session numbers within person (``phi`` estimated)."""
        return "phi" in self.parameters

    @property
    def kronecker(self) -> bool:
        return self.correlated and self.ar1

    @property
    def pooled(self) -> Residual:
        if self.equal_variances:
            return self
        wanted = ("sigma",) + tuple(p for p in self.parameters if not p.startswith("sigma"))
        for cls in registered():
            if issubclass(cls, SessionResidual) and cls.parameters == wanted:
                return cls()
        raise SpecError(f"residual structure {self.name!r} has no counterpart with equal "
                        "variances")

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
        out = []
        for name in self.parameters:
            if name == "sigma":
                out.append(VarianceParameter("residual", "sd", roles=(0, 1), pooled=True,
                                             estimate=float(sigma[0])))
            elif name.startswith("sigma"):
                r = int(name[-2])
                out.append(VarianceParameter("residual", "sd", roles=(r,),
                                             estimate=float(sigma[r])))
            else:
                out.append(VarianceParameter("residual", "cor" if name == "rho" else "phi",
                                             roles=(0, 1), pooled=True,
                                             estimate=rho if name == "rho" else phi))
        return out

    def rescale(self, theta: np.ndarray, factor: float) -> np.ndarray:
        theta = np.array(theta, float)
        theta[:1 if self.equal_variances else 2] += np.log(factor)
        return theta

    def start(self, variances: np.ndarray, rho: float, phi: float) -> np.ndarray:
        logs = 0.5 * np.log(np.maximum(variances, 1e-8))
        parts = [np.array([logs.mean()]) if self.equal_variances else logs]
        if self.correlated:
            parts.append(np.array([np.arctanh(np.clip(rho, -0.9, 0.9))]))
        if self.ar1:
            parts.append(np.array([np.arctanh(np.clip(phi, -0.9, 0.9))]))
        return np.concatenate(parts)

    # ------------------------------------------------------------ whitening
    def row_types(self, layout: ResidualLayout) -> RowTypes:
        """Classify rows by what their whitening coefficients depend on (see
        :class:`RowTypes`). With ``rho`` and ``phi`` every session must have both members
        (the Kronecker stencil)."""
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
        """Whitening coefficients ``c`` (slots, types) and derivatives (parameters, slots,
        types).

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

    # ------------------------------------------------------------ oracle
    def dense(self, theta: np.ndarray, role: np.ndarray, session: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        sigma, rho, phi = self.unpack(theta)
        role = np.asarray(role, int)
        t = np.asarray(session, float)
        lag = np.abs(t[..., :, None] - t[..., None, :])
        same = role[..., :, None] == role[..., None, :]
        s = sigma[role]
        scale = s[..., :, None] * s[..., None, :]
        corr = np.where(same, 1.0, rho) if self.correlated else same.astype(float)
        decay = phi ** lag if self.ar1 else (lag == 0).astype(float)
        r = scale * corr * decay
        grads = []
        for name in self.parameters:
            if name == "sigma":
                grads.append(2 * r)
            elif name.startswith("sigma"):
                k = int(name[-2])
                hits = (role[..., :, None] == k).astype(float) + (role[..., None, :] == k)
                grads.append(r * hits)
            elif name == "rho":
                grads.append(np.where(~same, scale * decay, 0.0) * (1 - rho ** 2))
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    dd = np.where(lag > 0, lag * phi ** np.maximum(lag - 1, 0), 0.0)
                grads.append(scale * corr * dd * (1 - phi ** 2))
        return r, np.stack(grads)
