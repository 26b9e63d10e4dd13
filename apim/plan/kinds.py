"""The model kinds of a plan's analyses and how flat settings become their specs.

An analysis's settings choose its kind the way ``apim fit``'s options do
(:func:`apim.cli.fit.model_kind`): ``dynamic = true`` the dynamic APIM
(:class:`~apim.model.dynamic_spec.DynamicAPIMSpec`), ``centring = "latent"`` the latent
APIM (:class:`~apim.model.spec.LatentAPIMSpec`), a ``family`` the generalized APIM of a
binary or ordinal outcome (:class:`~apim.model.generalized_spec.GeneralizedAPIMSpec`),
otherwise the observed-mean APIM (:class:`~apim.model.spec.APIMSpec`), which
``out_of_core = true``, ``block_rows = N`` or ``scheduler = "tcp://host:8786"`` fit from
the file read in blocks (:func:`~apim.model.out_of_core.fit_out_of_core`), here or on a
Dask cluster.

The settings of a kind are the fields of its spec, read from the dataclass
(:func:`flat_fields`: nested specs such as the decomposition and the covariance are
flattened, the spec's ``reference`` of moderator levels is ``reference_levels``), so a
field added to a spec is a plan setting at once. A few settings are translated as the
CLI translates its options (:data:`TRANSLATED`). A setting that does not apply to the
chosen kind is refused, naming the analysis, the setting and why: the reasons are in
:data:`REASONS` (the CLI keeps its own, worded for its flags, in
:data:`apim.cli.fit.OPTIONS`; the plan cannot import the CLI, which imports the plan),
a ``df`` refusal reuses the registry's (:data:`apim.model.registry.FITTERS`), and a
setting without a reason gets one written from the fields.

Examples
--------
>>> spec, out_of_core = build_spec("m", {"outcome": "y", "predictors": ("x",),
...                                     "family": "ordinal", "nagq": 1})
>>> type(spec).__name__, spec.nagq, out_of_core
('GeneralizedAPIMSpec', 1, None)
>>> build_spec("m", {"outcome": "y", "predictors": ("x",), "nagq": 7})
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
apim.errors.SpecError: analysis m: nagq = 7 does not apply to the observed-mean APIM: ...
>>> build_spec("m", {"outcome": "y", "predictors": ("x",), "block_rows": 5000})[1]
OutOfCore(block_rows=5000, scheduler=None)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from apim.data.blocks import BLOCK_ROWS
from apim.errors import SpecError
from apim.model.dynamic_spec import DynamicAPIMSpec
from apim.model.generalized_spec import GeneralizedAPIMSpec
from apim.model.out_of_core import check_out_of_core
from apim.model.registry import FITTERS
from apim.model.spec import APIMSpec, LatentAPIMSpec
from apim.specbase import Spec, type_hints

__all__ = ["Kind", "KINDS", "OutOfCore", "build_spec", "choose_kind", "flat_fields",
           "flat_values", "list_fields", "reference_pairs", "setting_names",
           "takes_df", "LEVELS", "REASONS", "TRANSLATED", "PLAN_SETTINGS", "FIT_SETTINGS"]

#: The spec's ``reference`` (moderators' reference levels, a table in the plan) is kept
#: apart from the decomposition's ``reference`` (text: what the between parts are centred
#: on) under this name.
LEVELS = "reference_levels"
#: Settings of the run, not of the spec: the data set, the rows and the df of t tests.
PLAN_SETTINGS = ("data", "subset", "df")
#: Settings of how the observed-mean APIM is fitted: from the file read in blocks, here
#: (``out_of_core = true``, ``block_rows = N``) or on a Dask cluster (``scheduler``).
FIT_SETTINGS = ("out_of_core", "block_rows", "scheduler")


@dataclass(frozen=True)
class Kind:
    """A model kind of a plan: its spec type, its name and how a plan chooses it."""

    name: str
    spec_type: type[Spec]
    chosen_by: str

    @property
    def title(self) -> str:
        """How messages name it: ``the latent APIM (centring = "latent")``."""
        name = getattr(self.spec_type, "kind", self.spec_type.__name__)
        return f"the {name}" + (f" ({self.chosen_by})" if self.chosen_by else "")


OBSERVED = Kind("observed", APIMSpec, "")
LATENT = Kind("latent", LatentAPIMSpec, 'centring = "latent"')
GENERALIZED = Kind("generalized", GeneralizedAPIMSpec, 'family = "binomial" or "ordinal"')
DYNAMIC = Kind("dynamic", DynamicAPIMSpec, "dynamic = true")
KINDS = (OBSERVED, LATENT, GENERALIZED, DYNAMIC)


def choose_kind(settings: Mapping[str, Any]) -> Kind:
    """The kind the settings choose (in the CLI's order: dynamic, latent, generalized)."""
    dynamic = settings.get("dynamic", False)
    if not isinstance(dynamic, bool):
        raise SpecError(f"dynamic = {dynamic!r} must be true or false")
    if dynamic:
        return DYNAMIC
    if settings.get("center") == "latent":
        return LATENT
    return GENERALIZED if "family" in settings else OBSERVED


def _is_spec(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Spec)


_FLAT: dict[type, dict[str, tuple[str, ...]]] = {}


def flat_fields(spec_type: type[Spec]) -> dict[str, tuple[str, ...]]:
    """Setting name -> path of fields in ``spec_type``: its own fields first (in order,
    ``reference`` as :data:`LEVELS`), then those of its nested specs."""
    if spec_type not in _FLAT:
        _FLAT[spec_type] = _flat_fields(spec_type)
    return _FLAT[spec_type]


def _flat_fields(spec_type: type[Spec]) -> dict[str, tuple[str, ...]]:
    hints = type_hints(spec_type)
    fields = [f for f in dataclasses.fields(spec_type) if f.init]  # type: ignore[arg-type]
    out: dict[str, tuple[str, ...]] = {}
    for f in fields:
        if not _is_spec(hints[f.name]):
            out[LEVELS if f.name == "reference" else f.name] = (f.name,)
    for f in fields:
        if _is_spec(hints[f.name]):
            for inner in dataclasses.fields(hints[f.name]):
                out.setdefault(inner.name, (f.name, inner.name))
    return out


@cache
def list_fields() -> frozenset[str]:
    """Settings whose value is a list of column names (one value, not a list of values):
    the fields typed ``tuple[str, ...]`` of every kind."""
    names = set()
    for kind in KINDS:
        for name, path in flat_fields(kind.spec_type).items():
            owner: Any = kind.spec_type
            for step in path[:-1]:
                owner = type_hints(owner)[step]
            if type_hints(owner)[path[-1]] == tuple[str, ...]:
                names.add(name)
    return frozenset(names)


#: Settings a kind takes under another name, as the CLI takes its options: the latent and
#: dynamic APIMs' one ``moderator`` (a grouping) from ``moderators``, the latent APIM's
#: AR(1) from ``residual`` (``un`` or ``un-ar1``), the dynamic APIM's equal lagged
#: effects from ``distinguishable = false``.
TRANSLATED: dict[tuple[str, str], str] = {
    ("latent", "moderators"): "moderator", ("dynamic", "moderators"): "moderator",
    ("latent", "residual"): "ar1", ("dynamic", "distinguishable"): "equal_roles",
}
_LATENT_RESIDUALS = {"un": False, "un-ar1": True}


def setting_names() -> tuple[str, ...]:
    """Every setting an analysis may have, in the order of the output tables' columns."""
    names: dict[str, None] = dict.fromkeys(PLAN_SETTINGS)
    for kind in KINDS:
        names.update(dict.fromkeys(flat_fields(kind.spec_type)))
    names.update(dict.fromkeys(("dynamic", *FIT_SETTINGS)))
    return tuple(names)


def takes_df(spec_type: type[Spec]) -> bool:
    """Whether the kind's fits have t tests with a df method (the registry says)."""
    return "df" in FITTERS[spec_type].options


_FAMILY_ONLY = ('it applies to a binary or ordinal outcome: add family = "binomial" or '
                'family = "ordinal", or drop {setting}')
_DYNAMIC_ONLY = "it sets up the dynamic APIM: add dynamic = true, or drop {setting}"
_LATENT_SPLIT = ("the latent model splits the predictors itself (latent person means); "
                 "drop {setting}, or drop centring = \"latent\"")
_DYNAMIC_SPLIT = ("the dynamic APIM has latent person means and lag-1 effects of every "
                  "variable built in (no centring, no lag option); drop {setting}")
_OUT_OF_CORE = ("the fit from the file read in blocks (here or on a Dask cluster) is for "
                "the observed-mean APIM; fit in memory: drop {setting}")

#: Why a setting does not apply to a kind (``{setting}`` is replaced by it), where the
#: fields alone do not say it well; the CLI's wording of the same reasons is in
#: :data:`apim.cli.fit.OPTIONS`.
REASONS: dict[tuple[str, str], str] = {
    **{(s, k): _FAMILY_ONLY for s in ("link", "nagq", "thresholds")
       for k in ("observed", "latent", "dynamic")},
    ("family", "latent"): "the latent APIM models Gaussian outcomes; drop {setting} or "
                          "centring = \"latent\"",
    ("family", "dynamic"): "the dynamic APIM models Gaussian variables; drop {setting} or "
                           "dynamic = true",
    **{(s, k): _DYNAMIC_ONLY for s in ("initial", "reverse_paths", "equal_roles")
       for k in ("observed", "latent", "generalized")},
    **{(s, "latent"): _LATENT_SPLIT for s in ("lag", "lag_by", "detrend", "partner",
                                             "reference")},
    **{(s, "dynamic"): _DYNAMIC_SPLIT for s in ("center", "lag", "lag_by", "detrend",
                                               "partner", "reference")},
    ("interaction", "latent"): "the latent model has no actor x partner terms; drop "
                               "{setting}",
    ("interaction", "dynamic"): "the dynamic APIM has no actor x partner terms; drop "
                                "{setting}",
    ("covariates", "latent"): "the latent model has no covariates; drop {setting}",
    ("distinguishable", "latent"): "the latent model has effects per role "
                                   "(distinguishable members); drop {setting}",
    ("random", "latent"): "its dyad level is the unstructured between-dyad covariance "
                          "(Sigma_B) of all the variables; drop {setting}",
    ("random", "generalized"): "a binary or ordinal outcome's model has the dyad's two "
                               "correlated random intercepts; drop {setting}",
    ("random", "dynamic"): "its person level is the unstructured covariance (Sigma_B) of "
                           "the latent means of all the variables; drop {setting}",
    ("residual", "generalized"): "a binary or ordinal outcome has no residual variance to "
                                 "structure (the link fixes it); drop {setting}",
    ("residual", "dynamic"): "its session level is the lag-1 process with unstructured "
                             "innovations; drop {setting}",
    ("therapist_covariance", "observed"): "the observed-mean model has one therapist "
                                          "random intercept; add centring = \"latent\" "
                                          "(with therapist_level = true), or drop "
                                          "{setting}",
    ("method", "dynamic"): "the dynamic APIM is fitted by ML (as lavaan's RI-CLPM); drop "
                           "{setting}",
    **{(s, k): _OUT_OF_CORE for s in FIT_SETTINGS
       for k in ("latent", "generalized", "dynamic")},
}


@dataclass(frozen=True)
class OutOfCore:
    """How an observed-mean APIM is fitted from its file read in blocks of whole dyads:
    rows read at a time, and the Dask scheduler whose workers read them (or None)."""

    block_rows: int = BLOCK_ROWS
    scheduler: str | None = None


def _shown(setting: str, value: Any) -> str:
    """A setting as a plan writes it (``center`` as ``centring``, its documented name)."""
    setting = "centring" if setting == "center" else setting
    if isinstance(value, str):
        return f"{setting} = {value!r}"
    if isinstance(value, bool):
        return f"{setting} = {str(value).lower()}"
    if isinstance(value, tuple):
        return f"{setting} = {list(value)!r}"
    return f"{setting} = {value!r}"


def _refuse(kind: Kind, setting: str, value: Any, why: str,
            where: str | None) -> SpecError:
    origin = f" (from {where})" if where else ""
    text = why.format(setting=setting)
    if where:
        text += f"; or move it from {where} to the analyses it applies to"
    return SpecError(f"{_shown(setting, value)}{origin} does not apply to "
                     f"{kind.title}: {text}")


def _reason(kind: Kind, setting: str) -> str:
    """Why ``setting`` does not apply to ``kind``: from :data:`REASONS`, the registry
    (``df``), or written from the kinds that have such a field."""
    if (setting, kind.name) in REASONS:
        return REASONS[(setting, kind.name)]
    if setting == "df":
        why = dict(FITTERS[kind.spec_type].refusals).get("df", "it has no t tests")
        return why + "; drop {setting}"
    having = [k.title for k in KINDS if setting in flat_fields(k.spec_type)
              or (k.name, setting) in TRANSLATED]
    return (f"{kind.spec_type.__name__} has no field {setting!r}; it applies to "
            f"{' and '.join(having) or 'no kind'}; drop {{setting}}")


def _names(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())


def reference_pairs(value: Any) -> list[tuple[Any, Any]]:
    """A plan's ``reference = {treatment = "CBT"}`` (or a list of pairs) as pairs; the
    spec checks the types."""
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, (list, tuple)) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        return [tuple(p) for p in value]
    raise SpecError(f"reference={value!r} must map moderators to their reference level: "
                    "reference = {treatment = \"CBT\"}")


def _translate(kind: Kind, setting: str, value: Any) -> Any:
    """The value of the field that ``setting`` is translated to (:data:`TRANSLATED`)."""
    if setting == "moderators":
        names = _names(value)
        if len(names) > 1:
            raise SpecError(f"{_shown(setting, names)}: {kind.title} takes "
                            "one moderator (a grouping: one model per group); give one")
        return names[0] if names else None
    if setting == "residual":
        if value not in _LATENT_RESIDUALS:
            raise SpecError(f"residual = {value!r} does not apply to "
                            f"{kind.title}: its session-level covariance is unstructured "
                            "(residual = \"un\", the default) with optional AR(1) over "
                            "sessions (\"un-ar1\"); give one of those or drop residual")
        return _LATENT_RESIDUALS[value]
    if setting == "distinguishable":
        if not isinstance(value, bool):
            raise SpecError(f"distinguishable = {value!r} must be true or "
                            "false")
        return not value
    raise AssertionError(setting)  # pragma: no cover - TRANSLATED lists only these


def _out_of_core(settings: Mapping[str, Any]) -> OutOfCore | None:
    """The out-of-core settings, checked (their kind is checked by the caller)."""
    flag = settings.get("out_of_core")
    if flag is not None and not isinstance(flag, bool):
        raise SpecError(f"out_of_core = {flag!r} must be true or false "
                        "(block_rows = N sets the rows read at a time)")
    rows, scheduler = settings.get("block_rows"), settings.get("scheduler")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int)
                             or rows < 1):
        raise SpecError(f"block_rows = {rows!r} must be a positive whole "
                        "number of rows")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler):
        raise SpecError(f"scheduler = {scheduler!r} must be the address of "
                        "a Dask scheduler, e.g. \"tcp://host:8786\"")
    if flag is False:
        given = [s for s in ("block_rows", "scheduler") if settings.get(s) is not None]
        if given:
            raise SpecError(f"{given[0]} fits out of core, but out_of_core "
                            f"= false; drop one of them")
        return None
    if not (flag or rows is not None or scheduler is not None):
        return None
    return OutOfCore(BLOCK_ROWS if rows is None else rows, scheduler)


def build_spec(aid: str, settings: Mapping[str, Any],
               inherited: Mapping[str, str] | None = None
               ) -> tuple[Spec, OutOfCore | None]:
    """The spec of analysis ``aid``'s settings and, for a fit from the file read in
    blocks, how (checked; a :class:`~apim.errors.SpecError` names the analysis).

    ``inherited`` maps settings to where they came from (``[defaults]``, ``[plan]``):
    a ``[plan]`` df is the default of the kinds with t tests only; anything else that
    does not apply to the kind is refused, from wherever it came.
    """
    inherited = inherited or {}
    try:
        return _build(settings, inherited)
    except SpecError as error:
        text = str(error)
        raise SpecError(text if text.startswith(f"analysis {aid}:")
                        else f"analysis {aid}: {text}") from None


def _build(settings: Mapping[str, Any], inherited: Mapping[str, str]
           ) -> tuple[Spec, OutOfCore | None]:
    kind = choose_kind(settings)
    fields = flat_fields(kind.spec_type)
    values: dict[tuple[str, ...], Any] = {}
    for setting, value in settings.items():
        if setting in ("data", "subset", "dynamic") or (setting == LEVELS and LEVELS in fields):
            continue
        if setting == "center" and (kind is LATENT or (
                value == "observed" and kind in (OBSERVED, GENERALIZED))):
            continue  # the kind's choice: centring = "latent" or "observed" (the default)
        if setting == "df" and (takes_df(kind.spec_type) or inherited.get("df") == "[plan]"):
            continue
        if setting in FIT_SETTINGS and (kind is OBSERVED or value is False):
            continue
        target = TRANSLATED.get((kind.name, setting))
        if target is not None and target in settings:
            raise SpecError(f"give {target} or {setting}, not both")
        if target is not None:
            values[fields[target]] = _translate(kind, setting, value)
        elif setting in fields:
            values[fields[setting]] = value
        else:
            raise _refuse(kind, setting, value, _reason(kind, setting),
                          inherited.get(setting))
    if settings.get(LEVELS) and LEVELS in fields:
        # a [defaults] reference serves the analyses moderated by its column
        moderators = [*_names(values.get(("moderators",))),
                      *_names(values.get(("moderator",)))]
        values[fields[LEVELS]] = [(c, v) for c, v in reference_pairs(settings[LEVELS])
                                  if c in moderators]
    spec = _construct(kind.spec_type, values)
    out_of_core = _out_of_core(settings) if kind is OBSERVED else None
    if out_of_core is not None:
        _check_out_of_core(settings, spec)
    return spec, out_of_core


def _construct(spec_type: type[Spec], values: Mapping[tuple[str, ...], Any]) -> Spec:
    """``spec_type`` from values by path of fields (nested specs from their fields)."""
    hints = type_hints(spec_type)
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {
        f.name: {} for f in dataclasses.fields(spec_type)  # type: ignore[arg-type]
        if _is_spec(hints[f.name])}
    for path, value in values.items():
        if len(path) == 1:
            top[path[0]] = value
        else:
            nested[path[0]][path[1]] = value
    for name, inner in nested.items():
        top[name] = hints[name].from_dict(inner)
    return spec_type(**top)


def _check_out_of_core(settings: Mapping[str, Any], spec: Spec) -> None:
    """What the out-of-core fit cannot do, refused before anything is read."""
    if settings.get("subset") not in (None, ""):
        raise SpecError(f"subset = {settings['subset']!r} does not apply to the fit from "
                        "the file read in blocks (it reads the file as it is): write the "
                        "rows to a file of their own, or fit in memory (drop out_of_core, "
                        "block_rows and scheduler)")
    if settings.get("df", "satterthwaite") != "satterthwaite":
        raise SpecError(f"df = {settings['df']!r} does not apply to the fit from the file "
                        "read in blocks: its t tests use Satterthwaite df; drop df")
    assert isinstance(spec, APIMSpec)
    check_out_of_core(spec)


def flat_values(spec: Spec) -> dict[str, Any]:
    """The spec's fields as settings (:func:`flat_fields`), JSON-ready."""
    plain = spec.to_dict()
    out = {}
    for setting, path in flat_fields(type(spec)).items():
        value: Any = plain
        for step in path:
            value = value[step]
        out[setting] = value
    return out
