"""Batch analysis plans: a TOML file of data sets and analyses, run as one unit.

>>> from apim.plan import Plan, run_plan, check_plan, example_plan
>>> len(Plan.from_text(example_plan()).analyses) >= 12
True

See :mod:`apim.plan.spec` for the file format, :mod:`apim.plan.kinds` for the model kinds
(observed-mean, latent, generalized, dynamic; out of core), :mod:`apim.plan.filters` for
subsets and :mod:`apim.plan.run` for outputs, keys and resumption.
"""

from apim.plan.example import example_plan
from apim.plan.filters import Filter
from apim.plan.run import PlanResult, check_plan, default_out, run_plan
from apim.plan.spec import Analysis, DataSource, Plan

__all__ = ["Plan", "Analysis", "DataSource", "Filter", "run_plan", "check_plan",
           "PlanResult", "default_out", "example_plan"]
