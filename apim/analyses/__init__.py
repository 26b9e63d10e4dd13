"""Analyses beside the models: they fit APIMs and mixed models through the public path
(:func:`apim.fit` with an :class:`~apim.APIMSpec` or :class:`~apim.FormulaSpec`) and
summarise them, or work on the session data directly.

- :mod:`apim.analyses.therapist`: therapist effects (variance shares at the therapist, dyad
  and session levels; the association of a predictor with an outcome split into its
  therapist-level and patient-level parts; Baldwin, Wampold & Imel, 2007).
- :mod:`apim.analyses.ruptures`: rupture-repair episodes in both members' ratings, with
  per-session flags and per-dyad summaries usable as predictors.
- :mod:`apim.analyses.centring_bias`: the dynamic APIM side by side with the
  person-mean-centred lag-1 model (the centring bias of lagged effects).

Examples
--------
>>> import apim
>>> from apim.analyses.ruptures import RuptureSpec, detect_ruptures
>>> detect_ruptures(apim.load_alliance(), "alliance", RuptureSpec(k=1.5)).variable
'alliance'
"""

__all__ = ["therapist", "ruptures", "centring_bias"]
