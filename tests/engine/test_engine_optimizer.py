"""Fewer likelihood evaluations, same answers: the exact random-effect block of the Hessian
against differences of the analytic gradient, and the default optimizer (early handover
from BFGS to Newton, secant-updated Hessians between refreshes, one Hessian refresh at
the optimum) against the
previous one (BFGS to the tight tolerance, a new difference Hessian after every Newton
step), which ``FitControl`` still runs."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apim.engine import CompoundSymmetry, Diagonal, MixedModel, Residual, Unstructured
from apim.engine.control import FitControl
from apim.engine.mixed.estimate import estimate_mixed as fit
from apim.engine.mixed.hessian import difference_information, information
from apim.engine.mixed.model import Prepared
from apim.engine.mixed.random_effects import Exchangeable
from apim.errors import BoundaryWarning, SpecError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from seed_data import seed_design as dyadic  # noqa: E402  (the benchmarks' seed design)

#: the optimizer before the exact Hessian: BFGS to ``gradient_tolerance``, then Newton
#: steps each followed by a new Hessian from differences of the gradient
PREVIOUS = FitControl(handover_gradient=0, hessian="differences", hessian_refresh=0)


def apim_model(d: pd.DataFrame, slopes: bool = False, residual: str = "un",
               therapist: bool = False, random=None) -> MixedModel:
    """Two-intercept APIM with actor/partner effects at both levels per role."""
    p, t = 1 - d["role"].to_numpy(float), d["role"].to_numpy(float)
    cols = ["aw", "pw", "ab", "pb"]
    X = np.column_stack([p, t] + [p * d[c] for c in cols] + [t * d[c] for c in cols])
    z = [p, t] + ([p * d["aw"], t * d["aw"], p * d["pw"], t * d["pw"]] if slopes else [])
    Z = np.column_stack(z).astype(float)
    return MixedModel(y=d["y"].to_numpy(), X=X, dyad=d["dyad"].to_numpy(),
                      role=d["role"].to_numpy(), session=d["session"].to_numpy(), Z=Z,
                      random=random or Unstructured(Z.shape[1]),
                      residual=Residual.named(residual),
                      therapist=d["therapist"].to_numpy() if therapist else None,
                      therapist_random=Diagonal(1) if therapist else None)


def couples() -> pd.DataFrame:
    """Bolger & Laurenceau's couples' diaries stacked to one row per person and day."""
    root = Path(os.environ.get("APIM_SHARED_DATA", "/work/shared/data"))
    path = root / "bolger_laurenceau_ch8_dyads" / "BLdyads_long.csv"
    if not path.exists():
        pytest.skip(f"{path} is not available (set APIM_SHARED_DATA)")
    wide = pd.read_csv(path)
    parts = [pd.DataFrame({"dyad": wide["coupleid"], "session": wide["time"] + 1,
                           "role": role, "aw": wide[f"{me}_wrkstrsc_w"],
                           "pw": wide[f"{other}_wrkstrsc_w"], "ab": wide[f"{me}_wrkstrsc_b"],
                           "pb": wide[f"{other}_wrkstrsc_b"], "y": wide[f"{me}_reldis"]})
             for role, me, other in ((0, "f", "m"), (1, "m", "f"))]
    return pd.concat(parts).sort_values(["dyad", "session", "role"]).reset_index(drop=True)


def missing(d: pd.DataFrame, share: float, seed: int = 4) -> pd.DataFrame:
    return d[np.random.default_rng(seed).random(len(d)) >= share]


SCENARIOS = {
    "seed": lambda: apim_model(dyadic(241, 30, 1)),
    "slopes": lambda: apim_model(dyadic(241, 30, 1, slopes=True), slopes=True),
    "therapist": lambda: apim_model(dyadic(241, 30, 1, caseload=4), therapist=True),
    "ar1": lambda: apim_model(dyadic(241, 30, 1, phi=0.3), residual="ar1"),
    "un-ar1": lambda: apim_model(dyadic(241, 30, 3, phi=0.3), residual="un-ar1"),
    "un-ar1 10% missing": lambda: apim_model(missing(dyadic(241, 30, 3, phi=0.3), 0.1),
                                             residual="un-ar1"),
    "couples": lambda: apim_model(couples()),
    "tiny": lambda: apim_model(dyadic(6, 3, 5)),
    "compound symmetry, 20% missing": lambda: apim_model(
        missing(dyadic(40, 6, 8), 0.2), random=CompoundSymmetry(2)),
}


def quiet_fit(model: MixedModel, method: str, control: FitControl | None = None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        return fit(model, method, control)


def assert_same_fit(new, old, se_rtol: float = 1e-6) -> None:
    """logLik within 1e-8 relative; estimates and SEs within 1e-6 relative or 1e-4 of
    an SE."""
    assert new.loglik == pytest.approx(old.loglik, rel=1e-8, abs=1e-10)
    se = old.se.to_numpy()
    np.testing.assert_allclose(new.coef, old.coef, rtol=1e-6, atol=1e-4 * se.min())
    np.testing.assert_allclose(new.se, old.se, rtol=se_rtol, atol=1e-4 * se.min())
    v_new, v_old = new.variance, old.variance
    assert list(v_new.index) == list(v_old.index)
    # variance parameters: 1e-6 relative or 1e-4 of their SE
    gap = np.abs(v_new["estimate"].to_numpy() - v_old["estimate"].to_numpy())
    allowed = np.maximum(1e-6 * np.abs(v_old["estimate"].to_numpy()),
                         1e-4 * np.nan_to_num(v_old["se"].to_numpy(), nan=0.0))
    assert np.all(gap <= allowed + 1e-12), (gap, allowed)
    np.testing.assert_allclose(v_new["se"], v_old["se"], rtol=se_rtol, atol=1e-12)
    np.testing.assert_allclose(new.df_satterthwaite, old.df_satterthwaite, rtol=se_rtol)
    assert list(v_new["at_boundary"]) == list(v_old["at_boundary"])
    assert new.boundary == old.boundary


# REML for every scenario, ML on a subset (the code paths do not depend on the data)
@pytest.mark.parametrize(("name", "method"), [
    *((name, "REML") for name in SCENARIOS),
    *((name, "ML") for name in ("seed", "slopes", "un-ar1 10% missing", "tiny"))])
def test_same_optimum_as_the_previous_optimizer_with_fewer_evaluations(name, method):
    model = SCENARIOS[name]()
    new, old = quiet_fit(model, method), quiet_fit(model, method, PREVIOUS)
    assert new.converged and old.converged
    assert_same_fit(new, old)
    assert new.n_evaluations < old.n_evaluations


def test_boundary_fit_is_the_same():
    """Random slopes whose true SDs are zero: G is singular at the optimum (the Newton
    steps do not settle, BFGS runs on to the tight tolerance and a restart from a
    spread-out G finds a better optimum than the first search)."""
    model = apim_model(dyadic(30, 8, 11, slopes=True, slope_sd=0.0), slopes=True,
                       random=Diagonal(6))
    with pytest.warns(BoundaryWarning):
        new = fit(model, "REML")
    old = quiet_fit(model, "REML", PREVIOUS)
    assert "restarted from a full-rank G" in new.message
    assert new.boundary and new.boundary == old.boundary
    assert new.loglik == pytest.approx(old.loglik, rel=1e-8)
    se = old.se.to_numpy()
    np.testing.assert_allclose(new.coef, old.coef, rtol=1e-6, atol=1e-4 * se.min())
    np.testing.assert_allclose(new.se, old.se, rtol=1e-6, atol=1e-4 * se.min())
    # no other start does better: the likelihood has a second, lower optimum here
    rng = np.random.default_rng(2)
    for _ in range(3):
        start = new.theta + rng.normal(0, 1.0, len(new.theta))
        other = quiet_fit_from(model, start)
        assert other.loglik <= new.loglik + 1e-6


def quiet_fit_from(model: MixedModel, start: np.ndarray):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        return fit(model, "REML", start=start)


def exact_and_differences(model: MixedModel, theta: np.ndarray, reml: bool):
    prep = Prepared.of(model)
    return (information(model, prep, theta, reml),
            difference_information(model, prep, theta, reml))


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("name, build, k_random", [
    ("intercepts, UN", lambda d: apim_model(d), 3),
    ("slopes, UN x AR(1)", lambda d: apim_model(d, slopes=True, residual="un-ar1"), 21),
    ("therapist, AR(1)", lambda d: apim_model(d, residual="ar1", therapist=True), 4),
    ("diagonal G, CS residual", lambda d: apim_model(d, random=Diagonal(2), residual="cs"), 2),
    ("exchangeable", lambda d: apim_model(d, random=Exchangeable(1), residual="un"), 2),
])
def test_exact_hessian_matches_differences_of_the_gradient(name, build, k_random, reml):
    d = missing(dyadic(24, 6, 2, slopes=True, phi=0.4, caseload=3), 0.1)
    model = build(d)
    rng = np.random.default_rng(7)
    for theta in (np.zeros(model.n_params), rng.normal(0, 0.4, model.n_params)):
        exact, differences = exact_and_differences(model, theta, reml)
        assert exact.shape == (model.n_params, model.n_params)
        scale = np.max(np.abs(differences))
        np.testing.assert_allclose(exact, differences, rtol=0, atol=1e-6 * scale)
        # the exact block is not the differences' block copied: it is what is computed
        assert not np.array_equal(exact[:k_random, :k_random],
                                  differences[:k_random, :k_random])


@pytest.mark.parametrize("reml", [True, False])
def test_per_parameter_form_for_wide_clusters_agrees(monkeypatch, reml):
    """Wide clusters (many dyads per therapist) take the per-parameter form of the exact
    block; forced here on small clusters, both forms agree with differences."""
    import apim.engine.mixed.hessian as engine_hessian

    d = missing(dyadic(24, 6, 2, slopes=True, caseload=3), 0.1)
    model = apim_model(d, slopes=True, therapist=True)
    theta = np.random.default_rng(3).normal(0, 0.3, model.n_params)
    fast, differences = exact_and_differences(model, theta, reml)
    monkeypatch.setattr(engine_hessian, "WIDE_CLUSTER", 0)
    wide, _ = exact_and_differences(model, theta, reml)
    scale = np.max(np.abs(differences))
    np.testing.assert_allclose(wide, fast, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(wide, differences, rtol=0, atol=1e-6 * scale)


@pytest.mark.parametrize("structure", [Unstructured(3), Diagonal(3), CompoundSymmetry(3),
                                       Exchangeable(1)])
def test_second_derivatives_of_g(structure):
    """Hessian of tr(G(t) M): the closed form (Unstructured) or differences of the
    Jacobian, against differences of tr(G M) itself."""
    from apim.engine.mixed.hessian import _trace_hessian

    size = structure.matrix(np.zeros(structure.n_params)).shape[0]
    rng = np.random.default_rng(5)
    m = rng.normal(size=(size, size))
    m = m + m.T
    t = rng.normal(0, 0.5, structure.n_params)
    k = len(t)

    def f(x):
        return float(np.sum(structure.matrix(x) * m))

    h = 1e-4
    brute = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * h, np.eye(k)[j] * h
            brute[i, j] = (f(t + ei + ej) - f(t + ei - ej) - f(t - ei + ej)
                           + f(t - ei - ej)) / (4 * h * h)
    np.testing.assert_allclose(_trace_hessian(structure, t, m), brute, rtol=1e-5,
                               atol=1e-6 * np.max(np.abs(brute)))


def test_exact_hessian_at_a_singular_g():
    """A variance at zero (log SD far below the others): K = I + G A stays invertible."""
    d = dyadic(20, 5, 9)
    model = apim_model(d, random=Diagonal(2))
    theta = np.array([-12.0, -0.3, -0.5, -0.6, 0.2])
    exact, differences = exact_and_differences(model, theta, True)
    np.testing.assert_allclose(exact, differences, rtol=0,
                               atol=1e-6 * np.max(np.abs(differences)))


def test_hessian_of_a_model_without_random_effects_is_all_differences():
    d = dyadic(15, 5, 4)
    with_random = apim_model(d)
    model = MixedModel(y=with_random.y, X=with_random.X, dyad=with_random.dyad,
                       role=with_random.role, session=with_random.session,
                       residual=Residual.named("un"))
    theta = np.array([-0.3, -0.5, 0.2])
    exact, differences = exact_and_differences(model, theta, True)
    np.testing.assert_array_equal(exact, differences)


def test_previous_optimizer_settings_and_new_fields_are_checked():
    for field, value in (("handover_gradient", -1.0), ("hessian_refresh", -1e-3),
                         ("handover_gradient", float("nan"))):
        with pytest.raises(SpecError, match=field):
            FitControl(**{field: value})
    with pytest.raises(SpecError, match="hessian"):
        FitControl(hessian="numeric")  # type: ignore[arg-type]
    control = FitControl()
    assert FitControl.from_dict(control.to_dict()) == control
    assert control.hessian == "exact" and PREVIOUS.hessian == "differences"


def test_reported_hessian_is_the_one_at_the_optimum():
    """Chord steps reuse an older, rougher Hessian; the reported one (behind the SEs and
    the df) is computed where the parameters ended up."""
    model = SCENARIOS["seed"]()
    new, old = quiet_fit(model, "REML"), quiet_fit(model, "REML", PREVIOUS)
    # small entries carry the round-off of differences of the gradient (1e-7 of the
    # largest), in either Hessian
    np.testing.assert_allclose(new.hessian, old.hessian, rtol=1e-6,
                               atol=1e-6 * np.max(np.abs(old.hessian)))
    np.testing.assert_allclose(new.cov_theta, old.cov_theta, rtol=1e-6,
                               atol=1e-6 * np.max(np.abs(old.cov_theta)))


def test_secant_update_satisfies_the_secant_equation():
    """The BFGS update of a reused Hessian: symmetric, positive definite, maps the step to
    the change of the gradient (``H s = y``) and leaves directions conjugate to the step
    alone; without positive curvature along the step the Hessian is kept as it is."""
    from apim.engine.optimize import secant_update as _secant_update

    rng = np.random.default_rng(11)
    a = rng.normal(size=(5, 5))
    hess = a @ a.T + 5 * np.eye(5)
    truth = hess + np.diag(rng.uniform(0.1, 1.0, 5))  # the Hessian it should move towards
    step = rng.normal(size=5)
    change = truth @ step
    new = _secant_update(hess, step, change)
    np.testing.assert_allclose(new, new.T, atol=1e-12)
    np.testing.assert_allclose(new @ step, change, rtol=1e-12)
    assert np.linalg.eigvalsh(new).min() > 0
    other = rng.normal(size=5)
    other -= step * (step @ hess @ other) / (step @ hess @ step)  # conjugate to the step
    np.testing.assert_allclose(new @ other, hess @ other + change * (change @ other)
                               / (step @ change), rtol=1e-10)
    np.testing.assert_array_equal(_secant_update(hess, step, -change), hess)
