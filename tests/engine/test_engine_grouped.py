"""The grouped evaluation (dyads sharing their random-effect blocks) and the vectorised
per-cluster gradient against the per-cluster code they replaced (tests/oracles/engine_reference.py,
verbatim from before), the full-V oracle and finite differences; fits equal to before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from engine_reference import reference_evaluate
from oracle_support import assert_matches_dense_oracle

import apim.engine.mixed.estimate as engine_fit
import apim.engine.mixed.grouped as grouped_module
from apim.engine import CompoundSymmetry, Diagonal, MixedModel, Residual, Unstructured
from apim.engine.mixed.likelihood import evaluate, grouped_moments
from apim.engine.mixed.model import Prepared
from apim.engine.mixed.moments import TypeMoments
from apim.engine.mixed.residuals import RESIDUAL_NAMES, SessionResidual


def sessions(n_dyads: int, n_sessions: int, layout: str, seed: int,
             single_role: bool = False) -> pd.DataFrame:
    """Dyad x session x role rows. ``unbalanced``: each dyad stops after 3, 5 or
    ``n_sessions`` sessions and a few whole sessions are skipped (AR gaps); ``singles``:
    also 10% of single ratings missing (only one member rated those sessions)."""
    rng = np.random.default_rng(seed)
    dyad, session, role = np.meshgrid(np.arange(n_dyads), np.arange(1, n_sessions + 1),
                                      [0] if single_role else [0, 1], indexing="ij")
    d = pd.DataFrame({"dyad": dyad.ravel(), "session": session.ravel(), "role": role.ravel()})
    if layout in ("unbalanced", "singles"):
        last = rng.choice([3, 5, n_sessions], size=n_dyads)
        d = d[d["session"] <= last[d["dyad"]]]
        skipped = (d["dyad"] % 7 == 3) & (d["session"] == 2)
        d = d[~skipped.to_numpy()]
    if layout == "singles":
        d = d[rng.random(len(d)) >= 0.10]
    d = d.assign(x=rng.normal(size=len(d)), xp=rng.normal(size=len(d)),
                 therapist=d["dyad"] // 3)
    u = rng.normal(0, 0.6, size=(n_dyads, 2))[d["dyad"], d["role"]]
    d["y"] = 3 + 0.5 * d["role"] + 0.4 * d["x"] + 0.2 * d["xp"] + u + rng.normal(size=len(d))
    return d.reset_index(drop=True)


def model_of(d: pd.DataFrame, residual: str, random: str = "intercepts",
             therapist: bool = False) -> MixedModel:
    p, t = 1 - d["role"].to_numpy(float), d["role"].to_numpy(float)
    single = (d["role"] == 0).all()
    X = np.column_stack([np.ones(len(d)), d["x"], d["xp"]]) if single else \
        np.column_stack([p, t, p * d["x"], t * d["x"], p * d["xp"], t * d["xp"]])
    Z = np.ones((len(d), 1)) if single else np.column_stack([p, t])
    structure: Unstructured | CompoundSymmetry | None = Unstructured(Z.shape[1])
    if random == "slopes":
        Z = np.column_stack([p, t, p * d["x"], t * d["x"]])
        structure = Unstructured(4)
    elif random == "singular":
        structure = CompoundSymmetry(2)
    elif random == "none":
        Z, structure = None, None
    return MixedModel(y=d["y"].to_numpy(), X=X, dyad=d["dyad"].to_numpy(),
                      role=d["role"].to_numpy(), session=d["session"].to_numpy(), Z=Z,
                      random=structure, residual=Residual.named(residual),
                      therapist=d["therapist"].to_numpy() if therapist else None,
                      therapist_random=Diagonal(1) if therapist else None)


def parameters(model: MixedModel, seed: int) -> np.ndarray:
    """A parameter vector away from the start: correlated random effects, unequal residual
    SDs, rho 0.3 and phi 0.4 where the structure has them."""
    rng = np.random.default_rng(seed)
    parts = []
    if model.random is not None:
        parts.append(rng.normal(-0.3, 0.3, size=model.random.n_params))
    if model.therapist_random is not None:
        parts.append(np.array([-0.7]))
    res = model.residual
    if isinstance(res, SessionResidual):
        parts.append(np.r_[rng.normal(0, 0.3, size=1 if res.equal_variances else 2),
                           [0.3] if res.correlated else [], [0.4] if res.ar1 else []])
    else:
        parts.append(rng.normal(0, 0.3, size=res.n_params))
    return np.concatenate(parts)


def assert_same_as_reference(model: MixedModel, theta: np.ndarray,
                             grouped: bool = True) -> None:
    """Every field of the evaluation equals the pre-grouping code's, ML and REML, with
    and without the gradient, to ~1e-9 relative."""
    prep = Prepared.of(model)
    for reml in (True, False):
        for gradient in (True, False):
            got = evaluate(model, prep, theta, reml, gradient, grouped=grouped)
            want = reference_evaluate(model, prep, theta, reml, gradient)
            scale = abs(want.loglik)
            assert got.loglik == pytest.approx(want.loglik, rel=1e-11)
            for name in ("beta", "cov_beta", "blups", "gradient", "d_xvx"):
                a, b = getattr(got, name), getattr(want, name)
                if b is None:
                    assert a is None, name
                    continue
                atol = 1e-10 * (scale if name == "gradient" else np.abs(b).max(initial=1))
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=atol, err_msg=name)


@pytest.fixture
def group_always(monkeypatch):
    """The grouped path even when its groups are small (it pays only with few groups per
    dyad, see DYAD_COST), so the tests exercise it on small data."""
    monkeypatch.setattr(grouped_module, "DYAD_COST", 10 ** 12)


def uses_grouped(model: MixedModel) -> bool:
    return grouped_moments(Prepared.of(model)) is not None


@pytest.mark.parametrize("layout", ["balanced", "unbalanced", "singles"])
@pytest.mark.parametrize("residual", list(RESIDUAL_NAMES))
def test_grouped_equals_reference(residual, layout, group_always):
    model = model_of(sessions(24, 6, layout, seed=len(residual)), residual)
    kronecker_with_gaps = Residual.named(residual).kronecker and layout == "singles"
    assert uses_grouped(model) != kronecker_with_gaps  # missing ratings: GridProducts
    assert_same_as_reference(model, parameters(model, 1))


@pytest.mark.parametrize("residual", ["independent", "diagonal", "ar1-equal"])
def test_single_role_data(residual, group_always):
    model = model_of(sessions(20, 5, "unbalanced", seed=4, single_role=True), residual)
    assert uses_grouped(model)
    assert_same_as_reference(model, parameters(model, 2))


@pytest.mark.parametrize("residual", ["un", "un-ar1"])
def test_random_slopes_keep_the_per_dyad_path_and_both_agree(residual, monkeypatch):
    model = model_of(sessions(16, 5, "balanced", seed=5), residual, random="slopes")
    assert not uses_grouped(model)  # a group per dyad: not worth it
    assert_same_as_reference(model, parameters(model, 3))
    monkeypatch.setattr(grouped_module, "DYAD_COST", 10 ** 12)  # forced: a dyad per group
    assert uses_grouped(model)
    assert_same_as_reference(model, parameters(model, 3))


@pytest.mark.parametrize("residual", ["un", "ar1", "un-ar1"])
@pytest.mark.parametrize("layout", ["balanced", "singles"])
def test_therapist_level_per_cluster(residual, layout):
    model = model_of(sessions(18, 5, layout, seed=6), residual, therapist=True)
    assert not uses_grouped(model)
    assert_same_as_reference(model, parameters(model, 4))
    slopes = model_of(sessions(12, 4, layout, seed=7), residual, "slopes", therapist=True)
    assert_same_as_reference(slopes, parameters(slopes, 5))


@pytest.mark.parametrize("residual", ["un", "cs-ar1"])
def test_no_random_part(residual):
    model = model_of(sessions(15, 5, "singles", seed=8), residual, random="none")
    assert_same_as_reference(model, parameters(model, 6))


def test_singular_g(group_always):
    """A compound-symmetric G at correlation 1 (rank one): the Woodbury form with a
    singular G, grouped and per dyad."""
    model = model_of(sessions(20, 5, "unbalanced", seed=9), "un", random="singular")
    theta = np.r_[-0.2, 40.0, 0.1, -0.2, 0.3]
    assert model.random is not None and np.linalg.matrix_rank(model.random.matrix(theta[:2])) == 1
    assert uses_grouped(model)
    assert_same_as_reference(model, theta)
    assert_same_as_reference(model, theta, grouped=False)


@pytest.mark.parametrize("residual", ["un", "ar1", "un-ar1"])
def test_grouped_against_full_v_oracle(residual, group_always):
    """Independent of both likelihood codes: the dense N x N likelihood and central
    differences of the grouped log-likelihood."""
    model = model_of(sessions(10, 4, "unbalanced", seed=10), residual)
    assert uses_grouped(model)
    assert_matches_dense_oracle(model, parameters(model, 7), tol=1e-8)


def test_groups_are_dyads_with_equal_blocks():
    """Random intercepts under UN residuals: a dyad's blocks depend only on how many
    sessions it has, so dyads with 3, 5 and 8 complete sessions make three groups."""
    d = sessions(90, 8, "balanced", seed=11)
    last = np.repeat([3, 5, 8], 30)
    d = d[d["session"] <= last[d["dyad"]]]
    prep = Prepared.of(model_of(d, "un"))
    assert isinstance(prep.products, TypeMoments)
    grouped = prep.grouped
    assert grouped is not None
    assert sorted(grouped.size.tolist()) == [30, 30, 30]
    assert np.array_equal(grouped.group, np.repeat(grouped.group[[0, 30, 60]], 30))
    # the grouped path pays only with enough dyads per group
    assert uses_grouped(model_of(d, "un"))
    few = d[d["dyad"] % 30 == 0]  # 3 dyads in 3 groups
    assert not uses_grouped(model_of(few, "un"))


def test_memory_bound_falls_back_to_per_dyad(monkeypatch):
    monkeypatch.setattr(grouped_module, "MAX_BYTES", 1_000)
    prep = Prepared.of(model_of(sessions(40, 5, "balanced", seed=12), "un"))
    assert isinstance(prep.products, TypeMoments)
    assert grouped_module.GroupedMoments.of(prep.products, max_bytes=1_000) is None


@pytest.mark.parametrize("residual, random, therapist", [
    ("un", "intercepts", False), ("un-ar1", "intercepts", False), ("ar1", "slopes", False),
    ("un", "intercepts", True)])
def test_fits_equal_to_before(residual, random, therapist, monkeypatch):
    """Whole fits with the new evaluation and with the reference one: the same estimates."""
    d = sessions(60, 8, "unbalanced", seed=13)
    model = model_of(d, residual, random, therapist)
    new = engine_fit.estimate_mixed(model)
    monkeypatch.setattr(engine_fit, "evaluate",  # forward derivatives, like the reference
                        lambda *args, adjoint=False, **kwargs: reference_evaluate(*args,
                                                                                  **kwargs))
    old = engine_fit.estimate_mixed(model)
    assert new.converged and old.converged
    assert new.loglik == pytest.approx(old.loglik, abs=1e-7)
    np.testing.assert_allclose(new.coef, old.coef, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(new.theta, old.theta, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(new.random_effects, old.random_effects, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(new.df_satterthwaite, old.df_satterthwaite, rtol=1e-4)
