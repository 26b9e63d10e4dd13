"""``apim simulate`` and ``apim power`` with a binary or ordinal outcome (--family)."""

from __future__ import annotations

import pandas as pd
import pytest

from apim.cli import main
from apim.simulation.simulate import SimulationSpec, simulate

EVENTS = ["--family", "binomial", "--set", "intercept=-1,-0.5"]


def test_simulate_binary_and_ordinal_write_what_the_api_simulates(tmp_path):
    out = tmp_path / "events.csv"
    assert main(["simulate", str(out), "--dyads", "12", "--sessions", "5", "--seed", "4",
                 *EVENTS, "--link", "probit"]) == 0
    written = pd.read_csv(out)
    expected = simulate(SimulationSpec(n_dyads=12, n_sessions=5, family="binomial",
                                       link="probit", intercept=(-1.0, -0.5)), seed=4)
    pd.testing.assert_series_equal(written["y"], expected.to_long()["y"],
                                   check_names=False)
    ranks = tmp_path / "ranks.csv"
    assert main(["simulate", str(ranks), "--dyads", "12", "--sessions", "5", "--family",
                 "ordinal", "--thresholds=-1,0,1;-0.5,0.5,1.5"]) == 0
    assert set(pd.read_csv(ranks)["y"].dropna()) <= {0, 1, 2, 3}
    both = tmp_path / "both.csv"
    assert main(["simulate", str(both), "--dyads", "12", "--sessions", "5", "--family",
                 "ordinal", "--thresholds=-1,0,1;-1,0,1"]) == 0
    same = tmp_path / "same.csv"
    assert main(["simulate", str(same), "--dyads", "12", "--sessions", "5", "--family",
                 "ordinal", "--thresholds=-1,0,1"]) == 0  # one set for both roles
    pd.testing.assert_frame_equal(pd.read_csv(both), pd.read_csv(same))


def test_power_of_a_binary_partner_effect(tmp_path, capsys):
    csv = tmp_path / "power.csv"
    assert main(["power", *EVENTS, "--set", "partner_within=1.2,1.2", "--hypothesis",
                 "patient.partner.within", "--dyads", "60", "--sessions", "8",
                 "--replicates", "3", "--nagq", "1", "--quiet", "--csv", str(csv)]) == 0
    table = pd.read_csv(csv)
    assert table["replicates"].tolist() == [3]
    assert table["power"].iloc[0] >= 2 / 3  # z about 4 for this effect
    assert "patient.partner.within = 0" in capsys.readouterr().out


@pytest.mark.parametrize("argv,words", [
    (["simulate", "{tmp}/s.csv", "--family", "binomial"], "needs its own intercept"),
    (["simulate", "{tmp}/s.csv", "--family", "ordinal"], "cut-points per role"),
    (["simulate", "{tmp}/s.csv", "--family", "ordinal", "--thresholds=1,x"],
     "--thresholds 1,x: give the cut-points"),
    (["simulate", "{tmp}/s.csv", "--family", "ordinal", "--thresholds=1,-1"],
     "must be finite and increasing"),
    (["simulate", "{tmp}/s.csv", "--family", "logistic"], "--family logistic: choose one"),
    (["simulate", "{tmp}/s.csv", "--link", "probit"], "--link probit applies to --family"),
    (["simulate", "{tmp}/s.csv", *EVENTS, "--link", "cloglog"],
     "--link cloglog: choose one of logit, probit"),
    (["simulate", "{tmp}/s.csv", *EVENTS, "--thresholds=-1,1"],
     "--thresholds -1,1 applies to --family ordinal"),
    (["simulate", "{tmp}/s.csv", *EVENTS, "--set", "residual_phi=0.3"],
     "residual_phi applies to a Gaussian outcome only"),
    (["simulate", "{tmp}/s.csv", "--set", "family=binomial"], "use --family"),
    (["power", "--hypothesis", "patient.partner.within", "--nagq", "3"],
     "--nagq 3 applies to --family binomial or ordinal"),
    (["power", "--hypothesis", "patient.partner.within", *EVENTS, "--nagq", "40"],
     "--nagq 40: give 1 (Laplace) to 25"),
    (["power", "--hypothesis", "patient.partner.within", *EVENTS, "--residual", "un"],
     "--residual un does not apply to --family binomial"),
    (["power", "--hypothesis", "patient.partner.within", *EVENTS, "--random", "none"],
     "--random none does not apply"),
    (["power", "--hypothesis", "patient.partner.witin", *EVENTS, "--dyads", "30",
      "--sessions", "5", "--nagq", "1", "--replicates", "2"],
     "unknown effect 'patient.partner.witin'"),
    (["simulate", "{tmp}/s.csv", "--dynamic", "--family", "binomial"],
     "--family does not apply to --dynamic"),
    (["simulate", "{tmp}/s.csv", "--dynamic", "--set", "phi=1,2"], "4 x 4 matrix"),
    (["simulate", "{tmp}/s.csv", "--dynamic", "--set", "residual_phi=0.3"],
     "fields: n_dyads, n_sessions, phi"),
    (["power", "--dynamic", "--hypothesis", "patient.partner.lagged.x", "--nagq", "2"],
     "--nagq does not apply to --dynamic"),
    (["power", "--dynamic", "--hypothesis", "patient.partner.lagged.x", "--checkpoint",
      "{tmp}/ck"], "--checkpoint does not apply to --dynamic"),
    (["power", "--dynamic", "--hypothesis", "patient.partner.lagd.x", "--replicates", "2"],
     "unknown effect 'patient.partner.lagd.x'"),
])
def test_misuse_exits_2_with_one_line(tmp_path, capsys, argv, words):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "ck").exists()


def test_help_shows_the_family_options_with_an_example(capsys):
    for command in ("simulate", "power"):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert "--family" in text and "--thresholds" in text and "--link" in text
        assert "--family binomial" in text and "--dynamic" in text  # example lines
    assert main(["power", "--help"]) == 0
    assert "--nagq" in capsys.readouterr().out


# ------------------------------------------------------------------ the dynamic APIM
PHI = "0.4,0,0,0;0,0.4,0,0;0.3,0.1,0.4,0;0.1,0.2,0,0.4"


def test_simulate_dynamic_writes_what_simulate_dynamic_draws(tmp_path):
    from apim.simulation.dynamic import DynamicSimulationSpec, simulate_dynamic

    out = tmp_path / "lagged.csv"
    assert main(["simulate", str(out), "--dynamic", "--dyads", "15", "--sessions", "6",
                 "--seed", "3", "--set", f"phi={PHI}", "--set", "p_missing=0.1"]) == 0
    spec = DynamicSimulationSpec(n_dyads=15, n_sessions=6, p_missing=0.1, phi=(
        (0.4, 0, 0, 0), (0, 0.4, 0, 0), (0.3, 0.1, 0.4, 0), (0.1, 0.2, 0, 0.4)))
    expected = simulate_dynamic(spec, seed=3).to_long()
    written = pd.read_csv(out)
    for column in ("x", "y"):
        pd.testing.assert_series_equal(written[column], expected[column].reset_index(
            drop=True), check_names=False)


def test_power_dynamic_equals_dynamic_power(tmp_path, capsys):
    from apim.simulation.dynamic import DynamicSimulationSpec, dynamic_power

    csv = tmp_path / "power.csv"
    assert main(["power", "--dynamic", "--hypothesis", "patient.partner.lagged.x",
                 "--dyads", "25", "--sessions", "5", "--replicates", "3", "--seed", "2",
                 "--quiet", "--csv", str(csv)]) == 0
    table = pd.read_csv(csv)
    direct = dynamic_power(DynamicSimulationSpec(n_dyads=25, n_sessions=5),
                           "patient.partner.lagged.x", replicates=3, seed=2)
    assert table["power"].iloc[0] == pytest.approx(direct.power)
    assert table["mean_estimate"].iloc[0] == pytest.approx(direct.mean_estimate)
    assert table["replicates"].iloc[0] == direct.replicates
