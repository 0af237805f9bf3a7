"""Number formats of quantized tensors (§1 integer formats, §2 fp8 formats).

An :class:`IntFormat` is a b-bit two's-complement (signed) or plain binary (unsigned)
integer, 2 <= b <= 16. An :class:`FP8Format` describes one of the two OCP 8-bit float
formats, E4M3FN and E5M2. Both are frozen value types validated on construction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError

__all__ = [
    "INT_BITS_MAX",
    "INT_BITS_MIN",
    "FP8Format",
    "FP8_FORMATS",
    "IntFormat",
    "QUANT_DTYPES",
    "fp8_format",
    "int_format",
    "is_fp8_dtype",
    "storage_dtype",
]

INT_BITS_MIN = 2
INT_BITS_MAX = 16

_INT_NAME = re.compile(r"^(u?)int(\d+)$")


@dataclass(frozen=True)
class IntFormat:
    """A b-bit integer format (§1).

    Signed: ``qmin = -2^(b-1)``, ``qmax = 2^(b-1) - 1``; unsigned: ``qmin = 0``,
    ``qmax = 2^b - 1``. ``bits`` must be in [2, 16].
    """

    bits: int
    signed: bool

    def __post_init__(self) -> None:
        if not isinstance(self.bits, (int, np.integer)) or isinstance(self.bits, bool):
            raise ConfigError(f"IntFormat.bits must be an int, got {self.bits!r}")
        if not INT_BITS_MIN <= int(self.bits) <= INT_BITS_MAX:
            raise ConfigError(
                f"IntFormat.bits must be in [{INT_BITS_MIN}, {INT_BITS_MAX}], got {self.bits}"
            )
        if not isinstance(self.signed, (bool, np.bool_)):
            raise ConfigError(f"IntFormat.signed must be a bool, got {self.signed!r}")
        object.__setattr__(self, "bits", int(self.bits))
        object.__setattr__(self, "signed", bool(self.signed))

    @property
    def qmin(self) -> int:
        """Smallest code: ``-2^(bits-1)`` if signed else 0."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        """Largest code: ``2^(bits-1) - 1`` if signed else ``2^bits - 1``."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def qmin_narrow(self, narrow_range: bool) -> int:
        """Smallest code actually used: ``qmin + 1`` with a narrow range, else ``qmin`` (§1)."""
        return self.qmin + 1 if narrow_range else self.qmin

    @property
    def name(self) -> str:
        """``"int8"``, ``"uint4"``, ..."""
        return f"{'' if self.signed else 'u'}int{self.bits}"

    @property
    def storage(self) -> np.dtype:
        """Narrowest numpy dtype holding every code: int8/uint8 up to 8 bits, else int16/uint16."""
        if self.bits <= 8:
            return np.dtype(np.int8 if self.signed else np.uint8)
        return np.dtype(np.int16 if self.signed else np.uint16)


def int_format(name: str) -> IntFormat:
    """Parse ``"int2"`` .. ``"int16"``, ``"uint2"`` .. ``"uint16"`` into an :class:`IntFormat`."""
    m = _INT_NAME.match(name) if isinstance(name, str) else None
    if m is None:
        raise ConfigError(f"integer format name must look like 'int8' or 'uint4', got {name!r}")
    return IntFormat(bits=int(m.group(2)), signed=m.group(1) == "")


@dataclass(frozen=True)
class FP8Format:
    """An 8-bit float format: 1 sign bit, ``exp_bits`` exponent bits, ``man_bits`` mantissa bits.

    ``bias`` is the exponent bias; ``has_inf`` says whether exponent all-ones with mantissa 0
    is infinity (E5M2, IEEE-like) or an ordinary finite value (E4M3FN, where only
    ``S.1111.111`` is NaN). ``max_finite`` is the largest finite magnitude.
    """

    name: str
    exp_bits: int
    man_bits: int
    bias: int
    has_inf: bool

    @property
    def max_code(self) -> int:
        """Code (without sign) of the largest finite value: 0x7E for E4M3FN, 0x7B for E5M2."""
        if self.has_inf:
            return (((1 << self.exp_bits) - 2) << self.man_bits) | ((1 << self.man_bits) - 1)
        return 0x7E

    @property
    def nan_code(self) -> int:
        """Canonical NaN code (without sign) produced by the encoder: 0x7F (E4M3FN), 0x7E (E5M2)."""
        return 0x7F if not self.has_inf else (0x7C | (1 << (self.man_bits - 1)))

    @property
    def inf_code(self) -> int:
        """Code of +infinity (0x7C for E5M2); E4M3FN has none and raises ConfigError."""
        if not self.has_inf:
            raise ConfigError(f"fp8 format {self.name!r} has no infinity")
        return 0x7C

    @property
    def max_finite(self) -> float:
        """Largest finite magnitude: 448 (E4M3FN), 57344 (E5M2)."""
        e = (self.max_code >> self.man_bits) - self.bias
        m = self.max_code & ((1 << self.man_bits) - 1)
        return float((1 + m / (1 << self.man_bits)) * 2.0**e)

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value ``2^(1 - bias)``."""
        return float(2.0 ** (1 - self.bias))

    @property
    def min_subnormal(self) -> float:
        """Smallest positive subnormal value ``2^(1 - bias - man_bits)``."""
        return float(2.0 ** (1 - self.bias - self.man_bits))


FP8_FORMATS: dict[str, FP8Format] = {
    "e4m3": FP8Format(name="e4m3", exp_bits=4, man_bits=3, bias=7, has_inf=False),
    "e5m2": FP8Format(name="e5m2", exp_bits=5, man_bits=2, bias=15, has_inf=True),
}


def fp8_format(fmt: str) -> FP8Format:
    """Look up ``"e4m3"`` (E4M3FN) or ``"e5m2"``; ``"fp8_e4m3"`` style names are accepted too."""
    key = fmt[4:] if isinstance(fmt, str) and fmt.startswith("fp8_") else fmt
    try:
        return FP8_FORMATS[key]
    except (KeyError, TypeError):
        raise ConfigError(f"fp8 format must be one of {sorted(FP8_FORMATS)}, got {fmt!r}") from None


#: Every dtype name a QuantSpec accepts.
QUANT_DTYPES: tuple[str, ...] = tuple(
    [f"int{b}" for b in range(INT_BITS_MIN, INT_BITS_MAX + 1)]
    + [f"uint{b}" for b in range(INT_BITS_MIN, INT_BITS_MAX + 1)]
    + ["fp8_e4m3", "fp8_e5m2"]
)


def is_fp8_dtype(dtype: str) -> bool:
    """True for ``"fp8_e4m3"`` and ``"fp8_e5m2"``."""
    return dtype in ("fp8_e4m3", "fp8_e5m2")


def storage_dtype(dtype: str) -> np.dtype:
    """numpy dtype that quantize() returns for a QuantSpec dtype (fp8 -> uint8 codes)."""
    if is_fp8_dtype(dtype):
        return np.dtype(np.uint8)
    return int_format(dtype).storage
