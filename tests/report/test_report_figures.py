"""Figures: each is drawn, written as PNG, and what it shows is checked against the fit."""

from __future__ import annotations

import numpy as np
import pytest

import apim
from apim.inference.patterns import dyadic_patterns
from apim.inference.slopes import johnson_neyman, simple_slopes
from apim.report import figures as fg
from apim.report import labels as lab

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def data():
    return apim.load_alliance()


@pytest.fixture(scope="module")
def moderated(data):
    return apim.fit(data, apim.APIMSpec("outcome", ("alliance",), moderators=("treatment",)))


def _png(fig, path):
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 5000
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_path_diagram_shows_every_effect_and_k(moderated, tmp_path):
    fig = fg.path_diagram(moderated)
    _png(fig, tmp_path / "path.png")
    texts = _texts(fig)
    eff = moderated.effects
    plain = eff[(eff["by"] == "") & eff["effect"].isin(["actor", "partner"])]
    for _, row in plain.iterrows():
        label = lab.number(row["estimate"], 2) + lab.stars(row["p"])
        assert label in texts
    k = dyadic_patterns(moderated, draws=5000)
    for value in k["k"]:
        assert any(t.startswith(f"k = {lab.number(value, 2)} ") for t in texts)
    assert [a.get_title() for a in fig.axes] == ["Within-person", "Between-person"]


def test_path_diagram_into_given_axes(moderated):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert fg.path_diagram(moderated, level="between", ax=ax) is fig
    assert ax.get_title() == "Between-person"
    with pytest.raises(apim.errors.SpecError):
        fg.path_diagram(moderated, ax=ax)  # two levels, one axes


def test_simple_slopes_and_johnson_neyman(data, tmp_path):
    result = apim.fit(data, apim.APIMSpec("outcome", ("alliance",), interaction=True))
    fig = fg.simple_slopes_plot(result, "patient.actor.within", "partner")
    _png(fig, tmp_path / "slopes.png")
    left, right = fig.axes
    table = simple_slopes(result, "patient.actor.within", "partner")
    lines = left.get_lines()
    assert len(lines) == len(table)
    for line, slope in zip(lines, table["slope"]):
        x, y = line.get_data()
        assert (y[-1] - y[0]) / (x[-1] - x[0]) == pytest.approx(slope)
    jn = johnson_neyman(result, "patient.actor.within", "partner")
    lo, hi = right.get_xlim()
    drawn = [ln.get_xdata()[0] for ln in right.get_lines() if ln.get_linestyle() == "--"]
    assert sorted(drawn) == [b for b in jn.bounds if lo <= b <= hi]


def test_simple_slopes_by_category(moderated, tmp_path):
    fig = fg.simple_slopes_plot(moderated, "therapist.actor.within", "treatment[AFT]")
    _png(fig, tmp_path / "slopes_category.png")
    labels = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert labels == ["CBT", "AFT"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0].startswith("treatment = CBT")


def test_surface_plot(data, tmp_path):
    surface = apim.response_surface(data, "outcome", "alliance")
    fig = fg.surface_plot(surface)
    _png(fig, tmp_path / "surface.png")
    coef = surface.engine.coef
    frame = data.frame
    center = float(data.numeric("alliance").mean())
    ax = fig.axes[0]
    congruence = [ln for ln in ax.get_lines() if ln.get_label().startswith("congruence")][0]
    x, y, z = congruence.get_data_3d()
    p = x - center
    b = {k: coef[f"patient.surface.none.{k}"] for k in ("P", "T", "P2", "PxT", "T2")}
    expect = coef["patient.intercept"] + (b["P"] + b["T"]) * p + \
        (b["P2"] + b["PxT"] + b["T2"]) * p * p
    np.testing.assert_allclose(z, expect, rtol=1e-10)
    np.testing.assert_allclose(x, y)
    assert len(frame) > 0
    with pytest.raises(apim.errors.SpecError):
        fg.surface_plot(apim.fit(data, apim.APIMSpec("outcome", ("alliance",))))


def test_trajectories_show_observed_and_fitted(moderated, tmp_path):
    fig = fg.trajectories(moderated, dyads=[5, 17])
    _png(fig, tmp_path / "trajectories.png")
    used = moderated.design.data.frame.loc[moderated.design.used]
    fitted = moderated.engine.fitted
    ax = fig.axes[1]
    assert ax.get_title() == "Dyad 17"
    for i, role in enumerate(moderated.roles):
        rows = ((used["dyad"] == 17) & (used["role"] == role)).to_numpy()
        order = np.argsort(used["session"].to_numpy()[rows], kind="stable")
        observed, line = ax.get_lines()[2 * i], ax.get_lines()[2 * i + 1]
        np.testing.assert_allclose(line.get_ydata(), fitted[rows][order])
        np.testing.assert_allclose(observed.get_ydata(),
                                   used["outcome"].to_numpy()[rows][order])
    with pytest.raises(apim.errors.SpecError, match="no rows in the fit"):
        fg.trajectories(moderated, dyads=[99999])


def test_residual_diagnostics(moderated, tmp_path):
    fig = fg.residual_diagnostics(moderated)
    _png(fig, tmp_path / "diagnostics.png")
    assert len(fig.axes) == 6
    assert fig.axes[2].get_title() == "patient: autocorrelation by lag"


@pytest.mark.parametrize("phi", [0.0, 0.5])
def test_autocorrelation_finds_serial_correlation(phi):
    truth = apim.SimulationSpec(n_dyads=120, n_sessions=30, residual_phi=phi)
    sim = apim.simulate(truth, 7)
    result = apim.fit(sim, apim.APIMSpec("y", ("x",)))  # no AR(1) in the model
    acf = fg.residual_autocorrelation(result, max_lag=3)
    lag1 = acf[acf["lag"] == 1]
    if phi == 0:
        band = 3 / np.sqrt(lag1["pairs"])
        assert (np.abs(lag1["autocorrelation"] - lag1["expected"]) < band).all()
    else:
        assert (lag1["autocorrelation"] > 0.3).all()
        lag2 = acf[acf["lag"] == 2]
        assert (lag2["autocorrelation"].to_numpy() < lag1["autocorrelation"].to_numpy()).all()
