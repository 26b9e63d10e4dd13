"""What the generalized engine fits: the data of a dyadic GLMM and its parameter map.

The linear predictor of observation ``j`` of dyad ``i`` rated by member ``r`` is ``eta_j =
x_j' beta + u_ir`` with the dyad's two random intercepts ``u_i = L a_i ~ N(0, G)``. A
binary outcome has ``P(Y = 1) = F(eta)``; an ordinal one ``P(Y <= k) = F(theta_sk - eta)``
with the thresholds of its set ``s`` (the member's role, or one shared set).

The parameter vector (unconstrained, for the optimiser) is ``beta``, then per threshold
set ``theta_1, log(theta_2 - theta_1), ...``, then the covariance of the intercepts:
``log L11, L21, log L22`` (unstructured, log-Cholesky) or ``log sd, atanh cor``
(exchangeable: equal variances), and with a therapist level the log SD of the therapist's
random intercept ``t ~ N(0, sd^2)``, shared by both members' linear predictors of all the
therapist's dyads (``eta_j = x_j' beta + t + u_ir``; dyads nested in therapists).

Examples
--------
>>> import numpy as np
>>> model = GLMMModel(category=np.array([0, 1, 1, 0]), X=np.ones((4, 1)),
...                   dyad=np.array([1, 1, 2, 2]), role=np.array([0, 1, 0, 1]))
>>> model.n_params, model.n_thresholds
(4, 0)
>>> np.round(model.covariance(np.array([0.0, 0.5, 0.0])), 3).tolist()
[[1.0, 0.5], [0.5, 1.25]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from apim.engine.glmm.links import LINKS, Link
from apim.engine.glmm.quadrature import Clusters
from apim.errors import DataError, SpecError

__all__ = ["GLMMModel", "Prepared", "prepare"]


@dataclass(frozen=True, eq=False)
class GLMMModel:
    """A dyadic GLMM's data and options.

    Parameters
    ----------
    category : int array
        Each observation's category, 0..K-1 (0/1 for a binary outcome).
    X : (N, p) array
        Fixed effects (with intercepts for a binary outcome; without for an ordinal one,
        whose thresholds take their place).
    dyad, role : arrays
        The dyad of each observation and the member who rated it (0/1).
    family : {"binomial", "ordinal"}
    link : {"logit", "probit"}
    n_categories : int
        K (2 for binomial).
    thresholds : {"role", "shared"}
        Ordinal: one set of thresholds per role, or one shared by both.
    random : {"unstructured", "exchangeable"}
        The 2x2 covariance of the dyad's intercepts.
    nagq : int
        Quadrature points per dimension (1: Laplace).
    x_names : names of the columns of X
    therapist : array, optional
        Each observation's therapist: adds a therapist random intercept (fitted by Laplace
        over each therapist's block, whatever ``nagq``).
    """

    category: np.ndarray
    X: np.ndarray
    dyad: np.ndarray
    role: np.ndarray
    family: Literal["binomial", "ordinal"] = "binomial"
    link: Literal["logit", "probit"] = "logit"
    n_categories: int = 2
    thresholds: Literal["role", "shared"] = "role"
    random: Literal["unstructured", "exchangeable"] = "unstructured"
    nagq: int = 1
    x_names: tuple[str, ...] = field(default=())
    therapist: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.nagq < 1:
            raise SpecError(f"nagq={self.nagq} must be at least 1 (1: Laplace)")
        if self.family == "binomial" and self.n_categories != 2:
            raise SpecError("a binomial outcome has 2 categories")

    @property
    def link_function(self) -> Link:
        return LINKS[self.link]

    @property
    def n_sets(self) -> int:
        """Threshold sets (0 for a binary outcome)."""
        if self.family == "binomial":
            return 0
        return 2 if self.thresholds == "role" else 1

    @property
    def n_thresholds(self) -> int:
        return self.n_sets * (self.n_categories - 1)

    @property
    def n_covariance(self) -> int:
        return 3 if self.random == "unstructured" else 2

    @property
    def n_therapist(self) -> int:
        """Therapist-level parameters (the log SD of its intercept): 1 or 0."""
        return 0 if self.therapist is None else 1

    @property
    def n_params(self) -> int:
        return self.X.shape[1] + self.n_thresholds + self.n_covariance + self.n_therapist

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """beta, the thresholds (n_sets, K-1) and the dyad covariance parameters of
        ``x``."""
        p, m = self.X.shape[1], self.n_thresholds
        raw = x[p:p + m].reshape(self.n_sets, self.n_categories - 1)
        if raw.size:
            steps = np.concatenate([raw[:, :1], np.exp(raw[:, 1:])], axis=1)
            raw = np.cumsum(steps, axis=1)
        return x[:p], raw, x[p + m:p + m + self.n_covariance]

    def therapist_sd(self, x: np.ndarray) -> float:
        """The SD of the therapist intercept (0 without a therapist level)."""
        return float(np.exp(x[-1])) if self.therapist is not None else 0.0

    def cholesky(self, c: np.ndarray) -> np.ndarray:
        """The lower Cholesky factor L of G from its parameters."""
        if self.random == "unstructured":
            return np.array([[np.exp(c[0]), 0.0], [c[1], np.exp(c[2])]])
        sd, cor = np.exp(c[0]), np.tanh(c[1])
        return sd * np.array([[1.0, 0.0], [cor, np.sqrt(1 - cor * cor)]])

    def covariance(self, c: np.ndarray) -> np.ndarray:
        """G = L L'."""
        L = self.cholesky(c)
        return L @ L.T

    def natural(self, x: np.ndarray) -> np.ndarray:
        """beta, the thresholds (set by set), sd(0), sd(1), cor of G and (with a
        therapist level) the therapist intercept's SD."""
        beta, theta, c = self.split(x)
        G = self.covariance(c)
        sd = np.sqrt(np.diag(G))
        cor = G[0, 1] / (sd[0] * sd[1]) if sd[0] * sd[1] > 0 else 0.0
        extra = [self.therapist_sd(x)] if self.therapist is not None else []
        return np.concatenate([beta, theta.ravel(), sd, [cor], extra])


@dataclass(frozen=True, eq=False)
class Prepared:
    """The model's observations sorted by dyad, with the dyads' bookkeeping."""

    model: GLMMModel
    order: np.ndarray
    clusters: Clusters
    X: np.ndarray
    category: np.ndarray
    threshold_set: np.ndarray
    dyads: np.ndarray
    therapist_of: np.ndarray | None = None  # each dyad's therapist code (sorted), or None
    therapists: np.ndarray | None = None  # the therapist labels

    def bounds(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The upper and lower thresholds of each observation's category."""
        if self.model.family == "binomial":
            cuts = np.zeros((1, 1))
            sets = np.zeros(len(self.category), dtype=int)
        else:
            cuts, sets = theta, self.threshold_set
        padded = np.concatenate([np.full((len(cuts), 1), -np.inf), cuts,
                                 np.full((len(cuts), 1), np.inf)], axis=1)
        return padded[sets, self.category + 1], padded[sets, self.category]


def _by_therapist(model: GLMMModel, dyads: np.ndarray, codes: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The dyads reordered by therapist: dyad codes and labels in that order, each dyad's
    therapist code and the therapist labels.

    Raises
    ------
    DataError
        When a dyad has more than one therapist."""
    therapist = np.asarray(model.therapist)
    if len(therapist) != len(codes):
        raise DataError(f"therapist has {len(therapist)} rows, the data {len(codes)}")
    labels, t_codes = np.unique(therapist, return_inverse=True)
    pairs = np.unique(np.column_stack([codes, t_codes.ravel()]), axis=0)
    if len(pairs) > len(dyads):
        many = int(np.flatnonzero(np.bincount(pairs[:, 0], minlength=len(dyads)) > 1)[0])
        names = ", ".join(str(labels[t]) for t in pairs[pairs[:, 0] == many, 1])
        label = dyads[many]
        label = label.item() if isinstance(label, np.generic) else label
        raise DataError(f"dyad {label!r} has more than one therapist ({names}): "
                        "a therapist level needs each dyad nested in one therapist; "
                        "correct the therapist ids or fit without the therapist level")
    of_dyad = np.empty(len(dyads), dtype=np.int64)
    of_dyad[pairs[:, 0]] = pairs[:, 1]
    new = np.argsort(of_dyad, kind="stable")  # dyads grouped by therapist
    rank = np.empty(len(dyads), dtype=np.int64)
    rank[new] = np.arange(len(dyads))
    return rank[codes], dyads[new], of_dyad[new], labels


def prepare(model: GLMMModel) -> Prepared:
    """Sort the observations by dyad (stably; with a therapist level the dyads grouped by
    therapist) and index the dyads 0..n-1."""
    dyads, codes = np.unique(np.asarray(model.dyad), return_inverse=True)
    codes = codes.ravel()
    therapist_of = therapists = None
    if model.therapist is not None:
        codes, dyads, therapist_of, therapists = _by_therapist(model, dyads, codes)
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    role = np.asarray(model.role, dtype=int)[order]
    sets = role if model.thresholds == "role" else np.zeros_like(role)
    return Prepared(model=model, order=order, clusters=Clusters(codes, role, starts),
                    X=np.ascontiguousarray(model.X[order]),
                    category=np.asarray(model.category, dtype=int)[order],
                    threshold_set=sets, dyads=dyads, therapist_of=therapist_of,
                    therapists=therapists)
