"""The marginal log-likelihood of a dyadic GLMM by Laplace or adaptive Gauss-Hermite
quadrature over each dyad's two random intercepts, for all dyads at once.

With ``u_i = L a_i`` (``L`` the Cholesky factor of the 2x2 covariance ``G``, ``a_i ~
N(0, I)``), dyad ``i`` contributes

    L_i = (2 pi)^-1 integral exp(h_i(a)) da,   h_i(a) = sum_j log P(y_ij | eta_ij(a)) - a'a/2

Each observation loads on one member's intercept, so the curvature of ``h_i`` is ``H_i =
I + L' diag(w_i) L`` with ``w_i`` the two members' summed weights: the modes are found by
batched 2x2 Newton steps for every dyad at once. Quadrature uses ``K`` points per
dimension (``K^2`` per dyad) centred at the mode and scaled by ``C_i`` with ``C_i C_i' =
H_i^-1`` (``C_i = R_i^-T``, ``R_i`` the Cholesky factor of ``H_i``):

    log L_i = log|C_i| + log sum_k omega_k exp(h_i(a_i + C_i z_k) + |z_k|^2 / 2)

(probabilists' Gauss-Hermite nodes ``z_k`` and weights ``omega_k`` of the standard normal);
``K = 1`` is the Laplace approximation ``h_i(a_i) - log|H_i| / 2``.

Examples
--------
>>> import numpy as np
>>> nodes, weights = hermite_grid(3)
>>> nodes.shape, round(float(weights.sum()), 12)
((9, 2), 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from apim.engine.glmm.links import Link
from apim.engine.glmm.response import interval, log_probability

__all__ = ["Clusters", "hermite_grid", "modes", "mode_location", "marginal_loglik", "Modes"]


@dataclass(frozen=True, eq=False)
class Clusters:
    """Observations sorted by dyad: the dyad index (0..n-1) and role (0/1) of each, and
    where each dyad's rows start."""

    dyad: np.ndarray
    role: np.ndarray
    starts: np.ndarray

    @property
    def n(self) -> int:
        return len(self.starts)

    def per_role(self, values: np.ndarray) -> np.ndarray:
        """Sums of ``values`` (one per observation) per dyad and role: (n, 2)."""
        index = self.dyad * 2 + self.role
        return np.bincount(index, weights=values, minlength=2 * self.n).reshape(self.n, 2)

    @cached_property
    def slot(self) -> np.ndarray:
        """Each observation's position ``2 dyad + role`` in a flattened (n, 2) array."""
        return self.dyad * 2 + self.role

    def gather(self, u: np.ndarray) -> np.ndarray:
        """Each observation's entry of ``u`` (n, 2): its dyad's value for its member."""
        return np.take(u.reshape(-1), self.slot)

    @cached_property
    def indicator(self) -> Any:
        """The (2n, N) sparse indicator of each observation's dyad and role (row ``2 i +
        r``)."""
        from scipy.sparse import csr_matrix

        N = len(self.dyad)
        return csr_matrix((np.ones(N), (self.dyad * 2 + self.role, np.arange(N))),
                          shape=(2 * self.n, N))

    def per_role_columns(self, values: np.ndarray) -> np.ndarray:
        """Sums per dyad and role of the columns of ``values`` (N, q): (n, 2, q)."""
        return np.asarray(self.indicator @ values).reshape(self.n, 2, values.shape[1])

    def weighted_columns(self, weights: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Sums per dyad and role of ``weights_j * values_j`` (values (N, q)): (n, 2, q),
        by the indicator with the weights as its entries (no (N, q) product formed)."""
        from scipy.sparse import csr_matrix

        ones = self.indicator
        weighted = csr_matrix((weights[ones.indices], ones.indices, ones.indptr),
                              shape=ones.shape)
        return np.asarray(weighted @ values).reshape(self.n, 2, values.shape[1])

    def per_dyad(self, values: np.ndarray) -> np.ndarray:
        """Sums per dyad of ``values`` (observations along the first axis)."""
        return np.add.reduceat(values, self.starts, axis=0)


def hermite_grid(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k x k`` product grid of probabilists' Gauss-Hermite nodes (k^2, 2) and their
    weights (summing to 1: the standard bivariate normal's)."""
    z, w = np.polynomial.hermite_e.hermegauss(k)
    w = w / np.sqrt(2 * np.pi)
    nodes = np.stack(np.meshgrid(z, z, indexing="ij"), axis=-1).reshape(-1, 2)
    weights = np.outer(w, w).ravel()
    return nodes, weights


@dataclass(frozen=True, eq=False)
class Modes:
    """Each dyad's mode ``a`` (n, 2), curvature ``H`` (n, 2, 2), ``h`` at the mode (n,),
    and whether every dyad's Newton steps settled."""

    a: np.ndarray
    H: np.ndarray
    h: np.ndarray
    converged: bool


def _h_parts(link: Link, offset: np.ndarray, upper: np.ndarray, lower: np.ndarray,
             clusters: Clusters, L: np.ndarray, a: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """h at ``a`` per dyad, its gradient (n, 2) and the members' weights w (n, 2)."""
    u = a @ L.T
    eta = offset + clusters.gather(u)
    logp, d1, d2 = interval(link, upper, lower, eta)
    h = np.bincount(clusters.dyad, weights=logp, minlength=clusters.n) \
        - 0.5 * np.einsum("ij,ij->i", a, a)
    grad = clusters.per_role(d1) @ L - a
    return h, grad, -clusters.per_role(d2)


def _curvature(L: np.ndarray, w: np.ndarray) -> np.ndarray:
    """H = I + L' diag(w) L per dyad (n, 2, 2)."""
    H = np.einsum("ra,rb,nr->nab", L, L, w)
    H[:, 0, 0] += 1.0
    H[:, 1, 1] += 1.0
    return H


def _solve2(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """H^-1 g for a stack of 2x2 matrices."""
    det = H[:, 0, 0] * H[:, 1, 1] - H[:, 0, 1] * H[:, 1, 0]
    return np.stack([H[:, 1, 1] * g[:, 0] - H[:, 0, 1] * g[:, 1],
                     H[:, 0, 0] * g[:, 1] - H[:, 1, 0] * g[:, 0]], axis=1) / det[:, None]


def _newton(link: Link, offset: np.ndarray, upper: np.ndarray, lower: np.ndarray,
            clusters: Clusters, L: np.ndarray, start: np.ndarray | None, tolerance: float,
            max_steps: int, settled: float
            ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, bool]:
    """The batched Newton steps of :func:`modes`: the modes, ``h`` and the weights there
    (None where a first step below ``settled`` was taken without evaluating its end:
    Newton's quadratic convergence leaves an error of order its square) and whether
    every dyad settled."""
    a = np.zeros((clusters.n, 2)) if start is None else start.copy()
    h, grad, w = _h_parts(link, offset, upper, lower, clusters, L, a)
    converged = False
    for iteration in range(max_steps):
        H = _curvature(L, w)
        step = _solve2(H, grad)
        size = np.max(np.abs(step), initial=0.0)
        if iteration and size < tolerance:
            converged = True
            break
        if not iteration and size < settled:
            return a + step, None, None, True
        scale = np.ones(clusters.n)
        for _half in range(30):
            trial = a + scale[:, None] * step
            h_new, grad_new, w_new = _h_parts(link, offset, upper, lower, clusters, L, trial)
            worse = ~(h_new >= h - 1e-12 * np.abs(h))
            if not worse.any():
                break
            scale = np.where(worse, scale / 2, scale)
        a, h, grad, w = trial, h_new, grad_new, w_new
    return a, h, w, converged


def modes(link: Link, offset: np.ndarray, upper: np.ndarray, lower: np.ndarray,
          clusters: Clusters, L: np.ndarray, start: np.ndarray | None = None,
          tolerance: float = 1e-11, max_steps: int = 60) -> Modes:
    """Every dyad's mode of ``h`` by batched Newton steps (halved per dyad where ``h``
    would fall), from ``start`` (default 0). ``h`` is concave (the logistic and normal
    distributions are log-concave), so the steps converge from anywhere. At least one
    step is taken, so a start within ``tolerance`` still ends at the mode to round-off
    (the differences of the gradient for the Hessian need that)."""
    a, h, w, converged = _newton(link, offset, upper, lower, clusters, L, start, tolerance,
                                 max_steps, settled=0.0)
    assert h is not None and w is not None
    return Modes(a, _curvature(L, w), h, converged)


def mode_location(link: Link, offset: np.ndarray, upper: np.ndarray, lower: np.ndarray,
                  clusters: Clusters, L: np.ndarray, start: np.ndarray | None = None,
                  tolerance: float = 1e-11, max_steps: int = 60,
                  settled: float = 1e-7) -> tuple[np.ndarray, bool]:
    """The modes of :func:`modes` without ``h`` and the curvature there (the analytic
    gradient computes the response's terms at the modes anyway): where the first Newton
    step from ``start`` (a warm start moved to first order) is below ``settled`` for
    every dyad it is taken and not evaluated, its error being of the order of its square
    (1e-14), below the modes' ``tolerance``; else the steps run as in :func:`modes`."""
    a, _, _, converged = _newton(link, offset, upper, lower, clusters, L, start, tolerance,
                                 max_steps, settled)
    return a, converged


def marginal_loglik(link: Link, offset: np.ndarray, upper: np.ndarray, lower: np.ndarray,
                    clusters: Clusters, L: np.ndarray, nagq: int,
                    start: np.ndarray | None = None) -> tuple[np.ndarray, Modes]:
    """Each dyad's log-likelihood by adaptive Gauss-Hermite quadrature with ``nagq``
    points per dimension (1: Laplace), and the modes it was centred at."""
    found = modes(link, offset, upper, lower, clusters, L, start)
    H = found.H
    R11 = np.sqrt(H[:, 0, 0])
    R21 = H[:, 1, 0] / R11
    R22 = np.sqrt(H[:, 1, 1] - R21 ** 2)
    log_c = -np.log(R11) - np.log(R22)  # log|C| = -log|R|
    if nagq == 1:
        return found.h + log_c, found
    nodes, weights = hermite_grid(nagq)
    # C = R^-T: upper triangular [[1/R11, -R21/(R11 R22)], [0, 1/R22]]
    c11, c12, c22 = 1 / R11, -R21 / (R11 * R22), 1 / R22
    a = found.a[:, None, :] + np.stack([c11[:, None] * nodes[None, :, 0]
                                        + c12[:, None] * nodes[None, :, 1],
                                        c22[:, None] * nodes[None, :, 1]], axis=-1)
    u = a @ L.T  # (n, k, 2)
    eta = offset[:, None] + u[clusters.dyad, :, clusters.role]
    logp = log_probability(link, upper[:, None], lower[:, None], eta)
    h = clusters.per_dyad(logp) - 0.5 * np.einsum("nkc,nkc->nk", a, a)
    terms = h + np.log(weights)[None, :] + 0.5 * np.einsum("kc,kc->k", nodes, nodes)[None, :]
    top = terms.max(axis=1)
    return log_c + top + np.log(np.exp(terms - top[:, None]).sum(axis=1)), found
