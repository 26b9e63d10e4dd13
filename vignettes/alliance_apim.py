"""Vignette: actor and partner effects of the working alliance on session outcome.

Run with ``python vignettes/alliance_apim.py``. It uses the bundled, simulated study (240
patient-therapist dyads, 40 therapists, CBT vs alliance-focused therapy, up to 30 sessions)
and walks through what a process researcher reports:

1. check the data and what a fit would not use;
2. split alliance into within-person and between-person parts for both members;
3. fit the distinguishable APIM (two intercepts, role-specific residual variances, the
   partners' same-session residual correlation, correlated random intercepts);
4. test whether the patient's and the therapist's actor effects differ, and whether the
   dyads are distinguishable at all;
5. read dyadic patterns (k = partner / actor), effect sizes and pseudo-R²;
6. moderation by treatment with simple slopes;
7. a within-dyad fixed-effects robustness check.
"""

import apim
from apim.inference.compare import distinguishability_test
from apim.inference.effect_sizes import effect_sizes, pseudo_r2
from apim.inference.patterns import dyadic_patterns
from apim.inference.robustness import within_dyad_fixed_effects
from apim.inference.slopes import simple_slopes
from apim.inference.wald import wald_test

data = apim.load_alliance()
print(data.report(["alliance", "outcome"]))

# 2. the decomposition the model uses (person-mean centring, partners' parts alongside)
parts = apim.decompose(data, ["alliance"]).components
print(parts.describe().T.round(3))

# 3. the APIM
spec = apim.APIMSpec(outcome="outcome", predictors=("alliance",))
result = apim.fit(data, spec)
print(result.summary())

# 4. tests
print(wald_test(result, "patient.actor.within = therapist.actor.within"))
print(distinguishability_test(data, spec))

# 5. patterns, effect sizes, pseudo-R²
print(dyadic_patterns(result).round(3).to_string(index=False))
print(effect_sizes(result)[["effect", "level", "partial_r", "d", "standardised"]].round(3))
print(pseudo_r2(result).round(3).to_string(index=False))

# 6. moderation by treatment arm (CBT is the reference)
moderated = apim.fit(data, spec.replace(moderators=("treatment",)))
print(simple_slopes(moderated, "patient.actor.within", "treatment[AFT]").round(3))

# 7. robustness: dyad fixed effects with dyad-clustered standard errors
print(within_dyad_fixed_effects(result).round(3).to_string(index=False))
