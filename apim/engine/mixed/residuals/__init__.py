"""Residual covariance within a dyad: one class per structure behind one protocol.

:class:`Residual` is the protocol (parameters and their transform, start values, labels,
the whitening stencil, the dense matrix for the oracles) with the registry by name;
:mod:`~apim.engine.mixed.residuals.session` the family of structures built from per-role
SDs, a same-session correlation and AR(1); :mod:`~apim.engine.mixed.residuals.structures`
the registered structures; :mod:`~apim.engine.mixed.residuals.layout` the row indices the
stencil works on. :data:`RESIDUAL_NAMES` lists the registered names.

Examples
--------
>>> RESIDUAL_NAMES[:4]
('independent', 'diagonal', 'cs', 'un')
>>> Residual.named("un-ar1").kronecker
True
"""

from apim.engine.mixed.residuals.base import Residual, register, residual_names
from apim.engine.mixed.residuals.layout import ResidualLayout, RowTypes, index_dtype
from apim.engine.mixed.residuals.session import SessionResidual
from apim.engine.mixed.residuals.structures import (
    AR1Residual,
    CompoundSymmetricAR1Residual,
    CompoundSymmetricResidual,
    DiagonalResidual,
    EqualAR1Residual,
    IndependentResidual,
    UnstructuredAR1Residual,
    UnstructuredResidual,
)

RESIDUAL_NAMES = residual_names()

__all__ = ["Residual", "SessionResidual", "ResidualLayout", "RowTypes", "index_dtype",
           "register", "residual_names", "RESIDUAL_NAMES", "IndependentResidual",
           "DiagonalResidual", "CompoundSymmetricResidual", "UnstructuredResidual",
           "AR1Residual", "UnstructuredAR1Residual", "EqualAR1Residual",
           "CompoundSymmetricAR1Residual"]
