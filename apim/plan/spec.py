"""Plan files: data sets, shared defaults and analyses that expand as products of lists.

A plan is a TOML file (read with :mod:`tomllib`)::

    [plan]
    name = "alliance"                 # optional; also: df = "satterthwaite", seed = 0

    [data.sessions]                   # one table per data set
    file = "sessions.csv"             # relative to the plan file
    dyad = "dyad"
    session = "session"
    role = "role"
    roles = ["patient", "therapist"]  # reference first
    therapist = "therapist"           # optional; layout = "long" | "wide" | "pairwise"
    categories = {arm = ["CBT", "AFT"]}   # optional: order of categories, reference first

    [defaults]                        # shared by every analysis
    data = "sessions"
    outcome = "outcome"
    reference = {treatment = "CBT"}   # optional: reference level of a moderator (where
                                      # an analysis moderates by it; else declared order,
                                      # else sorted)

    [[analysis]]
    id = "main"
    predictors = ["alliance"]         # a list of names is ONE value for list fields
    moderators = [[], ["treatment"]]  # a list of lists: one analysis per list
    residual = ["un", "un-ar1"]       # a list for any other field: one analysis per value

    [[analysis]]                      # the same effects without the centring bias
    id = "latent"
    centring = "latent"               # the latent APIM (one moderator: a grouping)
    predictors = ["alliance"]

    [[analysis]]
    id = "rupture"
    outcome = "rupture"               # 0/1 each session
    predictors = ["alliance"]
    family = "binomial"               # the generalized APIM ("ordinal": ordered categories)
    nagq = [1, 7]                     # Laplace and 7 quadrature points; link, thresholds

    [[analysis]]
    id = "lagged"
    predictors = ["alliance"]
    dynamic = true                    # the dynamic APIM (lag-1 effects, latent means)
    initial = ["free", "stationary"]  # reverse_paths, equal_roles, moderators (one)

    [[analysis]]
    id = "big"
    data = "all_sites"                # a long Parquet/CSV file, its dyads' rows together
    predictors = ["alliance"]
    block_rows = 250_000              # read in blocks (out_of_core = true: the default size)
    scheduler = "tcp://host:8786"     # optional: the blocks read by a Dask cluster's workers

Analysis settings are flat: ``data, subset`` (a filter expression, see
:mod:`apim.plan.filters`), ``df`` and the fields of the spec of the analysis's model kind
(:mod:`apim.plan.kinds`, chosen as ``apim fit``'s options choose it):

- the observed-mean APIM (:class:`~apim.model.spec.APIMSpec`; the default): ``outcome,
  predictors, distinguishable, interaction, moderators, covariates, method``; ``reference``
  as a table, ``{arm = "CBT"}``, is its ``reference`` (the column ``reference_levels``),
  as text it is the decomposition's; :class:`~apim.model.centring.DecompositionSpec`'s
  ``center`` (alias ``centring``), ``lag, lag_by, detrend, partner`` and
  :class:`~apim.model.spec.CovarianceSpec`'s ``random, residual, therapist_level``;
  ``out_of_core = true``, ``block_rows = N`` or ``scheduler = "tcp://..."`` fit it from
  the file read in blocks of whole dyads
  (:func:`~apim.model.out_of_core.fit_out_of_core`: random intercepts or slopes, no moderators,
  therapist level or subset), here or on a Dask cluster;
- ``centring = "latent"``: the latent APIM (:class:`~apim.model.spec.LatentAPIMSpec`:
  ``moderator`` -- one of ``moderators`` --, ``ar1`` -- or ``residual = "un-ar1"`` --,
  ``method, therapist_level, therapist_covariance``);
- ``family = "binomial"`` or ``"ordinal"``: the generalized APIM
  (:class:`~apim.model.generalized_spec.GeneralizedAPIMSpec`: ``link, nagq, thresholds``
  and the observed-mean APIM's effects and decomposition);
- ``dynamic = true``: the dynamic APIM (:class:`~apim.model.dynamic_spec.DynamicAPIMSpec`:
  ``initial, reverse_paths, equal_roles`` -- or ``distinguishable = false`` --,
  ``moderator`` -- one of ``moderators``).

A field added to a spec is a setting at once. A setting that does not apply to the
analysis's kind is refused when the plan is read, naming the analysis, the setting (and
whether it came from ``[defaults]``) and why; ``[plan] df`` serves the kinds with t tests
only. Expanded analyses are named ``ID`` (one) or ``ID-01``, ``ID-02`` ... in product
order.

Examples
--------
>>> text = '''
... [data.d]
... file = "x.csv"
... dyad = "dyad"
... role = "role"
... [[analysis]]
... id = "m"
... data = "d"
... outcome = "y"
... predictors = ["x"]
... residual = ["un", "ar1"]
... moderators = [[], ["arm"]]
... '''
>>> plan = Plan.from_text(text)
>>> [a.id for a in plan.analyses]
['m-01', 'm-02', 'm-03', 'm-04']
>>> plan.analyses[3].settings["residual"], plan.analyses[3].settings["moderators"]
('ar1', ('arm',))
>>> plan.analyses[0].spec().covariance.residual
'un'
>>> kinds = Plan.from_text(text.replace('residual = ["un", "ar1"]', 'family = "binomial"\\n'
...                                     'nagq = [1, 7]'))
>>> [(a.id, type(a.spec()).__name__, a.spec().nagq) for a in kinds.analyses[::2]]
[('m-01', 'GeneralizedAPIMSpec', 1), ('m-03', 'GeneralizedAPIMSpec', 7)]
>>> Plan.from_text(text.replace('residual = ["un", "ar1"]', 'dynamic = true\\n'
...                             'centring = "latent"'))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
apim.errors.SpecError: analysis m-01: centring = 'latent' does not apply to the dynamic APIM ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from apim.data.session import SessionData
from apim.errors import SpecError
from apim.model.result import DF
from apim.plan.filters import Filter
from apim.plan.kinds import (
    LEVELS,
    OutOfCore,
    build_spec,
    flat_fields,
    flat_values,
    list_fields,
    reference_pairs,
    setting_names,
    takes_df,
)
from apim.specbase import Spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Plan", "Analysis", "DataSource", "SETTINGS", "COLUMNS"]

_ALIASES = {"centring": "center", "centering": "center", "centre": "center",
            "predictor": "predictors", "moderator": "moderators", "covariate": "covariates"}
#: Every setting of an analysis (:func:`apim.plan.kinds.setting_names`).
SETTINGS = setting_names()
#: Columns of the output tables: the model kind, then the settings ("df" is the effects'
#: df there, so the setting is ``df_method``).
COLUMNS = ("model", *("df_method" if k == "df" else k for k in SETTINGS))
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_ID = 100  # ids name files; most file systems take 255 bytes
_DATA_KEYS = ("file", "dyad", "session", "role", "roles", "therapist", "layout",
              "separator", "categories")


@dataclass(frozen=True)
class DataSource:
    """A data file and its column mapping (a ``[data.NAME]`` table)."""

    name: str
    file: str
    dyad: str
    role: str | None = None
    session: str | None = None
    roles: tuple[str, ...] | None = None
    therapist: str | None = None
    layout: str = "long"
    separator: str = "_"
    categories: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any], base: Path) -> DataSource:
        unknown = sorted(set(table) - set(_DATA_KEYS))
        if unknown:
            raise SpecError(f"[data.{name}] has no setting {unknown[0]!r}; use "
                            f"{', '.join(_DATA_KEYS)}")
        for key in ("file", "dyad"):
            if not isinstance(table.get(key), str):
                raise SpecError(f"[data.{name}] needs {key} = \"...\"")
        layout = table.get("layout", "long")
        if layout not in ("long", "wide", "pairwise"):
            raise SpecError(f"[data.{name}] layout={layout!r} is not one of 'long', 'wide', "
                            "'pairwise'")
        if layout != "wide" and not isinstance(table.get("role"), str):
            raise SpecError(f"[data.{name}] needs role = \"COLUMN\" (the column telling the "
                            "two members apart)")
        if layout == "wide" and not table.get("roles"):
            raise SpecError(f"[data.{name}] layout = \"wide\" needs roles = [\"A\", \"B\"] "
                            "(the column prefixes)")
        path = Path(table["file"]).expanduser()
        if not path.is_absolute():
            path = base / path
        roles = table.get("roles")
        categories = table.get("categories", {})
        if not isinstance(categories, dict) or not all(
                isinstance(v, list) and v for v in categories.values()):
            raise SpecError(f"[data.{name}] categories must map columns to lists of their "
                            "values, reference first: categories = {treatment = [\"CBT\", "
                            "\"AFT\"]}")
        return cls(name=name, file=str(path), dyad=table["dyad"], role=table.get("role"),
                   session=table.get("session"),
                   roles=tuple(str(r) for r in roles) if roles else None,
                   therapist=table.get("therapist"), layout=layout,
                   separator=table.get("separator", "_"),
                   categories=tuple((str(k), tuple(v)) for k, v in categories.items()))

    def file_hash(self) -> str:
        """SHA-256 of the file's bytes (the data part of every result's key)."""
        path = Path(self.file)
        if not path.is_file():
            raise SpecError(f"[data.{self.name}] file {self.file!r} does not exist")
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def digest(self) -> str:
        """Hash of the file's bytes and the column mapping."""
        mapping = {k: v for k, v in dataclasses.asdict(self).items() if k != "file"}
        text = json.dumps({"file": self.file_hash(), **mapping}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def load(self) -> SessionData:
        """Read and validate the data."""
        common: dict[str, Any] = {"dyad": self.dyad, "session": self.session,
                                  "therapist": self.therapist}
        if self.layout == "wide":
            data = SessionData.from_wide(self.file, roles=self.roles or (),
                                         separator=self.separator, **common)
        else:
            read = SessionData.from_pairwise if self.layout == "pairwise" else \
                SessionData.from_long
            data = read(self.file, role=self.role or "", roles=self.roles, **common)
        return self._categories(data)

    def _categories(self, data: SessionData) -> SessionData:
        """Text columns as categories in the stated order (the first is the reference)."""
        if not self.categories:
            return data
        frame = data.frame.copy()
        for column, values in self.categories:
            if column not in frame.columns:
                raise SpecError(f"[data.{self.name}] categories: no column {column!r} in "
                                f"{self.file!r}")
            present = frame[column].dropna()
            stray = sorted({str(v) for v in present} - {str(v) for v in values})
            if stray:
                raise SpecError(f"[data.{self.name}] categories: column {column!r} has the "
                                f"value {stray[0]!r}, which is not in {list(values)}")
            frame[column] = pd.Categorical(frame[column].map(
                lambda v: None if pd.isna(v) else str(v)), categories=[str(v) for v in values])
        return data.replace(frame)


@dataclass(frozen=True)
class Analysis:
    """One expanded analysis: its id, its flat settings and the data set it uses.

    ``inherited`` names the settings taken from ``[defaults]`` or ``[plan]`` (said in
    errors about them).
    """

    id: str
    settings: dict[str, Any] = field(hash=False)
    data: DataSource
    inherited: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def build(self) -> tuple[Spec, OutOfCore | None]:
        """The spec of the settings and, for a fit from the file read in blocks, how
        (checked: :func:`apim.plan.kinds.build_spec`; built once)."""
        return self._built

    @cached_property
    def _built(self) -> tuple[Spec, OutOfCore | None]:
        spec, out_of_core = build_spec(self.id, self.settings, self.inherited)
        if out_of_core is not None and self.data.layout != "long":
            raise SpecError(f"analysis {self.id}: the fit from the file read in blocks "
                            f"needs a long file (a row per member and session); "
                            f"[data.{self.data.name}] has layout = {self.data.layout!r}: "
                            "convert it (apim convert) or fit in memory")
        try:
            self.fit_options(spec)  # the df method, where the kind has t tests
        except SpecError as error:
            raise SpecError(f"analysis {self.id}: {error}") from None
        return spec, out_of_core

    def spec(self) -> Spec:
        """The spec of the settings (checked): its kind chosen as
        :mod:`apim.plan.kinds` says."""
        return self.build()[0]

    @property
    def out_of_core(self) -> OutOfCore | None:
        """How the analysis is fitted from its file read in blocks (None: in memory)."""
        return self.build()[1]

    @property
    def df(self) -> DF:
        """Denominator df method of the t tests."""
        value = str(self.settings.get("df", "satterthwaite"))
        if value == "containment":
            return "containment"
        if value == "satterthwaite":
            return "satterthwaite"
        raise SpecError(f"df={value!r} is not one of 'satterthwaite', 'containment'")

    def fit_options(self, spec: Spec) -> dict[str, Any]:
        """The options of :func:`apim.fit` for ``spec``: the df method where the kind has
        t tests."""
        return {"df": self.df} if takes_df(type(spec)) else {}

    @property
    def subset(self) -> Filter | None:
        text = self.settings.get("subset")
        return None if text in (None, "") else Filter.parse(text)

    def select(self, data: SessionData) -> SessionData:
        """The rows of ``data`` the subset keeps (all when there is none)."""
        subset = self.subset
        if subset is None:
            return data
        names = data.columns.canonical()
        mask = subset.mask(data.frame, names)
        if not mask.any():
            raise SpecError(f"analysis {self.id}: subset {subset.text!r} keeps no rows")
        return data.replace(data.frame.loc[mask.to_numpy()].reset_index(drop=True))

    def key(self, data_digest: str, version: str) -> str:
        """The result's key: hash of the spec (its kind included), the subset, df, the
        data, the version and, for a fit from the file read in blocks, the rows per
        block (not the scheduler: the numbers do not depend on where the blocks are
        read)."""
        spec, out_of_core = self.build()
        payload: dict[str, Any] = {"spec": spec.digest(), "subset": self.settings.get("subset"),
                                   "df": self.df, "data": data_digest, "version": version}
        if out_of_core is not None:
            payload["out_of_core"] = {"block_rows": out_of_core.block_rows}
        text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def row(self) -> dict[str, Any]:
        """The model kind and the settings in effect as table columns (:data:`COLUMNS`:
        defaults filled in, the residual structure resolved, lists joined with ``+``,
        ``df`` as ``df_method``, empty for kinds with z tests); the raw settings if they
        are invalid."""
        values: dict[str, Any] = {"data": self.data.name, "subset": "", "df": self.df,
                                  **self.settings}
        model = None
        try:
            spec, out_of_core = self.build()
        except SpecError:
            pass
        else:
            model = getattr(spec, "kind", type(spec).__name__)
            values.update(flat_values(spec))
            values[LEVELS] = values.get(LEVELS) or None
            if "residual" in flat_fields(type(spec)):
                values["residual"] = getattr(spec, "residual_structure", values["residual"])
            if not takes_df(type(spec)):
                values["df"] = None
            if out_of_core is not None:
                values.update(out_of_core=True, block_rows=out_of_core.block_rows)
        out: dict[str, Any] = {"analysis": self.id, "model": model}
        for k, column in zip(SETTINGS, COLUMNS[1:]):
            v = values.get(k)
            if k == LEVELS and v is not None:
                v = [f"{c}={level}" for c, level in reference_pairs(v)]
            out[column] = "+".join(map(str, v)) if isinstance(v, (tuple, list)) else v
        return out


def _names(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())


def _check_references(analyses: Sequence[Analysis]) -> None:
    """A reference column no analysis of the plan moderates by is a mistake (a typo): refuse
    it, naming the moderators the plan has."""
    given = {c for a in analyses for c, _ in reference_pairs(a.settings.get(LEVELS) or {})}
    moderators = {m for a in analyses for m in _names(a.settings.get("moderators"))}
    unused = sorted(given - moderators)
    if unused:
        raise SpecError(f"plan: reference {unused[0]}=...: no analysis has {unused[0]!r} as "
                        f"a moderator (moderators in the plan: "
                        f"{', '.join(sorted(moderators)) or 'none'}); fix the column name "
                        "or drop the reference")


def _normalise(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = {}
    for key, value in block.items():
        key = _ALIASES.get(key, key)
        if key == "reference" and (isinstance(value, Mapping) or (
                isinstance(value, list) and value and isinstance(value[0], Mapping))):
            key = LEVELS  # moderators' reference levels, not the centring reference
        if key != "id" and key not in SETTINGS:
            raise SpecError(f"{where}: unknown setting {key!r}; analyses take "
                            f"{', '.join(SETTINGS)}")
        out[key] = value
    return out


ANALYSIS_BYTES = 10_000
"""Memory per analysis while a plan is expanded and run (its settings, job, stored result
and rows of the tables): about 600 bytes measured for the settings alone, ten per
analysis for the effects table's rows."""


def _check_size(total: int, where: str, size: int, lengths: list[int]) -> None:
    """Refuse a plan too large to expand and run, before its analyses are built."""
    from apim.limits import check_memory

    product = " x ".join(f"{k:,}" for k in lengths) or "1"
    check_memory(total * ANALYSIS_BYTES,
                 f"the plan expands to {total:,} analyses ({where} alone to {size:,} = "
                 f"{product} values) and",
                 "split the plan, or give fewer values in its lists")


def _choices(key: str, value: Any) -> list[Any]:
    """The values a setting takes: a list expands, except a list of names for list fields."""
    if key in list_fields():
        if isinstance(value, str):
            return [(value,)]
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            return [tuple(v) for v in value]
        if isinstance(value, list):
            return [tuple(value)]
        return [value]
    if isinstance(value, list):
        if not value:
            raise SpecError(f"setting {key!r} is an empty list: give at least one value")
        return list(value)
    return [value]


@dataclass(frozen=True)
class Plan:
    """A parsed and expanded plan.

    Attributes
    ----------
    name : str
    path : str or None
        The plan file (outputs go beside it by default).
    data : dict of DataSource
    analyses : tuple of Analysis
    seed : int
        Recorded in the manifest (fits are deterministic; seeded parts such as k's Monte
        Carlo interval use it).
    """

    name: str
    path: str | None
    data: dict[str, DataSource] = field(hash=False)
    analyses: tuple[Analysis, ...]
    seed: int = 0

    @classmethod
    def from_file(cls, path: str | Path) -> Plan:
        """Read a plan file."""
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"plan file {str(path)!r} does not exist")
        from apim.data.io import read_utf8  # UTF-8 with or without BOM; others named

        return cls.from_text(read_utf8(path), base=path.parent, path=str(path))

    @classmethod
    def from_text(cls, text: str, base: str | Path = ".", path: str | None = None) -> Plan:
        """Parse plan text (TOML); relative data files are found from ``base``."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise SpecError(f"plan {path or ''}: not valid TOML ({error})") from None
        unknown = sorted(set(raw) - {"plan", "data", "defaults", "analysis"})
        if unknown:
            raise SpecError(f"plan: unknown table [{unknown[0]}]; use [plan], [data.NAME], "
                            "[defaults] and [[analysis]]")
        head = raw.get("plan", {})
        data = {name: DataSource.from_table(name, table, Path(base))
                for name, table in raw.get("data", {}).items()}
        if not data:
            raise SpecError("plan: no data set; add a [data.NAME] table with file, dyad, "
                            "session and role")
        defaults = _normalise(raw.get("defaults", {}), "[defaults]")
        origin = dict.fromkeys(defaults, "[defaults]")
        if "df" in head and "df" not in defaults:
            defaults["df"], origin["df"] = head["df"], "[plan]"
        blocks = raw.get("analysis", [])
        if not blocks:
            raise SpecError("plan: no analysis; add [[analysis]] tables")
        analyses: list[Analysis] = []
        total = 0
        for n, block in enumerate(blocks, start=1):
            where = f"[[analysis]] number {n}"
            own = _normalise(block, where)
            merged = {**defaults, **own}
            inherited = {k: v for k, v in origin.items() if k not in own}
            base_id = str(merged.pop("id", f"a{n}"))
            if len(base_id) > MAX_ID or not _ID.fullmatch(base_id):
                raise SpecError(f"{where}: id {base_id!r} must be 1 to {MAX_ID} letters, "
                                "digits, '_', '-' or '.' (it names a file)")
            if "data" not in merged:
                if len(data) > 1:
                    raise SpecError(f"{where}: say which data set with data = \"NAME\"")
                merged["data"] = next(iter(data))
            keys = list(merged)
            choices = [_choices(k, merged[k]) for k in keys]
            size = math.prod(len(c) for c in choices)
            total += size
            _check_size(total, where, size, [len(c) for c in choices if len(c) > 1])
            for i, values in enumerate(itertools.product(*choices), start=1):
                settings = dict(zip(keys, values))
                source = data.get(str(settings["data"]))
                if source is None:
                    raise SpecError(f"{where}: data {settings['data']!r} is not one of "
                                    f"{', '.join(data)}")
                aid = base_id if size == 1 else f"{base_id}-{i:02d}"
                analyses.append(Analysis(id=aid, settings=settings, data=source,
                                         inherited=inherited))
        _check_references(analyses)
        counts = Counter(a.id for a in analyses)
        repeated = sorted(i for i, n in counts.items() if n > 1)
        if repeated:
            raise SpecError(f"plan: analysis id {repeated[0]!r} is used twice; give each "
                            "[[analysis]] its own id")
        for a in analyses:  # every analysis's model, checked before anything is read
            a.build()
        seed = head.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise SpecError(f"[plan] seed={seed!r} must be a whole number")
        return cls(name=str(head.get("name", Path(path).stem if path else "plan")),
                   path=path, data=data, analyses=tuple(analyses), seed=seed)

    def table(self) -> Any:
        """The expanded analyses, one row each, settings as columns."""
        import pandas as pd

        return pd.DataFrame([a.row() for a in self.analyses]).dropna(axis=1, how="all")

    def __repr__(self) -> str:
        return (f"<Plan {self.name!r}: {len(self.analyses)} analyses on "
                f"{', '.join(self.data)}>")

    def _repr_html_(self) -> str:
        import html

        return (f"<p>Plan <b>{html.escape(self.name)}</b>: {len(self.analyses)} analyses</p>"
                + self.table().to_html(index=False, na_rep=""))
