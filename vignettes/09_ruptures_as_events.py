# %% [markdown]
# # 9. Ruptures as events: a binary APIM of their occurrence
#
# A rupture is an event: it happens in a session or it does not. Its occurrence is a 0/1
# outcome per member and session, and the question of a dyadic study is the same as for a
# rating: does a member's own alliance (actor) and the partner's alliance (partner), at the
# within-person and the between-person level, predict it? `apim.fit` with a
# `GeneralizedAPIMSpec` (on the command line `apim fit ... --family binomial`) fits that
# model: the Gaussian APIM's within/between design, a logit (or probit) link, and the
# dyad's two correlated random intercepts integrated out by adaptive Gauss-Hermite
# quadrature (7 points per dimension by default; `nagq=1` is the Laplace approximation).
#
# Part 1 checks the model against simulation truth: events generated with known actor and
# partner effects are recovered. Part 2 runs the whole pipeline on the bundled alliance
# data: `apim ruptures --flags` (here `detect_ruptures` and `add_rupture_flags`) finds the
# ruptures, and the binary APIM relates their onset to both members' session outcome of
# the session before. Part 3 plans a study: the power to detect a partner effect on
# rupture occurrence at a few numbers of dyads (`apim.power` with a binary
# `SimulationSpec`; on the command line `apim power --family binomial`).

# %%
import numpy as np

import apim
from apim.analyses.ruptures import RuptureSpec, detect_ruptures
from apim.model.generalized_spec import GeneralizedAPIMSpec
from apim.simulation.power import power
from apim.simulation.simulate import true_effects

# %% [markdown]
# ## 1. Simulation truth
#
# Alliance series for 200 dyads x 10 sessions from `apim.simulate`; each member's event
# probability at a session follows a logit APIM of the within- and between-person parts
# of both members' alliance, with random intercepts per member (SDs 1 and 0.8, correlation
# 0.4).

# %%
rng = np.random.default_rng(21)
data = apim.simulate(apim.SimulationSpec(n_dyads=200, n_sessions=10), seed=21)
frame = data.to_long().rename(columns={"x": "alliance"})
parts = apim.decompose(apim.SessionData.from_long(
    frame, dyad="dyad", session="session", role="role"), ["alliance"]).components
truth = {"actor.within": -0.8, "partner.within": -0.5, "actor.between": -0.6,
         "partner.between": -0.3}
u = rng.normal(size=(200, 2)) @ np.linalg.cholesky([[1.0, 0.32], [0.32, 0.64]]).T
member = (frame["role"] == "therapist").to_numpy(int)
eta = (-1.0 + truth["actor.within"] * parts["alliance_within"]
       + truth["partner.within"] * parts["alliance_within_partner"]
       + truth["actor.between"] * parts["alliance_between"]
       + truth["partner.between"] * parts["alliance_between_partner"]
       + u[frame["dyad"].to_numpy() - 1, member])
frame["event"] = (rng.random(len(frame)) < 1 / (1 + np.exp(-eta))).astype(int)
events = apim.SessionData.from_long(frame, dyad="dyad", session="session", role="role")
result = apim.fit(events, GeneralizedAPIMSpec("event", ("alliance",), family="binomial"))
print(result.summary())

# %% [markdown]
# Every true effect lies in its 95% confidence interval, and the average marginal effects
# say how much a one-point higher within-person alliance changes the probability of an
# event (for a dyad with average random intercepts).

# %%
effects = result.effects
for role in ("patient", "therapist"):
    for name, value in truth.items():
        row = effects.loc[f"{role}.{name}.alliance"]
        assert row["ci_low"] < value < row["ci_high"], (role, name, row["estimate"])
ame = result.marginal_effects.set_index("term")
print(ame[["ame", "se", "ci_low", "ci_high"]].round(3))
assert (ame.loc[ame.index.str.contains("within"), "ame"] < 0).all()

# %% [markdown]
# With 10 sessions per dyad the Laplace approximation is close to quadrature but not
# equal to it; quadrature's log-likelihood is the more accurate one (the engine's tests
# compare it with a dense 60-point grid to 1e-6).

# %%
laplace = apim.fit(events, GeneralizedAPIMSpec("event", ("alliance",), nagq=1))
print(f"logLik: Laplace {laplace.statistics.loglik:.3f}, "
      f"quadrature (7 x 7 points) {result.statistics.loglik:.3f}")
assert abs(laplace.statistics.loglik - result.statistics.loglik) < 5

# %% [markdown]
# ## 2. The pipeline on the bundled alliance data
#
# Ruptures: a drop of at least one sample SD of the role's alliance ratings from the
# member's previous rated session (vignette 5 uses two SDs, which leaves only 10 onsets in
# these data: far too few events for 8 fixed effects, and the fit warns about it). The
# onset flag of session t is the outcome; the predictors are both members' session
# outcome (within and between) of the session before (`lag=1`). No truth is known here:
# the table is what a researcher would report.

# %%
alliance = apim.load_alliance()
ruptures = detect_ruptures(alliance, "alliance", RuptureSpec(k=1, sd="sample"))
flagged = apim.add_rupture_flags(alliance, ruptures, lags=())
onsets = flagged.frame["rupture_onset"]
print(f"{int(onsets.sum())} rupture onsets in {int(onsets.notna().sum())} rated sessions")
assert onsets.sum() > 10 * 8  # at least 10 events per fixed effect
onset_model = apim.fit(flagged, GeneralizedAPIMSpec(
    "rupture_onset", ("outcome",), decomposition=apim.DecompositionSpec(lag=1)))
print(onset_model.summary())
assert onset_model.statistics.converged
assert (onset_model.effects["se"] < 1).all()  # no separation-like blow-up

# %% [markdown]
# The random intercepts' SDs are estimated at zero (and reported as boundary estimates):
# once both members' session outcome is in the model, onsets defined by this rule do not
# cluster in dyads beyond what chance gives. The actor within-person effects are positive:
# a session whose outcome was better than the member's own average is more often followed
# by a drop in alliance (with a drop rule, partly a return toward the member's mean).

# %%
print(onset_model.variance)
assert all(p.at_boundary for p in onset_model.parameters) == bool(onset_model.boundary)

# %% [markdown]
# ## 3. Power to detect a partner effect on rupture occurrence
#
# `SimulationSpec(family="binomial")` draws each member's event at a session from the
# same APIM linear predictor as a Gaussian outcome, without the residual: `P(event) =
# F(eta)` with the intercept as the log-odds of an event at average alliance (here -1.5,
# about 18% of sessions) and the dyad's two random intercepts. The question: how many
# dyads (10 sessions each) does a study need to detect that a patient's rupture is less
# likely when the therapist's alliance is higher than usual (partner within effect -0.5
# on the log-odds)? Each replicate is simulated, fitted by the binary APIM (`nagq=1`,
# the Laplace approximation, to keep it quick) and the partner effect's z test is read.
# Ten replicates per design keep this vignette fast; a real planning run uses 500 or
# more (Monte Carlo SE of a power near 0.8 then 0.018) with `n_jobs` workers, a
# `checkpoint` folder to resume from, or a Dask `scheduler`.

# %%
events_truth = apim.SimulationSpec(
    n_dyads=40, n_sessions=10, caseload=0, family="binomial", intercept=(-1.5, -1.5),
    actor_within=(-0.8, -0.8), partner_within=(-0.5, -0.5), actor_between=(-0.6, -0.6),
    partner_between=(-0.3, -0.3), intercept_sd=(0.8, 0.8), intercept_cor=0.4)
print("true partner within effect (log-odds):",
      true_effects(events_truth)["patient.partner.within.x"])
planned = power(events_truth, GeneralizedAPIMSpec("y", ("x",), nagq=1),
                "patient.partner.within", grid={"n_dyads": [40, 120]}, replicates=10,
                seed=9, progress=False)
print(planned.table.round(3).to_string(index=False))
print(f"{planned.seconds:.1f} s for {int(planned.table['replicates'].sum())} fits")
assert (planned.table["replicates"] == 10).all()  # every replicate fitted and converged
assert (planned.table["mean_estimate"] < 0).all()  # the estimates carry the true sign

# %% [markdown]
# With ten replicates the powers are rough (Monte Carlo SE up to 0.16), but the pattern
# is the one a full run gives: with 40 dyads the partner effect is missed more often
# than found, and the power grows with the number of dyads. The mean estimate is on the
# log-odds scale, near the true -0.5.
