"""The APIM fitted from a file read in blocks of whole dyads (apim.model.out_of_core)
against the in-memory fit (apim.fit, validated against nlme): the bundled alliance data
(unbalanced, ratings missing) as CSV and Parquet, small blocks (down to a dyad or two),
the decomposition options, ML and other residual structures; rows not used counted per
reason; the refusals and the file errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import apim
from apim.errors import DataError, SpecError
from apim.model.centring import DecompositionSpec
from apim.model.out_of_core import fit_out_of_core
from apim.model.spec import CovarianceSpec

ROLES = ("patient", "therapist")


@pytest.fixture(scope="module")
def alliance():
    return apim.load_alliance()


@pytest.fixture(scope="module")
def csv_path(alliance, tmp_path_factory):
    path = tmp_path_factory.mktemp("ooc") / "alliance.csv"
    alliance.to_long().to_csv(path, index=False)
    return path


def blocks_fit(path, spec, block_rows=900, **options):
    return fit_out_of_core(str(path), spec, dyad="dyad", session="session", role="role",
                           roles=ROLES, block_rows=block_rows, **options)


def assert_same(ours, whole, tol=1e-8):
    assert ours.statistics.converged and whole.statistics.converged
    assert abs(ours.statistics.loglik - whole.statistics.loglik) < tol
    assert ours.statistics.n_obs == whole.statistics.n_obs
    assert ours.statistics.n_dyads == whole.statistics.n_dyads
    a, b = ours.effects, whole.effects
    assert list(a.index) == list(b.index)
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=0, atol=tol)
    np.testing.assert_allclose(a["se"], b["se"], rtol=1e-6)
    np.testing.assert_allclose(a["df"], b["df"], rtol=1e-3)
    assert list(ours.variance.index) == list(whole.variance.index)
    np.testing.assert_allclose(ours.variance["estimate"], whole.variance["estimate"],
                               rtol=1e-6)
    assert ours.dropped_counts == whole.dropped["reason"].value_counts().to_dict()
    pd.testing.assert_frame_equal(ours.dropped, whole.dropped)
    assert np.isclose(ours.statistics.aic, whole.statistics.aic, atol=1e-7)


@pytest.mark.parametrize("block_rows", [20, 900, 100_000])
def test_equals_the_in_memory_fit(alliance, csv_path, block_rows):
    spec = apim.APIMSpec("outcome", ("alliance",))
    ours = blocks_fit(csv_path, spec, block_rows)
    assert ours.n_blocks == (1 if block_rows == 100_000 else ours.n_blocks)
    assert ours.n_blocks > 1 or block_rows == 100_000
    assert ours.n_rows_read == len(alliance.frame)
    assert_same(ours, apim.fit(alliance, spec))


def test_parquet_and_missing_codes(alliance, tmp_path):
    long = alliance.to_long()
    coded = long.assign(outcome=long["outcome"].fillna(-99))
    path = tmp_path / "alliance.parquet"
    coded.to_parquet(path, index=False)
    spec = apim.APIMSpec("outcome", ("alliance",))
    ours = blocks_fit(path, spec, 1000, missing=(-99,))
    assert_same(ours, apim.fit(alliance, spec))


@pytest.mark.parametrize("options", [
    {"decomposition": DecompositionSpec(lag=1)},
    {"decomposition": DecompositionSpec(detrend=True, reference="observations")},
    {"decomposition": DecompositionSpec(center="grand", reference="grand")},
    {"interaction": True, "method": "ML"},
    {"covariance": CovarianceSpec(residual="ar1")},
    {"distinguishable": False},
])
def test_options(alliance, csv_path, options):
    spec = apim.APIMSpec("outcome", ("alliance",), **options)
    assert_same(blocks_fit(csv_path, spec, 700), apim.fit(alliance, spec))


def test_wald_test_and_summary(alliance, csv_path):
    spec = apim.APIMSpec("outcome", ("alliance",))
    ours, whole = blocks_fit(csv_path, spec), apim.fit(alliance, spec)
    h = "patient.actor.within.alliance = therapist.actor.within.alliance"
    a, b = apim.wald_test(ours, h), apim.wald_test(whole, h)
    assert np.isclose(a.statistic, b.statistic, rtol=1e-6)
    assert np.isclose(a.p, b.p, rtol=1e-4)
    text = ours.summary()
    assert "out of core" in text and "rows not used" in text
    assert ours.to_dict()["dropped_counts"] == ours.dropped_counts
    assert any("Rows not used" in n for n in ours.notes())
    assert ours.fitted_frame() is None and ours.design_matrix() is None


@pytest.mark.parametrize("spec, match", [
    (apim.APIMSpec("outcome", ("alliance",), covariance=CovarianceSpec(random="none")),
     "random='none'"),
    (apim.APIMSpec("outcome", ("alliance",), moderators=("treatment",)), "moderators"),
    (apim.APIMSpec("outcome", ("alliance",),
                   covariance=CovarianceSpec(therapist_level=True)), "therapist level"),
])
def test_refusals(csv_path, spec, match):
    with pytest.raises(SpecError, match=match):
        blocks_fit(csv_path, spec)


def test_dyad_split_in_the_file_is_refused(alliance, tmp_path):
    long = alliance.to_long()
    first = long["dyad"] == long["dyad"].iloc[0]
    shuffled = pd.concat([long[first].iloc[:5], long[~first], long[first].iloc[5:]])
    path = tmp_path / "unsorted.csv"
    shuffled.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"dyad .* has rows in two places.*sort the file"):
        blocks_fit(path, apim.APIMSpec("outcome", ("alliance",)), 500)


def test_bad_block_names_file_rows(alliance, tmp_path):
    long = alliance.to_long()
    long["session"] = long["session"].astype(float)
    long.loc[5000, "session"] = 2.5  # not a whole session number, row 5001 of the file
    path = tmp_path / "bad.csv"
    long.to_csv(path, index=False)
    with pytest.raises(DataError, match="5001"):
        blocks_fit(path, apim.APIMSpec("outcome", ("alliance",)), 700)


def test_whole_file_checks_not_block_checks(alliance, tmp_path):
    """A block in which a predictor is constant is fine; a file in which it is, is not."""
    long = alliance.to_long()
    first = long["dyad"] == long["dyad"].iloc[0]
    long.loc[first, "alliance"] = 7.0  # constant in the first dyad's block
    path = tmp_path / "ceiling.csv"
    long.to_csv(path, index=False)
    spec = apim.APIMSpec("outcome", ("alliance",))
    data = apim.SessionData.from_long(long, dyad="dyad", session="session", role="role",
                                      roles=ROLES)
    assert_same(blocks_fit(path, spec, 20), apim.fit(data, spec))
    long["alliance"] = 7.0
    long.to_csv(path, index=False)
    with pytest.raises(DataError, match="constant"):
        blocks_fit(path, spec, 20)


def test_missing_column_and_format(csv_path, tmp_path):
    with pytest.raises(DataError, match="nope"):
        blocks_fit(csv_path, apim.APIMSpec("nope", ("alliance",)))
    other = tmp_path / "x.sav"
    other.write_bytes(b"")
    with pytest.raises(apim.errors.ApimError, match="parquet, .csv"):
        blocks_fit(other, apim.APIMSpec("outcome", ("alliance",)))


def test_worker_processes_give_the_same_numbers(alliance, csv_path):
    """Blocks worked on in two processes: the sums are added in the order of the blocks,
    so the result is that of one process (to round-off: BLAS may sum the same numbers
    in another order in another process)."""
    spec = apim.APIMSpec("outcome", ("alliance",), interaction=True)
    one = blocks_fit(csv_path, spec, 700, workers=1)
    two = blocks_fit(csv_path, spec, 700, workers=2)
    assert two.n_blocks == one.n_blocks > 2
    assert abs(two.statistics.loglik - one.statistics.loglik) < 1e-9
    np.testing.assert_allclose(two.coef, one.coef, rtol=1e-12, atol=1e-12)
    pd.testing.assert_frame_equal(two.dropped, one.dropped)
    assert_same(two, apim.fit(alliance, spec))
    with pytest.raises(SpecError, match="workers=0"):
        blocks_fit(csv_path, spec, 700, workers=0)
    with pytest.raises(SpecError, match="workers= does not apply with a scheduler"):
        blocks_fit(csv_path, spec, 700, workers=2, scheduler="tcp://127.0.0.1:1")


def test_bad_block_in_a_worker_names_file_rows(alliance, tmp_path):
    long = alliance.to_long()
    long["session"] = long["session"].astype(float)
    long.loc[9000, "session"] = 2.5  # row 9001 of the file: a later block, in a worker
    path = tmp_path / "bad.csv"
    long.to_csv(path, index=False)
    with pytest.raises(DataError, match="9001"):
        blocks_fit(path, apim.APIMSpec("outcome", ("alliance",)), 700, workers=2)


def test_one_pass_or_two(alliance, csv_path, monkeypatch):
    """The blocks are read once: their statistics, built with zero centres, are mapped
    to the whole file's centres (exact for the APIM's columns); were the map not found,
    a second pass with the centres gives the same fit."""
    import apim.model.out_of_core as ooc

    spec = apim.APIMSpec("outcome", ("alliance",), interaction=True)
    reads = []
    blocks = ooc.dyad_blocks

    def counted(*args, **kwargs):
        reads.append(1)
        return blocks(*args, **kwargs)

    monkeypatch.setattr(ooc, "dyad_blocks", counted)
    once = blocks_fit(csv_path, spec, 900)
    assert len(reads) == 1
    monkeypatch.setattr(ooc, "_centring_map", lambda *args: None)
    twice = blocks_fit(csv_path, spec, 900)
    assert len(reads) == 3  # once more for the fit, once for the second pass
    whole = apim.fit(alliance, spec)
    assert_same(once, whole)
    assert_same(twice, whole)


def _ends_abruptly(*args):
    """A worker's pass that ends its process (as the kernel's out-of-memory killer does)."""
    import os

    os._exit(9)


def test_a_worker_that_dies_is_named(csv_path, monkeypatch):
    import apim.model.out_of_core as ooc
    from apim.errors import TooLargeError

    monkeypatch.setattr(ooc, "_block_pass", _ends_abruptly)
    with pytest.raises(TooLargeError, match="worker process .* ended abruptly.*--workers 1"):
        blocks_fit(csv_path, apim.APIMSpec("outcome", ("alliance",)), 700, workers=2)
