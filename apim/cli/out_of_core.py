"""``apim fit --out-of-core``: fit the observed-mean APIM from a file read in blocks of
whole dyads (:mod:`apim.model.out_of_core`), for files too large for memory.

An explicit choice, not automatic: the out-of-core fit reports the tables, not the
per-row quantities (fitted values, random effects per dyad) that reports and figures
need, and it needs each dyad's rows together in the file. ``apim fit`` in memory refuses
a file the machine cannot hold (:func:`check_in_memory`: rows from the Parquet metadata
or the text file's size, about 420 bytes a row) and names this option.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_option(parser)
>>> parser.parse_args(["--out-of-core"]).out_of_core, parser.parse_args([]).out_of_core
(250000, None)
>>> uses_out_of_core(parser.parse_args(["--scheduler", "tcp://host:8786"]))
True
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from apim.data.blocks import BLOCK_ROWS
from apim.errors import SpecError
from apim.limits import estimated_rows

__all__ = ["add_option", "fit_out_of_core_args", "uses_out_of_core", "check_in_memory",
           "estimated_rows"]

#: Options of ``apim fit`` the out-of-core fit cannot honour, and why.
_REFUSED = {
    "report": "an HTML report needs the rows (figures, data report); fit in memory",
    "docx": "the Word tables come from an in-memory fit; fit in memory",
    "layout": "the file must be in long layout (a row per member and session)",
    "sheet": "Excel files are not read in blocks; convert the file to Parquet or CSV",
}


def add_option(parser: argparse.ArgumentParser) -> None:
    """``--out-of-core [ROWS]`` (rows read at a time; default
    :data:`~apim.data.blocks.BLOCK_ROWS`) and
    ``--scheduler ADDR`` (the same fit on a Dask cluster) and ``--workers N``."""
    parser.add_argument(
        "--out-of-core", nargs="?", type=int, const=BLOCK_ROWS, metavar="ROWS",
        help="read the Parquet/CSV file in blocks of whole dyads (ROWS rows at a time, "
        f"default {BLOCK_ROWS:,}) and fit from summed statistics: for files too large for "
        "memory; the observed-mean APIM with random intercepts or slopes; each dyad's rows must be "
        "together in the file; prints the tables (no --report/--docx)")
    parser.add_argument(
        "--scheduler", metavar="ADDR",
        help="fit out of core on the workers of the Dask cluster at ADDR (e.g. "
        "tcp://host:8786): each reads row groups of the Parquet file (at the same path on "
        "every worker) and sends back sums; implies --out-of-core")
    parser.add_argument(
        "--workers", type=int, metavar="N",
        help="with --out-of-core: processes that work on the blocks while this one reads "
        "the file (default: one per core, at most 4; 1: this process alone); each holds "
        "one block, so memory grows with N")


# Bytes per row of a whole in-memory `apim fit` (issue 24: 25 MB per 1,000 dyads of 30
# sessions, i.e. about 420 bytes per row with one predictor), with a margin for more
# columns: 60 bytes per further model column.
FIT_BYTES_PER_ROW = 420
FIT_BYTES_PER_COLUMN = 60


def check_in_memory(args: argparse.Namespace) -> None:
    """Refuse (:class:`~apim.errors.TooLargeError`, exit 2) an in-memory ``apim fit`` of a
    file the machine cannot hold (:func:`apim.limits.check_memory`), naming
    ``--out-of-core``; nothing to do when the out-of-core fit was asked for."""
    if uses_out_of_core(args):
        return
    if getattr(args, "workers", None) is not None:
        raise SpecError("--workers applies to --out-of-core (processes for its blocks); "
                        "add --out-of-core, or drop --workers")
    from apim.limits import check_memory

    rows = estimated_rows(args.data)
    if rows is None:
        return
    columns = len(getattr(args, "predictor", None) or ()) + len(
        getattr(args, "covariate", None) or ()) + len(getattr(args, "moderator", None) or ())
    need = rows * (FIT_BYTES_PER_ROW + FIT_BYTES_PER_COLUMN * max(columns - 1, 0))
    check_memory(need, f"fitting the {rows:,} rows of {args.data} in memory",
                 "fit it with --out-of-core (the file read in blocks of whole dyads; Parquet "
                 "or CSV, random intercepts or slopes), or on a Dask cluster with --scheduler ADDR")


def uses_out_of_core(args: argparse.Namespace) -> bool:
    """``--out-of-core`` or ``--scheduler`` given."""
    return bool(getattr(args, "out_of_core", None) or getattr(args, "scheduler", None))


def fit_out_of_core_args(args: argparse.Namespace, spec: Any) -> tuple[Any, list[str]]:
    """The out-of-core fit of ``spec`` to ``args.data`` (other options checked), and the
    warnings it gave (shown as usual, and returned)."""
    from apim.cli.common import _roles, missing_codes
    from apim.model.out_of_core import fit_out_of_core
    from apim.model.spec import APIMSpec

    if getattr(args, "workers", None) is not None and args.scheduler:
        raise SpecError("--workers does not apply to --scheduler: the cluster's workers "
                        "do the work; drop --workers")
    for dest, why in _REFUSED.items():
        value = getattr(args, dest, None)
        if value and not (dest == "layout" and value == "long"):
            flag = "--" + dest.replace("_", "-")
            raise SpecError(f"{flag} does not apply to --out-of-core: {why}")
    if getattr(args, "format", "table") not in ("table", "json"):
        raise SpecError(f"--format {args.format} does not apply to --out-of-core: it prints "
                        "the table or JSON; fit in memory for markdown, LaTeX or HTML")
    if getattr(args, "df", None) == "containment":
        raise SpecError("--df containment does not apply to --out-of-core: its t tests use "
                        "Satterthwaite df; drop --df")
    if not isinstance(spec, APIMSpec):
        chosen = next(flag for flag, given in (
            ("--formula", getattr(args, "formula", None)),
            ("--centring latent", getattr(args, "centring", None) == "latent"),
            ("--dynamic", getattr(args, "dynamic", False)),
            ("--family " + str(getattr(args, "family", None)), getattr(args, "family", None)),
            ("this model", True)) if given)
        raise SpecError(f"--out-of-core does not apply to {chosen}: it fits the observed-mean "
                        f"APIM (--outcome/--predictor); fit in memory, or drop {chosen}")
    if args.role is None:
        raise SpecError("--out-of-core needs --role COL (long layout)")
    roles = _roles(args.roles)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit_out_of_core(
            args.data, spec, dyad=args.dyad, role=args.role, session=args.session,
            roles=None if roles is None else (roles[0], roles[1]),
            block_rows=args.out_of_core or BLOCK_ROWS, scheduler=args.scheduler,
            sep=args.sep, decimal=args.decimal, encoding=args.encoding,
            missing=missing_codes(args.missing), workers=getattr(args, "workers", None))
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return result, list(dict.fromkeys(str(w.message) for w in caught))
