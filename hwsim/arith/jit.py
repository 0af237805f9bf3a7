"""Numba ``@njit(cache=True)`` scalar versions of the §6–§8 arithmetic, for kernels.

Each function here is the scalar twin of a numpy function in :mod:`hwsim.arith`, written
independently and held to it bit for bit by ``tests/test_arith_jit.py``. Names are passed
as integer codes (:data:`MODE_CODES`, :data:`ROUNDING_CODES`, :data:`POLICY_CODES`) because
kernels cannot take strings cheaply. All arguments are int64 (``scale_f32`` float32).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hwsim.arith.accumulator import OVERFLOW_POLICIES
from hwsim.arith.requantize import REQUANT_MODES, RequantParams
from hwsim.arith.rounding import ROUNDING_MODES

#: Requantization mode name -> code used by :func:`requantize_scalar`.
MODE_CODES: dict[str, int] = {name: i for i, name in enumerate(REQUANT_MODES)}
#: Rounding mode name (§6) -> code used by :func:`rounding_shift_right_scalar`.
ROUNDING_CODES: dict[str, int] = {name: i for i, name in enumerate(ROUNDING_MODES)}
#: Accumulator overflow policy (§7) -> code used by :func:`accumulate_scalar`.
POLICY_CODES: dict[str, int] = {name: i for i, name in enumerate(OVERFLOW_POLICIES)}

_HALF_UP = ROUNDING_CODES["half_up"]
_HALF_AWAY = ROUNDING_CODES["half_away"]
_HALF_EVEN = ROUNDING_CODES["half_even"]
_FLOOR = ROUNDING_CODES["floor"]
_TOWARD_ZERO = ROUNDING_CODES["toward_zero"]
_TFLITE = MODE_CODES["tflite"]
_TFLITE_SINGLE = MODE_CODES["tflite_single"]
_FLOAT32 = MODE_CODES["float32"]
_FLOAT64 = MODE_CODES["float64"]
_WRAP = POLICY_CODES["wrap"]
_SATURATE = POLICY_CODES["saturate"]
_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1


@njit(cache=True)
def rounding_shift_right_scalar(x: int, shift: int, rounding_code: int) -> int:
    """§6: exact ``x / 2^shift`` rounded by ``rounding_code``; ``shift`` in [0, 62]."""
    x = np.int64(x)
    shift = np.int64(shift)
    q = x >> shift
    if rounding_code == _FLOOR:
        return q
    r = x & ((np.int64(1) << shift) - np.int64(1))
    if rounding_code == _TOWARD_ZERO:
        if r != 0 and x < 0:
            return q + np.int64(1)
        return q
    two_r = r << np.int64(1)
    full = np.int64(1) << shift
    if two_r > full:
        return q + np.int64(1)
    if two_r == full:
        if rounding_code == _HALF_UP:
            return q + np.int64(1)
        if rounding_code == _HALF_AWAY:
            return q + np.int64(1) if x >= 0 else q
        if rounding_code == _HALF_EVEN:
            return q + (q & np.int64(1))
    return q


@njit(cache=True)
def wrap_scalar(x: int, bits: int, signed: bool) -> int:
    """§7.3/§8.6: ``x`` wrapped to ``bits`` bits, two's complement if ``signed``."""
    x = np.int64(x)
    low = x & ((np.int64(1) << np.int64(bits)) - np.int64(1))
    if signed and low >= (np.int64(1) << np.int64(bits - 1)):
        low -= np.int64(1) << np.int64(bits)
    return low


@njit(cache=True)
def srdhm_scalar(a: int, b: int) -> int:
    """§8.1: gemmlowp ``SaturatingRoundingDoublingHighMul`` of two int32 values."""
    a = np.int64(a)
    b = np.int64(b)
    if a == _INT32_MIN and b == _INT32_MIN:
        return np.int64(_INT32_MAX)
    ab = a * b
    nudge = np.int64(1 << 30) if ab >= 0 else np.int64(1 - (1 << 30))
    n = ab + nudge
    if n >= 0:
        return n >> np.int64(31)
    return -((-n) >> np.int64(31))


@njit(cache=True)
def rdbp_scalar(x: int, exponent: int) -> int:
    """§8.1: gemmlowp ``RoundingDivideByPOT`` (half away from zero), exponent in [0, 31]."""
    x = np.int64(x)
    exponent = np.int64(exponent)
    mask = (np.int64(1) << exponent) - np.int64(1)
    remainder = x & mask
    threshold = (mask >> np.int64(1)) + (np.int64(1) if x < 0 else np.int64(0))
    return (x >> exponent) + (np.int64(1) if remainder > threshold else np.int64(0))


@njit(cache=True)
def _round_half_even_f64(d: float) -> int:
    fl = np.floor(d)
    diff = d - fl
    q = np.int64(fl)
    if diff > 0.5 or (diff == 0.5 and (q & np.int64(1)) == 1):
        q += np.int64(1)
    return q


@njit(cache=True)
def requantize_scalar(
    acc: int,
    multiplier: int,
    shift: int,
    scale_f32: float,
    mode_code: int,
    rounding_code: int,
    zero_point: int,
    act_min: int,
    act_max: int,
    out_bits: int,
    out_signed: bool,
    wrap: bool,
) -> int:
    """§8 for one int32 accumulator value; arguments as in :class:`RequantParams` (one channel).

    ``shift`` is the right shift of :class:`RequantParams` (tflite: ``31 − e``),
    ``wrap`` is ``config.output_overflow == "wrap"``. Returns the output code (int64).
    """
    acc = np.int64(acc)
    multiplier = np.int64(multiplier)
    shift = np.int64(shift)
    z = np.int64(zero_point)
    if mode_code == _TFLITE:
        e = np.int64(31) - shift
        left = e if e > 0 else np.int64(0)
        right = -e if e < 0 else np.int64(0)
        x = wrap_scalar(acc << left, 32, True)
        y = rdbp_scalar(srdhm_scalar(x, multiplier), right)
    elif mode_code == _TFLITE_SINGLE:
        y = rounding_shift_right_scalar(acc * multiplier, shift, _HALF_UP)
    elif mode_code == _FLOAT32:
        if out_signed:
            qmin = -(np.int64(1) << np.int64(out_bits - 1))
            qmax = (np.int64(1) << np.int64(out_bits - 1)) - np.int64(1)
        else:
            qmin = np.int64(0)
            qmax = (np.int64(1) << np.int64(out_bits)) - np.int64(1)
        f = np.float32(acc) * np.float32(scale_f32)
        lo = np.float32(qmin - z)
        hi = np.float32(qmax - z)
        f = min(max(f, lo), hi)
        y = _round_half_even_f64(np.float64(f))
    elif mode_code == _FLOAT64:
        # §8.7: one float64 product (the scale M·2^−shift is exact), C round().
        f = np.float64(acc) * (np.float64(multiplier) * 2.0 ** (-np.float64(shift)))
        a = abs(f)
        fl = np.floor(a)
        r = np.int64(fl) + (np.int64(1) if a - fl >= 0.5 else np.int64(0))
        y = -r if f < 0 else r
    else:
        y = rounding_shift_right_scalar(acc * multiplier, shift, rounding_code)
    v = y + z
    if wrap:
        v = wrap_scalar(v, out_bits, out_signed)
    if v < act_min:
        v = np.int64(act_min)
    if v > act_max:
        v = np.int64(act_max)
    return v


@njit(cache=True)
def accumulate_scalar(acc: int, product: int, bits: int, policy_code: int) -> tuple[int, bool]:
    """§7: one accumulator addition ``acc + product`` in a signed ``bits``-wide register.

    Returns ``(new_acc, overflowed)``; ``overflowed`` is True when the exact sum is outside
    the range (one overflow event). Policy ``wrap``/``saturate`` give the wrapped/clamped
    value; ``error`` returns the exact sum with ``overflowed`` True and the CALLER raises
    :class:`hwsim.arith.AccumulatorOverflowError` naming the position (Numba cannot format it).
    """
    s = np.int64(acc) + np.int64(product)
    hi = (np.int64(1) << np.int64(bits - 1)) - np.int64(1)
    lo = -hi - np.int64(1)
    if lo <= s <= hi:
        return s, False
    if policy_code == _WRAP:
        return wrap_scalar(s, bits, True), True
    if policy_code == _SATURATE:
        return (lo if s < lo else hi), True
    return s, True


def requant_scalar_args(
    params: RequantParams,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, int, int, int, int, bool, bool]:
    """Unpack ``params`` into the arguments of :func:`requantize_scalar`.

    Returns ``(multiplier[C], shift[C], scale_f32[C], mode_code, rounding_code, zero_point,
    act_min, act_max, out_bits, out_signed, wrap)``; a kernel indexes the three arrays by
    channel (index 0 when ``C == 1``).
    """
    cfg = params.config
    return (
        params.multiplier,
        params.shift,
        params.scale_f32,
        MODE_CODES[cfg.mode],
        ROUNDING_CODES[cfg.rounding],
        params.zero_point,
        params.act_min,
        params.act_max,
        params.out_bits,
        bool(params.out_signed),
        cfg.output_overflow == "wrap",
    )
