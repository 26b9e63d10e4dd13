"""The t, F, chi-square and normal tails and quantiles of apim.engine.distributions against
scipy.special (to 1e-12 relative), closed forms, and mpmath where scipy itself loses digits
(very large degrees of freedom); and that `apim fit` imports no scipy.special."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from apim.engine.distributions import stats

RTOL = 1e-12
X = np.r_[1e-8, 1e-3, 0.1, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 40, 100, 1e3, 1e5, 1e10]
P = np.array([1e-100, 1e-20, 1e-8, 1e-3, 0.025, 0.3, 0.5, 0.7, 0.975, 1 - 1e-10])


def assert_close(ours, ref, what):
    ours, ref = np.asarray(ours, float), np.asarray(ref, float)
    with np.errstate(all="ignore"):
        rel = np.where(ours == ref, 0.0, np.abs(ours - ref) / np.abs(ref))
    assert np.all(rel <= RTOL), f"{what}: worst relative error {np.nanmax(rel):.3g}"


@pytest.mark.parametrize("df", [0.5, 2, 3.7, 10, 29.5, 100, 1e3, 1e4, 1e5, 1e6, 1e7, np.inf])
def test_t_tail_and_quantile_against_scipy(df):
    x = np.r_[-X[::-1], 0.0, X]
    ref = special.ndtr(-x) if np.isinf(df) else special.stdtr(df, -x)
    assert_close(stats.t.sf(x, df), ref, f"t.sf df={df}")
    p = P if df >= 2 else P[1:]  # scipy caps its quantiles beyond ~1e154 (df < 2)
    if df >= 29.5:
        p = np.r_[1e-300, p]
    ref_q = special.ndtri(p) if np.isinf(df) else special.stdtrit(df, p)
    assert_close(stats.t.ppf(p, df), ref_q, f"t.ppf df={df}")


@pytest.mark.parametrize("dfn", [0.5, 1, 2, 5, 30])
@pytest.mark.parametrize("dfd", [0.5, 1, 3, 30, 1e3, 1e4])
def test_f_tail_and_quantile_against_scipy(dfn, dfd):
    assert_close(stats.f.sf(X, dfn, dfd), special.fdtrc(dfn, dfd, X), f"f.sf {dfn},{dfd}")
    p = P[1:]  # below, quantiles of small dfn are subnormal numbers
    assert_close(stats.f.ppf(p, dfn, dfd), special.fdtri(dfn, dfd, p), f"f.ppf {dfn},{dfd}")


@pytest.mark.parametrize("df", [0.5, 1, 2, 5, 30, 1000])
def test_chi2_tail_against_scipy(df):
    x = np.r_[X * df, 0.0]
    assert_close(stats.chi2.sf(x, df), special.chdtrc(df, x), f"chi2.sf df={df}")


def test_normal_tail_and_quantile_against_scipy():
    z = np.r_[-X[:12][::-1], 0.0, X[:12]]
    assert_close(stats.norm.sf(z), special.ndtr(-z), "norm.sf")
    p = np.r_[1e-300, P]
    assert_close(stats.norm.ppf(p), special.ndtri(p), "norm.ppf")


def test_closed_forms():
    """t with 1 and 2 df and chi-square with 2 df have closed forms (scipy's stdtr loses
    digits for df = 1 near 0: 0.49999999526 for 0.5 - atan(1e-8)/pi = 0.49999999682)."""
    x = X
    assert_close(stats.t.sf(x, 1), np.arctan2(1, x) / np.pi, "t df=1")
    s = np.sqrt(2 + x * x)
    assert_close(stats.t.sf(x, 2), 1 / (s * (s + x)), "t df=2")
    assert_close(stats.t.sf(-x, 1), 1 - np.arctan2(1, x) / np.pi, "t df=1 lower")
    assert_close(stats.chi2.sf(x[:-2], 2), np.exp(-x[:-2] / 2), "chi2 df=2")
    p = 1 - np.array([1e-12, 0.01, 0.2])
    assert_close(stats.t.ppf(p, 1), 1 / np.tan(np.pi * (1 - p)), "t.ppf df=1")


def test_against_mpmath_at_very_large_df():
    """Where scipy itself loses digits (F and chi-square with 1e4-1e7 df; its t quantiles
    beyond 1e154), the reference is mpmath at 40 digits."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40

    def t_sf(x, df):
        df = mp.mpf(df)
        return mp.betainc(df / 2, mp.mpf(1) / 2, 0, df / (df + mp.mpf(x) ** 2),
                          regularized=True) / 2

    def f_sf(x, d1, d2):
        return mp.betainc(mp.mpf(d2) / 2, mp.mpf(d1) / 2, 0,
                          mp.mpf(d2) / (d2 + d1 * mp.mpf(x)), regularized=True)

    for df in (1e5, 1e6, 1e7):
        for x in (0.5, 2.0, 3.0, 10.0, 20.0):
            assert_close(stats.t.sf(x, df), float(t_sf(x, df)), f"t.sf {x}, {df}")
    for d1 in (1, 2, 5, 30):
        for d2 in (1e5, 1e7):
            for x in (0.5, 1.5, 3.0, 10.0):
                assert_close(stats.f.sf(x, d1, d2), float(f_sf(x, d1, d2)),
                             f"f.sf {x}, {d1}, {d2}")
    assert_close(stats.chi2.sf(15000.0, 1e4),
                 float(mp.gammainc(mp.mpf(5000), 7500, mp.inf, regularized=True)), "chi2")
    x = float(-stats.t.ppf(1e-100, 0.5))  # about 1e199: scipy answers 4.7e153
    assert_close(2 * float(t_sf(x, 0.5)) / 2, 1e-100, "t.ppf df=0.5")


def test_edges_and_shapes():
    assert np.isnan(stats.t.sf(np.nan, 5)) and np.isnan(stats.t.sf(1.0, 0))
    assert stats.t.sf(np.inf, 5) == 0.0 and stats.t.sf(-np.inf, 5) == 1.0
    assert np.isnan(stats.t.ppf(1.5, 5)) and stats.t.ppf(1.0, 5) == np.inf
    assert stats.t.ppf(0.0, 5) == -np.inf and stats.t.ppf(0.5, 5) == 0.0
    assert stats.f.ppf(0.0, 2, 3) == 0.0 and stats.f.sf(-1.0, 2, 3) == 1.0
    assert stats.chi2.sf(0.0, 3) == 1.0 and np.isnan(stats.chi2.sf(1.0, -1))
    out = stats.t.sf(np.ones((2, 3)), np.array([1.0, 10.0, np.inf]))
    assert out.shape == (2, 3)
    assert isinstance(stats.t.sf(1.0, 3), np.floating)
    assert math.isclose(float(stats.f.sf(stats.f.ppf(0.95, 3, 40), 3, 40)), 0.05,
                        rel_tol=1e-13)


def test_fit_command_imports_no_scipy_special():
    """`apim fit` prints p values and CIs without importing scipy.special (or stats)."""
    root = Path(__file__).resolve().parents[2]
    data = root / "apim" / "datasets" / "alliance_sessions.csv"
    code = ("import sys, runpy\n"
            f"sys.argv = ['apim', 'fit', {str(data)!r}, '--dyad', 'dyad', '--session', 'session', "
            "'--role', 'role', '--roles', 'patient,therapist', '--outcome', 'outcome', "
            "'--predictor', 'alliance']\n"
            "try:\n    runpy.run_module('apim', run_name='__main__')\n"
            "except SystemExit as stop:\n    assert not stop.code, stop.code\n"
            "print([m for m in ('scipy.special', 'scipy.stats') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert "satterthwaite" in out.stdout  # the table with its t tests was printed
    assert out.stdout.strip().splitlines()[-1] == "[]"


DF_GRID = np.geomspace(0.5, 1e6, 23) * 1.0137  # non-whole df, as Satterthwaite's are
TAILS = np.array([1e-300, 1e-200, 1e-100, 1e-50, 1e-20, 1e-8, 1e-3, 0.025, 0.2, 0.45])


@pytest.mark.parametrize("df", DF_GRID)
def test_t_over_df_from_half_to_a_million_and_tails_to_1e300(df):
    """Quantiles of every tail probability whose quantile scipy gives (below 1e150, and
    where scipy's own tail at it gives the probability back: at 1e-200 and 3.7 df its
    quantile is off by 40%), and the tails at those quantiles, against scipy, all
    values of a df in one call."""
    ref_q = special.stdtrit(df, TAILS)
    with np.errstate(all="ignore"):
        keep = (np.isfinite(ref_q) & (np.abs(ref_q) < 1e150)
                & (np.abs(special.stdtr(df, ref_q) / TAILS - 1) < 1e-13))
    assert keep.sum() >= 6
    p = TAILS[keep]
    assert_close(stats.t.ppf(p, df), ref_q[keep], f"t.ppf df={df:g}")
    upper = 1 - p[p > 1e-16]
    assert_close(stats.t.ppf(upper, df), special.stdtrit(df, upper), f"t.ppf upper {df:g}")
    x = -ref_q[keep]
    assert_close(stats.t.sf(x, df), special.stdtr(df, -x), f"t.sf df={df:g}")
    assert_close(stats.t.sf(-x, df), special.stdtr(df, x), f"t.sf lower df={df:g}")


def test_t_quantiles_of_extreme_tails_against_mpmath():
    """Where scipy's quantiles fail (few df, tails of 1e-200 and 1e-300): the tail at our
    quantile, by mpmath at 50 digits, is the probability asked for (to 1e-12 times the
    df: the tail's relative change per relative change of the quantile)."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    for df in (1.3, 3.6653, 10.5):
        for p in (1e-300, 1e-200, 1e-100):
            x = float(-stats.t.ppf(p, df))
            if not np.isfinite(x):
                continue
            d = mp.mpf(df)
            tail = mp.betainc(d / 2, mp.mpf(1) / 2, 0, d / (d + mp.mpf(x) ** 2),
                              regularized=True) / 2
            assert abs(float(tail / p) - 1) <= 1e-12 * max(1.0, df), (df, p, x)


@pytest.mark.parametrize("df", [0.5, 3.3, 47.0, 1e3, 1e4 + 0.5, 1e6])
def test_chi2_over_df_and_tails_to_1e300(df):
    """chi-square tails around the mean (a few SDs) and far into the upper tail."""
    sd = np.sqrt(2 * df)
    x = np.r_[df + sd * np.array([-3.0, -1.0, -0.1, 0.0, 0.1, 1.0, 3.0, 10.0]),
              special.chdtri(df, np.array([1e-300, 1e-100, 1e-20]))]
    x = x[x > 0]
    assert_close(stats.chi2.sf(x, df), special.chdtrc(df, x), f"chi2.sf df={df:g}")


def test_arrays_of_mixed_df_in_one_call_equal_one_at_a_time():
    """One call over values with different df (infinite, tiny, huge, invalid) gives each
    value what a call of its own gives, in the broadcast shape."""
    x = np.array([[0.3, -2.0, 40.0, np.nan, 5.0, 1e200]])
    df = np.array([[0.7], [29.5], [np.inf], [1e6], [-1.0]])
    both = stats.t.sf(x, df)
    one = np.array([[stats.t.sf(xi, di) for xi in x[0]] for di in df[:, 0]])
    assert both.shape == (5, 6)
    np.testing.assert_array_equal(both, one)
    p = np.array([1e-300, 0.01, 0.5, 0.975, 1.0, 2.0])
    both = stats.t.ppf(p, df)
    one = np.array([[stats.t.ppf(pi, di) for pi in p] for di in df[:, 0]])
    np.testing.assert_array_equal(both, one)
    assert np.isnan(both[4]).all() and np.isnan(both[:, 5]).all()
    d1, d2 = np.array([1.0, 4.0, 30.0]), np.array([[2.5], [1e5], [np.inf]])
    assert_close(stats.f.ppf(0.95, d1, d2), np.array(
        [[stats.f.ppf(0.95, a, b) for a in d1] for b in d2[:, 0]]), "f.ppf arrays")


def test_f_with_infinite_denominator_is_chi_square():
    x = np.array([0.01, 0.5, 1.0, 3.0, 10.0])
    for d1 in (0.5, 1.0, 7.0, 300.0):
        assert_close(stats.f.sf(x, d1, np.inf), special.chdtrc(d1, d1 * x), f"f d1={d1}")
        assert_close(stats.f.ppf(0.95, d1, np.inf), special.chdtri(d1, 0.05) / d1,
                     f"f.ppf d1={d1}")
