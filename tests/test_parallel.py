"""The generic job runner: order, seeds, failures kept with their type and text."""

from __future__ import annotations

import time

import numpy as np
import pytest

from apim.errors import ApimError, SpecError
from apim.parallel import run_jobs


def draw(job, seed):
    if job == "bad":
        raise KeyError("no such effect")
    return float(np.random.default_rng(seed).normal()) + job


def test_failing_job_is_reported_and_the_others_complete():
    jobs = [1, 2, "bad", 4, 5]
    for n_jobs in (1, 2):
        out = run_jobs(draw, jobs, seed=9, n_jobs=n_jobs, progress=False)
        assert [o.index for o in out] == list(range(5))
        assert [o.ok for o in out] == [True, True, False, True, True]
        assert out[2].error_type == "KeyError" and "no such effect" in out[2].error
        assert out[2].value is None


def test_seeds_do_not_depend_on_workers_or_chunks():
    jobs = list(range(12))
    serial = [o.value for o in run_jobs(draw, jobs, seed=3, progress=False)]
    parallel = [o.value for o in run_jobs(draw, jobs, seed=3, n_jobs=2, chunk_size=5,
                                          progress=False)]
    assert serial == parallel
    assert len(set(serial)) == len(serial)  # every job its own stream
    other = [o.value for o in run_jobs(draw, jobs, seed=4, progress=False)]
    assert other != serial


@pytest.mark.parametrize("options, words", [({"n_jobs": 0}, "n_jobs=0"),
                                             ({"n_jobs": True}, "n_jobs=True"),
                                             ({"chunk_size": 0}, "chunk_size=0"),
                                             ({"scheduler": "nowhere"}, "not an address")])
def test_bad_options(options, words):
    with pytest.raises(SpecError, match=words):
        run_jobs(draw, [1], seed=1, progress=False, **options)


def test_unreachable_scheduler_fails_fast():
    pytest.importorskip("dask.distributed")
    clock = time.perf_counter()
    with pytest.raises(ApimError, match="could not reach the Dask scheduler"):
        run_jobs(draw, [1], seed=1, progress=False, scheduler="tcp://127.0.0.1:9")
    assert time.perf_counter() - clock < 15
