"""The APIM with random actor and partner slopes fitted from a file read in blocks of whole
dyads (apim.model.out_of_core with the per-dyad store of apim.engine.mixed.dyad_store)
against the in-memory fit (apim.fit, validated against nlme: tests/model/test_apim_nlme.py):
the bundled alliance data (unbalanced: dropout, single ratings missing) as CSV and Parquet,
blocks from a few rows to the whole file, REML and ML, residual structures, grand-mean
centring (which moves the slopes' columns: the map ``Z B``), indistinguishable dyads,
relabelled members, two worker processes, the second pass; and the memory refusal."""

from __future__ import annotations

import numpy as np
import pytest

import apim
from apim.errors import TooLargeError
from apim.model.centring import DecompositionSpec
from apim.model.out_of_core import fit_out_of_core
from apim.model.spec import CovarianceSpec
from tests.model.test_out_of_core import assert_same as assert_same_tables

ROLES = ("patient", "therapist")
SLOPES = CovarianceSpec(random="slopes")


@pytest.fixture(scope="module")
def alliance():
    return apim.load_alliance()


@pytest.fixture(scope="module")
def csv_path(alliance, tmp_path_factory):
    path = tmp_path_factory.mktemp("ooc_slopes") / "alliance.csv"
    alliance.to_long().to_csv(path, index=False)
    return path


def blocks_fit(path, spec, block_rows=900, roles=ROLES, **options):
    return fit_out_of_core(str(path), spec, dyad="dyad", session="session", role="role",
                           roles=roles, block_rows=block_rows, **options)


def assert_same(ours, whole, tol=1e-8):
    """As for random intercepts (logLik and estimates to ``tol``, variance parameters,
    df, rows not used), and the SEs to ``tol`` too."""
    assert_same_tables(ours, whole, tol)
    np.testing.assert_allclose(ours.effects["se"], whole.effects["se"], rtol=0, atol=tol)


@pytest.fixture(scope="module")
def whole_reml(alliance):
    return apim.fit(alliance, apim.APIMSpec("outcome", ("alliance",), covariance=SLOPES))


@pytest.mark.parametrize("block_rows", [4, 900, 100_000])
def test_equals_the_in_memory_fit(alliance, csv_path, whole_reml, block_rows):
    """Blocks of a dyad or less (4 rows: every block one dyad), of a few dyads, and the
    whole file as one block."""
    spec = apim.APIMSpec("outcome", ("alliance",), covariance=SLOPES)
    ours = blocks_fit(csv_path, spec, block_rows, workers=1)
    n_dyads = alliance.frame["dyad"].nunique()
    assert ours.n_blocks == {4: n_dyads, 100_000: 1}.get(block_rows, ours.n_blocks) > 0
    assert len(ours.variance) == whole_reml.variance.shape[0] > 20  # 6 x 6 G
    assert_same(ours, whole_reml)


def simulated(phi, cor, seed=5):
    """150 dyads x 10 sessions with random actor and partner slopes (SDs .25-.35),
    dropout, skipped sessions and single ratings missing: fits inside the parameter
    space (a boundary is tested apart)."""
    from apim.simulation.simulate import SimulationSpec

    return apim.simulate(SimulationSpec(
        n_dyads=150, n_sessions=10, slope_sd=(0.35, 0.3), partner_slope_sd=(0.25, 0.25),
        dropout=0.1, skipped=0.05, missing=0.05, residual_phi=phi, residual_cor=cor),
        seed=seed)


@pytest.fixture(scope="module")
def simulated_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ooc_simulated")
    out = {}
    for name, (phi, cor) in {"un": (0.3, 0.3), "ar1": (0.5, 0.0)}.items():
        data = simulated(phi, cor)
        out[name] = (data, folder / f"{name}.csv")
        data.to_long().to_csv(out[name][1], index=False)
    return out


@pytest.mark.parametrize("data, options", [
    ("un", {"method": "ML"}),
    ("un", {"covariance": CovarianceSpec(random="slopes", residual="cs")}),
    ("un", {"covariance": CovarianceSpec(random="slopes", residual="cs"), "method": "ML"}),
    ("ar1", {"covariance": CovarianceSpec(random="slopes", residual="ar1")}),
    ("ar1", {"covariance": CovarianceSpec(random="slopes", residual="ar1"), "method": "ML"}),
    ("un", {"decomposition": DecompositionSpec(center="grand", reference="grand")}),
    ("un", {"distinguishable": False,
            "covariance": CovarianceSpec(random="slopes", residual="cs")}),
    ("un", {"interaction": True}),
])
def test_options(simulated_files, data, options):
    frame, path = simulated_files[data]
    spec = apim.APIMSpec("y", ("x",), **{"covariance": SLOPES, **options})
    whole = apim.fit(frame, spec)
    assert not whole.boundary
    ours = fit_out_of_core(str(path), spec, dyad="dyad", session="session", role="role",
                           roles=ROLES, block_rows=300, workers=1)
    assert ours.n_blocks > 5
    assert_same(ours, whole)


@pytest.mark.parametrize("options", [
    {"covariance": CovarianceSpec(random="slopes", residual="cs")},
    {"covariance": CovarianceSpec(random="slopes", residual="independent"), "method": "ML"},
    {"decomposition": DecompositionSpec(lag=1)},
])
def test_boundary_fits(alliance, csv_path, options):
    """Where G is singular at the optimum (the alliance data have too little slope
    variance for a 6 x 6 G), the likelihood is flat along the boundary and each search
    stops within its own tolerance (the out-of-core one without the in-memory fit's
    restart): the same optimum to about 1e-7 in the logLik, reported as a boundary."""
    spec = apim.APIMSpec("outcome", ("alliance",), **{"covariance": SLOPES, **options})
    ours, whole = blocks_fit(csv_path, spec, 700, workers=1), apim.fit(alliance, spec)
    assert ours.boundary and whole.boundary
    assert abs(ours.statistics.loglik - whole.statistics.loglik) < 1e-6
    np.testing.assert_allclose(ours.effects["estimate"], whole.effects["estimate"],
                               rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours.effects["se"], whole.effects["se"], rtol=1e-3)


def test_grand_mean_centring_moves_the_slopes_columns(alliance, csv_path, monkeypatch):
    """With grand-mean centring a slope's column is the rating minus the role's centre:
    the blocks' stores are mapped by ``Z B`` (``B`` not the identity), the one pass."""
    import apim.model.out_of_core as ooc

    maps = []
    found = ooc._centring_map

    def recorded(*args):
        maps.append(found(*args))
        return maps[-1]

    monkeypatch.setattr(ooc, "_centring_map", recorded)
    spec = apim.APIMSpec("outcome", ("alliance",), covariance=SLOPES,
                         decomposition=DecompositionSpec(center="grand"))
    ours = blocks_fit(csv_path, spec, 2000, workers=1)
    (A, B), = maps
    assert B is not None and not np.allclose(B, np.eye(len(B)))
    assert_same(ours, apim.fit(alliance, spec))
    person = apim.APIMSpec("outcome", ("alliance",), covariance=SLOPES)
    blocks_fit(csv_path, person, 2000, workers=1)
    assert maps[-1][1] is None  # the within parts: no centre moves them


def test_relabelled_members_and_dyads(alliance, tmp_path, whole_reml):
    """The members' role labels exchanged and the dyads renamed in the file: equal to
    the in-memory fit of that file, and the same likelihood as the original labels."""
    long = alliance.to_long()
    swap = {"patient": "therapist", "therapist": "patient"}
    other = long.assign(role=long["role"].map(swap), dyad="d" + long["dyad"].astype(str))
    path = tmp_path / "relabelled.csv"
    other.to_csv(path, index=False)
    spec = apim.APIMSpec("outcome", ("alliance",), covariance=SLOPES)
    ours = blocks_fit(path, spec, 900, workers=1)
    data = apim.SessionData.from_long(other, dyad="dyad", session="session", role="role",
                                      roles=ROLES)
    assert_same(ours, apim.fit(data, spec))
    assert abs(ours.statistics.loglik - whole_reml.statistics.loglik) < 1e-8
    swapped = ours.coef.rename(lambda n: n.replace("patient", "P").replace(
        "therapist", "patient").replace("P", "therapist"))
    np.testing.assert_allclose(swapped[whole_reml.coef.index], whole_reml.coef, atol=1e-8)


def test_parquet_and_two_workers(alliance, tmp_path, whole_reml):
    path = tmp_path / "alliance.parquet"
    alliance.to_long().to_parquet(path, index=False)
    spec = apim.APIMSpec("outcome", ("alliance",), covariance=SLOPES)
    one = blocks_fit(path, spec, 700, workers=1)
    two = blocks_fit(path, spec, 700, workers=2)
    assert two.n_blocks == one.n_blocks > 2
    assert abs(two.statistics.loglik - one.statistics.loglik) < 1e-9
    np.testing.assert_allclose(two.coef, one.coef, rtol=0, atol=1e-10)
    assert_same(two, whole_reml)


def test_second_pass(csv_path, monkeypatch, whole_reml):
    """Were the map to the whole file's centres not found, the second pass with the
    centres gives the same fit."""
    import apim.model.out_of_core as ooc

    monkeypatch.setattr(ooc, "_centring_map", lambda *args: None)
    spec = apim.APIMSpec("outcome", ("alliance",), covariance=SLOPES)
    assert_same(blocks_fit(csv_path, spec, 900, workers=1), whole_reml)


def test_store_too_large_for_memory_is_refused(csv_path, monkeypatch):
    """The store is sized from the first block and the file's rows before the rest is
    read: beyond half the available memory, a clear refusal naming the option."""
    import apim.limits

    monkeypatch.setattr(apim.limits, "available_memory", lambda: 10_000_000)
    spec = apim.APIMSpec("outcome", ("alliance",), covariance=SLOPES)
    with pytest.raises(TooLargeError, match=r"per-dyad store of the random slopes \(.* a "
                       r"dyad, about .* dyads.*random='intercepts'"):
        blocks_fit(csv_path, spec, 900, workers=1)
    intercepts = apim.APIMSpec("outcome", ("alliance",))
    assert blocks_fit(csv_path, intercepts, 900, workers=1).statistics.converged
