"""The linear mixed model the engine fits, and its sorted, indexed form.

``y = X beta + Z_T v_j + Z b_i + e_i`` for observations of dyad ``i`` (nested in therapist
``j`` when a therapist level is given), ``b_i ~ N(0, G)``, ``v_j ~ N(0, T)`` and dyad
residuals ``e_i ~ N(0, R_i)`` with a :class:`~apim.engine.residual.Residual` structure.
The engine knows nothing about what the columns mean.

Examples
--------
>>> import numpy as np
>>> from apim.engine import MixedModel, Unstructured, Residual
>>> rng = np.random.default_rng(1)
>>> dyad = np.repeat(np.arange(20), 6); role = np.tile([0, 1], 60)
>>> session = np.tile(np.repeat([1, 2, 3], 2), 20)
>>> X = np.column_stack([1 - role, role]).astype(float)
>>> y = X @ [1.0, 2.0] + rng.normal(size=120)
>>> model = MixedModel(y=y, X=X, dyad=dyad, role=role, session=session, Z=X,
...                    random=Unstructured(2), residual=Residual.named("un"))
>>> model.n_params
6
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from apim.engine.moments import ProductSource, cross_products
from apim.engine.residual import Residual, ResidualLayout
from apim.engine.structures import RandomStructure
from apim.errors import RankDeficientError, SpecError

__all__ = ["MixedModel", "Prepared"]


@dataclass(frozen=True, eq=False)
class MixedModel:
    """Specification of a dyadic linear mixed model (arrays in any row order).

    Parameters
    ----------
    y : (N,) array
    X : (N, p) array
        Fixed-effects design.
    dyad, role, session : (N,) arrays
        Dyad labels, role codes (0 = reference, 1) and whole session numbers.
    Z : (N, q) array, optional
        Dyad-level random-effects design; with ``random`` its covariance structure.
    residual : Residual
    therapist : (N,) array, optional
        Therapist labels (constant within dyad) for a therapist level.
    Z_therapist : (N, q_T) array, optional
        Therapist-level random-effects design (default: a column of ones).
    therapist_random : structure, optional
    x_names, z_names, therapist_names : tuple of str
    """

    y: np.ndarray
    X: np.ndarray
    dyad: np.ndarray
    role: np.ndarray
    session: np.ndarray
    Z: np.ndarray | None = None
    random: RandomStructure | None = None
    residual: Residual = field(default_factory=Residual)
    therapist: np.ndarray | None = None
    Z_therapist: np.ndarray | None = None
    therapist_random: RandomStructure | None = None
    x_names: tuple[str, ...] = ()
    z_names: tuple[str, ...] = ()
    therapist_names: tuple[str, ...] = ()

    @property
    def q(self) -> int:
        return 0 if self.Z is None else self.Z.shape[1]

    @property
    def q_therapist(self) -> int:
        if self.therapist is None:
            return 0
        return 1 if self.Z_therapist is None else self.Z_therapist.shape[1]

    @property
    def n_params(self) -> int:
        """Number of covariance parameters."""
        return ((self.random.n_params if self.random else 0)
                + (self.therapist_random.n_params if self.therapist_random else 0)
                + self.residual.n_params)


def _codes(labels: np.ndarray) -> np.ndarray:
    return np.unique(np.asarray(labels), return_inverse=True)[1].ravel()


@dataclass(frozen=True, eq=False)
class Prepared:
    """Rows sorted by therapist, dyad, session and role, with index arrays.

    Attributes
    ----------
    order : row permutation (sorted position -> input row)
    raw : (N, q_T + q + p + 1) ``[Z_T | Z | X | y]`` in sorted order
    layout : ResidualLayout
    cluster, slot : per dyad, its top-level cluster (therapist, or the dyad itself) and its
        position among the cluster's dyads
    n_slots : largest number of dyads in a cluster
    products : whitened cross products per dyad (:mod:`apim.engine.moments`)
    """

    order: np.ndarray
    raw: np.ndarray
    layout: ResidualLayout
    cluster: np.ndarray
    slot: np.ndarray
    n_slots: int
    n_clusters: int
    q_t: int
    q: int
    p: int
    products: ProductSource

    @classmethod
    def of(cls, model: MixedModel) -> Prepared:
        n = len(model.y)
        X = np.asarray(model.X, float).reshape(n, -1)
        for name, arr in (("dyad", model.dyad), ("role", model.role),
                          ("session", model.session)):
            if len(arr) != n:
                raise SpecError(f"{name} has {len(arr)} rows but y has {n}")
        if not np.all(np.isfinite(model.y)) or not np.all(np.isfinite(X)):
            raise SpecError("y and X must be finite; drop incomplete rows before fitting")
        if (model.Z is None) != (model.random is None):
            raise SpecError("give both Z and random, or neither")
        rank = np.linalg.matrix_rank(X)
        if rank < X.shape[1]:
            names = model.x_names or tuple(f"x{j}" for j in range(X.shape[1]))
            _, r = np.linalg.qr(X)
            weak = np.abs(np.diag(r)) < 1e-10 * np.abs(np.diag(r)).max()
            raise RankDeficientError([names[j] for j in np.flatnonzero(weak)] or list(names))
        dyad = _codes(model.dyad)
        therapist = _codes(model.therapist) if model.therapist is not None else dyad
        role = np.asarray(model.role).astype(int)
        session = np.asarray(model.session).astype(int)
        order = np.lexsort((role, session, dyad, therapist))
        parts = []
        if model.therapist is not None:
            zt = np.ones((n, 1)) if model.Z_therapist is None else model.Z_therapist
            parts.append(np.asarray(zt, float).reshape(n, -1))
        if model.Z is not None:
            parts.append(np.asarray(model.Z, float).reshape(n, -1))
        parts += [X, np.asarray(model.y, float)[:, None]]
        # filled column by column: no unsorted full-size copy
        raw = np.empty((n, sum(part.shape[1] for part in parts)))
        at = 0
        for part in parts:
            for j in range(part.shape[1]):
                raw[:, at] = part[order, j]
                at += 1
        layout = ResidualLayout.build(dyad[order], session[order], role[order])
        ther_of_dyad = therapist[order][layout.dyad_start]
        cluster = _codes(ther_of_dyad)
        first = np.r_[True, cluster[1:] != cluster[:-1]]
        group_start = np.maximum.accumulate(np.where(first, np.arange(len(cluster)), 0))
        slot = np.arange(len(cluster)) - group_start
        if model.therapist is not None:
            changes = np.unique(np.column_stack([dyad, therapist]), axis=0)
            if len(changes) != len(np.unique(dyad)):
                raise SpecError("a dyad has more than one therapist")
        return cls(order=order, raw=raw, layout=layout, cluster=cluster, slot=slot,
                   n_slots=int(slot.max()) + 1, n_clusters=int(cluster.max()) + 1,
                   q_t=model.q_therapist, q=model.q, p=X.shape[1],
                   products=cross_products(model.residual, layout, raw,
                                           model.q_therapist + model.q))

    @property
    def n(self) -> int:
        return self.raw.shape[0]

    @property
    def width(self) -> int:
        """Size of a cluster's stacked random-effect vector."""
        return self.q_t + self.n_slots * self.q
