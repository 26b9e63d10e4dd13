"""Variance parameters as typed records: what each one is, never parsed from a name.

Every covariance structure (random-effect ``G``, therapist ``T``, residual) describes its
natural-scale parameters as :class:`VarianceParameter` records. Results, boundary checks,
effect sizes and exports select them by their fields (``level``, ``kind``, ``effects``,
``roles``, ``pooled``); ``label`` is only for display and table indices.

Examples
--------
>>> p = VarianceParameter("residual", "sd", roles=(0,), estimate=0.5)
>>> p.label, p.variance
('sigma(0)', 0.25)
>>> VarianceParameter("dyad", "cor", effects=("a", "b"), estimate=0.3).label
'cor(a,b)'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["VarianceParameter", "parameter_table", "Level", "Kind"]

Level = Literal["dyad", "therapist", "residual"]
Kind = Literal["sd", "cor", "phi", "var", "cov"]


@dataclass(frozen=True)
class VarianceParameter:
    """One natural-scale covariance parameter.

    Attributes
    ----------
    level : {"dyad", "therapist", "residual"}
    kind : {"sd", "cor", "phi", "var", "cov"}
        A standard deviation, a correlation, the AR(1) autocorrelation, or (multivariate
        models, which estimate covariance matrices directly) a variance or a covariance.
    effects : tuple of str
        The random-effect columns (or, for multivariate models, the variables) it
        concerns: one for an SD or a variance, two for a correlation or a covariance; a
        parameter shared by both members (``pooled``) lists every column that shares it.
    roles : tuple of int
        Role codes (0 = reference, 1) it concerns: a residual SD of one role ``(0,)``, the
        same-session residual correlation ``(0, 1)``; for a correlation between the two
        members' random effects ``(0, 1)``.
    pooled : bool
        One value shared by both members (indistinguishable dyads: equal variances, or the
        same correlation within each member).
    estimate, se : float
        Natural-scale estimate and its standard error (delta method from the observed
        information; NaN before the fit).
    at_boundary : bool
        At (or numerically next to) the edge of its space: an SD at zero, a correlation at
        +-1, or part of a singular covariance matrix.
    group : str
        The arm of a multi-group model the parameter belongs to (empty for one group).
    """

    level: Level
    kind: Kind
    effects: tuple[str, ...] = ()
    roles: tuple[int, ...] = ()
    pooled: bool = False
    estimate: float = float("nan")
    se: float = float("nan")
    at_boundary: bool = False
    group: str = ""

    @property
    def label(self) -> str:
        """Short unique name (``sd(a)``, ``cor(a,b)``, ``sigma(0)``, ``sigma``, ``rho``,
        ``phi`` (``phi(0)`` for a role's own); ``sd(a|b)`` for an SD shared by columns a
        and b)."""
        if self.level == "residual":
            if self.kind == "sd":
                return "sigma" if self.pooled else f"sigma({self.roles[0]})"
            if self.kind == "cor":
                return "rho"
            return "phi" if self.pooled or len(self.roles) != 1 else f"phi({self.roles[0]})"
        if self.kind == "sd":
            return f"sd({'|'.join(self.effects)})"
        if self.pooled or len(self.effects) > 2:
            half = len(self.effects) // 2
            return (f"cor({'|'.join(self.effects[:half])},"
                    f"{'|'.join(self.effects[half:])})")
        return f"cor({','.join(self.effects)})"

    @property
    def variance(self) -> float:
        """The squared SD (NaN for correlations)."""
        return self.estimate ** 2 if self.kind == "sd" else float("nan")

    def with_values(self, estimate: float, se: float = float("nan"),
                    at_boundary: bool = False) -> VarianceParameter:
        """A copy with estimate, SE and boundary flag set."""
        return replace(self, estimate=float(estimate), se=float(se),
                       at_boundary=bool(at_boundary))


def parameter_table(parameters: Iterable[VarianceParameter]) -> pd.DataFrame:
    """Records as a DataFrame indexed by ``label`` with ``estimate``, ``se``,
    ``at_boundary``."""
    parameters = list(parameters)
    return pd.DataFrame({"estimate": [p.estimate for p in parameters],
                         "se": [p.se for p in parameters],
                         "at_boundary": [p.at_boundary for p in parameters]},
                        index=pd.Index([p.label for p in parameters]))


def covariance_records(level: Level, g: np.ndarray, names: list[str] | tuple[str, ...]
                       ) -> list[VarianceParameter]:
    """SDs and correlations of a general covariance matrix ``g`` (one column per name)."""
    sd = np.sqrt(np.clip(np.diag(g), 0, None))
    out = [VarianceParameter(level, "sd", effects=(n,), estimate=float(s))
           for n, s in zip(names, sd)]
    for i in range(len(names)):
        for j in range(i):
            denom = sd[i] * sd[j]
            value = float(g[i, j] / denom) if denom > 0 else 0.0
            out.append(VarianceParameter(level, "cor", effects=(names[j], names[i]),
                                         estimate=value))
    return out
