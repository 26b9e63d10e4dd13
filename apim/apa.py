"""Numbers as APA style writes them, for every text apim prints: p values without a
leading zero (``< .001`` below that), estimates with a true minus sign.

Examples
--------
>>> p_value(0.0004), p_value(0.0312), p_value(0.5)
('< .001', '.031', '.500')
>>> p_phrase(0.0004), p_phrase(0.0312)
('p < .001', 'p = .031')
>>> number(-0.004), number(float("nan"))
('−0.00', '—')
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["p_value", "p_phrase", "number"]


def p_value(p: float | None) -> str:
    """APA p: no leading zero, three decimals, ``< .001`` below that; missing as a dash."""
    if p is None or not math.isfinite(p):
        return "—"
    if p < 0.001:
        return "< .001"
    return f"{p:.3f}".replace("0.", ".", 1) if p < 1 else "1.000"


def p_phrase(p: float | None) -> str:
    """``p < .001`` or ``p = .031``, for a sentence."""
    text = p_value(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def number(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals and a true minus sign (kept on a rounded zero, so a
    CI bound just below zero reads −0.00); missing as an em dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{float(value):.{digits}f}".replace("-", "−")
