"""FP8 E4M3FN / E5M2 encoding and decoding by bit manipulation on float32 (§2).

The encoder rounds the float32 input to nearest, ties to even, directly (one rounding),
exactly as ``ml_dtypes``' ``astype`` cast does:

* E4M3FN: a result above 448 after rounding (and +-Inf) becomes NaN (``S.1111.111``);
* E5M2: a result above 57344 after rounding (and +-Inf) becomes +-Inf (``S.11111.00``);
* NaN of any payload becomes the canonical NaN of the format, sign kept
  (E4M3FN ``0x7F``, E5M2 ``0x7E``, ``| 0x80`` if negative); ``-0.0`` becomes ``0x80``.

The decoder is exact (every fp8 value is a float32); NaN codes decode to the float32 quiet
NaN ``0x7FC00000`` with the code's sign.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hwsim.errors import HwsimError
from hwsim.quant.formats import FP8Format, fp8_format

__all__ = ["fp8_decode", "fp8_encode", "fp8_values"]

_F32_MAN = 23
_F32_BIAS = 127
_F32_ABS = np.uint32(0x7FFFFFFF)
_F32_INF = 0x7F800000


def _rne_shift(v: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """``v / 2^shift`` rounded to nearest, ties to even, for int64 ``v >= 0``, 1 <= shift <= 62."""
    shift = np.asarray(shift, dtype=np.int64)
    one = np.int64(1)
    q = v >> shift
    rem = v & ((one << shift) - 1)
    half = one << (shift - 1)
    up = (rem > half) | ((rem == half) & ((q & 1) == 1))
    return q + up.astype(np.int64)


def fp8_encode(x: npt.ArrayLike, fmt: str) -> np.ndarray:
    """Encode values (cast to float32 first) as fp8 codes of ``fmt`` ("e4m3" or "e5m2").

    Returns a uint8 array of x's shape; bit-identical to
    ``x.astype(np.float32).astype(ml_dtypes.float8_<fmt>).view(np.uint8)`` (§2.3).
    """
    f = fp8_format(fmt)
    xf = np.asarray(x, dtype=np.float32)
    bits = xf.view(np.uint32).astype(np.int64)
    sign = (bits >> 31) << 7
    mag = bits & int(_F32_ABS)
    m = f.man_bits
    exp32 = mag >> _F32_MAN
    sig = mag & ((1 << _F32_MAN) - 1)
    # Normal fp8 result: round the float32 magnitude at the fp8 mantissa lsb, then re-bias.
    # A mantissa carry propagates into the exponent field, as it must.
    normal = _rne_shift(mag, _F32_MAN - m) - ((_F32_BIAS - f.bias) << m)
    # Subnormal fp8 result: value / min_subnormal = sig_full * 2^(e_eff - 150 + bias - 1 + m).
    e_eff = np.maximum(exp32, 1)
    sig_full = np.where(exp32 > 0, sig | (1 << _F32_MAN), sig)
    r = np.minimum((_F32_BIAS + _F32_MAN + 1 - f.bias - m) - e_eff, 40)
    r = np.maximum(r, 1)
    sub = _rne_shift(sig_full, r)
    is_sub = exp32 < (_F32_BIAS + 1 - f.bias)
    code = np.where(is_sub, sub, normal)
    overflow_code = f.inf_code if f.has_inf else f.nan_code
    code = np.where(code > f.max_code, overflow_code, code)
    code = np.where(mag > _F32_INF, f.nan_code, code)
    return (code | sign).astype(np.uint8)


def _decode_table(f: FP8Format) -> np.ndarray:
    """float32 value of each of the 256 codes of ``f`` (§2.2)."""
    codes = np.arange(256, dtype=np.int64)
    sign = (codes >> 7) << 31
    e = (codes >> f.man_bits) & ((1 << f.exp_bits) - 1)
    man = codes & ((1 << f.man_bits) - 1)
    normal_bits = ((e - f.bias + _F32_BIAS) << _F32_MAN) | (man << (_F32_MAN - f.man_bits))
    sub_vals = np.ldexp(man.astype(np.float32), 1 - f.bias - f.man_bits).astype(np.float32)
    mag_bits = np.where(e == 0, sub_vals.view(np.uint32).astype(np.int64), normal_bits)
    e_max = (1 << f.exp_bits) - 1
    if f.has_inf:
        mag_bits = np.where((e == e_max) & (man == 0), _F32_INF, mag_bits)
        mag_bits = np.where((e == e_max) & (man != 0), 0x7FC00000, mag_bits)
    else:
        mag_bits = np.where((e == e_max) & (man == (1 << f.man_bits) - 1), 0x7FC00000, mag_bits)
    return (mag_bits | sign).astype(np.uint32).view(np.float32)


_TABLES: dict[str, np.ndarray] = {}


def fp8_values(fmt: str) -> np.ndarray:
    """Read-only float32 array of the 256 values of ``fmt``, indexed by code."""
    f = fp8_format(fmt)
    table = _TABLES.get(f.name)
    if table is None:
        table = _decode_table(f)
        table.setflags(write=False)
        _TABLES[f.name] = table
    return table


def fp8_decode(codes: npt.ArrayLike, fmt: str) -> np.ndarray:
    """Decode uint8 fp8 codes of ``fmt`` into float32 values (exact; NaN codes -> quiet NaN)."""
    c = np.asarray(codes)
    if c.dtype != np.uint8:
        if not np.issubdtype(c.dtype, np.integer) or c.size and (c.min() < 0 or c.max() > 255):
            raise HwsimError(f"fp8 codes must be integers in [0, 255], got dtype {c.dtype}")
        c = c.astype(np.uint8)
    return fp8_values(fmt)[c]
