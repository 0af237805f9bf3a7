"""Fixed-point multipliers: TFLite/gemmlowp primitives and the dyadic multiplier (§8.1–§8.5).

The TFLite functions reproduce, as exact int64 numpy code, the reference kernels of
tflite-micro ``tensorflow/lite/kernels/internal/common.h`` / ``quantization_util.cc`` and
gemmlowp ``fixedpoint/fixedpoint.h``; the C int32 overflow points are defined here (§8.1).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from hwsim.arith.accumulator import wrap_to_bits
from hwsim.arith.rounding import MAX_SHIFT, rounding_shift_right
from hwsim.errors import ConfigError, HwsimError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

#: Range of the TFLite exponent ``e`` accepted by :func:`multiply_by_quantized_multiplier*`.
TFLITE_SHIFT_MIN = -31
TFLITE_SHIFT_MAX = 30


def _check_real(real: float, field: str) -> float:
    r = float(real)
    if not math.isfinite(r) or r < 0.0:
        raise ConfigError(f"{field}: expected a finite scale >= 0, got {real!r}")
    return r


def _int32_array(x: npt.ArrayLike, field: str) -> npt.NDArray[np.int64]:
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        raise HwsimError(f"{field}: expected int32 integers, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (int(a.min()) < INT32_MIN or int(a.max()) > INT32_MAX):
        raise HwsimError(
            f"{field}: expected values in the int32 range [{INT32_MIN}, {INT32_MAX}], got "
            f"[{int(a.min())}, {int(a.max())}]"
        )
    return a


def _quantize_multiplier_scalar(real: float, single_rounding: bool) -> tuple[int, int]:
    r = _check_real(real, "real")
    if r == 0.0:
        return 0, 0
    q, e = math.frexp(r)  # r = q * 2^e, q in [0.5, 1)
    v = Fraction(q) * (1 << 31)  # exact: q has 53 bits
    m = math.floor(v + Fraction(1, 2))  # round half away from zero (v > 0)
    if m == 1 << 31:
        m //= 2
        e += 1
    if e < -31:
        return 0, 0
    if single_rounding and e > TFLITE_SHIFT_MAX:
        return INT32_MAX, TFLITE_SHIFT_MAX
    return int(m), int(e)


def quantize_multiplier(
    real: float | npt.ArrayLike, *, single_rounding: bool = False
) -> tuple[int, int] | tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """TFLite ``QuantizeMultiplier`` (§8.1): ``real ≈ mantissa · 2^(shift − 31)``.

    ``real == 0`` -> ``(0, 0)``. Else ``(q, e) = frexp(real)``, ``M = round_half_away(q·2^31)``
    (exact); ``M == 2^31`` -> ``M = 2^30, e += 1``; ``e < −31`` -> ``(0, 0)`` (flush to zero).
    With ``single_rounding=True`` (TFLite built with ``TFLITE_SINGLE_ROUNDING``, §8.2) an
    exponent ``e > 30`` is saturated to ``(2^31 − 1, 30)``. ``mantissa`` is in
    ``[2^30, 2^31)`` (or 0); ``shift`` is the frexp exponent, positive = left shift.
    A scalar ``real`` gives Python ints, an array gives two int64 arrays of its shape.
    Raises :class:`ConfigError` for a negative, NaN or infinite ``real``.
    """
    if np.ndim(real) == 0:
        return _quantize_multiplier_scalar(float(real), single_rounding)  # type: ignore[arg-type]
    flat = np.asarray(real, dtype=np.float64)
    pairs = [_quantize_multiplier_scalar(float(r), single_rounding) for r in flat.ravel()]
    m = np.array([p[0] for p in pairs], dtype=np.int64).reshape(flat.shape)
    e = np.array([p[1] for p in pairs], dtype=np.int64).reshape(flat.shape)
    return m, e


def saturating_rounding_doubling_high_mul(
    a: npt.ArrayLike, b: npt.ArrayLike
) -> npt.NDArray[np.int64]:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values (§8.1).

    ``INT32_MAX`` if ``a == b == INT32_MIN`` (the only overflow), else
    ``trunc((a·b + nudge) / 2^31)`` with ``nudge = 2^30`` if ``a·b >= 0`` else ``1 − 2^30``,
    which equals ``floor((a·b + 2^30) / 2^31)``: the high half of ``2·a·b`` rounded half up.
    Inputs outside int32 raise :class:`HwsimError`. Equals ARM NEON ``VQRDMULH``.
    """
    aa = _int32_array(a, "a")
    bb = _int32_array(b, "b")
    ab = aa * bb  # |a·b| <= 2^62: exact in int64
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    n = ab + nudge
    # C++ integer division truncates toward zero.
    high = np.where(n >= 0, n >> 31, -((-n) >> 31))
    overflow = (aa == INT32_MIN) & (bb == INT32_MIN)
    return np.asarray(np.where(overflow, np.int64(INT32_MAX), high), dtype=np.int64)


def rounding_divide_by_pot(x: npt.ArrayLike, exponent: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2^exponent`` rounded half away from zero (§8.1).

    ``mask = 2^exponent − 1``, ``remainder = x & mask``,
    ``threshold = (mask >> 1) + (x < 0)``, result ``(x >> exponent) + (remainder > threshold)``.
    ``x`` int32, ``exponent`` in ``[0, 31]``; otherwise :class:`HwsimError`.
    """
    xx = _int32_array(x, "x")
    ee = np.asarray(exponent)
    if ee.dtype.kind not in "iu" or (ee.size and (int(ee.min()) < 0 or int(ee.max()) > 31)):
        raise HwsimError(f"exponent: expected integers in [0, 31], got {exponent!r}")
    ee = ee.astype(np.int64)
    one = np.int64(1)
    mask = np.left_shift(one, ee) - one
    remainder = np.bitwise_and(xx, mask)
    threshold = np.right_shift(mask, one) + (xx < 0).astype(np.int64)
    return np.asarray(
        np.right_shift(xx, ee) + (remainder > threshold).astype(np.int64), dtype=np.int64
    )


def _check_tflite_shift(shift: npt.ArrayLike) -> npt.NDArray[np.int64]:
    s = np.asarray(shift)
    if s.dtype.kind not in "iu" or (
        s.size and (int(s.min()) < TFLITE_SHIFT_MIN or int(s.max()) > TFLITE_SHIFT_MAX)
    ):
        raise HwsimError(
            f"shift: expected TFLite exponents in [{TFLITE_SHIFT_MIN}, {TFLITE_SHIFT_MAX}], "
            f"got {shift!r}"
        )
    return s.astype(np.int64)


def _check_mantissa(mantissa: npt.ArrayLike) -> npt.NDArray[np.int64]:
    m = _int32_array(mantissa, "mantissa")
    if m.size and int(m.min()) < 0:
        raise HwsimError(f"mantissa: expected values in [0, 2^31), got minimum {int(m.min())}")
    return m


def multiply_by_quantized_multiplier(
    acc: npt.ArrayLike, mantissa: npt.ArrayLike, shift: npt.ArrayLike
) -> npt.NDArray[np.int64]:
    """TFLite ``MultiplyByQuantizedMultiplier``, default (double rounding) build (§8.1).

    ``left = max(shift, 0)``, ``right = max(−shift, 0)``;
    ``x = wrap32(acc · 2^left)`` (C int32 overflow is undefined behaviour; hwsim defines it
    as two's complement wrap);
    result ``RoundingDivideByPOT(SRDHM(x, mantissa), right)``, always an int32 value.
    ``acc`` int32, ``mantissa`` in ``[0, 2^31)``, ``shift`` in ``[−31, 30]``.
    """
    a = _int32_array(acc, "acc")
    m = _check_mantissa(mantissa)
    s = _check_tflite_shift(shift)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    x = wrap_to_bits(np.left_shift(a, left), 32, True)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, m), right)


def multiply_by_quantized_multiplier_single_round(
    acc: npt.ArrayLike, mantissa: npt.ArrayLike, shift: npt.ArrayLike
) -> npt.NDArray[np.int64]:
    """TFLite ``MultiplyByQuantizedMultiplier`` with ``TFLITE_SINGLE_ROUNDING`` (§8.2).

    ``t = 31 − shift`` (in ``[1, 62]``), result ``(acc · mantissa + 2^(t−1)) >> t``: the exact
    product rounded half up once. ``acc`` int32, ``mantissa`` in ``[0, 2^31)``, ``shift`` in
    ``[−31, 30]``. TFLite only DCHECKs that the result fits int32; hwsim returns the exact
    int64 value and the output stage (§8.6) saturates or wraps it.
    """
    a = _int32_array(acc, "acc")
    m = _check_mantissa(mantissa)
    s = _check_tflite_shift(shift)
    return rounding_shift_right(a * m, 31 - s, "half_up")


def _check_dyadic_args(bits: int, shift_min: int, shift_max: int) -> None:
    for name, v in (("bits", bits), ("shift_min", shift_min), ("shift_max", shift_max)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ConfigError(f"{name}: expected an integer, got {v!r}")
    if not 1 <= bits <= 31:
        raise ConfigError(f"bits: expected a multiplier width in [1, 31], got {bits}")
    if not 0 <= shift_min <= MAX_SHIFT:
        raise ConfigError(f"shift_min: expected an integer in [0, {MAX_SHIFT}], got {shift_min}")
    if not 0 <= shift_max <= MAX_SHIFT:
        raise ConfigError(f"shift_max: expected an integer in [0, {MAX_SHIFT}], got {shift_max}")
    if shift_min > shift_max:
        raise ConfigError(
            f"shift_min: expected shift_min <= shift_max, got {shift_min} > {shift_max}"
        )


def _round_half_even_scaled(num: int, den: int, n: int) -> int:
    """round_half_even(num · 2^n / den) for positive integers, exactly."""
    q, r = divmod(num << n, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return q


def _dyadic_scalar(real: float, bits: int, shift_min: int, shift_max: int) -> tuple[int, int]:
    r = _check_real(real, "real")
    if r == 0.0:
        return 0, shift_max
    num, den = r.as_integer_ratio()
    limit = 1 << bits
    _, e = math.frexp(r)  # r < 2^e, so r·2^n < 2^bits whenever n <= bits − e
    n = min(shift_max, max(shift_min, bits - e))
    while True:
        m = _round_half_even_scaled(num, den, n)
        if m < limit:
            return m, n
        if n == shift_min:
            raise ConfigError(
                f"real_scale: {real!r} does not fit a {bits}-bit multiplier with a right shift "
                f">= shift_min = {shift_min} (needs m < 2^{bits}); lower shift_min or raise "
                "multiplier_bits"
            )
        n -= 1


def quantize_multiplier_dyadic(
    real: float | npt.ArrayLike, bits: int, shift_min: int = 0, shift_max: int = 62
) -> tuple[int, int] | tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Dyadic multiplier (§8.4): ``real ≈ m · 2^−n`` with ``0 <= m < 2^bits``.

    ``n`` is the largest integer in ``[shift_min, shift_max]`` such that
    ``m = round_half_even(real · 2^n) < 2^bits``, computed exactly on the float64 value of
    ``real``. ``real == 0`` -> ``(0, shift_max)``; a scale below ``2^−(shift_max+1)`` flushes to
    ``m = 0``. If even ``n = shift_min`` gives ``m >= 2^bits``, :class:`ConfigError` names the
    scale. ``bits`` in ``[1, 31]``, ``0 <= shift_min <= shift_max <= 62``. A scalar ``real``
    gives Python ints, an array gives two int64 arrays of its shape.
    """
    _check_dyadic_args(bits, shift_min, shift_max)
    if np.ndim(real) == 0:
        return _dyadic_scalar(float(real), bits, shift_min, shift_max)  # type: ignore[arg-type]
    flat = np.asarray(real, dtype=np.float64)
    pairs = [_dyadic_scalar(float(r), bits, shift_min, shift_max) for r in flat.ravel()]
    m = np.array([p[0] for p in pairs], dtype=np.int64).reshape(flat.shape)
    n = np.array([p[1] for p in pairs], dtype=np.int64).reshape(flat.shape)
    return m, n
