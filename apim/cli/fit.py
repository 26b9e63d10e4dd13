"""``apim fit``: fit an APIM and print its tables (optionally an HTML report).

Four kinds of model, chosen by the options: the observed-mean APIM (default), the latent
APIM (``--centring latent``), the dynamic APIM (``--dynamic``: lagged effects of a VAR(1)
around latent person means) and a model written as a formula (``--formula``). Every model
option applies to some of the kinds (:data:`OPTIONS`, the one table of which); an option
given for a kind it does not apply to is refused before the data are read, never ignored.

Examples
--------
>>> import argparse
>>> args = argparse.Namespace(formula=None, centring="latent", df="containment")
>>> model_kind(args)
'latent'
>>> check_options(args, "latent")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
apim.errors.SpecError: --df containment does not apply to --centring latent: its tests ...
"""

from __future__ import annotations

import argparse
import json
import shlex
import textwrap
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from apim.cli.common import add_columns, load
from apim.cli.help import HelpFormatter, examples
from apim.cli.out_of_core import add_option as add_out_of_core_option
from apim.cli.out_of_core import check_in_memory, fit_out_of_core_args, uses_out_of_core
from apim.engine.mixed.residuals import RESIDUAL_NAMES
from apim.errors import SpecError
from apim.model.centring import DecompositionSpec
from apim.model.dynamic_spec import DynamicAPIMSpec
from apim.model.fitted import FittedModel, jsonable
from apim.model.generalized_spec import DEFAULT_NAGQ, MAX_NAGQ, GeneralizedAPIMSpec
from apim.model.registry import fit
from apim.model.spec import APIMSpec, CovarianceSpec, FormulaSpec, LatentAPIMSpec

if TYPE_CHECKING:  # imported where used: a plain fit prints its table without them
    import pandas as pd

    from apim.inference.wald import WaldTest

__all__ = ["register", "run", "add_model_arguments", "fit_with_warnings", "model_kind",
           "check_options", "model_spec", "references", "OPTIONS", "KINDS"]

OBSERVED, LATENT, FORMULA, GENERALIZED, DYNAMIC = (
    "observed", "latent", "formula", "generalized", "dynamic")
KINDS = (OBSERVED, LATENT, FORMULA, GENERALIZED, DYNAMIC)
#: How messages name each kind (as the user chose it).
KIND_NAMES = {OBSERVED: "the observed-mean APIM", LATENT: "--centring latent",
              FORMULA: "--formula", GENERALIZED: "--family (a binary or ordinal outcome)",
              DYNAMIC: "--dynamic"}
_HELP_NAMES = {OBSERVED: "observed-mean", LATENT: "latent", FORMULA: "formula",
               GENERALIZED: "generalized", DYNAMIC: "dynamic"}
#: The latent model's session-level covariance is unstructured, with optional AR(1).
LATENT_RESIDUALS = {"un": False, "un-ar1": True}
FORMULA_EXAMPLE = "--formula 'outcome ~ alliance + alliance_partner'"
_NOT_SPLIT = ("a formula uses the columns as they are in the data (no within/between split, "
              "lag or detrending); drop {flag}")
_FORMULA_NAMES = ("the formula names the outcome and the terms; drop --outcome and "
                  "--predictor, or drop --formula")
_FAMILY_ONLY = ("it applies to a binary or ordinal outcome: add --family binomial or "
                "--family ordinal, or drop {flag}")
_LATENT_SPLIT = ("the latent model splits the predictors itself (latent person means); "
                 "drop {flag}, or drop --centring latent for the observed-mean model")
_DYNAMIC_SPLIT = ("the dynamic APIM has latent person means and lag-1 effects of every "
                  "variable built in (no centring, no lag option); drop {flag}")
_DYNAMIC_ONLY = "it sets up the dynamic APIM: add --dynamic, or drop {flag}"


@dataclass(frozen=True)
class ModelOption:
    """A model option of ``apim fit`` / ``apim report``: the kinds it applies to and, for
    each other kind, why not and what to do (``{flag}`` is replaced by the option)."""

    flag: str
    kinds: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def applies_to(self) -> str:
        """For the help text: ``observed-mean only``, ``observed-mean, latent``, ..."""
        if self.kinds == KINDS:
            return "every model"
        names = [_HELP_NAMES[k] for k in self.kinds]
        return names[0] + " only" if len(names) == 1 else ", ".join(names)


#: The one table: every model option and the kinds it applies to (the others refuse it).
#: ``--formula`` selects the formula kind, ``--centring latent`` the latent one.
OPTIONS: tuple[ModelOption, ...] = (
    ModelOption("--outcome", (OBSERVED, LATENT, GENERALIZED, DYNAMIC),
                {FORMULA: _FORMULA_NAMES}),
    ModelOption("--predictor", (OBSERVED, LATENT, GENERALIZED, DYNAMIC),
                {FORMULA: _FORMULA_NAMES}),
    ModelOption("--formula", (FORMULA,), {
        GENERALIZED: "a binary or ordinal outcome is modelled with --outcome and "
                     "--predictor; drop {flag}",
        DYNAMIC: "a formula model has no lagged dynamics; drop --dynamic or {flag}"}),
    ModelOption("--family", (GENERALIZED,), {
        OBSERVED: "it selects the generalized APIM",
        LATENT: "the latent APIM models Gaussian outcomes; drop {flag} or --centring latent",
        FORMULA: "a formula model has a Gaussian outcome; for a binary or ordinal outcome "
                 "use --outcome and --predictor; drop {flag} or --formula",
        DYNAMIC: "the dynamic APIM models Gaussian variables; drop {flag} or --dynamic"}),
    ModelOption("--link", (GENERALIZED,), dict.fromkeys((OBSERVED, LATENT, FORMULA, DYNAMIC),
                                                        _FAMILY_ONLY)),
    ModelOption("--nagq", (GENERALIZED,), dict.fromkeys((OBSERVED, LATENT, FORMULA, DYNAMIC),
                                                        _FAMILY_ONLY)),
    ModelOption("--thresholds", (GENERALIZED,),
                dict.fromkeys((OBSERVED, LATENT, FORMULA, DYNAMIC), _FAMILY_ONLY)),
    ModelOption("--dynamic", (DYNAMIC,), {
        FORMULA: "a formula model has no lagged dynamics; drop --formula or {flag}"}),
    ModelOption("--initial", (DYNAMIC,), dict.fromkeys((OBSERVED, LATENT, FORMULA, GENERALIZED),
                                                       _DYNAMIC_ONLY)),
    ModelOption("--no-reverse-paths", (DYNAMIC,),
                dict.fromkeys((OBSERVED, LATENT, FORMULA, GENERALIZED), _DYNAMIC_ONLY)),
    ModelOption("--random-formula", (FORMULA,), {
        OBSERVED: "it is the random part of a formula model: add " + FORMULA_EXAMPLE +
                  " (without --outcome/--predictor), or use --random",
        LATENT: "it is the random part of a formula model; drop {flag}",
        GENERALIZED: "it is the random part of a formula model; drop {flag}",
        DYNAMIC: "it is the random part of a formula model; drop {flag}"}),
    ModelOption("--centring", (OBSERVED, LATENT, GENERALIZED), {
        FORMULA: "a formula uses the columns as they are in the data (no within/between "
                 "split); drop {flag}, or drop --formula",
        DYNAMIC: _DYNAMIC_SPLIT}),
    ModelOption("--center", (OBSERVED, GENERALIZED), {LATENT: _LATENT_SPLIT, FORMULA: _NOT_SPLIT,
                                                      DYNAMIC: _DYNAMIC_SPLIT}),
    ModelOption("--lag", (OBSERVED, GENERALIZED), {LATENT: _LATENT_SPLIT, FORMULA: _NOT_SPLIT,
                                                   DYNAMIC: _DYNAMIC_SPLIT}),
    ModelOption("--detrend", (OBSERVED, GENERALIZED), {LATENT: _LATENT_SPLIT,
                                                       FORMULA: _NOT_SPLIT,
                                                       DYNAMIC: _DYNAMIC_SPLIT}),
    ModelOption("--indistinguishable", (OBSERVED, GENERALIZED, DYNAMIC), {
        LATENT: "the latent model has effects per role (distinguishable members); drop {flag}",
        FORMULA: "write pooled terms into the formula; drop {flag}"}),
    ModelOption("--interaction", (OBSERVED, GENERALIZED), {
        LATENT: "the latent model has no actor x partner terms; drop {flag}",
        FORMULA: "write the product into the formula, e.g. "
                 "'outcome ~ alliance * alliance_partner'; drop {flag}",
        DYNAMIC: "the dynamic APIM has no actor x partner terms; drop {flag}"}),
    ModelOption("--moderator", (OBSERVED, LATENT, GENERALIZED, DYNAMIC), {
        FORMULA: "write it into the formula, e.g. 'outcome ~ (alliance + alliance_partner) "
                 "* treatment'; drop {flag}"}),
    ModelOption("--reference", (OBSERVED, LATENT, GENERALIZED, DYNAMIC), {
        FORMULA: "a formula codes its own contrasts: write the reference into it, e.g. "
                 "C(treatment, Treatment('CBT')); drop {flag}"}),
    ModelOption("--covariate", (OBSERVED, GENERALIZED, DYNAMIC), {
        LATENT: "the latent model has no covariates; drop {flag}",
        FORMULA: "add it to the formula's terms; drop {flag}"}),
    ModelOption("--random", (OBSERVED,), {
        LATENT: "its dyad level is the unstructured between-dyad covariance (Sigma_B) of "
                "all the variables; drop {flag}",
        FORMULA: "give the formula's random part as --random-formula, e.g. "
                 "--random-formula '0 + role'; drop {flag}",
        GENERALIZED: "a binary or ordinal outcome's model has the dyad's two correlated "
                     "random intercepts; drop {flag}",
        DYNAMIC: "its person level is the unstructured covariance (Sigma_B) of the latent "
                 "means of all the variables; drop {flag}"}),
    ModelOption("--residual", (OBSERVED, LATENT, FORMULA), {
        GENERALIZED: "a binary or ordinal outcome has no residual variance to structure "
                     "(the link fixes it); drop {flag}",
        DYNAMIC: "its session level is the lag-1 process with unstructured innovations; "
                 "drop {flag}"}),
    ModelOption("--therapist-level", KINDS),
    ModelOption("--therapist-covariance", (LATENT, DYNAMIC), {
        OBSERVED: "the observed-mean model has one therapist random intercept; add "
                  "--centring latent (with --therapist-level), or drop {flag}",
        FORMULA: "the formula model has one therapist random intercept; drop {flag}",
        GENERALIZED: "it applies to the latent APIM's therapist level; drop {flag}"}),
    ModelOption("--method", (OBSERVED, LATENT, FORMULA, GENERALIZED), {
        DYNAMIC: "the dynamic APIM is fitted by ML (as lavaan's RI-CLPM); drop {flag}"}),
    ModelOption("--df", (OBSERVED, FORMULA), {
        LATENT: "its tests are z tests (normal theory, as lavaan); drop {flag}",
        GENERALIZED: "its tests are z tests (maximum likelihood, as glmer and glmmTMB); "
                     "drop {flag}",
        DYNAMIC: "its tests are z tests (normal theory, as lavaan); drop {flag}"}),
)
_TABLE = {o.flag: o for o in OPTIONS}

EXAMPLES = examples(
    "apim fit sessions.csv --dyad dyad --session session --role role "
    "--roles patient,therapist --outcome outcome --predictor alliance",
    "apim fit sessions.csv --dyad dyad --session session --role role --therapist therapist "
    "--outcome outcome --predictor alliance --moderator treatment --reference treatment=CBT "
    "--residual un-ar1 "
    "--format latex --report fit.html",
    "apim fit sessions.csv --dyad dyad --session session --role role --therapist therapist "
    "--outcome outcome --predictor alliance --centring latent --residual un-ar1 "
    "--therapist-level",
    "apim fit sessions.csv --dyad dyad --session session --role role --formula "
    "'outcome ~ alliance + alliance_partner' --random-formula '0 + role'",
    "apim fit sessions.csv --dyad dyad --session session --role role --outcome rupture "
    "--predictor alliance --family binomial --nagq 7",
    "apim fit sessions.csv --dyad dyad --session session --role role --outcome outcome "
    "--predictor alliance --dynamic --initial stationary") + "\n\n" + \
    "\n".join(textwrap.fill(text, 88, break_on_hyphens=False) for text in (
        "model kinds: the observed-mean APIM (default), the latent APIM (--centring latent), "
        "a formula model (--formula; x_partner is the partner's x at the same session; "
        "--random-formula '0 + role' gives role-specific random intercepts per dyad), the "
        "generalized APIM of a binary or ordinal outcome (--family binomial|ordinal; "
        f"--nagq {DEFAULT_NAGQ} quadrature points per dimension by default) and the dynamic "
        "APIM (--dynamic: lag-1 actor, partner and reverse effects around latent person "
        "means, exact ML). An "
        "option that does not apply to the chosen kind is an error.",
        "defaults: --method reml (ml with --centring latent); --df satterthwaite; --residual "
        "un (cs with --indistinguishable; un with --centring latent); --random intercepts "
        "(none for cross-sectional data); --initial free with --dynamic; --center person "
        "(therapist with "
        "--therapist-level, none for cross-sectional data); --lag 0; --random-formula none "
        "(residuals only)"))


def _given(args: argparse.Namespace, option: ModelOption) -> bool:
    value = getattr(args, option.dest, None)
    return value is not None and value is not False and value != []


def _shown(args: argparse.Namespace, option: ModelOption) -> str:
    """The option as the user gave it: ``--df containment``, ``--detrend``."""
    value = getattr(args, option.dest)
    if value is True:
        return option.flag
    values = value if isinstance(value, list) else [value]
    return " ".join(f"{option.flag} {shlex.quote(str(v))}" for v in values)


def model_kind(args: argparse.Namespace) -> str:
    """``formula`` with ``--formula``, ``dynamic`` with ``--dynamic``, ``latent`` with
    ``--centring latent``, else ``observed``."""
    if getattr(args, "formula", None) is not None:
        return FORMULA
    if getattr(args, "dynamic", False):
        return DYNAMIC
    if getattr(args, "centring", None) != "latent" and getattr(args, "family", None):
        return GENERALIZED
    return LATENT if getattr(args, "centring", None) == "latent" else OBSERVED


def check_options(args: argparse.Namespace, kind: str) -> None:
    """Refuse (:class:`~apim.errors.SpecError`, naming it) any option the user gave that
    does not apply to ``kind``, or a value it cannot take there."""
    for option in OPTIONS:
        if kind not in option.kinds and _given(args, option):
            reason = option.refused[kind].format(flag=option.flag)
            raise SpecError(f"{_shown(args, option)} does not apply to {KIND_NAMES[kind]}: "
                            f"{reason}")
    if kind == GENERALIZED and (getattr(args, "method", None) or "ml") != "ml":
        raise SpecError(f"--method {args.method} does not apply to --family {args.family}: "
                        "a binary or ordinal outcome is fitted by maximum likelihood only "
                        "(REML is defined for Gaussian outcomes); drop --method or give "
                        "--method ml")
    if kind in (OBSERVED, LATENT, GENERALIZED, DYNAMIC) and not (getattr(args, "outcome", None)
                                          and getattr(args, "predictor", None)):
        missing = "--outcome COL" if not getattr(args, "outcome", None) else "--predictor COL"
        raise SpecError(f"the model needs {missing}: give --outcome COL and --predictor COL "
                        f"(repeatable), or a model formula: {FORMULA_EXAMPLE}")
    moderators = getattr(args, "moderator", None) or []
    if kind == DYNAMIC and len(moderators) > 1:
        raise SpecError(f"{_shown(args, _TABLE['--moderator'])}: --dynamic takes one "
                        "--moderator (a grouping: one model per group); give one")
    if kind != LATENT:
        return
    residual = getattr(args, "residual", None)
    if residual is not None and residual not in LATENT_RESIDUALS:
        raise SpecError(f"--residual {residual} does not apply to --centring latent: its "
                        "session-level covariance is unstructured (--residual un, the "
                        "default) with optional AR(1) over sessions (--residual un-ar1); "
                        "give one of those or drop --residual")
    moderators = getattr(args, "moderator", None) or []
    if len(moderators) > 1:
        raise SpecError(f"{_shown(args, _TABLE['--moderator'])}: --centring latent takes "
                        "one --moderator (a grouping: one model per group); give one")
    if getattr(args, "therapist_covariance", None) is not None \
            and not getattr(args, "therapist_level", False):
        raise SpecError("--therapist-covariance applies to the therapist level: add "
                        "--therapist-level (and --therapist COL), or drop "
                        "--therapist-covariance")


def references(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """``--reference COL=LEVEL`` (repeatable) as (column, level) pairs."""
    out = []
    for text in getattr(args, "reference", None) or []:
        column, sep, level = text.partition("=")
        if not sep or not column.strip() or not level:
            raise SpecError(f"--reference {shlex.quote(text)} must be COLUMN=LEVEL, e.g. "
                            "--reference treatment=CBT")
        out.append((column.strip(), level))
    return tuple(out)


def model_spec(args: argparse.Namespace
               ) -> (APIMSpec | LatentAPIMSpec | FormulaSpec | GeneralizedAPIMSpec
                     | DynamicAPIMSpec):
    """The spec of the model the options describe, the options checked first (defaults per
    kind: REML, or ML for the latent model)."""
    kind = model_kind(args)
    check_options(args, kind)
    method = args.method.upper() if args.method else None
    if kind == FORMULA:
        return FormulaSpec(formula=args.formula, random=args.random_formula,
                           residual=args.residual or "un",
                           therapist_level=args.therapist_level, method=method or "REML")
    if kind == DYNAMIC:
        return DynamicAPIMSpec(outcome=args.outcome, predictors=tuple(args.predictor),
                               initial=args.initial or "free",
                               reverse_paths=not args.no_reverse_paths,
                               equal_roles=args.indistinguishable,
                               moderator=(args.moderator or [None])[0],
                               reference=references(args),
                               therapist_level=args.therapist_level,
                               therapist_covariance=args.therapist_covariance
                               or "unstructured",
                               covariates=tuple(args.covariate or ()))
    if kind == LATENT:
        return LatentAPIMSpec(outcome=args.outcome, predictors=tuple(args.predictor),
                              moderator=(args.moderator or [None])[0],
                              ar1=LATENT_RESIDUALS[args.residual or "un"],
                              method=method or "ML", therapist_level=args.therapist_level,
                              therapist_covariance=args.therapist_covariance
                              or "unstructured", reference=references(args))
    center = args.center or ("therapist" if getattr(args, "therapist_level", False)
                             else None)
    if kind == GENERALIZED:
        decomposition = DecompositionSpec.from_dict({"center": center, "lag": args.lag or 0,
                                                     "detrend": args.detrend})
        return GeneralizedAPIMSpec(
            outcome=args.outcome, predictors=tuple(args.predictor), family=args.family,
            link=args.link or "logit", nagq=args.nagq,
            decomposition=decomposition, distinguishable=not args.indistinguishable,
            interaction=args.interaction, moderators=tuple(args.moderator or ()),
            covariates=tuple(args.covariate or ()), thresholds=args.thresholds,
            reference=references(args), therapist_level=args.therapist_level)
    decomposition = DecompositionSpec.from_dict({"center": center, "lag": args.lag or 0,
                                                 "detrend": args.detrend})
    return APIMSpec(outcome=args.outcome, predictors=tuple(args.predictor),
                    decomposition=decomposition, distinguishable=not args.indistinguishable,
                    interaction=args.interaction, moderators=tuple(args.moderator or ()),
                    covariates=tuple(args.covariate or ()),
                    covariance=CovarianceSpec(random=args.random, residual=args.residual,
                                              therapist_level=args.therapist_level),
                    method=method or "REML", reference=references(args))


def fit_with_warnings(args: argparse.Namespace
                      ) -> tuple[FittedModel, list[str]]:
    """Fit the model of ``args`` (its options checked before the data are read); warnings
    are shown as usual and also returned."""
    spec = model_spec(args)
    options: dict[str, Any] = {} if args.df is None else {"df": args.df}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(load(args), spec, **options)
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return result, list(dict.fromkeys(str(w.message) for w in caught))


def _extras(result: FittedModel, hypotheses: list[str]) -> tuple[list[WaldTest],
                                                                    pd.DataFrame | None]:
    """The Wald tests asked for, and the arm differences of a multi-group model."""
    tests: list[WaldTest] = []
    if hypotheses:
        from apim.inference.wald import wald_test

        tests = [wald_test(result, h) for h in hypotheses]
    if len(set(result.effects["group"]) - {""}) <= 1:
        return tests, None
    from apim.inference.arms import arm_differences

    return tests, arm_differences(result)


def _as_json(result: FittedModel, tests: list[WaldTest], arms: pd.DataFrame | None) -> str:
    """The full result, the tests and the arm differences as JSON text."""
    payload = result.to_dict()
    payload["tests"] = [{k: [jsonable(x) for x in v] if isinstance(v, tuple) else jsonable(v)
                         for k, v in asdict(t).items()} for t in tests]
    if arms is not None:
        payload["arm_differences"] = [{k: jsonable(v) for k, v in row.items()}
                                      for row in arms.to_dict("records")]
    return json.dumps(payload, indent=2, default=jsonable, allow_nan=False)


def _printed(result: FittedModel, form: str) -> str:
    """The result as ``--format`` prints it (a table, markdown, LaTeX or HTML)."""
    if form == "table":
        return result.summary()
    from apim import report  # the exports: not loaded for a plain table

    return {"markdown": report.to_markdown, "latex": report.to_latex,
            "html": report.to_html}[form](result)


def run(args: argparse.Namespace) -> None:
    """Fit and print in the chosen format, with the Wald tests asked for (``--test``) and,
    for a multi-group model, the differences between its arms."""
    outputs = (("--json", args.json), ("--report", args.report), ("--docx", args.docx))
    if any(path for _, path in outputs):
        from apim.files import check_new_output

        for option, path in outputs:  # issue 20
            if path:
                check_new_output(path, option, force=args.force, inputs=[args.data])
    if args.docx:
        from apim.report.docx import require_docx

        require_docx()  # before the fit, not after it
    check_in_memory(args)
    result, caught = (fit_out_of_core_args(args, model_spec(args))
                      if uses_out_of_core(args) else fit_with_warnings(args))
    tests, arms = _extras(result, args.test or [])
    # JSON only when it is printed or written (a table does not need it)
    as_json = _as_json(result, tests, arms) if args.format == "json" or args.json else ""
    if args.format == "json":
        print(as_json)
    else:
        print(_printed(result, args.format))
        if arms is not None:
            print("\nDifferences between arms (each arm against the first)")
            print(arms.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        for test in tests:
            print(test)
    if args.json:
        from apim.files import write_atomic

        write_atomic(args.json, as_json)
    if args.report:
        from apim.report.html import fit_report

        fit_report(result, args.report, warnings=caught)
    if args.docx:
        from apim.report.docx import to_docx

        to_docx(result, args.docx)


def _help(flag: str, text: str) -> str:
    return f"{text} [{_TABLE[flag].applies_to}]"


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The data and model options shared by ``apim fit`` and ``apim report``; each help
    text ends with the model kinds the option applies to (:data:`OPTIONS`)."""
    add_columns(parser)
    model = parser.add_argument_group(
        "model", "the observed-mean APIM (default), the latent APIM (--centring latent) or a\n"
        "formula model (--formula); [...] says which the option applies to")
    add = model.add_argument
    add("--outcome", help=_help("--outcome", "each member's outcome column (needed unless "
                                "--formula)"))
    add("--predictor", action="append",
        help=_help("--predictor", "predictor rated by both members (repeatable; needed "
                   "unless --formula)"))
    add("--formula", help=_help("--formula", "a model formula instead of --outcome/"
                                "--predictor, e.g. 'outcome ~ alliance + alliance_partner' "
                                "(x_partner: the partner's x at the same session)"))
    add("--family", choices=("binomial", "ordinal"),
        help=_help("--family", "a binary (0/1) or ordinal outcome: the generalized APIM "
                   "(maximum likelihood; z tests); default: a Gaussian outcome"))
    add("--link", choices=("logit", "probit"),
        help=_help("--link", "link of --family (default logit)"))
    add("--nagq", type=int, metavar="K",
        help=_help("--nagq", f"quadrature points per dimension of the dyad's two random "
                   f"intercepts (K^2 per dyad; 1 = Laplace; default {DEFAULT_NAGQ}, or 1 with "
                   f"--therapist-level; at most {MAX_NAGQ}: with few sessions per dyad "
                   "Laplace is biased)"))
    add("--thresholds", choices=("role", "shared"),
        help=_help("--thresholds", "ordinal thresholds per role (default) or shared by "
                   "both (the default with --indistinguishable)"))
    add("--random-formula", metavar="RHS",
        help=_help("--random-formula", "random part per dyad of a --formula model, e.g. "
                   "'0 + role' (role-specific random intercepts); default: none"))
    add("--dynamic", action="store_true",
        help=_help("--dynamic", "the dynamic APIM: lag-1 actor, partner, autoregressive and "
                   "reverse (outcome -> predictor) effects of a process around latent "
                   "person means, without the centring bias; exact ML"))
    add("--initial", choices=("free", "stationary"),
        help=_help("--initial", "the within part at the study's first session: its own "
                   "covariance (free, default; the RI-CLPM) or the stationary one"))
    add("--no-reverse-paths", action="store_true",
        help=_help("--no-reverse-paths", "fix the lagged effects of the outcome on the "
                   "predictors at zero"))
    add("--centring", choices=("observed", "latent"),
        help=_help("--centring", "between effects from observed person means (default), or "
                   "from latent means (the multivariate model that uses every rating; "
                   "--residual un-ar1 adds AR(1); one --moderator fits one model per group)"))
    add("--center", choices=("person", "therapist", "grand", "none"),
        help=_help("--center", "decomposition (default person, or none for cross-sectional "
                   "data; therapist with --therapist-level)"))
    add("--lag", type=int, help=_help("--lag", "lag of the predictors in sessions "
                                      "(default 0)"))
    add("--detrend", action="store_true",
        help=_help("--detrend", "remove each person's linear trend before the split"))
    add("--indistinguishable", action="store_true",
        help=_help("--indistinguishable", "one intercept and effects pooled over roles "
                   "(--dynamic: the same lagged effects for both roles)"))
    add("--interaction", action="store_true",
        help=_help("--interaction", "add actor x partner terms"))
    add("--moderator", action="append",
        help=_help("--moderator", "dyad-level moderator (repeatable; one with --centring "
                   "latent or --dynamic: a grouping, one model per group)"))
    add("--reference", action="append", metavar="COL=LEVEL",
        help=_help("--reference", "reference level of a categorical --moderator, e.g. "
                   "treatment=CBT (repeatable); default: the data's declared order (SPSS/"
                   "Stata value labels, Parquet categories), else the first level in "
                   "sorted order"))
    add("--covariate", action="append", help=_help("--covariate", "covariate (repeatable)"))
    add("--random", choices=("none", "intercepts", "slopes"),
        help=_help("--random", "random effects per dyad (default intercepts, or none for "
                   "cross-sectional data)"))
    add("--residual", choices=tuple(RESIDUAL_NAMES),
        help=_help("--residual", "residual structure (default un; cs with "
                   "--indistinguishable); --centring latent takes un or un-ar1"))
    add("--therapist-level", action="store_true",
        help=_help("--therapist-level", "therapist level (needs --therapist): a random "
                   "intercept per therapist, or with --centring latent or --dynamic a "
                   "random vector"))
    add("--therapist-covariance", choices=("unstructured", "diagonal"),
        help=_help("--therapist-covariance", "with --therapist-level (--centring latent or "
                   "--dynamic): the therapist-level covariance of the variables (default "
                   "unstructured)"))
    add("--method", choices=("reml", "ml"),
        help=_help("--method", "estimation method (default reml; ml with --centring "
                   "latent, as lavaan)"))
    add("--df", choices=("satterthwaite", "containment"),
        help=_help("--df", "denominator df of the t tests (default satterthwaite)"))


def register(commands: Any) -> None:
    """Add the subcommand to the ``apim`` parser."""
    parser = commands.add_parser(
        "fit", help="fit an APIM and print its tables",
        description="Fit an actor-partner interdependence model and print APA-style "
        "tables (or JSON); optionally write a self-contained HTML report.",
        formatter_class=HelpFormatter, epilog=EXAMPLES)
    add_model_arguments(parser)
    add_out_of_core_option(parser)
    output = parser.add_argument_group("output [every model]")
    output.add_argument("--format", choices=("table", "markdown", "latex", "html", "json"),
                        default="table", help="what to print")
    output.add_argument("--json", metavar="FILE", help="also write the full result as JSON")
    output.add_argument("--report", metavar="FILE.html",
                        help="also write an HTML report (tables, figures, data report)")
    output.add_argument("--docx", metavar="FILE.docx",
                        help="also write the APA tables as a Word document (needs "
                        "python-docx: pip install python-docx)")
    output.add_argument("--test", metavar="HYPOTHESIS", action="append",
                        help="a Wald test by effect names, e.g. 'patient.actor.within = "
                        "therapist.actor.within' (repeatable; z tests for latent fits)")
    output.add_argument("--force", action="store_true", help="replace the --json, "
                        "--report or --docx file if it exists (never the data file)")
    parser.set_defaults(run=run)
