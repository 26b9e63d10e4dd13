"""Boundary fits of the dynamic therapist level (``Sigma_T`` singular or zero; few
therapists make them common). The fit searches ``Sigma_T`` by its Cholesky factor (SDs
when diagonal), not logged, and finishes by Newton steps in those coordinates. Checked
against the previous route, a quasi-Newton search in log-Cholesky coordinates (log SDs)
run to a per-observation gradient of 1e-9 (where a zero variance is ``-inf``): the fit's
logLik is not below it by more than 1e-6; against the first-order (KKT) conditions of
the optimum over positive semi-definite ``Sigma_T`` (gradient zero in every other
parameter and in the range of ``Sigma_T``, negative semi-definite on its null space); the
boundary reported; and the logLik against the dense oracle. Data: subsets of the bundled
seed data, simulations with ``Sigma_T = 0`` and with a rank-1 ``Sigma_T`` (between them
both finishes: Newton steps in the search's coordinates, at full or reduced rank, and
the search resumed where they do not settle)."""

from __future__ import annotations

import numpy as np
import pytest
from dynamic_oracle import dense_therapist_loglik
from dynamic_support import simulate_grid, with_gaps
from scipy import optimize

import apim
import apim.model.dynamic as dynamic_model
from apim.engine.dynamic.estimate import _Problem, _start, fit_dynamic
from apim.engine.dynamic.kalman import prepare_dynamic, therapist_level
from apim.engine.dynamic.parameters import DynamicLayout
from apim.engine.multivariate.parameters import tril, unvech


def _standardised(y: np.ndarray) -> np.ndarray:
    """Per variable mean 0 and SD 1 (the fit's own standardisation is then the identity
    and its logLik on the reference problem's scale)."""
    return (y - np.nanmean(y, axis=(0, 1))) / np.nanstd(y, axis=(0, 1))


def _problem(z: np.ndarray, therapist: np.ndarray, covariance: str,
             covariates: np.ndarray | None = None) -> _Problem:
    data = prepare_dynamic(z, design=None if covariates is None else np.column_stack(
        [np.ones(len(z)), covariates]))
    layout = DynamicLayout(z.shape[2], "free", therapist=covariance,  # type: ignore[arg-type]
                           covariates=0 if covariates is None else covariates.shape[1])
    return _Problem(data, layout, therapist_level(data, therapist))


def _logged_search(z: np.ndarray, therapist: np.ndarray, covariance: str,
                   covariates: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The maximum logLik and the natural parameters there by the previous route: BFGS
    over log-Cholesky (log-SD) coordinates of ``Sigma_T`` from the same start values, to
    a per-observation gradient of 1e-9."""
    problem = _problem(z, therapist, covariance, covariates)
    layout = problem.layout
    n_t = layout.n_therapist
    rows, cols = tril(layout.k)
    logged = np.ones(n_t, bool) if covariance == "diagonal" else rows == cols
    start = layout.to_search(_start(z, layout))
    where = np.flatnonzero(logged) + len(start) - n_t

    def objective(t: np.ndarray) -> tuple[float, np.ndarray]:
        theta = t.copy()
        theta[where] = np.exp(t[where])
        value, grad = problem.search_objective(theta)
        grad[where] *= theta[where]
        return value, grad

    t0 = start.copy()
    t0[where] = np.log(start[where])
    result = optimize.minimize(objective, t0, jac=True, method="BFGS",
                               options={"gtol": 1e-9, "maxiter": 20000})
    theta = result.x.copy()
    theta[where] = np.exp(result.x[where])
    return -float(result.fun) * problem.size, problem.natural(theta)


def _assert_kkt(fit, z: np.ndarray, therapist: np.ndarray, covariance: str,
                covariates: np.ndarray | None = None) -> None:
    """First-order conditions of a maximum over positive semi-definite ``Sigma_T``."""
    problem = _problem(z, therapist, covariance, covariates)
    layout = problem.layout
    value, grad = problem.gradient(fit.estimate)
    assert value == pytest.approx(fit.loglik, abs=1e-6)
    assert np.max(np.abs(grad[:layout.therapist_start])) < 2e-2
    tail = grad[layout.therapist_start:]
    g = np.diag(tail) if covariance == "diagonal" else unvech(tail, layout.k)
    g = (g + np.diag(np.diag(g))) / 2 if covariance != "diagonal" else g
    values, vectors = np.linalg.eigh(fit.sigma_t)
    null = values < 1e-6 * values.max() if values.max() > 0 else np.ones(len(values), bool)
    assert null.any()  # the cases here are at the boundary
    along_null = vectors[:, null].T @ g @ vectors[:, null]
    assert np.linalg.eigvalsh(along_null).max() < 2e-2   # no direction into the cone gains
    if (~null).any():
        assert np.max(np.abs(vectors[:, ~null].T @ g)) < 2e-2


def _seed_subset(n_dyads: int) -> tuple[np.ndarray, np.ndarray]:
    """The bundled seed data's grid (engine order) and therapists, first ``n_dyads``."""
    captured: dict = {}

    class _Captured(Exception):
        pass

    def capture(y, **kwargs):
        captured.update(y=y, therapist=kwargs["therapist"])
        raise _Captured

    original = dynamic_model.fit_dynamic
    dynamic_model.fit_dynamic = capture
    try:
        with pytest.raises(_Captured):
            apim.fit(apim.load_alliance(), apim.DynamicAPIMSpec(
                "outcome", ("alliance",), therapist_level=True))
    finally:
        dynamic_model.fit_dynamic = original
    return captured["y"][:n_dyads], np.asarray(captured["therapist"])[:n_dyads]


def _simulated(rank: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """36 therapists with 3 to 5 dyads, 10 sessions with gaps; ``Sigma_T`` of ``rank``
    (0: no therapist effect)."""
    rng = np.random.default_rng(seed)
    caseload = rng.integers(3, 6, size=36)
    therapist = np.repeat(np.arange(36), caseload)
    y = with_gaps(simulate_grid(len(therapist), 10, seed), seed)
    if rank:
        loading = rng.normal(scale=0.4, size=(4, rank))
        v = rng.normal(size=(36, rank)) @ loading.T
        y = y + v[therapist][:, None, :]
    return y, therapist


@pytest.mark.parametrize("covariance", ["diagonal", "unstructured"])
def test_seed_subset_boundary_not_worse_than_logged_search(covariance):
    y, therapist = _seed_subset(120)
    z = _standardised(y)
    fit = fit_dynamic(z, therapist=therapist, therapist_covariance=covariance)
    assert fit.converged
    # finished by Newton steps (the unstructured one at a reduced rank), not a search
    # resumed to 1e-7
    assert "Newton steps in the search's coordinates" in fit.message
    assert any("therapist" in flag for flag in fit.boundary)
    assert fit.loglik >= _logged_search(z, therapist, covariance)[0] - 1e-6
    _assert_kkt(fit, z, therapist, covariance)


@pytest.mark.parametrize(("rank", "covariance", "seed"),
                         [(0, "diagonal", 5), (0, "unstructured", 5),
                          (1, "unstructured", 7)])
def test_simulated_boundary_not_worse_than_logged_search(rank, covariance, seed):
    y, therapist = _simulated(rank, seed)
    z = _standardised(y)
    fit = fit_dynamic(z, therapist=therapist, therapist_covariance=covariance)
    assert fit.converged
    assert any("therapist" in flag for flag in fit.boundary)
    assert fit.loglik >= _logged_search(z, therapist, covariance)[0] - 1e-6
    _assert_kkt(fit, z, therapist, covariance)
    # the logLik at the estimates, against the dense oracle
    p = fit.layout.unpack(fit.estimate)
    dense = dense_therapist_loglik(z, therapist, p.mu, p.phi, p.sigma_w, p.sigma_b, p.p0,
                                   p.sigma_t)
    assert fit.loglik == pytest.approx(dense, abs=1e-6)


@pytest.mark.parametrize("covariance", ["unstructured", "diagonal"])
def test_interior_fit_unchanged_route_and_agrees_with_logged_search(covariance):
    """A full-rank Sigma_T: natural Newton steps finish as before (no boundary, no
    Newton in the search's coordinates); the optimum is the logged search's."""
    rng = np.random.default_rng(13)
    therapist = np.repeat(np.arange(40), rng.integers(3, 7, size=40))
    y = with_gaps(simulate_grid(len(therapist), 10, 13), 13)
    a = rng.normal(size=(4, 4))
    sigma_t = a @ a.T / 8 + 0.15 * np.eye(4)
    y = y + rng.multivariate_normal(np.zeros(4), sigma_t, size=40)[therapist][:, None, :]
    z = _standardised(y)
    fit = fit_dynamic(z, therapist=therapist, therapist_covariance=covariance)
    assert fit.converged and not fit.boundary
    assert "search's coordinates" not in fit.message
    loglik, estimate = _logged_search(z, therapist, covariance)
    assert fit.loglik >= loglik - 1e-8
    assert np.max(np.abs(fit.estimate - estimate) / np.sqrt(np.diag(fit.cov))) < 1e-5


def test_boundary_with_a_covariate_of_the_means():
    """Sigma_T = 0 with a dyad-level covariate (the means' block of the information,
    profiled out for the Newton steps in the search's coordinates, is then K x 2)."""
    y, therapist = _simulated(0, 5)
    covariate = np.random.default_rng(3).normal(size=(len(y), 1))
    y = y + 0.5 * covariate[:, :, None]
    z = _standardised(y)
    fit = fit_dynamic(z, therapist=therapist, therapist_covariance="unstructured",
                      covariates=covariate)
    assert fit.converged
    assert any("therapist" in flag for flag in fit.boundary)
    loglik, _ = _logged_search(z, therapist, "unstructured", covariate)
    assert fit.loglik >= loglik - 1e-6
    _assert_kkt(fit, z, therapist, "unstructured", covariate)
