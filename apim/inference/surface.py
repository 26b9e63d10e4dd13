"""a1-a4 of the response-surface APIM (Edwards, 2002; see :mod:`apim.model.formula`).

Examples
--------
>>> import apim
>>> from apim.model.formula import response_surface
>>> fit = response_surface(apim.load_alliance(), "outcome", "alliance")
>>> list(surface_parameters(fit)["parameter"][:4])
['a1', 'a2', 'a3', 'a4']
"""

from __future__ import annotations

import pandas as pd

from apim.inference.wald import wald_test
from apim.model.fitted import FittedModel

__all__ = ["surface_parameters"]


def surface_parameters(result: FittedModel) -> pd.DataFrame:
    """a1-a4 of a :func:`response_surface` fit, per outcome role, with SEs and tests."""
    rows = []
    eff = result.effects
    for r in dict.fromkeys(eff.loc[eff["effect"] == "surface", "outcome_role"]):
        b = {k: f"{r}.surface.none.{k}" for k in ("P", "T", "P2", "PxT", "T2")}
        for name, expr in (("a1", f"{b['P']} + {b['T']}"),
                           ("a2", f"{b['P2']} + {b['PxT']} + {b['T2']}"),
                           ("a3", f"{b['P']} - {b['T']}"),
                           ("a4", f"{b['P2']} - {b['PxT']} + {b['T2']}")):
            test = wald_test(result, f"{expr} = 0")
            rows.append({"outcome_role": r, "parameter": name, "estimate": test.estimate[0],
                         "se": test.se[0], "df": test.df_den, "t": test.statistic,
                         "p": test.p})
    return pd.DataFrame(rows)
