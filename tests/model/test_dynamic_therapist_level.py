"""The dynamic APIM with a therapist level (``DynamicAPIMSpec(therapist_level=True)``):
the fitted logLik against the dense oracle that stacks each therapist's dyads (so the
model hands the engine the right therapist for every dyad, on shuffled rows and labels),
the variance table, effects, JSON and text, and the refusals."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from dynamic_oracle import dense_therapist_loglik
from dynamic_support import ROLES, simulate_grid, stationary, with_gaps

import apim
from apim.data.session import SessionData
from apim.errors import BoundaryWarning, DataError, DataWarning, SpecError
from apim.model.dynamic import _therapists, effect_names
from apim.model.dynamic_spec import DynamicAPIMSpec

SIGMA_T = 0.25 * np.eye(4) + 0.1


def _nested(seed: int = 31, n_therapists: int = 14) -> tuple[np.ndarray, np.ndarray]:
    """Unequal caseloads (2 to 4 dyads), gaps and dropout, a therapist mean added."""
    rng = np.random.default_rng(seed)
    therapist = np.repeat(np.arange(n_therapists), 2 + np.arange(n_therapists) % 3)
    y = simulate_grid(len(therapist), 6, seed=seed)
    v = rng.multivariate_normal(np.zeros(4), SIGMA_T, size=n_therapists)
    y = with_gaps(y + v[therapist][:, None, :], seed=seed + 1)
    return y, therapist


def _long(y: np.ndarray, therapist: np.ndarray, shuffle: bool = False) -> SessionData:
    rows = []
    for i in range(len(y)):
        for s in range(y.shape[1]):
            if np.isnan(y[i, s]).all():
                continue
            for r, role in enumerate(ROLES):
                rows.append((f"d{i:03d}", f"T{therapist[i]:02d}", s + 1, role,
                             y[i, s, r], y[i, s, 2 + r]))
    frame = pd.DataFrame(rows, columns=["dyad", "ther", "session", "role", "x", "y"])
    if shuffle:
        frame = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
        frame["dyad"] = "z" + frame["dyad"].str[::-1]
        frame["ther"] = frame["ther"].map(lambda t: f"th-{99 - int(t[1:])}")
    return SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                 therapist="ther", roles=ROLES)


_FITS: dict = {}


def _fit(covariance: str = "unstructured", initial: str = "free", shuffle: bool = False):
    key = (covariance, initial, shuffle)
    if key not in _FITS:
        y, therapist = _nested()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            warnings.simplefilter("ignore", BoundaryWarning)
            warnings.simplefilter("ignore", UserWarning)
            _FITS[key] = apim.fit(_long(y, therapist, shuffle), DynamicAPIMSpec(
                "y", ("x",), initial=initial, therapist_level=True,
                therapist_covariance=covariance))
    return _FITS[key]


@pytest.mark.parametrize("covariance", ["unstructured", "diagonal"])
@pytest.mark.parametrize("initial", ["free", "stationary"])
def test_fitted_loglik_equals_dense_oracle(covariance, initial):
    y, therapist = _nested()
    result = _fit(covariance, initial)
    fit = result.fit
    assert result.statistics.converged
    assert result.statistics.n_therapists == 14 and fit.sigma_t is not None
    dense = dense_therapist_loglik(y, therapist, fit.mu, fit.phi, fit.sigma_w, fit.sigma_b,
                                   fit.p0, fit.sigma_t)
    assert abs(result.statistics.loglik - dense) < 1e-8
    if initial == "stationary":
        assert np.allclose(fit.p0, stationary(fit.phi, fit.sigma_w), atol=1e-10)
    if covariance == "diagonal":
        assert np.count_nonzero(fit.sigma_t - np.diag(np.diag(fit.sigma_t))) == 0
    # an optimum: no small move of a therapist variance raises the dense likelihood
    for j in range(4):
        for step in (1e-3, -1e-3):
            st = fit.sigma_t.copy()
            st[j, j] += step
            if np.linalg.eigvalsh(st).min() < 0:
                continue
            assert dense_therapist_loglik(y, therapist, fit.mu, fit.phi, fit.sigma_w,
                                          fit.sigma_b, fit.p0, st) < dense


def test_invariant_to_row_order_and_labels():
    base, again = _fit(), _fit(shuffle=True)
    assert again.statistics.loglik == pytest.approx(base.statistics.loglik, abs=1e-7)
    assert np.allclose(again.fit.sigma_t, base.fit.sigma_t, atol=1e-5)


def test_variance_table_effects_json_and_text():
    result = _fit()
    var = result.variance
    therapist = var[var.index.str.startswith("therapist ")]
    assert len(therapist) == 10
    assert "therapist var(x[patient])" in therapist.index
    assert "therapist cov(x[patient],y[therapist])" in therapist.index
    assert np.isclose(therapist.loc["therapist var(y[patient])", "estimate"],
                      result.fit.sigma_t[2, 2])
    expected = effect_names(result.spec, ROLES)
    assert list(result.coef.index) == expected
    assert "patient.actor.therapist.x" in expected
    out = json.loads(json.dumps(result.to_dict()))
    group = out["groups"]["all"]
    assert group["n_therapists"] == 14 and group["therapist_covariance"] == "unstructured"
    assert np.allclose(group["sigma_therapist"], result.fit.sigma_t)
    text = result.summary()
    assert "Therapist-level covariance (Sigma_T)" in text and "14 therapists" in text
    assert "unstructured therapist level" in result.model_line()
    diagonal = _fit("diagonal")
    assert "patient.actor.therapist.x" not in diagonal.coef.index
    assert len(diagonal.variance.index[diagonal.variance.index.str.startswith(
        "therapist ")]) == 4


def test_without_therapist_column_or_with_a_dyad_under_two_therapists_refused():
    y, therapist = _nested()
    plain = _long(y, therapist).to_long()
    plain = plain.drop(columns=[c for c in ("ther", "therapist") if c in plain])
    data = SessionData.from_long(plain, dyad="dyad", session="session", role="role",
                                 roles=ROLES)
    with pytest.raises(SpecError, match="needs a therapist column"):
        apim.fit(data, DynamicAPIMSpec("y", ("x",), therapist_level=True))
    wide = pd.DataFrame({"dyad": ["a", "a", "b", "b"], "session": [1, 2, 1, 2],
                         "therapist": ["t1", "t2", "t3", "t3"]})
    with pytest.raises(DataError, match=r"two or more therapists \('a': t1, t2\)"):
        _therapists(wide, np.array(["a", "b"]))
    with pytest.raises(SpecError, match="set therapist_level=True too"):
        DynamicAPIMSpec("y", ("x",), therapist_covariance="diagonal")


def test_too_few_therapists_refused():
    y, therapist = _nested(n_therapists=2)
    with pytest.raises(SpecError, match="at least 3 therapists"):
        apim.fit(_long(y, therapist), DynamicAPIMSpec("y", ("x",), therapist_level=True))


def test_spec_round_trip():
    spec = DynamicAPIMSpec("y", ("x",), therapist_level=True, therapist_covariance="diagonal")
    assert DynamicAPIMSpec.from_dict(spec.to_dict()) == spec


def test_moderator_with_therapists_nested_in_groups():
    """One model per arm, each with its own Sigma_T: the logLik is the sum of the arms'
    dense likelihoods; a therapist in two arms is refused. (With 7 therapists per arm
    several covariances of an arm are singular at once and the fit does not converge;
    12 per arm do.)"""
    y, therapist = _nested(n_therapists=24)
    frame = _long(y, therapist).to_long()
    arm = {t: "A" if int(t[1:]) % 2 else "B" for t in frame["ther"].unique()}
    frame["arm"] = frame["ther"].map(arm)
    data = SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                 therapist="ther", roles=ROLES)
    spec = DynamicAPIMSpec("y", ("x",), moderator="arm", therapist_level=True,
                           therapist_covariance="diagonal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = apim.fit(data, spec)
    assert result.statistics.converged
    total = 0.0
    for group, fit in result.fits.items():
        members = np.array([arm[f"T{t:02d}"] == group for t in therapist])
        assert fit.n_therapists == len({t for t, m in zip(therapist, members) if m})
        total += dense_therapist_loglik(y[members], therapist[members], fit.mu, fit.phi,
                                        fit.sigma_w, fit.sigma_b, fit.p0, fit.sigma_t)
    assert abs(result.statistics.loglik - total) < 1e-8
    assert result.statistics.n_therapists == 24
    crossed = frame.copy()
    crossed.loc[crossed["dyad"] == "d000", "arm"] = "B" if arm["T00"] == "A" else "A"
    data = SessionData.from_long(crossed, dyad="dyad", session="session", role="role",
                                 therapist="ther", roles=ROLES)
    with pytest.raises(DataError, match="therapists treat dyads in more than one group"):
        apim.fit(data, spec)
