"""``UN x AR(1)`` residuals with single missing ratings, exactly, by a Schur complement.

Within a dyad, take the *complete* series: both members at every session at which at least
one of them rated (a session neither rated is a gap, which the AR(1) factor ``phi^gap``
already marginalises exactly). Its precision ``Q = R^-1 = W'W`` is the banded Kronecker
stencil of :mod:`apim.engine.residual`. With ``o`` the observed and ``m`` the missing
entries, the observed covariance ``R_oo`` has::

    R_oo^-1 = Q_oo - Q_om Q_mm^-1 Q_mo,       log|R_oo| = log|R| + log|Q_mm|.

With the data ``U`` filled with zero rows at the missing entries, ``U_o' Q_oo U_o =
(W U)'(W U)``, the stencil's type moments on the complete grid; and ``Q_mo U_o = E' (W U)``
with ``E = W[:, m]``, which is non-zero only in the (at most four) whitened rows that touch a
missing entry. So per dyad::

    U_o' R_oo^-1 U_o = (W U)'(W U) - B' (E'E)^-1 B,      B = E' (W U),   Q_mm = E'E,

a small dense solve of the size of the dyad's missing entries, on top of the stencil. The
derivatives follow from those of the stencil coefficients (``dE``, ``d(WU)``)::

    d(B' Q_mm^-1 B) = dB' X + X' dB - X' dQ_mm X,   X = Q_mm^-1 B,
    d log|Q_mm| = tr(Q_mm^-1 dQ_mm).

Dyads are grouped by their number of missing entries (padded to a power of two) and handled
in batches. The dense Cholesky path (:mod:`apim.engine.dense_residual`) stays as the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apim.engine.moments import Products, TypeMoments
from apim.engine.residual import Residual, ResidualLayout, RowTypes

__all__ = ["complete_grid", "MissingCorrection", "GridProducts"]

BATCH_UNITS = 20_000
CHUNK = 8  # entries of a dyad per batched product


def complete_grid(layout: ResidualLayout, raw: np.ndarray
                  ) -> tuple[ResidualLayout, np.ndarray, np.ndarray]:
    """Both members at every session of each dyad at which anyone rated.

    Returns the grid's layout (same dyads, in the same order), ``raw`` with zero rows at
    the missing entries, and the grid rows that are missing.
    """
    new_key = np.r_[True, (layout.dyad[1:] != layout.dyad[:-1])
                    | (layout.session[1:] != layout.session[:-1])]
    key = np.cumsum(new_key) - 1
    first = np.flatnonzero(new_key)
    grid_rows = 2 * key + layout.role
    n_grid = 2 * len(first)
    grid_raw = np.zeros((n_grid, raw.shape[1]))
    grid_raw[grid_rows] = raw
    observed = np.zeros(n_grid, bool)
    observed[grid_rows] = True
    grid = ResidualLayout.build(np.repeat(layout.dyad[first], 2),
                                np.repeat(layout.session[first], 2),
                                np.tile(np.array([0, 1]), len(first)))
    return grid, grid_raw, np.flatnonzero(~observed)


def _merged_groups(units: np.ndarray, size: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Units grouped by padded size; neighbouring groups are merged while the padding
    costs less than the overhead of another batch."""
    overhead = 2_000  # padded entries worth one more batch of numpy calls
    groups: list[tuple[int, np.ndarray]] = []
    for width in np.unique(size):
        w, un = int(width), units[size == width]
        if groups:
            w0, un0 = groups[-1]
            if (len(un0) + len(un)) * w * w <= len(un0) * w0 * w0 + len(un) * w * w + overhead:
                groups[-1] = (w, np.sort(np.r_[un0, un]))
                continue
        groups.append((w, un))
    return groups


def _components(hit: np.ndarray, n_entries: int) -> np.ndarray:
    """Connected components of the missing entries, two entries linked when a whitened
    row touches both (``Q_mm`` is block diagonal over them)."""
    from scipy.sparse import coo_matrix  # not on import: ``import apim`` stays light
    from scipy.sparse.csgraph import connected_components

    first = hit[np.arange(len(hit)), np.argmax(hit >= 0, axis=1)]
    ok = hit >= 0
    a = np.broadcast_to(first[:, None], hit.shape)[ok]
    graph = coo_matrix((np.ones(len(a)), (a, hit[ok])), shape=(n_entries, n_entries))
    return connected_components(graph, directed=False)[1]


@dataclass(frozen=True, eq=False)
class _Batch:
    """Units (blocks of ``Q_mm``) whose missing entries fit in ``width`` slots (padded),
    with the moments that give ``B = E'(WU)`` and ``Q_mm = E'E`` as weighted sums (see
    :class:`MissingCorrection`)."""

    dyads: np.ndarray      # (b,) dyad of each unit
    pad: np.ndarray        # (b, width, width) 1 on the diagonal of padding slots
    b_moments: np.ndarray  # (combos, b * width * m)
    q_moments: np.ndarray  # (combos, b * width * width)
    slots: np.ndarray      # (entries,) the batch's (unit, slot) positions that hold an entry
    place: np.ndarray      # (entries,) where each of them goes in the dyads' chunks


@dataclass(frozen=True, eq=False)
class MissingCorrection:
    """The Schur-complement correction ``B' Q_mm^-1 B`` per dyad with missing entries.

    ``Q_mm`` is block diagonal: two missing entries interact only through a whitened row
    touching both (with ``UN x AR(1)``: the same or neighbouring sessions). Its blocks, the
    *units*, are mostly single entries, handled as scalars; larger ones by batched solves.
    A whitened row ``j`` of type ``t`` touches a missing entry through its slot ``l``
    (``E[j, col] = c_l(t)``) and combines data rows through its slots ``l'``
    (``(WU)_j = sum_l' c_l'(t) u_l'``). So ``B = E'(WU)`` and ``Q_mm = E'E`` are sums over
    combinations ``(t, l, l')`` of ``c_l(t) c_l'(t)`` times moments that do not depend on
    the parameters, computed once, as for the stencil itself (:class:`TypeMoments`).
    """

    combos: np.ndarray     # (C, 3): type, slot touching the missing entry, other slot
    batches: tuple[_Batch, ...]
    n_random: int
    n_dyads: int
    chunk_starts: np.ndarray  # first chunk of each dyad with missing entries
    chunk_dyads: np.ndarray   # those dyads
    n_chunks: int

    @classmethod
    def of(cls, types: RowTypes, grid: ResidualLayout, grid_raw: np.ndarray,
           missing: np.ndarray, n_random: int) -> MissingCorrection:
        links = types.links
        n_slots, n_types = len(types.slots), len(types.role)
        m = grid_raw.shape[1]
        is_missing = np.zeros(len(grid.dyad), bool)
        is_missing[missing] = True
        # incidences: (row, slot) -> the missing entry it touches, or -1
        touching = np.flatnonzero(np.any((links >= 0) & is_missing[np.maximum(links, 0)], 0))
        hit = np.full((len(touching), n_slots), -1)
        for sl in range(n_slots):
            target = links[sl, touching]
            on = (target >= 0) & is_missing[np.maximum(target, 0)]
            hit[on, sl] = np.searchsorted(missing, target[on])
        unit = _components(hit, len(missing))                  # unit of each entry
        n_units = int(unit.max()) + 1 if len(unit) else 0
        by_unit = np.argsort(unit, kind="stable")
        size = np.bincount(unit, minlength=n_units)
        pos = np.empty(len(missing), int)
        pos[by_unit] = np.arange(len(missing)) - np.repeat(np.cumsum(size) - size, size)
        unit_dyad = np.zeros(n_units, int)
        unit_dyad[unit] = grid.dyad[missing]
        hit_col = np.where(hit >= 0, pos[np.maximum(hit, 0)], -1)
        row_unit = unit[hit[np.arange(len(hit)), np.argmax(hit >= 0, axis=1)]]
        kind = types.index[touching]
        present = links[:, touching] >= 0                      # (slots, rows)
        used = np.zeros((n_types, n_slots, n_slots), bool)
        for s1 in range(n_slots):
            for s2 in range(n_slots):
                used[kind[(hit_col[:, s1] >= 0) & present[s2]], s1, s2] = True
        # c_l c_l' is symmetric in (l, l'): both orders share one moment
        used = np.triu(used | np.swapaxes(used, 1, 2))
        combos = np.argwhere(used)
        combo_id = np.full(used.shape, -1)
        combo_id[tuple(combos.T)] = np.arange(len(combos))
        combo_id = np.maximum(combo_id, np.swapaxes(combo_id, 1, 2))
        # entries by dyad in chunks of CHUNK slots: the per-dyad sums are batched products
        e_dyad = grid.dyad[missing]  # ascending
        n_per = np.bincount(e_dyad, minlength=len(grid.dyad_start))
        n_chunks = -(-n_per // CHUNK)
        first_chunk = np.cumsum(n_chunks) - n_chunks
        at_dyad = np.arange(len(missing)) - np.searchsorted(e_dyad, e_dyad)
        place_of = CHUNK * first_chunk[e_dyad] + at_dyad
        entry_of = np.full((n_units, int(size.max()) if n_units else 0), -1)
        entry_of[unit, pos] = np.arange(len(missing))
        width_of = 2 ** np.ceil(np.log2(np.maximum(size, 1))).astype(int)
        batches = []
        for width, group in _merged_groups(np.arange(n_units), width_of):
            for lo in range(0, len(group), BATCH_UNITS):
                members = group[lo:lo + BATCH_UNITS]
                local = np.full(n_units, -1)
                local[members] = np.arange(len(members))
                mine = local[row_unit] >= 0
                b_idx, col_h = local[row_unit[mine]], hit_col[mine]
                rows_h, kind_h = touching[mine], kind[mine]
                n_b = len(members)
                bm = np.zeros((len(combos), n_b, width, m))
                qm = np.zeros((len(combos), n_b, width, width))
                for s1 in range(n_slots):
                    on = col_h[:, s1] >= 0
                    for s2 in range(n_slots):
                        both = on & (links[s2, rows_h] >= 0)
                        cid = combo_id[kind_h[both], s1, s2]
                        np.add.at(bm, (cid, b_idx[both], col_h[both, s1]),
                                  grid_raw[links[s2, rows_h[both]]])
                        pair = both & (col_h[:, s2] >= 0)
                        np.add.at(qm, (combo_id[kind_h[pair], s1, s2], b_idx[pair],
                                       col_h[pair, s1], col_h[pair, s2]), 1.0)
                pad = np.arange(width)[None, :] >= size[members][:, None]
                held = np.zeros((n_b, width), int) - 1
                held[:, :entry_of.shape[1]] = entry_of[members, :width]
                slots = np.flatnonzero(held >= 0)
                batches.append(_Batch(dyads=unit_dyad[members],
                                      pad=pad[:, :, None] * np.eye(width),
                                      b_moments=bm.reshape(len(combos), -1),
                                      q_moments=qm.reshape(len(combos), -1),
                                      slots=slots, place=place_of[held.ravel()[slots]]))
        has = np.flatnonzero(n_per)
        return cls(combos=combos, batches=tuple(batches), n_random=n_random,
                   n_dyads=len(grid.dyad_start), chunk_starts=first_chunk[has],
                   chunk_dyads=has, n_chunks=int(n_chunks.sum()))

    def apply(self, products: Products, c: np.ndarray, dc: np.ndarray | None) -> Products:
        """``products`` of the complete grid minus the correction, plus ``log|Q_mm|``.

        With ``X = Q_mm^-1 B`` and ``sym(A) = A + A'``::

            d(B' X) = sym(L' X),   L = dB - dQ_mm X / 2,   d log|Q_mm| = tr(Q_mm^-1 dQ_mm).
        """
        r = self.n_random
        t, s1, s2 = self.combos.T
        weights = (c[s1, t] * c[s2, t])[None]
        gradient = dc is not None and products.d_rows is not None
        if dc is not None and gradient:
            weights = np.vstack([weights, dc[:, s1, t] * c[s2, t] + c[s1, t] * dc[:, s2, t]])
            d_rows = np.array(products.d_rows, float)
            d_rest = np.array(products.d_rest, float)
            d_logdet = np.array(products.d_logdet, float)
        rows, rest, logdet = products.rows.copy(), products.rest.copy(), products.logdet.copy()
        m = rows.shape[2]
        k = len(weights) - 1
        n_places = CHUNK * self.n_chunks
        big_bs, xs = np.zeros((n_places, m)), np.zeros((n_places, m))
        ells = np.zeros((k, n_places, m)) if gradient else None
        for b in self.batches:
            n_b, width, _ = b.pad.shape
            big_b = (weights @ b.b_moments).reshape(k + 1, n_b, width, m)
            q_all = (weights @ b.q_moments).reshape(k + 1, n_b, width, width)
            if width == 1:  # single entries: scalars
                q = q_all[0, :, 0, 0]
                x = big_b[0] / q[:, None, None]
                log_q = np.log(q)
                if gradient:
                    dq = q_all[1:, :, 0, 0]                              # (k, b)
                    ell = big_b[1:] - 0.5 * dq[..., None, None] * x[None]
                    d_log_q = dq / q
            else:
                q = q_all[0] + b.pad
                q_inv = np.linalg.inv(q)
                x = q_inv @ big_b[0]
                log_q = np.linalg.slogdet(q)[1]
                if gradient:
                    ell = big_b[1:] - 0.5 * q_all[1:] @ x[None]         # (k, b, width, m)
                    d_log_q = np.einsum("bij,kbji->kb", q_inv, q_all[1:])
            big_bs[b.place] = big_b[0].reshape(-1, m)[b.slots]
            xs[b.place] = x.reshape(-1, m)[b.slots]
            logdet += np.bincount(b.dyads, log_q, self.n_dyads)
            if gradient:
                assert ells is not None
                ells[:, b.place] = ell.reshape(k, -1, m)[:, b.slots]
                for j in range(k):
                    d_logdet[j] += np.bincount(b.dyads, d_log_q[j], self.n_dyads)
        # per dyad: sum over its entries of B' X and sym(L' X), chunk by chunk
        x3 = xs.reshape(-1, CHUNK, m)
        b3 = big_bs.reshape(-1, CHUNK, m)
        rows[self.chunk_dyads] -= np.add.reduceat(
            np.swapaxes(b3[..., :r], 1, 2) @ x3, self.chunk_starts)[:len(self.chunk_dyads)]
        rest -= big_bs[:, r:].T @ xs[:, r:]
        if gradient:
            assert ells is not None
            l4 = ells.reshape(k, -1, CHUNK, m)
            d_corr = np.swapaxes(l4[..., :r], 2, 3) @ x3 + np.swapaxes(x3[..., :r], 1, 2) @ l4
            d_rows[:, self.chunk_dyads] -= np.add.reduceat(d_corr, self.chunk_starts, axis=1)
            half = np.swapaxes(ells[..., r:], 1, 2) @ xs[:, r:]
            d_rest -= half + np.swapaxes(half, 1, 2)
        if not gradient:
            return Products(rows, rest, logdet)
        return Products(rows, rest, logdet, d_rows, d_rest, d_logdet)


@dataclass(frozen=True, eq=False)
class GridProducts:
    """Stencil moments of the complete grid with the missing-entry correction."""

    moments: TypeMoments
    correction: MissingCorrection

    @classmethod
    def of(cls, residual: Residual, layout: ResidualLayout, raw: np.ndarray,
           n_random: int) -> GridProducts:
        grid, grid_raw, missing = complete_grid(layout, raw)
        types = residual.row_types(grid)
        moments = TypeMoments.of(residual, grid, grid_raw, n_random, types)
        return cls(moments, MissingCorrection.of(types, grid, grid_raw, missing, n_random))

    def products(self, residual: Residual, theta: np.ndarray, gradient: bool) -> Products:
        c, dc = residual.coefficients(theta, self.moments.types)
        full = self.moments.products(residual, theta, gradient, (c, dc))
        return self.correction.apply(full, c, dc if gradient else None)
