"""Figures of fitted APIMs (matplotlib, imported only when drawing).

- :func:`path_diagram`: the APIM with actor and partner estimates per role and level,
  significance, and k = partner / actor with the pattern it supports;
- :func:`simple_slopes_plot`: simple slopes of a moderated effect and its Johnson-Neyman
  region;
- :func:`surface_plot`: the response surface of a polynomial APIM with the lines of
  congruence and incongruence;
- :func:`trajectories`: session-by-session ratings of chosen dyads, both members,
  observed and fitted;
- :func:`residual_diagnostics`: per role, a normal QQ plot, residuals against fitted
  values and the residual autocorrelation by session lag.

Every function returns a :class:`matplotlib.figure.Figure` (not registered with pyplot, so
nothing is shown or kept open unless you do so); single-panel figures take ``ax``.

Examples
--------
>>> import apim
>>> result = apim.fit(apim.load_alliance(), apim.APIMSpec("outcome", ("alliance",)))
>>> figure = path_diagram(result)
>>> [a.get_title() for a in figure.axes]
['Within-person', 'Between-person']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import apim.report.labels as lab
from apim.errors import SpecError
from apim.inference.patterns import dyadic_patterns
from apim.inference.slopes import _pair, johnson_neyman, simple_slopes
from apim.inference.surface import surface_parameters
from apim.model.fitted import FittedModel

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


__all__ = ["path_diagram", "simple_slopes_plot", "surface_plot", "trajectories",
           "residual_diagnostics", "residual_autocorrelation", "ROLE_COLORS"]

ROLE_COLORS = ("#1f5fa8", "#c2452d")
LEVEL_TITLES = {"within": "Within-person", "between": "Between-person",
                "therapist": "Between-therapist", "none": "Grand-mean centred"}


def _figure(ax: Axes | None, size: tuple[float, float], **kw: Any) -> tuple[Figure, Axes]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SpecError("figures need matplotlib, a dependency of apim that is missing "
                        "here: pip install matplotlib") from None
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot(**kw)


def _new_figure(size: tuple[float, float]) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SpecError("figures need matplotlib, a dependency of apim that is missing "
                        "here: pip install matplotlib") from None
    return Figure(figsize=size, layout="constrained")


# ---------------------------------------------------------------- path diagram
def _path_panel(ax: Axes, result: FittedModel, level: str, predictor: str,
                patterns: pd.DataFrame | None, group: str = "") -> None:
    eff = result.effects
    plain = eff[(eff["by"] == "") & (eff["level"] == level) & (eff["predictor"] == predictor)
                & (eff["group"] == group)]
    roles = result.roles
    outcome = getattr(result.spec, "outcome", "outcome")
    pooled = set(plain["outcome_role"]) == {"both"}
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    title = LEVEL_TITLES.get(level, level)
    ax.set_title(f"{title} in {group}" if group else title)
    left, right, top, bottom = 0.14, 0.86, 0.78, 0.22
    box = {"boxstyle": "round,pad=0.4", "facecolor": "#f4f4f4", "edgecolor": "#333"}
    for i, (r, y) in enumerate(zip(roles, (top, bottom))):
        name = f"{r[:1].upper()}{r[1:]}"
        ax.text(left, y, f"{name}\n{predictor}", ha="center", va="center", fontsize=9,
                bbox={**box, "edgecolor": ROLE_COLORS[i]})
        ax.text(right, y, f"{name}\n{outcome}", ha="center", va="center", fontsize=9,
                bbox={**box, "edgecolor": ROLE_COLORS[i]})

    def arrow(x0: float, y0: float, x1: float, y1: float, row: pd.Series | None,
              where: float, color: str) -> None:
        if row is None:
            return
        significant = row["p"] < 0.05
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-|>", "color": color if significant else "#999",
                                "lw": 1.8 if significant else 1.0,
                                "linestyle": "-" if significant else "--",
                                "shrinkA": 30, "shrinkB": 30})
        xm, ym = x0 + where * (x1 - x0), y0 + where * (y1 - y0)
        text = f"{lab.number(row['estimate'], 2)}{lab.stars(row['p'])}"
        ax.text(xm, ym, text, ha="center", va="center", fontsize=9,
                color=color if significant else "#666",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})

    def get(role: str, effect: str) -> pd.Series | None:
        key = "both" if pooled else role
        rows = plain[(plain["outcome_role"] == key) & (plain["effect"] == effect)]
        return None if rows.empty else rows.iloc[0]

    (r0, r1) = roles
    arrow(left, top, right, top, get(r0, "actor"), 0.5, ROLE_COLORS[0])
    arrow(left, bottom, right, bottom, get(r1, "actor"), 0.5, ROLE_COLORS[1])
    arrow(left, bottom, right, top, get(r0, "partner"), 0.3, ROLE_COLORS[0])
    arrow(left, top, right, bottom, get(r1, "partner"), 0.3, ROLE_COLORS[1])
    if patterns is not None and len(patterns):
        for i, (r, y) in enumerate(zip(roles, (top, bottom))):
            key = "both" if pooled else r
            k = patterns[(patterns["outcome_role"] == key) & (patterns["level"] == level)
                         & (patterns["predictor"] == predictor)
                         & (patterns["group"] == group)]
            if k.empty:
                continue
            row = k.iloc[0]
            pattern = row["pattern"] if row["pattern"] != "none" else \
                "no standard pattern"
            text = (f"k = {lab.number(row['k'], 2)} [{lab.number(row['ci_low'], 2)}, "
                    f"{lab.number(row['ci_high'], 2)}]\n{pattern}")
            ax.text(right, y + (0.13 if i == 0 else -0.13), text, ha="center",
                    va="bottom" if i == 0 else "top", fontsize=7.5, color=ROLE_COLORS[i])


def path_diagram(result: FittedModel, level: str | None = None, predictor: str | None = None,
                 ax: Axes | None = None, k: bool = True) -> Figure:
    """The APIM as a path diagram: actor (horizontal) and partner (diagonal) arrows with
    their estimates, significance (solid: p < .05; stars) and k per outcome role.

    Parameters
    ----------
    result : FittedModel
    level : str, optional
        ``"within"``, ``"between"`` or ``"therapist"``; default: one panel per level.
    predictor : str, optional
        Default: the first predictor.
    ax : Axes, optional
        Draw one level into this axes.
    k : bool
        Show k = partner / actor with its 95% Monte Carlo interval and the pattern
        (:func:`apim.inference.patterns.dyadic_patterns`).

    Notes
    -----
    With moderators, the arrows are the effects in the reference category. A multi-group
    model (the latent APIM with a moderator) gets one row of panels per group.
    """
    eff = result.effects
    actors = eff[(eff["effect"] == "actor") & (eff["by"] == "")]
    if actors.empty:
        raise SpecError("a path diagram needs actor and partner effects (an APIMSpec fit)")
    predictor = predictor or str(actors["predictor"].iloc[0])
    levels = [lv for lv in dict.fromkeys(actors["level"]) if level is None or lv == level]
    if not levels:
        raise SpecError(f"level={level!r} is not one of {sorted(set(actors['level']))}")
    if ax is not None and len(levels) > 1:
        raise SpecError("pass level=... to draw one level into ax")
    groups = list(dict.fromkeys(actors["group"]))
    if ax is not None and len(groups) > 1:
        raise SpecError("pass a one-group model to draw into ax")
    patterns = dyadic_patterns(result, draws=5000) if k else None
    if ax is not None:
        fig = ax.figure
        _path_panel(ax, result, levels[0], predictor, patterns, groups[0])
        return fig  # type: ignore[return-value]
    fig = _new_figure((4.6 * len(levels), 4.0 * len(groups)))
    for g, group in enumerate(groups):
        for i, lv in enumerate(levels):
            _path_panel(fig.add_subplot(len(groups), len(levels), g * len(levels) + i + 1),
                        result, lv, predictor, patterns, group)
    fig.supxlabel("Solid arrows: p < .05 (* p < .05, ** p < .01, *** p < .001); "
                  "dashed: not significant. k = partner / actor with its 95% interval.",
                  fontsize=7.5, color="#444")
    refs = {m: v for m, v in result.reference_levels().items()
            if not any(actors["group"] != "")}  # per-arm models name their arm per panel
    if refs:
        fig.suptitle("Effects in the reference category: "
                     + ", ".join(f"{m} = {v}" for m, v in refs.items()), fontsize=9)
    return fig


# ---------------------------------------------------------------- simple slopes
def _conditional_intercept(result: FittedModel, effect_term: str, moderator: str,
                           at: np.ndarray) -> np.ndarray:
    coef = result.coef
    role, kind, level, predictor = (effect_term.split("|")[0].split(".") + [""] * 4)[:4]
    b0 = coef.get(f"{role}.intercept", 0.0)
    if moderator in ("partner", "actor_x_partner"):
        slope = coef.get(f"{role}.partner.{level}.{predictor}", 0.0)
    else:
        slope = coef.get(f"{role}.moderator.none.{moderator}", 0.0)
    return b0 + slope * at


def _moderator_names(result: FittedModel, moderator: str) -> tuple[str, str, str] | None:
    """(name, reference, level) of a dummy-coded moderator ``name[level]``, else None."""
    import re

    match = re.fullmatch(r"(.+)\[(.+)\]", moderator)
    if match is None:
        return None
    name, level = match.groups()
    ref = result.reference_levels().get(name)
    return None if ref is None else (name, ref, level)


def simple_slopes_plot(result: FittedModel, effect: str, moderator: str,
                       at: Sequence[float] | None = None,
                       ax: Sequence[Axes] | None = None) -> Figure:
    """Simple slopes of ``effect`` at moderator values, and where they are significant.

    Left: the predicted outcome against the effect's predictor part at each value in
    ``at`` (:func:`apim.inference.slopes.simple_slopes`). Right, for a numeric moderator
    (e.g. ``"partner"``, the partner's part, with ``interaction=True``): the simple slope
    with its 95% CI over the moderator's observed range, coloured where p < .05, and the
    Johnson-Neyman bounds (:func:`apim.inference.slopes.johnson_neyman`); for a category
    (``"treatment[AFT]"``): the slope in each category with its CI.

    Parameters
    ----------
    result, effect, moderator, at
        As for :func:`apim.inference.slopes.simple_slopes`.
    ax : pair of Axes, optional
    """
    category = _moderator_names(result, moderator)
    table = simple_slopes(result, effect, moderator, [0.0, 1.0] if category else at)
    i, j = _pair(result, effect, moderator)
    names = list(result.coef.index)
    term = names[i]
    X = _design(result).to_numpy()
    role, _, level, predictor = (term.split("|")[0].split(".") + [""] * 4)[:4]
    rows = X[:, names.index(f"{role}.intercept")] != 0 if f"{role}.intercept" in names \
        else np.ones(len(X), bool)
    x = X[rows, i]
    mod = X[rows, j] / np.where(x != 0, x, np.nan)
    mod = mod[np.isfinite(mod)]
    if ax is None:
        fig = _new_figure((10, 4))
        axes = [fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)]
    else:
        axes = list(ax)
        fig = axes[0].figure  # type: ignore[assignment]
    lo, hi = np.quantile(x, [0.05, 0.95])
    grid = np.linspace(lo, hi, 50)
    at_values = table["at"].to_numpy()
    intercepts = _conditional_intercept(result, term, moderator, at_values)
    if category:
        shown = [f"{category[0]} = {category[1]}", f"{category[0]} = {category[2]}"]
    else:
        shown = [f"{moderator} = {lab.number(m, 2)}" for m in at_values]
    for n, (slope, p) in enumerate(zip(table["slope"], table["p"])):
        axes[0].plot(grid, intercepts[n] + slope * grid, lw=2,
                     label=f"{shown[n]}: slope {lab.number(slope, 2)}{lab.stars(p)}")
    whose = "partner's" if "partner" in term.split(".")[1] else "own"
    lev = lab.level_label(level, result)
    axes[0].set_xlabel(f"{role}: {whose} {predictor}" + (f" ({lev} part)" if lev else ""))
    axes[0].set_ylabel(lab.outcome_label(role, result.spec))
    axes[0].legend(fontsize=8)
    axes[0].set_title("Simple slopes")
    if category:
        axes[1].errorbar([0, 1], table["slope"],
                         yerr=[table["slope"] - table["ci_low"], table["ci_high"] - table["slope"]],
                         fmt="o", color="k", capsize=6, lw=1.5)
        axes[1].set_xticks([0, 1], [category[1], category[2]])
        axes[1].set_xlim(-0.5, 1.5)
        axes[1].axhline(0, color="#555", lw=0.8)
        axes[1].set_xlabel(category[0])
        axes[1].set_ylabel("simple slope (95% CI)")
        axes[1].set_title(f"Slope by {category[0]}")
        return fig  # type: ignore[return-value]
    m_lo, m_hi = (float(mod.min()), float(mod.max())) if len(mod) else (0.0, 1.0)
    span = np.linspace(m_lo, m_hi, 200)
    band = simple_slopes(result, effect, moderator, list(span))
    significant = (band["p"] < 0.05).to_numpy()
    axes[1].fill_between(span, band["ci_low"], band["ci_high"], where=significant,
                         color="#4f9a4f", alpha=0.35, label="95% CI, p < .05",
                         interpolate=True)
    axes[1].fill_between(span, band["ci_low"], band["ci_high"], where=~significant,
                         color="#999", alpha=0.35, label="95% CI, n.s.", interpolate=True)
    axes[1].plot(span, band["slope"], color="k", lw=2, label="simple slope")
    axes[1].axhline(0, color="#555", lw=0.8)
    jn = johnson_neyman(result, effect, moderator)
    for b in jn.bounds:
        if m_lo <= b <= m_hi:
            axes[1].axvline(b, color="#2a7f2a", ls="--", lw=1)
    inside = [b for b in jn.bounds if m_lo <= b <= m_hi]
    where = ("significant over the whole observed range" if significant.all() else
             "not significant anywhere in the observed range" if not significant.any() else
             "J–N bound(s) " + ", ".join(f"{b:.2f}" for b in inside))
    axes[1].set_title(f"Johnson–Neyman: {where}", fontsize=10)
    axes[1].set_xlabel(moderator)
    axes[1].set_ylabel("simple slope")
    axes[1].legend(fontsize=8)
    return fig  # type: ignore[return-value]


# ---------------------------------------------------------------- response surface
def surface_plot(result: FittedModel, role: str | None = None, ax: Axes | None = None,
                 grid: int = 30) -> Figure:
    """The fitted response surface of a :func:`apim.model.formula.response_surface` fit
    over the observed range of both members' ratings, with the line of congruence
    (P = T, solid) and incongruence (P = −T about the centre, dashed) and a1-a4.

    ``role`` picks one outcome role (default: one 3-D panel per role); ``ax`` must be a
    3-D axes (``projection="3d"``).
    """
    coef = result.coef
    eff = result.effects
    roles = [r for r in dict.fromkeys(eff.loc[eff["effect"] == "surface", "outcome_role"])
             if role is None or r == role]
    if not roles:
        raise SpecError("surface_plot needs a response_surface fit (terms *.surface.none.P)")
    names = list(coef.index)
    X = _design(result).to_numpy()
    frame = result.data.frame.loc[_design(result).index]
    predictor = result.spec.predictors[0]  # type: ignore[attr-defined]
    first = (frame["role"] == result.roles[0]).to_numpy()
    P = X[first, names.index(f"{result.roles[0]}.surface.none.P")]
    center = float(np.mean(frame[predictor].to_numpy()[first] - P))
    pars = surface_parameters(result)
    if ax is not None and len(roles) > 1:
        raise SpecError("pass role=... to draw one surface into ax")
    fig = ax.figure if ax is not None else _new_figure((6.0 * len(roles), 5.2))
    lo, hi = np.quantile(frame[predictor].dropna(), [0.02, 0.98]) - center
    g = np.linspace(lo, hi, grid)
    pp, tt = np.meshgrid(g, g)
    for n, r in enumerate(roles):
        a: Any = ax if ax is not None else fig.add_subplot(1, len(roles), n + 1,
                                                           projection="3d")
        b = {k: coef[f"{r}.surface.none.{k}"] for k in ("P", "T", "P2", "PxT", "T2")}
        b0 = coef[f"{r}.intercept"]

        def z(p: np.ndarray, t: np.ndarray, b0: float = b0, b: dict = b) -> np.ndarray:
            return (b0 + b["P"] * p + b["T"] * t + b["P2"] * p * p + b["PxT"] * p * t
                    + b["T2"] * t * t)

        a.plot_surface(pp + center, tt + center, z(pp, tt), cmap="viridis", alpha=0.75,
                       linewidth=0)
        a.plot(g + center, g + center, z(g, g), color="k", lw=2, label="congruence P = T")
        a.plot(g + center, -g + center, z(g, -g), color="k", lw=2, ls="--",
               label="incongruence")
        r0, r1 = result.roles
        a.set_xlabel(f"{r0} {predictor}")
        a.set_ylabel(f"{r1} {predictor}")
        a.set_zlabel(lab.outcome_label(r, result.spec))
        rows = pars[pars["outcome_role"] == r]
        text = ", ".join(f"{row.parameter} = {lab.number(row.estimate, 2)}"
                         f"{lab.stars(row.p)}" for row in rows.itertuples())
        a.set_title(f"{lab.outcome_label(r, result.spec)}\n{text}", fontsize=9)
        a.legend(fontsize=7, loc="upper left")
    return fig  # type: ignore[return-value]


# ---------------------------------------------------------------- trajectories
def _design(result: FittedModel) -> pd.DataFrame:
    X = result.design_matrix()
    if X is None:
        raise SpecError(f"this figure needs the rows' fixed-effects design; a {result.kind} "
                        "has none")
    return X


def _used_frame(result: FittedModel) -> pd.DataFrame:
    frame = result.fitted_frame()
    if frame is None:
        raise SpecError(f"this figure needs observed and fitted values per row; a "
                        f"{result.kind} has none")
    return frame


def trajectories(result: FittedModel, dyads: Sequence[Any] | None = None,
                 ax: Axes | None = None, n: int = 4) -> Figure:
    """Session-by-session outcome of chosen dyads: both members, observed (points) and
    fitted (lines, with the dyad's predicted random effects).

    Parameters
    ----------
    dyads : dyad ids, optional
        Default: the ``n`` dyads with the most fitted sessions.
    ax : Axes, optional
        Draw one dyad into this axes.
    """
    frame = _used_frame(result)
    known = set(frame["dyad"])
    if dyads is None:
        dyads = list(frame.groupby("dyad")["session"].nunique()
                     .sort_values(ascending=False, kind="stable").index[:n])
    missing = [d for d in dyads if d not in known]
    if missing:
        raise SpecError(f"dyad {missing[0]!r} has no rows in the fit; choose among "
                        f"{sorted(known, key=str)[:5]} ...")
    if ax is not None and len(dyads) != 1:
        raise SpecError("pass one dyad to draw into ax")
    cols = min(2, len(dyads))
    rows = int(np.ceil(len(dyads) / cols))
    fig = ax.figure if ax is not None else _new_figure((5.2 * cols, 3.0 * rows))
    outcome = lab.outcome_label("", result.spec).split("'s ")[-1]
    for k, d in enumerate(dyads):
        a = ax if ax is not None else fig.add_subplot(rows, cols, k + 1)
        part = frame[frame["dyad"] == d]
        for i, r in enumerate(result.roles):
            one = part[part["role"] == r].sort_values("session")
            a.plot(one["session"], one["observed"], "o", ms=3.5, color=ROLE_COLORS[i],
                   alpha=0.7, label=f"{r} observed")
            a.plot(one["session"], one["fitted"], "-", lw=1.6, color=ROLE_COLORS[i],
                   label=f"{r} fitted")
        a.set_title(f"Dyad {d}", fontsize=10)
        a.set_xlabel("session")
        a.set_ylabel(outcome)
        if k == 0:
            a.legend(fontsize=7, ncol=2)
    return fig  # type: ignore[return-value]


# ---------------------------------------------------------------- diagnostics
def residual_autocorrelation(result: FittedModel, max_lag: int = 8) -> pd.DataFrame:
    """Correlation of each person's residuals ``lag`` sessions apart (by session number),
    per role, pooled over persons.

    The residuals are conditional on the predicted random effects (``y - fitted``), so the
    dyad's level is already removed; they are centred on the role's mean only (removing
    each person's mean again would bias every lag further). With many sessions per person
    the predicted random effects absorb nearly all of the person's mean residual, so
    without any serial correlation the autocorrelation is about ``-1/(n - 1)`` for a
    person with ``n`` sessions: column ``expected`` averages it over the pairs."""
    frame = _used_frame(result)
    frame["centred"] = frame["residual"] - frame.groupby("role")["residual"].transform("mean")
    out = []
    keyed = frame.set_index(["dyad", "role", "session"])["centred"]
    for r in result.roles:
        own = frame[frame["role"] == r]
        count = own.groupby("dyad")["session"].transform("size").to_numpy()
        base = own.set_index(["dyad", "role", "session"])["centred"]
        var = float((base ** 2).mean())
        for lag in range(1, max_lag + 1):
            later = pd.MultiIndex.from_arrays([own["dyad"], own["role"], own["session"] + lag])
            pair = keyed.reindex(later).to_numpy()
            ok = np.isfinite(pair)
            value = float(np.mean(base.to_numpy()[ok] * pair[ok]) / var) if ok.any() \
                else np.nan
            n = count[ok]
            expected = float(np.mean(-1.0 / (n - 1))) if ok.any() else np.nan
            out.append({"role": r, "lag": lag, "autocorrelation": value,
                        "expected": expected, "pairs": int(ok.sum())})
    return pd.DataFrame(out)


def residual_diagnostics(result: FittedModel, max_lag: int = 8) -> Figure:
    """Per role (rows): normal QQ plot of the residuals, residuals against fitted values
    (with binned means), and the residual autocorrelation by session lag against what
    is expected without serial correlation, with an approximate 95% band
    (:func:`residual_autocorrelation`)."""
    frame = _used_frame(result)
    acf = residual_autocorrelation(result, max_lag)
    roles = result.roles
    fig = _new_figure((11, 3.2 * len(roles)))
    from scipy import stats  # half a second to import: only where a Q-Q plot is drawn

    for i, r in enumerate(roles):
        part = frame[frame["role"] == r]
        res = part["residual"].to_numpy()
        color = ROLE_COLORS[i]
        qq = fig.add_subplot(len(roles), 3, 3 * i + 1)
        (osm, osr), (slope, inter, _) = stats.probplot(res, dist="norm")
        qq.plot(osm, osr, ".", ms=2, color=color, alpha=0.5)
        qq.plot(osm, inter + slope * osm, color="k", lw=1)
        qq.set_title(f"{r}: normal QQ", fontsize=10)
        qq.set_xlabel("theoretical quantile")
        qq.set_ylabel("residual")
        rv = fig.add_subplot(len(roles), 3, 3 * i + 2)
        fitted = part["fitted"].to_numpy()
        rv.plot(fitted, res, ".", ms=2, color=color, alpha=0.35)
        edges = np.quantile(fitted, np.linspace(0, 1, 11))
        which = np.clip(np.searchsorted(edges, fitted, side="right") - 1, 0, 9)
        means = [res[which == b].mean() if (which == b).any() else np.nan for b in range(10)]
        rv.plot((edges[:-1] + edges[1:]) / 2, means, "-o", color="k", ms=3, lw=1.2,
                label="binned mean")
        rv.axhline(0, color="#555", lw=0.8)
        rv.set_title(f"{r}: residual vs fitted", fontsize=10)
        rv.set_xlabel("fitted")
        rv.set_ylabel("residual")
        rv.legend(fontsize=7)
        ac = fig.add_subplot(len(roles), 3, 3 * i + 3)
        one = acf[acf["role"] == r]
        ac.bar(one["lag"], one["autocorrelation"], color=color, width=0.6)
        band = 1.96 / np.sqrt(one["pairs"].clip(lower=1))
        centre = one["expected"]
        ac.plot(one["lag"], centre, "-", color="#222", lw=1.2)
        ac.step(one["lag"], centre + band, "--", color="#555", lw=0.8, where="mid")
        ac.step(one["lag"], centre - band, "--", color="#555", lw=0.8, where="mid")
        ac.axhline(0, color="k", lw=0.8)
        ac.set_title(f"{r}: autocorrelation by lag", fontsize=10)
        ac.set_xlabel("lag (sessions)")
        ac.set_ylabel("autocorrelation")
    fig.supxlabel("Autocorrelation: solid line = expected without serial correlation "
                  "(≈ −1/(n−1)), dashed = ±1.96/√pairs around it.", fontsize=8,
                  color="#444")
    return fig
