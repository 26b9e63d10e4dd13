"""Simulating session-by-session dyadic data under the full APIM.

For dyad ``i`` (therapist ``j``, treatment ``m_i`` in {0, 1}), role ``r`` with partner
``r'`` and session ``t = 1..n_sessions``:

Predictor (e.g. alliance)::

    x_irt = mu_r + g_j + a_ir + w_irt
    (a_iP, a_iT) ~ N(0, [x_between_sd, x_between_cor]),  g_j ~ N(0, x_therapist_sd^2)
    w_it = x_phi w_i,t-1 + eta_it,  eta_it ~ N(0, (1 - x_phi^2) [x_within_sd, x_within_cor])

Outcome, with the *observed* decomposition of ``x`` that :func:`apim.model.centring` computes
(``W`` within, ``B`` between: person mean over rated sessions minus the role's mean of
person means), so that estimates are unbiased for these coefficients::

    y_irt = b0_r + (aW_r + c_ir) W_irt + pW_r W_ir't + aB_r B_ir + pB_r B_ir'
            + iW_r W_irt W_ir't + iB_r B_ir B_ir'
            + m_i (t0_r + taW_r W_irt + tpW_r W_ir't + taB_r B_ir + tpB_r B_ir')
            + h_j + u_ir + e_irt
    (u_iP, u_iT) ~ N(0, [intercept_sd, intercept_cor]),  c_ir ~ N(0, slope_sd_r^2),
    h_j ~ N(0, therapist_sd^2),
    Cov(e_irt, e_ir's) = Sigma_rr' residual_phi^|t - s|,  Sigma = [residual_sd, residual_cor]

(``UN x AR(1)``). With ``outcome_from="latent"`` the outcome is built from the latent
decomposition instead: ``W_irt = w_irt`` (the deviation from the person's true level) and
``B_ir = a_ir + g_j`` (the true level), as in real data where observed person means are
error-prone; the latent APIM (:class:`apim.model.latent.LatentAPIMSpec`) is then unbiased
for these coefficients and the observed-mean APIM is not. Pairs like ``actor_within`` are
(reference role, other role). Rows with a missing ``W`` of either member enter the outcome
with that part set to 0; the analysis drops such rows anyway.

Attendance: from session 4 a dyad drops out before each session with probability
``dropout``; a session before dropout is skipped (no row for either member) with
probability ``skipped``; each rating (``x`` or ``y``, each member) is missing with
probability ``missing``; with probability ``questionnaire_missing`` one member (either,
at random) gives no ratings at an attended session (the row stays, both ratings empty).
Therapists each treat ``caseload`` dyads (``caseload=0``: no therapists) and whole
caseloads are assigned to treatment with probability ``treatment_share``
(``balanced_arms=True``: exactly ``round(treatment_share * units)`` of them, drawn at
random).

Options for realistic data (all off by default, so other designs keep their random
streams): the predictor may change by ``x_session_slope`` per session and shift by
``x_treatment`` in the treated arm (both enter ``x`` before it is split); partner slopes
vary between persons (``partner_slope_sd``, like ``slope_sd`` for the actor slope);
columns may be named (``predictor_name``, ``outcome_name``) and the arms labelled
(``treatment_labels``, control first); ratings may be rounded (``decimals``) and kept
within ``bounds`` -- the predictor before it is split, so the outcome still follows the
equation above in the observed ratings.

Binary and ordinal outcomes (``family="binomial"`` or ``"ordinal"``, with ``link`` logit
or probit, ``F`` the logistic or standard normal distribution function): the outcome's
linear predictor ``eta_irt`` is the right-hand side above without ``e_irt`` (intercepts,
actor/partner within/between effects, interactions, treatment terms, the dyad's random
intercepts and the therapist effect, all on the link scale), and::

    binomial:  P(y_irt = 1) = F(eta_irt)
    ordinal:   P(y_irt <= k) = F(theta_rk - eta_irt),  categories k = 0 .. K-1

with the cut-points ``thresholds[r] = (theta_r0, ..., theta_r,K-2)`` per role (increasing),
as :class:`~apim.model.generalized_spec.GeneralizedAPIMSpec` defines the model (an ordinal
outcome has no intercepts: its thresholds take their place). A binary outcome needs its
own ``intercept`` (the log-odds, or probit, of an event at average predictors); the
Gaussian default is refused. The Gaussian-only fields (``residual_sd``, ``residual_cor``,
``residual_phi``, and the random slopes ``slope_sd``, ``partner_slope_sd``, which the
generalized APIM does not fit) must stay at their defaults; ``decimals`` and ``bounds``
then round and bound the predictor only. The random draws up to the outcome are those of
the Gaussian simulation, so the same seed gives the same predictor, sessions and missing
ratings whatever the family; the outcome's own draws (one uniform per row) come last.

Examples
--------
>>> data = simulate(SimulationSpec(n_dyads=20, n_sessions=5), seed=1)
>>> data.n_dyads, sorted(data.variables)
(20, ['treatment', 'x', 'y'])
>>> events = simulate(SimulationSpec(n_dyads=20, n_sessions=5, family="binomial",
...                                  intercept=(-1.0, -1.0)), seed=1)
>>> sorted(events.frame["y"].unique().tolist())
[0.0, 1.0]
>>> bool(events.frame["x"].equals(data.frame["x"]))  # the same predictor as above
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from apim.data.session import ColumnMap, SessionData
from apim.engine.glmm.links import LINKS
from apim.errors import SpecError
from apim.specbase import Spec

__all__ = ["SimulationSpec", "simulate", "true_effects", "true_thresholds",
           "simulation_bytes", "GAUSSIAN_ONLY"]

COLUMNS = 7  # dyad, therapist, treatment, session, role and the two variables
COPIES = 6  # arrays per column alive at the peak (draws, masks, frame, long copy, text)

Pair = tuple[float, float]
Cuts = tuple[tuple[float, ...], tuple[float, ...]]

GAUSSIAN_ONLY = ("residual_sd", "residual_cor", "residual_phi", "slope_sd",
                 "partner_slope_sd")
"""Fields of a Gaussian outcome only: a binary or ordinal outcome has no residual, and the
generalized APIM has no random slopes."""


@dataclass(frozen=True)
class SimulationSpec(Spec):
    """The data-generating process of :func:`simulate` (see the module docstring)."""

    n_dyads: int = 241
    n_sessions: int = 30
    caseload: int = 6
    treatment_share: float = 0.5
    roles: tuple[str, str] = ("patient", "therapist")
    # predictor
    x_mean: Pair = (5.0, 4.8)
    x_between_sd: Pair = (0.7, 0.5)
    x_between_cor: float = 0.4
    x_within_sd: Pair = (0.5, 0.4)
    x_within_cor: float = 0.3
    x_phi: float = 0.4
    x_therapist_sd: float = 0.0
    # outcome: fixed effects per role
    intercept: Pair = (4.6, 4.4)
    actor_within: Pair = (0.4, 0.4)
    partner_within: Pair = (0.15, 0.15)
    actor_between: Pair = (0.5, 0.5)
    partner_between: Pair = (0.2, 0.2)
    interaction_within: Pair = (0.0, 0.0)
    interaction_between: Pair = (0.0, 0.0)
    treatment: Pair = (0.0, 0.0)
    treatment_actor_within: Pair = (0.0, 0.0)
    treatment_partner_within: Pair = (0.0, 0.0)
    treatment_actor_between: Pair = (0.0, 0.0)
    treatment_partner_between: Pair = (0.0, 0.0)
    # outcome: random parts
    intercept_sd: Pair = (0.45, 0.35)
    intercept_cor: float = 0.5
    slope_sd: Pair = (0.0, 0.0)
    therapist_sd: float = 0.0
    residual_sd: Pair = (0.6, 0.45)
    residual_cor: float = 0.3
    residual_phi: float = 0.0
    # attendance
    dropout: float = 0.0
    skipped: float = 0.0
    missing: float = 0.0
    # realistic data (the bundled data set; see the module docstring)
    predictor_name: str = "x"
    outcome_name: str = "y"
    treatment_labels: tuple[str, str] | None = None
    balanced_arms: bool = False
    x_session_slope: float = 0.0
    x_treatment: Pair = (0.0, 0.0)
    partner_slope_sd: Pair = (0.0, 0.0)
    questionnaire_missing: float = 0.0
    decimals: int | None = None
    bounds: tuple[float, float] | None = None
    # outcome built from the observed decomposition (default) or the latent one
    outcome_from: Literal["observed", "latent"] = "observed"
    # the outcome's distribution (see the module docstring)
    family: Literal["gaussian", "binomial", "ordinal"] = "gaussian"
    link: Literal["logit", "probit"] = "logit"
    thresholds: Cuts | None = None

    def check(self) -> None:
        if self.n_dyads < 2 or self.n_sessions < 1:
            raise SpecError("a simulation needs at least 2 dyads and 1 session")
        for name in ("x_between_cor", "x_within_cor", "intercept_cor", "residual_cor",
                     "x_phi", "residual_phi"):
            if not -1 < getattr(self, name) < 1:
                raise SpecError(f"{name}={getattr(self, name)} must lie in (-1, 1)")
        for name in ("dropout", "skipped", "missing", "treatment_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise SpecError(f"{name}={getattr(self, name)} must lie in [0, 1]")
        self._check_realistic()
        self._check_family()

    def _check_family(self) -> None:
        """The fields a binary or ordinal outcome needs and the ones it refuses."""
        if self.family == "gaussian":
            if self.link != "logit" or self.thresholds is not None:
                field = "link" if self.link != "logit" else "thresholds"
                raise SpecError(f"{field}={getattr(self, field)!r} applies to a binary or "
                                "ordinal outcome; set family='binomial' or 'ordinal', or "
                                f"drop {field}")
            return
        default = SimulationSpec()
        given = [n for n in GAUSSIAN_ONLY if getattr(self, n) != getattr(default, n)]
        if given:
            raise SpecError(f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to a "
                            f"Gaussian outcome only: a {self.family} outcome is drawn from "
                            "F(eta) without a residual, and the generalized APIM has no "
                            "random slopes; leave "
                            f"{'them' if len(given) > 1 else 'it'} at the default")
        if self.family == "binomial":
            if self.thresholds is not None:
                raise SpecError(f"thresholds={self.thresholds} apply to an ordinal outcome; "
                                "a binary one has role intercepts instead: drop thresholds")
            if self.intercept == default.intercept:
                raise SpecError(f"a binomial outcome needs its own intercept (the "
                                f"{self.link} of an event at average predictors, e.g. "
                                "intercept=(-1.5, -1.5) for about 18% events with a logit "
                                f"link); the default {default.intercept} is the Gaussian "
                                "outcome's mean")
            return
        if self.intercept != default.intercept:
            raise SpecError(f"intercept={self.intercept} does not apply to an ordinal "
                            "outcome: its thresholds take the intercepts' place; drop "
                            "intercept and move the thresholds instead")
        cuts = self.thresholds
        if cuts is None or not cuts[0] or len(cuts[0]) != len(cuts[1]):
            raise SpecError(f"thresholds={cuts}: an ordinal outcome needs the same number "
                            "(at least one; K - 1 for K categories) of cut-points per role, "
                            "e.g. thresholds=((-1.0, 1.0), (-0.5, 1.5)) for 3 categories")
        for role, values in zip(self.roles, cuts):
            v = np.asarray(values)
            if not np.all(np.isfinite(v)) or np.any(np.diff(v) <= 0):
                raise SpecError(f"thresholds of {role} {tuple(values)} must be finite and "
                                "increasing (P(y <= k) = F(theta_k - eta))")

    def _check_realistic(self) -> None:
        """Ranges of SDs, counts, names and the options for realistic data."""
        for name in ("x_between_sd", "x_within_sd", "intercept_sd", "slope_sd",
                     "residual_sd", "partner_slope_sd"):
            if min(getattr(self, name)) < 0:
                raise SpecError(f"{name}={getattr(self, name)} must not be negative")
        for name in ("x_therapist_sd", "therapist_sd"):
            if getattr(self, name) < 0:
                raise SpecError(f"{name}={getattr(self, name)} must not be negative")
        if self.caseload < 0:
            raise SpecError(f"caseload={self.caseload} must be 0 (no therapists) or more")
        if not 0 <= self.questionnaire_missing <= 1:
            raise SpecError(f"questionnaire_missing={self.questionnaire_missing} must lie "
                            "in [0, 1]")
        if self.roles[0] == self.roles[1]:
            raise SpecError(f"roles={self.roles} must be two different names")
        names = [self.predictor_name, self.outcome_name]
        reserved = {"dyad", "therapist", "treatment", "session", "role", "row"}
        if names[0] == names[1] or not all(names) or reserved & set(names):
            raise SpecError(f"predictor_name={names[0]!r} and outcome_name={names[1]!r} "
                            "must be two different, non-empty names other than "
                            f"{', '.join(sorted(reserved))}")
        if self.treatment_labels is not None and \
                self.treatment_labels[0] == self.treatment_labels[1]:
            raise SpecError(f"treatment_labels={self.treatment_labels} must be two "
                            "different labels (control first)")
        if self.decimals is not None and self.decimals < 0:
            raise SpecError(f"decimals={self.decimals} must be 0 or more")
        if self.bounds is not None and not self.bounds[0] < self.bounds[1]:
            raise SpecError(f"bounds={self.bounds} must be (lowest, highest) with "
                            "lowest < highest")


def _cov(sd: Pair, cor: float) -> np.ndarray:
    return np.array([[sd[0] ** 2, cor * sd[0] * sd[1]], [cor * sd[0] * sd[1], sd[1] ** 2]])


def _ar1(rng: np.random.Generator, shape: tuple[int, int], cov: np.ndarray,
         phi: float) -> np.ndarray:
    """Stationary bivariate AR(1): (dyads, sessions, 2) with Cov = cov * phi^|t-s|."""
    n, s = shape
    eta = rng.multivariate_normal(np.zeros(2), cov, size=(n, s))
    out = np.empty_like(eta)
    out[:, 0] = eta[:, 0]
    scale = np.sqrt(1 - phi ** 2)
    for t in range(1, s):
        out[:, t] = phi * out[:, t - 1] + scale * eta[:, t]
    return out


def simulation_bytes(spec: SimulationSpec) -> int:
    """Estimated peak memory of :func:`simulate` and writing its result:
    dyads x sessions x 2 roles x :data:`COLUMNS` columns x 8 bytes x :data:`COPIES`
    (measured: about 240 bytes per row at 120,000 rows; the estimate is 336).

    Examples
    --------
    >>> simulation_bytes(SimulationSpec(n_dyads=100, n_sessions=10))
    672000
    """
    return 2 * spec.n_dyads * spec.n_sessions * COLUMNS * 8 * COPIES


def check_size(spec: SimulationSpec, copies: int = 1, what: str = "simulating") -> None:
    """Refuse a simulation the machine's memory cannot hold (:func:`apim.limits.check_memory`),
    before anything is drawn; ``copies`` simulations at once (parallel workers)."""
    from apim.limits import check_memory

    check_memory(simulation_bytes(spec) * copies,
                 f"{what} {spec.n_dyads:,} dyads x {spec.n_sessions:,} sessions x 2 roles "
                 f"({2 * spec.n_dyads * spec.n_sessions:,} rows)",
                 "simulate fewer dyads or sessions")


def simulate(spec: SimulationSpec, seed: int | np.random.SeedSequence = 0) -> SessionData:
    """Simulate long session data (columns ``dyad, therapist, treatment, session, role, x,
    y``) under ``spec``; the same seed gives identical data.

    Examples
    --------
    >>> a = simulate(SimulationSpec(n_dyads=5, n_sessions=3), seed=7).frame["y"]
    >>> b = simulate(SimulationSpec(n_dyads=5, n_sessions=3), seed=7).frame["y"]
    >>> bool(a.equals(b))
    True
    """
    check_size(spec)
    rng = np.random.default_rng(seed)
    d, s = spec.n_dyads, spec.n_sessions
    caseload = spec.caseload if spec.caseload > 0 else 1
    therapist = np.arange(d) // caseload
    n_therapists = therapist.max() + 1
    if spec.balanced_arms:
        treated = rng.permutation(n_therapists) < round(spec.treatment_share * n_therapists)
        arm = treated.astype(float)[therapist]
    else:
        arm = (rng.random(n_therapists) < spec.treatment_share).astype(float)[therapist]
    g = rng.normal(0, spec.x_therapist_sd, n_therapists)[therapist] if spec.caseload \
        else np.zeros(d)
    a = rng.multivariate_normal(np.zeros(2), _cov(spec.x_between_sd, spec.x_between_cor), d)
    w = _ar1(rng, (d, s), _cov(spec.x_within_sd, spec.x_within_cor), spec.x_phi)
    x = np.asarray(spec.x_mean)[None, None] + g[:, None, None] + a[:, None, :] + w
    if spec.x_session_slope or any(spec.x_treatment):
        x = (x + spec.x_session_slope * np.arange(s)[None, :, None]
             + arm[:, None, None] * np.asarray(spec.x_treatment)[None, None, :])
    u = rng.multivariate_normal(np.zeros(2), _cov(spec.intercept_sd, spec.intercept_cor), d)
    slope = rng.normal(size=(d, 2)) * np.asarray(spec.slope_sd)
    h = rng.normal(0, spec.therapist_sd, n_therapists)[therapist] if spec.caseload \
        else np.zeros(d)
    e = _ar1(rng, (d, s), _cov(spec.residual_sd, spec.residual_cor), spec.residual_phi)
    last = np.full(d, s)
    if spec.dropout > 0 and s > 3:
        drops = rng.random((d, s - 3)) < spec.dropout
        first = np.where(drops.any(axis=1), drops.argmax(axis=1) + 3, s)
        last = np.minimum(last, first)
    attended = np.ones((d, s), bool)
    if spec.skipped > 0:  # drawn only when asked, so other designs keep their streams
        attended = rng.random((d, s)) >= spec.skipped
        attended[:, 0] = True  # every dyad has a first session
    x_missing = rng.random((d, s, 2)) < spec.missing
    y_missing = rng.random((d, s, 2)) < spec.missing
    # drawn only when asked, so other designs keep their streams
    partner_slope = (rng.normal(size=(d, 2)) * np.asarray(spec.partner_slope_sd)
                     if any(spec.partner_slope_sd) else np.zeros((d, 2)))
    if spec.questionnaire_missing > 0:
        silent = rng.random((d, s)) < spec.questionnaire_missing
        member = rng.integers(2, size=(d, s))
        gone = silent[:, :, None] & (member[:, :, None] == np.arange(2)[None, None, :])
        x_missing, y_missing = x_missing | gone, y_missing | gone
    x = _rounded(x, spec)

    dyad, session, role = np.meshgrid(np.arange(d), np.arange(1, s + 1), [0, 1],
                                      indexing="ij")
    keep = ((session <= last[:, None, None]) & attended[:, :, None]).ravel()
    frame = pd.DataFrame({
        "dyad": dyad.ravel() + 1, "session": session.ravel(),
        "role": np.asarray(spec.roles)[role.ravel()],
        "x": np.where(x_missing, np.nan, x).ravel(),
    })
    if spec.caseload:
        frame.insert(1, "therapist", therapist[dyad.ravel()] + 1)
    frame["treatment"] = (arm[dyad.ravel()] if spec.treatment_labels is None
                          else np.asarray(spec.treatment_labels)[arm[dyad.ravel()].astype(int)])
    data = _session_data(frame[keep].reset_index(drop=True), spec)
    f = data.frame
    r = (f["role"] == spec.roles[1]).to_numpy().astype(int)
    i = f["dyad"].to_numpy() - 1
    t = f["session"].to_numpy() - 1
    if spec.outcome_from == "latent":  # the person's true level and deviation from it
        W, Wp = w[i, t, r], w[i, t, 1 - r]
        B, Bp = a[i, r] + g[i], a[i, 1 - r] + g[i]
    else:
        within, between = _observed_parts(x, ~x_missing & (keep.reshape(d, s, 2)))
        W, Wp = within[i, t, r], within[i, t, 1 - r]
        B, Bp = between[i, r], between[i, 1 - r]
    m = arm[i]

    def per_role(pair: Pair) -> np.ndarray:
        return np.asarray(pair)[r]

    base = 0.0 if spec.family == "ordinal" else per_role(spec.intercept)
    eta = (base + (per_role(spec.actor_within) + slope[i, r]) * W
           + (per_role(spec.partner_within) + partner_slope[i, r]) * Wp
           + per_role(spec.actor_between) * B
           + per_role(spec.partner_between) * Bp + per_role(spec.interaction_within) * W * Wp
           + per_role(spec.interaction_between) * B * Bp
           + m * (per_role(spec.treatment) + per_role(spec.treatment_actor_within) * W
                  + per_role(spec.treatment_partner_within) * Wp
                  + per_role(spec.treatment_actor_between) * B
                  + per_role(spec.treatment_partner_between) * Bp)
           + h[i] + u[i, r])
    if spec.family == "gaussian":
        y = _rounded(eta + e[i, t, r], spec)
    else:
        y = _events(eta, r, spec, rng)
    y = np.where(y_missing[i, t, r], np.nan, y)
    if spec.predictor_name == "x" and spec.outcome_name == "y":
        return data.replace(f.assign(y=y))
    named = f.assign(y=y).rename(columns={"x": spec.predictor_name, "y": spec.outcome_name})
    return data.replace(named)


def _session_data(frame: pd.DataFrame, spec: SimulationSpec) -> SessionData:
    """The simulated long table as :class:`SessionData`, in the form
    :meth:`SessionData.from_long` gives it (row numbers first, then the identifying
    columns; rows already sorted by dyad, session and role, reference role first). The
    table is valid by construction, so it is not validated again: in a power analysis
    that would cost more than simulating it."""
    frame.insert(0, "row", np.arange(1, len(frame) + 1))
    frame["role"] = frame["role"].astype(str)
    therapist = "therapist" if spec.caseload else None
    front = ["row", "dyad", "session", "role"] + ([therapist] if therapist else [])
    frame = frame[front + [c for c in frame.columns if c not in front]]
    return SessionData(frame=frame, roles=(str(spec.roles[0]), str(spec.roles[1])),
                       columns=ColumnMap(dyad="dyad", session="session", role="role",
                                         therapist=therapist))


def _observed_parts(x: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Within (dyads, sessions, 2) and between (dyads, 2) parts of the observed ratings
    ``x[observed]``, as :func:`apim.model.centring.decompose` splits them by default
    (person mean over rated sessions; between = person mean minus the role's mean of
    person means); 0 where a rating or a person mean is missing. Computed on the session
    grid, so a replicate of a power analysis splits its predictor only once in pandas (in
    the analysis)."""
    values = np.where(observed, x, np.nan)
    count = observed.sum(axis=1)
    person = np.where(count > 0, np.nansum(values, axis=1) / np.maximum(count, 1), np.nan)
    rated = ~np.isnan(person)
    centre = np.where(rated, person, 0.0).sum(axis=0) / np.maximum(rated.sum(axis=0), 1)
    within = np.nan_to_num(values - person[:, None, :], nan=0.0)
    between = np.nan_to_num(person - centre, nan=0.0)
    return within, between


def _events(eta: np.ndarray, r: np.ndarray, spec: SimulationSpec,
            rng: np.random.Generator) -> np.ndarray:
    """Binary (``P(y = 1) = F(eta)``) or ordinal (``P(y <= k) = F(theta_rk - eta)``)
    outcomes for the linear predictors ``eta`` of rows of role ``r`` (0 reference)."""
    link = LINKS[spec.link]
    uniform = rng.random(len(eta))
    if spec.family == "binomial":
        return (uniform < link.cdf(eta)).astype(float)
    theta = np.asarray(spec.thresholds, float)[r]  # (rows, K - 1)
    below = link.cdf(theta - eta[:, None])  # P(y <= k)
    return (uniform[:, None] > below).sum(axis=1).astype(float)


def _rounded(values: np.ndarray, spec: SimulationSpec) -> np.ndarray:
    """Ratings rounded to ``spec.decimals`` and kept within ``spec.bounds`` (if set)."""
    if spec.decimals is not None:
        values = np.round(values, spec.decimals)
    if spec.bounds is not None:
        values = np.clip(values, *spec.bounds)
    return values


def true_effects(spec: SimulationSpec, predictor: str | None = None) -> dict[str, float]:
    """True values of the APIM terms (as :func:`apim.fit` names them, treatment as a 0/1
    moderator called ``treatment``) for a distinguishable person-mean analysis of
    ``predictor`` (default ``spec.predictor_name``): for a binary or ordinal outcome on the
    link scale, named as the :class:`~apim.model.generalized_spec.GeneralizedAPIMSpec` fit
    names them (an ordinal outcome has no intercepts: see :func:`true_thresholds`).

    Examples
    --------
    >>> spec = SimulationSpec(family="ordinal", thresholds=((-1.0, 1.0), (-1.0, 1.0)))
    >>> truth = true_effects(spec)
    >>> truth["patient.partner.within.x"], "patient.intercept" in truth
    (0.15, False)
    """
    predictor = spec.predictor_name if predictor is None else predictor
    out: dict[str, float] = {}
    for k, role in enumerate(spec.roles):
        if spec.family != "ordinal":
            out[f"{role}.intercept"] = spec.intercept[k]
        for effect, level, value, by in (
                ("actor", "within", spec.actor_within, spec.treatment_actor_within),
                ("partner", "within", spec.partner_within, spec.treatment_partner_within),
                ("actor", "between", spec.actor_between, spec.treatment_actor_between),
                ("partner", "between", spec.partner_between, spec.treatment_partner_between)):
            out[f"{role}.{effect}.{level}.{predictor}"] = value[k]
            out[f"{role}.{effect}.{level}.{predictor}|treatment"] = by[k]
        out[f"{role}.actor_x_partner.within.{predictor}"] = spec.interaction_within[k]
        out[f"{role}.actor_x_partner.between.{predictor}"] = spec.interaction_between[k]
        out[f"{role}.moderator.none.treatment"] = spec.treatment[k]
    return out


def true_thresholds(spec: SimulationSpec) -> pd.DataFrame:
    """The true thresholds of an ordinal outcome in the layout of the fitted model's
    ``thresholds`` table (``role``, ``category`` such as ``0|1``, ``estimate``), for
    thresholds per role; empty for other families.

    Examples
    --------
    >>> spec = SimulationSpec(family="ordinal", thresholds=((-1.0, 1.0), (-0.5, 1.5)))
    >>> true_thresholds(spec)["estimate"].tolist()
    [-1.0, 1.0, -0.5, 1.5]
    """
    rows = [{"role": role, "category": f"{k}|{k + 1}", "estimate": float(value)}
            for role, values in zip(spec.roles, spec.thresholds or ((), ()))
            for k, value in enumerate(values)] if spec.family == "ordinal" else []
    return pd.DataFrame(rows, columns=["role", "category", "estimate"])
