"""QuantSpec: how one tensor is quantized (§3, §4).

The choices are independent fields: number format (``dtype``), symmetry, narrow range,
granularity and the rounding of ``x / s``. Validation happens on construction and raises
:class:`hwsim.errors.ConfigError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwsim.errors import ConfigError
from hwsim.quant.formats import (
    QUANT_DTYPES,
    FP8Format,
    IntFormat,
    fp8_format,
    int_format,
    is_fp8_dtype,
)
from hwsim.quant.granularity import Granularity, PerAxis, PerBlock, PerTensor

__all__ = ["ROUNDING_MODES", "QuantSpec"]

#: Rounding of the real quotient x / s to an integer (§3.2); names as in hwsim.arith (§6).
ROUNDING_MODES: tuple[str, ...] = ("half_up", "half_away", "half_even", "floor", "toward_zero")


@dataclass(frozen=True)
class QuantSpec:
    """How a tensor is quantized.

    ``dtype``: ``int2``..``int16``, ``uint2``..``uint16``, ``fp8_e4m3`` (E4M3FN) or ``fp8_e5m2``.
    ``symmetric``: zero point fixed at the middle of the range (0 for signed formats, §3.4);
    fp8 is always symmetric (zero point 0). ``narrow_range``: the integer code ``qmin`` is never
    produced (int only). ``granularity``: PerTensor(), PerAxis(axis), PerBlock(axis, block_size).
    ``rounding``: one of :data:`ROUNDING_MODES`; fp8 requires ``"half_even"``.
    """

    dtype: str = "int8"
    symmetric: bool = False
    narrow_range: bool = False
    granularity: Granularity = field(default_factory=PerTensor)
    rounding: str = "half_even"

    def __post_init__(self) -> None:
        if self.dtype not in QUANT_DTYPES:
            raise ConfigError(
                f"QuantSpec.dtype must be one of int2..int16, uint2..uint16, fp8_e4m3, "
                f"fp8_e5m2, got {self.dtype!r}"
            )
        for name in ("symmetric", "narrow_range"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"QuantSpec.{name} must be a bool, got {getattr(self, name)!r}")
        if not isinstance(self.granularity, (PerTensor, PerAxis, PerBlock)):
            raise ConfigError(
                "QuantSpec.granularity must be PerTensor(), PerAxis(axis) or "
                f"PerBlock(axis, block_size), got {self.granularity!r}"
            )
        if self.rounding not in ROUNDING_MODES:
            raise ConfigError(
                f"QuantSpec.rounding must be one of {ROUNDING_MODES}, got {self.rounding!r}"
            )
        if self.is_fp8:
            if self.narrow_range:
                raise ConfigError(
                    f"QuantSpec.narrow_range is only defined for integer dtypes, not {self.dtype}"
                )
            if self.rounding != "half_even":
                raise ConfigError(
                    f"QuantSpec.rounding must be 'half_even' for {self.dtype} "
                    f"(fp8 encoding rounds to nearest even), got {self.rounding!r}"
                )

    @property
    def is_fp8(self) -> bool:
        """True for the fp8 dtypes."""
        return is_fp8_dtype(self.dtype)

    @property
    def int_format(self) -> IntFormat:
        """The IntFormat of an integer spec (ConfigError for fp8)."""
        if self.is_fp8:
            raise ConfigError(f"QuantSpec.dtype {self.dtype} is not an integer format")
        return int_format(self.dtype)

    @property
    def fp8_format(self) -> FP8Format:
        """The FP8Format of an fp8 spec (ConfigError for integer dtypes)."""
        if not self.is_fp8:
            raise ConfigError(f"QuantSpec.dtype {self.dtype} is not an fp8 format")
        return fp8_format(self.dtype)

    @property
    def qmin(self) -> int:
        """Smallest code used (``qmin + 1`` with narrow range); integer dtypes only."""
        return self.int_format.qmin_narrow(self.narrow_range)

    @property
    def qmax(self) -> int:
        """Largest code; integer dtypes only."""
        return self.int_format.qmax
