"""Write one section of ``benchmarks/RESULTS.md`` between markers, keeping the others."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(key: str, markdown: str) -> None:
    """Replace (or append) the section between ``<!-- begin KEY -->`` and
    ``<!-- end KEY -->``."""
    block = f"<!-- begin {key} -->\n{markdown.rstrip()}\n<!-- end {key} -->\n"
    text = RESULTS.read_text() if RESULTS.exists() else ""
    pattern = re.compile(rf"<!-- begin {re.escape(key)} -->.*?<!-- end {re.escape(key)} -->\n?",
                         re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else \
        (text + ("\n" if text else "") + block)
    RESULTS.write_text(text)
