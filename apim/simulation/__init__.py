"""Simulating session data under the full APIM, and Monte Carlo power."""
