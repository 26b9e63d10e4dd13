"""Help texts: defaults shown after each option, and examples in an epilog.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter,
...                                  epilog=examples("x --n 3"))
>>> _ = parser.add_argument("--n", type=int, default=2, help="how many")
>>> "how many (default: 2)" in parser.format_help()
True
"""

from __future__ import annotations

import argparse

__all__ = ["HelpFormatter", "examples"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows ``(default: X)`` after options whose default is a value (not None, not a
    switch that is off) and keeps the epilog's line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" not in text and action.option_strings
                and default not in (None, argparse.SUPPRESS)
                and not isinstance(default, bool)):
            text += " (default: %(default)s)"
        return text


def examples(*lines: str) -> str:
    """An epilog listing example command lines."""
    return "example" + ("s" if len(lines) > 1 else "") + ":\n" + "\n".join(
        f"  {line}" for line in lines)
