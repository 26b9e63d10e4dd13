"""The dynamic engine's therapist level (dyads nested in therapists, ``v_j ~ N(0,
Sigma_T)`` added to every observation of the therapist's dyads) against the dense oracle
that stacks all observations of a therapist's dyads into one covariance, on unbalanced
data with gaps, late starts, dropout, a single-session dyad and unequal caseloads; both
initial conditions; singular ``Sigma_T`` and ``Sigma_B``; ``Sigma_T = 0`` against the model
without the level."""

from __future__ import annotations

import numpy as np
import pytest
from dynamic_oracle import assert_problem_gradient, central_gradient, dense_therapist_loglik
from dynamic_support import PHI, simulate_grid, stationary

from apim.engine.dynamic.estimate import _Problem, fit_dynamic
from apim.engine.dynamic.gradient import loglik_gradient
from apim.engine.dynamic.kalman import evaluate, prepare_dynamic, therapist_level
from apim.engine.dynamic.parameters import DynamicLayout, DynamicParameters


def _gappy(seed: int, n: int = 17, t: int = 6, k: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, t, k)) + rng.normal(size=(n, 1, k))
    y[rng.random(y.shape) < 0.15] = np.nan          # missing ratings
    y[rng.random((n, t)) < 0.15] = np.nan           # skipped sessions
    y[0, :3] = np.nan                               # a dyad that starts late
    y[1, 4:] = np.nan                               # one that drops out
    y[2, 1:] = np.nan                               # one with a single session
    y[5:9] = y[4]                                   # dyads sharing a pattern
    y[5:9] += rng.normal(size=y[5:9].shape)
    return y


#: unequal caseloads (1 to 6 dyads), labels not in dyad order
THERAPISTS = np.array(["c", "a", "a", "b", "c", "a", "d", "c", "a", "b", "e", "e", "a",
                       "c", "e", "c", "a"])


def _parameters(rng: np.random.Generator, k: int, initial: str, singular: bool):
    phi = rng.normal(scale=0.3, size=(k, k))
    phi *= 0.7 / max(0.7, float(np.max(np.abs(np.linalg.eigvals(phi)))))
    a = rng.normal(size=(k, k))
    sw = a @ a.T / k + 0.3 * np.eye(k)
    b = rng.normal(size=(k, 1 if singular else k))
    sb = b @ b.T / k
    c = rng.normal(size=(k, k))
    p0 = c @ c.T / k + 0.2 * np.eye(k) if initial == "free" else stationary(phi, sw)
    d = rng.normal(size=(k, 2 if singular else k))
    st = d @ d.T / k
    return rng.normal(size=k), phi, sw, sb, p0, st


@pytest.mark.parametrize("initial", ["free", "stationary"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_therapist_level_equals_dense_oracle(initial, seed):
    rng = np.random.default_rng(300 + seed)
    y = _gappy(seed)
    mu, phi, sw, sb, p0, st = _parameters(rng, 3, initial, singular=seed == 3)
    for share in (True, False):
        data = prepare_dynamic(y, share=share)
        level = therapist_level(data, THERAPISTS)
        ev = evaluate(data, phi, sw, sb, p0, mu=mu, level=level, sigma_t=st)
        dense = dense_therapist_loglik(y, THERAPISTS, mu, phi, sw, sb, p0, st)
        assert abs(ev.loglik - dense) < 1e-8
        # profiled means: the GLS with the therapist level, the dense maximum
        prof = evaluate(data, phi, sw, sb, p0, level=level, sigma_t=st)
        at = dense_therapist_loglik(y, THERAPISTS, prof.mu, phi, sw, sb, p0, st)
        assert abs(prof.loglik - at) < 1e-8
        for j in range(3):
            step = np.zeros(3)
            step[j] = 1e-3
            assert dense_therapist_loglik(y, THERAPISTS, prof.mu + step, phi, sw, sb, p0,
                                          st) < at
            assert dense_therapist_loglik(y, THERAPISTS, prof.mu - step, phi, sw, sb, p0,
                                          st) < at


@pytest.mark.parametrize("initial", ["free", "stationary"])
def test_zero_therapist_covariance_is_the_model_without_the_level(initial):
    rng = np.random.default_rng(7)
    y = _gappy(4)
    mu, phi, sw, sb, p0, _ = _parameters(rng, 3, initial, singular=False)
    data = prepare_dynamic(y)
    level = therapist_level(data, THERAPISTS)
    zero = np.zeros((3, 3))
    for given in (mu, None):
        with_level = evaluate(data, phi, sw, sb, p0, mu=given, level=level, sigma_t=zero)
        without = evaluate(data, phi, sw, sb, p0, mu=given)
        assert with_level.loglik == pytest.approx(without.loglik, abs=1e-9)
        assert np.allclose(with_level.mu, without.mu, atol=1e-10)
        assert np.allclose(with_level.information, without.information, atol=1e-9)


def test_one_therapist_per_dyad_adds_sigma_t_to_sigma_b():
    """Each dyad its own therapist: Sigma_T adds to Sigma_B (closed form)."""
    rng = np.random.default_rng(8)
    y = _gappy(5)
    mu, phi, sw, sb, p0, st = _parameters(rng, 3, "free", singular=False)
    data = prepare_dynamic(y)
    level = therapist_level(data, np.arange(len(y)))
    nested = evaluate(data, phi, sw, sb, p0, mu=mu, level=level, sigma_t=st)
    assert nested.loglik == pytest.approx(evaluate(data, phi, sw, sb + st, p0, mu=mu).loglik,
                                          abs=1e-9)


@pytest.mark.parametrize("initial", ["free", "stationary"])
@pytest.mark.parametrize("seed", [1, 3])
def test_therapist_gradient_equals_central_differences(initial, seed):
    """The adjoint through the therapist level, in every entry of each matrix (taken as
    unconstrained; symmetric perturbations of the covariances) and the means, given and
    profiled, against central differences of the likelihood."""
    rng = np.random.default_rng(400 + seed)
    y = _gappy(seed)
    mu, phi, sw, sb, p0, st = _parameters(rng, 3, initial, singular=seed == 3)
    data = prepare_dynamic(y)
    level = therapist_level(data, THERAPISTS)
    rows, cols = np.tril_indices(3)

    def sym(v):
        m = np.zeros((3, 3))
        m[rows, cols] = v
        return m + np.tril(m, -1).T

    def folded(bar):     # the derivative in a symmetric matrix's lower triangle
        return (bar + bar.T - np.diag(np.diag(bar)))[rows, cols]

    for given in (mu, None):
        g = loglik_gradient(data, phi, sw, sb, p0, given, level, st)
        at = g.means
        assert abs(g.loglik - evaluate(data, phi, sw, sb, p0, mu=at, level=level,
                                       sigma_t=st).loglik) < 1e-9

        def value(mu_=at, phi_=phi, sw_=sw, sb_=sb, p0_=p0, st_=st):
            if initial == "stationary" and p0_ is p0:
                p0_ = stationary(phi_, sw_)
            return evaluate(data, phi_, sw_, sb_, p0_, mu=mu_, level=level,
                            sigma_t=st_).loglik

        checks = [
            (g.mu, central_gradient(lambda x: value(mu_=x), at)),
            (folded(g.sigma_t),
             central_gradient(lambda x: value(st_=sym(x)), st[rows, cols])),
            (folded(g.sigma_b),
             central_gradient(lambda x: value(sb_=sym(x)), sb[rows, cols])),
        ]
        if initial == "free":
            checks += [
                (g.phi.ravel(), central_gradient(lambda x: value(phi_=x.reshape(3, 3)),
                                         phi.ravel())),
                (folded(g.sigma_w),
                 central_gradient(lambda x: value(sw_=sym(x)), sw[rows, cols])),
                (folded(g.p0),
                 central_gradient(lambda x: value(p0_=sym(x)), p0[rows, cols])),
            ]
        for analytic, numeric in checks:
            assert np.max(np.abs(analytic - numeric)) < 1e-6 * max(1.0, np.max(
                np.abs(numeric)))


@pytest.mark.parametrize("structure", ["unstructured", "diagonal"])
@pytest.mark.parametrize("initial", ["free", "stationary"])
def test_problem_gradient_with_therapist_level(structure, initial):
    """The estimation's natural and unconstrained gradients with ``Sigma_T`` in the
    vectors (unstructured and diagonal) against central differences."""
    rng = np.random.default_rng(500)
    y = _gappy(6)
    mu, phi, sw, sb, p0, st = _parameters(rng, 3, initial, singular=False)
    st = np.diag(np.diag(st)) if structure == "diagonal" else st
    layout = DynamicLayout(3, initial, therapist=structure)
    data = prepare_dynamic(y)
    problem = _Problem(data, layout, therapist_level(data, THERAPISTS))
    nat = layout.pack(DynamicParameters(mu, phi, sw, sb, p0, st))
    assert np.allclose(layout.pack(layout.unpack(nat)), nat)
    grad = assert_problem_gradient(problem, nat)
    # the information's cheap columns (means, Sigma_B, Sigma_T on one filter's sums)
    # against forward differences of the whole gradient
    hess = problem.hessian(nat)
    steps = 1e-7 * np.maximum(1.0, np.abs(nat))
    full = np.array([-(problem.gradient(nat + e)[1] - grad) / h
                     for e, h in zip(np.diag(steps), steps)])
    full = (full + full.T) / 2
    assert np.max(np.abs(hess - full)) < 1e-5 * np.max(np.abs(full))


def _simulate_nested(n_therapists: int, per: int, t: int, seed: int,
                     sigma_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ratings of the model with a therapist intercept added to all sessions of each
    therapist's dyads; some ratings missing."""
    rng = np.random.default_rng(seed)
    y = simulate_grid(n_therapists * per, t, seed=seed)
    therapist = np.repeat(np.arange(n_therapists), per)
    v = rng.multivariate_normal(np.zeros(4), sigma_t, size=n_therapists)
    y = y + v[therapist][:, None, :]
    y[rng.random(y.shape) < 0.05] = np.nan
    return y, therapist


def test_fit_recovers_the_therapist_covariance():
    """A simulation: 60 therapists x 4 dyads x 8 sessions, Sigma_T with variance .5 and
    covariance .2; the estimates within 3 SEs of the truth, the therapist-free model
    fitting clearly worse."""
    truth = 0.3 * np.eye(4) + 0.2
    y, therapist = _simulate_nested(60, 4, 8, 21, truth)
    fit = fit_dynamic(y, initial="stationary", therapist=therapist)
    assert fit.converged and fit.n_therapists == 60
    assert fit.sigma_t is not None
    names = fit.parameter_names
    at = [names.index(f"therapist(v{c},v{r})") for r, c in zip(*np.tril_indices(4))]
    z = (fit.estimate[at] - truth[np.tril_indices(4)]) / np.sqrt(np.diag(fit.cov)[at])
    assert np.all(np.abs(z) < 3)
    assert np.allclose(fit.phi, PHI, atol=0.12)
    plain = fit_dynamic(y, initial="stationary")
    assert fit.loglik - plain.loglik > 20
    diagonal = fit_dynamic(y, initial="stationary", therapist=therapist,
                           therapist_covariance="diagonal")
    assert plain.loglik < diagonal.loglik < fit.loglik
    assert diagonal.sigma_t is not None
    assert np.count_nonzero(diagonal.sigma_t - np.diag(np.diag(diagonal.sigma_t))) == 0
