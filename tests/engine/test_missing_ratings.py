"""UN x AR(1) with single missing ratings: the Schur-complement stencil against the dense
oracles (the full-V likelihood and the per-dyad dense Cholesky whitening)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dense_oracle import dense_loglik
from dense_residual import cross_products
from engine_reference import reference_evaluate
from oracle_support import assert_matches_dense_oracle

from apim.engine import Diagonal, MixedModel, Residual, Unstructured
from apim.engine.mixed.likelihood import evaluate
from apim.engine.mixed.missing_ratings import GridProducts
from apim.engine.mixed.model import Prepared
from apim.engine.mixed.moments import TypeMoments


def ratings(missing: float, seed: int = 0, n_dyads: int = 14, n_sessions: int = 9
            ) -> pd.DataFrame:
    """Dyads with skipped sessions, ``missing`` of single ratings dropped, one dyad whose
    second member stops rating after session 3 and one whose first member rated once."""
    rng = np.random.default_rng(seed)
    dyad, session, role = np.meshgrid(np.arange(n_dyads), np.arange(1, n_sessions + 1),
                                      [0, 1], indexing="ij")
    d = pd.DataFrame({"dyad": dyad.ravel(), "session": session.ravel(),
                      "role": role.ravel()})
    skipped = rng.random((n_dyads, n_sessions)) < 0.1  # whole sessions: gaps
    d = d[~skipped[d["dyad"], d["session"] - 1]]
    d = d[rng.random(len(d)) >= missing]
    d = d[~((d["dyad"] == 1) & (d["role"] == 1) & (d["session"] > 3))]
    d = d[~((d["dyad"] == 2) & (d["role"] == 0) & (d["session"] != 5))]
    d = d.assign(x=rng.normal(size=len(d)), xp=rng.normal(size=len(d)))
    u = rng.normal(0, 0.6, size=(n_dyads, 2))[d["dyad"], d["role"]]
    d["y"] = 3 + 0.5 * d["role"] + 0.4 * d["x"] + 0.2 * d["xp"] + u + rng.normal(size=len(d))
    return d.reset_index(drop=True)


def model_for(d: pd.DataFrame, residual: str, therapist: bool = False) -> MixedModel:
    p, t = 1 - d["role"].to_numpy(float), d["role"].to_numpy(float)
    X = np.column_stack([p, t, d["x"], d["xp"]])
    Z = np.column_stack([p, t, t * d["x"]])
    return MixedModel(y=d["y"].to_numpy(), X=X, dyad=d["dyad"].to_numpy(),
                      role=d["role"].to_numpy(), session=d["session"].to_numpy(), Z=Z,
                      random=Unstructured(3), residual=Residual.named(residual),
                      therapist=(d["dyad"].to_numpy() // 3) if therapist else None,
                      therapist_random=Diagonal(1) if therapist else None)


def assert_products_equal_dense(model, prep: Prepared, theta: np.ndarray) -> None:
    """The Schur-corrected products and their derivatives equal the dense whitening's."""
    dense = cross_products(model.residual, prep.layout, prep.raw, model.q, dense=True)
    got = prep.products.products(model.residual, theta, True)
    want = dense.products(model.residual, theta, True)
    for name in ("rows", "rest", "logdet", "d_rows", "d_rest", "d_logdet"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-10,
                                   atol=1e-10, err_msg=name)


CASES = [(res, miss) for res in ("un-ar1", "cs-ar1") for miss in (0.03, 0.10, 0.30)]


@pytest.mark.parametrize("residual, missing", CASES)
def test_products_equal_dense_whitening(residual, missing):
    d = ratings(missing, seed=int(100 * missing))
    model = model_for(d, residual)
    prep = Prepared.of(model)
    assert isinstance(prep.products, GridProducts)
    theta = np.random.default_rng(2).normal(scale=0.4, size=model.residual.n_params)
    assert_products_equal_dense(model, prep, theta)


@pytest.mark.parametrize("residual, missing", CASES)
def test_loglik_and_gradient_equal_full_v_oracle(residual, missing):
    d = ratings(missing, seed=7 + int(100 * missing))
    model = model_for(d, residual, therapist=missing > 0.05)
    theta = np.random.default_rng(3).normal(scale=0.3, size=model.n_params)
    theta[-1] = 0.8  # phi = 0.66: strong serial correlation
    assert_matches_dense_oracle(model, theta, tol=1e-8)


def test_complete_series_use_the_plain_stencil():
    d = ratings(0.0)
    d = d[~d["dyad"].isin([1, 2])]
    both = d.groupby(["dyad", "session"])["role"].transform("size") == 2
    prep = Prepared.of(model_for(d[both], "un-ar1"))
    assert isinstance(prep.products, TypeMoments)


def test_one_member_with_a_single_rating_and_large_gaps():
    """A dyad in which one member rated once among many sessions of the other, and
    sessions far apart (gaps of 5 and more): still the oracle's likelihood."""
    d = ratings(0.05, seed=11, n_dyads=6, n_sessions=6)
    d = d.assign(session=d["session"] ** 2)  # gaps 3, 5, 7, ...
    model = model_for(d, "un-ar1")
    theta = np.r_[np.zeros(6), -0.3, -0.1, 0.4, 1.2]
    ev = evaluate(model, Prepared.of(model), theta, True)
    assert ev.loglik == pytest.approx(dense_loglik(model, theta, True), abs=1e-8)


def _blocks(products: GridProducts) -> list[int]:
    """Widths of the batches of units with several missing entries."""
    return [b.places.shape[1] for b in products.correction.blocks]


@pytest.mark.parametrize("missing", [0.03, 0.10, 0.30])
@pytest.mark.parametrize("reml", [True, False])
def test_equal_to_reference_evaluation(missing, reml):
    """The stencil with the correction against the old per-cluster evaluation on the dense
    whitening (tests/oracles/engine_reference.py): logLik to 1e-8, gradient and GLS quantities."""
    d = ratings(missing, seed=31 + int(100 * missing), n_dyads=25, n_sessions=12)
    model = model_for(d, "un-ar1")
    prep = Prepared.of(model)
    assert isinstance(prep.products, GridProducts)
    dense = cross_products(model.residual, prep.layout, prep.raw, model.q, dense=True)
    oracle = Prepared(**{**prep.__dict__, "products": dense})
    theta = np.random.default_rng(5).normal(scale=0.3, size=model.n_params)
    got = evaluate(model, prep, theta, reml)
    want = reference_evaluate(model, oracle, theta, reml)
    assert got.loglik == pytest.approx(want.loglik, abs=1e-8)
    np.testing.assert_allclose(got.gradient, want.gradient, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(got.beta, want.beta, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(got.blups, want.blups, rtol=1e-8, atol=1e-10)
    without = evaluate(model, prep, theta, reml, gradient=False)
    assert without.loglik == pytest.approx(got.loglik, abs=1e-10)


def test_runs_of_missing_entries_and_a_session_only_one_member_rated():
    """Entries missing in consecutive sessions (across members) interact in ``Q_mm``:
    units of several entries, solved as blocks; at session 4 only the first members rated
    and one dyad's second member rated at one session only."""
    d = ratings(0.2, seed=4, n_dyads=12, n_sessions=14)
    d = d[~((d["session"] == 4) & (d["role"] == 1))]
    d = d[~((d["dyad"] == 5) & (d["role"] == 1) & (d["session"] != 7))]
    model = model_for(d.reset_index(drop=True), "un-ar1")
    prep = Prepared.of(model)
    assert isinstance(prep.products, GridProducts)
    assert max(_blocks(prep.products)) >= 8  # dyads 1 and 5: long runs
    theta = np.random.default_rng(6).normal(scale=0.4, size=model.residual.n_params)
    theta[-1] = 1.0
    assert_products_equal_dense(model, prep, theta)
    assert_matches_dense_oracle(model, np.r_[np.zeros(6) + 0.1, theta], tol=1e-8)


def test_a_single_missing_rating():
    """One missing entry in the whole data set: one unit, one place."""
    d = ratings(0.0, seed=8, n_dyads=5, n_sessions=5)
    d = d[~d["dyad"].isin([1, 2])]
    both = d.groupby(["dyad", "session"])["role"].transform("size") == 2
    d = d[both]
    d = d.drop(index=d.index[7]).reset_index(drop=True)
    model = model_for(d, "un-ar1")
    prep = Prepared.of(model)
    assert isinstance(prep.products, GridProducts)
    assert _blocks(prep.products) == []
    theta = np.r_[np.zeros(6) + 0.2, -0.2, 0.1, 0.3, 0.7]
    assert_matches_dense_oracle(model, theta, tol=1e-8)


def test_a_member_who_stopped_rating_early_in_a_long_series():
    """37 consecutive missing ratings of one member: one unit of 37 entries (a block of
    width 64), still the dense whitening's products and the oracle's likelihood."""
    d = ratings(0.05, seed=12, n_dyads=5, n_sessions=40)
    model = model_for(d, "un-ar1")
    prep = Prepared.of(model)
    assert isinstance(prep.products, GridProducts)
    assert 64 in _blocks(prep.products)
    theta = np.r_[-0.3, 0.2, 0.0, 0.9]
    assert_products_equal_dense(model, prep, theta)
    assert_matches_dense_oracle(model, np.r_[np.zeros(6) + 0.1, theta], tol=1e-8)


@pytest.mark.parametrize("reml", [True, False])
def test_a_member_who_never_rated(reml):
    """A dyad whose second member never rated: all of that member's entries are missing
    (one unit over the whole series); the first member's likelihood is then the AR(1) of
    the first member alone, as the reference evaluation on the dense whitening has it."""
    d = ratings(0.1, seed=21, n_dyads=10, n_sessions=10)
    d = d[~((d["dyad"] == 4) & (d["role"] == 1))].reset_index(drop=True)
    model = model_for(d, "un-ar1")
    prep = Prepared.of(model)
    dense = cross_products(model.residual, prep.layout, prep.raw, model.q, dense=True)
    oracle = Prepared(**{**prep.__dict__, "products": dense})
    theta = np.r_[np.zeros(6) + 0.15, -0.1, 0.2, -0.4, 0.6]
    got = evaluate(model, prep, theta, reml)
    want = reference_evaluate(model, oracle, theta, reml)
    assert got.loglik == pytest.approx(want.loglik, abs=1e-8)
    np.testing.assert_allclose(got.gradient, want.gradient, rtol=1e-8, atol=1e-8)
    assert got.loglik == pytest.approx(dense_loglik(model, theta, reml), abs=1e-8)


def _runs() -> pd.DataFrame:
    """Runs of missing entries across members (units of up to 8 entries and more)."""
    d = ratings(0.2, seed=4, n_dyads=12, n_sessions=14)
    d = d[~((d["dyad"] == 5) & (d["role"] == 1) & (d["session"] != 7))]
    return d.reset_index(drop=True)


ADJOINT_DATA = {
    "3% missing": lambda: ratings(0.03, seed=41),
    "30% missing": lambda: ratings(0.30, seed=42),
    "runs": _runs,
    "one member stopped early": lambda: ratings(0.05, seed=12, n_dyads=5, n_sessions=40),
}


def _contracted(products, a_rows, a_rest, a_logdet) -> np.ndarray:
    """The forward derivatives contracted with the adjoint vectors."""
    return (np.einsum("kdam,dam->k", products.d_rows, a_rows)
            + np.einsum("kab,ab->k", products.d_rest, a_rest) + products.d_logdet @ a_logdet)


@pytest.mark.parametrize("residual", ["un-ar1", "cs-ar1"])
@pytest.mark.parametrize("data", list(ADJOINT_DATA))
def test_adjoint_derivatives_equal_the_forward_ones(data, residual):
    """``adjoint_products``: the same products as :meth:`products`, and its
    vector-Jacobian product equals the forward derivatives contracted with random
    adjoint vectors (the stencil's part, ``TypeMoments.vjp``, included)."""
    model = model_for(ADJOINT_DATA[data](), residual)
    prep = Prepared.of(model)
    assert isinstance(prep.products, GridProducts)
    rng = np.random.default_rng(3)
    theta = rng.normal(scale=0.4, size=model.residual.n_params)
    forward = prep.products.products(model.residual, theta, True)
    adjoint = prep.products.adjoint_products(model.residual, theta)
    assert adjoint.d_rows is None and adjoint.vjp is not None
    for name in ("rows", "rest", "logdet"):
        np.testing.assert_allclose(getattr(adjoint, name), getattr(forward, name),
                                   rtol=1e-12, atol=1e-12, err_msg=name)
    for _ in range(3):
        a = [rng.normal(size=getattr(forward, n).shape) for n in ("rows", "rest", "logdet")]
        want = _contracted(forward, *a)
        np.testing.assert_allclose(adjoint.vjp(*a), want, rtol=1e-10,
                                   atol=1e-10 * np.abs(want).max())


def test_stencil_vjp_equals_its_forward_derivatives():
    """Complete data: the stencil's own vector-Jacobian product."""
    model = model_for(ratings(0.0, seed=43), "un-ar1")
    prep = Prepared.of(model)
    stencil = prep.products.moments if isinstance(prep.products, GridProducts) \
        else prep.products
    assert isinstance(stencil, TypeMoments)
    rng = np.random.default_rng(4)
    theta = rng.normal(scale=0.4, size=model.residual.n_params)
    c, dc = model.residual.coefficients(theta, stencil.types)
    forward = stencil.products(model.residual, theta, True, (c, dc))
    a = [rng.normal(size=getattr(forward, n).shape) for n in ("rows", "rest", "logdet")]
    np.testing.assert_allclose(stencil.vjp(c, dc)(*a), _contracted(forward, *a), rtol=1e-10)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("data", ["30% missing", "runs"])
def test_adjoint_gradient_equals_the_forward_gradient(data, reml):
    """``evaluate(adjoint=True)``: the same log-likelihood, GLS quantities and gradient
    as the forward derivatives, away from the optimum; the derivatives of X'V^-1 X in the
    random-effect parameters only."""
    model = model_for(ADJOINT_DATA[data](), "un-ar1")
    prep = Prepared.of(model)
    theta = np.random.default_rng(7).normal(scale=0.3, size=model.n_params)
    forward = evaluate(model, prep, theta, reml)
    adjoint = evaluate(model, prep, theta, reml, adjoint=True)
    assert forward.d_xvx is not None and adjoint.d_xvx is not None
    k_g = model.random.n_params  # X'V^-1 X's derivatives in the random-effect ones only
    assert len(adjoint.d_xvx) == k_g
    np.testing.assert_allclose(adjoint.d_xvx, forward.d_xvx[:k_g], rtol=1e-12, atol=1e-12)
    assert adjoint.loglik == pytest.approx(forward.loglik, rel=1e-13)
    np.testing.assert_allclose(adjoint.beta, forward.beta, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(adjoint.gradient, forward.gradient, rtol=1e-9,
                               atol=1e-9 * np.abs(forward.gradient).max())


def test_adjoint_is_not_used_with_a_therapist_level():
    """Therapists as clusters (several dyads' rows per cluster): the forward derivatives,
    whatever ``adjoint`` asks."""
    model = model_for(ratings(0.1, seed=44), "un-ar1", therapist=True)
    prep = Prepared.of(model)
    theta = np.random.default_rng(8).normal(scale=0.3, size=model.n_params)
    got = evaluate(model, prep, theta, True, adjoint=True)
    assert got.d_xvx is not None
    np.testing.assert_array_equal(got.gradient, evaluate(model, prep, theta, True).gradient)


@pytest.mark.filterwarnings("ignore::apim.errors.BoundaryWarning")
def test_fit_with_adjoint_gradients_equals_the_forward_fit(monkeypatch):
    """A whole fit (its gradients by the adjoint method, the residual parameters'
    derivatives of X'V^-1 X by central differences from the Hessian's evaluations)
    against the same fit with forward derivatives throughout: the same optimum, SEs and
    Satterthwaite df, with as many evaluations. The random slope's true SD is zero, so
    the search ends at a singular G (the quasi-Newton phase and the restart run too)."""
    import apim.engine.mixed.estimate as engine_fit

    model = model_for(ratings(0.1, seed=45, n_dyads=30, n_sessions=10), "un-ar1")
    new = engine_fit.estimate_mixed(model)
    monkeypatch.setattr(engine_fit, "evaluate",
                        lambda *args, adjoint=False, **kwargs: evaluate(*args, **kwargs))
    old = engine_fit.estimate_mixed(model)
    assert new.converged and old.converged
    assert new.loglik == pytest.approx(old.loglik, rel=1e-10)
    np.testing.assert_allclose(new.coef, old.coef, rtol=1e-7)
    np.testing.assert_allclose(new.se, old.se, rtol=1e-6)
    np.testing.assert_allclose(new.df_satterthwaite, old.df_satterthwaite, rtol=1e-7)
    np.testing.assert_allclose(new.d_xvx, old.d_xvx, rtol=1e-6,
                               atol=1e-8 * np.abs(old.d_xvx).max())
    assert new.n_evaluations == old.n_evaluations


def test_differenced_xvx_from_the_hessians_points():
    """The residual parameters' derivatives of X'V^-1 X from its values at theta +- h e_j
    (where the final Hessian's central differences evaluate the likelihood) against the
    forward derivatives; None when a point was not evaluated (the fit then makes one
    forward evaluation)."""
    from apim.engine.mixed.estimate import _differenced_xvx
    from apim.engine.mixed.hessian import difference_step

    model = model_for(ratings(0.1, seed=46), "un-ar1")
    prep = Prepared.of(model)
    theta = np.random.default_rng(9).normal(scale=0.3, size=model.n_params)
    adjoint = evaluate(model, prep, theta, True, adjoint=True)
    probes = {}
    for j in range(model.random.n_params, model.n_params):
        for point in (theta + difference_step(theta, j), theta - difference_step(theta, j)):
            probes[point.tobytes()] = evaluate(model, prep, point, True, adjoint=True).cov_beta
    want = evaluate(model, prep, theta, True).d_xvx
    got = _differenced_xvx(theta, adjoint, probes)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8 * np.abs(want).max())
    probes.popitem()
    assert _differenced_xvx(theta, adjoint, probes) is None
