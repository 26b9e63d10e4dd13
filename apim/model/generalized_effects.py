"""Average marginal effects of a generalized APIM on the probability scale.

For each actor or partner effect (per outcome role, level and predictor) the change in the
probability of each category per unit of the predictor part, averaged over the rows of
that outcome role, for a dyad whose random intercepts are zero:

    AME_k = mean_i [ dP(Y_i = k) / d eta_i  *  d eta_i / d x_i ]

``d eta / d x`` is the term's coefficient plus, where the model has them, its moderated
differences times the row's moderator value and its actor x partner coefficient times the
partner's value. ``dP(Y = k)/d eta = f(theta_{k-1} - eta) - f(theta_k - eta)`` (binary:
``f(eta)`` for the event). Standard errors by the delta method, the Jacobian in the fixed
effects and thresholds by central differences.

Examples
--------
>>> import numpy as np
>>> from apim.model.design import Term
>>> terms = (Term("both", "intercept", "none", ""), Term("both", "actor", "within", "x"))
>>> X = np.column_stack([np.ones(4), [-1.0, 0.0, 1.0, 0.0]])
>>> table = average_marginal_effects(terms, X, np.zeros(4, dtype=int), np.array([0.0, 1.0]),
...                                  np.eye(2) * 0.01, "logit", "binomial", np.array([0, 1]),
...                                  np.zeros((0, 1)), "shared")
>>> round(float(table["ame"].iloc[0]), 4)  # mean of f(eta) * 1 at eta = -1, 0, 1, 0
0.2233
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from apim.engine.distributions import stats
from apim.engine.glmm import LINKS
from apim.model.design import Term

__all__ = ["average_marginal_effects", "slope_parts", "AME_COLUMNS"]

AME_COLUMNS = ["term", "outcome_role", "effect", "level", "predictor", "category", "ame",
               "se", "z", "p", "ci_low", "ci_high"]


def slope_parts(terms: Sequence[Term], X: np.ndarray, index: int
                 ) -> list[tuple[int, np.ndarray]]:
    """(coefficient index, multiplier per row) whose sum is d eta / d x of term ``index``."""
    term = terms[index]
    position = {(t.outcome_role, t.effect, t.level, t.predictor, t.by): j
                for j, t in enumerate(terms)}
    parts = [(index, np.ones(len(X)))]
    for j, t in enumerate(terms):
        if (t.outcome_role, t.effect, t.level, t.predictor) == \
                (term.outcome_role, term.effect, term.level, term.predictor) and t.by:
            main = position.get((term.outcome_role, "moderator", "none", t.by, ""))
            if main is not None:
                parts.append((j, X[:, main]))
    inter = position.get((term.outcome_role, "actor_x_partner", term.level, term.predictor,
                          ""))
    other = position.get((term.outcome_role,
                          "partner" if term.effect == "actor" else "actor", term.level,
                          term.predictor, ""))
    if inter is not None and other is not None:
        parts.append((inter, X[:, other]))
    return parts


def average_marginal_effects(terms: Sequence[Term], X: np.ndarray, role: np.ndarray,
                             params: np.ndarray, cov: np.ndarray, link: str, family: str,
                             categories: np.ndarray, thresholds_shape: np.ndarray,
                             threshold_sets: str, level: float = 0.95) -> pd.DataFrame:
    """The AME table (:data:`AME_COLUMNS`): one row per actor or partner term without a
    moderator (``by``) and per category (binary: the event only).

    ``params`` are the fixed effects followed by the thresholds (set by set, shaped like
    ``thresholds_shape``), ``cov`` their covariance; ``role`` the outcome role (0/1) of
    each row of ``X``.
    """
    F = LINKS[link]
    p = X.shape[1]
    roles_of_term = {}
    for j, t in enumerate(terms):
        if t.effect in ("actor", "partner") and not t.by:
            roles_of_term[j] = t.outcome_role
    role_names = list(dict.fromkeys(t.outcome_role for t in terms))
    K = len(categories)
    n_sets, n_cuts = thresholds_shape.shape

    def ames(vector: np.ndarray) -> np.ndarray:
        beta = vector[:p]
        theta = vector[p:].reshape(n_sets, n_cuts)
        eta = X @ beta
        if family == "binomial":
            dprob = F.pdf(eta)[:, None]  # d P(event) / d eta
        else:
            sets = role if threshold_sets == "role" else np.zeros_like(role)
            cuts = np.column_stack([np.full(len(eta), -np.inf), theta[sets],
                                    np.full(len(eta), np.inf)])
            dens = np.where(np.isfinite(cuts), F.pdf(np.where(np.isfinite(cuts),
                                                              cuts - eta[:, None], 0.0)), 0.0)
            dprob = dens[:, :-1] - dens[:, 1:]  # d P(Y = k) / d eta, k = 0..K-1
        out = []
        for j, owner in roles_of_term.items():
            rows = np.ones(len(eta), dtype=bool) if owner == "both" or len(role_names) == 1 \
                else role == role_names.index(owner)
            slope = sum(beta[c] * m for c, m in slope_parts(terms, X, j))
            out.append((dprob[rows] * np.asarray(slope)[rows, None]).mean(axis=0))
        return np.concatenate(out) if out else np.zeros(0)

    base = ames(params)
    J = np.empty((len(base), len(params)))
    for c in range(len(params)):
        step = 1e-6 * max(1.0, abs(params[c]))
        e = np.zeros(len(params))
        e[c] = step
        J[:, c] = (ames(params + e) - ames(params - e)) / (2 * step)
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", J, cov, J), 0.0))
    shown = [1] if family == "binomial" else list(range(K))
    rows = []
    per_term = 1 if family == "binomial" else K
    crit = float(stats.norm.ppf(0.5 + level / 2))
    z_all = np.divide(base, se, out=np.full(len(base), np.nan), where=se > 0)
    p_all = 2 * stats.norm.sf(np.abs(z_all))  # NaN where z is
    for position, j in enumerate(roles_of_term):
        t = terms[j]
        for slot, k in enumerate(shown):
            i = position * per_term + slot
            rows.append([t.name, t.outcome_role, t.effect, t.level, t.predictor,
                         f"{categories[k]:g}", base[i], se[i], z_all[i], float(p_all[i]),
                         base[i] - crit * se[i], base[i] + crit * se[i]])
    return pd.DataFrame(rows, columns=AME_COLUMNS)
