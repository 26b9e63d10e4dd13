"""Dyad-level covariates of the dynamic APIM's means (``mu_i = B' x_i``, ``B`` profiled by
GLS) against the dense oracle with each dyad's own means: logLik to 1e-8 on unbalanced
data with gaps, late starts, dropout and a single-session dyad, both initial conditions,
with and without the therapist level; the profiled ``B`` against the GLS written densely;
the analytic gradient at the profiled ``B`` against central differences; relabelled and
shuffled dyads."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from dynamic_oracle import (
    central_gradient,
    dense_loglik,
    dense_therapist_loglik,
    within_covariance,
)

from apim.engine.dynamic.gradient import loglik_gradient
from apim.engine.dynamic.kalman import evaluate, prepare_dynamic, therapist_level

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from test_dynamic_therapist import THERAPISTS, _gappy, _parameters  # noqa: E402


def _design(n: int, seed: int) -> np.ndarray:
    """Intercept, a numeric covariate (baseline severity) and a 0/1 one (arm)."""
    rng = np.random.default_rng(seed)
    return np.column_stack([np.ones(n), rng.normal(20, 5, size=n), rng.integers(0, 2, n)])


def _dense_gls(y, x, phi, sw, sb, p0, therapist=None, st=None):
    """The GLS of ``B`` written densely: every observation's row of ``I_K (x) x_i'``,
    each unit's (dyad's, or therapist's) stacked covariance."""
    n, n_t, k = y.shape
    q = x.shape[1]
    cov_w = within_covariance(phi, sw, p0, n_t)
    ones = np.tile(np.eye(k), (n_t, 1))
    dyad_cov = cov_w + ones @ sb @ ones.T
    units = [np.array([i]) for i in range(n)] if therapist is None else \
        [np.flatnonzero(therapist == t) for t in np.unique(therapist)]
    lhs, rhs = np.zeros((k * q, k * q)), np.zeros(k * q)
    for members in units:
        cov = np.kron(np.eye(len(members)), dyad_cov)
        if therapist is not None:
            cov += np.kron(np.ones((len(members),) * 2), ones @ st @ ones.T)
        rows = np.vstack([np.kron(ones, x[i][None, :]) for i in members])
        flat = y[members].reshape(-1)
        seen = ~np.isnan(flat)
        inv = np.linalg.inv(cov[np.ix_(seen, seen)])
        lhs += rows[seen].T @ inv @ rows[seen]
        rhs += rows[seen].T @ inv @ flat[seen]
    return np.linalg.solve(lhs, rhs)


@pytest.mark.parametrize("initial", ["free", "stationary"])
@pytest.mark.parametrize("seed", [1, 2])
def test_loglik_and_profiled_coefficients_equal_dense_oracle(initial, seed):
    rng = np.random.default_rng(40 + seed)
    y = _gappy(seed)
    n, _, k = y.shape
    x = _design(n, seed)
    beta = rng.normal(size=(k, 3))
    _, phi, sw, sb, p0, st = _parameters(rng, k, initial, singular=seed == 2)
    for share in (True, False):
        data = prepare_dynamic(y, share=share, design=x)
        level = therapist_level(data, THERAPISTS)
        given = evaluate(data, phi, sw, sb, p0, mu=beta.reshape(-1))
        assert abs(given.loglik - dense_loglik(y, x @ beta.T, phi, sw, sb, p0)) < 1e-8
        nested = evaluate(data, phi, sw, sb, p0, mu=beta.reshape(-1), level=level,
                          sigma_t=st)
        dense = dense_therapist_loglik(y, THERAPISTS, x @ beta.T, phi, sw, sb, p0, st)
        assert abs(nested.loglik - dense) < 1e-8
        for lev, sigma_t, therapist in ((None, None, None), (level, st, THERAPISTS)):
            prof = evaluate(data, phi, sw, sb, p0, level=lev, sigma_t=sigma_t)
            gls = _dense_gls(y, x, phi, sw, sb, p0, therapist, sigma_t)
            assert np.max(np.abs(prof.mu - gls)) < 1e-8 * max(1.0, np.max(np.abs(gls)))
            means = x @ prof.mu.reshape(k, 3).T
            at = (dense_loglik(y, means, phi, sw, sb, p0) if lev is None else
                  dense_therapist_loglik(y, THERAPISTS, means, phi, sw, sb, p0, st))
            assert abs(prof.loglik - at) < 1e-8


def test_one_column_design_is_the_model_without_covariates():
    rng = np.random.default_rng(3)
    y = _gappy(3)
    _, phi, sw, sb, p0, st = _parameters(rng, 3, "free", singular=False)
    plain = prepare_dynamic(y)
    ones = prepare_dynamic(y, design=np.ones((len(y), 1)))
    for kw in ({}, {"sigma_t": st}):
        a = evaluate(plain, phi, sw, sb, p0, level=therapist_level(plain, THERAPISTS)
                     if kw else None, **kw)
        b = evaluate(ones, phi, sw, sb, p0, level=therapist_level(ones, THERAPISTS)
                     if kw else None, **kw)
        assert abs(a.loglik - b.loglik) < 1e-9
        np.testing.assert_allclose(a.mu, b.mu, atol=1e-10)


def _symmetric_gradient(data, mats, name, kw):
    """Central differences of the profiled logLik in the upper triangle of a
    symmetric matrix (both entries moved)."""
    k = len(mats["phi"])
    upper = np.triu_indices(k)

    def value(v):
        m = np.zeros((k, k))
        m[upper] = v
        moved = dict(mats, **{name: m + np.triu(m, 1).T})
        extra = {} if "level" not in kw else {"level": kw["level"], "sigma_t": moved["st"]}
        return evaluate(data, moved["phi"], moved["sw"], moved["sb"], moved["p0"],
                        **extra).loglik
    return central_gradient(value, mats[name][upper]), upper


@pytest.mark.parametrize("initial", ["free", "stationary"])
@pytest.mark.parametrize("nested", [False, True])
def test_gradient_at_profiled_coefficients_equals_central_differences(initial, nested):
    """The envelope theorem: the adjoint with the profiled residuals is the gradient of
    the profiled likelihood."""
    rng = np.random.default_rng(11)
    y = _gappy(4)
    x = _design(len(y), 4)
    _, phi, sw, sb, p0, st = _parameters(rng, 3, initial, singular=False)
    data = prepare_dynamic(y, design=x)
    kw = {"level": therapist_level(data, THERAPISTS), "sigma_t": st} if nested else {}
    grad = loglik_gradient(data, phi, sw, sb, p0, None, **kw)
    mats = {"phi": phi, "sw": sw, "sb": sb, "p0": p0, "st": st}
    numeric = central_gradient(
        lambda v: evaluate(data, v.reshape(3, 3), sw, sb, p0, **kw).loglik, phi.reshape(-1))
    assert np.max(np.abs(grad.phi.reshape(-1) - numeric)) < 1e-6 * np.max(np.abs(numeric))
    names = {"sw": grad.sigma_w, "sb": grad.sigma_b}
    if initial == "free":
        names["p0"] = grad.p0
    if nested:
        names["st"] = grad.sigma_t
    for name, analytic in names.items():
        numeric, upper = _symmetric_gradient(data, mats, name, kw)
        folded = (analytic + analytic.T - np.diag(np.diag(analytic)))[upper]
        assert np.max(np.abs(folded - numeric)) < 1e-6 * np.max(np.abs(numeric))
    # the coefficients given: their own derivative
    beta = grad.means * 1.1
    at = loglik_gradient(data, phi, sw, sb, p0, beta, **kw)
    numeric = central_gradient(lambda b: evaluate(data, phi, sw, sb, p0, mu=b, **kw).loglik,
                               beta)
    assert np.max(np.abs(at.mu - numeric)) < 1e-6 * np.max(np.abs(numeric))


def test_shuffled_dyads_give_the_same_profile():
    rng = np.random.default_rng(5)
    y = _gappy(5)
    x = _design(len(y), 5)
    _, phi, sw, sb, p0, st = _parameters(rng, 3, "free", singular=False)
    order = rng.permutation(len(y))
    relabelled = np.array([f"t{t}" for t in THERAPISTS])[order]
    for lev_of in (None, THERAPISTS):
        a_data = prepare_dynamic(y, design=x)
        b_data = prepare_dynamic(y[order], design=x[order])
        kw_a = {} if lev_of is None else {"level": therapist_level(a_data, THERAPISTS),
                                           "sigma_t": st}
        kw_b = {} if lev_of is None else {"level": therapist_level(b_data, relabelled),
                                           "sigma_t": st}
        a = evaluate(a_data, phi, sw, sb, p0, **kw_a)
        b = evaluate(b_data, phi, sw, sb, p0, **kw_b)
        assert abs(a.loglik - b.loglik) < 1e-8
        np.testing.assert_allclose(a.mu, b.mu, rtol=1e-9, atol=1e-10)
