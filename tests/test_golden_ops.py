"""Differential tests of the naive integer kernels (hwsim.reference.golden_ops) against
scalar pure-Python definitions and hwsim.arith.accumulate (specs/arithmetic.md §7, §10)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.arith import accumulate
from hwsim.errors import HwsimError
from hwsim.reference import golden_ops as ops


@given(st.integers(4, 16), st.integers(0, 2**31 - 1))
def test_wrap_fast_path_equals_sequential_accumulate(bits: int, seed: int) -> None:
    """§7.3: the vectorised wrap sum (and its event count) equals the sequential accumulator."""
    rng = np.random.default_rng(seed)
    lim = 1 << (bits - 1)
    bias = rng.integers(-lim, lim, size=(3, 5))
    products = rng.integers(-lim, lim, size=(3, 5, 9))
    got, ev = ops.reduce_products(bias, products, bits, "wrap")
    want, want_ev = accumulate(bias, products, bits, "wrap")
    np.testing.assert_array_equal(got, want)
    assert ev == int(want_ev.sum())


def test_wrap_fast_path_rejects_bias_outside_accumulator() -> None:
    """§7: the folded bias must fit the accumulator, as in hwsim.arith.accumulate."""
    with pytest.raises(HwsimError, match="folded bias must fit the 8-bit"):
        ops.reduce_products(np.array([200]), np.zeros((1, 3), np.int64), 8, "wrap")


def _conv_scalar(x, w, bias, zx, strides, pads, dil, group):
    """Six nested loops straight from §7: acc = bias + Σ_k w·x, padding = zx."""
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.zeros((n, m, oh, ow), dtype=np.int64)
    for b in range(n):
        for oc in range(m):
            g = oc // (m // group)
            for i in range(oh):
                for j in range(ow):
                    acc = int(bias[oc])
                    for ci in range(cg):
                        for p in range(kh):
                            for q in range(kw):
                                r = i * strides[0] + p * dil[0] - pads[0]
                                s = j * strides[1] + q * dil[1] - pads[1]
                                v = zx if not (0 <= r < h and 0 <= s < wd) \
                                    else int(x[b, g * cg + ci, r, s])
                                acc += int(w[oc, ci, p, q]) * v
                    out[b, oc, i, j] = acc
    return out


@pytest.mark.parametrize("strides,pads,dil,group", [
    ((1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((2, 1), (0, 2, 1, 0), (1, 2), 1),
    ((1, 2), (2, 1, 0, 1), (2, 1), 2),
])
def test_conv2d_acc_equals_scalar_loops(strides, pads, dil, group) -> None:
    """§7: conv accumulators (k = (c, kh, kw) row-major, padding = zero point) equal the
    scalar definition, with a 32-bit accumulator that does not overflow."""
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, size=(2, 4, 6, 7))
    w = rng.integers(-128, 128, size=(4, 4 // group, 3, 2))
    bias = rng.integers(-1000, 1000, size=4)
    got, ev = ops.conv2d_acc(x, w, bias, x_zero_point=-5, strides=strides, pads=pads,
                             dilations=dil, group=group, acc_bits=32, policy="wrap")
    np.testing.assert_array_equal(got, _conv_scalar(x, w, bias, -5, strides, pads, dil, group))
    assert ev == 0


def test_conv2d_acc_saturate_is_sequential() -> None:
    """§7.3: with saturate the result depends on the order; it equals accumulate's."""
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(1, 2, 4, 4))
    w = rng.integers(-128, 128, size=(3, 2, 2, 2))
    bias = np.zeros(3, dtype=np.int64)
    got, ev = ops.conv2d_acc(x, w, bias, x_zero_point=0, strides=(1, 1), pads=(0, 0, 0, 0),
                             dilations=(1, 1), group=1, acc_bits=12, policy="saturate")
    patches = np.stack([x[0, :, i:i + 2, j:j + 2].reshape(-1)
                        for i in range(3) for j in range(3)])
    want, want_ev = accumulate(np.zeros((3, 9), np.int64),
                               patches[None, :, :] * w.reshape(3, 1, -1), 12, "saturate")
    np.testing.assert_array_equal(got[0].reshape(3, 9), want)
    assert ev == int(want_ev.sum()) > 0


def test_gemm_acc_equals_matmul() -> None:
    """§7: gemm accumulators equal bias + x @ w.T (no overflow at 32 bits)."""
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, size=(5, 17))
    w = rng.integers(-128, 128, size=(3, 17))
    bias = rng.integers(-5000, 5000, size=3)
    got, ev = ops.gemm_acc(x, w, bias, acc_bits=32, policy="saturate")
    np.testing.assert_array_equal(got, bias + x @ w.T)
    assert ev == 0


@given(st.integers(-10**6, 10**6), st.integers(1, 300))
def test_round_div_half_away(acc: int, count: int) -> None:
    """§10.2: round half away from zero of acc / count, against exact fractions."""
    f = Fraction(acc, count)
    mag = int(abs(f) + Fraction(1, 2))  # floor(|f| + 1/2)
    want = mag if f >= 0 else -mag
    assert int(ops.round_div_half_away(np.array(acc), count)) == want


def test_avgpool_equals_scalar_definition() -> None:
    """§10.2: z + round_half_away(Σ(q − z) / count), count with or without padding."""
    rng = np.random.default_rng(2)
    q = rng.integers(-128, 128, size=(2, 3, 5, 5))
    z = 11
    for cip in (False, True):
        got = ops.avgpool(q, zero_point=z, kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1),
                          count_include_pad=cip)
        for i in range(got.shape[2]):
            for j in range(got.shape[3]):
                rows = [r for r in range(2 * i - 1, 2 * i + 2) if 0 <= r < 5]
                cols = [c for c in range(2 * j - 1, 2 * j + 2) if 0 <= c < 5]
                s = (q[:, :, rows][:, :, :, cols] - z).sum(axis=(2, 3))
                cnt = 9 if cip else len(rows) * len(cols)
                want = [[z + int(ops.round_div_half_away(np.array(v), cnt)) for v in row]
                        for row in s]
                np.testing.assert_array_equal(got[:, :, i, j], want)


def test_maxpool_pads_never_win() -> None:
    """Max pooling on codes: padding holds qmin, so it only wins over qmin itself."""
    q = np.full((1, 1, 2, 2), -128, dtype=np.int64)
    q[0, 0, 1, 1] = 5
    got = ops.maxpool(q, kernel=(2, 2), strides=(1, 1), pads=(1, 1, 0, 0),
                      dilations=(1, 1), qmin=-128)
    np.testing.assert_array_equal(got[0, 0], [[-128, -128], [-128, 5]])


def test_average_pooling_worked_example_of_spec() -> None:
    """§10.2 example: codes (5, 6, 6, 8), z = 1 → 6; acc = −10, N = 4 → −3."""
    q = np.array([5, 6, 6, 8]).reshape(1, 1, 2, 2)
    assert ops.global_avgpool(q, zero_point=1).item() == 6
    assert int(ops.round_div_half_away(np.array(-10), 4)) == -3


@given(st.integers(-10**6, 10**6), st.integers(1, 300))
def test_round_div_equals_tflite_truncating_formula(acc: int, count: int) -> None:
    """§10.2: z + round_half_away(acc/N) equals TFLite's (acc ± N/2)/N with C truncation."""
    half = count // 2
    tfl = (acc + half) // count if acc > 0 else -((-acc + half) // count)
    assert int(ops.round_div_half_away(np.array(acc), count)) == tfl
