"""Inference on fitted APIMs: Wald and likelihood-ratio tests, distinguishability, dyadic
patterns (k), effect sizes, simple slopes and Johnson-Neyman regions, response-surface
parameters and robustness companions.

Examples
--------
>>> import apim
>>> apim.inference.compare.likelihood_ratio_test.__name__
'likelihood_ratio_test'
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = ("wald", "compare", "patterns", "effect_sizes", "slopes", "surface", "robustness")

__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"apim.inference.{name}")
    raise AttributeError(f"module 'apim.inference' has no attribute {name!r}")
