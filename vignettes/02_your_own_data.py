# %% [markdown]
# # 2. Your own data: an SPSS file, validation and the data report
#
# Process data usually arrive as an SPSS (`.sav`), Stata, Excel or CSV file, one row per
# dyad × session × member ("long"), one row per dyad × session with a column per member
# ("wide"), or in Kenny's pairwise layout. This vignette writes the bundled example as an
# SPSS file with value labels (as a research assistant would), reads it back, shows what
# validation catches, reads the data report, and fits the APIM — with the same numbers as
# from the original CSV.

# %%
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

import apim
from apim import SessionData
from apim.datasets import alliance_path
from apim.errors import DataError

pd.set_option("display.width", 120)
folder = Path(tempfile.mkdtemp())

# %% [markdown]
# ## An SPSS file with value labels
#
# Role and treatment are stored as numeric codes with value labels, the usual SPSS way.

# %%
original = pd.read_csv(alliance_path())
spss = original.assign(role=original["role"].map({"patient": 1, "therapist": 2}),
                       treatment=original["treatment"].map({"CBT": 0, "AFT": 1}))
path = folder / "alliance.sav"
pyreadstat.write_sav(
    spss, path,
    column_labels={"alliance": "WAI-SR item mean (1-7)", "outcome": "session outcome (1-7)"},
    variable_value_labels={"role": {1: "patient", 2: "therapist"},
                           "treatment": {0: "CBT", 1: "AFT"}})
print(path.name, path.stat().st_size, "bytes")

# %% [markdown]
# ## Reading it
#
# Columns are mapped by name. Value labels become the role names; `roles=` fixes the
# order (the first is the reference).

# %%
data = SessionData.from_long(path, dyad="dyad", session="session", role="role",
                             therapist="therapist", roles=("patient", "therapist"))
print(data.roles, data.n_dyads, "dyads,", len(data.frame), "rows")
# the values read back are the values written
back = data.to_long()[["dyad", "session", "alliance", "outcome"]].reset_index(drop=True)
assert np.allclose(back.fillna(-1).to_numpy(float),
                   original[["dyad", "session", "alliance", "outcome"]].fillna(-1)
                   .to_numpy(float))

# %% [markdown]
# ## What validation catches
#
# Errors name the column, the value and the rows, and say what to do. Three common
# mistakes: a duplicated row, a session number typed as text, a misspelt column.

# %%
broken = spss.copy()
broken = pd.concat([broken, broken.iloc[[10]]], ignore_index=True)
for label, frame, mapping in (
        ("duplicate row", broken, {}),
        ("session as text", spss.assign(session=spss["session"].astype(str)
                                        .replace({"3": "3rd"})), {}),
        ("misspelt column", spss, {"dyad": "dyad_id"})):
    bad = folder / f"{label.replace(' ', '_')}.csv"
    frame.to_csv(bad, index=False)
    columns = {"dyad": "dyad", "session": "session", "role": "role",
               "therapist": "therapist"} | mapping
    try:
        SessionData.from_long(bad, **columns)
    except DataError as error:
        print(f"{label}: {error}")
    else:
        raise AssertionError(f"{label} was not caught")

# %% [markdown]
# ## The data report
#
# What is in the data, how many sessions per dyad, what is missing per role, and which
# rows a dyadic fit would not use and why. Nothing is dropped silently.

# %%
report = data.report(["alliance", "outcome"])
print(report)
assert report.n_dyads == 240 and report.n_therapists == 40

# %% [markdown]
# ## Fitting
#
# Say which treatment arm is the reference. SPSS codes stay numbers (apim applies value
# labels only to the role column, so a Likert item is never turned into text), and a 0/1
# moderator would be named `treatment[1]`; a categorical moderator is dummy coded against
# its first category. Here the codes get their labels, with CBT the reference, as in the
# bundled data.

# %%
print(data.frame["treatment"].dtype, sorted(data.frame["treatment"].unique()))
arm = pd.Categorical(data.frame["treatment"].map({0: "CBT", 1: "AFT"}),
                     categories=["CBT", "AFT"])
data = data.replace(data.frame.assign(treatment=arm))

# %% [markdown]
# The fit from the SPSS file then equals the fit from the CSV bit for bit, and the rows it
# did not use are listed with their reasons.

# %%
spec = apim.APIMSpec("outcome", ("alliance",), moderators=("treatment",))
from_spss = apim.fit(data, spec)
from_csv = apim.fit(apim.load_alliance(), spec)
print(from_spss.summary())
print(from_spss.dropped.groupby("reason").size())
pd.testing.assert_series_equal(from_spss.effects["estimate"], from_csv.effects["estimate"])
assert from_spss.statistics.loglik == from_csv.statistics.loglik

# %% [markdown]
# The same in other layouts: `data.to_wide()` (a row per dyad and session) and
# `data.to_pairwise()` (Kenny's layout) convert losslessly, and `SessionData.from_wide` /
# `from_pairwise` read them.

# %%
wide = data.to_wide()
print(wide.head(3).T.head(10))
again = SessionData.from_wide(wide, dyad="dyad", session="session", therapist="therapist",
                              roles=("patient", "therapist"))
assert len(again.frame) == len(data.frame)
