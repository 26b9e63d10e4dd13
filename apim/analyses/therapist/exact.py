"""The exact F-based interval of the intraclass correlation in a balanced one-way design
(Searle, 1971, sec. 9.6; Shrout & Fleiss, 1979, ICC(1,1)).

Examples
--------
>>> import numpy as np
>>> y = np.array([1., 2, 3, 2, 3, 4, 6, 7, 8]); g = np.repeat([0, 1, 2], 3)
>>> [round(v, 4) for v in exact_icc_interval(y, g)]
[0.8696, 0.3868, 0.9964]
"""

from __future__ import annotations

import numpy as np

from apim.engine.distributions import stats
from apim.errors import SpecError

__all__ = ["exact_icc_interval"]


def exact_icc_interval(y: np.ndarray, group: np.ndarray, level: float = 0.95
                       ) -> tuple[float, float, float]:
    """ICC(1) point estimate and exact F-based interval in a balanced one-way design.

    ``F = MSB / MSW`` with ``k - 1`` and ``k (n - 1)`` df (``k`` groups of ``n``);
    ``ICC = (F - 1) / (F + n - 1)`` and the limits replace ``F`` by ``F / F_{1-a/2}`` and
    ``F / F_{a/2}`` (the lower limit may be negative, as in Shrout & Fleiss).

    Examples
    --------
    >>> y = np.array([1., 2, 3, 2, 3, 4, 6, 7, 8]); g = np.repeat([0, 1, 2], 3)
    >>> [round(v, 4) for v in exact_icc_interval(y, g)]
    [0.8696, 0.3868, 0.9964]
    """
    y = np.asarray(y, float)
    codes = np.unique(group, return_inverse=True)[1].ravel()
    counts = np.bincount(codes)
    if len(counts) < 2 or len(np.unique(counts)) != 1 or counts[0] < 2:
        raise SpecError("the exact interval needs at least two groups of the same size "
                        f"of at least 2 (group sizes {sorted(set(counts.tolist()))[:5]})")
    k, n = len(counts), int(counts[0])
    means = np.bincount(codes, y) / n
    msb = n * np.sum((means - y.mean()) ** 2) / (k - 1)
    msw = np.sum((y - means[codes]) ** 2) / (k * (n - 1))
    f = msb / msw
    alpha = 1 - level
    df1, df2 = k - 1, k * (n - 1)
    f_low = f / stats.f.ppf(1 - alpha / 2, df1, df2)
    f_high = f / stats.f.ppf(alpha / 2, df1, df2)
    return (float((f - 1) / (f + n - 1)), float((f_low - 1) / (f_low + n - 1)),
            float((f_high - 1) / (f_high + n - 1)))
