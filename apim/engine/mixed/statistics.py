"""Sufficient statistics of a random-intercept mixed model, summed block by block of dyads,
and the fit from them: the engine's out-of-core and distributed path.

The grouped likelihood (:mod:`apim.engine.mixed.grouped`) needs, besides the structure,
only sums over dyads: per stencil combination ``c`` (row type, pair of stencil slots) the
``[X | y]`` block ``rest_c`` of ``sum_i U_i' ... U_i``, the rows of each type, and per group
``g`` of dyads with the same random-effect blocks ``ZZ_c`` the number of dyads and the
moments ``M_g``. All of them are sums over dyads, so blocks of whole dyads (a file read in
pieces, the partitions of a data set on the workers of a cluster) each give their
:class:`DyadStatistics`, which add up (:meth:`DyadStatistics.merge`) to those of all the
data, whatever the order; :func:`fit_statistics` then fits the model from them with the
engine's optimiser. Only these statistics travel between processes: their size depends on
the number of groups (distinct patterns of rows per dyad), not on the number of dyads.

Keys are global, so that blocks agree: a row type by its code (role, partner present,
earlier session present, gap), a combination by ``(code, slot, slot)``, a group by the
rows of each type and the ``ZZ`` blocks of its dyads. The statistics are in the units of
the data; the fit standardises them as :mod:`apim.engine.mixed.scaling` standardises the
columns (each statistic is a product of two columns, so it is divided by their scales),
from the sums and sums of squares kept alongside.

What reduces to sums over dyads: dyad-level random effects whose blocks repeat across
dyads (random intercepts: the groups are the patterns of rows per dyad; random slopes,
whose blocks differ from dyad to dyad, keep per-dyad rows instead:
:mod:`apim.engine.mixed.dyad_store`, fitted by :func:`fit_statistics` too), every residual
structure whose stencil holds on the rows present (not ``UN x AR(1)`` with single ratings
missing), no therapist level (its random effect couples the dyads of a therapist). Others
are refused with :class:`~apim.errors.SpecError`.

Examples
--------
>>> import numpy as np
>>> from apim.engine import MixedModel, Unstructured, Residual, estimate_mixed
>>> rng = np.random.default_rng(1)
>>> dyad = np.repeat(np.arange(60), 8); role = np.tile([0, 1], 240)
>>> session = np.tile(np.repeat([1, 2, 3, 4], 2), 60)
>>> X = np.column_stack([1 - role, role, rng.normal(size=480)])
>>> y = X @ [1.0, 2.0, 0.5] + rng.normal(size=(60, 2))[dyad, role] + rng.normal(size=480)
>>> def model(rows):
...     return MixedModel(y=y[rows], X=X[rows], dyad=dyad[rows], role=role[rows],
...                       session=session[rows], Z=X[rows, :2], random=Unstructured(2),
...                       residual=Residual.named("un"))
>>> whole = estimate_mixed(model(slice(None)))
>>> summed = (DyadStatistics.of(model(slice(0, 200)))
...           .merge(DyadStatistics.of(model(slice(200, 480)))))
>>> fit = fit_statistics(summed, model(slice(0, 8)))
>>> bool(abs(fit.loglik - whole.loglik) < 1e-8), bool(np.allclose(fit.coef, whole.coef))
(True, True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from apim.engine.control import FitControl
from apim.engine.mixed.df import satterthwaite_df
from apim.engine.mixed.estimate import MixedProblem, _differenced_xvx
from apim.engine.mixed.grouped import MAX_BYTES, GroupedMoments
from apim.engine.mixed.likelihood import Evaluation
from apim.engine.mixed.model import MixedModel, Prepared
from apim.engine.mixed.moments import TypeMoments
from apim.engine.mixed.products import ProductSource
from apim.engine.mixed.residuals import ResidualLayout, RowTypes
from apim.engine.mixed.results import _boundary, _natural_table
from apim.engine.mixed.scaling import Scaling
from apim.engine.optimize import maximize
from apim.engine.parameters import VarianceParameter, parameter_table
from apim.engine.threads import one_blas_thread
from apim.errors import RankDeficientError, SpecError

__all__ = ["DyadStatistics", "StatisticsFit", "Summed", "fit_statistics", "check_summable",
           "stencil_moments", "column_sums", "check_same_model", "added_counts"]

Combo = tuple[int, int, int]  # (type code, slot, slot)
GroupKey = tuple[object, ...]  # ((type code, rows) per type ..., ZZ bytes)


def check_summable(model: MixedModel) -> None:
    """Refuse a model whose likelihood does not reduce to sums over dyads.

    Raises
    ------
    SpecError
        For a therapist level or no dyad-level random effect.
    """
    if model.therapist is not None:
        raise SpecError("a therapist level couples the dyads of a therapist, so its "
                        "likelihood is not a sum over dyads: fit it in memory (without "
                        "--out-of-core / a scheduler)")
    if model.Z is None or model.random is None:
        raise SpecError("the out-of-core fit needs random intercepts or slopes "
                        "(random='intercepts' or 'slopes'); fit a model without random "
                        "effects in memory")


def _type_codes(types: RowTypes) -> np.ndarray:
    """The global code of each of a block's row types (what its coefficients depend on)."""
    return (types.role.astype(np.int64) + 2 * types.paired + 4 * types.has_prev
            + 8 * types.gap.astype(np.int64))


@dataclass(frozen=True, eq=False)
class DyadStatistics:
    """The sums over dyads the random-intercept likelihood needs (see the module docstring).

    Attributes
    ----------
    residual : the residual structure's name
    slots : its stencil slots
    p, q : numbers of fixed-effect and random-effect columns
    rest : combination -> ``(u, u)`` sum of the ``[X | y]`` block (``u = p + 1``)
    groups : group key -> (number of dyads, its combinations, ``ZZ`` (C, q, q), ``M``)
    type_rows : type code -> rows of that type
    n_rows, n_dyads : counts
    sums : ``(sum y, sum y^2, sum X^2 by column, sum Z^2 by column)`` for the scales
    """

    residual: str
    slots: tuple[str, ...]
    p: int
    q: int
    rest: dict[Combo, np.ndarray] = field(repr=False)
    groups: dict[GroupKey, tuple[int, tuple[Combo, ...], np.ndarray, np.ndarray]] = \
        field(repr=False)
    type_rows: dict[int, float] = field(repr=False)
    n_rows: int
    n_dyads: int
    sums: tuple[float, float, np.ndarray, np.ndarray] = field(repr=False)

    @classmethod
    @one_blas_thread
    def of(cls, model: MixedModel) -> DyadStatistics:
        """The statistics of the dyads of ``model`` (all their rows: a dyad must not be
        split between blocks)."""
        moments = stencil_moments(model)
        d, r, m = moments.shape
        codes = _type_codes(moments.types)
        combos = [(int(codes[t]), int(a), int(b)) for t, a, b in moments.combos]
        rows = moments.rows.reshape(len(combos), d, r, m)
        rest = {c: moments.rest[k].copy() for k, c in enumerate(combos)}
        counts = moments.counts  # (D, T)
        # a dyad's group: its rows of each type and its ZZ blocks
        zz = np.ascontiguousarray(np.moveaxis(rows[..., :r], 1, 0).reshape(d, -1))
        key = np.concatenate([counts, zz], axis=1)
        _, first, local, size = np.unique(key, axis=0, return_index=True,
                                          return_inverse=True, return_counts=True)
        local = local.ravel()
        order = np.argsort(local, kind="stable")
        edges = np.r_[0, np.cumsum(size)]
        groups: dict[GroupKey, tuple[int, tuple[Combo, ...], np.ndarray, np.ndarray]] = {}
        for g, i in enumerate(first):
            present = np.flatnonzero(counts[i] > 0)
            mine = [k for k, (t, _, _) in enumerate(moments.combos) if counts[i, t] > 0]
            dyads = order[edges[g]:edges[g + 1]]
            part = np.moveaxis(rows[mine][:, dyads, :, r:], 1, 0).reshape(len(dyads), -1)
            block_zz = rows[mine, i, :, :r]
            gkey: GroupKey = (*((int(codes[t]), int(counts[i, t])) for t in present),
                              block_zz.tobytes())
            groups[gkey] = (int(size[g]), tuple(combos[k] for k in mine), block_zz.copy(),
                            part.T @ part)
        type_rows = {int(c): float(n) for c, n in zip(codes, counts.sum(0))}
        sums = column_sums(model)
        return cls(residual=model.residual.name, slots=tuple(moments.types.slots),
                   p=len(sums[2]), q=len(sums[3]), rest=rest, groups=groups,
                   type_rows=type_rows, n_rows=len(model.y), n_dyads=d, sums=sums)

    def merge(self, other: DyadStatistics) -> DyadStatistics:
        """The statistics of both blocks of dyads (which must not share a dyad)."""
        check_same_model(self, other)
        rest = {c: v.copy() for c, v in self.rest.items()}
        for c, v in other.rest.items():
            rest[c] = rest[c] + v if c in rest else v.copy()
        groups = dict(self.groups)
        for k, (size, combos, zz, m) in other.groups.items():
            if k in groups:
                size0, combos0, zz0, m0 = groups[k]
                groups[k] = (size0 + size, combos0, zz0, m0 + m)
            else:
                groups[k] = (size, combos, zz, m)
        type_rows = dict(self.type_rows)
        for code, rows in other.type_rows.items():
            type_rows[code] = type_rows.get(code, 0.0) + rows
        return replace(self, rest=rest, groups=groups, type_rows=type_rows,
                       **added_counts(self, other))

    def transformed(self, A: np.ndarray) -> DyadStatistics:
        """The statistics of the model with fixed-effect columns ``X A`` instead of ``X``
        (``A``: (p, p)); exact, since every statistic is a product of two columns.

        A block built with provisional centres of the between parts (zero) gives, with
        the ``A`` that maps its columns to those centred on the whole file's centres,
        the statistics the whole file's centres would have given: one pass over the file
        instead of two (:mod:`apim.model.out_of_core`).
        """
        A = np.asarray(A, float)
        if A.shape != (self.p, self.p):
            raise SpecError(f"A must be {self.p} x {self.p}, not {A.shape}")
        u, q = self.p + 1, self.q
        a_u = np.zeros((u, u))
        a_u[:self.p, :self.p], a_u[self.p, self.p] = A, 1.0
        rest = {c: a_u.T @ v @ a_u for c, v in self.rest.items()}
        groups = {}
        for k, (size, combos, zz, m) in self.groups.items():
            n = len(combos) * q
            blocks = m.reshape(n, u, n, u)
            m_new = np.einsum("aibj,ik,jl->akbl", blocks, a_u, a_u, optimize=True)
            groups[k] = (size, combos, zz, m_new.reshape(n * u, n * u))
        # sums of squares of the new columns: the diagonal of A' X'X A, X'X the sum of
        # the unweighted moments (each row with itself: slots 0, 0)
        gram = sum(v for (_, a, b), v in self.rest.items() if a == 0 and b == 0)
        xx = np.asarray(gram)[:self.p, :self.p]
        sum_x2 = np.einsum("ij,ik,kj->j", A, xx, A)
        s = self.sums
        return replace(self, rest=rest, groups=groups, sums=(s[0], s[1], sum_x2, s[3]))

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays (what travels from a worker)."""
        return (sum(v.nbytes for v in self.rest.values())
                + sum(zz.nbytes + m.nbytes for _, _, zz, m in self.groups.values()))

    def engine_form(self, scale_u: np.ndarray, scale_z: np.ndarray
                    ) -> tuple[TypeMoments, ProductSource, GroupedMoments | None]:
        """The standardised statistics in the engine's form (see :class:`Summed`)."""
        moments, grouped = _grouped(self, scale_u, scale_z)
        return moments, moments, grouped


class Summed(Protocol):
    """What :func:`fit_statistics` fits from: :class:`DyadStatistics`, or the per-dyad
    store of random-slope models (:class:`apim.engine.mixed.dyad_store.DyadStore`)."""

    @property
    def residual(self) -> str: ...
    @property
    def p(self) -> int: ...
    @property
    def q(self) -> int: ...
    @property
    def n_rows(self) -> int: ...
    @property
    def n_dyads(self) -> int: ...
    @property
    def sums(self) -> tuple[float, float, np.ndarray, np.ndarray]: ...

    def engine_form(self, scale_u: np.ndarray, scale_z: np.ndarray
                    ) -> tuple[TypeMoments, ProductSource, GroupedMoments | None]:
        """Standardised by the columns' scales (``scale_u`` of ``[X | y]``, ``scale_z``
        of ``Z``): the summed moments by (global) combination (``rest``, ``combos``,
        the row types; what the rank check and the default start values read), the
        product source of the likelihood, and the grouped moments (None: the per-dyad
        path)."""
        ...


def check_same_model(one: Summed, other: Summed) -> None:
    """Refuse to merge the statistics of blocks built with different models."""
    if (one.residual, one.p, one.q) != (other.residual, other.p, other.q):
        raise SpecError("the blocks were built with different models (columns or "
                        "residual structure); build every block with the same spec")


def added_counts(one: Summed, other: Summed) -> dict[str, Any]:
    """The rows, dyads and column sums of two blocks together (for ``replace``)."""
    s, o = one.sums, other.sums
    return {"n_rows": one.n_rows + other.n_rows, "n_dyads": one.n_dyads + other.n_dyads,
            "sums": (s[0] + o[0], s[1] + o[1], s[2] + o[2], s[3] + o[3])}


def stencil_moments(model: MixedModel) -> TypeMoments:
    """The stencil moments of the dyads of ``model`` (a block of whole dyads), refusing
    what does not reduce to sums over dyads (:func:`check_summable`; ``UN x AR(1)`` with
    single ratings missing)."""
    check_summable(model)
    moments = Prepared.of(model, check_rank=False).products  # rank: on the sums
    if not isinstance(moments, TypeMoments):
        raise SpecError(f"residual={model.residual.name!r} with single ratings missing "
                        "needs the complete-grid correction, which is not a sum of "
                        "moments over dyads: fit it in memory, or use a residual "
                        "structure without AR(1) across both members")
    return moments


def column_sums(model: MixedModel) -> tuple[float, float, np.ndarray, np.ndarray]:
    """``(sum y, sum y^2, sum X^2 by column, sum Z^2 by column)``: what the scales of
    the standardised fit need."""
    n = len(model.y)
    y = np.asarray(model.y, float)
    x = np.asarray(model.X, float).reshape(n, -1)
    z = np.asarray(model.Z, float).reshape(n, -1)
    return (float(y.sum()), float(y @ y), np.einsum("ij,ij->j", x, x),
            np.einsum("ij,ij->j", z, z))


# ---------------------------------------------------------------------------- the fit
@dataclass(frozen=True, eq=False)
class _SummedPrepared(Prepared):
    """A :class:`Prepared` without rows: the grouped moments stand for them."""

    n_rows: int = 0
    moments: GroupedMoments | None = None

    @property
    def n(self) -> int:
        return self.n_rows

    @property
    def grouped(self) -> GroupedMoments | None:  # type: ignore[override]
        return self.moments


def _code_types(codes: list[int], slots: tuple[str, ...]) -> RowTypes:
    """Row types described by their codes (no rows)."""
    c = np.array(codes, np.int64)
    return RowTypes(index=np.zeros(0, np.int64), slots=slots,
                    links=np.zeros((len(slots), 0), np.int64), role=c % 2,
                    paired=(c // 2 % 2).astype(bool), has_prev=(c // 4 % 2).astype(bool),
                    gap=c // 8)


def _scales(stats: Summed, model: MixedModel, standardize: bool
            ) -> tuple[float, np.ndarray, np.ndarray]:
    """The outcome SD and the columns' root mean squares (tied as the structure needs),
    as :class:`~apim.engine.mixed.scaling.Scaling` takes them from the columns."""
    if not standardize:
        return 1.0, np.ones(stats.p), np.ones(stats.q)
    n = stats.n_rows
    sum_y, sum_y2, sum_x2, sum_z2 = stats.sums
    sy = float(np.sqrt(max(sum_y2 / n - (sum_y / n) ** 2, 0.0))) or 1.0
    sx, sz = (np.sqrt(s / n) for s in (sum_x2, sum_z2))
    sx, sz = (np.where((r > 0) & np.isfinite(r), r, 1.0) for r in (sx, sz))
    assert model.random is not None  # check_summable
    sz = model.random.tie(sz)
    return sy, sx, sz


def _grouped(stats: DyadStatistics, scale_u: np.ndarray, scale_z: np.ndarray
             ) -> tuple[TypeMoments, GroupedMoments]:
    """The standardised moments in the engine's form (global combinations and groups)."""
    combos = sorted(stats.rest)
    index = {c: k for k, c in enumerate(combos)}
    codes = sorted({c for c, _, _ in combos})
    where = {c: k for k, c in enumerate(codes)}
    q, u = stats.q, stats.p + 1
    su = np.outer(scale_u, scale_u)
    rest = np.stack([stats.rest[c] / su for c in combos])
    n_groups, n_combos = len(stats.groups), len(combos)
    zz = np.zeros((n_combos, n_groups, q, q))
    sizes = np.zeros(n_groups)
    # keep the (combination, random effect) pairs whose rows are not zero in every dyad
    nonzero = np.zeros((n_combos, q), bool)
    for _, mine, _, m in stats.groups.values():
        diag = np.diag(m).reshape(len(mine), q, u)
        nonzero[[index[c] for c in mine]] |= np.any(diag != 0, axis=2)
    combo, effect = np.nonzero(nonzero)
    n_pairs = len(combo)
    pair_of = np.full((n_combos, q), -1)
    pair_of[combo, effect] = np.arange(n_pairs)
    need = 8 * n_groups * (n_pairs * u) ** 2
    if need > 4 * MAX_BYTES:
        gaps = ", session gaps" if "prev" in stats.slots else ""
        raise SpecError(f"the data have {n_groups} distinct patterns of rows per dyad "
                        f"(numbers of rows of each kind{gaps}); "
                        f"their moments would need {need / 1e9:.1f} GB: fit in memory, or "
                        "with a residual structure without AR(1)")
    m_kept = np.zeros((n_groups, n_pairs * u, n_pairs * u))
    scale_ju = (scale_z[:, None] * scale_u[None, :])  # (q, u)
    for g, (size, mine, block_zz, m) in enumerate(stats.groups.values()):
        sizes[g] = size
        pos = np.array([index[c] for c in mine])
        zz[pos, g] = block_zz / np.outer(scale_z, scale_z)
        local = np.arange(len(pos) * q * u).reshape(len(pos), q, u)
        targets = pair_of[pos]                                     # (len(pos), q)
        kept = targets >= 0
        src = local[kept].ravel()                                  # local rows kept
        dst = (targets[kept][:, None] * u + np.arange(u)[None, :]).ravel()
        scale = np.broadcast_to(scale_ju, (len(pos), q, u))[kept].ravel()
        m_kept[g][np.ix_(dst, dst)] = m[np.ix_(src, src)] / np.outer(scale, scale)
    m_kept = m_kept.reshape(n_groups, n_pairs, u, n_pairs, u).transpose(0, 1, 3, 2, 4)
    types = _code_types(codes, stats.slots)
    table = np.array([(where[t], a, b) for t, a, b in combos]).reshape(-1, 3)
    type_counts = np.array([stats.type_rows[c] for c in codes])
    moments = TypeMoments(types=types, combos=table, rows=np.zeros((n_combos, 0)),
                          rest=rest, counts=np.zeros((0, len(codes))),
                          shape=(stats.n_dyads, q, q + u))
    grouped = GroupedMoments(group=np.zeros(0, np.int64), size=sizes,
                             zz=np.ascontiguousarray(zz), combo=combo, effect=effect,
                             m=np.ascontiguousarray(m_kept).reshape(-1, u * u),
                             type_counts=type_counts)
    return moments, grouped


class _SummedProblem(MixedProblem):
    """The mixed problem on summed statistics: no restart from the rows' moments (a
    reduced-rank G is reported as a boundary estimate); from a per-dyad store (random
    slopes, whose G is large and more often heads for a reduced rank from a start on a
    subset) the in-memory fit's restart from the given start's variances."""

    def restart(self, theta: np.ndarray, hess: np.ndarray) -> tuple[np.ndarray, str] | None:
        if self.given and self.prep.grouped is None:
            return super().restart(theta, hess)
        return None

    def finish(self, theta: np.ndarray, ev: Evaluation) -> Evaluation:
        if len(theta) and (ev.d_xvx is None or len(ev.d_xvx) < len(theta)):
            d_xvx = _differenced_xvx(theta, ev, self.probes)
            if d_xvx is not None:
                return replace(ev, d_xvx=d_xvx)
        return ev


@dataclass(frozen=True, eq=False)
class StatisticsFit:
    """A mixed model fitted from summed statistics: estimates, their covariance, the
    covariance parameters and fit statistics (no per-row or per-dyad quantities: no
    BLUPs, fitted values or residuals).

    Attributes mirror :class:`~apim.engine.mixed.results.MixedFit` where they exist.
    """

    method: str
    theta: np.ndarray
    loglik: float
    coef: pd.Series
    cov_coef: pd.DataFrame
    df_satterthwaite: pd.Series
    parameters: tuple[VarianceParameter, ...]
    variance: pd.DataFrame
    converged: bool
    message: str
    n_evaluations: int
    boundary: tuple[str, ...]
    d_xvx: np.ndarray = field(repr=False)
    cov_theta: np.ndarray = field(repr=False)
    n_obs: int = 0
    n_dyads: int = 0
    fit_seconds: float = 0.0


@one_blas_thread
def fit_statistics(stats: Summed, template: MixedModel, method: str = "REML",
                   control: FitControl | None = None, start: np.ndarray | None = None
                   ) -> StatisticsFit:
    """Fit the model of ``template`` (its structures and names; its rows are not used)
    from the summed ``stats`` by REML or ML.

    The same standardisation, likelihood and optimiser as
    :func:`~apim.engine.mixed.estimate.estimate_mixed`. From summed statistics the
    Hessian of the Newton steps and of the standard errors is central differences of the
    analytic gradient (the exact random-effect block needs per-dyad pieces); from a
    per-dyad store (random slopes) it is the in-memory fit's (exact in the random-effect
    parameters, :func:`apim.engine.mixed.hessian.information`). ``start``: unconstrained
    start values in the data's units (e.g. the fit of the first block), else the
    structures' defaults from the summed moments.
    """
    if method not in ("REML", "ML"):
        raise SpecError(f"method={method!r} must be 'REML' or 'ML'")
    check_summable(template)
    if template.residual.name != stats.residual:
        raise SpecError(f"the statistics are of residual={stats.residual!r}, the model's "
                        f"is {template.residual.name!r}")
    control = control or FitControl()
    clock = time.perf_counter()
    sy, sx, sz = _scales(stats, template, control.standardize)
    scaling = Scaling(template, template, sy, sx, sz, np.ones(0))
    moments, source, grouped = stats.engine_form(np.r_[sx, sy], sz)
    if grouped is not None:  # the exact random-effect block needs per-dyad pieces
        control = replace(control, hessian="differences")
    _check_rank(moments, stats.p, list(template.x_names) or [f"x{j}" for j in range(stats.p)])
    layout = ResidualLayout.build(np.zeros(0, np.int64), np.zeros(0, np.int64),
                                  np.zeros(0, np.int64))
    prep = _SummedPrepared(order=np.zeros(0, np.int64), raw=np.zeros((0, stats.q + stats.p + 1)),
                           layout=layout, cluster=np.zeros(0, np.int64),
                           slot=np.zeros(0, np.int64), n_slots=1, n_clusters=stats.n_dyads,
                           q_t=0, q=stats.q, p=stats.p, products=source,
                           n_rows=stats.n_rows, moments=grouped)
    if start is None:
        theta0 = _default_start(template, stats, moments)
    else:
        theta0 = scaling.inner_theta(np.asarray(start, float))[0]
    problem = _SummedProblem(template, prep, method == "REML", control, theta0, True)
    with np.errstate(all="ignore"):
        optimum = maximize(problem, theta0, control)
    return _result(scaling, stats, method, optimum, control, problem.calls, clock)


def _check_rank(moments: TypeMoments, p: int, names: list[str]) -> None:
    """Refuse a rank-deficient ``X`` (from ``X'X``, the sum of the unweighted moments, by
    the rule of :func:`apim.engine.mixed.model._full_rank`)."""
    self_rows = [k for k, (_, a, b) in enumerate(moments.combos) if a == 0 and b == 0]
    gram = moments.rest[self_rows].sum(0)[:p, :p]
    eig, vectors = np.linalg.eigh(gram)
    if eig[-1] > 0 and eig[0] > 1e-10 * eig[-1]:
        return
    weak = np.abs(vectors[:, eig <= 1e-10 * max(eig[-1], 0.0)]).max(axis=1) > 1e-8
    raise RankDeficientError([names[j] for j in np.flatnonzero(weak)] or names)


def _default_start(model: MixedModel, stats: Summed, moments: TypeMoments
                   ) -> np.ndarray:
    """Start values without the rows: residual variances from the OLS fit's residual
    mean square (on the standardised scale), no correlations, and a dyad variance of
    half of it."""
    assert model.random is not None
    self_rows = [k for k, (t, a, b) in enumerate(moments.combos) if a == 0 and b == 0]
    s = moments.rest[self_rows].sum(0)
    p = stats.p
    beta = np.linalg.lstsq(s[:p, :p], s[:p, p], rcond=None)[0]
    rss = max(float(s[p, p] - s[:p, p] @ beta) / max(stats.n_rows - p, 1), 1e-8)
    var_r = np.full(2, rss / 2)
    g = model.random.start(np.full(stats.q, rss / 2))
    return np.concatenate([g, model.residual.start(var_r, 0.0, 0.0)])


def _result(scaling: Scaling, stats: Summed, method: str, optimum, control: FitControl,
            calls: int, clock: float) -> StatisticsFit:
    model = scaling.original
    inner_theta, ev, inner_hess = optimum.x, optimum.point, optimum.hessian
    theta, jac = scaling.outer_theta(inner_theta)
    inner_cov = np.linalg.pinv(inner_hess)
    cov_theta = inner_cov / np.outer(jac, jac)
    records = _natural_table(model, theta, cov_theta)
    records, boundary = _boundary(model, inner_theta, records, inner_hess, control)
    names = list(model.x_names) or [f"x{j}" for j in range(stats.p)]
    n, p = stats.n_rows, stats.p
    loglik = float(ev.loglik)
    if method == "REML":
        loglik -= (n - p) * np.log(scaling.y) + float(np.sum(np.log(scaling.x)))
    else:
        loglik -= n * np.log(scaling.y)
    inner_d = ev.d_xvx if ev.d_xvx is not None else np.zeros((0, p, p))
    return StatisticsFit(
        method=method, theta=theta, loglik=loglik,
        coef=pd.Series(scaling.beta(ev.beta), index=names),
        cov_coef=pd.DataFrame(scaling.cov_beta(ev.cov_beta), index=names, columns=names),
        df_satterthwaite=pd.Series(satterthwaite_df(ev.cov_beta, inner_d, inner_cov,
                                                    np.eye(p)), index=names),
        parameters=tuple(records), variance=parameter_table(records),
        converged=optimum.converged, message=optimum.message, n_evaluations=calls,
        boundary=boundary, d_xvx=scaling.d_xvx(inner_d, 1 / jac), cov_theta=cov_theta,
        n_obs=n, n_dyads=stats.n_dyads, fit_seconds=time.perf_counter() - clock)

