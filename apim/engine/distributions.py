"""Tail probabilities and quantiles of the normal, t, F and chi-square distributions.

What a fit's tables and tests need (p values and critical values), vectorised with numpy
from the tails of :mod:`apim.engine.special`, so that ``apim fit`` imports neither
:mod:`scipy.stats` (about half a second) nor :mod:`scipy.special` (0.1-0.16 s) and runs no
loop in Python per value. Used as ``stats.t.sf(x, df)`` etc., with numpy broadcasting; a
0-d result is a numpy scalar, as scipy returns.

* ``t.sf(x, df) = P(F(1, df) > x^2) / 2`` for ``x > 0`` (symmetry below); ``df = inf``
  gives the normal tail, ``P(chi2(1) > x^2) / 2``.
* ``f.sf(x, d1, d2)``: the upper tail of ``r = d1 x / d2``, whose density is proportional
  to ``r^(d1/2 - 1) (1 + r)^-(d1 + d2)/2``; ``chi2.sf(x, k) = Q(k/2, x/2)``.
* Quantiles solve ``log tail(e^u) = log q`` for ``u = log x`` by Newton's method, all
  values at once, inside brackets (bisection where a step would leave them). The tail
  of a log-concave density is log-concave, so the steps converge monotonically once past
  the root; the derivative is the density of ``u`` over the tail, which the tails give.

Checked against :mod:`scipy.special` to 1e-12 (relative) over a grid that includes
extreme tails and small and large degrees of freedom, and against mpmath where scipy
itself loses digits (``tests/engine/test_distributions.py``).

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

import functools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

from apim.engine.special import beta_tails, gamma_tails

__all__ = ["stats"]

LOG_MAX = 709.0  # exp(u) is finite below this
MAX_STEPS = 200
LOG2 = float(np.log(2.0))
REMEMBERED = 4096

Tails = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""``tails(u, idx)``: (lower, upper, log density of ``u``) at ``u`` (a log scale) for the
values ``idx``."""


def _arrays(*args: Any) -> list[np.ndarray]:
    return [np.array(a, float) for a in np.broadcast_arrays(*(np.asarray(a, float)
                                                                 for a in args))]


def _log_abs(x: np.ndarray) -> np.ndarray:
    return np.log(np.abs(x))


def _symmetric(x: np.ndarray, df: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P(|T| > |x|), log density of log|x|)`` for the t (df finite) or the normal."""
    beyond, front = np.empty(x.shape), np.empty(x.shape)
    normal = np.isinf(df)
    x2 = x * x
    if np.any(~normal):
        d, t = df[~normal], ~normal
        _, beyond[t], front[t] = beta_tails(d / 2, 0.5, x2[t] / d,
                                            2 * _log_abs(x[t]) - np.log(d))
    if np.any(normal):
        _, beyond[normal], front[normal] = gamma_tails(0.5, x2[normal] / 2)
    # d log r / d log|x| = 2: the density of log|x| is twice that of log r
    return beyond, front + LOG2


def _t_sf(x: Any, df: Any) -> np.ndarray:
    x, df = _arrays(x, df)
    beyond, _ = _symmetric(x, df)
    out = np.where(x > 0, 0.5 * beyond, 1.0 - 0.5 * beyond)
    out = np.where(x == 0, 0.5, out)
    return np.where(np.isnan(x) | ~(df > 0), np.nan, out)


def _norm_sf(x: Any) -> np.ndarray:
    return _t_sf(x, np.inf)


def _chi2_sf(x: Any, df: Any) -> np.ndarray:
    x, df = _arrays(x, df)
    _, upper, _ = gamma_tails(np.where(df > 0, df, 1.0) / 2, np.where(x > 0, x, 1.0) / 2)
    out = np.where(x <= 0, 1.0, upper)
    return np.where(np.isnan(x) | ~(df > 0), np.nan, out)


def _f_log_r_tails(x: np.ndarray, dfn: np.ndarray, dfd: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cdf, sf, log density of log x) of the F distribution at ``x > 0`` (``dfd``
    infinite: ``dfn F`` is chi-square(``dfn``)), each part only for its own values."""
    out = np.empty((3, *x.shape))
    chi2 = np.isinf(dfd)
    f = ~chi2
    if np.any(f):
        d1, d2, xf = dfn[f], dfd[f], x[f]
        out[0][f], out[1][f], out[2][f] = beta_tails(
            d2 / 2, d1 / 2, d1 * xf / d2, np.log(d1) + np.log(xf) - np.log(d2))
    if np.any(chi2):
        d1 = dfn[chi2]
        out[0][chi2], out[1][chi2], out[2][chi2] = gamma_tails(d1 / 2, d1 * x[chi2] / 2)
    return out[0], out[1], out[2]


def _f_sf(x: Any, dfn: Any, dfd: Any) -> np.ndarray:
    x, dfn, dfd = _arrays(x, dfn, dfd)
    valid = ~np.isnan(x) & (dfn > 0) & (dfd > 0)
    regular = valid & (x > 0)
    out = np.where(valid, 1.0, np.nan)
    if np.any(regular):
        _, upper, _ = _f_log_r_tails(x[regular], dfn[regular], dfd[regular])
        out[regular] = upper
    return out


def _solve(tails: Tails, log_q: np.ndarray, upper: np.ndarray, start: np.ndarray
           ) -> np.ndarray:
    """``u`` with ``log tail(u) = log_q`` (the upper tail where ``upper``, else the lower)
    for every value at once: Newton's method in ``u`` inside brackets, found by doubling
    steps, bisection where a step would leave them; every value ends within a few units
    of round-off of its root."""
    u = start.copy()
    lo, hi = np.full(u.shape, -LOG_MAX), np.full(u.shape, LOG_MAX)
    step = np.ones(u.shape)
    sign = np.where(upper, -1.0, 1.0)  # g = sign (log tail - log q) increases with u
    active = np.ones(u.shape, bool)
    for _ in range(MAX_STEPS):
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        ua = u[idx]
        lower_t, upper_t, front = tails(ua, idx)
        tail = np.where(upper[idx], upper_t, lower_t)
        g = sign[idx] * (np.log(tail) - log_q[idx])
        slope = np.exp(front) / tail
        newton = ua - g / slope
        below = g < 0
        lo[idx] = np.where(below, np.maximum(lo[idx], ua), lo[idx])
        hi[idx] = np.where(below, hi[idx], np.minimum(hi[idx], ua))
        # outside the bracket, or not a number: bisect, or step out where still unbounded
        out = ~(np.isfinite(newton) & (newton > lo[idx]) & (newton < hi[idx]))
        open_lo, open_hi = lo[idx] <= -LOG_MAX, hi[idx] >= LOG_MAX
        fallback = np.where(open_hi & below, np.minimum(ua + step[idx], LOG_MAX),
                            np.where(open_lo & ~below, np.maximum(ua - step[idx], -LOG_MAX),
                                     0.5 * (lo[idx] + hi[idx])))
        step[idx] = np.where(out, 2 * step[idx], step[idx])
        new = np.where(out, fallback, newton)
        tolerance = 2e-16 * np.maximum(1.0, np.abs(ua))
        settled = np.isfinite(newton) & (np.abs(newton - ua) <= tolerance)
        done = (g == 0) | settled | (np.abs(new - ua) <= tolerance) | (
            hi[idx] - lo[idx] <= tolerance)
        new = np.where(settled, newton, new)
        u[idx] = np.where(g == 0, ua, new)
        active[idx] = ~done
    return u


def _start_z(q: np.ndarray) -> np.ndarray:
    """A rough normal quantile of an upper tail ``q <= 1/2`` (Abramowitz & Stegun 26.2.23,
    within 4.5e-4): where Newton's method starts."""
    s = np.sqrt(-2.0 * np.log(q))
    return s - (2.515517 + 0.802853 * s + 0.010328 * s * s) / (
        1 + 1.432788 * s + 0.189269 * s * s + 0.001308 * s ** 3)


def _t_ppf(p: Any, df: Any) -> np.ndarray:
    p, df = _arrays(p, df)
    valid = (p >= 0) & (p <= 1) & (df > 0)
    out = np.where(valid, 0.0, np.nan)
    out = np.where(valid & (p == 0), -np.inf, np.where(valid & (p == 1), np.inf, out))
    regular = valid & (p > 0) & (p < 1) & (p != 0.5)
    if np.any(regular):
        pr, dr = p[regular], df[regular]
        q = np.where(pr < 0.5, pr, 1.0 - pr)  # the upper tail of |x| beyond the root

        def tails(u: np.ndarray, idx: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            beyond, front = _symmetric(np.exp(u), dr[idx])  # front: of |T|; T: half
            return 1.0 - 0.5 * beyond, 0.5 * beyond, front - LOG2

        centre = 0.5 - q  # near the centre: the slope of the normal's tail there
        z = np.where(centre < 0.05, np.sqrt(2 * np.pi) * centre, _start_z(q))
        start = np.log(z + np.where(np.isinf(dr), 0.0, (z ** 3 + z) / (4 * dr)))
        u = _solve(tails, np.log(q), np.ones(q.shape, bool),
                   np.clip(start, -LOG_MAX, LOG_MAX))
        x = np.where(u >= LOG_MAX, np.inf, np.exp(u))  # beyond the largest float
        out[regular] = np.where(pr > 0.5, x, -x)
    return out


def _norm_ppf(p: Any) -> np.ndarray:
    return _t_ppf(p, np.inf)


def _f_ppf(p: Any, dfn: Any, dfd: Any) -> np.ndarray:
    p, dfn, dfd = _arrays(p, dfn, dfd)
    valid = (p >= 0) & (p <= 1) & (dfn > 0) & (dfd > 0)
    out = np.where(valid, 0.0, np.nan)
    out = np.where(valid & (p == 1), np.inf, out)
    regular = valid & (p > 0) & (p < 1)
    if np.any(regular):
        pr, d1, d2 = p[regular], dfn[regular], dfd[regular]
        upper = pr >= 0.5

        def tails(u: np.ndarray, idx: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return _f_log_r_tails(np.exp(u), d1[idx], d2[idx])

        u = _solve(tails, np.log(np.where(upper, 1.0 - pr, pr)), upper, np.zeros(pr.shape))
        out[regular] = np.where(u >= LOG_MAX, np.inf, np.exp(u))
    return out


def _numpy_scalar(function: Callable[..., np.ndarray]) -> Callable[..., Any]:
    """``function`` with a numpy scalar for 0-d results, as scipy returns. Calls with
    plain numbers are remembered (the last :data:`REMEMBERED` of them): callers that ask
    value by value in a loop (a critical value per candidate episode, a p value per
    term) repeat few arguments, and one call costs a fixed numpy overhead (up to a few
    milliseconds for a quantile)."""
    def compute(*args: Any) -> Any:
        with np.errstate(all="ignore"):  # NaN for invalid arguments, inf where due
            return function(*args)[()]

    remembered = functools.lru_cache(maxsize=REMEMBERED)(compute)

    def apply(*args: Any) -> Any:
        if all(isinstance(a, (int, float, np.integer, np.floating)) for a in args):
            return remembered(*(float(a) for a in args))
        return compute(*args)
    apply.__name__ = function.__name__.lstrip("_")
    apply.__doc__ = function.__doc__
    return apply


stats = SimpleNamespace(t=SimpleNamespace(sf=_numpy_scalar(_t_sf), ppf=_numpy_scalar(_t_ppf)),
                        norm=SimpleNamespace(sf=_numpy_scalar(_norm_sf),
                                             ppf=_numpy_scalar(_norm_ppf)),
                        chi2=SimpleNamespace(sf=_numpy_scalar(_chi2_sf)),
                        f=SimpleNamespace(sf=_numpy_scalar(_f_sf), ppf=_numpy_scalar(_f_ppf)))
