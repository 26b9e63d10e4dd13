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
# The replicates here are few so the vignette runs in seconds; plan with 1,000 or more
# (`n_jobs` and a Dask `scheduler` spread them; `apim power` does the same from the
# command line). The Monte Carlo power is checked against the normal approximation
# `1 − Φ(z − |b|/SE) + Φ(−z − |b|/SE)` with the SE from one large simulated data set of
# each design.

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

# %%
result = power(truth, analysis, effect, grid={"n_dyads": [20, 40, 80]}, replicates=40,
               seed=7, progress=False)
print(result.table.round(3).to_string(index=False))

# %% [markdown]
# ## Against the normal approximation
#
# The standard error of the effect shrinks with the square root of the number of dyads;
# one data set ten times larger than the design gives it precisely, and the analytic
# power follows.

# %%
big = apim.fit(simulate(truth.replace(n_dyads=400), seed=1), analysis)
se_400 = big.effects.loc[f"{effect}.x", "se"]
z = stats.norm.ppf(0.975)
b = truth.partner_within[1]
analytic = []
for n in result.table["n_dyads"]:
    se = se_400 * np.sqrt(400 / n)
    analytic.append(1 - stats.norm.cdf(z - b / se) + stats.norm.cdf(-z - b / se))
table = result.table.assign(analytic=analytic)
print(table[["n_dyads", "n_sessions", "power", "mcse", "analytic"]].round(3)
      .to_string(index=False))
# from 40 dyads on, the Monte Carlo power agrees with the approximation within its Monte
# Carlo error (3 MC SEs, at least 0.08 with only 40 replicates)
large = table[table["n_dyads"] >= 40]
assert (abs(large["power"] - large["analytic"]) < np.maximum(3 * large["mcse"], 0.08)).all()
assert (table["failed"] == 0).all()
assert table["power"].is_monotonic_increasing or table["power"].diff().min() > -0.1

# %% [markdown]
# With 20 dyads the approximation is too optimistic: the large-sample theory behind it
# does not yet hold (the estimate's standard error is itself uncertain, and the test is
# conservative). That is what simulation is for: it tells what the analysis will actually
# do with the design at hand.
#
# ## Under the null hypothesis
#
# With no partner effect, "power" is the type I error rate and should be near 5%.

# %%
null = power(truth.replace(partner_within=(0.0, 0.0)), analysis, effect, replicates=60,
             seed=8, progress=False)
print(null.table.round(3).to_string(index=False))
rate = null.table["power"].iloc[0]
assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 60)

# %%
ax = result.plot(x="n_dyads", by=None)
ax.plot(table["n_dyads"], table["analytic"], ls="--", color="black",
        label="normal approximation")
ax.legend(frameon=False)
plt.show()

# %% [markdown]
# How many dyads for 80% power? The approximation says:

# %%
needed = 400 * (se_400 * (z + stats.norm.ppf(0.8)) / b) ** 2
print(f"about {needed:.0f} dyads with 8 sessions each")
assert table.query("n_dyads == 80")["power"].iloc[0] < 0.8 or needed <= 80

# %% [markdown]
# A simulation at that size (with 1,000 replicates) confirms it before the study is run.
# More sessions per dyad help within-person effects too: add `"n_sessions": [8, 15, 30]`
# to the grid to see by how much.
