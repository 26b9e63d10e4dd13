"""One APIM fit spread over the workers of a Dask cluster (separate worker processes):
the same numbers as the in-memory fit and the local out-of-core fit to 1e-8; partitions of
a Parquet file by row groups that cut dyads apart are stitched back to whole dyads; a
dyad whose rows are in two places is refused; the cluster is shut down after."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import apim
from apim.data.blocks import parquet_partitions, partition_frame
from apim.errors import DataError
from apim.model.out_of_core import fit_out_of_core

distributed = pytest.importorskip("dask.distributed")
ROLES = ("patient", "therapist")


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    """The alliance data in row groups of 333 rows: every boundary cuts a dyad."""
    path = tmp_path_factory.mktemp("dask") / "alliance.parquet"
    long = apim.load_alliance().to_long()
    pq.write_table(pa.Table.from_pandas(long, preserve_index=False), path,
                   row_group_size=333)
    return path


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:
        yield local.scheduler_address


def test_partitions_hold_whole_dyads(parquet):
    long = pd.read_parquet(parquet)
    parts = parquet_partitions(parquet, 1000)
    assert len(parts) > 5
    frames = [partition_frame(p, "dyad", ["session", "role", "outcome"]) for p in parts]
    together = pd.concat([f for f, _ in frames], ignore_index=True)
    pd.testing.assert_frame_equal(together, long[together.columns])  # every row, once
    ids = [set(f["dyad"]) for f, _ in frames]
    assert all(not (a & b) for k, a in enumerate(ids) for b in ids[k + 1:])
    starts = [s for _, s in frames]
    assert starts == [1 + sum(len(f) for f, _ in frames[:k]) for k in range(len(frames))]


def test_cluster_fit_equals_local_and_in_memory(parquet, cluster):
    spec = apim.APIMSpec("outcome", ("alliance",))
    options = {"dyad": "dyad", "session": "session", "role": "role", "roles": ROLES,
               "block_rows": 1000}
    on_cluster = fit_out_of_core(str(parquet), spec, scheduler=cluster, **options)
    local = fit_out_of_core(str(parquet), spec, **options)
    whole = apim.fit(apim.load_alliance(), spec)
    assert on_cluster.n_blocks == len(parquet_partitions(parquet, 1000))
    for other in (local, whole):
        assert abs(on_cluster.statistics.loglik - other.statistics.loglik) < 1e-8
        np.testing.assert_allclose(on_cluster.coef, other.coef, atol=1e-8, rtol=0)
        np.testing.assert_allclose(on_cluster.variance["estimate"],
                                   other.variance["estimate"], rtol=1e-6)
    pd.testing.assert_frame_equal(on_cluster.dropped, whole.dropped)


def test_cluster_fits_random_slopes(parquet, cluster):
    """Random actor and partner slopes: each partition's per-dyad store travels back and
    the client fits from the stores in partition order; equal to the in-memory fit."""
    from apim.model.spec import CovarianceSpec

    spec = apim.APIMSpec("outcome", ("alliance",), covariance=CovarianceSpec(random="slopes"))
    on_cluster = fit_out_of_core(str(parquet), spec, scheduler=cluster, dyad="dyad",
                                 session="session", role="role", roles=ROLES,
                                 block_rows=1000)
    whole = apim.fit(apim.load_alliance(), spec)
    assert on_cluster.n_blocks == len(parquet_partitions(parquet, 1000)) > 5
    assert abs(on_cluster.statistics.loglik - whole.statistics.loglik) < 1e-8
    np.testing.assert_allclose(on_cluster.coef, whole.coef, atol=1e-8, rtol=0)
    np.testing.assert_allclose(on_cluster.effects["se"], whole.effects["se"], atol=1e-8,
                               rtol=0)
    np.testing.assert_allclose(on_cluster.variance["estimate"], whole.variance["estimate"],
                               rtol=1e-6)
    pd.testing.assert_frame_equal(on_cluster.dropped, whole.dropped)


def test_cluster_refuses_split_dyads(tmp_path, cluster):
    long = apim.load_alliance().to_long()
    first = long["dyad"] == long["dyad"].iloc[0]
    shuffled = pd.concat([long[first].iloc[:5], long[~first], long[first].iloc[5:]])
    path = tmp_path / "unsorted.parquet"
    pq.write_table(pa.Table.from_pandas(shuffled, preserve_index=False), path,
                   row_group_size=2000)
    with pytest.raises(DataError, match="has rows in two places"):
        fit_out_of_core(str(path), apim.APIMSpec("outcome", ("alliance",)), dyad="dyad",
                        session="session", role="role", roles=ROLES, block_rows=2000,
                        scheduler=cluster)


def test_command_with_scheduler(parquet, cluster, capsys):
    """``apim fit DATA --scheduler ADDR`` prints the same estimates as the local fit."""
    import json

    from apim.cli import main

    argv = ["fit", str(parquet), "--dyad", "dyad", "--session", "session", "--role", "role",
            "--roles", "patient,therapist", "--outcome", "outcome", "--predictor",
            "alliance", "--format", "json"]
    outs = []
    for extra in (["--scheduler", cluster, "--out-of-core", "1000"], []):
        assert main([*argv, *extra]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert abs(outs[0]["loglik"] - outs[1]["loglik"]) < 1e-8
    assert outs[0]["out_of_core"]["blocks"] > 1
    assert main([*argv, "--scheduler", "nowhere"]) == 2
    assert "not an address" in capsys.readouterr().err
