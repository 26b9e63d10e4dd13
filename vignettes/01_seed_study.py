# %% [markdown]
# # 1. The seed study: actor and partner effects of the alliance, within and between
#
# Zilcha-Mano, Muran, Hungr, Eubanks, Safran & Winston (2016, *J Consult Clin Psychol*
# 84:484–496) followed 241 patient–therapist dyads for up to 30 sessions, in cognitive
# behavioural therapy (CBT) or alliance-focused therapy (AFT). After every session both
# members rated the working alliance and the session's outcome. Their abstract reports:
#
# * within-treatment (session-to-session) changes in the **patient's** alliance predicted
#   **both** members' session outcome (an actor and a partner effect);
# * the **therapist's** alliance, and each member's **mean** alliance, predicted only the
#   rater's own outcome (actor effects only);
# * the therapist's alliance predicted the therapist's outcome more strongly in the
#   alliance-focused arm.
#
# Their data are not public, so this vignette simulates a study of the same design with
# that pattern (`apim.simulation.simulate`) and walks through the analysis: check the
# data, split alliance into within-person and between-person parts, fit the
# distinguishable APIM, add actor × partner and treatment moderation, and read the results
# the way the paper does, with the package's own APA table, path diagram and HTML report.
#
# **What this vignette checks** (each `assert` fails if apim gets it wrong): because the
# truth is known, every fixed effect of every model (main effects, actor × partner,
# treatment-moderated) must lie within 3.5 standard errors of the value it was simulated
# with, on either side; the effect the design plants must be detected (p < .001) and the
# one it leaves out must not be (p > .01); the APA table must show the fitted estimates
# and name CBT as the reference arm; the report must hold the tables and the path diagram.

# %%
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import apim
from apim.inference.compare import distinguishability_test
from apim.inference.effect_sizes import pseudo_r2
from apim.inference.patterns import dyadic_patterns
from apim.inference.robustness import within_dyad_fixed_effects
from apim.inference.slopes import simple_slopes
from apim.inference.wald import wald_test
from apim.report.figures import path_diagram
from apim.simulation.simulate import SimulationSpec, simulate, true_effects

# %% [markdown]
# ## The design and the pattern
#
# Pairs are (patient, therapist). `partner_within = (0, 0.20)`: the therapist's alliance
# does not move the patient's outcome, the patient's alliance moves the therapist's.
# Mean alliance (`*_between`) has actor effects only. In AFT (treatment = 1) the
# therapist's actor effect within is 0.15 larger.

# %%
truth = SimulationSpec(
    n_dyads=241, n_sessions=30, caseload=6,
    actor_within=(0.35, 0.30), partner_within=(0.0, 0.20),
    actor_between=(0.50, 0.50), partner_between=(0.0, 0.0),
    treatment_actor_within=(0.0, 0.15),
    dropout=0.03, missing=0.03)
sim = simulate(truth, seed=2016)
frame = sim.frame.rename(columns={"x": "alliance", "y": "outcome"})
frame["treatment"] = pd.Categorical(np.where(frame["treatment"] == 1, "AFT", "CBT"),
                                    categories=["CBT", "AFT"])
data = sim.replace(frame)
pd.set_option("display.width", 120)
pd.set_option("display.max_columns", 20)
expected = {name.replace("treatment", "treatment[AFT]"): value
            for name, value in true_effects(truth, predictor="alliance").items()}
print(data.report(["alliance", "outcome"]))

# %% [markdown]
# Dropout after session 3 and single missing ratings make the data unbalanced, as real
# process data are; the report says which rows a dyadic fit cannot use and why.
#
# ## Within/between decomposition
#
# Each person's alliance splits into their mean over sessions (centred on the role's mean:
# *between*) and the session's deviation from it (*within*). The partner's parts sit
# beside them.

# %%
parts = apim.decompose(data, ["alliance"]).components
print(parts[["alliance_within", "alliance_between", "alliance_within_partner",
             "alliance_between_partner"]].describe().round(3))

# %%
fig, ax = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
for k, role in enumerate(data.roles):
    for dyad in (1, 2, 3, 4):
        rows = frame[(frame["dyad"] == dyad) & (frame["role"] == role)]
        ax[k].plot(rows["session"], rows["alliance"], marker=".", lw=1, label=f"dyad {dyad}")
    ax[k].set_title(f"{role}-rated alliance")
    ax[k].set_xlabel("session")
ax[0].set_ylabel("alliance")
ax[1].legend(frameon=False, fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The distinguishable APIM
#
# Two intercepts; actor and partner effects per outcome role at the within and between
# level; correlated random intercepts of the two members; role-specific residual
# variances and the partners' same-session residual correlation.

# %%
spec = apim.APIMSpec(outcome="outcome", predictors=("alliance",))
result = apim.fit(data, spec)
print(result.summary())

# %% [markdown]
# ### In the paper's style: b (SE) per outcome, with the true value beside it
#
# A model without the treatment interaction estimates each effect averaged over the two
# arms: the therapist's actor effect within is then 0.30 + 0.15 × (share of AFT sessions).

# %%
effects = result.effects
aft_share = (frame.loc[frame["outcome"].notna(), "treatment"] == "AFT").mean()
marginal = {term: value + aft_share * expected.get(f"{term}|treatment[AFT]", 0.0)
            for term, value in expected.items()}
table = pd.DataFrame({
    f"{role} outcome": [f"{effects.loc[f'{role}.{e}.{lev}.alliance', 'estimate']:.3f} "
                        f"({effects.loc[f'{role}.{e}.{lev}.alliance', 'se']:.3f})"
                        for e, lev in (("actor", "within"), ("partner", "within"),
                                       ("actor", "between"), ("partner", "between"))]
    for role in data.roles} | {
    f"truth ({role})": [round(marginal[f"{role}.{e}.{lev}.alliance"], 3)
                        for e, lev in (("actor", "within"), ("partner", "within"),
                                       ("actor", "between"), ("partner", "between"))]
    for role in data.roles},
    index=["actor within", "partner within", "actor between", "partner between"])
print(table)

# every estimate lies within 3.5 standard errors of the value it was simulated with
for term, row in effects.iterrows():
    assert abs(row["estimate"] - marginal[term]) < 3.5 * row["se"], term

# %% [markdown]
# ### The APA table
#
# `apim.report.effects_table` gives the table a manuscript needs (also `.to_latex()`,
# `.to_html()`, and Word with `apim.report.docx.to_docx`); its note states the reference
# role, the centring, the df method and the rows not used.

# %%
apa = apim.report.effects_table(result)
print(apa.to_markdown())
shown = apa.frame.set_axis([" ".join(c).strip() if isinstance(c, tuple) else c
                            for c in apa.frame.columns], axis=1)
row = shown[shown["Effect"] == "Partner alliance (within-person)"].iloc[1]  # therapist's
printed = f"{effects.loc['therapist.partner.within.alliance', 'estimate']:.2f}"
assert row["b"] == printed.replace("-", "\N{MINUS SIGN}")  # APA tables print a true minus
assert "patient (reference)" in " ".join(apa.notes)

# %% [markdown]
# The pattern is recovered: the patient's within-person alliance predicts the patient's
# outcome (actor) and the therapist's (partner); the therapist's within-person alliance
# predicts only the therapist's own outcome; mean alliance has actor effects only.

# %%
assert effects.loc["therapist.partner.within.alliance", "p"] < 0.001  # patient -> therapist
assert effects.loc["patient.partner.within.alliance", "p"] > 0.01     # therapist -/-> patient
print(wald_test(result, "patient.actor.within = therapist.actor.within"))
print(distinguishability_test(data, spec))
print(dyadic_patterns(result).round(3).to_string(index=False))
print(pseudo_r2(result).round(3).to_string(index=False))

# %% [markdown]
# ### The path diagram
#
# Actor (horizontal) and partner (diagonal) arrows per level with their estimates; solid
# arrows are significant at .05; k = partner / actor per outcome role with its interval.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
for ax, level in zip(axes, ("within", "between")):
    path_diagram(result, level=level, ax=ax)
plt.show()

# %% [markdown]
# ## Actor × partner
#
# Does a session go better when *both* members rate the alliance above their own
# average? The truth has no such interaction, and the estimates agree.

# %%
both = apim.fit(data, spec.replace(interaction=True))
inter = both.effects.query("effect == 'actor_x_partner'")
print(inter[["outcome_role", "level", "estimate", "se", "p"]].round(3))
for term, row in inter.iterrows():
    assert abs(row["estimate"] - marginal[term]) < 3.5 * row["se"], term

# %% [markdown]
# ## Treatment moderation
#
# Every actor and partner effect is allowed to differ between CBT (the reference) and AFT; simple
# slopes give each arm's effect.

# %%
moderated = apim.fit(data, spec.replace(moderators=("treatment",)))
mod = moderated.effects
by_arm = mod[mod["by"] != ""][["outcome_role", "effect", "level", "estimate", "se", "p"]]
print(by_arm.round(3))
slopes = simple_slopes(moderated, "therapist.actor.within", "treatment[AFT]")
print(slopes.round(3))
key = "therapist.actor.within.alliance|treatment[AFT]"
assert abs(mod.loc[key, "estimate"] - 0.15) < 3.5 * mod.loc[key, "se"]
assert mod.loc[key, "p"] < 0.05
for term, row in mod.iterrows():  # every effect of the moderated model, against the truth
    assert abs(row["estimate"] - expected[term]) < 3.5 * row["se"], term

# %%
fig, ax = plt.subplots(figsize=(5, 3.5))
grid = np.linspace(-1, 1, 21)
for arm, name in ((0.0, "CBT"), (1.0, "AFT")):
    row = slopes[slopes["at"] == arm].iloc[0]
    centre = mod.loc["therapist.intercept", "estimate"] + arm * mod.loc[
        "therapist.moderator.none.treatment[AFT]", "estimate"]
    ax.plot(grid, centre + row["slope"] * grid, label=f"{name}: slope {row['slope']:.2f}")
    ax.fill_between(grid, centre + row["ci_low"] * grid, centre + row["ci_high"] * grid,
                    alpha=0.2)
ax.set_xlabel("therapist's alliance, deviation from own mean")
ax.set_ylabel("therapist's session outcome")
ax.legend(frameon=False)
fig.tight_layout()
plt.show()

# %% [markdown]
# The moderated model's APA table names its reference arm (CBT, the first category of the
# data's declared order; `reference={"treatment": "CBT"}` would set it explicitly), so a
# reader knows the `× treatment` rows are AFT minus CBT.

# %%
moderated_table = apim.report.effects_table(moderated)
print(moderated_table.to_markdown())
assert "reference category CBT" in " ".join(moderated_table.notes)

# %% [markdown]
# ## The report
#
# `apim.fit_report` writes one self-contained HTML file (data report, model, tables, k,
# figures, the rows not used and why, warnings) that opens offline and can be mailed;
# `apim report` does the same from the command line. Here it goes to a temporary folder.

# %%
report_path = os.path.join(tempfile.mkdtemp(), "seed_study.html")
text = apim.fit_report(moderated, report_path)
print(f"wrote {report_path}: {os.path.getsize(report_path) / 1e6:.1f} MB")
assert "Fixed effects" in text and "Path diagram" in text and "Simple slopes" in text
assert "Rows not used" in text

# %% [markdown]
# ## Robustness: dyad fixed effects
#
# The within-dyad effects do not depend on the random-effects assumptions: fixed effects
# per dyad with dyad-clustered standard errors give nearly the same within estimates.

# %%
fe = within_dyad_fixed_effects(result)
print(fe.round(3).to_string(index=False))

# %% [markdown]
# ## Interpretation
#
# Session by session, when a patient rates the alliance higher than usual, both the
# patient and the therapist report a better session; when the therapist rates it higher
# than usual, only the therapist does. Patients (and therapists) with a stronger alliance
# on average report better sessions on average, but their partners do not. In the
# alliance-focused arm the therapist's own alliance–outcome link is stronger, as the
# treatment targets it. With 241 dyads and 30 sessions each effect of the simulated size
# is detected, and the estimates lie within their sampling error of the truth.
