"""The per-dyad store of a random-slope model's stencil moments, block by block of dyads:
the out-of-core statistics where the random-effect blocks do not repeat across dyads.

A random slope's column of ``Z`` holds the dyad's own values, so no two dyads share their
random-effect blocks and the grouped moments of :mod:`apim.engine.mixed.statistics`
(``(J u)^2`` numbers per group, here per dyad) would outgrow the data. The engine's
ungrouped path (:func:`apim.engine.mixed.likelihood.random_terms`, dyad by dyad) needs
much less: per dyad and stencil combination ``c`` the random-effect rows
``Z' ... [Z | X | y]`` of the moments (``C x q x (q + u)`` numbers, ``u = p + 1``) and its
rows of each type (``T``), and summed over dyads the ``[X | y]`` block of each
combination. Nothing per row. A :class:`DyadStore` keeps exactly that, in the form of the
engine's :class:`~apim.engine.mixed.moments.TypeMoments` (row types by their global
codes, without the rows' index arrays), one part per block of dyads in block order
(:meth:`DyadStore.merge` concatenates; consecutive small parts are joined, so that
blocks of a dyad or two do not make an evaluation a loop over thousands of pieces). The
fit (:func:`~apim.engine.mixed.statistics.fit_statistics`) evaluates the engine's
likelihood on it piece by piece (at most :data:`PIECE_DYADS` dyads at a time, so the
temporaries of an evaluation are bounded), standardising each piece's products as
:mod:`apim.engine.mixed.scaling` standardises the columns; the Hessian's exact
random-effect block (:func:`apim.engine.mixed.hessian.information`, as in memory) takes
all the dyads' products at once (:meth:`_StoredProducts.products`: one more store's worth
of memory while it is computed).

Size: ``8 (C q (q + u) + T)`` bytes per dyad (:meth:`DyadStore.nbytes`; the seed design
with actor and partner slopes, ``q = 6``, ``u = 11``, ``C = 4``: 3.3 kB a dyad).

Examples
--------
>>> import numpy as np
>>> from apim.engine import MixedModel, Unstructured, Residual, estimate_mixed
>>> from apim.engine.mixed.statistics import fit_statistics
>>> rng = np.random.default_rng(1)
>>> dyad = np.repeat(np.arange(60), 8); role = np.tile([0, 1], 240)
>>> session = np.tile(np.repeat([1, 2, 3, 4], 2), 60)
>>> x = rng.normal(size=480)
>>> X = np.column_stack([1 - role, role, x])
>>> Z = np.column_stack([1 - role, role, (1 - role) * x, role * x])
>>> y = (X @ [1.0, 2.0, 0.5] + rng.normal(size=(60, 2))[dyad, role]
...      + 0.8 * rng.normal(size=(60, 2))[dyad, role] * x + rng.normal(size=480))
>>> def model(rows):
...     return MixedModel(y=y[rows], X=X[rows], dyad=dyad[rows], role=role[rows],
...                       session=session[rows], Z=Z[rows], random=Unstructured(4),
...                       residual=Residual.named("un"))
>>> whole = estimate_mixed(model(slice(None)))
>>> store = DyadStore.of(model(slice(0, 200))).merge(DyadStore.of(model(slice(200, 480))))
>>> len(store.parts), store.parts[0].rows.shape  # 4 combinations x (60 dyads x 4 x 8)
(1, (4, 1920))
>>> fit = fit_statistics(store, model(slice(0, 8)))
>>> bool(abs(fit.loglik - whole.loglik) < 1e-8), bool(np.allclose(fit.coef, whole.coef))
(True, True)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from apim.engine.mixed.grouped import GroupedMoments
from apim.engine.mixed.model import MixedModel
from apim.engine.mixed.moments import Products, TypeMoments
from apim.engine.mixed.products import ProductSource
from apim.engine.mixed.residuals import Residual
from apim.engine.mixed.statistics import (
    _code_types,
    _type_codes,
    added_counts,
    check_same_model,
    column_sums,
    stencil_moments,
)
from apim.engine.threads import one_blas_thread
from apim.errors import SpecError

__all__ = ["DyadStore", "PIECE_DYADS", "bytes_per_dyad"]

PIECE_DYADS = 4096
"""Most dyads evaluated at a time (bounds an evaluation's temporaries), and the size up
to which consecutive small parts are joined."""


def bytes_per_dyad(combinations: int, q: int, p: int, types: int) -> int:
    """Bytes of the store per dyad: ``8 (C q (q + p + 1) + T)``.

    >>> bytes_per_dyad(4, 6, 10, 2)  # the seed design with actor and partner slopes
    3280
    """
    return 8 * (combinations * q * (q + p + 1) + types)


def _codes_of(part: TypeMoments) -> list[int]:
    """The global codes of a part's row types (:func:`_code_types` inverted)."""
    t = part.types
    return [int(c) for c in _type_codes(t)]


def _joined(parts: Sequence[TypeMoments]) -> TypeMoments:
    """Consecutive parts as one (the union of their row types and combinations, in
    sorted global order; a combination a part lacks is zero in its dyads)."""
    codes_of = [_codes_of(p) for p in parts]
    combos_of = [[(codes[t], int(a), int(b)) for t, a, b in p.combos]
                 for p, codes in zip(parts, codes_of)]
    codes = sorted({c for cs in codes_of for c in cs})
    combos = sorted({c for cs in combos_of for c in cs})
    where, index = {c: k for k, c in enumerate(codes)}, {c: k for k, c in enumerate(combos)}
    _, r, m = parts[0].shape
    d = sum(p.shape[0] for p in parts)
    rows = np.zeros((len(combos), d, r * m))
    counts = np.zeros((d, len(codes)))
    rest = np.zeros((len(combos), *parts[0].rest.shape[1:]))
    lo = 0
    for part, part_codes, part_combos in zip(parts, codes_of, combos_of):
        hi = lo + part.shape[0]
        mine = [index[c] for c in part_combos]
        rows[mine, lo:hi] = part.rows.reshape(len(mine), hi - lo, r * m)
        counts[lo:hi, [where[c] for c in part_codes]] = part.counts
        np.add.at(rest, mine, part.rest)
        lo = hi
    table = np.array([(where[t], a, b) for t, a, b in combos]).reshape(-1, 3)
    return TypeMoments(types=_code_types(codes, parts[0].types.slots), combos=table,
                       rows=rows.reshape(len(combos), -1), rest=rest, counts=counts,
                       shape=(d, r, m))


def _consolidated(parts: list[TypeMoments]) -> tuple[TypeMoments, ...]:
    """Join the last two parts while the later is no smaller and both together are at
    most :data:`PIECE_DYADS` dyads (as a binary counter: each dyad is copied a few times
    at most, however small the blocks)."""
    while (len(parts) > 1 and parts[-2].shape[0] <= parts[-1].shape[0]
           and parts[-2].shape[0] + parts[-1].shape[0] <= PIECE_DYADS):
        parts[-2:] = [_joined(parts[-2:])]
    return tuple(parts)


@dataclass(frozen=True, eq=False)
class _Piece:
    """Up to :data:`PIECE_DYADS` dyads of a part (views of its arrays), giving the
    standardised products: each product of two columns divided by their scales."""

    moments: TypeMoments
    scale_rows: np.ndarray  # (r, m)
    scale_rest: np.ndarray  # (u, u)

    def products(self, residual: Residual, theta: np.ndarray, gradient: bool) -> Products:
        raw = self.moments.products(residual, theta, gradient)
        rows, rest = raw.rows / self.scale_rows, raw.rest / self.scale_rest
        if not gradient:
            return Products(rows, rest, raw.logdet)
        assert raw.d_rows is not None and raw.d_rest is not None
        return Products(rows, rest, raw.logdet, raw.d_rows / self.scale_rows,
                        raw.d_rest / self.scale_rest, raw.d_logdet)


@dataclass(frozen=True, eq=False)
class _StoredProducts:
    """The store as the engine's product source: its pieces (the likelihood evaluates
    them one at a time, :func:`apim.engine.mixed.likelihood._terms_by_pieces`), or all
    products at once."""

    parts: tuple[TypeMoments, ...]
    scale_rows: np.ndarray
    scale_rest: np.ndarray

    def pieces(self) -> Iterator[_Piece]:
        for part in self.parts:
            d, r, m = part.shape
            rows = part.rows.reshape(len(part.combos), d, r * m)
            for lo in range(0, d, PIECE_DYADS):
                hi = min(lo + PIECE_DYADS, d)
                view = replace(part, rows=rows[:, lo:hi].reshape(len(part.combos), -1),
                               rest=part.rest if lo == 0 else np.zeros_like(part.rest),
                               counts=part.counts[lo:hi], shape=(hi - lo, r, m))
                yield _Piece(view, self.scale_rows, self.scale_rest)

    def products(self, residual: Residual, theta: np.ndarray, gradient: bool) -> Products:
        """All the dyads' products at once (as the exact Hessian takes them), filled in
        piece by piece: no more than the result and one piece's products at a time."""
        d = sum(p.shape[0] for p in self.parts)
        r, m = self.scale_rows.shape
        out: Products | None = None
        lo = 0
        for piece in self.pieces():
            one = piece.products(residual, theta, gradient)
            if out is None:
                k = 0 if one.d_rows is None else len(one.d_rows)
                out = Products(np.empty((d, r, m)), np.zeros_like(one.rest), np.empty(d),
                               *((np.empty((k, d, r, m)), np.zeros_like(one.d_rest),
                                  np.empty((k, d))) if gradient else ()))
            hi = lo + len(one.rows)
            out.rows[lo:hi], out.logdet[lo:hi] = one.rows, one.logdet
            out.rest[...] += one.rest
            if gradient:
                assert out.d_rows is not None and out.d_rest is not None
                assert out.d_logdet is not None
                out.d_rows[:, lo:hi], out.d_logdet[:, lo:hi] = one.d_rows, one.d_logdet
                out.d_rest[...] += one.d_rest
            lo = hi
        assert out is not None  # a store has dyads
        return out


@dataclass(frozen=True, eq=False)
class DyadStore:
    """The per-dyad random-effect rows of the stencil moments and the summed rest (see
    the module docstring).

    Attributes
    ----------
    residual : the residual structure's name
    slots : its stencil slots
    p, q : numbers of fixed-effect and random-effect columns
    parts : one :class:`~apim.engine.mixed.moments.TypeMoments` per block of dyads
        (joined when small), row types by their global codes, no rows
    n_rows, n_dyads : counts
    sums : ``(sum y, sum y^2, sum X^2 by column, sum Z^2 by column)`` for the scales
    """

    residual: str
    slots: tuple[str, ...]
    p: int
    q: int
    parts: tuple[TypeMoments, ...] = field(repr=False)
    n_rows: int
    n_dyads: int
    sums: tuple[float, float, np.ndarray, np.ndarray] = field(repr=False)

    @classmethod
    @one_blas_thread
    def of(cls, model: MixedModel) -> DyadStore:
        """The store of the dyads of ``model`` (all their rows: a dyad must not be split
        between blocks)."""
        moments = stencil_moments(model)
        codes = [int(c) for c in _type_codes(moments.types)]
        part = replace(moments, types=_code_types(codes, tuple(moments.types.slots)))
        sums = column_sums(model)
        return cls(residual=model.residual.name, slots=tuple(moments.types.slots),
                   p=len(sums[2]), q=len(sums[3]), parts=(part,), n_rows=len(model.y),
                   n_dyads=moments.shape[0], sums=sums)

    def merge(self, other: DyadStore) -> DyadStore:
        """The store of both blocks of dyads (which must not share a dyad), ``other``'s
        dyads after this one's."""
        if not isinstance(other, DyadStore):
            raise SpecError("a per-dyad store (random slopes) cannot be merged with summed "
                            "statistics (random intercepts); build every block with the "
                            "same spec")
        check_same_model(self, other)
        return replace(self, parts=_consolidated([*self.parts, *other.parts]),
                       **added_counts(self, other))

    def transformed(self, A: np.ndarray, B: np.ndarray | None = None) -> DyadStore:
        """The store of the model with columns ``X A`` instead of ``X`` and ``Z B``
        instead of ``Z`` (``A``: (p, p), ``B``: (q, q), None: ``Z`` unchanged); exact,
        since every number kept is a product of two columns: a random-effect row
        ``Z' ... [Z | X | y]`` becomes ``B' Z' ... [Z B | X A | y]``.

        Centring on the whole file's centres moves a between part by a constant per
        role (absorbed by the role's intercept: ``A``, as for
        :meth:`~apim.engine.mixed.statistics.DyadStatistics.transformed`) and, with
        grand-mean centring, a time-varying part too, so a random slope's column as well
        (absorbed by the role's random intercept: ``B``); person-mean centring leaves
        the within parts, the random slopes' columns, where they are (``B`` None).
        """
        A = np.asarray(A, float)
        if A.shape != (self.p, self.p):
            raise SpecError(f"A must be {self.p} x {self.p}, not {A.shape}")
        q, u = self.q, self.p + 1
        b = np.eye(q) if B is None else np.asarray(B, float)
        if b.shape != (q, q):
            raise SpecError(f"B must be {q} x {q}, not {b.shape}")
        right = np.zeros((q + u, q + u))  # [Z | X | y] -> [Z B | X A | y]
        right[:q, :q], right[q:q + self.p, q:q + self.p], right[-1, -1] = b, A, 1.0
        a_u = right[q:, q:]
        parts = []
        for part in self.parts:
            d = part.shape[0]
            rows = part.rows.reshape(len(part.combos), d, q, q + u)
            mapped = np.matmul(np.matmul(b.T, rows), right)
            parts.append(replace(part, rows=mapped.reshape(len(part.combos), -1),
                                 rest=np.matmul(np.matmul(a_u.T, part.rest), a_u)))
        # sums of squares of the new columns: diagonals of A' X'X A and B' Z'Z B, from
        # the unweighted moments (each row with itself: slots 0, 0)
        xx, zz = np.zeros((self.p, self.p)), np.zeros((q, q))
        for part in self.parts:
            mine = [k for k, (_, a, c) in enumerate(part.combos) if a == 0 and c == 0]
            xx += part.rest[mine].sum(0)[:self.p, :self.p]
            rows = part.rows.reshape(len(part.combos), part.shape[0], q, q + u)
            zz += rows[mine, :, :, :q].sum(axis=(0, 1))
        s = self.sums
        return replace(self, parts=tuple(parts),
                       sums=(s[0], s[1], np.einsum("ij,ik,kj->j", A, xx, A),
                             s[3] if B is None else np.einsum("ij,ik,kj->j", b, zz, b)))

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays (what travels from a worker; what the fit holds)."""
        return sum(p.rows.nbytes + p.counts.nbytes + p.rest.nbytes for p in self.parts)

    def engine_form(self, scale_u: np.ndarray, scale_z: np.ndarray
                    ) -> tuple[TypeMoments, ProductSource, GroupedMoments | None]:
        """The summed moments by global combination (for the rank check and the default
        start values), the store as the engine's product source (standardised piece by
        piece: no copy) and no grouped moments (the per-dyad path)."""
        summary = _joined([replace(p, rows=np.zeros((len(p.combos), 0)),
                                   counts=np.zeros((0, len(p.types.role))),
                                   shape=(0, *p.shape[1:])) for p in self.parts])
        scale_all = np.r_[scale_z, scale_u]
        scale_rest = np.outer(scale_u, scale_u)
        summary = replace(summary, rest=summary.rest / scale_rest)
        source = _StoredProducts(self.parts, np.outer(scale_z, scale_all), scale_rest)
        return summary, source, None
