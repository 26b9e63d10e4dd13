"""Random-slope fits from the per-dyad store built block by block of dyads
(apim.engine.mixed.dyad_store) against the in-memory fit of all rows (estimate_mixed,
itself validated against nlme: tests/engine/test_engine_nlme.py): random actor and partner
slopes, unbalanced designs with dropout and single ratings missing, blocks of one dyad up
to the whole data, REML and ML, several residual structures, relabelled members, the
columns mapped by ``X A`` and ``Z B`` (a centring); and the refusals."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from apim.engine import MixedModel, Residual, Unstructured, estimate_mixed
from apim.engine.mixed import dyad_store
from apim.engine.mixed.dyad_store import DyadStore, bytes_per_dyad
from apim.engine.mixed.model import Prepared
from apim.engine.mixed.statistics import DyadStatistics, fit_statistics
from apim.errors import SpecError
from tests.engine.test_statistics import assert_same_fit as assert_same_summed_fit
from tests.engine.test_statistics import blocks_of


def slopes_data(n_dyads=120, seed=3, phi=0.0):
    """Dyads with 1-10 sessions (dropout), some skipped, single ratings missing (about
    10%), random intercepts and random actor and partner slopes of the within parts."""
    rng = np.random.default_rng(seed)
    g = np.diag([0.5, 0.4, 0.25, 0.2, 0.16, 0.2])
    g[0, 1] = g[1, 0] = 0.2
    rows = []
    for d in range(n_dyads):
        if phi:  # AR(1): consecutive sessions, now and then one skipped
            sessions = np.arange(1, rng.integers(2, 13))
            if rng.random() < 0.2:
                sessions = np.delete(sessions, rng.integers(len(sessions)))
        else:
            sessions = np.sort(rng.choice(np.arange(1, 15), size=rng.integers(1, 13),
                                          replace=False))
        b = rng.multivariate_normal(np.zeros(6), g)
        xb = rng.normal(0, 0.6, 2)
        e_prev = np.zeros(2)
        for s in sessions:
            e = phi * e_prev + rng.normal(0, [0.6, 0.5])
            e_prev = e
            xw = rng.normal(0, 0.8, 2)
            for r in (0, 1):
                if rng.random() < 0.1:
                    continue
                y = (4 + 0.3 * r + (0.4 + b[2 + r]) * xw[r]
                     + (0.15 + b[4 + r]) * xw[1 - r] + 0.5 * xb[r] + b[r] + e[r])
                rows.append((d * 7 + 3, s, r, xw[r], xw[1 - r], xb[r], xb[1 - r], y))
    return np.array(rows)


def model_of(a, residual="un", swap=False):
    """Two intercepts, actor and partner effects within and between per role; random
    intercepts and actor and partner slopes per role (q = 6). ``swap``: the members'
    labels exchanged (role 0 <-> 1; every column's meaning follows)."""
    role = a[:, 2].astype(int)
    if swap:
        role = 1 - role
    p, t = 1.0 - role, role.astype(float)
    X = np.column_stack([p, t] + [p * a[:, k] for k in (3, 4, 5, 6)]
                        + [t * a[:, k] for k in (3, 4, 5, 6)])
    Z = np.column_stack([p, t, p * a[:, 3], t * a[:, 3], p * a[:, 4], t * a[:, 4]])
    return MixedModel(y=a[:, 7], X=X, dyad=a[:, 0].astype(int), role=role,
                      session=a[:, 1].astype(int), Z=Z, random=Unstructured(6),
                      residual=Residual.named(residual),
                      x_names=tuple(f"b{j}" for j in range(10)))


def stored(a, cuts, residual="un", swap=False):
    parts = [DyadStore.of(model_of(b, residual, swap)) for b in blocks_of(a, cuts)]
    total = parts[0]
    for part in parts[1:]:
        total = total.merge(part)
    return total


def assert_same_fit(fit, whole, tol=1e-8):
    """logLik, estimates and variance parameters as for summed statistics, and the SEs
    to ``tol`` too."""
    assert_same_summed_fit(fit, whole, tol)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov_coef)),
                               np.sqrt(np.diag(whole.cov_coef)), rtol=0, atol=tol)


@pytest.mark.parametrize("residual, method", [
    ("un", "REML"), ("un", "ML"), ("cs", "REML"), ("independent", "ML"), ("ar1", "REML"),
    ("ar1-equal", "ML")])
def test_stored_blocks_equal_the_whole_fit(residual, method):
    a = slopes_data(phi=0.3 if "ar1" in residual else 0.0)
    whole = estimate_mixed(model_of(a, residual), method)
    store = stored(a, [1, 2, 17, 40], residual)
    fit = fit_statistics(store, model_of(a[:40], residual), method)
    assert fit.n_obs == len(a) and fit.n_dyads == len(np.unique(a[:, 0]))
    assert store.n_dyads == fit.n_dyads
    assert_same_fit(fit, whole)


def test_one_dyad_per_block_whole_data_and_block_order():
    """Blocks of one dyad (joined as they come: a few parts, not one per dyad), the
    whole data as one block, and the blocks in reverse order: the same fit."""
    a = slopes_data(n_dyads=50, seed=7)
    n = len(np.unique(a[:, 0]))
    whole = estimate_mixed(model_of(a))
    single = stored(a, list(range(1, n)))
    assert single.n_dyads == n and len(single.parts) <= 6
    parts = [DyadStore.of(model_of(b)) for b in blocks_of(a, [5, 6, 30])][::-1]
    backward = parts[0]
    for part in parts[1:]:
        backward = backward.merge(part)
    for store in (single, stored(a, []), backward):
        assert_same_fit(fit_statistics(store, model_of(a)), whole)


def test_small_pieces(monkeypatch):
    """Pieces of 7 dyads (the evaluation's loop over pieces, parts joined up to 7)."""
    monkeypatch.setattr(dyad_store, "PIECE_DYADS", 7)
    a = slopes_data(n_dyads=45, seed=9)
    store = stored(a, [1, 2, 3, 4, 20, 21])
    sizes = [p.shape[0] for p in store.parts]
    assert sizes[:2] == [4, 16] and sum(sizes) == 45  # the four 1-dyad blocks joined
    _, source, _ = store.engine_form(np.ones(11), np.ones(6))
    pieces = [piece.moments.shape[0] for piece in source.pieces()]
    assert max(pieces) == 7 and sum(pieces) == 45
    assert_same_fit(fit_statistics(store, model_of(a), "ML"),
                    estimate_mixed(model_of(a), "ML"))


def test_relabelled_members_and_dyads():
    """The members' labels exchanged and the dyads renamed (and so sorted differently):
    the same likelihood as the original labels, and equal to the in-memory fit of the
    relabelled data."""
    a = slopes_data(seed=21)
    whole = estimate_mixed(model_of(a))
    b = a.copy()
    b[:, 0] = 1000 - b[:, 0]
    swapped = estimate_mixed(model_of(b, swap=True))
    fit = fit_statistics(stored(b, [13, 14, 30], swap=True), model_of(b, swap=True))
    assert_same_fit(fit, swapped)
    assert abs(fit.loglik - whole.loglik) < 1e-8
    # the swapped model's columns: the other role's intercept and effects
    np.testing.assert_allclose(fit.coef.to_numpy()[[1, 0, 6, 7, 8, 9, 2, 3, 4, 5]],
                               whole.coef.to_numpy(), atol=1e-8)


@pytest.mark.parametrize("residual", ["un", "ar1"])
def test_transformed_store_equals_the_fit_of_the_mapped_columns(residual):
    """The store of ``X`` and ``Z`` mapped by ``A`` and ``B`` (as grand-mean centring
    moves between parts, time-varying parts and so the slopes' columns) equals the fit
    of the columns ``X A`` and ``Z B``."""
    a = slopes_data(phi=0.3 if residual == "ar1" else 0.0, seed=13)
    m = model_of(a, residual)
    A = np.eye(10)
    A[0, 4:6] = [-0.7, 0.4]
    A[1, 8:10] = [0.3, -1.1]
    A[4, 2] = 0.25
    B = np.eye(6)
    B[0, 2], B[1, 3], B[1, 5] = -0.3, 0.2, -0.45  # a slope minus c x the role's intercept
    whole = estimate_mixed(replace(m, X=m.X @ A, Z=m.Z @ B))
    store = stored(a, [20, 45], residual).transformed(A, B)
    np.testing.assert_allclose(store.sums[2], ((m.X @ A) ** 2).sum(0), rtol=1e-12)
    np.testing.assert_allclose(store.sums[3], ((m.Z @ B) ** 2).sum(0), rtol=1e-12)
    assert_same_fit(fit_statistics(store, m), whole)
    unmoved = stored(a, [20], residual).transformed(A)
    assert_same_fit(fit_statistics(unmoved, m), estimate_mixed(replace(m, X=m.X @ A)))
    with pytest.raises(SpecError, match="6 x 6"):
        store.transformed(A, np.eye(2))


def test_store_as_products_equals_the_engine_products():
    """All the store's products at once equal the in-memory engine's (unit scales)."""
    a = slopes_data(n_dyads=20, seed=5)
    m = model_of(a)
    store = stored(a, [3, 11])
    _, source, grouped = store.engine_form(np.ones(11), np.ones(6))
    assert grouped is None
    theta = np.array([0.1, -0.2, 0.05])
    ours = source.products(m.residual, theta, True)
    theirs = Prepared.of(m).products.products(m.residual, theta, True)
    for x, y in ((ours.rows, theirs.rows), (ours.rest, theirs.rest),
                 (ours.logdet, theirs.logdet), (ours.d_rows, theirs.d_rows),
                 (ours.d_rest, theirs.d_rest), (ours.d_logdet, theirs.d_logdet)):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)


def test_size_and_refusals():
    a = slopes_data(n_dyads=12)
    m = model_of(a)
    store = DyadStore.of(m)
    part = store.parts[0]
    assert store.nbytes - part.rest.nbytes == store.n_dyads * bytes_per_dyad(
        len(part.combos), 6, 10, part.counts.shape[1])
    with pytest.raises(SpecError, match="therapist level"):
        DyadStore.of(replace(m, therapist=a[:, 0]))
    with pytest.raises(SpecError, match="complete-grid"):
        DyadStore.of(model_of(a, "un-ar1"))  # single ratings are missing
    with pytest.raises(SpecError, match="different models"):
        store.merge(DyadStore.of(model_of(a, "cs")))
    with pytest.raises(SpecError, match="per-dyad store"):
        store.merge(DyadStatistics.of(m))  # type: ignore[arg-type]


def test_evaluation_by_pieces_equals_the_per_dyad_evaluation(monkeypatch):
    """The likelihood's seam: a product source kept in pieces of dyads gives the same
    log-likelihood, gradient, GLS quantities and BLUPs as the in-memory per-dyad path
    (the store in the in-memory model's units and dyad order, pieces of 5 dyads)."""
    from apim.engine.mixed.likelihood import evaluate

    monkeypatch.setattr(dyad_store, "PIECE_DYADS", 5)
    a = slopes_data(n_dyads=23, seed=17)
    m = model_of(a)
    prep = Prepared.of(m)
    _, source, _ = stored(a, [4, 11]).engine_form(np.ones(11), np.ones(6))
    pieces = replace(prep, products=source)
    assert pieces.grouped is None and len(list(source.pieces())) > 4
    rng = np.random.default_rng(2)
    theta = np.r_[0.3 * rng.normal(size=21), 0.1, -0.2, 0.05]
    for reml in (True, False):
        ours = evaluate(m, pieces, theta, reml)
        theirs = evaluate(m, prep, theta, reml, grouped=False)
        assert abs(ours.loglik - theirs.loglik) < 1e-10
        np.testing.assert_allclose(ours.score, theirs.score, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(ours.beta, theirs.beta, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.d_xvx, theirs.d_xvx, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(ours.blups, theirs.blups, rtol=1e-9, atol=1e-12)
