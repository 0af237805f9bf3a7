"""The float64 fake-quant reference's own arithmetic (specs/compiler.md §5, arithmetic §6,
§9): its float rounding equals the integer rounding shift, and its rescale equals the
integer requantization in the single-rounding modes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.arith import (
    ROUNDING_MODES,
    RequantConfig,
    make_requant_params,
    requantize,
    rounding_shift_right,
)
from hwsim.reference.fakequant_exec import fq_rescale, round_float


@given(st.lists(st.integers(-2**40, 2**40), min_size=1, max_size=20), st.integers(0, 12),
       st.sampled_from(ROUNDING_MODES))
def test_round_float_equals_rounding_shift_right(xs: list[int], shift: int,
                                                 rounding: str) -> None:
    """§6: rounding x·2^-shift in float64 (exact) equals the integer rounding shift."""
    x = np.array(xs, dtype=np.int64)
    got = round_float(np.ldexp(x.astype(np.float64), -shift), rounding)
    np.testing.assert_array_equal(got.astype(np.int64), rounding_shift_right(x, shift, rounding))


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("mode", ["dyadic", "custom", "tflite_single"])
def test_fq_rescale_equals_requantize_in_single_rounding_modes(mode: str, rounding: str) -> None:
    """§9: one rounding of acc·effective_scale (+ zero point, clamp) equals §8 requantize in
    the single-rounding modes (tflite_single rounds half up whatever the config says)."""
    rng = np.random.default_rng(ROUNDING_MODES.index(rounding))
    cfg = RequantConfig(mode=mode, rounding=rounding,
                        multiplier_bits=16 if mode == "dyadic" else 20)
    scales = rng.uniform(1e-4, 0.05, size=6)
    p = make_requant_params(scales, cfg, zero_point=-7, act_min=-100, act_max=120)
    acc = rng.integers(-2**20, 2**20, size=(50, 6))
    acc[0] = 0
    np.testing.assert_array_equal(fq_rescale(acc.astype(np.float64), p, channel_axis=1),
                                  requantize(acc, p, channel_axis=1))


def test_fq_rescale_tflite_within_one_lsb() -> None:
    """§9: the two-rounding TFLite datapath is within 1 LSB of one half-away rounding."""
    p = make_requant_params(np.array([0.0072, 0.3]), RequantConfig(mode="tflite"), 0)
    acc = np.random.default_rng(0).integers(-2**16, 2**16, size=(4000, 2))
    d = np.abs(fq_rescale(acc.astype(np.float64), p) - requantize(acc, p, channel_axis=1))
    assert d.max() == 1
