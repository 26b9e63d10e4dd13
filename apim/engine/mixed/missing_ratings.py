"""``UN x AR(1)`` residuals with single missing ratings, exactly, by a Schur complement.

Within a dyad, take the *complete* series: both members at every session at which at least
one of them rated (a session neither rated is a gap, which the AR(1) factor ``phi^gap``
already marginalises exactly). Its precision ``Q = R^-1 = W'W`` is the banded Kronecker
stencil of :mod:`apim.engine.mixed.residuals`. With ``o`` the observed and ``m`` the missing
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

``Q_mm`` is block diagonal over *units* of missing entries that share a whitened row (with
``UN x AR(1)``: the same or neighbouring sessions); most units are one entry, a scalar.
Per evaluation: one sparse matrix product gives ``B``, the diagonal of ``Q_mm`` and their
derivatives for every entry; units of several entries are solved in batches (padded to a
power of two; pairs in closed form); the per-dyad sums are batched products over chunks of
each dyad's entries, summed by a fixed sparse matrix. ``B`` and ``Q_mm`` are linear in the
weights ``w`` (products of stencil coefficients), so the gradient of anything that depends
on the products can also be had backwards (:meth:`MissingCorrection.adjoint`): contract its
derivatives with respect to the products with ``X`` per entry, and then with the moments'
transpose and ``dw``, one product, without forming ``dB``, ``dX`` or their per-dyad sums;
the optimizer uses that (about 0.6 of the cost of an evaluation with forward derivatives).
The dense Cholesky path (:mod:`dense_residual`) stays as the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from scipy import sparse  # this module is imported only when ratings are missing
from scipy.sparse.csgraph import connected_components

from apim.engine.mixed.moments import Products, TypeMoments, pair_weights
from apim.engine.mixed.residuals import Residual, ResidualLayout, RowTypes

__all__ = ["complete_grid", "MissingCorrection", "GridProducts"]

BATCH_ENTRIES = 100_000  # padded entries per batch of units
#: a batch of units solved: places, log|Q_b|, Q_b^-1, X, and with derivatives L, tr(Q^-1 dQ)
_Solved = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None,
                np.ndarray | None]


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
    overhead = 1_000  # padded entries worth one more batch (measured: wider blocks cost more)
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
    first = hit[np.arange(len(hit)), np.argmax(hit >= 0, axis=1)]
    ok = hit >= 0
    a = np.broadcast_to(first[:, None], hit.shape)[ok]
    graph = sparse.coo_array((np.ones(len(a)), (a, hit[ok])), shape=(n_entries, n_entries))
    return connected_components(graph, directed=False)[1]


def _moments(place: np.ndarray, combo: np.ndarray, row: np.ndarray, diagonal: np.ndarray,
             data: np.ndarray, n_places: int, n_combos: int) -> sparse.csr_array:
    """The moments as a sparse ``(places * (m + 1), combos)`` matrix: at row ``place *
    (m + 1) + col`` the sum over the instances with that place and combination of
    ``data[row, col]`` (``col = m``: of ``diagonal``). Built in CSR order directly (sorted
    by place and combination; the sums by a sparse product with ``data``, without a copy
    of its rows per instance): a place's ``m + 1`` rows share its combinations."""
    m1 = data.shape[1] + 1
    key = place * n_combos + combo
    order = np.argsort(key, kind="stable")
    new = np.r_[True, key[order[1:]] != key[order[:-1]]]
    group = np.cumsum(new) - 1
    n_keys = int(group[-1]) + 1
    summed = np.empty((n_keys, m1))
    summed[:, :-1] = sparse.csr_array((np.ones(len(key)), (group, row[order])),
                                      shape=(n_keys, len(data))) @ data  # sums repeats
    summed[:, -1] = np.bincount(group, diagonal[order], minlength=n_keys)
    key = key[order[new]]
    k_place = key // n_combos
    per_place = np.bincount(k_place, minlength=n_places)
    indptr = np.r_[0, np.cumsum(np.repeat(per_place, m1))]
    local = np.arange(len(key)) - (np.cumsum(per_place) - per_place)[k_place]
    at = indptr[:-1][k_place[:, None] * m1 + np.arange(m1)] + local[:, None]
    data = np.empty(indptr[-1])
    indices = np.empty(indptr[-1], dtype=np.int32)
    data[at] = summed
    indices[at] = (key % n_combos)[:, None]
    out = sparse.csr_array((data, indices, indptr), shape=(n_places * m1, n_combos))
    out.eliminate_zeros()  # e.g. the columns of the other role
    return out


def _chunk_size(per_dyad: np.ndarray) -> int:
    """Entries of a dyad per batched product: few padding slots, few chunks."""
    per_dyad = per_dyad[per_dyad > 0]
    return min((2, 4, 8, 16), key=lambda k: int((-(-per_dyad // k) * (k + 1)).sum()))


@dataclass(frozen=True, eq=False)
class _Block:
    """Units (blocks of ``Q_mm`` with more than one entry) padded to ``width`` entries:
    where their entries are among the places and the moments of their ``Q_mm`` blocks."""

    places: np.ndarray     # (b, width) place of each entry (padding: the last, empty place)
    pad: np.ndarray        # (b, width, width) 1 on the diagonal at padding slots
    q_moments: sparse.csr_array  # (b * width * width, combos)

    @cached_property
    def q_moments_t(self) -> sparse.csr_array:
        """``q_moments`` transposed, for the adjoint's products."""
        return self.q_moments.T.tocsr()

    def solve(self, big_b: np.ndarray, w_t: np.ndarray, gradient: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None,
                         np.ndarray | None]:
        """``log|Q_b|``, ``Q_b^-1`` (b, width, width), ``X = Q_b^-1 B`` (b, width, m)
        and, with ``gradient``, ``L = dB - dQ_b X / 2`` (k, b, width, m) and
        ``tr(Q_b^-1 dQ_b)`` (k, b) for the units (``big_b``: B and its derivatives by
        place, (places, k + 1, m)). Pairs, the common case, in closed form."""
        n_b, width = self.places.shape
        kk = w_t.shape[1]
        q_all = np.moveaxis((self.q_moments @ w_t).reshape(n_b, width, width, kk), -1, 0)
        q_b = q_all[0] + self.pad
        if width == 2:
            det = q_b[:, 0, 0] * q_b[:, 1, 1] - q_b[:, 0, 1] * q_b[:, 1, 0]
            q_inv = q_b[:, ::-1, ::-1] * np.array([[1.0, -1.0], [-1.0, 1.0]])
            q_inv /= det[:, None, None]
            log_det = np.log(det)
        else:
            q_inv = np.linalg.inv(q_b)
            log_det = np.linalg.slogdet(q_b)[1]
        gathered = np.moveaxis(big_b[self.places], 2, 0)      # (k + 1, b, width, m)
        x_b = q_inv @ gathered[0]
        if not gradient:
            return log_det, q_inv, x_b, None, None
        dq = q_all[1:]
        ell = gathered[1:] - 0.5 * dq @ x_b[None]
        return log_det, q_inv, x_b, ell, np.einsum("bij,kbji->kb", q_inv, dq)


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
    the parameters, computed once, as for the stencil itself (:class:`TypeMoments`): one
    (sparse: an entry meets few combinations) matrix product gives ``B``, the diagonal of
    ``Q_mm`` and their derivatives for all entries at once. The entries sit at *places*:
    dyad by dyad in chunks of ``chunk`` (padded with empty places), so the per-dyad sums
    are batched matrix products.
    """

    combos: np.ndarray     # (C, 3): type, slot touching the missing entry, other slot
    moments: sparse.csr_array  # (places * (m + 1), C): by place B, then diag(Q_mm)
    empty: np.ndarray      # (places,) 1 at empty places (their Q_mm diagonal)
    single: np.ndarray     # (places,) 1 at entries that are a unit alone
    blocks: tuple[_Block, ...]
    n_random: int
    n_dyads: int
    chunk: int
    chunk_sums: sparse.csr_array  # (dyads, chunks): 1 where the dyad holds the chunk
    place_sums: sparse.csr_array  # (dyads, places): 1 where the dyad holds the place
    place_dyad: np.ndarray  # (places,) the dyad of each place (0 at empty places)

    @classmethod
    def of(cls, types: RowTypes, grid: ResidualLayout, grid_raw: np.ndarray,
           missing: np.ndarray, n_random: int) -> MissingCorrection:
        links = types.links
        n_slots, n_types = len(types.slots), len(types.role)
        m, n_dyads = grid_raw.shape[1], len(grid.dyad_start)
        is_missing = np.zeros(len(grid.dyad), bool)
        is_missing[missing] = True
        # incidences: (row, slot) -> the missing entry it touches, or -1
        touching = np.flatnonzero(np.any((links >= 0) & is_missing[np.maximum(links, 0)], 0))
        hit = np.full((len(touching), n_slots), -1)
        for sl in range(n_slots):
            target = links[sl, touching]
            on = (target >= 0) & is_missing[np.maximum(target, 0)]
            hit[on, sl] = np.searchsorted(missing, target[on])
        kind = types.index[touching]
        present = links[:, touching] >= 0                      # (slots, rows)
        used = np.zeros((n_types, n_slots, n_slots), bool)
        for s1 in range(n_slots):
            for s2 in range(n_slots):
                used[kind[(hit[:, s1] >= 0) & present[s2]], s1, s2] = True
        # c_l c_l' is symmetric in (l, l'): both orders share one moment
        used = np.triu(used | np.swapaxes(used, 1, 2))
        combos = np.argwhere(used)
        combo_id = np.full(used.shape, -1)
        combo_id[tuple(combos.T)] = np.arange(len(combos))
        combo_id = np.maximum(combo_id, np.swapaxes(combo_id, 1, 2))
        n_c = len(combos)
        # places: the entries dyad by dyad in chunks, then one empty chunk
        e_dyad = grid.dyad[missing]  # ascending
        n_per = np.bincount(e_dyad, minlength=n_dyads)
        chunk = _chunk_size(n_per)
        n_chunks = -(-n_per // chunk)
        first_chunk = np.cumsum(n_chunks) - n_chunks
        place = chunk * first_chunk[e_dyad] + np.arange(len(missing)) \
            - np.searchsorted(e_dyad, e_dyad)
        n_places = chunk * (int(n_chunks.sum()) + 1)
        # instances: whitened row j touches entry hit[j, s1] through slot s1 and reaches
        # data row links[s2, j] (or entry hit[j, s2]) through slot s2
        instances = []  # (place, combination, data row, on the diagonal of Q_mm)
        pairs = []  # (combo, entry, entry) of off-diagonal Q_mm
        for s1 in range(n_slots):
            on = hit[:, s1] >= 0
            for s2 in range(n_slots):
                both = on & present[s2]
                cid, e1, e2 = combo_id[kind[both], s1, s2], hit[both, s1], hit[both, s2]
                instances.append((place[e1], cid, links[s2, touching[both]], e1 == e2))
                off = (e2 >= 0) & (e1 != e2)
                pairs.append((cid[off], e1[off], e2[off]))
        at, combo, row, diagonal = (np.concatenate(x) for x in zip(*instances))
        moments = _moments(at, combo, row, diagonal, grid_raw, n_places, n_c)
        empty = np.ones(n_places)
        empty[place] = 0.0
        # units: connected components of the entries; those of more than one in blocks
        unit = _components(hit, len(missing))
        n_units = int(unit.max()) + 1
        size = np.bincount(unit, minlength=n_units)
        single = np.zeros(n_places)
        single[place[size[unit] == 1]] = 1.0
        order = np.argsort(unit, kind="stable")
        pos = np.empty(len(missing), int)
        pos[order] = np.arange(len(missing)) - np.repeat(np.cumsum(size) - size, size)
        cid, e1, e2 = (np.concatenate(x) for x in zip(*pairs))
        multi = np.flatnonzero(size > 1)
        width_of = 2 ** np.ceil(np.log2(size[multi])).astype(int)
        blocks = []
        for width, group in _merged_groups(multi, width_of):
            step = max(1, BATCH_ENTRIES // width)
            for lo in range(0, len(group), step):
                members = group[lo:lo + step]
                local = np.full(n_units, -1)
                local[members] = np.arange(len(members))
                places = np.full((len(members), width), n_places - 1)
                mine = np.flatnonzero(local[unit] >= 0)
                at_unit = local[unit[mine]]
                places[at_unit, pos[mine]] = place[mine]
                diag = moments[place[mine] * (m + 1) + m].tocoo()  # diag(Q_mm)
                sel = local[unit[e1]] >= 0
                flat = np.r_[(at_unit * width * width + pos[mine] * (width + 1))[diag.row],
                             (local[unit[e1[sel]]] * width + pos[e1[sel]]) * width
                             + pos[e2[sel]]]
                q_moments = sparse.coo_array(
                    (np.r_[diag.data, np.ones(int(sel.sum()))], (flat, np.r_[diag.col, cid[sel]])),
                    shape=(len(members) * width * width, n_c)).tocsr()
                pad = np.arange(width)[None, :] >= size[members][:, None]
                blocks.append(_Block(places=places, pad=pad[:, :, None] * np.eye(width),
                                     q_moments=q_moments))
        has = np.flatnonzero(n_per)
        return cls(combos=combos, moments=moments, empty=empty,
                   single=single, blocks=tuple(blocks), n_random=n_random,
                   n_dyads=n_dyads, chunk=chunk,
                   place_sums=sparse.csr_array((np.ones(len(place)), (e_dyad, place)),
                                               shape=(n_dyads, n_places)),
                   place_dyad=np.bincount(place, e_dyad, minlength=n_places).astype(int),
                   chunk_sums=sparse.csr_array(
                       (np.ones(int(n_chunks.sum())),
                        (np.repeat(has, n_chunks[has]),
                         np.arange(int(n_chunks.sum())))),
                       shape=(n_dyads, int(n_chunks.sum()) + 1)))

    @cached_property
    def moments_t(self) -> sparse.csr_array:
        """``moments`` transposed, for the adjoint's products."""
        return self.moments.T.tocsr()

    def _entries(self, w_t: np.ndarray, m: int, gradient: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                            list[_Solved]]:
        """B (and its derivatives) by place, (places, k + 1, m), the places dyad by dyad in
        chunks (the last chunk empty); diag(Q_mm) (places, k + 1); its value plus one at
        the empty places; ``X = Q_mm^-1 B``; ``log|Q_mm|`` by place; the units' solutions
        (:meth:`_Block.solve`, with their places first)."""
        n_places, kk = len(self.empty), w_t.shape[1]
        both = (self.moments @ w_t).reshape(n_places, m + 1, kk)
        big_b = np.ascontiguousarray(both[:, :m].transpose(0, 2, 1))
        q_diag = both[:, m]
        q = q_diag[:, 0] + self.empty
        log_q = self.single * np.log(q)
        solved = [(blk.places, *blk.solve(big_b, w_t, gradient)) for blk in self.blocks]
        x = big_b[:, 0] / q[:, None]
        for places, log_det, _, x_b, *_ in solved:
            log_q[places[:, 0]] += log_det
            x[places] = x_b
        return big_b, q_diag, q, x, log_q, solved

    def _corrected(self, products: Products, b0: np.ndarray, x: np.ndarray,
                   log_q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The products minus ``B' X`` per dyad (its first ``r`` rows, chunk by chunk in
        batched products) and over all dyads (the ``[X | y]`` block), plus
        ``log|Q_mm|``."""
        r, (d, _, m), ch = self.n_random, products.rows.shape, self.chunk
        corr = np.swapaxes(b0.reshape(-1, ch, m)[..., :r], 1, 2) @ x.reshape(-1, ch, m)
        rows = products.rows - (self.chunk_sums @ corr.reshape(len(corr), -1)).reshape(d, r, m)
        rest = products.rest - b0[:, r:].T @ x[:, r:]
        return rows, rest, products.logdet + self.place_sums @ log_q

    def apply(self, products: Products, c: np.ndarray, dc: np.ndarray | None) -> Products:
        """``products`` of the complete grid minus the correction, plus ``log|Q_mm|``.

        With ``X = Q_mm^-1 B`` and ``sym(A) = A + A'``::

            d(B' X) = sym(L' X),   L = dB - dQ_mm X / 2,   d log|Q_mm| = tr(Q_mm^-1 dQ_mm).
        """
        r = self.n_random
        gradient = dc is not None and products.d_rows is not None
        w, dw = pair_weights(self.combos, c, dc if gradient else None)
        weights = w[None] if dw is None else np.vstack([w, dw])
        m = products.rows.shape[2]
        big_b, q_diag, q, x, log_q, solved = self._entries(
            np.ascontiguousarray(weights.T), m, gradient)
        rows, rest, logdet = self._corrected(products, big_b[:, 0], x, log_q)
        if not gradient:
            return Products(rows, rest, logdet)
        assert products.d_rows is not None and products.d_rest is not None
        assert products.d_logdet is not None
        ell = big_b[:, 1:] - (0.5 * q_diag[:, 1:, None]) * x[:, None]   # L (places, k, m)
        d_log_q = self.single[:, None] * q_diag[:, 1:] / q[:, None]     # (places, k)
        for places, _, _, _, ell_b, d_log_b in solved:
            assert ell_b is not None and d_log_b is not None
            ell[places] = np.moveaxis(ell_b, 0, 2)
            d_log_q[places[:, 0]] += d_log_b.T
        # the first r rows of sym(L' X) per dyad, x_r' L + L_r' x, chunk by chunk
        sums, d, ch, (n_places, k, _) = self.chunk_sums, self.n_dyads, self.chunk, ell.shape
        x3 = x.reshape(-1, ch, m)                                     # (chunks, ch, m)
        n_ch = len(x3)
        part_a = np.swapaxes(x3[..., :r], 1, 2) @ ell.reshape(n_ch, ch, k * m)
        part_b = np.swapaxes(ell[:, :, :r].reshape(n_ch, ch, k * r), 1, 2) @ x3
        sym = (sums @ part_a.reshape(n_ch, -1)).reshape(d, r, k, m)
        sym += np.swapaxes((sums @ part_b.reshape(n_ch, -1)).reshape(d, k, r, m), 1, 2)
        d_rows = products.d_rows - sym.transpose(2, 0, 1, 3)
        # sum_e L_e' x_e over all entries for the [X | y] block
        half = (ell.reshape(n_places, -1).T @ x).reshape(k, m, m)[:, r:, r:]
        d_rest = products.d_rest - half - np.swapaxes(half, 1, 2)
        d_logdet = products.d_logdet + (self.place_sums @ d_log_q).T
        return Products(rows, rest, logdet, d_rows, d_rest, d_logdet)

    def adjoint(self, products: Products, c: np.ndarray, dc: np.ndarray) -> Products:
        """As :meth:`apply`, with the derivatives as a vector-Jacobian product (added to
        ``products.vjp``, the stencil's): no derivative of ``B``, ``X`` or the per-dyad
        sums is formed. Given ``a_rows``, ``a_rest``, ``a_logdet`` (see
        :class:`~apim.engine.mixed.moments.Products`), each entry gets the vector
        ``h = a_d' x_r + a_d x + (a_rest + a_rest') x`` (each term in the columns it
        reaches) and::

            <a, d(correction)> = sum_e L_e . h_e - a_logdet tr(Q^-1 dQ)
                = sum_e dB_e . h_e - sum_(i,j in a unit) dQ_ij (x_j . h_i / 2 + a_logdet Q^-1_ji),

        linear in the derivatives of the weights through the (fixed) moments: one
        product with the moments' transpose."""
        r, m = self.n_random, products.rows.shape[2]
        w, d_weights = pair_weights(self.combos, c, dc)                # dw: (k, C)
        assert d_weights is not None
        big_b, _, q, x, log_q, solved = self._entries(w[:, None], m, False)
        rows, rest, logdet = self._corrected(products, big_b[:, 0], x, log_q)
        stencil = products.vjp

        def vjp(a_rows: np.ndarray, a_rest: np.ndarray, a_logdet: np.ndarray
                ) -> np.ndarray:
            a_place = a_rows[self.place_dyad]                           # (places, r, m)
            h = np.einsum("pam,pa->pm", a_place, x[:, :r])
            h[:, :r] += np.einsum("pam,pm->pa", a_place, x)
            h[:, r:] += x[:, r:] @ (a_rest + a_rest.T)
            l_place = a_logdet[self.place_dyad]
            v = np.empty((len(q), m + 1))
            v[:, :m] = -h
            v[:, m] = self.single * (0.5 * np.einsum("pm,pm->p", x, h) + l_place / q)
            out = self.moments_t @ v.ravel()
            for blk, (places, _, q_inv, *_) in zip(self.blocks, solved):
                z = 0.5 * h[places] @ np.swapaxes(x[places], 1, 2) \
                    + l_place[places[:, 0], None, None] * np.swapaxes(q_inv, 1, 2)
                out += blk.q_moments_t @ z.ravel()
            grad = d_weights @ out
            return grad if stencil is None else grad + stencil(a_rows, a_rest, a_logdet)

        return Products(rows, rest, logdet, vjp=vjp)


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

    def adjoint_products(self, residual: Residual, theta: np.ndarray) -> Products:
        """The products with their derivatives as a vector-Jacobian product
        (``Products.vjp``): the gradient of the likelihood at about a third of the cost of
        :meth:`products` with derivatives, where the derivatives of ``X'V^-1 X`` are not
        needed."""
        c, dc = residual.coefficients(theta, self.moments.types)
        full = self.moments.products(residual, theta, False, (c, dc))
        return self.correction.adjoint(replace(full, vjp=self.moments.vjp(c, dc)), c, dc)
