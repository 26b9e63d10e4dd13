"""Moment-based start values of the engine's covariance parameters.

OLS residuals are split into therapist, dyad, person and session parts: the therapist
variance from a one-way analysis of variance of the dyads' mean residuals, the dyad-level
``G`` from per-dyad least squares of the residuals on ``Z`` (the coefficients' covariance
over dyads minus their sampling covariance), the role variances of the within-person parts,
the partners' same-session correlation and the lag-1 correlation. Per-dyad sums run over
blocks of whole dyads, so no full-size temporaries are made.

Examples
--------
>>> import numpy as np
>>> from apim.engine import MixedModel, Unstructured, Residual
>>> from apim.engine.mixed.model import Prepared
>>> rng = np.random.default_rng(1)
>>> dyad = np.repeat(np.arange(40), 8); role = np.tile([0, 1], 160)
>>> session = np.tile(np.repeat([1, 2, 3, 4], 2), 40)
>>> X = np.column_stack([1 - role, role]).astype(float)
>>> y = X @ [1.0, 2.0] + rng.normal(size=(40, 2))[dyad, role] + rng.normal(size=320)
>>> model = MixedModel(y=y, X=X, dyad=dyad, role=role, session=session, Z=X,
...                    random=Unstructured(2), residual=Residual.named("un"))
>>> start_values(model, Prepared.of(model)).shape
(6,)
"""

from __future__ import annotations

import numpy as np

from apim.engine.mixed.model import MixedModel, Prepared, row_blocks
from apim.engine.mixed.random_effects import Unstructured
from apim.engine.mixed.residuals import ResidualLayout

__all__ = ["start_values", "residual_moments", "column_variances"]


def residual_moments(model: MixedModel, prep: Prepared
                      ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """OLS residuals (rows in ``prep``'s order), the role variances of their within-person
    parts, the partners' same-session correlation and the lag-1 correlation."""
    qt, q, p = prep.q_t, prep.q, prep.p
    raw = prep.raw
    x, y = raw[:, qt + q:qt + q + p], raw[:, -1]
    e = y - x @ least_squares(x, y)
    lay = prep.layout
    dyad = lay.dyad
    person = dyad * 2 + lay.role
    counts = np.bincount(person, minlength=2 * (dyad.max() + 1))
    means = np.bincount(person, e, minlength=counts.size) / np.maximum(counts, 1)
    w = means[person]
    del person
    np.subtract(e, w, out=w)  # the within-person parts
    var_r = np.array([np.var(w[lay.role == r]) if np.any(lay.role == r) else np.var(w)
                      for r in (0, 1)])
    var_r = np.where(var_r > 0, var_r, np.var(e) + 1e-8)
    with np.errstate(invalid="ignore", divide="ignore"):  # e.g. one session per person
        rho = correlation(w, lay.pair)
        phi = correlation(w, lay.previous)
    return e, var_r, float(np.nan_to_num(rho)), float(np.nan_to_num(phi))


def correlation(w: np.ndarray, other: np.ndarray) -> float:
    """``np.corrcoef(w[has], w[other[has]])[0, 1]`` (``has = other >= 0``; 0 with fewer
    than three pairs), bit for bit, built in one ``2 x m`` array (numpy's ``cov`` steps,
    in place) instead of numpy's copies."""
    has = other >= 0
    m = int(np.count_nonzero(has))
    if m <= 2:
        return 0.0
    pairs = np.empty((2, m))
    at = 0
    for rows in row_blocks(len(w)):
        mine = np.flatnonzero(has[rows]) + rows.start
        pairs[0, at:at + len(mine)] = w[mine]
        pairs[1, at:at + len(mine)] = w[other[mine]]
        at += len(mine)
    del has
    pairs -= pairs.mean(axis=1)[:, None]
    c = np.dot(pairs, pairs.T)
    c *= np.true_divide(1, m - 1)
    sd = np.sqrt(np.diag(c))
    c /= sd[:, None]
    c /= sd[None, :]
    np.clip(c, -1, 1, out=c)
    return float(c[0, 1])


def start_values(model: MixedModel, prep: Prepared) -> np.ndarray:
    """Moment-based starting values: OLS residuals split into therapist, dyad, person and
    session parts; the dyad-level G from per-dyad least squares on Z (see
    ``dyad_covariance``), the residual variances, the partners' same-session correlation
    and the lag-1 correlation."""
    qt, q = prep.q_t, prep.q
    raw = prep.raw
    lay = prep.layout
    e, var_r, rho, phi = residual_moments(model, prep)
    parts = []
    tv = 0.0
    if model.therapist_random is not None:
        # one-way analysis of variance of the dyads' mean residuals between therapists
        cl = prep.cluster
        dyad_mean = np.add.reduceat(e, lay.dyad_start) / np.diff(np.r_[lay.dyad_start, len(e)])
        size = np.bincount(cl)
        tm = np.bincount(cl, dyad_mean) / size
        within = np.bincount(cl, (dyad_mean - tm[cl]) ** 2) / np.maximum(size - 1, 1)
        tv = max(np.var(tm) - np.mean(within / size), 0.1 * np.var(tm), 1e-3 * np.var(e))
    if model.random is not None:
        z = raw[:, qt:qt + q]
        g = dyad_covariance(z, e, lay, var_r, rho, raw[:, :qt] if qt else None, tv)
        if g is None:
            parts.append(model.random.start(column_variances(z, e, lay.dyad_start, var_r)))
        elif isinstance(model.random, Unstructured):
            lower = np.linalg.cholesky(g)
            lower[np.diag_indices(q)] = np.log(np.diag(lower))
            parts.append(lower[np.tril_indices(q)])
        else:
            parts.append(model.random.start(np.diag(g)))
    if model.therapist_random is not None:
        parts.append(model.therapist_random.start(np.full(prep.q_t, tv)))
    parts.append(model.residual.start(var_r, rho, phi))
    return np.concatenate(parts)


def least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """OLS coefficients from the normal equations (the columns are standardised), by
    ``lstsq`` when they are (nearly) singular."""
    xx = x.T @ x
    try:
        factor = np.linalg.cholesky(xx)
        if np.min(np.diag(factor)) ** 2 > 1e-10 * np.max(np.diag(xx), initial=0.0):
            return np.linalg.solve(xx, x.T @ y)
    except np.linalg.LinAlgError:
        pass
    return np.linalg.lstsq(x, y, rcond=None)[0]


def column_variances(z: np.ndarray, e: np.ndarray, starts: np.ndarray,
                      var_r: np.ndarray) -> np.ndarray:
    """Per dyad least-squares coefficient of each column of ``z`` alone; its spread over
    dyads (weighted by the column's sum of squares) minus the sampling noise."""
    zz = np.empty((len(starts), z.shape[1]))
    ze = np.empty((len(starts), z.shape[1]))
    for dyads, rows, local in dyad_blocks(starts, len(e)):
        zz[dyads] = np.add.reduceat(z[rows] ** 2, local)
        ze[dyads] = np.add.reduceat(z[rows] * e[rows, None], local)
    variances = []
    for k in range(z.shape[1]):
        ok = zz[:, k] > 1e-12
        weight, coef = zz[ok, k], ze[ok, k] / np.where(ok, zz[:, k], 1)[ok]
        if weight.size < 2:
            variances.append(var_r.mean())
            continue
        centre = np.sum(weight * coef) / weight.sum()
        spread = np.sum(weight * (coef - centre) ** 2)
        estimate = (spread - weight.size * var_r.mean()) / weight.sum()
        variances.append(max(estimate, 0.05 * spread / weight.sum(), 1e-6 * np.var(e)))
    return np.array(variances)


def dyad_blocks(starts: np.ndarray, n: int, size: int = 65_536
                 ) -> list[tuple[slice, slice, np.ndarray]]:
    """Blocks of whole dyads (about ``size`` rows each): the dyads, their rows and the
    dyads' first rows within the block. A per-dyad sum over a block equals the one over
    all rows, bit for bit."""
    cuts = np.unique(np.searchsorted(starts, np.arange(0, n, size), side="right") - 1)
    cuts = np.r_[cuts[cuts >= 0], len(starts)] if len(starts) else np.zeros(1, int)
    out = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        lo = int(starts[a])
        hi = int(starts[b]) if b < len(starts) else n
        out.append((slice(int(a), int(b)), slice(lo, hi), starts[a:b] - lo))
    return out


def dyad_covariance(z: np.ndarray, e: np.ndarray, lay: ResidualLayout, var_r: np.ndarray,
                     rho: float, shared: np.ndarray | None = None, tv: float = 0.0
                     ) -> np.ndarray | None:
    """Moment estimate of the dyad-level ``G``: per dyad least squares of the residuals
    ``e`` on all columns of ``z`` jointly, the covariance of these coefficients over
    dyads minus their average sampling covariance ``(Z'Z)^-1 Z'RZ (Z'Z)^-1`` (``R`` with
    the role variances ``var_r`` and same-session correlation ``rho``). Variances are
    kept above a twentieth of the coefficients' own variances (with correlations 0 where
    they are raised) and correlations shrunk into (-0.95, 0.95). None when fewer than
    ``q + 2`` dyads identify the coefficients. ``shared``: the therapist-level columns,
    whose effects (variance ``tv`` each) the coefficients also carry."""
    n, q = z.shape
    starts = lay.dyad_start
    sizes = np.diff(np.r_[starts, n])
    sd = np.sqrt(var_r)
    zz = np.empty((len(starts), q, q))
    zrz = np.empty((len(starts), q, q))
    ze = np.empty((len(starts), q))
    for dyads, rows, local in dyad_blocks(starts, n):  # no full-size temporaries
        zb, eb, pair = z[rows], e[rows], lay.pair[rows]
        row_var = var_r[lay.role[rows]]
        has = np.flatnonzero(pair >= 0)
        other = pair[has] - rows.start  # partners share a dyad, so a block
        for k in range(q):
            for j in range(k, q):
                zz[dyads, k, j] = zz[dyads, j, k] = np.add.reduceat(zb[:, k] * zb[:, j], local)
                cross = np.zeros(len(eb))
                cross[has] = (zb[has, k] * zb[other, j] + zb[other, k] * zb[has, j]) \
                    * rho * sd[0] * sd[1]
                zrz[dyads, k, j] = zrz[dyads, j, k] = np.add.reduceat(
                    zb[:, k] * zb[:, j] * row_var + cross, local)
        ze[dyads] = np.add.reduceat(zb * eb[:, None], local)
    values = np.linalg.eigvalsh(zz)
    ok = (sizes > q) & (values[:, 0] > 1e-8 * np.maximum(values[:, -1], 1e-300))
    if ok.sum() < q + 2:
        return None
    inverse = np.linalg.inv(zz[ok])
    coef = np.einsum("dij,dj->di", inverse, ze[ok])
    noise = (inverse @ zrz[ok] @ inverse).mean(0)
    centred = coef - coef.mean(0)
    spread = centred.T @ centred / (ok.sum() - 1)
    g = spread - noise
    if shared is not None:  # minus the therapist effects' share
        zs = np.empty((len(starts), q, shared.shape[1]))
        for dyads, rows, local in dyad_blocks(starts, n):
            zs[dyads] = np.stack([np.add.reduceat(z[rows, k, None] * shared[rows], local)
                                  for k in range(q)], axis=1)
        projection = inverse @ zs[ok]
        g = g - tv * np.einsum("dim,djm->ij", projection, projection) / ok.sum()
    floor = np.maximum(0.05 * np.diag(spread), 1e-6 * np.var(e))
    free = np.diag(g) > floor  # the correlations of variances at their floor start at 0
    scale = np.sqrt(np.where(free, np.diag(g), floor))
    cor = np.zeros((q, q))
    both = np.outer(free, free)
    cor[both] = np.clip((g / np.outer(scale, scale))[both], -0.95, 0.95)
    np.fill_diagonal(cor, 1.0)
    w, v = np.linalg.eigh(cor)
    cor = (v * np.maximum(w, 0.05)) @ v.T
    cor = cor / np.sqrt(np.outer(np.diag(cor), np.diag(cor)))
    return cor * np.outer(scale, scale)
