"""Lowering of conv / depthwise conv / gemm to GEMMs (specs/cycle_model.md §C1), checked
against the golden model's convolution accumulators (arithmetic.md §7). Tolerance 0."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.reference.golden_ops import conv2d_acc, gemm_acc
from hwsim.sim.fast import exact_matmul
from hwsim.sim.lowering import assemble_conv, lower_conv, lower_gemm, vector_cycles

CASES = [
    # (N, C, H, W, M, kh, kw, strides, pads, dilations, group)
    (1, 3, 7, 6, 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (2, 4, 9, 9, 6, 3, 2, (2, 1), (0, 2, 1, 0), (1, 2), 2),
    (1, 5, 8, 7, 5, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 5),  # depthwise
    (1, 4, 6, 6, 8, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 4),  # depthwise, multiplier 2
]


@pytest.mark.parametrize("case", CASES)
def test_conv_gemms_equal_golden_accumulators(case) -> None:
    """§C1: im2col with padding = x zero point, K order (c in group, kh, kw), one GEMM per
    group; bias + A @ W reassembled to NCHW equals the golden conv accumulators."""
    n, c, h, wd, m, kh, kw, strides, pads, dil, group = case
    rng = np.random.default_rng(sum(case[:7]))
    x = rng.integers(0, 256, size=(n, c, h, wd))
    w = rng.integers(-128, 128, size=(m, c // group, kh, kw))
    bias = rng.integers(-1000, 1000, size=m)
    zp = 17
    gemms, out_shape = lower_conv(x, w, bias, x_zero_point=zp, strides=strides, pads=pads,
                                  dilations=dil, group=group)
    assert len(gemms) == group
    outs = [g.bias[None, :] + exact_matmul(g.a, g.w) for g in gemms]
    got = assemble_conv(outs, out_shape)
    ref, _ = conv2d_acc(x, w, bias, x_zero_point=zp, strides=strides, pads=pads,
                        dilations=dil, group=group, acc_bits=32, policy="wrap")
    np.testing.assert_array_equal(got, ref)
    assert all(g.input_elements == n * (c // group) * h * wd for g in gemms)


def test_gemm_lowering_matches_golden() -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, size=(5, 9))
    w = rng.integers(-128, 128, size=(3, 9))
    bias = rng.integers(-100, 100, size=3)
    g = lower_gemm(x, w, bias)
    ref, _ = gemm_acc(x, w, bias, acc_bits=32, policy="wrap")
    np.testing.assert_array_equal(g.bias[None, :] + exact_matmul(g.a, g.w), ref)


def test_exact_matmul_wide_operands_exact() -> None:
    """Exactness of the blocked GEMM when float32 blocks would round (int16 operands)."""
    rng = np.random.default_rng(9)
    a = rng.integers(-32768, 32768, size=(7, 300))
    w = rng.integers(-32768, 32768, size=(300, 5))
    np.testing.assert_array_equal(exact_matmul(a, w), a.astype(np.int64) @ w.astype(np.int64))


def test_bad_group_and_vector_cost() -> None:
    with pytest.raises(HwsimError, match=r"^conv: group 3 does not divide"):
        lower_conv(np.zeros((1, 4, 5, 5), np.int64), np.zeros((4, 1, 3, 3), np.int64),
                   np.zeros(4, np.int64), x_zero_point=0, group=3)
    assert vector_cycles(33, 16) == 3 and vector_cycles(32, 16) == 2
