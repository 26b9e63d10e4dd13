"""Wald tests of linear hypotheses written with effect names.

Names are the term names of the effects table (``patient.actor.within.alliance``); any
shorter prefix that names a single effect will do (``patient.actor.within`` in a model
with one predictor, ``patient.actor`` when there is also a single level).
A hypothesis is one or more equations separated by ``;``, each a linear combination of
effects and numbers, e.g. ``patient.actor.within = therapist.actor.within`` or
``patient.actor.between - patient.actor.within = 0; patient.partner.within = 0``.

One equation gives a t test with Satterthwaite df; several give an F test whose
denominator df combine the Satterthwaite df of the orthogonalised contrasts (Fai &
Cornelius, 1996), and the chi-square Wald statistic. With containment df the smallest df
of the effects involved is used. Models with normal-theory tests (the latent APIM) give z
and chi-square tests (``df_den`` infinite). The df come from the model
(:meth:`~apim.model.fitted.FittedModel.contrast_df`), so the test is the same code for
every kind of model.

Examples
--------
>>> import apim
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> test = wald_test(result, "patient.actor.within = therapist.actor.within")
>>> test.df_num
1
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass

import numpy as np

from apim.apa import p_phrase
from apim.engine.distributions import stats
from apim.errors import SpecError
from apim.model.fitted import FittedModel

__all__ = ["WaldTest", "wald_test", "contrast_matrix", "effect_aliases"]


@dataclass(frozen=True)
class WaldTest:
    """Result of :func:`wald_test`.

    Attributes
    ----------
    hypothesis : str
    estimate : tuple of float
        ``L beta - c`` for each equation.
    se : tuple of float
    statistic : float
        t (one equation) or F.
    df_num, df_den : numerator and denominator df
    p : float
    chi2, p_chi2 : the asymptotic Wald chi-square test
    """

    hypothesis: str
    estimate: tuple[float, ...]
    se: tuple[float, ...]
    statistic: float
    df_num: int
    df_den: float
    p: float
    chi2: float
    p_chi2: float

    def __str__(self) -> str:
        chi2 = f"chi2({self.df_num}) = {self.chi2:.3f}, {p_phrase(self.p_chi2)}"
        if not np.isfinite(self.df_den):  # normal theory: z, or the chi-square alone
            if self.df_num == 1:
                return f"Wald test of {self.hypothesis}: z = {self.statistic:.3f}, " \
                    f"{p_phrase(self.p)}"
            return f"Wald test of {self.hypothesis}: {chi2}"
        kind = f"t({self.df_den:.1f})" if self.df_num == 1 else \
            f"F({self.df_num}, {self.df_den:.1f})"
        return (f"Wald test of {self.hypothesis}: {kind} = {self.statistic:.3f}, "
                f"{p_phrase(self.p)}; {chi2}")


def effect_aliases(names: list[str]) -> dict[str, int]:
    """Full names and every shorter prefix (role.effect[.level]) that names one effect,
    each with the index of its effect; the moderator (``|treatment[AFT]``) or the arm of a
    multi-group model (``[AFT]``) stays on the shorter name.

    >>> sorted(effect_aliases(["patient.actor.within.x[AFT]", "patient.actor.within.x[CBT]"]))
    ... # doctest: +NORMALIZE_WHITESPACE
    ['patient.actor.within.x[AFT]', 'patient.actor.within.x[CBT]', 'patient.actor.within[AFT]',
     'patient.actor.within[CBT]', 'patient.actor[AFT]', 'patient.actor[CBT]']
    """
    out = {n: i for i, n in enumerate(names)}
    short: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        head, _, by = n.partition("|")
        arm = re.fullmatch(r"(.*\.[^.\[]+)\[([^\]]+)\]", head) if not by else None
        tail = f"|{by}" if by else ""
        if arm is not None:
            head, tail = arm.group(1), f"[{arm.group(2)}]"
        parts = head.split(".")
        for k in range(2, len(parts)):
            key = ".".join(parts[:k]) + tail
            short.setdefault(key, []).append(i)
    for key, idx in short.items():
        if len(idx) == 1 and key not in out:
            out[key] = idx[0]
    return out


def _linear(node: ast.AST, p: int) -> np.ndarray:
    """Evaluate a linear expression tree to coefficients (p) plus a constant."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        out = np.zeros(p + 1)
        out[-1] = node.value
        return out
    if isinstance(node, ast.Name) and node.id.startswith("_t"):
        out = np.zeros(p + 1)
        out[int(node.id[2:])] = 1.0
        return out
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _linear(node.operand, p)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _linear(node.left, p), _linear(node.right, p)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            if not left[:-1].any():
                return left[-1] * right
            if not right[:-1].any():
                return right[-1] * left
        if isinstance(node.op, ast.Div) and not right[:-1].any() and right[-1] != 0:
            return left / right[-1]
    raise SpecError("a hypothesis must be linear in the effects: sums and differences "
                      "of effects times numbers")


def _unknown(token: str, equation: str, names: list[str]) -> str:
    """Why ``token`` names no effect: several effects begin with it, or none does."""
    several = [n for n in names if n.startswith(token) and n[len(token):][:1] in (".", "[", "|")]
    if len(several) > 1:
        shown = ", ".join(repr(n) for n in several[:4]) + (" ..." if len(several) > 4 else "")
        return (f"{token!r} in {equation!r} names {len(several)} effects ({shown}); name "
                "one of them in full, or add the level, predictor or arm")
    close = difflib.get_close_matches(token, names, n=1)
    hint = f"; did you mean {close[0]!r}" if close else ""
    return (f"unknown effect {token!r} in {equation!r}{hint}; effects are named like "
            f"{names[min(1, len(names) - 1)]!r}")


def contrast_matrix(hypothesis: str, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(L, c)`` for ``L beta = c`` from a hypothesis written with effect names."""
    aliases = effect_aliases(names)
    rows, rhs = [], []
    for equation in (e for e in hypothesis.split(";") if e.strip()):
        text = equation
        for key in sorted(aliases, key=len, reverse=True):
            pattern = r"(?<![\w.\[|])" + re.escape(key) + r"(?![\w.\[|])"
            text = re.sub(pattern, f" _t{aliases[key]} ", text)
        sides = text.split("=")
        if len(sides) > 2:
            raise SpecError(f"equation {equation.strip()!r} has more than one '='")
        leftover = [u for u in re.findall(r"[A-Za-z_][\w.\[\]|-]*", text)
                    if not u.startswith("_t")]
        if leftover:
            raise SpecError(_unknown(leftover[0], equation.strip(), names))
        try:
            trees = [ast.parse(s.strip() or "0", mode="eval").body for s in sides]
        except SyntaxError:
            raise SpecError(f"cannot read {equation.strip()!r}: write sums and differences "
                            "of effects times numbers, e.g. 'patient.actor.within = "
                            "therapist.actor.within'") from None
        expr = _linear(trees[0], len(names)) - (_linear(trees[1], len(names))
                                                if len(trees) == 2 else 0)
        rows.append(expr[:-1])
        rhs.append(-expr[-1])
    if not rows:
        raise SpecError("the hypothesis is empty")
    return np.array(rows), np.array(rhs)


def wald_test(result: FittedModel, hypothesis: str) -> WaldTest:
    """Test the linear hypothesis ``hypothesis`` on any fitted model.

    Parameters
    ----------
    result : FittedModel
        t and F tests with the model's df (Satterthwaite or containment); z and
        chi-square tests (``df_den = inf``) for a model with normal-theory tests, such as
        the latent APIM (as lavaan reports them).
    hypothesis : str
        Equations separated by ``;`` (see the module docstring).

    Returns
    -------
    WaldTest
    """
    names = list(result.coef.index)
    L, c = contrast_matrix(hypothesis, names)
    beta, cov = result.coef.to_numpy(), result.cov_coef.to_numpy()
    diff = L @ beta - c
    lcl = L @ cov @ L.T
    se = np.sqrt(np.diag(lcl))
    q = L.shape[0]
    if np.linalg.matrix_rank(lcl) < q:
        raise SpecError("the equations of the hypothesis are not linearly independent")
    chi2 = float(diff @ np.linalg.solve(lcl, diff))
    p_chi2 = float(stats.chi2.sf(chi2, q))
    if q == 1:
        df = float(result.contrast_df(L)[0])
        statistic = float(diff[0] / se[0])
        p = float(2 * stats.t.sf(abs(statistic), df)) if np.isfinite(df) else p_chi2
    else:
        df = float(result.joint_df(L))
        statistic = chi2 / q
        p = float(stats.f.sf(statistic, q, df)) if np.isfinite(df) else p_chi2
    return WaldTest(hypothesis=hypothesis, estimate=tuple(map(float, diff)),
                    se=tuple(map(float, se)), statistic=statistic, df_num=q, df_den=df, p=p,
                    chi2=chi2, p_chi2=p_chi2)
