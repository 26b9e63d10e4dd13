"""Fits from statistics summed block by block of dyads (apim.engine.mixed.statistics)
against the in-memory fit of all rows (estimate_mixed, itself validated against nlme):
unbalanced designs, single ratings missing, blocks of one dyad, every residual structure
that reduces to sums over dyads, REML and ML; and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

from apim.engine import MixedModel, Residual, Unstructured, estimate_mixed
from apim.engine.mixed.statistics import DyadStatistics, fit_statistics
from apim.errors import SpecError


def unbalanced(n_dyads=70, seed=3, phi=0.0):
    """Dyads with 1-9 sessions, some skipped, single ratings missing (about 10%)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_dyads):
        if phi:  # AR(1): consecutive sessions, now and then one skipped (few gap kinds)
            sessions = np.arange(1, rng.integers(2, 10))
            if rng.random() < 0.2:
                sessions = np.delete(sessions, rng.integers(len(sessions)))
        else:
            sessions = np.sort(rng.choice(np.arange(1, 13), size=rng.integers(1, 10),
                                          replace=False))
        u = rng.multivariate_normal([0, 0], [[0.5, 0.2], [0.2, 0.4]])
        xb = rng.normal(0, 0.6, 2)
        e_prev = np.zeros(2)
        for s in sessions:
            e = phi * e_prev + rng.normal(0, [0.6, 0.5])
            e_prev = e
            xw = rng.normal(0, 0.5, 2)
            for r in (0, 1):
                if rng.random() < 0.1:
                    continue
                y = 4 + 0.3 * r + 0.4 * xw[r] + 0.15 * xw[1 - r] + 0.5 * xb[r] + u[r] + e[r]
                rows.append((d * 7 + 3, s, r, xw[r], xw[1 - r], xb[r], xb[1 - r], y))
    return np.array(rows)


def model_of(a, residual="un"):
    role = a[:, 2].astype(int)
    p, t = 1.0 - role, role.astype(float)
    X = np.column_stack([p, t] + [p * a[:, k] for k in (3, 4, 5, 6)]
                        + [t * a[:, k] for k in (3, 4, 5, 6)])
    return MixedModel(y=a[:, 7], X=X, dyad=a[:, 0].astype(int), role=role,
                      session=a[:, 1].astype(int), Z=np.column_stack([p, t]),
                      random=Unstructured(2), residual=Residual.named(residual),
                      x_names=tuple(f"b{j}" for j in range(10)))


def blocks_of(a, cuts):
    """Rows split at dyad boundaries: ``cuts`` are dyad positions."""
    dyads = np.unique(a[:, 0])
    edges = [0, *cuts, len(dyads)]
    return [a[np.isin(a[:, 0], dyads[lo:hi])] for lo, hi in zip(edges[:-1], edges[1:])
            if hi > lo]


def summed(a, cuts, residual="un"):
    parts = [DyadStatistics.of(model_of(b, residual)) for b in blocks_of(a, cuts)]
    total = parts[0]
    for part in parts[1:]:
        total = total.merge(part)
    return total


def assert_same_fit(fit, whole, tol=1e-8):
    assert fit.converged and whole.converged
    assert abs(fit.loglik - whole.loglik) < tol
    np.testing.assert_allclose(fit.coef, whole.coef, rtol=0, atol=tol)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov_coef)),
                               np.sqrt(np.diag(whole.cov_coef)), rtol=1e-6)
    ours = fit.variance["estimate"].to_numpy()
    theirs = whole.variance["estimate"].to_numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fit.df_satterthwaite, whole.df_satterthwaite, rtol=1e-3)


@pytest.mark.parametrize("residual", ["un", "cs", "independent", "ar1", "ar1-equal"])
def test_summed_blocks_equal_the_whole_fit(residual):
    a = unbalanced(phi=0.3 if "ar1" in residual else 0.0)
    whole = estimate_mixed(model_of(a, residual))
    fit = fit_statistics(summed(a, [1, 2, 17, 40], residual), model_of(a[:40], residual))
    assert fit.n_obs == len(a) and fit.n_dyads == len(np.unique(a[:, 0]))
    assert_same_fit(fit, whole)


def test_ml_and_order_of_blocks():
    a = unbalanced(seed=5)
    whole = estimate_mixed(model_of(a), "ML")
    forward = summed(a, [10, 11, 30])
    parts = [DyadStatistics.of(model_of(b)) for b in blocks_of(a, [10, 11, 30])][::-1]
    backward = parts[0]
    for part in parts[1:]:
        backward = backward.merge(part)
    for total in (forward, backward):
        assert_same_fit(fit_statistics(total, model_of(a[:20]), "ML"), whole)


def test_one_dyad_per_block_and_start_from_a_block():
    a = unbalanced(n_dyads=40, seed=7)
    n = len(np.unique(a[:, 0]))
    total = summed(a, list(range(1, n)))
    assert len(total.groups) < n  # dyads with the same pattern share a group
    whole = estimate_mixed(model_of(a))
    first = estimate_mixed(model_of(blocks_of(a, [20])[0]))
    assert_same_fit(fit_statistics(total, model_of(a), start=first.theta), whole)


def test_a_boundary_is_reported_not_hidden():
    """Data without a dyad effect: the dyad variance goes to zero in both fits."""
    rng = np.random.default_rng(11)
    a = unbalanced(n_dyads=60, seed=11)
    a[:, 7] = 4 + rng.normal(size=len(a))
    fit = fit_statistics(summed(a, [30]), model_of(a))
    assert fit.boundary
    assert np.isfinite(fit.loglik)


def test_refusals():
    a = unbalanced(n_dyads=10)
    m = model_of(a)
    with pytest.raises(SpecError, match="therapist level"):
        DyadStatistics.of(MixedModel(**{**m.__dict__, "therapist": a[:, 0]}))
    with pytest.raises(SpecError, match="random intercepts"):
        DyadStatistics.of(MixedModel(y=m.y, X=m.X, dyad=m.dyad, role=m.role,
                                     session=m.session))
    with pytest.raises(SpecError, match="complete-grid"):
        DyadStatistics.of(model_of(a, "un-ar1"))  # single ratings are missing
    other = DyadStatistics.of(model_of(a, "cs"))
    with pytest.raises(SpecError, match="different models"):
        DyadStatistics.of(m).merge(other)


@pytest.mark.parametrize("residual", ["un", "ar1"])
def test_transformed_statistics_equal_the_fit_of_the_mapped_columns(residual):
    """The statistics of X mapped by A (as a centring of the between parts does) equal
    those of the columns X A: the fit from them equals the in-memory fit of X A."""
    from dataclasses import replace

    a = unbalanced(phi=0.3 if residual == "ar1" else 0.0, seed=13)
    m = model_of(a, residual)
    A = np.eye(10)
    A[0, 4:6] = [-0.7, 0.4]  # the patient's between parts centred: minus c x intercept
    A[1, 8:10] = [0.3, -1.1]
    A[4, 2] = 0.25  # and any other linear map
    whole = estimate_mixed(replace(m, X=m.X @ A))
    total = summed(a, [20, 45], residual).transformed(A)
    np.testing.assert_allclose(total.sums[2], ((m.X @ A) ** 2).sum(0), rtol=1e-12)
    assert_same_fit(fit_statistics(total, m), whole)
    with pytest.raises(SpecError, match="10 x 10"):
        total.transformed(np.eye(3))
