"""§8, §9: the requantization block (numpy and Numba) against exact rational models."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.arith import (
    ROUNDING_MODES,
    RequantConfig,
    RequantParams,
    activation_range,
    effective_scale,
    make_requant_params,
    requantize,
)
from hwsim.arith.jit import requant_scalar_args, requantize_scalar
from hwsim.errors import ConfigError, HwsimError

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1
EDGE_ACC = [
    I32_MIN,
    I32_MIN + 1,
    -(1 << 24) - 1,
    -3,
    -2,
    -1,
    0,
    1,
    2,
    3,
    (1 << 24) + 1,
    I32_MAX - 1,
    I32_MAX,
]


# ---- independent exact models -------------------------------------------------------------


def rnd(v: Fraction, mode: str) -> int:
    """The §6 rounding modes on an exact rational."""
    fl = math.floor(v)
    d = v - fl
    h = Fraction(1, 2)
    if mode == "floor":
        return fl
    if mode == "toward_zero":
        return math.trunc(v)
    if d != h:
        return fl + (d > h)
    return {"half_up": fl + 1, "half_away": fl + (v > 0), "half_even": fl + fl % 2}[mode]


def f32(v: Fraction) -> Fraction:
    """IEEE binary32 round-to-nearest-even of an exact rational (normal and subnormal)."""
    if v == 0:
        return Fraction(0)
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    ulp = Fraction(2) ** (max(e, -126) - 23)
    r = rnd(a / ulp, "half_even") * ulp
    assert r < Fraction(2) ** 128, "float32 overflow is outside the tested range"
    return r if v > 0 else -r


def wrap(v: int, bits: int, signed: bool) -> int:
    m = v % (1 << bits)
    return m - (1 << bits) if signed and m >= 1 << (bits - 1) else m


def ref_y(acc: int, p: RequantParams, c: int) -> int:
    """§8.1–§8.5 scaled value y for one accumulator of channel c."""
    mode = p.config.mode
    m, n = int(p.multiplier[c]), int(p.shift[c])
    if mode == "tflite":
        e = 31 - n
        x = wrap(acc * (1 << max(e, 0)), 32, True)
        hi = I32_MAX if x == m == I32_MIN else rnd(Fraction(x * m, 1 << 31), "half_up")
        return rnd(Fraction(hi, 1 << max(-e, 0)), "half_away")
    if mode == "tflite_single":
        return rnd(Fraction(acc * m, 1 << n), "half_up")
    if mode == "float32":
        f = f32(f32(Fraction(acc)) * Fraction(float(p.scale_f32[c])))
        # MLAS clamps against float(qmin − z), float(qmax − z): float32 values too.
        lo, hi = f32(Fraction(p.qmin - p.zero_point)), f32(Fraction(p.qmax - p.zero_point))
        f = min(max(f, lo), hi)
        return rnd(f, "half_even")
    return rnd(Fraction(acc * m, 1 << n), p.config.rounding)


def ref_requantize(acc: np.ndarray, p: RequantParams) -> list[list[int]]:
    """§8.6 output stage on top of ref_y; acc has shape (N, C), channel axis -1."""
    out = []
    for row in acc.tolist():
        r = []
        for c, a in enumerate(row):
            v = ref_y(a, p, c if p.channels > 1 else 0) + p.zero_point
            if p.config.output_overflow == "wrap":
                v = wrap(v, p.out_bits, p.out_signed)
            r.append(min(max(v, p.act_min), p.act_max))
        out.append(r)
    return out


def jit_requantize(acc: np.ndarray, p: RequantParams) -> np.ndarray:
    """The Numba scalar kernel applied element by element (channel axis -1)."""
    mult, shift, s32, *rest = requant_scalar_args(p)
    out = np.empty(acc.shape, dtype=np.int64)
    for idx in np.ndindex(*acc.shape):
        c = idx[-1] if p.channels > 1 else 0
        out[idx] = requantize_scalar(int(acc[idx]), mult[c], shift[c], s32[c], *rest)
    return out


IMPLS = {"numpy": lambda a, p: requantize(a, p), "jit": jit_requantize}


# ---- inputs ---------------------------------------------------------------------------------

scales = st.one_of(
    st.floats(min_value=2.0**-40, max_value=4.0, allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            1.0,
            0.5,
            0.25,
            2.0**-20,
            2.0**-31,
            2.0**-32,
            2.0**-33,
            0.0072,
            3.0,
            1 - 2.0**-33,  # M rounds up to 2^31 -> (2^30, e + 1)
            1 - 2.0**-31,  # M = 2^31 - 1
            0.5 + 2.0**-32,  # M = 2^30 + 1
            2.0**-31 * (1 - 2.0**-40),
        ]  # rounds up across the flush-to-zero boundary
    ),
)
#: Large scales: tflite left shifts up to e = 29 (acc·2^left wraps in int32), saturation.
huge_scales = st.floats(min_value=4.0, max_value=2.0**29, allow_nan=False, allow_infinity=False)


def acc_grid(seed: int, p: RequantParams) -> np.ndarray:
    """(N, C) accumulators: edges, random int32, and exact ties of each channel's datapath."""
    rng = np.random.default_rng(seed)
    cols = []
    for c in range(p.channels):
        vals = list(EDGE_ACC) + rng.integers(I32_MIN, I32_MAX, size=12, endpoint=True).tolist()
        vals += rng.integers(-4096, 4096, size=6).tolist()
        m, n = int(p.multiplier[c]), int(p.shift[c])
        if m > 0 and n > 0:
            j = (m & -m).bit_length() - 1  # m = mo·2^j, mo odd
            if j < n:
                mod = 1 << (n - j)
                base = ((1 << (n - 1 - j)) * pow(m >> j, -1, mod)) % mod  # acc·m ≡ 2^(n−1)
                for k in rng.integers(-8, 8, size=4).tolist():
                    t = base + k * mod
                    if mod > (1 << 33):
                        t = base - mod if base > I32_MAX else base
                    if I32_MIN <= t <= I32_MAX:
                        vals.append(t)
        cols.append(vals)
    width = max(len(v) for v in cols)
    return np.array([v + v[: width - len(v)] for v in cols], dtype=np.int64).T.copy()


def build(
    mode: str, scale: list[float], zp: int, out_bits: int, out_signed: bool, **kw
) -> RequantParams:
    qmin = -(1 << (out_bits - 1)) if out_signed else 0
    qmax = (1 << (out_bits - 1)) - 1 if out_signed else (1 << out_bits) - 1
    z = min(max(zp, qmin), qmax)
    return make_requant_params(scale, RequantConfig(mode=mode, **kw), z, out_bits, out_signed)


out_fmt = st.sampled_from([(8, True), (8, False), (4, True), (16, True), (32, True)])


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("mode", ["tflite", "tflite_single", "float32"])
@given(
    scale=st.lists(st.one_of(scales, huge_scales), min_size=1, max_size=3),
    zp=st.integers(-200, 200),
    fmt=out_fmt,
    seed=st.integers(0, 2**32 - 1),
    wrap_out=st.booleans(),
)
def test_engine_modes_match_rational(
    impl: str,
    mode: str,
    scale: list[float],
    zp: int,
    fmt: tuple[int, bool],
    seed: int,
    wrap_out: bool,
) -> None:
    """§8.1–§8.3, §8.6: tflite, tflite_single, float32 against exact models, tolerance 0."""
    overflow = "wrap" if wrap_out and mode != "float32" else "saturate"
    p = build(mode, scale, zp, *fmt, output_overflow=overflow)
    acc = acc_grid(seed, p)
    assert IMPLS[impl](acc, p).tolist() == ref_requantize(acc, p)


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@given(
    scale=st.lists(scales, min_size=1, max_size=3),
    bits=st.integers(1, 31),
    shift_min=st.integers(0, 8),
    shift_max=st.integers(20, 62),
    zp=st.integers(-200, 200),
    fmt=out_fmt,
    seed=st.integers(0, 2**32 - 1),
    custom_wrap=st.booleans(),
)
def test_dyadic_and_custom_match_rational(
    impl: str,
    rounding: str,
    scale: list[float],
    bits: int,
    shift_min: int,
    shift_max: int,
    zp: int,
    fmt: tuple[int, bool],
    seed: int,
    custom_wrap: bool,
) -> None:
    """§8.4–§8.6: m·2^−n datapath, every rounding mode, saturate and wrap output stages."""
    mode = "custom" if custom_wrap else "dyadic"
    kw = {
        "multiplier_bits": bits,
        "rounding": rounding,
        "shift_min": shift_min,
        "shift_max": shift_max,
        "output_overflow": "wrap" if custom_wrap else "saturate",
    }
    try:
        p = build(mode, scale, zp, *fmt, **kw)
    except ConfigError as exc:  # a scale too large for bits at shift_min: must be a real case
        assert "does not fit" in str(exc)
        assert max(scale) * 2.0**shift_min >= 2.0**bits - 0.5
        return
    acc = acc_grid(seed, p)
    assert IMPLS[impl](acc, p).tolist() == ref_requantize(acc, p)


def test_float32_conversion_rounds_above_2_24() -> None:
    """§8.3: int32 -> float32 rounds to nearest even once |acc| > 2^24 (scale 1 shows it)."""
    p = make_requant_params(1.0, RequantConfig(mode="float32"), 0, out_bits=32)
    acc = np.array([(1 << 24) + 1, (1 << 24) + 3, -(1 << 24) - 1, I32_MAX], dtype=np.int64)
    want = [1 << 24, (1 << 24) + 4, -(1 << 24), I32_MAX]  # I32_MAX -> 2^31 -> clamped
    assert requantize(acc, p).tolist() == want
    assert jit_requantize(acc.reshape(-1, 1), p).ravel().tolist() == want


def test_float32_ties_to_even_and_clamp_before_rounding() -> None:
    """§8.3: x.5 goes to even; values are clamped to [qmin − z, qmax − z] in float."""
    p = make_requant_params(0.5, RequantConfig(mode="float32"), zero_point=10)
    acc = np.array([1, 3, 5, -1, -3, 1000, -1000], dtype=np.int64)
    assert requantize(acc, p).tolist() == [10, 12, 12, 10, 8, 127, -128]


def test_per_channel_axis() -> None:
    """§8: per-channel parameters follow channel_axis; C = 1 broadcasts."""
    p = make_requant_params([0.5, 0.25, 1.0], RequantConfig(), 0)
    acc = np.array([[[8], [8], [8]]], dtype=np.int64)  # shape (1, 3, 1), channels on axis 1
    assert requantize(acc, p, channel_axis=1).ravel().tolist() == [4, 2, 8]
    assert requantize(acc.reshape(1, 3), p).ravel().tolist() == [4, 2, 8]
    with pytest.raises(HwsimError, match=r"^acc: axis -1 has 1 entries, params have 3 channels"):
        requantize(acc, p)
    with pytest.raises(HwsimError, match=r"^acc: expected accumulator values in the int32 range"):
        requantize(np.array([1 << 31, 0, 0]), p)


def test_output_stage_activation_range_and_wrap() -> None:
    """§8.6: fused ReLU range [max(qmin, z), qmax]; wrap then clamp."""
    lo, hi = activation_range("relu", 0.05, -20)
    assert (lo, hi) == (-20, 127)
    assert activation_range("relu6", 0.05, -20) == (-20, 100)
    assert activation_range("relu_n1_to_1", 0.5, 0, 4, True) == (-2, 2)
    assert activation_range("none", 1.0, 0, 8, False) == (0, 255)
    p = make_requant_params(
        1.0, RequantConfig(mode="custom", output_overflow="wrap"), -20, act_min=lo, act_max=hi
    )
    # y + z = 130 - 20 = 110 ok; 200 - 20 = 180 wraps to -76 -> clamp to -20; -100-20 = -120 -> -20
    assert requantize(np.array([130, 200, -100]), p).tolist() == [110, -20, -20]
    ps = make_requant_params(1.0, RequantConfig(), -20, act_min=lo, act_max=hi)
    assert requantize(np.array([130, 200, -100]), ps).tolist() == [110, 127, -20]


def test_effective_scale_per_mode() -> None:
    """§9: tflite M·2^(e−31), float32 the float32 value, dyadic m·2^−n — all exact."""
    real = 0.0072
    eff = {}
    for mode in ("tflite", "tflite_single", "float32", "dyadic"):
        eff[mode] = float(
            effective_scale(make_requant_params(real, RequantConfig(mode=mode), 0))[0]
        )
    assert Fraction(eff["tflite"]) == Fraction(1979120930, 1 << 38)
    assert eff["tflite_single"] == eff["tflite"]
    assert eff["float32"] == float(np.float32(real))
    assert Fraction(eff["dyadic"]) == Fraction(60398, 1 << 23)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@given(scale=scales, bits=st.integers(4, 22), seed=st.integers(0, 2**32 - 1))
def test_dyadic_equals_float64_reference_when_exact(
    rounding: str, scale: float, bits: int, seed: int
) -> None:
    """§9: multiplier_bits <= 22 makes round(acc·effective_scale) in float64 exact.

    |acc·m| < 2^53, so the float64 product is exact and one rounding reproduces §8.4.
    """
    p = make_requant_params(
        scale, RequantConfig(multiplier_bits=bits, rounding=rounding), 0, out_bits=32
    )
    acc = acc_grid(seed, p)[:, 0]
    v = acc.astype(np.float64) * effective_scale(p)[0]  # exact product
    fl = np.floor(v)
    d = v - fl
    if rounding == "floor":
        y = fl
    elif rounding == "toward_zero":
        y = np.trunc(v)
    elif rounding == "half_up":
        y = fl + (d >= 0.5)
    elif rounding == "half_away":
        y = np.where(v >= 0, np.floor(np.abs(v) + 0.5), -np.floor(np.abs(v) + 0.5))
    else:
        y = np.rint(v)
    want = np.clip(y, p.act_min, p.act_max).astype(np.int64)
    assert requantize(acc, p).tolist() == want.tolist()


def test_tflite_is_not_a_single_rounding_of_the_effective_scale() -> None:
    """§9: tflite (two roundings) differs from round_half_away(acc·M·2^(e−31)) on some inputs.

    The SRDHM keeps only ``right = −e`` fractional bits before RoundingDivideByPOT, so the
    mismatch rate is about 2^−right; every mismatch is exactly 1 LSB.
    """
    rng = np.random.default_rng(1)
    acc = rng.integers(-(1 << 20), 1 << 20, size=200_000)
    for real in (0.3, 0.0072, 0.00049):
        p = make_requant_params(real, RequantConfig(mode="tflite"), 0, out_bits=32)
        got = requantize(acc, p)
        v = acc * effective_scale(p)[0]  # exact: |acc·M| < 2^51
        single = np.where(v >= 0, np.floor(np.abs(v) + 0.5), -np.floor(np.abs(v) + 0.5))
        rate = float(np.mean(got != single))
        print(
            f"tflite scale {real}: right shift {int(p.shift[0]) - 31}, mismatch vs single "
            f"half-away rounding of acc·eff {rate:.5f}, max |diff| "
            f"{int(np.abs(got - single).max())} LSB"
        )
        assert 0 < rate < 2.0 ** (31 - int(p.shift[0]) + 1)
        assert np.abs(got - single).max() == 1


# ---- configuration errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"mode": "gemmlowp"}, r"^mode: unknown requantization mode 'gemmlowp'"),
        ({"rounding": "nearest"}, r"^rounding: unknown rounding mode 'nearest'"),
        ({"multiplier_bits": 0}, r"^multiplier_bits: expected an integer in \[1, 31\], got 0"),
        ({"multiplier_bits": 32}, r"^multiplier_bits: expected an integer in \[1, 31\], got 32"),
        (
            {"shift_min": 10, "shift_max": 5},
            r"^shift_min: expected shift_min <= shift_max, got 10 > 5",
        ),
        ({"shift_max": 63}, r"^shift_max: expected an integer in \[0, 62\], got 63"),
        ({"output_overflow": "clip"}, r"^output_overflow: expected one of saturate, wrap"),
        (
            {"mode": "float32", "output_overflow": "wrap"},
            r"^output_overflow: mode 'float32' saturates",
        ),
    ],
)
def test_invalid_config_names_the_field(kwargs: dict, pattern: str) -> None:
    """§8: every invalid RequantConfig field is a ConfigError whose message names it."""
    with pytest.raises(ConfigError, match=pattern):
        RequantConfig(**kwargs)


def test_invalid_params_name_the_field() -> None:
    """§8.6: act range outside the output range, negative scale, bad zero point."""
    cfg = RequantConfig()
    with pytest.raises(
        ConfigError,
        match=r"^act_min: expected an integer in the output range \[-128, 127\], got -129",
    ):
        make_requant_params(0.1, cfg, 0, act_min=-129)
    with pytest.raises(
        ConfigError, match=r"^act_max: expected an integer in the output range \[0, 255\], got 256"
    ):
        make_requant_params(0.1, cfg, 0, out_signed=False, act_max=256)
    with pytest.raises(ConfigError, match=r"^act_min: expected act_min <= act_max, got 5 > 4"):
        make_requant_params(0.1, cfg, 0, act_min=5, act_max=4)
    with pytest.raises(
        ConfigError, match=r"^real_scale: expected finite scales >= 0, got -0.5 at channel 1"
    ):
        make_requant_params([0.1, -0.5], cfg, 0)
    with pytest.raises(ConfigError, match=r"^zero_point: expected an integer in the output range"):
        make_requant_params(0.1, cfg, 128)
    for big in (2.0**30, 2.0**30 * (1 - 2.0**-33)):  # the second rounds up to e = 31
        with pytest.raises(ConfigError, match=r"^real_scale: mode 'tflite' needs a TFLite exp"):
            make_requant_params(big, RequantConfig(mode="tflite"), 0)
    single = make_requant_params(2.0**30, RequantConfig(mode="tflite_single"), 0)
    assert (int(single.multiplier[0]), int(single.shift[0])) == ((1 << 31) - 1, 1)
    with pytest.raises(ConfigError, match=r"^real_scale: 300.0 does not fit a 8-bit multiplier"):
        make_requant_params(300.0, RequantConfig(multiplier_bits=8), 0)
    with pytest.raises(ConfigError, match=r"^activation: unknown fused activation 'gelu'"):
        activation_range("gelu", 0.1, 0)


def test_spec_worked_examples() -> None:
    """§8.1–§8.6: the numbers printed in specs/arithmetic.md."""
    acc = np.array([12345, 69, -12345])
    tfl = make_requant_params(0.0072, RequantConfig(mode="tflite"), 0)
    assert (int(tfl.multiplier[0]), int(tfl.shift[0])) == (1979120930, 38)
    assert requantize(acc, tfl).tolist() == [89, 1, -89]
    single = make_requant_params(0.0072, RequantConfig(mode="tflite_single"), 0)
    assert requantize(acc, single).tolist() == [89, 0, -89]
    f32p = make_requant_params(0.0072, RequantConfig(mode="float32"), 3)
    assert requantize(np.array([12345, (1 << 24) + 1]), f32p).tolist() == [92, 127]
    want = {
        "half_up": [92, -86],
        "half_away": [92, -86],
        "half_even": [92, -86],
        "floor": [91, -86],
        "toward_zero": [91, -85],
    }
    for rounding, w in want.items():
        p = make_requant_params(0.0072, RequantConfig(rounding=rounding), 3)
        assert (int(p.multiplier[0]), int(p.shift[0])) == (60398, 23)
        assert requantize(np.array([12345, -12345]), p).tolist() == w
    kw = {
        "mode": "custom",
        "multiplier_bits": 8,
        "shift_min": 0,
        "shift_max": 12,
        "rounding": "half_even",
    }
    pw = make_requant_params(0.0072, RequantConfig(output_overflow="wrap", **kw), 3)
    ps = make_requant_params(0.0072, RequantConfig(**kw), 3)
    assert (int(pw.multiplier[0]), int(pw.shift[0])) == (29, 12)
    assert requantize(np.array([12345, 20000, -20000]), pw).tolist() == [90, -111, 117]
    assert requantize(np.array([12345, 20000, -20000]), ps).tolist() == [90, 127, -128]


@given(scale=scales, seed=st.integers(0, 2**32 - 1))
def test_float32_reference_recipe_of_section_9(scale: float, seed: int) -> None:
    """§9: float32(float64(float32(acc))·float64(scale_f32)) is the binary32 product exactly."""
    p = make_requant_params(scale, RequantConfig(mode="float32"), 0, out_bits=32)
    acc = acc_grid(seed, p)[:, 0]
    s = p.scale_f32[0]
    hw = np.multiply(acc.astype(np.float32), s, dtype=np.float32)
    ref = (acc.astype(np.float32).astype(np.float64) * np.float64(s)).astype(np.float32)
    assert np.array_equal(hw, ref)
