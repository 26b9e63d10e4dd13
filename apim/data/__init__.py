"""Reading, validating and converting session-by-session dyadic data."""

from apim.data.io import read_table
from apim.data.report import DataReport
from apim.data.session import ColumnMap, SessionData

__all__ = ["read_table", "SessionData", "ColumnMap", "DataReport"]
