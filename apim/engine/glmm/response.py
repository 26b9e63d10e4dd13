"""The log-probability of an ordered category and its derivatives in the linear predictor.

An observation in category ``k`` of ``K`` (``0 <= k < K``) with linear predictor ``eta``
has probability ``F(a) - F(b)`` with ``a = theta_k - eta`` (``+inf`` for the top
category) and ``b = theta_{k-1} - eta`` (``-inf`` for the bottom one). A binary outcome is
the case ``K = 2`` with the threshold fixed at 0: ``P(Y = 1) = 1 - F(-eta) = F(eta)``.

Examples
--------
>>> import numpy as np
>>> from apim.engine.glmm.links import LINKS
>>> eta = np.array([0.3])
>>> logp, d1, d2 = interval(LINKS["logit"], np.array([np.inf]), np.array([0.0]), eta)
>>> bool(np.isclose(np.exp(logp[0]), 1 / (1 + np.exp(-0.3))))
True
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from apim.engine.glmm.links import Link

__all__ = ["interval", "interval_terms", "node_terms", "Terms", "log_probability",
           "log1mexp"]


def log1mexp(x: np.ndarray) -> np.ndarray:
    """log(1 - exp(x)) for x <= 0, accurate near 0 and far below it."""
    with np.errstate(divide="ignore"):
        return np.where(x > -np.log(2.0), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def _interval_general(link: Link, upper: np.ndarray, lower: np.ndarray, eta: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log P``, ``d log P / d eta`` and ``d^2 log P / d eta^2`` of the categories with
    thresholds ``upper`` (``+inf`` for the top category) and ``lower`` (``-inf`` for the
    bottom one), for linear predictors ``eta`` (arrays broadcast together).

    Computed in the tail where they are accurate (``log F`` in the lower tail, ``log(1 -
    F)`` in the upper one), so that probabilities of 1e-300 keep their logarithm.
    """
    a = upper - eta
    b = lower - eta
    top, bottom = np.isposinf(a), np.isneginf(b)
    a_f = np.where(top, 0.0, a)
    b_f = np.where(bottom, 0.0, b)
    lcdf_a, lcdf_b = link.logcdf(a_f), link.logcdf(b_f)
    lsf_a, lsf_b = link.logsf(a_f), link.logsf(b_f)
    lower_tail = a_f + b_f <= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        middle = np.where(lower_tail, lcdf_a + log1mexp(np.minimum(lcdf_b - lcdf_a, 0.0)),
                          lsf_b + log1mexp(np.minimum(lsf_a - lsf_b, 0.0)))
    logp = np.where(bottom, np.where(top, 0.0, lcdf_a), np.where(top, lsf_b, middle))
    with np.errstate(over="ignore"):  # only in the branches np.where discards
        ra = np.where(top, 0.0, np.exp(link.logpdf(a_f) - logp))  # f(a) / P
        rb = np.where(bottom, 0.0, np.exp(link.logpdf(b_f) - logp))  # f(b) / P
    d1 = rb - ra
    d2 = ra * link.slope(a_f) - rb * link.slope(b_f) - d1 * d1
    return logp, d1, d2


def log_probability(link: Link, upper: np.ndarray, lower: np.ndarray, eta: np.ndarray
                    ) -> np.ndarray:
    """``log P`` alone (the quadrature nodes need no derivatives): one ``log F`` per
    observation in the bottom or top category (all of a binary outcome's), the interval
    formula of :func:`interval` only for rows (first axis) in a middle category."""
    upper_b, lower_b = np.broadcast_to(upper, eta.shape), np.broadcast_to(lower, eta.shape)
    top = np.isposinf(upper_b)
    edge = np.where(top, eta - np.where(top, lower_b, 0.0),
                    np.where(top, 0.0, upper_b) - eta)
    logp = link.logcdf(edge)
    middle = ~top & ~np.isneginf(lower_b)
    rows = np.flatnonzero(middle.reshape(len(middle), -1).any(axis=1))
    if len(rows):
        logp[rows] = interval(link, upper_b[rows], lower_b[rows], eta[rows])[0]
    return logp


class Terms(NamedTuple):
    """log P and its derivatives: in eta (``d1``, ``d2``, ``d3``) and in the upper and
    lower thresholds (``up``/``low``: of log P, of d1 and of d2)."""

    logp: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    d3: np.ndarray
    up: np.ndarray
    low: np.ndarray
    d1_up: np.ndarray
    d1_low: np.ndarray
    d2_up: np.ndarray
    d2_low: np.ndarray


def _terms_general(link: Link, upper: np.ndarray, lower: np.ndarray, eta: np.ndarray
                   ) -> Terms:
    """:func:`interval` with third derivatives and the thresholds' partials, for the
    analytic gradient. With ``phi(a, b) = log(F(a) - F(b))``, ``a = upper - eta``, ``b =
    lower - eta``, ``r_a = f(a)/P``, ``r_b = f(b)/P``, ``s = f'/f``, ``t = f''/f``:
    ``phi_a = r_a``, ``phi_b = -r_b``, ``phi_aa = r_a s_a - r_a^2``, ``phi_ab = r_a r_b``,
    ``phi_bb = -r_b s_b - r_b^2``, ``phi_aaa = r_a t_a - 3 r_a^2 s_a + 2 r_a^3``,
    ``phi_aab = r_a r_b s_a - 2 r_a^2 r_b``, ``phi_abb = r_a r_b s_b + 2 r_a r_b^2``,
    ``phi_bbb = -r_b t_b - 3 r_b^2 s_b - 2 r_b^3``; each derivative in eta is minus the
    sum over a and b."""
    a = upper - eta
    b = lower - eta
    top, bottom = np.isposinf(a), np.isneginf(b)
    a_f = np.where(top, 0.0, a)
    b_f = np.where(bottom, 0.0, b)
    logp = _interval_general(link, upper, lower, eta)[0]
    with np.errstate(over="ignore"):
        ra = np.where(top, 0.0, np.exp(link.logpdf(a_f) - logp))
        rb = np.where(bottom, 0.0, np.exp(link.logpdf(b_f) - logp))
    sa, sb = link.slope(a_f), link.slope(b_f)
    ta, tb = link.curvature(a_f), link.curvature(b_f)
    p_aa = ra * sa - ra * ra
    p_ab = ra * rb
    p_bb = -rb * sb - rb * rb
    p_aaa = ra * ta - 3 * ra * ra * sa + 2 * ra ** 3
    p_aab = ra * rb * sa - 2 * ra * ra * rb
    p_abb = ra * rb * sb + 2 * ra * rb * rb
    p_bbb = -rb * tb - 3 * rb * rb * sb - 2 * rb ** 3
    return Terms(logp=logp, d1=rb - ra, d2=p_aa + 2 * p_ab + p_bb,
                 d3=-(p_aaa + 3 * p_aab + 3 * p_abb + p_bbb), up=ra, low=-rb,
                 d1_up=-(p_aa + p_ab), d1_low=-(p_ab + p_bb),
                 d2_up=p_aaa + 2 * p_aab + p_abb, d2_low=p_aab + 2 * p_abb + p_bbb)


def _edge_columns(upper: np.ndarray, lower: np.ndarray, eta: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top-category mask, the sign (+1 top, -1 bottom) and the shift of the edge
    argument ``x = sign eta + shift`` (``eta - lower`` for a top category, ``upper - eta``
    for a bottom one), in the thresholds' shape (no broadcast over nodes)."""
    upper_c, lower_c = np.broadcast_arrays(upper, lower)
    top = np.isposinf(upper_c)
    sign = np.where(top, 1.0, -1.0)
    shift = np.where(top, -lower_c, np.where(top, 0.0, upper_c))
    return top, sign, shift


def node_terms(link: Link, upper: np.ndarray, lower: np.ndarray, eta: np.ndarray,
               partials: bool = True
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``log P``, ``d1`` and the thresholds' partials ``up``, ``low`` of log P (as in
    :func:`interval_terms`), what the quadrature nodes need: for a bottom or top category
    (all of a binary outcome's) one ``log F`` and one ``f/F``; the interval formulas only
    for rows (first axis) in a middle category. ``upper`` and ``lower`` are per row (one
    column), ``eta`` per row and node: the masks stay one column wide. Without
    ``partials`` (no free thresholds: a binary outcome) ``up`` and ``low`` are None."""
    top, sign, shift = _edge_columns(upper, lower, eta)
    edge = sign * eta + shift
    logp = link.logcdf(edge)
    ratio = link.mills(edge)  # r_b for a top category, r_a for a bottom one
    d1 = sign * ratio
    up = np.where(top, 0.0, ratio) if partials else None
    low = np.where(top, -ratio, 0.0) if partials else None
    middle = ~top & ~np.isneginf(lower)
    rows = np.flatnonzero(middle.reshape(len(middle), -1).any(axis=1))
    if len(rows):
        upper_b, lower_b = np.broadcast_to(upper, eta.shape), np.broadcast_to(lower, eta.shape)
        t = interval_terms(link, upper_b[rows], lower_b[rows], eta[rows])
        logp[rows], d1[rows] = t.logp, t.d1
        if up is not None and low is not None:
            up[rows], low[rows] = t.up, t.low
    return logp, d1, up, low


def _split(upper: np.ndarray, lower: np.ndarray, eta: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast thresholds, the top-category mask, the edge argument ``x`` (``P =
    F(x)`` for a bottom or top category, F symmetric) and the middle-category mask."""
    upper_b, lower_b = np.broadcast_to(upper, eta.shape), np.broadcast_to(lower, eta.shape)
    top = np.isposinf(upper_b)
    x = np.where(top, eta - np.where(top, lower_b, 0.0), np.where(top, 0.0, upper_b) - eta)
    middle = ~top & ~np.isneginf(lower_b)
    return upper_b, lower_b, top, x, middle


def interval(link: Link, upper: np.ndarray, lower: np.ndarray, eta: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log P``, ``d log P / d eta`` and ``d^2 log P / d eta^2`` of the categories with
    thresholds ``upper`` (``+inf`` for the top category) and ``lower`` (``-inf`` for the
    bottom one), for linear predictors ``eta`` (arrays broadcast together).

    A bottom or top category (every row of a binary outcome) has ``P = F(x)`` with ``x =
    upper - eta`` or ``eta - lower``: ``r = f(x)/F(x)``, ``d1 = -r`` or ``r``, ``d2 = r s -
    r^2`` (``s = f'/f``); a middle category the interval formulas, computed in the tail
    where they are accurate, so that probabilities of 1e-300 keep their logarithm.
    """
    upper_b, lower_b, top, x, middle = _split(upper, lower, eta)
    logp = link.logcdf(x)
    r = link.mills(x)
    d1 = np.where(top, r, -r)
    d2 = r * link.slope(x, r) - r * r
    if middle.any():
        logp[middle], d1[middle], d2[middle] = _interval_general(
            link, upper_b[middle], lower_b[middle], eta[middle])
    return logp, d1, d2


def interval_terms(link: Link, upper: np.ndarray, lower: np.ndarray, eta: np.ndarray
                   ) -> Terms:
    """:func:`interval` with third derivatives and the thresholds' partials, for the
    analytic gradient. With ``phi(a, b) = log(F(a) - F(b))``, ``a = upper - eta``, ``b =
    lower - eta``, ``r_a = f(a)/P``, ``r_b = f(b)/P``, ``s = f'/f``, ``t = f''/f``:
    ``phi_a = r_a``, ``phi_b = -r_b``, ``phi_aa = r_a s_a - r_a^2``, ``phi_ab = r_a r_b``,
    ``phi_bb = -r_b s_b - r_b^2``, ``phi_aaa = r_a t_a - 3 r_a^2 s_a + 2 r_a^3``,
    ``phi_aab = r_a r_b s_a - 2 r_a^2 r_b``, ``phi_abb = r_a r_b s_b + 2 r_a r_b^2``,
    ``phi_bbb = -r_b t_b - 3 r_b^2 s_b - 2 r_b^3``; each derivative in eta is minus the
    sum over a and b. A bottom or top category is the case ``r_b = 0`` or ``r_a = 0``
    (computed from the edge argument as in :func:`interval`)."""
    upper_b, lower_b, top, x, middle = _split(upper, lower, eta)
    logp = link.logcdf(x)
    r = link.mills(x)
    s, t = link.slope(x, r), link.curvature(x, r)
    second = r * s - r * r
    third = r * t - 3 * r * r * s + 2 * r ** 3
    sign = np.where(top, 1.0, -1.0)
    zero = np.zeros_like(r)
    out = Terms(logp=logp, d1=sign * r, d2=second, d3=sign * third,
                up=np.where(top, zero, r), low=np.where(top, -r, zero),
                d1_up=np.where(top, zero, -second), d1_low=np.where(top, -second, zero),
                d2_up=np.where(top, zero, third), d2_low=np.where(top, -third, zero))
    if middle.any():
        general = _terms_general(link, upper_b[middle], lower_b[middle], eta[middle])
        for field, values in zip(out, general):
            field[middle] = values
    return out
