"""The parameters of the dynamic model and their maps: the natural vector (means, the
entries of ``Phi`` row by row, the lower triangles of ``Sigma_W``, ``Sigma_B`` and, with a
free initial condition, ``P0``) and the unconstrained one of the quasi-Newton search
(``Phi`` as it is, log-Cholesky factors of the covariances; no means: they are profiled).
With a therapist level the therapists' covariance ``Sigma_T`` comes last (its lower
triangle, or its diagonal when it is diagonal; in the search its
standard deviations or Cholesky factor, not logged: a singular ``Sigma_T`` is a finite
point there).

Examples
--------
>>> layout = DynamicLayout(2, "free")
>>> names = layout.names(("x", "y"))
>>> names[:3], names[2 + 4], len(names)
(['mean(x)', 'mean(y)', 'lagged(x<-x)'], 'innovation(x,x)', 15)
>>> DynamicLayout(2, "free", therapist="diagonal").names(("x", "y"))[-2:]
['therapist(x,x)', 'therapist(y,y)']
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from apim.engine.dynamic.gradient import stationary_adjoint
from apim.engine.dynamic.kalman import spectral_radius, stationary_covariance
from apim.engine.multivariate.parameters import (
    cholesky_factor,
    log_cholesky,
    tril,
    unvech,
    vech,
    vech_gradient,
)

__all__ = ["Initial", "TherapistCovariance", "DynamicParameters", "DynamicLayout"]

Initial = Literal["free", "stationary"]
TherapistCovariance = Literal["unstructured", "diagonal"]


class DynamicParameters(NamedTuple):
    """The model's matrices on the natural scale (``p0`` the covariance of the within
    part at the first session: free, or the stationary one; ``sigma_t`` the therapists'
    covariance, None without a therapist level)."""

    mu: np.ndarray
    phi: np.ndarray
    sigma_w: np.ndarray
    sigma_b: np.ndarray
    p0: np.ndarray
    sigma_t: np.ndarray | None = None


@dataclass(frozen=True)
class DynamicLayout:
    """Where each parameter sits. ``free_phi`` marks the entries of ``Phi`` that are
    estimated (the others are fixed at zero); ``equal_phi`` lists pairs of entries
    ``((to, from), (to, from))`` constrained equal (the second follows the first);
    ``therapist`` the structure of the therapists' covariance (None: no therapist
    level); ``covariates`` the dyad-level covariates of the means (the means are then
    the K x (1 + covariates) coefficients ``B[variable, covariate]``, intercept first)."""

    k: int
    initial: Initial
    free_phi: tuple[tuple[bool, ...], ...] | None = None
    equal_phi: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = ()
    therapist: TherapistCovariance | None = None
    covariates: int = 0

    @property
    def n_means(self) -> int:
        return self.k * (1 + self.covariates)

    @property
    def h(self) -> int:
        return self.k * (self.k + 1) // 2

    @functools.cached_property
    def phi_index(self) -> list[tuple[int, int]]:
        """The (to, from) entries of ``Phi`` that are parameters, row by row."""
        followers = {b for _, b in self.equal_phi}
        mask = np.ones((self.k, self.k), bool) if self.free_phi is None \
            else np.array(self.free_phi, bool)
        return [(r, c) for r in range(self.k) for c in range(self.k)
                if mask[r, c] and (r, c) not in followers]

    @property
    def n_phi(self) -> int:
        return len(self.phi_index)

    @property
    def n_therapist(self) -> int:
        """Parameters of ``Sigma_T``."""
        return {None: 0, "diagonal": self.k}.get(self.therapist, self.h)

    @property
    def n_natural(self) -> int:
        return (self.n_means + self.n_phi + 2 * self.h + (self.h if self.initial == "free" else 0)
                + self.n_therapist)

    @property
    def therapist_start(self) -> int:
        """Where ``Sigma_T`` starts in the natural vector."""
        return self.n_natural - self.n_therapist

    def names(self, variables: Sequence[str]) -> list[str]:
        """``mean(v)``, ``lagged(to<-from)``, ``innovation(v,w)``, ``between(v,w)``,
        ``initial(v,w)``."""
        rows, cols = tril(self.k)
        out = [f"mean({v})" if a == 0 else f"mean({v}|covariate {a})" for v in variables
               for a in range(1 + self.covariates)]
        out += [f"lagged({variables[r]}<-{variables[c]})" for r, c in self.phi_index]
        levels = ("innovation", "between") + (("initial",) if self.initial == "free" else ())
        for level in levels:
            out += [f"{level}({variables[int(c)]},{variables[int(r)]})"
                    for r, c in zip(rows, cols)]
        if self.therapist == "diagonal":
            out += [f"therapist({v},{v})" for v in variables]
        elif self.therapist is not None:
            out += [f"therapist({variables[int(c)]},{variables[int(r)]})"
                    for r, c in zip(rows, cols)]
        return out

    def _sigma_t(self, values: np.ndarray) -> np.ndarray | None:
        if self.therapist is None:
            return None
        return np.diag(values) if self.therapist == "diagonal" else unvech(values, self.k)

    def _therapist_values(self, sigma_t: np.ndarray | None) -> list[np.ndarray]:
        if self.therapist is None:
            return []
        assert sigma_t is not None
        return [np.diag(sigma_t).copy() if self.therapist == "diagonal" else vech(sigma_t)]

    def phi_of(self, values: np.ndarray) -> np.ndarray:
        phi = np.zeros((self.k, self.k))
        for (r, c), v in zip(self.phi_index, values):
            phi[r, c] = v
        for a, b in self.equal_phi:
            phi[b] = phi[a]
        return phi

    def unpack(self, nat: np.ndarray) -> DynamicParameters:
        k, h, m = self.k, self.h, self.n_phi
        phi = self.phi_of(nat[self.n_means:self.n_means + m])
        off = self.n_means + m
        sw, sb = unvech(nat[off:off + h], k), unvech(nat[off + h:off + 2 * h], k)
        p0 = (unvech(nat[off + 2 * h:off + 3 * h], k) if self.initial == "free"
              else _stationary_or_nan(phi, sw))
        return DynamicParameters(nat[:self.n_means].copy(), phi, sw, sb, p0,
                                 self._sigma_t(nat[self.therapist_start:]))

    def pack(self, p: DynamicParameters) -> np.ndarray:
        parts = [np.asarray(p.mu, float), np.array([p.phi[r, c] for r, c in self.phi_index]),
                 vech(p.sigma_w), vech(p.sigma_b)]
        if self.initial == "free":
            parts.append(vech(p.p0))
        return np.concatenate(parts + self._therapist_values(p.sigma_t))

    def to_search(self, p: DynamicParameters) -> np.ndarray:
        parts = [np.array([p.phi[r, c] for r, c in self.phi_index]),
                 log_cholesky(p.sigma_w), log_cholesky(p.sigma_b)]
        if self.initial == "free":
            parts.append(log_cholesky(p.p0))
        if self.therapist == "diagonal":
            assert p.sigma_t is not None
            parts.append(np.sqrt(np.diag(p.sigma_t)))
        elif self.therapist is not None:
            assert p.sigma_t is not None
            parts.append(vech(np.linalg.cholesky(p.sigma_t)))
        return np.concatenate(parts)

    def _therapist_of_search(self, theta: np.ndarray) -> np.ndarray | None:
        """``Sigma_T`` of the tail of the unconstrained vector: standard deviations of a
        diagonal one, a Cholesky factor of an unstructured one, **not on the log scale**
        (any sign: ``Sigma_T = L L'``), so that a zero variance or a singular ``Sigma_T``
        (common with few therapists) is a finite point where the quasi-Newton search
        converges as anywhere else, not ``-inf`` that it approaches ever more slowly."""
        if self.therapist is None:
            return None
        tail = theta[len(theta) - self.n_therapist:]
        if self.therapist == "diagonal":
            return np.diag(tail ** 2)
        lower = np.zeros((self.k, self.k))
        lower[tril(self.k)] = tail
        return lower @ lower.T

    def from_search(self, theta: np.ndarray) -> DynamicParameters:
        """Parameters of the unconstrained vector (means zero: they are profiled)."""
        k, h, m = self.k, self.h, self.n_phi
        phi = self.phi_of(theta[:m])
        lw, lb = cholesky_factor(theta[m:m + h], k), cholesky_factor(theta[m + h:m + 2 * h], k)
        sw = lw @ lw.T
        if self.initial == "free":
            lp = cholesky_factor(theta[m + 2 * h:m + 3 * h], k)
            p0 = lp @ lp.T
        else:
            p0 = _stationary_or_nan(phi, sw)
        return DynamicParameters(np.zeros(self.n_means), phi, sw, lb @ lb.T, p0,
                                 self._therapist_of_search(theta))

    def phi_gradient(self, bar_phi: np.ndarray) -> np.ndarray:
        """Derivatives in the entries of :attr:`phi_index` from those in every entry of
        ``Phi`` (an entry constrained equal to another adds to it)."""
        bar = bar_phi.copy()
        for a, b in self.equal_phi:
            bar[a] += bar[b]
        return np.array([bar[r, c] for r, c in self.phi_index])

    def natural_gradient(self, p: DynamicParameters, bar: DynamicParameters
                         ) -> np.ndarray:
        """The gradient in the natural vector from derivatives in every entry of each
        matrix (``bar``, the matrices taken as unconstrained) at ``p``."""
        bar_phi, bar_sw = self._fold_initial(p, bar)
        parts = [bar.mu, self.phi_gradient(bar_phi), vech_gradient(bar_sw),
                 vech_gradient(bar.sigma_b)]
        if self.initial == "free":
            parts.append(vech_gradient(bar.p0))
        if self.therapist is not None:
            assert bar.sigma_t is not None
            parts.append(np.diag(bar.sigma_t).copy() if self.therapist == "diagonal"
                         else vech_gradient(bar.sigma_t))
        return np.concatenate(parts)

    def search_gradient(self, theta: np.ndarray, bar: DynamicParameters) -> np.ndarray:
        """The gradient in the unconstrained vector ``theta`` from derivatives in every
        entry of each matrix at ``from_search(theta)`` (means ignored: profiled)."""
        k, h, m = self.k, self.h, self.n_phi
        p = self.from_search(theta)
        bar_phi, bar_sw = self._fold_initial(p, bar)
        parts = [self.phi_gradient(bar_phi),
                 _cholesky_gradient(theta[m:m + h], bar_sw, k),
                 _cholesky_gradient(theta[m + h:m + 2 * h], bar.sigma_b, k)]
        if self.initial == "free":
            parts.append(_cholesky_gradient(theta[m + 2 * h:m + 3 * h], bar.p0, k))
        if self.therapist is not None:
            assert bar.sigma_t is not None and p.sigma_t is not None
            tail = theta[len(theta) - self.n_therapist:]
            parts.append(2 * np.diag(bar.sigma_t) * tail if self.therapist == "diagonal"
                         else _cholesky_gradient(tail, bar.sigma_t, k, log=False))
        return np.concatenate(parts)

    def _fold_initial(self, p: DynamicParameters, bar: DynamicParameters
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Derivatives in ``Phi`` and ``Sigma_W`` including, under ``initial =
        "stationary"``, their part through the stationary ``P0``."""
        if self.initial == "free":
            return bar.phi, bar.sigma_w
        via_phi, via_sw = stationary_adjoint(p.phi, p.p0, bar.p0)
        return bar.phi + via_phi, bar.sigma_w + via_sw


def _cholesky_gradient(theta: np.ndarray, bar: np.ndarray, k: int, log: bool = True
                       ) -> np.ndarray:
    """Derivatives in the log-Cholesky vector ``theta`` of ``Sigma = L L'`` (with
    ``log=False`` the Cholesky vector, diagonal not logged) from those in every entry of
    ``Sigma``."""
    lower = cholesky_factor(theta, k) if log else unvech(theta, k) * np.tri(k)
    bar_lower = (bar + bar.T) @ lower
    out = vech(bar_lower)
    if not log:
        return out
    rows, cols = tril(k)
    diagonal = rows == cols
    out[diagonal] *= lower[rows[diagonal], cols[diagonal]]
    return out


def _stationary_or_nan(phi: np.ndarray, sigma_w: np.ndarray) -> np.ndarray:
    """The stationary covariance, or NaN where ``Phi`` is not stable."""
    if not np.all(np.isfinite(phi)) or spectral_radius(phi) >= 1:
        return np.full(phi.shape, np.nan)
    return stationary_covariance(phi, sigma_w)
