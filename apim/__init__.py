"""apim: actor-partner interdependence models for session-by-session dyadic data.

The names a researcher uses are importable from ``apim`` itself; the subpackages
(``apim.data``, ``apim.engine``, ``apim.model``, ``apim.inference``, ``apim.analyses``,
``apim.simulation``, ``apim.report``) load on first use, so ``import apim`` stays light.

Examples
--------
>>> import apim
>>> data = apim.load_alliance()
>>> parts = apim.decompose(data, ["alliance"])
>>> "alliance_within_partner" in parts.components
True
>>> apim.inference.wald.wald_test.__name__
'wald_test'
"""

from __future__ import annotations

import importlib
from typing import Any

from apim._version import __version__
from apim.data import DataReport, SessionData, read_table
from apim.model.centring import Decomposition, DecompositionSpec, decompose
from apim.model.spec import APIMSpec, CovarianceSpec, FormulaSpec

# public name -> module that defines it, imported on first use
_LAZY = {
    "load_alliance": "apim.datasets",  # simulates: loads the engines, not for `import apim`
    "fit": "apim.model.registry",  # every model family's fitter: not for `import apim`
    "APIMResult": "apim.model.result",
    "wald_test": "apim.inference.wald",
    "likelihood_ratio_test": "apim.inference.compare",
    "distinguishability_test": "apim.inference.compare",
    "dyadic_patterns": "apim.inference.patterns",
    "effect_sizes": "apim.inference.effect_sizes",
    "pseudo_r2": "apim.inference.effect_sizes",
    "simple_slopes": "apim.inference.slopes",
    "johnson_neyman": "apim.inference.slopes",
    "surface_parameters": "apim.inference.surface",
    "response_surface": "apim.model.formula",
    "simulate": "apim.simulation.simulate",
    "SimulationSpec": "apim.simulation.simulate",
    "power": "apim.simulation.power",
    "FitControl": "apim.engine.control",
    "effects_table": "apim.report.tables",
    "variance_table": "apim.report.tables",
    "compare_table": "apim.report.tables",
    "fit_report": "apim.report.html",
    "Plan": "apim.plan.spec",
    "run_plan": "apim.plan.run",
    "check_plan": "apim.plan.run",
    "RuptureSpec": "apim.analyses.ruptures",
    "detect_ruptures": "apim.analyses.ruptures",
    "add_rupture_flags": "apim.analyses.ruptures",
    "load_acitelli": "apim.datasets.couples",
    "load_kashy": "apim.datasets.couples",
    "load_bolger_laurenceau": "apim.datasets.couples",
    "TherapistSpec": "apim.analyses.therapist",
    "fit_out_of_core": "apim.model.out_of_core",
    "therapist_effects": "apim.analyses.therapist",
    "variance_shares": "apim.analyses.therapist",
    "association_split": "apim.analyses.therapist",
    "LatentAPIMSpec": "apim.model.spec",
    "LatentAPIMResult": "apim.model.latent_result",
    "GeneralizedAPIMSpec": "apim.model.generalized_spec",
    "GeneralizedAPIMResult": "apim.model.generalized_result",
    "person_mean_reliability": "apim.model.reliability",
    "DynamicAPIMSpec": "apim.model.dynamic_spec",
    "DynamicAPIMResult": "apim.model.dynamic_result",
    "compare_centring": "apim.analyses.centring_bias",
    "DynamicSimulationSpec": "apim.simulation.dynamic",
    "simulate_dynamic": "apim.simulation.dynamic",
    "dynamic_power": "apim.simulation.dynamic",
    "arm_differences": "apim.inference.arms",
    "compare_between": "apim.inference.arms",
}
_SUBPACKAGES = ("data", "datasets", "engine", "model", "inference", "simulation", "report",
                "cli", "parallel", "errors", "analyses")

__all__ = ["SessionData", "DataReport", "read_table", "decompose",
           "DecompositionSpec", "Decomposition", "APIMSpec", "CovarianceSpec", "FormulaSpec",
           *_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"apim.{name}")
    raise AttributeError(f"module 'apim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_SUBPACKAGES])
