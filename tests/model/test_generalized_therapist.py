"""The generalized APIM with a therapist level (issue 21): dyads nested in therapists, a
therapist random intercept shared by both members, Laplace over each therapist's block.

References: glmmTMB's exact Laplace on the identical design (committed output of
tests/reference/glmm_reference.R on glmm_therapist_data.csv: 70 dyads in 16
therapists with caseloads 1-9, three therapists with one dyad; a live refit of fresh data
when R is installed): logLik within 1e-6, fixed effects within 1e-3 of an SE, SEs within
1e-3 relative. A brute-force Laplace (a generic optimiser's mode over all random effects of
a tiny data set, a numerical Hessian and its log-determinant, the densities written from the
model definition) checks the arrowhead algebra; central differences check the analytic
gradient. Off the happy path: a therapist variance at zero (the fit equals the model without
the level), one dyad per therapist, a dyad with two therapists, no therapist column,
relabelled members, ``nagq > 1`` (Laplace throughout, said in a warning and the JSON), the CLI.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import log_expit
from scipy.stats import norm

import apim
from apim.cli import main
from apim.engine.glmm import GLMMModel, fit_glmm
from apim.engine.glmm.model import prepare
from apim.engine.glmm.nested import loglik_gradient, nested_loglik
from apim.errors import ApimWarning, DataError, SpecError
from apim.model.generalized_spec import GeneralizedAPIMSpec
from tests.model.test_generalized_r import assert_matches_glmmtmb, glmm_rscript
from tests.reference.glmm_therapist_make_data import DESIGN, simulate

REFERENCE = Path(__file__).resolve().parents[1] / "reference"


def _engine(frame: pd.DataFrame, link: str = "logit", therapist: bool = True,
            **options) -> GLMMModel:
    return GLMMModel(category=frame["y"].to_numpy(), X=frame[DESIGN].to_numpy(float),
                     dyad=frame["dyad"].to_numpy(),
                     role=(frame["role"] == "therapist").to_numpy(int), link=link,
                     therapist=frame["clinician"].to_numpy() if therapist else None,
                     **options)


def _check_glmmtmb(frame: pd.DataFrame, reference: pd.DataFrame, link: str) -> None:
    ref = reference[reference["model"] == f"glmmTMB_{link}"].set_index("name")
    fit = fit_glmm(_engine(frame, link, nagq=1))
    assert fit.integration == "Laplace throughout (therapist level)"
    assert_matches_glmmtmb(fit, ref, ((fit.therapist_sd, "sd.clinician"),))


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_laplace_matches_committed_glmmtmb(link):
    frame = pd.read_csv(REFERENCE / "glmm_therapist_data.csv")
    _check_glmmtmb(frame, pd.read_csv(REFERENCE / "glmm_therapist_reference.csv"), link)


@pytest.mark.r
def test_live_refit_of_fresh_data(tmp_path):
    rscript = glmm_rscript()
    frame = simulate(31)
    data, out = tmp_path / "data.csv", tmp_path / "out.csv"
    frame.to_csv(data, index=False)
    subprocess.run([rscript, str(REFERENCE / "glmm_reference.R"), str(data),
                    str(out)], check=True, capture_output=True, timeout=600)
    reference = pd.read_csv(out)
    for link in ("logit", "probit"):
        _check_glmmtmb(frame, reference, link)


def _tiny(seed: int = 4) -> pd.DataFrame:
    """7 dyads in 4 therapists (caseloads 1, 2, 3, 1), a few sessions each."""
    return simulate(seed, therapist_sd=0.8, caseloads=(1, 2, 3, 1))


def _brute_force_laplace(model: GLMMModel, x: np.ndarray) -> float:
    """The Laplace approximation over all random effects at once, from the model
    definition: log f(y, b) = sum log P(y | eta) + log N(u_i; 0, G) + log N(t; 0, sd^2),
    its mode by BFGS, its Hessian by central differences of the log density."""
    dyads, d = np.unique(model.dyad, return_inverse=True)
    therapists, t = np.unique(model.therapist, return_inverse=True)
    n, T = len(dyads), len(therapists)
    p = model.X.shape[1]
    beta, G = x[:p], model.covariance(x[p:p + 3])
    sd = np.exp(x[-1])
    y, role = model.category, model.role
    Ginv = np.linalg.inv(G)
    log_norm = -np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(G)[1]

    def log_f(b: np.ndarray) -> float:
        u, v = b[:2 * n].reshape(n, 2), b[2 * n:]
        eta = model.X @ beta + u[d, role] + v[t]
        sign = np.where(y == 1, 1.0, -1.0)
        logp = log_expit(sign * eta) if model.link == "logit" else norm.logcdf(sign * eta)
        prior = (n * log_norm - 0.5 * np.einsum("ia,ab,ib->", u, Ginv, u)
                 + np.sum(norm.logpdf(v, scale=sd)))
        return float(logp.sum() + prior)

    q = 2 * n + T
    found = minimize(lambda b: -log_f(b), np.zeros(q), method="BFGS",
                     options={"gtol": 1e-10})
    b = found.x
    h = 1e-4
    hess = np.empty((q, q))
    for i in range(q):
        for j in range(i, q):
            e_i, e_j = np.eye(q)[i] * h, np.eye(q)[j] * h
            hess[i, j] = hess[j, i] = (log_f(b + e_i + e_j) - log_f(b + e_i - e_j)
                                       - log_f(b - e_i + e_j) + log_f(b - e_i - e_j)) / (4 * h * h)
    return log_f(b) + 0.5 * q * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(-hess)[1]


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_arrowhead_laplace_equals_brute_force(link):
    model = _engine(_tiny(), link, nagq=1)
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.normal(scale=0.3, size=6), [np.log(0.9), 0.3, np.log(0.7)],
                        [np.log(0.8)]])
    value = nested_loglik(prepare(model), x)[0].sum()
    assert abs(value - _brute_force_laplace(model, x)) < 1e-5


@pytest.mark.parametrize("family, link, random", [
    ("binomial", "logit", "unstructured"), ("binomial", "probit", "exchangeable"),
    ("ordinal", "logit", "unstructured"), ("ordinal", "probit", "exchangeable")])
def test_analytic_gradient_matches_differences(family, link, random):
    rng = np.random.default_rng(2)
    frame = simulate(3)
    k = rng.integers(0, 4, len(frame)) if family == "ordinal" else frame["y"].to_numpy()
    X = frame[DESIGN].to_numpy(float)
    model = GLMMModel(category=k, X=X if family == "binomial" else X[:, 2:],
                      dyad=frame["dyad"].to_numpy(),
                      role=(frame["role"] == "therapist").to_numpy(int), family=family,
                      link=link, n_categories=4 if family == "ordinal" else 2,
                      random=random, therapist=frame["clinician"].to_numpy())
    prepared = prepare(model)
    x = rng.normal(scale=0.3, size=model.n_params)
    value, grad, _, _ = loglik_gradient(prepared, x)
    assert value == pytest.approx(nested_loglik(prepared, x)[0].sum(), abs=1e-9)
    step = 1e-6
    numeric = [(nested_loglik(prepared, x + e)[0].sum()
                - nested_loglik(prepared, x - e)[0].sum()) / (2 * step)
               for e in np.eye(len(x)) * step]
    np.testing.assert_allclose(grad, numeric, atol=1e-6 * max(1.0, abs(value)) ** 0.5)


def test_zero_therapist_variance_is_reported_and_reduces_to_the_dyad_model():
    frame = simulate(2, therapist_sd=0.0)  # a data set whose estimate is at zero
    fit = fit_glmm(_engine(frame, nagq=1))
    plain = fit_glmm(_engine(frame, therapist=False, nagq=1))
    assert fit.converged
    assert fit.boundary == ("therapist intercept sd at zero",)
    assert np.isnan(fit.therapist_sd_se)
    assert abs(fit.loglik - plain.loglik) < 1e-6
    se = np.sqrt(np.diag(plain.cov_coef))
    assert np.all(np.abs(fit.coef - plain.coef) < 1e-3 * se)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov_coef)), se, rtol=1e-3)


def test_boundary_in_the_variance_table_and_summary():
    result = apim.fit(_session_data(simulate(2, therapist_sd=0.0)),
                      GeneralizedAPIMSpec("y", ("x",), therapist_level=True, nagq=1))
    row = result.variance.loc["therapist sd(intercept)"]
    assert bool(row["at_boundary"]) and np.isnan(row["se"]) and row["estimate"] < 1e-4
    assert "Boundary estimate: therapist intercept sd at zero" in result.summary()
    assert result.to_dict()["boundary"] == ["therapist intercept sd at zero"]


@pytest.mark.parametrize("family, distinguishable", [("ordinal", True),
                                                     ("binomial", False)])
def test_ordinal_and_indistinguishable_fits_with_a_therapist_level(family, distinguishable):
    """No R reference fits these (glmmTMB has no cumulative-link family): the fit
    converges, its gradient vanishes and its log-likelihood is the engine's value at the
    estimates, above the model without the therapist level (nested, one more parameter)."""
    frame = simulate(8, therapist_sd=1.0)
    if family == "ordinal":  # three categories from the binary outcome and the predictor
        frame = frame.assign(y=frame["y"] + (frame["patient_actor"]
                                             + frame["therapist_actor"] > 0.5))
    data = _session_data(frame)
    spec = GeneralizedAPIMSpec("y", ("x",), family=family, therapist_level=True, nagq=1,
                               distinguishable=distinguishable)
    with_level = apim.fit(data, spec)
    without = apim.fit(data, spec.replace(therapist_level=False))
    assert with_level.statistics.converged
    assert with_level.statistics.loglik > without.statistics.loglik
    fit = with_level.engine
    value, grad, _, _ = loglik_gradient(prepare(fit.model), fit.x)
    assert value == pytest.approx(fit.loglik, abs=1e-8)
    assert np.max(np.abs(grad)) < 1e-3
    assert fit.therapist_sd > 0.3


def test_relabelled_members_give_the_same_fit():
    frame = pd.read_csv(REFERENCE / "glmm_therapist_data.csv")
    swapped = frame.assign(role=np.where(frame["role"] == "patient", "therapist", "patient"))
    swapped = swapped.rename(columns={"patient": "therapist", "therapist": "patient",
                                      "patient_actor": "therapist_actor",
                                      "therapist_actor": "patient_actor",
                                      "patient_partner": "therapist_partner",
                                      "therapist_partner": "patient_partner"})
    a, b = fit_glmm(_engine(frame, nagq=1)), fit_glmm(_engine(swapped, nagq=1))
    assert abs(a.loglik - b.loglik) < 1e-7
    assert abs(a.therapist_sd - b.therapist_sd) < 1e-5
    np.testing.assert_allclose(np.sort(np.sqrt(np.diag(a.G))), np.sort(np.sqrt(np.diag(b.G))),
                               rtol=1e-5)


def test_a_dyad_with_two_therapists_is_refused():
    frame = pd.read_csv(REFERENCE / "glmm_therapist_data.csv")
    clinician = frame["clinician"].to_numpy().copy()
    clinician[np.flatnonzero(frame["dyad"] == 5)[0]] = 99
    with pytest.raises(DataError, match=r"dyad 5 has more than one therapist \(.*99"):
        fit_glmm(_engine(frame.assign(clinician=clinician), nagq=1))


def _session_data(frame: pd.DataFrame, therapist: bool = True) -> apim.SessionData:
    long = frame.assign(x=frame["patient_actor"] + frame["therapist_actor"])
    long["session"] = long.groupby(["dyad", "role"]).cumcount() + 1
    columns = ["dyad", "role", "session", "y", "x"] + (["clinician"] if therapist else [])
    return apim.SessionData.from_long(long[columns], dyad="dyad", session="session",
                                      role="role",
                                      therapist="clinician" if therapist else None)


def test_model_layer_tables_json_and_the_laplace_warning():
    data = _session_data(simulate(5))
    with pytest.warns(ApimWarning, match="Laplace approximation throughout"):
        result = apim.fit(data, GeneralizedAPIMSpec("y", ("x",), therapist_level=True,
                                                    nagq=7))
    with warnings.catch_warnings():  # by default a therapist level is Laplace, unwarned
        warnings.simplefilter("error", ApimWarning)
        default = apim.fit(data, GeneralizedAPIMSpec("y", ("x",), therapist_level=True))
    assert default.statistics.loglik == result.statistics.loglik
    assert "does not apply" not in default.summary()
    assert result.statistics.n_therapists == 16 and result.statistics.converged
    variance = result.variance
    assert variance.index[0] == "therapist sd(intercept)"
    assert variance["estimate"].iloc[0] == pytest.approx(result.engine.therapist_sd)
    icc = result.icc
    shares = icc[["therapist_share", "dyad_share", "within_share"]].sum(axis=1)
    np.testing.assert_allclose(shares, 1.0)
    tau, G = result.engine.therapist_sd ** 2, result.engine.G
    assert icc.loc["patient", "therapist_share"] == pytest.approx(
        tau / (tau + G[0, 0] + np.pi ** 2 / 3))
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["integration"] == "Laplace throughout (therapist level)"
    assert payload["therapist_level"] is True
    assert payload["variance"]["therapist_sd"] == pytest.approx(result.engine.therapist_sd)
    assert "nagq=7 does not apply" in result.summary()
    assert "16 therapists" in result.summary()


def test_conditional_modes_solve_the_therapist_first_order_condition():
    """At the modes the log density's derivative in each therapist's intercept t vanishes:
    sum over the therapist's rows of (y - P(y = 1 | eta)) = t / sd^2 (logit), with eta the
    result's conditional linear predictor (dyad and therapist modes)."""
    result = apim.fit(_session_data(simulate(5)),
                      GeneralizedAPIMSpec("y", ("x",), therapist_level=True, nagq=1))
    fit = result.engine
    residual = result.design.model.y - 1 / (1 + np.exp(-result.linear_predictor()))
    sums = pd.Series(residual).groupby(pd.Series(fit.model.therapist)).sum()
    expected = pd.Series(fit.therapist_modes, index=fit.therapists) / fit.therapist_sd ** 2
    np.testing.assert_allclose(sums.to_numpy(), expected[sums.index].to_numpy(), atol=1e-7)
    assert np.ptp(fit.therapist_modes) > 0.1  # the modes are not all zero


def test_every_therapist_with_one_dyad_is_refused():
    data = _session_data(simulate(6, caseloads=(1,) * 40))
    with pytest.raises(SpecError, match="one dyad"):
        apim.fit(data, GeneralizedAPIMSpec("y", ("x",), therapist_level=True, nagq=1))


def test_no_therapist_column_is_refused():
    data = _session_data(simulate(5), therapist=False)
    with pytest.raises(SpecError, match="therapist column"):
        apim.fit(data, GeneralizedAPIMSpec("y", ("x",), therapist_level=True, nagq=1))


def _cli_file(tmp_path: Path) -> Path:
    frame = simulate(5)
    long = frame.assign(x=frame["patient_actor"] + frame["therapist_actor"])
    long["session"] = long.groupby(["dyad", "role"]).cumcount() + 1
    path = tmp_path / "sessions.csv"
    long[["dyad", "clinician", "role", "session", "y", "x"]].to_csv(path, index=False)
    return path


def test_cli_fits_the_therapist_level(tmp_path, capsys):
    path = _cli_file(tmp_path)
    out = tmp_path / "fit.json"
    code = main(["fit", str(path), "--dyad", "dyad", "--session", "session", "--role", "role",
                 "--roles", "patient,therapist", "--therapist", "clinician",
                 "--outcome", "y", "--predictor", "x", "--family", "binomial", "--nagq", "1",
                 "--therapist-level", "--json", str(out)])
    assert code == 0
    payload = json.loads(out.read_text())
    assert payload["integration"] == "Laplace throughout (therapist level)"
    assert payload["variance"]["table"]["therapist sd(intercept)"]["estimate"] > 0
    capsys.readouterr()
    code = main(["fit", str(path), "--dyad", "dyad", "--session", "session", "--role", "role",
                 "--roles", "patient,therapist", "--outcome", "y", "--predictor", "x",
                 "--family", "binomial", "--nagq", "1", "--therapist-level"])
    err = capsys.readouterr().err
    assert code == 2 and "--therapist-level needs a therapist column" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
