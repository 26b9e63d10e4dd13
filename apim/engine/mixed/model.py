"""The linear mixed model the engine fits, and its sorted, indexed form.

``y = X beta + Z_T v_j + Z b_i + e_i`` for observations of dyad ``i`` (nested in therapist
``j`` when a therapist level is given), ``b_i ~ N(0, G)``, ``v_j ~ N(0, T)`` and dyad
residuals ``e_i ~ N(0, R_i)`` with a :class:`~apim.engine.mixed.residuals.Residual` structure.
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
from functools import cached_property

import numpy as np
import pandas as pd

from apim.engine.mixed.grouped import GroupedMoments
from apim.engine.mixed.moments import TypeMoments
from apim.engine.mixed.products import ProductSource, cross_products
from apim.engine.mixed.random_effects import RandomStructure
from apim.engine.mixed.residuals import (
    Residual,
    ResidualLayout,
    UnstructuredResidual,
    index_dtype,
)
from apim.errors import RankDeficientError, SpecError

__all__ = ["MixedModel", "ScaledModel", "Prepared"]


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
    residual: Residual = field(default_factory=UnstructuredResidual)
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

    def columns(self) -> list[tuple[np.ndarray | None, np.ndarray]]:
        """The engine's column blocks ``[Z_T | Z | X | y]`` (as given, ``None`` for a
        therapist design of ones) and the divisor of each column (ones: the model is in
        the units of its arrays)."""
        n = len(self.y)
        blocks: list[tuple[np.ndarray | None, np.ndarray]] = []
        if self.therapist is not None:
            blocks.append((self.Z_therapist, np.ones(self.q_therapist)))
        if self.Z is not None:
            blocks.append((self.Z, np.ones(self.q)))
        X = np.asarray(self.X).reshape(n, -1)
        blocks += [(X, np.ones(X.shape[1])), (np.asarray(self.y), np.ones(1))]
        return blocks


@dataclass(frozen=True, eq=False)
class ScaledModel(MixedModel):
    """A :class:`MixedModel` in standardised units, without a copy of the data.

    The arrays are the caller's, in the caller's units; the model they define is the one
    with outcome ``y / y_scale``, design ``X / x_scale`` (column by column), ``Z / z_scale``
    and ``Z_therapist / zt_scale``. The engine divides each column as it builds its one
    sorted copy (:meth:`Prepared.of`), so standardising costs no memory. Made by
    :class:`apim.engine.mixed.scaling.Scaling`; read the data through :meth:`columns`.

    Examples
    --------
    >>> import numpy as np
    >>> m = ScaledModel(y=np.array([2.0, 4.0]), X=np.ones((2, 1)), dyad=np.array([1, 2]),
    ...                 role=np.zeros(2, int), session=np.ones(2, int), y_scale=2.0,
    ...                 x_scale=np.ones(1))
    >>> Prepared.of(m).raw[:, -1].tolist()
    [1.0, 2.0]
    """

    y_scale: float = 1.0
    x_scale: np.ndarray | None = None
    z_scale: np.ndarray | None = None
    zt_scale: np.ndarray | None = None

    def columns(self) -> list[tuple[np.ndarray | None, np.ndarray]]:
        blocks = super().columns()
        scales = []
        if self.therapist is not None:
            scales.append(self.zt_scale)
        if self.Z is not None:
            scales.append(self.z_scale)
        scales += [self.x_scale, np.array([self.y_scale])]
        return [(a, d if s is None else np.asarray(s, float))
                for (a, d), s in zip(blocks, scales)]


def _codes(labels: np.ndarray) -> np.ndarray:
    """Group codes 0..G-1 in the sorted order of the labels (numbers, text, any ids)."""
    a = np.asarray(labels)
    if a.dtype.kind in "iub" and (len(a) < 2 or bool(np.all(a[1:] >= a[:-1]))):
        new = np.empty(len(a), bool)  # already sorted (the usual case): no sort, no hash
        new[:1] = True
        np.not_equal(a[1:], a[:-1], out=new[1:])
        return np.cumsum(new, dtype=np.int64) - 1
    try:
        codes = pd.factorize(a.ravel(), sort=True, use_na_sentinel=False)[0]
    except TypeError:  # labels pandas cannot order
        codes = np.unique(a, return_inverse=True)[1].ravel()
    return codes.astype(np.int64, copy=False)


def _sort_order(keys: list[np.ndarray]) -> np.ndarray | None:
    """The stable sort of rows by ``keys`` (most significant first; whole numbers), or
    None when the rows are in that order already."""
    n = len(keys[0])
    if n < 2:
        return None
    ahead = np.zeros(n - 1, bool)  # row i+1 already after row i on an earlier key
    for key in keys:
        step = np.sign(np.diff(key))
        if np.any(step[~ahead] < 0):
            break
        ahead |= step > 0
    else:
        return None
    lows = [int(k.min()) for k in keys]
    spans = [int(k.max()) - lo + 1 for k, lo in zip(keys, lows)]
    if float(np.prod(np.array(spans, float))) < 2.0 ** 62:  # one combined key
        combined = np.zeros(n, np.int64)
        for key, lo, span in zip(keys, lows, spans):
            combined *= span
            combined += key - lo
        return np.argsort(combined, kind="stable")
    return np.lexsort(keys[::-1])


def row_blocks(n: int, size: int = 65_536) -> list[slice]:
    return [slice(lo, min(lo + size, n)) for lo in range(0, n, size)]


def _full_rank(raw: np.ndarray, columns: slice) -> tuple[bool, np.ndarray | None]:
    """Whether ``raw[:, columns]`` has full column rank by the rule of
    ``numpy.linalg.matrix_rank`` (singular values above ``s_max * max(N, p) * eps``),
    without a full-size copy; and the R factor of its QR when it was needed.

    A well-conditioned design is recognised from the eigenvalues of ``X'X`` (summed in
    blocks of rows): when the smallest is above ``1e-6`` of the largest, far beyond the
    round-off of ``X'X``, the smallest singular value is above ``1e-3`` of the largest
    and the rank is full. Otherwise the singular values come from the R factor of a QR
    computed block by block, as ``matrix_rank`` would compute them from ``X``.
    """
    n = raw.shape[0]
    p = len(range(*columns.indices(raw.shape[1])))
    gram = np.zeros((p, p))
    for rows in row_blocks(n):
        block = raw[rows, columns]
        gram += block.T @ block
    eig = np.linalg.eigvalsh(gram)
    if eig[-1] > 0 and eig[0] > 1e-6 * eig[-1]:
        return True, None
    r = np.zeros((0, p))
    for rows in row_blocks(n):
        r = np.asarray(np.linalg.qr(np.vstack([r, raw[rows, columns]]), mode="r"))
    sv = np.linalg.svd(r, compute_uv=False)
    return bool(np.sum(sv > sv.max() * max(n, p) * np.finfo(float).eps) == p), r


@dataclass(frozen=True, eq=False)
class Prepared:
    """Rows sorted by therapist, dyad, session and role, with index arrays.

    Attributes
    ----------
    order : row permutation (sorted position -> input row)
    raw : (N, q_T + q + p + 1) ``[Z_T | Z | X | y]`` in sorted order (divided by the
        column scales of a :class:`ScaledModel`)
    layout : ResidualLayout
    cluster, slot : per dyad, its top-level cluster (therapist, or the dyad itself) and its
        position among the cluster's dyads
    n_slots : largest number of dyads in a cluster
    products : whitened cross products per dyad (:mod:`apim.engine.mixed.moments`)

    The only full-size arrays made are ``raw``, ``order`` and the layout's index arrays
    (int32 where they fit); the caller's arrays are read, never changed.
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
    def of(cls, model: MixedModel, check_rank: bool = True) -> Prepared:
        """The sorted, indexed form of ``model`` (``check_rank=False``: without the check
        that ``X`` has full column rank, for a block of a larger data set, whose rank is
        checked on the sums of all blocks)."""
        n = len(model.y)
        for name, arr in (("dyad", model.dyad), ("role", model.role),
                          ("session", model.session)):
            if len(arr) != n:
                raise SpecError(f"{name} has {len(arr)} rows but y has {n}")
        blocks = model.columns()
        p = blocks[-2][0].shape[1]  # type: ignore[union-attr]
        if (model.Z is None) != (model.random is None):
            raise SpecError("give both Z and random, or neither")
        dyad = _codes(model.dyad)
        therapist = _codes(model.therapist) if model.therapist is not None else None
        role = np.asarray(model.role).astype(np.int64, copy=False)
        session = np.asarray(model.session).astype(np.int64, copy=False)
        keys = [dyad, session, role] if therapist is None else [therapist, dyad, session,
                                                                  role]
        order = _sort_order(keys)
        raw = np.empty((n, sum(len(d) for _, d in blocks)))
        parts = [(None if a is None else np.asarray(a).reshape(n, -1), d) for a, d in blocks]
        n_xy = p + 1  # X and y: the last columns
        finite = True
        for rows in row_blocks(n):  # block by block: no full-size temporary
            source = rows if order is None else order[rows]
            at = 0
            for part, divisor in parts:
                width = len(divisor)
                if part is None:  # a therapist design of ones
                    raw[rows, at] = 1.0 / divisor[0]
                elif np.all(divisor == 1.0):
                    raw[rows, at:at + width] = part[source]
                else:
                    np.divide(part[source], divisor, out=raw[rows, at:at + width])
                at += width
            # checked while the block is in the cache
            finite = finite and bool(np.isfinite(raw[rows, -n_xy:]).all())
        if not finite:
            raise SpecError("y and X must be finite; drop incomplete rows before fitting")
        x_cols = slice(raw.shape[1] - 1 - p, raw.shape[1] - 1)
        full, r = _full_rank(raw, x_cols) if p and check_rank else (True, None)
        if not full and r is not None:
            names = model.x_names or tuple(f"x{j}" for j in range(p))
            diag = np.abs(np.diag(r))
            weak = diag < 1e-10 * diag.max()
            raise RankDeficientError([names[j] for j in np.flatnonzero(weak)]
                                     or list(names))
        if order is not None:
            dyad, session, role = dyad[order], session[order], role[order]
            if therapist is not None:
                therapist = therapist[order]
        layout = ResidualLayout.build(dyad, session, role)
        del session, role
        if therapist is None:
            cluster = np.arange(len(layout.dyad_start), dtype=np.int64)
            slot = np.zeros(len(cluster), np.int64)
        else:
            blocks_of_rows = 1 + int(np.count_nonzero(
                (dyad[1:] != dyad[:-1]) | (therapist[1:] != therapist[:-1])))
            if blocks_of_rows != int(dyad.max()) + 1:
                raise SpecError("a dyad has more than one therapist")
            cluster = _codes(therapist[layout.dyad_start])
            first = np.r_[True, cluster[1:] != cluster[:-1]]
            group_start = np.maximum.accumulate(np.where(first, np.arange(len(cluster)), 0))
            slot = np.arange(len(cluster)) - group_start
        del dyad, therapist
        order = np.arange(n) if order is None else order
        return cls(order=order.astype(index_dtype(n), copy=False), raw=raw, layout=layout,
                   cluster=cluster, slot=slot,
                   n_slots=int(slot.max()) + 1, n_clusters=int(cluster.max()) + 1,
                   q_t=model.q_therapist, q=model.q, p=p,
                   products=cross_products(model.residual, layout, raw,
                                           model.q_therapist + model.q))

    @property
    def n(self) -> int:
        return self.raw.shape[0]

    @cached_property
    def grouped(self) -> GroupedMoments | None:
        """The moments by groups of dyads with equal random-effect blocks
        (:mod:`apim.engine.mixed.grouped`) where the grouped evaluation applies and pays
        (stencil products, dyad random effects, no therapist level); built on first use."""
        if self.q and self.dyad_clusters and isinstance(self.products, TypeMoments):
            return GroupedMoments.of(self.products)
        return None

    @property
    def width(self) -> int:
        """Size of a cluster's stacked random-effect vector."""
        return self.q_t + self.n_slots * self.q

    @property
    def dyad_clusters(self) -> bool:
        """Each dyad is its own cluster (no therapist level, one dyad per cluster)."""
        return self.q_t == 0 and self.n_slots == 1
