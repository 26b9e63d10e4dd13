"""``apim simulate``: simulate session data under the full APIM.

Every option is checked before anything is simulated; a misuse is a
:class:`~apim.errors.SpecError` whose one-line message names the option, the value and
what to give instead (the command prints it and exits with code 2).

Examples
--------
>>> settings(["residual_phi=0.3", "partner_within=0.1,0.2"])
{'residual_phi': 0.3, 'partner_within': (0.1, 0.2)}
>>> settings(["residual_phi=high"])
Traceback (most recent call last):
...
apim.errors.SpecError: --set residual_phi=high: 'high' is not a valid residual_phi (a number, ...)
>>> cut_points("-1,1;-0.5,1.5")
((-1.0, 1.0), (-0.5, 1.5))
"""

from __future__ import annotations

import argparse
import math
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Union

from apim.cli.common import output_path
from apim.cli.help import HelpFormatter, examples
from apim.errors import SpecError
from apim.files import check_new_output, write_csv
from apim.simulation.simulate import SimulationSpec, check_size, simulate
from apim.specbase import Spec

__all__ = ["register", "run", "settings", "truth_from", "with_counts", "whole", "cut_points",
           "add_family", "FAMILIES", "LINKS"]

_NUMBER = re.compile(r"[+-]?\d+")
_POWER_OF_TEN = re.compile(r"\+?(\d{1,6})[eE]\+?(\d{1,3})")
_HUGE = 10 ** 30  # larger counts are refused by the size checks anyway
FAMILIES = ("gaussian", "binomial", "ordinal")
LINKS = ("logit", "probit")
_OWN_OPTION = {"family": "--family", "link": "--link", "thresholds": "--thresholds"}


def whole(option: str, text: str | None, lowest: int, what: str) -> int | None:
    """``text`` as a whole number >= ``lowest`` for ``option`` (None stays None); ``1e6``
    is read as 1000000 (and an absurd size such as ``1e12`` reaches the size checks,
    which say what it would need).

    Examples
    --------
    >>> whole("--replicates", "1e3", 1, "the number of replicates")
    1000
    """
    if text is None:
        return None
    text = text.strip()
    short = _POWER_OF_TEN.fullmatch(text)
    if short:
        value = int(short[1]) * 10 ** min(int(short[2]), 60)
        if value >= lowest:
            return min(value, _HUGE)
    elif _NUMBER.fullmatch(text) and len(text) <= 40 and int(text) >= lowest:
        return int(text)
    raise SpecError(f"{option} {text}: give {what} as a whole number >= {lowest}")


def _example(name: str, default: Any) -> str:
    if isinstance(default, tuple) and default and isinstance(default[0], tuple):
        return f"{name}={';'.join(','.join(str(v) for v in row) for row in default)}"
    if isinstance(default, tuple):
        return f"{name}={','.join(str(v) for v in default)}"
    if default is None:
        return {"treatment_labels": "treatment_labels=CBT,AFT", "decimals": "decimals=2",
                "bounds": "bounds=1,7"}.get(name, f"{name}=none")
    return f"{name}={str(default).lower() if isinstance(default, bool) else default}"


def _parse(text: str, hint: Any) -> Any:
    """``text`` as the type ``hint`` of a SimulationSpec field (ValueError if it is not)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if text.strip().lower() == "none" and type(None) in args:
            return None
        return _parse(text, next(a for a in args if a is not type(None)))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:  # numbers or rows
        rows = typing.get_origin(args[0]) is tuple
        return tuple(_parse(v.strip(), args[0]) for v in text.split(";" if rows else ","))
    if origin is tuple:
        items = [v.strip() for v in text.split(",")]
        if len(items) != len(args):
            raise ValueError(f"needs {len(args)} values separated by a comma")
        return tuple(_parse(v, a) for v, a in zip(items, args))
    if hint is bool:
        choices = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
        return choices[text.strip().lower()]
    if hint is int:
        if not _NUMBER.fullmatch(text.strip()):
            raise ValueError("a whole number")
        return int(text)
    if hint is float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("a finite number")
        return value
    if not text:
        raise ValueError("a non-empty text")
    return text


def _kind(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return _kind(next(a for a in args if a is not type(None))) + " or none"
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return ("rows of numbers separated by a comma, rows by ';'"
                if typing.get_origin(args[0]) is tuple else "numbers separated by a comma")
    if origin is tuple:
        return f"{len(args)} values separated by a comma"
    return {bool: "true or false", int: "a whole number", float: "a number"}.get(hint, "text")


def settings(pairs: Sequence[str] | None, kind: type[Spec] = SimulationSpec
             ) -> dict[str, Any]:
    """``FIELD=VALUE`` pairs (``--set``) as fields of the data-generating process ``kind``
    (:class:`SimulationSpec`, or the dynamic APIM's ``DynamicSimulationSpec``), each
    checked on its own."""
    hints = typing.get_type_hints(kind)
    defaults = kind().to_dict()
    valid = [f.name for f in fields(kind)]  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or name not in hints:
            import difflib

            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(f"--set {pair}: use FIELD=VALUE with a field of the simulation"
                            f"{hint}; fields: {', '.join(valid)}")
        if name in _OWN_OPTION and kind is SimulationSpec:
            raise SpecError(f"--set {pair}: {name} has its own option; use "
                            f"{_OWN_OPTION[name]}")
        if name in out:
            raise SpecError(f"--set {pair}: {name} is set twice; give each field once")
        default = defaults[name]
        default = _plain_tuple(default)
        try:
            parsed = _parse(value, hints[name])
        except (ValueError, KeyError, StopIteration):
            raise SpecError(f"--set {pair}: {value!r} is not a valid {name} "
                            f"({_kind(hints[name])}, e.g. {_example(name, default)})") from None
        try:
            kind(**{name: parsed})
        except SpecError as error:
            raise SpecError(f"--set {pair}: {error}") from None
        out[name] = parsed
    return out


def _plain_tuple(value: Any) -> Any:
    """A JSON list (of lists) as the tuple (of tuples) of a spec field."""
    return tuple(_plain_tuple(v) for v in value) if isinstance(value, list) else value


def cut_points(text: str | None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``--thresholds``: cut-points of an ordinal outcome, ``-1,1`` for both roles or
    ``-1,1;-0.5,1.5`` per role (reference role first); None stays None."""
    if text is None:
        return None
    try:
        sets = [tuple(float(v) for v in part.split(",")) for part in text.split(";")]
    except ValueError:
        sets = []
    if not 1 <= len(sets) <= 2 or not all(math.isfinite(v) for c in sets for v in c):
        raise SpecError(f"--thresholds {text}: give the cut-points as numbers separated by "
                        "commas, one set for both roles (--thresholds=-1,1) or one per role "
                        "separated by ';' (--thresholds='-1,1;-0.5,1.5')")
    return (sets[0], sets[-1])


def _family_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--family``, ``--link`` and ``--thresholds`` options as SimulationSpec fields."""
    family = getattr(args, "family", None) or "gaussian"
    if family not in FAMILIES:
        raise SpecError(f"--family {family}: choose one of {', '.join(FAMILIES)}")
    values: dict[str, Any] = {"family": family}
    link = getattr(args, "link", None)
    if link is not None:
        if link not in LINKS:
            raise SpecError(f"--link {link}: choose one of {', '.join(LINKS)}")
        if family == "gaussian":
            raise SpecError(f"--link {link} applies to --family binomial or ordinal")
        values["link"] = link
    cuts = cut_points(getattr(args, "thresholds", None))
    if cuts is not None:
        if family != "ordinal":
            raise SpecError(f"--thresholds {args.thresholds} applies to --family ordinal")
        values["thresholds"] = cuts
    return values


def add_family(parser: argparse.ArgumentParser) -> None:
    """``--family``, ``--link`` and ``--thresholds`` (the outcome's distribution)."""
    parser.add_argument("--family", metavar="{" + ",".join(FAMILIES) + "}",
                        help="the outcome: gaussian (default), binomial (0/1 events: give "
                        "its intercept, the log-odds of an event, with --set "
                        "intercept=-1.5,-1.5) or ordinal (categories 0..K-1: give "
                        "--thresholds)")
    parser.add_argument("--link", metavar="{" + ",".join(LINKS) + "}",
                        help="binomial or ordinal: logit (default) or probit")
    parser.add_argument("--thresholds", metavar="T[,T...][;T,...]",
                        help="ordinal: K-1 increasing cut-points on the latent scale, "
                        "for both roles (--thresholds=-1,1) or per role separated by ';' "
                        "(--thresholds='-1,1;-0.5,1.5'); P(y <= k) = F(t_k - eta)")


def with_counts(values: dict[str, Any], counts: dict[str, int | None]) -> dict[str, Any]:
    """The ``--set`` fields with the counts given by their own options (``--dyads``,
    ``--sessions``); a count set both ways is refused."""
    for name, count in counts.items():
        if count is None:
            continue
        if name in values:
            option = {"n_dyads": "--dyads", "n_sessions": "--sessions"}[name]
            raise SpecError(f"--set {name}={values[name]} and {option} {count} both set "
                            f"{name}; give it once")
        values[name] = count
    return values


def truth_from(args: argparse.Namespace, **counts: int | None) -> SimulationSpec:
    """The data-generating process of the ``--set FIELD=VALUE`` options, the outcome's
    family (``--family``, ``--link``, ``--thresholds``) and the counts (``n_dyads=...``)
    given by their own options."""
    family = _family_fields(args)
    values = with_counts(settings(args.set), counts)
    values.update(family)
    try:
        return SimulationSpec(**values)
    except SpecError as error:
        given = "--family and the --set options" if family["family"] != "gaussian" \
            else "the --set options"
        raise SpecError(f"{given} do not fit together: {error}") from None


def run(args: argparse.Namespace) -> None:
    """Check every option, then simulate and write the CSV."""
    output_path("simulate OUT", args.out, (".csv",), "the simulated data")
    dyads = whole("--dyads", args.dyads, 2, "the number of dyads")
    sessions = whole("--sessions", args.sessions, 1, "the number of sessions")
    seed = whole("--seed", args.seed, 0, "the seed")
    if args.dynamic:
        from apim.cli.dynamic_runs import dynamic_truth, simulate_dynamic_run

        dynamic_truth(args, n_dyads=dyads, n_sessions=sessions)  # checked before writing
        check_new_output(args.out, "simulate OUT", force=args.force)
        simulate_dynamic_run(args, dyads, sessions, seed or 0)
        return
    truth = truth_from(args, n_dyads=dyads, n_sessions=sessions)
    check_new_output(args.out, "simulate OUT", force=args.force)
    check_size(truth)
    data = simulate(truth, seed or 0)
    write_csv(data.to_long(), args.out, what=Path(args.out).name)
    print(f"wrote {args.out}: {len(data.frame)} rows, {data.n_dyads} dyads")


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    defaults = SimulationSpec()
    sim = commands.add_parser(
        "simulate", help="simulate session data under the full APIM "
        "(columns x, the predictor, and y, the outcome)",
        description="Simulate session-by-session dyadic data under the full APIM "
        "(apim.simulate; every field of the data-generating process can be set with "
        "--set) and write it as a long CSV file.", formatter_class=HelpFormatter,
        epilog=examples("apim simulate sim.csv --dyads 120 --sessions 12 --seed 1",
                        "apim simulate sim.csv --set partner_within=0.1,0.2 "
                        "--set residual_phi=0.3 --force",
                        "apim simulate events.csv --family binomial "
                        "--set intercept=-1.5,-1.5 --set partner_within=0.3,0.3",
                        "apim simulate ranks.csv --family ordinal --link probit "
                        "--thresholds='-1,1;-0.5,1.5'",
                        "apim simulate lagged.csv --dynamic --dyads 100 --sessions 10 "
                        "--set p_missing=0.1"))
    sim.add_argument("out", help="CSV file to write")
    sim.add_argument("--dyads", metavar="N",
                     help=f"number of dyads, >= 2 (default: {defaults.n_dyads})")
    sim.add_argument("--sessions", metavar="N",
                     help=f"sessions per dyad, >= 1 (default: {defaults.n_sessions})")
    sim.add_argument("--seed", metavar="N", default="0", help="random seed, >= 0")
    sim.add_argument("--force", action="store_true", help="replace OUT if it exists")
    sim.add_argument("--set", action="append", metavar="FIELD=VALUE",
                     help="a field of apim.simulation.simulate.SimulationSpec, e.g. "
                     "partner_within=0.1,0.1 or residual_phi=0.3 (repeatable)")
    add_family(sim)
    sim.add_argument("--dynamic", action="store_true",
                     help="the dynamic APIM's process (apim.simulation.dynamic."
                     "simulate_dynamic): --set takes the fields of DynamicSimulationSpec "
                     "(phi, sigma_w, sigma_b as 4 rows separated by ';', means, p_missing, "
                     "dropout)")
    sim.set_defaults(run=run)
