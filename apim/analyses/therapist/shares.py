"""Variance shares at the therapist, dyad and session levels, per variable and role, with
exact, parametric-bootstrap or no intervals (see :mod:`apim.analyses.therapist`).

Examples
--------
>>> import apim
>>> out = variance_shares(apim.load_alliance(), ["outcome"], ci="bootstrap", n_boot=20,
...                       seed=1)
>>> row = out.table.iloc[0]
>>> (row.role, row.level, row.ci_method, bool(row.ci_low < row.share < row.ci_high))
('patient', 'therapist', 'bootstrap', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from apim.analyses.therapist.bootstrap import bootstrap_shares
from apim.analyses.therapist.checks import check_caseloads, code_covariates
from apim.analyses.therapist.exact import exact_icc_interval
from apim.analyses.therapist.levels import LevelFit, fit_level
from apim.analyses.therapist.spec import CI, SHARE_COLUMNS, Method, TherapistSpec
from apim.data.hints import option
from apim.data.session import SessionData
from apim.engine.mixed.estimate import MixedFit
from apim.errors import SpecError
from apim.model.result import APIMResult

__all__ = ["VarianceShares", "variance_shares"]

BOUNDARY = 1e-4  # a level's SD below this fraction of the residual SD is at zero


@dataclass(frozen=True, eq=False)
class VarianceShares:
    """Variance shares per variable, role and level.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns :data:`~apim.analyses.therapist.spec.SHARE_COLUMNS`: the level's variance
        and share of the total, the interval and how it was obtained (``exact``,
        ``bootstrap`` or ``none``), successful bootstrap replicates, whether the variance
        is at zero, and the counts.
    fits : dict
        ``(variable, role) -> MixedFit`` (the engine's results of the fits).
    failures : dict
        ``(variable, role) -> list of error texts`` of failed bootstrap replicates.
    results : dict
        ``(variable, role) -> APIMResult``: the fits through :func:`apim.fit`.
    notes : tuple of str
        How text covariates were coded (their reference levels).
    """

    table: pd.DataFrame
    fits: dict[tuple[str, str], MixedFit] = field(repr=False)
    failures: dict[tuple[str, str], list[str]] = field(repr=False)
    results: dict[tuple[str, str], APIMResult] = field(repr=False, default_factory=dict)
    notes: tuple[str, ...] = ()

    def summary(self, digits: int = 3) -> str:
        """The table as text (and the coding of text covariates)."""
        shown = self.table.drop(columns=["n_obs", "n_dyads", "n_therapists"])
        text = shown.to_string(index=False, float_format=lambda v: f"{v:.{digits}f}")
        return "\n".join([text, *self.notes])


def _interval_methods(units: list[LevelFit], ci: CI) -> list[str]:
    how = []
    for u in units:
        if ci == "none":
            how.append("none")
        elif ci in ("auto", "exact") and u.balanced_n:
            how.append("exact")
        elif ci == "exact":
            raise SpecError(f"{option('ci', 'exact')} needs every dyad to have the same "
                            f"number of {u.variable!r} ratings by {u.role!r}, and no "
                            f"covariates: use {option('ci', 'bootstrap')}")
        else:
            how.append("bootstrap")
    return how


def variance_shares(data: SessionData, variables: list[str] | tuple[str, ...], *,
                    covariates: tuple[str, ...] = (), ci: CI = "auto", n_boot: int = 500,
                    level: float = 0.95, method: Method = "REML", seed: int | None = None,
                    n_jobs: int = 1, progress: bool = False) -> VarianceShares:
    """Shares of each variable's variance at the therapist, dyad and session levels, per
    role (see :mod:`apim.analyses.therapist`).

    Parameters
    ----------
    data : SessionData
    variables : list of str
    covariates : tuple of str
        Fixed effects for conditional shares (text columns are dummy coded against their
        first level in sorted order; :attr:`VarianceShares.notes` says which).
    ci : {"auto", "bootstrap", "exact", "none"}
    n_boot : int
        Bootstrap replicates (each a refit).
    level : float
    method : {"REML", "ML"}
    seed : int, optional
        Seed of the bootstrap (results reproduce bit for bit).
    n_jobs : int
        Parallel workers for the bootstrap (:func:`apim.parallel.run_jobs`).
    progress : bool
        Show a progress bar for the bootstrap.

    Returns
    -------
    VarianceShares

    Raises
    ------
    SpecError
        Before any fit: no variables; a covariate with one value; one therapist, or one
        dyad per therapist (the therapist level is not identified).

    Examples
    --------
    >>> import apim
    >>> out = variance_shares(apim.load_alliance(), ["alliance"], ci="none")
    >>> out.table[["role", "level"]].head(3).values.tolist()
    [['patient', 'therapist'], ['patient', 'dyad'], ['patient', 'session']]
    """
    spec = TherapistSpec(variables=tuple(variables), covariates=tuple(covariates), ci=ci,
                         n_boot=n_boot, level=level, method=method)
    if not spec.variables:
        raise SpecError("give at least one variable for the variance shares")
    for v in spec.variables:
        data.numeric(v)  # the missing-column and non-numeric errors, before any fit
    coding = code_covariates(data, spec.covariates)
    check_caseloads(data, "the variance shares")
    units = [fit_level(data, v, r, spec.covariates, method)
             for v in spec.variables for r in data.roles]
    how = _interval_methods(units, spec.ci)
    limits: list[np.ndarray] = [np.full((len(u.levels), 2), np.nan) for u in units]
    n_ok = [0] * len(units)
    failures: dict[tuple[str, str], list[str]] = {}
    for k, u in enumerate(units):
        if how[k] == "exact":
            _, low, high = exact_icc_interval(u.model.y, u.model.dyad, spec.level)
            limits[k] = np.array([[low, high], [1 - high, 1 - low]])
    boot = [k for k in range(len(units)) if how[k] == "bootstrap"]
    if boot:
        drawn = bootstrap_shares([units[k] for k in boot], n_boot=spec.n_boot,
                                 level=spec.level, seed=seed, n_jobs=n_jobs,
                                 progress=progress)
        for j, k in enumerate(boot):
            limits[k], n_ok[k] = drawn.limits[j], drawn.n_ok[j]
            failures[(units[k].variable, units[k].role)] = list(drawn.failures[j])
    rows = []
    for k, u in enumerate(units):
        comps, shares = u.variances, u.shares
        residual_sd = np.sqrt(comps[-1])
        model = u.model
        n_ther = len(np.unique(model.therapist)) if model.therapist is not None else 0
        for j, name in enumerate(u.levels):
            at_zero = j < len(comps) - 1 and np.sqrt(comps[j]) < BOUNDARY * residual_sd
            rows.append([u.variable, u.role, name, comps[j], shares[j], limits[k][j, 0],
                         limits[k][j, 1], how[k], n_ok[k], bool(at_zero), len(model.y),
                         len(np.unique(model.dyad)), n_ther])
    return VarianceShares(
        table=pd.DataFrame(rows, columns=SHARE_COLUMNS),
        fits={(u.variable, u.role): u.result.engine for u in units}, failures=failures,
        results={(u.variable, u.role): u.result for u in units}, notes=coding.notes)
