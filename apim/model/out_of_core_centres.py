"""The whole file's centres for the out-of-core fit, from sums over its blocks.

The between parts of the within/between split are centred on the whole file's centres
(:func:`apim.model.centring.decompose`'s rule), which no block knows alone. Each block
gives, per predictor and role, the sums behind the centres (:func:`centre_sums`) and
what the whole-file predictor checks need (:func:`informative_sums`); the blocks' sums
are added (:func:`merge_informative`), checked (:func:`check_informative`) and turned
into centres (:func:`centre_frame`). Blocks are built before the centres are known, with
the first block's own (:func:`provisional_centres`), and mapped exactly afterwards by a
matrix found by :func:`solved` (apim/DESIGN.md §10, "Out of core").

Examples
--------
>>> import numpy as np
>>> built = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])  # intercept, x
>>> wanted = built - [0.0, 1.0]                            # x centred on 1 instead
>>> bool(np.allclose(solved(built, wanted), [[1.0, -1.0], [0.0, 1.0]]))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from apim.data.session import SessionData
from apim.errors import AllMissingError, ConstantVariableError, DataError
from apim.model.centring import group_mean
from apim.model.spec import APIMSpec

__all__ = ["centre_sums", "informative_sums", "merge_informative", "check_informative",
           "centre_frame", "provisional_centres", "solved"]


def _role_and_person(data: SessionData) -> tuple[np.ndarray, np.ndarray]:
    """Each row's role code (0, 1) and person code (``2 x dyad + role``)."""
    keys = data.keys
    if keys is not None:
        return keys.role.astype(np.int64), keys.person
    role = (data.frame["role"] == data.roles[1]).to_numpy().astype(np.int64)
    return role, 2 * pd.factorize(data.frame["dyad"])[0].astype(np.int64) + role


def centre_sums(data: SessionData, spec: APIMSpec) -> dict[str, np.ndarray]:
    """Per predictor, ``[[sum, count] per role]`` behind the centre of the between parts
    (:func:`apim.model.centring._centre`'s rule), for one block."""
    reference = spec.decomposition.reference
    pooled = not spec.distinguishable
    role, person = _role_and_person(data)
    n_persons = int(person.max()) + 1 if len(person) else 0
    out = {}
    for v in spec.predictors:
        x = data.numeric(v).to_numpy(float)
        group = np.zeros(len(x), np.int64) if pooled or reference == "grand" else role
        if reference in ("observations", "grand"):
            ok = ~np.isnan(x)
            values, groups = x[ok], group[ok]
        else:  # the mean of the person means (the group mean the in-memory split takes)
            means = group_mean(x, person, n_persons)
            ok = ~np.isnan(means)
            values = means[ok]
            groups = (np.zeros(len(values), np.int64) if pooled
                      else (np.arange(n_persons) % 2)[ok])
        out[v] = np.stack([np.bincount(groups, values, minlength=2),
                           np.bincount(groups, minlength=2).astype(float)], axis=1)
    return out


def informative_sums(data: SessionData, variables: Sequence[str]) -> dict[str, np.ndarray]:
    """Per predictor and role: ``[rated rows, min, max, most sessions rated by a person]``
    of one block, for the checks :func:`apim.model.centring.decompose` makes on the whole
    data (:func:`check_informative`)."""
    role, person = _role_and_person(data)
    out = {}
    for v in variables:
        x = data.numeric(v).to_numpy(float)
        rated = ~np.isnan(x)
        rows = np.zeros((2, 4))
        rows[:, 1], rows[:, 2] = np.inf, -np.inf
        for k in (0, 1):
            mine = x[(role == k) & rated]
            if len(mine):
                rows[k, :3] = len(mine), mine.min(), mine.max()
        rows[:, 3] = float(np.bincount(person, rated).max()) if len(x) else 0.0
        out[v] = rows
    return out


def merge_informative(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([a[:, 0] + b[:, 0], np.minimum(a[:, 1], b[:, 1]),
                     np.maximum(a[:, 2], b[:, 2]), np.maximum(a[:, 3], b[:, 3])], axis=1)


def check_informative(sums: dict[str, np.ndarray], roles: tuple[str, str],
                       split: bool) -> None:
    """The whole file's predictors: rated, not constant for a role, and (for a split)
    rated at two sessions by someone (the checks of
    :func:`apim.data.validate.informative` and :func:`~apim.data.validate.within_variation`)."""
    for v, rows in sums.items():
        for k, role in enumerate(roles):
            if rows[k, 0] == 0:
                raise AllMissingError(v, f"for role {role!r}")
            if rows[k, 1] == rows[k, 2]:
                raise ConstantVariableError(v, float(rows[k, 1]), f"for role {role!r}")
        if split and rows[:, 3].max() < 2:
            raise DataError(f"predictor {v!r} is rated at one session per person in the "
                            "whole file, so it has no within-person variation: its within "
                            "effects are not identified; fit between-person effects with "
                            "center='grand' (--center grand), or use data with several "
                            "sessions per person")


def centre_frame(sums: dict[str, np.ndarray], spec: APIMSpec, roles: tuple[str, str]
                  ) -> pd.DataFrame:
    """Centres (predictor x role) from the sums of :func:`centre_sums`."""
    pooled = not spec.distinguishable or spec.decomposition.reference == "grand"
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({v: s[:, 0].sum() / s[:, 1].sum() if pooled else s[:, 0] / s[:, 1]
                             for v, s in sums.items()}, index=list(roles)).T


def provisional_centres(data: SessionData, spec: APIMSpec) -> pd.DataFrame:
    """Centres to build every block with before the whole file's are known: the first
    block's own (zero where it has none), close to the final ones, so that the map to
    those (:func:`solved`) moves the statistics little and keeps their digits."""
    return centre_frame(centre_sums(data, spec), spec, data.roles).fillna(0.0)


def solved(built: np.ndarray, wanted: np.ndarray) -> np.ndarray | None:
    """The ``M`` with ``built M = wanted`` (least squares), or None unless ``built`` has
    full column rank and ``M`` reproduces ``wanted`` to round-off."""
    built, wanted = np.asarray(built, float), np.asarray(wanted, float)
    if built.shape != wanted.shape or not built.shape[0]:
        return None
    M, _, rank, _ = np.linalg.lstsq(built, wanted, rcond=None)
    scale = max(float(np.abs(wanted).max()), 1.0)
    if rank < built.shape[1] or np.abs(built @ M - wanted).max() > 1e-10 * scale:
        return None
    return M
