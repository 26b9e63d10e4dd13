# %% [markdown]
# # 4. Acitelli couples: distinguishability, k and dyadic patterns
#
# 148 married couples, one measurement each (Acitelli, 1997): does seeing one's partner
# positively (`OtherPos`) go with one's own satisfaction (actor) and the partner's
# (partner)? These data are the standard example of Kenny's APIM tutorials; the 2day
# dyadic workshop (Kenny & Garcia) prints nlme output for each model below, and the
# numbers are checked against it with `assert` statements.
#
# Cross-sectional data are a special case: one "session" per person. The data are
# bundled with apim (`apim.load_acitelli()`: the CC0 copy of R. L. Garcia's dyadr package,
# pairwise file read as one row per spouse; `apim fit` reads the same file with
# `--layout pairwise --dyad CoupleID --role Gender`).

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import apim
from apim import APIMSpec, CovarianceSpec, DecompositionSpec
from apim.inference.compare import distinguishability_test
from apim.inference.effect_sizes import pseudo_r2
from apim.inference.patterns import dyadic_patterns
from apim.inference.wald import wald_test

pd.set_option("display.width", 120)
pd.set_option("display.max_columns", 20)


def near(value: float, printed: float, decimals: int) -> bool:
    """Equal to the published value at the number of decimals it was printed with."""
    return abs(value - printed) <= 0.5 * 10 ** -decimals + 1e-12


acitelli = apim.load_acitelli()
print(acitelli.report(["Satisfaction", "OtherPos"]))

# %% [markdown]
# ## Indistinguishable dyads
#
# One intercept, one actor and one partner effect for both members, exchangeable
# residuals (equal variances, a free correlation): the workshop's `gls(satisfaction_A ~
# other_pos_A + other_pos_P, correlation = corCompSymm(~1 | cuplid))`.

# %%
raw = DecompositionSpec(center="none")
spec = APIMSpec("Satisfaction", ("OtherPos",), decomposition=raw,
                covariance=CovarianceSpec(random="none"), distinguishable=False)
indist = apim.fit(acitelli, spec)
print(indist.summary())
eff = indist.effects
assert near(eff.loc["both.actor.none.OtherPos", "estimate"], 0.4004231, 7)
assert near(eff.loc["both.partner.none.OtherPos", "estimate"], 0.2879705, 7)
assert near(eff.loc["both.actor.none.OtherPos", "se"], 0.0473141, 7)
assert near(indist.statistics.loglik, -148.3591, 4)
assert near(indist.variance.loc["residual cor(Husband,Wife)", "estimate"], 0.4693414, 7)
assert near(pseudo_r2(indist)["pseudo_r2"].iloc[0], 0.29462, 5)

# %% [markdown]
# ## Distinguishable dyads (husbands and wives)
#
# The two-intercept model: an intercept, actor and partner effect per role and
# role-specific residual variances (the workshop's `varIdent(~1 | genderE_A)`).

# %%
dist = apim.fit(acitelli, spec.replace(distinguishable=True))
print(dist.summary())
published = {"Husband.intercept": (0.6904589, 0.3429034), "Wife.intercept": (0.6112485, 0.4128195),
             "Husband.actor.none.OtherPos": (0.4243866, 0.0677157),
             "Wife.actor.none.OtherPos": (0.3777000, 0.0739222),
             "Husband.partner.none.OtherPos": (0.2616498, 0.0614025),
             "Wife.partner.none.OtherPos": (0.3214782, 0.0815225)}
for term, (b, se) in published.items():
    assert near(dist.effects.loc[term, "estimate"], b, 7), term
    assert abs(dist.effects.loc[term, "se"] - se) <= 1e-4 * se, term  # DESIGN.md tolerance
assert near(dist.statistics.loglik, -150.1108, 4)
sd = dist.variance["estimate"]
assert near(sd["residual sd(Wife)"] / sd["residual sd(Husband)"], 1.203894, 5)

# %% [markdown]
# ## Are husbands and wives distinguishable here?
#
# The likelihood-ratio test (ML) of the distinguishable against the indistinguishable
# model (Kenny, Kashy & Cook, 2006): four constraints (intercept, actor, partner and the
# residual variance equal across roles). Published: χ²(4) = 7.277053, p = .122.

# %%
test = distinguishability_test(acitelli, spec.replace(distinguishable=True))
print(test)
assert test.df == 4 and near(test.chi2, 7.277053, 6) and near(test.p, 0.122, 3)

# %% [markdown]
# Not significantly: the indistinguishable model is the more parsimonious description.
#
# ## k and the dyadic pattern (Kenny & Ledermann, 2010)
#
# `k = partner / actor`: 1 is the couple pattern (my view of my partner and my partner's
# view of me count the same), 0 actor-only, −1 contrast. In the indistinguishable model
# k = 0.2879705 / 0.4004231 = 0.719 from the published effects. Kenny's slides on
# patterns (2013) give the sum and difference for these data: (actor + partner) / 2 =
# 0.344 and (actor − partner) / 2 = 0.056.

# %%
patterns = dyadic_patterns(indist, seed=1)
print(patterns.round(3).to_string(index=False))
k = patterns["k"].iloc[0]
assert abs(k - 0.2879705 / 0.4004231) < 1e-6
half_sum = wald_test(indist, "both.actor + both.partner = 0").estimate[0] / 2
half_diff = wald_test(indist, "both.actor - both.partner = 0").estimate[0] / 2
print(f"sum/2 = {half_sum:.3f}, difference/2 = {half_diff:.3f}")
assert near(half_sum, 0.344, 3) and near(half_diff, 0.056, 3)
print(dyadic_patterns(dist, seed=1).round(3).to_string(index=False))

# %% [markdown]
# In the indistinguishable model the interval for k excludes 0 (not actor-only) and, just,
# 1: the partner effect is substantial but smaller than the actor effect, so no simple
# pattern fits. Husbands' and wives' separate intervals are wider and include 1 (the
# couple pattern), as the test of distinguishability suggested they would not differ.

# %%
assert patterns["ci_low"].iloc[0] > 0 and patterns["ci_high"].iloc[0] < 1.05

# %%
fig, ax = plt.subplots(figsize=(6.5, 2.8))
shown = pd.concat([patterns.assign(model="indistinguishable"),
                   dyadic_patterns(dist, seed=1).assign(model="distinguishable")])
y = np.arange(len(shown))
ax.errorbar(shown["k"], y, xerr=[shown["k"] - shown["ci_low"], shown["ci_high"] - shown["k"]],
            fmt="o", capsize=3)
for value, name in ((1, "couple"), (0, "actor-only"), (-1, "contrast")):
    ax.axvline(value, ls=":", color="grey")
    ax.text(value, 1.02, name, ha="center", fontsize=8, transform=ax.get_xaxis_transform())
who = {"both": "both", "Husband": "husbands", "Wife": "wives"}
ax.set_yticks(y, [f"{m}: {who[str(r)]}" for m, r in zip(shown["model"],
                                                         shown["outcome_role"])])
ax.set_xlabel("k = partner / actor (95% interval)")
fig.tight_layout()
plt.show()
