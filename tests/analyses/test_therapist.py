"""Therapist effects: variance shares against nlme, simulation truth and the exact F
interval; the association split against nlme; invariances, boundaries, bad input, CLI."""

from __future__ import annotations

import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
from nlme_support import REFERENCE, rscript
from scipy import optimize, stats

import apim
from apim.analyses.therapist import (
    TherapistSpec,
    association_split,
    exact_icc_interval,
    session_split,
    therapist_effects,
    variance_shares,
)
from apim.cli import main
from apim.datasets import alliance_path
from apim.errors import ApimError, DataError, SpecError
from apim.parallel import run_jobs
from apim.simulation.simulate import SimulationSpec, simulate

R_SCRIPT = REFERENCE / "therapist_effects.R"
COMMITTED = REFERENCE / "therapist_bundled.csv"
ROLES = ("patient", "therapist")


def _compare_with_r(data: apim.SessionData, ref: pd.DataFrame, variables: list[str],
                    predictor: str, outcome: str) -> None:
    ref = ref.set_index(["model", "quantity"])["estimate"].to_frame().join(
        ref.set_index(["model", "quantity"])["se"])
    shares = variance_shares(data, variables, ci="none")
    total = shares.table.groupby(["variable", "role"])["variance"].transform("sum")
    for row, scale in zip(shares.table.itertuples(), total):
        key = f"shares:{row.variable}:{row.role}"
        # VarCorr prints 7 significant digits: relative 1e-3 (DESIGN.md section 8); a
        # variance at zero is ~1e-14 here and ~1e-8 in nlme: absolute, 1e-6 of the total
        assert row.variance == pytest.approx(ref.loc[(key, row.level), "estimate"], rel=1e-3,
                                             abs=1e-6 * scale)
        assert row.share == pytest.approx(ref.loc[(key, f"share:{row.level}"), "estimate"],
                                          rel=1e-3, abs=1e-6)
    for (variable, role), fitted in shares.fits.items():
        r_loglik = ref.loc[(f"shares:{variable}:{role}", "logLik"), "estimate"]
        assert fitted.loglik == pytest.approx(r_loglik, abs=1e-3)
    table = association_split(data, predictor, outcome)
    for row in table.itertuples():
        key = (f"association:{row.predictor_role}:{row.outcome_role}", row.level)
        r_est, r_se = ref.loc[key, "estimate"], ref.loc[key, "se"]
        assert abs(row.estimate - r_est) < 1e-4 * r_se
        assert row.se == pytest.approx(r_se, rel=1e-3)


# ---------------------------------------------------------------------- nlme
def test_bundled_data_against_committed_nlme():
    _compare_with_r(apim.load_alliance(), pd.read_csv(COMMITTED), ["alliance", "outcome"],
                    "alliance", "outcome")


def _unbalanced(seed: int) -> apim.SessionData:
    truth = SimulationSpec(n_dyads=60, n_sessions=10, caseload=4, x_therapist_sd=0.4,
                           therapist_sd=0.3, missing=0.1, skipped=0.1)
    return simulate(truth, seed=seed)


@pytest.mark.r
def test_live_nlme_refit(tmp_path):
    """A fresh unbalanced data set (missing ratings, skipped sessions) refitted in R."""
    seed = int(np.random.default_rng().integers(1_000_000))
    data = _unbalanced(seed)
    path, out = tmp_path / "data.csv", tmp_path / "out.csv"
    data.frame.drop(columns="row").to_csv(path, index=False)
    subprocess.run([rscript(), str(R_SCRIPT), str(path), str(out), "x,y", "x", "y"],
                   check=True, capture_output=True, timeout=600)
    _compare_with_r(data, pd.read_csv(out), ["x", "y"], "x", "y")


# ---------------------------------------------------------------------- exact interval
def _balanced_one_way(seed: int, k: int = 25, n: int = 6, dyad_sd: float = 0.6
                      ) -> apim.SessionData:
    rng = np.random.default_rng(seed)
    dyad = np.repeat(np.arange(1, k + 1), 2 * n)
    session = np.tile(np.repeat(np.arange(1, n + 1), 2), k)
    role = np.tile(ROLES, k * n)
    u = rng.normal(0, dyad_sd, (k, 2))[dyad - 1, (role == "therapist").astype(int)]
    frame = pd.DataFrame({"dyad": dyad, "session": session, "role": role,
                          "y": 3 + u + rng.normal(0, 1, len(dyad))})
    return apim.SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                      roles=ROLES)


def _inverted_f_test(y: np.ndarray, group: np.ndarray, level: float) -> tuple[float, ...]:
    """The interval by inverting the F test numerically: rho such that
    F (1 - rho) / (1 + (n - 1) rho) equals the F quantiles."""
    k, n = len(np.unique(group)), len(y) // len(np.unique(group))
    frame = pd.DataFrame({"y": y, "g": group})
    means = frame.groupby("g")["y"].transform("mean")
    msb = n * ((frame.groupby("g")["y"].mean() - y.mean()) ** 2).sum() / (k - 1)
    msw = ((y - means) ** 2).sum() / (k * (n - 1))
    f = msb / msw

    def limit(q: float) -> float:
        target = stats.f.ppf(q, k - 1, k * (n - 1))
        return optimize.brentq(lambda r: f * (1 - r) / (1 + (n - 1) * r) - target,
                               -1 / (n - 1) + 1e-12, 1 - 1e-12, xtol=1e-14)

    alpha = 1 - level
    return f, limit(1 - alpha / 2), limit(alpha / 2)


@pytest.mark.parametrize("seed,dyad_sd", [(1, 0.6), (2, 0.3), (3, 1.2)])
def test_exact_interval_in_balanced_one_way_design(seed, dyad_sd):
    data = _balanced_one_way(seed, dyad_sd=dyad_sd)
    out = variance_shares(data, ["y"], level=0.90)
    for who in ROLES:
        rows = out.table[out.table["role"] == who].set_index("level")
        sub = data.frame[data.frame["role"] == who]
        f, low, high = _inverted_f_test(sub["y"].to_numpy(), sub["dyad"].to_numpy(), 0.90)
        assert rows.loc["dyad", "ci_method"] == "exact"
        assert rows.loc["dyad", "ci_low"] == pytest.approx(low, abs=1e-10)
        assert rows.loc["dyad", "ci_high"] == pytest.approx(high, abs=1e-10)
        assert rows.loc["session", "ci_low"] == pytest.approx(1 - high, abs=1e-10)
        if f > 1:  # the REML estimate is the ANOVA estimate (F - 1) / (F + n - 1)
            assert rows.loc["dyad", "share"] == pytest.approx((f - 1) / (f + 5), abs=1e-6)


def test_exact_interval_worked_example():
    """Shrout & Fleiss (1979) ICC(1,1) on their Table 2 (6 targets, 4 judges):
    ICC(1,1) = .17, 95% interval -.13 to .72 (their section on confidence intervals)."""
    ratings = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6],
                        [10, 5, 6, 9], [6, 2, 4, 7]], float)
    icc, low, high = exact_icc_interval(ratings.ravel(), np.repeat(np.arange(6), 4))
    assert round(icc, 2) == 0.17
    assert (round(low, 2), round(high, 2)) == (-0.13, 0.72)


def test_exact_interval_covers_at_its_level():
    """Over 400 balanced data sets the 90% exact interval covers the true ICC 86.5-93.5%
    of the time (binomial 99% band)."""
    truth = 0.36 / 1.36
    hits = 0
    for seed in range(400):
        data = _balanced_one_way(seed, k=12, n=4)
        sub = data.frame.query("role == 'patient'")
        _, low, high = exact_icc_interval(sub["y"], sub["dyad"], level=0.90)
        hits += low <= truth <= high
    assert 0.865 <= hits / 400 <= 0.935


# ---------------------------------------------------------------------- simulation truth
TRUTH = SimulationSpec(n_dyads=80, n_sessions=8, caseload=4, x_therapist_sd=0.4,
                       x_between_sd=(0.6, 0.5), x_within_sd=(0.5, 0.4), x_phi=0.0,
                       x_between_cor=0.4)


def _shares_of_replicate(job: int, seed: np.random.SeedSequence) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = variance_shares(simulate(TRUTH, seed=seed), ["x"], ci="none")
    return out.table[["variance", "share"]].to_numpy()


def test_shares_recover_simulated_truth():
    """200 replicates (20 therapists x 4 dyads x 8 sessions). The REML variance at each
    level and role averages to the truth within 3 Monte Carlo SEs. The shares are ratios
    of variances, biased in small samples by O(1 / number of therapists): their mean lies
    within 3 Monte Carlo SEs plus 0.02 of the truth (the therapist-coverage section of
    benchmarks/RESULTS.md measures that bias: up to 0.024 with 20 therapists)."""
    outcomes = run_jobs(_shares_of_replicate, list(range(200)),
                        seed=20261125, n_jobs=2, progress=False)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
    values = np.array([o.value for o in outcomes])
    variances, shares = values[:, :, 0], values[:, :, 1]
    true_var, true_share = [], []
    for r in range(2):
        parts = np.array([TRUTH.x_therapist_sd ** 2, TRUTH.x_between_sd[r] ** 2,
                          TRUTH.x_within_sd[r] ** 2])
        true_var += list(parts)
        true_share += list(parts / parts.sum())
    n = len(values)
    mc_var = variances.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(variances.mean(axis=0) - true_var) < 3 * mc_var), (
        variances.mean(axis=0), true_var, mc_var)
    mc_share = shares.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(shares.mean(axis=0) - true_share) < 3 * mc_share + 0.02), (
        shares.mean(axis=0), true_share, mc_share)


# ---------------------------------------------------------------------- bootstrap, boundary
def test_bootstrap_is_reproducible_and_parallel_equals_serial():
    data = _unbalanced(5)
    one = variance_shares(data, ["y"], ci="bootstrap", n_boot=30, seed=9)
    two = variance_shares(data, ["y"], ci="bootstrap", n_boot=30, seed=9, n_jobs=2)
    pd.testing.assert_frame_equal(one.table, two.table)
    table = one.table
    assert (table["ci_method"] == "bootstrap").all() and (table["n_boot"] == 30).all()
    assert ((table["ci_low"] <= table["share"]) & (table["share"] <= table["ci_high"])).all()


def test_boundary_flagged_when_therapists_do_not_differ():
    """Therapist means of y removed: the therapist variance is estimated at zero, flagged,
    and the bootstrap interval starts at zero."""
    data = _unbalanced(7)
    frame = data.frame.copy()
    frame["y"] = frame["y"] - frame.groupby(["therapist", "role"])["y"].transform("mean") + 4
    flat = data.replace(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = variance_shares(flat, ["y"], ci="bootstrap", n_boot=40, seed=1)
    rows = out.table.query("level == 'therapist'")
    assert rows["boundary"].all()
    assert (rows["share"] < 1e-6).all() and (rows["ci_low"] < 1e-6).all()
    assert not out.table.query("level != 'therapist'")["boundary"].any()
    spec = TherapistSpec(variables=("y",), ci="none")
    assert "boundary: y (patient) therapist variance at zero" in str(
        therapist_effects(flat, spec))


# ---------------------------------------------------------------------- invariances
def test_relabelled_and_rescaled_data_give_the_same_shares():
    data = _unbalanced(11)
    base = variance_shares(data, ["x"], ci="none").table
    frame = data.frame.copy()
    frame["dyad"] = 1000 - frame["dyad"]
    frame["therapist"] = frame["therapist"].map(lambda t: f"T{99 - t}")
    frame["x"] = 10 * frame["x"] - 3
    other = data.replace(frame.sample(frac=1, random_state=1).reset_index(drop=True))
    again = variance_shares(other, ["x"], ci="none").table
    assert np.allclose(again["share"], base["share"], atol=1e-6)
    assert np.allclose(again["variance"], 100 * base["variance"], rtol=1e-5)
    split = association_split(data, "x", "y")
    split2 = association_split(other, "x", "y")
    assert np.allclose(split2["estimate"], split["estimate"] / 10, atol=1e-6)


def test_covariates_give_conditional_shares():
    data = apim.load_alliance()
    plain = variance_shares(data, ["outcome"], ci="none")
    adjusted = variance_shares(data, ["outcome"], covariates=("treatment", "session"),
                               ci="none")
    fitted = adjusted.fits[("outcome", "patient")]
    assert list(fitted.coef.index) == ["Intercept", "treatment[T.AFT]", "session"]
    assert not adjusted.table["share"].equals(plain.table["share"])
    with pytest.raises(SpecError, match="ci='exact'"):
        variance_shares(data, ["outcome"], ci="exact")


# ---------------------------------------------------------------------- association
def test_contextual_effect_is_the_difference_and_matches_the_raw_parametrisation():
    """The contextual effect equals the coefficient of the therapist mean when the raw dyad
    mean is also in the model (Raudenbush & Bryk, 2002, ch. 5)."""
    data = apim.load_alliance()
    table = association_split(data, "alliance", "outcome").query(
        "predictor_role == 'patient' and outcome_role == 'patient'").set_index("level")
    assert table.loc["contextual", "estimate"] == pytest.approx(
        table.loc["therapist", "estimate"] - table.loc["within_therapist", "estimate"])
    ref = pd.read_csv(COMMITTED).set_index(["model", "quantity"])
    assert table.loc["contextual", "p"] == pytest.approx(
        2 * stats.t.sf(abs(ref.loc[("association:patient:patient", "contextual"), "estimate"]
                           / ref.loc[("association:patient:patient", "contextual"), "se"]),
                       table.loc["contextual", "df"]), rel=1e-3)


def test_session_split_contextual_rows():
    table, fitted = session_split(apim.load_alliance(), "alliance", "outcome")
    effects = fitted.effects
    row = table.query("outcome_role == 'therapist' and effect == 'partner'").set_index("level")
    assert row.loc["contextual", "estimate"] == pytest.approx(
        effects.loc["therapist.partner.therapist.alliance", "estimate"]
        - effects.loc["therapist.partner.between.alliance", "estimate"])
    assert row.loc["within", "predictor_role"] == "patient"
    assert len(table) == 16


# ---------------------------------------------------------------------- bad input
def test_bad_input_is_named():
    no_therapist = _balanced_one_way(1)
    with pytest.raises(SpecError, match="therapist column"):
        association_split(no_therapist, "y", "y")
    with pytest.raises(DataError, match="'alliancex'"):
        variance_shares(apim.load_alliance(), ["alliancex"], ci="none")
    with pytest.raises(SpecError, match="both predictor and outcome"):
        TherapistSpec(variables=("x",), predictor="x")
    with pytest.raises(SpecError, match="n_boot=5"):
        TherapistSpec(variables=("x",), n_boot=5)
    with pytest.raises(SpecError, match="level=1.5"):
        TherapistSpec(variables=("x",), level=1.5)
    with pytest.raises(SpecError, match="nothing to do"):
        TherapistSpec()
    with pytest.raises(SpecError, match="covariate 'session' changes within dyads"):
        association_split(apim.load_alliance(), "alliance", "outcome",
                          covariates=("session",))
    two_therapists = apim.load_alliance()
    frame = two_therapists.frame.query("therapist <= 2")
    with pytest.raises(SpecError, match="at least 3 therapists"):
        association_split(two_therapists.replace(frame.reset_index(drop=True)),
                          "alliance", "outcome")


def test_spec_round_trips():
    spec = TherapistSpec(variables=("alliance", "outcome"), predictor="alliance",
                         outcome="outcome", n_boot=200)
    assert TherapistSpec.from_dict(spec.to_dict()) == spec
    assert isinstance(spec.digest(), str)


# ---------------------------------------------------------------------- CLI
COLUMNS = ["--dyad", "dyad", "--session", "session", "--role", "role",
           "--therapist", "therapist"]


def test_cli_prints_tables_and_writes_csv(capsys, tmp_path):
    shares = tmp_path / "shares.csv"
    code = main(["therapist", alliance_path(), *COLUMNS, "--variable", "alliance",
                 "--predictor", "alliance", "--outcome", "outcome", "--ci", "bootstrap",
                 "--bootstrap", "20", "--seed", "3", "--no-session-split",
                 "--shares-csv", str(shares)])
    out = capsys.readouterr().out
    assert code == 0
    assert "Variance shares" in out and "contextual" in out
    assert "three-level APIM" not in out
    table = pd.read_csv(shares)
    assert list(table["level"][:3]) == ["therapist", "dyad", "session"]


def test_cli_help_shows_defaults_and_example(capsys):
    assert main(["therapist", "--help"]) == 0
    out = capsys.readouterr().out
    assert "(default: 500)" in out and "example:" in out and "apim therapist" in out


@pytest.mark.parametrize("extra,message", [
    (["--variable", "alliancex"], "'alliancex'"),
    (["--variable", "alliance", "--bootstrap", "3"], "--bootstrap 3 is too few"),
    (["--predictor", "alliance"], "both predictor and outcome"),
])
def test_cli_bad_input_one_line_exit_2(capsys, extra, message):
    code = main(["therapist", alliance_path(), *COLUMNS, *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("apim: error:") and message in err


def test_cli_without_therapist_column_is_an_error(capsys, tmp_path):
    path = tmp_path / "one_way.csv"
    _balanced_one_way(1).to_long().to_csv(path, index=False)
    code = main(["therapist", str(path), "--dyad", "dyad", "--session", "session",
                 "--role", "role", "--predictor", "y", "--outcome", "y"])
    assert code == 2 and "therapist column" in capsys.readouterr().err
    assert issubclass(SpecError, ApimError)


def test_one_session_per_person_gives_therapist_and_dyad_levels():
    """Cross-sectional ratings (first session only): the dyad is the lowest level."""
    data = apim.load_alliance()
    first = data.replace(data.frame[data.frame["session"] == 1].reset_index(drop=True))
    table = variance_shares(first, ["outcome"], ci="none").table
    assert table["level"].tolist() == ["therapist", "dyad"] * 2
    assert np.allclose(table.groupby("role")["share"].sum(), 1)
    assert (table["n_obs"] == table["n_dyads"]).all()


def test_data_without_therapists_gives_dyad_and_session_levels():
    data = _balanced_one_way(4)
    table = variance_shares(data, ["y"], ci="none").table
    assert table["level"].tolist() == ["dyad", "session"] * 2
    assert (table["n_therapists"] == 0).all()
