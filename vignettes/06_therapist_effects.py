# %% [markdown]
# # 6. Therapist effects
#
# How much of the alliance, and of session outcome, lies with the therapist rather than
# the patient or the session? And is the alliance–outcome association a therapist
# matter (therapists who form better alliances have better outcomes) or a patient matter
# (within a therapist's caseload, patients with better alliances do better)? Baldwin,
# Wampold & Imel (2007) found it was the therapist: the therapist-level association was
# significant and the patient-level one was not; Del Re et al. (2012) confirmed it
# meta-analytically.
#
# `apim.analyses.therapist` answers both questions for session-by-session dyadic data:
#
# * **variance shares** of each variable, per rater role, at the therapist, dyad and
#   session levels (three-level models, `lme(y ~ 1, random = ~ 1 | therapist/dyad)` in
#   nlme terms), with parametric-bootstrap intervals (exact F intervals in balanced
#   one-way designs) and boundary estimates flagged;
# * the **association split** at the dyad level (Baldwin et al.'s model: the patient's
#   deviation from their therapist's caseload mean, and the therapist's caseload mean,
#   with the contextual effect = therapist − patient level and its test) and at the
#   session level (a three-level APIM: within dyads, between dyads within therapist,
#   between therapists).
#
# The bundled example (simulated: 240 dyads, 40 therapists with 6 patients each, up to 30
# sessions) is used throughout; its numbers are checked against nlme's.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import apim
from apim.analyses.therapist import (
    TherapistSpec,
    association_split,
    session_split,
    therapist_effects,
    variance_shares,
)
from apim.simulation.simulate import SimulationSpec, simulate

pd.set_option("display.width", 120)
pd.set_option("display.max_columns", 20)
data = apim.load_alliance()
print(data.report(["alliance", "outcome"]))

# %% [markdown]
# ## Variance shares
#
# 100 bootstrap replicates keep this vignette quick; use 1,000 or more for a report
# (`n_jobs` spreads them over cores, `seed` makes them reproducible).

# %%
shares = variance_shares(data, ["alliance", "outcome"], ci="bootstrap", n_boot=100,
                         seed=2007)
print(shares.summary())

# %% [markdown]
# The same models in R (`tests/reference/therapist_effects.R`, nlme 3.1-162; output
# committed beside it) give the same variances and log-likelihoods:

# %%
reference = pd.read_csv("../tests/reference/therapist_bundled.csv")
r_shares = reference[reference["model"].str.startswith("shares")].copy()
r_shares[["variable", "role"]] = r_shares["model"].str.split(":", expand=True)[[1, 2]]
compare = shares.table.merge(
    r_shares.rename(columns={"quantity": "level", "estimate": "nlme"}),
    on=["variable", "role", "level"])[["variable", "role", "level", "variance", "nlme"]]
print(compare.round(5).to_string(index=False))
assert np.allclose(compare["variance"], compare["nlme"], rtol=1e-3)
for (variable, role), fitted in shares.fits.items():
    mine = ((r_shares["variable"] == variable) & (r_shares["role"] == role)
            & (r_shares["quantity"] == "logLik"))
    r_loglik = r_shares.loc[mine, "estimate"].iloc[0]
    assert abs(fitted.loglik - r_loglik) < 1e-3

# %%
fig, ax = plt.subplots(figsize=(6.5, 3))
table = shares.table
bars = table.pivot_table(index=["variable", "role"], columns="level", values="share",
                         sort=False)[["therapist", "dyad", "session"]]
left = np.zeros(len(bars))
for level, colour in zip(bars.columns, ("tab:red", "tab:blue", "tab:grey")):
    ax.barh(range(len(bars)), bars[level], left=left, color=colour, label=level)
    left += bars[level].to_numpy()
ther = table[table["level"] == "therapist"]
ax.errorbar(ther["share"], range(len(bars)),
            xerr=[ther["share"] - ther["ci_low"], ther["ci_high"] - ther["share"]],
            fmt="none", color="black", capsize=3)
ax.set_yticks(range(len(bars)), [f"{v} ({r}-rated)" for v, r in bars.index])
ax.set_xlabel("share of variance (therapist share with 95% bootstrap interval)")
ax.legend(frameon=False, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0))
fig.tight_layout()
plt.show()

# %% [markdown]
# About 11–17% of the variance of alliance and outcome lies between therapists, about
# 35–55% between patients of the same therapist and the rest between sessions. (In the
# literature therapist shares of outcome are typically 5–10%; the example is generous.)
#
# ## Does the method recover the truth?
#
# Forty simulated studies with known variances (20 therapists × 4 dyads × 8 sessions;
# the same therapist effect on both members' ratings): the average estimated share at each
# level lies within Monte Carlo error of the true share. (The test suite does the same
# with 200 replicates.) In any single study the therapist share is the least precise
# estimate: it rests on the number of therapists, not of patients or sessions. With as
# few as 20 therapists the shares, ratios of variances, are biased by up to about 0.02
# and the bootstrap intervals cover about 90% rather than 95%
# (`benchmarks/RESULTS.md, section therapist-coverage`).

# %%
truth = SimulationSpec(n_dyads=80, n_sessions=8, caseload=4, x_therapist_sd=0.4,
                       x_between_sd=(0.6, 0.5), x_within_sd=(0.5, 0.4), x_phi=0.0)
replicates = np.array([variance_shares(simulate(truth, seed=seed), ["x"], ci="none")
                       .table["share"].to_numpy() for seed in range(40)])
true_shares = []
for r in range(2):
    parts = np.array([0.4 ** 2, truth.x_between_sd[r] ** 2, truth.x_within_sd[r] ** 2])
    true_shares += list(parts / parts.sum())
recovery = shares.table.iloc[:6][["role", "level"]].assign(
    truth=true_shares, mean_estimate=replicates.mean(axis=0),
    mc_se=replicates.std(axis=0, ddof=1) / np.sqrt(len(replicates)),
    sd_over_studies=replicates.std(axis=0, ddof=1))
print(recovery.round(3).to_string(index=False))
assert (abs(recovery["mean_estimate"] - recovery["truth"]) < 3 * recovery["mc_se"]).all()

# %% [markdown]
# ## The alliance–outcome association: therapist or patient?
#
# At the dyad level, each dyad's mean outcome is regressed on the patient's deviation
# from the therapist's caseload mean of alliance (*within therapist*) and on that
# caseload mean (*therapist*), with a random therapist intercept. The contextual effect
# is their difference: how much more a therapist's average alliance matters than a
# patient's standing within the caseload.

# %%
split = association_split(data, "alliance", "outcome")
print(split.drop(columns="effect").round(3).to_string(index=False))
r_assoc = reference[reference["model"].str.startswith("association")].copy()
for row in split.itertuples():
    key = f"association:{row.predictor_role}:{row.outcome_role}"
    r = r_assoc[(r_assoc["model"] == key) & (r_assoc["quantity"] == row.level)].iloc[0]
    assert abs(row.estimate - r["estimate"]) < 1e-4 * r["se"]
    assert abs(row.se / r["se"] - 1) < 1e-3

# %%
patient = data.frame[data.frame["role"] == "patient"]
dyads = patient.groupby("dyad").agg(alliance=("alliance", "mean"), outcome=("outcome", "mean"),
                                    therapist=("therapist", "first"))
dyads["caseload_mean"] = dyads.groupby("therapist")["alliance"].transform("mean")
fig, ax = plt.subplots(figsize=(5.5, 4))
ax.scatter(dyads["alliance"], dyads["outcome"], c=dyads["caseload_mean"], cmap="viridis",
           s=14)
means = dyads.groupby("therapist")[["alliance", "outcome"]].mean()
ax.scatter(means["alliance"], means["outcome"], marker="s", color="black", s=18,
           label="therapist means")
rows = split.query("predictor_role == 'patient' and outcome_role == 'patient'")
rows = rows.set_index("level")
grid = np.linspace(means["alliance"].min(), means["alliance"].max(), 10)
centre = means.mean()
ax.plot(grid, centre["outcome"] + rows.loc["therapist", "estimate"] * (grid - centre["alliance"]),
        color="black", label=f"therapist level: {rows.loc['therapist', 'estimate']:.2f}")
ax.plot(grid, centre["outcome"] + rows.loc["within_therapist", "estimate"]
        * (grid - centre["alliance"]), color="tab:orange", ls="--",
        label=f"patient level: {rows.loc['within_therapist', 'estimate']:.2f}")
ax.set_xlabel("patient-rated alliance (dyad mean)")
ax.set_ylabel("patient-rated outcome (dyad mean)")
ax.legend(frameon=False, fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Both parts are positive here (the example was simulated with person-level effects as
# well as therapist effects), and the therapist-level slope is steeper, but the
# contextual effect is not significant (p ≈ .09 for patient ratings): with 40 therapists
# the test has little power, as Baldwin et al. note for their 80.
#
# ## Session level: three levels in a full APIM
#
# With `DecompositionSpec(center="therapist")` each member's alliance splits into
# session-to-session fluctuation (*within*), the person's mean relative to the therapist's
# caseload (*between dyad*) and the caseload mean (*therapist*); actor and partner
# effects are estimated at each level and the contextual effect is therapist − between.

# %%
session_table, session_fit = session_split(data, "alliance", "outcome")
print(session_table.round(3).to_string(index=False))
effects = session_fit.effects
context = session_table.query("outcome_role == 'patient' and effect == 'actor' "
                              "and level == 'contextual'").iloc[0]
assert abs(context["estimate"] - (effects.loc["patient.actor.therapist.alliance", "estimate"]
                                  - effects.loc["patient.actor.between.alliance", "estimate"])
           ) < 1e-12

# %% [markdown]
# ## Everything at once, as the command line does it
#
# `apim therapist alliance_sessions.csv --dyad dyad --session session --role role
# --therapist therapist --variable alliance --variable outcome --predictor alliance
# --outcome outcome --bootstrap 1000 --seed 1 --jobs 2` prints the same report as:

# %%
spec = TherapistSpec(variables=("outcome",), predictor="alliance", outcome="outcome",
                     covariates=("treatment",), ci="none", session_split=False)
print(therapist_effects(data, spec))
