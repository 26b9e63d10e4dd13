"""Therapist effects: variance shares per level and the alliance-outcome association split
into its therapist-level and patient-level parts.

**Variance shares.** For a variable rated by role ``r`` (patient- or therapist-rated
alliance, session outcome), the unconditional three-level model

    y_jit = mu + v_j + u_ji + e_jit,   v_j ~ N(0, tau^2), u_ji ~ N(0, omega^2),
    e_jit ~ N(0, sigma^2)

(sessions ``t`` of dyad ``i`` of therapist ``j``; nlme ``lme(y ~ 1, random = ~ 1 |
therapist/dyad)``) is fitted per role through :func:`apim.fit` (a :class:`~apim.FormulaSpec`,
:mod:`apim.analyses.therapist.levels`), and the shares of the total variance
``tau^2 + omega^2 + sigma^2`` at the therapist, dyad (patient within therapist) and session
levels are reported: the therapist share is the therapist ICC of Baldwin, Wampold & Imel
(2007). Covariates (e.g. treatment, session number) give conditional shares. Without a
therapist column the model has two levels (dyad, session); with one session per person the
dyad is the lowest level.

Confidence intervals:

- ``"bootstrap"``: parametric bootstrap (simulate from the fitted model, refit, percentile
  interval), replicates run with :func:`apim.parallel.run_jobs`
  (:mod:`apim.analyses.therapist.bootstrap`);
- ``"exact"``: in a balanced one-way design (no therapist level, every dyad with the same
  number ``n`` of sessions, no covariates) the exact interval from the F distribution of
  ``F = MSB / MSW`` (Searle, 1971, sec. 9.6; Shrout & Fleiss, 1979, ICC(1,1))::

      F_L = F / F_{1-a/2}(k-1, k(n-1)),  F_U = F / F_{a/2}(k-1, k(n-1)),
      ICC in [(F_L - 1) / (F_L + n - 1), (F_U - 1) / (F_U + n - 1)]

  (the lower limit may be negative, as in Shrout & Fleiss; the session share's interval is
  one minus it);
- ``"auto"`` (default): exact where it applies, the bootstrap elsewhere; ``"none"``.

A variance estimated at zero is flagged in the ``boundary`` column (its interval then
starts at zero: a bootstrap from a boundary fit).

**Association split** (Baldwin, Wampold & Imel, 2007). At the dyad level, each dyad's mean
outcome (rated by the outcome role) is regressed on its mean predictor (rated by the
predictor role), split into the patient's deviation from their therapist's caseload mean
(the *patient-level*, within-therapist effect) and the therapist's caseload mean (the
*therapist-level* effect), with a random therapist intercept (a :class:`~apim.FormulaSpec`
on one row per dyad); the *contextual effect* is therapist-level minus patient-level, with
its t test (Satterthwaite df). The same split at
the session level uses the three-level decomposition (``DecompositionSpec(center=
"therapist")``) in a full APIM with a therapist level: actor and partner effects within
dyads, between dyads within therapist, and between therapists, with the contextual effect
``therapist - between`` per outcome role (an :class:`~apim.APIMSpec`).

Text covariates (e.g. a treatment arm ``CBT``/``AFT``) are dummy coded against their first
level in sorted order; the output says which. Everything that can be checked without a fit
is checked first (:mod:`apim.analyses.therapist.checks`): one therapist, or one dyad per
therapist, is refused (the therapist level is not identified).

Modules: :mod:`~apim.analyses.therapist.spec` (the spec, table columns),
:mod:`~apim.analyses.therapist.checks`, :mod:`~apim.analyses.therapist.levels` (one role's
model), :mod:`~apim.analyses.therapist.bootstrap`, :mod:`~apim.analyses.therapist.exact`,
:mod:`~apim.analyses.therapist.shares`, :mod:`~apim.analyses.therapist.association`,
:mod:`~apim.analyses.therapist.effects` (everything together).

Examples
--------
>>> import apim
>>> data = apim.load_alliance()
>>> shares = variance_shares(data, ["alliance"], ci="none")
>>> shares.table[["role", "level"]].head(3).values.tolist()
[['patient', 'therapist'], ['patient', 'dyad'], ['patient', 'session']]
>>> bool(abs(shares.table.groupby("role")["share"].sum() - 1).max() < 1e-12)
True
>>> split = association_split(data, "alliance", "outcome")
>>> sorted(split["level"].unique())
['contextual', 'therapist', 'within_therapist']
"""

from __future__ import annotations

from apim.analyses.therapist.association import association_split, session_split
from apim.analyses.therapist.effects import TherapistEffects, therapist_effects
from apim.analyses.therapist.exact import exact_icc_interval
from apim.analyses.therapist.shares import VarianceShares, variance_shares
from apim.analyses.therapist.spec import ASSOCIATION_COLUMNS, SHARE_COLUMNS, TherapistSpec

__all__ = ["TherapistSpec", "VarianceShares", "TherapistEffects", "variance_shares",
           "association_split", "session_split", "therapist_effects", "exact_icc_interval",
           "SHARE_COLUMNS", "ASSOCIATION_COLUMNS"]
