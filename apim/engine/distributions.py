"""Tail probabilities and quantiles of the normal, t, F and chi-square distributions.

What a fit's tables and tests need (p values and critical values), computed from the
incomplete beta and gamma functions of :mod:`apim.engine.special`, so that ``apim fit``
imports neither :mod:`scipy.stats` (about half a second) nor :mod:`scipy.special` (0.1-0.16
s). Used as ``stats.t.sf(x, df)`` etc., with numpy broadcasting; a 0-d result is a numpy
scalar, as scipy returns.

* ``t.sf(x, df) = I_{df/(df+x^2)}(df/2, 1/2) / 2`` for ``x > 0`` (symmetry below);
  ``df = inf`` gives the normal tail.
* ``f.sf(x, d1, d2) = I_{d2/(d2+d1 x)}(d2/2, d1/2)``; ``chi2.sf(x, k) = Q(k/2, x/2)``.
* Quantiles solve ``log tail(e^u) = log q`` for ``u = log x`` by Newton's method inside a
  bracket (bisection where a step would leave it); the derivative is ``x`` times the
  density, which for all three is ``exp(prefactor)``: relative accuracy near 1e-15 from
  the centre to tails of 1e-300.

Checked against :mod:`scipy.special` to 1e-12 (relative) over a grid that includes
extreme tails and small and large degrees of freedom (``tests/engine/test_distributions.py``).

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
>>> stats.t.sf([1.0, np.inf, np.nan], 5).round(6).tolist()
[0.181609, 0.0, nan]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import numpy as np

from apim.engine.special import (
    incomplete_beta,
    incomplete_gamma,
    log_beta_front,
    normal_tail,
)

__all__ = ["stats"]

LOG_MAX = 709.0  # exp(u) is finite below this


def _ratio_logs(log_r: float) -> tuple[float, float, float, float]:
    """``x = 1 / (1 + r)``, ``y = r / (1 + r)`` and their logs from ``log r``, without
    overflow or the loss of ``y`` when ``r`` is small or of ``x`` when ``r`` is large."""
    if log_r <= 0.0:
        r = math.exp(log_r)
        log_x = -math.log1p(r)
        log_y = log_r + log_x
    else:
        log_y = -math.log1p(math.exp(-log_r))
        log_x = -log_r + log_y
    return math.exp(log_x), math.exp(log_y), log_x, log_y


def _t_tails(x: float, df: float) -> tuple[float, float, float]:
    """``(cdf, sf, log(|x| density))`` of Student's t at ``x``."""
    if math.isinf(df):
        sf = normal_tail(x)
        log_xpdf = (-0.5 * x * x + math.log(abs(x)) - 0.5 * math.log(2 * math.pi)
                    if x else -math.inf)
        return 1.0 - sf if x > 0 else normal_tail(-x), sf, log_xpdf
    if x == 0:
        return 0.5, 0.5, -math.inf
    if math.isinf(x):
        return (1.0, 0.0, -math.inf) if x > 0 else (0.0, 1.0, -math.inf)
    xb, yb, log_xb, log_yb = _ratio_logs(2.0 * math.log(abs(x)) - math.log(df))
    a, b = 0.5 * df, 0.5
    lower, upper = incomplete_beta(a, b, xb, yb, log_xb, log_yb)
    front = log_beta_front(a, b, xb, yb, log_xb, log_yb)
    small, large = 0.5 * lower, 0.5 + 0.5 * upper
    return (large, small, front) if x > 0 else (small, large, front)


def _f_tails(x: float, dfn: float, dfd: float) -> tuple[float, float, float]:
    """``(cdf, sf, log(x density))`` of the F distribution at ``x``."""
    if x <= 0:
        return 0.0, 1.0, -math.inf
    if math.isinf(x):
        return 1.0, 0.0, -math.inf
    if math.isinf(dfd):  # dfn F -> chi-square(dfn)
        return _chi2_tails(x * dfn, dfn)
    xb, yb, log_xb, log_yb = _ratio_logs(math.log(dfn) + math.log(x) - math.log(dfd))
    a, b = 0.5 * dfd, 0.5 * dfn
    lower, upper = incomplete_beta(a, b, xb, yb, log_xb, log_yb)
    return upper, lower, log_beta_front(a, b, xb, yb, log_xb, log_yb)


def _chi2_tails(x: float, df: float) -> tuple[float, float, float]:
    """``(cdf, sf, log(x density))`` of the chi-square distribution at ``x``."""
    if x <= 0:
        return 0.0, 1.0, -math.inf
    lower, upper = incomplete_gamma(0.5 * df, 0.5 * x)
    if math.isinf(x):
        return lower, upper, -math.inf
    a, h = 0.5 * df, 0.5 * x
    return lower, upper, a * math.log(h) - h - math.lgamma(a)


def _solve(h: Callable[[float], tuple[float, float]], u: float) -> float:
    """The root of an increasing ``h`` (value and derivative at ``u``) by Newton's method
    inside a bracket found by doubling steps from ``u``; bisection where a Newton step
    would leave the bracket."""
    f, d = h(u)
    if f == 0:
        return u
    lo, hi, step = (u, u, 1.0)
    if f < 0:
        while f < 0 and hi < LOG_MAX:
            lo, hi = hi, min(hi + step, LOG_MAX)
            step *= 2
            f, d = h(hi)
        u = hi
    else:
        while f > 0 and lo > -LOG_MAX:
            hi, lo = lo, max(lo - step, -LOG_MAX)
            step *= 2
            f, d = h(lo)
        u = lo
    for _ in range(400):
        if f == 0:
            return u
        if f < 0:
            lo = u
        else:
            hi = u
        new = u - f / d if d > 0 and math.isfinite(f / d) else math.nan
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - u) <= 2e-16 * max(1.0, abs(u)) or hi - lo <= 2e-16 * max(1.0, abs(u)):
            return new
        u = new
        f, d = h(u)
    return u


def _quantile(tails: Callable[[float], tuple[float, float, float]], prob: float,
              lower: bool) -> float:
    """The ``x > 0`` with ``cdf(x) = prob`` (``lower``) or ``sf(x) = prob``, solved in
    ``u = log x`` from ``x = 1`` (``tails(x)``: cdf, sf and ``log(x density)``)."""
    target = math.log(prob)

    def h(u: float) -> tuple[float, float]:
        x = math.exp(u) if u < LOG_MAX else math.inf
        cdf, sf, log_xpdf = tails(x)
        tail = cdf if lower else sf
        if tail <= 0:
            return (-math.inf if lower else math.inf), math.nan
        value = math.log(tail) - target
        slope = math.exp(log_xpdf) / tail
        return (value, slope) if lower else (-value, slope)

    u = _solve(h, 0.0)
    return math.inf if u >= LOG_MAX else math.exp(u)  # beyond the largest float


def _valid_p(p: float) -> bool:
    return 0.0 <= p <= 1.0


def _t_sf(x: float, df: float) -> float:
    if math.isnan(x) or not df > 0:
        return math.nan
    return _t_tails(x, df)[1]


@lru_cache(maxsize=4096)  # a command asks for the same t quantiles once per table
def _t_ppf(p: float, df: float) -> float:
    if not _valid_p(p) or not df > 0:
        return math.nan
    if p == 0.5:
        return 0.0
    if p in (0.0, 1.0):
        return math.inf if p else -math.inf
    if math.isinf(df):
        return _norm_ppf(p)
    q = p if p < 0.5 else 1.0 - p
    x = _quantile(lambda v: _t_tails(v, df), q, lower=False)  # the upper tail, x > 0
    return x if p > 0.5 else -x


def _norm_sf(x: float) -> float:
    return math.nan if math.isnan(x) else normal_tail(x)


def _norm_ppf(p: float) -> float:
    if not _valid_p(p):
        return math.nan
    if p == 0.5:
        return 0.0
    if p in (0.0, 1.0):
        return math.inf if p else -math.inf
    q = p if p < 0.5 else 1.0 - p
    x = _quantile(lambda v: _t_tails(v, math.inf), q, lower=False)
    return x if p > 0.5 else -x


def _chi2_sf(x: float, df: float) -> float:
    if math.isnan(x) or not df > 0:
        return math.nan
    return _chi2_tails(x, df)[1]


def _f_sf(x: float, dfn: float, dfd: float) -> float:
    if math.isnan(x) or not dfn > 0 or not dfd > 0:
        return math.nan
    return _f_tails(x, dfn, dfd)[1]


def _f_ppf(p: float, dfn: float, dfd: float) -> float:
    if not _valid_p(p) or not dfn > 0 or not dfd > 0:
        return math.nan
    if p in (0.0, 1.0):
        return math.inf if p else 0.0
    if p < 0.5:
        return _quantile(lambda v: _f_tails(v, dfn, dfd), p, lower=True)
    return _quantile(lambda v: _f_tails(v, dfn, dfd), 1.0 - p, lower=False)


def _elementwise(function: Callable[..., float]) -> Callable[..., Any]:
    """``function`` of floats applied over broadcast arrays; a numpy scalar for scalars."""
    def apply(*args: Any) -> Any:
        arrays = np.broadcast_arrays(*(np.asarray(a, float) for a in args))
        out = np.empty(arrays[0].shape)
        flat = out.reshape(-1)
        for i, values in enumerate(zip(*(a.reshape(-1) for a in arrays))):
            flat[i] = function(*map(float, values))
        return out[()]
    apply.__name__ = function.__name__.lstrip("_")
    apply.__doc__ = function.__doc__
    return apply


stats = SimpleNamespace(t=SimpleNamespace(sf=_elementwise(_t_sf), ppf=_elementwise(_t_ppf)),
                        norm=SimpleNamespace(sf=_elementwise(_norm_sf),
                                             ppf=_elementwise(_norm_ppf)),
                        chi2=SimpleNamespace(sf=_elementwise(_chi2_sf)),
                        f=SimpleNamespace(sf=_elementwise(_f_sf), ppf=_elementwise(_f_ppf)))
