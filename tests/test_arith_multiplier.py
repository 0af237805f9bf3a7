"""§8.1, §8.2, §8.4: TFLite/gemmlowp primitives and multiplier choice vs exact models."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.arith import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single_round,
    quantize_multiplier,
    quantize_multiplier_dyadic,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from hwsim.arith.jit import rdbp_scalar, srdhm_scalar
from hwsim.errors import ConfigError, HwsimError

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1
EDGE_I32 = [I32_MIN, I32_MIN + 1, -(1 << 30), -2, -1, 0, 1, 2, 1 << 30, I32_MAX - 1, I32_MAX]
int32s = st.one_of(st.integers(I32_MIN, I32_MAX), st.sampled_from(EDGE_I32))


def half_up(v: Fraction) -> int:
    return math.floor(v + Fraction(1, 2))


def half_away(v: Fraction) -> int:
    return half_up(v) if v >= 0 else -half_up(-v)


def half_even(v: Fraction) -> int:
    fl = math.floor(v)
    d = v - fl
    if d != Fraction(1, 2):
        return fl + (d > Fraction(1, 2))
    return fl + (fl % 2)


def wrap32(v: int) -> int:
    return (v + (1 << 31)) % (1 << 32) - (1 << 31)


def ref_srdhm(a: int, b: int) -> int:
    """The high half of 2ab rounded half up, saturating the single overflow case."""
    if a == b == I32_MIN:
        return I32_MAX
    return half_up(Fraction(a * b, 1 << 31))


def ref_quantize_multiplier(real: float, single: bool = False) -> tuple[int, int]:
    """Independent model: e with 2^(e-1) <= real < 2^e, M = round_half_away(real·2^(31-e))."""
    if real == 0:
        return 0, 0
    r = Fraction(real)
    e = 0
    while Fraction(2) ** e <= r:
        e += 1
    while Fraction(2) ** (e - 1) > r:
        e -= 1
    m = half_away(r * Fraction(2) ** (31 - e))
    if m == 1 << 31:
        m, e = 1 << 30, e + 1
    if e < -31:
        return 0, 0
    if single and e > 30:
        return I32_MAX, 30
    return m, e


@given(a=st.lists(int32s, min_size=1, max_size=16), b=st.lists(int32s, min_size=1, max_size=16))
def test_srdhm_matches_rational(a: list[int], b: list[int]) -> None:
    """§8.1: SRDHM(a, b) = floor((a·b + 2^30) / 2^31) except INT32_MIN² -> INT32_MAX."""
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    want = [ref_srdhm(x, y) for x, y in zip(a, b, strict=True)]
    got = saturating_rounding_doubling_high_mul(np.array(a), np.array(b))
    assert got.tolist() == want
    assert [srdhm_scalar(x, y) for x, y in zip(a, b, strict=True)] == want


def test_srdhm_edges() -> None:
    """§8.1: the only saturating case, and ties rounding up (toward +inf) for both signs."""
    assert int(saturating_rounding_doubling_high_mul(I32_MIN, I32_MIN)) == I32_MAX
    assert srdhm_scalar(I32_MIN, I32_MIN) == I32_MAX
    assert int(saturating_rounding_doubling_high_mul(I32_MIN, I32_MAX)) == -I32_MAX
    # a·b = ±2^30: exactly half an LSB of the 2^31 grid.
    assert int(saturating_rounding_doubling_high_mul(1 << 15, 1 << 15)) == 1
    assert int(saturating_rounding_doubling_high_mul(-(1 << 15), 1 << 15)) == 0
    assert int(saturating_rounding_doubling_high_mul(3 << 15, -(1 << 15))) == -1  # -1.5 -> -1


@given(x=st.lists(int32s, min_size=1, max_size=16), exponent=st.integers(0, 31))
def test_rdbp_matches_half_away(x: list[int], exponent: int) -> None:
    """§8.1: RoundingDivideByPOT(x, e) = x / 2^e rounded half away from zero."""
    want = [half_away(Fraction(v, 1 << exponent)) for v in x]
    assert rounding_divide_by_pot(np.array(x), exponent).tolist() == want
    assert [rdbp_scalar(v, exponent) for v in x] == want


def test_rdbp_ties_away_from_zero() -> None:
    """§8.1: ties go away from zero, for every exponent."""
    for e in range(1, 32):
        for k in range(-3, 4):
            x = (k << e) + (1 << (e - 1))  # (k + 1/2) · 2^e
            if I32_MIN <= x <= I32_MAX:
                want = k + 1 if k >= 0 else k
                assert int(rounding_divide_by_pot(np.int64(x), e)) == want
                assert rdbp_scalar(x, e) == want


reals = st.one_of(
    st.floats(min_value=2.0**-45, max_value=2.0**35, allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            0.0,
            1.0,
            0.5,
            2.0**-31,
            2.0**-32,
            2.0**-33,
            1 - 2.0**-33,
            1 - 2.0**-40,
            0.75 - 2.0**-34,
            2.0**-31 * (1 - 2.0**-40),
            2.0**30,
            2.0**31,
        ]
    ),
)


@given(real=reals, single=st.booleans())
def test_quantize_multiplier_matches_model_and_round_trips(real: float, single: bool) -> None:
    """§8.1/§8.2: QuantizeMultiplier equals the model; M·2^(e−31) within 2^−31 relative."""
    m, e = quantize_multiplier(real, single_rounding=single)
    assert (m, e) == ref_quantize_multiplier(real, single)
    if m == 0:
        assert real < 2.0**-31 or real == 0
        return
    assert (1 << 30) <= m < (1 << 31)
    if single and real >= 2.0**30:
        assert (m, e) == (I32_MAX, 30)
        return
    err = abs(Fraction(m) * Fraction(2) ** (e - 31) - Fraction(real))
    assert err <= Fraction(real) * Fraction(1, 1 << 31)


def test_quantize_multiplier_rounds_up_to_2_31() -> None:
    """§8.1: q·2^31 rounding to 2^31 gives M = 2^30 and e + 1."""
    assert quantize_multiplier(1 - 2.0**-33) == (1 << 30, 1)
    assert quantize_multiplier(0.5 - 2.0**-34) == (1 << 30, 0)
    assert quantize_multiplier(2.0**-32) == (1 << 30, -31)
    assert quantize_multiplier(2.0**-33) == (0, 0)  # e = -32 < -31: flushed
    assert quantize_multiplier(0.0) == (0, 0)
    m, e = quantize_multiplier(np.array([0.5, 0.25]))
    assert m.tolist() == [1 << 30, 1 << 30] and e.tolist() == [0, -1]


def test_quantize_multiplier_rejects_bad_scales() -> None:
    """§8.1: negative, NaN, infinite scales are ConfigErrors naming the field."""
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match=r"^real: expected a finite scale >= 0"):
            quantize_multiplier(bad)


def ref_mbqm(acc: int, m: int, e: int) -> int:
    left, right = max(e, 0), max(-e, 0)
    x = wrap32(acc * (1 << left))
    return half_away(Fraction(ref_srdhm(x, m), 1 << right))


mantissas = st.one_of(
    st.integers(1 << 30, I32_MAX), st.sampled_from([0, 1 << 30, (1 << 30) + 1, I32_MAX])
)


@given(
    acc=st.lists(int32s, min_size=1, max_size=16),
    m=mantissas,
    e=st.integers(-31, 30),
)
def test_multiply_by_quantized_multiplier_double_rounding(acc: list[int], m: int, e: int) -> None:
    """§8.1: RDBP(SRDHM(wrap32(acc·2^left), M), right), against the rational model."""
    got = multiply_by_quantized_multiplier(np.array(acc), m, e)
    assert got.tolist() == [ref_mbqm(a, m, e) for a in acc]


@given(
    acc=st.lists(int32s, min_size=1, max_size=16),
    m=mantissas,
    e=st.integers(-31, 30),
)
def test_multiply_by_quantized_multiplier_single_round(acc: list[int], m: int, e: int) -> None:
    """§8.2: (acc·M + 2^(t−1)) >> t with t = 31 − e is acc·M / 2^t rounded half up, once."""
    got = multiply_by_quantized_multiplier_single_round(np.array(acc), m, e)
    assert got.tolist() == [half_up(Fraction(a * m, 1 << (31 - e))) for a in acc]


def test_double_and_single_rounding_differ() -> None:
    """§8.1 vs §8.2: the double rounding gives a different answer on some inputs."""
    m, e = quantize_multiplier(0.3)
    acc = np.arange(-20000, 20000, dtype=np.int64)
    d = multiply_by_quantized_multiplier(acc, m, e)
    s = multiply_by_quantized_multiplier_single_round(acc, m, e)
    assert np.abs(d - s).max() == 1
    assert 0 < int((d != s).sum()) < acc.size


def test_left_shift_wraps_like_c_int32() -> None:
    """§8.1: acc·2^left is wrapped to int32 before the SRDHM (hwsim's definition of C UB)."""
    m = 1 << 30  # 0.5 in Q31
    got = multiply_by_quantized_multiplier(np.array([1 << 30, 3]), m, 2)
    # (2^30·4) wraps to 0; 3·4 = 12 -> 12·0.5 = 6
    assert got.tolist() == [0, 6]


def test_tflite_argument_checks() -> None:
    """§8.1: out-of-range acc, mantissa, shift raise HwsimError naming the argument."""
    with pytest.raises(HwsimError, match=r"^acc: expected values in the int32 range"):
        multiply_by_quantized_multiplier(np.array([1 << 31]), 1 << 30, 0)
    with pytest.raises(HwsimError, match=r"^shift: expected TFLite exponents in \[-31, 30\]"):
        multiply_by_quantized_multiplier_single_round(np.array([1]), 1 << 30, 31)
    with pytest.raises(HwsimError, match=r"^mantissa: expected values in \[0, 2\^31\)"):
        multiply_by_quantized_multiplier(np.array([1]), -5, 0)
    with pytest.raises(HwsimError, match=r"^exponent: expected integers in \[0, 31\]"):
        rounding_divide_by_pot(np.array([1]), 32)


def ref_dyadic(real: float, bits: int, shift_min: int, shift_max: int) -> tuple[int, int] | None:
    """Brute force: the largest n whose half-even mantissa fits, None if none does."""
    for n in range(shift_max, shift_min - 1, -1):
        m = half_even(Fraction(real) * Fraction(2) ** n)
        if m < 1 << bits:
            return m, n
    return None


@given(
    real=reals,
    bits=st.integers(1, 31),
    shift_min=st.integers(0, 62),
    width=st.integers(0, 62),
)
def test_dyadic_multiplier_matches_brute_force(
    real: float, bits: int, shift_min: int, width: int
) -> None:
    """§8.4: largest n in [shift_min, shift_max] with round_half_even(real·2^n) < 2^bits."""
    shift_max = min(62, shift_min + width)
    want = ref_dyadic(real, bits, shift_min, shift_max)
    if want is None:
        with pytest.raises(ConfigError, match=r"^real_scale: .* does not fit a \d+-bit multiplier"):
            quantize_multiplier_dyadic(real, bits, shift_min, shift_max)
    else:
        assert quantize_multiplier_dyadic(real, bits, shift_min, shift_max) == want


def test_dyadic_multiplier_examples() -> None:
    """§8.4: worked values (also printed in the spec)."""
    assert quantize_multiplier_dyadic(0.0072, 16) == (60398, 23)
    assert quantize_multiplier_dyadic(1.0, 8) == (128, 7)
    assert quantize_multiplier_dyadic(0.0, 8, 0, 20) == (0, 20)
    # 0.99999 · 2^8 rounds to 256 = 2^8: n drops by one.
    assert quantize_multiplier_dyadic(0.99999, 8) == (128, 7)
    m, n = quantize_multiplier_dyadic(np.array([0.5, 0.75]), 4, 0, 10)
    assert m.tolist() == [8, 12] and n.tolist() == [4, 4]
    with pytest.raises(
        ConfigError, match=r"^bits: expected a multiplier width in \[1, 31\], got 32"
    ):
        quantize_multiplier_dyadic(0.5, 32)
    with pytest.raises(ConfigError, match=r"^shift_min: expected shift_min <= shift_max"):
        quantize_multiplier_dyadic(0.5, 8, 5, 4)
