"""The lean preparation of large data: the engine's one sorted, standardised copy, int32
index arrays, the vectorised decomposition and the validated-by-construction simulation
must give exactly what the straightforward versions give (each oracle below is the
previous implementation, written out plainly), and must never change the caller's data."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from unbalanced_support import unbalanced

from apim.data.session import RowKeys, SessionData
from apim.engine import MixedModel, Residual, Unstructured
from apim.engine.mixed.estimate import estimate_mixed as fit
from apim.engine.mixed.likelihood import evaluate
from apim.engine.mixed.model import Prepared, ScaledModel
from apim.engine.mixed.random_effects import Diagonal
from apim.engine.mixed.residuals import ResidualLayout
from apim.engine.mixed.scaling import Scaling
from apim.errors import RankDeficientError, SpecError
from apim.model.centring import DecompositionSpec, decompose, group_mean
from apim.model.design import build_design
from apim.model.spec import APIMSpec
from apim.simulation import simulate as simulation
from apim.simulation.simulate import SimulationSpec, simulate


# ----------------------------------------------------------------------------- oracles
def old_codes(labels: np.ndarray) -> np.ndarray:
    return np.unique(np.asarray(labels), return_inverse=True)[1].ravel()


def old_layout(dyad: np.ndarray, session: np.ndarray, role: np.ndarray) -> dict:
    """The layout as it was computed before (lexsort of persons)."""
    n = len(dyad)
    start = np.flatnonzero(np.r_[True, dyad[1:] != dyad[:-1]])
    dyad = np.cumsum(np.r_[True, dyad[1:] != dyad[:-1]]) - 1
    same_session = np.r_[False, (dyad[1:] == dyad[:-1]) & (session[1:] == session[:-1])]
    pair = np.where(same_session & (role == 1), np.arange(n) - 1, -1)
    order = np.lexsort((session, role, dyad))
    prev_sorted = np.full(n, -1)
    same_person = np.r_[False, (dyad[order][1:] == dyad[order][:-1])
                        & (role[order][1:] == role[order][:-1])]
    prev_sorted[same_person] = order[np.flatnonzero(same_person) - 1]
    previous = np.full(n, -1)
    previous[order] = prev_sorted
    gap = np.where(previous >= 0, session - session[np.maximum(previous, 0)], 1)
    return {"dyad": dyad, "role": role, "session": session, "dyad_start": start,
            "pair": pair, "previous": previous, "gap": gap}


def old_scaled(model: MixedModel) -> MixedModel:
    """The standardised model as Scaling built it before: full standardised copies."""
    n = len(model.y)
    y = np.asarray(model.y, float)
    X = np.asarray(model.X, float).reshape(n, -1)

    def rms(a: np.ndarray) -> np.ndarray:
        r = np.sqrt(np.mean(np.asarray(a, float) ** 2, axis=0))
        return np.where((r > 0) & np.isfinite(r), r, 1.0)

    changes: dict = {"y": y / (float(np.std(y)) or 1.0), "X": X / rms(X)}
    if model.Z is not None and model.random is not None:
        Z = np.asarray(model.Z, float).reshape(n, -1)
        changes["Z"] = Z / model.random.tie(rms(Z))
    if model.therapist is not None and model.therapist_random is not None:
        zt = np.ones((n, 1)) if model.Z_therapist is None else \
            np.asarray(model.Z_therapist, float).reshape(n, -1)
        changes["Z_therapist"] = zt / model.therapist_random.tie(rms(zt))
    return replace(model, **changes)


def old_raw_order(model: MixedModel) -> tuple[np.ndarray, np.ndarray]:
    """The sorted copy ``[Z_T | Z | X | y]`` and its order, as built before."""
    n = len(model.y)
    dyad = old_codes(model.dyad)
    therapist = old_codes(model.therapist) if model.therapist is not None else dyad
    role = np.asarray(model.role).astype(int)
    session = np.asarray(model.session).astype(int)
    order = np.lexsort((role, session, dyad, therapist))
    parts = []
    if model.therapist is not None:
        zt = np.ones((n, 1)) if model.Z_therapist is None else model.Z_therapist
        parts.append(np.asarray(zt, float).reshape(n, -1))
    if model.Z is not None:
        parts.append(np.asarray(model.Z, float).reshape(n, -1))
    parts += [np.asarray(model.X, float).reshape(n, -1), np.asarray(model.y, float)[:, None]]
    return np.hstack(parts)[order], order


# ----------------------------------------------------------------------------- data
def dyadic(n_dyads: int = 40, n_sessions: int = 8, seed: int = 0, missing: float = 0.15,
           therapist: bool = True) -> pd.DataFrame:
    """Unbalanced data, with therapists of 1-4 dyads."""
    frame, _ = unbalanced(n_dyads, n_sessions, seed, missing)
    if therapist:
        frame["therapist"] = np.minimum(frame["dyad"] // 3, 9)
    return frame


def model_of(frame: pd.DataFrame, residual: str = "un", therapist: bool = False,
             dyad: str = "dyad") -> MixedModel:
    r = frame["role"].to_numpy()
    p, t = (1 - r).astype(float), r.astype(float)
    x = frame["x"].to_numpy()
    X = np.column_stack([p, t, p * x, t * x])
    return MixedModel(y=frame["y"].to_numpy(), X=X, dyad=frame[dyad].to_numpy(), role=r,
                      session=frame["session"].to_numpy(), Z=X[:, :2],
                      random=Unstructured(2), residual=Residual.named(residual),
                      therapist=frame["therapist"].to_numpy() if therapist else None,
                      therapist_random=Diagonal(1) if therapist else None)


def shuffled(frame: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    return frame.iloc[np.random.default_rng(seed).permutation(len(frame))]


CASES = {
    "sorted": lambda: model_of(dyadic()),
    "random order": lambda: model_of(shuffled(dyadic())),
    "therapist level": lambda: model_of(shuffled(dyadic()), therapist=True),
    "un-ar1 with missing ratings": lambda: model_of(shuffled(dyadic(missing=0.1)), "un-ar1"),
    "text ids": lambda: model_of(shuffled(dyadic().assign(
        dyad=lambda f: f["dyad"].map(lambda v: f"patient-{v:03d}"),
        therapist=lambda f: f["therapist"].map(lambda v: f"T{v}"))), therapist=True),
    "ids near 10**12": lambda: model_of(shuffled(dyadic().assign(
        dyad=lambda f: f["dyad"] * 10 ** 12 + 5)), "ar1"),
    "units changed by 1e6": lambda: (lambda m: replace(
        m, y=m.y * 1e6, X=m.X * np.array([1.0, 1.0, 1e-6, 1e6]), Z=m.Z * 1e6))(
        model_of(shuffled(dyadic()))),
}


# ----------------------------------------------------------------------------- engine
@pytest.mark.parametrize("case", CASES)
def test_preparation_equals_the_copying_one(case: str) -> None:
    """The one sorted copy, divided as it is built, equals the old standardised copies
    sorted by lexsort, to the last bit; so do the layout and the likelihood."""
    model = CASES[case]()
    scaled = Scaling.of(model).model
    assert isinstance(scaled, ScaledModel)
    prep = Prepared.of(scaled)
    reference = old_scaled(model)
    raw, order = old_raw_order(reference)
    np.testing.assert_array_equal(prep.order, order)
    np.testing.assert_array_equal(prep.raw, raw)
    lay = old_layout(old_codes(model.dyad)[order], np.asarray(model.session)[order],
                     np.asarray(model.role)[order])
    for name, values in lay.items():
        np.testing.assert_array_equal(getattr(prep.layout, name), values, err_msg=name)
    theta = np.r_[np.zeros(scaled.n_params - 1), 0.1]
    old = evaluate(reference, Prepared.of(reference), theta)
    new = evaluate(scaled, prep, theta)
    assert new.loglik == old.loglik
    np.testing.assert_array_equal(new.score, old.score)


def test_fit_equals_fit_of_the_standardised_copy() -> None:
    """A fit from the lean preparation equals the fit of the standardised copy (whose
    scale factors are then 1), mapped back to the original units."""
    model = CASES["units changed by 1e6"]()
    scaling = Scaling.of(model)
    lean = fit(model)
    copy = fit(old_scaled(model))
    assert lean.loglik == pytest.approx(scaling.loglik(copy.loglik, True), rel=1e-10)
    np.testing.assert_allclose(lean.coef.to_numpy(), scaling.beta(copy.coef.to_numpy()),
                               rtol=1e-8)
    np.testing.assert_allclose(lean.fitted, copy.fitted * scaling.y, rtol=1e-8)


@pytest.mark.parametrize("case", ["random order", "therapist level", "text ids"])
def test_fitting_never_changes_the_inputs(case: str) -> None:
    model = CASES[case]()
    before = {name: np.array(getattr(model, name), copy=True)
              for name in ("y", "X", "Z", "dyad", "role", "session")}
    fit(model)
    for name, values in before.items():
        np.testing.assert_array_equal(getattr(model, name), values, err_msg=name)


def test_index_arrays_are_int32_and_ids_keep_their_values() -> None:
    """Row indices are int32 (half the memory); dyad numbers stay int64 so products
    with type counts cannot overflow; labels of any kind come back unchanged."""
    model = CASES["ids near 10**12"]()
    prep = Prepared.of(model)
    lay = prep.layout
    for name in ("role", "session", "dyad_start", "pair", "previous", "gap"):
        assert getattr(lay, name).dtype == np.int32, name
    assert lay.dyad.dtype == np.int64
    assert prep.order.dtype == np.int32
    types = model.residual.row_types(lay)
    assert types.links.dtype == np.int32 and types.index.dtype == np.int32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(model)
    assert result.random_effects.index.tolist() == sorted(set(model.dyad.tolist()))
    assert max(result.random_effects.index) == 39 * 10 ** 12 + 5


def test_sessions_beyond_int32_stay_int64() -> None:
    lay = ResidualLayout.build(np.array([1, 1, 2]), np.array([1, 3 * 10 ** 9, 5]),
                               np.array([0, 0, 0]))
    assert lay.session.dtype == np.int64
    assert lay.gap.tolist() == [1, 3 * 10 ** 9 - 1, 1]


def test_bad_models_are_still_refused() -> None:
    model = model_of(dyadic())
    with pytest.raises(RankDeficientError, match="x4"):
        Prepared.of(replace(model, X=np.column_stack([model.X, model.X[:, 2]])))
    y = model.y.copy()
    y[3] = np.nan
    with pytest.raises(SpecError, match="finite"):
        Prepared.of(replace(model, y=y))
    moved = model.therapist if model.therapist is not None else model.dyad // 3
    moved = np.array(moved, copy=True)
    moved[0] = moved.max() + 1  # dyad 0's first row under another therapist
    with pytest.raises(SpecError, match="more than one therapist"):
        Prepared.of(replace(model, therapist=moved, therapist_random=Diagonal(1)))


def test_near_singular_design_uses_the_exact_rank_rule() -> None:
    """A design too ill-conditioned for the fast check goes to the QR of blocks, which
    decides as numpy.linalg.matrix_rank does."""
    model = model_of(dyadic())
    X = model.X.copy()
    X[:, 3] = X[:, 2] + 1e-7 * np.random.default_rng(3).normal(size=len(X))
    assert np.linalg.matrix_rank(X) == 4
    Prepared.of(replace(model, X=X))  # full rank: accepted
    X[:, 3] = X[:, 2] * 2.0
    assert np.linalg.matrix_rank(X) == 3
    with pytest.raises(RankDeficientError):
        Prepared.of(replace(model, X=X))


# ----------------------------------------------------------------------------- data
def session_data(frame: pd.DataFrame) -> SessionData:
    text = frame.assign(role=frame["role"].map({0: "patient", 1: "therapist"}))
    return SessionData.from_long(text, dyad="dyad", session="session", role="role",
                                 roles=("patient", "therapist"), therapist="therapist")


SPECS = {
    "default": DecompositionSpec(), "observations": DecompositionSpec(reference="observations"),
    "grand reference": DecompositionSpec(reference="grand"),
    "therapist": DecompositionSpec(center="therapist"), "grand": DecompositionSpec(center="grand"),
    "none": DecompositionSpec(center="none"), "lag": DecompositionSpec(lag=1),
    "detrend": DecompositionSpec(detrend=True)}


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("pooled", [False, True])
@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_decomposition_equals_the_pandas_one(spec: str, pooled: bool, order: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Row keys replace pandas' group-bys and merges; the components are the same to the
    last bit (the pandas path is what runs without keys)."""
    data = session_data(dyadic(missing=0.2))
    if order == "shuffled":
        data = data.replace(shuffled(data.frame, 4))
    got = decompose(data, ["x", "y"], SPECS[spec], pooled)
    monkeypatch.setattr(RowKeys, "of", classmethod(lambda cls, frame, roles: None))
    plain = data.replace(data.frame)  # no keys cached
    assert plain.keys is None
    want = decompose(plain, ["x", "y"], SPECS[spec], pooled)
    pd.testing.assert_frame_equal(got.components, want.components, check_exact=True)
    pd.testing.assert_frame_equal(got.centres, want.centres, check_exact=True)
    again = got.apply(data.replace(data.frame.iloc[: len(data.frame) // 2]))
    pd.testing.assert_frame_equal(
        again.components,
        want.apply(plain.replace(plain.frame.iloc[: len(plain.frame) // 2])).components,
        check_exact=True)


def test_row_keys_find_the_partner_in_any_row_order() -> None:
    data = session_data(dyadic(missing=0.3))
    frame = shuffled(data.frame, 2)
    keys = RowKeys.of(frame, data.roles)
    assert keys is not None
    lookup = {(d, s, r): i for i, (d, s, r) in
              enumerate(zip(frame["dyad"], frame["session"], frame["role"]))}
    other = {"patient": "therapist", "therapist": "patient"}
    want = [lookup.get((d, s, other[r]), -1)
            for d, s, r in zip(frame["dyad"], frame["session"], frame["role"])]
    assert keys.partner.tolist() == want
    assert keys.role.tolist() == (frame["role"] == "therapist").astype(int).tolist()


def test_group_mean_sums_as_pandas_does() -> None:
    rng = np.random.default_rng(5)
    for groups in (1, 2, 7, 300):
        codes = rng.integers(0, groups, 2000)
        values = rng.normal(1e6, 1, 2000)
        values[rng.random(2000) < 0.1] = np.nan
        want = pd.Series(values).groupby(codes).mean().reindex(range(groups + 1))
        np.testing.assert_array_equal(group_mean(values, codes, groups + 1), want.to_numpy())


def test_design_from_shuffled_rows_matches_sorted_rows() -> None:
    """The design keeps the data's row order and the model the rows with values; the
    fit does not depend on the order of the rows."""
    data = session_data(dyadic(missing=0.2))
    mixed = data.replace(shuffled(data.frame, 6))
    spec = APIMSpec("y", ("x",))
    a, b = build_design(data, spec), build_design(mixed, spec)
    assert a.model.X.flags.f_contiguous and b.model.X.flags.f_contiguous
    first = pd.DataFrame(a.model.X, index=a.used).sort_index()
    second = pd.DataFrame(b.model.X, index=b.used).sort_index()
    # person means summed in another row order may differ in the last bit
    pd.testing.assert_frame_equal(first, second, check_exact=False, rtol=1e-13, atol=1e-13)
    assert [e.reason for e in a.dropped] == [e.reason for e in b.dropped]
    assert sorted(r for e in a.dropped for r in e.rows) == \
        sorted(r for e in b.dropped for r in e.rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fit(a.model).loglik == pytest.approx(fit(b.model).loglik, rel=1e-10)


@pytest.mark.parametrize("spec", [
    SimulationSpec(n_dyads=20, n_sessions=6),
    SimulationSpec(n_dyads=20, n_sessions=6, caseload=0),
    SimulationSpec(n_dyads=30, n_sessions=8, dropout=0.2, skipped=0.2, missing=0.1,
                   questionnaire_missing=0.1, treatment_labels=("CBT", "AFT"),
                   roles=("P", "T"), predictor_name="wai", outcome_name="so",
                   decimals=1, bounds=(1, 7))])
def test_simulated_data_equal_validated_data(spec: SimulationSpec,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated tables skip validation; they are what from_long makes of them."""
    fast = simulate(spec, 3)

    def validated(frame: pd.DataFrame, spec: SimulationSpec) -> SessionData:
        return SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                     roles=spec.roles,
                                     therapist="therapist" if spec.caseload else None)

    monkeypatch.setattr(simulation, "_session_data", validated)
    slow = simulate(spec, 3)
    pd.testing.assert_frame_equal(fast.frame, slow.frame, check_exact=True)
    assert (fast.roles, fast.columns, fast.source, fast.notes) == \
        (slow.roles, slow.columns, slow.source, slow.notes)
