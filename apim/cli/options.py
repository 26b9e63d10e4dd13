"""Options that mean the same in every subcommand that runs many jobs: ``--n-jobs`` and
``--quiet``, and when progress is shown.

Progress bars are shown on a terminal by default (for jobs that take more than a few
seconds: bootstraps, power analyses, plans) and never when stderr is a file or a pipe, so
scripts and logs stay clean; ``--quiet`` turns them off. Earlier spellings (``apim
therapist --jobs`` and ``--progress``) still work, hidden from ``--help``, with a warning
naming the current one, so that researchers' scripts do not break.

Examples
--------
>>> import argparse, warnings
>>> parser = argparse.ArgumentParser(prog="apim x")
>>> add_jobs(parser, old=("--jobs",))
>>> add_quiet(parser)
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     args = parser.parse_args(["--jobs", "2"])
>>> n_jobs(args.n_jobs), str(caught[0].message)
(2, '--jobs is deprecated: use --n-jobs 2 (the same option in every subcommand)')
>>> show_progress(parser.parse_args(["--quiet"]))
False
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from apim.errors import ApimWarning, SpecError

__all__ = ["add_jobs", "add_quiet", "show_progress", "n_jobs", "DeprecatedOptionWarning"]


class DeprecatedOptionWarning(ApimWarning):
    """An option spelt the old way (it still works; the message names the new one)."""


class _Deprecated(argparse.Action):
    """An old spelling of an option: stores into the new one's ``dest`` and warns."""

    def __init__(self, option_strings: Sequence[str], dest: str, advice: str = "",
                 **kwargs: Any) -> None:
        self.advice = advice  # {value} is replaced by the value given
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        warnings.warn(f"{option_string} is deprecated: {self.advice.format(value=values)}",
                      DeprecatedOptionWarning, stacklevel=2)
        setattr(namespace, self.dest, True if self.nargs == 0 else values)


def n_jobs(text: str) -> int:
    """``--n-jobs N``: a whole number >= 1, or -1 for all cores.

    Examples
    --------
    >>> n_jobs("-1"), n_jobs("4")
    (-1, 4)
    """
    value = text.strip()
    if value == "-1" or (value.isdigit() and int(value) >= 1):
        return int(value)
    raise SpecError(f"--n-jobs {text}: give the number of parallel workers as a whole "
                    "number >= 1, or -1 for all cores, e.g. --n-jobs 2")


def add_jobs(parser: argparse.ArgumentParser | Any, old: Sequence[str] = ()) -> None:
    """``--n-jobs N`` (default 1); ``old`` spellings kept hidden, with a warning."""
    parser.add_argument("--n-jobs", metavar="N", type=str, default="1",
                        help="parallel workers (-1: all cores)")
    for flag in old:
        parser.add_argument(flag, dest="n_jobs", action=_Deprecated,
                            advice="use --n-jobs {value} (the same option in every "
                            "subcommand)", help=argparse.SUPPRESS)


def add_quiet(parser: argparse.ArgumentParser | Any, old_progress: bool = False) -> None:
    """``--quiet``; with ``old_progress`` the earlier ``--progress`` (a progress bar also
    when stderr is not a terminal) is kept hidden, with a warning."""
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (shown on a terminal for jobs that take a "
                        "while; never when stderr is a file or a pipe)")
    parser.set_defaults(progress=False)
    if old_progress:
        parser.add_argument("--progress", dest="progress", action=_Deprecated, nargs=0,
                            advice="progress shows on a terminal by default (--quiet "
                            "turns it off); drop --progress", help=argparse.SUPPRESS)


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to show progress: on a terminal unless ``--quiet`` (the deprecated
    ``--progress`` also shows it when stderr is not a terminal)."""
    if getattr(args, "quiet", False):
        return False
    if getattr(args, "progress", False):
        return True
    return bool(sys.stderr.isatty())
