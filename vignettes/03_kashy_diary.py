# %% [markdown]
# # 3. Kashy diary couples: published nlme results reproduced
#
# 103 dating couples rated their daily conflict and relationship satisfaction for 14 days
# (Campbell, Simpson, Boldry & Kashy, 2005). The data are David Kenny's and Randi
# Garcia's dyadic-workshop example for over-time APIMs, and the workshops print the nlme
# output of each model. This vignette fits those models with `apim` and checks every
# printed number it reproduces (`assert` statements: estimates to the printed digits,
# standard errors to 1e-4 of themselves, log-likelihoods to the printed digits).
#
# The data are public teaching data without a licence, so they are not bundled: set
# `APIM_SHARED_DATA` to the folder holding `kashy_diary/` (default `../shared/data`
# beside the repository).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import apim
from apim import APIMSpec, CovarianceSpec, DecompositionSpec, FormulaSpec, SessionData
from apim.inference.wald import wald_test

SHARED = Path(os.environ.get("APIM_SHARED_DATA", Path("..") / ".." / "shared" / "data"))
pd.set_option("display.width", 120)
pd.set_option("display.max_columns", 20)


def near(value: float, printed: float, decimals: int) -> bool:
    """Equal to the published value at the number of decimals it was printed with."""
    return abs(value - printed) <= 0.5 * 10 ** -decimals + 1e-12


# %% [markdown]
# The file is in the workshops' *pairwise* layout: one row per person and day, the
# partner's same-day values in `_P` columns. `SessionData.from_pairwise` reads it back to
# the long layout (person 1 = man, 2 = woman).

# %%
kashy = SessionData.from_pairwise(SHARED / "kashy_diary" / "kashy_person_period_pairwise.csv",
                                  dyad="dyadid", session="Day", role="person", roles=(1, 2))
print(kashy.report(["conflict", "satisf"]))

# %% [markdown]
# ## A1. The interaction approach (2day workshop, *Growth Curve Modeling*)
#
# `lme(satisf_A ~ genderE * (conflict_A + conflict_P), random = ~ man + woman + conflict_A
# + conflict_P - 1 | dyadid, correlation = corCompSymm(~1 | dyadid/obsid), weights =
# varIdent(~1 | genderS))`. In apim's formula interface the partner's value is
# `conflict_partner`; the default residual structure `un` is the workshop's compound
# symmetry with gender-specific variances.

# %%
a1 = apim.fit(kashy, FormulaSpec("satisf ~ genderE * (conflict + conflict_partner)",
                                 random="0 + man + woman + conflict + conflict_partner"))
print(a1.summary())
published = {"Intercept": (6.793863, 0.05703066), "genderE": (-0.105341, 0.02716656),
             "conflict": (-0.162913, 0.01535975), "conflict_partner": (-0.067184, 0.01275868),
             "genderE:conflict": (0.023139, 0.01104504),
             "genderE:conflict_partner": (-0.005632, 0.01091235)}
effects = a1.effects
print(pd.DataFrame({"apim": effects.loc[list(published), "estimate"],
                    "published": [b for b, _ in published.values()],
                    "apim SE": effects.loc[list(published), "se"],
                    "published SE": [se for _, se in published.values()]}).round(6))
for term, (b, se) in published.items():
    assert near(effects.loc[term, "estimate"], b, 6), term
    assert abs(effects.loc[term, "se"] - se) <= 1e-4 * se, term
assert a1.statistics.n_obs == 2833 and a1.statistics.n_dyads == 103
assert near(a1.statistics.loglik, -2548.449, 3)
assert near(a1.statistics.aic, 5134.899, 3) and near(a1.statistics.bic, 5247.891, 3)
variance = a1.engine.variance["estimate"]
assert abs(variance["rho"] - 0.2570029) < 1e-4
assert abs(variance["sigma(1)"] / variance["sigma(0)"] - 1.041919) < 1e-4

# %% [markdown]
# Conflict lowers one's own satisfaction that day (actor) and the partner's (partner);
# the gender interaction says the man's actor effect is less negative than the woman's.
#
# ## B1. The two-intercept APIM with random actor and partner slopes (week workshop,
# *APIM over time*)
#
# With grand-mean-centred conflict (`Cconflict`) and no within/between split:

# %%
b1 = apim.fit(kashy, APIMSpec("satisf", ("Cconflict",),
                              decomposition=DecompositionSpec(center="none"),
                              covariance=CovarianceSpec(random="slopes")))
print(b1.summary())
published = {"1.intercept": (6.2642, 0.0663), "2.intercept": (6.4078, 0.0517),
             "1.actor.none.Cconflict": (-0.1493, 0.0220),
             "2.actor.none.Cconflict": (-0.1935, 0.0219),
             "1.partner.none.Cconflict": (-0.0676, 0.0199),
             "2.partner.none.Cconflict": (-0.0596, 0.0181)}
for term, (b, se) in published.items():
    assert near(b1.effects.loc[term, "estimate"], b, 4), term
    assert near(b1.effects.loc[term, "se"], se, 4), term
sd = b1.variance["estimate"]
for name, printed in {"dyad sd(1)": 0.65278194, "dyad sd(2)": 0.49750818,
                      "dyad sd(1.actor.none.Cconflict)": 0.15064922,
                      "dyad sd(2.actor.none.Cconflict)": 0.15907621,
                      "residual sd(1)": 0.50108605}.items():
    assert abs(sd[name] / printed - 1) < 1e-3, name

# the workshop's lincomb: Actor_M - Actor_W = 0.04427 (SE 0.03115), p = .155
test = wald_test(b1, "1.actor = 2.actor")
print(test)
assert near(test.estimate[0], 0.04427, 5) and near(test.se[0], 0.03115, 5)
assert near(test.p_chi2, 0.155, 3)

# %% [markdown]
# ## B1, person-centred: within-person and between-person effects
#
# Each person's conflict splits into their mean over the diary days (of the
# grand-mean-centred conflict, as in Bolger & Laurenceau, 2013) and the day's deviation
# from it. Days of more conflict than usual lower satisfaction a little; people (and
# partners of people) with more conflict on average are less satisfied on average.

# %%
pc = apim.fit(kashy, APIMSpec("satisf", ("Cconflict",),
                              decomposition=DecompositionSpec(center="person",
                                                              reference="grand"),
                              covariance=CovarianceSpec(random="slopes")))
published = {"1.actor.within.Cconflict": (-0.1489, 0.0221),
             "2.actor.within.Cconflict": (-0.1940, 0.0216),
             "1.partner.within.Cconflict": (-0.0626, 0.0199),
             "2.partner.within.Cconflict": (-0.0591, 0.0180),
             "1.actor.between.Cconflict": (-0.3305, 0.1018),
             "2.actor.between.Cconflict": (-0.2310, 0.0816),
             "1.partner.between.Cconflict": (-0.2313, 0.0998),
             "2.partner.between.Cconflict": (-0.2215, 0.0829)}
rows = pc.effects.loc[list(published)]
print(rows[["outcome_role", "effect", "level", "estimate", "se", "p"]].round(4))
for term, (b, se) in published.items():
    assert near(rows.loc[term, "estimate"], b, 4) and near(rows.loc[term, "se"], se, 4), term

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
labels = [t.replace(".Cconflict", "").replace("1.", "man: ").replace("2.", "woman: ")
          for t in rows.index]
y = np.arange(len(rows))
ax.errorbar(rows["estimate"], y, xerr=1.96 * rows["se"], fmt="o", capsize=3)
ax.scatter([b for b, _ in published.values()], y, marker="x", color="black", zorder=3,
           label="published")
ax.axvline(0, color="grey", lw=0.8)
ax.set_yticks(y, labels)
ax.set_xlabel("effect of conflict on satisfaction (95% CI)")
ax.legend(frameon=False)
fig.tight_layout()
plt.show()
