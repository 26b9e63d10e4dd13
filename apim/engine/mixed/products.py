"""The source of whitened cross products for a residual structure: the cheapest exact one.

Examples
--------
>>> import numpy as np
>>> from apim.engine.mixed.residuals import Residual, ResidualLayout
>>> layout = ResidualLayout.build(np.repeat([0, 1], 2), np.ones(4, int), np.tile([0, 1], 2))
>>> source = cross_products(Residual.named("un"), layout, np.ones((4, 2)), 1)
>>> type(source).__name__
'TypeMoments'
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from apim.engine.mixed.moments import Products, TypeMoments
from apim.engine.mixed.residuals import Residual, ResidualLayout

__all__ = ["ProductSource", "cross_products"]


class ProductSource(Protocol):
    """Anything that gives the whitened cross products at a residual parameter vector."""

    def products(self, residual: Residual, theta: np.ndarray, gradient: bool
                 ) -> Products: ...


def cross_products(residual: Residual, layout: ResidualLayout, raw: np.ndarray,
                   n_random: int) -> ProductSource:
    """The cheapest exact way to get whitened cross products for ``residual``; the first
    ``n_random`` columns of ``raw`` are the random-effect designs.

    ``UN x AR(1)``-type structures (:attr:`Residual.kronecker`) use the stencil on the
    complete series of each dyad, corrected for single missing ratings by a Schur
    complement (:mod:`apim.engine.mixed.missing_ratings`); every other structure uses the
    stencil moments of :class:`~apim.engine.mixed.moments.TypeMoments` directly.
    """
    if not residual.kronecker:
        return TypeMoments.of(residual, layout, raw, n_random)
    counts = layout.sizes
    paired = np.bincount(layout.dyad, weights=layout.pair >= 0, minlength=len(counts))
    if np.all(counts == 2 * paired):  # every session has both members
        return TypeMoments.of(residual, layout, raw, n_random)
    # scipy.sparse (heavy) is imported only when ratings are missing
    from apim.engine.mixed.missing_ratings import GridProducts

    return GridProducts.of(residual, layout, raw, n_random)
