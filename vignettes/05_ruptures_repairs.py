# %% [markdown]
# # 5. Ruptures and repairs, and their relation to session outcome
#
# Alliance ruptures are sessions where a member's alliance drops markedly; a repair is
# the return to the pre-drop level within a few sessions (Eubanks, Muran & Safran, 2018).
# `apim.detect_ruptures` finds them in *both* members' session-by-session ratings, and
# `apim.add_rupture_flags` turns them into session-level columns that enter an APIM like
# any other predictor.
#
# With real data there is no truth to compare with, so this vignette plants ruptures with
# known onsets into simulated alliance series and builds the session outcome from the
# rupture flags with known actor and partner effects. It then checks that (1) the planted
# ruptures are found, (2) their repairs are found, and (3) the APIM recovers the effects.

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np

import apim
from apim.analyses.ruptures import RuptureSpec, detect_ruptures

truth = apim.SimulationSpec(n_dyads=150, n_sessions=20)
data = apim.simulate(truth, seed=2018)
frame = data.to_long().rename(columns={"x": "alliance", "y": "outcome"})

# %% [markdown]
# ## Planting ruptures
#
# In 50 patients and 40 therapists, chosen at random, the alliance drops by 3.5 points at
# a random session between 5 and 14 and stays down for two sessions (a "V"); in a further
# 15 patients it stays down for the rest of treatment (an unrepaired rupture).

# %%
rng = np.random.default_rng(5)
dyads = frame["dyad"].unique()
planted = []  # (dyad, role, onset, repaired)
for role, n_v, n_flat in (("patient", 50, 15), ("therapist", 40, 0)):
    chosen = rng.choice(dyads, n_v + n_flat, replace=False)
    for j, dyad in enumerate(chosen):
        onset = int(rng.integers(5, 15))
        repaired = j < n_v
        last = onset + 1 if repaired else truth.n_sessions
        rows = ((frame["dyad"] == dyad) & (frame["role"] == role)
                & frame["session"].between(onset, last))
        frame.loc[rows, "alliance"] -= 3.5
        planted.append((dyad, role, onset, repaired))
data = apim.SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                  roles=("patient", "therapist"), therapist="therapist")

# %% [markdown]
# ## Detecting them
#
# A rupture is a drop of at least two sample SDs of the role's ratings from the member's
# previous rated session; it is repaired when the rating comes back to within 0.8 points
# of the pre-drop level within three sessions.

# %%
spec = RuptureSpec(k=2, sd="sample", window=3, tolerance=0.8)
result = detect_ruptures(data, "alliance", spec)
episodes = result.episodes
print(episodes.head())
print(result.dyads["pattern"].value_counts())

found = episodes.set_index(["dyad", "role", "onset"])
hits = [(d, r, t) in found.index for d, r, t, _ in planted]
recall = float(np.mean(hits))
repaired_found = [bool(found.loc[(d, r, t), "repaired"]) == rep
                  for (d, r, t, rep), hit in zip(planted, hits) if hit]
extra = len(episodes) - sum(hits)
print(f"planted ruptures found: {recall:.1%}; repair status right in "
      f"{np.mean(repaired_found):.1%}; episodes not planted: {extra}")
assert recall >= 0.95
assert np.mean(repaired_found) >= 0.85
assert extra <= 0.1 * len(planted)

# %%
# The first planted dyad: the patient's V (onset marked, repaired where the star is).
figure = result.plot(planted[0][0])
plt.show()

# %% [markdown]
# ## Ruptures and session outcome
#
# The outcome of each member is now lowered by 0.6 in the sessions when they are in
# rupture (actor effect) and by 0.3 in the sessions when their partner is (partner
# effect). With the flags as the APIM's predictor, the within-person actor and partner
# effects of `in_rupture` estimate these two numbers for each role.

#
# apim warns when a predictor's person means are unreliable: here the share of sessions
# each person spent in rupture, from 20 sessions of a rare 0/1 flag (reliability about
# .5). That concerns the *between-person* effects of `in_rupture` (pulled toward the
# within effects; `LatentAPIMSpec` would model latent person means), which this vignette
# does not interpret: the planted effects are within-person. The fits below record their
# warnings, print them, and check that this is the only one.

# %%
flagged = apim.add_rupture_flags(data, result, lags=(1,))
f = flagged.frame
f["outcome"] = f["outcome"] - 0.6 * f["in_rupture"] - 0.3 * f["in_rupture_partner"]
flagged = flagged.replace(f)


def fit_and_show_warnings(spec):
    """Fit, print each warning once, and check it is the expected one."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = apim.fit(flagged, spec)
    for message in dict.fromkeys(str(w.message) for w in caught):
        print("warning:", message)
        assert "person means of 'in_rupture' are unreliable" in message
    return fitted


fit = fit_and_show_warnings(apim.APIMSpec("outcome", ("in_rupture",)))
effects = fit.effects
print(effects.loc[effects["level"] == "within",
                  ["estimate", "se", "ci_low", "ci_high"]].round(3))
for role in ("patient", "therapist"):
    for effect, value in (("actor", -0.6), ("partner", -0.3)):
        row = effects.loc[f"{role}.{effect}.within.in_rupture"]
        assert row["ci_low"] < value < row["ci_high"], (role, effect, row["estimate"])

# %% [markdown]
# A rupture in the *previous* session enters the same way, as a covariate
# (`covariates=("in_rupture_lag1", "in_rupture_lag1_partner")`). Here the outcome does
# not depend on it: the joint Wald test of its four effects should not reject, and the
# same-session effects stay where they were.

# %%
lagged = fit_and_show_warnings(apim.APIMSpec(
    "outcome", ("in_rupture",), covariates=("in_rupture_lag1", "in_rupture_lag1_partner")))
covariates = lagged.effects[lagged.effects["effect"] == "covariate"]
print(covariates[["estimate", "se", "p"]].round(3))
joint = apim.wald_test(lagged, "; ".join(f"{name} = 0" for name in covariates.index))
print(joint)
assert joint.p > 0.01
for role in ("patient", "therapist"):
    row = lagged.effects.loc[f"{role}.actor.within.in_rupture"]
    assert row["ci_low"] < -0.6 < row["ci_high"]
