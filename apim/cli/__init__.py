"""Command line: ``apim demo``, ``describe``, ``convert``, ``fit``, ``report``, ``batch``,
``simulate``, ``power``, ``ruptures`` and ``therapist``.

One thin module per subcommand (``register`` adds its parser, ``run`` does the work); the
statistics live in the library. Data problems print one line on stderr and exit with
code 2, never a traceback.

Examples
--------
>>> main(["describe", "no-such-file.csv", "--dyad", "d", "--role", "r"])
2
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from apim import __version__
from apim.cli import (
    batch,
    convert,
    demo,
    describe,
    fit,
    power,
    report,
    ruptures,
    simulate,
    therapist,
)
from apim.errors import ApimError

__all__ = ["main", "build_parser"]

EXIT_DATA = 2
SUBCOMMANDS = (demo, describe, convert, fit, report, batch, simulate, power, ruptures,
               therapist)


def build_parser() -> argparse.ArgumentParser:
    """The ``apim`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="apim", description="Actor-partner interdependence models for "
        "session-by-session dyadic data")
    parser.add_argument("--version", action="version", version=f"apim {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(commands)
    return parser


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """Warnings on the command line: one line each, no source line."""
    print(f"apim: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            args.run(args)
    except BrokenPipeError:  # output piped into head and the like
        return 0
    except (ApimError, OSError) as error:
        message = " ".join(str(error).split())
        print(f"apim: error: {message}", file=sys.stderr)
        return EXIT_DATA
    return 0
