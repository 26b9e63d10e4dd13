"""Per-dyad cross products of whitened data, ``C_i = U_i' R_i^-1 U_i``, and derivatives.

``U = [Z_T | Z | X | y]``. For stencil-whitened structures the cross products are fixed
combinations of raw moments by row type, computed once per fit::

    (W u)_row = sum_slots c_slot(type) u_link(slot),
    C_i = sum_types sum_(l <= l') c_l c_l' M_ll',  M_ll' = sum_rows u_l u_l'' (+ transpose)

so an evaluation costs O(dyads x types x m^2), whatever the number of sessions. With
``UN x AR(1)`` residuals the stencil has four slots (the row, the partner's row, and both
rows of the previous session) in dyads where both members rated every session; dyads with
single ratings missing take the complete-grid correction of
:mod:`apim.engine.mixed.missing_ratings` (:func:`apim.engine.mixed.products.cross_products`
chooses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from apim.engine.mixed.residuals import Residual, ResidualLayout, RowTypes

CHUNK_ROWS = 200_000


@dataclass(frozen=True, eq=False)
class Products:
    """Whitened cross products ``C_i = U_i' R_i^-1 U_i`` in the form the likelihood uses:
    the random-effect rows of each dyad's ``C_i`` and the sum over dyads of the rest.

    Attributes
    ----------
    rows : (D, r, m) the first ``r`` rows (``Z_T`` and ``Z`` columns) of each ``C_i``
    rest : (m - r, m - r) ``sum_i`` of the ``[X | y]`` block
    logdet : (D,) ``log|R_i|``
    d_rows, d_rest, d_logdet : derivatives (leading axis: residual parameters) or None
    vjp : the derivatives as a vector-Jacobian product instead, or None:
        ``vjp(a_rows, a_rest, a_logdet)`` is the vector over the residual parameters of
        ``<a_rows, d rows> + <a_rest, d rest> + <a_logdet, d logdet>`` (the gradient of
        anything that depends on the parameters only through the products, given its
        derivatives ``a_*`` with respect to them)
    """

    rows: np.ndarray
    rest: np.ndarray
    logdet: np.ndarray
    d_rows: np.ndarray | None = None
    d_rest: np.ndarray | None = None
    d_logdet: np.ndarray | None = None
    vjp: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None


def pair_weights(combos: np.ndarray, c: np.ndarray, dc: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """The weights ``w = c_l1(t) c_l2(t)`` of stencil combinations ``(t, l1, l2)``
    (``combos``, (C, 3)) from the coefficients ``c`` (slots, types) and, given their
    derivatives ``dc`` (k, slots, types), ``dw = dc_l1 c_l2 + c_l1 dc_l2`` (k, C)."""
    t, l1, l2 = combos.T
    w = c[l1, t] * c[l2, t]
    return w, None if dc is None else dc[:, l1, t] * c[l2, t] + c[l1, t] * dc[:, l2, t]


@dataclass(frozen=True, eq=False)
class TypeMoments:
    """Raw moments by row type and pair of stencil slots (see the module docstring).

    For each combination (type, slot l, slot l') with both links present, the
    random-effect rows of ``sum u_l u_l'' (+ its transpose for l != l') are kept per dyad
    as ``(combinations, dyads * r * m)``, so weighting them is one matrix product; the
    ``[X | y]`` block is summed over dyads at once. The moments are accumulated in blocks
    of whole dyads (:data:`CHUNK_ROWS` rows), so the only full-size arrays are the data
    and the result.
    """

    types: RowTypes
    combos: np.ndarray  # (C, 3): type, slot l, slot l'
    rows: np.ndarray    # (C, D*r*m)
    rest: np.ndarray    # (C, u, u)
    counts: np.ndarray  # (D, T) rows per dyad and type
    shape: tuple[int, int, int]

    @classmethod
    def of(cls, residual: Residual, layout: ResidualLayout, raw: np.ndarray,
           n_random: int, types: RowTypes | None = None) -> TypeMoments:
        types = residual.row_types(layout) if types is None else types
        d, m, r = len(layout.dyad_start), raw.shape[1], n_random
        n_types, n_slots = len(types.role), len(types.slots)
        # slot present for a type when every row of that type links somewhere
        absent = np.stack([np.bincount(types.index, weights=types.links[k] < 0,
                                       minlength=n_types) for k in range(n_slots)])
        combos = []
        for t in range(n_types):
            present = np.flatnonzero(absent[:, t] == 0)
            combos += [(t, l1, l2) for i, l1 in enumerate(present) for l2 in present[i:]]
        rows = np.zeros((len(combos), d, r, m))
        rest = np.zeros((len(combos), m - r, m - r))
        starts = np.r_[layout.dyad_start, len(layout.dyad)]
        step = max(1, int(CHUNK_ROWS * d / max(len(layout.dyad), 1)))
        by_type = {t: [(c, l1, l2) for c, (tt, l1, l2) in enumerate(combos) if tt == t]
                   for t in range(n_types)}
        # each type's rows, in row order (so by dyad), found once: a chunk's rows of a
        # type are a slice of them
        of_type = [np.flatnonzero(types.index == t) for t in range(n_types)]
        for lo in range(0, d, step):
            hi = min(lo + step, d)
            for t in range(n_types):
                begin, end = np.searchsorted(of_type[t], (starts[lo], starts[hi]))
                sel = of_type[t][begin:end]
                if len(sel) == 0:
                    continue
                dyad = layout.dyad[sel]  # ascending
                first = np.flatnonzero(np.r_[True, dyad[1:] != dyad[:-1]])
                gathered = {k: np.take(raw, types.links[k][sel], axis=0)
                            for k in {s for _, a, b in by_type[t] for s in (a, b)}}
                # a slot whose random-effect columns are the same in every row of the
                # type (random intercepts: a role's indicator) needs only the sums of
                # its rows per dyad: z (x) sum u instead of sum z (x) u
                fixed = {k: u[0, :r] for k, u in gathered.items()
                         if all(bool((u[:, j] == u[0, j]).all()) for j in range(r))}
                # summed along the rows of the transposed view: the same sums, in the
                # same order, about twice as fast as along axis 0
                sums = {k: np.add.reduceat(gathered[k].T, first, axis=1).T for k in fixed}
                for c, l1, l2 in by_type[t]:
                    u1, u2 = gathered[l1], gathered[l2]
                    if l1 in fixed and l2 in fixed:
                        outer = fixed[l1][None, :, None] * sums[l2][:, None, :]
                        if l1 != l2:
                            outer += fixed[l2][None, :, None] * sums[l1][:, None, :]
                        rows[c, dyad[first]] += outer
                    else:
                        outer = np.einsum("ni,nj->nij", u1[:, :r], u2)
                        if l1 != l2:
                            outer += np.einsum("ni,nj->nij", u2[:, :r], u1)
                        rows[c, dyad[first]] += np.add.reduceat(outer, first, axis=0)
                    part = u1[:, r:].T @ u2[:, r:]
                    rest[c] += part if l1 == l2 else part + part.T
        counts = np.bincount(layout.dyad * n_types + types.index,
                             minlength=d * n_types).reshape(d, n_types).astype(float)
        return cls(types=types, combos=np.array(combos).reshape(-1, 3),
                   rows=rows.reshape(len(combos), d * r * m), rest=rest,
                   counts=counts, shape=(d, r, m))

    def products(self, residual: Residual, theta: np.ndarray, gradient: bool,
                 coefficients: tuple[np.ndarray, np.ndarray] | None = None) -> Products:
        """Whitened cross products, ``log|R_i|`` and their derivatives (``coefficients``:
        the stencil's, when the caller has them already)."""
        c, dc = coefficients or residual.coefficients(theta, self.types)
        logdet = -2 * self.counts @ np.log(c[0])
        w, dw = pair_weights(self.combos, c, dc if gradient else None)
        weights = w[None] if dw is None else np.vstack([w, dw])
        d, r, m = self.shape
        rows = (weights @ self.rows).reshape(len(weights), d, r, m)
        rest = np.tensordot(weights, self.rest, axes=1)
        if not gradient:
            return Products(rows[0], rest[0], logdet)
        dlogdet = -2 * (self.counts @ (dc[:, 0] / c[0]).T).T
        return Products(rows[0], rest[0], logdet, rows[1:], rest[1:], dlogdet)

    def vjp(self, c: np.ndarray, dc: np.ndarray
            ) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        """The derivatives of :meth:`products` at the coefficients ``c, dc`` as a
        vector-Jacobian product (see :class:`Products`): the products are linear in the
        weights, so ``<a, d rows_k> = dw_k . (rows a)``."""
        _, d_weights = pair_weights(self.combos, c, dc)                 # (k, C)
        assert d_weights is not None
        d_log = -2 * dc[:, 0] / c[0]                                       # (k, types)
        rows, rest = self.rows, self.rest.reshape(len(self.rest), -1)

        def vjp(a_rows: np.ndarray, a_rest: np.ndarray, a_logdet: np.ndarray
                ) -> np.ndarray:
            return (d_weights @ (rows @ a_rows.ravel() + rest @ a_rest.ravel())
                    + d_log @ (a_logdet @ self.counts))
        return vjp
