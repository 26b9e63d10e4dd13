"""The effects table and the rows not used are built once per result and handed out as
copies: changing a copy changes nothing in the result (results stay immutable)."""

from __future__ import annotations

import numpy as np

import apim
import apim.model.result as result_module


def test_effects_built_once_and_copies_handed_out(monkeypatch):
    fit = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
    fresh = result_module.APIMResult(design=fit.design, engine=fit.engine, df=fit.df)
    calls = []
    original = result_module.effects_frame

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(result_module, "effects_frame", counting)
    first = fresh.effects
    fresh.summary()
    fresh.to_dict()
    assert len(calls) == 1
    expected = first.copy()
    first.loc[:, "estimate"] = np.nan  # a caller's change to its copy
    del first["p"]
    again = fresh.effects
    assert again.equals(expected) and again is not first
    assert fresh.summary() == fit.summary()


def test_dropped_is_a_copy():
    fit = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
    dropped = fit.dropped
    n = len(dropped)
    assert n > 0  # the example data has missing ratings
    expected = dropped.copy()
    dropped.loc[:, "reason"] = "changed by the caller"
    del dropped["row"]
    assert fit.dropped.equals(expected) and len(fit.dropped) == n
