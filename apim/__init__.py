"""apim: actor-partner interdependence models for session-by-session dyadic data.

Examples
--------
>>> import apim
>>> data = apim.load_alliance()
>>> parts = apim.decompose(data, ["alliance"])
>>> "alliance_within_partner" in parts.components
True
"""

from apim.data import DataReport, SessionData, read_table
from apim.datasets import load_alliance
from apim.decompose import Decomposition, DecompositionSpec, decompose
from apim.results import APIMResult, fit
from apim.spec import APIMSpec

__version__ = "0.1.0"

__all__ = ["SessionData", "DataReport", "read_table", "load_alliance", "decompose",
           "DecompositionSpec", "Decomposition", "APIMSpec", "APIMResult", "fit",
           "__version__"]
