"""Tail probabilities and quantiles of the normal, t, F and chi-square distributions.

The same special functions ``scipy.stats`` evaluates (``stdtr``, ``stdtrit``, ``fdtrc``,
``chdtrc``, ``ndtr``, ``ndtri`` from :mod:`scipy.special`), without importing
``scipy.stats`` (about half a second): a fit's table needs only these. Used as
``stats.t.sf(x, df)`` etc.

Examples
--------
>>> round(float(stats.t.ppf(0.975, 10)), 6)
2.228139
>>> round(float(stats.chi2.sf(3.841459, 1)), 6)
0.05
>>> round(float(stats.f.ppf(0.95, 2, 30)), 4), round(float(stats.f.sf(3.3158, 2, 30)), 4)
(3.3158, 0.05)
>>> round(float(stats.norm.ppf(0.975)), 6), round(float(stats.norm.sf(1.959964)), 6)
(1.959964, 0.025)
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

__all__ = ["stats"]


def _t_sf(x, df):
    from scipy import special

    return special.stdtr(df, -np.asarray(x, float))


def _t_ppf(q, df):
    from scipy import special

    return special.stdtrit(df, q)


def _chi2_sf(x, df):
    from scipy import special

    return special.chdtrc(df, np.maximum(x, 0))


def _f_sf(x, dfn, dfd):
    from scipy import special

    return special.fdtrc(dfn, dfd, np.maximum(x, 0))


def _f_ppf(q, dfn, dfd):
    from scipy import special

    return special.fdtri(dfn, dfd, q)


def _norm_sf(x):
    from scipy import special

    return special.ndtr(-np.asarray(x, float))


def _norm_ppf(q):
    from scipy import special

    return special.ndtri(q)


stats = SimpleNamespace(t=SimpleNamespace(sf=_t_sf, ppf=_t_ppf),
                        norm=SimpleNamespace(sf=_norm_sf, ppf=_norm_ppf),
                        chi2=SimpleNamespace(sf=_chi2_sf),
                        f=SimpleNamespace(sf=_f_sf, ppf=_f_ppf))
