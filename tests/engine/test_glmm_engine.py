"""The generalized engine against the dense Gauss-Hermite oracle (tests/oracles/glmm_dense.py):
the adaptive quadrature's marginal log-likelihood at arbitrary parameters, binary and
ordinal, logit and probit, distinguishable and exchangeable, at a boundary; the response
derivatives against differences; the modes' first-order condition."""

from __future__ import annotations

import numpy as np
import pytest

from apim.engine.glmm import LINKS, GLMMModel, fit_glmm
from apim.engine.glmm.estimate import GLMMProblem
from apim.engine.glmm.model import prepare
from apim.engine.glmm.response import interval, log_probability
from tests.oracles.glmm_dense import dense_loglik


def _data(seed: int, n: int = 25, sessions: int = 5, K: int = 2, unbalanced: bool = True):
    rng = np.random.default_rng(seed)
    dyad = np.repeat(np.arange(n), 2 * sessions)
    role = np.tile([0, 1], n * sessions)
    x = rng.normal(size=len(dyad))
    X = np.column_stack([1 - role, role, x * (1 - role), x * role])
    u = rng.normal(size=(n, 2)) @ np.array([[1.0, 0.0], [0.6, 0.8]]).T
    eta = X @ np.array([-0.3, 0.4, 0.8, -0.5]) + u[dyad, role]
    latent = eta + rng.logistic(size=len(eta))
    y = np.digitize(latent, np.linspace(-1, 1, K - 1)) if K > 2 else (latent > 0).astype(int)
    if unbalanced:  # drop some ratings: dyads of different sizes, a member's session missing
        keep = rng.random(len(y)) > 0.25
        dyad, role, X, y = dyad[keep], role[keep], X[keep], y[keep]
    # shuffle rows: the engine must not depend on row order
    order = rng.permutation(len(y))
    return y[order], X[order], dyad[order], role[order]


CASES = [("binomial", "logit", "unstructured"), ("binomial", "probit", "unstructured"),
         ("ordinal", "logit", "unstructured"), ("ordinal", "probit", "exchangeable"),
         ("binomial", "logit", "exchangeable")]


@pytest.mark.parametrize("family, link, random", CASES)
def test_quadrature_matches_the_dense_oracle(family, link, random):
    K = 4 if family == "ordinal" else 2
    y, X, dyad, role = _data(1, K=K)
    if family == "ordinal":
        X = X[:, 2:]
    model = GLMMModel(category=y, X=X, dyad=dyad, role=role, family=family, link=link,
                      n_categories=K, random=random, nagq=25)
    rng = np.random.default_rng(7)
    x = rng.normal(scale=0.5, size=model.n_params)
    beta, theta, c = model.split(x)
    G = model.covariance(c)
    engine = GLMMProblem(prepare(model)).loglik(x)
    thresholds = None if family == "binomial" else (
        theta if len(theta) == 2 else np.vstack([theta, theta]))
    oracle = dense_loglik(y, X, dyad, role, beta, G, link, thresholds, points=60)
    assert abs(engine - oracle) < 1e-6
    # the oracle itself has converged in its number of points
    assert abs(oracle - dense_loglik(y, X, dyad, role, beta, G, link, thresholds,
                                     points=40)) < 1e-7


def test_quadrature_at_a_singular_covariance():
    y, X, dyad, role = _data(2)
    model = GLMMModel(category=y, X=X, dyad=dyad, role=role, nagq=25)
    x = np.array([-0.2, 0.3, 0.5, -0.4, 0.0, 0.9, -40.0])  # cor +1: L22 = e^-40
    G = model.covariance(x[-3:])
    engine = GLMMProblem(prepare(model)).loglik(x)
    assert abs(engine - dense_loglik(y, X, dyad, role, x[:4], G, points=60)) < 1e-6


def test_laplace_is_quadrature_with_one_point_and_quadrature_converges():
    y, X, dyad, role = _data(3)
    x = np.array([-0.3, 0.4, 0.8, -0.5, 0.1, 0.5, -0.2])
    values = {k: GLMMProblem(prepare(GLMMModel(category=y, X=X, dyad=dyad, role=role,
                                               nagq=k))).loglik(x) for k in (1, 7, 15, 25)}
    # Laplace differs visibly with 5 sessions per dyad; quadrature settles
    assert abs(values[1] - values[25]) > 1e-3
    assert abs(values[15] - values[25]) < 1e-8
    assert abs(values[7] - values[25]) < 1e-3


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_response_derivatives(link):
    f = LINKS[link]
    rng = np.random.default_rng(0)
    eta = rng.normal(scale=3, size=200)
    upper = np.where(rng.random(200) < 0.3, np.inf, rng.normal(size=200) + 1)
    lower = np.where(rng.random(200) < 0.3, -np.inf, upper - 1.5)
    lower = np.where(np.isinf(upper), rng.normal(size=200), lower)
    h = 1e-5
    logp, d1, d2 = interval(f, upper, lower, eta)
    up, d1p, _ = interval(f, upper, lower, eta + h)
    down, d1m, _ = interval(f, upper, lower, eta - h)
    assert np.allclose((up - down) / (2 * h), d1, atol=1e-7)
    assert np.allclose((d1p - d1m) / (2 * h), d2, atol=1e-7)
    assert np.allclose(log_probability(f, upper, lower, eta), logp, atol=1e-12)
    # far tails keep their logarithms
    tail, _, _ = interval(f, np.array([-40.0]), np.array([-np.inf]), np.array([0.0]))
    assert np.isfinite(tail[0]) and tail[0] < -39


def test_fit_recovers_and_is_invariant_to_row_order_and_labels():
    y, X, dyad, role = _data(4, n=60, sessions=6)
    model = GLMMModel(category=y, X=X, dyad=dyad, role=role, nagq=5)
    fit = fit_glmm(model)
    order = np.random.default_rng(1).permutation(len(y))
    again = fit_glmm(GLMMModel(category=y[order], X=X[order], dyad=dyad[order] * 7 + 3,
                               role=role[order], nagq=5))
    assert fit.converged and again.converged
    assert abs(fit.loglik - again.loglik) < 1e-8
    assert np.allclose(fit.natural, again.natural, atol=1e-5)
    # at the optimum the difference gradient vanishes
    problem = GLMMProblem(prepare(model))
    assert np.max(np.abs(problem.evaluate(fit.x).score)) < 1e-3


@pytest.mark.parametrize("nagq, tolerance", [(1, 1e-7), (7, 1e-3)])
def test_members_relabelled_swap_the_estimates(nagq, tolerance):
    """Laplace is exactly invariant to which member is first; quadrature's grid follows
    the Cholesky factor of the curvature, so at finite K it is invariant only up to the
    quadrature error (which vanishes as K grows)."""
    y, X, dyad, role = _data(5, n=50, sessions=6)
    fit = fit_glmm(GLMMModel(category=y, X=X, dyad=dyad, role=role, nagq=nagq))
    swapped = fit_glmm(GLMMModel(category=y, X=X[:, [1, 0, 3, 2]], dyad=dyad, role=1 - role,
                                 nagq=nagq))
    assert abs(fit.loglik - swapped.loglik) < tolerance
    se = np.sqrt(np.diag(fit.cov_natural))
    assert np.all(np.abs(fit.natural[[1, 0, 3, 2, 5, 4, 6]] - swapped.natural)
                  < 100 * tolerance * se[[1, 0, 3, 2, 5, 4, 6]])


def test_zero_variance_is_reported_at_the_boundary():
    rng = np.random.default_rng(6)
    n, T = 80, 6
    dyad = np.repeat(np.arange(n), 2 * T)
    role = np.tile([0, 1], n * T)
    X = np.column_stack([1 - role, role]).astype(float)
    y = (rng.random(len(dyad)) < 0.4).astype(int)  # no dyad effect at all
    fit = fit_glmm(GLMMModel(category=y, X=X, dyad=dyad, role=role, nagq=1))
    G = fit.G
    assert fit.converged
    if np.min(np.diag(G)) < 1e-8:  # an SD at zero must be reported, never silent
        assert fit.boundary
    assert np.all(np.isfinite(np.sqrt(np.diag(fit.cov_coef))))


def _difference_gradient(problem: GLMMProblem, x: np.ndarray) -> np.ndarray:
    out = np.empty(len(x))
    for j in range(len(x)):
        e = np.zeros(len(x))
        e[j] = step = 1e-6 * max(1.0, abs(x[j]))
        out[j] = (problem.loglik(x + e) - problem.loglik(x - e)) / (2 * step)
    return out


@pytest.mark.parametrize("family, link, random", CASES)
@pytest.mark.parametrize("nagq", [1, 4])
def test_analytic_gradient_matches_differences(family, link, random, nagq):
    K = 4 if family == "ordinal" else 2
    y, X, dyad, role = _data(1, K=K)
    if family == "ordinal":
        X = X[:, 2:]
    for thresholds in (("role", "shared") if family == "ordinal" else ("role",)):
        model = GLMMModel(category=y, X=X, dyad=dyad, role=role, family=family, link=link,
                          n_categories=K, random=random, nagq=nagq, thresholds=thresholds)
        x = np.random.default_rng(3).normal(scale=0.5, size=model.n_params)
        problem = GLMMProblem(prepare(model))
        point = problem.evaluate(x)
        assert point.loglik == pytest.approx(problem.loglik(x), abs=1e-9)
        assert np.allclose(point.score, _difference_gradient(problem, x), atol=1e-6)
