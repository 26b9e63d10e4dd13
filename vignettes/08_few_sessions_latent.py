# %% [markdown]
# # 8. Few sessions: observed versus latent between-person effects
#
# The between-person (trait-like) actor and partner effects of an APIM compare people
# with high and low *average* alliance. The usual estimate uses each person's observed
# mean over their sessions. With few sessions that mean is an unreliable measure of the
# person's level — its reliability is λ = τ²/(τ² + σ²/n), with τ² the between-person and
# σ² the within-person variance — and the between effect is pulled toward the within
# effect (Lüdtke et al., 2008). The latent model (`apim.LatentAPIMSpec`) treats the
# person's level as a latent variable instead, and reads the APIM coefficients at each
# level from the between- and within-dyad covariances of both members' alliance and
# outcome (as lavaan's two-level SEM does).
#
# This vignette simulates many studies with 5 sessions per dyad, where the within and
# between effects differ (.15 versus .50), and compares both estimators with the truth.

# %%
import numpy as np
import pandas as pd

import apim

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)

truth = apim.SimulationSpec(
    n_dyads=100, n_sessions=5, x_between_sd=(0.55, 0.55), x_within_sd=(0.84, 0.84),
    x_phi=0.0, actor_within=(0.15, 0.15), partner_within=(0.10, 0.10),
    actor_between=(0.50, 0.50), partner_between=(0.20, 0.20), residual_phi=0.0,
    outcome_from="latent")
# alliance ICC: .55² / (.55² + .84²) = .30; reliability of a 5-session mean:
icc = 0.55 ** 2 / (0.55 ** 2 + 0.84 ** 2)
print(f"ICC {icc:.2f}; reliability of a 5-session mean {5 * icc / (1 + 4 * icc):.2f}")

# %% [markdown]
# One study first: both estimators side by side, with the reliability of each role's
# person means that the latent fit reports (and the observed-mean fit warns about).

# %%
data = apim.simulate(truth, seed=1).to_long().rename(columns={"x": "alliance",
                                                              "y": "outcome"})
data = apim.SessionData.from_long(data, dyad="dyad", session="session", role="role",
                                  roles=("patient", "therapist"), therapist="therapist")
observed = apim.fit(data, apim.APIMSpec("outcome", ("alliance",)))  # warns: unreliable
latent = apim.fit(data, apim.LatentAPIMSpec("outcome", ("alliance",)))
print(apim.compare_between(observed, latent).round(3))
print(latent.reliability.round(3))

# %% [markdown]
# ## Many studies
#
# 200 simulated studies (the full study with 500 replicates per scenario, AR(1) and
# missing ratings is `benchmarks/latent_simulation.py`, results in
# `benchmarks/RESULTS.md`).

# %%
def one_study(seed):
    frame = apim.simulate(truth, seed).to_long().rename(columns={"x": "alliance",
                                                                  "y": "outcome"})
    sim = apim.SessionData.from_long(frame, dyad="dyad", session="session", role="role",
                                     roles=("patient", "therapist"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obs = apim.fit(sim, apim.APIMSpec("outcome", ("alliance",))).effects
        lat = apim.fit(sim, apim.LatentAPIMSpec("outcome", ("alliance",))).effects
    term = "patient.actor.between.alliance"
    return {"observed": obs.loc[term, "estimate"], "latent": lat.loc[term, "estimate"],
            "observed_covers": obs.loc[term, "ci_low"] < 0.5 < obs.loc[term, "ci_high"],
            "latent_covers": lat.loc[term, "ci_low"] < 0.5 < lat.loc[term, "ci_high"]}


outcomes = apim.parallel.run_jobs(one_study, list(range(200)), n_jobs=1, progress=False)
table = pd.DataFrame([o.value for o in outcomes if o.ok])
summary = pd.DataFrame({
    "mean estimate": [table["observed"].mean(), table["latent"].mean()],
    "relative bias": [table["observed"].mean() / 0.5 - 1, table["latent"].mean() / 0.5 - 1],
    "95% CI coverage": [table["observed_covers"].mean(), table["latent_covers"].mean()],
}, index=["observed means", "latent means"])
print(f"patient actor between effect, truth 0.50, {len(table)} studies")
print(summary.round(3))

# %% [markdown]
# The observed-mean estimate is pulled toward the within effect (.15) and its interval
# misses the truth far more often than 5% of the time; the latent estimate is close to
# the truth, with coverage near 95%.

# %%
mcse = table["latent"].std() / np.sqrt(len(table))
assert abs(table["latent"].mean() - 0.5) < 3 * mcse + 0.015
assert table["observed"].mean() < 0.5 - 0.05
assert 0.91 <= table["latent_covers"].mean() <= 0.99
assert table["observed_covers"].mean() < table["latent_covers"].mean()
