"""Engine internals: dense oracle, finite-difference gradients, structures, statsmodels."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from dense_oracle import dense_covariance, dense_loglik
from dense_residual import crossprod, whiten_dense
from nlme_support import simulate
from oracle_support import assert_matches_dense_oracle
from scipy import optimize
from threadpoolctl import threadpool_limits

from apim.engine import CompoundSymmetry, Diagonal, MixedModel, Residual, Unstructured
from apim.engine.mixed.estimate import estimate_mixed as fit
from apim.engine.mixed.model import Prepared
from apim.engine.mixed.random_effects import Exchangeable
from apim.engine.mixed.residuals import RESIDUAL_NAMES
from apim.errors import RankDeficientError, SpecError


def small(seed: int = 3) -> pd.DataFrame:
    return simulate(seed, n_therapists=4, caseload=(2, 3), sessions=(2, 6))


def model_for(d: pd.DataFrame, residual: str, random, therapist: bool) -> MixedModel:
    p, t = 1 - d["role"].to_numpy(), d["role"].to_numpy()
    x = d["x"].to_numpy()
    X = np.column_stack([p, t, p * x, t * x, d["xp"]]).astype(float)
    Z = np.column_stack([p, t, t * x]).astype(float) if random else None
    return MixedModel(y=d["y"].to_numpy(), X=X, dyad=d["dyad"].to_numpy(), role=t,
                      session=d["session"].to_numpy(), Z=Z,
                      random=random(3) if random else None,
                      residual=Residual.named(residual),
                      therapist=d["therapist"].to_numpy() if therapist else None,
                      therapist_random=Diagonal(1) if therapist else None)


CASES = [(res, rand, th) for res in RESIDUAL_NAMES
         for rand, th in ((None, False), (Unstructured, False), (Diagonal, True),
                          (CompoundSymmetry, True))]


@pytest.mark.parametrize("residual, random, therapist", CASES)
def test_likelihood_and_gradient_match_dense_oracle(residual, random, therapist):
    d = small()
    model = model_for(d, residual, random, therapist)
    rng = np.random.default_rng(len(residual))
    theta = rng.normal(scale=0.4, size=model.n_params)
    assert_matches_dense_oracle(model, theta, tol=1e-9)


@pytest.mark.parametrize("residual", list(RESIDUAL_NAMES))
def test_stencil_whitening_equals_dense_cholesky(residual):
    """The type-moment cross products equal those of a dense Cholesky factor (for the
    Kronecker structures on dyads in which both members rated every session)."""
    d = small(5)
    if Residual.named(residual).kronecker:
        both = d.groupby(["dyad", "session"])["role"].transform("size") == 2
        d = d[both]
    model = model_for(d, residual, Unstructured, False)
    prep = Prepared.of(model)
    theta = np.random.default_rng(1).normal(scale=0.3, size=model.residual.n_params)
    from apim.engine.mixed.moments import TypeMoments

    assert isinstance(prep.products, TypeMoments)
    got = prep.products.products(model.residual, theta, True)
    wu, logdet_d, dwu, dlogdet_d = whiten_dense(model.residual, theta, prep.layout, prep.raw)

    r = model.q
    full = crossprod(wu, wu, prep.layout)
    np.testing.assert_allclose(got.rows, full[:, :r], atol=1e-10)
    np.testing.assert_allclose(got.rest, full[:, r:, r:].sum(0), atol=1e-9)
    np.testing.assert_allclose(got.logdet, logdet_d, atol=1e-10)
    np.testing.assert_allclose(got.d_logdet, dlogdet_d, atol=1e-10)
    for k in range(len(theta)):
        half = crossprod(dwu[k], wu, prep.layout)
        d_full = half + half.transpose(0, 2, 1)
        np.testing.assert_allclose(got.d_rows[k], d_full[:, :r], atol=1e-9)
        np.testing.assert_allclose(got.d_rest[k], d_full[:, r:, r:].sum(0), atol=1e-8)


def test_un_ar1_fit_agrees_with_dense_oracle():
    """UN x AR(1) (which nlme cannot fit): estimates, logLik and SEs from the oracle."""
    d = simulate(11, n_therapists=5, caseload=(2, 3), sessions=(5, 10))
    model = model_for(d, "un-ar1", Unstructured, False)
    result = fit(model, "REML")
    assert result.converged
    objective = lambda th: -dense_loglik(model, th, True)  # noqa: E731
    start = result.theta + 0.05
    # the oracle's own search: BFGS on finite differences of the dense likelihood (no
    # analytic gradient of the engine), about 250 dense evaluations where Nelder-Mead
    # needed 1,500 and was allowed 40,000; one BLAS thread, as threads only contend on
    # matrices this small (3 s instead of 15 s on a busy 2-core machine)
    with threadpool_limits(limits=1):
        oracle = optimize.minimize(objective, start, method="BFGS", options={"gtol": 1e-8})
    assert result.loglik == pytest.approx(-oracle.fun, abs=1e-5)
    assert result.loglik >= -oracle.fun - 1e-8
    np.testing.assert_allclose(result.theta, oracle.x, atol=2e-3)
    # fixed-effect SEs from the full V at the optimum
    v = dense_covariance(model, result.theta)
    X = np.asarray(model.X)
    cov = np.linalg.inv(X.T @ np.linalg.solve(v, X))
    np.testing.assert_allclose(result.se.to_numpy(), np.sqrt(np.diag(cov)), rtol=1e-8)
    # observed information of theta from the oracle, by central differences
    with threadpool_limits(limits=1):
        hess = _oracle_hessian(objective, result.theta, h=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(np.linalg.inv(result.hessian))),
                               np.sqrt(np.diag(np.linalg.inv(hess))), rtol=1e-3)


def _oracle_hessian(objective, theta: np.ndarray, h: float) -> np.ndarray:
    """Central-difference Hessian of ``objective`` at ``theta`` (upper triangle, mirrored)."""
    k = len(theta)
    hess = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):  # symmetric: the upper triangle only
            ei, ej = np.eye(k)[i] * h, np.eye(k)[j] * h
            hess[i, j] = hess[j, i] = (
                objective(theta + ei + ej) - objective(theta + ei - ej)
                - objective(theta - ei + ej) + objective(theta - ei - ej)) / (4 * h * h)
    return hess


def test_statsmodels_mixedlm_agrees_on_what_it_can_express():
    """Two correlated role intercepts and one residual variance: MixedLM can fit that."""
    sm = pytest.importorskip("statsmodels.formula.api")
    d = simulate(21)
    d = d.assign(P=1 - d["role"], T=d["role"])
    model = MixedModel(y=d["y"].to_numpy(), X=d[["P", "T", "x", "xp"]].to_numpy(float),
                       dyad=d["dyad"].to_numpy(), role=d["role"].to_numpy(),
                       session=d["session"].to_numpy(), Z=d[["P", "T"]].to_numpy(float),
                       random=Unstructured(2), residual=Residual.named("independent"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.mixedlm("y ~ 0 + P + T + x + xp", d, groups=d["dyad"],
                         re_formula="0 + P + T").fit(reml=True, method="lbfgs", gtol=1e-10)
    ours = fit(model, "REML")
    np.testing.assert_allclose(ours.coef.to_numpy(), ref.fe_params.to_numpy(), atol=1e-5)
    # statsmodels takes fixed-effect SEs from the joint observed information of all
    # parameters; nlme and apim from (X'V^-1 X)^-1. They agree to within a percent.
    np.testing.assert_allclose(ours.se.to_numpy(), ref.bse_fe.to_numpy(), rtol=1e-2)
    np.testing.assert_allclose(ours.G, ref.cov_re.to_numpy(), rtol=1e-3)
    residual_sd = next(p for p in ours.parameters if p.level == "residual" and p.kind == "sd")
    assert residual_sd.variance == pytest.approx(ref.scale, rel=1e-4)
    assert ours.loglik == pytest.approx(ref.llf, abs=1e-4)


def test_fit_does_not_mutate_model_and_is_order_invariant():
    d = small(8)
    model = model_for(d, "un", Unstructured, False)
    y_before = model.y.copy()
    first = fit(model)
    assert np.array_equal(model.y, y_before)
    shuffled = d.sample(frac=1, random_state=4)
    second = fit(model_for(shuffled, "un", Unstructured, False))
    assert second.loglik == pytest.approx(first.loglik, abs=1e-8)
    np.testing.assert_allclose(second.coef.to_numpy(), first.coef.to_numpy(), atol=1e-7)
    # fitted values follow the input rows
    back = pd.Series(second.fitted, index=shuffled.index).loc[d.index].to_numpy()
    np.testing.assert_allclose(back, first.fitted, atol=1e-6)


def test_blups_and_fitted_values_by_hand():
    d = small(9)
    model = model_for(d, "un", Unstructured, False)
    r = fit(model)
    v = dense_covariance(model, r.theta)
    resid = model.y - model.X @ r.coef.to_numpy()
    dyads = model.dyad
    for dy in np.unique(dyads)[:3]:
        rows = dyads == dy
        z = model.Z[rows]
        b = r.G @ z.T @ np.linalg.solve(v[np.ix_(rows, rows)], resid[rows])
        np.testing.assert_allclose(r.random_effects.loc[dy].to_numpy(), b, atol=1e-8)
    np.testing.assert_allclose(r.residuals, model.y - r.fitted)


def test_structures_parameter_maps():
    un = Unstructured(3)
    theta = np.array([0.1, 0.5, -0.2, 0.3, -0.4, 0.2])
    g = un.matrix(theta)
    assert np.all(np.linalg.eigvalsh(g) > 0)
    step = 1e-7
    for k, dg in enumerate(un.jacobian(theta)):
        e = np.eye(6)[k] * step
        np.testing.assert_allclose(dg, (un.matrix(theta + e) - un.matrix(theta - e)) / (2 * step),
                                   atol=1e-6)
    cs = CompoundSymmetry(3)
    g = cs.matrix(np.array([np.log(2.0), -5.0]))
    assert g[0, 0] == pytest.approx(4.0) and g[0, 1] / 4 > -0.5
    assert Residual.named("un-ar1").kronecker and not Residual.named("ar1").kronecker
    with pytest.raises(SpecError, match="'toeplitz' is not one of"):
        Residual.named("toeplitz")


def test_rank_deficient_design_is_named():
    d = small()
    model = model_for(d, "un", Unstructured, False)
    X = np.column_stack([model.X, model.X[:, 0] + model.X[:, 1]])
    bad = MixedModel(y=model.y, X=X, dyad=model.dyad, role=model.role, session=model.session,
                     x_names=("P", "T", "Px", "Tx", "xp", "one"))
    with pytest.raises(RankDeficientError, match="'one'"):
        fit(bad)


def test_boundary_is_reported():
    d = small(12)
    noise = pd.Series(np.random.default_rng(0).normal(size=len(d)), index=d.index)
    y = noise - noise.groupby(d["dyad"]).transform("mean")  # no between-dyad variance
    model = MixedModel(y=y.to_numpy(),
                       X=np.ones((len(d), 1)), dyad=d["dyad"].to_numpy(),
                       role=d["role"].to_numpy(), session=d["session"].to_numpy(),
                       Z=np.ones((len(d), 1)), random=Unstructured(1),
                       residual=Residual.named("independent"))
    with pytest.warns(UserWarning, match="boundary estimate"):
        r = fit(model)
    assert r.boundary and "at zero" in r.boundary[0]


@pytest.mark.parametrize("residual", ["cs", "cs-ar1", "independent"])
def test_exchangeable_likelihood_and_gradient_match_dense_oracle(residual):
    """The members' intercepts and x slopes with the exchangeable G (k = 2)."""
    d = small(6)
    p, t = 1 - d["role"].to_numpy(), d["role"].to_numpy()
    x = d["x"].to_numpy()
    model = MixedModel(y=d["y"].to_numpy(), X=np.column_stack([np.ones(len(d)), x, d["xp"]]),
                       dyad=d["dyad"].to_numpy(), role=t, session=d["session"].to_numpy(),
                       Z=np.column_stack([p, p * x, t, t * x]).astype(float),
                       random=Exchangeable(2), residual=Residual.named(residual))
    theta = np.random.default_rng(2).normal(scale=0.4, size=model.n_params)
    assert_matches_dense_oracle(model, theta, tol=1e-9)


@pytest.mark.parametrize("structure", [Unstructured(3), Diagonal(3), CompoundSymmetry(3),
                                       Exchangeable(2)])
def test_structures_jacobian_rescale_and_records(structure):
    rng = np.random.default_rng(5)
    theta = rng.normal(scale=0.5, size=structure.n_params)
    step = 1e-7
    for k, dg in enumerate(structure.jacobian(theta)):
        e = np.eye(len(theta))[k] * step
        np.testing.assert_allclose(
            dg, (structure.matrix(theta + e) - structure.matrix(theta - e)) / (2 * step),
            atol=1e-6)
    size = structure.matrix(theta).shape[0]
    factors = structure.tie(rng.uniform(0.1, 10, size))
    moved, jac = structure.rescale(theta, factors)
    np.testing.assert_allclose(structure.matrix(moved),
                               np.diag(factors) @ structure.matrix(theta) @ np.diag(factors),
                               rtol=1e-10, atol=1e-12)
    for k in range(len(theta)):  # the map is diagonal: d moved_k / d theta_k = jac_k
        e = np.eye(len(theta))[k] * step
        diff = (structure.rescale(theta + e, factors)[0]
                - structure.rescale(theta - e, factors)[0]) / (2 * step)
        np.testing.assert_allclose(diff, np.eye(len(theta))[k] * jac[k], atol=1e-6)
    names = [f"z{j}" for j in range(size)]
    records = structure.records(theta, names)
    g = structure.matrix(theta)
    for p in records:
        assert p.level == "dyad" and p.kind in ("sd", "cor")
        if p.kind == "sd":
            assert p.estimate == pytest.approx(np.sqrt(g[names.index(p.effects[0]),
                                                         names.index(p.effects[0])]))
    assert len({p.label for p in records}) == len(records)


def test_exchangeable_is_invariant_to_swapping_the_members():
    ex = Exchangeable(2)
    g = ex.matrix(np.random.default_rng(3).normal(size=ex.n_params))
    swap = [2, 3, 0, 1]
    np.testing.assert_allclose(g[np.ix_(swap, swap)], g)
    assert np.linalg.eigvalsh(g).min() > 0
