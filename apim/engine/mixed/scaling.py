"""Scale-free fitting: the engine fits standardised columns and maps the estimates back.

With ``y = s_y y'``, ``X = X' diag(s_x)``, ``Z = Z' diag(s_z)`` (and the therapist design
likewise) the model in the primed units has ``beta' = diag(s_x) beta / s_y``,
``b' = diag(s_z) b / s_y``, ``G' = F G F`` with ``F = diag(s_z / s_y)`` and residual SDs
``sigma / s_y``. Back in the original units::

    beta = s_y beta' / s_x,     Cov(beta) = s_y^2 Cov(beta') / (s_x s_x'),
    X'V^-1 X = diag(s_x) (X'V^-1 X)' diag(s_x) / s_y^2,
    ML:   logLik = logLik' - N log s_y,
    REML: logLik = logLik' - (N - p) log s_y - sum_j log s_x_j,

and the covariance parameters map by each structure's ``rescale`` (a diagonal map), so
the Hessian in the original parameters is ``J H' J`` with ``J = d theta' / d theta``.
``s_y`` is the SD of the outcome, ``s_x`` and ``s_z`` the root mean squares of the columns
(tied where a structure needs equal scales, e.g. the two members of an exchangeable
``G``). t values, p values and convergence decisions then do not depend on the units.

Examples
--------
>>> import numpy as np
>>> from apim.engine import MixedModel, Residual
>>> from apim.engine.mixed.model import Prepared
>>> y = np.array([1e9, 3e9, 2e9, 5e9]); X = np.ones((4, 1))
>>> m = MixedModel(y=y, X=X, dyad=np.array([1, 1, 2, 2]), role=np.array([0, 1, 0, 1]),
...                session=np.ones(4, int), residual=Residual.named("cs"))
>>> s = Scaling.of(m)
>>> s.y == float(np.std(y)), s.x.tolist()
(True, [1.0])
>>> raw = Prepared.of(s.model).raw  # the standardised columns, sorted: [X | y]
>>> float(np.std(raw[:, -1])), float(raw[0, 0])
(1.0, 1.0)

The standardised model is a :class:`~apim.engine.mixed.model.ScaledModel`: it keeps the
caller's arrays and the factors, and the one sorted copy the engine makes is divided as
it is built, so standardising copies no data.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from apim.engine.mixed.likelihood import split_theta
from apim.engine.mixed.model import MixedModel, ScaledModel
from apim.errors import DataError

__all__ = ["Scaling"]


def _rms(a: np.ndarray) -> np.ndarray:
    """Root mean square of each column, as ``sqrt(mean(a**2, axis=0))`` computes it (the
    same sums in the same order, so the same bits) without a squared copy of ``a``."""
    a = np.asarray(a, float)
    if a.flags.f_contiguous:  # numpy sums each contiguous column pairwise
        sums = np.array([np.add.reduce(a[:, j] * a[:, j]) for j in range(a.shape[1])])
        r = np.sqrt(sums / a.shape[0])
    elif a.flags.c_contiguous:  # numpy adds the rows in order, as einsum does
        r = np.sqrt(np.einsum("ij,ij->j", a, a) / a.shape[0])
    else:
        r = np.sqrt(np.mean(a ** 2, axis=0))
    return np.where((r > 0) & np.isfinite(r), r, 1.0)


@dataclass(frozen=True, eq=False)
class Scaling:
    """The standardised model and the factors that map its estimates back.

    ``model`` is the standardised model (a :class:`~apim.engine.mixed.model.ScaledModel` that
    holds the caller's arrays and divides them where the engine reads them), or
    ``original`` itself when nothing is standardised.
    """

    original: MixedModel
    model: MixedModel
    y: float
    x: np.ndarray
    z: np.ndarray
    zt: np.ndarray

    @classmethod
    def of(cls, model: MixedModel, standardize: bool = True) -> Scaling:
        """Standardise ``model`` (identity factors when ``standardize`` is false).

        Raises
        ------
        DataError
            When the outcome takes a single value (nothing to model).
        """
        y = np.asarray(model.y, float)
        n = len(y)
        X = np.asarray(model.X, float).reshape(n, -1)
        finite = np.isfinite(y)
        if n and finite.all() and np.ptp(y) == 0:
            raise DataError(f"the outcome is constant (every value is {y[0]:g} in the "
                            f"{n} rows fitted): there is no variance to model; check the "
                            "outcome column")
        if not standardize or not finite.all() or not np.isfinite(X).all():
            return cls(model, model, 1.0, np.ones(X.shape[1]), np.ones(model.q),
                       np.ones(model.q_therapist))
        sy = float(np.std(y)) or 1.0
        sx = _rms(X)
        del y, X, finite
        sz = np.ones(model.q)
        if model.Z is not None and model.random is not None:
            sz = model.random.tie(_rms(np.asarray(model.Z, float).reshape(n, -1)))
        szt = np.ones(model.q_therapist)
        if model.therapist is not None and model.therapist_random is not None:
            zt = np.ones((n, 1)) if model.Z_therapist is None else \
                np.asarray(model.Z_therapist, float).reshape(n, -1)
            szt = model.therapist_random.tie(_rms(zt))
        own = {f.name: getattr(model, f.name) for f in fields(MixedModel)}
        scaled = ScaledModel(**own, y_scale=sy, x_scale=sx, z_scale=sz, zt_scale=szt)
        return cls(model, scaled, sy, sx, sz, szt)

    # ----------------------------------------------------------------- parameters
    def inner_theta(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Parameters of the standardised model from the original ones, and the diagonal
        derivative ``d theta' / d theta``."""
        m = self.original
        t_g, t_t, t_r = split_theta(m, np.asarray(theta, float))
        parts, jac = [], []
        if m.random is not None:
            g, j = m.random.rescale(t_g, self.z / self.y)
            parts.append(g)
            jac.append(j)
        if m.therapist_random is not None:
            g, j = m.therapist_random.rescale(t_t, self.zt / self.y)
            parts.append(g)
            jac.append(j)
        parts.append(m.residual.rescale(t_r, 1 / self.y))
        jac.append(np.ones(len(t_r)))
        return np.concatenate(parts), np.concatenate(jac)

    def outer_theta(self, inner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Original parameters from those of the standardised model, and the diagonal
        derivative ``d theta' / d theta`` at them."""
        m = self.model
        t_g, t_t, t_r = split_theta(m, np.asarray(inner, float))
        parts = []
        if m.random is not None:
            parts.append(m.random.rescale(t_g, self.y / self.z)[0])
        if m.therapist_random is not None:
            parts.append(m.therapist_random.rescale(t_t, self.y / self.zt)[0])
        parts.append(m.residual.rescale(t_r, self.y))
        theta = np.concatenate(parts)
        return theta, self.inner_theta(theta)[1]

    # ----------------------------------------------------------------- estimates
    def loglik(self, inner: float, reml: bool) -> float:
        n, p = len(self.original.y), len(self.x)
        if reml:
            return inner - (n - p) * np.log(self.y) - float(np.sum(np.log(self.x)))
        return inner - n * np.log(self.y)

    def beta(self, inner: np.ndarray) -> np.ndarray:
        return inner * self.y / self.x

    def cov_beta(self, inner: np.ndarray) -> np.ndarray:
        return inner * self.y ** 2 / np.outer(self.x, self.x)

    def d_xvx(self, inner: np.ndarray, jac: np.ndarray) -> np.ndarray:
        """Derivatives of ``X'V^-1 X`` in the original parameters."""
        if inner is None or len(inner) == 0:
            return inner
        return inner * np.outer(self.x, self.x)[None] / self.y ** 2 * jac[:, None, None]
