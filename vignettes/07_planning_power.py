# %% [markdown]
# # 7. Planning a study: power by simulation
#
# How many dyads, and how many sessions each, does a study need to detect a within-person
# partner effect of the alliance (the patient's session-to-session alliance changes
# moving the therapist's outcome)? `apim.power` simulates data sets under a full APIM
# (`SimulationSpec`), fits the analysis model to each and counts how often the effect is
# significant; every grid point × replicate has its own seed, so results do not depend on
# the number of workers.
#
# **What this vignette checks, and how it could fail.** The Monte Carlo power is compared
# with a closed-form power computed from the data-generating process alone (no apim fit
# enters it), at every design of the grid, within a two-sided bound of three binomial
# standard errors; the standard error apim reports is compared with the closed-form one;
# and under the null hypothesis the rejection rate must lie inside the two-sided 99%
# binomial interval around 5% (a test that never rejects fails it, as does one that
# rejects too often). The replicates (120 per design, 300 under the null) keep the vignette
# to well under a minute; plan with 1,000 or more (`n_jobs` and a Dask `scheduler` spread
# them; `apim power` does the same from the command line).

# %%
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

import apim
from apim.simulation.power import power
from apim.simulation.simulate import SimulationSpec, simulate

truth = SimulationSpec(n_dyads=40, n_sessions=8, caseload=0,
                       partner_within=(0.10, 0.10), x_phi=0.3)
analysis = apim.APIMSpec("y", ("x",))
effect = "therapist.partner.within"

# %% [markdown]
# ## The closed form
#
# The alliance's within-person part follows an AR(1) process with autocorrelation φ and
# standard deviation `x_within_sd`, the two members' parts correlated ρ at the same
# session; the outcome's residuals are independent over sessions (`residual_phi` 0) with
# SD σ for the therapist. Within-person parts are deviations from each person's mean, so
# they are orthogonal to everything that is constant within a dyad (intercepts, between
# parts, random intercepts), and both outcome roles use the same two within parts: the
# within estimates are those of a regression on the deviations, whose expected cross
# products per person are `k_T · Γ`, with Γ the members' 2 × 2 within covariance and
#
#     k_T = T − (1/T) Σ_s Σ_t φ^|s−t|
#
# (the expected sum of squared deviations from a person's mean of T sessions of an AR(1)
# series of unit variance). So, for n dyads,
#
#     SE(partner effect) = σ / sqrt(n · k_T · sd_partner² · (1 − ρ²))
#
# and the two-sided test at α = .05 rejects with probability
# `1 − Φ(z − b/SE) + Φ(−z − b/SE)`.

# %%
z = stats.norm.ppf(0.975)
b = truth.partner_within[1]
sigma = truth.residual_sd[1]            # the therapist's outcome residual SD
sd_partner = truth.x_within_sd[0]       # the patient's within-person alliance SD
rho, phi, T = truth.x_within_cor, truth.x_phi, truth.n_sessions
k_T = T - (T + 2 * sum((T - lag) * phi ** lag for lag in range(1, T))) / T


def closed_form_se(n_dyads):
    return sigma / np.sqrt(n_dyads * k_T * sd_partner ** 2 * (1 - rho ** 2))


def closed_form_power(n_dyads):
    ratio = b / closed_form_se(n_dyads)
    return 1 - stats.norm.cdf(z - ratio) + stats.norm.cdf(-z - ratio)


needed = int(np.ceil((z + stats.norm.ppf(0.8)) ** 2 * closed_form_se(1) ** 2 / b ** 2))
print(f"k_T = {k_T:.3f}; SE with 40 dyads {closed_form_se(40):.4f}; "
      f"80% power needs {needed} dyads of {T} sessions")

# %% [markdown]
# apim's standard error in one large simulated study agrees with the closed form (the
# check would fail if apim's SEs were off by more than 5%):

# %%
large = apim.fit(simulate(truth.replace(n_dyads=400), seed=1), analysis)
se_apim = large.effects.loc[f"{effect}.x", "se"]
print(f"400 dyads: apim SE {se_apim:.4f}, closed form {closed_form_se(400):.4f}")
assert abs(se_apim / closed_form_se(400) - 1) < 0.05

# %% [markdown]
# ## Monte Carlo power over a grid of designs
#
# The grid includes the size the closed form says gives 80% power.

# %%
replicates = 120
result = power(truth, analysis, effect, grid={"n_dyads": [20, 50, needed]},
               replicates=replicates, seed=7, progress=False)
table = result.table.assign(closed_form=[closed_form_power(n)
                                         for n in result.table["n_dyads"]])
binomial_se = np.sqrt(table["closed_form"] * (1 - table["closed_form"]) / replicates)
table = table.assign(low=table["closed_form"] - 3 * binomial_se - 0.02,
                     high=table["closed_form"] + 3 * binomial_se + 0.02)
print(table[["n_dyads", "n_sessions", "power", "mcse", "closed_form", "low", "high"]]
      .round(3).to_string(index=False))
assert (table["failed"] == 0).all() and (table["not_converged"] == 0).all()
# two-sided: the Monte Carlo power must lie within 3 binomial SEs of the closed form (plus
# 0.02 for the normal approximation behind the closed form)
assert table["power"].between(table["low"], table["high"]).all()

# %% [markdown]
# ## Under the null hypothesis
#
# With no partner effect, "power" is the type I error rate; the test is right when it
# lies inside the two-sided 99% interval of a binomial proportion of 5% over the
# replicates.

# %%
null_replicates = 300
null = power(truth.replace(partner_within=(0.0, 0.0), n_dyads=20), analysis, effect,
             replicates=null_replicates, seed=8, progress=False)
rate = null.table["power"].iloc[0]
low, high = (stats.binom.ppf([0.005, 0.995], null_replicates, 0.05) / null_replicates)
print(f"type I error {rate:.3f} (99% interval for a 5% test: {low:.3f} to {high:.3f})")
assert low <= rate <= high

# %%
ax = result.plot(x="n_dyads", by=None)
ax.get_lines()[0].set_label(f"Monte Carlo ({replicates} replicates)")
grid = np.linspace(15, needed * 1.1, 100)
ax.plot(grid, [closed_form_power(n) for n in grid], ls="--", color="black",
        label="closed form")
ax.legend(frameon=False)
plt.show()

# %% [markdown]
# The simulation and the closed form agree for this simple design. Simulation earns its
# keep where no closed form exists: missing sessions and dropout, random slopes, AR(1)
# residuals, therapists, or moderated effects (`apim power --set dropout=0.05 ...`). More
# sessions per dyad help within-person effects too: add `"n_sessions": [8, 15, 30]` to the
# grid to see by how much.
