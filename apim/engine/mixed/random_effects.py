"""Covariance structures with unconstrained parameters (in the spirit of nlme's pdClasses).

Random-effect covariance matrices ``G`` (unstructured by log-Cholesky, diagonal, compound
symmetric, exchangeable between the two members of a dyad) share one protocol:
``n_params``, ``matrix(theta)``, ``jacobian(theta)`` (derivatives of ``G`` with respect to
each unconstrained parameter), ``start(variances)``, ``records(theta, names, level)``
(standard deviations and correlations as
:class:`~apim.engine.parameters.VarianceParameter` records), and for scale-free fitting
``tie(factors)`` (column scale factors the structure can absorb) and
``rescale(theta, factors)`` (the parameters of ``F G F`` with ``F = diag(factors)``, and
the diagonal derivative of the map).

Examples
--------
>>> import numpy as np
>>> un = Unstructured(2)
>>> theta = un.start(np.array([4.0, 1.0]))
>>> un.matrix(theta)
array([[4., 0.],
       [0., 1.]])
>>> [(p.label, p.estimate) for p in un.records(theta, ["a", "b"])]
[('sd(a)', 2.0), ('sd(b)', 1.0), ('cor(a,b)', 0.0)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from apim.engine.parameters import Level, VarianceParameter, covariance_records

__all__ = ["Unstructured", "Diagonal", "CompoundSymmetry", "Exchangeable", "RandomStructure",
           "lower_indices"]


@cache
def lower_indices(q: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.tril_indices(q)`` (the log-Cholesky parameters' order, row by row), cached and
    read-only: every likelihood evaluation asks for them."""
    rows, cols = np.tril_indices(q)
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


def _log_cholesky_rescale(theta: np.ndarray, factors: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Log-Cholesky parameters of ``F G F`` from those of ``G`` (rows of ``L``)."""
    q = len(factors)
    rows, cols = lower_indices(q)
    diagonal = rows == cols
    out = np.where(diagonal, theta + np.log(factors[rows]), theta * factors[rows])
    return out, np.where(diagonal, 1.0, factors[rows])


@dataclass(frozen=True)
class Unstructured:
    """General positive semi-definite ``G = L L'``; ``L`` lower triangular with log diagonal.

    Parameters are the rows of ``L``: ``log L11, L21, log L22, L31, L32, log L33, ...``.
    """

    size: int

    @property
    def n_params(self) -> int:
        return self.size * (self.size + 1) // 2

    def _factor(self, theta: np.ndarray) -> np.ndarray:
        q = self.size
        lower = np.zeros((q, q))
        lower[lower_indices(q)] = theta
        lower[np.diag_indices(q)] = np.exp(np.diag(lower))
        return lower

    def matrix(self, theta: np.ndarray) -> np.ndarray:
        lower = self._factor(theta)
        return lower @ lower.T

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """``dG_k = E L' + L E'`` with ``E = dL_k`` (one non-zero, ``L_ii`` on the log
        diagonal): ``E L'`` is row ``i`` of ``L'`` scaled, at row ``i``."""
        q = self.size
        lower = self._factor(theta)
        rows, cols = lower_indices(q)
        half = np.zeros((self.n_params, q, q))
        half[np.arange(self.n_params), rows] = \
            np.where(rows == cols, lower[rows, cols], 1.0)[:, None] * lower[:, cols].T
        return half + np.swapaxes(half, 1, 2)

    def start(self, variances: np.ndarray) -> np.ndarray:
        lower = np.diag(np.sqrt(np.maximum(variances, 1e-8)))
        lower[np.diag_indices(self.size)] = np.log(np.diag(lower))
        return lower[lower_indices(self.size)]

    def records(self, theta: np.ndarray, names: Sequence[str], level: Level = "dyad"
                ) -> list[VarianceParameter]:
        return covariance_records(level, self.matrix(theta), list(names))

    def tie(self, factors: np.ndarray) -> np.ndarray:
        return np.asarray(factors, float)

    def rescale(self, theta: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _log_cholesky_rescale(np.asarray(theta, float), np.asarray(factors, float))


@dataclass(frozen=True)
class Diagonal:
    """Independent random effects, ``G = diag(exp(2 theta))``."""

    size: int

    @property
    def n_params(self) -> int:
        return self.size

    def matrix(self, theta: np.ndarray) -> np.ndarray:
        return np.diag(np.exp(2 * np.asarray(theta)))

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        out = np.zeros((self.size, self.size, self.size))
        idx = np.arange(self.size)
        out[idx, idx, idx] = 2 * np.exp(2 * np.asarray(theta))
        return out

    def start(self, variances: np.ndarray) -> np.ndarray:
        return 0.5 * np.log(np.maximum(variances, 1e-8))

    def records(self, theta: np.ndarray, names: Sequence[str], level: Level = "dyad"
                ) -> list[VarianceParameter]:
        sd = np.exp(np.asarray(theta, float))
        return [VarianceParameter(level, "sd", effects=(n,), estimate=float(s))
                for n, s in zip(names, sd)]

    def tie(self, factors: np.ndarray) -> np.ndarray:
        return np.asarray(factors, float)

    def rescale(self, theta: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(theta, float) + np.log(factors), np.ones(self.size)


@dataclass(frozen=True)
class CompoundSymmetry:
    """Equal variances and equal correlations: ``G = s^2 ((1 - rho) I + rho J)``.

    ``theta = (log s, z)`` with ``rho = (e^z - 1) / (e^z + q - 1)``, which keeps ``G``
    positive definite (``-1/(q-1) < rho < 1``). For indistinguishable dyads.
    """

    size: int

    @property
    def n_params(self) -> int:
        return 2

    def _rho(self, z: float) -> tuple[float, float]:
        e, q = np.exp(z), self.size
        return (e - 1) / (e + q - 1), e * q / (e + q - 1) ** 2

    def matrix(self, theta: np.ndarray) -> np.ndarray:
        rho, _ = self._rho(theta[1])
        q = self.size
        return np.exp(2 * theta[0]) * ((1 - rho) * np.eye(q) + rho * np.ones((q, q)))

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        _, drho = self._rho(theta[1])
        q = self.size
        g = self.matrix(theta)
        return np.stack([2 * g, np.exp(2 * theta[0]) * drho * (np.ones((q, q)) - np.eye(q))])

    def start(self, variances: np.ndarray) -> np.ndarray:
        return np.array([0.5 * np.log(max(float(np.mean(variances)), 1e-8)), 0.0])

    def records(self, theta: np.ndarray, names: Sequence[str], level: Level = "dyad"
                ) -> list[VarianceParameter]:
        g = self.matrix(theta)
        names = tuple(names)
        sd = float(np.sqrt(g[0, 0]))
        out = [VarianceParameter(level, "sd", effects=names, pooled=True, estimate=sd)]
        if self.size > 1:
            out.append(VarianceParameter(level, "cor", effects=names, pooled=True,
                                         estimate=float(g[0, 1] / g[0, 0])))
        return out

    def tie(self, factors: np.ndarray) -> np.ndarray:
        return np.full(self.size, np.exp(np.mean(np.log(factors))))

    def rescale(self, theta: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(theta, float) + np.array([np.log(factors[0]), 0.0]), np.ones(2)


@dataclass(frozen=True)
class Exchangeable:
    """The two members' random effects of an indistinguishable dyad: ``k`` effects per
    member (columns: member 0's effects, then member 1's in the same order), with
    ``G = [[A, B], [B, A]]``: equal variances and within-member covariances ``A`` for both
    members, and a symmetric cross-member block ``B`` (``Cov(u_0j, u_1l) = Cov(u_1j, u_0l)``).

    ``G`` is positive semi-definite exactly when ``A + B`` and ``A - B`` are (the sum and
    difference of the members' effects, Woody & Sadler's parametrisation); both are
    log-Cholesky factored: ``theta = (chol(A + B), chol(A - B))``, ``k (k + 1)`` parameters.
    With ``k = 1`` this is nlme's ``pdCompSymm(~ 0 + member0 + member1)``: one variance and
    a free correlation in (-1, 1). Swapping the members' labels leaves ``G`` unchanged.

    Examples
    --------
    >>> ex = Exchangeable(1)
    >>> g = ex.matrix(np.array([np.log(2.0), 0.0]))  # A + B = 4, A - B = 1
    >>> g.tolist()
    [[2.5, 1.5], [1.5, 2.5]]
    >>> [p.label for p in ex.records(ex.start(np.array([2.0, 2.0])), ["m", "w"])]
    ['sd(m|w)', 'cor(m,w)']
    """

    k: int

    @property
    def size(self) -> int:
        return 2 * self.k

    @property
    def n_params(self) -> int:
        return self.k * (self.k + 1)

    def _blocks(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        half = self.n_params // 2
        un = Unstructured(self.k)
        return un.matrix(theta[:half]), un.matrix(theta[half:])

    def matrix(self, theta: np.ndarray) -> np.ndarray:
        s, d = self._blocks(np.asarray(theta, float))
        a, b = (s + d) / 2, (s - d) / 2
        return np.block([[a, b], [b, a]])

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, float)
        half = self.n_params // 2
        un = Unstructured(self.k)
        out = [0.5 * np.block([[ds, ds], [ds, ds]]) for ds in un.jacobian(theta[:half])]
        out += [0.5 * np.block([[dd, -dd], [-dd, dd]]) for dd in un.jacobian(theta[half:])]
        return np.stack(out)

    def start(self, variances: np.ndarray) -> np.ndarray:
        v = np.asarray(variances, float)
        pooled = (v[:self.k] + v[self.k:]) / 2
        un = Unstructured(self.k)
        return np.concatenate([un.start(pooled), un.start(pooled)])

    def records(self, theta: np.ndarray, names: Sequence[str], level: Level = "dyad"
                ) -> list[VarianceParameter]:
        g = self.matrix(theta)
        k, names = self.k, list(names)
        first, second = names[:k], names[k:]
        sd = np.sqrt(np.clip(np.diag(g)[:k], 0, None))
        out = [VarianceParameter(level, "sd", effects=(first[j], second[j]), pooled=True,
                                 estimate=float(sd[j])) for j in range(k)]

        def cor(value: float, i: int, j: int) -> float:
            return float(value / (sd[i] * sd[j])) if sd[i] * sd[j] > 0 else 0.0

        for j in range(k):
            for i in range(j):  # within a member, the same for both
                out.append(VarianceParameter(level, "cor", pooled=True,
                                             effects=(first[i], second[i], first[j], second[j]),
                                             estimate=cor(g[i, j], i, j)))
        for j in range(k):
            for i in range(j + 1):  # between the members
                effects = (first[i], second[j]) if i == j else \
                    (first[i], second[i], second[j], first[j])
                out.append(VarianceParameter(level, "cor", effects=effects, roles=(0, 1),
                                             pooled=i != j, estimate=cor(g[i, k + j], i, j)))
        return out

    def tie(self, factors: np.ndarray) -> np.ndarray:
        f = np.asarray(factors, float)
        pair = np.exp((np.log(f[:self.k]) + np.log(f[self.k:])) / 2)
        return np.concatenate([pair, pair])

    def rescale(self, theta: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = np.asarray(theta, float)
        half = self.n_params // 2
        f = np.asarray(factors, float)[:self.k]
        s, js = _log_cholesky_rescale(theta[:half], f)
        d, jd = _log_cholesky_rescale(theta[half:], f)
        return np.concatenate([s, d]), np.concatenate([js, jd])


RandomStructure = Unstructured | Diagonal | CompoundSymmetry | Exchangeable
