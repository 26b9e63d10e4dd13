"""The residual structures, one class each, registered under the names users write.

============== ============================ ================== ============ =====
name           class                        variances          rho          phi
============== ============================ ================== ============ =====
independent    :class:`IndependentResidual`  equal              0            0
diagonal       :class:`DiagonalResidual`     role-specific      0            0
cs             :class:`CompoundSymmetricResidual` equal         estimated    0
un             :class:`UnstructuredResidual` role-specific      estimated    0
ar1            :class:`AR1Residual`          role-specific      0            estimated
un-ar1         :class:`UnstructuredAR1Residual` role-specific   estimated    estimated
ar1-equal      :class:`EqualAR1Residual`     equal              0            estimated
cs-ar1         :class:`CompoundSymmetricAR1Residual` equal      estimated    estimated
============== ============================ ================== ============ =====

``un-ar1`` is the Kronecker ``UN x AR(1)`` of SAS PROC MIXED (nlme cannot fit it),
``cs-ar1`` its equal-variance counterpart for indistinguishable dyads; AR(1) is within
person over session numbers.

Examples
--------
>>> UnstructuredResidual().n_params, UnstructuredResidual().pooled.name
(3, 'cs')
"""

from __future__ import annotations

from apim.engine.mixed.residuals.base import register
from apim.engine.mixed.residuals.session import SessionResidual

__all__ = ["IndependentResidual", "DiagonalResidual", "CompoundSymmetricResidual",
           "UnstructuredResidual", "AR1Residual", "UnstructuredAR1Residual",
           "EqualAR1Residual", "CompoundSymmetricAR1Residual"]


@register
class IndependentResidual(SessionResidual):
    """Independent residuals with one variance for both roles."""

    name = "independent"
    parameters = ("sigma",)


@register
class DiagonalResidual(SessionResidual):
    """Independent residuals with a variance per role."""

    name = "diagonal"
    parameters = ("sigma(0)", "sigma(1)")


@register
class CompoundSymmetricResidual(SessionResidual):
    """One variance and the members' same-session correlation (indistinguishable dyads)."""

    name = "cs"
    parameters = ("sigma", "rho")


@register
class UnstructuredResidual(SessionResidual):
    """A variance per role and the members' same-session correlation (the default)."""

    name = "un"
    parameters = ("sigma(0)", "sigma(1)", "rho")


@register
class AR1Residual(SessionResidual):
    """A variance per role and AR(1) within person; the members uncorrelated."""

    name = "ar1"
    parameters = ("sigma(0)", "sigma(1)", "phi")


@register
class UnstructuredAR1Residual(SessionResidual):
    """``UN x AR(1)``: a variance per role, the same-session correlation and AR(1)."""

    name = "un-ar1"
    parameters = ("sigma(0)", "sigma(1)", "rho", "phi")


@register
class EqualAR1Residual(SessionResidual):
    """One variance and AR(1) within person; the members uncorrelated."""

    name = "ar1-equal"
    parameters = ("sigma", "phi")


@register
class CompoundSymmetricAR1Residual(SessionResidual):
    """``CS x AR(1)``: one variance, the same-session correlation and AR(1)."""

    name = "cs-ar1"
    parameters = ("sigma", "rho", "phi")
