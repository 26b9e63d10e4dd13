"""Covariance structures with unconstrained parameters (in the spirit of nlme's pdClasses).

Random-effect covariance matrices ``G`` (unstructured by log-Cholesky, diagonal, compound
symmetric) share one protocol: ``n_params``, ``matrix(theta)``, ``jacobian(theta)``
(derivatives of ``G`` with respect to each unconstrained parameter), ``start(variances)``
and ``natural(theta, names)`` (standard deviations and correlations by name).

Examples
--------
>>> import numpy as np
>>> un = Unstructured(2)
>>> theta = un.start(np.array([4.0, 1.0]))
>>> un.matrix(theta)
array([[4., 0.],
       [0., 1.]])
>>> un.natural(theta, ["a", "b"])
{'sd(a)': 2.0, 'sd(b)': 1.0, 'cor(a,b)': 0.0}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Unstructured", "Diagonal", "CompoundSymmetry", "RandomStructure", "natural_names"]


def _natural(g: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    sd = np.sqrt(np.clip(np.diag(g), 0, None))
    out = {f"sd({n})": float(s) for n, s in zip(names, sd)}
    for i in range(len(names)):
        for j in range(i):
            denom = sd[i] * sd[j]
            out[f"cor({names[j]},{names[i]})"] = float(g[i, j] / denom) if denom > 0 else 0.0
    return out


def natural_names(names: Sequence[str]) -> list[str]:
    """Names of the natural parameters of a q x q covariance matrix, in order."""
    return list(_natural(np.eye(len(names)), names))


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
        lower[np.tril_indices(q)] = theta
        lower[np.diag_indices(q)] = np.exp(np.diag(lower))
        return lower

    def matrix(self, theta: np.ndarray) -> np.ndarray:
        lower = self._factor(theta)
        return lower @ lower.T

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        q = self.size
        lower = self._factor(theta)
        rows, cols = np.tril_indices(q)
        out = np.zeros((self.n_params, q, q))
        for k, (i, j) in enumerate(zip(rows, cols)):
            e = np.zeros((q, q))
            e[i, j] = lower[i, j] if i == j else 1.0
            out[k] = e @ lower.T + lower @ e.T
        return out

    def start(self, variances: np.ndarray) -> np.ndarray:
        lower = np.diag(np.sqrt(np.maximum(variances, 1e-8)))
        lower[np.diag_indices(self.size)] = np.log(np.diag(lower))
        return lower[np.tril_indices(self.size)]

    def natural(self, theta: np.ndarray, names: Sequence[str]) -> dict[str, float]:
        return _natural(self.matrix(theta), names)


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

    def natural(self, theta: np.ndarray, names: Sequence[str]) -> dict[str, float]:
        return _natural(self.matrix(theta), names)


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

    def natural(self, theta: np.ndarray, names: Sequence[str]) -> dict[str, float]:
        return _natural(self.matrix(theta), names)


RandomStructure = Unstructured | Diagonal | CompoundSymmetry
