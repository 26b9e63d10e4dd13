"""Big data: the engine fit's lean steps (start values, fitted values, containment df, in
blocks and without full-size temporaries) give what the straightforward full-size
computations gave, bit for bit. The old computations are written out here as the oracles."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from unbalanced_support import unbalanced

from apim.engine import MixedModel, Residual, Unstructured
from apim.engine.mixed import estimate as engine_fit
from apim.engine.mixed import model as engine_model
from apim.engine.mixed import results as engine_results
from apim.engine.mixed import start as engine_start
from apim.engine.mixed.df import _constant, containment_df, sorted_containment_df
from apim.engine.mixed.estimate import estimate_mixed as fit
from apim.engine.mixed.model import Prepared
from apim.engine.mixed.random_effects import Diagonal
from apim.engine.mixed.scaling import Scaling


# ----------------------------------------------------------------------------- oracles
def old_residual_moments(model: MixedModel, prep: Prepared):
    qt, q, p = prep.q_t, prep.q, prep.p
    raw = prep.raw
    x, y = raw[:, qt + q:qt + q + p], raw[:, -1]
    e = y - x @ engine_start.least_squares(x, y)
    lay = prep.layout
    dyad = lay.dyad
    person = dyad * 2 + lay.role
    counts = np.bincount(person, minlength=2 * (dyad.max() + 1))
    means = np.bincount(person, e, minlength=counts.size) / np.maximum(counts, 1)
    w = e - means[person]
    var_r = np.array([np.var(w[lay.role == r]) if np.any(lay.role == r) else np.var(w)
                      for r in (0, 1)])
    var_r = np.where(var_r > 0, var_r, np.var(e) + 1e-8)
    with np.errstate(invalid="ignore", divide="ignore"):
        has = lay.pair >= 0
        rho = float(np.corrcoef(w[has], w[lay.pair[has]])[0, 1]) if has.sum() > 2 else 0.0
        has = lay.previous >= 0
        phi = float(np.corrcoef(w[has], w[lay.previous[has]])[0, 1]) if has.sum() > 2 \
            else 0.0
    return e, var_r, float(np.nan_to_num(rho)), float(np.nan_to_num(phi))


def old_dyad_sums(z, e, lay, var_r, rho, shared):
    """The per-dyad sums of ``_dyad_covariance`` over all rows at once."""
    n, q = z.shape
    starts = lay.dyad_start
    sd = np.sqrt(var_r)
    row_var = var_r[lay.role]
    has = np.flatnonzero(lay.pair >= 0)
    other = lay.pair[has]
    zz = np.empty((len(starts), q, q))
    zrz = np.empty((len(starts), q, q))
    for k in range(q):
        for j in range(k, q):
            zz[:, k, j] = zz[:, j, k] = np.add.reduceat(z[:, k] * z[:, j], starts)
            cross = np.zeros(n)
            cross[has] = (z[has, k] * z[other, j] + z[other, k] * z[has, j]) \
                * rho * sd[0] * sd[1]
            zrz[:, k, j] = zrz[:, j, k] = np.add.reduceat(z[:, k] * z[:, j] * row_var
                                                          + cross, starts)
    ze = np.add.reduceat(z * e[:, None], starts)
    zs = None if shared is None else np.stack(
        [np.add.reduceat(z[:, k, None] * shared, starts) for k in range(q)], axis=1)
    return zz, zrz, ze, zs


def old_fitted(prep, beta, b, v, y_scale):
    qt, q = prep.q_t, prep.q
    raw, lay = prep.raw, prep.layout
    xb = raw[:, qt + q:qt + q + prep.p] @ beta
    fitted_sorted = xb + np.einsum("nk,nk->n", raw[:, qt:qt + q], b[lay.dyad])
    if qt:
        fitted_sorted = fitted_sorted + np.einsum("nk,nk->n", raw[:, :qt],
                                                  v[prep.cluster[lay.dyad]])
    inverse = np.empty_like(prep.order)
    inverse[prep.order] = np.arange(prep.n)
    return fitted_sorted[inverse] * y_scale, xb[inverse] * y_scale


def old_containment_df(X, levels):
    n, p = X.shape
    ngroups = [len(np.unique(g)) for g in levels]
    df = np.array(ngroups + [n], float) - np.array([0] + ngroups, float)
    stratum = np.zeros(p, int)
    intercept = np.array([_constant(X[:, j]) for j in range(p)])
    for j in np.flatnonzero(~intercept):
        stratum[j] = 0
        for level, groups in enumerate(levels, start=1):
            _, inverse = np.unique(groups, return_inverse=True)
            lo = np.full(inverse.max() + 1, np.inf)
            hi = np.full(inverse.max() + 1, -np.inf)
            np.minimum.at(lo, inverse, X[:, j])
            np.maximum.at(hi, inverse, X[:, j])
            if np.any(hi - lo > 1e-12 * max(1.0, np.abs(X[:, j]).max())):
                stratum[j] = level
    for s in stratum[~intercept]:
        df[s] -= 1
    if intercept.any():
        df[0] -= 1
    else:
        df[1:] += 1
    out = df[stratum]
    out[intercept] = df.max()
    return out


# ----------------------------------------------------------------------------- data
def dyadic(n_dyads: int = 45, n_sessions: int = 9, seed: int = 0) -> pd.DataFrame:
    """Unbalanced, with a between-dyad and a therapist-level column, therapists of 1-3
    dyads, rows shuffled."""
    frame, rng = unbalanced(n_dyads, n_sessions, seed, missing=0.12)
    frame["between"] = rng.normal(size=n_dyads)[frame["dyad"]]  # constant within dyads
    frame["therapist"] = frame["dyad"] // 3
    frame["t_level"] = rng.normal(size=n_dyads // 3 + 1)[frame["therapist"]]
    return frame.iloc[rng.permutation(len(frame))]


def model_of(frame: pd.DataFrame, therapist: bool = False, slopes: bool = False,
             residual: str = "un") -> MixedModel:
    r = frame["role"].to_numpy()
    p, t = (1 - r).astype(float), r.astype(float)
    x = frame["x"].to_numpy()
    X = np.column_stack([p, t, p * x, t * x, frame["between"], frame["t_level"]])
    Z = np.column_stack([p, t, p * x, t * x]) if slopes else X[:, :2]
    return MixedModel(y=frame["y"].to_numpy(), X=X, dyad=frame["dyad"].to_numpy(), role=r,
                      session=frame["session"].to_numpy(), Z=Z,
                      random=Unstructured(Z.shape[1]), residual=Residual.named(residual),
                      therapist=frame["therapist"].to_numpy() if therapist else None,
                      therapist_random=Diagonal(1) if therapist else None,
                      x_names=("p", "t", "px", "tx", "between", "t_level"))


CASES = {
    "shuffled": lambda: model_of(dyadic()),
    "therapist level": lambda: model_of(dyadic(seed=1), therapist=True),
    "slopes": lambda: model_of(dyadic(60, 12, seed=2), slopes=True),
    "ar1, text ids": lambda: replace(model_of(dyadic(seed=3), residual="un-ar1"),
                                     dyad=np.array([f"d{v}" for v in dyadic(seed=3)["dyad"]],
                                                   dtype=object)),
    "units changed": lambda: (lambda m: replace(
        m, y=m.y * 1e6, X=m.X * np.array([1.0, 1.0, 1e-6, 1e6, 1e3, 1e-3]), Z=m.Z * 1e6))(
        model_of(dyadic(seed=4), therapist=True)),
}


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few rows, so that every case has many (block edges inside dyads)."""
    rows = functools.partial(engine_model.row_blocks, size=7)
    monkeypatch.setattr(engine_results, "row_blocks", rows)
    monkeypatch.setattr(engine_start, "row_blocks", rows)
    monkeypatch.setattr(engine_start, "dyad_blocks",
                        functools.partial(engine_start.dyad_blocks, size=23))


def prepared(case: str) -> tuple[MixedModel, Prepared]:
    inner = Scaling.of(CASES[case]()).model
    return inner, Prepared.of(inner)


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("case", CASES)
def test_start_values_equal_the_full_size_computation(case: str, small_blocks: None) -> None:
    inner, prep = prepared(case)
    new, old = engine_start.residual_moments(inner, prep), old_residual_moments(inner, prep)
    assert np.array_equal(new[0], old[0]) and np.array_equal(new[1], old[1])
    assert new[2:] == old[2:] and new[2] != 0 and new[3] != 0
    e, var_r, rho, _ = new
    qt, q = prep.q_t, prep.q
    z = prep.raw[:, qt:qt + q]
    shared = prep.raw[:, :qt] if qt else None
    zz, zrz, ze, zs = old_dyad_sums(z, e, prep.layout, var_r, rho, shared)
    # the start values: from the sums of the blocks; the oracle: patch the sums back in
    got = engine_start.start_values(inner, prep)
    assert np.all(np.isfinite(got))
    starts = prep.layout.dyad_start
    blocks = engine_start.dyad_blocks(starts, prep.n)
    assert len(blocks) > 3 and blocks[0][1].start == 0 and blocks[-1][1].stop == prep.n
    again = np.empty_like(ze)
    for dyads, rows, local in blocks:
        again[dyads] = np.add.reduceat(z[rows] * e[rows, None], local)
    assert np.array_equal(again, ze)
    # the variances column by column (the restart's spread)
    old_zz = np.add.reduceat(z ** 2, starts)
    assert np.array_equal(np.diagonal(zz, axis1=1, axis2=2), old_zz)
    ok = old_zz > 1e-12
    assert ok.any() and zrz.shape == zz.shape and (zs is None) == (qt == 0)


@pytest.mark.parametrize("case", CASES)
def test_dyad_covariance_equals_the_full_size_one(case: str, small_blocks: None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    inner, prep = prepared(case)
    e, var_r, rho, _ = old_residual_moments(inner, prep)
    qt, q = prep.q_t, prep.q
    z = prep.raw[:, qt:qt + q]
    shared = prep.raw[:, :qt] if qt else None
    new = engine_start.dyad_covariance(z, e, prep.layout, var_r, rho, shared, 0.1)
    new_columns = engine_start.column_variances(z, e, prep.layout.dyad_start, var_r)
    # the oracle: the same function with one block of all rows
    monkeypatch.setattr(engine_start, "dyad_blocks", lambda starts, n: [
        (slice(0, len(starts)), slice(0, n), starts)])
    old = engine_start.dyad_covariance(z, e, prep.layout, var_r, rho, shared, 0.1)
    old_columns = engine_start.column_variances(z, e, prep.layout.dyad_start, var_r)
    assert new is not None and np.array_equal(new, old)
    assert np.array_equal(new_columns, old_columns)
    # and that one block is the full-size computation
    zz, _, ze, _ = old_dyad_sums(z, e, prep.layout, var_r, rho, shared)
    assert np.array_equal(zz[:, 0, 0], np.add.reduceat(z[:, 0] ** 2, prep.layout.dyad_start))
    assert np.array_equal(ze, np.add.reduceat(z * e[:, None], prep.layout.dyad_start))


@pytest.mark.parametrize("case", CASES)
def test_fit_equals_the_full_size_computations(case: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole fit with small blocks against one with the old computations patched in:
    the same start values, so the same path and bit for bit the same results."""
    model = CASES[case]()
    with monkeypatch.context() as patch:
        rows = functools.partial(engine_model.row_blocks, size=7)
        patch.setattr(engine_results, "row_blocks", rows)
        patch.setattr(engine_start, "row_blocks", rows)
        patch.setattr(engine_start, "dyad_blocks",
                      functools.partial(engine_start.dyad_blocks, size=23))
        new = fit(model, "REML")
    levels = [np.asarray(model.dyad)]
    if model.therapist is not None:
        levels.insert(0, np.asarray(model.therapist))
    with monkeypatch.context() as patch:
        patch.setattr(engine_start, "residual_moments", old_residual_moments)
        patch.setattr(engine_fit, "residual_moments", old_residual_moments)
        patch.setattr(engine_results, "_fitted", old_fitted)
        patch.setattr(engine_results, "sorted_containment_df",
                      lambda X, order, starts: old_containment_df(X, levels))
        patch.setattr(engine_start, "dyad_blocks", lambda starts, n: [
            (slice(0, len(starts)), slice(0, n), starts)])
        old = fit(model, "REML")
    assert new.n_evaluations == old.n_evaluations
    assert new.loglik == old.loglik
    for name in ("coef", "cov_coef", "df_satterthwaite", "df_containment",
                 "random_effects", "therapist_effects"):
        pd.testing.assert_frame_equal(pd.DataFrame(getattr(new, name)),
                                      pd.DataFrame(getattr(old, name)), check_exact=True)
    for name in ("theta", "fitted", "fitted_population", "residuals", "hessian"):
        assert np.array_equal(getattr(new, name), getattr(old, name)), name
    y = np.asarray(model.y, float)
    assert np.array_equal(new.residuals, y - new.fitted)  # input row order
    assert new.n_dyads == len(np.unique(model.dyad))


@pytest.mark.parametrize("case", CASES)
def test_containment_df_from_the_sorted_groups(case: str) -> None:
    model = CASES[case]()
    prep = Prepared.of(model)
    X = np.asarray(model.X, float)
    levels = [np.asarray(model.dyad)]
    starts = [prep.layout.dyad_start]
    if model.therapist is not None:
        levels.insert(0, np.asarray(model.therapist))
        starts.insert(0, prep.layout.dyad_start[prep.slot == 0])
    old = old_containment_df(X, levels)
    assert np.array_equal(sorted_containment_df(X, prep.order, starts), old)
    assert np.array_equal(containment_df(X, levels), old)
    # the design matters: within-dyad columns in the residual stratum, the between-dyad
    # column in the dyad stratum, the therapist-level one in the therapist stratum
    n, d = len(X), len(np.unique(model.dyad))
    if model.therapist is None:
        # no intercept (p and t are not): every inner stratum gains one
        assert old[0] == old[2] == old[3] == n - d - 3
        assert old[4] == old[5] == d - 2
    else:
        t = len(np.unique(model.therapist))
        assert old[2] == n - d - 3 and old[4] == d - t and old[5] == t - 1


def test_containment_df_with_an_intercept_and_constant_columns() -> None:
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(6), 5)
    order = rng.permutation(30)
    X = np.column_stack([np.full(30, 2.5), rng.normal(size=30), np.repeat(rng.normal(size=6), 5),
                         np.full(30, 1e-20)])[np.argsort(order)]
    labels = groups[np.argsort(order)]
    sort = np.argsort(labels, kind="stable")
    starts = [np.flatnonzero(np.r_[True, labels[sort][1:] != labels[sort][:-1]])]
    old = old_containment_df(X, [labels])
    assert np.array_equal(sorted_containment_df(X, sort, starts), old)
    # 1e-20 everywhere: an intercept too; the intercept takes the outer stratum's df once
    assert old.tolist() == [23.0, 23.0, 4.0, 23.0]


@pytest.mark.parametrize("labels", [
    np.repeat(np.arange(7), 3)[::-1], np.repeat([2.5, -1.0, 1e12], 4),
    np.array(["a", "b", "a", "c"], dtype=object), np.array(["x", "y", "x"]),
    np.array([True, False, True])])
def test_number_of_dyads_counted_as_by_a_set(labels: np.ndarray) -> None:
    from apim.model.registry import _count

    assert _count(labels) == len(set(labels.tolist()))
