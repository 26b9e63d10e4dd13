"""Moment start values of the multivariate model: within, between and therapist-level
covariances from cluster and therapist means, made positive definite.

Examples
--------
>>> from apim.engine.multivariate.likelihood import prepare
>>> rng = np.random.default_rng(0)
>>> cluster = np.repeat(np.arange(40), 5)
>>> y = rng.normal(size=(40, 2))[cluster] + rng.normal(size=(200, 2))
>>> sw, sb = start_values(prepare(y, cluster, np.tile(np.arange(1, 6), 40)))
>>> sw.shape, bool(np.all(np.linalg.eigvalsh(sb) > 0))
((2, 2), True)
"""

from __future__ import annotations

import numpy as np

from apim.engine.multivariate.likelihood import MultivariateData

__all__ = ["start_values", "therapist_start", "positive_part"]


def start_values(data: MultivariateData, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Moment estimates of ``Sigma_W`` (pooled within covariance, pairwise) and
    ``Sigma_B`` (covariance of cluster means minus ``Sigma_W / n``), made positive
    definite; ``ddof=0`` gives the ML and ``ddof=1`` the REML estimates in balanced
    complete data."""
    y, cl = data.y, data.cluster
    k = data.k
    obs = ~np.isnan(y)
    counts = np.zeros((data.n_clusters, k))
    np.add.at(counts, cl, obs)
    sums = np.zeros((data.n_clusters, k))
    np.add.at(sums, cl, np.where(obs, y, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    dev = y - means[cl]
    sw = np.zeros((k, k))
    for a in range(k):
        for b in range(a + 1):
            both = obs[:, a] & obs[:, b]
            denom = max(both.sum() - data.n_clusters, 1)
            sw[a, b] = sw[b, a] = np.sum(dev[both, a] * dev[both, b]) / denom
    frame_means = np.ma.masked_invalid(means)
    sb = np.ma.cov(frame_means, rowvar=False, allow_masked=True, ddof=ddof).filled(0.0)
    sb = np.atleast_2d(sb) - sw / max(float(np.nanmean(counts)), 1.0)
    return positive_part(sw, 1e-2), positive_part(sb, 0.05)


def therapist_start(data: MultivariateData, sw: np.ndarray, sb: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Moment estimates of ``Sigma_B`` (dyads within therapists) and ``Sigma_T`` from the
    clusters' means: the pooled within-therapist covariance of the cluster means estimates
    ``Sigma_B + Sigma_W / n``, the covariance of the therapists' means of their cluster
    means ``Sigma_T + (Sigma_B + Sigma_W / n) / m`` (``n`` occasions per cluster, ``m``
    clusters per therapist, their means); both made positive definite. ``sb`` (the
    two-level estimate) is the fallback where a moment is not available."""
    if data.therapist_of is None:
        raise ValueError("no therapist level in the data")
    k = data.k
    obs = ~np.isnan(data.y)
    sums = np.zeros((data.n_clusters, k))
    counts = np.zeros((data.n_clusters, k))
    np.add.at(sums, data.cluster, np.where(obs, data.y, 0.0))
    np.add.at(counts, data.cluster, obs)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    tj, nt = data.therapist_of, data.n_therapists
    seen = ~np.isnan(means)
    t_sum = np.zeros((nt, k))
    t_n = np.zeros((nt, k))
    np.add.at(t_sum, tj, np.where(seen, means, 0.0))
    np.add.at(t_n, tj, seen)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_means = t_sum / t_n
    dev = np.where(seen, means - t_means[tj], 0.0)
    both = seen.astype(float).T @ seen.astype(float)            # pairwise counts
    pooled = (dev.T @ dev) / np.maximum(both - nt, 1.0)
    n_bar = max(float(np.nanmean(np.where(counts > 0, counts, np.nan))), 1.0)
    m_bar = data.n_clusters / nt
    between = pooled - sw / n_bar
    if nt > 1:
        st = np.ma.cov(np.ma.masked_invalid(t_means), rowvar=False,
                       allow_masked=True).filled(0.0)
        st = np.atleast_2d(st) - pooled / m_bar
    else:
        st = 0.1 * sb
    if not np.all(np.isfinite(between)):
        between = sb
    return positive_part(between, 0.05), positive_part(np.nan_to_num(st), 0.05)


def positive_part(m: np.ndarray, floor: float) -> np.ndarray:
    """``m`` (symmetrised) with its eigenvalues raised to at least ``floor`` times the
    largest (positive definite)."""
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    top = max(vals.max(), 1e-8)
    return (vecs * np.maximum(vals, floor * top)) @ vecs.T
