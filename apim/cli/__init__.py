"""Command line: ``apim demo``, ``describe``, ``convert``, ``fit``, ``report``, ``batch``,
``simulate``, ``power``, ``ruptures`` and ``therapist``.

One thin module per subcommand (``register`` adds its parser, ``run`` does the work); the
statistics live in the library. Nothing a user can cause prints a traceback: an
:class:`~apim.errors.ApimError` (bad data, bad options) prints one line and exits with
code 2, as do option errors; anything else is a bug in apim, reported in one line with
exit code 1 (``--debug`` shows the traceback). Warnings print as ``apim: warning: ...``,
one line each.

Examples
--------
>>> main(["describe", "no-such-file.csv", "--dyad", "d", "--role", "r"])
2
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

from apim import __version__
from apim.data.hints import interface
from apim.errors import ApimError

__all__ = ["main", "build_parser", "COMMANDS", "SUBCOMMANDS"]

EXIT_DATA = 2
EXIT_BUG = 1
COMMANDS = ("demo", "describe", "convert", "fit", "report", "batch", "simulate", "power",
            "ruptures", "therapist")
"""The subcommands, each the module ``apim.cli.<name>`` (imported when it is used: a
command line imports only its own subcommand's modules)."""


def subcommand(name: str) -> ModuleType:
    """The module of subcommand ``name``."""
    return importlib.import_module(f"apim.cli.{name}")


def __getattr__(name: str) -> Any:
    if name == "SUBCOMMANDS":  # every subcommand's module (imports them all)
        return tuple(subcommand(n) for n in COMMANDS)
    raise AttributeError(f"module 'apim.cli' has no attribute {name!r}")


class _OptionError(Exception):
    """An argparse error, raised instead of argparse's usage-and-exit."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``apim: error: ...``)."""

    def error(self, message: str) -> NoReturn:
        raise _OptionError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``apim`` argument parser (with ``command``: only that subcommand's, so that
    only its modules are imported)."""
    parser = Parser(
        prog="apim", description="Actor-partner interdependence models for "
        "session-by-session dyadic data")
    parser.add_argument("--version", action="version", version=f"apim {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an unexpected error")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMANDS if command is None else (command,):
        subcommand(name).register(commands)
    return parser


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: Any = None, line: str | None = None) -> None:
    print(f"apim: warning: {_one_line(message)}", file=sys.stderr)


def _negative_values(argv: list[str]) -> list[str]:
    """``--missing -99,999`` as ``--missing=-99,999`` (argparse takes ``-99,999`` for an
    option)."""
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--missing" and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"--missing={argv[i + 1]}")
            skip = True
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    from apim.allocator import keep_freed_memory

    keep_freed_memory()  # the command's arrays reuse freed memory (apim/allocator.py)
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = _negative_values([a for a in argv if a != "--debug"])
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        with interface("cli"):
            return _run(argv, debug)


def _unknown(parser: argparse.ArgumentParser, command: str, extra: list[str]) -> str:
    """One line for options the subcommand does not know, with the closest one it does
    (``apim fit: unrecognized arguments: --figure path ... (see apim fit --help)``)."""
    import difflib

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    def options(name: str) -> list[str]:
        return [o for a in sub.choices[name]._actions for o in a.option_strings
                if a.help != argparse.SUPPRESS]

    flags = [e.split("=")[0] for e in extra if e.startswith("--")]
    elsewhere = [name for name in sub.choices if flags and flags[0] in options(name)]
    close = difflib.get_close_matches(flags[0], options(command), n=1) if flags else []
    hint = (f" ({flags[0]} is an option of apim {', apim '.join(elsewhere)})" if elsewhere
            else f" (did you mean {close[0]}?)" if close else "")
    return (f"apim {command}: unrecognized arguments: {' '.join(extra)}{hint} (see "
            f"apim {command} --help)")


def _command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (None for none, or an unknown one: then
    the parser has every subcommand, for ``apim --help`` and the error messages)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in COMMANDS else None


def _run(argv: list[str], debug: bool) -> int:
    try:
        parser = build_parser(_command(argv))
        args, extra = parser.parse_known_args(argv)
        if extra:  # every subcommand's options, to say where an option belongs
            raise _OptionError(_unknown(build_parser(), args.command, extra))
    except _OptionError as error:
        print(f"apim: error: {_one_line(error).removeprefix('apim: ')}", file=sys.stderr)
        return EXIT_DATA
    except SystemExit as exit_:  # --help, --version
        return int(exit_.code or 0)
    try:
        args.run(args)
    except BrokenPipeError:  # output piped into head and the like
        return 0
    except KeyboardInterrupt:
        print("apim: error: interrupted", file=sys.stderr)
        return 130
    except ApimError as error:
        print(f"apim: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_DATA
    except OSError as error:  # writing an output file, and the like
        name = f" {error.filename!r}" if error.filename else ""
        print(f"apim: error: cannot use{name}: {error.strerror or _one_line(error)}",
              file=sys.stderr)
        return EXIT_DATA
    except Exception as error:
        if debug:
            traceback.print_exc()
        print(f"apim: error: unexpected {type(error).__name__}: {_one_line(error)[:300]}; "
              f"this is a bug in apim {__version__}: please report it to the maintainers "
              "with the command you ran; rerun with --debug to see the traceback",
              file=sys.stderr)
        return EXIT_BUG
    return 0
