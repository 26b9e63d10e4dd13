"""A dense oracle for the generalized engine: each dyad's likelihood integrated over its
two random intercepts by a fixed (non-adaptive) Gauss-Hermite product grid, written from
the model definition with a loop over dyads and scipy.stats' distribution functions.

    L_i = sum_k omega_k prod_j P(y_ij | eta_ij = x_ij' beta + (L z_k)_{r_ij})

with ``P(Y = c) = F(theta_c - eta) - F(theta_{c-1} - eta)`` (binary: ``theta = 0``,
``P(Y = 1) = F(eta)``), ``z_k`` the standard bivariate normal's nodes and ``L`` the
Cholesky factor of ``G``. No modes, no shared code with the engine.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def dense_loglik(y, X, dyad, role, beta, G, link="logit", thresholds=None,
                 points=60) -> float:  # noqa: ANN001
    """The marginal log-likelihood by ``points`` x ``points`` fixed Gauss-Hermite nodes.

    ``thresholds``: None for a binary outcome (y 0/1), else a (2, K-1) array (row = role)
    for categories y = 0..K-1."""
    F = stats.logistic.cdf if link == "logit" else stats.norm.cdf
    z, w = np.polynomial.hermite_e.hermegauss(points)
    w = w / np.sqrt(2 * np.pi)
    # G's lower triangular factor (G may be singular: a correlation at +-1)
    sd1 = np.sqrt(G[0, 0])
    L = np.array([[sd1, 0.0], [G[1, 0] / sd1, np.sqrt(max(G[1, 1] - G[1, 0] ** 2 / G[0, 0],
                                                          0.0))]])
    nodes = np.array([(z1, z2) for z1 in z for z2 in z]).T  # (2, points^2)
    weights = np.array([w1 * w2 for w1 in w for w2 in w])
    U = L @ nodes  # each node's two intercepts
    total = 0.0
    for d in np.unique(dyad):
        rows = dyad == d
        r = role[rows]
        eta = (X[rows] @ beta)[:, None] + U[r, :]  # (rows, nodes)
        k = y[rows][:, None]
        if thresholds is None:
            p = np.where(k == 1, F(eta), 1 - F(eta))
        else:
            cuts = np.column_stack([np.full(2, -np.inf), thresholds, np.full(2, np.inf)])
            p = F(cuts[r, y[rows] + 1][:, None] - eta) - F(cuts[r, y[rows]][:, None] - eta)
        total += np.log(np.sum(weights * np.prod(p, axis=0)))
    return float(total)
