"""Link functions of the generalized APIM: the logistic and the normal distribution as the
latent response's distribution ``F`` (``P(Y <= k) = F(theta_k - eta)``).

Each link gives, for any real ``x``, ``log F(x)``, ``log(1 - F(x))``, ``log f(x)`` and
the ratios ``f'/f`` and ``f''/f`` that the derivatives of an interval probability
``F(a) - F(b)`` need (:mod:`apim.engine.glmm.response`).

Examples
--------
>>> import numpy as np
>>> logit = LINKS["logit"]
>>> float(np.exp(logit.logcdf(np.array([0.0]))[0]))
0.5
>>> round(float(LINKS["probit"].latent_variance), 6), round(float(logit.latent_variance), 6)
(1.0, 3.289868)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Link", "LINKS"]


@dataclass(frozen=True)
class Link:
    """The distribution ``F`` of the latent response's error (standard logistic or
    standard normal).

    Attributes
    ----------
    name : {"logit", "probit"}
    latent_variance : float
        Variance of ``F`` (pi^2 / 3 for logit, 1 for probit): the level-1 variance of the
        latent-scale ICC.
    """

    name: str
    latent_variance: float

    def logcdf(self, x: np.ndarray) -> np.ndarray:
        """log F(x)."""
        if self.name == "logit":
            from scipy.special import log_expit  # accurate in both tails
            return np.asarray(log_expit(x))
        from scipy.special import log_ndtr
        return np.asarray(log_ndtr(x))

    def logsf(self, x: np.ndarray) -> np.ndarray:
        """log(1 - F(x)) (F is symmetric: log F(-x))."""
        return self.logcdf(-x)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """F(x)."""
        return np.exp(self.logcdf(x))

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        """log f(x)."""
        if self.name == "logit":
            return self.logcdf(x) + self.logsf(x)
        return -0.5 * x * x - 0.5 * np.log(2 * np.pi)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """f(x)."""
        return np.exp(self.logpdf(x))

    def mills(self, x: np.ndarray) -> np.ndarray:
        """f(x) / F(x)."""
        if self.name == "logit":
            from scipy.special import expit  # F(-x), one ufunc
            return np.asarray(expit(-x))
        return np.exp(self.logpdf(x) - self.logcdf(x))

    def slope(self, x: np.ndarray, mills: np.ndarray | None = None) -> np.ndarray:
        """f'(x) / f(x); given ``mills`` (f/F at ``x``) the logistic's reuses it (``1 -
        2 F(x) = 2 F(-x) - 1``, F(-x) being its f/F)."""
        if self.name == "logit":
            return np.tanh(-x / 2) if mills is None else 2 * mills - 1
        return -x

    def curvature(self, x: np.ndarray, mills: np.ndarray | None = None) -> np.ndarray:
        """f''(x) / f(x) (``mills`` as in :meth:`slope`)."""
        if self.name == "logit":
            r = self.mills(x) if mills is None else mills
            s = self.slope(x, mills)
            return s * s - 2 * r * (1 - r)  # f = F(x) F(-x)
        return x * x - 1.0

    def quantile(self, p: np.ndarray) -> np.ndarray:
        """F^-1(p)."""
        if self.name == "logit":
            return np.log(p) - np.log1p(-p)
        from scipy.special import ndtri
        return np.asarray(ndtri(p))


LINKS = {"logit": Link("logit", float(np.pi ** 2 / 3)), "probit": Link("probit", 1.0)}
"""The links by name."""
