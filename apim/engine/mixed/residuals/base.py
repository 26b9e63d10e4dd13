"""The protocol every residual structure follows, and the registry of structures by name.

A residual structure says how the residuals of one dyad co-vary. It owns its unconstrained
parameters and their map to natural-scale records, its start values, the whitening stencil
the likelihood uses (row types and coefficients, with derivatives), and the dense
covariance matrix of a dyad for the oracles of the tests, as nlme's ``corStruct`` classes
own theirs. Structures register under the name a user writes (``residual="un"``);
:func:`residual_names` lists them for the CLI and the spec validation.

Examples
--------
>>> "un-ar1" in residual_names()
True
>>> Residual.named("cs").n_params
2
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

import numpy as np

from apim.engine.mixed.residuals.layout import ResidualLayout, RowTypes
from apim.engine.parameters import VarianceParameter
from apim.errors import SpecError

__all__ = ["Residual", "register", "registered", "residual_names"]

_REGISTRY: dict[str, type[Residual]] = {}


class Residual:
    """A residual structure: the protocol of the engine (see the module docstring).

    Subclasses set :attr:`name` and implement the methods below; :func:`register` makes
    them available by name. Instances are immutable and carry no data.
    """

    name: ClassVar[str] = ""

    @classmethod
    def named(cls, name: str) -> Residual:
        """The structure registered as ``name`` (one of :func:`residual_names`).

        Raises
        ------
        SpecError
            For a name no structure is registered under.
        """
        if name not in _REGISTRY:
            raise SpecError(f"residual structure {name!r} is not one of "
                            f"{', '.join(_REGISTRY)}")
        return _REGISTRY[name]()

    # ------------------------------------------------------------ parameters
    @property
    def n_params(self) -> int:
        """Number of unconstrained parameters."""
        raise NotImplementedError

    @property
    def equal_variances(self) -> bool:
        """Both roles have the same residual variance (usable for indistinguishable
        dyads)."""
        raise NotImplementedError

    @property
    def pooled(self) -> Residual:
        """The counterpart with equal variances (for indistinguishable dyads)."""
        raise NotImplementedError

    @property
    def kronecker(self) -> bool:
        """The stencil holds only on complete series (both members at every session):
        dyads with single ratings missing need the complete-grid correction."""
        raise NotImplementedError

    def records(self, theta: np.ndarray) -> list[VarianceParameter]:
        """The natural-scale parameters at ``theta`` as records (labels, kinds, roles)."""
        raise NotImplementedError

    def rescale(self, theta: np.ndarray, factor: float) -> np.ndarray:
        """Parameters of the same structure with every residual SD times ``factor``."""
        raise NotImplementedError

    def start(self, variances: np.ndarray, rho: float, phi: float) -> np.ndarray:
        """Unconstrained start values from the moments of the residuals: the variance per
        role, the same-session correlation and the lag-1 autocorrelation."""
        raise NotImplementedError

    # ------------------------------------------------------------ whitening
    def row_types(self, layout: ResidualLayout) -> RowTypes:
        """The rows grouped by what their whitening coefficients depend on."""
        raise NotImplementedError

    def coefficients(self, theta: np.ndarray, types: RowTypes
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Whitening ``(W u)_row = sum_slots c_slot u_link(slot)`` per row type: ``c``
        (slots, types) and its derivatives (parameters, slots, types), ``R^-1 = W'W``."""
        raise NotImplementedError

    # ------------------------------------------------------------ oracle
    def dense(self, theta: np.ndarray, role: np.ndarray, session: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """The covariance of residuals with roles ``role`` and sessions ``session`` (last
        axis: the rows of one dyad; any leading axes), ``(..., n, n)``, and its
        derivatives in the parameters, ``(k, ..., n, n)`` (for the dense oracles)."""
        raise NotImplementedError


R = TypeVar("R", bound=type[Residual])


def register(cls: R) -> R:
    """Class decorator: make ``cls`` available as ``Residual.named(cls.name)``."""
    if not cls.name or cls.name in _REGISTRY:
        raise ValueError(f"residual structure name {cls.name!r} is empty or taken")
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> tuple[type[Residual], ...]:
    """The registered residual structure classes, in registration order."""
    return tuple(_REGISTRY.values())


def residual_names() -> tuple[str, ...]:
    """The names of the registered residual structures, in registration order."""
    return tuple(_REGISTRY)
