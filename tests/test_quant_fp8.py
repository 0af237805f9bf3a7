"""§2 fp8 E4M3FN / E5M2: hwsim's bit-manipulation codec against ml_dtypes (tolerance 0)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.quant import fp8_decode, fp8_encode, fp8_format, fp8_values

ML_TYPES = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2}
FORMATS = sorted(ML_TYPES)


def oracle_encode(x: np.ndarray, fmt: str) -> np.ndarray:
    """ml_dtypes' float32 -> fp8 cast, as codes."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(x, dtype=np.float32).astype(ML_TYPES[fmt]).view(np.uint8)


def assert_same_bits(x: np.ndarray, fmt: str) -> None:
    got = fp8_encode(x, fmt)
    want = oracle_encode(x, fmt)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (
        f"{bad.size} mismatches, first: x bits {x.view(np.uint32)[bad[:5]]} "
        f"got {got[bad[:5]]} want {want[bad[:5]]}"
    )


def finite_positive_values(fmt: str) -> np.ndarray:
    """All finite positive fp8 values, ascending (from the ml_dtypes decode)."""
    v = np.arange(256, dtype=np.uint8).view(ML_TYPES[fmt]).astype(np.float64)
    return np.unique(v[np.isfinite(v) & (v > 0)])


@pytest.mark.parametrize("fmt", FORMATS)
def test_decode_all_256_codes_bit_exact(fmt: str) -> None:
    """§2.2: every code decodes to the float32 ml_dtypes gives, NaN bits included."""
    ours = fp8_decode(np.arange(256, dtype=np.uint8), fmt)
    theirs = np.arange(256, dtype=np.uint8).view(ML_TYPES[fmt]).astype(np.float32)
    np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32))
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_constants(fmt: str) -> None:
    """§2.1: the table's max / min normal / min subnormal equal the decoded extremes."""
    f = fp8_format(fmt)
    vals = finite_positive_values(fmt)
    assert f.max_finite == vals[-1] == {"e4m3": 448.0, "e5m2": 57344.0}[fmt]
    assert f.min_subnormal == vals[0]
    assert f.min_normal == {"e4m3": 2.0**-6, "e5m2": 2.0**-14}[fmt]
    assert fp8_values(fmt)[f.max_code] == f.max_finite


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_one_million_random_values(fmt: str) -> None:
    """§2.3: >= 1,000,000 seeded float32 values over all magnitudes encode bit for bit."""
    rng = np.random.default_rng(20260123)
    raw_bits = rng.integers(0, 2**32, 400_000, dtype=np.uint64).astype(np.uint32)
    log_uniform = np.exp2(rng.uniform(-30.0, 20.0, 400_000)) * rng.choice([-1.0, 1.0], 400_000)
    in_range = rng.uniform(-1.25, 1.25, 300_000) * fp8_format(fmt).max_finite
    x = np.concatenate(
        [raw_bits.view(np.float32), log_uniform.astype(np.float32), in_range.astype(np.float32)]
    )
    assert x.size >= 1_000_000
    assert_same_bits(x, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_every_tie_and_its_neighbours(fmt: str) -> None:
    """§2.3 round to nearest even: every midpoint (both signs) and the float32 values next to it."""
    vals = np.concatenate([[0.0], finite_positive_values(fmt)])
    f = fp8_format(fmt)
    top_gap = vals[-1] - vals[-2]
    mids = (vals[:-1] + vals[1:]) / 2.0
    mids = np.concatenate([mids, [vals[-1] + top_gap / 2.0]])  # overflow tie above max
    m32 = mids.astype(np.float32)
    assert np.array_equal(m32.astype(np.float64), mids), "midpoints must be exact in float32"
    around = np.concatenate(
        [m32, np.nextafter(m32, np.float32(np.inf)), np.nextafter(m32, np.float32(0))]
    )
    x = np.concatenate([around, -around]).astype(np.float32)
    assert_same_bits(x, fmt)
    # A tie goes to the even code: the encoded mantissa lsb is 0 for every interior tie.
    codes = fp8_encode(m32[:-1], fmt)
    assert np.all(codes & 1 == 0)
    # The tie above the largest finite value: E4M3FN's max 1.110b*2^8 has an even mantissa
    # and keeps it; E5M2's max 1.11b*2^15 is odd, so the tie rounds up to 2^16 = Inf.
    assert fp8_encode(m32[-1:], fmt)[0] == (f.inf_code if f.has_inf else f.max_code)


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_boundaries_specials(fmt: str) -> None:
    """§2.3/§2.4: subnormal and max-normal boundaries, overflow, +-0, +-Inf, NaN payloads."""
    f = fp8_format(fmt)
    f32 = np.float32
    pts = [
        f.min_subnormal / 2,
        f.min_subnormal,
        f.min_subnormal * 1.5,
        f.min_normal,
        f.min_normal - f.min_subnormal / 2,
        f.min_normal - f.min_subnormal,
        f.max_finite,
        f.max_finite * 2,
        1e30,
        float(np.finfo(np.float32).max),
        float(np.finfo(np.float32).tiny),
        1e-45,
        0.0,
    ]
    base = np.array(pts, dtype=np.float32)
    with np.errstate(over="ignore"):
        near = np.concatenate(
            [base, np.nextafter(base, f32(np.inf)), np.nextafter(base, f32(-np.inf))]
        )
    nan_bits = np.array(
        [0x7FC00000, 0x7F800001, 0x7FA00000, 0x7FFFFFFF, 0x7F800100, 0x7FC00001],
        dtype=np.uint32,
    )
    specials = np.concatenate(
        [np.array([np.inf, -np.inf, -0.0], dtype=np.float32), nan_bits.view(np.float32)]
    )
    x = np.concatenate([near, -near, specials, (nan_bits | 0x80000000).view(np.float32)])
    assert_same_bits(x.astype(np.float32), fmt)


def test_overflow_policy_matches_ml_dtypes() -> None:
    """§2.4: E4M3FN overflow -> NaN (0x7F), E5M2 overflow -> Inf (0x7C); ties at max round even."""
    assert fp8_encode(np.float32([464.0, 465.0, np.inf]), "e4m3").tolist() == [0x7E, 0x7F, 0x7F]
    assert fp8_encode(np.float32([61439.0, 61440.0, -np.inf]), "e5m2").tolist() == [
        0x7B,
        0x7C,
        0xFC,
    ]
    assert fp8_encode(np.float32([np.nan]), "e5m2").tolist() == [0x7E]


def test_encode_casts_float64_through_float32() -> None:
    """§2.3: the encoder rounds once from float32; float64 input is cast to float32 first."""
    x = np.array([0.1, 1.0 + 2.0**-30, 300.0], dtype=np.float64)
    np.testing.assert_array_equal(
        fp8_encode(x, "e4m3"), oracle_encode(x.astype(np.float32), "e4m3")
    )


def test_decode_rejects_out_of_range_codes() -> None:
    """§2.2: codes must be bytes."""
    with pytest.raises(ValueError, match="fp8 codes"):
        fp8_decode(np.array([256]), "e4m3")
    with pytest.raises(ValueError, match="fp8 format"):
        fp8_encode(np.float32([1.0]), "e3m4")


@settings(max_examples=300)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=64), st.sampled_from(FORMATS))
def test_encode_arbitrary_bit_patterns(bits: list[int], fmt: str) -> None:
    """§2.3/§2.4: any float32 bit pattern (NaN payloads, subnormals, Inf) encodes as ml_dtypes."""
    assert_same_bits(np.array(bits, dtype=np.uint32).view(np.float32), fmt)
