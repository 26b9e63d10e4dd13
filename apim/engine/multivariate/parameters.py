"""The parameters of the multivariate model and their maps: the natural vector (means,
the lower triangles of ``Sigma_W``, ``Sigma_B`` and ``Sigma_T`` (its diagonal when
diagonal), ``phi``) and the unconstrained one of the quasi-Newton search (log-Cholesky
factors, log variances of a diagonal ``Sigma_T``, ``atanh(phi)``; no means).

Examples
--------
>>> layout = Layout(2, ar1=True, reml=False)
>>> natural_names(("x", "y"), ar1=True)[:3], len(layout.pack(Parameters(
...     np.zeros(2), np.eye(2), np.eye(2), 0.2)))
(['mean(x)', 'mean(y)', 'within(x,x)'], 9)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from apim.engine.multivariate.likelihood import Evaluation, MultivariateData, evaluate
from apim.engine.multivariate.nested import evaluate_nested

__all__ = ["Parameters", "Layout", "natural_names", "natural_gradient", "gradient_of",
           "theta_of", "matrices_of", "log_cholesky", "admissible", "Method",
           "TherapistCovariance", "tril", "vech", "unvech", "vech_gradient",
           "cholesky_factor"]

Method = Literal["ML", "REML"]
TherapistCovariance = Literal["unstructured", "diagonal"]


class Parameters(NamedTuple):
    """The model's parameters on the natural scale (``sigma_t`` None without a therapist
    level)."""

    mu: np.ndarray | None
    sigma_w: np.ndarray
    sigma_b: np.ndarray
    phi: float | None
    sigma_t: np.ndarray | None = None


def natural_names(names: Sequence[str], ar1: bool,
                  therapist: TherapistCovariance | None = None) -> list[str]:
    """Names of the natural parameters: ``mean(v)``, ``within(v,w)``, ``between(v,w)``,
    ``therapist(v,w)`` (with a therapist level), ``phi``."""
    k = len(names)
    rows, cols = np.tril_indices(k)
    out = [f"mean({n})" for n in names]
    for level in ("within", "between"):
        out += [f"{level}({names[int(c)]},{names[int(r)]})" for r, c in zip(rows, cols)]
    if therapist == "unstructured":
        out += [f"therapist({names[int(c)]},{names[int(r)]})" for r, c in zip(rows, cols)]
    elif therapist == "diagonal":
        out += [f"therapist({n},{n})" for n in names]
    return out + (["phi"] if ar1 else [])


@dataclass(frozen=True)
class Layout:
    """Where each parameter sits in the natural vector: ``[mu (ML only)], vech(Sigma_W),
    vech(Sigma_B), [vech or diag(Sigma_T)], [phi]``."""

    k: int
    ar1: bool
    reml: bool
    therapist: TherapistCovariance | None = None

    @property
    def h(self) -> int:
        return self.k * (self.k + 1) // 2

    @property
    def n_t(self) -> int:
        return {None: 0, "unstructured": self.h, "diagonal": self.k}[self.therapist]

    def pack(self, p: Parameters) -> np.ndarray:
        parts = ([] if self.reml else [np.asarray(p.mu, float)])
        parts += [vech(p.sigma_w), vech(p.sigma_b)]
        if self.therapist is not None:
            if p.sigma_t is None:
                raise ValueError("a therapist level needs sigma_t")
            parts.append(vech(p.sigma_t) if self.therapist == "unstructured"
                         else np.diag(p.sigma_t).copy())
        return np.concatenate(parts + ([np.array([p.phi])] if self.ar1 else []))

    def unpack(self, nat: np.ndarray) -> Parameters:
        k, h = self.k, self.h
        off = 0 if self.reml else k
        mu = None if self.reml else nat[:k]
        sw, sb = unvech(nat[off:off + h], k), unvech(nat[off + h:off + 2 * h], k)
        off += 2 * h
        st = None
        if self.therapist == "unstructured":
            st = unvech(nat[off:off + h], k)
        elif self.therapist == "diagonal":
            st = np.diag(nat[off:off + k])
        phi = float(nat[off + self.n_t]) if self.ar1 else None
        return Parameters(mu, sw, sb, phi, st)

    def evaluate(self, data: MultivariateData, p: Parameters,
                 profile: bool = False) -> Evaluation:
        """The likelihood at ``p`` (the means profiled out when ``profile`` or REML)."""
        mu = None if profile or self.reml else p.mu
        if self.therapist is None:
            return evaluate(data, p.sigma_w, p.sigma_b, p.phi, mu=mu, reml=self.reml)
        if p.sigma_t is None:
            raise ValueError("a therapist level needs sigma_t")
        return evaluate_nested(data, p.sigma_w, p.sigma_b, p.sigma_t, p.phi, mu=mu,
                               reml=self.reml)

    def gradient(self, ev: Evaluation) -> np.ndarray:
        """``ev``'s gradient as a vector in this layout."""
        parts = [] if self.reml else [ev.grad_mu]
        parts += [vech_gradient(ev.grad_w), vech_gradient(ev.grad_b)]
        if self.therapist is not None:
            if ev.grad_t is None:
                raise ValueError("the evaluation has no therapist level")
            parts.append(vech_gradient(ev.grad_t) if self.therapist == "unstructured"
                         else np.diag(ev.grad_t).copy())
        if self.ar1:
            parts.append(np.array([ev.grad_phi]))
        return np.concatenate(parts)


@functools.lru_cache(maxsize=32)
def tril(k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tril_indices(k)


def vech(m: np.ndarray) -> np.ndarray:
    return m[tril(len(m))]


def unvech(v: np.ndarray, k: int) -> np.ndarray:
    rows, cols = tril(k)
    m = np.zeros((k, k))
    m[rows, cols] = v
    m[cols, rows] = v
    return m


def vech_gradient(bar: np.ndarray) -> np.ndarray:
    """Derivatives in the lower triangle of a symmetric matrix (an off-diagonal entry
    moves two entries) from those in every entry."""
    return vech(bar + bar.T - np.diag(np.diag(bar)))


def log_cholesky(m: np.ndarray) -> np.ndarray:
    lower = np.linalg.cholesky(m)
    lower[np.diag_indices(len(m))] = np.log(np.diag(lower))
    return lower[np.tril_indices(len(m))]


def theta_of(layout: Layout, p: Parameters) -> np.ndarray:
    parts = [log_cholesky(p.sigma_w), log_cholesky(p.sigma_b)]
    if layout.therapist == "unstructured" and p.sigma_t is not None:
        parts.append(log_cholesky(p.sigma_t))
    elif layout.therapist == "diagonal" and p.sigma_t is not None:
        parts.append(np.log(np.diag(p.sigma_t)))
    if p.phi is not None:
        parts.append(np.array([np.arctanh(p.phi)]))
    return np.concatenate(parts)


def matrices_of(layout: Layout, theta: np.ndarray
                 ) -> tuple[Parameters, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Unconstrained ``theta`` -> parameters (no means) and the Cholesky factors."""
    k, h = layout.k, layout.h
    lw, lb = cholesky_factor(theta[:h], k), cholesky_factor(theta[h:2 * h], k)
    lt, st = None, None
    if layout.therapist == "unstructured":
        lt = cholesky_factor(theta[2 * h:3 * h], k)
        st = lt @ lt.T
    elif layout.therapist == "diagonal":
        st = np.diag(np.exp(theta[2 * h:2 * h + k]))
    phi = float(np.tanh(theta[2 * h + layout.n_t])) if layout.ar1 else None
    return Parameters(None, lw @ lw.T, lb @ lb.T, phi, st), (lw, lb, lt)


def admissible(layout: Layout, nat: np.ndarray) -> bool:
    """Sigma_W positive definite, Sigma_B and Sigma_T positive semi-definite, |phi| < 1."""
    p = layout.unpack(nat)
    scale = max(float(np.abs(np.diag(p.sigma_w)).max()), 1e-300)
    if np.linalg.eigvalsh(p.sigma_w).min() <= 0 \
            or np.linalg.eigvalsh(p.sigma_b).min() < -1e-10 * scale:
        return False
    if p.sigma_t is not None and np.linalg.eigvalsh(p.sigma_t).min() < -1e-10 * scale:
        return False
    return p.phi is None or abs(p.phi) < 1


def cholesky_factor(theta: np.ndarray, k: int) -> np.ndarray:
    """The lower Cholesky factor whose log-Cholesky parameters are ``theta``."""
    lower = np.zeros((k, k))
    lower[tril(k)] = theta
    idx = np.arange(k)
    lower[idx, idx] = np.exp(lower[idx, idx])
    return lower


def gradient_of(data: MultivariateData, layout: Layout, nat: np.ndarray) -> np.ndarray:
    ev = layout.evaluate(data, layout.unpack(nat))
    if not np.isfinite(ev.loglik):
        return np.full(len(nat), np.nan)
    return layout.gradient(ev)


def natural_gradient(data: MultivariateData, nat: np.ndarray, ar1: bool, reml: bool,
                     therapist: TherapistCovariance | None = None) -> np.ndarray:
    """Gradient of the log-likelihood with respect to the natural parameters (ML: means
    included; REML: covariance parameters only, ``nat`` without the means); with
    ``therapist`` the three-level model (``data`` prepared with ``therapist=``)."""
    return gradient_of(data, Layout(data.k, ar1, reml, therapist), nat)
