"""``apim batch --example``: a commented plan of 14 analyses on the bundled data.

Examples
--------
>>> from apim.plan.spec import Plan
>>> plan = Plan.from_text(example_plan())
>>> len(plan.analyses)
14
"""

from __future__ import annotations

from apim.datasets import alliance_path

__all__ = ["example_plan"]

_TEMPLATE = '''# apim batch plan: 14 analyses of the bundled (simulated) alliance study.
# Run it:  apim batch --example > plan.toml && apim batch plan.toml
# Results: plan.results/ (effects.csv and .parquet, models.csv, analyses/ID.json,
#          manifest.json, index.html). A second run reuses what is done; --force refits.

[plan]
name = "alliance-example"
df = "satterthwaite"            # or "containment" (nlme's rule)
seed = 2024                     # recorded in the manifest

[data.alliance]                 # a data set: file and column mapping
file = "{path}"
dyad = "dyad"
session = "session"
role = "role"
roles = ["patient", "therapist"]   # reference role first
therapist = "therapist"
categories = {{treatment = ["CBT", "AFT"]}}   # the order of the arms (declared order)
# layout = "long"               # or "wide" / "pairwise"

[defaults]                      # shared by every analysis below
data = "alliance"
outcome = "outcome"
predictors = ["alliance"]       # a list of names is one value for list fields
method = "REML"
reference = {{treatment = "CBT"}}  # reference level of a moderator (as --reference
                                 # treatment=CBT and apim demo); used where it moderates

# A list expands: one analysis per value, and several lists multiply.
[[analysis]]
id = "main"                     # main-01 ... main-04
residual = ["un", "un-ar1"]     # same-session correlation, with or without AR(1)
moderators = [[], ["treatment"]]   # a list of lists for list fields: without / with

[[analysis]]
id = "arm"                      # arm-01 ... arm-04: each treatment arm on its own,
subset = ["treatment == 'CBT'", "treatment == 'AFT'"]   # subsets are filter expressions
center = ["person", "grand"]    # person-mean split, or grand-mean centring only

[[analysis]]
id = "lagged"                   # lagged-01, lagged-02: last session's alliance
lag = 1
residual = ["un", "diagonal"]    # correlated or independent same-session residuals

[[analysis]]
id = "three-level"              # dyads nested in therapists
center = "therapist"
therapist_level = true

[[analysis]]
id = "early"                    # the first ten sessions, actor x partner interaction
subset = "session <= 10"
interaction = true

[[analysis]]
id = "pooled"                   # indistinguishable dyads (effects pooled over roles)
distinguishable = false

[[analysis]]
id = "ml"                       # ML fit, e.g. for likelihood-ratio tests of fixed effects
method = "ML"
covariates = ["session"]
'''


def example_plan() -> str:
    """The example plan text, with the bundled data file's path filled in."""
    return _TEMPLATE.format(path=alliance_path().replace("\\\\", "/"))
